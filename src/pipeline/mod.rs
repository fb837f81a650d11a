//! Scan, status and work-next: read a repo's default branch through its forge, judge it
//! with the pure rules in [`decide`], and keep the result so listings and status need no
//! network call.

pub mod decide;

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use serde_json::{json, Value};

pub use decide::{Decision, IssueCandidate, Step, TaskPull};

use crate::error::{AppError, AppResult};
use crate::forge::{EntryKind, Forge, PullRequest, PullState};
use crate::registry::{Mode, Repo};
use crate::store::{Delivery, DeveloperModelStats, Event};
use crate::team::task::{parse_task, Status, Task, TaskId};
use crate::team::team_config::{self, TeamConfig};
use crate::team::{classify_branch, Problem};
use crate::Gaffer;

/// What a scan found on a repo's default branch.
#[derive(Debug, Clone, Serialize)]
pub struct ScanReport {
    pub repo: String,
    pub mode: Mode,
    pub default_branch: String,
    pub head_sha: String,
    pub scanned_at: String,
    pub config: TeamConfig,
    /// Tasks per state (every state present, zeros included).
    pub counts: BTreeMap<&'static str, usize>,
    pub tasks: Vec<Task>,
    pub problems: Vec<Problem>,
    pub open_task_prs: Vec<TaskPull>,
    /// All open PRs, task PRs or not.
    pub open_prs: usize,
    /// The task the Developer would take next, if that is the next step.
    pub next_task: Option<TaskId>,
    /// Labelled issues the Developer may take (no PR works them yet).
    pub issues: Vec<IssueCandidate>,
    /// Labelled issues left alone, and why (an outsider's, say).
    pub issues_ignored: Vec<IgnoredIssue>,
    pub next: Decision,
}

/// A labelled issue gaffer does not take, with the reason.
#[derive(Debug, Clone, Serialize)]
pub struct IgnoredIssue {
    pub number: u64,
    pub why: String,
}

/// `GET /repos/{owner}/{name}/status`.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub repo: String,
    pub mode: Mode,
    /// The last scan as stored, or `null` before the first scan.
    pub last_scan: Value,
    pub next: Value,
    pub recent_events: Vec<Event>,
    /// Per-model Developer results on this repo: which local model is worth running.
    pub developer_models: Vec<DeveloperModelStats>,
    /// The newest webhook deliveries for this repo and what each caused.
    pub recent_deliveries: Vec<Delivery>,
    /// Deliveries waiting for a retry, dead-lettered or failed, however old (retry dead
    /// and failed ones with `POST /deliveries/{id}/retry`).
    pub unsettled_deliveries: Vec<Delivery>,
}

/// The answer of work-next.
#[derive(Debug, Clone, Serialize)]
pub struct WorkNext {
    pub repo: String,
    pub mode: Mode,
    pub decision: Decision,
    /// Whether a role ran: only in `pr` mode, and only for roles that exist.
    pub acted: bool,
    pub scanned_at: String,
    /// What the role did, when one ran.
    pub outcome: Option<Value>,
    /// The run that does (or did) the step, in `pr` mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<i64>,
}

/// Refuses to work on a disabled repo.
pub fn ensure_enabled(repo: &Repo) -> AppResult<()> {
    if repo.mode == Mode::Disabled {
        return Err(AppError::conflict(format!(
            "repo {} is disabled: set its mode to observe or pr first",
            repo.full_name
        ))
        .with_detail(json!({"mode": "disabled"})));
    }
    Ok(())
}

