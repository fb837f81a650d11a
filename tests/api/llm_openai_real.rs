//! The OpenAI-compatible path users run, against a real server: llama-cpp-python's
//! `llama_cpp.server` with SmolLM2-135M, started once per test process by
//! `scripts/openai-harness.sh` (or `GAFFER_TEST_OPENAI_URL`). These tests fail, saying why,
//! when no server can be had.

use std::collections::HashMap;

use gaffer::config::{Role, Settings};
use gaffer::llm::models::Models;
use gaffer::llm::{ask_structured, Llm, LlmError, Message};
use schemars::JsonSchema;
use serde::Deserialize;
use tempfile::TempDir;

use crate::support::app;
use crate::support::openai::{harness, Harness, MODEL};

const KEY_VAR: &str = "GAFFER_TEST_OPENAI_KEY";

/// Every role on the real server, by settings alone.
fn vars(server: &Harness) -> Vec<(String, String)> {
    let mut v = Vec::new();
    for role in [
        "PLANNER",
        "TASKMASTER",
        "DEVELOPER",
        "REVIEWER",
        "INTEGRATOR",
    ] {
        v.push((format!("LLM_{role}_PROVIDER"), "openai".into()));
        v.push((format!("LLM_{role}_BASE_URL"), server.url.clone()));
        v.push((format!("LLM_{role}_MODEL"), MODEL.into()));
        v.push((format!("LLM_{role}_NUM_CTX"), "4096".into())); // the harness's n_ctx
        v.push((format!("LLM_{role}_TEMPERATURE"), "0".into()));
        if server.key.is_some() {
            v.push((format!("LLM_{role}_API_KEY_ENV"), KEY_VAR.into()));
        }
    }
    if let Some(key) = &server.key {
        v.push((KEY_VAR.into(), key.clone()));
    }
    v.push(("LLM_REQUEST_TIMEOUT".into(), "120".into()));
    v
}

fn models(server: &Harness, extra: &[(&str, &str)]) -> Models {
    let mut map: HashMap<String, String> = vars(server).into_iter().collect();
    for (k, v) in extra {
        map.insert(k.to_string(), v.to_string());
    }
    Models::new(
        Settings::from_sources(None, "test", &map).unwrap().llm,
        None,
    )
}

#[tokio::test]
async fn a_real_server_answers_through_the_streaming_path() {
    let server = harness().await;
    let messages = vec![
        Message::system("You answer in one short sentence."),
        Message::user("What is the capital of France?"),
    ];
    let reply = models(&server, &[])
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
async fn a_real_server_fills_a_schema() {
    let server = harness().await;
    let messages = vec![
        Message::system("You answer with JSON only."),
        Message::user("Describe Paris: its name, its country and its population in millions."),
    ];
    let (city, usages) =
        ask_structured::<City>(&models(&server, &[]), Role::Taskmaster, messages, 2)
            .await
            .unwrap();
    // A 135M model may be wrong, but the server's grammar holds it to the shape.
    assert!(
        !city.city.is_empty() && !city.country.is_empty(),
        "{city:?}"
    );
    assert!(city.population_millions.is_finite());
    assert!(!usages.is_empty());
}

#[tokio::test]
async fn a_wrong_key_is_refused_naming_the_variable() {
    let server = harness().await;
    assert!(
        server.key.is_some(),
        "this test needs a server that requires a key: the harness starts one; with GAFFER_TEST_OPENAI_URL set {KEY_VAR} too"
    );
    let err = models(&server, &[(KEY_VAR, "sk-wrong-key")])
        .chat(Role::Reviewer, &[Message::user("hi")], None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LlmError::Unauthorized { status: 401, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains(KEY_VAR) && !text.contains("sk-wrong-key"),
        "{text}"
    );
}

#[tokio::test]
async fn a_prompt_longer_than_the_servers_context_is_an_error_not_an_answer() {
    let server = harness().await;
    // gaffer believes in 32768 tokens, the server has 4096: the prompt passes gaffer's
    // fitting and the server must refuse it.
    let long = "The quick brown fox jumps over the lazy dog. ".repeat(1500);
    let err = models(&server, &[("LLM_REVIEWER_NUM_CTX", "32768")])
        .chat(Role::Reviewer, &[Message::user(long)], None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            LlmError::ContextExceeded { .. } | LlmError::ServerFailed { .. }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("context"), "{err}");
}

#[tokio::test]
async fn calls_on_a_real_server_are_recorded_per_role_and_model() {
    let server = harness().await;
    let dir = TempDir::new().unwrap();
    let pairs = vars(&server);
    let borrowed: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let gaffer = gaffer::Gaffer::open(app::settings(dir.path(), &borrowed))
        .await
        .unwrap();
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

fn run_gaffer(
    server: &Harness,
    dir: &std::path::Path,
    args: &[&str],
    extra: &[(&str, &str)],
) -> (bool, String) {
    let mut command = std::process::Command::new(app::gaffer_bin());
    command
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("HOME", dir)
        .env("GAFFER_CONFIG", dir.join("none.yaml"));
    std::fs::write(dir.join("none.yaml"), "").unwrap();
    for (k, v) in vars(server) {
        command.env(k, v);
    }
    for (k, v) in extra {
        command.env(k, v);
    }
    let output = command.output().unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test]
async fn doctor_lists_what_a_real_server_serves_and_what_is_missing() {
    let server = harness().await;
    let dir = TempDir::new().unwrap();
    let (ok, text) = run_gaffer(&server, dir.path(), &["doctor"], &[]);
    assert!(ok, "{text}");
    assert!(
        text.contains(&format!("{MODEL} is served by {}", server.url)),
        "{text}"
    );
    assert!(text.contains(&format!("serves {MODEL}")), "{text}");

    let (ok, text) = run_gaffer(
        &server,
        dir.path(),
        &["doctor"],
        &[("LLM_DEVELOPER_MODEL", "qwen3-coder:latest")],
    );
    assert!(!ok, "{text}");
    assert!(text.contains("FAIL model:developer"), "{text}");
    assert!(
        text.contains(&format!(
            "qwen3-coder:latest is not among the models {} serves ({MODEL})",
            server.url
        )),
        "{text}"
    );
    assert!(text.contains("LLM_DEVELOPER_MODEL"), "{text}");
}

#[tokio::test]
async fn the_demo_asks_the_openai_server_and_runs_without_models_it_lacks() {
    let server = harness().await;
    let dir = TempDir::new().unwrap();
    let demo = dir.path().join("demo");
    let (ok, text) = run_gaffer(
        &server,
        dir.path(),
        &["demo", "--dir", demo.to_str().unwrap()],
        &[("LLM_DEVELOPER_MODEL", "qwen3-coder:latest")],
    );
    assert!(ok, "{text}");
    assert!(
        text.contains(&format!("qwen3-coder:latest is not on {}", server.url)),
        "{text}"
    );
    assert!(
        text.contains("running the built-in bootstrap flow"),
        "{text}"
    );
}
