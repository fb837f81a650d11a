//! The Repos page (the dashboard's home): each repo's mode, next step and why, open task
//! PRs, last poll and webhook, paused or not; and its buttons (mode, pause/resume,
//! work-next, scan), which call the same services as the JSON API.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;

use super::auth::{self, Viewer};
use super::layout::{self, when};
use crate::error::AppError;
use crate::registry::{FullName, Mode, Repo};
use crate::Gaffer;

/// `GET /ui/`.
pub async fn page(req: HttpRequest, gaffer: web::Data<Gaffer>) -> HttpResponse {
    let viewer = match auth::viewer(&req, &gaffer) {
        Ok(v) => v,
        Err(answer) => return *answer,
    };
    match body(&gaffer, &viewer).await {
        Ok(body) => layout::page(&gaffer, &viewer, "Repos", "/ui/", body),
        Err(e) => layout::error(&e, "/ui/"),
    }
}

async fn body(gaffer: &Gaffer, viewer: &Viewer) -> Result<Markup, AppError> {
    let (repos, counts) = gaffer.registry.list().await?;
    let mut cards = Vec::new();
    for repo in &repos {
        cards.push(card(gaffer, viewer, repo).await?);
    }
    Ok(html! {
        p.muted { (repos.len()) " repos: " (counts.pr) " pr, " (counts.observe) " observe, " (counts.disabled) " disabled." }
        @if repos.is_empty() {
            p { "No repo is registered yet: " code { "gaffer repos add owner/name --mode observe" } "." }
        }
        div.cards { @for c in &cards { (c) } }
    })
}

async fn card(gaffer: &Gaffer, viewer: &Viewer, repo: &Repo) -> Result<Markup, AppError> {
    let name = repo.full_name();
    let key = repo.full_name.to_ascii_lowercase();
    let scan: Option<Value> = gaffer
        .store
        .last_scan(&name)
        .await?
        .and_then(|t| serde_json::from_str(&t).ok());
    let paused = gaffer.store.repo_paused(&key).await?;
    let poll = gaffer.store.poll_times(&name).await?;
    let hook = gaffer.store.recent_deliveries(&name, 1).await?;
    let base = format!("/ui/repos/{}/{}", repo.owner, repo.name);
    let next = scan.as_ref().map(|s| &s["next"]);
    let prs: Vec<Value> = scan
        .as_ref()
        .and_then(|s| s["open_task_prs"].as_array().cloned())
        .unwrap_or_default();
    Ok(html! {
        section.card data-repo=(repo.full_name) {
            h2 { (repo.full_name) }
            dl.facts {
                dt { "mode" } dd { span.badge { (repo.mode.as_str()) } }
                dt { "runs" } dd {
                    @if paused { span.badge.state-paused { "paused" } } @else { "running freely" }
                }
                dt { "next step" } dd {
                    @match next {
                        Some(n) => {
                            strong { (n["role"].as_str().unwrap_or("?")) }
                            @if let Some(task) = n["task"].as_str() { " " (task) }
                            " — " (n["reason"].as_str().unwrap_or(""))
                        }
                        None => span.muted { "not scanned yet" }
                    }
                }
                dt { "open task PRs" } dd {
                    @if prs.is_empty() { span.muted { "none" } }
                    @for pr in &prs {
                        div { "#" (pr["number"]) " " (pr["title"].as_str().unwrap_or("")) " "
                              span.muted { "(" (pr["kind"].as_str().unwrap_or("")) ", " (pr["task"].as_str().unwrap_or("")) ")" } }
                    }
                }
                dt { "last scan" } dd { (when(scan.as_ref().and_then(|s| s["scanned_at"].as_str()))) }
                dt { "last poll" } dd {
                    @match &poll {
                        Some((polled, changed, cycles)) => {
                            (when(polled.as_deref())) " "
                            span.muted { "(" (cycles) " cycles, last change " (when(changed.as_deref())) ")" }
                        }
                        None => span.muted { "never polled" }
                    }
                }
                dt { "last webhook" } dd {
                    @match hook.first() {
                        Some(d) => {
                            (when(Some(&d.received_at))) " " (d.event)
                            @if let Some(a) = &d.action { "." (a) }
                            " " span class=(format!("badge status-{}", d.status)) { (d.status) }
                        }
                        None => span.muted { "none received" }
                    }
                }
            }
            div.actions {
                form method="post" action=(format!("{base}/mode")) {
                    input type="hidden" name="csrf" value=(viewer.csrf);
                    label for=(format!("mode-{}", repo.id)) { "mode" }
                    select id=(format!("mode-{}", repo.id)) name="mode" {
                        @for m in ["observe", "pr", "disabled"] {
                            option value=(m) selected[repo.mode.as_str() == m] { (m) }
                        }
                    }
                    button type="submit" { "Set mode" }
                }
                (button(viewer, &format!("{base}/{}", if paused { "resume" } else { "pause" }),
                        if paused { "Resume" } else { "Pause" }))
                @if repo.mode != Mode::Disabled {
                    (button(viewer, &format!("{base}/work-next"), "Work next"))
                    (button(viewer, &format!("{base}/scan"), "Scan"))
                }
            }
            p.actions {
                a href=(format!("{base}/tasks")) { "Tasks board" }
                a href=(format!("/ui/runs?repo={}", auth::url_encode(&key))) { "Runs" }
                a href=(format!("/ui/models?repo={}", auth::url_encode(&key))) { "Models" }
            }
        }
    })
}

