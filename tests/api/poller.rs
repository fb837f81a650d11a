//! The poller against the fake GitHub.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::app::{
    assert_error, fake_with_app, sample_target, spawn_app_in, spawn_app_with, TestApp,
};
use crate::support::fake_github::{FakeGithub, Fault};

const REPO: &str = "acme/tally";
const BOOT_BRANCH: &str = "feature/T-0001-initialize-basic-ci-for-python";

fn vars(api: &str) -> Vec<(&'static str, String)> {
    vec![
        ("GITHUB_API_URL", api.to_string()),
        ("GITHUB_WRITE_GAP_MS", "0".into()),
        ("LLM_PLANNER_MODEL", "none".into()),
        ("LLM_TASKMASTER_MODEL", "none".into()),
        ("LLM_DEVELOPER_MODEL", "none".into()),
        ("LLM_REVIEWER_MODEL", "none".into()),
        ("LLM_INTEGRATOR_MODEL", "none".into()),
    ]
}

async fn app_for(fake: &FakeGithub, extra: &[(&'static str, &str)]) -> TestApp {
    let mut owned = vars(&fake.api_url());
    owned.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let borrowed: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    spawn_app_with(&borrowed).await
}

async fn setup(mode: &str) -> (FakeGithub, TestApp) {
    fake_with_app(REPO, mode, Some(&sample_target()), &[]).await
}

/// The REST-only path (`GITHUB_GRAPHQL=off`), for tests that count its requests.
async fn setup_rest(mode: &str) -> (FakeGithub, TestApp) {
    fake_with_app(
        REPO,
        mode,
        Some(&sample_target()),
        &[("GITHUB_GRAPHQL", "off")],
    )
    .await
}

async fn poll(app: &TestApp) -> Value {
    let response = app.post("/poll/once").await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body:#}");
    body
}

/// A work PR (#1) opened by the bootstrap, with the repo switched to `mode`.
async fn with_work_pr(mode: &str) -> (FakeGithub, TestApp) {
    let (fake, app) = setup("pr").await;
    let boot: Value = app
        .post("/repos/acme/tally/bootstrap")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(boot["action"], "opened_pr");
    app.post_json("/repos/acme/tally/set-mode", &json!({"mode": mode}))
        .await;
    (fake, app)
}

#[tokio::test]
async fn an_idle_cycle_is_all_304s_and_spends_nothing() {
    let (fake, app) = setup_rest("observe").await;
    let cold = poll(&app).await;
    assert!(cold["units_spent"].as_u64().unwrap() > 0);
    let remaining = fake.rate_remaining();
    let warm = poll(&app).await;
    assert_eq!(warm["units_spent"], 0, "{warm:#}");
    assert_eq!(warm["requests"], warm["not_modified"]);
    assert_eq!(warm["requests"], 2, "default branch head and open PRs");
    assert_eq!(
        fake.rate_remaining(),
        remaining,
        "GitHub's own count agrees"
    );
    assert_eq!(warm["repos"][0]["changed"], false);
    assert!(warm["next_interval_reason"]
        .as_str()
        .unwrap()
        .contains("nothing changed"));
    assert_eq!(warm["next_interval_secs"], 300, "POLL_INTERVAL_IDLE");
    assert!(warm["budget"]["remaining"].as_u64().unwrap() > 4000);
    // A repo that asks to be polled more often sets the pace of the cycle.
    app.patch_json(
        "/repos/acme/tally",
        &json!({"overrides": {"poll_interval_idle": 120}}),
    )
    .await;
    assert_eq!(poll(&app).await["next_interval_secs"], 120);
}

#[tokio::test]
async fn a_new_head_gets_one_review_and_a_merge_one_integration() {
    let (fake, app) = with_work_pr("pr").await;
    let first = poll(&app).await;
    let actions = first["repos"][0]["actions"].to_string();
    assert!(actions.contains("reviewer: reviewed PR #1"), "{actions}");
    assert_eq!(
        first["next_interval_secs"], 60,
        "POLL_INTERVAL_ACTIVE while work is in flight"
    );
    assert_eq!(poll(&app).await["actions"], 0);
    assert_eq!(fake.reviews(REPO, 1).len(), 1);

    fake.commit(REPO, BOOT_BRANCH, &[("src/more.py", "X = 1\n")], "push");
    poll(&app).await;
    assert_eq!(
        fake.reviews(REPO, 1).len(),
        2,
        "the new head got its review"
    );

    fake.merge(REPO, 1).unwrap();
    let merged = poll(&app).await;
    assert!(
        merged["repos"][0]["actions"]
            .to_string()
            .contains("integrator: T-0001 -> done"),
        "{merged:#}"
    );
    assert_eq!(fake.pulls(REPO).len(), 2);
    poll(&app).await;
    poll(&app).await;
    assert_eq!(fake.pulls(REPO).len(), 2, "one integration per merge");
}

#[tokio::test]
async fn a_restart_repeats_nothing_and_its_first_cycle_is_cheap() {
    let (fake, app) = with_work_pr("pr").await;
    poll(&app).await;
    poll(&app).await;
    let data_dir = app.stop().await;
    let mut owned = vars(&fake.api_url());
    owned.push(("GAFFER_LOG", "warn".into()));
    let borrowed: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = spawn_app_in(Arc::clone(&data_dir), &borrowed).await;
    let after = poll(&app).await;
    assert_eq!(after["actions"], 0, "{after:#}");
    assert_eq!(after["units_spent"], 0, "persisted ETags: {after:#}");
    assert_eq!(fake.reviews(REPO, 1).len(), 1);
}

#[tokio::test]
async fn observe_repos_are_reported_never_acted_on() {
    let (fake, app) = with_work_pr("observe").await;
    let report = poll(&app).await;
    assert!(
        report["repos"][0]["actions"]
            .to_string()
            .contains("not acted on"),
        "{report:#}"
    );
    assert!(fake.reviews(REPO, 1).is_empty());
}

#[tokio::test]
async fn a_low_budget_stops_the_calls_until_the_reset() {
    let (fake, app) = setup_rest("observe").await;
    fake.set_rate_remaining(50, 900);
    let first = poll(&app).await;
    let errors = first["repos"][0]["errors"].to_string();
    assert!(errors.contains("MIN_REMAINING_BUDGET"), "{first:#}");
    assert!(first["next_interval_reason"]
        .as_str()
        .unwrap()
        .contains("waiting for the reset"));
    assert!(first["next_interval_secs"].as_u64().unwrap() > 800);
    let sent = fake.log().len();
    let second = poll(&app).await;
    assert_eq!(second["requests"], 0);
    assert_eq!(fake.log().len(), sent, "no calls while under the budget");
}

#[tokio::test]
async fn a_secondary_limit_is_waited_out() {
    let (fake, app) = setup("observe").await;
    fake.inject(
        Fault::Secondary {
            retry_after: Some(1),
        },
        1,
    );
    let report = poll(&app).await;
    assert_eq!(report["errors"], 0, "{report:#}");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("gaffer_github_secondary_waits_total 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn one_repos_failure_never_stops_the_others() {
    let (_fake, app) = setup("observe").await;
    app.post_json("/repos", &json!({"full_name": "acme/ghost"}))
        .await;
    let report = poll(&app).await;
    let repos = report["repos"].as_array().unwrap();
    let ghost = repos.iter().find(|r| r["repo"] == "acme/ghost").unwrap();
    assert!(
        ghost["errors"]
            .to_string()
            .contains("not found or the token lacks access"),
        "{ghost}"
    );
    let good = repos.iter().find(|r| r["repo"] == REPO).unwrap();
    assert!(good["errors"].as_array().unwrap().is_empty(), "{good}");
    // One repo only, in both path forms; disabled repos are refused.
    assert_eq!(app.post("/repos/acme_tally/poll").await.status(), 200);
    app.post_json("/repos/acme/ghost/set-mode", &json!({"mode": "disabled"}))
        .await;
    assert_error(app.post("/repos/acme/ghost/poll").await, 409).await;
    assert_eq!(
        poll(&app).await["repos"].as_array().unwrap().len(),
        1,
        "disabled repos are not polled"
    );
}

#[tokio::test]
async fn cycles_never_overlap() {
    let (fake, app) = setup("observe").await;
    fake.set_latency(Duration::from_millis(300));
    let first = app.client.post(app.url("/poll/once")).send();
    let second = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        app.post("/poll/once").await
    };
    let (first, second) = tokio::join!(first, second);
    assert_eq!(first.unwrap().status(), 200);
    assert_error(second, 409).await;
}

#[tokio::test]
async fn the_background_loop_polls_and_metrics_show_it() {
    let fake = FakeGithub::start().await;
    fake.create_repo(REPO, None);
    let app = app_for(
        &fake,
        &[
            ("POLLING_ENABLED", "true"),
            ("POLL_INTERVAL_ACTIVE", "1"),
            ("POLL_INTERVAL_IDLE", "1"),
        ],
    )
    .await;
    app.post_json(
        "/repos",
        &json!({"full_name": REPO, "clone_url": fake.clone_url(REPO)}),
    )
    .await;
    let mut cycles = 0.0;
    for _ in 0..100 {
        let metrics = app.get("/metrics").await.text().await.unwrap();
        cycles = metrics
            .lines()
            .find_map(|l| l.strip_prefix("gaffer_poll_cycles_total "))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        if cycles >= 2.0 {
            assert!(metrics.contains("# TYPE gaffer_github_requests_total counter"));
            assert!(metrics.contains("gaffer_github_budget_remaining"));
            assert!(metrics.contains("gaffer_poll_cycle_duration_seconds"));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(cycles >= 2.0, "the loop ran: {cycles}");
    app.stop().await;
}

/// Ten repos registered in `observe` mode against one fake, with `extra` settings.
async fn many_repos(extra: &[(&'static str, &str)]) -> (FakeGithub, TestApp) {
    let fake = FakeGithub::start().await;
    let app = app_for(&fake, extra).await;
    for i in 0..10 {
        let name = format!("acme/r{i:02}");
        fake.create_repo(&name, None);
        let body =
            json!({"full_name": name, "mode": "observe", "clone_url": fake.clone_url(&name)});
        assert_eq!(app.post_json("/repos", &body).await.status(), 201);
    }
    (fake, app)
}

#[tokio::test]
async fn pacing_keeps_a_burst_under_the_secondary_limit() {
    // A cold cycle over ten repos sends 30 GETs: more than the minute's budget of 20, and
    // eight repos at once: more than the two requests GitHub (the fake) accepts at once.
    // Unpaced (GITHUB_POINTS_PER_MINUTE=0), the same cycle is refused again and again.
    let (fake, app) = many_repos(&[
        ("GITHUB_GRAPHQL", "off"),
        ("GITHUB_POINTS_PER_MINUTE", "20"),
        ("GITHUB_MAX_CONCURRENCY", "2"),
        ("POLL_CONCURRENCY", "8"),
    ])
    .await;
    fake.set_latency(Duration::from_millis(30));
    fake.set_secondary_limit(24, 2, None);
    let report = poll(&app).await;
    assert_eq!(report["errors"], 0, "{report:#}");
    assert_eq!(report["requests"], 30, "{report:#}");
    let (refused, peak_points, peak_in_flight) = fake.secondary_stats();
    assert_eq!(refused, 0, "no secondary-limit answers");
    assert!(peak_points <= 20, "the minute held {peak_points} points");
    assert!(peak_in_flight <= 2, "{peak_in_flight} requests at once");
    assert_eq!(report["pace"]["points_per_minute"], 20);
    assert_eq!(report["pace_lowered"], false);
    // 10 repos x 2.1 points a cycle within 16 of the 20 points a minute: 79 s, not 60.
    assert_eq!(report["next_interval_secs"], 79, "{report:#}");
    assert!(report["next_interval_reason"]
        .as_str()
        .unwrap()
        .contains("no sooner than 79s"));
}

#[tokio::test]
async fn a_secondary_limit_hit_lowers_the_pace() {
    let (fake, app) = setup("observe").await;
    // Two points a minute: the cycle's third GET is refused, and so are its retries.
    fake.set_secondary_limit(2, 100, Some(1));
    let report = poll(&app).await;
    assert_eq!(report["pace_lowered"], true, "{report:#}");
    let pace = report["pace"]["points_per_minute"].as_u64().unwrap();
    // Halved once (the refusals of one burst count once), climbing back since.
    assert!((450..500).contains(&pace), "halved from 900: {pace}");
    assert_eq!(report["pace"]["lowered"], true);
    assert!(fake.secondary_stats().0 >= 1);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    let value = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("{name} in {metrics}"))
    };
    assert!(value("gaffer_github_pace_lowered_total") >= 1.0);
    let now = value("gaffer_github_pace_points_per_minute");
    assert!(now >= pace as f64 && now < 900.0, "{now}");
}
