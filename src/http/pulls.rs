//! Per-repo pull requests: list (any forge), merge and close (local forge only).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::{ApiAuth, RepoKey};
use crate::error::AppError;
use crate::forge::PullState;
use crate::{pulls, Gaffer};

/// `?state=` of the PR listing.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// `open` (default) or `closed`.
    state: Option<String>,
}

#[utoipa::path(get, path = "/repos/{owner}/{name}/pulls", tag = "pulls",
    params(("owner" = String, Path), ("name" = String, Path),
           ("state" = Option<String>, Query, description = "open (default) or closed")),
    responses((status = 200, description = "the repo's PRs in that state, newest first"),
              (status = 400), (status = 404), (status = 503)))]
pub async fn list(
    gaffer: web::Data<Gaffer>,
    key: RepoKey,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let state = match query.state.as_deref() {
        None | Some("open") => PullState::Open,
        Some("closed") => PullState::Closed,
        Some(other) => {
            return Err(AppError::bad_request(format!(
                "state {other:?} is not open or closed"
            )))
        }
    };
    let repo = gaffer.registry.get(&key.0).await?;
    Ok(HttpResponse::Ok().json(pulls::list(&gaffer, &repo, state).await?))
}

#[utoipa::path(post, path = "/repos/{owner}/{name}/pulls/{number}/merge", tag = "pulls",
    params(("owner" = String, Path), ("name" = String, Path), ("number" = u64, Path)),
    responses((status = 200, description = "merged: number, base, merge_sha"),
              (status = 401), (status = 404),
              (status = 409, description = "not open, conflicts, or a GitHub repo (a human merges there)")))]
pub async fn merge(
    _auth: ApiAuth,
    gaffer: web::Data<Gaffer>,
    key: RepoKey,
    req: HttpRequest,
) -> Result<HttpResponse, AppError> {
    let number = pr_number(&req)?;
    let repo = gaffer.registry.get(&key.0).await?;
    Ok(HttpResponse::Ok().json(pulls::merge(&gaffer, &repo, number).await?))
}

#[utoipa::path(post, path = "/repos/{owner}/{name}/pulls/{number}/close", tag = "pulls",
    params(("owner" = String, Path), ("name" = String, Path), ("number" = u64, Path)),
    responses((status = 200, description = "the closed PR"), (status = 401), (status = 404),
              (status = 409, description = "not open, or a GitHub repo (a human closes it there)")))]
pub async fn close(
    _auth: ApiAuth,
    gaffer: web::Data<Gaffer>,
    key: RepoKey,
    req: HttpRequest,
) -> Result<HttpResponse, AppError> {
    let number = pr_number(&req)?;
    let repo = gaffer.registry.get(&key.0).await?;
    Ok(HttpResponse::Ok().json(pulls::close(&gaffer, &repo, number).await?))
}

/// The `{number}` path segment (the route works for both repo path forms).
fn pr_number(req: &HttpRequest) -> Result<u64, AppError> {
    let text = req.match_info().get("number").unwrap_or_default();
    text.parse()
        .map_err(|_| AppError::bad_request(format!("{text:?} is not a pull request number")))
}
