//! The Developer: takes a `queued` task whose dependencies are done, makes the change on
//! `feature/T-NNNN-slug` (the bootstrap task deterministically, others with the model's
//! SEARCH/REPLACE edits, retried with the precise failure fed back), runs the checks,
//! flips the task to `in_review` in the same branch and opens a PR carrying the acceptance
//! checklist and the checks' result. When it cannot succeed within its limits, the PR it
//! opens only moves the task to `blocked` and says why: nothing half-done is proposed as
//! done.

use serde_json::json;

use super::RepoChecks;
use super::{
    bootstrap, ensure_pr_mode, ids_in_use, marker, open_or_find_pr, pr_state, task_pr_for, Action,
    Outcome, PrRef,
};
use crate::error::{AppError, AppResult};
use crate::forge::NewPull;
use crate::llm::{Llm, Role};
use crate::pipeline::{self, ScanReport, Step};
use crate::registry::{Mode, Repo};
use crate::store::DeveloperRun;
use crate::team::task::{self, next_id, parse_task, set_front_matter_field, Status, Task, TaskId};
use crate::team::team_config::TeamConfig;
use crate::team::{branch_name, PullKind};
use crate::workspace::checks::{Baseline, CheckRun};
use crate::workspace::edits::DiffBudget;
use crate::workspace::Clone;
use crate::Gaffer;

const ROLE: &str = "developer";
/// GitHub refuses PR bodies over 65,536 characters; a blocked PR's explanation stays under.
const BODY_MAX_CHARS: usize = 60_000;

/// A finished change, ready to be proposed.
pub(super) struct Done {
    pub(super) checks: CheckRun,
    /// The fail-to-pass evidence, when a proof was asked for.
    pub(super) proof: Option<crate::agent::proof::Proof>,
    /// The model's own summary of what it did.
    pub(super) summary: String,
}

/// Why the task could not be done, and what was last seen.
pub(super) struct Blocked {
    pub(super) reason: String,
    pub(super) checks: Option<CheckRun>,
}

/// Runs the Developer on `wanted`, or on the task work-next picks.
pub async fn run(gaffer: &Gaffer, repo: &Repo, wanted: Option<TaskId>) -> AppResult<Outcome> {
    let _turn = gaffer.turns.lock(&repo.full_name).await;
    if repo.mode != Mode::Observe {
        ensure_pr_mode(repo)?;
    }
    let report = pipeline::scan(gaffer, repo).await?;
    if !report.config.roles.developer {
        return Ok(Outcome::new(
            ROLE,
            repo,
            Action::Nothing,
            "the Developer is disabled in .llm-team.yml",
        ));
    }
    let id = match wanted {
        Some(id) => id,
        None => match &report.next.step {
            Step::Developer { task } => task.clone(),
            _ => {
                return Ok(Outcome::new(
                    ROLE,
                    repo,
                    Action::Nothing,
                    report.next.reason.clone(),
                ))
            }
        },
    };
    let Some(task) = report.tasks.iter().find(|t| t.id == id).cloned() else {
        return Err(AppError::not_found(format!(
            "no valid task {id} in {}/ of {}",
            report.config.tasks_dir, repo.full_name
        )));
    };
    develop(gaffer, repo, &report, task, None).await
}

/// `POST /repos/{id}/bootstrap`: the deterministic CI bootstrap PR. Adds the bootstrap task
/// in the same PR when the repo does not have it yet; a preview in `observe` mode.
pub async fn bootstrap(gaffer: &Gaffer, repo: &Repo) -> AppResult<Outcome> {
    let _turn = gaffer.turns.lock(&repo.full_name).await;
    if repo.mode != Mode::Observe {
        ensure_pr_mode(repo)?;
    }
    let report = pipeline::scan(gaffer, repo).await?;
    if let Some(task) = report
        .tasks
        .iter()
        .find(|t| bootstrap::is_bootstrap(&t.title))
        .cloned()
    {
        if task.status != Status::Queued {
            return Ok(Outcome::new(
                ROLE,
                repo,
                Action::Nothing,
                format!("already bootstrapped: {} is {}", task.id, task.status),
            ));
        }
        return develop(gaffer, repo, &report, task, None).await;
    }
    // The bootstrap task may be on its way in an open PR (planned, or bootstrapped before).
    let boot_slug = format!("-{}", task::slug(bootstrap::TITLE));
    if let Some(open) = report
        .open_task_prs
        .iter()
        .find(|p| p.head_ref.ends_with(&boot_slug))
    {
        let summary = format!(
            "the bootstrap task {} is already in PR #{}",
            open.task, open.number
        );
        return Ok(Outcome::existing(ROLE, repo, open, summary));
    }
    let id = next_id(&ids_in_use(&report));
    let text = bootstrap::task_file(&id, Status::Queued);
    let path = format!(
        "{}/{}",
        report.config.tasks_dir,
        task::file_name(&id, bootstrap::TITLE)
    );
    let (task, _) = parse_task(&path, &text);
    let task =
        task.ok_or_else(|| AppError::internal("the built-in bootstrap task does not parse"))?;
    develop(gaffer, repo, &report, task, Some(text)).await
}

