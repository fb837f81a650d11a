//! The engine: every piece of role work is a durable *run* (`store::runs`), queued,
//! claimed with a lease, executed, and recorded with its progress and transcript. One run
//! per repo at a time; a worker in `gaffer serve` executes queued runs, while webhooks,
//! the poller, the CLI and `?wait=true` API calls execute theirs in place
//! ([`run_inline`]). After a run that changed something, [`drive`] asks the pipeline's
//! decision for the next step and enqueues it, so a `pr` repo moves on by itself.
//!
//! Crash safety: a run's lease is renewed while it runs; a run whose lease ran out (its
//! process died) is queued again, and role steps are idempotent, so the retry finds what
//! the dead attempt did. A watchdog fails a run that shows no progress for
//! `RUN_STALL_TIMEOUT`.

pub mod transcript;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::Notify;

use crate::error::{AppError, AppResult, ErrorKind};
use crate::registry::{FullName, Mode, Repo};
use crate::roles::{self, Action, Outcome};
use crate::store::{NewRun, RunRecord};
use crate::team::task::TaskId;
use crate::Gaffer;

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// What a run does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    Taskmaster,
    /// `None`: the task work-next picks.
    Developer(Option<TaskId>),
    /// `None`: every open task PR with an unreviewed head.
    Reviewer(Option<u64>),
    /// `None`: what work-next finds merged.
    Integrator(Option<u64>),
    /// The Developer's next round on its PR's feedback (review, CI, `/gaffer fix`).
    Fix(u64),
    /// The Developer on a labelled issue (stored as task `issue #N`).
    Issue(u64),
    /// Merge one of gaffer's own PRs if `workflow.auto_merge` and its conditions allow.
    Merge(u64),
}

impl Job {
    pub fn role(&self) -> &'static str {
        match self {
            Job::Taskmaster => "taskmaster",
            Job::Developer(_) | Job::Fix(_) | Job::Issue(_) => "developer",
            Job::Reviewer(_) => "reviewer",
            Job::Integrator(_) => "integrator",
            Job::Merge(_) => "merge",
        }
    }

    /// The job for a pipeline step (`None` for "nothing").
    pub fn for_step(step: &crate::pipeline::Step) -> Option<Job> {
        use crate::pipeline::Step;
        Some(match step {
            Step::Taskmaster => Job::Taskmaster,
            Step::Developer { task } => Job::Developer(Some(task.clone())),
            Step::Issue { number } => Job::Issue(*number),
            Step::Integrator { pull, .. } => Job::Integrator(Some(*pull)),
            Step::Nothing => return None,
        })
    }

    pub(crate) fn task(&self) -> Option<String> {
        match self {
            Job::Developer(Some(task)) => Some(task.to_string()),
            Job::Issue(n) => Some(format!("{ISSUE_TASK}{n}")),
            _ => None,
        }
    }

    pub(crate) fn pr(&self) -> Option<u64> {
        match self {
            Job::Reviewer(pr) | Job::Integrator(pr) => *pr,
            Job::Fix(pr) | Job::Merge(pr) => Some(*pr),
            _ => None,
        }
    }

    /// The same step for the same repo/task/PR is one active run.
    fn dedupe(&self, repo: &str) -> String {
        let what = self
            .task()
            .or_else(|| self.pr().map(|n| format!("#{n}")))
            .unwrap_or_else(|| "-".into());
        format!("{repo}|{}|{what}", self.role())
    }

    fn from_record(run: &RunRecord) -> AppResult<Job> {
        Ok(match run.role.as_str() {
            "taskmaster" => Job::Taskmaster,
            "developer" => match (run.task.as_deref(), run.pr) {
                (None, Some(pr)) => Job::Fix(pr),
                (Some(task), _) if task.starts_with(ISSUE_TASK) => {
                    match task[ISSUE_TASK.len()..].parse() {
                        Ok(n) => Job::Issue(n),
                        Err(_) => Job::Developer(None),
                    }
                }
                (task, _) => Job::Developer(task.and_then(TaskId::parse)),
            },
            "reviewer" => Job::Reviewer(run.pr),
            "integrator" => Job::Integrator(run.pr),
            "merge" => {
                Job::Merge(run.pr.ok_or_else(|| {
                    AppError::internal(format!("merge run {} names no PR", run.id))
                })?)
            }
            other => {
                return Err(AppError::internal(format!(
                    "unknown role {other:?} in run {}",
                    run.id
                )))
            }
        })
    }
}

