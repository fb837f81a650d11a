//! The Models page: [`crate::stats`] as tables (overall and per repo, every column it
//! knows) and a small bar chart drawn by the server as inline SVG.

use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};
use serde::Deserialize;

use super::auth;
use super::layout;
use crate::registry::FullName;
use crate::stats::{self, ModelRow, COLUMNS};
use crate::Gaffer;

#[derive(Deserialize)]
pub struct ModelsQuery {
    pub repo: Option<String>,
}

/// `GET /ui/models`.
pub async fn page(
    req: HttpRequest,
    gaffer: web::Data<Gaffer>,
    query: web::Query<ModelsQuery>,
) -> HttpResponse {
    let viewer = match auth::viewer(&req, &gaffer) {
        Ok(v) => v,
        Err(answer) => return *answer,
    };
    let repo = match query
        .repo
        .as_deref()
        .filter(|r| !r.is_empty())
        .map(FullName::parse)
    {
        Some(Err(e)) => return layout::error(&e, "/ui/models"),
        Some(Ok(r)) => Some(r),
        None => None,
    };
    let report = match stats::model_stats(&gaffer.store, repo.as_ref()).await {
        Ok(r) => r,
        Err(e) => return layout::error(&e, "/ui/"),
    };
    let body = html! {
        p.muted { "Counted from what gaffer recorded: model calls, Developer runs, and the task PRs that were merged. The same figures: "
            code { "GET /stats/models" } ", " code { "gaffer stats" } "." }
        @if report.overall.is_empty() { p { "Nothing recorded yet: no model was called and no Developer run finished." } }
        @else {
            section.card {
                h2 { "All repos" }
                (chart("all repos", &report.overall))
                (table(&report.overall))
            }
        }
        @for repo in &report.repos {
            section.card {
                h2 { (repo.repo) }
                (chart(&repo.repo, &repo.models))
                (table(&repo.models))
            }
        }
        details { summary { "What each column counts" }
            dl.facts { @for c in COLUMNS { dt { (c.label) } dd { (c.about) } } }
        }
    };
    layout::page(&gaffer, &viewer, "Models", "/ui/models", body)
}

fn cell(value: Option<i64>) -> String {
    value.map_or_else(|| "—".to_string(), |v| v.to_string())
}

fn table(rows: &[ModelRow]) -> Markup {
    // Only the columns something in this scope recorded.
    let shown: Vec<_> = COLUMNS
        .iter()
        .filter(|c| rows.iter().any(|r| r.get(c.key).is_some()))
        .collect();
    html! {
        div.table-wrap { table.models {
            thead { tr {
                th { "model" } th { "roles" }
                @for c in &shown { th.num title=(c.about) { (c.label) } }
                @if shown.iter().any(|c| c.key == "replies_well_formed") { th.num { "well-formed %" } }
                @if shown.iter().any(|c| c.key == "prs_opened") { th.num { "PR %" } }
            } }
            tbody { @for r in rows { tr {
                td { code { (r.model) } } td { (r.roles.join(", ")) }
                @for c in &shown { td.num { (cell(r.get(c.key))) } }
                @if shown.iter().any(|c| c.key == "replies_well_formed") {
                    @let replies = r.get("replies_well_formed").zip(r.get("replies_malformed")).map(|(a, b)| a + b);
                    td.num { (stats::percent(r.get("replies_well_formed"), replies).map_or("—".to_string(), |p| format!("{p}%"))) }
                }
                @if shown.iter().any(|c| c.key == "prs_opened") {
                    td.num { (stats::percent(r.get("prs_opened"), r.get("developer_runs")).map_or("—".to_string(), |p| format!("{p}%"))) }
                }
            } } }
        } }
    }
}

/// Horizontal grouped bars: Developer runs, PRs opened and merged per model, or model
/// calls and failed calls where no Developer ran.
fn chart(scope: &str, rows: &[ModelRow]) -> Markup {
    let developer = rows.iter().any(|r| r.get("developer_runs").is_some());
    let series: &[(&str, &str)] = if developer {
        &[
            ("developer_runs", "developer runs"),
            ("prs_opened", "PRs opened"),
            ("merged", "merged"),
        ]
    } else {
        &[("calls", "model calls"), ("failed_calls", "failed calls")]
    };
    let max = rows
        .iter()
        .flat_map(|r| series.iter().filter_map(|(k, _)| r.get(k)))
        .max()
        .unwrap_or(0)
        .max(1);
    let label_w = 170.0;
    let bar_w = 300.0;
    let bar_h = 12.0;
    let group_h = bar_h * series.len() as f64 + 14.0;
    let height = group_h * rows.len() as f64 + 8.0;
    let width = label_w + bar_w + 50.0;
    let title = format!(
        "{} per model, {scope}",
        series
            .iter()
            .map(|(_, l)| *l)
            .collect::<Vec<_>>()
            .join(", ")
    );
    html! {
        figure {
            svg.chart role="img" aria-label=(title) viewBox=(format!("0 0 {width} {height}")) width=(width) height=(height) xmlns="http://www.w3.org/2000/svg" {
                title { (title) }
                @for (i, r) in rows.iter().enumerate() {
                    @let top = 4.0 + group_h * i as f64;
                    text x="0" y=(top + bar_h) { (short(&r.model)) }
                    @for (j, (key, label)) in series.iter().enumerate() {
                        @let value = r.get(key).unwrap_or(0);
                        @let w = bar_w * value as f64 / max as f64;
                        @let y = top + bar_h * j as f64;
                        rect class=(format!("b{}", j + 1)) x=(label_w) y=(y) width=(format!("{w:.1}")) height=(bar_h - 2.0) {
                            title { (label) ": " (value) }
                        }
                        text x=(format!("{:.1}", label_w + w + 4.0)) y=(y + bar_h - 2.0) { (value) }
                    }
                }
            }
            figcaption.legend {
                @for (j, (_, label)) in series.iter().enumerate() { span class=(format!("k{}", j + 1)) { "■ " (label) } }
            }
        }
    }
}

fn short(model: &str) -> String {
    if model.chars().count() > 24 {
        format!("{}…", model.chars().take(23).collect::<String>())
    } else {
        model.to_string()
    }
}
