//! Batched change detection over GraphQL, against the fake GitHub's `POST /graphql`: it
//! finds what REST would, spends no REST call on unchanged repos, is paced on its own
//! budget, and falls back to REST, visibly, when GraphQL is refused.

use serde_json::{json, Value};

use crate::support::app::{fake_with_app, sample_target, spawn_app_with, TestApp, NO_MODELS};
use crate::support::fake_github::{FakeGithub, GraphqlRefusal, LoggedRequest};

const REPO: &str = "acme/tally";
const BOOT_BRANCH: &str = "feature/T-0001-initialize-basic-ci-for-python";

async fn poll(app: &TestApp) -> Value {
    let response = app.post("/poll/once").await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body:#}");
    body
}

fn is_graphql(r: &LoggedRequest) -> bool {
    r.path.ends_with("/graphql")
}

/// (GraphQL queries, REST calls) the fake saw since `from`.
/// Waits until the fake has seen no request for half a second (background runs done).
async fn quiet(fake: &FakeGithub) {
    loop {
        let seen = fake.log_len();
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        if fake.log_len() == seen {
            return;
        }
    }
}

fn calls_since(fake: &FakeGithub, from: usize) -> (usize, usize) {
    let log = fake.log_since(from);
    let graphql = log.iter().filter(|r| is_graphql(r)).count();
    (graphql, log.len() - graphql)
}

async fn metric(app: &TestApp, name: &str) -> f64 {
    let metrics = app.get("/metrics").await.text().await.unwrap();
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} in {metrics}"))
}

/// `count` repos in `observe` mode on one fake, with `extra` settings.
async fn repos(count: usize, extra: &[(&str, &str)]) -> (FakeGithub, TestApp) {
    let (fake, app) = fake_with_app("acme/r00", "observe", None, extra).await;
    for i in 1..count {
        let name = format!("acme/r{i:02}");
        fake.create_repo(&name, None);
        let body =
            json!({"full_name": name, "mode": "observe", "clone_url": fake.clone_url(&name)});
        assert_eq!(app.post_json("/repos", &body).await.status(), 201);
    }
    (fake, app)
}

#[tokio::test]
async fn batched_detection_finds_pushes_and_new_heads_and_does_the_same_work() {
    let (fake, app) = fake_with_app(REPO, "pr", Some(&sample_target()), &[]).await;
    let boot: Value = app
        .post("/repos/acme/tally/bootstrap")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(boot["action"], "opened_pr");
    let first = poll(&app).await;
    assert_eq!(first["detection"]["mode"], "graphql", "{first:#}");
    assert_eq!(first["detection"]["queries"], 1);
    assert_eq!(first["repos"][0]["detected_by"], "graphql+rest");
    assert!(first["repos"][0]["actions"]
        .to_string()
        .contains("reviewer: reviewed PR #1"));

    // Idle: one query, no REST call, and the open task PR keeps the active interval. (The
    // engine's follow-ups of the first cycle's review, a rescan, end first.)
    quiet(&fake).await;
    let from = fake.log_len();
    let idle = poll(&app).await;
    assert_eq!(calls_since(&fake, from), (1, 0), "{idle:#}");
    assert_eq!(idle["repos"][0]["detected_by"], "graphql");
    assert_eq!(idle["requests"], 0);
    assert_eq!(idle["detection"]["unchanged"], 1);
    assert_eq!(idle["detection"]["graphql_points"], 1);
    assert_eq!(idle["next_interval_secs"], 60, "task PRs are open");

    // A push to the PR: a new head, reviewed once.
    fake.commit(REPO, BOOT_BRANCH, &[("src/more.py", "X = 1\n")], "push");
    let pushed = poll(&app).await;
    assert_eq!(pushed["repos"][0]["detected_by"], "graphql+rest");
    assert_eq!(fake.reviews(REPO, 1).len(), 2, "{pushed:#}");
    assert_eq!(poll(&app).await["requests"], 0);

    // A new PR (not a task's): seen, stored, not acted on.
    let human = fake.open_pull_after_commit(REPO, "docs-typo");
    let opened = poll(&app).await;
    assert_eq!(opened["repos"][0]["changed"], true, "{opened:#}");
    assert_eq!(opened["actions"], 0);
    assert_eq!(poll(&app).await["requests"], 0, "PR #{human} is stored");

    // A push to main: a rescan.
    fake.commit(REPO, "main", &[("NOTES.md", "notes\n")], "a push");
    let moved = poll(&app).await;
    assert!(
        moved["repos"][0]["actions"]
            .to_string()
            .contains("scan: main moved"),
        "{moved:#}"
    );

    // A merge: one integration, then quiet again.
    fake.merge(REPO, 1).unwrap();
    let merged = poll(&app).await;
    assert!(
        merged["repos"][0]["actions"]
            .to_string()
            .contains("integrator: T-0001 -> done"),
        "{merged:#}"
    );
    let pulls = fake.pulls(REPO).len();
    poll(&app).await;
    poll(&app).await;
    assert_eq!(fake.pulls(REPO).len(), pulls, "one integration per merge");
    assert!(metric(&app, "gaffer_poll_graphql_queries_total").await >= 9.0);
    assert_eq!(metric(&app, "gaffer_poll_graphql_detection").await, 1.0);
}

