//! Scan, status, work-next and next-task through the API, against the fake GitHub with a
//! repo seeded from sample-target/.

use serde_json::{json, Value};

use crate::support::app::{assert_error, fake_with_app, sample_target, spawn_app_with, TestApp};
use crate::support::fake_github::{FakeGithub, Fault};

const REPO: &str = "acme/tally";

fn task(id: &str, status: &str, priority: &str, deps: &str) -> String {
    format!("---\nid: {id}\ntitle: Task {id}\ntype: feature\npriority: {priority}\ndepends_on: {deps}\nstatus: {status}\nacceptance:\n  - it works\n---\n# Task {id}\n")
}

async fn setup(mode: &str) -> (FakeGithub, TestApp) {
    fake_with_app(REPO, mode, Some(&sample_target()), &[]).await
}

async fn scan(app: &TestApp) -> Value {
    let response = app.post("/repos/acme/tally/scan").await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_sample_target_scans_clean_and_needs_the_taskmaster() {
    let (_fake, app) = setup("observe").await;
    let report = scan(&app).await;
    assert_eq!(report["config"]["project_name"], "tally");
    assert_eq!(
        report["config"]["protected_paths"],
        json!([".github/", "infra/", "secrets/"])
    );
    assert_eq!(report["counts"]["queued"], 0);
    assert_eq!(report["head_sha"].as_str().unwrap().len(), 40);
    let errors: Vec<&Value> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["severity"] == "error")
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(report["next"]["role"], "taskmaster");
    assert_eq!(report["next"]["reason"], "Taskmaster: no queued task");
}

#[tokio::test]
async fn tasks_problems_and_the_next_step() {
    let (fake, app) = setup("observe").await;
    fake.commit(
        REPO,
        "main",
        &[
            ("tasks/T-0001-ci.md", &task("T-0001", "done", "P1", "[]")),
            (
                "tasks/T-0002-count.md",
                &task("T-0002", "queued", "P2", "[]"),
            ),
            (
                "tasks/T-0003-json.md",
                &task("T-0003", "queued", "P1", "[T-0001]"),
            ),
            (
                "tasks/T-0004-bad.md",
                "---\nid: T-0004\ntitle: Bad\ntype: feature\npriority: P1\nstatus: doing\n---\n",
            ),
            (
                "tasks/T-0005-extra.md",
                &task("T-0005", "blocked", "P3", "[]").replace("status:", "colour: red\nstatus:"),
            ),
            ("tasks/notes.txt", "not a task"),
        ],
        "tasks",
    );
    let report = scan(&app).await;
    assert_eq!(report["counts"]["queued"], 2);
    assert_eq!(report["counts"]["done"], 1);
    assert_eq!(report["counts"]["blocked"], 1);
    let problems = report["problems"].as_array().unwrap();
    let bad = problems
        .iter()
        .find(|p| p["file"] == "tasks/T-0004-bad.md")
        .expect("bad file reported");
    assert_eq!(bad["field"], "status");
    assert_eq!(bad["severity"], "error");
    assert!(bad["message"].as_str().unwrap().contains("\"doing\""));
    let unknown = problems
        .iter()
        .find(|p| p["field"] == "colour")
        .expect("unknown key reported");
    assert_eq!(unknown["severity"], "warning");
    assert_eq!(report["next"]["role"], "developer");
    assert_eq!(report["next"]["task"], "T-0003");
    assert_eq!(
        report["next"]["reason"],
        "Developer on T-0003: queued, P1, deps T-0001 done"
    );
    assert_eq!(report["next_task"], "T-0003");
}

#[tokio::test]
async fn work_next_status_and_the_listing_remember_the_scan() {
    let (fake, app) = setup("observe").await;
    fake.commit(
        REPO,
        "main",
        &[("tasks/T-0001-ci.md", &task("T-0001", "queued", "P1", "[]"))],
        "task",
    );
    let response = app.post("/repos/acme_tally/work-next").await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(
        answer["decision"]["reason"],
        "Developer on T-0001: queued, P1, no deps"
    );
    assert_eq!(answer["acted"], false);

    let status: Value = app
        .get("/repos/acme/tally/status")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status["next"]["task"], "T-0001");
    assert_eq!(status["last_scan"]["counts"]["queued"], 1);
    let kinds: Vec<&str> = status["recent_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["work-next", "scan"]);

    let next: Value = app
        .get("/repos/acme_tally/next-task")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(next["task"]["id"], "T-0001");
    assert_eq!(next["task"]["acceptance"], json!(["it works"]));

    // The listing carries the last scan's answer without calling GitHub.
    fake.clear_log();
    let list: Value = app.get("/repos").await.json().await.unwrap();
    assert_eq!(list["repos"][0]["next_task"], "T-0001");
    assert_eq!(list["repos"][0]["open_prs"], 0);
    assert!(fake.log().is_empty(), "listing made no GitHub call");
}

#[tokio::test]
async fn an_open_task_pr_holds_and_a_merge_calls_the_integrator() {
    let (fake, app) = setup("observe").await;
    fake.commit(
        REPO,
        "main",
        &[("tasks/T-0001-ci.md", &task("T-0001", "queued", "P1", "[]"))],
        "task",
    );
    let number = fake.open_pull_after_commit(REPO, "feature/T-0001-ci");
    let report = scan(&app).await;
    assert_eq!(report["open_task_prs"][0]["number"], number);
    assert_eq!(
        report["next"]["reason"],
        format!("nothing: T-0001 in review in PR #{number}")
    );

    // The Developer's branch flipped the task to in_review; the human merges it.
    fake.commit(
        REPO,
        "feature/T-0001-ci",
        &[(
            "tasks/T-0001-ci.md",
            &task("T-0001", "in_review", "P1", "[]"),
        )],
        "in review",
    );
    fake.merge(REPO, number).unwrap();
    let report = scan(&app).await;
    assert_eq!(report["next"]["role"], "integrator");
    assert_eq!(report["next"]["pull"], number);
}