/// The Developer on a task that is not on the default branch yet: its file (`text`) is
/// added by the same PR (a task made from an issue).
pub async fn develop_new(
    gaffer: &Gaffer,
    repo: &Repo,
    report: &ScanReport,
    task: Task,
    text: String,
) -> AppResult<Outcome> {
    develop(gaffer, repo, report, task, Some(text)).await
}

/// The Developer's work on one task. `new_task_file`: the task is not on the default
/// branch yet and is added by this PR.
async fn develop(
    gaffer: &Gaffer,
    repo: &Repo,
    report: &ScanReport,
    task: Task,
    new_task_file: Option<String>,
) -> AppResult<Outcome> {
    let config = &report.config;
    let name = repo.full_name();
    let forge = gaffer.forge(repo);
    let branch = branch_name(
        &config.branch_prefix,
        PullKind::Develop,
        &task.id,
        &task.title,
    );
    let with_task = |mut o: Outcome| {
        o.task = Some(task.id.clone());
        o
    };
    if let Some(pr) = task_pr_for(forge.as_ref(), &name, &branch).await? {
        let mut o = Outcome::new(
            ROLE,
            repo,
            Action::ExistingPr,
            format!(
                "{} is already in PR #{} ({})",
                task.id,
                pr.number,
                pr_state(&pr)
            ),
        );
        o.pr = Some(PrRef::from(&pr));
        return Ok(with_task(o));
    }
    if task.status != Status::Queued {
        return Ok(with_task(Outcome::new(
            ROLE,
            repo,
            Action::Nothing,
            format!("{} is {}, not queued", task.id, task.status),
        )));
    }
    let waiting: Vec<String> = task
        .depends_on
        .iter()
        .filter(|dep| {
            !report
                .tasks
                .iter()
                .any(|t| &&t.id == dep && t.status == Status::Done)
        })
        .map(|d| d.to_string())
        .collect();
    if !waiting.is_empty() {
        return Ok(with_task(Outcome::new(
            ROLE,
            repo,
            Action::Nothing,
            format!("{} waits on {}", task.id, waiting.join(", ")),
        )));
    }
    let model = if bootstrap::is_bootstrap(&task.title) {
        None
    } else {
        gaffer.llm_for(repo).model(Role::Developer)
    };

    let clone = gaffer.workspace.checkout(repo).await?;
    if repo.mode == Mode::Observe || config.dry_run {
        let files = if bootstrap::is_bootstrap(&task.title) {
            let listed = clone.files().await;
            let plan = crate::workspace::checks::plan_for(clone.dir(), &listed, config);
            bootstrap::files_to_add(&listed, bootstrap::Language::of(&plan))
                .into_iter()
                .map(|(p, _)| p.to_string())
                .collect()
        } else {
            Vec::new()
        };
        let how = match &model {
            Some(m) => format!("with {m}"),
            None if bootstrap::is_bootstrap(&task.title) => "with the built-in bootstrap".into(),
            None => "but no Developer model is configured (LLM_DEVELOPER_MODEL=none)".into(),
        };
        let mut o = Outcome::new(
            ROLE,
            repo,
            Action::Preview,
            format!("would work on {} {how} in a PR from {branch}", task.id),
        );
        o.files = files;
        o.detail = json!({"branch": branch});
        return Ok(with_task(o));
    }

    // A previous run pushed the branch but stopped before the PR: finish that run.
    if clone.remote_branch_sha(&branch).await.is_some() {
        if let Some(outcome) = resume(gaffer, repo, &clone, &task, &branch).await? {
            return Ok(with_task(outcome));
        }
    }
    clone
        .start_branch(&branch, &format!("origin/{}", repo.default_branch))
        .await?;
    let base_sha = clone.head_sha().await?;
    let repo_checks = RepoChecks::new(gaffer, repo, &clone, config).await;
    let will_check = bootstrap::is_bootstrap(&task.title) || model.is_some();
    // The base's results, once per base SHA: a change is judged by what it newly breaks.
    let baseline = if will_check {
        Some(
            repo_checks
                .baseline(gaffer, repo, &clone, &base_sha)
                .await?,
        )
    } else {
        None
    };
    if let Some(text) = &new_task_file {
        clone.write(&task.path, text)?;
    }
    let mut stats = DeveloperRun {
        task: task.id.to_string(),
        model: model.clone().unwrap_or_else(|| "builtin".into()),
        ..DeveloperRun::default()
    };
    let work = if bootstrap::is_bootstrap(&task.title) {
        stats.attempts = 1;
        stats.edit_format = "builtin".into();
        bootstrap_work(&clone, &repo_checks, baseline, config).await
    } else if let Some(baseline) = baseline {
        model_work(
            gaffer,
            repo,
            &clone,
            &task,
            config,
            &repo_checks,
            baseline,
            &mut stats,
            None,
        )
        .await
    } else {
        Err(Blocked {
            reason: "no Developer model is configured (LLM_DEVELOPER_MODEL=none), and only the bootstrap task is done without one".into(),
            checks: None,
        })
    };

    let mut why_blocked: Option<String> = None;
    let mut proof = None;
    let (status, title, body, action, checks_run) = match work {
        Ok(done) => {
            stats.outcome = "pr".into();
            let body = pr_body(&task, &done, &stats);
            proof = done.proof.clone();
            (
                Status::InReview,
                format!("{}: {}", task.id, task.title),
                body,
                Action::OpenedPr,
                Some(done.checks),
            )
        }
        Err(blocked) => {
            stats.outcome = "blocked".into();
            why_blocked = Some(blocked.reason.clone());
            // Nothing half-done is proposed: start over from the default branch.
            clone
                .start_branch(&branch, &format!("origin/{}", repo.default_branch))
                .await?;
            if let Some(text) = &new_task_file {
                clone.write(&task.path, text)?;
            }
            let body = blocked_body(&task, &blocked, &stats);
            let title = format!("{}: blocked: {}", task.id, first_line(&blocked.reason, 80));
            (
                Status::Blocked,
                title,
                body,
                Action::Blocked,
                blocked.checks,
            )
        }
    };
    let current = clone
        .read(&task.path)
        .ok_or_else(|| AppError::internal(format!("{} vanished from the clone", task.path)))?;
    let flipped = set_front_matter_field(&current, "status", status.as_str())
        .map_err(|e| AppError::internal(format!("cannot set the status of {}: {e}", task.path)))?;
    clone.write(&task.path, &flipped)?;
    clone
        .commit_all(&format!("{}: {} ({})", task.id, task.title, status))
        .await?;
    // Exactly what the commit changed (the checks' byproducts were thrown away).
    let files = clone.changed_since(&base_sha).await?;
    clone.push(&branch, &config.branch_prefix).await?;
    let pull = NewPull {
        title,
        head: branch.clone(),
        base: repo.default_branch.clone(),
        body,
    };
    let (pr, created) = open_or_find_pr(forge.as_ref(), &name, &pull).await?;
    stats.pr_number = Some(pr.number);
    gaffer.store.record_developer_run(&name, &stats).await?;
    let summary = match action {
        Action::Blocked => format!("{} blocked, explained in PR #{}", task.id, pr.number),
        _ => format!(
            "{} is in_review: its work is in PR #{}, ready for review ({} attempt{})",
            task.id,
            pr.number,
            stats.attempts,
            if stats.attempts == 1 { "" } else { "s" }
        ),
    };
    let mut o = super::pr_outcome(gaffer, ROLE, repo, action, &pr, created, summary).await?;
    o.checks = checks_run;
    o.files = files;
    o.detail = json!({"stats": stats, "proof": proof, "blocked": why_blocked});
    Ok(with_task(o))
}