/// How an issue job is stored in a run's `task` column.
const ISSUE_TASK: &str = "issue #";

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Webhook,
    Poll,
    Api,
    Cli,
    Schedule,
    Retry,
    /// A `/gaffer` command in a comment.
    Command,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Webhook => "webhook",
            Trigger::Poll => "poll",
            Trigger::Api => "api",
            Trigger::Cli => "cli",
            Trigger::Schedule => "schedule",
            Trigger::Retry => "retry",
            Trigger::Command => "command",
        }
    }
}

/// The engine's in-process part: who this process is (the lease owner), how to wake the
/// worker, and how to stop a run this process executes.
#[derive(Clone)]
pub struct Engine {
    owner: String,
    wake: Arc<Notify>,
    cancels: Arc<Mutex<HashMap<i64, Arc<Notify>>>>,
    lease: Duration,
}

impl Engine {
    /// An engine for this process, claiming runs for `lease` at a time.
    pub fn new(lease: Duration) -> Engine {
        Engine {
            owner: format!("{}-{:x}", std::process::id(), rand::random::<u32>()),
            wake: Arc::default(),
            cancels: Arc::default(),
            lease,
        }
    }

    /// Wakes the worker (a repo was resumed, a run queued elsewhere).
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("owner", &self.owner)
            .finish()
    }
}

fn repo_key(repo: &Repo) -> String {
    repo.full_name.to_ascii_lowercase()
}

/// Enqueues `job` for `repo` (or finds the active run for that step); returns its id.
pub async fn enqueue(gaffer: &Gaffer, repo: &Repo, job: &Job, trigger: Trigger) -> AppResult<i64> {
    let key = repo_key(repo);
    let task = job.task();
    let dedupe = job.dedupe(&key);
    let (id, created) = gaffer
        .store
        .enqueue_run(&NewRun {
            repo: &key,
            role: job.role(),
            task: task.as_deref(),
            pr: job.pr(),
            trigger: trigger.as_str(),
            dedupe: &dedupe,
            retry_of: None,
        })
        .await?;
    if created {
        gaffer
            .store
            .add_run_event(id, "progress", &format!("queued by {}", trigger.as_str()))
            .await?;
        crate::issues::track::queued(gaffer, repo, id, job).await;
        gaffer.engine.wake.notify_one();
    }
    Ok(id)
}

/// Queues a finished run's step again (`POST /runs/{id}/retry`); returns the new run.
pub async fn retry(gaffer: &Gaffer, id: i64) -> AppResult<i64> {
    let run = get(gaffer, id).await?;
    if !run.finished() {
        return Err(AppError::conflict(format!(
            "run {id} is {}: only a finished run can be retried",
            run.state
        )));
    }
    if run.state == "succeeded" {
        return Err(AppError::conflict(format!(
            "run {id} succeeded: nothing to retry"
        )));
    }
    let (new, _) = gaffer
        .store
        .enqueue_run(&NewRun {
            repo: &run.repo,
            role: &run.role,
            task: run.task.as_deref(),
            pr: run.pr,
            trigger: Trigger::Retry.as_str(),
            dedupe: &run.dedupe,
            retry_of: Some(id),
        })
        .await?;
    gaffer
        .store
        .add_run_event(new, "progress", &format!("queued as a retry of run {id}"))
        .await?;
    gaffer.engine.wake.notify_one();
    Ok(new)
}

/// Cancels a run: a queued or paused one at once, a running one at its next heartbeat.
pub async fn cancel(gaffer: &Gaffer, id: i64) -> AppResult<RunRecord> {
    let run = get(gaffer, id).await?;
    match run.state.as_str() {
        "queued" | "paused" => {
            gaffer
                .store
                .force_finish_run(id, "cancelled", "cancelled before it started", now())
                .await?;
        }
        "running" => {
            gaffer.store.request_run_cancel(id).await?;
            if let Some(local) = gaffer.engine.cancels.lock().expect("cancels").get(&id) {
                local.notify_one();
            }
        }
        other => {
            return Err(AppError::conflict(format!(
                "run {id} is {other}: nothing to cancel"
            )));
        }
    }
    get(gaffer, id).await
}

/// A run by id, or 404.
pub async fn get(gaffer: &Gaffer, id: i64) -> AppResult<RunRecord> {
    gaffer
        .store
        .get_run(id)
        .await?
        .ok_or_else(|| AppError::not_found(format!("no run {id}")))
}

