//! The built-in bootstrap task, `Initialize basic CI for Python`, and its deterministic
//! implementation (a CI workflow for the language the checks detect, and for Python a
//! smoke test), so the first PR works with no model. The title is kept for the repos that
//! already hold the task, whatever the language.

use crate::team::task::{Priority, Status, TaskId, TaskType};

/// The bootstrap task's title; a task with this title is done without a model.
pub const TITLE: &str = "Initialize basic CI for Python";

const WORKFLOW_PATH: &str = ".github/workflows/ci.yml";
const WORKFLOW: &str = r#"name: ci
on:
  pull_request:
  push:
    branches: [main]
jobs:
  tests:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.11"
      - name: Install dependencies
        run: |
          python -m pip install --upgrade pip
          if [ -f requirements.txt ]; then python -m pip install -r requirements.txt; fi
      - name: Run the tests (a failing test fails the job)
        run: python -m unittest discover -s tests -t . -v
"#;

const SMOKE_TEST_PATH: &str = "tests/test_smoke.py";
const SMOKE_TEST: &str = r#""""Smoke test added by gaffer's bootstrap: the test runner works."""

import unittest


class SmokeTest(unittest.TestCase):
    def test_the_test_runner_works(self):
        self.assertEqual(1 + 1, 2)


if __name__ == "__main__":
    unittest.main()
"#;

/// Whether a task is the bootstrap task (done deterministically).
pub fn is_bootstrap(title: &str) -> bool {
    title.trim().eq_ignore_ascii_case(TITLE)
}

/// The bootstrap task's file text.
pub fn task_file(id: &TaskId, status: Status) -> String {
    render_task(&TaskFields {
        id,
        title: TITLE,
        task_type: TaskType::Chore,
        priority: Priority::P0,
        depends_on: &[],
        status,
        estimate: "30m",
        acceptance: &[
            "A GitHub Actions workflow runs the tests on every pull request and on pushes to main".into(),
            "The workflow fails when a test fails".into(),
            "A smoke test exists under tests/ and passes with python3 -m unittest".into(),
        ],
        body: "Give the repository a CI that runs its tests, so every later pull request is checked.\n\nAdded by gaffer's built-in bootstrap (no model needed).\n",
    })
}

/// The language the bootstrap writes CI for, from the checks' detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Python,
    Node,
    Rust,
    Go,
    /// A `Makefile` with a `test` target.
    Make,
}

impl Language {
    /// The language the checks detected (Python when nothing was: the smoke test makes it one).
    pub fn of(plan: &crate::workspace::checks::detect::Plan) -> Language {
        let d = plan.detected.as_str();
        if d.starts_with("node") {
            Language::Node
        } else if d.starts_with("rust") {
            Language::Rust
        } else if d.starts_with("go") {
            Language::Go
        } else if d.starts_with("make") {
            Language::Make
        } else {
            Language::Python
        }
    }
}

const NODE_WORKFLOW: &str = r#"name: ci
on:
  pull_request:
  push:
    branches: [main]
jobs:
  tests:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-node@v4
        with:
          node-version: "20"
      - name: Install dependencies
        run: if [ -f package-lock.json ]; then npm ci; else npm install; fi
      - name: Run the tests (a failing test fails the job)
        run: npm test
"#;

const RUST_WORKFLOW: &str = r#"name: ci
on:
  pull_request:
  push:
    branches: [main]
jobs:
  tests:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: dtolnay/rust-toolchain@stable
      - name: Run the tests (a failing test fails the job)
        run: cargo test --locked || cargo test
"#;

const GO_WORKFLOW: &str = r#"name: ci
on:
  pull_request:
  push:
    branches: [main]
jobs:
  tests:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-go@v5
        with:
          go-version-file: go.mod
      - name: Run the tests (a failing test fails the job)
        run: go test ./...
"#;

const MAKE_WORKFLOW: &str = r#"name: ci
on:
  pull_request:
  push:
    branches: [main]
jobs:
  tests:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - name: Run the tests (a failing test fails the job)
        run: make test
"#;

