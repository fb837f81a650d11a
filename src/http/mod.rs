//! The HTTP API (actix-web). Handlers only parse, call a service and map errors; the
//! route table below is the whole surface, and `/openapi.json` describes it.

mod deliveries;
mod extract;
mod guard;
mod health;
mod openapi;
mod pipeline;
mod poll;
mod pulls;
mod repos;
mod run;
mod runs;
mod stats;
mod webhook;

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use tracing_actix_web::TracingLogger;

use crate::error::{AppError, ErrorKind};
use crate::Gaffer;

pub use extract::{ApiAuth, RepoKey};
pub use run::pick_repo;

/// The OpenAPI description of the JSON API (served at `/openapi.json` and under `/docs`).
pub fn api_doc() -> utoipa::openapi::OpenApi {
    openapi::document()
}

/// Largest JSON body the management API accepts (webhooks have their own limit).
const API_JSON_LIMIT: usize = 64 * 1024;

/// Builds the actix server on an already-bound listener.
pub fn server(state: web::Data<Gaffer>, listener: TcpListener) -> std::io::Result<Server> {
    let port = listener.local_addr()?.port();
    let allowed = web::Data::new(guard::AllowedHosts::new(&state.settings, port));
    let server = HttpServer::new(move || {
        App::new()
            .wrap(actix_web::middleware::from_fn(guard_requests))
            .wrap(TracingLogger::default())
            .app_data(allowed.clone())
            .app_data(state.clone())
            .app_data(json_config())
            .app_data(web::PathConfig::default().error_handler(path_error))
            .app_data(web::QueryConfig::default().error_handler(query_error))
            .configure(routes)
            .default_service(web::to(not_found))
    })
    .listen(listener)?
    .run();
    Ok(server)
}

/// Runs [`guard::check`] before every handler.
async fn guard_requests(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let token_set = req
        .app_data::<web::Data<Gaffer>>()
        .is_some_and(|g| g.settings.api_token.is_some());
    let verdict = match req.app_data::<web::Data<guard::AllowedHosts>>() {
        Some(allowed) => guard::check(req.request(), allowed, token_set),
        None => Err(AppError::internal("allowed hosts missing")),
    };
    match verdict {
        Ok(()) => next.call(req).await.map(|r| r.map_into_left_body()),
        Err(e) => Ok(req.error_response(e).map_into_right_body()),
    }
}

/// The original tool's single-segment repo id, `owner_name`: owners cannot contain `_`,
/// so this pattern never matches an `owner` segment.
const ID: &str = "{id:[A-Za-z0-9-]+_[A-Za-z0-9._-]+}";

/// The route table. Every per-repo route exists as `/repos/{owner}/{name}/...` and as the
/// original tool's `/repos/{id}/...`.
fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health::health))
        .route("/openapi.json", web::get().to(openapi::openapi_json))
        .route("/metrics", web::get().to(poll::metrics))
        .route("/stats/models", web::get().to(stats::models))
        .route("/poll/once", web::post().to(poll::once))
        .route("/webhook", web::post().to(webhook::receive))
        .route("/github/webhook", web::post().to(webhook::receive))
        .route("/deliveries", web::get().to(deliveries::list))
        .route("/deliveries/{id}/retry", web::post().to(deliveries::retry))
        .route("/run/taskmaster", web::post().to(run::taskmaster))
        .route("/run/developer", web::post().to(run::developer))
        .route("/run/reviewer", web::post().to(run::reviewer))
        .route("/run/integrator", web::post().to(run::integrator))
        .route("/runs", web::get().to(runs::list))
        .route("/runs/{id}", web::get().to(runs::show))
        .route("/runs/{id}/events", web::get().to(runs::events))
        .route("/runs/{id}/transcript", web::get().to(runs::transcript))
        .route("/runs/{id}/cancel", web::post().to(runs::cancel))
        .route("/runs/{id}/retry", web::post().to(runs::retry))
        .service(
            web::resource("/repos")
                .route(web::get().to(repos::list))
                .route(web::post().to(repos::create)),
        );
    for base in [format!("/repos/{ID}"), "/repos/{owner}/{name}".to_string()] {
        cfg.service(
            web::resource(base.clone())
                .route(web::get().to(repos::show))
                .route(web::patch().to(repos::update))
                .route(web::delete().to(repos::remove)),
        )
        .route(&format!("{base}/set-mode"), web::post().to(repos::set_mode))
        .route(&format!("{base}/scan"), web::post().to(pipeline::scan))
        .route(&format!("{base}/rescan"), web::post().to(pipeline::scan))
        .route(&format!("{base}/poll"), web::post().to(poll::repo))
        .route(&format!("{base}/status"), web::get().to(pipeline::status))
        .route(
            &format!("{base}/work-next"),
            web::post().to(pipeline::work_next),
        )
        .route(
            &format!("{base}/next-task"),
            web::get().to(pipeline::next_task),
        )
        .route(&format!("{base}/bootstrap"), web::post().to(run::bootstrap))
        .route(&format!("{base}/pause"), web::post().to(runs::pause))
        .route(&format!("{base}/resume"), web::post().to(runs::resume))
        .route(&format!("{base}/pulls"), web::get().to(pulls::list))
        .route(
            &format!("{base}/pulls/{{number}}/merge"),
            web::post().to(pulls::merge),
        )
        .route(
            &format!("{base}/pulls/{{number}}/close"),
            web::post().to(pulls::close),
        );
    }
    // A single segment that is not an id: a clear 400 rather than a 404.
    cfg.route("/repos/{bad_id}", web::route().to(repos::bad_id));
    cfg.configure(crate::ui::routes);
}

fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(API_JSON_LIMIT)
        .error_handler(|err, _req| json_error(err).into())
}

fn json_error(err: JsonPayloadError) -> AppError {
    match err {
        JsonPayloadError::ContentType => AppError::new(
            ErrorKind::UnsupportedMediaType,
            "expected a JSON body with Content-Type: application/json",
        ),
        JsonPayloadError::Overflow { limit }
        | JsonPayloadError::OverflowKnownLength { limit, .. } => AppError::new(
            ErrorKind::PayloadTooLarge,
            format!("body too large: the limit is {limit} bytes"),
        ),
        JsonPayloadError::Deserialize(e) => {
            AppError::bad_request(format!("invalid JSON body: {e}"))
        }
        other => AppError::bad_request(format!("cannot read the JSON body: {other}")),
    }
}

fn path_error(err: PathError, _req: &HttpRequest) -> actix_web::Error {
    AppError::bad_request(format!("invalid path: {err}")).into()
}

fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    AppError::bad_request(format!("invalid query string: {err}")).into()
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    actix_web::ResponseError::error_response(&AppError::not_found(format!(
        "no route for {} {}",
        req.method(),
        req.path()
    )))
}
