//! The Developer as an agent, driven by scripted models (text protocol and native tool
//! calls) on the sample target: explore -> edit -> a broken edit undone -> a change with no
//! test refused -> test added -> fail-to-pass shown -> PR; and the loop's limits.

use serde_json::{json, Value};

use crate::support::app::{fake_with_app, post_ok, sample_target, TestApp};
use crate::support::fake_github::FakeGithub;
use crate::support::git::show_file;
use crate::support::ollama;

const REPO: &str = "acme/tally";
const BRANCH: &str = "feature/T-0001-print-a-total-line";

const TASK: &str = "---\nid: T-0001\ntitle: Print a total line\ntype: feature\npriority: P1\ndepends_on: []\nstatus: queued\nacceptance:\n  - with two files a total line follows\n  - a unit test in tests/ covers it\n---\n# Print a total line\n";

/// The sum is computed where `main` prints each file.
const SOURCE_EDIT: &str = "I will add the total.\n\nsrc/app.py\n<<<<<<< SEARCH\n    status = 0\n    for name in args.files or [\"-\"]:\n=======\n    status = 0\n    totals = [0, 0, 0]\n    for name in args.files or [\"-\"]:\n>>>>>>> REPLACE\n\nsrc/app.py\n<<<<<<< SEARCH\n        print(f\"{lines:8} {words:8} {chars:8} {name}\")\n    return status\n=======\n        print(f\"{lines:8} {words:8} {chars:8} {name}\")\n        totals = [totals[0] + lines, totals[1] + words, totals[2] + chars]\n    if len(args.files) > 1:\n        print(f\"{totals[0]:8} {totals[1]:8} {totals[2]:8} total\")\n    return status\n>>>>>>> REPLACE\n";

pub(crate) const TEST_FILE: &str = "import io\nimport sys\nimport tempfile\nimport unittest\nfrom contextlib import redirect_stdout\nfrom pathlib import Path\n\nsys.path.insert(0, str(Path(__file__).resolve().parents[1]))\n\nfrom src.app import main  # noqa: E402\n\n\nclass TotalTest(unittest.TestCase):\n    def test_two_files_get_a_total(self):\n        with tempfile.TemporaryDirectory() as tmp:\n            a = Path(tmp) / \"a.txt\"\n            b = Path(tmp) / \"b.txt\"\n            a.write_text(\"one two\\n\")\n            b.write_text(\"three\\n\")\n            out = io.StringIO()\n            with redirect_stdout(out):\n                main([str(a), str(b)])\n            self.assertTrue(out.getvalue().splitlines()[-1].endswith(\"total\"))\n";

async fn setup(model: &wiremock::MockServer, extra: &[(&str, &str)]) -> (FakeGithub, TestApp) {
    let uri = model.uri();
    let mut vars = vec![
        ("OLLAMA_BASE_URL", uri.as_str()),
        ("LLM_DEVELOPER_MODEL", "tiny:1b"),
    ];
    vars.extend_from_slice(extra);
    let (fake, app) = fake_with_app(REPO, "pr", Some(&sample_target()), &vars).await;
    fake.commit(REPO, "main", &[("tasks/T-0001-total.md", TASK)], "task");
    (fake, app)
}

fn pr_body(fake: &FakeGithub) -> String {
    fake.pulls(REPO)[0]["body"].as_str().unwrap().to_string()
}

/// The total line as native tool calls: two edits of `main` and the test file.
pub(crate) fn total_change() -> Vec<(&'static str, Value)> {
    vec![
        (
            "edit",
            json!({"path": "src/app.py",
            "old": "    status = 0\n    for name in args.files or [\"-\"]:\n",
            "new": "    status = 0\n    totals = [0, 0, 0]\n    for name in args.files or [\"-\"]:\n"}),
        ),
        (
            "edit",
            json!({"path": "src/app.py",
            "old": "        print(f\"{lines:8} {words:8} {chars:8} {name}\")\n    return status\n",
            "new": "        print(f\"{lines:8} {words:8} {chars:8} {name}\")\n        totals = [totals[0] + lines, totals[1] + words, totals[2] + chars]\n    if len(args.files) > 1:\n        print(f\"{totals[0]:8} {totals[1]:8} {totals[2]:8} total\")\n    return status\n"}),
        ),
        (
            "write_file",
            json!({"path": "tests/test_total.py", "content": TEST_FILE}),
        ),
    ]
}

