//! The dashboard: server-rendered pages (maud) over the same services as the HTTP API,
//! everything in the binary, nothing from another origin. Reading works without
//! JavaScript; `assets/app.js` adds live updates through `EventSource`. Buttons are plain
//! form POSTs with a CSRF token (see [`auth`]); `/docs` is the vendored Swagger UI.

pub mod auth;
mod health;
pub mod layout;
mod login;
mod models;
mod repos;
mod runs;
mod tasks;

use actix_web::web;

/// The dashboard's routes (the JSON API's are in `http`).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(|| async { layout::see_other("/ui/") }))
        .route("/ui", web::get().to(repos::page))
        .route("/ui/", web::get().to(repos::page))
        .route("/ui/assets/{file}", web::get().to(layout::asset))
        .route("/ui/login", web::get().to(login::form))
        .route("/ui/login", web::post().to(login::submit))
        .route("/ui/logout", web::post().to(login::logout))
        .route("/ui/runs", web::get().to(runs::list))
        .route("/ui/runs/live", web::get().to(runs::live))
        .route("/ui/runs/{id}", web::get().to(runs::show))
        .route("/ui/runs/{id}/{action}", web::post().to(runs::act))
        .route("/ui/models", web::get().to(models::page))
        .route("/ui/health", web::get().to(health::page))
        .route(
            "/ui/deliveries/{id}/retry",
            web::post().to(health::retry_delivery),
        )
        .route(
            "/ui/repos/{owner}/{name}/tasks",
            web::get().to(tasks::board),
        )
        .route(
            "/ui/repos/{owner}/{name}/{action}",
            web::post().to(repos::action),
        )
        .route(
            "/docs",
            web::get().to(|| async { layout::see_other("/docs/") }),
        )
        .route(
            "/swagger-ui",
            web::get().to(|| async { layout::see_other("/docs/") }),
        )
        .service(
            utoipa_swagger_ui::SwaggerUi::new("/docs/{_:.*}")
                .url("/docs/openapi.json", crate::http::api_doc())
                .config(
                    utoipa_swagger_ui::Config::new(["/docs/openapi.json"])
                        .validator_url("none")
                        .try_it_out_enabled(false),
                ),
        );
}

/// The form field every button carries.
#[derive(serde::Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}
