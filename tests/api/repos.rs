use std::sync::Arc;

use serde_json::{json, Value};

use crate::support::app::{assert_error, spawn_app, spawn_app_in, spawn_app_with};

#[tokio::test]
async fn register_with_defaults() {
    let app = spawn_app().await;
    let response = app
        .post_json("/repos", &json!({"full_name": "octocat/hello-world"}))
        .await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["location"], "/repos/octocat/hello-world");
    let repo: Value = response.json().await.unwrap();
    assert_eq!(repo["full_name"], "octocat/hello-world");
    assert_eq!(repo["id"], "octocat_hello-world");
    assert_eq!(repo["mode"], "observe");
    assert_eq!(repo["default_branch"], "main");
    assert_eq!(repo["forge"], "github");
    assert_eq!(
        repo["clone_url"],
        "https://github.com/octocat/hello-world.git"
    );
}

#[tokio::test]
async fn defaults_follow_settings() {
    let app = spawn_app_with(&[
        ("DEFAULT_BRANCH", "trunk"),
        ("GITHUB_GIT_URL", "https://ghe.example.com"),
    ])
    .await;
    let repo = app.add_repo("acme/widget", "pr").await;
    assert_eq!(repo["default_branch"], "trunk");
    assert_eq!(repo["clone_url"], "https://ghe.example.com/acme/widget.git");
}

#[tokio::test]
async fn register_in_the_original_tools_shape() {
    let app = spawn_app().await;
    let body = json!({"owner": "acme", "repo": "widget", "clone_url": "file:///srv/git/widget.git",
                      "default_branch": "develop", "mode": "pr"});
    let response = app.post_json("/repos", &body).await;
    assert_eq!(response.status(), 201);
    let repo: Value = response.json().await.unwrap();
    assert_eq!(repo["full_name"], "acme/widget");
    assert_eq!(repo["clone_url"], "file:///srv/git/widget.git");
    assert_eq!(repo["default_branch"], "develop");
    assert_eq!(repo["mode"], "pr");
}

#[tokio::test]
async fn overrides_are_stored_and_validated() {
    let app = spawn_app().await;
    let body = json!({"full_name": "acme/widget", "overrides": {
        "models": {"developer": "qwen2.5-coder:7b"}, "poll_interval_active": 30,
        "webhook_secret_env": "WIDGET_WEBHOOK_SECRET"}});
    let response = app.post_json("/repos", &body).await;
    assert_eq!(response.status(), 201);
    let repo: Value = app.get("/repos/acme/widget").await.json().await.unwrap();
    assert_eq!(repo["overrides"]["models"]["developer"], "qwen2.5-coder:7b");
    assert_eq!(repo["overrides"]["poll_interval_active"], 30);
    assert_eq!(
        repo["overrides"]["webhook_secret_env"],
        "WIDGET_WEBHOOK_SECRET"
    );

    // A secret where the *name* of a variable belongs is refused, and not echoed.
    let response = app
        .patch_json(
            "/repos/acme/widget",
            &json!({"overrides": {"webhook_secret_env": "s3cr3t value!"}}),
        )
        .await;
    let message = assert_error(response, 400).await;
    assert!(message.contains("webhook_secret_env"));
    assert!(!message.contains("s3cr3t"));
    let bad_interval = app
        .patch_json(
            "/repos/acme/widget",
            &json!({"overrides": {"poll_interval_idle": 0}}),
        )
        .await;
    assert_error(bad_interval, 400).await;
}

#[tokio::test]
async fn duplicates_are_409_in_any_letter_case() {
    let app = spawn_app().await;
    app.add_repo("acme/widget", "observe").await;
    let message = assert_error(
        app.post_json("/repos", &json!({"full_name": "ACME/Widget"}))
            .await,
        409,
    )
    .await;
    assert!(message.contains("already registered"));
}