#[tokio::test]
async fn an_idle_batched_cycle_spends_no_rest_call() {
    let (fake, app) = repos(10, &[("GITHUB_GRAPHQL_BATCH", "4")]).await;
    let cold = poll(&app).await;
    assert_eq!(
        cold["detection"]["queries"], 3,
        "10 repos, 4 a query: {:#}",
        cold["detection"]
    );
    assert_eq!(cold["detection"]["polled_over_rest"], 10, "first sightings");
    let from = fake.log_len();
    let idle = poll(&app).await;
    assert_eq!(calls_since(&fake, from), (3, 0), "{idle:#}");
    assert_eq!(idle["units_spent"], 0);
    assert_eq!(idle["detection"]["unchanged"], 10);
    assert_eq!(idle["detection"]["graphql_points"], 3);
    assert!(idle["repos"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["detected_by"] == "graphql"));
    assert_eq!(idle["next_interval_secs"], 300, "nothing in flight: idle");

    // One repo changes: REST for that one only.
    fake.commit("acme/r07", "main", &[("CHANGELOG.md", "x\n")], "change");
    let from = fake.log_len();
    let changed = poll(&app).await;
    let rest: Vec<String> = fake
        .log_since(from)
        .into_iter()
        .filter(|r| !is_graphql(r))
        .map(|r| r.path)
        .collect();
    assert!(!rest.is_empty());
    assert!(
        rest.iter()
            .all(|p| p == "/repos/acme/r07" || p.starts_with("/repos/acme/r07/")),
        "{rest:?}"
    );
    let line = changed["repos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["repo"] == "acme/r07")
        .unwrap();
    assert_eq!(line["detected_by"], "graphql+rest");
    assert_eq!(line["changed"], true);
    assert_eq!(changed["detection"]["unchanged"], 9);
}

#[tokio::test]
async fn refused_graphql_falls_back_to_rest_and_says_so() {
    let cases = [
        (GraphqlRefusal::NotFound, "404"),
        (GraphqlRefusal::Forbidden, "403"),
        (GraphqlRefusal::InsufficientScopes, "INSUFFICIENT_SCOPES"),
        (GraphqlRefusal::Garbage, "not what was asked"),
        (GraphqlRefusal::Oversized, "over 8388608 bytes"),
    ];
    for (refusal, says) in cases {
        let (fake, app) = repos(2, &[]).await;
        fake.refuse_graphql(Some(refusal));
        let report = poll(&app).await;
        let detection = &report["detection"];
        assert_eq!(detection["mode"], "rest", "{refusal:?}: {report:#}");
        let why = detection["fallback"].as_str().unwrap();
        assert!(why.contains(says), "{refusal:?}: {why}");
        assert!(
            !why.contains('<'),
            "the answer's text is not echoed raw: {why}"
        );
        assert_eq!(report["errors"], 0, "{report:#}");
        assert_eq!(report["requests"], 6, "REST did the work");
        assert!(report["repos"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["detected_by"] == "rest"));
        assert_eq!(metric(&app, "gaffer_poll_graphql_available").await, 0.0);
        assert_eq!(
            metric(&app, "gaffer_poll_graphql_fallbacks_total").await,
            1.0
        );
        assert_eq!(metric(&app, "gaffer_poll_graphql_detection").await, 0.0);

        // Left alone for a while: the next cycles are REST only, and still find changes.
        fake.commit("acme/r01", "main", &[("CHANGELOG.md", "x\n")], "change");
        let from = fake.log_len();
        let next = poll(&app).await;
        assert_eq!(
            calls_since(&fake, from).0,
            0,
            "GraphQL is not asked again yet"
        );
        assert!(next["detection"]["fallback"]
            .as_str()
            .unwrap()
            .contains("asked again in"));
        let line = next["repos"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["repo"] == "acme/r01")
            .unwrap();
        assert_eq!(line["changed"], true, "{next:#}");
        app.stop().await;
    }
}

#[tokio::test]
async fn graphql_off_forces_the_rest_path() {
    let (fake, app) = repos(2, &[("GITHUB_GRAPHQL", "off")]).await;
    poll(&app).await;
    let idle = poll(&app).await;
    assert_eq!(calls_since(&fake, 0).0, 0, "no GraphQL query");
    assert_eq!(idle["detection"]["mode"], "rest");
    assert_eq!(
        idle["detection"]["fallback"],
        "GITHUB_GRAPHQL=off: REST only"
    );
    assert_eq!(idle["requests"], 4, "two conditional GETs a repo");
    assert_eq!(idle["units_spent"], 0);
}

#[tokio::test]
async fn on_github_enterprise_queries_go_to_api_graphql_with_the_token() {
    let fake = FakeGithub::start().await;
    let ghe = fake.enterprise_api_url();
    fake.require_token("ghe-token");
    fake.create_repo(REPO, None);
    let mut vars = vec![
        ("GITHUB_API_URL", ghe.as_str()),
        ("GH_TOKEN", "ghe-token"),
        ("GITHUB_WRITE_GAP_MS", "0"),
    ];
    vars.extend(NO_MODELS);
    let app = spawn_app_with(&vars).await;
    let body = json!({"full_name": REPO, "mode": "observe", "clone_url": fake.clone_url(REPO)});
    assert_eq!(app.post_json("/repos", &body).await.status(), 201);
    poll(&app).await;
    let idle = poll(&app).await;
    assert_eq!(idle["detection"]["mode"], "graphql", "{idle:#}");
    let queries: Vec<LoggedRequest> = fake.log().into_iter().filter(is_graphql).collect();
    assert_eq!(queries.len(), 2);
    for q in &queries {
        assert_eq!(q.path, "/api/graphql", "GHE's GraphQL endpoint");
        assert_eq!(q.status, 200);
        assert_eq!(q.authorization.as_deref(), Some("Bearer ghe-token"));
    }
    assert_eq!(idle["requests"], 0);
}

#[tokio::test]
async fn graphql_points_are_paced_on_their_own_budget() {
    let (fake, app) = repos(
        3,
        &[
            ("GITHUB_GRAPHQL_BATCH", "1"),
            ("GITHUB_GRAPHQL_POINTS_PER_MINUTE", "3"),
        ],
    )
    .await;
    fake.set_graphql_limit(3, None);
    let report = poll(&app).await;
    assert_eq!(report["detection"]["queries"], 3, "{report:#}");
    let pace = &report["detection"]["graphql_pace"];
    assert_eq!(pace["points_per_minute"], 3);
    assert_eq!(pace["points_last_minute"], 3);
    assert_eq!(report["pace"]["points_per_minute"], 900, "REST has its own");
    let (queries, points, refused, peak) = fake.graphql_stats();
    assert_eq!((queries, points, refused), (3, 3, 0));
    assert!(peak <= 3);
    // 3 points a cycle within 2.4 of the 3 a minute: 75 s, not the active 60.
    assert_eq!(report["next_interval_secs"], 75, "{report:#}");
    assert!(report["next_interval_reason"]
        .as_str()
        .unwrap()
        .contains("3 GraphQL points a cycle"));
    assert_eq!(
        metric(&app, "gaffer_github_graphql_pace_points_last_minute").await,
        3.0
    );
}

#[tokio::test]
async fn a_graphql_secondary_limit_lowers_its_pace_and_rest_covers_the_batch() {
    let (fake, app) = repos(3, &[("GITHUB_GRAPHQL_BATCH", "1")]).await;
    fake.set_graphql_limit(1, Some(1));
    let report = poll(&app).await;
    let detection = &report["detection"];
    assert_eq!(detection["mode"], "partial", "{report:#}");
    assert_eq!(detection["queries"], 1);
    assert!(detection["fallback"]
        .as_str()
        .unwrap()
        .contains("secondary rate limit"));
    assert_eq!(detection["graphql_pace"]["lowered"], true);
    let halved = detection["graphql_pace"]["points_per_minute"]
        .as_u64()
        .unwrap();
    assert!(
        (1000..1010).contains(&halved),
        "halved from 2,000: {halved}"
    );
    assert_eq!(report["errors"], 0, "REST covered the refused batches");
    assert_eq!(report["pace"]["lowered"], false, "REST's pace is its own");
    assert_eq!(
        metric(&app, "gaffer_github_graphql_pace_lowered_total").await,
        1.0
    );
    // A passing failure: GraphQL is asked again next cycle.
    assert_eq!(metric(&app, "gaffer_poll_graphql_available").await, 1.0);
}
