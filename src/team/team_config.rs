//! `.llm-team.yml`: how a target repo wants gaffer to work on it. Absent keys take the
//! documented defaults, unknown keys are warnings, and a wrongly typed value is an error
//! that keeps that key's default, so one typo never stops the rest from being read.
//!
//! The file is untrusted input from the target repo: it is parsed with `serde-saphyr`
//! (pure Rust, no unsafe, with input budgets) into plain JSON values first.

use crate::safety::paths::RepoPath;
use serde::Serialize;
use serde_json::Value;

use super::task::Status;
use super::Problem;

/// Where the file lives in a target repo.
pub const PATH: &str = ".llm-team.yml";

/// How a merged task PR lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MergeStrategy {
    Merge,
    Squash,
    Rebase,
}

/// A kind of PR gaffer may merge by itself (`workflow.auto_merge`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AutoMerge {
    /// The Taskmaster's plan PRs (task files only).
    Plan,
    /// The Integrator's PRs moving a task to `ready_for_integration` or `done`.
    Integration,
    /// The Developer's work PRs, for tasks whose `auto_policy` allows it.
    Code,
}

impl AutoMerge {
    pub fn as_str(self) -> &'static str {
        match self {
            AutoMerge::Plan => "plan",
            AutoMerge::Integration => "integration",
            AutoMerge::Code => "code",
        }
    }
}

/// Which roles may run on this repo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RolesEnabled {
    pub planner: bool,
    pub taskmaster: bool,
    pub developer: bool,
    pub reviewer: bool,
    pub integrator: bool,
}

/// The whole file, with defaults filled in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TeamConfig {
    pub project_name: Option<String>,
    /// Path prefixes model edits may never touch.
    pub protected_paths: Vec<String>,
    /// Every branch gaffer pushes starts with this.
    pub branch_prefix: String,
    pub merge_strategy: MergeStrategy,
    /// `workflow.auto_merge`: the PR kinds gaffer merges itself when their conditions hold
    /// (default none: a person merges everything).
    pub auto_merge: Vec<AutoMerge>,
    /// Plan and report, but open no PR and post nothing.
    pub dry_run: bool,
    pub roles: RolesEnabled,
    pub tasks_dir: String,
    /// The states in use; `ready_for_integration` here makes the Integrator stop there
    /// before `done`.
    pub states: Vec<Status>,
    pub require_tests: bool,
    /// `checks.coverage_min` (0-100) as written; see [`TeamConfig::coverage_required`].
    pub coverage_min: Option<f64>,
    /// `checks.test` (alias `checks.test_command`): run in the clone, without network, to
    /// check a change; `None` means detected from the repo (see [`crate::workspace::checks::detect`]).
    pub test_command: Option<String>,
    /// `checks.setup`: installs dependencies, with network; `Some("")` (`none`) means no
    /// set-up at all, `None` detected from the repo.
    pub setup_command: Option<String>,
    /// `checks.lint`: an optional lint command, run without network after the tests.
    pub lint_command: Option<String>,
    /// `checks.known_failures`: test-name patterns (`*` wildcards) whose results never
    /// count either way (flaky tests).
    pub known_failures: Vec<String>,
}

impl Default for TeamConfig {
    fn default() -> Self {
        TeamConfig {
            project_name: None,
            protected_paths: vec![".github/".into()],
            branch_prefix: "feature/".into(),
            merge_strategy: MergeStrategy::Squash,
            auto_merge: Vec::new(),
            dry_run: false,
            roles: RolesEnabled {
                planner: true,
                taskmaster: true,
                developer: true,
                reviewer: true,
                integrator: true,
            },
            tasks_dir: "tasks".into(),
            states: vec![
                Status::Queued,
                Status::InReview,
                Status::Done,
                Status::Blocked,
            ],
            require_tests: true,
            coverage_min: None,
            test_command: None,
            setup_command: None,
            lint_command: None,
            known_failures: Vec::new(),
        }
    }
}

impl MergeStrategy {
    /// The forge's merge method for this strategy.
    pub fn method(self) -> crate::forge::MergeMethod {
        match self {
            MergeStrategy::Merge => crate::forge::MergeMethod::Merge,
            MergeStrategy::Squash => crate::forge::MergeMethod::Squash,
            MergeStrategy::Rebase => crate::forge::MergeMethod::Rebase,
        }
    }
}

impl TeamConfig {
    /// The line coverage the checks must reach: `checks.coverage_min` above 0 (0% asks for
    /// nothing, so nothing is measured or reported for it).
    pub fn coverage_required(&self) -> Option<f64> {
        self.coverage_min.filter(|min| *min > 0.0)
    }

