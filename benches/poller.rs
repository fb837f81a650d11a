//! The poller at scale: 1,000 registered repos on the fake GitHub with 50 ms of latency per
//! request, gaffer running as its own process (`gaffer serve`, release build). Prints the
//! cold cycle, a warm idle cycle (against the ideal `requests x latency / concurrency`), a
//! cycle where 10 repos changed, and gaffer's peak RSS. The fake enforces GitHub's secondary
//! limits (900 points a minute, 100 requests at once); gaffer paces itself to
//! `GITHUB_POINTS_PER_MINUTE` (0: unpaced, to see the limit refuse it). Each cycle's line
//! says the pace and the suggested interval; the end, the fake's refusals and peaks.
//!
//! cargo bench --bench poller
//! BENCH_REPOS=1000 BENCH_LATENCY_MS=50 POLL_CONCURRENCY=4 GITHUB_POINTS_PER_MINUTE=900 \
//!   cargo bench --bench poller

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::{Child, Command, Stdio};
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

async fn poll(client: &reqwest::Client, base: &str) -> (Value, Duration) {
    let started = Instant::now();
    let report: Value = client
        .post(format!("{base}/poll/once"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (report, started.elapsed())
}

fn line(name: &str, report: &Value, wall: Duration) {
    println!(
        "  {name:<22} wall {:>7.2} s, requests {:>5}, 304s {:>5}, units spent {:>5}, actions {:>3}, errors {}",
        wall.as_secs_f64(),
        report["requests"],
        report["not_modified"],
        report["units_spent"],
        report["actions"],
        report["errors"]
    );
    println!(
        "  {:<22} pace {} points/min (lowered: {}), next interval {} s: {}",
        "",
        report["pace"]["points_per_minute"],
        report["pace_lowered"],
        report["next_interval_secs"],
        report["next_interval_reason"].as_str().unwrap_or("")
    );
}

#[tokio::main]
async fn main() {
    let repos = env_number("BENCH_REPOS", 1000);
    let latency = Duration::from_millis(env_number("BENCH_LATENCY_MS", 50));
    let concurrency = env_number("POLL_CONCURRENCY", 4);
    let points_per_minute = env_number("GITHUB_POINTS_PER_MINUTE", 900);
    let max_concurrency = env_number("GITHUB_MAX_CONCURRENCY", 20);

    let fake = FakeGithub::start().await;
    fake.set_rate_limit(1_000_000);
    let template = fake.create_repo("bench/template", None);
    let names: Vec<String> = (0..repos).map(|i| format!("bench/repo-{i:04}")).collect();
    for name in &names {
        fake.copy_repo(name, &template);
    }

    let data = tempfile::TempDir::new().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut gaffer = Command::new(env!("CARGO_BIN_EXE_gaffer"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GAFFER_BIND", format!("127.0.0.1:{port}"))
        .env("GAFFER_DATA_DIR", data.path())
        .env("GAFFER_LOG", "error")
        .env("GITHUB_API_URL", fake.api_url())
        .env("GITHUB_WRITE_GAP_MS", "0")
        .env("MIN_REMAINING_BUDGET", "10")
        .env("POLL_CONCURRENCY", concurrency.to_string())
        .env("GITHUB_POINTS_PER_MINUTE", points_per_minute.to_string())
        .env("GITHUB_MAX_CONCURRENCY", max_concurrency.to_string())
        .env("LLM_PLANNER_MODEL", "none")
        .env("LLM_TASKMASTER_MODEL", "none")
        .env("LLM_DEVELOPER_MODEL", "none")
        .env("LLM_REVIEWER_MODEL", "none")
        .env("LLM_INTEGRATOR_MODEL", "none")
        .current_dir(data.path())
        .stdout(Stdio::null())
        .spawn()
        .expect("gaffer starts");
    let client = support::app::client_builder().build().unwrap();
    for _ in 0..200 {
        if client.get(format!("{base}/repos")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for name in &names {
        let body = json!({"full_name": name, "mode": "observe", "clone_url": fake.clone_url(name)});
        let status = client
            .post(format!("{base}/repos"))
            .json(&body)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 201, "registering {name}");
    }

    fake.set_latency(latency);
    fake.set_secondary_limit(900, 100, None);
    let (cold, cold_wall) = poll(&client, &base).await;
    let (warm, warm_wall) = poll(&client, &base).await;
    for name in names.iter().take(10) {
        fake.commit(name, "main", &[("CHANGELOG.md", "a change\n")], "change");
    }
    let (changed, changed_wall) = poll(&client, &base).await;
    let rss_kb = peak_rss_kb(&gaffer);
    let _ = gaffer.kill();
    let _ = gaffer.wait();

    let ideal =
        warm["requests"].as_f64().unwrap_or(0.0) * latency.as_secs_f64() / concurrency as f64;
    println!("poller benchmark: {repos} repos, {} ms latency per request, POLL_CONCURRENCY={concurrency}, GITHUB_POINTS_PER_MINUTE={points_per_minute}, GITHUB_MAX_CONCURRENCY={max_concurrency}", latency.as_millis());
    line("cold cycle", &cold, cold_wall);
    line("warm idle cycle", &warm, warm_wall);
    println!(
        "    ideal (requests x latency / concurrency) {ideal:.2} s -> {:.2}x of ideal",
        warm_wall.as_secs_f64() / ideal.max(1e-9)
    );
    line("cycle, 10 repos changed", &changed, changed_wall);
    let (refused, peak_points, peak_in_flight) = fake.secondary_stats();
    println!(
        "  GitHub's secondary limit (900 points/min, 100 at once): {refused} requests refused, \
         peak {peak_points} points in a sliding minute, peak {peak_in_flight} in flight"
    );
    println!(
        "  gaffer peak RSS: {:.1} MB (VmHWM of the gaffer process)",
        rss_kb as f64 / 1024.0
    );
}
