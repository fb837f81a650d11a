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
    responses((status = 200, description = "the next step and why"), (status = 404), (status = 409), (status = 503)))]
pub async fn work_next(
    _auth: ApiAuth,
    gaffer: web::Data<Gaffer>,
    key: RepoKey,
) -> Result<HttpResponse, AppError> {
    let repo = gaffer.registry.get(&key.0).await?;
    Ok(HttpResponse::Ok().json(crate::roles::work_next(&gaffer, &repo).await?))
}

#[utoipa::path(get, path = "/repos/{owner}/{name}/next-task", tag = "pipeline",
    params(("owner" = String, Path), ("name" = String, Path)),
    responses((status = 200, description = "the task the Developer would take next, or null"), (status = 404), (status = 409)))]
pub async fn next_task(gaffer: web::Data<Gaffer>, key: RepoKey) -> Result<HttpResponse, AppError> {
    let repo = gaffer.registry.get(&key.0).await?;
    pipeline::ensure_enabled(&repo)?;
    Ok(HttpResponse::Ok().json(pipeline::next_task(&gaffer, &repo).await?))
}
