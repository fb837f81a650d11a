//! The engine: durable runs the crew executes by itself, watched (SSE, transcripts),
//! paused, cancelled, retried, surviving a kill, and failed by the watchdog.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::app::{client_builder, fake_with_app, sample_target, TestApp};
use crate::support::fake_github::FakeGithub;
use crate::support::ollama;

const REPO: &str = "acme/tally";
const GOOD_EDIT: &str = ollama::JSON_FLAG_WITH_TEST;

fn task(id: &str, title: &str) -> String {
    format!("---\nid: {id}\ntitle: {title}\ntype: feature\npriority: P1\ndepends_on: []\nstatus: queued\nacceptance:\n  - it works\n---\n# {title}\n")
}

/// Polls `check` every 100 ms until it gives a value, or panics after `secs`.
async fn until<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn run_of(app: &TestApp, id: i64) -> Value {
    let body: Value = app.get(&format!("/runs/{id}")).await.json().await.unwrap();
    body["run"].clone()
}

async fn finished(app: &TestApp, id: i64, secs: u64) -> Value {
    until(secs, &format!("run {id} to finish"), || async {
        let run = run_of(app, id).await;
        (!["queued", "paused", "running"].contains(&run["state"].as_str().unwrap_or("queued")))
            .then_some(run)
    })
    .await
}

fn pr_from(fake: &FakeGithub, prefix: &str) -> Option<Value> {
    fake.pulls(REPO).into_iter().find(|p| {
        p["head"]["ref"]
            .as_str()
            .unwrap_or_default()
            .starts_with(prefix)
    })
}

/// The sample repo with one queued task, and a scripted Developer model answering
/// `reply` after `delay`; `extra` settings win.
async fn developer_setup(
    reply: &str,
    delay: Duration,
    extra: &[(&str, &str)],
) -> (FakeGithub, TestApp, wiremock::MockServer) {
    let model = ollama::slowly(reply, delay).await;
    let uri = model.uri();
    let mut vars = vec![
        ("OLLAMA_BASE_URL", uri.as_str()),
        ("LLM_DEVELOPER_MODEL", "tiny:1b"),
    ];
    vars.extend(extra);
    let (fake, app) = fake_with_app(REPO, "pr", Some(&sample_target()), &vars).await;
    fake.commit(
        REPO,
        "main",
        &[("tasks/T-0001-json.md", &task("T-0001", "Add a json flag"))],
        "task",
    );
    (fake, app, model)
}

/// Queues a role run without waiting (202) and returns its id.
async fn queue(app: &TestApp, path: &str) -> i64 {
    let body: Value = app
        .post(&format!("{path}?wait=false"))
        .await
        .json()
        .await
        .unwrap();
    body["run"]["id"].as_i64().unwrap()
}

/// Registration is the only API call; the human only merges on the fake GitHub. The
/// poller and the engine take the repo from nothing to a task done on main, then plan the
/// next task by themselves.
#[tokio::test]
async fn the_crew_takes_a_repo_to_done_by_itself_and_plans_the_next_task() {
    let plan = json!({"title": "Add a --json flag", "type": "feature", "priority": "P1",
        "depends_on": ["T-0001"], "acceptance": ["tally --json prints JSON"], "body": "PRD item 2."})
    .to_string();
    let model = ollama::always(&plan).await;
    let uri = model.uri();
    let (fake, _app) = fake_with_app(
        REPO,
        "pr",
        Some(&sample_target()),
        &[
            ("POLLING_ENABLED", "true"),
            ("POLL_INTERVAL_ACTIVE", "1"),
            ("POLL_INTERVAL_IDLE", "1"),
            ("OLLAMA_BASE_URL", uri.as_str()),
            ("LLM_TASKMASTER_MODEL", "tiny:1b"),
        ],
    )
    .await;
    let wait_pr = |prefix: &'static str| {
        let fake = &fake;
        async move { until(60, prefix, || async { pr_from(fake, prefix) }).await }
    };
    let planned = wait_pr("feature/plan-T-0001").await;
    fake.merge(REPO, planned["number"].as_u64().unwrap())
        .unwrap();
    let work = wait_pr("feature/T-0001").await;
    let work_n = work["number"].as_u64().unwrap();
    until(60, "the review of the work PR", || async {
        (!fake.reviews(REPO, work_n).is_empty()).then_some(())
    })
    .await;
    fake.merge(REPO, work_n).unwrap();
    let done = wait_pr("feature/done-T-0001").await;
    fake.merge(REPO, done["number"].as_u64().unwrap()).unwrap();
    let bare = fake.bare_path(REPO);
    let task_file = "tasks/T-0001-initialize-basic-ci-for-python.md";
    let on_main = crate::support::git::show_file(&bare, "main", task_file).unwrap();
    assert!(on_main.contains("status: done"), "{on_main}");
    let next = wait_pr("feature/plan-T-0002").await;
    assert!(next["title"].as_str().unwrap().contains("json"), "{next:#}");
    // One PR per step, never a duplicate.
    let heads: Vec<String> = fake
        .pulls(REPO)
        .iter()
        .map(|p| p["head"]["ref"].as_str().unwrap().to_string())
        .collect();
    let mut unique = heads.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(heads.len(), unique.len(), "{heads:?}");
    assert_eq!(heads.len(), 4, "{heads:?}");
}

