use crate::support::app::{assert_error, spawn_app, spawn_app_with, NO_MODELS};
use serde_json::Value;

#[tokio::test]
async fn health_reports_version_uptime_and_checks() {
    let app = spawn_app_with(&NO_MODELS).await;
    let response = app.get("/health").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok", "{body:#}");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert!(body["uptime_seconds"].is_u64());
    assert_eq!(body["database"]["ok"], true);
    let names: Vec<&str> = body["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for name in ["database", "git", "sandbox", "model:developer"] {
        assert!(names.contains(&name), "{names:?}");
    }
}

#[tokio::test]
async fn health_is_degraded_with_the_fix_when_a_model_host_is_missing() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let app = spawn_app_with(&[("OLLAMA_BASE_URL", dead.as_str())]).await;
    let response = app.get("/health").await;
    assert_eq!(response.status(), 200, "only a database failure is a 503");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "degraded");
    let ollama = body["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == format!("ollama:{dead}"))
        .unwrap();
    assert_eq!(ollama["outcome"], "failure");
    assert!(ollama["detail"].as_str().unwrap().contains(&dead));
}

#[tokio::test]
async fn openapi_describes_the_repo_routes() {
    let app = spawn_app().await;
    assert_eq!(app.get("/repos").await.status(), 200);
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status(), 200);
    let doc: Value = response.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with('3'));
    for path in [
        "/repos",
        "/repos/{owner}/{name}",
        "/repos/{owner}/{name}/set-mode",
        "/health",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} documented");
    }
    assert!(doc["components"]["schemas"].get("Repo").is_some());
}

#[tokio::test]
async fn unknown_routes_answer_json_404() {
    let app = spawn_app().await;
    let message = assert_error(app.get("/nope").await, 404).await;
    assert!(message.contains("/nope"));
}
