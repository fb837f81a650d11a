//! The target repo's contract: task files, `.llm-team.yml`, and the branch names that tie
//! PRs to tasks. Pure code: text in, values and problems out; no I/O.

pub mod charter;
pub mod task;
pub mod team_config;
pub mod yaml;

use serde::Serialize;

use self::task::TaskId;

/// How serious a problem found in a target repo is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The file (or key) could not be used.
    Error,
    /// Used, but probably not what the author meant (e.g. an unknown key).
    Warning,
}

/// Something wrong in a target repo, named precisely enough to fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub severity: Severity,
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub message: String,
}

impl Problem {
    pub fn error(file: &str, field: Option<&str>, message: String) -> Problem {
        Problem {
            severity: Severity::Error,
            file: file.to_string(),
            field: field.map(str::to_string),
            message,
        }
    }

    pub fn warning(file: &str, field: Option<&str>, message: String) -> Problem {
        Problem {
            severity: Severity::Warning,
            ..Problem::error(file, field, message)
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Which role's PR a branch is, and for which task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PullKind {
    /// Taskmaster: adds a task file.
    Plan,
    /// Developer: the task's work.
    Develop,
    /// Integrator: moves a merged task to `ready_for_integration` or `done`.
    Integrate,
}

/// The Integrator's branch for moving a task to `ready_for_integration` (`ready-`) rather
/// than to `done` (`done-`): the two hops of one task need two branches, since a PR once
/// made for a branch (in any state) is never made again.
pub fn integration_branch(prefix: &str, to_ready: bool, id: &TaskId, title: &str) -> String {
    if to_ready {
        format!("{prefix}ready-{id}-{}", task::slug(title))
    } else {
        branch_name(prefix, PullKind::Integrate, id, title)
    }
}

/// The branch a role pushes for a task: `PREFIX T-0003-slug` (Developer),
/// `PREFIX plan-T-0003-slug` (Taskmaster), `PREFIX done-T-0003-slug` (Integrator; see
/// [`integration_branch`] for its `ready-` hop).
pub fn branch_name(prefix: &str, kind: PullKind, id: &TaskId, title: &str) -> String {
    let stem = format!("{id}-{}", task::slug(title));
    match kind {
        PullKind::Develop => format!("{prefix}{stem}"),
        PullKind::Plan => format!("{prefix}plan-{stem}"),
        PullKind::Integrate => format!("{prefix}done-{stem}"),
    }
}

/// The inverse of [`branch_name`]: `None` for branches that are not task branches.
pub fn classify_branch(prefix: &str, branch: &str) -> Option<(PullKind, TaskId)> {
    let rest = branch.strip_prefix(prefix)?;
    let (kind, rest) = if let Some(r) = rest.strip_prefix("plan-") {
        (PullKind::Plan, r)
    } else if let Some(r) = rest
        .strip_prefix("done-")
        .or_else(|| rest.strip_prefix("ready-"))
    {
        (PullKind::Integrate, r)
    } else {
        (PullKind::Develop, rest)
    };
    TaskId::prefix_of(rest).map(|id| (kind, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_names_round_trip() {
        let id = TaskId::parse("T-0003").unwrap();
        for kind in [PullKind::Plan, PullKind::Develop, PullKind::Integrate] {
            let branch = branch_name("feature/", kind, &id, "Add a CLI");
            assert_eq!(
                classify_branch("feature/", &branch),
                Some((kind, id.clone())),
                "{branch}"
            );
        }
        assert_eq!(
            branch_name("feature/", PullKind::Develop, &id, "Add a CLI"),
            "feature/T-0003-add-a-cli"
        );
        let ready = integration_branch("feature/", true, &id, "Add a CLI");
        assert_eq!(ready, "feature/ready-T-0003-add-a-cli");
        assert_eq!(
            classify_branch("feature/", &ready),
            Some((PullKind::Integrate, id.clone()))
        );
        assert_eq!(
            integration_branch("feature/", false, &id, "Add a CLI"),
            "feature/done-T-0003-add-a-cli"
        );
        assert_eq!(classify_branch("feature/", "feature/new-login"), None);
        assert_eq!(classify_branch("feature/", "main"), None);
    }
}