#[tokio::test]
async fn invalid_input_is_400_with_a_json_error() {
    let app = spawn_app().await;
    for body in [
        json!({"full_name": "no-slash"}),
        json!({"full_name": "bad_owner/x"}),
        json!({"full_name": "-acme/x"}),
        json!({"full_name": "acme/x.git"}),
        json!({"full_name": "acme/.."}),
        json!({"full_name": "acme/x", "mode": "yolo"}),
        json!({"full_name": "acme/x", "forge": "gitlab"}),
        json!({"full_name": "acme/x", "default_branch": "a..b"}),
        json!({"full_name": "acme/x", "clone_url": "https://user:ghp_token@github.com/acme/x.git"}),
        json!({"full_name": "acme/x", "mdoe": "pr"}),
        json!({"owner": "acme"}),
        json!({}),
    ] {
        let response = app.post_json("/repos", &body).await;
        let message = assert_error(response, 400).await;
        assert!(
            !message.contains("ghp_token"),
            "credentials never echoed: {message}"
        );
    }
    let (repos, _) = (app.get("/repos").await.json::<Value>().await.unwrap(), ());
    assert_eq!(repos["total"], 0, "nothing was stored");
}

#[tokio::test]
async fn unknown_mode_names_what_is_allowed() {
    let app = spawn_app().await;
    let message = assert_error(
        app.post_json("/repos", &json!({"full_name": "a/b", "mode": "on"}))
            .await,
        400,
    )
    .await;
    assert!(message.contains("observe, pr or disabled"), "{message}");
}