/// Reads the default branch (config, tasks, PRs), decides the next step, stores the
/// report and records an event.
pub async fn scan(gaffer: &Gaffer, repo: &Repo) -> AppResult<ScanReport> {
    ensure_enabled(repo)?;
    let forge = gaffer.forge(repo);
    let held: HashMap<u64, String> = gaffer
        .store
        .issue_works(&repo.full_name)
        .await?
        .into_iter()
        .map(|w| (w.issue, w.state))
        .collect();
    let mut report = read_repo(forge.as_ref(), repo, &held).await?;
    let json = serde_json::to_string(&report).map_err(|e| AppError::internal(e.to_string()))?;
    report.scanned_at = gaffer.store.save_scan(&repo.full_name(), &json).await?;
    // Store again with the time filled in, so the stored copy says when it was made.
    let json = serde_json::to_string(&report).map_err(|e| AppError::internal(e.to_string()))?;
    gaffer.store.save_scan(&repo.full_name(), &json).await?;
    let errors = report.problems.iter().filter(|p| p.is_error()).count();
    gaffer
        .store
        .add_event(
            &repo.full_name(),
            "scan",
            &format!(
                "{} tasks, {} problems ({errors} errors) at {}; next: {}",
                report.tasks.len(),
                report.problems.len(),
                short(&report.head_sha),
                report.next.reason
            ),
        )
        .await?;
    Ok(report)
}

/// Scans and decides, without acting (`observe` mode, or before a role runs).
pub async fn work_next(gaffer: &Gaffer, repo: &Repo) -> AppResult<WorkNext> {
    let report = scan(gaffer, repo).await?;
    gaffer
        .store
        .add_event(&repo.full_name(), "work-next", &report.next.reason)
        .await?;
    Ok(WorkNext {
        repo: repo.full_name.clone(),
        mode: repo.mode,
        decision: report.next,
        acted: false,
        scanned_at: report.scanned_at,
        outcome: None,
        run: None,
    })
}

/// The last scan, the next step it implies, and recent events; no network call.
pub async fn status(gaffer: &Gaffer, repo: &Repo) -> AppResult<StatusReport> {
    let last_scan = stored_scan(gaffer, repo).await?.unwrap_or(Value::Null);
    Ok(StatusReport {
        repo: repo.full_name.clone(),
        mode: repo.mode,
        next: last_scan.get("next").cloned().unwrap_or(Value::Null),
        last_scan,
        recent_events: gaffer.store.recent_events(&repo.full_name(), 20).await?,
        developer_models: gaffer.store.developer_stats(&repo.full_name()).await?,
        recent_deliveries: gaffer
            .store
            .recent_deliveries(&repo.full_name(), 20)
            .await?,
        unsettled_deliveries: gaffer
            .store
            .unsettled_deliveries(&repo.full_name(), 100)
            .await?,
    })
}

/// The task the Developer would take next, from the last scan (scanning first if the
/// repo was never scanned).
pub async fn next_task(gaffer: &Gaffer, repo: &Repo) -> AppResult<Value> {
    let report = match stored_scan(gaffer, repo).await? {
        Some(report) => report,
        None => serde_json::to_value(scan(gaffer, repo).await?)
            .map_err(|e| AppError::internal(e.to_string()))?,
    };
    let next_id = report.get("next_task").cloned().unwrap_or(Value::Null);
    let task = report["tasks"]
        .as_array()
        .and_then(|tasks| tasks.iter().find(|t| t["id"] == next_id))
        .cloned()
        .unwrap_or(Value::Null);
    Ok(
        json!({"repo": repo.full_name, "task": task, "next": report["next"], "scanned_at": report["scanned_at"]}),
    )
}

async fn stored_scan(gaffer: &Gaffer, repo: &Repo) -> AppResult<Option<Value>> {
    Ok(gaffer
        .store
        .last_scan(&repo.full_name())
        .await?
        .and_then(|text| serde_json::from_str(&text).ok()))
}

