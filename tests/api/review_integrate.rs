//! Reviewer and Integrator end to end on the fake GitHub and on the local forge: one review
//! per head SHA, a new SHA gets a new review, integration only after a merge, and repeated
//! triggers do nothing twice.

use std::path::Path;

use serde_json::{json, Value};

use crate::support::app::{
    assert_error, fake_with_app, post_ok, sample_target, spawn_app_with, TestApp, NO_MODELS,
};
use crate::support::fake_github::FakeGithub;
use crate::support::git::{git, show_file};
use crate::support::ollama;

const REPO: &str = "acme/tally";
const BRANCH: &str = "feature/T-0001-initialize-basic-ci-for-python";
const TASK: &str = "tasks/T-0001-initialize-basic-ci-for-python.md";

async fn with_work_pr(extra: &[(&str, &str)]) -> (FakeGithub, TestApp) {
    let (fake, app) = fake_with_app(REPO, "pr", Some(&sample_target()), extra).await;
    let boot: Value = app
        .post("/repos/acme/tally/bootstrap")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(boot["action"], "opened_pr", "{boot:#}");
    (fake, app)
}

#[tokio::test]
async fn one_review_per_head_sha_and_a_new_push_gets_a_new_one() {
    let (fake, app) = with_work_pr(&[]).await;
    let head = fake.pulls(REPO)[0]["head"]["sha"]
        .as_str()
        .unwrap()
        .to_string();
    fake.add_check_run(REPO, &head, "tests", "completed", Some("success"));

    let first = post_ok(&app, "/run/reviewer").await;
    assert_eq!(first.as_array().unwrap().len(), 1);
    assert_eq!(first[0]["action"], "reviewed", "{first:#}");
    let reviews = fake.reviews(REPO, 1);
    assert_eq!(reviews.len(), 1);
    let (commit, state, body) = &reviews[0];
    assert_eq!(commit, &head);
    assert_eq!(state, "COMMENTED", "never an approval");
    assert!(body.contains(&format!("sha={head}")), "{body}");
    assert!(
        body.contains("success (tests (success))"),
        "CI state of that SHA: {body}"
    );
    assert!(body.contains("- [ ] A GitHub Actions workflow"), "{body}");
    assert!(body.contains("### Risks"));

    // The same SHA again, by any trigger: nothing.
    assert_eq!(
        post_ok(&app, "/run/reviewer")
            .await
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        post_ok(&app, "/run/reviewer?pr=1").await[0]["action"],
        "nothing"
    );
    assert_eq!(fake.reviews(REPO, 1).len(), 1);

    // A new push: a new review of the new head.
    let new_head = fake.commit(REPO, BRANCH, &[("src/extra.py", "X = 1\n")], "more work");
    assert_eq!(
        post_ok(&app, "/run/reviewer").await[0]["action"],
        "reviewed"
    );
    let reviews = fake.reviews(REPO, 1);
    assert_eq!(reviews.len(), 2);
    assert_eq!(reviews[1].0, new_head);
}

#[tokio::test]
async fn a_review_posted_before_a_crash_is_not_posted_again() {
    let (fake, app) = with_work_pr(&[]).await;
    let head = fake.pulls(REPO)[0]["head"]["sha"]
        .as_str()
        .unwrap()
        .to_string();
    // A previous run posted its review, then died before remembering it.
    let marker = format!("<!-- gaffer:task=T-0001 role=reviewer sha={head} -->\nearlier review");
    let posted = reqwest::Client::new()
        .post(format!("{}/repos/{REPO}/pulls/1/reviews", fake.api_url()))
        .json(&json!({"commit_id": head, "body": marker, "event": "COMMENT"}))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);
    let outcome = post_ok(&app, "/run/reviewer?pr=1").await;
    assert_eq!(outcome[0]["action"], "nothing", "{outcome:#}");
    assert_eq!(fake.reviews(REPO, 1).len(), 1);
    assert_eq!(
        post_ok(&app, "/run/reviewer")
            .await
            .as_array()
            .unwrap()
            .len(),
        0,
        "remembered now"
    );
}