#[tokio::test]
async fn run_routes_answer_202_and_the_run_is_watchable_live_with_its_transcript() {
    let (fake, app, model) = developer_setup(GOOD_EDIT, Duration::ZERO, &[]).await;
    let _ = &fake;
    let response = app.post("/run/developer?wait=false").await;
    assert_eq!(response.status(), 202);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let body: Value = response.json().await.unwrap();
    let id = body["run"]["id"].as_i64().unwrap();
    assert_eq!(location, format!("/runs/{id}"));
    // Server-Sent Events until the run ends.
    let events = app
        .client
        .get(app.url(&format!("/runs/{id}/events")))
        .send()
        .await
        .unwrap();
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    let text = tokio::time::timeout(Duration::from_secs(60), events.text())
        .await
        .unwrap()
        .unwrap();
    assert!(
        text.contains("event: progress\ndata: queued by api"),
        "{text}"
    );
    assert!(text.contains("data: started developer"), "{text}");
    assert!(text.contains("data: checks `"), "{text}");
    assert!(text.contains("event: end"), "{text}");
    let run = finished(&app, id, 10).await;
    assert_eq!(run["state"], "succeeded", "{run:#}");
    assert_eq!(run["outcome"]["action"], "opened_pr", "{run:#}");
    // The transcript holds the exact prompt and answer, and the checks' full output.
    let transcript: Value = app
        .get(&format!("/runs/{id}/transcript"))
        .await
        .json()
        .await
        .unwrap();
    let items = transcript["transcript"].as_array().unwrap();
    let call = items
        .iter()
        .find(|i| i["kind"] == "model_call")
        .expect("a model call");
    assert_eq!(call["data"]["answer"], GOOD_EDIT);
    let sent = ollama::last_user_messages(&model).await;
    let user_prompt = call["data"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .unwrap()["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        user_prompt, sent[0],
        "the transcript has the exact prompt sent"
    );
    let check = items
        .iter()
        .find(|i| i["kind"] == "check")
        .expect("a check run");
    assert_eq!(check["data"]["passed"], true, "{check:#}");
    // The list filters.
    let list: Value = app
        .get("/runs?role=developer&state=succeeded")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["runs"][0]["id"], id);
    let none: Value = app.get("/runs?state=failed").await.json().await.unwrap();
    assert_eq!(none["runs"].as_array().unwrap().len(), 0);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("gaffer_runs{role=\"developer\",state=\"succeeded\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("gaffer_run_queue_depth 0"), "{metrics}");
}

#[tokio::test]
async fn quiet_hours_and_a_daily_limit_hold_runs_back() {
    let (fake, app) = fake_with_app(REPO, "pr", Some(&sample_target()), &[]).await;
    let quiet = json!({"overrides": {"quiet_hours": "00:00-00:00"}});
    // An empty window is never quiet; a whole-day one always is.
    assert_eq!(
        app.patch_json("/repos/acme/tally", &quiet).await.status(),
        200
    );
    let allday = json!({"overrides": {"quiet_hours": "00:00-23:59", "max_runs_per_day": 5}});
    assert_eq!(
        app.patch_json("/repos/acme/tally", &allday).await.status(),
        200
    );
    let bad = json!({"overrides": {"quiet_hours": "late"}});
    assert_eq!(
        app.patch_json("/repos/acme/tally", &bad).await.status(),
        400
    );
    let id = queue(&app, "/run/taskmaster").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(run_of(&app, id).await["state"], "queued");
    assert!(fake.pulls(REPO).is_empty());
    let limited = json!({"overrides": {"max_runs_per_day": 1}});
    assert_eq!(
        app.patch_json("/repos/acme/tally", &limited).await.status(),
        200
    );
    assert_eq!(finished(&app, id, 30).await["state"], "succeeded");
    // The day's one run is spent: the next waits.
    let next = queue(&app, "/run/developer").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(run_of(&app, next).await["state"], "queued");
}

#[tokio::test]
async fn a_run_is_cancelled_while_its_model_call_streams() {
    let (fake, app, model) = developer_setup(GOOD_EDIT, Duration::from_secs(30), &[]).await;
    let id = queue(&app, "/run/developer").await;
    until(20, "the model call to start", || async {
        (!model
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty())
        .then_some(())
    })
    .await;
    let started = Instant::now();
    assert_eq!(app.post(&format!("/runs/{id}/cancel")).await.status(), 200);
    let run = finished(&app, id, 10).await;
    assert_eq!(run["state"], "cancelled", "{run:#}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "cancelled while the answer streamed"
    );
    assert!(
        pr_from(&fake, "feature/T-0001").is_none(),
        "no PR from a cancelled run"
    );
    // Cancelling again is a conflict.
    assert_eq!(app.post(&format!("/runs/{id}/cancel")).await.status(), 409);
}

#[tokio::test]
async fn a_paused_repo_keeps_its_runs_queued_until_resumed() {
    let (fake, app) = fake_with_app(REPO, "pr", Some(&sample_target()), &[]).await;
    assert_eq!(app.post("/repos/acme/tally/pause").await.status(), 200);
    let id = queue(&app, "/run/taskmaster").await;
    assert_eq!(run_of(&app, id).await["state"], "paused");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(run_of(&app, id).await["state"], "paused");
    assert!(fake.pulls(REPO).is_empty());
    // Waiting callers (the CLI, webhooks, ?wait=true) are told it waits, not held.
    let waited = crate::support::app::post_ok(&app, "/run/taskmaster?wait=true").await;
    assert_eq!(waited["state"], "paused", "{waited:#}");
    assert_eq!(waited["run"], id, "the same step is the same run");
    assert!(
        waited["summary"].as_str().unwrap().contains("paused"),
        "{waited:#}"
    );
    assert_eq!(app.post("/repos/acme/tally/resume").await.status(), 200);
    let run = finished(&app, id, 30).await;
    assert_eq!(run["state"], "succeeded", "{run:#}");
    assert_eq!(fake.pulls(REPO).len(), 1);
}

#[tokio::test]
async fn a_blocked_run_is_retried_as_a_new_run_without_a_second_pr() {
    let (fake, app, _model) = developer_setup(
        "I changed the code, it should work now.",
        Duration::ZERO,
        &[("DEV_MAX_ATTEMPTS", "1")],
    )
    .await;
    let id = queue(&app, "/run/developer").await;
    let run = finished(&app, id, 60).await;
    assert_eq!(run["state"], "blocked", "{run:#}");
    let retried = app.post(&format!("/runs/{id}/retry")).await;
    assert_eq!(retried.status(), 202);
    let retried: Value = retried.json().await.unwrap();
    let again = retried["run"]["id"].as_i64().unwrap();
    assert_ne!(again, id);
    assert_eq!(retried["run"]["retry_of"], id);
    assert_eq!(retried["run"]["trigger"], "retry");
    let run = finished(&app, again, 60).await;
    assert!(run["summary"].as_str().unwrap().contains("PR #"), "{run:#}");
    assert_eq!(
        fake.pulls(REPO).len(),
        1,
        "the retry found the blocked PR, opened no second"
    );
    // A succeeded run has nothing to retry.
    let (_f, app2) = fake_with_app("acme/ok", "pr", None, &[]).await;
    let ok: Value = app2
        .post("/run/taskmaster?wait=false")
        .await
        .json()
        .await
        .unwrap();
    let ok_id = ok["run"]["id"].as_i64().unwrap();
    finished(&app2, ok_id, 30).await;
    assert_eq!(
        app2.post(&format!("/runs/{ok_id}/retry")).await.status(),
        409
    );
}

#[tokio::test]
async fn the_watchdog_fails_a_run_that_makes_no_progress() {
    let (_fake, app, _model) = developer_setup(
        GOOD_EDIT,
        Duration::from_secs(60),
        &[("RUN_STALL_TIMEOUT", "3")],
    )
    .await;
    let id = queue(&app, "/run/developer").await;
    let run = finished(&app, id, 30).await;
    assert_eq!(run["state"], "failed", "{run:#}");
    assert!(
        run["summary"].as_str().unwrap().contains("watchdog"),
        "{run:#}"
    );
    // The repo moves on: the next run starts.
    let next: Value = app
        .post("/run/developer?wait=false")
        .await
        .json()
        .await
        .unwrap();
    let next_id = next["run"]["id"].as_i64().unwrap();
    assert_ne!(next_id, id);
    until(10, "the next run to start", || async {
        (run_of(&app, next_id).await["state"] == "running").then_some(())
    })
    .await;
}

struct Served {
    child: Child,
    base: String,
}

impl Served {
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

async fn serve(dir: &Path, port: u16, api: &str, model: &str) -> Served {
    let mut command = crate::support::app::serve_command(dir, port, api);
    command
        .env("RUN_LEASE_SECS", "2")
        .env("OLLAMA_BASE_URL", model)
        .env("LLM_DEVELOPER_MODEL", "tiny:1b")
        .stderr(Stdio::null());
    let served = Served {
        child: command.spawn().unwrap(),
        base: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::new();
    until(20, "gaffer serve", || async {
        http.get(format!("{}/health", served.base))
            .send()
            .await
            .ok()
            .filter(|r| r.status().is_success())
            .map(|_| ())
    })
    .await;
    served
}

/// gaffer killed (SIGKILL) while a run waits on the model: after a restart the run is
/// queued again, completes, and there is exactly one PR.
#[tokio::test]
async fn a_run_killed_mid_way_completes_after_a_restart_without_a_duplicate() {
    let fake = FakeGithub::start().await;
    fake.create_repo(REPO, Some(&sample_target()));
    fake.commit(
        REPO,
        "main",
        &[("tasks/T-0001-json.md", &task("T-0001", "Add a json flag"))],
        "task",
    );
    let model = ollama::slowly(GOOD_EDIT, Duration::from_secs(8)).await;
    let dir = tempfile::TempDir::new().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let api = fake.api_url();
    let http = client_builder().build().unwrap();
    let first = serve(dir.path(), port, &api, &model.uri()).await;
    let body = json!({"full_name": REPO, "mode": "pr", "clone_url": fake.clone_url(REPO)});
    assert_eq!(
        http.post(format!("{}/repos", first.base))
            .json(&body)
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
    let queued: Value = http
        .post(format!("{}/run/developer", first.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = queued["run"]["id"].as_i64().unwrap();
    until(20, "the run to start", || async {
        let body: Value = http
            .get(format!("{}/runs/{id}", first.base))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (body["run"]["state"] == "running").then_some(())
    })
    .await;
    // The model answers after 8 s: kill while the call is in flight.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    first.kill();
    let second = serve(dir.path(), port, &api, &model.uri()).await;
    let run = until(60, "the run to finish after the restart", || async {
        let body: Value = http
            .get(format!("{}/runs/{id}", second.base))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (body["run"]["state"] == "succeeded" || body["run"]["state"] == "failed").then_some(body)
    })
    .await;
    assert_eq!(run["run"]["state"], "succeeded", "{run:#}");
    assert!(run["run"]["attempts"].as_i64().unwrap() >= 2, "{run:#}");
    let steps = run["steps"].to_string();
    assert!(steps.contains("queued again"), "{steps}");
    let prs: Vec<Value> = fake
        .pulls(REPO)
        .into_iter()
        .filter(|p| {
            p["head"]["ref"]
                .as_str()
                .unwrap()
                .starts_with("feature/T-0001")
        })
        .collect();
    assert_eq!(prs.len(), 1, "{prs:#?}");
    second.kill();
}