/// A one-button form.
pub fn button(viewer: &Viewer, action: &str, label: &str) -> Markup {
    html! {
        form method="post" action=(action) {
            input type="hidden" name="csrf" value=(viewer.csrf);
            button type="submit" { (label) }
        }
    }
}

/// A button's form: the CSRF token, and the mode for `mode`.
#[derive(Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    pub csrf: String,
    pub mode: Option<String>,
}

/// `POST /ui/repos/{owner}/{name}/{action}`.
pub async fn action(
    req: HttpRequest,
    gaffer: web::Data<Gaffer>,
    path: web::Path<(String, String, String)>,
    form: web::Form<ActionForm>,
) -> HttpResponse {
    if let Err(refused) = auth::action(&req, &gaffer, &form.csrf) {
        return *refused;
    }
    let (owner, name, what) = path.into_inner();
    match act(&gaffer, &owner, &name, &what, form.mode.as_deref()).await {
        Ok(answer) => answer,
        Err(e) => layout::error(&e, "/ui/"),
    }
}

async fn act(
    gaffer: &Gaffer,
    owner: &str,
    name: &str,
    what: &str,
    mode: Option<&str>,
) -> Result<HttpResponse, AppError> {
    let full = FullName::new(owner, name)?;
    let repo = gaffer.registry.get(&full).await?;
    let key = repo.full_name.to_ascii_lowercase();
    match what {
        "mode" => {
            let mode = mode.ok_or_else(|| AppError::bad_request("choose a mode"))?;
            let repo = gaffer.registry.set_mode(&full, mode).await?;
            tracing::info!(repo = repo.full_name, mode, "mode set from the dashboard");
            Ok(layout::see_other("/ui/"))
        }
        "pause" => {
            gaffer.store.pause_repo(&key).await?;
            Ok(layout::see_other("/ui/"))
        }
        "resume" => {
            gaffer.store.resume_repo(&key).await?;
            gaffer.engine.wake();
            Ok(layout::see_other("/ui/"))
        }
        "scan" => {
            crate::pipeline::scan(gaffer, &repo).await?;
            Ok(layout::see_other(&format!(
                "/ui/repos/{}/{}/tasks",
                repo.owner, repo.name
            )))
        }
        "work-next" => {
            let answer =
                crate::roles::work_next(gaffer, &repo, crate::engine::Trigger::Api, false).await?;
            Ok(match answer.run {
                Some(id) => layout::see_other(&format!("/ui/runs/{id}")),
                None => layout::message(
                    StatusCode::OK,
                    &format!("Work next on {}", repo.full_name),
                    &format!(
                        "Nothing was queued ({} mode): {}",
                        repo.mode.as_str(),
                        answer.decision.reason
                    ),
                    "/ui/",
                ),
            })
        }
        other => Err(AppError::not_found(format!("no action {other:?}"))),
    }
}
