//! `checks.coverage_min` honoured: a Python repo's tests run under coverage.py inside the
//! sandbox; a change that leaves line coverage below the minimum fails the Developer's and
//! the Reviewer's checks with the number and the least covered file, one above it passes,
//! and a language gaffer cannot measure is said to be "not measured", never failed for it.

use std::path::PathBuf;

use serde_json::Value;

use crate::support::app::{fake_with_app, post_ok, TestApp};
use crate::support::fake_github::FakeGithub;
use crate::support::git::{git, show_file};
use crate::support::ollama;

const REPO: &str = "acme/shapes";

/// These tests need coverage.py for the python3 the checks use (a fresh machine lacks it;
/// `.ci/run` installs it): without it they fail, saying how to install it, never skip.
pub fn require_coverage_py() {
    let found = std::process::Command::new("python3")
        .args(["-c", "import coverage"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "coverage.py is not importable by python3, which these tests need: install it with `python3 -m pip install coverage` (not --user: the sandbox hides $HOME)"
    );
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/checks")
        .join(name)
}

fn task_text(id: &str, title: &str) -> String {
    format!("---\nid: {id}\ntitle: {title}\ntype: feature\npriority: P1\ndepends_on: []\nstatus: queued\nacceptance:\n  - it works\n---\n# {title}\n")
}

/// The pycov fixture (no dependency files: the system's python3) as acme/shapes with
/// `config` as its `.llm-team.yml`, one task and a Developer that always answers `reply`.
async fn shapes(config: &str, reply: &str) -> (FakeGithub, TestApp, wiremock::MockServer) {
    require_coverage_py();
    let model = ollama::always(reply).await;
    let uri = model.uri();
    let (fake, app) = fake_with_app(
        REPO,
        "pr",
        Some(&fixture("pycov")),
        &[
            ("OLLAMA_BASE_URL", uri.as_str()),
            ("LLM_DEVELOPER_MODEL", "tiny:1b"),
            ("DEV_MAX_ATTEMPTS", "1"),
        ],
    )
    .await;
    fake.commit(
        REPO,
        "main",
        &[
            (".llm-team.yml", config),
            (
                "tasks/T-0001-shapes.md",
                &task_text("T-0001", "More shapes"),
            ),
        ],
        "task and policy",
    );
    (fake, app, model)
}

/// An untested function of six statements: coverage falls from 100% to 8 of 14 lines.
/// (Its SEARCH text is gone once applied, so the scripted model's repeats change nothing.)
const UNTESTED: &str = "shapes.py\n<<<<<<< SEARCH\n    return side * side\n=======\n    return side ** 2\n\n\ndef describe(shape, size):\n    if shape == \"square\":\n        kind = \"a square\"\n    elif shape == \"circle\":\n        kind = \"a circle\"\n    else:\n        kind = \"something\"\n    return kind + \" of size \" + str(size)\n>>>>>>> REPLACE\n";

/// A new function with its test: every line runs.
const TESTED: &str = "shapes.py\n<<<<<<< SEARCH\n    return side * side\n=======\n    return side * side\n\n\ndef square_perimeter(side):\n    return 4 * side\n>>>>>>> REPLACE\n\ntests/test_perimeter.py\n<<<<<<< SEARCH\n=======\nimport unittest\n\nfrom shapes import square_perimeter\n\n\nclass PerimeterTest(unittest.TestCase):\n    def test_square_perimeter(self):\n        self.assertEqual(square_perimeter(3), 12)\n>>>>>>> REPLACE\n";

/// The Reviewer's outcome for PR `pr` at `sha`: the one the engine ran (queued when the
/// PR opened), or the one `/run/reviewer` gives.
async fn review(app: &TestApp, pr: u64, sha: &str) -> Value {
    let at_sha = |o: &Value| o["detail"]["sha"] == sha && o["action"] == "reviewed";
    for _ in 0..600 {
        let runs: Value = app
            .get(&format!("/runs?repo={REPO}&role=reviewer&state=succeeded"))
            .await
            .json()
            .await
            .unwrap();
        let done = runs["runs"].as_array().into_iter().flatten();
        if let Some(o) = done.filter_map(|r| r["outcome"].get(0)).find(|o| at_sha(o)) {
            return o.clone();
        }
        let ran = post_ok(app, &format!("/run/reviewer?repo={REPO}&pr={pr}")).await;
        if let Some(o) = ran.as_array().and_then(|a| a.first()).filter(|o| at_sha(o)) {
            return o.clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no review of PR #{pr} at {sha}");
}

const SHAPES_UNTESTED: &str = "\"\"\"A tiny module with no dependency files: gaffer runs it with the system's python3.\"\"\"\n\n\ndef square_area(side):\n    return side ** 2\n\n\ndef describe(shape, size):\n    if shape == \"square\":\n        kind = \"a square\"\n    elif shape == \"circle\":\n        kind = \"a circle\"\n    else:\n        kind = \"something\"\n    return kind + \" of size \" + str(size)\n";

#[tokio::test]
async fn a_change_below_coverage_min_fails_the_developers_and_the_reviewers_checks() {
    let (fake, app, model) = shapes("checks:\n  coverage_min: 90\n", UNTESTED).await;
    let outcome = post_ok(&app, &format!("/run/developer?repo={REPO}")).await;
    assert_eq!(outcome["action"], "blocked", "{outcome:#}");
    let checks = &outcome["checks"];
    // The model is told the minimum; people and the model see the plain command, the test
    // phase says what really ran.
    let prompts = ollama::last_user_messages(&model).await.join("\n");
    assert!(
        prompts.contains("line coverage must be at least 90%"),
        "{prompts}"
    );
    assert!(
        !checks["command"].as_str().unwrap().contains("coverage"),
        "{checks:#}"
    );
    assert!(checks["test"]["command"]
        .as_str()
        .unwrap()
        .contains("python3 -m coverage run --data-file="));
    assert_eq!(
        checks["detected"], "python (no dependency files)",
        "{checks:#}"
    );
    // The tests themselves pass: coverage alone fails the checks.
    assert_eq!(checks["test"]["passed"], true, "{checks:#}");
    assert_eq!(
        checks["results"]["tests"]["tests.test_shapes.ShapesTest.test_square_area"],
        "passed"
    );
    assert_eq!(checks["passed"], false);
    let coverage = &checks["coverage"];
    assert_eq!(coverage["status"], "below", "{coverage:#}");
    assert_eq!(coverage["failed_checks"], true);
    assert_eq!(
        (&coverage["covered_lines"], &coverage["statements"]),
        (&Value::from(8), &Value::from(14)),
        "{coverage:#}"
    );
    assert!(coverage["measured_by"]
        .as_str()
        .unwrap()
        .starts_with("coverage.py "));
    let reason = checks["comparison"]["reason"].as_str().unwrap();
    assert_eq!(
        reason,
        "line coverage 57.1% is below checks.coverage_min 90% (least covered: shapes.py 33.3%, lines 9-12, 14-15 not run)",
        "{checks:#}"
    );
    // The PR says it, and coverage.py's data never reaches the branch.
    let pull = fake.pulls(REPO)[0].clone();
    let body = pull["body"].as_str().unwrap();
    assert!(body.contains(reason), "{body}");
    assert!(
        body.contains("Coverage: **57.1%** line coverage, below checks.coverage_min 90%"),
        "{body}"
    );
    let bare = fake.bare_path(REPO);
    let branch = pull["head"]["ref"].as_str().unwrap();
    let tree = git(&bare, &["ls-tree", "-r", "--name-only", branch]).unwrap();
    assert!(!tree.contains("coverage"), "{tree}");

    // The blocked PR holds only the explanation; pushed to it, the same untested code gets
    // the same verdict from the Reviewer's checks on the PR's head.
    let number = pull["number"].as_u64().unwrap();
    let head = fake.commit(
        REPO,
        branch,
        &[("shapes.py", SHAPES_UNTESTED)],
        "the untested code, by hand",
    );
    let reviewed = review(&app, number, &head).await;
    assert_eq!(reviewed["action"], "reviewed", "{reviewed:#}");
    assert_eq!(reviewed["checks"]["passed"], false, "{reviewed:#}");
    assert_eq!(reviewed["checks"]["comparison"]["reason"], reason);
    let (_, _, review_body) = fake.reviews(REPO, number).pop().expect("a review");
    assert!(review_body.contains("Coverage: **57.1%**"), "{review_body}");
}

#[tokio::test]
async fn a_change_that_keeps_coverage_above_the_minimum_passes() {
    // The fail-to-pass proof runs too: the base's code under the new test covers less, and
    // that does not count against the proof.
    let (fake, app, _model) = shapes("checks:\n  coverage_min: 90\n", TESTED).await;
    let outcome = post_ok(&app, &format!("/run/developer?repo={REPO}")).await;
    assert_eq!(outcome["action"], "opened_pr", "{outcome:#}");
    let checks = &outcome["checks"];
    assert_eq!(checks["passed"], true, "{checks:#}");
    let coverage = &checks["coverage"];
    assert_eq!(coverage["status"], "met", "{coverage:#}");
    assert_eq!(coverage["percent"], 100.0);
    assert_eq!(coverage["failed_checks"], false);
    assert!(
        !checks["comparison"]["reason"]
            .as_str()
            .unwrap()
            .contains("coverage"),
        "{checks:#}"
    );
    let pull = fake.pulls(REPO)[0].clone();
    let body = pull["body"].as_str().unwrap();
    assert!(
        body.contains("Coverage: **100%** line coverage, meets checks.coverage_min 90%"),
        "{body}"
    );
    let head = pull["head"]["sha"].as_str().unwrap();
    let reviewed = review(&app, pull["number"].as_u64().unwrap(), head).await;
    assert_eq!(
        reviewed["checks"]["coverage"]["status"], "met",
        "{reviewed:#}"
    );
    assert_eq!(reviewed["checks"]["passed"], true);
}

#[tokio::test]
async fn coverage_min_on_a_language_gaffer_cannot_measure_is_not_measured_never_failed() {
    let (fake, app) = fake_with_app("acme/tiny-node", "pr", Some(&fixture("node")), &[]).await;
    fake.commit(
        "acme/tiny-node",
        "main",
        &[(".llm-team.yml", "checks:\n  coverage_min: 95\n")],
        "policy",
    );
    let outcome = post_ok(&app, "/repos/acme/tiny-node/bootstrap").await;
    assert_eq!(outcome["action"], "opened_pr", "{outcome:#}");
    let checks = &outcome["checks"];
    assert_eq!(checks["passed"], true, "{checks:#}");
    let coverage = &checks["coverage"];
    assert_eq!(coverage["status"], "not_measured", "{coverage:#}");
    assert!(coverage.get("percent").is_none());
    let summary = coverage["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("line coverage not measured, so checks.coverage_min 95% was not checked: gaffer measures coverage only for Python")
            && summary.contains("node (package.json)"),
        "{summary}"
    );
    // The plain command ran: nothing was wrapped.
    assert_eq!(checks["command"], "npm test");
    let body = fake.pulls("acme/tiny-node")[0]["body"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(body.contains("Coverage: **not measured**"), "{body}");
    assert!(show_file(&fake.bare_path("acme/tiny-node"), "main", ".coverage").is_none());
}

#[tokio::test]
async fn a_venv_without_coverage_py_is_not_measured_and_says_how_to_fix_it() {
    // The python fixture's requirements install only its one dependency into the venv.
    let (fake, app) = fake_with_app("acme/calc", "pr", Some(&fixture("python")), &[]).await;
    fake.commit(
        "acme/calc",
        "main",
        &[(".llm-team.yml", "checks:\n  coverage_min: 80\n")],
        "policy",
    );
    let outcome = post_ok(&app, "/repos/acme/calc/bootstrap").await;
    assert_eq!(outcome["action"], "opened_pr", "{outcome:#}");
    let checks = &outcome["checks"];
    assert_eq!(checks["passed"], true, "{checks:#}");
    // The tests ran as usual, without coverage.py.
    assert_eq!(
        checks["results"]["tests"]["tests.test_calc.CalcTest.test_add"], "passed",
        "{checks:#}"
    );
    let coverage = &checks["coverage"];
    assert_eq!(coverage["status"], "not_measured", "{coverage:#}");
    let summary = coverage["summary"].as_str().unwrap();
    assert!(
        summary.contains("coverage.py is not importable by the `python` that runs the tests")
            && summary.contains("add `coverage` (or `pytest-cov`) to the repo's requirements"),
        "{summary}"
    );
    let body = fake.pulls("acme/calc")[0]["body"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(body.contains("Coverage: **not measured**"), "{body}");
}