#[tokio::test]
async fn a_reviewer_model_judges_each_acceptance_item() {
    let verdict = json!({"summary": "Adds CI.", "acceptance": [
        {"criterion": "x", "met": true, "reason": "the workflow runs unittest", "evidence": "the checks run by gaffer"},
        {"criterion": "y", "met": false, "reason": "no failing-test proof"}], "risks": ["workflow pins no versions"]}).to_string();
    let model = ollama::always(&verdict).await;
    let uri = model.uri();
    let (fake, app) = with_work_pr(&[
        ("OLLAMA_BASE_URL", uri.as_str()),
        ("LLM_REVIEWER_MODEL", "tiny:1b"),
    ])
    .await;
    let outcome = post_ok(&app, "/run/reviewer").await;
    assert!(
        outcome[0]["summary"]
            .as_str()
            .unwrap()
            .contains("1/3 acceptance items met"),
        "{outcome:#}"
    );
    let body = &fake.reviews(REPO, 1)[0].2;
    assert!(body.contains("- [x] A GitHub Actions workflow runs the tests on every pull request and on pushes to main: the workflow runs unittest"), "{body}");
    assert!(
        body.contains("- [ ] The workflow fails when a test fails: no failing-test proof"),
        "{body}"
    );
    // A criterion about tests is judged from the facts, whatever the model says.
    assert!(body.contains("- [ ] A smoke test exists under tests/ and passes with python3 -m unittest: the diff touches no test file"), "{body}");
    assert!(body.contains("workflow pins no versions"));
    let asks = ollama::last_user_messages(&model).await;
    assert!(
        asks[0].contains("<<<DATA name=\"Diff\">>>"),
        "the diff is fenced as data"
    );
}

#[tokio::test]
async fn integration_only_after_a_merge_and_only_once() {
    let (fake, app) = with_work_pr(&[]).await;
    let early = post_ok(&app, "/run/integrator?pr=1").await;
    assert_eq!(early["action"], "nothing");
    assert!(early["summary"].as_str().unwrap().contains("still open"));

    fake.merge(REPO, 1).unwrap();
    let work = post_ok(&app, "/repos/acme/tally/work-next").await;
    assert_eq!(work["decision"]["role"], "integrator", "{work:#}");
    assert_eq!(work["outcome"]["action"], "opened_pr", "{work:#}");
    let integration = work["outcome"]["pr"]["number"].as_u64().unwrap();
    let branch = "feature/done-T-0001-initialize-basic-ci-for-python";
    let text = show_file(&fake.bare_path(REPO), branch, TASK).unwrap();
    assert!(text.contains("status: done"), "{text}");
    let on_main = show_file(&fake.bare_path(REPO), "main", TASK).unwrap();
    assert_eq!(
        text,
        on_main.replace("status: in_review", "status: done"),
        "only the status line changes"
    );

    // Every later trigger for the same merge does nothing.
    assert!(post_ok(&app, "/run/integrator?pr=1").await["summary"]
        .as_str()
        .unwrap()
        .contains(&format!("integrated already in PR #{integration}")));
    let again = post_ok(&app, "/repos/acme/tally/work-next").await;
    assert_eq!(again["acted"], false, "{again:#}");
    assert_eq!(fake.pulls(REPO).len(), 2);

    // Merging the integration PR: the task is done and there is nothing left to integrate.
    fake.merge(REPO, integration).unwrap();
    let report: Value = post_ok(&app, "/repos/acme/tally/scan").await;
    assert_eq!(report["counts"]["done"], 1);
}

#[tokio::test]
async fn a_pr_closed_without_merge_moves_nothing() {
    let (fake, app) = with_work_pr(&[]).await;
    fake.close(REPO, 1);
    let outcome = post_ok(&app, "/run/integrator?pr=1").await;
    assert_eq!(outcome["action"], "nothing");
    assert!(outcome["summary"]
        .as_str()
        .unwrap()
        .contains("closed without merge"));
    assert_eq!(fake.pulls(REPO).len(), 1);
}

