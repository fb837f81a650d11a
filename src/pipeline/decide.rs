//! What should happen next in a repo, and why: a pure function of the scanned state, so
//! every rule is unit-tested without a forge.
//!
//! The rules, in order:
//! 1. A task still `in_review` whose Developer PR was merged gets the Integrator; so does
//!    a task `ready_for_integration` with no open task PR (its move to `done`, keyed by
//!    its newest merged task PR).
//! 2. While any task PR is open, nothing new starts (one task in flight at a time keeps
//!    branches from conflicting and reviews meaningful).
//! 3. An issue labelled for gaffer by a trusted author, with no PR yet, gets the
//!    Developer (oldest first).
//! 4. The most urgent `queued` task whose dependencies are all `done` gets the Developer
//!    (priority P0 first, then lowest id).
//! 5. With no `queued` task at all, the Taskmaster plans one.
//!
//! A role switched off in `.llm-team.yml` is never chosen; the reason says what would
//! have run.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use crate::team::task::{Status, Task, TaskId};
use crate::team::team_config::TeamConfig;
use crate::team::PullKind;

/// A pull request tied to a task by its branch name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskPull {
    pub number: u64,
    pub kind: PullKind,
    pub task: TaskId,
    pub title: String,
    pub head_ref: String,
    pub head_sha: String,
    pub merged: bool,
}

/// What `decide` looks at.
#[derive(Debug, Clone)]
pub struct RepoState<'a> {
    pub config: &'a TeamConfig,
    pub tasks: &'a [Task],
    pub open_pulls: &'a [TaskPull],
    /// Recently closed task PRs that were merged.
    pub merged_pulls: &'a [TaskPull],
    /// Labelled issues by trusted authors that no PR works yet (oldest first).
    pub issues: &'a [IssueCandidate],
}

/// An issue the Developer may take: open, labelled for gaffer, by a trusted author, with
/// no PR of gaffer's working it and not stopped, done or blocked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IssueCandidate {
    pub number: u64,
    pub title: String,
    pub author: String,
}

/// The role to run next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "role", rename_all = "lowercase")]
pub enum Step {
    Taskmaster,
    Developer {
        task: TaskId,
    },
    /// The Developer works a labelled issue directly (its task file comes in the same PR).
    Issue {
        number: u64,
    },
    Integrator {
        task: TaskId,
        pull: u64,
    },
    Nothing,
}

/// The next step and a one-line reason a user can read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    #[serde(flatten)]
    pub step: Step,
    pub reason: String,
}

impl Decision {
    fn new(step: Step, reason: impl Into<String>) -> Decision {
        Decision {
            step,
            reason: reason.into(),
        }
    }
}