#[tokio::test]
async fn malformed_bodies() {
    let app = spawn_app().await;
    let truncated = app
        .client
        .post(app.url("/repos"))
        .header("content-type", "application/json")
        .body(r#"{"full_name": "acme/wid"#)
        .send()
        .await
        .unwrap();
    assert_error(truncated, 400).await;

    let not_json = app
        .client
        .post(app.url("/repos"))
        .header("content-type", "text/plain")
        .body("full_name=acme/widget")
        .send()
        .await
        .unwrap();
    assert_error(not_json, 415).await;

    let no_type = app
        .client
        .post(app.url("/repos"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_error(no_type, 415).await;

    let huge = json!({"full_name": "a/b", "clone_url": "x".repeat(100_000)});
    assert_error(app.post_json("/repos", &huge).await, 413).await;
}

#[tokio::test]
async fn show_by_full_name_and_by_id() {
    let app = spawn_app().await;
    app.add_repo("acme/my_repo", "pr").await;
    for path in [
        "/repos/acme/my_repo",
        "/repos/acme_my_repo",
        "/repos/ACME/My_Repo",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        let repo: Value = response.json().await.unwrap();
        assert_eq!(repo["full_name"], "acme/my_repo");
    }
    assert_error(app.get("/repos/acme/other").await, 404).await;
    assert_error(app.get("/repos/acme_other").await, 404).await;
    assert_error(app.get("/repos/noid").await, 400).await;
    assert_error(app.get("/repos/bad_owner_/x").await, 400).await;
}

#[tokio::test]
async fn patch_changes_only_what_is_given() {
    let app = spawn_app().await;
    app.add_repo("acme/widget", "observe").await;
    let response = app
        .patch_json("/repos/acme/widget", &json!({"mode": "pr"}))
        .await;
    assert_eq!(response.status(), 200);
    let repo: Value = response.json().await.unwrap();
    assert_eq!(repo["mode"], "pr");
    assert_eq!(repo["default_branch"], "main");

    let response = app
        .patch_json("/repos/acme_widget", &json!({"default_branch": "develop"}))
        .await;
    let repo: Value = response.json().await.unwrap();
    assert_eq!(repo["mode"], "pr");
    assert_eq!(repo["default_branch"], "develop");

    assert_error(
        app.patch_json("/repos/acme/widget", &json!({"mode": "sometimes"}))
            .await,
        400,
    )
    .await;
    assert_error(
        app.patch_json("/repos/acme/nothing", &json!({"mode": "pr"}))
            .await,
        404,
    )
    .await;
    let repo: Value = app.get("/repos/acme/widget").await.json().await.unwrap();
    assert_eq!(repo["mode"], "pr", "a refused patch changed nothing");
}

#[tokio::test]
async fn set_mode_in_both_path_forms() {
    let app = spawn_app().await;
    app.add_repo("acme/widget", "observe").await;
    let response = app
        .post_json("/repos/acme_widget/set-mode", &json!({"mode": "disabled"}))
        .await;
    assert_eq!(response.status(), 200);
    let response = app
        .post_json("/repos/acme/widget/set-mode", &json!({"mode": "pr"}))
        .await;
    assert_eq!(response.status(), 200);
    let repo: Value = app.get("/repos/acme/widget").await.json().await.unwrap();
    assert_eq!(repo["mode"], "pr");
    assert_error(
        app.post_json("/repos/acme_widget/set-mode", &json!({"mode": "x"}))
            .await,
        400,
    )
    .await;
    assert_error(
        app.post_json("/repos/acme_nothing/set-mode", &json!({"mode": "pr"}))
            .await,
        404,
    )
    .await;
}

#[tokio::test]
async fn a_repo_named_like_an_action_is_still_reachable() {
    let app = spawn_app().await;
    app.add_repo("acme/set-mode", "observe").await;
    assert_eq!(app.get("/repos/acme/set-mode").await.status(), 200);
}

#[tokio::test]
async fn delete_then_gone() {
    let app = spawn_app().await;
    app.add_repo("acme/widget", "pr").await;
    assert_eq!(app.delete("/repos/acme/widget").await.status(), 204);
    assert_error(app.get("/repos/acme/widget").await, 404).await;
    assert_error(app.delete("/repos/acme/widget").await, 404).await;
}

#[tokio::test]
async fn list_carries_per_mode_counts() {
    let app = spawn_app().await;
    app.add_repo("acme/a", "observe").await;
    app.add_repo("acme/b", "pr").await;
    app.add_repo("acme/c", "pr").await;
    app.add_repo("other/d", "disabled").await;
    let body: Value = app.get("/repos").await.json().await.unwrap();
    assert_eq!(body["total"], 4);
    assert_eq!(
        body["counts"],
        json!({"observe": 1, "pr": 2, "disabled": 1})
    );
    let names: Vec<&str> = body["repos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["full_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["acme/a", "acme/b", "acme/c", "other/d"]);
}

#[tokio::test]
async fn mutations_need_the_api_token_when_one_is_set() {
    let app = spawn_app_with(&[("GAFFER_API_TOKEN", "let-me-in")]).await;
    let body = json!({"full_name": "acme/widget"});
    assert_error(app.post_json("/repos", &body).await, 401).await;
    let wrong = app
        .client
        .post(app.url("/repos"))
        .bearer_auth("let-me-out")
        .json(&body)
        .send()
        .await
        .unwrap();
    let message = assert_error(wrong, 401).await;
    assert!(!message.contains("let-me-in"));
    let right = app
        .client
        .post(app.url("/repos"))
        .bearer_auth("let-me-in")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 201);

    // Reads stay open; every mutation is guarded.
    assert_eq!(app.get("/repos/acme/widget").await.status(), 200);
    assert_error(
        app.patch_json("/repos/acme/widget", &json!({"mode": "pr"}))
            .await,
        401,
    )
    .await;
    assert_error(
        app.post_json("/repos/acme_widget/set-mode", &json!({"mode": "pr"}))
            .await,
        401,
    )
    .await;
    assert_error(app.delete("/repos/acme/widget").await, 401).await;
    let repo: Value = app.get("/repos/acme/widget").await.json().await.unwrap();
    assert_eq!(repo["mode"], "observe");
}

#[tokio::test]
async fn the_registry_survives_a_restart() {
    let app = spawn_app().await;
    app.add_repo("acme/widget", "pr").await;
    app.patch_json("/repos/acme/widget", &json!({"default_branch": "develop"}))
        .await;
    let data_dir = app.stop().await;

    let app = spawn_app_in(Arc::clone(&data_dir), &[]).await;
    let repo: Value = app.get("/repos/acme/widget").await.json().await.unwrap();
    assert_eq!(repo["mode"], "pr");
    assert_eq!(repo["default_branch"], "develop");
}

#[tokio::test]
async fn gh_owner_and_gh_repo_register_on_first_start_only() {
    let seed = [("GH_OWNER", "acme"), ("GH_REPO", "widget")];
    let app = spawn_app_with(&seed).await;
    let repo: Value = app.get("/repos/acme/widget").await.json().await.unwrap();
    assert_eq!(repo["mode"], "observe");
    assert_eq!(app.delete("/repos/acme/widget").await.status(), 204);
    let data_dir = app.stop().await;

    // The user removed it; a restart with the same environment must not bring it back.
    let app = spawn_app_in(data_dir, &seed).await;
    assert_error(app.get("/repos/acme/widget").await, 404).await;
}
