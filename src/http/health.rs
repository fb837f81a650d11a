//! `/health`: is this instance up, which version, and the same checks as `gaffer doctor`
//! (database, git, sandbox, Ollama and models, GitHub token). The status code is 503 only
//! when the database fails; other failed checks make `status` say `degraded`.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::doctor::{self, Check, Outcome};
use crate::Gaffer;

/// The health report; `status` is `ok` only when no check failed.
#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
    pub version: &'static str,
    pub uptime_seconds: u64,
    #[schema(value_type = Object)]
    pub database: serde_json::Value,
    #[schema(value_type = Vec<Object>)]
    pub checks: Vec<Check>,
}

/// `?repos=true` adds one (ETag-cached) GitHub call per registered repo.
#[derive(Deserialize)]
pub struct HealthQuery {
    #[serde(default)]
    pub repos: bool,
}

#[utoipa::path(get, path = "/health", tag = "health",
    params(("repos" = Option<bool>, Query, description = "also check GitHub access to each registered repo")),
    responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn health(gaffer: web::Data<Gaffer>, query: web::Query<HealthQuery>) -> HttpResponse {
    let report = doctor::run(&gaffer, query.repos).await;
    let database = report.checks.iter().find(|c| c.name == "database");
    let database_ok = database.is_some_and(|c| c.outcome == Outcome::Ok);
    let body = Health {
        status: if report.ok { "ok" } else { "degraded" },
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: gaffer.started_at.elapsed().as_secs(),
        database: serde_json::json!({"ok": database_ok, "detail": database.map(|c| c.detail.clone())}),
        checks: report.checks,
    };
    if database_ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