/// The whole loop in the text protocol, one step per scripted reply.
#[tokio::test]
async fn the_agent_explores_edits_undoes_a_broken_edit_adds_a_test_and_proves_it() {
    let test_answer = format!("Now a test.\n\ntests/test_total.py\n```python\n{TEST_FILE}```\n");
    let model = ollama::in_turn(&[
        // 1. Explore.
        "Let me look.\nOUTLINE src/app.py\nREAD src/app.py 20-40\nFIND def main",
        // 2. An edit that leaves the file unparsable: undone at once.
        "src/app.py\n<<<<<<< SEARCH\n    return status\n=======\n    return status +\n>>>>>>> REPLACE\n",
        // 3. The real change, but no test yet: checked at once, not done without proof.
        SOURCE_EDIT,
        // 4. The test, as a whole file: it fails on the base and passes with the change.
        &test_answer,
    ])
    .await;
    let (fake, app) = setup(&model, &[]).await;
    let outcome = post_ok(&app, "/run/developer").await;
    assert_eq!(outcome["action"], "opened_pr", "{outcome:#}");
    let stats = &outcome["detail"]["stats"];
    assert_eq!(stats["edit_format"], "diff", "{stats:#}");
    assert_eq!(stats["steps"], 4, "{stats:#}");
    assert_eq!(stats["edits_undone"], 1, "{stats:#}");
    assert_eq!(stats["fail_to_pass"], true, "{stats:#}");
    let proof = &outcome["detail"]["proof"];
    assert_eq!(proof["proven"], true, "{proof:#}");
    assert_eq!(proof["test_files"], json!(["tests/test_total.py"]));

    // What the model was told at each step.
    let asks = ollama::last_user_messages(&model).await;
    assert_eq!(asks.len(), 4, "{asks:#?}");
    assert!(asks[1].contains("def main ["), "the outline: {}", asks[1]);
    assert!(
        asks[1].contains("  23 | def main"),
        "numbered lines: {}",
        asks[1]
    );
    assert!(
        asks[1].contains("src/app.py:23: def main"),
        "search hits: {}",
        asks[1]
    );
    assert!(
        asks[2].contains("the edit was undone because the file no longer parses"),
        "{}",
        asks[2]
    );
    assert!(
        asks[3].contains("adds or changes no test file"),
        "the change without a test is not done: {}",
        asks[3]
    );
    // The conversation is append-only: each request starts with the previous one.
    let bodies: Vec<Value> = model
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/api/chat")
        .map(|r| r.body_json().unwrap())
        .collect();
    for pair in bodies.windows(2) {
        let (a, b) = (
            pair[0]["messages"].as_array().unwrap(),
            pair[1]["messages"].as_array().unwrap(),
        );
        assert_eq!(&b[..a.len()], &a[..], "a request rewrote the conversation");
    }

    // The branch holds the change and the test, not the broken edit; the PR shows proof.
    let bare = fake.bare_path(REPO);
    let app_py = show_file(&bare, BRANCH, "src/app.py").unwrap();
    assert!(
        app_py.contains("total\")") && !app_py.contains("status +"),
        "{app_py}"
    );
    assert_eq!(
        show_file(&bare, BRANCH, "tests/test_total.py").unwrap(),
        TEST_FILE
    );
    let body = pr_body(&fake);
    assert!(body.contains("fail-to-pass: proven."), "{body}");
    assert!(
        body.contains("tests.test_total.TotalTest.test_two_files_get_a_total"),
        "{body}"
    );
    assert!(body.contains("diff format"), "{body}");
    assert!(show_file(&bare, BRANCH, "tasks/T-0001-total.md")
        .unwrap()
        .contains("status: in_review"));
}