/// Reads everything a decision needs from the forge; `held`: the issue states gaffer
/// keeps (stopped, done and blocked issues are not taken again).
async fn read_repo(
    forge: &dyn Forge,
    repo: &Repo,
    held: &HashMap<u64, String>,
) -> AppResult<ScanReport> {
    let name = repo.full_name();
    // Tells "no such repo / no access" apart from "no such branch"; a 304 after the first.
    forge.repo_info(&name).await?;
    let head_sha = forge
        .branch_sha(&name, &repo.default_branch)
        .await?
        .ok_or_else(|| {
            AppError::conflict(format!(
                "default branch {} not found in {}: fix the repo's default_branch",
                repo.default_branch, repo.full_name
            ))
        })?;
    let config_file = forge.file(&name, team_config::PATH, &head_sha).await?;
    let (config, mut problems) = team_config::parse(config_file.as_ref().map(|f| f.text.as_str()));

    let mut tasks: Vec<Task> = Vec::new();
    match forge.list_dir(&name, &config.tasks_dir, &head_sha).await? {
        None => problems.push(Problem::warning(
            &config.tasks_dir,
            None,
            format!(
                "no {}/ directory yet: the Taskmaster will create it",
                config.tasks_dir
            ),
        )),
        Some(entries) => {
            for entry in entries {
                let is_task_file = entry.kind == EntryKind::File
                    && entry.name.ends_with(".md")
                    && !entry.name.starts_with('_');
                if !is_task_file {
                    continue;
                }
                let Some(file) = forge.file(&name, &entry.path, &head_sha).await? else {
                    continue;
                };
                let (task, found) = parse_task(&entry.path, &file.text);
                problems.extend(found);
                tasks.extend(task);
            }
        }
    }
    let mut seen = HashSet::new();
    let mut unique = Vec::new();
    for task in tasks {
        if seen.insert(task.id.clone()) {
            unique.push(task);
        } else {
            problems.push(Problem::error(
                &task.path,
                Some("id"),
                format!(
                    "{} is used by another task file too; this one is ignored",
                    task.id
                ),
            ));
        }
    }
    let tasks = unique;

    let open = forge.list_pulls(&name, PullState::Open).await?;
    let closed = forge.list_pulls(&name, PullState::Closed).await?;
    let open_task_prs = task_pulls(&config, &open);
    let merged_task_prs: Vec<TaskPull> = task_pulls(&config, &closed)
        .into_iter()
        .filter(|p| p.merged)
        .collect();

    let known: HashSet<&TaskId> = tasks.iter().map(|t| &t.id).collect();
    for task in &tasks {
        for dep in task.depends_on.iter().filter(|d| !known.contains(d)) {
            problems.push(Problem::error(
                &task.path,
                Some("depends_on"),
                format!("{} depends on {dep}, which does not exist", task.id),
            ));
        }
        let has_pr = open_task_prs
            .iter()
            .chain(&merged_task_prs)
            .any(|p| p.task == task.id);
        if task.status == Status::InReview && !has_pr {
            problems.push(Problem::error(
                &task.path,
                Some("status"),
                format!(
                    "{} is in_review but no PR for it is open or merged",
                    task.id
                ),
            ));
        }
    }
    for id in decide::tasks_in_cycles(&tasks) {
        let path = tasks
            .iter()
            .find(|t| t.id == id)
            .map(|t| t.path.as_str())
            .unwrap_or_default();
        problems.push(Problem::error(
            path,
            Some("depends_on"),
            format!("{id} is in a dependency cycle"),
        ));
    }

    let (issues, issues_ignored) =
        issue_candidates(forge, repo, &open, &closed, held, &mut problems).await;
    let next = decide::decide(&decide::RepoState {
        config: &config,
        tasks: &tasks,
        open_pulls: &open_task_prs,
        merged_pulls: &merged_task_prs,
        issues: &issues,
    });
    let mut counts: BTreeMap<&'static str, usize> =
        Status::ALL.iter().map(|s| (s.as_str(), 0)).collect();
    for task in &tasks {
        *counts.entry(task.status.as_str()).or_default() += 1;
    }
    Ok(ScanReport {
        repo: repo.full_name.clone(),
        mode: repo.mode,
        default_branch: repo.default_branch.clone(),
        head_sha,
        scanned_at: String::new(),
        next_task: match &next.step {
            Step::Developer { task } => Some(task.clone()),
            _ => None,
        },
        next,
        config,
        counts,
        tasks,
        problems,
        open_task_prs,
        open_prs: open.len(),
        issues,
        issues_ignored,
    })
}