/// Opens the PR for a branch a crashed run already pushed, when its task file shows the
/// run got as far as flipping the status.
async fn resume(
    gaffer: &Gaffer,
    repo: &Repo,
    clone: &Clone,
    task: &Task,
    branch: &str,
) -> AppResult<Option<Outcome>> {
    clone
        .start_branch(branch, &format!("origin/{branch}"))
        .await?;
    let Some(text) = clone.read(&task.path) else {
        return Ok(None);
    };
    let (pushed, _) = parse_task(&task.path, &text);
    let status = match pushed {
        Some(t) if t.status == Status::InReview || t.status == Status::Blocked => t.status,
        _ => return Ok(None),
    };
    let title = if status == Status::Blocked {
        format!("{}: blocked", task.id)
    } else {
        format!("{}: {}", task.id, task.title)
    };
    let body = format!(
        "{}\n**{}: {}** (`{}`, now `{status}`). This PR was opened on resuming a run that had pushed the branch; see the commits for the change.\n{}",
        marker(&task.id, ROLE),
        task.id,
        task.title,
        task.path,
        crate::issues::pr_footer(task, status == Status::InReview)
    );
    let pull = NewPull {
        title,
        head: branch.to_string(),
        base: repo.default_branch.clone(),
        body,
    };
    let (pr, created) =
        open_or_find_pr(gaffer.forge(repo).as_ref(), &repo.full_name(), &pull).await?;
    let summary = format!(
        "{} resumed: PR #{} from the branch a previous run pushed",
        task.id, pr.number
    );
    let o = super::pr_outcome(gaffer, ROLE, repo, Action::OpenedPr, &pr, created, summary).await?;
    Ok(Some(o))
}