#[tokio::test]
async fn ready_for_integration_first_when_the_repo_asks_for_it() {
    let (fake, app) = with_work_pr(&[]).await;
    fake.commit(
        REPO,
        "main",
        &[(
            ".llm-team.yml",
            "tasks:\n  states: [queued, in_review, ready_for_integration, done, blocked]\n",
        )],
        "config",
    );
    fake.merge(REPO, 1).unwrap();
    let outcome = post_ok(&app, "/run/integrator").await;
    assert_eq!(outcome["action"], "opened_pr", "{outcome:#}");
    let text = show_file(
        &fake.bare_path(REPO),
        "feature/ready-T-0001-initialize-basic-ci-for-python",
        TASK,
    )
    .unwrap();
    assert!(text.contains("status: ready_for_integration"), "{text}");

    // Merged: the second hop, from its own branch, moves the task on to done.
    let ready = outcome["pr"]["number"].as_u64().unwrap();
    fake.merge(REPO, ready).unwrap();
    let work = post_ok(&app, "/repos/acme/tally/work-next").await;
    assert_eq!(work["decision"]["role"], "integrator", "{work:#}");
    assert_eq!(work["outcome"]["action"], "opened_pr", "{work:#}");
    let text = show_file(
        &fake.bare_path(REPO),
        "feature/done-T-0001-initialize-basic-ci-for-python",
        TASK,
    )
    .unwrap();
    assert!(text.contains("status: done"), "{text}");
    let done = work["outcome"]["pr"]["number"].as_u64().unwrap();
    fake.merge(REPO, done).unwrap();
    let report: Value = post_ok(&app, "/repos/acme/tally/scan").await;
    assert_eq!(report["counts"]["done"], 1, "{report:#}");
    let again = post_ok(&app, "/repos/acme/tally/work-next").await;
    assert_ne!(again["decision"]["role"], "integrator", "{again:#}");
}

#[tokio::test]
async fn a_local_forge_repo_works_like_a_github_one() {
    let dir = tempfile::TempDir::new().unwrap();
    let origin = dir.path().join("origin.git");
    crate::support::git::init_bare(
        &origin,
        "main",
        Some(&Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-target")),
    );
    let mut vars: Vec<(&str, &str)> = NO_MODELS.to_vec();
    vars.push(("GITHUB_API_URL", "http://127.0.0.1:9")); // never called
    let root = dir.path().display().to_string();
    vars.push(("GAFFER_LOCAL_ROOT", &root));
    let app = spawn_app_with(&vars).await;

    let bad = app.post_json("/repos", &json!({"full_name": "me/tally", "forge": "local", "clone_url": format!("file://{}", dir.path().display())})).await;
    let message = assert_error(bad, 400).await;
    assert!(message.contains("bare git repository"), "{message}");

    let body = json!({"full_name": "me/tally", "mode": "pr", "forge": "local", "clone_url": format!("file://{}", origin.display())});
    assert_eq!(app.post_json("/repos", &body).await.status(), 201);
    assert_eq!(
        post_ok(&app, "/run/taskmaster").await["action"],
        "opened_pr"
    );
    assert_eq!(
        post_ok(&app, "/run/taskmaster").await["action"],
        "existing_pr"
    );
    assert!(git(
        &origin,
        &[
            "rev-parse",
            "--verify",
            "refs/heads/feature/plan-T-0001-initialize-basic-ci-for-python"
        ]
    )
    .is_ok());
    assert!(
        show_file(&origin, "main", TASK).is_none(),
        "main only changes through merges"
    );
    let report = post_ok(&app, "/repos/me/tally/scan").await;
    assert_eq!(report["open_task_prs"][0]["number"], 1);
}

#[tokio::test]
async fn a_repos_own_model_override_is_the_one_used() {
    let verdict = json!({"summary": "s", "acceptance": [{"criterion": "x", "met": true, "reason": "r", "evidence": "checks pass"}], "risks": []}).to_string();
    let model = ollama::always(&verdict).await;
    let uri = model.uri();
    // Globally no reviewer model; this repo asks for one.
    let (_fake, app) = with_work_pr(&[("OLLAMA_BASE_URL", uri.as_str())]).await;
    let patch = app
        .patch_json(
            "/repos/acme/tally",
            &json!({"overrides": {"models": {"reviewer": "tiny:1b"}}}),
        )
        .await;
    assert_eq!(patch.status(), 200);
    let outcome = post_ok(&app, "/run/reviewer").await;
    assert!(
        outcome[0]["summary"]
            .as_str()
            .unwrap()
            .contains("1/3 acceptance items met"),
        "{outcome:#}"
    );
    let sent: Value = model.received_requests().await.unwrap()[0]
        .body_json()
        .unwrap();
    assert_eq!(sent["model"], "tiny:1b");
}
