use crate::support::app::{assert_error, spawn_app};
use serde_json::Value;

#[tokio::test]
async fn health_reports_version_uptime_and_database() {
    let app = spawn_app().await;
    let response = app.get("/health").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert!(body["uptime_seconds"].is_u64());
    assert_eq!(body["database"]["ok"], true);
}

#[tokio::test]
async fn openapi_describes_the_repo_routes() {
    let app = spawn_app().await;
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
