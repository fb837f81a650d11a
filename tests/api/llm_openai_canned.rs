//! The OpenAI-compatible client against canned answers (wiremock): what is sent, streaming
//! and usage, structured output and its fallbacks, and every error a user must be able to
//! act on (key, model, rate limit, server failure, context length), as servers word them.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use gaffer::config::{Role, Settings};
use gaffer::llm::models::{Models, RepoLlm};
use gaffer::llm::{ask_structured, Llm, LlmError, Message};
use gaffer::registry::ModelOverrides;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::openai::streamed;

const KEY: &str = "sk-canned-secret-1234";

/// The reviewer on an OpenAI-compatible server at `url` (`/v1` added), by settings alone.
fn models_for(url: &str, extra: &[(&str, &str)]) -> Models {
    let mut vars: HashMap<String, String> = HashMap::new();
    for (k, v) in [
        ("LLM_REVIEWER_PROVIDER", "openai"),
        ("LLM_REVIEWER_BASE_URL", url),
        ("LLM_REVIEWER_MODEL", "tiny-chat"),
        ("LLM_REVIEWER_NUM_CTX", "4096"),
        ("LLM_REVIEWER_API_KEY_ENV", "CANNED_KEY"),
        ("CANNED_KEY", KEY),
        ("LLM_REQUEST_TIMEOUT", "3"),
        ("LLM_IDLE_TIMEOUT", "1"),
    ] {
        vars.insert(k.into(), v.into());
    }
    for (k, v) in extra {
        vars.insert(k.to_string(), v.to_string());
    }
    let settings = Settings::from_sources(None, "test", &vars).unwrap();
    Models::new(settings.llm, None)
}

fn hello() -> Vec<Message> {
    vec![Message::system("be brief"), Message::user("hello")]
}

async fn answering(template: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(template)
        .mount(&server)
        .await;
    server
}

async fn bodies(server: &MockServer) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.body_json().unwrap())
        .collect()
}

#[tokio::test]
async fn a_streamed_answer_is_assembled_with_its_usage_and_the_request_is_complete() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .respond_with(streamed(&["Hel", "lo!"], "stop", Some((42, 3))))
        .mount(&server)
        .await;
    let models = models_for(&server.uri(), &[]);
    let reply = models.chat(Role::Reviewer, &hello(), None).await.unwrap();
    assert_eq!(reply.text, "Hello!");
    assert_eq!(
        (reply.usage.prompt_tokens, reply.usage.completion_tokens),
        (42, 3)
    );
    assert_eq!(reply.usage.model, "tiny-chat");

    let body = &bodies(&server).await[0];
    assert_eq!(body["model"], "tiny-chat");
    assert_eq!(body["stream"], true);
    assert_eq!(
        body["max_tokens"], 1024,
        "a quarter of LLM_REVIEWER_NUM_CTX"
    );
    assert_eq!(body["stream_options"]["include_usage"], true);
    assert!((body["temperature"].as_f64().unwrap() - 0.1).abs() < 1e-6);
    assert_eq!(
        body["messages"][0],
        json!({"role": "system", "content": "be brief"})
    );
    assert_eq!(
        body["messages"][1],
        json!({"role": "user", "content": "hello"})
    );
    assert!(body.get("response_format").is_none());
}

#[tokio::test]
async fn without_reported_usage_the_counts_are_estimated() {
    let server = answering(streamed(&["a", "b", "c"], "stop", None)).await;
    let reply = models_for(&server.uri(), &[])
        .chat(Role::Reviewer, &hello(), None)
        .await
        .unwrap();
    assert_eq!(reply.text, "abc");
    assert_eq!(reply.usage.completion_tokens, 3, "one per streamed piece");
    assert!(reply.usage.prompt_tokens > 0);
}

#[tokio::test]
async fn a_repo_override_changes_the_model_on_the_same_server() {
    let server = answering(streamed(&["ok"], "stop", None)).await;
    let models = models_for(&server.uri(), &[]);
    let overrides = ModelOverrides {
        reviewer: Some("bigger-chat".into()),
        ..ModelOverrides::default()
    };
    let repo = RepoLlm {
        inner: &models,
        overrides: &overrides,
    };
    repo.chat(Role::Reviewer, &hello(), None).await.unwrap();
    assert_eq!(bodies(&server).await[0]["model"], "bigger-chat");
}

#[tokio::test]
async fn the_same_role_goes_back_to_ollama_by_settings_alone() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/chat"))
        .respond_with(crate::support::ollama::answer(&["native"], 2))
        .mount(&server)
        .await;
    let models = models_for(
        &server.uri(),
        &[
            ("LLM_REVIEWER_PROVIDER", "ollama"),
            ("LLM_REVIEWER_API_KEY_ENV", ""),
        ],
    );
    let reply = models.chat(Role::Reviewer, &hello(), None).await.unwrap();
    assert_eq!(reply.text, "native");
}

