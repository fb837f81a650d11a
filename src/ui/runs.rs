//! The Runs pages: the list (kept live by Server-Sent Events of re-rendered rows) and one
//! run with its steps as they happen, its outcome and PR, the checks' output and the
//! transcript (every prompt and answer, collapsed).

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;

use super::auth::{self, url_encode};
use super::layout::{self, when};
use super::repos::button;
use super::CsrfForm;
use crate::store::{RunFilter, RunRecord};
use crate::Gaffer;

/// Filters of the list.
#[derive(Deserialize, Default)]
pub struct ListQuery {
    pub repo: Option<String>,
    pub state: Option<String>,
    pub role: Option<String>,
}

impl ListQuery {
    fn filter(&self) -> RunFilter {
        let clean = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        RunFilter {
            repo: clean(&self.repo).map(|r| r.to_ascii_lowercase()),
            state: clean(&self.state),
            role: clean(&self.role),
            limit: 100,
        }
    }

    fn query_string(&self) -> String {
        let mut parts = Vec::new();
        for (k, v) in [
            ("repo", &self.repo),
            ("state", &self.state),
            ("role", &self.role),
        ] {
            if let Some(v) = v.as_ref().filter(|s| !s.is_empty()) {
                parts.push(format!("{k}={}", url_encode(v)));
            }
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("?{}", parts.join("&"))
        }
    }
}

fn what(run: &RunRecord) -> String {
    match (&run.task, run.pr) {
        (Some(t), _) => t.clone(),
        (None, Some(n)) => format!("PR #{n}"),
        _ => String::new(),
    }
}

fn rows(runs: &[RunRecord]) -> Markup {
    html! {
        @if runs.is_empty() { tr { td colspan="7" .muted { "No runs yet." } } }
        @for run in runs {
            tr data-run=(run.id) {
                td.num { a href=(format!("/ui/runs/{}", run.id)) { "#" (run.id) } }
                td { (run.repo) }
                td { (run.role) " " span.muted { (what(run)) } }
                td { span class=(format!("badge state-{}", run.state)) { (run.state) } }
                td.hide-narrow { (run.trigger) }
                td { (run.summary) }
                td.hide-narrow { (when(Some(&run.created_at))) }
            }
        }
    }
}

/// `GET /ui/runs`.
pub async fn list(
    req: HttpRequest,
    gaffer: web::Data<Gaffer>,
    query: web::Query<ListQuery>,
) -> HttpResponse {
    let viewer = match auth::viewer(&req, &gaffer) {
        Ok(v) => v,
        Err(answer) => return *answer,
    };
    let runs = match gaffer.store.list_runs(&query.filter()).await {
        Ok(r) => r,
        Err(e) => return layout::error(&e, "/ui/"),
    };
    let live = format!("/ui/runs/live{}", query.query_string());
    let body = html! {
        form.actions method="get" action="/ui/runs" {
            label for="f-repo" { "repo" }
            input id="f-repo" name="repo" value=(query.repo.clone().unwrap_or_default()) size="18";
            label for="f-state" { "state" }
            select id="f-state" name="state" {
                option value="" { "any" }
                @for s in ["queued", "paused", "running", "succeeded", "blocked", "failed", "cancelled"] {
                    option value=(s) selected[query.state.as_deref() == Some(s)] { (s) }
                }
            }
            label for="f-role" { "role" }
            select id="f-role" name="role" {
                option value="" { "any" }
                @for r in ["taskmaster", "developer", "reviewer", "integrator"] {
                    option value=(r) selected[query.role.as_deref() == Some(r)] { (r) }
                }
            }
            button type="submit" { "Filter" }
        }
        p.live { "newest first; " a href=(format!("/ui/runs{}", query.query_string())) { "reload" } }
        div.table-wrap { table {
            thead { tr { th.num { "run" } th { "repo" } th { "role" } th { "state" } th.hide-narrow { "trigger" } th { "summary" } th.hide-narrow { "queued" } } }
            tbody id="runs-body" data-live=(live) { (rows(&runs)) }
        } }
    };
    layout::page(&gaffer, &viewer, "Runs", "/ui/runs", body)
}

