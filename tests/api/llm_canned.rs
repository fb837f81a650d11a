//! The Ollama client against canned Ollama answers (wiremock): streaming, errors a user
//! can act on, structured answers with re-asks, and the prompt-size guard.

use std::collections::HashMap;
use std::time::Duration;

use gaffer::config::{Role, Settings};
use gaffer::llm::ollama::OllamaLlm;
use gaffer::llm::{ask_structured, Llm, LlmError, Message};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn llm_for(url: &str, extra: &[(&str, &str)]) -> OllamaLlm {
    let mut vars: HashMap<String, String> = HashMap::new();
    vars.insert("OLLAMA_BASE_URL".into(), url.into());
    vars.insert("LLM_REVIEWER_MODEL".into(), "tiny:1b".into());
    vars.insert("LLM_REVIEWER_NUM_CTX".into(), "4096".into());
    vars.insert("LLM_REQUEST_TIMEOUT".into(), "2".into());
    vars.insert("LLM_IDLE_TIMEOUT".into(), "1".into());
    for (k, v) in extra {
        vars.insert(k.to_string(), v.to_string());
    }
    let settings = Settings::from_sources(None, "test", &vars).unwrap();
    OllamaLlm::new(settings.llm, None)
}

use crate::support::ollama::answer;

fn hello() -> Vec<Message> {
    vec![Message::system("be brief"), Message::user("hello")]
}

#[tokio::test]
async fn a_streamed_answer_is_assembled_with_its_usage() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/chat"))
        .respond_with(answer(&["Hel", "lo!"], 3))
        .mount(&server)
        .await;
    let llm = llm_for(&server.uri(), &[]);
    let reply = llm.chat(Role::Reviewer, &hello(), None).await.unwrap();
    assert_eq!(reply.text, "Hello!");
    assert_eq!(reply.usage.prompt_tokens, 42);
    assert_eq!(reply.usage.completion_tokens, 3);
    assert_eq!(reply.usage.total_ms, 1500);

    // What was sent: the role's model, num_ctx always explicit, temperature, answer budget, keep_alive.
    let body: serde_json::Value = server.received_requests().await.unwrap()[0]
        .body_json()
        .unwrap();
    assert_eq!(body["model"], "tiny:1b");
    assert_eq!(body["options"]["num_ctx"], 4096);
    assert_eq!(body["options"]["num_predict"], 1024);
    assert!((body["options"]["temperature"].as_f64().unwrap() - 0.1).abs() < 1e-6);
    assert_eq!(body["keep_alive"], "1800s");
    assert_eq!(body["stream"], true);
}

#[tokio::test]
async fn a_missing_model_says_what_to_pull_and_where() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/chat"))
        .respond_with(
            ResponseTemplate::new(404).set_body_json(json!({"error": "model 'tiny:1b' not found"})),
        )
        .mount(&server)
        .await;
    let err = llm_for(&server.uri(), &[])
        .chat(Role::Reviewer, &hello(), None)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        LlmError::ModelNotFound {
            model: "tiny:1b".into(),
            url: server.uri()
        }
    );
    assert!(err.to_string().contains("ollama pull tiny:1b"));
}

#[tokio::test]
async fn an_unreachable_ollama_names_the_url() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let err = llm_for(&url, &[])
        .chat(Role::Reviewer, &hello(), None)
        .await
        .unwrap_err();
    assert_eq!(err, LlmError::Unreachable { url: url.clone() });
    assert!(err.to_string().contains(&url));
}

#[tokio::test]
async fn a_slow_model_times_out_naming_the_role() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/chat"))
        .respond_with(answer(&["late"], 1).set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    let err = llm_for(&server.uri(), &[])
        .chat(Role::Reviewer, &hello(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LlmError::Timeout { role: Role::Reviewer, after, .. } if after.as_secs() == 2),
        "{err:?}"
    );
    assert!(err.to_string().contains("reviewer") && err.to_string().contains("2s"));
}

#[tokio::test]
async fn empty_and_cut_off_answers_are_errors() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/chat"))
        .respond_with(answer(&["  "], 1))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/chat"))
        .respond_with(answer(&["{\"half\": "], 1024))
        .mount(&server)
        .await;
    let llm = llm_for(&server.uri(), &[]);
    assert!(matches!(
        llm.chat(Role::Reviewer, &hello(), None).await,
        Err(LlmError::Empty { .. })
    ));
    let cut = llm.chat(Role::Reviewer, &hello(), None).await.unwrap_err();
    assert!(
        matches!(cut, LlmError::CutOff { tokens: 1024, .. }),
        "{cut:?}"
    );
}

#[derive(Debug, Deserialize, JsonSchema, PartialEq)]
struct Verdict {
    approve: bool,
    reason: String,
}

#[tokio::test]
async fn structured_answers_are_re_asked_with_the_parse_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/chat"))
        .respond_with(answer(&["I think it is fine."], 5))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/chat"))
        .respond_with(answer(
            &["```json\n{\"approve\": false, \"reason\": \"no tests\"}\n```"],
            9,
        ))
        .mount(&server)
        .await;
    let llm = llm_for(&server.uri(), &[]);
    let (verdict, usages) = ask_structured::<Verdict>(&llm, Role::Reviewer, hello(), 2)
        .await
        .unwrap();
    assert_eq!(
        verdict,
        Verdict {
            approve: false,
            reason: "no tests".into()
        }
    );
    assert_eq!(usages.len(), 2);
    let requests = server.received_requests().await.unwrap();
    let first: serde_json::Value = requests[0].body_json().unwrap();
    assert_eq!(
        first["format"]["type"], "object",
        "the schema goes in `format`"
    );
    assert!(first["format"]["properties"].get("approve").is_some());
    let second: serde_json::Value = requests[1].body_json().unwrap();
    let last = second["messages"].as_array().unwrap().last().unwrap()["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        last.contains("could not be used") && last.contains("expected value"),
        "{last}"
    );
}

#[tokio::test]
async fn garbage_forever_ends_in_a_clear_error_after_bounded_attempts() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/chat"))
        .respond_with(answer(&["banana"], 1))
        .mount(&server)
        .await;
    let llm = llm_for(&server.uri(), &[]);
    let err = ask_structured::<Verdict>(&llm, Role::Reviewer, hello(), 2)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LlmError::BadAnswer { attempts: 3, .. }),
        "{err:?}"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn a_prompt_too_large_for_the_context_is_refused_before_sending() {
    let server = MockServer::start().await;
    let llm = llm_for(&server.uri(), &[]);
    let huge = vec![Message::user("x".repeat(20_000))];
    let err = llm.chat(Role::Reviewer, &huge, None).await.unwrap_err();
    assert!(
        matches!(
            err,
            LlmError::PromptTooLarge {
                available: 3072,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        server.received_requests().await.unwrap().is_empty(),
        "nothing sent"
    );
}

#[tokio::test]
async fn a_role_without_a_model_is_reported_not_called() {
    let server = MockServer::start().await;
    let llm = llm_for(&server.uri(), &[("LLM_REVIEWER_MODEL", "none")]);
    let err = llm.chat(Role::Reviewer, &hello(), None).await.unwrap_err();
    assert_eq!(
        err,
        LlmError::Disabled {
            role: Role::Reviewer
        }
    );
    assert!(err.to_string().contains("LLM_REVIEWER_MODEL=none"));
}
