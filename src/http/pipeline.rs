//! Per-repo scan, status, work-next and next-task.

use actix_web::{web, HttpResponse};

use super::{ApiAuth, RepoKey};
use crate::error::AppError;
use crate::{pipeline, Gaffer};

#[utoipa::path(post, path = "/repos/{owner}/{name}/scan", tag = "pipeline",
    params(("owner" = String, Path), ("name" = String, Path)),
    responses((status = 200, description = "tasks per state, problems, open task PRs, next step"),
               (status = 404), (status = 409, description = "repo disabled"), (status = 503)))]
pub async fn scan(
    _auth: ApiAuth,
    gaffer: web::Data<Gaffer>,
    key: RepoKey,
) -> Result<HttpResponse, AppError> {
    let repo = gaffer.registry.get(&key.0).await?;
    Ok(HttpResponse::Ok().json(pipeline::scan(&gaffer, &repo).await?))
}

#[utoipa::path(get, path = "/repos/{owner}/{name}/status", tag = "pipeline",
    params(("owner" = String, Path), ("name" = String, Path)),
    responses((status = 200, description = "last scan, next step, recent events"), (status = 404)))]
pub async fn status(gaffer: web::Data<Gaffer>, key: RepoKey) -> Result<HttpResponse, AppError> {
    let repo = gaffer.registry.get(&key.0).await?;
    Ok(HttpResponse::Ok().json(pipeline::status(&gaffer, &repo).await?))
}

#[utoipa::path(post, path = "/repos/{owner}/{name}/work-next", tag = "pipeline",
    params(("owner" = String, Path), ("name" = String, Path)),
    responses((status = 202, description = "the next step, why, and the run queued for it (pr mode)"), (status = 200, description = "the decision only (observe, or nothing to do), or with ?wait=true the run's outcome"), (status = 404), (status = 409), (status = 503)))]
pub async fn work_next(
    _auth: ApiAuth,
    gaffer: web::Data<Gaffer>,
    key: RepoKey,
    query: web::Query<WaitQuery>,
) -> Result<HttpResponse, AppError> {
    let repo = gaffer.registry.get(&key.0).await?;
    let answer =
        crate::roles::work_next(&gaffer, &repo, crate::engine::Trigger::Api, query.wait).await?;
    Ok(match (answer.run, query.wait) {
        (Some(id), false) => HttpResponse::Accepted()
            .insert_header(("Location", format!("/runs/{id}")))
            .json(answer),
        _ => HttpResponse::Ok().json(answer),
    })
}

/// `?wait=true`: execute the step now and answer with its outcome.
#[derive(serde::Deserialize)]
pub struct WaitQuery {
    #[serde(default)]
    pub wait: bool,
}

#[utoipa::path(get, path = "/repos/{owner}/{name}/next-task", tag = "pipeline",
    params(("owner" = String, Path), ("name" = String, Path)),
    responses((status = 200, description = "the task the Developer would take next, or null"), (status = 404), (status = 409)))]
pub async fn next_task(gaffer: web::Data<Gaffer>, key: RepoKey) -> Result<HttpResponse, AppError> {
    let repo = gaffer.registry.get(&key.0).await?;
    pipeline::ensure_enabled(&repo)?;
    Ok(HttpResponse::Ok().json(pipeline::next_task(&gaffer, &repo).await?))
}
