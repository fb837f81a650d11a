//! The Taskmaster: when no task is `queued`, plan the next one and propose it as a PR adding
//! `tasks/T-NNNN-slug.md` (never a direct commit). Before any task exists, or without a
//! model, it proposes the built-in bootstrap task.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use super::{bootstrap, ensure_pr_mode, ids_in_use, marker, Action, Outcome};
use crate::error::AppResult;
use crate::forge::NewPull;
use crate::llm::prompt::{Prompt, Source, TASKMASTER_SYSTEM};
use crate::llm::{ask_structured, Llm, Role};
use crate::pipeline::{self, ScanReport};
use crate::registry::{Mode, Repo};
use crate::team::task::{self, next_id, Priority, Status, TaskId, TaskType};
use crate::team::{branch_name, PullKind};
use crate::Gaffer;

const ROLE: &str = "taskmaster";

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum PlanType {
    Feature,
    Bugfix,
    Doc,
    Chore,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
enum PlanPriority {
    P0,
    P1,
    P2,
    P3,
}

/// What the model is asked to return.
#[derive(Debug, Deserialize, JsonSchema)]
struct TaskPlan {
    title: String,
    #[serde(rename = "type")]
    task_type: PlanType,
    priority: PlanPriority,
    depends_on: Vec<String>,
    acceptance: Vec<String>,
    body: String,
}

/// A planned task, ready to be written.
struct Planned {
    title: String,
    text: String,
    planner: String,
}

/// Runs the Taskmaster on a repo: a PR with the next task, or the reason there is none.
pub async fn run(gaffer: &Gaffer, repo: &Repo) -> AppResult<Outcome> {
    let _turn = gaffer.turns.lock(&repo.full_name).await;
    if repo.mode != Mode::Observe {
        ensure_pr_mode(repo)?;
    }
    let report = pipeline::scan(gaffer, repo).await?;
    let config = &report.config;
    let nothing = |why: String| Ok(Outcome::new(ROLE, repo, Action::Nothing, why));
    if !config.roles.taskmaster {
        return nothing("the Taskmaster is disabled in .llm-team.yml".into());
    }
    if let Some(open) = report
        .open_task_prs
        .iter()
        .find(|p| p.kind == PullKind::Plan)
    {
        let summary = format!(
            "the plan for {} is already open in PR #{}",
            open.task, open.number
        );
        return Ok(Outcome::existing(ROLE, repo, open, summary));
    }
    // One task in flight at a time: a task still in an open PR may not be on main yet.
    if let Some(open) = report.open_task_prs.first() {
        return nothing(format!(
            "{} is in open PR #{}; planning waits until it is merged or closed",
            open.task, open.number
        ));
    }
    if let Some(queued) = report.tasks.iter().find(|t| t.status == Status::Queued) {
        return nothing(format!("{} is queued already; nothing to plan", queued.id));
    }
    let id = next_id(&ids_in_use(&report));
    let Some(planned) = plan(gaffer, repo, &report, &id).await? else {
        return nothing("no Taskmaster model (LLM_TASKMASTER_MODEL=none) to plan beyond the built-in bootstrap task".into());
    };
    let path = format!(
        "{}/{}",
        config.tasks_dir,
        task::file_name(&id, &planned.title)
    );
    let branch = branch_name(&config.branch_prefix, PullKind::Plan, &id, &planned.title);
    if repo.mode == Mode::Observe || config.dry_run {
        let mut outcome = Outcome::new(
            ROLE,
            repo,
            Action::Preview,
            format!(
                "would propose {id} \"{}\" in a PR from {branch}",
                planned.title
            ),
        );
        outcome.task = Some(id);
        outcome.files = vec![path];
        outcome.detail = json!({"branch": branch, "task_file": planned.text});
        return Ok(outcome);
    }

    let body = format!(
        "{}\nThe Taskmaster ({}) proposes a new task, **{id}: {}**, in `{path}`.\n\nMerge this PR to queue it for the Developer; close it to drop it.\n",
        marker(&id, ROLE),
        planned.planner,
        planned.title
    );
    let pull = NewPull {
        title: format!("{id}: {} (new task)", planned.title),
        head: branch.clone(),
        base: repo.default_branch.clone(),
        body,
    };
    let (pr, created) = super::propose(
        gaffer,
        repo,
        &config.branch_prefix,
        &[(path.as_str(), planned.text.as_str())],
        &format!("{id}: plan \"{}\"", planned.title),
        &pull,
    )
    .await?;
    let summary = format!("proposed {id} \"{}\" in PR #{}", planned.title, pr.number);
    let mut outcome =
        super::pr_outcome(gaffer, ROLE, repo, Action::OpenedPr, &pr, created, summary).await?;
    outcome.task = Some(id);
    outcome.files = vec![path];
    Ok(outcome)
}

/// The next task: the bootstrap task when the repo has none (or there is no model),
/// else the model's plan from `docs/PRD.md`. `None` when there is nothing to plan with.
async fn plan(
    gaffer: &Gaffer,
    repo: &Repo,
    report: &ScanReport,
    id: &TaskId,
) -> AppResult<Option<Planned>> {
    let has_bootstrap = report
        .tasks
        .iter()
        .any(|t| bootstrap::is_bootstrap(&t.title));
    let llm = gaffer.llm_for(repo);
    let model = llm.model(Role::Taskmaster);
    if !has_bootstrap && (report.tasks.is_empty() || model.is_none()) {
        return Ok(Some(Planned {
            title: bootstrap::TITLE.into(),
            text: bootstrap::task_file(id, Status::Queued),
            planner: "built-in bootstrap".into(),
        }));
    }
    let Some(model) = model else { return Ok(None) };
    let forge = gaffer.forge(repo);
    let prd = forge
        .file(&repo.full_name(), "docs/PRD.md", &report.head_sha)
        .await?
        .map(|f| f.text)
        .unwrap_or_else(|| {
            "(this repository has no docs/PRD.md; plan from the existing tasks)".into()
        });
    let existing: Vec<String> = report
        .tasks
        .iter()
        .map(|t| format!("- {} [{}] {} ({})", t.id, t.status, t.title, t.priority))
        .collect();
    let messages = Prompt::new(TASKMASTER_SYSTEM)
        .required(
            "New task id",
            &format!("The new task will be {id}."),
            Source::Trusted,
        )
        .required("Existing tasks", &existing.join("\n"), Source::Untrusted)
        .trimmable(
            "Product requirements (docs/PRD.md)",
            &prd,
            Source::Untrusted,
            1,
        )
        .render(Role::Taskmaster, llm.prompt_budget(Role::Taskmaster))?;
    let retries = gaffer.settings.llm.structured_retries;
    let (plan, _) = ask_structured::<TaskPlan>(&llm, Role::Taskmaster, messages, retries).await?;
    let title = plan
        .title
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .chars()
        .take(100)
        .collect::<String>();
    let acceptance: Vec<String> = plan
        .acceptance
        .into_iter()
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
        .take(8)
        .collect();
    if title.is_empty() || acceptance.is_empty() {
        return Err(crate::llm::LlmError::BadAnswer {
            role: Role::Taskmaster,
            model,
            attempts: 1,
            error: "the plan had no title or no acceptance criteria".into(),
        }
        .into());
    }
    let known: Vec<&TaskId> = report.tasks.iter().map(|t| &t.id).collect();
    let depends_on: Vec<TaskId> = plan
        .depends_on
        .iter()
        .filter_map(|d| TaskId::parse(d.trim()))
        .filter(|d| known.contains(&d))
        .collect();
    let text = bootstrap::render_task(&bootstrap::TaskFields {
        id,
        title: &title,
        task_type: match plan.task_type {
            PlanType::Feature => TaskType::Feature,
            PlanType::Bugfix => TaskType::Bugfix,
            PlanType::Doc => TaskType::Doc,
            PlanType::Chore => TaskType::Chore,
        },
        priority: match plan.priority {
            PlanPriority::P0 => Priority::P0,
            PlanPriority::P1 => Priority::P1,
            PlanPriority::P2 => Priority::P2,
            PlanPriority::P3 => Priority::P3,
        },
        depends_on: &depends_on,
        status: Status::Queued,
        estimate: "2h",
        acceptance: &acceptance,
        body: &plan.body,
    });
    Ok(Some(Planned {
        title,
        text,
        planner: model,
    }))
}
