//! The roles: plain async functions over the forge, the model and the workspace, so the
//! same step runs from the API, the CLI, the poller or a webhook with the same result.
//! Every step is idempotent: before acting it looks for its branch, PR or marker and
//! reports what exists instead of making a second one.

pub mod bootstrap;
pub mod developer;
pub mod integrator;
pub mod iterate;
pub mod merge_rules;
pub mod merger;
pub mod reviewer;
pub mod taskmaster;

use serde::Serialize;
use serde_json::Value;

use crate::error::{AppError, AppResult};
use crate::forge::{once, Forge, NewPull, PullRequest, PullState};
use crate::pipeline::ScanReport;
use crate::registry::{FullName, Mode, Repo};
use crate::team::task::TaskId;
use crate::workspace::checks::CheckRun;

/// What a role run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Opened a new pull request.
    OpenedPr,
    /// Found its pull request already there (a repeated or resumed run).
    ExistingPr,
    /// Pushed fix commits to an existing PR (an iteration on its feedback).
    Pushed,
    /// Could not do the task; said why in a PR.
    Blocked,
    /// Posted a review.
    Reviewed,
    /// Merged one of gaffer's own PRs (`workflow.auto_merge`, every condition held).
    Merged,
    /// Nothing to do, with the reason.
    Nothing,
    /// `observe` mode or `dry_run`: what would have been done.
    Preview,
}

/// The pull request a role opened or found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrRef {
    pub number: u64,
    pub branch: String,
    pub url: String,
}

impl From<&PullRequest> for PrRef {
    fn from(p: &PullRequest) -> Self {
        PrRef {
            number: p.number,
            branch: p.head_ref.clone(),
            url: p.html_url.clone(),
        }
    }
}

/// The result of one role run.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub role: &'static str,
    pub repo: String,
    pub action: Action,
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pr: Option<PrRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checks: Option<CheckRun>,
    /// Files written or planned (for previews and PRs).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    #[serde(skip_serializing_if = "Value::is_null")]
    pub detail: Value,
}

impl Outcome {
    pub fn new(
        role: &'static str,
        repo: &Repo,
        action: Action,
        summary: impl Into<String>,
    ) -> Outcome {
        Outcome {
            role,
            repo: repo.full_name.clone(),
            action,
            summary: summary.into(),
            task: None,
            pr: None,
            checks: None,
            files: Vec::new(),
            detail: Value::Null,
        }
    }
}

/// `work-next`: decide, and in `pr` mode enqueue the chosen role as a run (the Reviewer
/// is triggered per head SHA instead); with `wait`, execute it and report its outcome.
pub async fn work_next(
    gaffer: &crate::Gaffer,
    repo: &Repo,
    trigger: crate::engine::Trigger,
    wait: bool,
) -> AppResult<crate::pipeline::WorkNext> {
    use crate::engine::{self, Job};
    let mut answer = crate::pipeline::work_next(gaffer, repo).await?;
    if repo.mode != Mode::Pr {
        return Ok(answer);
    }
    let Some(job) = Job::for_step(&answer.decision.step) else {
        return Ok(answer);
    };
    if !wait {
        answer.run = Some(engine::enqueue(gaffer, repo, &job, trigger).await?);
        return Ok(answer);
    }
    let run = engine::run_inline(gaffer, repo, &job, trigger).await?;
    let outcome = engine::result_of(&run)?;
    answer.acted = outcome.get("action").and_then(Value::as_str) != Some("nothing");
    answer.outcome = Some(outcome);
    answer.run = Some(run.id);
    Ok(answer)
}

impl Outcome {
    /// "Already there": the task PR found open instead of making a second one.
    pub fn existing(
        role: &'static str,
        repo: &Repo,
        open: &crate::pipeline::TaskPull,
        summary: String,
    ) -> Outcome {
        let mut outcome = Outcome::new(role, repo, Action::ExistingPr, summary);
        outcome.task = Some(open.task.clone());
        outcome.pr = Some(PrRef {
            number: open.number,
            branch: open.head_ref.clone(),
            url: String::new(),
        });
        outcome
    }
}

/// Records what a role did in the repo's history and returns its outcome for the PR it
/// opened (`action` when `created`) or found already open.
pub async fn pr_outcome(
    gaffer: &crate::Gaffer,
    role: &'static str,
    repo: &Repo,
    action: Action,
    pr: &PullRequest,
    created: bool,
    summary: String,
) -> AppResult<Outcome> {
    let (action, summary) = if created {
        (action, summary)
    } else {
        let found = format!("{summary}: the PR was there already ({})", pr_state(pr));
        (Action::ExistingPr, found)
    };
    gaffer
        .store
        .add_event(&repo.full_name(), role, &summary)
        .await?;
    let mut outcome = Outcome::new(role, repo, action, summary);
    outcome.pr = Some(PrRef::from(pr));
    Ok(outcome)
}