#[derive(Debug, Deserialize, JsonSchema, PartialEq)]
struct Verdict {
    approve: bool,
    reason: String,
}

#[tokio::test]
async fn structured_answers_use_json_schema_and_fall_back_to_json_mode_once_refused() {
    let server = MockServer::start().await;
    // llama-cpp-python's refusal of `json_schema`, word for word.
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(wiremock::matchers::body_partial_json(
            json!({"response_format": {"type": "json_schema"}}),
        ))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"error": {
            "message": "1 validation error:\n  {'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), 'msg': \"Input should be 'text' or 'json_object'\"}",
            "type": "internal_server_error", "param": null, "code": null}})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(streamed(
            &["{\"approve\": true, ", "\"reason\": \"tests pass\"}"],
            "stop",
            None,
        ))
        .mount(&server)
        .await;
    let models = models_for(&server.uri(), &[]);
    for _ in 0..2 {
        let (verdict, _) = ask_structured::<Verdict>(&models, Role::Reviewer, hello(), 0)
            .await
            .unwrap();
        assert!(verdict.approve);
    }
    let sent = bodies(&server).await;
    assert_eq!(sent.len(), 3, "one refusal, then JSON mode, remembered");
    assert_eq!(sent[0]["response_format"]["type"], "json_schema");
    assert!(
        sent[0]["response_format"]["json_schema"]["schema"]["properties"]
            .get("approve")
            .is_some()
    );
    for body in &sent[1..] {
        assert_eq!(body["response_format"]["type"], "json_object");
        assert!(body["response_format"]["schema"]["properties"]
            .get("reason")
            .is_some());
        let system = body["messages"][0]["content"].as_str().unwrap();
        assert!(
            system.starts_with("be brief") && system.contains("JSON schema"),
            "{system}"
        );
    }
}

#[tokio::test]
async fn a_refused_or_missing_key_names_the_variable_never_the_key() {
    let server = answering(ResponseTemplate::new(401).set_body_json(json!({"error": {
        "message": format!("Incorrect API key provided: {KEY}"), "type": "invalid_request_error",
        "code": "invalid_api_key"}})))
    .await;
    let err = models_for(&server.uri(), &[])
        .chat(Role::Reviewer, &hello(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LlmError::Unauthorized { status: 401, key_env: Some(name), .. } if name == "CANNED_KEY"),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("CANNED_KEY") && !text.contains(KEY), "{text}");
    assert!(!format!("{err:?}").contains(KEY));

    let keyless = models_for(
        &server.uri(),
        &[("LLM_REVIEWER_API_KEY_ENV", ""), ("CANNED_KEY", "")],
    )
    .chat(Role::Reviewer, &hello(), None)
    .await
    .unwrap_err()
    .to_string();
    assert!(keyless.contains("LLM_REVIEWER_API_KEY_ENV"), "{keyless}");
    let sent = server.received_requests().await.unwrap();
    assert!(sent[1].headers.get("authorization").is_none());
}

#[tokio::test]
async fn a_missing_model_and_a_wrong_base_url_are_told_apart() {
    // vLLM's answer for a model it does not serve.
    let server = answering(ResponseTemplate::new(404).set_body_json(json!({
        "object": "error", "message": "The model `tiny-chat` does not exist.",
        "type": "NotFoundError", "param": null, "code": 404})))
    .await;
    let err = models_for(&server.uri(), &[])
        .chat(Role::Reviewer, &hello(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LlmError::ModelNotServed { model, .. } if model == "tiny-chat"),
        "{err:?}"
    );
    assert!(err.to_string().contains("LLM_REVIEWER_MODEL"));

    let nothing_there = MockServer::start().await;
    let url = format!("{}/api", nothing_there.uri());
    let err = models_for(&url, &[])
        .chat(Role::Reviewer, &hello(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LlmError::NoApi { status: 404, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("/v1"), "{err}");
}

#[tokio::test]
async fn a_rate_limit_is_waited_out_as_retry_after_asks() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "1")
                .set_body_json(
                    json!({"error": {"message": "Rate limit reached", "type": "requests"}}),
                ),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(streamed(&["fine"], "stop", None))
        .mount(&server)
        .await;
    let started = Instant::now();
    let reply = models_for(&server.uri(), &[])
        .chat(Role::Reviewer, &hello(), None)
        .await
        .unwrap();
    assert_eq!(reply.text, "fine");
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "the second try came only after the second the server asked for"
    );
}

