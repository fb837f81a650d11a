//! `/poll/once`, `/repos/{id}/poll` and `/metrics`.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::{ApiAuth, RepoKey};
use crate::error::AppError;
use crate::registry::FullName;
use crate::{poller, Gaffer};

/// `?repo=owner/name` limits a cycle to one repo.
#[derive(Deserialize)]
pub struct PollQuery {
    pub repo: Option<String>,
}

#[utoipa::path(post, path = "/poll/once", tag = "poller",
    params(("repo" = Option<String>, Query, description = "only this repo")),
    responses((status = 200, description = "per-repo summary (detected_by), budget, pace, detection (GraphQL or REST, and why) and next_interval"), (status = 401), (status = 404), (status = 409, description = "a cycle is running")))]
pub async fn once(
    _auth: ApiAuth,
    gaffer: web::Data<Gaffer>,
    query: web::Query<PollQuery>,
) -> Result<HttpResponse, AppError> {
    let only = match &query.repo {
        Some(name) if name.contains('/') => Some(FullName::parse(name)?),
        Some(name) => Some(FullName::from_id(name)?),
        None => None,
    };
    Ok(HttpResponse::Ok().json(poller::poll_once(&gaffer, only.as_ref()).await?))
}

#[utoipa::path(post, path = "/repos/{owner}/{name}/poll", tag = "poller",
    params(("owner" = String, Path), ("name" = String, Path)),
    responses((status = 200, description = "one cycle for one repo"), (status = 401), (status = 404), (status = 409)))]
pub async fn repo(
    _auth: ApiAuth,
    gaffer: web::Data<Gaffer>,
    key: RepoKey,
) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(poller::poll_once(&gaffer, Some(&key.0)).await?))
}