/// A test that passes without the change proves nothing: the run ends blocked, with the
/// full reason in the PR.
#[tokio::test]
async fn a_test_that_passes_on_the_base_is_no_proof_and_the_pr_says_why() {
    let weak_test = "tests/test_weak.py\n```python\nimport unittest\n\n\nclass WeakTest(unittest.TestCase):\n    def test_nothing(self):\n        self.assertTrue(True)\n```\n";
    let reply = format!("{SOURCE_EDIT}\n{weak_test}");
    let model = ollama::in_turn(&[&reply, "DONE it is finished"]).await;
    let (fake, app) = setup(&model, &[("DEV_MAX_ATTEMPTS", "1")]).await;
    let outcome = post_ok(&app, "/run/developer").await;
    assert_eq!(outcome["action"], "blocked", "{outcome:#}");
    let why = outcome["detail"]["blocked"].as_str().unwrap();
    assert!(why.contains("also pass without the change"), "{why}");
    let body = pr_body(&fake);
    assert!(body.contains("also pass without the change"), "{body}");
    assert_eq!(outcome["detail"]["stats"]["fail_to_pass"], false);
    let bare = fake.bare_path(REPO);
    assert_eq!(
        show_file(&bare, BRANCH, "src/app.py"),
        show_file(&bare, "main", "src/app.py"),
        "nothing half-done is proposed"
    );
}

/// A model whose server reports the `tools` capability gets native tool calls; the tool
/// results go back as `tool` messages.
#[tokio::test]
async fn a_tool_calling_model_works_through_native_tools() {
    let model = ollama::tool_caller(&[
        vec![(
            "read_file",
            json!({"path": "src/app.py", "from_line": 1, "to_line": 10}),
        )],
        [
            total_change(),
            vec![(
                "finish",
                json!({"summary": "total line added, with a test"}),
            )],
        ]
        .concat(),
    ])
    .await;
    let (fake, app) = setup(&model, &[]).await;
    let outcome = post_ok(&app, "/run/developer").await;
    assert_eq!(outcome["action"], "opened_pr", "{outcome:#}");
    assert_eq!(outcome["detail"]["stats"]["edit_format"], "tools");
    assert_eq!(outcome["detail"]["proof"]["proven"], true);
    let chats: Vec<Value> = model
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/api/chat")
        .map(|r| r.body_json().unwrap())
        .collect();
    assert_eq!(chats.len(), 2, "explore, then change and finish");
    assert!(
        chats[0]["tools"].as_array().unwrap().len() >= 8,
        "{:#}",
        chats[0]["tools"]
    );
    let second = chats[1]["messages"].as_array().unwrap();
    let tool_message = second.iter().find(|m| m["role"] == "tool").unwrap();
    assert!(
        tool_message["content"]
            .as_str()
            .unwrap()
            .contains("   1 | \"\"\"Command-line entry point"),
        "{tool_message:#}"
    );
    assert!(
        second
            .iter()
            .any(|m| m["role"] == "assistant"
                && m["tool_calls"][0]["function"]["name"] == "read_file")
    );
    let body = pr_body(&fake);
    assert!(body.contains("tools format"), "{body}");
    assert!(body.contains("total line added, with a test"), "{body}");
}

/// The step budget ends a model that only ever explores, with a blocked PR that says so.
#[tokio::test]
async fn a_model_that_never_edits_runs_out_of_steps_and_says_so() {
    let model = ollama::in_turn(&["READ src/app.py", "READ README.md", "LIST", "OUTLINE"]).await;
    let (fake, app) = setup(&model, &[("DEV_MAX_STEPS", "4")]).await;
    let outcome = post_ok(&app, "/run/developer").await;
    assert_eq!(outcome["action"], "blocked", "{outcome:#}");
    assert!(
        outcome["detail"]["blocked"]
            .as_str()
            .unwrap()
            .contains("the step budget ran out (4 model replies, DEV_MAX_STEPS)"),
        "{outcome:#}"
    );
    assert_eq!(ollama::last_user_messages(&model).await.len(), 4);
    assert!(pr_body(&fake).contains("DEV_MAX_STEPS"));
}

/// The sample target with a scripted Developer and a Reviewer model (`judge:1b`) on its own
/// server answering `reply`; `extra` is one more setting.
async fn with_reviewer(
    developer: &wiremock::MockServer,
    reply: &str,
    extra: (&str, &str),
) -> (FakeGithub, TestApp, wiremock::MockServer) {
    let reviewer = ollama::always(reply).await;
    let reviewer_url = reviewer.uri();
    let (fake, app) = setup(
        developer,
        &[
            ("LLM_REVIEWER_MODEL", "judge:1b"),
            ("LLM_REVIEWER_BASE_URL", reviewer_url.as_str()),
            extra,
        ],
    )
    .await;
    (fake, app, reviewer)
}

