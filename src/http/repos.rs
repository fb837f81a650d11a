//! `/repos`: the registry over HTTP.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiAuth, RepoKey};
use crate::error::AppError;
use crate::registry::{ModeCounts, NewRepo, Repo, RepoPatch};
use crate::Gaffer;

/// The registry listing.
#[derive(Serialize, ToSchema)]
pub struct RepoList {
    pub total: usize,
    pub counts: ModeCounts,
    pub repos: Vec<Repo>,
}

/// Body of `POST /repos/{id}/set-mode`, as the original tool had it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetMode {
    pub mode: String,
}

#[utoipa::path(get, path = "/repos", tag = "repos",
    responses((status = 200, body = RepoList)))]
pub async fn list(gaffer: web::Data<Gaffer>) -> Result<HttpResponse, AppError> {
    let (repos, counts) = gaffer.registry.list().await?;
    Ok(HttpResponse::Ok().json(RepoList {
        total: repos.len(),
        counts,
        repos,
    }))
}

#[utoipa::path(post, path = "/repos", tag = "repos", request_body = NewRepo,
    responses((status = 201, body = Repo), (status = 400), (status = 401), (status = 409), (status = 415)))]
pub async fn create(
    _auth: ApiAuth,
    gaffer: web::Data<Gaffer>,
    body: web::Json<NewRepo>,
) -> Result<HttpResponse, AppError> {
    let repo = gaffer.registry.add(body.into_inner()).await?;
    tracing::info!(repo = %repo.full_name, mode = %repo.mode, "repo registered");
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/repos/{}", repo.full_name)))
        .json(repo))
}

#[utoipa::path(get, path = "/repos/{owner}/{name}", tag = "repos",
    params(("owner" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = Repo), (status = 400), (status = 404)))]
pub async fn show(gaffer: web::Data<Gaffer>, key: RepoKey) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(gaffer.registry.get(&key.0).await?))
}

#[utoipa::path(patch, path = "/repos/{owner}/{name}", tag = "repos", request_body = RepoPatch,
    params(("owner" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = Repo), (status = 400), (status = 401), (status = 404), (status = 415)))]
pub async fn update(
    _auth: ApiAuth,
    gaffer: web::Data<Gaffer>,
    key: RepoKey,
    body: web::Json<RepoPatch>,
) -> Result<HttpResponse, AppError> {
    let repo = gaffer.registry.update(&key.0, body.into_inner()).await?;
    tracing::info!(repo = %repo.full_name, mode = %repo.mode, "repo updated");
    Ok(HttpResponse::Ok().json(repo))
}

#[utoipa::path(post, path = "/repos/{owner}/{name}/set-mode", tag = "repos", request_body = SetMode,
    params(("owner" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = Repo), (status = 400), (status = 401), (status = 404)))]
pub async fn set_mode(
    _auth: ApiAuth,
    gaffer: web::Data<Gaffer>,
    key: RepoKey,
    body: web::Json<SetMode>,
) -> Result<HttpResponse, AppError> {
    let repo = gaffer.registry.set_mode(&key.0, &body.mode).await?;
    tracing::info!(repo = %repo.full_name, mode = %repo.mode, "repo mode set");
    Ok(HttpResponse::Ok().json(repo))
}

#[utoipa::path(delete, path = "/repos/{owner}/{name}", tag = "repos",
    params(("owner" = String, Path), ("name" = String, Path)),
    responses((status = 204), (status = 401), (status = 404)))]
pub async fn remove(
    _auth: ApiAuth,
    gaffer: web::Data<Gaffer>,
    key: RepoKey,
) -> Result<HttpResponse, AppError> {
    let repo = gaffer.registry.remove(&key.0).await?;
    tracing::info!(repo = %repo.full_name, "repo removed");
    Ok(HttpResponse::NoContent().finish())
}
