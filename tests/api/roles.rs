//! Taskmaster and Developer end to end against the fake GitHub (bare git repos), seeded
//! from sample-target/: the bootstrap flow with no model, idempotency, resume after a
//! crash, scripted model edits (good, garbage, out-of-bounds), observe-mode previews.

use std::path::Path;

use serde_json::{json, Value};

use crate::support::app::{assert_error, fake_with_app, post_ok, sample_target, TestApp};
use crate::support::fake_github::FakeGithub;
use crate::support::git::{branch_sha, show_file};
use crate::support::ollama;

const REPO: &str = "acme/tally";
const BOOT_BRANCH: &str = "feature/T-0001-initialize-basic-ci-for-python";
const BOOT_TASK: &str = "tasks/T-0001-initialize-basic-ci-for-python.md";

fn sample() -> std::path::PathBuf {
    sample_target()
}

async fn setup(mode: &str, seed: Option<&Path>, extra: &[(&str, &str)]) -> (FakeGithub, TestApp) {
    fake_with_app(REPO, mode, seed, extra).await
}

fn task_text(id: &str, title: &str) -> String {
    format!("---\nid: {id}\ntitle: {title}\ntype: feature\npriority: P1\ndepends_on: []\nstatus: queued\nacceptance:\n  - tally --json prints JSON\n---\n# {title}\n")
}

#[tokio::test]
async fn the_bootstrap_flow_needs_no_model_and_never_duplicates() {
    let (fake, app) = setup("pr", Some(&sample()), &[]).await;
    let bare = fake.bare_path(REPO);

    // 1. No task yet: the Taskmaster proposes the bootstrap task as a PR.
    let first = post_ok(&app, "/repos/acme/tally/work-next").await;
    assert_eq!(first["decision"]["role"], "taskmaster");
    assert_eq!(first["acted"], true);
    assert_eq!(first["outcome"]["action"], "opened_pr", "{first:#}");
    let plan = &fake.pulls(REPO)[0];
    assert_eq!(
        plan["head"]["ref"],
        "feature/plan-T-0001-initialize-basic-ci-for-python"
    );
    assert!(plan["body"]
        .as_str()
        .unwrap()
        .contains("<!-- gaffer:task=T-0001 role=taskmaster -->"));
    let planned = show_file(
        &bare,
        "feature/plan-T-0001-initialize-basic-ci-for-python",
        BOOT_TASK,
    )
    .unwrap();
    assert!(
        planned.contains("status: queued") && planned.contains("Initialize basic CI for Python")
    );
    assert!(
        show_file(&bare, "main", BOOT_TASK).is_none(),
        "nothing committed to main"
    );

    // 2. Asking again changes nothing while the plan waits for a human.
    let again = post_ok(&app, "/repos/acme/tally/work-next").await;
    assert_eq!(again["acted"], false);
    assert!(again["decision"]["reason"]
        .as_str()
        .unwrap()
        .contains("waits for merge in PR #1"));
    let rerun = post_ok(&app, "/run/taskmaster").await;
    assert_eq!(rerun["action"], "existing_pr");
    assert_eq!(fake.pulls(REPO).len(), 1);

    // 3. The human merges; the Developer does the bootstrap deterministically.
    fake.merge(REPO, 1).unwrap();
    let main_before = branch_sha(&bare, "main").unwrap();
    let dev = post_ok(&app, "/repos/acme_tally/work-next").await;
    assert_eq!(dev["decision"]["role"], "developer", "{dev:#}");
    let outcome = &dev["outcome"];
    assert_eq!(outcome["action"], "opened_pr", "{outcome:#}");
    assert_eq!(outcome["checks"]["passed"], true, "{outcome:#}");
    assert_eq!(outcome["pr"]["branch"], BOOT_BRANCH);
    let pr = fake
        .pulls(REPO)
        .into_iter()
        .find(|p| p["head"]["ref"] == BOOT_BRANCH)
        .unwrap();
    let body = pr["body"].as_str().unwrap();
    assert!(body.contains("<!-- gaffer:task=T-0001 role=developer -->"));
    assert!(
        body.contains("- [ ] A GitHub Actions workflow runs the tests"),
        "{body}"
    );
    assert!(body.contains("passed"), "{body}");
    let flipped = show_file(&bare, BOOT_BRANCH, BOOT_TASK).unwrap();
    assert!(flipped.contains("status: in_review"), "{flipped}");
    assert_eq!(
        branch_sha(&bare, "main").unwrap(),
        main_before,
        "main is never pushed"
    );

    // 4. Again: the PR exists, nothing new.
    let repeat = post_ok(&app, "/run/developer?repo=acme/tally&task=T-0001").await;
    assert_eq!(repeat["action"], "existing_pr");
    assert_eq!(fake.pulls(REPO).len(), 2);
    let status: Value = app
        .get("/repos/acme/tally/status")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status["developer_models"][0]["model"], "builtin");
    assert_eq!(status["developer_models"][0]["prs"], 1);
}

