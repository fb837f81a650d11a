//! The NAT-friendly poller. One cycle looks at every repo that is not `disabled`: a
//! conditional request for its default branch's head (a rescan when it moved), one for its
//! open PRs (the Reviewer for each task PR with a new head SHA), and now and then one for
//! recently closed PRs (the Integrator for each newly merged task PR). Idle, every request
//! is answered 304 and costs nothing. `observe` repos are polled and reported, never acted
//! on. What was seen is stored, so a restart neither re-reviews nor re-integrates, and its
//! first cycle is still answered from the persisted ETags.
//!
//! Auto-merge (`.llm-team.yml` `workflow.auto_merge`): for each open task PR of gaffer's
//! own whose kind the repo opts in to (known from the stored scan, no call), the head's CI
//! state (conditional GETs); when it is green and the PR's (head, CI) was not judged yet,
//! the merge step. A repo with such a PR is polled over REST even when a GraphQL batch
//! shows it unchanged, since CI turning green moves no head.
//!
//! Before the REST calls, [`batch`] asks GraphQL which repos changed, a few points for
//! up to 100 repos a query; only those get REST calls (see `batch` for the fall-back).

pub mod batch;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::Serialize;

use crate::engine::{run_for_trigger, Job, Trigger};
use crate::error::{AppError, AppResult, ErrorKind};
use crate::forge::github::client::{Tally, TALLY};
use crate::forge::github::{PaceSnapshot, RateBudget};
use crate::forge::PullState;
use crate::registry::{FullName, Mode, Repo};
use crate::Gaffer;

/// Closed PRs are looked at every this many cycles (and whenever an open PR disappears).
const CLOSED_EVERY: i64 = 10;
/// Points one repo costs a cycle on average: its default branch head and its open PRs,
/// and its closed PRs one cycle in [`CLOSED_EVERY`] (GETs: one point each, 304 or not).
const POINTS_PER_REPO: f64 = 2.0 + 1.0 / CLOSED_EVERY as f64;
/// Points a `pr` repo's labelled issues and new comments cost when they are read.
const ISSUE_POINTS: f64 = 2.0;
/// The share of the points budget the poller plans to use; the rest is for the roles.
const POLL_SHARE: f64 = 0.8;

/// One repo's part of a cycle.
#[derive(Debug, Clone, Serialize)]
pub struct RepoPoll {
    pub repo: String,
    pub mode: Mode,
    pub requests: u64,
    pub not_modified: u64,
    pub units_spent: u64,
    pub actions: Vec<String>,
    pub errors: Vec<String>,
    /// The default branch moved or the open PRs changed.
    pub changed: bool,
    /// A task PR is open (work in flight).
    pub in_flight: bool,
    /// How the repo was looked at: `graphql` (a batch showed it unchanged, no REST call),
    /// `graphql+rest` (a batch showed a change, REST fetched it) or `rest` (REST only).
    pub detected_by: &'static str,
}