/// Commits `files` on a fresh `branch` from the up-to-date default branch, pushes it and
/// opens the PR. A PR already there for that branch, in any state, is returned instead
/// (before anything is pushed: a merged PR's branch is left alone).
pub async fn propose(
    gaffer: &crate::Gaffer,
    repo: &Repo,
    branch_prefix: &str,
    files: &[(&str, &str)],
    commit_message: &str,
    pull: &NewPull,
) -> AppResult<(PullRequest, bool)> {
    if let Some(existing) =
        task_pr_for(gaffer.forge(repo).as_ref(), &repo.full_name(), &pull.head).await?
    {
        return Ok((existing, false));
    }
    let clone = gaffer.workspace.checkout(repo).await?;
    clone
        .start_branch(&pull.head, &format!("origin/{}", repo.default_branch))
        .await?;
    for (path, text) in files {
        clone.write(path, text)?;
    }
    clone.commit_all(commit_message).await?;
    clone.push(&pull.head, branch_prefix).await?;
    open_or_find_pr(gaffer.forge(repo).as_ref(), &repo.full_name(), pull).await
}

/// How the repo's checks run for any role: the timeouts, the sandbox (gaffer's data
/// directory, every clone but this one and `.env` hidden), the secrets to redact and where
/// the per-repo caches live.
pub fn check_settings(gaffer: &crate::Gaffer) -> crate::workspace::checks::CheckSettings {
    let settings = &gaffer.settings;
    crate::workspace::checks::CheckSettings {
        timeout: settings.work.checks_timeout,
        setup_timeout: settings.work.checks_setup_timeout,
        sandbox: crate::safety::sandbox::Sandbox {
            mode: settings.work.checks_sandbox,
            hidden_dirs: vec![settings.data_dir.clone(), settings.workdir_root.clone()],
            hidden_files: std::env::current_dir()
                .map(|d| d.join(".env"))
                .into_iter()
                .collect(),
        },
        secrets: [
            &settings.github.token,
            &settings.api_token,
            &settings.webhook.secret,
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect(),
        cache_root: settings.data_dir.join("cache"),
        cache_max_bytes: settings.work.checks_cache_max_bytes,
    }
}

/// A repo's checks as a role runs them: the plan (configured or detected), the settings,
/// the repo's cache directory and its known failures.
pub struct RepoChecks {
    pub plan: crate::workspace::checks::detect::Plan,
    pub settings: crate::workspace::checks::CheckSettings,
    pub cache: std::path::PathBuf,
    pub known_failures: Vec<String>,
    /// `checks.coverage_min`: the line coverage a tree must reach, where it can be measured.
    pub coverage_min: Option<f64>,
}

impl RepoChecks {
    /// The checks for the clone as checked out now, with `config` from `.llm-team.yml`.
    pub async fn new(
        gaffer: &crate::Gaffer,
        repo: &Repo,
        clone: &crate::workspace::Clone,
        config: &crate::team::team_config::TeamConfig,
    ) -> RepoChecks {
        let settings = check_settings(gaffer);
        let files = clone.files().await;
        RepoChecks {
            plan: crate::workspace::checks::plan_for(clone.dir(), &files, config),
            cache: settings.cache_dir(&repo.owner, &repo.name),
            settings,
            known_failures: config.known_failures.clone(),
            coverage_min: config.coverage_required(),
        }
    }

    /// Runs the checks on the clone as it stands, judged against `baseline`.
    pub async fn run(
        &self,
        clone: &crate::workspace::Clone,
        baseline: Option<crate::workspace::checks::Baseline>,
    ) -> CheckRun {
        crate::workspace::checks::run_plan(
            clone.dir(),
            &self.cache,
            &self.plan,
            &self.settings,
            baseline,
            &self.known_failures,
            self.coverage_min,
        )
        .await
    }

    /// The results on `sha`, which the clone must have checked out clean: from the store
    /// when this SHA was run with the same commands before, else run now (and stored); the
    /// clone is left clean again.
    pub async fn baseline(
        &self,
        gaffer: &crate::Gaffer,
        repo: &Repo,
        clone: &crate::workspace::Clone,
        sha: &str,
    ) -> AppResult<crate::workspace::checks::Baseline> {
        let key = crate::workspace::checks::plan_key(&self.plan);
        let name = repo.full_name();
        if let Some(side) = gaffer.store.check_baseline(&name, sha, &key).await? {
            return Ok(crate::workspace::checks::Baseline {
                sha: sha.to_string(),
                side,
                cached: true,
            });
        }
        let run = self.run(clone, None).await;
        clone.reset().await?;
        let side = run.side();
        // Checks that could not start (no bubblewrap, say) say nothing about this SHA.
        let ran = [run.setup.as_ref(), Some(&run.test), run.lint.as_ref()]
            .into_iter()
            .flatten()
            .all(|p| p.started);
        if ran {
            gaffer
                .store
                .save_check_baseline(&name, sha, &key, &side)
                .await?;
        }
        Ok(crate::workspace::checks::Baseline {
            sha: sha.to_string(),
            side,
            cached: false,
        })
    }
}

/// The checks' result as a short Markdown section for PRs and reviews: the verdict, what
/// was detected, the phases, a before / after table and the output's last lines.
pub fn checks_markdown(run: &CheckRun) -> String {
    let c = &run.comparison;
    let verdict = if run.passed { "passed" } else { "failed" };
    let mut out = format!(
        "**{verdict}**: {} (checks: {}; {}).\n\n",
        c.reason,
        run.detected,
        if run.sandboxed {
            "sandboxed: set-up with network, tests without"
        } else {
            "not sandboxed: CHECKS_SANDBOX=off"
        }
    );
    let (p, f, s) = run.results.counts();
    let phase = |name: &str, ph: &crate::workspace::checks::PhaseRun| {
        format!(
            "| {name} | `{}` | {} | {:.1} s |\n",
            first_line(&ph.command).replace('|', "/").replace('`', "'"),
            if ph.timed_out {
                "timed out".to_string()
            } else if ph.passed {
                "ok".to_string()
            } else {
                format!(
                    "exit {}",
                    ph.exit_code.map_or("?".into(), |c| c.to_string())
                )
            },
            ph.duration_ms as f64 / 1000.0
        )
    };
    out.push_str("| phase | command | result | time |\n| --- | --- | --- | --- |\n");
    if let Some(setup) = &run.setup {
        out.push_str(&phase("set-up", setup));
    }
    out.push_str(&phase("test", &run.test));
    if let Some(lint) = &run.lint {
        out.push_str(&phase("lint", lint));
    }
    out.push('\n');
    match &run.baseline {
        Some(base) => {
            let (bp, bf, bs) = base.side.results.counts();
            let short = &base.sha[..base.sha.len().min(7)];
            let word = |ok: bool| if ok { "ok" } else { "failing" };
            out.push_str(&format!(
                "| | before ({short}) | after |\n| --- | --- | --- |\n| tests passed / failed / skipped | {bp} / {bf} / {bs} | {p} / {f} / {s} |\n| test command | {} | {} |\n| newly broken | | {} |\n| newly fixed | | {} |\n\n",
                word(base.side.tests_passed),
                word(run.test.passed),
                list(&c.newly_broken),
                list(&c.newly_fixed),
            ));
        }
        None => out.push_str(&format!(
            "Tests passed / failed / skipped: {p} / {f} / {s} (no baseline).\n\n"
        )),
    }
    if !c.known.is_empty() {
        out.push_str(&format!("Known failures ignored: {}.\n\n", list(&c.known)));
    }
    if let Some(cov) = &run.coverage {
        out.push_str(&coverage_markdown(cov));
    }
    out.push_str(&format!(
        "<details><summary>test output (last lines)</summary>\n\n```\n{}\n```\n</details>",
        run.output_tail.trim_end().replace("```", "'''")
    ));
    out
}

/// The coverage line of [`checks_markdown`]: the number, the minimum and the tool, the
/// least covered files when below, or why it was not measured.
fn coverage_markdown(cov: &crate::workspace::checks::coverage::Coverage) -> String {
    use crate::workspace::checks::coverage::{describe, fmt_percent, CoverageStatus};
    let clean = |s: &str| s.replace('|', "/").replace('`', "'");
    match (cov.status, cov.percent) {
        (CoverageStatus::NotMeasured, _) | (_, None) => {
            format!("Coverage: **not measured** ({}).\n\n", clean(&cov.summary))
        }
        (status, Some(pct)) => {
            let word = if status == CoverageStatus::Below {
                "below"
            } else {
                "meets"
            };
            let mut line = format!(
                "Coverage: **{}** line coverage, {word} checks.coverage_min {} ({}; {} of {} lines).\n\n",
                fmt_percent(pct),
                fmt_percent(cov.min),
                cov.measured_by.as_deref().unwrap_or("?"),
                cov.covered_lines.unwrap_or(0),
                cov.statements.unwrap_or(0),
            );
            if status == CoverageStatus::Below {
                for file in &cov.least_covered {
                    line.push_str(&format!("- `{}`\n", clean(&describe(file))));
                }
                line.push('\n');
            }
            line
        }
    }
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or("");
    let mut short: String = line.chars().take(60).collect();
    if short.len() < line.len() || text.lines().nth(1).is_some() {
        short.push_str(" ...");
    }
    short
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        return "none".into();
    }
    let shown: Vec<String> = items
        .iter()
        .take(10)
        .map(|i| format!("`{}`", i.replace('`', "'").replace('|', "/")))
        .collect();
    if items.len() > 10 {
        format!("{} and {} more", shown.join(", "), items.len() - 10)
    } else {
        shown.join(", ")
    }
}