#[utoipa::path(get, path = "/metrics", tag = "poller",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(gaffer: web::Data<Gaffer>) -> HttpResponse {
    let counters = gaffer.github.client().counters();
    let budget = gaffer.github.client().budget();
    let pace = gaffer.github.client().pace();
    let poll = &gaffer.poll_metrics;
    let delivery_counts = gaffer.store.delivery_counts().await.unwrap_or_default();
    let run_totals = gaffer.store.run_totals().await.unwrap_or_default();
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, f64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let one = |v: u64| vec![(String::new(), v as f64)];
    metric(
        "gaffer_github_requests_total",
        "counter",
        "REST requests sent to GitHub (GraphQL queries: gaffer_poll_graphql_queries_total).",
        &one(counters.requests),
    );
    metric(
        "gaffer_github_not_modified_total",
        "counter",
        "Conditional requests answered 304 (free).",
        &one(counters.not_modified),
    );
    metric(
        "gaffer_github_units_spent_total",
        "counter",
        "Requests that cost rate-limit budget.",
        &one(counters.units_spent),
    );
    metric(
        "gaffer_github_retries_total",
        "counter",
        "Retries after 5xx, timeouts or connection errors.",
        &one(counters.retries),
    );
    metric(
        "gaffer_github_secondary_waits_total",
        "counter",
        "Waits imposed by secondary rate limits.",
        &one(counters.secondary_waits),
    );
    metric(
        "gaffer_github_refused_for_budget_total",
        "counter",
        "Calls not made: budget under MIN_REMAINING_BUDGET.",
        &one(counters.refused_for_budget),
    );
    metric(
        "gaffer_github_pace_points_per_minute",
        "gauge",
        "Points per minute the client paces requests to (lowered after a secondary limit; 0: off).",
        &one(u64::from(pace.points_per_minute)),
    );
    metric(
        "gaffer_github_pace_points_last_minute",
        "gauge",
        "Points spent against the secondary limit in the last minute.",
        &one(u64::from(pace.points_last_minute)),
    );
    metric(
        "gaffer_github_pace_lowered_total",
        "counter",
        "Times a secondary limit lowered the pace.",
        &one(pace.lowered_total),
    );
    if let Some(b) = &budget {
        metric(
            "gaffer_github_budget_remaining",
            "gauge",
            "Rate-limit budget left, as GitHub last said.",
            &one(b.remaining.unwrap_or(0)),
        );
        metric(
            "gaffer_github_budget_reset_timestamp_seconds",
            "gauge",
            "When the budget resets (Unix time).",
            &one(b.reset.unwrap_or(0)),
        );
    }
    let graphql_pace = gaffer.github.client().graphql_pace();
    metric(
        "gaffer_github_graphql_pace_points_per_minute",
        "gauge",
        "GraphQL points per minute the client paces queries to (its own budget; 0: off).",
        &one(u64::from(graphql_pace.points_per_minute)),
    );
    metric(
        "gaffer_github_graphql_pace_points_last_minute",
        "gauge",
        "GraphQL points spent in the last minute.",
        &one(u64::from(graphql_pace.points_last_minute)),
    );
    metric(
        "gaffer_github_graphql_pace_lowered_total",
        "counter",
        "Times a GraphQL secondary limit lowered its pace.",
        &one(graphql_pace.lowered_total),
    );
    if let Some(b) = gaffer.github.client().graphql_budget() {
        metric(
            "gaffer_github_graphql_budget_remaining",
            "gauge",
            "GraphQL points left this hour, as GitHub last said.",
            &one(b.remaining.unwrap_or(0)),
        );
    }
    let graphql = &poll.graphql;
    metric(
        "gaffer_poll_graphql_detection",
        "gauge",
        "1 when the last cycle found changed repos with GraphQL, 0 when it used REST only.",
        &one(graphql.last_cycle_batched.load(Ordering::Relaxed)),
    );
    metric(
        "gaffer_poll_graphql_available",
        "gauge",
        "0 while GraphQL is refused and the poller uses REST only (asked again later).",
        &one(u64::from(
            gaffer.settings.github.graphql && graphql.refused_now().is_none(),
        )),
    );
    metric(
        "gaffer_poll_graphql_queries_total",
        "counter",
        "GraphQL change-detection queries answered.",
        &one(graphql.queries.load(Ordering::Relaxed)),
    );
    metric(
        "gaffer_poll_graphql_points_total",
        "counter",
        "GraphQL points change detection cost, as GitHub counted them.",
        &one(graphql.points.load(Ordering::Relaxed)),
    );
    metric(
        "gaffer_poll_graphql_points_last_cycle",
        "gauge",
        "GraphQL points the last cycle cost.",
        &one(graphql.last_cycle_points.load(Ordering::Relaxed)),
    );
    metric(
        "gaffer_poll_graphql_fallbacks_total",
        "counter",
        "GraphQL batches refused or failed, whose repos were polled over REST.",
        &one(graphql.fallbacks.load(Ordering::Relaxed)),
    );
    metric(
        "gaffer_poll_graphql_unchanged_total",
        "counter",
        "Repos a GraphQL batch showed unchanged (no REST call).",
        &one(graphql.unchanged.load(Ordering::Relaxed)),
    );
    metric(
        "gaffer_poll_cycles_total",
        "counter",
        "Poll cycles run.",
        &one(poll.cycles.load(Ordering::Relaxed)),
    );
    metric(
        "gaffer_poll_cycle_duration_seconds",
        "gauge",
        "Duration of the last poll cycle.",
        &[(
            String::new(),
            poll.last_cycle_ms.load(Ordering::Relaxed) as f64 / 1000.0,
        )],
    );
    metric(
        "gaffer_poll_errors_total",
        "counter",
        "Per-repo errors in poll cycles.",
        &one(poll.errors.load(Ordering::Relaxed)),
    );
    let actions: Vec<(String, f64)> = poll
        .actions
        .lock()
        .expect("metrics lock")
        .iter()
        .map(|(role, n)| (format!("{{role=\"{role}\"}}"), *n as f64))
        .collect();
    metric(
        "gaffer_poll_actions_total",
        "counter",
        "Actions triggered by the poller, by role.",
        &actions,
    );
    let dead = delivery_counts
        .iter()
        .find(|(status, _)| status == "dead")
        .map_or(0, |(_, n)| *n);
    metric(
        "gaffer_webhook_deliveries",
        "gauge",
        "Webhook deliveries in the audit log, by status.",
        &delivery_counts
            .iter()
            .map(|(status, n)| (format!("{{status=\"{status}\"}}"), *n as f64))
            .collect::<Vec<_>>(),
    );
    metric(
        "gaffer_webhook_dead_letters",
        "gauge",
        "Deliveries out of attempts, waiting to be retried by hand.",
        &one(dead as u64),
    );
    metric(
        "gaffer_webhook_retries_total",
        "counter",
        "Delivery retries started (automatic and by hand).",
        &one(crate::webhook::retry::retries_total(&gaffer)),
    );
    metric(
        "gaffer_runs",
        "gauge",
        "Runs by role and state (queued, paused and running are the queue).",
        &run_totals
            .iter()
            .map(|(role, state, n, _)| {
                (format!("{{role=\"{role}\",state=\"{state}\"}}"), *n as f64)
            })
            .collect::<Vec<_>>(),
    );
    let queued: i64 = run_totals
        .iter()
        .filter(|(_, state, _, _)| state == "queued" || state == "paused")
        .map(|(_, _, n, _)| n)
        .sum();
    metric(
        "gaffer_run_queue_depth",
        "gauge",
        "Runs waiting to start.",
        &one(queued as u64),
    );
    let mut seconds: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
    for (role, _, _, secs) in &run_totals {
        *seconds.entry(role.as_str()).or_default() += secs;
    }
    let total: i64 = seconds.values().sum();
    metric(
        "gaffer_run_duration_seconds_total",
        "counter",
        "Time spent in finished runs, per role.",
        &seconds
            .iter()
            .map(|(role, secs)| (format!("{{role=\"{role}\"}}"), *secs as f64))
            .collect::<Vec<_>>(),
    );
    metric(
        "gaffer_run_time_share",
        "gauge",
        "Each role's share of all finished run time (a model-heavy role shows here).",
        &seconds
            .iter()
            .map(|(role, secs)| {
                (
                    format!("{{role=\"{role}\"}}"),
                    if total > 0 {
                        *secs as f64 / total as f64
                    } else {
                        0.0
                    },
                )
            })
            .collect::<Vec<_>>(),
    );
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(out)
}
