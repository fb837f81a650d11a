//! A repo's tasks as a board, one column per status, from its last scan (no network
//! call); each card lists its dependencies, linked, and marks those not done yet. Below:
//! the labelled issues waiting for the Developer, and those left alone with the reason.

use std::collections::HashMap;

use actix_web::{web, HttpRequest, HttpResponse};
use maud::html;
use serde_json::Value;

use super::auth;
use super::layout::{self, when};
use super::repos::button;
use crate::registry::FullName;
use crate::team::task::Status;
use crate::Gaffer;

/// `GET /ui/repos/{owner}/{name}/tasks`.
pub async fn board(
    req: HttpRequest,
    gaffer: web::Data<Gaffer>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let viewer = match auth::viewer(&req, &gaffer) {
        Ok(v) => v,
        Err(answer) => return *answer,
    };
    let (owner, name) = path.into_inner();
    let repo = match FullName::new(&owner, &name) {
        Ok(full) => match gaffer.registry.get(&full).await {
            Ok(repo) => repo,
            Err(e) => return layout::error(&e, "/ui/"),
        },
        Err(e) => return layout::error(&e, "/ui/"),
    };
    let scan: Option<Value> = match gaffer.store.last_scan(&repo.full_name()).await {
        Ok(s) => s.and_then(|t| serde_json::from_str(&t).ok()),
        Err(e) => return layout::error(&e, "/ui/"),
    };
    let tasks: Vec<Value> = scan
        .as_ref()
        .and_then(|s| s["tasks"].as_array().cloned())
        .unwrap_or_default();
    let status_of: HashMap<String, String> = tasks
        .iter()
        .filter_map(|t| {
            Some((
                t["id"].as_str()?.to_string(),
                t["status"].as_str()?.to_string(),
            ))
        })
        .collect();
    let list = |key: &str| -> Vec<Value> {
        scan.as_ref()
            .and_then(|s| s[key].as_array().cloned())
            .unwrap_or_default()
    };
    let problems = list("problems");
    let (waiting, ignored) = (list("issues"), list("issues_ignored"));
    let body = html! {
        p.muted {
            "From the last scan (" (when(scan.as_ref().and_then(|s| s["scanned_at"].as_str()))) ")"
            @if let Some(next) = scan.as_ref().map(|s| &s["next"]) { ". Next: " (next["reason"].as_str().unwrap_or("")) }
        }
        div.actions { (button(&viewer, &format!("/ui/repos/{}/{}/scan", repo.owner, repo.name), "Scan now")) }
        @if scan.is_none() { p { "This repo was not scanned yet." } }
        div.board {
            @for status in Status::ALL {
                @let column: Vec<&Value> = tasks.iter().filter(|t| t["status"].as_str() == Some(status.as_str())).collect();
                section aria-label=(status.as_str()) {
                    h2 { (status.as_str().replace('_', " ")) " " span.muted { "(" (column.len()) ")" } }
                    ul {
                        @for t in &column {
                            @let id = t["id"].as_str().unwrap_or("");
                            li id=(id) {
                                strong { (id) } " " (t["title"].as_str().unwrap_or(""))
                                div.muted { (t["type"].as_str().unwrap_or("")) " · " (t["priority"].as_str().unwrap_or("")) }
                                @let deps: Vec<&str> = t["depends_on"].as_array().map(|d| d.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
                                @if !deps.is_empty() {
                                    div.deps { "depends on: "
                                        @for (i, d) in deps.iter().enumerate() {
                                            @if i > 0 { ", " }
                                            @let done = status_of.get(*d).is_some_and(|s| s == "done");
                                            a href=(format!("#{d}")) class=[(!done).then_some("unmet")] { (d) }
                                            @if !done { " (" (status_of.get(*d).map(String::as_str).unwrap_or("missing")) ")" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if !waiting.is_empty() || !ignored.is_empty() {
            h2 { "Labelled issues" }
            ul {
                @for i in &waiting {
                    li { "#" (i["number"]) " " (i["title"].as_str().unwrap_or("")) span.muted { " by " (i["author"].as_str().unwrap_or("")) ": waits for the Developer" } }
                }
                @for i in &ignored {
                    li { "#" (i["number"]) span.muted { " " (i["why"].as_str().unwrap_or("")) } }
                }
            }
        }
        @if !problems.is_empty() {
            h2 { "Problems" }
            ul { @for p in &problems { li { code { (p["file"].as_str().unwrap_or("")) } ": " (p["message"].as_str().unwrap_or("")) } } }
        }
    };
    layout::page(
        &gaffer,
        &viewer,
        &format!("Tasks of {}", repo.full_name),
        "/ui/",
        body,
    )
}