#[tokio::test]
async fn bootstrap_adds_ci_and_a_smoke_test_to_a_bare_repo() {
    let (fake, app) = setup("pr", None, &[]).await;
    let outcome = post_ok(&app, "/repos/acme/tally/bootstrap").await;
    assert_eq!(outcome["action"], "opened_pr", "{outcome:#}");
    let files: Vec<&str> = outcome["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    // Exactly the commit's diff: the bootstrap's files and the new task file.
    assert_eq!(
        files,
        [
            ".github/workflows/ci.yml",
            BOOT_TASK,
            "tests/__init__.py",
            "tests/test_smoke.py",
        ]
    );
    assert_eq!(outcome["checks"]["passed"], true, "{outcome:#}");
    let bare = fake.bare_path(REPO);
    assert!(show_file(&bare, BOOT_BRANCH, ".github/workflows/ci.yml")
        .unwrap()
        .contains("unittest"));
    assert!(show_file(&bare, BOOT_BRANCH, BOOT_TASK)
        .unwrap()
        .contains("status: in_review"));
    // A second bootstrap (or a Taskmaster run) finds the PR instead of making another.
    let again = post_ok(&app, "/repos/acme/tally/bootstrap").await;
    assert_eq!(again["action"], "existing_pr", "{again:#}");
    let planned = post_ok(&app, "/run/taskmaster").await;
    assert_ne!(planned["action"], "opened_pr", "{planned:#}");
    assert_eq!(fake.pulls(REPO).len(), 1);
}

#[tokio::test]
async fn observe_mode_previews_and_changes_nothing() {
    let (fake, app) = setup("observe", None, &[]).await;
    let preview = post_ok(&app, "/repos/acme/tally/bootstrap").await;
    assert_eq!(preview["action"], "preview");
    assert!(preview["files"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f == ".github/workflows/ci.yml"));
    let work = post_ok(&app, "/repos/acme/tally/work-next").await;
    assert_eq!(work["acted"], false);
    assert!(fake.pulls(REPO).is_empty());
    assert!(
        branch_sha(&fake.bare_path(REPO), BOOT_BRANCH).is_none(),
        "nothing pushed"
    );
    let dev = post_ok(&app, "/run/developer").await;
    assert_ne!(dev["action"], "opened_pr");
    assert!(fake.pulls(REPO).is_empty());
}

#[tokio::test]
async fn a_crash_after_the_push_is_finished_by_the_next_run() {
    let (fake, app) = setup("pr", Some(&sample()), &[]).await;
    let bare = fake.bare_path(REPO);
    fake.commit(
        REPO,
        "main",
        &[(
            BOOT_TASK,
            &crate::support::roles_fixtures::bootstrap_task("queued"),
        )],
        "plan merged",
    );
    // The previous run pushed its branch, task already in_review, then died before the PR.
    let main = branch_sha(&bare, "main").unwrap();
    crate::support::git::git(
        &bare,
        &["update-ref", &format!("refs/heads/{BOOT_BRANCH}"), &main],
    )
    .unwrap();
    fake.commit(
        REPO,
        BOOT_BRANCH,
        &[(
            BOOT_TASK,
            &crate::support::roles_fixtures::bootstrap_task("in_review"),
        )],
        "pushed",
    );
    let pushed = branch_sha(&bare, BOOT_BRANCH).unwrap();
    let outcome = post_ok(&app, "/run/developer").await;
    assert_eq!(outcome["action"], "opened_pr", "{outcome:#}");
    assert!(outcome["summary"].as_str().unwrap().contains("resumed"));
    assert_eq!(
        branch_sha(&bare, BOOT_BRANCH).unwrap(),
        pushed,
        "the pushed work was kept as is"
    );
    assert_eq!(fake.pulls(REPO).len(), 1);
}

async fn model_setup(reply: &str) -> (FakeGithub, TestApp, wiremock::MockServer) {
    let model = ollama::always(reply).await;
    let uri = model.uri();
    let (fake, app) = setup(
        "pr",
        Some(&sample()),
        &[
            ("OLLAMA_BASE_URL", uri.as_str()),
            ("LLM_DEVELOPER_MODEL", "tiny:1b"),
            ("DEV_MAX_ATTEMPTS", "2"),
        ],
    )
    .await;
    fake.commit(
        REPO,
        "main",
        &[(
            "tasks/T-0001-json.md",
            &task_text("T-0001", "Add a --json flag"),
        )],
        "task",
    );
    (fake, app, model)
}

#[tokio::test]
async fn a_good_model_edit_becomes_a_pr_with_passing_checks() {
    let reply = "I'll add the flag.\n\nsrc/app.py\n```python\n<<<<<<< SEARCH\n    parser.add_argument(\"--version\", action=\"version\", version=f\"tally {__version__}\")\n=======\n    parser.add_argument(\"--version\", action=\"version\", version=f\"tally {__version__}\")\n    parser.add_argument(\"--json\", action=\"store_true\", help=\"print JSON\")\n>>>>>>> REPLACE\n```\n\ntests/test_json.py\n<<<<<<< SEARCH\n=======\nimport sys\nimport unittest\nfrom pathlib import Path\n\nsys.path.insert(0, str(Path(__file__).resolve().parents[1]))\n\nfrom src.app import build_parser  # noqa: E402\n\n\nclass JsonFlagTest(unittest.TestCase):\n    def test_flag_parses(self):\n        self.assertTrue(build_parser().parse_args([\"--json\"]).json)\n>>>>>>> REPLACE\n";
    let (fake, app, _model) = model_setup(reply).await;
    let outcome = post_ok(&app, "/run/developer").await;
    assert_eq!(outcome["action"], "opened_pr", "{outcome:#}");
    assert_eq!(outcome["checks"]["passed"], true, "{outcome:#}");
    assert_eq!(outcome["detail"]["stats"]["applied_first_try"], true);
    let bare = fake.bare_path(REPO);
    let branch = "feature/T-0001-add-a-json-flag";
    assert!(show_file(&bare, branch, "src/app.py")
        .unwrap()
        .contains("--json"));
    assert!(show_file(&bare, branch, "tests/test_json.py").is_some());
    assert!(show_file(&bare, branch, "tasks/T-0001-json.md")
        .unwrap()
        .contains("status: in_review"));
}

#[tokio::test]
async fn model_garbage_ends_in_a_clear_blocked_pr() {
    let (fake, app, model) = model_setup("I am not sure what you mean. Could you clarify?").await;
    let outcome = post_ok(&app, "/run/developer").await;
    assert_eq!(outcome["action"], "blocked", "{outcome:#}");
    let bare = fake.bare_path(REPO);
    let branch = "feature/T-0001-add-a-json-flag";
    let task = show_file(&bare, branch, "tasks/T-0001-json.md").unwrap();
    assert!(task.contains("status: blocked"), "{task}");
    assert_eq!(
        show_file(&bare, branch, "src/app.py"),
        show_file(&bare, "main", "src/app.py"),
        "nothing half-done"
    );
    let pr = &fake.pulls(REPO)[0];
    assert!(pr["title"].as_str().unwrap().contains("blocked"));
    assert!(
        pr["body"].as_str().unwrap().contains(
            "the model kept repeating itself (the same reply, or the same two in turn, three times); last problem: the reply held no action"
        ),
        "{}",
        pr["body"]
    );
    // The second reply was told exactly what was wrong, the third that it repeated
    // itself; then the run stopped rather than ask a fourth time.
    let asks = ollama::last_user_messages(&model).await;
    assert_eq!(asks.len(), 3);
    assert!(
        asks[1].contains("held no action I could run"),
        "{}",
        asks[1]
    );
    assert!(asks[2].contains("do something different"), "{}", asks[2]);
    let status: Value = app
        .get("/repos/acme/tally/status")
        .await
        .json()
        .await
        .unwrap();
    let stats = &status["developer_models"][0];
    assert_eq!(
        (
            stats["model"].as_str(),
            stats["malformed_replies"].as_i64(),
            stats["blocked"].as_i64()
        ),
        (Some("tiny:1b"), Some(3), Some(1))
    );
    // Running again does not open a second PR.
    assert_eq!(
        post_ok(&app, "/run/developer?task=T-0001").await["action"],
        "existing_pr"
    );
    assert_eq!(fake.pulls(REPO).len(), 1);
}

#[tokio::test]
async fn protected_paths_and_traversal_are_refused_and_fed_back() {
    let reply = ".github/workflows/ci.yml\n<<<<<<< SEARCH\n=======\nname: owned\n>>>>>>> REPLACE\n\n../../outside.py\n<<<<<<< SEARCH\n=======\nprint('escaped')\n>>>>>>> REPLACE\n";
    let (fake, app, model) = model_setup(reply).await;
    let outcome = post_ok(&app, "/run/developer").await;
    assert_eq!(outcome["action"], "blocked", "{outcome:#}");
    let asks = ollama::last_user_messages(&model).await;
    assert!(
        asks[1].contains("protected by .llm-team.yml"),
        "{}",
        asks[1]
    );
    assert!(asks[1].contains("`..` is not allowed"), "{}", asks[1]);
    let bare = fake.bare_path(REPO);
    let branch = "feature/T-0001-add-a-json-flag";
    assert_eq!(
        show_file(&bare, branch, ".github/workflows/ci.yml"),
        show_file(&bare, "main", ".github/workflows/ci.yml")
    );
}

#[tokio::test]
async fn run_needs_a_repo_when_several_are_registered() {
    let (_fake, app) = setup("pr", None, &[]).await;
    app.post_json("/repos", &json!({"full_name": "acme/other"}))
        .await;
    let message = assert_error(app.post("/run/taskmaster").await, 400).await;
    assert!(message.contains("?repo=owner/name"), "{message}");
    assert_error(
        app.post("/run/developer?repo=acme/tally&task=T-1").await,
        400,
    )
    .await;
    let observe = app.post("/run/developer?repo=acme/other").await;
    assert_ne!(observe.status(), 200);
}

#[tokio::test]
async fn with_a_model_the_taskmaster_plans_from_the_prd() {
    let plan = json!({"title": "Add a --json flag", "type": "feature", "priority": "P1",
        "depends_on": ["T-0001", "T-0099"], "acceptance": ["tally --json prints JSON", "tests cover it"],
        "body": "See PRD item 2."}).to_string();
    let model = ollama::always(&plan).await;
    let uri = model.uri();
    let (fake, app) = setup(
        "pr",
        Some(&sample()),
        &[
            ("OLLAMA_BASE_URL", uri.as_str()),
            ("LLM_TASKMASTER_MODEL", "tiny:1b"),
        ],
    )
    .await;
    fake.commit(
        REPO,
        "main",
        &[(
            BOOT_TASK,
            &crate::support::roles_fixtures::bootstrap_task("done"),
        )],
        "bootstrapped",
    );
    let outcome = post_ok(&app, "/run/taskmaster").await;
    assert_eq!(outcome["action"], "opened_pr", "{outcome:#}");
    assert_eq!(outcome["task"], "T-0002");
    let text = show_file(
        &fake.bare_path(REPO),
        "feature/plan-T-0002-add-a-json-flag",
        "tasks/T-0002-add-a-json-flag.md",
    )
    .unwrap();
    assert!(
        text.contains("title: \"Add a --json flag\"") && text.contains("status: queued"),
        "{text}"
    );
    assert!(
        text.contains("depends_on: [T-0001]"),
        "unknown dependencies are dropped: {text}"
    );
    // The PRD went to the model fenced as data.
    let asks = ollama::last_user_messages(&model).await;
    assert!(
        asks[0].contains("<<<DATA name=\"Product requirements (docs/PRD.md)\">>>"),
        "{}",
        asks[0]
    );
    assert!(asks[0].contains("tally: product requirements"));
}

/// Issue 22: a model quotes a method at column 0; the edit lands inside the class, the
/// checks (which call the method) pass, and the branch differs from main only there.
#[tokio::test]
async fn a_deindented_search_keeps_the_method_in_its_class() {
    let reply = "src/counter.py\n<<<<<<< SEARCH\ndef add(self, k):\n    self.n += k\n=======\ndef add(self, k, times=1):\n    self.n += k * times\n>>>>>>> REPLACE\n\ntests/test_times.py\n```python\nimport sys\nimport unittest\nfrom pathlib import Path\n\nsys.path.insert(0, str(Path(__file__).resolve().parents[1]))\n\nfrom src.counter import Counter  # noqa: E402\n\n\nclass TimesTest(unittest.TestCase):\n    def test_add_times(self):\n        c = Counter()\n        c.add(2, times=3)\n        self.assertEqual(c.total(), 6)\n```\n";
    let (fake, app, _model) = model_setup(reply).await;
    let before = "class Counter:\n    def __init__(self):\n        self.n = 0\n\n    def add(self, k):\n        self.n += k\n\n    def total(self):\n        return self.n\n";
    let test = "import sys\nimport unittest\nfrom pathlib import Path\n\nsys.path.insert(0, str(Path(__file__).resolve().parents[1]))\n\nfrom src.counter import Counter  # noqa: E402\n\n\nclass CounterTest(unittest.TestCase):\n    def test_add_is_a_method(self):\n        c = Counter()\n        c.add(2)\n        self.assertEqual(c.total(), 2)\n";
    fake.commit(
        REPO,
        "main",
        &[("src/counter.py", before), ("tests/test_counter.py", test)],
        "a counter",
    );
    let outcome = post_ok(&app, "/run/developer").await;
    assert_eq!(outcome["action"], "opened_pr", "{outcome:#}");
    assert_eq!(outcome["checks"]["passed"], true, "{outcome:#}");
    let bare = fake.bare_path(REPO);
    let branch = "feature/T-0001-add-a-json-flag";
    let after = show_file(&bare, branch, "src/counter.py").unwrap();
    assert_eq!(
        after,
        "class Counter:\n    def __init__(self):\n        self.n = 0\n\n    def add(self, k, times=1):\n        self.n += k * times\n\n    def total(self):\n        return self.n\n"
    );
    let diff = crate::support::git::git(&bare, &["diff", "main", branch, "--", "src/"]).unwrap();
    let changed: Vec<&str> = diff
        .lines()
        .filter(|l| {
            (l.starts_with('+') || l.starts_with('-'))
                && !l.starts_with("+++")
                && !l.starts_with("---")
        })
        .collect();
    assert_eq!(
        changed,
        [
            "-    def add(self, k):",
            "-        self.n += k",
            "+    def add(self, k, times=1):",
            "+        self.n += k * times"
        ],
        "{diff}"
    );
}

/// A model edit that leaves Python unparsable is refused before any check runs, and the
/// model is told the file and line.
#[tokio::test]
async fn an_edit_that_breaks_python_syntax_is_refused_before_the_checks() {
    let reply = "src/app.py\n<<<<<<< SEARCH\n    parser.add_argument(\"--version\", action=\"version\", version=f\"tally {__version__}\")\n=======\n    parser.add_argument(\"--version\", action=\"version\", version=f\"tally {__version__}\"\n>>>>>>> REPLACE\n";
    let (_fake, app, model) = model_setup(reply).await;
    let outcome = post_ok(&app, "/run/developer").await;
    assert_eq!(outcome["action"], "blocked", "{outcome:#}");
    let asks = ollama::last_user_messages(&model).await;
    assert!(asks[1].contains("no longer parse"), "{}", asks[1]);
    assert!(asks[1].contains("src/app.py: line"), "{}", asks[1]);
}
