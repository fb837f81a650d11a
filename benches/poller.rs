//! The poller at scale, the REST-only path and the batched (GraphQL) path side by side:
//! `BENCH_REPOS` registered repos on the fake GitHub with `BENCH_LATENCY_MS` of latency per
//! request (REST and GraphQL), gaffer running as its own process (`gaffer serve`, release
//! build) with its background poll loop, against the fake's secondary limits (REST 900
//! points a minute and 100 requests at once, GraphQL 2,000 points a minute).
//!
//! First a warm-up gaffer, unpaced and without latency, registers the repos and runs the
//! cold cycle (first sightings), so both paths start from the same persisted state. Then,
//! per path, a fresh gaffer (same data directory) polls in its loop; after its first cycle
//! the bench pushes to one repo's default branch and opens a PR in another, and measures
//! when gaffer fetched each change (its first 200 answer for that repo's ref / open PRs
//! after the change, in the fake's log). Printed per path: REST points at the peak sliding
//! minute (the fake's count), GraphQL points per cycle, time from each change to its
//! detection, each cycle's wall time, gaffer's peak RSS.
//!
//! A path may be given at most `BENCH_WINDOW_SECS` of real time (default 900); when a
//! cycle cannot finish in it (REST only at 10,000 repos: ~21,000 points at 900 a minute),
//! the bench says so and extrapolates the cycle and the detection bound from the REST
//! points per minute it measured, marked "extrapolated".
//!
//! cargo bench --bench poller
//! BENCH_REPOS=10000 BENCH_WINDOW_SECS=300 BENCH_PATHS=graphql,rest cargo bench --bench poller

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::fake_github::FakeGithub;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn peak_rss_kb(child: &Child) -> u64 {
    std::fs::read_to_string(format!("/proc/{}/status", child.id()))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// One finished cycle of gaffer's loop, from its JSON log line.
#[derive(Debug, Clone)]
struct Cycle {
    ended: Instant,
    fields: Value,
}

/// A running gaffer whose poll-cycle log lines are collected.
struct Gaffer {
    child: Child,
    base: String,
    cycles: Arc<Mutex<Vec<Cycle>>>,
}

impl Gaffer {
    fn start(data: &Path, api: &str, vars: &[(&str, String)]) -> Gaffer {
        let port = free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_gaffer"));
        command
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("GAFFER_BIND", format!("127.0.0.1:{port}"))
            .env("GAFFER_DATA_DIR", data)
            .env("GAFFER_LOG", "info")
            .env("GAFFER_LOG_FORMAT", "json")
            .env("GITHUB_API_URL", api)
            .env("GITHUB_WRITE_GAP_MS", "0")
            .env("MIN_REMAINING_BUDGET", "10")
            .env("LLM_PLANNER_MODEL", "none")
            .env("LLM_TASKMASTER_MODEL", "none")
            .env("LLM_DEVELOPER_MODEL", "none")
            .env("LLM_REVIEWER_MODEL", "none")
            .env("LLM_INTEGRATOR_MODEL", "none")
            .current_dir(data)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in vars {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("gaffer starts");
        let cycles: Arc<Mutex<Vec<Cycle>>> = Arc::default();
        let stderr = child.stderr.take().unwrap();
        let sink = Arc::clone(&cycles);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let Ok(value) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                let fields = &value["fields"];
                if fields["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("poll cycle:"))
                {
                    sink.lock().unwrap().push(Cycle {
                        ended: Instant::now(),
                        fields: fields.clone(),
                    });
                }
            }
        });
        Gaffer {
            child,
            base: format!("http://127.0.0.1:{port}"),
            cycles,
        }
    }

    async fn ready(&self, client: &reqwest::Client) {
        for _ in 0..600 {
            if client
                .get(format!("{}/repos?limit=1", self.base))
                .send()
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("gaffer did not start");
    }

    fn cycles(&self) -> Vec<Cycle> {
        self.cycles.lock().unwrap().clone()
    }

    fn stop(mut self) -> u64 {
        let rss = peak_rss_kb(&self.child);
        let _ = self.child.kill();
        let _ = self.child.wait();
        rss
    }
}

/// When gaffer first fetched a change: a 200 GET of `prefix` after log index `from`.
fn fetched(fake: &FakeGithub, from: usize, prefix: &str) -> bool {
    fake.log_since(from)
        .iter()
        .any(|r| r.method == "GET" && r.status == 200 && r.path.starts_with(prefix))
}

fn minutes(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

#[tokio::main]
async fn main() {
    let repos = env_number("BENCH_REPOS", 1000) as usize;
    let latency = Duration::from_millis(env_number("BENCH_LATENCY_MS", 50));
    let window = Duration::from_secs(env_number("BENCH_WINDOW_SECS", 900));
    let interval = env_number("BENCH_INTERVAL_SECS", 30);
    let concurrency = env_number("POLL_CONCURRENCY", 4);
    let points_per_minute = env_number("GITHUB_POINTS_PER_MINUTE", 900);
    let max_concurrency = env_number("GITHUB_MAX_CONCURRENCY", 20);
    let batch = env_number("GITHUB_GRAPHQL_BATCH", 50);
    let paths: Vec<String> = std::env::var("BENCH_PATHS")
        .unwrap_or_else(|_| "rest,graphql".into())
        .split(',')
        .map(str::to_string)
        .collect();

    let fake = FakeGithub::start().await;
    fake.set_rate_limit(100_000_000);
    let template = fake.create_repo("bench/template", None);
    let names: Vec<String> = (0..repos).map(|i| format!("bench/repo-{i:05}")).collect();
    for name in &names {
        fake.copy_repo(name, &template);
    }
    let client = support::app::client_builder().build().unwrap();
    let data = tempfile::TempDir::new().unwrap();
    println!(
        "poller benchmark: {repos} repos, {} ms latency per request, POLL_CONCURRENCY={concurrency}, \
         GITHUB_POINTS_PER_MINUTE={points_per_minute}, GITHUB_MAX_CONCURRENCY={max_concurrency}, \
         GITHUB_GRAPHQL_BATCH={batch}, POLL_INTERVAL_ACTIVE=POLL_INTERVAL_IDLE={interval}",
        latency.as_millis()
    );

    // Warm-up: register, and the cold cycle, unpaced and without latency.
    {
        let warm = Gaffer::start(
            data.path(),
            &fake.api_url(),
            &[
                ("GITHUB_GRAPHQL", "off".into()),
                ("GITHUB_POINTS_PER_MINUTE", "0".into()),
                ("POLL_CONCURRENCY", "16".into()),
            ],
        );
        warm.ready(&client).await;
        for name in &names {
            let body =
                json!({"full_name": name, "mode": "observe", "clone_url": fake.clone_url(name)});
            let status = client
                .post(format!("{}/repos", warm.base))
                .json(&body)
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(status, 201, "registering {name}");
        }
        let started = Instant::now();
        let cold: Value = client
            .post(format!("{}/poll/once", warm.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        println!(
            "  warm-up cold cycle (unpaced, 0 ms latency, not a figure): {}, {} requests, {} errors",
            minutes(started.elapsed()),
            cold["requests"],
            cold["errors"]
        );
        warm.stop();
    }

    let mut change = 0;
    for path in &paths {
        change += 1;
        let graphql = path == "graphql";
        fake.set_latency(latency);
        fake.set_secondary_limit(900, 100, None);
        fake.set_graphql_limit(2000, None);
        let (gql_queries_before, gql_points_before, _, _) = fake.graphql_stats();
        let log_start = fake.log_len();
        let started = Instant::now();
        let gaffer = Gaffer::start(
            data.path(),
            &fake.api_url(),
            &[
                (
                    "GITHUB_GRAPHQL",
                    if graphql { "auto" } else { "off" }.into(),
                ),
                ("GITHUB_GRAPHQL_BATCH", batch.to_string()),
                ("GITHUB_POINTS_PER_MINUTE", points_per_minute.to_string()),
                ("GITHUB_MAX_CONCURRENCY", max_concurrency.to_string()),
                ("POLL_CONCURRENCY", concurrency.to_string()),
                ("POLLING_ENABLED", "true".into()),
                ("POLL_INTERVAL_ACTIVE", interval.to_string()),
                ("POLL_INTERVAL_IDLE", interval.to_string()),
            ],
        );
        gaffer.ready(&client).await;
        println!("\n  {path} path:");
        // The change goes in once the first cycle is done, or half-way through the window.
        while gaffer.cycles().is_empty() && started.elapsed() < window / 2 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let pushed_repo = &names[repos / 2 + change];
        let pr_repo = &names[repos / 3 + change];
        let mark = fake.log_len();
        let changed_at = Instant::now();
        fake.commit(
            pushed_repo,
            "main",
            &[("CHANGELOG.md", path.as_str())],
            "a push",
        );
        fake.open_pull_after_commit(pr_repo, &format!("bench-{path}"));
        let push_prefix = format!("/repos/{pushed_repo}/git/ref/heads/main");
        let pr_prefix = format!("/repos/{pr_repo}/pulls?state=open");
        let (mut push_seen, mut pr_seen) = (None, None);
        let cycles_at_change = gaffer.cycles().len();
        // Until both are seen and the cycle that saw them has ended.
        while started.elapsed() < window {
            if push_seen.is_none() && fetched(&fake, mark, &push_prefix) {
                push_seen = Some(changed_at.elapsed());
            }
            if pr_seen.is_none() && fetched(&fake, mark, &pr_prefix) {
                pr_seen = Some(changed_at.elapsed());
            }
            if push_seen.is_some() && pr_seen.is_some() && gaffer.cycles().len() > cycles_at_change
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let elapsed = started.elapsed();
        let cycles = gaffer.cycles();
        let rss_kb = gaffer.stop();
        let log = fake.log_since(log_start);
        let rest_calls = log.iter().filter(|r| !r.path.ends_with("graphql")).count();
        let (refused, peak_points, peak_in_flight) = fake.secondary_stats();
        let (gql_queries, gql_points, gql_refused, gql_peak) = fake.graphql_stats();
        let per_minute = rest_calls as f64 / elapsed.as_secs_f64() * 60.0;
        println!(
            "    ran {} of real time: {rest_calls} REST calls ({per_minute:.0} a minute on average), \
             {} GraphQL queries costing {} points",
            minutes(elapsed),
            gql_queries - gql_queries_before,
            gql_points - gql_points_before
        );
        println!(
            "    REST points at the peak sliding minute: {peak_points} (limit 900; {refused} refused, \
             peak {peak_in_flight} requests in flight); GraphQL peak {gql_peak} points a minute \
             ({gql_refused} refused)"
        );
        for (i, cycle) in cycles.iter().enumerate() {
            let f = &cycle.fields;
            println!(
                "    cycle {}: wall {:>7.1} s, REST requests {:>6}, 304s {:>6}, detection {}, \
                 GraphQL points {:>4}, repos unchanged {:>6}, ended at {:>6.1} s, next {} s",
                i + 1,
                f["duration_ms"].as_f64().unwrap_or(0.0) / 1000.0,
                f["requests"],
                f["not_modified"],
                f["detection"].as_str().unwrap_or("?"),
                f["graphql_points"],
                f["unchanged"],
                cycle.ended.duration_since(started).as_secs_f64(),
                f["next_s"]
            );
        }
        let show = |seen: Option<Duration>| match seen {
            Some(d) => minutes(d),
            None => format!("not within the {} window", minutes(window)),
        };
        println!(
            "    change to detection: push {}, new PR head {} (one sample each; the bound is the \
             loop's period, below)",
            show(push_seen),
            show(pr_seen)
        );
        let period = cycles
            .last()
            .and_then(|c| c.fields["next_s"].as_f64())
            .unwrap_or(0.0);
        let last_wall = cycles
            .last()
            .and_then(|c| c.fields["duration_ms"].as_f64())
            .map(|ms| ms / 1000.0);
        match last_wall {
            Some(wall) => println!(
                "    period (a change waits at most about this): max(next interval {period:.0} s, \
                 cycle {wall:.1} s)"
            ),
            None => {
                // No cycle finished in the window: extrapolate from the measured rate.
                let points = repos as f64 * 2.1;
                let wall = points / per_minute.max(1.0) * 60.0;
                let floor = points / (points_per_minute as f64 * 0.8) * 60.0;
                println!(
                    "    extrapolated (no cycle finished in {}): a cycle is ~{points:.0} points at the \
                     measured {per_minute:.0} a minute = ~{:.1} min; next interval floor {:.1} min; \
                     a change waits up to ~{:.1} min",
                    minutes(window),
                    wall / 60.0,
                    floor / 60.0,
                    wall.max(floor) / 60.0
                );
            }
        }
        println!(
            "    gaffer peak RSS: {:.1} MB (VmHWM)",
            rss_kb as f64 / 1024.0
        );
    }
}
