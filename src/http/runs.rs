//! `/runs`: the engine's runs, their live progress (Server-Sent Events) and transcripts;
//! cancel, retry; pause and resume a repo. Handlers only parse and call `engine`/`store`.

use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{ApiAuth, RepoKey};
use crate::engine;
use crate::error::AppError;
use crate::store::RunFilter;
use crate::Gaffer;

/// Filters of `GET /runs`.
#[derive(Deserialize)]
pub struct ListQuery {
    pub repo: Option<String>,
    pub state: Option<String>,
    pub role: Option<String>,
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/runs", tag = "runs",
    params(("repo" = Option<String>, Query), ("state" = Option<String>, Query), ("role" = Option<String>, Query), ("limit" = Option<i64>, Query)),
    responses((status = 200, description = "runs, newest first")))]
pub async fn list(
    gaffer: web::Data<Gaffer>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let filter = RunFilter {
        repo: query.repo.clone(),
        state: query.state.clone(),
        role: query.role.clone(),
        limit: query.limit.unwrap_or(100),
    };
    let runs = gaffer.store.list_runs(&filter).await?;
    Ok(HttpResponse::Ok().json(json!({"runs": runs})))
}

#[utoipa::path(get, path = "/runs/{id}", tag = "runs", params(("id" = i64, Path)),
    responses((status = 200, description = "the run with its steps and outcome"), (status = 404)))]
pub async fn show(gaffer: web::Data<Gaffer>, id: web::Path<i64>) -> Result<HttpResponse, AppError> {
    let run = engine::get(&gaffer, *id).await?;
    let steps = gaffer.store.run_events(*id, 0, Some("progress")).await?;
    Ok(HttpResponse::Ok().json(json!({"run": run, "steps": steps})))
}

#[utoipa::path(get, path = "/runs/{id}/transcript", tag = "runs", params(("id" = i64, Path)),
    responses((status = 200, description = "every model call (messages, answer, tokens) and check run (command, exit, output)"), (status = 404)))]
pub async fn transcript(
    gaffer: web::Data<Gaffer>,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    engine::get(&gaffer, *id).await?;
    let events = gaffer.store.run_events(*id, 0, None).await?;
    let items: Vec<Value> = events
        .into_iter()
        .filter(|e| e.kind != "progress")
        .map(|e| {
            json!({"seq": e.seq, "at": e.at, "kind": e.kind,
                   "data": serde_json::from_str::<Value>(&e.body).unwrap_or(Value::String(e.body))})
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({"run": *id, "transcript": items})))
}

#[utoipa::path(get, path = "/runs/{id}/events", tag = "runs", params(("id" = i64, Path)),
    responses((status = 200, description = "text/event-stream: one `progress` event per line as it happens, then `end`"), (status = 404)))]
pub async fn events(
    gaffer: web::Data<Gaffer>,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let id = *id;
    engine::get(&gaffer, id).await?;
    let gaffer = gaffer.into_inner();
    // Polls the store, so progress of runs executed by another process (the CLI) shows too.
    let stream = futures_util::stream::unfold((0i64, false), move |(after, done)| {
        let gaffer = gaffer.clone();
        async move {
            if done {
                return None;
            }
            loop {
                let events = gaffer
                    .store
                    .run_events(id, after, Some("progress"))
                    .await
                    .ok()?;
                if let Some(last) = events.last() {
                    let text: String = events
                        .iter()
                        .map(|e| {
                            format!(
                                "id: {}\nevent: progress\ndata: {}\n\n",
                                e.seq,
                                e.body.replace('\n', " ")
                            )
                        })
                        .collect();
                    return Some((
                        Ok::<_, actix_web::Error>(web::Bytes::from(text)),
                        (last.seq, false),
                    ));
                }
                let run = gaffer.store.get_run(id).await.ok()??;
                if run.finished() {
                    let end = format!(
                        "event: end\ndata: {}\n\n",
                        json!({"state": run.state, "summary": run.summary})
                    );
                    return Some((Ok(web::Bytes::from(end)), (after, true)));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .streaming(stream))
}

#[utoipa::path(post, path = "/runs/{id}/cancel", tag = "runs", params(("id" = i64, Path)),
    responses((status = 200, description = "cancelled, or asked to stop"), (status = 401), (status = 404), (status = 409)))]
pub async fn cancel(
    _auth: ApiAuth,
    gaffer: web::Data<Gaffer>,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(engine::cancel(&gaffer, *id).await?))
}

#[utoipa::path(post, path = "/runs/{id}/retry", tag = "runs", params(("id" = i64, Path)),
    responses((status = 202, description = "the new run"), (status = 401), (status = 404), (status = 409)))]
pub async fn retry(
    _auth: ApiAuth,
    gaffer: web::Data<Gaffer>,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let new = engine::retry(&gaffer, *id).await?;
    accepted(&gaffer, new).await
}

/// `202 Accepted` for a queued run, with where to watch it.
pub async fn accepted(gaffer: &Gaffer, id: i64) -> Result<HttpResponse, AppError> {
    let run = engine::get(gaffer, id).await?;
    Ok(HttpResponse::Accepted()
        .insert_header(("Location", format!("/runs/{id}")))
        .json(json!({"run": run, "events": format!("/runs/{id}/events")})))
}

#[utoipa::path(post, path = "/repos/{owner}/{name}/pause", tag = "runs",
    params(("owner" = String, Path), ("name" = String, Path)),
    responses((status = 200, description = "paused: queued runs wait"), (status = 401), (status = 404)))]
pub async fn pause(
    _auth: ApiAuth,
    gaffer: web::Data<Gaffer>,
    key: RepoKey,
) -> Result<HttpResponse, AppError> {
    set_paused(&gaffer, &key, true).await
}

#[utoipa::path(post, path = "/repos/{owner}/{name}/resume", tag = "runs",
    params(("owner" = String, Path), ("name" = String, Path)),
    responses((status = 200, description = "resumed: its runs are queued again"), (status = 401), (status = 404)))]
pub async fn resume(
    _auth: ApiAuth,
    gaffer: web::Data<Gaffer>,
    key: RepoKey,
) -> Result<HttpResponse, AppError> {
    set_paused(&gaffer, &key, false).await
}

async fn set_paused(
    gaffer: &Gaffer,
    key: &RepoKey,
    paused: bool,
) -> Result<HttpResponse, AppError> {
    let repo = gaffer.registry.get(&key.0).await?;
    let name = repo.full_name.to_ascii_lowercase();
    if paused {
        gaffer.store.pause_repo(&name).await?;
    } else {
        gaffer.store.resume_repo(&name).await?;
        gaffer.engine.wake();
    }
    Ok(HttpResponse::Ok().json(json!({"repo": repo.full_name, "paused": paused})))
}
