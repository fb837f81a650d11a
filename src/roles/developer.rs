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
use crate::llm::prompt::{Prompt, Source, DEVELOPER_SYSTEM};
use crate::llm::{Llm, LlmError, Role};
use crate::pipeline::{self, ScanReport, Step};
use crate::registry::{Mode, Repo};
use crate::store::DeveloperRun;
use crate::team::task::{self, next_id, parse_task, set_front_matter_field, Status, Task, TaskId};
use crate::team::team_config::TeamConfig;
use crate::team::{branch_name, PullKind};
use crate::workspace::checks::{Baseline, CheckRun};
use crate::workspace::edits::{self, DiffBudget};
use crate::workspace::Clone;
use crate::Gaffer;

const ROLE: &str = "developer";
/// Files larger than this are listed but not shown to the model.
const MAX_FILE_BYTES: u64 = 48 * 1024;

/// A finished change, ready to be proposed.
struct Done {
    checks: CheckRun,
}

/// Why the task could not be done, and what was last seen.
struct Blocked {
    reason: String,
    checks: Option<CheckRun>,
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
        )
        .await
    } else {
        Err(Blocked {
            reason: "no Developer model is configured (LLM_DEVELOPER_MODEL=none), and only the bootstrap task is done without one".into(),
            checks: None,
        })
    };

    let (status, title, body, action, checks_run) = match work {
        Ok(done) => {
            stats.outcome = "pr".into();
            let body = pr_body(&task, &done.checks, &stats);
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
    o.detail = json!({"stats": stats});
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
        "{}\n**{}: {}** (`{}`, now `{status}`). This PR was opened on resuming a run that had pushed the branch; see the commits for the change.\n",
        marker(&task.id, ROLE),
        task.id,
        task.title,
        task.path
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
    };
    let run = replanned.run(clone, baseline).await;
    clone.restore(&snapshot).await.map_err(io)?;
    if run.passed || !config.require_tests {
        Ok(Done { checks: run })
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
async fn model_work(
    gaffer: &Gaffer,
    repo: &Repo,
    clone: &Clone,
    task: &Task,
    config: &TeamConfig,
    checks: &RepoChecks,
    baseline: Baseline,
    stats: &mut DeveloperRun,
) -> Result<Done, Blocked> {
    let command = checks.plan.test.as_str();
    let repo_llm = gaffer.llm_for(repo);
    let llm: &dyn Llm = &repo_llm;
    let budget = DiffBudget {
        max_files: gaffer.settings.work.diff_max_files,
        max_added_lines: gaffer.settings.work.diff_max_added_lines,
    };
    // Model edits never touch task files either.
    let mut guarded = config.clone();
    guarded
        .protected_paths
        .push(format!("{}/", config.tasks_dir));
    let max = gaffer.settings.work.max_attempts;
    let mut feedback: Option<String> = None;
    let mut last_checks = None;
    for attempt in 1..=max {
        stats.attempts = attempt;
        clone.reset().await.map_err(|e| Blocked {
            reason: e.to_string(),
            checks: None,
        })?;
        let messages = developer_prompt(clone, task, config, command, feedback.as_deref())
            .await
            .render(Role::Developer, llm.prompt_budget(Role::Developer))
            .map_err(|e| Blocked {
                reason: e.to_string(),
                checks: None,
            })?;
        let reply = match llm.chat(Role::Developer, &messages, None).await {
            Ok(reply) => reply,
            Err(e @ (LlmError::Empty { .. } | LlmError::CutOff { .. })) => {
                stats.malformed += 1;
                feedback = Some(format!("Your previous reply could not be used: {e}. Keep the edits short and complete."));
                continue;
            }
            Err(e) => {
                return Err(Blocked {
                    reason: e.to_string(),
                    checks: None,
                })
            }
        };
        let blocks = match edits::parse(&reply.text) {
            Ok(blocks) => {
                stats.well_formed += 1;
                blocks
            }
            Err(why) => {
                stats.malformed += 1;
                feedback = Some(format!("Your previous reply had no usable edits: {why}."));
                continue;
            }
        };
        let applied = edits::apply(clone.dir(), &blocks, &guarded);
        stats.lazy_placeholders += applied.lazy_placeholders as u32;
        if !applied.failures.is_empty() {
            feedback = Some(format!(
                "Some edits of your previous reply could not be applied, so none were kept:\n- {}",
                applied.failures.join("\n- ")
            ));
            continue;
        }
        // A change that no longer parses is refused before any check runs.
        let broken = edits::syntax_errors(clone.dir(), &applied.files).await;
        if !broken.is_empty() {
            feedback = Some(format!(
                "Your previous edits applied, but left files that no longer parse, so none were kept:\n- {}",
                broken.join("\n- ")
            ));
            continue;
        }
        if attempt == 1 {
            stats.applied_first_try = true;
        }
        let (files, added) = clone.diff_size().await.map_err(|e| Blocked {
            reason: e.to_string(),
            checks: None,
        })?;
        if let Err(why) = edits::check_budget(files, added, budget) {
            feedback = Some(format!(
                "Your previous change was too large: {why}. Make a smaller change."
            ));
            continue;
        }
        // Whatever the checks create or change is thrown away afterwards: only the
        // model's change is committed.
        let io = |e: crate::workspace::WorkspaceError| Blocked {
            reason: e.to_string(),
            checks: None,
        };
        let snapshot = clone.snapshot().await.map_err(io)?;
        let run = checks.run(clone, Some(baseline.clone())).await;
        clone.restore(&snapshot).await.map_err(io)?;
        if run.passed || !config.require_tests {
            return Ok(Done { checks: run });
        }
        feedback = Some(format!(
            "Your previous change applied, but the checks (`{command}`) failed: {}\n```\n{}\n```\nFix the code so they pass.",
            run.comparison.reason,
            run.output_tail
        ));
        last_checks = Some(run);
    }
    Err(Blocked {
        reason: format!(
            "no passing change after {max} attempts; last problem: {}",
            first_line(feedback.as_deref().unwrap_or("unknown"), 300)
        ),
        checks: last_checks,
    })
}

/// The Developer's prompt: the task, the file list, the relevant files (trimmed first when
/// the context is short), the checks command and the previous attempt's failure.
async fn developer_prompt(
    clone: &Clone,
    task: &Task,
    config: &TeamConfig,
    command: &str,
    feedback: Option<&str>,
) -> Prompt {
    let files = clone.files().await;
    let mut relevant: Vec<&String> = files
        .iter()
        .filter(|f| !f.starts_with(&format!("{}/", config.tasks_dir)) && !f.starts_with(".github/"))
        .collect();
    relevant.sort_by_key(|f| (!(f.starts_with("src/") || f.starts_with("tests/")), f.len()));
    let mut contents = String::new();
    for path in relevant {
        // Read through the path guard: a committed symlink never pulls a file from
        // outside the clone (say /proc/self/environ) into the prompt.
        if let Some(text) = clone
            .read(path)
            .filter(|t| t.len() as u64 <= MAX_FILE_BYTES)
        {
            contents.push_str(&format!("### {path}\n```\n{text}\n```\n\n"));
        }
    }
    let acceptance: Vec<String> = task.acceptance.iter().map(|a| format!("- {a}")).collect();
    let task_text = format!(
        "{}: {}\n\nAcceptance criteria:\n{}\n\n{}",
        task.id,
        task.title,
        acceptance.join("\n"),
        task.body
    );
    let mut prompt = Prompt::new(DEVELOPER_SYSTEM)
        .required("Task", &task_text, Source::Untrusted)
        .required(
            "Rules",
            "Edit only files inside the repository. The repository's settings (the checks command and the paths you must not edit) are given as data below.",
            Source::Trusted,
        )
        // The command and the protected paths come from the repo's .llm-team.yml: data.
        .required(
            "Repository settings",
            &format!(
                "checks command: {command}\nprotected paths: {}, {}/",
                config.protected_paths.join(", "),
                config.tasks_dir
            ),
            Source::Untrusted,
        )
        .trimmable("Files in the repository", &files.join("\n"), Source::Untrusted, 2)
        .trimmable("Current file contents", &contents, Source::Untrusted, 1);
    if let Some(feedback) = feedback {
        // It quotes check output and parse errors of the model's own text: data.
        prompt = prompt.required("What went wrong last time", feedback, Source::Untrusted);
    }
    prompt
}

fn pr_body(task: &Task, checks: &CheckRun, stats: &DeveloperRun) -> String {
    let acceptance: Vec<String> = task
        .acceptance
        .iter()
        .map(|a| format!("- [ ] {a}"))
        .collect();
    format!(
        "{}\nImplements **{}: {}** (`{}`, now `in_review`).\n\n### Acceptance\n{}\n\n### Checks\n{}\n\nMade by gaffer's Developer ({}) in {} attempt(s).\n",
        marker(&task.id, ROLE),
        task.id,
        task.title,
        task.path,
        acceptance.join("\n"),
        checks_section(checks),
        stats.model,
        stats.attempts
    )
}

fn blocked_body(task: &Task, blocked: &Blocked, stats: &DeveloperRun) -> String {
    let checks = blocked
        .checks
        .as_ref()
        .map(checks_section)
        .unwrap_or_else(|| "not run".into());
    format!(
        "{}\n**{}: {}** could not be done by gaffer's Developer ({}, {} attempt(s)), so this PR only moves the task to `blocked`.\n\n### Why\n{}\n\n### Last checks\n{}\n\nMerge to record the block; fix the cause (or the task) and set it back to `queued` to retry.\n",
        marker(&task.id, ROLE),
        task.id,
        task.title,
        stats.model,
        stats.attempts,
        blocked.reason,
        checks
    )
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