    /// Whether gaffer may merge PRs of `kind` itself.
    pub fn auto_merges(&self, kind: AutoMerge) -> bool {
        self.auto_merge.contains(&kind)
    }

    /// Whether the Integrator moves a merged task to `ready_for_integration` first.
    pub fn uses_ready_for_integration(&self) -> bool {
        self.states.contains(&Status::ReadyForIntegration)
    }

    /// Whether a (guarded, normalised) repo path is protected from model edits; compared
    /// case-insensitively, component by component.
    pub fn is_protected(&self, path: &RepoPath) -> bool {
        self.protected_paths.iter().any(|p| path.is_under(p))
    }
}

const KNOWN: &[&str] = &[
    "project.name",
    "project.protected_paths",
    "workflow.branch_prefix",
    "workflow.merge_strategy",
    "workflow.auto_merge",
    "workflow.dry_run",
    "roles.planner.enabled",
    "roles.taskmaster.enabled",
    "roles.developer.enabled",
    "roles.reviewer.enabled",
    "roles.integrator.enabled",
    "tasks.dir",
    "tasks.states",
    "checks.require_tests",
    "checks.coverage_min",
    "checks.test_command",
    "checks.test",
    "checks.setup",
    "checks.lint",
    "checks.known_failures",
];

/// Reads the file's text (`None`: the file is absent, all defaults).
pub fn parse(text: Option<&str>) -> (TeamConfig, Vec<Problem>) {
    let mut config = TeamConfig::default();
    let mut problems = Vec::new();
    let Some(text) = text else {
        return (config, problems);
    };
    let root: Value = match crate::team::yaml::parse_bounded(text) {
        Ok(Value::Null) => return (config, problems),
        Ok(value @ Value::Object(_)) => value,
        Ok(_) => {
            problems.push(Problem::error(
                PATH,
                None,
                "expected a mapping of sections such as workflow: and checks:".into(),
            ));
            return (config, problems);
        }
        Err(e) => {
            let first = e;
            problems.push(Problem::error(
                PATH,
                None,
                format!("not valid YAML: {first}"),
            ));
            return (config, problems);
        }
    };
    let mut leaves = Vec::new();
    walk(&root, "", &mut leaves);
    for (key, _) in &leaves {
        if !KNOWN.contains(&key.as_str())
            && !KNOWN.iter().any(|k| k.starts_with(&format!("{key}.")))
        {
            problems.push(Problem::warning(
                PATH,
                Some(key),
                format!("unknown key `{key}` (ignored)"),
            ));
        }
    }
    let get = |key: &str| -> Option<&Value> {
        let mut node = &root;
        for part in key.split('.') {
            node = node.get(part)?;
        }
        (!node.is_null()).then_some(node)
    };
    let mut bad = |key: &str, expected: &str| {
        problems.push(Problem::error(
            PATH,
            Some(key),
            format!("expected {expected}; using the default"),
        ));
    };

    if let Some(v) = get("project.name") {
        match v.as_str() {
            Some(s) => config.project_name = Some(s.to_string()),
            None => bad("project.name", "text"),
        }
    }
    if let Some(v) = get("project.protected_paths") {
        match string_list(v) {
            Some(list) => config.protected_paths = list,
            None => bad("project.protected_paths", "a list of path prefixes"),
        }
    }
    if let Some(v) = get("workflow.branch_prefix") {
        match v.as_str() {
            Some(s) if valid_prefix(s) => config.branch_prefix = s.to_string(),
            _ => bad(
                "workflow.branch_prefix",
                "a branch prefix such as feature/ (not empty, no spaces)",
            ),
        }
    }
    if let Some(v) = get("workflow.merge_strategy") {
        match v.as_str() {
            Some("merge") => config.merge_strategy = MergeStrategy::Merge,
            Some("squash") => config.merge_strategy = MergeStrategy::Squash,
            Some("rebase") => config.merge_strategy = MergeStrategy::Rebase,
            _ => bad("workflow.merge_strategy", "merge, squash or rebase"),
        }
    }
    if let Some(v) = get("workflow.auto_merge") {
        let parsed: Option<Vec<AutoMerge>> = string_list(v).and_then(|list| {
            list.iter()
                .map(|kind| match kind.trim() {
                    "plan" => Some(AutoMerge::Plan),
                    "integration" => Some(AutoMerge::Integration),
                    "code" => Some(AutoMerge::Code),
                    _ => None,
                })
                .collect()
        });
        match parsed {
            Some(kinds) => config.auto_merge = kinds,
            None => bad(
                "workflow.auto_merge",
                "a list of PR kinds from plan, integration, code",
            ),
        }
    }
    if let Some(v) = get("workflow.dry_run") {
        match v.as_bool() {
            Some(b) => config.dry_run = b,
            None => bad("workflow.dry_run", "true or false"),
        }
    }
    for (role, slot) in [
        ("planner", &mut config.roles.planner),
        ("taskmaster", &mut config.roles.taskmaster),
        ("developer", &mut config.roles.developer),
        ("reviewer", &mut config.roles.reviewer),
        ("integrator", &mut config.roles.integrator),
    ] {
        let key = format!("roles.{role}.enabled");
        if let Some(v) = get(&key) {
            match v.as_bool() {
                Some(b) => *slot = b,
                None => bad(&key, "true or false"),
            }
        }
    }
    if let Some(v) = get("tasks.dir") {
        match v.as_str() {
            Some(s) if RepoPath::parse(s.trim_end_matches('/')).is_ok() => {
                config.tasks_dir = s.trim_end_matches('/').to_string()
            }
            _ => bad("tasks.dir", "a directory inside the repo, such as tasks"),
        }
    }
    if let Some(v) = get("tasks.states") {
        let parsed: Option<Vec<Status>> =
            string_list(v).and_then(|list| list.iter().map(|s| s.parse().ok()).collect());
        match parsed {
            Some(states)
                if [Status::Queued, Status::InReview, Status::Done]
                    .iter()
                    .all(|s| states.contains(s)) =>
            {
                config.states = states
            }
            _ => bad(
                "tasks.states",
                &format!(
                    "a list of states from {} including queued, in_review and done",
                    Status::allowed()
                ),
            ),
        }
    }
    if let Some(v) = get("checks.require_tests") {
        match v.as_bool() {
            Some(b) => config.require_tests = b,
            None => bad("checks.require_tests", "true or false"),
        }
    }
    if let Some(v) = get("checks.coverage_min") {
        match v.as_f64() {
            Some(n) if (0.0..=100.0).contains(&n) => config.coverage_min = Some(n),
            _ => bad("checks.coverage_min", "a percentage from 0 to 100"),
        }
    }
    for key in ["checks.test_command", "checks.test"] {
        if let Some(v) = get(key) {
            match v.as_str() {
                Some(s) if !s.trim().is_empty() => config.test_command = Some(s.to_string()),
                _ => bad(key, "a shell command such as `python3 -m pytest -q`"),
            }
        }
    }
    if let Some(v) = get("checks.lint") {
        match v.as_str() {
            Some(s) if !s.trim().is_empty() => config.lint_command = Some(s.to_string()),
            _ => bad("checks.lint", "a shell command such as `ruff check .`"),
        }
    }
    if let Some(v) = get("checks.setup") {
        match v {
            Value::Bool(false) => config.setup_command = Some(String::new()),
            Value::String(s) if s.trim().is_empty() || s.trim() == "none" => {
                config.setup_command = Some(String::new())
            }
            Value::String(s) => config.setup_command = Some(s.clone()),
            _ => bad(
                "checks.setup",
                "a shell command such as `pip install -r requirements.txt`, or none",
            ),
        }
    }
    if let Some(v) = get("checks.known_failures") {
        match string_list(v) {
            Some(list) => config.known_failures = list,
            None => bad("checks.known_failures", "a list of test-name patterns"),
        }
    }
    (config, problems)
}