#[tokio::test]
async fn cycles_and_in_review_without_a_pr_are_problems() {
    let (fake, app) = setup("observe").await;
    fake.commit(
        REPO,
        "main",
        &[
            (
                "tasks/T-0001-a.md",
                &task("T-0001", "queued", "P1", "[T-0002]"),
            ),
            (
                "tasks/T-0002-b.md",
                &task("T-0002", "queued", "P1", "[T-0001]"),
            ),
            (
                "tasks/T-0003-c.md",
                &task("T-0003", "in_review", "P1", "[T-0009]"),
            ),
        ],
        "tasks",
    );
    let report = scan(&app).await;
    let messages: Vec<&str> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["message"].as_str().unwrap())
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("T-0001 is in a dependency cycle")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("T-0003 is in_review but no PR")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("depends on T-0009, which does not exist")),
        "{messages:?}"
    );
    assert!(report["next"]["reason"]
        .as_str()
        .unwrap()
        .contains("dependency cycle"));
}

#[tokio::test]
async fn a_bad_team_config_is_reported_and_defaults_are_used() {
    let (fake, app) = setup("observe").await;
    fake.commit(
        REPO,
        "main",
        &[(
            ".llm-team.yml",
            "workflow:\n  branch_prefix: 42 spaces\n  colour: blue\n",
        )],
        "config",
    );
    let report = scan(&app).await;
    assert_eq!(report["config"]["branch_prefix"], "feature/");
    let fields: Vec<&str> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["field"].as_str())
        .collect();
    assert!(
        fields.contains(&"workflow.branch_prefix") && fields.contains(&"workflow.colour"),
        "{fields:?}"
    );
}

#[tokio::test]
async fn disabled_repos_answer_409() {
    let (_fake, app) = setup("disabled").await;
    assert_error(app.post("/repos/acme/tally/scan").await, 409).await;
    assert_error(app.post("/repos/acme_tally/work-next").await, 409).await;
    assert_error(app.get("/repos/acme/tally/next-task").await, 409).await;
    // Status needs no network and still answers.
    assert_eq!(app.get("/repos/acme/tally/status").await.status(), 200);
}

#[tokio::test]
async fn github_failures_become_clear_errors_and_store_nothing() {
    let (fake, app) = setup("observe").await;
    fake.inject(Fault::Status(500), 4); // the first try and its three retries
    let message = assert_error(app.post("/repos/acme/tally/scan").await, 503).await;
    assert!(message.contains("answered 500"), "{message}");
    let status: Value = app
        .get("/repos/acme/tally/status")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status["last_scan"], Value::Null);

    app.post_json("/repos", &json!({"full_name": "acme/ghost"}))
        .await;
    let message = assert_error(app.post("/repos/acme/ghost/scan").await, 503).await;
    assert!(
        message.contains("not found or the token lacks access"),
        "{message}"
    );
    assert_error(app.post("/repos/acme/unknown/scan").await, 404).await;
}

#[tokio::test]
async fn scanning_needs_the_api_token_when_set() {
    let fake = FakeGithub::start().await;
    fake.create_repo(REPO, None);
    let app = spawn_app_with(&[
        ("GITHUB_API_URL", &fake.api_url()),
        ("GAFFER_API_TOKEN", "t"),
    ])
    .await;
    let created = app
        .client
        .post(app.url("/repos"))
        .bearer_auth("t")
        .json(&json!({"full_name": REPO}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_error(app.post("/repos/acme/tally/scan").await, 401).await;
    assert_error(app.post("/repos/acme/tally/work-next").await, 401).await;
    let ok = app
        .client
        .post(app.url("/repos/acme/tally/scan"))
        .bearer_auth("t")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

/// A task marked `auto_policy: manual`, or owned by a person, is never picked by the crew;
/// the reason is in work-next and status.
#[tokio::test]
async fn manual_and_human_owned_tasks_are_skipped_with_the_reason() {
    let (fake, app) = crate::support::app::fake_with_app(
        "acme/tally",
        "pr",
        Some(&crate::support::app::sample_target()),
        &[],
    )
    .await;
    let task = |id: &str, extra: &str| {
        format!("---\nid: {id}\ntitle: Manual work\ntype: feature\npriority: P1\ndepends_on: []\nstatus: queued\n{extra}acceptance:\n  - done by hand\n---\n")
    };
    fake.commit(
        "acme/tally",
        "main",
        &[
            (
                "tasks/T-0001-manual.md",
                &task("T-0001", "auto_policy: manual\n"),
            ),
            ("tasks/T-0002-alice.md", &task("T-0002", "owner: alice\n")),
        ],
        "tasks for people",
    );
    let answer = crate::support::app::post_ok(&app, "/repos/acme/tally/work-next").await;
    assert_eq!(answer["decision"]["role"], "nothing", "{answer:#}");
    let reason = answer["decision"]["reason"].as_str().unwrap();
    assert!(reason.contains("T-0001 is auto_policy: manual"), "{reason}");
    assert!(reason.contains("T-0002 is owned by alice"), "{reason}");
    assert_eq!(answer["acted"], false);
    assert!(
        fake.pulls("acme/tally").is_empty(),
        "no PR for a person's task"
    );
    let status: Value = app
        .get("/repos/acme/tally/status")
        .await
        .json()
        .await
        .unwrap();
    assert!(status.to_string().contains("owned by alice"), "{status:#}");
}
