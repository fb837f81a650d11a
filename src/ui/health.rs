//! Deliveries and health: the doctor's checks (as `/health` runs them), the newest
//! webhook deliveries with their outcome, and the dead letters with a retry button.

use actix_web::{web, HttpRequest, HttpResponse};
use maud::html;

use super::auth;
use super::layout::{self, when};
use super::CsrfForm;
use crate::doctor::{self, Outcome};
use crate::store::Delivery;
use crate::Gaffer;

/// `GET /ui/health`.
pub async fn page(req: HttpRequest, gaffer: web::Data<Gaffer>) -> HttpResponse {
    let viewer = match auth::viewer(&req, &gaffer) {
        Ok(v) => v,
        Err(answer) => return *answer,
    };
    let report = doctor::run(&gaffer, false).await;
    let (recent, dead, failed) = match tokio::try_join!(
        gaffer.store.list_deliveries(None, None, 50),
        gaffer.store.list_deliveries(Some("dead"), None, 100),
        gaffer.store.list_deliveries(Some("failed"), None, 100),
    ) {
        Ok(lists) => lists,
        Err(e) => return layout::error(&e, "/ui/"),
    };
    let letters: Vec<&Delivery> = dead.iter().chain(&failed).collect();
    let body = html! {
        section.card {
            h2 { "Doctor" }
            p { @if report.ok { span.badge.outcome-ok { "ok" } " nothing gaffer needs is missing" }
                @else { span.badge.outcome-failure { "degraded" } " something gaffer needs is missing" }
                span.muted { " · version " (env!("CARGO_PKG_VERSION")) ", up " (gaffer.started_at.elapsed().as_secs()) " s" } }
            div.table-wrap { table.checks {
                thead { tr { th { "check" } th { "outcome" } th { "detail" } } }
                tbody { @for c in &report.checks {
                    @let outcome = match c.outcome { Outcome::Ok => "ok", Outcome::Warning => "warning", Outcome::Failure => "failure" };
                    tr { td { (c.name) } td { span class=(format!("badge outcome-{outcome}")) { (outcome) } }
                         td { (c.detail) @if let Some(fix) = &c.fix { div.muted { "fix: " (fix) } } } }
                } }
            } }
        }
        section.card id="dead-letters" {
            h2 { "Dead letters" }
            @if letters.is_empty() { p.muted { "None: every delivery was processed or is still being retried." } }
            @else {
                div.table-wrap { table {
                    thead { tr { th { "delivery" } th { "event" } th { "repo" } th { "status" } th { "why" } th { "" } } }
                    tbody { @for d in &letters { tr data-delivery=(d.id) {
                        td { code { (d.id) } } td { (event(d)) } td { (d.repo.clone().unwrap_or_default()) }
                        td { span class=(format!("badge status-{}", d.status)) { (d.status) } " " span.muted { (d.attempts) " attempts" } }
                        td { (d.verdict) }
                        td { form method="post" action=(format!("/ui/deliveries/{}/retry", auth::url_encode(&d.id))) {
                            input type="hidden" name="csrf" value=(viewer.csrf);
                            button type="submit" { "Retry" }
                        } }
                    } } }
                } }
            }
        }
        section.card {
            h2 { "Recent webhook deliveries" }
            @if recent.is_empty() { p.muted { "No delivery received yet." } }
            @else {
                div.table-wrap { table {
                    thead { tr { th { "received" } th { "event" } th { "repo" } th { "outcome" } th { "verdict" } } }
                    tbody { @for d in &recent { tr data-delivery=(d.id) {
                        td { (when(Some(&d.received_at))) } td { (event(d)) } td { (d.repo.clone().unwrap_or_default()) }
                        td { span class=(format!("badge status-{}", d.status)) { (d.status) } }
                        td { (d.verdict) }
                    } } }
                } }
            }
        }
    };
    layout::page(&gaffer, &viewer, "Deliveries & health", "/ui/health", body)
}

fn event(d: &Delivery) -> String {
    match &d.action {
        Some(a) => format!("{}.{a}", d.event),
        None => d.event.clone(),
    }
}

/// `POST /ui/deliveries/{id}/retry`.
pub async fn retry_delivery(
    req: HttpRequest,
    gaffer: web::Data<Gaffer>,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    if let Err(refused) = auth::action(&req, &gaffer, &form.csrf) {
        return *refused;
    }
    match crate::webhook::retry::retry_in_background(gaffer.into_inner(), &id).await {
        Ok(_) => layout::see_other("/ui/health"),
        Err(e) => layout::error(&e, "/ui/health"),
    }
}