/// Waits until run `id` has finished.
pub async fn wait(gaffer: &Gaffer, id: i64) -> AppResult<RunRecord> {
    loop {
        let run = get(gaffer, id).await?;
        if run.finished() {
            return Ok(run);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Enqueues `job` and executes it here (or waits for whoever claimed that step first):
/// the webhook, the poller, the CLI and `?wait=true` calls work this way.
pub async fn run_inline(
    gaffer: &Gaffer,
    repo: &Repo,
    job: &Job,
    trigger: Trigger,
) -> AppResult<RunRecord> {
    let id = enqueue(gaffer, repo, job, trigger).await?;
    // A paused repo, or one in its quiet hours or out of today's runs, keeps the run
    // queued for later (the worker starts it when it may): the caller is told it waits.
    let waits = if gaffer.store.repo_paused(&repo_key(repo)).await? {
        Some("the repo is paused".to_string())
    } else {
        schedule_holds(gaffer, repo).await
    };
    if let Some(why) = waits {
        let run = get(gaffer, id).await?;
        if !run.finished() {
            return Ok(RunRecord {
                summary: format!("waits: {why}"),
                ..run
            });
        }
        return Ok(run);
    }
    loop {
        let lease_until = now() + gaffer.engine.lease.as_secs() as i64;
        if let Some(claimed) = gaffer
            .store
            .claim_run(id, &gaffer.engine.owner, now(), lease_until)
            .await?
        {
            return Box::pin(execute(gaffer, claimed)).await;
        }
        let run = get(gaffer, id).await?;
        if run.finished() {
            return Ok(run);
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// The outcome a finished run produced, or the error it failed with (with its kind and
/// detail, so callers such as the webhook's retry logic can tell what happened).
pub fn result_of(run: &RunRecord) -> AppResult<Value> {
    match run.state.as_str() {
        "failed" => {
            let detail = run.outcome.as_ref();
            let kind = detail
                .and_then(|d| d.get("kind"))
                .and_then(|k| serde_json::from_value::<ErrorKind>(k.clone()).ok())
                .unwrap_or(ErrorKind::Unavailable);
            let mut err = AppError::new(kind, run.summary.clone());
            if let Some(d) = detail
                .and_then(|d| d.get("detail"))
                .filter(|d| !d.is_null())
            {
                err = err.with_detail(d.clone());
            }
            Err(err)
        }
        "cancelled" => Err(AppError::conflict(format!(
            "run {} was cancelled: {}",
            run.id, run.summary
        ))), // Held back (paused, quiet hours, daily limit): it runs later.
        "queued" | "paused" => {
            Ok(json!({"run": run.id, "state": run.state, "summary": run.summary}))
        }

        _ => Ok(run.outcome.clone().unwrap_or(Value::Null)),
    }
}

/// What a role step came to.
struct Ended {
    state: &'static str,
    summary: String,
    outcome: Value,
    /// Something changed (a PR opened, a review posted, a task blocked): decide again.
    moved: bool,
    /// The Developer opened (or pushed to) this PR: review it next.
    review: Option<u64>,
    /// The Reviewer found this PR short of its criteria or failing: the Developer's next
    /// round.
    fix: Option<u64>,
    /// PRs this run opened or reviewed that an auto-merge may now take: `(number, branch)`.
    merge: Vec<(u64, String)>,
}

fn ended_from(outcomes: &[Outcome], role: &str) -> Ended {
    let blocked = outcomes.iter().any(|o| o.action == Action::Blocked);
    let moved = outcomes.iter().any(|o| {
        matches!(
            o.action,
            Action::OpenedPr | Action::Blocked | Action::Reviewed | Action::Pushed | Action::Merged
        )
    });
    let review = outcomes
        .iter()
        .find(|o| role == "developer" && matches!(o.action, Action::OpenedPr | Action::Pushed))
        .and_then(|o| o.pr.as_ref().map(|p| p.number));
    let fix = outcomes
        .iter()
        .find(|o| {
            role == "reviewer"
                && o.action == Action::Reviewed
                && (o.detail["unmet"].as_array().is_some_and(|u| !u.is_empty())
                    || o.checks.as_ref().is_some_and(|c| !c.passed))
        })
        .and_then(|o| o.pr.as_ref().map(|p| p.number));
    let merge = outcomes
        .iter()
        .filter(|o| match role {
            "taskmaster" | "integrator" => o.action == Action::OpenedPr,
            "reviewer" => o.action == Action::Reviewed,
            _ => false,
        })
        .filter_map(|o| o.pr.as_ref().map(|p| (p.number, p.branch.clone())))
        .collect();
    let summary = match outcomes {
        [] => "nothing to do".to_string(),
        [one] => one.summary.clone(),
        many => many
            .iter()
            .map(|o| o.summary.as_str())
            .collect::<Vec<_>>()
            .join("; "),
    };
    let outcome = match outcomes {
        // The Reviewer's answer is a list (one outcome per PR looked at), as /run/reviewer's.
        [one] if role != "reviewer" => serde_json::to_value(one).unwrap_or(Value::Null),
        many => serde_json::to_value(many).unwrap_or(Value::Null),
    };
    Ended {
        state: if blocked { "blocked" } else { "succeeded" },
        summary,
        outcome,
        moved,
        review,
        fix,
        merge,
    }
}

/// Runs the role. Each role's future is boxed: they are large (clones, checks, model
/// calls) and would otherwise be inlined into every caller's future, overflowing the small
/// stacks of the HTTP server's workers.
async fn perform(gaffer: &Gaffer, repo: &Repo, job: &Job) -> AppResult<Vec<Outcome>> {
    Ok(match job {
        Job::Taskmaster => vec![Box::pin(roles::taskmaster::run(gaffer, repo)).await?],
        Job::Developer(task) => {
            vec![Box::pin(roles::developer::run(gaffer, repo, task.clone())).await?]
        }
        Job::Reviewer(Some(pr)) => {
            vec![Box::pin(roles::reviewer::review(gaffer, repo, *pr)).await?]
        }
        Job::Fix(pr) => vec![Box::pin(roles::iterate::iterate(gaffer, repo, *pr)).await?],
        Job::Issue(n) => vec![Box::pin(crate::issues::work_issue(gaffer, repo, *n)).await?],
        Job::Reviewer(None) => Box::pin(roles::reviewer::review_open(gaffer, repo)).await?,
        Job::Integrator(Some(pr)) => {
            vec![Box::pin(roles::integrator::integrate(gaffer, repo, *pr)).await?]
        }
        Job::Integrator(None) => {
            vec![Box::pin(roles::integrator::integrate_pending(gaffer, repo)).await?]
        }
        Job::Merge(pr) => vec![Box::pin(roles::merger::merge_if_ready(gaffer, repo, *pr)).await?],
    })
}

/// Executes a run this process has claimed, to its end.
async fn execute(gaffer: &Gaffer, run: RunRecord) -> AppResult<RunRecord> {
    let id = run.id;
    let owner = gaffer.engine.owner.clone();
    let local = Arc::new(Notify::new());
    gaffer
        .engine
        .cancels
        .lock()
        .expect("cancels")
        .insert(id, local.clone());
    let ctx = transcript::RunContext {
        store: gaffer.store.clone(),
        run_id: id,
    };
    let work = async {
        transcript::progress(format!(
            "started {} (attempt {}, {})",
            run.role, run.attempts, run.trigger
        ))
        .await;
        let repo = gaffer.registry.get(&FullName::parse(&run.repo)?).await?;
        let job = Job::from_record(&run)?;
        // `/gaffer stop` holds off what the crew would start by itself; a person's
        // explicit request (API, CLI, a command) still runs.
        let automatic = !matches!(run.trigger.as_str(), "api" | "cli" | "command" | "retry");
        if automatic {
            if let Some(why) = crate::issues::track::stopped(gaffer, &repo, &job).await {
                let held = Outcome::new(job.role(), &repo, Action::Nothing, why);
                return Ok::<_, AppError>((repo, ended_from(&[held], &run.role)));
            }
        }
        crate::issues::track::started(gaffer, &repo, id, &job).await;
        let outcomes = perform(gaffer, &repo, &job).await?;
        crate::issues::track::ended(gaffer, &repo, id, &job, &outcomes).await;
        Ok::<_, AppError>((repo, ended_from(&outcomes, &run.role)))
    };
    let heartbeat = async {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let until = now() + gaffer.engine.lease.as_secs() as i64;
            match gaffer.store.renew_run_lease(id, &owner, until).await {
                Ok(Some(true)) => return "cancelled",
                Ok(None) => return "lost",
                _ => {}
            }
        }
    };
    let result = transcript::within(ctx.clone(), async {
        tokio::select! {
            done = work => Some(done),
            why = heartbeat => { tracing::info!(run = id, why, "run stopped"); None }
            _ = local.notified() => None,
        }
    })
    .await;
    gaffer.engine.cancels.lock().expect("cancels").remove(&id);
    let store = &gaffer.store;
    let mut follow_up = None;
    match result {
        Some(Ok((repo, ended))) => {
            store
                .finish_run(
                    id,
                    &owner,
                    ended.state,
                    &ended.summary,
                    Some(&ended.outcome),
                    now(),
                )
                .await?;
            store
                .add_run_event(
                    id,
                    "progress",
                    &format!("{}: {}", ended.state, ended.summary),
                )
                .await?;
            if ended.moved {
                follow_up = Some((repo, ended.review, ended.fix, ended.merge));
            }
        }
        Some(Err(e)) => {
            if let (Ok(name), Ok(job)) = (FullName::parse(&run.repo), Job::from_record(&run)) {
                if let Ok(repo) = gaffer.registry.get(&name).await {
                    crate::issues::track::failed(gaffer, &repo, id, &job, &e.message).await;
                }
            }
            let detail = json!({"kind": e.kind, "detail": e.detail});
            store
                .finish_run(id, &owner, "failed", &e.message, Some(&detail), now())
                .await?;
            store
                .add_run_event(id, "progress", &format!("failed: {}", e.message))
                .await?;
        }
        None => {
            let current = get(gaffer, id).await?;
            if current.state == "running" {
                store
                    .finish_run(
                        id,
                        &owner,
                        "cancelled",
                        "cancelled while running",
                        None,
                        now(),
                    )
                    .await?;
                store
                    .add_run_event(id, "progress", "cancelled while running")
                    .await?;
            }
        }
    }
    if let Some((repo, review, fix, merge)) = follow_up {
        for (pr, branch) in merge {
            if roles::merger::worth_trying(gaffer, &repo, &branch).await {
                enqueue(gaffer, &repo, &Job::Merge(pr), Trigger::Schedule).await?;
            }
        }
        if let Some(pr) = review {
            enqueue(gaffer, &repo, &Job::Reviewer(Some(pr)), Trigger::Schedule).await?;
        }
        if let Some(pr) = fix.filter(|_| gaffer.settings.work.max_iterations > 0) {
            enqueue(gaffer, &repo, &Job::Fix(pr), Trigger::Schedule).await?;
        }
        if let Err(e) = Box::pin(drive(gaffer, &repo, Trigger::Schedule)).await {
            tracing::warn!(repo = %repo.full_name, error = %e, "could not decide the next step");
        }
    }
    gaffer.engine.wake.notify_one();
    get(gaffer, id).await
}

/// Asks the pipeline for `repo`'s next step (a scan, stored) and, in `pr` mode (not
/// paused), enqueues it; `observe` repos only get the decision recorded. Returns the
/// decision's reason and the run enqueued, if any.
pub async fn drive(
    gaffer: &Gaffer,
    repo: &Repo,
    trigger: Trigger,
) -> AppResult<(String, Option<i64>)> {
    if repo.mode == Mode::Disabled {
        return Ok(("disabled".into(), None));
    }
    let decided = crate::pipeline::work_next(gaffer, repo).await?;
    let reason = decided.decision.reason.clone();
    if repo.mode != Mode::Pr || gaffer.store.repo_paused(&repo_key(repo)).await? {
        return Ok((reason, None));
    }
    let Some(job) = Job::for_step(&decided.decision.step) else {
        return Ok((reason, None));
    };
    Ok((reason, Some(enqueue(gaffer, repo, &job, trigger).await?)))
}

/// Executes one step in place for a trigger (webhook, poller) and returns its summary;
/// a failed run is this call's error, so the trigger's own retry logic applies.
pub async fn run_for_trigger(
    gaffer: &Gaffer,
    repo: &Repo,
    job: Job,
    trigger: Trigger,
) -> AppResult<String> {
    let run = run_inline(gaffer, repo, &job, trigger).await?;
    result_of(&run)?;
    Ok(format!("{}: {} (run {})", job.role(), run.summary, run.id))
}

/// Why no run may start for `repo` now (its schedule: quiet hours, or today's runs used
/// up), if so.
async fn schedule_holds(gaffer: &Gaffer, repo: &Repo) -> Option<String> {
    let now = now();
    let o = &repo.overrides;
    let minute_of_day = (now.rem_euclid(86_400) / 60) as u32;
    if o.quiet_hours
        .as_ref()
        .is_some_and(|q| q.contains(minute_of_day))
    {
        return Some("in its quiet hours (overrides.quiet_hours)".into());
    }
    let max = o.max_runs_per_day?;
    let day_start = now - now.rem_euclid(86_400);
    let started = gaffer
        .store
        .runs_started_since(&repo_key(repo), day_start)
        .await
        .ok()?;
    (started >= i64::from(max))
        .then(|| format!("today's {max} runs are used up (overrides.max_runs_per_day)"))
}

/// Repos the worker must not start runs for now.
async fn held_back(gaffer: &Gaffer) -> Vec<String> {
    let Ok((repos, _)) = gaffer.registry.list().await else {
        return Vec::new();
    };
    let mut held = Vec::new();
    for repo in repos {
        if schedule_holds(gaffer, &repo).await.is_some() {
            held.push(repo_key(&repo));
        }
    }
    held
}

/// The worker of `gaffer serve`: re-queues runs a dead process left, fails stalled runs,
/// and executes queued runs (one per repo, `RUN_CONCURRENCY` at once) until `stop`.
pub async fn worker(gaffer: Arc<Gaffer>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(
        gaffer.settings.runs.concurrency,
    ));
    let stall = gaffer.settings.runs.stall_timeout.as_secs() as i64;
    loop {
        if *stop.borrow() {
            break;
        }
        let store = &gaffer.store;
        if let Ok(ids) = store.requeue_expired_runs(now()).await {
            for id in ids {
                let _ = store
                    .add_run_event(
                        id,
                        "progress",
                        "queued again: the process running it stopped",
                    )
                    .await;
            }
        }
        if let Ok(stalled) = store.stalled_runs(now() - stall).await {
            for run in stalled {
                let why = format!(
                    "failed by the watchdog: no progress for {stall} s (RUN_STALL_TIMEOUT)"
                );
                if store
                    .force_finish_run(run.id, "failed", &why, now())
                    .await
                    .unwrap_or(false)
                {
                    let _ = store.add_run_event(run.id, "progress", &why).await;
                    if let Some(local) = gaffer.engine.cancels.lock().expect("cancels").get(&run.id)
                    {
                        local.notify_one();
                    }
                }
            }
        }
        let _ = store
            .trim_run_transcripts(gaffer.settings.runs.transcript_retention)
            .await;
        let mut started = false;
        if let Ok(permit) = slots.clone().try_acquire_owned() {
            let lease_until = now() + gaffer.engine.lease.as_secs() as i64;
            let held = held_back(&gaffer).await;
            match store
                .claim_next_run(&gaffer.engine.owner, now(), lease_until, &held)
                .await
            {
                Ok(Some(run)) => {
                    started = true;
                    let gaffer = gaffer.clone();
                    tokio::spawn(async move {
                        let id = run.id;
                        if let Err(e) = Box::pin(execute(&gaffer, run)).await {
                            tracing::error!(run = id, error = %e, "run could not be recorded");
                        }
                        drop(permit);
                    });
                }
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "could not claim a run"),
            }
        }
        if started {
            continue;
        }
        tokio::select! {
            _ = gaffer.engine.wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = stop.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(job: &Job) -> RunRecord {
        RunRecord {
            id: 1,
            repo: "acme/tally".into(),
            role: job.role().into(),
            task: job.task(),
            pr: job.pr(),
            trigger: "webhook".into(),
            state: "queued".into(),
            attempts: 0,
            summary: String::new(),
            outcome: None,
            retry_of: None,
            created_at: String::new(),
            started_at: None,
            finished_at: None,
            dedupe: job.dedupe("acme/tally"),
            cancel_requested: false,
        }
    }

    #[test]
    fn a_merge_job_round_trips_through_its_run_record() {
        let job = Job::Merge(7);
        let run = record(&job);
        assert_eq!((run.role.as_str(), run.pr), ("merge", Some(7)));
        assert_eq!(run.dedupe, "acme/tally|merge|#7");
        assert_eq!(Job::from_record(&run).unwrap(), job);
        let broken = RunRecord { pr: None, ..run };
        assert!(
            Job::from_record(&broken).is_err(),
            "a merge run names its PR"
        );
    }
}
