//! The HTTP API (actix-web). Handlers only parse, call a service and map errors; the
//! route table below is the whole surface, and `/openapi.json` describes it.

mod extract;
mod health;
mod openapi;
mod repos;

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::{guard, web, App, HttpRequest, HttpResponse, HttpServer};
use tracing_actix_web::TracingLogger;

use crate::error::{AppError, ErrorKind};
use crate::Gaffer;

pub use extract::{ApiAuth, RepoKey};

/// Largest JSON body the management API accepts (webhooks have their own limit).
const API_JSON_LIMIT: usize = 64 * 1024;

/// Builds the actix server on an already-bound listener.
pub fn server(gaffer: Gaffer, listener: TcpListener) -> std::io::Result<Server> {
    let state = web::Data::new(gaffer);
    let server = HttpServer::new(move || {
        App::new()
            .wrap(TracingLogger::default())
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

/// The route table. `{id}` is the original tool's single-segment `owner_name`; it is
/// registered next to `{owner}/{name}` wherever a path names a repo.
fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health::health))
        .route("/openapi.json", web::get().to(openapi::openapi_json))
        .service(
            web::resource("/repos")
                .route(web::get().to(repos::list))
                .route(web::post().to(repos::create)),
        )
        .service(
            web::resource("/repos/{id}")
                .route(web::get().to(repos::show))
                .route(web::patch().to(repos::update))
                .route(web::delete().to(repos::remove)),
        )
        // Before /repos/{owner}/{name}: a POST to /repos/{id}/set-mode is the id form;
        // other methods on a two-segment path fall through to owner/name.
        .service(
            web::resource("/repos/{id}/set-mode")
                .guard(guard::Post())
                .route(web::post().to(repos::set_mode)),
        )
        .service(
            web::resource("/repos/{owner}/{name}")
                .route(web::get().to(repos::show))
                .route(web::patch().to(repos::update))
                .route(web::delete().to(repos::remove)),
        )
        .service(
            web::resource("/repos/{owner}/{name}/set-mode").route(web::post().to(repos::set_mode)),
        );
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
