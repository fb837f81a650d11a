//! `/openapi.json`: the API description, generated from the handlers' annotations so it
//! cannot drift from the code. `/docs` shows it in the Swagger UI vendored into the
//! binary (see `ui`).

use actix_web::HttpResponse;
use utoipa::OpenApi;

use super::{deliveries, health, pipeline, poll, pulls, repos, run, runs, stats, webhook};
use crate::registry;

/// The OpenAPI document for every route in [`super::routes`].
#[derive(OpenApi)]
#[openapi(
    info(
        title = "gaffer",
        description = "Local-LLM roles on GitHub repos, through pull requests only."
    ),
    paths(
        health::health,
        repos::list,
        repos::create,
        repos::show,
        repos::update,
        repos::set_mode,
        repos::remove,
        pipeline::scan,
        pipeline::status,
        pipeline::work_next,
        pipeline::next_task,
        run::taskmaster,
        run::developer,
        run::reviewer,
        run::integrator,
        run::bootstrap,
        pulls::list,
        pulls::merge,
        pulls::close,
        webhook::receive,
        deliveries::list,
        deliveries::retry,
        poll::once,
        poll::repo,
        poll::metrics,
        stats::models,
        runs::list,
        runs::show,
        runs::events,
        runs::transcript,
        runs::cancel,
        runs::retry,
        runs::pause,
        runs::resume,
    ),
    components(schemas(
        registry::Repo,
        registry::NewRepo,
        registry::RepoPatch,
        registry::RepoOverrides,
        registry::ModelOverrides,
        registry::Mode,
        registry::ForgeKind,
        registry::ModeCounts,
        repos::RepoList,
        repos::RepoListing,
        repos::SetMode,
        health::Health,
    ))
)]
pub struct ApiDoc;

/// The document as served: the license is named (`MIT`, from Cargo.toml) with neither a
/// URL nor an SPDX identifier (which Swagger UI turns into a link
/// to another site), so `/docs` points nowhere outside gaffer.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    if let Some(license) = doc.info.license.as_mut() {
        license.url = None;
        license.identifier = None;
    }
    doc
}

pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(document())
}
