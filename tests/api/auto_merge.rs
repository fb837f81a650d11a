//! Auto-merge on the fake GitHub (`.llm-team.yml` `workflow.auto_merge`): gaffer merges
//! its own plan and integration PRs only when CI on the head is green (asked of GitHub,
//! whatever a webhook says), with the configured merge strategy; never when the repo did
//! not opt in, when a file outside the task's own file is in the diff, or when a person
//! asked for changes; code only with `auto_policy: auto`, `code` opted in and a full
//! Reviewer verdict on that head.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::app::{fake_with_app, post_ok, sample_target, TestApp};
use crate::support::fake_github::FakeGithub;
use crate::support::git::{git, show_file};
use crate::support::ollama;

const SECRET: &str = "auto-merge-secret";
const REPO: &str = "acme/tally";
const BOOT_TASK: &str = "tasks/T-0001-initialize-basic-ci-for-python.md";

/// The sample target's `.llm-team.yml` with this merge strategy, auto-merge list and
/// anything `extra` replaces.
fn config(strategy: &str, kinds: &str, extra: &[(&str, &str)]) -> String {
    let mut text = std::fs::read_to_string(sample_target().join(".llm-team.yml")).unwrap();
    text = text.replace(
        "merge_strategy: squash",
        &format!("merge_strategy: {strategy}\n  auto_merge: [{kinds}]"),
    );
    for (from, to) in extra {
        text = text.replace(from, to);
    }
    text
}

async fn setup(
    strategy: &str,
    kinds: &str,
    extra: &[(&str, &str)],
    vars: &[(&str, &str)],
) -> (FakeGithub, TestApp) {
    let mut all = vec![("GITHUB_WEBHOOK_SECRET", SECRET)];
    all.extend(vars);
    let (fake, app) = fake_with_app(REPO, "pr", Some(&sample_target()), &all).await;
    fake.commit(
        REPO,
        "main",
        &[(".llm-team.yml", &config(strategy, kinds, extra))],
        "auto-merge config",
    );
    (fake, app)
}