#[tokio::test]
async fn a_rate_limit_longer_than_the_call_may_wait_is_reported_with_its_wait() {
    let server = answering(
        ResponseTemplate::new(429)
            .insert_header("retry-after", "60")
            .set_body_json(json!({"error": {"message": "slow down"}})),
    )
    .await;
    let err = models_for(&server.uri(), &[])
        .chat(Role::Reviewer, &hello(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            LlmError::RateLimited {
                retry_after: Some(60),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("60s"), "{err}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_server_failure_carries_its_status_and_message() {
    let server = answering(
        ResponseTemplate::new(503).set_body_json(json!({"error": {"message": "model is loading"}})),
    )
    .await;
    let err = models_for(&server.uri(), &[])
        .chat(Role::Reviewer, &hello(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LlmError::ServerFailed { status: Some(503), message, .. } if message == "model is loading"),
        "{err:?}"
    );
}

#[tokio::test]
async fn context_length_errors_are_recognised_as_each_server_words_them() {
    let bodies = [
        // OpenAI
        json!({"error": {"message": "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.", "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}),
        // llama.cpp's llama-server
        json!({"error": {"code": 400, "message": "the request exceeds the available context size, try increasing it", "type": "exceed_context_size_error", "n_prompt_tokens": 5000, "n_ctx": 4096}}),
        // vLLM
        json!({"object": "error", "message": "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens (4000 in the messages, 1000 in the completion).", "type": "BadRequestError", "param": null, "code": 400}),
        // llama-cpp-python
        json!({"error": {"message": "Requested tokens (6031) exceed context window of 4096", "type": "internal_server_error", "param": null, "code": null}}),
    ];
    for body in bodies {
        let server = answering(ResponseTemplate::new(400).set_body_json(&body)).await;
        let err = models_for(&server.uri(), &[])
            .chat(Role::Reviewer, &hello(), None)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, LlmError::ContextExceeded { num_ctx: 4096, .. }),
            "{body}: {err:?}"
        );
        assert!(err.to_string().contains("LLM_REVIEWER_NUM_CTX"), "{err}");
    }
}

#[tokio::test]
async fn an_error_inside_the_stream_is_reported() {
    let body =
        "data: {\"error\": {\"message\": \"CUDA out of memory\", \"type\": \"server_error\"}}\n\n";
    let server =
        answering(ResponseTemplate::new(200).set_body_raw(body, "text/event-stream")).await;
    let err = models_for(&server.uri(), &[])
        .chat(Role::Reviewer, &hello(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LlmError::ServerFailed { message, .. } if message == "CUDA out of memory"),
        "{err:?}"
    );
}

#[tokio::test]
async fn cut_off_and_empty_answers_are_errors() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(streamed(&["{\"half\": "], "length", Some((10, 1024))))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(streamed(&["  "], "stop", None))
        .mount(&server)
        .await;
    let models = models_for(&server.uri(), &[]);
    let cut = models
        .chat(Role::Reviewer, &hello(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(cut, LlmError::CutOff { tokens: 1024, .. }),
        "{cut:?}"
    );
    assert!(matches!(
        models.chat(Role::Reviewer, &hello(), None).await,
        Err(LlmError::Empty { .. })
    ));
}

#[tokio::test]
async fn a_slow_server_times_out_and_an_absent_one_is_named() {
    let server =
        answering(streamed(&["late"], "stop", None).set_delay(Duration::from_secs(6))).await;
    let err = models_for(&server.uri(), &[])
        .chat(Role::Reviewer, &hello(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LlmError::Timeout { after, .. } if after.as_secs() == 3),
        "{err:?}"
    );

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let err = models_for(&url, &[])
        .chat(Role::Reviewer, &hello(), None)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        LlmError::ServerUnreachable {
            role: Role::Reviewer,
            url: format!("{url}/v1")
        }
    );
}

#[tokio::test]
async fn a_prompt_too_large_for_the_configured_context_is_refused_before_sending() {
    let server = MockServer::start().await;
    let huge = vec![Message::user("x".repeat(20_000))];
    let err = models_for(&server.uri(), &[])
        .chat(Role::Reviewer, &huge, None)
        .await
        .unwrap_err();
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
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_stream_that_stops_mid_answer_is_reported_as_stalled() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A server that starts an answer, sends one piece, then goes quiet.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = vec![0u8; 65536];
        let _ = socket.read(&mut request).await;
        let piece = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},\"finish_reason\":null}]}\n\n";
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
        let chunk = format!("{:x}\r\n{piece}\r\n", piece.len());
        socket.write_all(head.as_bytes()).await.unwrap();
        socket.write_all(chunk.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_secs(10)).await;
    });
    let err = models_for(&url, &[])
        .chat(Role::Reviewer, &hello(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LlmError::Stalled { role: Role::Reviewer, after, .. } if after.as_secs() == 1),
        "{err:?}"
    );
}
