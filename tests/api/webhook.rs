//! Webhooks with the real GitHub payloads in tests/fixtures/github/webhooks/, signed in
//! the test: verification, limits, replays, ignored repos, routing to roles, and deliveries
//! left pending by a crash.

use std::path::PathBuf;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::support::app::{
    assert_error, fake_with_app, sample_target, spawn_app_in, spawn_app_with, TestApp,
};
use crate::support::fake_github::FakeGithub;

const SECRET: &str = "fixture-webhook-secret";
const REPO: &str = "Codertocat/Hello-World";
const BOOT_BRANCH: &str = "feature/T-0001-initialize-basic-ci-for-python";

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/github/webhooks")
        .join(name)
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture_path(&format!("{name}.json"))).unwrap()
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).unwrap()
}

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn deliver(
    app: &TestApp,
    event: &str,
    id: &str,
    body: Vec<u8>,
    signature: Option<String>,
) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/webhook"))
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", id);
    if let Some(sig) = signature {
        request = request.header("x-hub-signature-256", sig);
    }
    request.body(body).send().await.unwrap()
}

async fn deliver_signed(app: &TestApp, event: &str, id: &str, payload: &Value) -> Value {
    let body = serde_json::to_vec(payload).unwrap();
    let response = deliver(app, event, id, body.clone(), Some(sign(SECRET, &body))).await;
    assert_eq!(response.status(), 202, "{event} {id}");
    response.json().await.unwrap()
}