/// A whole cycle.
#[derive(Debug, Clone, Serialize)]
pub struct CycleReport {
    pub duration_ms: u64,
    pub repos: Vec<RepoPoll>,
    pub requests: u64,
    pub not_modified: u64,
    pub units_spent: u64,
    pub actions: usize,
    pub errors: usize,
    /// GitHub's last word on the token's budget.
    pub budget: Option<RateBudget>,
    /// The pace of requests against GitHub's secondary limits, at the cycle's end.
    pub pace: PaceSnapshot,
    /// A secondary limit was hit during this cycle and lowered the pace.
    pub pace_lowered: bool,
    /// How changes were detected: batched GraphQL or REST only, and why.
    pub detection: batch::Detection,
    /// When to poll again, and why.
    pub next_interval_secs: u64,
    pub next_interval_reason: String,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct PollMetrics {
    pub cycles: std::sync::atomic::AtomicU64,
    pub last_cycle_ms: std::sync::atomic::AtomicU64,
    pub errors: std::sync::atomic::AtomicU64,
    pub actions: std::sync::Mutex<BTreeMap<String, u64>>,
    /// GraphQL's standing (refused or not) and its counters.
    pub graphql: batch::GraphqlState,
}

/// One cycle over every active repo (or only `only`), at full bounded concurrency.
pub async fn poll_once(gaffer: &Gaffer, only: Option<&FullName>) -> AppResult<CycleReport> {
    cycle(gaffer, only, None, None).await
}

/// A cycle; with `spread`, repo starts are spread evenly over that time instead of bursting.
/// Once `stop` turns true, repos not started yet are skipped (those running finish).
async fn cycle(
    gaffer: &Gaffer,
    only: Option<&FullName>,
    spread: Option<Duration>,
    stop: Option<tokio::sync::watch::Receiver<bool>>,
) -> AppResult<CycleReport> {
    let Ok(_running) = gaffer.poll_cycle.try_lock() else {
        return Err(AppError::new(
            ErrorKind::Conflict,
            "a poll cycle is already running; try again when it ends",
        ));
    };
    let started = Instant::now();
    let lowered_before = gaffer.github.client().pace().lowered_total;
    let repos: Vec<Repo> = match only {
        Some(name) => {
            let repo = gaffer.registry.get(name).await?;
            crate::pipeline::ensure_enabled(&repo)?;
            vec![repo]
        }
        None => gaffer
            .registry
            .list()
            .await?
            .0
            .into_iter()
            .filter(|r| r.mode != Mode::Disabled)
            .collect(),
    };
    let polling = &gaffer.settings.polling;
    let intervals = Intervals {
        active: shortest(
            &repos,
            |r| r.overrides.poll_interval_active,
            polling.interval_active,
        ),
        idle: shortest(
            &repos,
            |r| r.overrides.poll_interval_idle,
            polling.interval_idle,
        ),
    };
    let concurrency = gaffer.settings.polling.concurrency;
    let (detection, verdicts) = batch::detect(gaffer, &repos).await;
    let batched = detection.mode != "rest";
    let mut skipped = Vec::new();
    // (repo, a batch showed it changed); the flag, not a `&str`, keeps the stream's
    // closure free of lifetimes (the loop's future must be `Send` for any of them).
    let mut to_poll: Vec<(Repo, bool)> = Vec::new();
    // Repos a batch found unchanged still get their issues and commands read.
    let mut issues_only: Vec<(Repo, RepoPoll)> = Vec::new();
    let reads_issues = |r: &Repo| reads_issues_now(gaffer, r);
    for repo in repos {
        match verdicts.get(&repo.full_name.to_ascii_lowercase()) {
            Some(batch::Verdict::Unchanged { in_flight: true })
                if auto_merging(gaffer, &repo).await.is_some() =>
            {
                // CI may have turned green without any head moving.
                to_poll.push((repo, true))
            }
            Some(batch::Verdict::Unchanged { in_flight }) => {
                let mut report = RepoPoll::new(&repo, "graphql");
                report.in_flight = *in_flight;
                if reads_issues(&repo) {
                    issues_only.push((repo, report));
                } else {
                    skipped.push(report);
                }
            }
            Some(batch::Verdict::Changed) => to_poll.push((repo, true)),
            None => to_poll.push((repo, false)),
        }
    }
    let issue_reports: Vec<RepoPoll> = futures_util::stream::iter(issues_only)
        .map(|(repo, mut report)| async move {
            if let Err(e) = poll_issues(gaffer, &repo, &mut report).await {
                report.errors.push(e.message);
            }
            report
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    skipped.extend(issue_reports);
    // Spread over the interval only when every repo is polled over REST: after a batch,
    // the few changed repos are fetched at once (the pace still holds).
    let spread = spread.filter(|_| !batched);
    let count = to_poll.len().max(1) as u32;
    let reports: Vec<RepoPoll> = futures_util::stream::iter(to_poll.into_iter().enumerate())
        .map(|(i, (repo, after_batch)): (usize, (Repo, bool))| {
            let mut stop = stop.clone();
            async move {
                if let Some(spread) = spread {
                    let start =
                        tokio::time::sleep_until((started + spread / count * i as u32).into());
                    match &mut stop {
                        Some(stop) => {
                            tokio::select! {
                                _ = start => {}
                                _ = stop.changed() => {}
                            }
                        }
                        None => start.await,
                    }
                }
                if stop.as_ref().is_some_and(|s| *s.borrow()) {
                    return None;
                }
                let tally = Arc::new(Tally::default());
                let mut report = TALLY
                    .scope(Arc::clone(&tally), poll_repo(gaffer, &repo))
                    .await;
                report.detected_by = if after_batch { "graphql+rest" } else { "rest" };
                report.requests = tally.requests.load(Ordering::Relaxed);
                report.not_modified = tally.not_modified.load(Ordering::Relaxed);
                report.units_spent = tally.units_spent.load(Ordering::Relaxed);
                Some(report)
            }
        })
        .buffer_unordered(concurrency)
        .filter_map(|report| async move { report })
        .collect()
        .await;
    let mut reports = reports;
    reports.extend(skipped);
    reports.sort_by(|a, b| a.repo.cmp(&b.repo));
    let metrics = &gaffer.poll_metrics;
    metrics.cycles.fetch_add(1, Ordering::Relaxed);
    let duration_ms = started.elapsed().as_millis() as u64;
    metrics.last_cycle_ms.store(duration_ms, Ordering::Relaxed);
    let errors: usize = reports.iter().map(|r| r.errors.len()).sum();
    metrics.errors.fetch_add(errors as u64, Ordering::Relaxed);
    {
        let mut by_role = metrics.actions.lock().expect("metrics lock");
        for action in reports.iter().flat_map(|r| &r.actions) {
            let role = action.split(':').next().unwrap_or("other").to_string();
            *by_role.entry(role).or_default() += 1;
        }
    }
    let budget = gaffer.github.client().budget();
    let pace = gaffer.github.client().pace();
    let (next, reason) = next_interval(gaffer, &intervals, &reports, budget.as_ref());
    let over_rest = reports
        .iter()
        .filter(|r| r.detected_by != "graphql")
        .count();
    let every = gaffer.settings.polling.issues_every;
    let issue_points = if every == 0 {
        0.0
    } else {
        let readers = reports.iter().filter(|r| r.mode == Mode::Pr).count();
        readers as f64 * ISSUE_POINTS / f64::from(every)
    };
    let (next, reason) = within_pace(
        next,
        reason,
        over_rest,
        issue_points,
        pace.points_per_minute,
    );
    let (next, reason) = within_graphql_budget(next, reason, &detection);
    Ok(CycleReport {
        duration_ms,
        requests: reports.iter().map(|r| r.requests).sum(),
        not_modified: reports.iter().map(|r| r.not_modified).sum(),
        units_spent: reports.iter().map(|r| r.units_spent).sum(),
        actions: reports.iter().map(|r| r.actions.len()).sum(),
        errors,
        repos: reports,
        budget,
        pace_lowered: pace.lowered_total > lowered_before,
        pace,
        detection,
        next_interval_secs: next.as_secs(),
        next_interval_reason: reason,
    })
}

/// The pace of the next cycle: one cycle covers every repo, so the shortest interval any
/// repo asks for (its `overrides.poll_interval_*`, else the global setting) wins.
struct Intervals {
    active: Duration,
    idle: Duration,
}

fn shortest(repos: &[Repo], own: impl Fn(&Repo) -> Option<u64>, global: Duration) -> Duration {
    repos
        .iter()
        .map(|r| own(r).map(Duration::from_secs).unwrap_or(global))
        .min()
        .unwrap_or(global)
}

/// Active while anything changed or is in flight, idle otherwise, and no sooner than the
/// budget's reset when it is under `MIN_REMAINING_BUDGET`.
fn next_interval(
    gaffer: &Gaffer,
    intervals: &Intervals,
    reports: &[RepoPoll],
    budget: Option<&RateBudget>,
) -> (Duration, String) {
    let polling = &gaffer.settings.polling;
    let now = crate::forge::github::budget::unix_now();
    if let Some(reset) =
        budget.and_then(|b| b.exhausted_until(u64::from(polling.min_remaining_budget), now))
    {
        return (
            Duration::from_secs(reset - now + 1),
            format!("budget under MIN_REMAINING_BUDGET: waiting for the reset at {reset}"),
        );
    }
    if reports.iter().any(|r| r.changed || !r.actions.is_empty()) {
        (intervals.active, "something changed this cycle".into())
    } else if reports.iter().any(|r| r.in_flight) {
        (intervals.active, "task PRs are open".into())
    } else {
        (
            intervals.idle,
            "nothing changed and nothing is in flight".into(),
        )
    }
}

/// Never sooner than the points budget sustains: `repos` x [`POINTS_PER_REPO`] points a
/// cycle, plus `issue_points` (issue and comment reads, on average), within [`POLL_SHARE`]
/// of `points_per_minute` (the pace in force, lower after a secondary limit; 0: no limit).
fn within_pace(
    next: Duration,
    reason: String,
    repos: usize,
    issue_points: f64,
    points_per_minute: u32,
) -> (Duration, String) {
    if points_per_minute == 0 || (repos == 0 && issue_points == 0.0) {
        return (next, reason);
    }
    let points = repos as f64 * POINTS_PER_REPO + issue_points;
    let per_minute = f64::from(points_per_minute) * POLL_SHARE;
    let floor = Duration::from_secs((points / per_minute * 60.0).ceil() as u64);
    if floor <= next {
        return (next, reason);
    }
    (
        floor,
        format!(
            "{reason}; no sooner than {}s: {repos} repos x {POINTS_PER_REPO} points a cycle \
             (+{issue_points:.1} for issues and comments) within {:.0} of the \
             {points_per_minute} points a minute (the rest is for the roles)",
            floor.as_secs(),
            per_minute
        ),
    )
}

/// GraphQL's hourly budget when GitHub has not said it yet (github.com: 5,000 points).
const GRAPHQL_POINTS_PER_HOUR: u64 = 5000;

/// Never sooner than GraphQL's budgets sustain the cycle's queries: its points per minute
/// (`GITHUB_GRAPHQL_POINTS_PER_MINUTE`, the pace in force) and its points per hour (the
/// `graphql` resource's limit, as GitHub last said), each within [`POLL_SHARE`].
fn within_graphql_budget(
    next: Duration,
    reason: String,
    detection: &batch::Detection,
) -> (Duration, String) {
    if detection.queries == 0 {
        return (next, reason);
    }
    let per_minute = f64::from(detection.graphql_pace.points_per_minute) * POLL_SHARE;
    let per_hour = detection
        .graphql_budget
        .as_ref()
        .and_then(|b| b.limit)
        .unwrap_or(GRAPHQL_POINTS_PER_HOUR) as f64
        * POLL_SHARE;
    // The pace charges each query at least one point.
    let paced = detection.graphql_points.max(detection.queries) as f64;
    let minute_floor = if per_minute > 0.0 {
        paced / per_minute * 60.0
    } else {
        0.0
    };
    let hour_floor = detection.graphql_points as f64 / per_hour.max(1.0) * 3600.0;
    let floor = Duration::from_secs(minute_floor.max(hour_floor).ceil() as u64);
    if floor <= next {
        return (next, reason);
    }
    (
        floor,
        format!(
            "{reason}; no sooner than {}s: {} GraphQL points a cycle within {:.0} a minute and \
             {:.0} an hour",
            floor.as_secs(),
            detection.graphql_points,
            per_minute,
            per_hour
        ),
    )
}

impl RepoPoll {
    fn new(repo: &Repo, detected_by: &'static str) -> RepoPoll {
        RepoPoll {
            repo: repo.full_name.clone(),
            mode: repo.mode,
            requests: 0,
            not_modified: 0,
            units_spent: 0,
            actions: Vec::new(),
            errors: Vec::new(),
            changed: false,
            in_flight: false,
            detected_by,
        }
    }
}

/// One repo: never fails the cycle; errors are reported in its line.
pub async fn poll_repo(gaffer: &Gaffer, repo: &Repo) -> RepoPoll {
    let mut report = RepoPoll::new(repo, "rest");
    if let Err(e) = poll_repo_inner(gaffer, repo, &mut report).await {
        report.errors.push(e.message);
    }
    if reads_issues_now(gaffer, repo) {
        if let Err(e) = poll_issues(gaffer, repo, &mut report).await {
            report.errors.push(e.message);
        }
    }
    if !report.actions.is_empty() {
        let summary = format!("poll: {}", report.actions.join("; "));
        if let Err(e) = gaffer
            .store
            .add_event(&repo.full_name(), "poll", &summary)
            .await
        {
            report.errors.push(e.message);
        }
    }
    report
}

async fn poll_repo_inner(gaffer: &Gaffer, repo: &Repo, report: &mut RepoPoll) -> AppResult<()> {
    let name = repo.full_name();
    let forge = gaffer.forge(repo);
    let mut state = gaffer.store.poll_state(&name).await?;
    state.cycles += 1;
    let acting = repo.mode == Mode::Pr;

    // The default branch: a rescan when it moved (new or changed tasks).
    // The first sighting only records the head: a rescan of every repo on a cold start
    // would cost more than a token's hourly budget at a thousand repos.
    let head = forge.branch_sha(&name, &repo.default_branch).await?;
    // A merge moves the default branch: look at closed PRs then too, so a PR opened and
    // merged between two cycles (never seen open) is integrated.
    let moved = head.is_some() && state.default_sha.is_some() && head != state.default_sha;
    if head.is_some() && head != state.default_sha {
        report.changed = true;
        if state.default_sha.is_some() {
            // Moved (a merge, new tasks): decide and, in pr mode, queue the next step.
            let (reason, run) = crate::engine::drive(gaffer, repo, Trigger::Poll).await?;
            let queued = run
                .map(|id| format!(" (run {id} queued)"))
                .unwrap_or_default();
            report.actions.push(format!(
                "scan: {} moved, next: {reason}{queued}",
                repo.default_branch
            ));
        } else if acting {
            // A repo seen for the first time in pr mode: decide its first step.
            let (reason, run) = crate::engine::drive(gaffer, repo, Trigger::Poll).await?;
            let queued = run
                .map(|id| format!(" (run {id} queued)"))
                .unwrap_or_default();
            report
                .actions
                .push(format!("first sighting: next: {reason}{queued}"));
        }
        state.default_sha = head;
    }

    // Open PRs: a review for each task PR whose head is new.
    let open = forge.list_pulls(&name, PullState::Open).await?;
    let vanished = state
        .open_heads
        .keys()
        .any(|n| !open.iter().any(|p| p.number == *n));
    let mut heads = BTreeMap::new();
    for pull in &open {
        let seen = state.open_heads.get(&pull.number);
        if seen != Some(&pull.head_sha) {
            report.changed = true;
        }
        if !crate::webhook::looks_like_task_branch(&pull.head_ref) {
            heads.insert(pull.number, pull.head_sha.clone());
            continue;
        }
        report.in_flight = true;
        let new_head = seen != Some(&pull.head_sha);
        if new_head
            && !gaffer
                .store
                .was_reviewed(&name, pull.number, &pull.head_sha)
                .await?
        {
            if acting {
                let job = Job::Reviewer(Some(pull.number));
                match run_for_trigger(gaffer, repo, job, Trigger::Poll).await {
                    Ok(summary) => report.actions.push(summary),
                    Err(e) => {
                        // Not remembered as seen: the next cycle tries again.
                        report
                            .errors
                            .push(format!("PR #{}: {}", pull.number, e.message));
                        if let Some(old) = seen {
                            heads.insert(pull.number, old.clone());
                        }
                        continue;
                    }
                }
            } else {
                report.actions.push(format!(
                    "observe: PR #{} has an unreviewed head {} (not acted on)",
                    pull.number,
                    short(&pull.head_sha)
                ));
            }
        }
        heads.insert(pull.number, pull.head_sha.clone());
    }
    if vanished {
        report.changed = true;
    }
    state.open_heads = heads;
    if acting && report.in_flight {
        // A failure here (CI status unreadable) must not lose the heads seen this cycle.
        if let Err(e) = consider_merges(gaffer, repo, &open, state.cycles, report).await {
            report.errors.push(format!("auto-merge: {}", e.message));
        }
    }

    // Recently closed PRs: the Integrator for each newly merged task PR.
    if vanished || moved || state.cycles % CLOSED_EVERY == 1 {
        for pull in forge.list_pulls(&name, PullState::Closed).await? {
            if !crate::webhook::looks_like_task_branch(&pull.head_ref)
                || gaffer.store.closed_seen(&name, pull.number).await?
            {
                continue;
            }
            if pull.is_merged() {
                if acting {
                    let job = Job::Integrator(Some(pull.number));
                    match run_for_trigger(gaffer, repo, job, Trigger::Poll).await {
                        Ok(summary) => report.actions.push(summary),
                        Err(e) => {
                            report
                                .errors
                                .push(format!("PR #{}: {}", pull.number, e.message));
                            continue;
                        }
                    }
                } else {
                    report.actions.push(format!(
                        "observe: PR #{} was merged (not acted on)",
                        pull.number
                    ));
                }
            }
            gaffer.store.mark_closed_seen(&name, pull.number).await?;
        }
    }
    gaffer
        .store
        .save_poll_state(&name, &state, report.changed)
        .await?;
    Ok(())
}

/// Whether this cycle reads `repo`'s labelled issues and commands: `pr` repos, one cycle
/// in `POLL_ISSUES_EVERY` (the first cycle of a process included).
fn reads_issues_now(gaffer: &Gaffer, repo: &Repo) -> bool {
    let every = u64::from(gaffer.settings.polling.issues_every);
    every > 0
        && repo.mode == Mode::Pr
        && gaffer
            .poll_metrics
            .cycles
            .load(Ordering::Relaxed)
            .is_multiple_of(every)
}

/// Issues labelled for gaffer and `/gaffer` commands in comments, for set-ups without
/// webhooks: two conditional GETs (a 304 when nothing changed). A new labelled issue is
/// taken as a webhook would take it; each command comment is obeyed once (the store
/// remembers it), whichever path saw it first. The first cycle only notes where the
/// comment listing stands: older comments are history, not commands.
async fn poll_issues(gaffer: &Gaffer, repo: &Repo, report: &mut RepoPoll) -> AppResult<()> {
    let name = repo.full_name();
    let forge = gaffer.forge(repo);
    for issue in forge
        .list_issues(&name, &repo.overrides.labels.trigger)
        .await?
    {
        if gaffer
            .store
            .issue_work(&repo.full_name, issue.number)
            .await?
            .is_some()
        {
            continue;
        }
        let verdict = crate::issues::on_labeled(
            gaffer,
            repo,
            issue.number,
            &issue.author,
            issue.author_association.as_deref(),
            Trigger::Poll,
        )
        .await?;
        report.actions.push(verdict);
    }
    let Some(since) = gaffer.store.comment_cursor(&repo.full_name).await? else {
        // The forge's own clock (no skew with ours): after the newest comment there is.
        let start = forge
            .newest_comment_at(&name)
            .await?
            .unwrap_or_else(|| "1970-01-01T00:00:00Z".into());
        return gaffer
            .store
            .set_comment_cursor(&repo.full_name, &start)
            .await;
    };
    let mut newest = since.clone();
    for thread in forge.comments_since(&name, &since).await? {
        let comment = thread.comment;
        if comment.updated_at > newest {
            newest = comment.updated_at.clone();
        }
        if crate::issues::commands::parse(&comment.body).is_none() {
            continue;
        }
        let event = crate::issues::commands::CommentEvent {
            number: thread.number,
            is_pull: thread.on_pull,
            comment_id: comment.id,
            author: comment.author,
            association: comment.author_association,
            body: comment.body,
        };
        let verdict = crate::issues::commands::obey(gaffer, repo, &event).await?;
        if !verdict.contains("obeyed already") && !verdict.contains("gaffer's own") {
            report.actions.push(verdict);
        }
    }
    if newest != since {
        gaffer
            .store
            .set_comment_cursor(&repo.full_name, &newest)
            .await?;
    }
    Ok(())
}

/// What the poller last judged for auto-merge: `(repo, PR)` -> `head|CI|epoch`.
#[derive(Debug, Default)]
pub struct MergeJudged(std::sync::Mutex<std::collections::HashMap<(String, u64), String>>);

impl MergeJudged {
    /// Whether `key` is new for the PR (and remembers it).
    fn fresh(&self, repo: &str, pr: u64, key: &str) -> bool {
        let mut seen = self.0.lock().expect("merge memory");
        let entry = seen.entry((repo.to_ascii_lowercase(), pr)).or_default();
        if entry == key {
            return false;
        }
        *entry = key.to_string();
        true
    }

    /// Forgets the PR's judgement (the merge step failed: try again next cycle).
    fn forget(&self, repo: &str, pr: u64) {
        let mut seen = self.0.lock().expect("merge memory");
        seen.remove(&(repo.to_ascii_lowercase(), pr));
    }
}

/// The repo's `workflow.auto_merge` kinds and branch prefix, from its stored scan (no
/// call); `None` when it auto-merges nothing (or was never scanned).
async fn auto_merging(gaffer: &Gaffer, repo: &Repo) -> Option<(Vec<String>, String)> {
    let text = gaffer.store.last_scan(&repo.full_name()).await.ok()??;
    let scan: serde_json::Value = serde_json::from_str(&text).ok()?;
    let kinds: Vec<String> = scan["config"]["auto_merge"]
        .as_array()?
        .iter()
        .filter_map(|k| k.as_str().map(str::to_string))
        .collect();
    let prefix = scan["config"]["branch_prefix"].as_str()?.to_string();
    (!kinds.is_empty()).then_some((kinds, prefix))
}

/// The merge step for open task PRs of gaffer's own, of a kind the repo auto-merges, whose
/// head's CI is green, once per (head, CI state) and again every [`CLOSED_EVERY`] cycles
/// (a review lifted, GitHub done computing mergeability). Pending or failing CI costs only
/// the status GETs (answered 304 while nothing changes).
async fn consider_merges(
    gaffer: &Gaffer,
    repo: &Repo,
    open: &[crate::forge::PullRequest],
    cycles: i64,
    report: &mut RepoPoll,
) -> AppResult<()> {
    let Some((kinds, prefix)) = auto_merging(gaffer, repo).await else {
        return Ok(());
    };
    let name = repo.full_name();
    let forge = gaffer.forge(repo);
    let Ok(me) = forge.identity().await else {
        return Ok(());
    };
    for pull in open {
        let Some((kind, _)) = crate::team::classify_branch(&prefix, &pull.head_ref) else {
            continue;
        };
        let opted = kinds
            .iter()
            .any(|k| k == crate::roles::merge_rules::kind_of(kind).as_str());
        if !opted || !pull.author.eq_ignore_ascii_case(&me) {
            continue;
        }
        let ci = forge.ci_status(&name, &pull.head_sha).await?;
        if ci.state != crate::forge::CiState::Success {
            continue;
        }
        let key = format!("{}|success|{}", pull.head_sha, cycles / CLOSED_EVERY);
        if !gaffer
            .merge_judged
            .fresh(&repo.full_name, pull.number, &key)
        {
            continue;
        }
        match run_for_trigger(gaffer, repo, Job::Merge(pull.number), Trigger::Poll).await {
            Ok(summary) => report.actions.push(summary),
            Err(e) => {
                gaffer.merge_judged.forget(&repo.full_name, pull.number);
                report
                    .errors
                    .push(format!("PR #{}: {}", pull.number, e.message));
            }
        }
    }
    Ok(())
}

/// The background loop (`POLLING_ENABLED=true`): cycles spread over the interval, never
/// overlapping, until `shutdown` says stop.
pub async fn run_loop(gaffer: Arc<Gaffer>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut interval = gaffer.settings.polling.interval_active;
    loop {
        let started = Instant::now();
        let spread = interval.mul_f64(0.8);
        let outcome = cycle(&gaffer, None, Some(spread), Some(shutdown.clone())).await;
        if *shutdown.borrow() {
            break;
        }
        match outcome {
            Ok(report) => {
                tracing::info!(
                    duration_ms = report.duration_ms,
                    requests = report.requests,
                    not_modified = report.not_modified,
                    units = report.units_spent,
                    actions = report.actions,
                    errors = report.errors,
                    detection = report.detection.mode,
                    graphql_points = report.detection.graphql_points,
                    unchanged = report.detection.unchanged,
                    fallback = report.detection.fallback.as_deref().unwrap_or("none"),
                    next_s = report.next_interval_secs,
                    "poll cycle: {}",
                    report.next_interval_reason
                );
                interval = Duration::from_secs(report.next_interval_secs);
            }
            Err(e) if e.kind == ErrorKind::Conflict => {}
            Err(e) => tracing::error!(error = %e, "poll cycle failed"),
        }
        let wake = started + interval;
        tokio::select! {
            _ = tokio::time::sleep_until(wake.into()) => {}
            _ = shutdown.changed() => break,
        }
    }
    tracing::info!("poller stopped");
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(7)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_never_outpaces_the_points_budget() {
        let minute = Duration::from_secs(60);
        // 100 repos: 210 points a cycle, well within 720 of 900 a minute.
        let (next, reason) = within_pace(minute, "active".into(), 100, 0.0, 900);
        assert_eq!((next, reason.as_str()), (minute, "active"));
        // 1,000 repos: 2,100 points a cycle at 720 a minute take 175 s; reading the
        // issues of all of them one cycle in five (400 points more) 209 s.
        let (next, reason) = within_pace(minute, "active".into(), 1000, 0.0, 900);
        assert_eq!(next, Duration::from_secs(175));
        assert!(
            reason.starts_with("active; no sooner than 175s: 1000 repos"),
            "{reason}"
        );
        let (next, _) = within_pace(minute, "active".into(), 1000, 400.0, 900);
        assert_eq!(next, Duration::from_secs(209));
        // 10,000 repos: 29 minutes and more, whatever the setting asks.
        let (next, _) = within_pace(Duration::from_secs(300), "idle".into(), 10_000, 0.0, 900);
        assert_eq!(next, Duration::from_secs(1750));
        // A lowered pace (a secondary limit was hit) stretches the interval.
        let (next, _) = within_pace(minute, "active".into(), 1000, 0.0, 450);
        assert_eq!(next, Duration::from_secs(350));
        // Never shorter than asked, and no limit at all when pacing is off.
        let long = Duration::from_secs(3600);
        assert_eq!(within_pace(long, "idle".into(), 1000, 0.0, 900).0, long);
        assert_eq!(
            within_pace(minute, "active".into(), 10_000, 0.0, 0).0,
            minute
        );
        assert_eq!(within_pace(minute, "active".into(), 0, 0.0, 900).0, minute);
    }

    #[test]
    fn the_interval_never_outpaces_graphqls_budgets() {
        let detection =
            |queries: u64, points: u64, per_minute: u32, per_hour: Option<u64>| batch::Detection {
                mode: "graphql",
                fallback: None,
                queries,
                graphql_points: points,
                unchanged: 0,
                polled_over_rest: 0,
                graphql_pace: PaceSnapshot {
                    configured_points_per_minute: per_minute,
                    points_per_minute: per_minute,
                    lowered: false,
                    lowered_total: 0,
                    points_last_minute: 0,
                    max_concurrency: 20,
                },
                graphql_budget: per_hour.map(|limit| RateBudget {
                    resource: "graphql".into(),
                    limit: Some(limit),
                    ..RateBudget::default()
                }),
            };
        let half = Duration::from_secs(30);
        // 1,000 repos at 50 a query: 20 points, 18 s of the hourly 5,000 (80%): 30 s holds.
        let (next, reason) =
            within_graphql_budget(half, "idle".into(), &detection(20, 20, 2000, None));
        assert_eq!((next, reason.as_str()), (half, "idle"));
        // 10,000 repos: 200 points a cycle, 180 s; at 100 a query, 90 s.
        let (next, reason) =
            within_graphql_budget(half, "idle".into(), &detection(200, 200, 2000, Some(5000)));
        assert_eq!(next, Duration::from_secs(180));
        assert!(reason.contains("200 GraphQL points a cycle"), "{reason}");
        let (next, _) =
            within_graphql_budget(half, "idle".into(), &detection(100, 100, 2000, Some(5000)));
        assert_eq!(next, Duration::from_secs(90));
        // The per-minute pace binds when it is the smaller (a lowered or configured pace).
        let (next, _) = within_graphql_budget(half, "idle".into(), &detection(20, 20, 10, None));
        assert_eq!(next, Duration::from_secs(150));
        // No query: nothing to bound; pacing off: only the hourly budget.
        assert_eq!(
            within_graphql_budget(half, "x".into(), &detection(0, 0, 2000, None)).0,
            half
        );
        let (next, _) = within_graphql_budget(half, "x".into(), &detection(200, 200, 0, None));
        assert_eq!(next, Duration::from_secs(180));
    }
}