/// Whether `pull`'s author may start a role ([`crate::safety::trust`], the one decision);
/// `Ok(Err(reason))` when not, and then the skip is recorded in the repo's history so
/// `status` shows it.
pub async fn trusted_author(
    gaffer: &crate::Gaffer,
    forge: &dyn Forge,
    repo: &Repo,
    pull: &PullRequest,
) -> AppResult<Result<(), String>> {
    let identity = forge.identity().await.ok();
    trusted(
        gaffer,
        repo,
        identity.as_deref(),
        (&pull.author, pull.author_association.as_deref()),
        &format!("PR #{} skipped", pull.number),
    )
    .await
}

/// Whether `author` (with their association) may start a role, as
/// [`crate::safety::trust::may_start_role`] decides for PRs, issues, commands and reviews
/// alike; when not, `"{skipped}: {reason}"` is recorded in the repo's history and the
/// reason returned.
pub async fn trusted(
    gaffer: &crate::Gaffer,
    repo: &Repo,
    identity: Option<&str>,
    (author, association): (&str, Option<&str>),
    skipped: &str,
) -> AppResult<Result<(), String>> {
    match crate::safety::trust::may_start_role(repo, identity, author, association) {
        Ok(_) => Ok(Ok(())),
        Err(why) => {
            gaffer
                .store
                .add_event(&repo.full_name(), "trust", &format!("{skipped}: {why}"))
                .await?;
            Ok(Err(why))
        }
    }
}