/// The files the bootstrap writes into a clone where they are missing:
/// `(path, content)`: a CI workflow for `language`, and for Python a smoke test. An
/// existing workflow or test suite is left alone.
pub fn files_to_add(existing: &[String], language: Language) -> Vec<(&'static str, &'static str)> {
    let mut files = Vec::new();
    if !existing.iter().any(|f| f.starts_with(".github/workflows/")) {
        let workflow = match language {
            Language::Python => WORKFLOW,
            Language::Node => NODE_WORKFLOW,
            Language::Rust => RUST_WORKFLOW,
            Language::Go => GO_WORKFLOW,
            Language::Make => MAKE_WORKFLOW,
        };
        files.push((WORKFLOW_PATH, workflow));
    }
    if language != Language::Python {
        return files;
    }
    let has_tests = existing.iter().any(|f| {
        f.starts_with("tests/")
            && f.rsplit('/')
                .next()
                .is_some_and(|n| n.starts_with("test_") && n.ends_with(".py"))
    });
    if !has_tests {
        files.push((SMOKE_TEST_PATH, SMOKE_TEST));
        if !existing.iter().any(|f| f == "tests/__init__.py") {
            files.push(("tests/__init__.py", ""));
        }
    }
    files
}

/// The fields of a new task file.
pub struct TaskFields<'a> {
    pub id: &'a TaskId,
    pub title: &'a str,
    pub task_type: TaskType,
    pub priority: Priority,
    pub depends_on: &'a [TaskId],
    pub status: Status,
    pub estimate: &'a str,
    pub acceptance: &'a [String],
    pub body: &'a str,
}

/// A task file in the template's key order, with values quoted as YAML strings.
pub fn render_task(t: &TaskFields<'_>) -> String {
    let quote = |s: &str| serde_json::to_string(s).expect("strings serialize");
    let deps: Vec<String> = t.depends_on.iter().map(|d| d.to_string()).collect();
    let mut out = String::from("---\n");
    out.push_str(&format!("id: {}\n", t.id));
    out.push_str(&format!("title: {}\n", quote(t.title)));
    out.push_str(&format!("type: {}\n", t.task_type));
    out.push_str(&format!("priority: {}\n", t.priority));
    out.push_str(&format!("depends_on: [{}]\n", deps.join(", ")));
    out.push_str(&format!("status: {}\n", t.status));
    out.push_str("owner: developer\n");
    out.push_str(&format!("estimate: {}\n", quote(t.estimate)));
    out.push_str("acceptance:\n");
    for item in t.acceptance {
        out.push_str(&format!("  - {}\n", quote(item)));
    }
    out.push_str("auto_policy: pr\n---\n");
    out.push_str(&format!("# {}\n\n{}", t.title, t.body.trim_start()));
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::team::task::parse_task;

    #[test]
    fn the_bootstrap_task_file_is_a_valid_task() {
        let id = TaskId::from_number(1);
        let text = task_file(&id, Status::Queued);
        let (task, problems) = parse_task("tasks/T-0001-initialize-basic-ci-for-python.md", &text);
        assert!(problems.is_empty(), "{problems:?}");
        let task = task.unwrap();
        assert_eq!(task.title, TITLE);
        assert_eq!(task.acceptance.len(), 3);
        assert!(is_bootstrap(&task.title));
    }

    #[test]
    fn only_missing_files_are_added() {
        let none: Vec<String> = vec!["README.md".into()];
        let paths: Vec<&str> = files_to_add(&none, Language::Python)
            .iter()
            .map(|(p, _)| *p)
            .collect();
        assert_eq!(
            paths,
            [
                ".github/workflows/ci.yml",
                "tests/test_smoke.py",
                "tests/__init__.py"
            ]
        );
        let all: Vec<String> = vec![
            ".github/workflows/ci.yml".into(),
            "tests/test_app.py".into(),
        ];
        assert!(files_to_add(&all, Language::Python).is_empty());
        let node = files_to_add(&none, Language::Node);
        assert_eq!(node.len(), 1);
        assert!(node[0].1.contains("npm test"));
        assert!(files_to_add(&none, Language::Rust)[0]
            .1
            .contains("cargo test"));
        assert!(files_to_add(&none, Language::Go)[0].1.contains("go test"));
    }

    #[test]
    fn rendered_values_are_quoted_safely() {
        let id = TaskId::from_number(7);
        let text = render_task(&TaskFields {
            id: &id,
            title: "Handle: colons, \"quotes\" and # hashes",
            task_type: TaskType::Bugfix,
            priority: Priority::P2,
            depends_on: &[TaskId::from_number(1)],
            status: Status::Queued,
            estimate: "2h",
            acceptance: &["--- not a delimiter".into()],
            body: "Body.",
        });
        let (task, problems) = parse_task("tasks/T-0007-x.md", &text);
        assert!(problems.is_empty(), "{problems:?}\n{text}");
        let task = task.unwrap();
        assert_eq!(task.title, "Handle: colons, \"quotes\" and # hashes");
        assert_eq!(task.acceptance, ["--- not a delimiter"]);
        assert_eq!(task.depends_on, [TaskId::from_number(1)]);
    }
}
