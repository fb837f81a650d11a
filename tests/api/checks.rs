//! The repo's checks on real small repos (tests/fixtures/checks/): a Python package whose
//! dependency is installed at set-up from a local wheel, a Node package and a Rust crate.
//! Set-up runs with network and tests without; a failure already on the base does not block
//! a PR; a change that breaks a passing test is reported as such; the checks' byproducts
//! are never committed, and the outcome's files are exactly the commit's diff.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::app::{fake_with_app, post_ok, TestApp};
use crate::support::fake_github::FakeGithub;
use crate::support::git::{branch_sha, git, show_file};
use crate::support::ollama;

const BOOT_TASK: &str = "tasks/T-0001-initialize-basic-ci-for-python.md";
const BOOT_BRANCH: &str = "feature/T-0001-initialize-basic-ci-for-python";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/checks")
        .join(name)
}

fn task_text(id: &str, title: &str) -> String {
    format!("---\nid: {id}\ntitle: {title}\ntype: feature\npriority: P1\ndepends_on: []\nstatus: queued\nacceptance:\n  - it works\n---\n# {title}\n")
}

/// The python fixture as `acme/calc`, a scripted Developer answering `reply`, one task.
async fn python_with_model(reply: &str) -> (FakeGithub, TestApp, wiremock::MockServer) {
    let model = ollama::always(reply).await;
    let uri = model.uri();
    let (fake, app) = fake_with_app(
        "acme/calc",
        "pr",
        Some(&fixture("python")),
        &[
            ("OLLAMA_BASE_URL", uri.as_str()),
            ("LLM_DEVELOPER_MODEL", "tiny:1b"),
            ("DEV_MAX_ATTEMPTS", "1"),
        ],
    )
    .await;
    fake.commit(
        "acme/calc",
        "main",
        &[("tasks/T-0001-sub.md", &task_text("T-0001", "Add sub"))],
        "task",
    );
    (fake, app, model)
}

