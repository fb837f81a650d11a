//! Extractors shared by handlers: the API token check and the repo named by a path.

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use crate::error::{AppError, ErrorKind};
use crate::registry::FullName;
use crate::Gaffer;

/// Proof that the caller may change things: present in every mutating handler's
/// arguments. When `GAFFER_API_TOKEN` is unset (loopback only), everyone may.
pub struct ApiAuth;

impl FromRequest for ApiAuth {
    type Error = AppError;
    type Future = Ready<Result<ApiAuth, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(check_token(req))
    }
}

fn check_token(req: &HttpRequest) -> Result<ApiAuth, AppError> {
    let gaffer = req
        .app_data::<web::Data<Gaffer>>()
        .ok_or_else(|| AppError::internal("app state missing"))?;
    let Some(expected) = &gaffer.settings.api_token else {
        return Ok(ApiAuth);
    };
    let given = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    // Compare digests, so the time taken says nothing about how much of the token matched.
    if Sha256::digest(given.as_bytes()) == Sha256::digest(expected.expose_secret().as_bytes()) {
        Ok(ApiAuth)
    } else {
        Err(AppError::new(
            ErrorKind::Unauthorized,
            "this endpoint needs Authorization: Bearer <GAFFER_API_TOKEN>",
        ))
    }
}

/// The repo a path names, as `{owner}/{name}` or the original tool's `{id}` (`owner_name`).
pub struct RepoKey(pub FullName);

impl FromRequest for RepoKey {
    type Error = AppError;
    type Future = Ready<Result<RepoKey, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let info = req.match_info();
        let parsed = match (info.get("owner"), info.get("name"), info.get("id")) {
            (Some(owner), Some(name), _) => FullName::new(owner, name),
            (_, _, Some(id)) => FullName::from_id(id),
            _ => Err(AppError::internal("route has no repo in its path")),
        };
        ready(parsed.map(RepoKey))
    }
}