/// Waits until no run is queued or running (the engine's follow-ups included).
async fn settle(app: &TestApp) {
    for _ in 0..600 {
        let runs: Value = app.get("/runs?limit=500").await.json().await.unwrap();
        let busy = runs["runs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["state"] == "queued" || r["state"] == "running");
        if !busy {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("runs did not settle");
}

fn pull(fake: &FakeGithub, number: u64) -> Value {
    fake.pulls(REPO)
        .into_iter()
        .find(|p| p["number"] == number)
        .expect("the PR")
}

fn head(fake: &FakeGithub, number: u64) -> String {
    pull(fake, number)["head"]["sha"]
        .as_str()
        .unwrap()
        .to_string()
}

fn merged(fake: &FakeGithub, number: u64) -> bool {
    pull(fake, number)["merged_at"].is_string()
}

/// The parents of the default branch's head: two for a merge commit, one for a squash.
fn main_parents(fake: &FakeGithub) -> usize {
    let line = git(
        &fake.bare_path(REPO),
        &["rev-list", "--parents", "-n", "1", "main"],
    )
    .unwrap();
    line.split_whitespace().count() - 1
}

async fn events(app: &TestApp) -> String {
    let status: Value = app
        .get("/repos/acme/tally/status")
        .await
        .json()
        .await
        .unwrap();
    status["recent_events"].to_string()
}

/// Delivers a signed webhook and returns what it caused, once processed.
async fn deliver(app: &TestApp, event: &str, id: &str, payload: Value) -> String {
    let d = crate::support::webhook::deliver(app, SECRET, event, id, &payload).await;
    assert_eq!(d["status"], "done", "{d}");
    d["verdict"].as_str().unwrap().to_string()
}

/// A `status` event as GitHub sends it when a commit status changes.
async fn status_event(app: &TestApp, id: &str, sha: &str, state: &str) -> String {
    let payload = json!({"sha": sha, "state": state, "context": "ci",
        "repository": {"full_name": REPO}});
    deliver(app, "status", id, payload).await
}

/// The bootstrap PR merged by hand; the Integrator's PR moving its task to done: its number.
async fn integration_pr(fake: &FakeGithub, app: &TestApp) -> u64 {
    let boot = post_ok(app, "/repos/acme/tally/bootstrap").await;
    assert_eq!(boot["action"], "opened_pr", "{boot:#}");
    settle(app).await;
    fake.merge(REPO, 1).unwrap();
    let work = post_ok(app, "/repos/acme/tally/work-next").await;
    assert_eq!(work["outcome"]["action"], "opened_pr", "{work:#}");
    let number = work["outcome"]["pr"]["number"].as_u64().unwrap();
    assert!(pull(fake, number)["head"]["ref"]
        .as_str()
        .unwrap()
        .starts_with("feature/done-T-0001"));
    settle(app).await;
    number
}

#[tokio::test]
async fn an_integration_pr_is_merged_by_gaffer_only_when_ci_is_green() {
    let (fake, app) = setup("merge", "integration", &[], &[]).await;
    let pr = integration_pr(&fake, &app).await;
    // Opened with no CI at all: the follow-up looked, and no CI is not green.
    assert!(!merged(&fake, pr));
    let history = events(&app).await;
    assert!(history.contains("no CI is not green"), "{history}");

    let sha = head(&fake, pr);
    fake.set_status(REPO, &sha, "ci", "pending");
    let v = status_event(&app, "s1", &sha, "pending").await;
    assert!(v.contains("nothing to merge"), "{v}");
    // A payload claiming success is not believed: GitHub is asked, and CI still runs.
    let v = status_event(&app, "s2", &sha, "success").await;
    assert!(v.contains("CI is still running"), "{v}");
    assert!(!merged(&fake, pr));
    fake.set_status(REPO, &sha, "ci", "failure");
    let v = status_event(&app, "s3", &sha, "success").await;
    assert!(v.contains("CI failed on the head"), "{v}");
    assert!(!merged(&fake, pr));

    fake.set_status(REPO, &sha, "ci", "success");
    let v = status_event(&app, "s4", &sha, "success").await;
    assert!(v.contains(&format!("merged PR #{pr}")), "{v}");
    assert!(v.contains("(merge, "), "the configured strategy: {v}");
    assert!(merged(&fake, pr));
    assert_eq!(
        main_parents(&fake),
        2,
        "merge_strategy: merge makes a merge commit"
    );
    let on_main = show_file(&fake.bare_path(REPO), "main", BOOT_TASK).unwrap();
    assert!(on_main.contains("status: done"), "{on_main}");

    // Again: already merged, nothing happens twice.
    let v = status_event(&app, "s5", &sha, "success").await;
    assert!(v.contains("no open task PR there"), "{v}");
    settle(&app).await;
    let report = post_ok(&app, "/repos/acme/tally/scan").await;
    assert_eq!(report["counts"]["done"], 1, "{report:#}");
}

#[tokio::test]
async fn not_opted_in_requested_changes_and_foreign_files_are_never_merged() {
    let (fake, app) = setup("squash", "plan", &[], &[]).await;
    let pr = integration_pr(&fake, &app).await;
    let sha = head(&fake, pr);
    fake.set_status(REPO, &sha, "ci", "success");
    let v = status_event(&app, "n1", &sha, "success").await;
    assert!(v.contains("no open task PR there to auto-merge"), "{v}");
    assert!(!merged(&fake, pr), "integration is not opted in");

    fake.commit(
        REPO,
        "main",
        &[(".llm-team.yml", &config("squash", "plan, integration", &[]))],
        "opt in",
    );
    fake.review_as(REPO, pr, "alice", "CHANGES_REQUESTED");
    let v = status_event(&app, "n2", &sha, "success").await;
    assert!(v.contains("changes were requested by alice"), "{v}");
    assert!(!merged(&fake, pr));
    // A comment does not lift it (as on GitHub).
    fake.review_as(REPO, pr, "alice", "COMMENTED");
    let review = json!({"action": "submitted", "repository": {"full_name": REPO},
        "review": {"state": "commented"},
        "pull_request": {"number": pr, "head": {"ref": pull(&fake, pr)["head"]["ref"]},
            "user": {"login": "gaffer-bot"}}});
    let v = deliver(&app, "pull_request_review", "n3", review.clone()).await;
    assert!(v.contains("changes were requested by alice"), "{v}");

    // Alice approves, but someone pushed a code file to gaffer's task-file PR.
    let branch = pull(&fake, pr)["head"]["ref"].as_str().unwrap().to_string();
    let pushed = fake.commit(REPO, &branch, &[("src/evil.py", "import os\n")], "sneak");
    fake.set_status(REPO, &pushed, "ci", "success");
    fake.review_as(REPO, pr, "alice", "APPROVED");
    let v = deliver(&app, "pull_request_review", "n4", review).await;
    assert!(
        v.contains("changes src/evil.py, which is not T-0001's task file"),
        "{v}"
    );
    assert!(!merged(&fake, pr));
}

#[tokio::test]
async fn a_plan_pr_is_auto_merged_by_the_poller_once_ci_is_green() {
    let (fake, app) = setup("squash", "plan", &[], &[]).await;
    let plan = post_ok(&app, "/run/taskmaster").await;
    assert_eq!(plan["action"], "opened_pr", "{plan:#}");
    let pr = plan["pr"]["number"].as_u64().unwrap();
    settle(&app).await;
    let sha = head(&fake, pr);
    fake.set_status(REPO, &sha, "ci", "pending");
    post_ok(&app, "/repos/acme/tally/poll").await;
    settle(&app).await;
    assert!(!merged(&fake, pr), "CI pending");

    fake.set_status(REPO, &sha, "ci", "success");
    let polled = post_ok(&app, "/repos/acme/tally/poll").await;
    settle(&app).await;
    assert!(merged(&fake, pr), "{polled:#}");
    assert_eq!(main_parents(&fake), 1, "merge_strategy: squash");
    assert!(show_file(&fake.bare_path(REPO), "main", BOOT_TASK).is_some());
    assert!(events(&app).await.contains(&format!("merged PR #{pr}")));
}

#[tokio::test]
async fn ready_for_integration_moves_to_done_and_both_hops_auto_merge() {
    let states = (
        "states: [queued, in_review, done, blocked]",
        "states: [queued, in_review, ready_for_integration, done, blocked]",
    );
    let (fake, app) = setup("squash", "integration", &[states], &[]).await;
    let boot = post_ok(&app, "/repos/acme/tally/bootstrap").await;
    assert_eq!(boot["action"], "opened_pr", "{boot:#}");
    settle(&app).await;
    fake.merge(REPO, 1).unwrap();
    let work = post_ok(&app, "/repos/acme/tally/work-next").await;
    let ready = work["outcome"]["pr"]["number"].as_u64().unwrap();
    assert!(pull(&fake, ready)["head"]["ref"]
        .as_str()
        .unwrap()
        .starts_with("feature/ready-T-0001"));
    settle(&app).await;
    let sha = head(&fake, ready);
    fake.set_status(REPO, &sha, "ci", "success");
    let v = status_event(&app, "r1", &sha, "success").await;
    assert!(v.contains(&format!("merged PR #{ready}")), "{v}");
    settle(&app).await;
    let on_main = show_file(&fake.bare_path(REPO), "main", BOOT_TASK).unwrap();
    assert!(
        on_main.contains("status: ready_for_integration"),
        "{on_main}"
    );

    // The merge moved the engine on: the second hop's PR, from its own branch.
    let done = fake
        .pulls(REPO)
        .into_iter()
        .find(|p| {
            p["head"]["ref"]
                .as_str()
                .unwrap()
                .starts_with("feature/done-T-0001")
        })
        .expect("the PR moving the task to done");
    let (done, done_sha) = (
        done["number"].as_u64().unwrap(),
        done["head"]["sha"].as_str().unwrap().to_string(),
    );
    assert!(!merged(&fake, done), "no CI yet");
    fake.set_status(REPO, &done_sha, "ci", "success");
    let v = status_event(&app, "r2", &done_sha, "success").await;
    assert!(v.contains(&format!("merged PR #{done}")), "{v}");
    settle(&app).await;
    let on_main = show_file(&fake.bare_path(REPO), "main", BOOT_TASK).unwrap();
    assert!(on_main.contains("status: done"), "{on_main}");
}

const CODE_TASK: &str = "tasks/T-0005-greet-by-name.md";
const CODE_BRANCH: &str = "feature/T-0005-greet-by-name";

fn code_task(policy: &str) -> String {
    format!("---\nid: T-0005\ntitle: Greet by name\ntype: feature\npriority: P1\ndepends_on: []\nstatus: in_review\n{policy}acceptance:\n  - The greeting names the user\n---\n# Greet by name\n")
}

/// A repo that auto-merges code, with a Reviewer model answering `verdict` (kept alive by
/// the returned server) and no fix rounds.
async fn code_setup(verdict: &str) -> (FakeGithub, TestApp, wiremock::MockServer) {
    let model = ollama::always(verdict).await;
    let uri = model.uri();
    let (fake, app) = setup(
        "squash",
        "code",
        &[("require_tests: true", "require_tests: false")],
        &[
            ("OLLAMA_BASE_URL", uri.as_str()),
            ("LLM_REVIEWER_MODEL", "tiny:1b"),
            ("DEV_MAX_ITERATIONS", "0"),
        ],
    )
    .await;
    (fake, app, model)
}

#[tokio::test]
async fn a_code_pr_is_merged_only_with_auto_policy_auto_and_every_criterion_met() {
    let verdict = json!({"summary": "Greets by name.", "acceptance": [
        {"criterion": "The greeting names the user", "met": true,
         "reason": "greet() puts the name in the greeting", "evidence": "src/greet.py:1-2"}],
        "risks": []})
    .to_string();
    let (fake, app, _model) = code_setup(&verdict).await;
    // The task on the default branch sets no auto_policy (yet).
    fake.commit(REPO, "main", &[(CODE_TASK, &code_task(""))], "task");
    let bare = fake.bare_path(REPO);
    let main = git(&bare, &["rev-parse", "main"]).unwrap();
    git(
        &bare,
        &[
            "update-ref",
            &format!("refs/heads/{CODE_BRANCH}"),
            main.trim(),
        ],
    )
    .unwrap();
    let sha = fake.commit(
        REPO,
        CODE_BRANCH,
        &[(
            "src/greet.py",
            "def greet(name):\n    return f\"Hello, {name}!\"\n",
        )],
        "greet by name",
    );
    // Opened with gaffer's token: gaffer's own PR.
    let opened: Value = reqwest::Client::new()
        .post(format!("{}/repos/{REPO}/pulls", fake.api_url()))
        .json(
            &json!({"head": CODE_BRANCH, "base": "main", "title": "T-0005: Greet by name",
            "body": "work"}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pr = opened["number"].as_u64().unwrap();
    fake.set_status(REPO, &sha, "ci", "success");

    let v = status_event(&app, "c1", &sha, "success").await;
    assert!(v.contains("sets no auto_policy"), "{v}");
    let review = post_ok(&app, &format!("/run/reviewer?pr={pr}")).await;
    assert!(
        review[0]["summary"]
            .as_str()
            .unwrap()
            .contains("1/1 acceptance items met"),
        "{review:#}"
    );
    settle(&app).await;
    assert!(
        !merged(&fake, pr),
        "a full verdict is not enough without auto_policy: auto"
    );

    // The task opts in on the default branch; the PR itself cannot grant that.
    fake.commit(
        REPO,
        "main",
        &[(CODE_TASK, &code_task("auto_policy: auto\n"))],
        "auto",
    );
    settle(&app).await;
    let v = status_event(&app, "c2", &sha, "success").await;
    assert!(v.contains(&format!("merged PR #{pr}")), "{v}");
    assert!(merged(&fake, pr));
}

#[tokio::test]
async fn a_code_pr_without_a_full_verdict_or_code_opted_in_is_never_merged() {
    let verdict = json!({"summary": "Half done.", "acceptance": [
        {"criterion": "The greeting names the user", "met": false, "reason": "it does not"}],
        "risks": []})
    .to_string();
    let (fake, app, _model) = code_setup(&verdict).await;
    fake.commit(
        REPO,
        "main",
        &[(CODE_TASK, &code_task("auto_policy: auto\n"))],
        "task",
    );
    let bare = fake.bare_path(REPO);
    let main = git(&bare, &["rev-parse", "main"]).unwrap();
    git(
        &bare,
        &[
            "update-ref",
            &format!("refs/heads/{CODE_BRANCH}"),
            main.trim(),
        ],
    )
    .unwrap();
    let sha = fake.commit(REPO, CODE_BRANCH, &[("src/greet.py", "X = 1\n")], "work");
    let opened: Value = reqwest::Client::new()
        .post(format!("{}/repos/{REPO}/pulls", fake.api_url()))
        .json(&json!({"head": CODE_BRANCH, "base": "main", "title": "T-0005", "body": "work"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pr = opened["number"].as_u64().unwrap();
    fake.set_status(REPO, &sha, "ci", "success");
    let v = status_event(&app, "u1", &sha, "success").await;
    assert!(v.contains("has not judged this head"), "{v}");
    post_ok(&app, &format!("/run/reviewer?pr={pr}")).await;
    settle(&app).await;
    let v = status_event(&app, "u2", &sha, "success").await;
    assert!(v.contains("0 of 1 acceptance criteria met"), "{v}");
    assert!(!merged(&fake, pr));
    // `code` not opted in: not even looked at.
    fake.commit(
        REPO,
        "main",
        &[(".llm-team.yml", &config("squash", "plan, integration", &[]))],
        "no code",
    );
    let v = status_event(&app, "u3", &sha, "success").await;
    assert!(v.contains("no open task PR there to auto-merge"), "{v}");
    assert!(!merged(&fake, pr));
}
