//! `/deliveries`: the webhook audit log across repos, and retrying a failed or
//! dead-lettered delivery by hand.

use std::sync::Arc;

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::ApiAuth;
use crate::error::AppError;
use crate::registry::FullName;
use crate::Gaffer;

/// Filters of `GET /deliveries`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub status: Option<String>,
    pub repo: Option<String>,
    pub limit: Option<i64>,
}

const STATUSES: [&str; 6] = ["pending", "done", "ignored", "retrying", "dead", "failed"];

#[utoipa::path(get, path = "/deliveries", tag = "webhooks",
    params(("status" = Option<String>, Query, description = "pending, done, ignored, retrying, dead or failed"),
           ("repo" = Option<String>, Query, description = "owner/name"),
           ("limit" = Option<i64>, Query, description = "at most this many, newest first (default 50, up to 1000)")),
    responses((status = 200, description = "the newest deliveries"), (status = 400, description = "bad filter")))]
pub async fn list(
    gaffer: web::Data<Gaffer>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let status = query.status.as_deref();
    if let Some(s) = status.filter(|s| !STATUSES.contains(s)) {
        return Err(AppError::bad_request(format!(
            "status {s:?}: expected one of {}",
            STATUSES.join(", ")
        )));
    }
    let repo = query.repo.as_deref().map(FullName::parse).transpose()?;
    let limit = query.limit.unwrap_or(50).clamp(1, 1000);
    let deliveries = gaffer
        .store
        .list_deliveries(status, repo.as_ref(), limit)
        .await?;
    Ok(HttpResponse::Ok().json(deliveries))
}

#[utoipa::path(post, path = "/deliveries/{id}/retry", tag = "webhooks",
    params(("id" = String, Path, description = "the X-GitHub-Delivery id")),
    responses((status = 202, description = "claimed; processed in the background"), (status = 401, description = "API token needed"),
              (status = 404, description = "no such delivery"), (status = 409, description = "not failed or dead")))]
pub async fn retry(
    _auth: ApiAuth,
    gaffer: web::Data<Gaffer>,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let gaffer: Arc<Gaffer> = gaffer.into_inner();
    let id = crate::webhook::retry::retry_in_background(gaffer, &id).await?;
    Ok(HttpResponse::Accepted()
        .json(serde_json::json!({"id": id, "status": "pending", "retried": true})))
}
