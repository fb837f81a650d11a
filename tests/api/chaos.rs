//! The whole loop under faults, black-box: `gaffer serve` as its own process on the fake
//! GitHub, which does every write and then answers 502, drops the connection or stalls past
//! the timeout (seeded, so the run is repeatable); webhooks delivered and redelivered with
//! the same GUID; GitHub down for a while (deliveries retried); and gaffer killed with
//! SIGKILL twice mid-work and started again. Then it counts: exactly one review per (PR,
//! head SHA), exactly one PR per (task, role), zero lost deliveries.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tempfile::TempDir;

use crate::support::app::sample_target;
use crate::support::fake_github::{Chaos, FakeGithub};

const SEED: u64 = 13;
const SECRET: &str = "chaos-webhook-secret";
const REPOS: usize = 3;
const T2: &str = "---\nid: T-0002\ntitle: Add a flag\ntype: feature\npriority: P2\ndepends_on: []\nstatus: queued\nowner: developer\nestimate: 1h\nacceptance:\n  - The flag exists\nauto_policy: pr\n---\n# Add a flag\n";

/// `gaffer serve` as a child process.
struct Server {
    child: Child,
    base: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start(dir: &Path, api: &str, http: &reqwest::Client) -> Server {
    let port = free_port();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("gaffer.log"))
        .unwrap();
    let mut command = crate::support::app::serve_command(dir, port, api);
    command
        .env("GITHUB_TIMEOUT_MS", "800")
        .env("GITHUB_BACKOFF_MS", "20")
        .env("GITHUB_WEBHOOK_SECRET", SECRET)
        .env("WEBHOOK_RETRY_BASE_SECS", "1")
        .env("WEBHOOK_RETRY_ATTEMPTS", "8")
        .stderr(log);
    let server = Server {
        child: command.spawn().expect("gaffer serve starts"),
        base: format!("http://127.0.0.1:{port}"),
    };
    for _ in 0..200 {
        let health = http.get(format!("{}/health", server.base)).send().await;
        if health.is_ok_and(|r| r.status().is_success()) {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.kill();
    panic!("gaffer serve did not come up");
}

impl Server {
    /// SIGKILL: no graceful anything.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Everything a run tallies.
#[derive(Default)]
struct Tally {
    deliveries: Vec<String>,
    redelivered: usize,
    work_next_retries: usize,
    restarts: usize,
}

async fn deliver(http: &reqwest::Client, base: &str, event: &str, id: &str, payload: &Value) {
    let body = serde_json::to_vec(payload).unwrap();
    let response = http
        .post(format!("{base}/webhook"))
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", id)
        .header("x-hub-signature-256", sign(&body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202, "{event} {id}");
}

/// A `pull_request` delivery for a PR as the fake shows it.
fn pr_event(repo: &str, action: &str, pr: &Value) -> Value {
    json!({"action": action, "repository": {"full_name": repo},
           "pull_request": {"number": pr["number"], "head": {"ref": pr["head"]["ref"], "sha": pr["head"]["sha"]},
                            "author_association": "OWNER", "body": pr["body"], "merged": pr["merged"]}})
}

fn pr_from(fake: &FakeGithub, repo: &str, prefix: &str) -> Option<Value> {
    fake.pulls(repo)
        .into_iter()
        .find(|p| p["head"]["ref"].as_str().unwrap().starts_with(prefix))
}

/// `work-next` until it answers 200 (a user re-runs a step that failed; that is the
/// at-least-once side), then the PR its step opened.
async fn work_next_until(
    http: &reqwest::Client,
    base: &str,
    fake: &FakeGithub,
    repo: &str,
    prefix: &str,
    tally: &mut Tally,
) -> Value {
    for _ in 0..10 {
        let answer = http
            .post(format!("{base}/repos/{repo}/work-next?wait=true"))
            .send()
            .await;
        if let Ok(r) = answer {
            if r.status() == 200 {
                if let Some(pr) = pr_from(fake, repo, prefix) {
                    return pr;
                }
            }
        }
        tally.work_next_retries += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{repo}: no PR from {prefix}");
}

/// Waits until no delivery is pending or waiting for a retry.
async fn settle(http: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let list: Value = http
            .get(format!("{base}/deliveries?limit=1000"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let busy = list
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["status"] == "pending" || d["status"] == "retrying");
        if !busy {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("deliveries did not settle");
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn the_loop_under_faults_and_restarts_writes_everything_exactly_once() {
    let started = Instant::now();
    let dir = TempDir::new().unwrap();
    let http = crate::support::app::client_builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let fake = FakeGithub::start().await;
    let names: Vec<String> = (0..REPOS).map(|i| format!("acme/chaos-{i}")).collect();
    for name in &names {
        fake.create_repo(name, Some(&sample_target()));
    }
    let mut server = start(dir.path(), &fake.api_url(), &http).await;
    for name in &names {
        let body = json!({"full_name": name, "mode": "pr", "clone_url": fake.clone_url(name)});
        let r = http
            .post(format!("{}/repos", server.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    fake.set_chaos(Some(Chaos::new(
        SEED,
        0.5,
        0.03,
        Duration::from_millis(1200),
    )));
    let mut tally = Tally::default();
    let mut retries_seen = 0.0;

    for (i, repo) in names.iter().enumerate() {
        // The Taskmaster plans T-0001; a second run must not plan it again.
        let plan = work_next_until(
            &http,
            &server.base,
            &fake,
            repo,
            "feature/plan-T-0001",
            &mut tally,
        )
        .await;
        let _ = http
            .post(format!("{}/repos/{repo}/work-next?wait=true", server.base))
            .send()
            .await;
        fake.merge(repo, plan["number"].as_u64().unwrap()).unwrap();
        let plan = pr_from(&fake, repo, "feature/plan-T-0001").unwrap();
        let id = format!("{i}-plan-merged");
        deliver(
            &http,
            &server.base,
            "pull_request",
            &id,
            &pr_event(repo, "closed", &plan),
        )
        .await;
        tally.deliveries.push(id);
        let id = format!("{i}-push");
        let push = json!({"ref": "refs/heads/main", "repository": {"full_name": repo}});
        deliver(&http, &server.base, "push", &id, &push).await;
        tally.deliveries.push(id);
        settle(&http, &server.base).await;

        // The Developer: on the first repo, gaffer is killed in the middle of this run.
        if i == 0 {
            let (h, base, name) = (http.clone(), server.base.clone(), repo.clone());
            let call = tokio::spawn(async move {
                let _ = h
                    .post(format!("{base}/repos/{name}/work-next?wait=true"))
                    .send()
                    .await;
            });
            tokio::time::sleep(Duration::from_millis(700)).await;
            server.kill();
            let _ = call.await;
            server = start(dir.path(), &fake.api_url(), &http).await;
            tally.restarts += 1;
        }
        let work = work_next_until(
            &http,
            &server.base,
            &fake,
            repo,
            "feature/T-0001",
            &mut tally,
        )
        .await;

        // Opened (and redelivered with the same GUID): one review of this head. On the
        // second repo, gaffer is killed while the delivery is being processed.
        let id = format!("{i}-opened");
        let opened = pr_event(repo, "opened", &work);
        deliver(&http, &server.base, "pull_request", &id, &opened).await;
        deliver(&http, &server.base, "pull_request", &id, &opened).await;
        tally.redelivered += 1;
        tally.deliveries.push(id);
        if i == 1 {
            tokio::time::sleep(Duration::from_millis(150)).await;
            let text = http
                .get(format!("{}/metrics", server.base))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            retries_seen += metric(&text, "gaffer_webhook_retries_total");
            server.kill();
            server = start(dir.path(), &fake.api_url(), &http).await;
            tally.restarts += 1;
        }
        settle(&http, &server.base).await;

        // A push to the PR: a review of the new head. On the last repo GitHub is down for a
        // while right then: the delivery fails and is retried until it goes through.
        let branch = work["head"]["ref"].as_str().unwrap().to_string();
        fake.commit(repo, &branch, &[("src/more.py", "X = 2\n")], "more work");
        let work = pr_from(&fake, repo, "feature/T-0001").unwrap();
        if i == REPOS - 1 {
            fake.outage(Duration::from_secs(2));
        }
        let id = format!("{i}-sync");
        deliver(
            &http,
            &server.base,
            "pull_request",
            &id,
            &pr_event(repo, "synchronize", &work),
        )
        .await;
        tally.deliveries.push(id);
        settle(&http, &server.base).await;

        // A human merges: the Integrator's PR, once, whatever is redelivered.
        fake.merge(repo, work["number"].as_u64().unwrap()).unwrap();
        let work = pr_from(&fake, repo, "feature/T-0001").unwrap();
        let id = format!("{i}-merged");
        let merged = pr_event(repo, "closed", &work);
        deliver(&http, &server.base, "pull_request", &id, &merged).await;
        deliver(&http, &server.base, "pull_request", &id, &merged).await;
        tally.redelivered += 1;
        tally.deliveries.push(id);
        settle(&http, &server.base).await;
        let done = pr_from(&fake, repo, "feature/done-T-0001").expect("the Integrator's PR");
        fake.merge(repo, done["number"].as_u64().unwrap()).unwrap();

        // A second task, added by hand: without a model its PR says why it is blocked.
        fake.commit(
            repo,
            "main",
            &[("tasks/T-0002-add-a-flag.md", T2)],
            "add T-0002",
        );
        let blocked = work_next_until(
            &http,
            &server.base,
            &fake,
            repo,
            "feature/T-0002",
            &mut tally,
        )
        .await;
        let id = format!("{i}-t2-opened");
        deliver(
            &http,
            &server.base,
            "pull_request",
            &id,
            &pr_event(repo, "opened", &blocked),
        )
        .await;
        tally.deliveries.push(id);
        settle(&http, &server.base).await;
        // And any trigger again: nothing new.
        let _ = http
            .post(format!("{}/repos/{repo}/work-next?wait=true", server.base))
            .send()
            .await;
        let _ = http
            .post(format!("{}/run/reviewer?repo={repo}", server.base))
            .send()
            .await;
    }
    settle(&http, &server.base).await;
    let injected = fake.chaos_injected();
    fake.set_chaos(None);

    // Count.
    let mut prs_per_task_role: BTreeMap<String, usize> = BTreeMap::new();
    let mut reviews_per_head: BTreeMap<String, usize> = BTreeMap::new();
    // Comments gaffer posted (each task PR's status comment): one per PR at most.
    let mut comments_per_pr: BTreeMap<String, usize> = BTreeMap::new();
    for repo in &names {
        for pr in fake.pulls(repo) {
            let number = pr["number"].as_u64().unwrap();
            let status = fake
                .comments(repo, number)
                .iter()
                .filter(|c| c.contains("<!-- gaffer:status -->"))
                .count();
            assert!(status <= 1, "{repo}#{number} has {status} status comments");
            *comments_per_pr
                .entry(format!("{repo}#{number}"))
                .or_default() += fake.comments(repo, number).len();
            let branch = pr["head"]["ref"].as_str().unwrap().to_string();
            *prs_per_task_role
                .entry(format!("{repo} {branch}"))
                .or_default() += 1;
            for (sha, _, _) in fake.reviews(repo, number) {
                *reviews_per_head
                    .entry(format!("{repo}#{number}@{}", &sha[..7]))
                    .or_default() += 1;
            }
        }
    }
    let list: Value = http
        .get(format!("{}/deliveries?limit=1000", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let status_of = |id: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == id)
            .map(|d| d["status"].as_str().unwrap().to_string())
    };
    let lost: Vec<(String, Option<String>)> = tally
        .deliveries
        .iter()
        .map(|id| (id.clone(), status_of(id)))
        .filter(|(_, s)| s.as_deref() != Some("done"))
        .collect();
    let metrics = http
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    retries_seen += metric(&metrics, "gaffer_webhook_retries_total");
    let log = fake.log();
    let posts = log.iter().filter(|r| r.method == "POST").count();
    let faults: u64 = injected.values().sum();

    eprintln!(
        "chaos run (seed {SEED}, {REPOS} repos) in {:.1} s:",
        started.elapsed().as_secs_f64()
    );
    eprintln!(
        "  GitHub requests {}, POSTs {posts}, faults injected {faults}:",
        log.len()
    );
    for (kind, n) in &injected {
        eprintln!("    {n:>3} {kind}");
    }
    let not_done: u64 = injected
        .iter()
        // POSTs only: a refused PATCH (a status comment's edit) is retried as a PATCH.
        .filter(|(k, _)| k.starts_with("502 before write (POST"))
        .map(|(_, n)| n)
        .sum();
    let made = prs_per_task_role.values().sum::<usize>()
        + reviews_per_head.values().sum::<usize>()
        + comments_per_pr.values().sum::<usize>();
    eprintln!(
        "  POSTs that made a PR, review or comment {made}; second POSTs after a lookup said \"not done\" {}",
        posts - made
    );
    eprintln!(
        "  gaffer killed (SIGKILL) and restarted {} times; work-next re-run {} times",
        tally.restarts, tally.work_next_retries
    );
    eprintln!(
        "  deliveries {} (+{} redelivered with the same GUID), retried {retries_seen}, dead {}, lost {}",
        tally.deliveries.len(),
        tally.redelivered,
        metric(&metrics, "gaffer_webhook_dead_letters"),
        lost.len()
    );
    eprintln!(
        "  PRs {} over {} (task, role) pairs, most per pair {}",
        prs_per_task_role.values().sum::<usize>(),
        prs_per_task_role.len(),
        prs_per_task_role.values().max().unwrap()
    );
    eprintln!(
        "  reviews {} over {} (PR, head SHA) pairs, most per pair {}",
        reviews_per_head.values().sum::<usize>(),
        reviews_per_head.len(),
        reviews_per_head.values().max().unwrap()
    );

    assert!(lost.is_empty(), "lost deliveries: {lost:?}");
    assert!(
        prs_per_task_role.values().all(|n| *n == 1),
        "{prs_per_task_role:#?}"
    );
    assert_eq!(
        prs_per_task_role.len(),
        4 * REPOS,
        "plan, work, done, T-0002 per repo: {prs_per_task_role:#?}"
    );
    assert!(
        reviews_per_head.values().all(|n| *n == 1),
        "{reviews_per_head:#?}"
    );
    assert_eq!(
        reviews_per_head.len(),
        3 * REPOS,
        "two heads of T-0001, one of T-0002: {reviews_per_head:#?}"
    );
    assert!(
        injected.keys().any(|k| k.ends_with("/pulls)")),
        "faults hit PR creation: {injected:?}"
    );
    assert!(
        injected.keys().any(|k| k.ends_with("/reviews)")),
        "faults hit reviews: {injected:?}"
    );
    assert!(retries_seen >= 1.0, "the outage made a delivery retry");
    assert!(
        not_done >= 2,
        "some writes were definitely not done: {injected:?}"
    );
    assert_eq!(
        posts as u64,
        made as u64 + not_done,
        "a second POST only after a definite \"not done\""
    );
    server.kill();
}