/// Decides the next step for a repo.
pub fn decide(state: &RepoState<'_>) -> Decision {
    let roles = &state.config.roles;
    let by_id: HashMap<&TaskId, &Task> = state.tasks.iter().map(|t| (&t.id, t)).collect();
    let open_for = |id: &TaskId| state.open_pulls.iter().find(|p| &p.task == id);

    // 1. Merged work whose task file still says in_review.
    let in_review = in_state(state.tasks, Status::InReview);
    for task in &in_review {
        if open_for(&task.id).is_some() {
            continue;
        }
        if let Some(merged) = state
            .merged_pulls
            .iter()
            .find(|p| p.task == task.id && p.kind == PullKind::Develop)
        {
            return integrator_step(
                roles.integrator,
                task,
                merged.number,
                format!("PR #{} merged, task still in_review", merged.number),
                format!("was merged in PR #{}", merged.number),
            );
        }
    }

    // 1b. Ready for integration, nothing open: the Integrator moves it on to done.
    let ready = in_state(state.tasks, Status::ReadyForIntegration);
    for task in &ready {
        if open_for(&task.id).is_some() {
            continue;
        }
        // The newest merged work or integration PR of the task: what the move follows.
        let Some(merged) = state
            .merged_pulls
            .iter()
            .filter(|p| p.task == task.id && p.kind != PullKind::Plan)
            .max_by_key(|p| p.number)
        else {
            continue;
        };
        return integrator_step(
            roles.integrator,
            task,
            merged.number,
            format!(
                "ready_for_integration after PR #{} merged, moving it to done",
                merged.number
            ),
            "is ready_for_integration".into(),
        );
    }

    // 2. One task in flight at a time.
    if let Some(open) = state.open_pulls.iter().min_by_key(|p| p.number) {
        let what = match open.kind {
            PullKind::Plan => format!(
                "the plan for {} waits for merge in PR #{}",
                open.task, open.number
            ),
            PullKind::Develop => format!("{} in review in PR #{}", open.task, open.number),
            PullKind::Integrate => format!(
                "{} waits for its integration PR #{}",
                open.task, open.number
            ),
        };
        return Decision::new(Step::Nothing, format!("nothing: {what}"));
    }

    // 3. Issues handed to gaffer come before planned work, oldest first.
    if let Some(issue) = state.issues.iter().min_by_key(|i| i.number) {
        return if roles.developer {
            Decision::new(
                Step::Issue {
                    number: issue.number,
                },
                format!(
                    "Developer on issue #{}: labelled for gaffer, by {}",
                    issue.number, issue.author
                ),
            )
        } else {
            Decision::new(
                Step::Nothing,
                format!(
                    "nothing: issue #{} waits, but the Developer is disabled in .llm-team.yml",
                    issue.number
                ),
            )
        };
    }

    // 4. The most urgent ready task.
    let cycles = tasks_in_cycles(state.tasks);
    let mut queued: Vec<&Task> = state
        .tasks
        .iter()
        .filter(|t| t.status == Status::Queued)
        .collect();
    queued.sort_by(|a, b| a.priority.cmp(&b.priority).then(a.id.cmp(&b.id)));
    let mut waiting = Vec::new();
    for task in &queued {
        if let Some(why) = human_only(task) {
            waiting.push(format!("{} {why}", task.id));
            continue;
        }
        if cycles.contains(&task.id) {
            waiting.push(format!("{} is in a dependency cycle", task.id));
            continue;
        }
        let blockers: Vec<String> = task
            .depends_on
            .iter()
            .filter_map(|dep| match by_id.get(dep) {
                Some(d) if d.status == Status::Done => None,
                Some(d) => Some(format!("{dep} ({})", d.status)),
                None => Some(format!("{dep} (missing)")),
            })
            .collect();
        if !blockers.is_empty() {
            waiting.push(format!("{} waits on {}", task.id, blockers.join(", ")));
            continue;
        }
        let deps = if task.depends_on.is_empty() {
            "no deps".to_string()
        } else {
            format!(
                "deps {} done",
                task.depends_on
                    .iter()
                    .map(TaskId::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let why = format!("{}: queued, {}, {deps}", task.id, task.priority);
        return if roles.developer {
            Decision::new(
                Step::Developer {
                    task: task.id.clone(),
                },
                format!("Developer on {why}"),
            )
        } else {
            Decision::new(
                Step::Nothing,
                format!("nothing: the Developer is disabled in .llm-team.yml ({why})"),
            )
        };
    }
    if !queued.is_empty() {
        return Decision::new(Step::Nothing, format!("nothing: {}", waiting.join("; ")));
    }

    // 5. Nothing queued: plan.
    if roles.taskmaster {
        Decision::new(Step::Taskmaster, "Taskmaster: no queued task")
    } else {
        Decision::new(
            Step::Nothing,
            "nothing: no queued task and the Taskmaster is disabled in .llm-team.yml",
        )
    }
}

/// The Integrator on `task` after merged PR `pull` (`why` it runs), or nothing when the
/// Integrator is disabled (saying what the task `is`).
fn integrator_step(enabled: bool, task: &Task, pull: u64, why: String, is: String) -> Decision {
    if enabled {
        Decision::new(
            Step::Integrator {
                task: task.id.clone(),
                pull,
            },
            format!("Integrator on {}: {why}", task.id),
        )
    } else {
        Decision::new(
            Step::Nothing,
            format!(
                "nothing: {} {is} but the Integrator is disabled in .llm-team.yml",
                task.id
            ),
        )
    }
}

/// The tasks in `status`, by id.
fn in_state(tasks: &[Task], status: Status) -> Vec<&Task> {
    let mut found: Vec<&Task> = tasks.iter().filter(|t| t.status == status).collect();
    found.sort_by(|a, b| a.id.cmp(&b.id));
    found
}

/// Owners that mean "the crew may take it" (a gaffer role, or nobody yet).
const CREW_OWNERS: &[&str] = &[
    "",
    "none",
    "unassigned",
    "gaffer",
    "developer",
    "taskmaster",
    "planner",
    "reviewer",
    "integrator",
];

/// Why the crew must leave a task to a person (`auto_policy: manual`, or an owner who is
/// a person), if so; an explicit `run developer --task` still takes it.
pub fn human_only(task: &Task) -> Option<String> {
    if task
        .auto_policy
        .as_deref()
        .is_some_and(|p| p.eq_ignore_ascii_case("manual"))
    {
        return Some("is auto_policy: manual (humans only)".into());
    }
    match task.owner.as_deref().map(str::trim) {
        Some(owner) if !CREW_OWNERS.iter().any(|o| o.eq_ignore_ascii_case(owner)) => {
            Some(format!("is owned by {owner}"))
        }
        _ => None,
    }
}

/// Ids of tasks that sit on a `depends_on` cycle.
pub fn tasks_in_cycles(tasks: &[Task]) -> BTreeSet<TaskId> {
    let graph: BTreeMap<&TaskId, &Vec<TaskId>> =
        tasks.iter().map(|t| (&t.id, &t.depends_on)).collect();
    let mut on_cycle = BTreeSet::new();
    // A task is on a cycle when it can reach itself.
    for start in graph.keys() {
        let mut stack: Vec<&TaskId> = graph[start].iter().collect();
        let mut seen = BTreeSet::new();
        while let Some(node) = stack.pop() {
            if node == *start {
                on_cycle.insert((*start).clone());
                break;
            }
            if seen.insert(node) {
                if let Some(next) = graph.get(node) {
                    stack.extend(next.iter());
                }
            }
        }
    }
    on_cycle
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::team::task::{Priority, TaskType};

    fn task(id: &str, status: Status, priority: Priority, deps: &[&str]) -> Task {
        Task {
            path: format!("tasks/{id}-x.md"),
            id: TaskId::parse(id).unwrap(),
            title: format!("task {id}"),
            task_type: TaskType::Feature,
            priority,
            depends_on: deps.iter().map(|d| TaskId::parse(d).unwrap()).collect(),
            status,
            owner: None,
            estimate: None,
            acceptance: vec![],
            auto_policy: None,
            source: None,
            body: String::new(),
        }
    }

    #[test]
    fn manual_and_human_owned_tasks_are_left_to_people() {
        let mut manual = task("T-0001", Queued, P0, &[]);
        manual.auto_policy = Some("manual".into());
        let mut alices = task("T-0002", Queued, P0, &[]);
        alices.owner = Some("alice".into());
        let mut crews = task("T-0003", Queued, P2, &[]);
        crews.owner = Some("developer".into());
        crews.auto_policy = Some("pr".into());
        let d = run(&[manual.clone(), alices.clone(), crews], &[], &[]);
        assert_eq!(
            d.step,
            Step::Developer {
                task: TaskId::parse("T-0003").unwrap()
            }
        );
        let d = run(&[manual, alices], &[], &[]);
        assert_eq!(d.step, Step::Nothing);
        assert_eq!(
            d.reason,
            "nothing: T-0001 is auto_policy: manual (humans only); T-0002 is owned by alice"
        );
    }

    fn pull(number: u64, kind: PullKind, id: &str, merged: bool) -> TaskPull {
        TaskPull {
            number,
            kind,
            task: TaskId::parse(id).unwrap(),
            title: String::new(),
            head_ref: String::new(),
            head_sha: "abc".into(),
            merged,
        }
    }

    fn run(tasks: &[Task], open: &[TaskPull], merged: &[TaskPull]) -> Decision {
        run_with(&TeamConfig::default(), tasks, open, merged)
    }

    fn run_with(
        config: &TeamConfig,
        tasks: &[Task],
        open: &[TaskPull],
        merged: &[TaskPull],
    ) -> Decision {
        decide(&RepoState {
            config,
            tasks,
            open_pulls: open,
            merged_pulls: merged,
            issues: &[],
        })
    }

    #[test]
    fn a_labelled_issue_comes_before_planned_work_but_after_open_prs() {
        let issues = [
            IssueCandidate {
                number: 9,
                title: "b".into(),
                author: "bob".into(),
            },
            IssueCandidate {
                number: 4,
                title: "a".into(),
                author: "alice".into(),
            },
        ];
        let tasks = [task("T-0001", Queued, P0, &[])];
        let config = TeamConfig::default();
        let state = |open: &'static [TaskPull]| RepoState {
            config: &config,
            tasks: &tasks,
            open_pulls: open,
            merged_pulls: &[],
            issues: &issues,
        };
        let d = decide(&state(&[]));
        assert_eq!(d.step, Step::Issue { number: 4 });
        assert_eq!(
            d.reason,
            "Developer on issue #4: labelled for gaffer, by alice"
        );
        let open: &'static [TaskPull] =
            Box::leak(Box::new([pull(3, PullKind::Develop, "T-0001", false)]));
        assert_eq!(decide(&state(open)).step, Step::Nothing);
    }

    use Priority::*;
    use Status::*;

    #[test]
    fn an_empty_repo_needs_the_taskmaster() {
        let d = run(&[], &[], &[]);
        assert_eq!(d.step, Step::Taskmaster);
        assert_eq!(d.reason, "Taskmaster: no queued task");
        let done = [task("T-0001", Done, P1, &[])];
        assert_eq!(run(&done, &[], &[]).step, Step::Taskmaster);
    }

    #[test]
    fn the_developer_takes_the_most_urgent_ready_task() {
        let tasks = [
            task("T-0001", Done, P1, &[]),
            task("T-0002", Queued, P2, &[]),
            task("T-0003", Queued, P1, &["T-0001"]),
            task("T-0004", Queued, P0, &["T-0002"]),
        ];
        let d = run(&tasks, &[], &[]);
        assert_eq!(
            d.step,
            Step::Developer {
                task: TaskId::parse("T-0003").unwrap()
            }
        );
        assert_eq!(
            d.reason,
            "Developer on T-0003: queued, P1, deps T-0001 done"
        );
    }

    #[test]
    fn equal_priority_goes_to_the_lowest_id() {
        let tasks = [
            task("T-0005", Queued, P1, &[]),
            task("T-0002", Queued, P1, &[]),
        ];
        assert_eq!(
            run(&tasks, &[], &[]).reason,
            "Developer on T-0002: queued, P1, no deps"
        );
    }

    #[test]
    fn an_open_task_pr_holds_everything_else() {
        let tasks = [
            task("T-0001", Done, P1, &[]),
            task("T-0002", InReview, P1, &[]),
            task("T-0003", Queued, P0, &[]),
        ];
        let open = [pull(4, PullKind::Develop, "T-0002", false)];
        let d = run(&tasks, &open, &[]);
        assert_eq!(d.step, Step::Nothing);
        assert_eq!(d.reason, "nothing: T-0002 in review in PR #4");
        let plan = [pull(6, PullKind::Plan, "T-0004", false)];
        assert!(run(&tasks[..1], &plan, &[])
            .reason
            .contains("plan for T-0004 waits for merge in PR #6"));
    }

    #[test]
    fn a_merged_task_pr_calls_the_integrator_first() {
        let tasks = [
            task("T-0002", InReview, P1, &[]),
            task("T-0003", Queued, P0, &[]),
        ];
        let merged = [pull(4, PullKind::Develop, "T-0002", true)];
        let d = run(&tasks, &[], &merged);
        assert_eq!(
            d.step,
            Step::Integrator {
                task: TaskId::parse("T-0002").unwrap(),
                pull: 4
            }
        );
        // ... but not while its integration PR is open.
        let open = [pull(5, PullKind::Integrate, "T-0002", false)];
        let d = run(&tasks, &open, &merged);
        assert_eq!(d.reason, "nothing: T-0002 waits for its integration PR #5");
    }

    #[test]
    fn ready_for_integration_moves_on_to_done_after_its_newest_merged_pr() {
        let tasks = [
            task("T-0002", ReadyForIntegration, P1, &[]),
            task("T-0003", Queued, P0, &[]),
        ];
        let merged = [
            pull(1, PullKind::Plan, "T-0002", true),
            pull(4, PullKind::Develop, "T-0002", true),
            pull(5, PullKind::Integrate, "T-0002", true),
        ];
        let d = run(&tasks, &[], &merged);
        assert_eq!(
            d.step,
            Step::Integrator {
                task: TaskId::parse("T-0002").unwrap(),
                pull: 5
            }
        );
        assert_eq!(
            d.reason,
            "Integrator on T-0002: ready_for_integration after PR #5 merged, moving it to done"
        );
        // Not while its PR to done is open: that PR holds everything else.
        let open = [pull(6, PullKind::Integrate, "T-0002", false)];
        let d = run(&tasks, &open, &merged);
        assert_eq!(d.reason, "nothing: T-0002 waits for its integration PR #6");
        // No merged PR of its own (set by hand): left to a person, the queue goes on.
        let d = run(&tasks, &[], &merged[..1]);
        assert_eq!(
            d.step,
            Step::Developer {
                task: TaskId::parse("T-0003").unwrap()
            }
        );
        // The Integrator switched off: said so.
        let mut config = TeamConfig::default();
        config.roles.integrator = false;
        let d = run_with(&config, &tasks, &[], &merged);
        assert_eq!(d.step, Step::Nothing);
        assert!(
            d.reason
                .contains("ready_for_integration but the Integrator is disabled"),
            "{}",
            d.reason
        );
    }

    #[test]
    fn blocked_missing_and_unfinished_dependencies_wait() {
        let tasks = [
            task("T-0001", Blocked, P1, &[]),
            task("T-0002", Queued, P1, &["T-0001"]),
            task("T-0003", Queued, P1, &["T-0042"]),
        ];
        let d = run(&tasks, &[], &[]);
        assert_eq!(d.step, Step::Nothing);
        assert!(
            d.reason.contains("T-0002 waits on T-0001 (blocked)"),
            "{}",
            d.reason
        );
        assert!(
            d.reason.contains("T-0003 waits on T-0042 (missing)"),
            "{}",
            d.reason
        );
    }

    #[test]
    fn cycles_are_found_and_never_started() {
        let tasks = [
            task("T-0001", Queued, P0, &["T-0002"]),
            task("T-0002", Queued, P0, &["T-0001"]),
            task("T-0003", Queued, P3, &[]),
            task("T-0004", Queued, P1, &["T-0004"]),
        ];
        let cycles = tasks_in_cycles(&tasks);
        assert_eq!(
            cycles.iter().map(TaskId::as_str).collect::<Vec<_>>(),
            ["T-0001", "T-0002", "T-0004"]
        );
        assert_eq!(
            run(&tasks, &[], &[]).step,
            Step::Developer {
                task: TaskId::parse("T-0003").unwrap()
            }
        );
        let stuck = run(&tasks[..2], &[], &[]);
        assert!(
            stuck.reason.contains("dependency cycle"),
            "{}",
            stuck.reason
        );
    }

    #[test]
    fn disabled_roles_are_never_chosen() {
        let mut config = TeamConfig::default();
        config.roles.developer = false;
        config.roles.taskmaster = false;
        config.roles.integrator = false;
        let queued = [task("T-0001", Queued, P1, &[])];
        let d = run_with(&config, &queued, &[], &[]);
        assert_eq!(d.step, Step::Nothing);
        assert!(
            d.reason.contains("Developer is disabled") && d.reason.contains("T-0001"),
            "{}",
            d.reason
        );
        assert!(run_with(&config, &[], &[], &[])
            .reason
            .contains("Taskmaster is disabled"));
        let merged_task = [task("T-0001", InReview, P1, &[])];
        let merged = [pull(2, PullKind::Develop, "T-0001", true)];
        assert!(run_with(&config, &merged_task, &[], &merged)
            .reason
            .contains("Integrator is disabled"));
    }

    #[test]
    fn in_review_without_any_pr_does_not_block_planning_forever() {
        // The scan reports the stray in_review task as a problem; the decision moves on.
        let tasks = [task("T-0001", InReview, P1, &[])];
        assert_eq!(run(&tasks, &[], &[]).step, Step::Taskmaster);
    }
}