async fn bootstrap_work(
    clone: &Clone,
    checks: &RepoChecks,
    baseline: Option<Baseline>,
    config: &TeamConfig,
) -> Result<Done, Blocked> {
    let io = |e: crate::workspace::WorkspaceError| Blocked {
        reason: e.to_string(),
        checks: None,
    };
    let language = bootstrap::Language::of(&checks.plan);
    for (path, content) in bootstrap::files_to_add(&clone.files().await, language) {
        clone.write(path, content).map_err(io)?;
    }
    let snapshot = clone.snapshot().await.map_err(io)?;
    // The smoke test may be what makes the repo's tests detectable: plan again (the
    // snapshot staged the new files, so they are listed).
    let files = clone.files().await;
    let replanned = RepoChecks {
        plan: crate::workspace::checks::plan_for(clone.dir(), &files, config),
        settings: checks.settings.clone(),
        cache: checks.cache.clone(),
        known_failures: checks.known_failures.clone(),
        coverage_min: checks.coverage_min,
    };
    let run = replanned.run(clone, baseline).await;
    clone.restore(&snapshot).await.map_err(io)?;
    if run.passed || !config.require_tests {
        Ok(Done {
            checks: run,
            proof: None,
            summary: String::new(),
        })
    } else {
        Err(Blocked {
            reason: format!(
                "the repository's checks fail with only the bootstrap files added: {}",
                run.comparison.reason
            ),
            checks: Some(run),
        })
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn model_work(
    gaffer: &Gaffer,
    repo: &Repo,
    clone: &Clone,
    task: &Task,
    config: &TeamConfig,
    checks: &RepoChecks,
    baseline: Baseline,
    stats: &mut DeveloperRun,
    feedback: Option<String>,
) -> Result<Done, Blocked> {
    let repo_llm = gaffer.llm_for(repo);
    let work = &gaffer.settings.work;
    let agent = crate::agent::Agent {
        llm: &repo_llm,
        clone,
        task,
        config,
        checks,
        baseline,
        budget: crate::agent::Budget {
            max_steps: work.max_steps,
            max_tokens: work.max_tokens,
            max_wall: work.max_wall,
            max_finishes: work.max_attempts,
            diff: DiffBudget {
                max_files: work.diff_max_files,
                max_added_lines: work.diff_max_added_lines,
            },
        },
        format: work.edit_format,
        require_proof: needs_proof(task, config),
        feedback,
    };
    let mut agent_stats = crate::agent::AgentStats::default();
    let result = agent.run(&mut agent_stats).await;
    stats.attempts = agent_stats.steps;
    stats.steps = agent_stats.steps;
    stats.well_formed = agent_stats.well_formed;
    stats.malformed = agent_stats.malformed;
    stats.edit_format = agent_stats.edit_format.clone();
    stats.edits_applied = agent_stats.edits_applied;
    stats.edits_undone = agent_stats.edits_undone;
    stats.prompt_tokens = agent_stats.prompt_tokens;
    stats.completion_tokens = agent_stats.completion_tokens;
    stats.applied_first_try = agent_stats.edits_applied > 0 && agent_stats.edits_refused == 0;
    match result {
        Ok(finished) => {
            stats.checks_passed = finished.checks.passed;
            stats.fail_to_pass = finished.proof.as_ref().map(|p| p.proven);
            Ok(Done {
                checks: finished.checks,
                proof: finished.proof,
                summary: finished.summary,
            })
        }
        Err(stopped) => {
            stats.checks_passed = stopped.checks.as_ref().is_some_and(|c| c.passed);
            if agent.require_proof {
                stats.fail_to_pass = Some(false);
            }
            Err(Blocked {
                reason: stopped.reason,
                checks: stopped.checks,
            })
        }
    }
}

/// Whether the change must carry a fail-to-pass test: the repo requires tests
/// (`checks.require_tests`) or the task or its acceptance asks for one.
pub fn needs_proof(task: &Task, config: &TeamConfig) -> bool {
    if config.require_tests {
        return true;
    }
    task.acceptance
        .iter()
        .any(|a| crate::agent::proof::asks_for_tests(a))
}

fn pr_body(task: &Task, done: &Done, stats: &DeveloperRun) -> String {
    let acceptance: Vec<String> = task
        .acceptance
        .iter()
        .map(|a| format!("- [ ] {a}"))
        .collect();
    let summary = if done.summary.trim().is_empty() {
        String::new()
    } else {
        // The model's words: shown as a quote, never as markup of ours.
        format!(
            "\n\n### What the Developer says it did\n> {}",
            crate::llm::prompt::sanitize(done.summary.trim()).replace('\n', "\n> ")
        )
    };
    format!(
        "{}\nImplements **{}: {}** (`{}`, now `in_review`).{summary}\n\n### Acceptance\n{}\n\n### Checks\n{}\n\n### Proof\n{}\n\nMade by gaffer's Developer ({}, {} format) in {} step(s).\n{}",
        marker(&task.id, ROLE),
        task.id,
        task.title,
        task.path,
        acceptance.join("\n"),
        checks_section(&done.checks),
        proof_section(done.proof.as_ref()),
        stats.model,
        stats.edit_format,
        stats.attempts,
        crate::issues::pr_footer(task, true)
    )
}

/// The fail-to-pass evidence as the PR and the Reviewer read it.
pub fn proof_section(proof: Option<&crate::agent::proof::Proof>) -> String {
    match proof {
        None => "not asked for (no test required by the task or the repo)".into(),
        Some(p) => format!(
            "{} {} ({}; test files: {})",
            if p.proven {
                "fail-to-pass: proven."
            } else {
                "fail-to-pass: NOT proven."
            },
            p.summary,
            p.method,
            p.test_files.join(", ")
        ),
    }
}

fn blocked_body(task: &Task, blocked: &Blocked, stats: &DeveloperRun) -> String {
    let checks = blocked
        .checks
        .as_ref()
        .map(checks_section)
        .unwrap_or_else(|| "not run".into());
    let format = if stats.edit_format.is_empty() {
        "no"
    } else {
        &stats.edit_format
    };
    let body = format!(
        "{}\n**{}: {}** could not be done by gaffer's Developer ({}, {format} format, {} step(s)), so this PR only moves the task to `blocked`.\n\n### Why\n```text\n{}\n```\n\n### Last checks\n{}\n\nMerge to record the block; fix the cause (or the task) and set it back to `queued` to retry.\n{}",
        marker(&task.id, ROLE),
        task.id,
        task.title,
        stats.model,
        stats.attempts,
        blocked.reason.replace("```", "'''"),
        checks,
        crate::issues::pr_footer(task, false)
    );
    bounded_body(body)
}

/// A body within GitHub's limit: the middle is cut, saying so, when it is too long.
pub(super) fn bounded_body(body: String) -> String {
    if body.chars().count() <= BODY_MAX_CHARS {
        return body;
    }
    let head: String = body.chars().take(BODY_MAX_CHARS / 2).collect();
    let tail: Vec<char> = body.chars().rev().take(BODY_MAX_CHARS / 2 - 100).collect();
    let tail: String = tail.into_iter().rev().collect();
    format!("{head}\n\n[... cut to fit GitHub's body limit ...]\n\n{tail}")
}

fn checks_section(run: &CheckRun) -> String {
    super::checks_markdown(run)
}

fn first_line(text: &str, max: usize) -> String {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .chars()
        .take(max)
        .collect()
}
