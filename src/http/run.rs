//! `/run/*` and `/repos/{id}/bootstrap`: run one role by hand on one repo.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::{ApiAuth, RepoKey};
use crate::engine::{self, Job, Trigger};
use crate::error::{AppError, AppResult};
use crate::registry::{FullName, Mode, Repo};
use crate::roles::developer;
use crate::team::task::TaskId;
use crate::Gaffer;

/// `?repo=owner/name` (optional when only one repo is registered) and, for the
/// Developer, `&task=T-0003`.
#[derive(Deserialize)]
pub struct RunQuery {
    pub repo: Option<String>,
    pub task: Option<String>,
    /// For the Reviewer and the Integrator: one PR number.
    pub pr: Option<u64>,
    /// `true`: execute the run now and answer with its outcome (200) instead of 202.
    #[serde(default)]
    pub wait: bool,
}

/// Queues `job` as a run (202 with the run) or, with `?wait=true`, executes it and
/// answers with its outcome as the role returned it.
async fn start(
    gaffer: &Gaffer,
    repo: &Repo,
    job: Job,
    wait: bool,
) -> Result<HttpResponse, AppError> {
    if !wait {
        let id = engine::enqueue(gaffer, repo, &job, Trigger::Api).await?;
        return super::runs::accepted(gaffer, id).await;
    }
    let run = engine::run_inline(gaffer, repo, &job, Trigger::Api).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("X-Gaffer-Run", run.id.to_string()))
        .json(engine::result_of(&run)?))
}

/// The repo a `/run/*` call means: the one named, or the only active one.
pub async fn pick_repo(gaffer: &Gaffer, named: Option<&str>) -> AppResult<Repo> {
    if let Some(name) = named {
        let full = if name.contains('/') {
            FullName::parse(name)?
        } else {
            FullName::from_id(name)?
        };
        return gaffer.registry.get(&full).await;
    }
    let (repos, _) = gaffer.registry.list().await?;
    let active: Vec<Repo> = repos
        .into_iter()
        .filter(|r| r.mode != Mode::Disabled)
        .collect();
    match active.len() {
        1 => Ok(active.into_iter().next().expect("one repo")),
        0 => Err(AppError::bad_request(
            "no repo is registered (and enabled): register one first",
        )),
        n => Err(AppError::bad_request(format!(
            "{n} repos are registered: say which with ?repo=owner/name"
        ))),
    }
}

#[utoipa::path(post, path = "/run/taskmaster", tag = "roles",
    params(("repo" = Option<String>, Query, description = "owner/name; optional when one repo is registered")),
    responses((status = 202, description = "the run queued"), (status = 200, description = "with ?wait=true: what the Taskmaster did"), (status = 400), (status = 401), (status = 404), (status = 409), (status = 503)))]
pub async fn taskmaster(
    _auth: ApiAuth,
    gaffer: web::Data<Gaffer>,
    query: web::Query<RunQuery>,
) -> Result<HttpResponse, AppError> {
    let repo = pick_repo(&gaffer, query.repo.as_deref()).await?;
    crate::roles::ensure_active(&repo)?;
    start(&gaffer, &repo, Job::Taskmaster, query.wait).await
}

#[utoipa::path(post, path = "/run/developer", tag = "roles",
    params(("repo" = Option<String>, Query, description = "owner/name; optional when one repo is registered"),
           ("task" = Option<String>, Query, description = "T-NNNN; default: the task work-next picks"),
           ("pr" = Option<u64>, Query, description = "a round on this task PR's feedback (review, CI) instead: fix commits pushed to it")),
    responses((status = 202, description = "the run queued"), (status = 200, description = "with ?wait=true: what the Developer did"), (status = 400), (status = 401), (status = 404), (status = 409), (status = 503)))]
pub async fn developer(
    _auth: ApiAuth,
    gaffer: web::Data<Gaffer>,
    query: web::Query<RunQuery>,
) -> Result<HttpResponse, AppError> {
    let repo = pick_repo(&gaffer, query.repo.as_deref()).await?;
    let task = match &query.task {
        Some(text) => Some(TaskId::parse(text).ok_or_else(|| {
            AppError::bad_request(format!("{text:?} is not a task id like T-0003"))
        })?),
        None => None,
    };
    crate::roles::ensure_active(&repo)?;
    let job = match (query.pr, task) {
        (Some(_), Some(_)) => {
            return Err(AppError::bad_request(
                "say either task (new work) or pr (a round on its feedback), not both",
            ))
        }
        (Some(pr), None) => Job::Fix(pr),
        (None, task) => Job::Developer(task),
    };
    start(&gaffer, &repo, job, query.wait).await
}

#[utoipa::path(post, path = "/run/reviewer", tag = "roles",
    params(("repo" = Option<String>, Query, description = "owner/name; optional when one repo is registered"),
           ("pr" = Option<u64>, Query, description = "one PR; default: every open task PR with an unreviewed head")),
    responses((status = 202, description = "the run queued"), (status = 200, description = "with ?wait=true: one outcome per PR looked at"), (status = 400), (status = 401), (status = 404), (status = 409), (status = 503)))]
pub async fn reviewer(
    _auth: ApiAuth,
    gaffer: web::Data<Gaffer>,
    query: web::Query<RunQuery>,
) -> Result<HttpResponse, AppError> {
    let repo = pick_repo(&gaffer, query.repo.as_deref()).await?;
    crate::roles::ensure_active(&repo)?;
    start(&gaffer, &repo, Job::Reviewer(query.pr), query.wait).await
}

#[utoipa::path(post, path = "/run/integrator", tag = "roles",
    params(("repo" = Option<String>, Query, description = "owner/name; optional when one repo is registered"),
           ("pr" = Option<u64>, Query, description = "a merged task PR; default: what work-next finds merged")),
    responses((status = 202, description = "the run queued"), (status = 200, description = "with ?wait=true: what the Integrator did"), (status = 400), (status = 401), (status = 404), (status = 409), (status = 503)))]
pub async fn integrator(
    _auth: ApiAuth,
    gaffer: web::Data<Gaffer>,
    query: web::Query<RunQuery>,
) -> Result<HttpResponse, AppError> {
    let repo = pick_repo(&gaffer, query.repo.as_deref()).await?;
    crate::roles::ensure_active(&repo)?;
    start(&gaffer, &repo, Job::Integrator(query.pr), query.wait).await
}

#[utoipa::path(post, path = "/repos/{owner}/{name}/bootstrap", tag = "roles",
    params(("owner" = String, Path), ("name" = String, Path)),
    responses((status = 200, description = "the bootstrap PR, or a preview in observe mode"), (status = 401), (status = 404), (status = 409), (status = 503)))]
pub async fn bootstrap(
    _auth: ApiAuth,
    gaffer: web::Data<Gaffer>,
    key: RepoKey,
) -> Result<HttpResponse, AppError> {
    let repo = gaffer.registry.get(&key.0).await?;
    Ok(HttpResponse::Ok().json(Box::pin(developer::bootstrap(&gaffer, &repo)).await?))
}
