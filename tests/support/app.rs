//! `spawn_app()` and friends: a real gaffer server on 127.0.0.1:0 with its own data dir.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix_web::dev::ServerHandle;
use gaffer::config::Settings;
use gaffer::{Application, Gaffer};
use serde_json::Value;
use tempfile::TempDir;

/// A running server plus what a test needs to talk to it.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub data_dir: Arc<TempDir>,
    handle: ServerHandle,
}

/// Settings as a user would give them in the environment, plus a loopback port 0 and
/// the given data directory.
pub fn settings(data_dir: &Path, vars: &[(&str, &str)]) -> Settings {
    let mut map: HashMap<String, String> = HashMap::new();
    map.insert("GAFFER_BIND".into(), "127.0.0.1:0".into());
    map.insert("GAFFER_DATA_DIR".into(), data_dir.display().to_string());
    map.insert("GAFFER_LOG".into(), "warn".into());
    for (k, v) in vars {
        map.insert(k.to_string(), v.to_string());
    }
    Settings::from_sources(None, "test", &map).expect("test settings are valid")
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

pub async fn spawn_app_with(vars: &[(&str, &str)]) -> TestApp {
    spawn_app_in(Arc::new(TempDir::new().unwrap()), vars).await
}

/// Starts a server on an existing data directory (for restart tests).
pub async fn spawn_app_in(data_dir: Arc<TempDir>, vars: &[(&str, &str)]) -> TestApp {
    let settings = settings(data_dir.path(), vars);
    gaffer::telemetry::init(&settings);
    let gaffer = Gaffer::open(settings).await.expect("gaffer opens");
    let app = Application::build(gaffer).await.expect("app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let handle = app.handle();
    tokio::spawn(app.run());
    TestApp {
        address,
        client: client_builder().build().unwrap(),
        data_dir,
        handle,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// A POST with no body (role runs, scans, polls).
    /// A body-less POST, as gaffer's own clients send it (saying it is not a cross-site
    /// form post).
    pub async fn post(&self, path: &str) -> reqwest::Response {
        self.client
            .post(self.url(&waiting(path)))
            .send()
            .await
            .unwrap()
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn patch_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .patch(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.client.delete(self.url(path)).send().await.unwrap()
    }

    /// Registers a repo and asserts it worked.
    pub async fn add_repo(&self, full_name: &str, mode: &str) -> Value {
        let response = self
            .post_json(
                "/repos",
                &serde_json::json!({"full_name": full_name, "mode": mode}),
            )
            .await;
        assert_eq!(response.status(), 201, "registering {full_name}");
        response.json().await.unwrap()
    }

    /// Stops the server and waits until it has let go of the database.
    pub async fn stop(self) -> Arc<TempDir> {
        self.handle.stop(true).await;
        self.data_dir
    }
}

/// Every role without a model: the built-in, deterministic behaviour (no Ollama needed).
pub const NO_MODELS: [(&str, &str); 5] = [
    ("LLM_PLANNER_MODEL", "none"),
    ("LLM_TASKMASTER_MODEL", "none"),
    ("LLM_DEVELOPER_MODEL", "none"),
    ("LLM_REVIEWER_MODEL", "none"),
    ("LLM_INTEGRATOR_MODEL", "none"),
];

/// POSTs with no body, asserts 200 and returns the JSON answer.
pub async fn post_ok(app: &TestApp, path: &str) -> Value {
    let response = app.post(path).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{path}: {body:#}");
    body
}

/// Asserts the JSON error shape every failure shares, and returns its message.
pub async fn assert_error(response: reqwest::Response, status: u16) -> String {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.expect("errors are JSON");
    let message = body["error"]
        .as_str()
        .expect("error is a string")
        .to_string();
    assert!(body.get("detail").is_some(), "detail key present: {body}");
    message
}

/// The built `gaffer` binary, for CLI tests.
pub fn gaffer_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_gaffer"))
}

/// Role runs (`/run/*`, `work-next`) answer 202 and run in the background; tests wait
/// for them, as the CLI does, unless they ask otherwise (`wait=false`).
pub fn waiting(path: &str) -> String {
    let runs_a_role = path.starts_with("/run/") || path.contains("/work-next");
    if !runs_a_role || path.contains("wait=") {
        return path.to_string();
    }
    let join = if path.contains('?') { '&' } else { '?' };
    format!("{path}{join}wait=true")
}

/// An HTTP client as gaffer's own tools talk to it: saying, with `X-Gaffer-Request`, that
/// a body-less POST is not a cross-site form post (tests of that guard use a bare client).
///
/// Idle connections are dropped after 3 s, before the server's 5 s keep-alive closes them:
/// a request sent on a connection the server is closing fails with `IncompleteMessage`.
pub fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .pool_idle_timeout(std::time::Duration::from_secs(3))
        .default_headers(
            [(
                reqwest::header::HeaderName::from_static("x-gaffer-request"),
                reqwest::header::HeaderValue::from_static("1"),
            )]
            .into_iter()
            .collect(),
        )
}

/// The example target repo shipped with gaffer.
pub fn sample_target() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("sample-target")
}

/// A fake GitHub holding `repo` (seeded from `seed`, or a README), and gaffer pointed at it
/// with no models, no write pacing and `repo` registered in `mode`; `extra` settings win.
pub async fn fake_with_app(
    repo: &str,
    mode: &str,
    seed: Option<&Path>,
    extra: &[(&str, &str)],
) -> (crate::support::fake_github::FakeGithub, TestApp) {
    let fake = crate::support::fake_github::FakeGithub::start().await;
    fake.create_repo(repo, seed);
    let api = fake.api_url();
    let mut vars: Vec<(&str, &str)> = vec![
        ("GITHUB_API_URL", api.as_str()),
        ("GITHUB_WRITE_GAP_MS", "0"),
    ];
    vars.extend(NO_MODELS);
    vars.extend(extra);
    let app = spawn_app_with(&vars).await;
    let body =
        serde_json::json!({"full_name": repo, "mode": mode, "clone_url": fake.clone_url(repo)});
    assert_eq!(
        app.post_json("/repos", &body).await.status(),
        201,
        "registering {repo}"
    );
    (fake, app)
}

/// `gaffer serve` as its own process in `dir` on `port`, pointed at a fake GitHub API with
/// no models and no write pacing, logging warnings only; callers add their settings.
pub fn serve_command(dir: &Path, port: u16, api: &str) -> std::process::Command {
    let mut command = std::process::Command::new(gaffer_bin());
    command
        .arg("serve")
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GAFFER_BIND", format!("127.0.0.1:{port}"))
        .env("GAFFER_DATA_DIR", dir.join("data"))
        .env("GAFFER_LOG", "warn")
        .env("GITHUB_API_URL", api)
        .env("GITHUB_WRITE_GAP_MS", "0")
        .envs(NO_MODELS.iter().copied())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null());
    command
}
