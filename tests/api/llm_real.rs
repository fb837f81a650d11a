//! The same code path users run, against a real model: SmolLM2-135M behind an
//! Ollama-compatible API, started by the tests themselves (`tests/support/model.rs` runs
//! `scripts/model-harness.sh` once per test process) unless `GAFFER_TEST_OLLAMA_URL` names
//! one. When no model can be had these tests fail, saying why; they never skip.

use std::collections::HashMap;

use gaffer::config::{Role, Settings};
use gaffer::llm::ollama::OllamaLlm;
use gaffer::llm::{ask_structured, Llm, Message};
use schemars::JsonSchema;
use serde::Deserialize;
use tempfile::TempDir;

use crate::support::app;
use crate::support::model::{self, MODEL};

fn vars(url: &str) -> Vec<(String, String)> {
    let mut v = vec![("OLLAMA_BASE_URL".to_string(), url.to_string())];
    for role in [
        "PLANNER",
        "TASKMASTER",
        "DEVELOPER",
        "REVIEWER",
        "INTEGRATOR",
    ] {
        v.push((format!("LLM_{role}_MODEL"), MODEL.into()));
        v.push((format!("LLM_{role}_NUM_CTX"), "4096".into())); // the harness caps at 8192
        v.push((format!("LLM_{role}_TEMPERATURE"), "0".into()));
    }
    v.push(("LLM_REQUEST_TIMEOUT".into(), "120".into()));
    v
}

fn llm(url: &str) -> OllamaLlm {
    let map: HashMap<String, String> = vars(url).into_iter().collect();
    OllamaLlm::new(
        Settings::from_sources(None, "test", &map).unwrap().llm,
        None,
    )
}

#[tokio::test]
async fn a_real_model_answers_through_the_streaming_path() {
    let url = model::url().await;
    let messages = vec![
        Message::system("You answer in one short sentence."),
        Message::user("What is the capital of France?"),
    ];
    let reply = llm(&url)
        .chat(Role::Reviewer, &messages, None)
        .await
        .unwrap();
    assert!(!reply.text.trim().is_empty());
    assert!(reply.usage.prompt_tokens > 0, "{:?}", reply.usage);
    assert!(reply.usage.completion_tokens > 0, "{:?}", reply.usage);
    assert_eq!(reply.usage.model, MODEL);
}

#[derive(Debug, Deserialize, JsonSchema)]
struct City {
    city: String,
    country: String,
    population_millions: f64,
}

#[tokio::test]
async fn a_real_model_fills_a_schema() {
    let url = model::url().await;
    let messages = vec![
        Message::system("You answer with JSON only."),
        Message::user("Describe Paris: its name, its country and its population in millions."),
    ];
    let (city, usages) = ask_structured::<City>(&llm(&url), Role::Taskmaster, messages, 2)
        .await
        .unwrap();
    // A 135M model may be wrong, but the schema holds it to the shape.
    assert!(
        !city.city.is_empty() && !city.country.is_empty(),
        "{city:?}"
    );
    assert!(city.population_millions.is_finite());
    assert!(!usages.is_empty());
}

#[tokio::test]
async fn calls_are_recorded_per_role_and_model() {
    let url = model::url().await;
    let dir = TempDir::new().unwrap();
    let pairs = vars(&url);
    let borrowed: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let settings = app::settings(dir.path(), &borrowed);
    let gaffer = gaffer::Gaffer::open(settings).await.unwrap();
    gaffer
        .llm
        .chat(Role::Planner, &[Message::user("Say hi.")], None)
        .await
        .unwrap();
    let stats = gaffer.store.llm_stats().await.unwrap();
    assert_eq!(stats.len(), 1);
    assert_eq!(
        (
            stats[0].role.as_str(),
            stats[0].model.as_str(),
            stats[0].calls,
            stats[0].failures
        ),
        ("planner", MODEL, 1, 0)
    );
    assert!(stats[0].prompt_tokens > 0 && stats[0].completion_tokens > 0);
}

#[tokio::test]
async fn doctor_lists_present_models_and_the_pull_for_missing_ones() {
    let url = model::url().await;
    let dir = TempDir::new().unwrap();
    let run = |extra: &[(&str, &str)]| {
        let mut command = std::process::Command::new(app::gaffer_bin());
        command
            .arg("doctor")
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap());
        for (k, v) in vars(&url) {
            command.env(k, v);
        }
        for (k, v) in extra {
            command.env(k, v);
        }
        command.output().unwrap()
    };
    let all_present = run(&[]);
    let text = String::from_utf8_lossy(&all_present.stdout).to_string();
    assert!(all_present.status.success(), "{text}");
    assert!(
        text.contains(&format!("{MODEL} is present on {url}")),
        "{text}"
    );
    assert!(text.contains("all is well"), "{text}");

    let missing = run(&[("LLM_DEVELOPER_MODEL", "qwen3-coder:latest")]);
    let text = String::from_utf8_lossy(&missing.stdout).to_string();
    assert_eq!(missing.status.code(), Some(1), "{text}");
    assert!(text.contains("FAIL model:developer"), "{text}");
    assert!(text.contains("ollama pull qwen3-coder:latest"), "{text}");
}

#[tokio::test]
async fn a_real_small_model_drives_the_developer_to_a_clean_end() {
    let url = model::url().await;
    let fake = crate::support::fake_github::FakeGithub::start().await;
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-target");
    fake.create_repo("acme/tally", Some(&sample));
    fake.commit(
        "acme/tally",
        "main",
        &[("tasks/T-0001-json.md", "---\nid: T-0001\ntitle: Add a --json flag\ntype: feature\npriority: P1\ndepends_on: []\nstatus: queued\nacceptance:\n  - tally --json FILE prints the counts as JSON\n---\nAdd a --json flag to src/app.py that prints the counts as a JSON object.\n")],
        "task",
    );
    let api = fake.api_url();
    let app = app::spawn_app_with(&[
        ("GITHUB_API_URL", api.as_str()),
        ("GITHUB_WRITE_GAP_MS", "0"),
        ("OLLAMA_BASE_URL", url.as_str()),
        ("LLM_DEVELOPER_MODEL", MODEL),
        ("LLM_DEVELOPER_NUM_CTX", "4096"),
        ("LLM_DEVELOPER_TEMPERATURE", "0"),
        ("DEV_MAX_ATTEMPTS", "1"),
        ("LLM_REQUEST_TIMEOUT", "300"),
    ])
    .await;
    let body = serde_json::json!({"full_name": "acme/tally", "mode": "pr", "clone_url": fake.clone_url("acme/tally")});
    assert_eq!(app.post_json("/repos", &body).await.status(), 201);
    let response = app.post("/run/developer").await;
    let status = response.status();
    let outcome: serde_json::Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{outcome:#}");
    let action = outcome["action"].as_str().unwrap();
    assert!(action == "opened_pr" || action == "blocked", "{outcome:#}");
    assert_eq!(
        fake.pulls("acme/tally").len(),
        1,
        "exactly one PR, whatever the model said"
    );
    eprintln!(
        "the real model's run ended as {action}: {}",
        outcome["summary"]
    );
}