/// The hidden marker on every PR and comment gaffer writes, so a later run can find it.
pub fn marker(task: &TaskId, role: &str) -> String {
    format!("<!-- gaffer:task={task} role={role} -->")
}

/// Refuses disabled repos (observe repos get previews).
pub fn ensure_active(repo: &Repo) -> AppResult<()> {
    match repo.mode {
        Mode::Disabled => Err(AppError::conflict(format!(
            "repo {} is disabled",
            repo.full_name
        ))),
        _ => Ok(()),
    }
}

/// Roles act only in `pr` mode.
pub fn ensure_pr_mode(repo: &Repo) -> AppResult<()> {
    match repo.mode {
        Mode::Pr => Ok(()),
        Mode::Observe => Err(AppError::conflict(format!(
            "repo {} is in observe mode: gaffer only reports there (set its mode to pr to let it open PRs)",
            repo.full_name
        ))),
        Mode::Disabled => Err(AppError::conflict(format!("repo {} is disabled", repo.full_name))),
    }
}

/// The task's PR from `branch`, in any state (open, merged or closed): once a task's PR
/// exists, however it ended, no role opens a second one for it.
pub async fn task_pr_for(
    forge: &dyn Forge,
    repo: &FullName,
    branch: &str,
) -> AppResult<Option<PullRequest>> {
    Ok(once::pull_for_branch(forge, repo, branch).await?)
}

/// Opens a PR once (see [`crate::forge::once::open_pull`]): `true` when this run made it.
pub async fn open_or_find_pr(
    forge: &dyn Forge,
    repo: &FullName,
    pull: &NewPull,
) -> AppResult<(PullRequest, bool)> {
    Ok(once::open_pull(forge, repo, pull).await?.into_parts())
}

/// How a found PR stands, for outcome summaries ("open", "merged", "closed").
pub fn pr_state(pr: &PullRequest) -> &'static str {
    match pr.state {
        PullState::Open => "open",
        PullState::Closed if pr.is_merged() => "merged",
        PullState::Closed => "closed",
    }
}

/// Task ids in use in a scan: valid tasks and any file named like a task.
pub fn ids_in_use(report: &ScanReport) -> Vec<TaskId> {
    let mut ids: Vec<TaskId> = report.tasks.iter().map(|t| t.id.clone()).collect();
    ids.extend(
        report
            .problems
            .iter()
            .filter_map(|p| p.file.rsplit('/').next().and_then(TaskId::prefix_of)),
    );
    ids.extend(report.open_task_prs.iter().map(|p| p.task.clone()));
    ids
}