fn valid_prefix(prefix: &str) -> bool {
    !prefix.is_empty() && crate::registry::valid_branch_name(&format!("{prefix}x"))
}

fn string_list(value: &Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_string))
        .collect()
}

fn walk(value: &Value, prefix: &str, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                walk(v, &key, out);
            }
        }
        other if !prefix.is_empty() => out.push((prefix.to_string(), other.clone())),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_file_means_defaults() {
        let (config, problems) = parse(None);
        assert_eq!(config, TeamConfig::default());
        assert!(problems.is_empty());
        assert_eq!(config.branch_prefix, "feature/");
        assert!(!config.uses_ready_for_integration());
    }

    #[test]
    fn reads_every_key() {
        let text = "project:\n  name: demo\n  protected_paths: [.github/, infra/, secrets/]\nworkflow:\n  branch_prefix: gaffer/\n  merge_strategy: merge\n  auto_merge: [plan, integration]\n  dry_run: true\nroles:\n  reviewer:\n    enabled: false\ntasks:\n  dir: work/tasks\n  states: [queued, in_review, ready_for_integration, done, blocked]\nchecks:\n  require_tests: false\n  coverage_min: 80\n  test_command: make test\n  setup: make deps\n  lint: make lint\n  known_failures: [\"tests/flaky_*\"]\n";
        let (config, problems) = parse(Some(text));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(config.project_name.as_deref(), Some("demo"));
        assert_eq!(config.protected_paths, [".github/", "infra/", "secrets/"]);
        assert_eq!(config.branch_prefix, "gaffer/");
        assert_eq!(config.merge_strategy, MergeStrategy::Merge);
        assert_eq!(config.auto_merge, [AutoMerge::Plan, AutoMerge::Integration]);
        assert!(config.auto_merges(AutoMerge::Integration) && !config.auto_merges(AutoMerge::Code));
        assert!(config.dry_run);
        assert!(!config.roles.reviewer && config.roles.developer);
        assert_eq!(config.tasks_dir, "work/tasks");
        assert!(config.uses_ready_for_integration());
        assert!(!config.require_tests);
        assert_eq!(config.coverage_min, Some(80.0));
        assert_eq!(config.coverage_required(), Some(80.0));
        let zero = parse(Some("checks:\n  coverage_min: 0\n")).0;
        assert_eq!(
            (zero.coverage_min, zero.coverage_required()),
            (Some(0.0), None)
        );
        assert_eq!(config.test_command.as_deref(), Some("make test"));
        assert_eq!(config.setup_command.as_deref(), Some("make deps"));
        assert_eq!(config.lint_command.as_deref(), Some("make lint"));
        assert_eq!(config.known_failures, ["tests/flaky_*"]);
        let (config, problems) = parse(Some("checks:\n  setup: none\n  test: npm test\n"));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(config.setup_command.as_deref(), Some(""));
        assert_eq!(config.test_command.as_deref(), Some("npm test"));
    }

    #[test]
    fn unknown_keys_warn_and_bad_values_keep_defaults() {
        let text = "workflow:\n  branch_prefix: 'has space/'\n  auto_merge: [plan, everything]\n  dry_rn: true\nroles:\n  reviewer:\n    enabled: sometimes\nchecks:\n  coverage_min: 150\n";
        let (config, problems) = parse(Some(text));
        assert_eq!(config.branch_prefix, "feature/");
        assert!(config.roles.reviewer);
        assert_eq!(config.coverage_min, None);
        assert!(config.auto_merge.is_empty());
        let warning = problems.iter().find(|p| !p.is_error()).unwrap();
        assert_eq!(warning.field.as_deref(), Some("workflow.dry_rn"));
        let errors: Vec<_> = problems
            .iter()
            .filter(|p| p.is_error())
            .filter_map(|p| p.field.clone())
            .collect();
        assert_eq!(
            errors,
            [
                "workflow.branch_prefix",
                "workflow.auto_merge",
                "roles.reviewer.enabled",
                "checks.coverage_min"
            ]
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for text in ["[1, 2", "just text", "- a\n- b\n", "a: [b: {c"] {
            let (config, problems) = parse(Some(text));
            assert_eq!(config, TeamConfig::default());
            assert!(problems.iter().any(Problem::is_error), "{text:?}");
        }
    }

    #[test]
    fn protected_paths() {
        let (config, _) = parse(Some(
            "project:\n  protected_paths: [.github/, secrets/, Makefile]\n",
        ));
        let p = |s: &str| RepoPath::parse(s).unwrap();
        assert!(config.is_protected(&p(".github/workflows/ci.yml")));
        assert!(config.is_protected(&p(".GitHub/workflows/ci.yml")));
        assert!(config.is_protected(&p("secrets/key")));
        assert!(config.is_protected(&p("Makefile")));
        assert!(!config.is_protected(&p("src/app.py")));
        assert!(!config.is_protected(&p("Makefile.bak")));
    }

    #[test]
    fn a_tasks_dir_outside_the_repo_or_in_git_is_refused() {
        for dir in [
            ".git",
            "x/.git/tasks",
            "../tasks",
            "/tmp/tasks",
            "./tasks",
            "",
        ] {
            let (config, problems) = parse(Some(&format!("tasks:\n  dir: \"{dir}\"\n")));
            assert_eq!(config.tasks_dir, "tasks", "{dir}");
            assert!(
                problems
                    .iter()
                    .any(|p| p.field.as_deref() == Some("tasks.dir")),
                "{dir}: {problems:?}"
            );
        }
    }
}
