//! Failed deliveries: retried with backoff across a restart, dead-lettered after the last
//! attempt (visible in the status and /metrics), retried by hand through the API and the
//! CLI; permanent failures are recorded once and left alone.

use std::process::Command;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::support::app::{
    fake_with_app, gaffer_bin, sample_target, spawn_app_in, spawn_app_with, TestApp, NO_MODELS,
};
use crate::support::fake_github::FakeGithub;

const SECRET: &str = "deliveries-secret";
const REPO: &str = "acme/hooks";

fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn deliver(app: &TestApp, id: &str, payload: &Value) {
    let body = serde_json::to_vec(payload).unwrap();
    let response = app
        .client
        .post(app.url("/webhook"))
        .header("content-type", "application/json")
        .header("x-github-event", "pull_request")
        .header("x-github-delivery", id)
        .header("x-hub-signature-256", sign(&body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
}

fn opened(fake: &FakeGithub, number: u64) -> Value {
    let pr = fake
        .pulls(REPO)
        .into_iter()
        .find(|p| p["number"] == number)
        .unwrap();
    json!({"action": "opened", "repository": {"full_name": REPO},
           "pull_request": {"number": number, "head": {"ref": pr["head"]["ref"], "sha": pr["head"]["sha"]},
                            "author_association": "OWNER", "body": pr["body"], "merged": false}})
}

async fn delivery(app: &TestApp, id: &str) -> Value {
    let list: Value = app
        .get("/deliveries?limit=1000")
        .await
        .json()
        .await
        .unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == id)
        .cloned()
        .unwrap_or(Value::Null)
}

/// Waits until delivery `id` is in `status`.
async fn wait_for(app: &TestApp, id: &str, status: &str) -> Value {
    for _ in 0..200 {
        let d = delivery(app, id).await;
        if d["status"] == status {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "delivery {id} never became {status}: {}",
        delivery(app, id).await
    );
}

async fn app_with_work_pr(extra: &[(&str, &str)]) -> (FakeGithub, TestApp) {
    let mut vars = vec![
        ("GITHUB_WEBHOOK_SECRET", SECRET),
        ("GITHUB_BACKOFF_MS", "5"),
    ];
    vars.extend(extra);
    let (fake, app) = fake_with_app(REPO, "pr", Some(&sample_target()), &vars).await;
    let boot: Value = app
        .post("/repos/acme/hooks/bootstrap")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(boot["action"], "opened_pr", "{boot:#}");
    (fake, app)
}

#[tokio::test]
async fn a_delivery_out_of_attempts_is_dead_lettered_then_retried_by_hand() {
    let (fake, app) = app_with_work_pr(&[
        ("WEBHOOK_RETRY_ATTEMPTS", "2"),
        ("WEBHOOK_RETRY_BASE_SECS", "1"),
    ])
    .await;
    fake.outage(Duration::from_secs(30));
    deliver(&app, "dead-1", &opened(&fake, 1)).await;
    deliver(&app, "dead-2", &opened(&fake, 1)).await;
    deliver(&app, "dead-3", &opened(&fake, 1)).await;
    let retrying = wait_for(&app, "dead-1", "retrying").await;
    assert!(
        retrying["verdict"]
            .as_str()
            .unwrap()
            .starts_with("attempt 1 of 2 failed: GitHub unavailable"),
        "{retrying}"
    );
    assert!(retrying["next_attempt_at"].as_i64().is_some());
    let dead = wait_for(&app, "dead-1", "dead").await;
    assert_eq!(dead["attempts"], 2);
    assert!(dead["verdict"]
        .as_str()
        .unwrap()
        .contains("dead-lettered after 2 attempts"));
    wait_for(&app, "dead-2", "dead").await;
    wait_for(&app, "dead-3", "dead").await;
    fake.outage(Duration::ZERO);
    assert!(fake.reviews(REPO, 1).is_empty());

    // Visible: the repo's status and /metrics.
    let status: Value = app
        .get("/repos/acme/hooks/status")
        .await
        .json()
        .await
        .unwrap();
    assert!(status["recent_deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["id"] == "dead-1" && d["status"] == "dead"));
    assert_eq!(status["unsettled_deliveries"].as_array().unwrap().len(), 3);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("gaffer_webhook_dead_letters 3"),
        "{metrics}"
    );
    assert!(metrics.contains("gaffer_webhook_deliveries{status=\"dead\"} 3"));
    assert!(
        metrics.contains("gaffer_webhook_retries_total 3"),
        "{metrics}"
    );

    // By hand, through the API: 202, then processed: one review.
    let r = app.post("/deliveries/dead-1/retry").await;
    assert_eq!(r.status(), 202);
    let done = wait_for(&app, "dead-1", "done").await;
    assert!(done["verdict"]
        .as_str()
        .unwrap()
        .starts_with("reviewer: reviewed PR #1"));
    assert_eq!(fake.reviews(REPO, 1).len(), 1);
    assert_eq!(app.post("/deliveries/dead-1/retry").await.status(), 409);
    assert_eq!(app.post("/deliveries/nope/retry").await.status(), 404);
    let dead: Value = app
        .get("/deliveries?status=dead")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(dead.as_array().unwrap().len(), 2);
    assert_eq!(app.get("/deliveries?status=bogus").await.status(), 400);

    // GitHub's "Redeliver" (the same GUID) retries a dead delivery; a done one is not
    // processed again.
    deliver(&app, "dead-3", &opened(&fake, 1)).await;
    let redelivered = wait_for(&app, "dead-3", "done").await;
    assert!(redelivered["verdict"]
        .as_str()
        .unwrap()
        .contains("reviewed already"));
    deliver(&app, "dead-1", &opened(&fake, 1)).await;
    assert_eq!(delivery(&app, "dead-1").await["attempts"], 1);
    assert_eq!(fake.reviews(REPO, 1).len(), 1);

    // By hand, with the CLI on the same data directory (the server stopped).
    let api = fake.api_url();
    let data = app.stop().await;
    let run = |args: &[&str]| {
        let mut command = Command::new(gaffer_bin());
        command
            .args(args)
            .current_dir(data.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("GAFFER_DATA_DIR", data.path())
            .env("GITHUB_API_URL", &api)
            .env("GITHUB_WRITE_GAP_MS", "0");
        for (k, v) in NO_MODELS {
            command.env(k, v);
        }
        command.output().unwrap()
    };
    let shown = run(&["status", "acme/hooks"]);
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        text.contains("delivery dead-2 (pull_request): dead: dead-lettered"),
        "{text}"
    );
    let listed = run(&["deliveries", "list", "--status", "dead"]);
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.status.success());
    assert!(text.contains("dead-2") && text.contains("dead"), "{text}");
    let retried = run(&["--json", "deliveries", "retry", "dead-2"]);
    assert!(
        retried.status.success(),
        "{}",
        String::from_utf8_lossy(&retried.stderr)
    );
    let shown: Value = serde_json::from_slice(&retried.stdout).unwrap();
    assert_eq!(shown[0]["status"], "done");
    assert!(
        shown[0]["verdict"]
            .as_str()
            .unwrap()
            .contains("reviewed already"),
        "{shown}"
    );
    assert_eq!(fake.reviews(REPO, 1).len(), 1, "still one review");
    let again = run(&["deliveries", "retry", "dead-2"]);
    assert_eq!(again.status.code(), Some(4), "conflict: it is done");
    assert_eq!(run(&["deliveries", "retry", "nope"]).status.code(), Some(3));
}

#[tokio::test]
async fn a_scheduled_retry_survives_a_restart() {
    let vars = [
        ("WEBHOOK_RETRY_ATTEMPTS", "5"),
        ("WEBHOOK_RETRY_BASE_SECS", "2"),
    ];
    let (fake, app) = app_with_work_pr(&vars).await;
    fake.outage(Duration::from_secs(30));
    deliver(&app, "later", &opened(&fake, 1)).await;
    wait_for(&app, "later", "retrying").await;
    let data = app.stop().await;
    fake.outage(Duration::ZERO);
    let api = fake.api_url();
    let mut all: Vec<(&str, &str)> = vec![
        ("GITHUB_API_URL", api.as_str()),
        ("GITHUB_WRITE_GAP_MS", "0"),
        ("GITHUB_WEBHOOK_SECRET", SECRET),
    ];
    all.extend(NO_MODELS);
    all.extend(vars);
    let app = spawn_app_in(data, &all).await;
    let done = wait_for(&app, "later", "done").await;
    assert_eq!(done["attempts"], 2);
    assert_eq!(fake.reviews(REPO, 1).len(), 1);
}

#[tokio::test]
async fn a_permanent_failure_is_recorded_once_and_not_retried() {
    let (fake, app) = app_with_work_pr(&[("WEBHOOK_RETRY_BASE_SECS", "1")]).await;
    let mut gone = opened(&fake, 1);
    gone["pull_request"]["number"] = json!(99);
    deliver(&app, "gone", &gone).await;
    let failed = wait_for(&app, "gone", "failed").await;
    assert!(
        failed["verdict"]
            .as_str()
            .unwrap()
            .starts_with("failed (permanent): not found"),
        "{failed}"
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let still = delivery(&app, "gone").await;
    assert_eq!(
        (still["status"].clone(), still["attempts"].clone()),
        (json!("failed"), json!(1))
    );
    assert!(app
        .get("/metrics")
        .await
        .text()
        .await
        .unwrap()
        .contains("gaffer_webhook_dead_letters 0"));
}

#[tokio::test]
async fn retrying_by_hand_needs_the_api_token() {
    let app = spawn_app_with(&[("GAFFER_API_TOKEN", "s3cret")]).await;
    assert_eq!(app.post("/deliveries/x/retry").await.status(), 401);
    let r = app
        .client
        .post(app.url("/deliveries/x/retry"))
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