/// The labelled issues the Developer may take, and those it leaves alone with the reason.
/// An issue is taken when it is open, carries the repo's trigger label, its author may
/// start roles ([`crate::safety::trust`]), no PR of gaffer's (open, merged or closed)
/// names it, and gaffer has not recorded it done, blocked or stopped. A listing that fails
/// (a token without issue access) is a warning, not a failed scan.
async fn issue_candidates(
    forge: &dyn Forge,
    repo: &Repo,
    open: &[PullRequest],
    closed: &[PullRequest],
    held: &HashMap<u64, String>,
    problems: &mut Vec<Problem>,
) -> (Vec<IssueCandidate>, Vec<IgnoredIssue>) {
    let label = &repo.overrides.labels.trigger;
    let listed = match forge.list_issues(&repo.full_name(), label).await {
        Ok(listed) => listed,
        Err(e) => {
            problems.push(Problem::warning(
                "issues",
                None,
                format!("cannot list issues labelled {label}: {e}"),
            ));
            return (Vec::new(), Vec::new());
        }
    };
    if listed.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let identity = forge.identity().await.ok();
    let claimed: HashSet<u64> = open
        .iter()
        .chain(closed)
        .filter(|p| {
            identity
                .as_deref()
                .is_some_and(|me| me.eq_ignore_ascii_case(&p.author))
        })
        .filter_map(|p| crate::issues::issue_in_body(&p.body))
        .collect();
    let (mut take, mut ignored) = (Vec::new(), Vec::new());
    for issue in listed {
        if claimed.contains(&issue.number) {
            continue;
        }
        if let Some(state) = held
            .get(&issue.number)
            .filter(|s| matches!(s.as_str(), "done" | "blocked" | "stopped"))
        {
            ignored.push(IgnoredIssue {
                number: issue.number,
                why: format!("gaffer recorded it {state} (comment /gaffer retry to take it again)"),
            });
            continue;
        }
        match crate::safety::trust::may_start_role(
            repo,
            identity.as_deref(),
            &issue.author,
            issue.author_association.as_deref(),
        ) {
            Ok(_) => take.push(IssueCandidate {
                number: issue.number,
                title: issue.title,
                author: issue.author,
            }),
            Err(why) => ignored.push(IgnoredIssue {
                number: issue.number,
                why: format!("not taken: {why}"),
            }),
        }
    }
    take.sort_by_key(|i| i.number);
    (take, ignored)
}

/// A repo's `.llm-team.yml` at a ref (defaults when absent or broken).
pub async fn read_team_config(
    forge: &dyn Forge,
    repo: &Repo,
    git_ref: &str,
) -> AppResult<TeamConfig> {
    let file = forge
        .file(&repo.full_name(), team_config::PATH, git_ref)
        .await?;
    Ok(team_config::parse(file.as_ref().map(|f| f.text.as_str())).0)
}

/// One task, read at a ref, with its file's text (`None` when there is no valid file).
pub async fn read_task(
    forge: &dyn Forge,
    repo: &Repo,
    config: &TeamConfig,
    id: &TaskId,
    git_ref: &str,
) -> AppResult<Option<(Task, String)>> {
    let name = repo.full_name();
    let Some(entries) = forge.list_dir(&name, &config.tasks_dir, git_ref).await? else {
        return Ok(None);
    };
    for entry in entries {
        if entry.kind != EntryKind::File || TaskId::prefix_of(&entry.name).as_ref() != Some(id) {
            continue;
        }
        if let Some(file) = forge.file(&name, &entry.path, git_ref).await? {
            if let (Some(task), _) = parse_task(&entry.path, &file.text) {
                return Ok(Some((task, file.text)));
            }
        }
    }
    Ok(None)
}

fn task_pulls(config: &TeamConfig, pulls: &[PullRequest]) -> Vec<TaskPull> {
    pulls
        .iter()
        .filter_map(|p| {
            let (kind, task) = classify_branch(&config.branch_prefix, &p.head_ref)?;
            Some(TaskPull {
                number: p.number,
                kind,
                task,
                title: p.title.clone(),
                head_ref: p.head_ref.clone(),
                head_sha: p.head_sha.clone(),
                merged: p.is_merged(),
            })
        })
        .collect()
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(7)]
}
