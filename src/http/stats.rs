//! `/stats/models`: per-model statistics, overall and per repo (see [`crate::stats`]).

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use crate::error::AppError;
use crate::registry::FullName;
use crate::Gaffer;

/// `?repo=owner/name` keeps that repo's section only.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    pub repo: Option<String>,
}

#[utoipa::path(get, path = "/stats/models", tag = "stats",
    params(("repo" = Option<String>, Query, description = "owner/name: only this repo's section (the overall rows stay)")),
    responses((status = 200, description = "`columns` (key, label, what it counts), then `overall` and `repos[].models`: one row per model with its roles and each recorded figure"),
              (status = 400, description = "bad repo name")))]
pub async fn models(
    gaffer: web::Data<Gaffer>,
    query: web::Query<StatsQuery>,
) -> Result<HttpResponse, AppError> {
    let repo = query.repo.as_deref().map(FullName::parse).transpose()?;
    let report = crate::stats::model_stats(&gaffer.store, repo.as_ref()).await?;
    Ok(HttpResponse::Ok().json(report))
}
