//! The local forge as a user drives it: `repos add --forge local`, `gaffer pr list|merge|close`
//! and the matching HTTP routes; on a GitHub repo merge and close are refused; errors name
//! the local forge.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{json, Value};
use tempfile::TempDir;

use crate::support::app::{assert_error, gaffer_bin, spawn_app_with, NO_MODELS};
use crate::support::git::{git, init_bare};

fn gaffer(dir: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(gaffer_bin());
    command
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        // Local-forge origins must live under GAFFER_LOCAL_ROOT (default: the data dir).
        .env("GAFFER_LOCAL_ROOT", dir);
    for (k, v) in NO_MODELS {
        command.env(k, v);
    }
    command.output().expect("gaffer runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn origin_in(dir: &Path) -> std::path::PathBuf {
    let origin = dir.join("origin.git");
    init_bare(
        &origin,
        "main",
        Some(&Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-target")),
    );
    origin
}

#[test]
fn a_local_repo_is_added_and_its_prs_listed_merged_and_closed_from_the_cli() {
    let dir = TempDir::new().unwrap();
    let origin = origin_in(dir.path());
    let url = format!("file://{}", origin.display());
    let added = gaffer(
        dir.path(),
        &[
            "repos",
            "add",
            "me/tally",
            "--mode",
            "pr",
            "--forge",
            "local",
            "--clone-url",
            &url,
        ],
    );
    assert!(added.status.success(), "{}", text(&added));
    assert!(
        text(&added).contains("forge:          local"),
        "{}",
        text(&added)
    );

    let planned = gaffer(dir.path(), &["run", "taskmaster", "me/tally"]);
    assert!(planned.status.success(), "{}", text(&planned));

    let listed = gaffer(dir.path(), &["pr", "list", "me/tally"]);
    let out = text(&listed);
    assert!(listed.status.success(), "{out}");
    assert!(out.starts_with("PR  STATE"), "{out}");
    assert!(out.contains("#1  open"), "{out}");
    assert!(out.contains("1 open PR in me/tally"), "{out}");

    let merged = gaffer(dir.path(), &["pr", "merge", "me/tally", "1"]);
    assert!(merged.status.success(), "{}", text(&merged));
    assert!(text(&merged).contains("merged PR #1 of me/tally into main"));
    let log = git(&origin, &["log", "--oneline", "main"]).unwrap();
    assert!(log.contains("Merge pull request #1"), "{log}");

    // Merging it again: refused by the local forge, which says it is the local forge.
    let again = gaffer(dir.path(), &["pr", "merge", "me/tally", "1"]);
    assert_eq!(again.status.code(), Some(4), "{}", text(&again));
    assert!(
        text(&again).contains("local forge: pull request #1 is not open"),
        "{}",
        text(&again)
    );
    assert!(!text(&again).contains("GitHub"), "{}", text(&again));

    let developed = gaffer(dir.path(), &["run", "developer", "me/tally"]);
    assert!(developed.status.success(), "{}", text(&developed));
    let closed = gaffer(dir.path(), &["pr", "close", "me/tally", "2"]);
    assert!(closed.status.success(), "{}", text(&closed));
    assert!(text(&closed).contains("closed PR #2 of me/tally without merging"));
    let listed = gaffer(
        dir.path(),
        &["--json", "pr", "list", "me/tally", "--closed"],
    );
    let pulls: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let states: Vec<(u64, bool)> = pulls
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["number"].as_u64().unwrap(), p["merged_at"].is_string()))
        .collect();
    assert_eq!(states, [(2, false), (1, true)], "{pulls:#}");
}

#[test]
fn merge_and_close_are_refused_on_a_github_repo() {
    let dir = TempDir::new().unwrap();
    assert!(
        gaffer(dir.path(), &["repos", "add", "acme/widget", "--mode", "pr"])
            .status
            .success()
    );
    for verb in ["merge", "close"] {
        let refused = gaffer(dir.path(), &["pr", verb, "acme/widget", "3"]);
        assert_eq!(refused.status.code(), Some(4), "{}", text(&refused));
        assert!(
            text(&refused).contains(&format!(
                "acme/widget is on GitHub: gaffer does not {verb} its pull requests, a human does that on GitHub"
            )),
            "{}",
            text(&refused)
        );
    }
}

#[tokio::test]
async fn the_http_routes_list_merge_and_close_local_prs() {
    let dir = TempDir::new().unwrap();
    let origin = origin_in(dir.path());
    let mut vars: Vec<(&str, &str)> = NO_MODELS.to_vec();
    vars.push(("GITHUB_API_URL", "http://127.0.0.1:9")); // never called
    let root = dir.path().display().to_string();
    vars.push(("GAFFER_LOCAL_ROOT", &root));
    let app = spawn_app_with(&vars).await;
    let body = json!({"full_name": "me/tally", "mode": "pr", "forge": "local", "clone_url": format!("file://{}", origin.display())});
    assert_eq!(app.post_json("/repos", &body).await.status(), 201);
    assert_eq!(app.post("/run/taskmaster").await.status(), 200);

    let pulls: Value = app.get("/repos/me/tally/pulls").await.json().await.unwrap();
    assert_eq!(pulls.as_array().unwrap().len(), 1, "{pulls:#}");
    assert_eq!(pulls[0]["number"], 1);

    let merged = app.post("/repos/me/tally/pulls/1/merge").await;
    assert_eq!(merged.status(), 200);
    let merged: Value = merged.json().await.unwrap();
    assert_eq!(merged["base"], "main");
    assert_eq!(merged["merge_sha"].as_str().unwrap().len(), 40);

    // The error names the forge, in the message and in the detail.
    let again = app.post("/repos/me_tally/pulls/1/merge").await;
    assert_eq!(again.status(), 409);
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["detail"]["forge"], "local", "{body}");
    assert!(
        body["error"].as_str().unwrap().starts_with("local forge: "),
        "{body}"
    );
    assert_error(app.post("/repos/me/tally/pulls/9/close").await, 404).await;
    assert_error(app.get("/repos/me/tally/pulls?state=merged").await, 400).await;
    let closed: Value = app
        .get("/repos/me/tally/pulls?state=closed")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(closed.as_array().unwrap().len(), 1);
}
