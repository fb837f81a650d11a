//! `/repos`: the registry over HTTP.

use std::collections::HashMap;

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::Value;
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
    pub repos: Vec<RepoListing>,
}

/// A repo with what its last scan said (no network call per listing).
#[derive(Serialize, ToSchema)]
pub struct RepoListing {
    #[serde(flatten)]
    pub repo: Repo,
    /// The next step from the last scan, `null` before the first scan.
    #[schema(value_type = Object)]
    pub next: Value,
    /// The task the Developer would take next.
    #[schema(value_type = Option<String>)]
    pub next_task: Value,
    pub open_prs: Option<u64>,
    pub scanned_at: Option<String>,
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
    let scans: HashMap<String, Value> = gaffer
        .store
        .all_scans()
        .await?
        .into_iter()
        .filter_map(|(key, text)| Some((key, serde_json::from_str(&text).ok()?)))
        .collect();
    let repos = repos
        .into_iter()
        .map(|repo| {
            let scan = scans.get(&repo.full_name.to_ascii_lowercase());
            let field = |name: &str| {
                scan.and_then(|s| s.get(name))
                    .cloned()
                    .unwrap_or(Value::Null)
            };
            RepoListing {
                next: field("next"),
                next_task: field("next_task"),
                open_prs: field("open_prs").as_u64(),
                scanned_at: field("scanned_at").as_str().map(str::to_string),
                repo,
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(RepoList {
        total: counts.observe + counts.pr + counts.disabled,
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

/// `/repos/{x}` where `x` is not an `owner_name` id.
pub async fn bad_id(path: web::Path<String>) -> Result<HttpResponse, AppError> {
    Err(crate::registry::FullName::from_id(&path)
        .err()
        .unwrap_or_else(|| {
            AppError::bad_request(format!("invalid repository id {:?}", path.as_str()))
        }))
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