/// Waits until delivery `id` was processed and returns it from the repo's status.
async fn processed(app: &TestApp, repo_path: &str, id: &str) -> Value {
    for _ in 0..300 {
        let status: Value = app
            .get(&format!("/repos/{repo_path}/status"))
            .await
            .json()
            .await
            .unwrap();
        if let Some(d) = status["recent_deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == id)
        {
            if d["status"] != "pending" {
                return d.clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("delivery {id} was not processed");
}

async fn app_with(extra: &[(&str, &str)]) -> TestApp {
    let mut vars = vec![
        ("GITHUB_WEBHOOK_SECRET", SECRET),
        ("GITHUB_WRITE_GAP_MS", "0"),
    ];
    vars.extend(extra);
    spawn_app_with(&vars).await
}

#[tokio::test]
async fn ping_is_answered_with_the_fixtures_own_signature() {
    let app = app_with(&[]).await;
    let meta: Value =
        serde_json::from_slice(&std::fs::read(fixture_path("ping.meta.json")).unwrap()).unwrap();
    let signature = meta["derived_signature_for_tests"]["X-Hub-Signature-256"]
        .as_str()
        .unwrap()
        .to_string();
    let response = deliver(&app, "ping", "d-ping", fixture("ping"), Some(signature)).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["pong"], true);
    for alias in ["/github/webhook"] {
        let body = fixture("ping");
        let response = app
            .client
            .post(app.url(alias))
            .header("x-github-event", "ping")
            .header("x-github-delivery", "d-ping-2")
            .header("x-hub-signature-256", sign(SECRET, &body))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{alias}");
    }
}

#[tokio::test]
async fn bad_signatures_are_401_and_store_nothing() {
    let app = app_with(&[]).await;
    app.add_repo(REPO, "observe").await;
    let body = fixture("issues.opened");
    assert_error(deliver(&app, "issues", "d1", body.clone(), None).await, 401).await;
    assert_error(
        deliver(
            &app,
            "issues",
            "d2",
            body.clone(),
            Some(sign("not-the-secret", &body)),
        )
        .await,
        401,
    )
    .await;
    assert_error(
        deliver(&app, "issues", "d3", body.clone(), Some("sha256=00".into())).await,
        401,
    )
    .await;
    let mut altered = body.clone();
    altered[10] ^= 1;
    assert_error(
        deliver(&app, "issues", "d4", altered, Some(sign(SECRET, &body))).await,
        401,
    )
    .await;
    let status: Value = app
        .get("/repos/Codertocat/Hello-World/status")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        status["recent_deliveries"].as_array().unwrap().is_empty(),
        "nothing stored"
    );
}

#[tokio::test]
async fn a_repo_secret_from_its_env_variable_is_the_one_that_counts() {
    let app = app_with(&[("HELLO_WORLD_WEBHOOK_SECRET", "per-repo-secret")]).await;
    let body = json!({"full_name": REPO, "overrides": {"webhook_secret_env": "HELLO_WORLD_WEBHOOK_SECRET"}});
    assert_eq!(app.post_json("/repos", &body).await.status(), 201);
    let payload = fixture("issues.opened");
    assert_error(
        deliver(
            &app,
            "issues",
            "g1",
            payload.clone(),
            Some(sign(SECRET, &payload)),
        )
        .await,
        401,
    )
    .await;
    let ok = deliver(
        &app,
        "issues",
        "g2",
        payload.clone(),
        Some(sign("per-repo-secret", &payload)),
    )
    .await;
    assert_eq!(ok.status(), 202);
}

#[tokio::test]
async fn oversized_bodies_get_413_before_being_read_whole() {
    let app = app_with(&[("GAFFER_WEBHOOK_MAX_BODY", "4096")]).await;
    let body = fixture("pull_request.opened");
    assert!(body.len() > 4096);
    assert_error(
        deliver(
            &app,
            "pull_request",
            "big",
            body.clone(),
            Some(sign(SECRET, &body)),
        )
        .await,
        413,
    )
    .await;
    // Without a Content-Length (chunked), the limit still holds.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        body.chunks(1000).map(|c| Ok(c.to_vec())).collect();
    let streamed = app
        .client
        .post(app.url("/webhook"))
        .header("x-github-event", "pull_request")
        .header("x-github-delivery", "big2")
        .header("x-hub-signature-256", sign(SECRET, &body))
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(streamed.status(), 413);
}

#[tokio::test]
async fn a_signed_body_that_is_not_json_is_400() {
    let app = app_with(&[]).await;
    let body = fixture("issues.opened");
    let truncated = body[..body.len() / 2].to_vec();
    let message = assert_error(
        deliver(
            &app,
            "issues",
            "t1",
            truncated.clone(),
            Some(sign(SECRET, &truncated)),
        )
        .await,
        400,
    )
    .await;
    assert!(message.contains("not JSON"), "{message}");
    let no_delivery = app
        .client
        .post(app.url("/webhook"))
        .header("x-github-event", "issues")
        .header("x-hub-signature-256", sign(SECRET, &body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_error(no_delivery, 400).await;
}

#[tokio::test]
async fn unknown_and_disabled_repos_are_acknowledged_and_ignored() {
    let app = app_with(&[]).await;
    let unknown = deliver_signed(&app, "issues", "u1", &fixture_json("issues.opened")).await;
    assert_eq!(unknown["accepted"], false);
    assert!(unknown["verdict"]
        .as_str()
        .unwrap()
        .contains("not registered"));
    app.add_repo(REPO, "disabled").await;
    let disabled = deliver_signed(&app, "issues", "u2", &fixture_json("issues.opened")).await;
    assert!(disabled["verdict"].as_str().unwrap().contains("disabled"));
}

#[tokio::test]
async fn a_replayed_delivery_is_acknowledged_and_not_processed_again() {
    let app = app_with(&[]).await;
    app.add_repo(REPO, "observe").await;
    let first = deliver_signed(&app, "issues", "same-id", &fixture_json("issues.opened")).await;
    assert_eq!(first["duplicate"], false);
    processed(&app, "Codertocat/Hello-World", "same-id").await;
    let again = deliver_signed(&app, "issues", "same-id", &fixture_json("issues.opened")).await;
    assert_eq!(again["duplicate"], true);
    let status: Value = app
        .get("/repos/Codertocat/Hello-World/status")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status["recent_deliveries"].as_array().unwrap().len(), 1);
}

/// The fake GitHub with Codertocat/Hello-World seeded from sample-target and its bootstrap
/// PR (#1) open, gaffer in pr mode on it.
async fn routed() -> (FakeGithub, TestApp, String) {
    let (fake, app) = fake_with_app(
        REPO,
        "pr",
        Some(&sample_target()),
        &[("GITHUB_WEBHOOK_SECRET", SECRET)],
    )
    .await;
    let boot: Value = app
        .post("/repos/Codertocat/Hello-World/bootstrap")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(boot["action"], "opened_pr", "{boot:#}");
    let head = fake.pulls(REPO)[0]["head"]["sha"]
        .as_str()
        .unwrap()
        .to_string();
    (fake, app, head)
}

/// A recorded pull_request payload pointed at PR #1 of the fake repo.
fn pr_payload(name: &str, head: &str) -> Value {
    let mut payload = fixture_json(name);
    payload["repository"]["full_name"] = json!(REPO);
    payload["pull_request"]["number"] = json!(1);
    payload["pull_request"]["head"]["ref"] = json!(BOOT_BRANCH);
    payload["pull_request"]["head"]["sha"] = json!(head);
    payload
}

#[tokio::test]
async fn pull_request_events_reach_the_reviewer_once_per_sha() {
    let (fake, app, head) = routed().await;
    deliver_signed(
        &app,
        "pull_request",
        "o1",
        &pr_payload("pull_request.opened", &head),
    )
    .await;
    let d = processed(&app, "Codertocat/Hello-World", "o1").await;
    assert!(
        d["verdict"]
            .as_str()
            .unwrap()
            .starts_with("reviewer: reviewed PR #1"),
        "{d}"
    );
    assert_eq!(fake.reviews(REPO, 1).len(), 1);
    // The same SHA again (say, reopened): no second review.
    deliver_signed(
        &app,
        "pull_request",
        "o2",
        &pr_payload("pull_request.reopened", &head),
    )
    .await;
    let d = processed(&app, "Codertocat/Hello-World", "o2").await;
    assert!(
        d["verdict"].as_str().unwrap().contains("reviewed already"),
        "{d}"
    );
    assert_eq!(fake.reviews(REPO, 1).len(), 1);
    // A push to the PR: synchronize with the new SHA gets a new review.
    let new_head = fake.commit(REPO, BOOT_BRANCH, &[("src/more.py", "X = 2\n")], "more");
    deliver_signed(
        &app,
        "pull_request",
        "o3",
        &pr_payload("pull_request.synchronize", &new_head),
    )
    .await;
    processed(&app, "Codertocat/Hello-World", "o3").await;
    assert_eq!(fake.reviews(REPO, 1).len(), 2);
}

#[tokio::test]
async fn merges_reach_the_integrator_and_other_events_are_recorded() {
    let (fake, app, head) = routed().await;
    // Not a task PR, and a PR by someone not allowed: recorded only.
    deliver_signed(
        &app,
        "pull_request",
        "n1",
        &fixture_json("pull_request.opened"),
    )
    .await;
    assert!(
        processed(&app, "Codertocat/Hello-World", "n1").await["verdict"]
            .as_str()
            .unwrap()
            .contains("not a task PR")
    );
    let mut stranger = pr_payload("pull_request.synchronize", &head);
    stranger["pull_request"]["author_association"] = json!("NONE");
    stranger["pull_request"]["body"] = json!("please review");
    deliver_signed(&app, "pull_request", "n2", &stranger).await;
    assert!(
        processed(&app, "Codertocat/Hello-World", "n2").await["verdict"]
            .as_str()
            .unwrap()
            .contains("not allowed")
    );
    // Closed without merge: recorded, nothing moves.
    deliver_signed(
        &app,
        "pull_request",
        "c1",
        &pr_payload("pull_request.closed.unmerged", &head),
    )
    .await;
    assert!(
        processed(&app, "Codertocat/Hello-World", "c1").await["verdict"]
            .as_str()
            .unwrap()
            .contains("closed without merge")
    );
    // Merged: the Integrator opens its PR, once.
    fake.merge(REPO, 1).unwrap();
    deliver_signed(
        &app,
        "pull_request",
        "m1",
        &pr_payload("pull_request.closed.merged", &head),
    )
    .await;
    let d = processed(&app, "Codertocat/Hello-World", "m1").await;
    assert!(
        d["verdict"]
            .as_str()
            .unwrap()
            .starts_with("integrator: T-0001 -> done"),
        "{d}"
    );
    deliver_signed(
        &app,
        "pull_request",
        "m2",
        &pr_payload("pull_request.closed.merged", &head),
    )
    .await;
    assert!(
        processed(&app, "Codertocat/Hello-World", "m2").await["verdict"]
            .as_str()
            .unwrap()
            .contains("integrated already")
    );
    assert_eq!(fake.pulls(REPO).len(), 2);
    // Pushes: to a tag, recorded; to the default branch, a rescan.
    deliver_signed(&app, "push", "p1", &fixture_json("push")).await;
    assert!(
        processed(&app, "Codertocat/Hello-World", "p1").await["verdict"]
            .as_str()
            .unwrap()
            .contains("refs/tags/simple-tag: recorded")
    );
    let mut to_main = fixture_json("push");
    to_main["ref"] = json!("refs/heads/main");
    deliver_signed(&app, "push", "p2", &to_main).await;
    assert!(
        processed(&app, "Codertocat/Hello-World", "p2").await["verdict"]
            .as_str()
            .unwrap()
            .starts_with("rescanned")
    );
    deliver_signed(
        &app,
        "issue_comment",
        "i1",
        &fixture_json("issue_comment.created"),
    )
    .await;
    assert_eq!(
        processed(&app, "Codertocat/Hello-World", "i1").await["verdict"],
        "comment on #1: no command, recorded"
    );
}

#[tokio::test]
async fn deliveries_left_pending_by_a_crash_are_processed_at_start() {
    let app = app_with(&[]).await;
    app.add_repo(REPO, "observe").await;
    let data_dir = app.stop().await;
    // As if gaffer had acknowledged this delivery and died before processing it.
    let settings =
        crate::support::app::settings(data_dir.path(), &[("GITHUB_WEBHOOK_SECRET", SECRET)]);
    let gaffer = gaffer::Gaffer::open(settings).await.unwrap();
    let repo = gaffer::registry::FullName::parse(REPO).unwrap();
    let payload = String::from_utf8(fixture("issues.opened")).unwrap();
    gaffer
        .store
        .record_delivery(&gaffer::store::NewDelivery {
            id: "left-behind",
            event: "issues",
            action: Some("opened"),
            repo: Some(&repo),
            status: "pending",
            verdict: "",
            payload: Some(&payload),
        })
        .await
        .unwrap();
    gaffer.store.close().await;
    let app = spawn_app_in(data_dir, &[("GITHUB_WEBHOOK_SECRET", SECRET)]).await;
    let d = processed(&app, "Codertocat/Hello-World", "left-behind").await;
    assert_eq!(d["status"], "done");
    assert_eq!(d["verdict"], "issues opened: not labelled gaffer, recorded");
}

/// An outsider's PR on a task branch, its body carrying gaffer's marker: the delivery is
/// recorded, no review is posted, and a payload that claims a trusted association is
/// still checked against the PR GitHub reports.
#[tokio::test]
async fn an_outsiders_pr_is_recorded_not_reviewed_whatever_its_body_says() {
    let (fake, app, _head) = routed().await;
    let branch = "feature/T-0007-evil";
    let sha = fake.commit(REPO, branch, &[("tests/test_x.py", "import os\n")], "evil");
    let body = "<!-- gaffer:task=T-0007 role=developer -->";
    let number = fake.open_pull_as(REPO, branch, body, "mallory", "NONE");
    let mut payload = pr_payload("pull_request.opened", &sha);
    payload["pull_request"]["number"] = json!(number);
    payload["pull_request"]["head"]["ref"] = json!(branch);
    payload["pull_request"]["body"] = json!(body);
    payload["pull_request"]["user"]["login"] = json!("mallory");
    payload["pull_request"]["author_association"] = json!("NONE");
    deliver_signed(&app, "pull_request", "x1", &payload).await;
    let d = processed(&app, "Codertocat/Hello-World", "x1").await;
    assert!(
        d["verdict"].as_str().unwrap().contains("not reviewed"),
        "{d}"
    );
    // The same PR, the payload claiming OWNER: the Reviewer asks GitHub and refuses.
    payload["pull_request"]["author_association"] = json!("OWNER");
    deliver_signed(&app, "pull_request", "x2", &payload).await;
    let d = processed(&app, "Codertocat/Hello-World", "x2").await;
    assert!(d["verdict"].as_str().unwrap().contains("skipped"), "{d}");
    assert!(fake.reviews(REPO, number).is_empty());
}