async fn agent_pr_then_reviewer(reviewer_reply: &str) -> (FakeGithub, Value, TestApp) {
    let developer =
        ollama::tool_caller(&[
            [total_change(), vec![("finish", json!({"summary": "done"}))]].concat(),
        ])
        .await;
    let (fake, app, _reviewer) =
        with_reviewer(&developer, reviewer_reply, ("LLM_STRUCTURED_RETRIES", "1")).await;
    assert_eq!(post_ok(&app, "/run/developer").await["action"], "opened_pr");
    // The engine reviews the new head by itself (or this call does): either way, exactly
    // one review, whose run's outcome is read back.
    post_ok(&app, "/run/reviewer").await;
    for _ in 0..300 {
        let runs: Value = app
            .get("/runs?role=reviewer&state=succeeded")
            .await
            .json()
            .await
            .unwrap();
        let reviewed = runs["runs"].as_array().into_iter().flatten().find_map(|r| {
            let outcome = &r["outcome"];
            let first = if outcome.is_array() {
                &outcome[0]
            } else {
                outcome
            };
            (first["action"] == "reviewed").then(|| first.clone())
        });
        if let Some(review) = reviewed {
            assert_eq!(fake.reviews(REPO, 1).len(), 1);
            return (fake, review, app);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no review: {:#?}", fake.reviews(REPO, 1));
}

/// The Reviewer's "met" needs evidence, and criteria about tests are judged from the
/// facts (the diff touches tests; the Reviewer's own fail-to-pass run), not the model.
#[tokio::test]
async fn the_reviewer_refuses_met_without_evidence_and_checks_test_criteria_itself() {
    let verdict = json!({"summary": "Adds a total.", "acceptance": [
        {"criterion": "a", "met": true, "reason": "it looks right", "evidence": ""},
        {"criterion": "b", "met": false, "reason": "I see no test", "evidence": ""}],
        "risks": []})
    .to_string();
    let (fake, review, app) = agent_pr_then_reviewer(&verdict).await;
    assert_eq!(review["action"], "reviewed", "{review:#}");
    assert_eq!(review["detail"]["downgraded"], 1, "{review:#}");
    assert_eq!(review["detail"]["proof"]["proven"], true, "{review:#}");
    let body = &fake.reviews(REPO, 1)[0].2;
    assert!(
        body.contains(
            "- [ ] with two files a total line follows: the model said met but cited no evidence"
        ),
        "{body}"
    );
    assert!(
        body.contains("- [x] a unit test in tests/ covers it: checked by gaffer: 1 test(s) fail on the base commit and pass with the change"),
        "{body}"
    );
    assert!(body.contains("fail-to-pass: proven."), "{body}");

    // The statistics a user picks models by.
    let stats: Value = app.get("/stats/models").await.json().await.unwrap();
    let row = |model: &str| {
        stats["overall"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["model"] == model)
            .cloned()
            .unwrap_or_else(|| panic!("no row for {model}: {stats:#}"))
    };
    let developer = row("tiny:1b");
    assert_eq!(developer["format_tools"], 1, "{developer:#}");
    assert_eq!(developer["proof_required"], 1, "{developer:#}");
    assert_eq!(developer["fail_to_pass"], 1, "{developer:#}");
    assert_eq!(developer["edits_applied"], 3, "{developer:#}");
    let reviewer = row("judge:1b");
    assert_eq!(reviewer["reviews"], 1, "{reviewer:#}");
    assert_eq!(reviewer["claims_refused"], 1, "{reviewer:#}");
    assert_eq!(reviewer["criteria_met"], 1, "{reviewer:#}");
    assert_eq!(reviewer["review_fallbacks"], 0, "{reviewer:#}");
}

/// A Reviewer model that gives no usable answer: the built-in review is posted, saying so.
#[tokio::test]
async fn a_failing_reviewer_model_falls_back_to_the_built_in_review_and_says_so() {
    let (fake, review, _app) = agent_pr_then_reviewer("I cannot judge this.").await;
    assert_eq!(review["action"], "reviewed", "{review:#}");
    assert!(
        review["detail"]["fell_back"].as_str().is_some(),
        "{review:#}"
    );
    let body = &fake.reviews(REPO, 1)[0].2;
    assert!(body.contains("The reviewer model failed"), "{body}");
    assert!(body.contains("judge:1b failed: built-in review"), "{body}");
}

/// The Reviewer finds a criterion unmet: the Developer's next round works on the same
/// branch and pushes a fix commit to the same PR (never a new one), the Reviewer reviews
/// the new head, and `DEV_MAX_ITERATIONS` ends the rounds.
#[tokio::test]
async fn unmet_review_criteria_bring_fix_commits_to_the_same_pr_within_the_limit() {
    let developer = ollama::tool_caller(&[
        [total_change(), vec![("finish", json!({"summary": "first round"}))]].concat(),
        vec![
            ("edit", json!({"path": "src/app.py",
                "old": "    totals = [0, 0, 0]\n",
                "new": "    totals = [0, 0, 0]  # lines, words, characters of the files counted\n"})),
            ("finish", json!({"summary": "documented the totals"})),
        ],
    ])
    .await;
    let verdict = json!({"summary": "Adds a total.", "acceptance": [
        {"criterion": "a", "met": false, "reason": "the totals are not explained", "evidence": "src/app.py"},
        {"criterion": "b", "met": true, "reason": "tested", "evidence": "tests/test_total.py"}],
        "risks": []})
    .to_string();
    let (fake, app, _reviewer) =
        with_reviewer(&developer, &verdict, ("DEV_MAX_ITERATIONS", "1")).await;
    assert_eq!(post_ok(&app, "/run/developer").await["action"], "opened_pr");
    let bare = fake.bare_path(REPO);
    let log =
        || crate::support::git::git(&bare, &["log", "--format=%s", BRANCH]).unwrap_or_default();
    // The engine: review -> unmet -> a round on the PR -> review of the new head -> unmet
    // again -> no second round (the limit).
    for _ in 0..600 {
        if fake.reviews(REPO, 1).len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(fake.reviews(REPO, 1).len(), 2, "{}", log());
    let history = log();
    assert!(
        history.contains("T-0001: address review feedback (iteration 1)"),
        "{history}"
    );
    assert_eq!(fake.pulls(REPO).len(), 1, "never a second PR");
    let app_py = show_file(&bare, BRANCH, "src/app.py").unwrap();
    assert!(
        app_py.contains("# lines, words, characters of the files counted"),
        "{app_py}"
    );
    // The second review saw the new head; then the round limit held.
    let heads: Vec<String> = fake.reviews(REPO, 1).iter().map(|r| r.0.clone()).collect();
    assert_ne!(heads[0], heads[1]);
    let mut limited = false;
    for _ in 0..300 {
        let runs: Value = app.get("/runs?role=developer").await.json().await.unwrap();
        limited = runs["runs"].as_array().unwrap().iter().any(|r| {
            r["summary"]
                .as_str()
                .unwrap_or_default()
                .contains("had its 1 iteration(s) (DEV_MAX_ITERATIONS=1)")
        });
        if limited {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(limited, "the second round was refused by the limit");
    assert_eq!(log().matches("address review feedback").count(), 1);
}

/// Tests are fixed, never deleted to make the checks pass.
#[tokio::test]
async fn a_test_file_cannot_be_deleted_to_make_the_checks_pass() {
    let model = ollama::in_turn(&["DELETE tests/test_smoke.py", "DONE"]).await;
    let (fake, app) = setup(&model, &[("DEV_MAX_STEPS", "2")]).await;
    let outcome = post_ok(&app, "/run/developer").await;
    assert_eq!(outcome["action"], "blocked", "{outcome:#}");
    let asks = ollama::last_user_messages(&model).await;
    assert!(
        asks[1].contains("deleting a test file is not allowed"),
        "{}",
        asks[1]
    );
    let bare = fake.bare_path(REPO);
    assert!(show_file(&bare, BRANCH, "tests/test_smoke.py").is_some());
}
