//! `/openapi.json`: the API description, generated from the handlers' annotations so it
//! cannot drift from the code. No UI assets are bundled or downloaded.

use actix_web::HttpResponse;
use utoipa::OpenApi;

use super::{deliveries, health, pipeline, poll, pulls, repos, run, webhook};
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

pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