/// `GET /ui/runs/live`: `rows` events with the list's rows whenever they change.
pub async fn live(
    req: HttpRequest,
    gaffer: web::Data<Gaffer>,
    query: web::Query<ListQuery>,
) -> HttpResponse {
    if let Err(answer) = auth::viewer(&req, &gaffer) {
        return *answer;
    }
    let filter = query.filter();
    let gaffer = gaffer.into_inner();
    // (last rows sent, polls since the last write): a comment every ~10 s finds a closed
    // connection, so an abandoned page does not poll forever.
    let stream = futures_util::stream::unfold((String::new(), 0u32), move |(last, idle)| {
        let gaffer = gaffer.clone();
        let filter = filter.clone();
        async move {
            let mut idle = idle;
            loop {
                let runs = gaffer.store.list_runs(&filter).await.ok()?;
                let html = rows(&runs).into_string().replace(['\n', '\r'], " ");
                if html != last {
                    let event = format!("event: rows\ndata: {html}\n\n");
                    return Some((
                        Ok::<_, actix_web::Error>(web::Bytes::from(event)),
                        (html, 0),
                    ));
                }
                idle += 1;
                if idle >= 20 {
                    return Some((Ok(web::Bytes::from_static(b": still here\n\n")), (last, 0)));
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .streaming(stream)
}

/// `GET /ui/runs/{id}`.
pub async fn show(req: HttpRequest, gaffer: web::Data<Gaffer>, id: web::Path<i64>) -> HttpResponse {
    let viewer = match auth::viewer(&req, &gaffer) {
        Ok(v) => v,
        Err(answer) => return *answer,
    };
    let id = *id;
    let run = match gaffer.store.get_run(id).await {
        Ok(Some(run)) => run,
        Ok(None) => {
            return layout::message(
                StatusCode::NOT_FOUND,
                "No such run",
                &format!("There is no run {id}."),
                "/ui/runs",
            )
        }
        Err(e) => return layout::error(&e, "/ui/runs"),
    };
    let events = match gaffer.store.run_events(id, 0, None).await {
        Ok(e) => e,
        Err(e) => return layout::error(&e, "/ui/runs"),
    };
    let steps: Vec<_> = events.iter().filter(|e| e.kind == "progress").collect();
    let artefacts: Vec<(String, Value)> = events
        .iter()
        .filter(|e| e.kind != "progress")
        .map(|e| {
            (
                e.kind.clone(),
                serde_json::from_str(&e.body).unwrap_or(Value::String(e.body.clone())),
            )
        })
        .collect();
    let outcome = run.outcome.clone().unwrap_or(Value::Null);
    let pr = &outcome["pr"];
    let body = html! {
        section.card {
            dl.facts {
                dt { "state" } dd { span id="run-state" class=(format!("badge state-{}", run.state)) { (run.state) } }
                dt { "repo" } dd { (run.repo) " · " a href=(format!("/ui/runs?repo={}", url_encode(&run.repo))) { "its runs" } }
                dt { "role" } dd { (run.role) " " span.muted { (what(&run)) } }
                dt { "trigger" } dd { (run.trigger) @if let Some(of) = run.retry_of { " (retry of " a href=(format!("/ui/runs/{of}")) { "#" (of) } ")" } }
                dt { "queued" } dd { (when(Some(&run.created_at))) }
                dt { "started" } dd { (when(run.started_at.as_deref())) }
                dt { "finished" } dd { (when(run.finished_at.as_deref())) }
                dt { "summary" } dd { (run.summary) }
                @if let Some(number) = pr["number"].as_u64() {
                    dt { "pull request" } dd {
                        @match pr["url"].as_str().filter(|u| u.starts_with("https://") || u.starts_with("http://")) {
                            Some(url) => a href=(url) rel="external noopener noreferrer" { "#" (number) " " (pr["branch"].as_str().unwrap_or("")) },
                            None => { "#" (number) " " (pr["branch"].as_str().unwrap_or("")) }
                        }
                    }
                }
            }
        }
        div.actions {
            @if !run.finished() {
                (button(&viewer, &format!("/ui/runs/{id}/cancel"), if run.state == "running" { "Stop" } else { "Cancel" }))
            } @else if run.state != "succeeded" {
                (button(&viewer, &format!("/ui/runs/{id}/retry"), "Retry"))
            }
        }
        h2 { "Steps" }
        @if run.finished() {
            p.live { (steps.len()) " steps" }
            ol.steps id="steps" { @for s in &steps { li data-seq=(s.seq) { (s.body) } } }
        } @else {
            p.live { "in progress (live with JavaScript; " a href=(format!("/ui/runs/{id}")) { "reload" } " otherwise)" }
            ol.steps id="steps" data-live=(format!("/runs/{id}/events")) { @for s in &steps { li data-seq=(s.seq) { (s.body) } } }
        }
        (checks(&outcome, &artefacts))
        h2 { "Transcript" }
        @let calls: Vec<&Value> = artefacts.iter().filter(|(k, _)| k == "model_call").map(|(_, v)| v).collect();
        @if calls.is_empty() { p.muted { "No model call in this run." } }
        @for (n, call) in calls.iter().enumerate() {
            details.call {
                summary {
                    "call " (n + 1) ": " (call["role"].as_str().unwrap_or("")) " · " (call["model"].as_str().unwrap_or(""))
                    @if let Some(err) = call["error"].as_str() { " · " span.state-failed { "error: " (err) } }
                    @else { span.muted { " · " (call["prompt_tokens"]) " + " (call["completion_tokens"]) " tokens, " (call["total_ms"]) " ms" } }
                }
                @for m in call["messages"].as_array().map(Vec::as_slice).unwrap_or_default() {
                    details { summary { (m["role"].as_str().unwrap_or("message")) } pre { (m["content"].as_str().unwrap_or("")) } }
                }
                @if let Some(answer) = call["answer"].as_str() {
                    details { summary { "answer" } pre { (answer) } }
                }
            }
        }
    };
    layout::page(&gaffer, &viewer, &format!("Run #{id}"), "/ui/runs", body)
}

/// The checks: every check run recorded (command, exit, output), collapsed.
fn checks(outcome: &Value, artefacts: &[(String, Value)]) -> Markup {
    let runs: Vec<&Value> = artefacts
        .iter()
        .filter(|(k, _)| k == "check")
        .map(|(_, v)| v)
        .collect();
    html! {
        h2 { "Checks" }
        @if let Some(passed) = outcome["checks"]["passed"].as_bool() {
            p { "Checks " @if passed { span.badge.state-succeeded { "passed" } } @else { span.badge.state-failed { "failed" } } }
        }
        @if runs.is_empty() { p.muted { "No check ran in this run." } }
        @for c in &runs {
            details.check {
                summary {
                    code { (c["command"].as_str().unwrap_or("")) } " "
                    @if c["passed"].as_bool() == Some(true) { span.state-succeeded { "passed" } } @else { span.state-failed { "failed" } }
                    span.muted { " · exit " (c["exit_code"]) " · " (c["duration_ms"]) " ms"
                        @if c["timed_out"].as_bool() == Some(true) { " · timed out" }
                        @if c["sandboxed"].as_bool() == Some(false) { " · not sandboxed" } }
                }
                pre { (c["output"].as_str().unwrap_or("")) }
            }
        }
    }
}

/// `POST /ui/runs/{id}/cancel` and `/retry`: the engine's cancel (a running run stops at
/// its next heartbeat) and retry (a new run, whose page opens).
pub async fn act(
    req: HttpRequest,
    gaffer: web::Data<Gaffer>,
    path: web::Path<(i64, String)>,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    if let Err(refused) = auth::action(&req, &gaffer, &form.csrf) {
        return *refused;
    }
    let (id, what) = path.into_inner();
    let back = format!("/ui/runs/{id}");
    let done = match what.as_str() {
        "cancel" => crate::engine::cancel(&gaffer, id).await.map(|_| id),
        "retry" => crate::engine::retry(&gaffer, id).await,
        other => Err(crate::error::AppError::not_found(format!(
            "no action {other:?}"
        ))),
    };
    match done {
        Ok(run) => layout::see_other(&format!("/ui/runs/{run}")),
        Err(e) => layout::error(&e, &back),
    }
}
