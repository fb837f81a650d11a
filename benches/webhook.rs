//! Webhook acknowledgement throughput and latency: verified deliveries per second and the
//! p50/p99 time to the 202, with realistic 13-31 KB payloads (the recorded GitHub
//! `pull_request` and `issues` deliveries), on this machine.
//!
//! cargo bench --bench webhook
//! BENCH_DELIVERIES=20000 BENCH_CONCURRENCY=16 cargo bench --bench webhook

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use gaffer::config::Settings;
use gaffer::registry::NewRepo;
use gaffer::{Application, Gaffer};
use hmac::{Hmac, Mac};
use sha2::Sha256;

const SECRET: &str = "bench-secret";

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The recorded payloads, all pointed at the one registered repo.
fn payloads() -> Vec<(&'static str, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/github/webhooks");
    [
        ("pull_request", "pull_request.opened"),
        ("pull_request", "pull_request.synchronize"),
        ("pull_request", "pull_request.closed.merged"),
        ("issues", "issues.opened"),
    ]
    .into_iter()
    .map(|(event, file)| {
        let text = std::fs::read(dir.join(format!("{file}.json"))).expect("fixtures present");
        let mut value: serde_json::Value = serde_json::from_slice(&text).unwrap();
        value["repository"]["full_name"] = serde_json::json!("Codertocat/Hello-World");
        (event, serde_json::to_vec(&value).unwrap())
    })
    .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() {
    let deliveries = env_number("BENCH_DELIVERIES", 20_000);
    let concurrency = env_number("BENCH_CONCURRENCY", 16);
    let data = tempfile::TempDir::new().unwrap();
    let vars: HashMap<String, String> = [
        ("GAFFER_BIND", "127.0.0.1:0".to_string()),
        ("GAFFER_DATA_DIR", data.path().display().to_string()),
        ("GAFFER_LOG", "error".to_string()),
        ("GITHUB_WEBHOOK_SECRET", SECRET.to_string()),
        ("WEBHOOK_RETENTION", "1000000".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let settings = Settings::from_sources(None, "bench", &vars).unwrap();
    gaffer::telemetry::init(&settings);
    let gaffer = Gaffer::open(settings).await.unwrap();
    gaffer
        .registry
        .add(NewRepo {
            full_name: Some("Codertocat/Hello-World".into()),
            ..NewRepo::default()
        })
        .await
        .unwrap();
    let store = gaffer.store.clone();
    let app = Application::build(gaffer).await.unwrap();
    let url = format!("http://127.0.0.1:{}/webhook", app.port());
    tokio::spawn(app.run());

    let bodies = payloads();
    let sizes: Vec<usize> = bodies.iter().map(|(_, b)| b.len()).collect();
    let signed: Vec<(&str, Vec<u8>, String)> = bodies
        .into_iter()
        .map(|(e, b)| {
            let s = sign(&b);
            (e, b, s)
        })
        .collect();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let send = |i: usize| {
        let (event, body, signature) = signed[i % signed.len()].clone();
        let client = client.clone();
        let url = url.clone();
        async move {
            let started = Instant::now();
            let response = client
                .post(&url)
                .header("content-type", "application/json")
                .header("x-github-event", event)
                .header("x-github-delivery", format!("bench-{i}"))
                .header("x-hub-signature-256", signature)
                .body(body)
                .send()
                .await
                .expect("request sent");
            assert_eq!(response.status(), 202, "delivery {i}");
            started.elapsed()
        }
    };
    // Warm-up: connections, SQLite pages, allocator.
    let warm = 500.min(deliveries);
    futures_util::stream::iter(0..warm)
        .map(send)
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await;

    let started = Instant::now();
    let mut latencies: Vec<Duration> = futures_util::stream::iter(warm..warm + deliveries)
        .map(send)
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let wall = started.elapsed();
    latencies.sort();
    let drain_started = Instant::now();
    loop {
        let pending = store.pending_deliveries().await.unwrap().len();
        if pending == 0 || drain_started.elapsed() > Duration::from_secs(120) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "webhook acknowledgement benchmark ({} cores)",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!(
        "  payloads: {:?} bytes (recorded GitHub deliveries), signed HMAC-SHA256",
        sizes
    );
    println!(
        "  deliveries: {deliveries}, concurrency: {concurrency}, client and server on this machine"
    );
    println!(
        "  throughput: {:.0} verified deliveries/s ({:.2} s)",
        deliveries as f64 / wall.as_secs_f64(),
        wall.as_secs_f64()
    );
    println!(
        "  ack latency: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3
    );
    println!(
        "  background processing drained {:.2} s after the last ack",
        drain_started.elapsed().as_secs_f64()
    );
}