fn diff_names(bare: &Path, branch: &str) -> Vec<String> {
    git(bare, &["diff", "--name-only", "main", branch])
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn python_deps_install_at_setup_and_an_old_failure_does_not_block_the_pr() {
    let reply = "calc/__init__.py\n<<<<<<< SEARCH\ndef mul(a, b):\n=======\ndef sub(a, b):\n    return a - b\n\n\ndef mul(a, b):\n>>>>>>> REPLACE\n\ntests/test_sub.py\n<<<<<<< SEARCH\n=======\nimport unittest\n\nfrom calc import sub\n\n\nclass SubTest(unittest.TestCase):\n    def test_sub(self):\n        self.assertEqual(sub(5, 3), 2)\n>>>>>>> REPLACE\n";
    let (fake, app, _model) = python_with_model(reply).await;
    let bare = fake.bare_path("acme/calc");
    let main = branch_sha(&bare, "main").unwrap();
    let outcome = post_ok(&app, "/run/developer?repo=acme/calc").await;
    assert_eq!(outcome["action"], "opened_pr", "{outcome:#}");
    let checks = &outcome["checks"];
    assert_eq!(
        checks["detected"], "python (requirements.txt)",
        "{checks:#}"
    );
    // Set-up installed the dependency from the local wheel, with network allowed.
    assert_eq!(checks["setup"]["passed"], true, "{checks:#}");
    assert_eq!(checks["setup"]["network"], true);
    assert!(
        checks["setup"]["output"]
            .as_str()
            .unwrap()
            .contains("tinyadd"),
        "{checks:#}"
    );
    assert_eq!(checks["test"]["network"], false);
    // Per test: the dependency-using test passes, the new one too, the old failure stays.
    let tests = &checks["results"]["tests"];
    assert_eq!(
        tests["tests.test_calc.CalcTest.test_add"], "passed",
        "{checks:#}"
    );
    assert_eq!(tests["tests.test_sub.SubTest.test_sub"], "passed");
    assert_eq!(tests["tests.test_calc.CalcTest.test_mul"], "failed");
    assert_eq!(checks["passed"], true);
    assert_eq!(checks["comparison"]["method"], "per_test");
    assert_eq!(
        strings(&checks["comparison"]["still_failing"]),
        ["tests.test_calc.CalcTest.test_mul"]
    );
    assert!(strings(&checks["comparison"]["newly_broken"]).is_empty());
    assert_eq!(checks["baseline"]["sha"], main.as_str());
    assert_eq!(checks["baseline"]["cached"], false);

    // Only the change is committed: no byproducts, and the files are the diff.
    let branch = "feature/T-0001-add-sub";
    for byproduct in ["probe_output.txt", "build/report.txt"] {
        assert!(show_file(&bare, branch, byproduct).is_none(), "{byproduct}");
    }
    let expected = [
        "calc/__init__.py",
        "tasks/T-0001-sub.md",
        "tests/test_sub.py",
    ];
    assert_eq!(strings(&outcome["files"]), expected);
    assert_eq!(diff_names(&bare, branch), expected);

    // The PR says what was detected and shows before / after.
    let pr = fake.pulls("acme/calc")[0].clone();
    let body = pr["body"].as_str().unwrap();
    for want in [
        "python (requirements.txt)",
        "| | before (",
        "| tests passed / failed / skipped | 2 / 1 / 0 | 3 / 1 / 0 |",
        "| newly broken | | none |",
        "set-up",
    ] {
        assert!(body.contains(want), "{want}: {body}");
    }

    // The Reviewer (queued by the engine once the Developer's PR opened) judges the PR
    // against the same base: its results come from the store.
    let mut reviews = Value::Null;
    for _ in 0..600 {
        let runs: Value = app
            .get("/runs?repo=acme/calc&role=reviewer&state=succeeded")
            .await
            .json()
            .await
            .unwrap();
        if let Some(outcome) = runs["runs"][0].get("outcome") {
            reviews = outcome.clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let review = &reviews[0];
    assert_eq!(review["action"], "reviewed", "{review:#}");
    assert_eq!(review["checks"]["baseline"]["cached"], true, "{review:#}");
    assert_eq!(review["checks"]["passed"], true);
    // The repo's cache survived between runs: the venv already has the dependency.
    let setup = review["checks"]["setup"]["output"].as_str().unwrap();
    assert!(
        setup.contains("Requirement already satisfied: tinyadd"),
        "{setup}"
    );
    assert!(app
        .data_dir
        .path()
        .join("cache/acme/calc/venv/bin/python")
        .exists());
}

#[tokio::test]
async fn a_change_that_breaks_a_passing_test_is_reported_as_newly_broken() {
    let reply = "calc/__init__.py\n<<<<<<< SEARCH\n    return _add(a, b)\n=======\n    return _add(a, b) + 1\n>>>>>>> REPLACE\n";
    let (fake, app, _model) = python_with_model(reply).await;
    let outcome = post_ok(&app, "/run/developer?repo=acme/calc").await;
    assert_eq!(outcome["action"], "blocked", "{outcome:#}");
    let checks = &outcome["checks"];
    assert_eq!(checks["passed"], false);
    assert_eq!(
        strings(&checks["comparison"]["newly_broken"]),
        ["tests.test_calc.CalcTest.test_add"],
        "{checks:#}"
    );
    // The failure that was already there is not blamed on the change.
    assert_eq!(
        strings(&checks["comparison"]["still_failing"]),
        ["tests.test_calc.CalcTest.test_mul"]
    );
    let body = fake.pulls("acme/calc")[0]["body"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        body.contains("newly broken: tests.test_calc.CalcTest.test_add"),
        "{body}"
    );
    assert!(body.contains("| newly broken | | `tests.test_calc.CalcTest.test_add` |"));
}

#[tokio::test]
async fn node_setup_has_the_network_and_the_tests_do_not() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (fake, app) = fake_with_app("acme/tiny-node", "pr", Some(&fixture("node")), &[]).await;
    fake.commit(
        "acme/tiny-node",
        "main",
        &[
            ("net-port.txt", &format!("{port}\n")),
            (
                ".llm-team.yml",
                "checks:\n  setup: node scripts/probe-net.js && npm install\n",
            ),
        ],
        "probe the network",
    );
    let outcome = post_ok(&app, "/repos/acme/tiny-node/bootstrap").await;
    assert_eq!(outcome["action"], "opened_pr", "{outcome:#}");
    let checks = &outcome["checks"];
    assert_eq!(
        checks["detected"], "node (package.json), partly configured in .llm-team.yml",
        "{checks:#}"
    );
    assert_eq!(checks["command"], "npm test");
    // Set-up reached the host's listener...
    assert_eq!(checks["setup"]["passed"], true, "{checks:#}");
    assert!(checks["setup"]["output"]
        .as_str()
        .unwrap()
        .contains("NET-OK"));
    // ... the test that tries the same failed, as it does on the base: not blocking.
    let tests = &checks["results"]["tests"];
    assert_eq!(tests["reaches the network"], "failed", "{checks:#}");
    assert_eq!(tests["adds"], "passed");
    assert_eq!(checks["passed"], true);
    assert_eq!(
        strings(&checks["comparison"]["still_failing"]),
        ["reaches the network"]
    );
    // CI for Node; npm's lock file (made by the set-up) is not committed.
    let bare = fake.bare_path("acme/tiny-node");
    let workflow = show_file(&bare, BOOT_BRANCH, ".github/workflows/ci.yml").unwrap();
    assert!(workflow.contains("npm test") && workflow.contains("setup-node"));
    assert!(show_file(&bare, BOOT_BRANCH, "package-lock.json").is_none());
    assert_eq!(
        strings(&outcome["files"]),
        [".github/workflows/ci.yml", BOOT_TASK]
    );
    assert_eq!(diff_names(&bare, BOOT_BRANCH), strings(&outcome["files"]));
    drop(listener);
}

#[tokio::test]
async fn a_rust_crate_is_built_in_the_repo_cache_and_gets_cargo_ci() {
    let (fake, app) = fake_with_app("acme/tinycrate", "pr", Some(&fixture("rust")), &[]).await;
    let outcome = post_ok(&app, "/repos/acme/tinycrate/bootstrap").await;
    assert_eq!(outcome["action"], "opened_pr", "{outcome:#}");
    let checks = &outcome["checks"];
    assert_eq!(checks["detected"], "rust (Cargo.toml)", "{checks:#}");
    assert_eq!(checks["setup"]["passed"], true, "{checks:#}");
    assert_eq!(
        checks["results"]["tests"]["unittests src/lib.rs::tests::adds"], "passed",
        "{checks:#}"
    );
    assert_eq!(checks["passed"], true);
    let bare = fake.bare_path("acme/tinycrate");
    let workflow = show_file(&bare, BOOT_BRANCH, ".github/workflows/ci.yml").unwrap();
    assert!(workflow.contains("cargo test"), "{workflow}");
    // The build went to the repo's cache, not the clone (nor this project's target dir).
    assert!(show_file(&bare, BOOT_BRANCH, "Cargo.lock").is_none());
    let cache = app.data_dir.path().join("cache/acme/tinycrate");
    assert!(cache.join("cargo-target").is_dir(), "{}", cache.display());
    assert_eq!(
        strings(&outcome["files"]),
        [".github/workflows/ci.yml", BOOT_TASK]
    );
}

#[tokio::test]
async fn each_phase_has_its_own_timeout_and_a_timeout_never_passes() {
    let (fake, app) = fake_with_app(
        "acme/tiny-node",
        "pr",
        Some(&fixture("node")),
        &[("CHECKS_TIMEOUT", "1"), ("CHECKS_SETUP_TIMEOUT", "20")],
    )
    .await;
    fake.commit(
        "acme/tiny-node",
        "main",
        &[(
            ".llm-team.yml",
            "checks:\n  setup: echo setting up; sleep 2; echo set up\n  test: echo testing; sleep 30\n",
        )],
        "slow tests",
    );
    let outcome = post_ok(&app, "/repos/acme/tiny-node/bootstrap").await;
    assert_eq!(outcome["action"], "blocked", "{outcome:#}");
    let checks = &outcome["checks"];
    // Set-up had its own, longer limit; the tests were stopped at theirs, output kept.
    assert_eq!(checks["setup"]["passed"], true, "{checks:#}");
    assert!(checks["setup"]["output"]
        .as_str()
        .unwrap()
        .contains("set up"));
    assert_eq!(checks["timed_out"], true);
    let output = checks["test"]["output"].as_str().unwrap();
    assert!(
        output.contains("testing") && output.contains("killed after 1s"),
        "{output}"
    );
    assert!(checks["comparison"]["reason"]
        .as_str()
        .unwrap()
        .contains("stopped after 1s"));
}

#[tokio::test]
async fn known_failures_never_count_either_way() {
    let reply = "calc/__init__.py\n<<<<<<< SEARCH\n    return _add(a, b)\n=======\n    return _add(a, b) + 1\n>>>>>>> REPLACE\n";
    let (fake, app, _model) = python_with_model(reply).await;
    fake.commit(
        "acme/calc",
        "main",
        &[(
            ".llm-team.yml",
            // No fail-to-pass proof asked: this test is about the comparison only.
            "checks:\n  require_tests: false\n  known_failures: [\"tests.test_calc.CalcTest.test_a*\"]\n",
        )],
        "flaky",
    );
    let outcome = post_ok(&app, "/run/developer?repo=acme/calc").await;
    assert_eq!(outcome["action"], "opened_pr", "{outcome:#}");
    let comparison = &outcome["checks"]["comparison"];
    assert!(
        strings(&comparison["newly_broken"]).is_empty(),
        "{comparison:#}"
    );
    assert_eq!(
        strings(&comparison["known"]),
        ["tests.test_calc.CalcTest.test_add"]
    );
    let body = fake.pulls("acme/calc")[0]["body"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(body.contains("Known failures ignored"), "{body}");
}

#[tokio::test]
async fn junit_xml_written_to_the_reports_dir_gives_the_per_test_results() {
    let (fake, app) = fake_with_app("acme/tiny-node", "pr", Some(&fixture("node")), &[]).await;
    fake.commit(
        "acme/tiny-node",
        "main",
        &[(
            ".llm-team.yml",
            "checks:\n  setup: none\n  test: node --test --test-reporter=junit --test-reporter-destination=$GAFFER_REPORTS/node.xml\n",
        )],
        "junit",
    );
    let outcome = post_ok(&app, "/repos/acme/tiny-node/bootstrap").await;
    assert_eq!(outcome["action"], "opened_pr", "{outcome:#}");
    let tests = &outcome["checks"]["results"]["tests"];
    // The names come from the XML (classname.name), not from the (empty) output.
    assert_eq!(tests["test.adds"], "passed", "{outcome:#}");
    assert_eq!(tests["test.reaches the network"], "skipped");
    assert_eq!(outcome["checks"]["comparison"]["method"], "per_test");
}
