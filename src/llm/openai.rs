//! [`Llm`] on any OpenAI-compatible `/v1/chat/completions` server (llama-server, vLLM,
//! LM Studio, LocalAI, LiteLLM, Ollama's `/v1`, hosted APIs). It keeps every promise of the
//! Ollama path: answers are streamed under the idle and total timeouts, a quarter of the
//! configured context is the answer budget (`max_tokens`), `finish_reason: "length"` is a
//! cut-off, the prompt is fitted to `LLM_<ROLE>_NUM_CTX` before anything is sent (these
//! servers do not report their context), structured answers use `response_format`, and
//! every call is recorded.
//!
//! A small client on our reqwest with `eventsource-stream` rather than `async-openai`:
//! its streaming path drops the HTTP status and headers of a refused request (no 401/404/429
//! distinction, no `retry-after`), re-sends the POST on a broken stream, and cannot parse the
//! error bodies llama.cpp and vLLM send.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use reqwest::header::{HeaderMap, CONTENT_TYPE};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{json, Value};

use super::prompt::{estimate_messages, estimate_tokens};
use super::{Llm, LlmError, LlmResult, Message, Reply, Role, Speaker, Usage};
use crate::config::{LlmSettings, RoleLlm};
use crate::store::Store;

/// Waits after a 429 (or a 503 with `retry-after`) before the call gives up.
const RATE_LIMIT_RETRIES: u32 = 3;
/// The first wait after a 429 that names none (doubled each time).
const RATE_LIMIT_WAIT: Duration = Duration::from_secs(2);

/// How a server takes a structured-answer request; servers that refuse one get the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// `response_format: {type: json_schema}` (OpenAI, vLLM, llama-server, LM Studio, Ollama).
    JsonSchema,
    /// `response_format: {type: json_object, schema}` (JSON mode; llama-cpp-python uses
    /// the schema), with the schema in the system message.
    JsonObject,
    /// No `response_format`: the schema in the system message, and the re-ask loop.
    Instructions,
}

/// What a server accepts, learned from its refusals and remembered per base URL and model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Dialect {
    format: Format,
    /// `stream_options: {include_usage: true}` for token counts at the end of a stream.
    stream_options: bool,
    /// `max_completion_tokens` instead of `max_tokens` (OpenAI's reasoning models).
    max_completion_tokens: bool,
}

impl Default for Dialect {
    fn default() -> Self {
        Dialect {
            format: Format::JsonSchema,
            stream_options: true,
            max_completion_tokens: false,
        }
    }
}

impl Dialect {
    /// The dialect to try after a refusal that names one of our parameters, if any.
    fn after_refusal(self, message: &str, asked_schema: bool) -> Option<Dialect> {
        let lower = message.to_ascii_lowercase();
        let mut next = self;
        if lower.contains("stream_options") && self.stream_options {
            next.stream_options = false;
        } else if lower.contains("max_completion_tokens") && !self.max_completion_tokens {
            next.max_completion_tokens = true;
        } else if asked_schema
            && (lower.contains("response_format")
                || lower.contains("json_schema")
                || lower.contains("json_object"))
        {
            next.format = match self.format {
                Format::JsonSchema => Format::JsonObject,
                Format::JsonObject | Format::Instructions => Format::Instructions,
            };
        }
        (next != self).then_some(next)
    }
}

/// OpenAI-compatible servers, per-role settings (base URL, key, context).
#[derive(Debug)]
pub struct OpenAiLlm {
    settings: LlmSettings,
    http: reqwest::Client,
    dialects: Mutex<HashMap<String, Dialect>>,
    store: Option<Store>,
}

impl OpenAiLlm {
    /// `store`: where calls are recorded (none in unit tests).
    pub fn new(settings: LlmSettings, store: Option<Store>) -> OpenAiLlm {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .expect("a plain reqwest client builds");
        OpenAiLlm {
            settings,
            http,
            dialects: Mutex::new(HashMap::new()),
            store,
        }
    }

    fn dialect(&self, key: &str) -> Dialect {
        self.dialects
            .lock()
            .expect("dialect map lock")
            .get(key)
            .copied()
            .unwrap_or_default()
    }

    fn remember(&self, key: &str, dialect: Dialect) {
        self.dialects
            .lock()
            .expect("dialect map lock")
            .insert(key.to_string(), dialect);
    }

    /// The model ids the role's server lists (`GET /models`).
    pub async fn list_models(&self, role: Role) -> LlmResult<Vec<String>> {
        let config = self.settings.role(role);
        let url = &config.base_url;
        let mut request = self
            .http
            .get(format!("{url}/models"))
            .timeout(Duration::from_secs(10));
        if let Some(key) = &config.api_key {
            request = request.bearer_auth(key.expose_secret());
        }
        let response = request
            .send()
            .await
            .map_err(|e| transport_error(e, role, url))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            let message = redact(&error_message(&text), config.api_key.as_ref());
            return Err(refusal(role, "", config, status, message, "/models"));
        }
        #[derive(Deserialize)]
        struct Listed {
            id: String,
        }
        #[derive(Deserialize)]
        struct List {
            data: Vec<Listed>,
        }
        serde_json::from_str::<List>(&text)
            .map(|list| list.data.into_iter().map(|m| m.id).collect())
            .map_err(|e| LlmError::ServerFailed {
                url: url.clone(),
                status: None,
                message: format!("its /models answer is not a model list: {e}"),
            })
    }

    /// A chat call with the role's settings but a given model (a repo's override).
    pub async fn chat_as(
        &self,
        role: Role,
        model: Option<String>,
        messages: &[Message],
        schema: Option<&Value>,
    ) -> LlmResult<Reply> {
        let config = self.settings.role(role).clone();
        let model = model.ok_or(LlmError::Disabled { role })?;
        let answer_budget = config.answer_budget();
        let schema_tokens = schema.map_or(0, |s| estimate_tokens(&s.to_string()) + 40);
        let needed = estimate_messages(messages) + schema_tokens;
        let available = self.prompt_budget(role);
        if needed > available {
            return Err(LlmError::PromptTooLarge {
                role,
                needed,
                available,
            });
        }
        let limit = self.settings.request_timeout;
        let call = Call {
            role,
            model: &model,
            config: &config,
            messages,
            schema,
            answer_budget,
        };
        let result = match tokio::time::timeout(limit, self.call(&call)).await {
            Ok(result) => result,
            Err(_) => Err(LlmError::Timeout {
                role,
                model: model.clone(),
                after: limit,
            }),
        };
        match &result {
            Ok(reply) => {
                tracing::info!(%role, model = %model, url = %config.base_url, prompt_tokens = reply.usage.prompt_tokens,
                    completion_tokens = reply.usage.completion_tokens, total_ms = reply.usage.total_ms, "model answered");
                crate::llm::record_call(
                    self.store.as_ref(),
                    role,
                    &model,
                    Some(&reply.usage),
                    None,
                )
                .await;
            }
            Err(e) => {
                tracing::warn!(%role, model = %model, error = %e, "model call failed");
                crate::llm::record_call(self.store.as_ref(), role, &model, None, Some(e)).await;
            }
        }
        result
    }

    /// Sends the request, waiting out rate limits and adapting to what the server refuses,
    /// then reads the answer.
    async fn call(&self, call: &Call<'_>) -> LlmResult<Reply> {
        let started = Instant::now();
        let config = call.config;
        let url = &config.base_url;
        // What a server accepts can differ per model (a proxy in front of several backends).
        let dialect_key = format!("{url} {}", call.model);
        let mut dialect = self.dialect(&dialect_key);
        let mut waits = 0;
        loop {
            let mut request = self
                .http
                .post(format!("{url}/chat/completions"))
                .json(&call.body(dialect));
            if let Some(key) = &config.api_key {
                request = request.bearer_auth(key.expose_secret());
            }
            let response = request
                .send()
                .await
                .map_err(|e| transport_error(e, call.role, url))?;
            let status = response.status();
            if status.is_success() {
                return self.read_answer(call, response, started).await;
            }
            let retry_after = retry_after(response.headers());
            let message = redact(
                &error_message(&response.text().await.unwrap_or_default()),
                config.api_key.as_ref(),
            );
            let rate_limited = status == StatusCode::TOO_MANY_REQUESTS
                || (status == StatusCode::SERVICE_UNAVAILABLE && retry_after.is_some());
            if rate_limited {
                let wait = retry_after.unwrap_or(RATE_LIMIT_WAIT * 2u32.pow(waits));
                let left = self
                    .settings
                    .request_timeout
                    .saturating_sub(started.elapsed());
                if waits < RATE_LIMIT_RETRIES && wait < left {
                    tracing::info!(role = %call.role, url = %url, wait_ms = wait.as_millis() as u64, "rate-limited by the model server, waiting as it asks");
                    tokio::time::sleep(wait).await;
                    waits += 1;
                    continue;
                }
                return Err(LlmError::RateLimited {
                    role: call.role,
                    url: url.clone(),
                    retry_after: retry_after.map(|d| d.as_secs_f64().ceil() as u64),
                });
            }
            if !is_context_error(&message) && status != StatusCode::UNAUTHORIZED {
                if let Some(next) = dialect.after_refusal(&message, call.schema.is_some()) {
                    tracing::info!(role = %call.role, url = %url, ?next, error = %message, "the model server refused a parameter; asking again without it");
                    dialect = next;
                    self.remember(&dialect_key, dialect);
                    continue;
                }
            }
            return Err(refusal(
                call.role,
                call.model,
                config,
                status,
                message,
                "/chat/completions",
            ));
        }
    }

    async fn read_answer(
        &self,
        call: &Call<'_>,
        response: reqwest::Response,
        started: Instant,
    ) -> LlmResult<Reply> {
        let url = &call.config.base_url;
        let key = call.config.api_key.as_ref();
        let streamed = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let mut answer = Answer::default();
        if streamed {
            let idle = self.settings.idle_timeout;
            let mut events = response.bytes_stream().eventsource();
            loop {
                let event = match tokio::time::timeout(idle, events.next()).await {
                    Err(_) => {
                        return Err(LlmError::Stalled {
                            role: call.role,
                            model: call.model.to_string(),
                            after: idle,
                        })
                    }
                    Ok(None) => break,
                    Ok(Some(Err(e))) => {
                        return Err(LlmError::ServerFailed {
                            url: url.clone(),
                            status: None,
                            message: format!("the answer stream broke off: {e}"),
                        })
                    }
                    Ok(Some(Ok(event))) => event,
                };
                let data = event.data.trim();
                if data == "[DONE]" {
                    break;
                }
                if data.is_empty() {
                    continue;
                }
                let chunk: Chunk =
                    serde_json::from_str(data).map_err(|e| LlmError::ServerFailed {
                        url: url.clone(),
                        status: None,
                        message: format!("a piece of the answer stream is not a chunk: {e}"),
                    })?;
                answer.take(chunk, call, key)?;
            }
        } else {
            // A server that ignores `stream: true` and sends the whole answer at once.
            let text = response.text().await.map_err(|e| LlmError::ServerFailed {
                url: url.clone(),
                status: None,
                message: format!("the answer broke off: {e}"),
            })?;
            let whole: Chunk = serde_json::from_str(&text).map_err(|e| LlmError::ServerFailed {
                url: url.clone(),
                status: None,
                message: format!("the answer is not a chat completion: {e}"),
            })?;
            answer.take(whole, call, key)?;
        }
        answer.finish(call, started)
    }
}

#[async_trait]
impl Llm for OpenAiLlm {
    fn model(&self, role: Role) -> Option<String> {
        self.settings.role(role).model.clone()
    }

    fn prompt_budget(&self, role: Role) -> u64 {
        self.settings.role(role).prompt_budget()
    }

    async fn chat(
        &self,
        role: Role,
        messages: &[Message],
        schema: Option<&Value>,
    ) -> LlmResult<Reply> {
        self.chat_as(role, self.model(role), messages, schema).await
    }
}

/// One chat call's fixed parts.
struct Call<'a> {
    role: Role,
    model: &'a str,
    config: &'a RoleLlm,
    messages: &'a [Message],
    schema: Option<&'a Value>,
    answer_budget: u64,
}

impl Call<'_> {
    /// The request body in a dialect.
    fn body(&self, dialect: Dialect) -> Value {
        let mut messages: Vec<Value> = self
            .messages
            .iter()
            .map(|m| {
                let role = match m.speaker {
                    Speaker::System => "system",
                    Speaker::User => "user",
                    Speaker::Assistant => "assistant",
                    // The OpenAI provider offers no tools, so no tool results are sent;
                    // should one be, it is the user's turn.
                    Speaker::Tool => "user",
                };
                json!({"role": role, "content": m.content})
            })
            .collect();
        if let Some(schema) = self.schema.filter(|_| dialect.format != Format::JsonSchema) {
            // JSON mode and plain servers only see the schema if the prompt carries it
            // (OpenAI's JSON mode also requires the word JSON in the messages).
            let instruction = format!(
                "Answer with one JSON object, and nothing else, that matches this JSON schema:\n{schema}"
            );
            match messages.first_mut() {
                Some(first) if first["role"] == "system" => {
                    let content = first["content"].as_str().unwrap_or_default();
                    first["content"] = Value::String(format!("{content}\n\n{instruction}"));
                }
                _ => messages.insert(0, json!({"role": "system", "content": instruction})),
            }
        }
        let mut body = json!({
            "model": self.model,
            "messages": messages,
            "stream": true,
            "temperature": self.config.temperature,
        });
        let budget_field = if dialect.max_completion_tokens {
            "max_completion_tokens"
        } else {
            "max_tokens"
        };
        body[budget_field] = json!(self.answer_budget);
        if dialect.stream_options {
            body["stream_options"] = json!({"include_usage": true});
        }
        match (self.schema, dialect.format) {
            (Some(schema), Format::JsonSchema) => {
                body["response_format"] = json!({
                    "type": "json_schema",
                    "json_schema": {"name": "answer", "schema": schema},
                });
            }
            (Some(schema), Format::JsonObject) => {
                body["response_format"] = json!({"type": "json_object", "schema": schema});
            }
            _ => {}
        }
        body
    }
}

/// One streamed chunk, or a whole (non-streamed) completion; lenient about what servers
/// leave out or add.
#[derive(Debug, Default, Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<WireUsage>,
    error: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
struct Choice {
    #[serde(default)]
    delta: Option<Content>,
    /// A non-streamed completion's message.
    #[serde(default)]
    message: Option<Content>,
    finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Content {
    content: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

/// The answer as it comes in.
#[derive(Debug, Default)]
struct Answer {
    text: String,
    pieces: u64,
    finish_reason: Option<String>,
    usage: Option<WireUsage>,
}

impl Answer {
    fn take(&mut self, chunk: Chunk, call: &Call<'_>, key: Option<&SecretString>) -> LlmResult<()> {
        if let Some(error) = chunk.error {
            let message = redact(&error_text(&error), key);
            return Err(if is_context_error(&message) {
                context_exceeded(call.role, call.model, call.config, message)
            } else {
                LlmError::ServerFailed {
                    url: call.config.base_url.clone(),
                    status: None,
                    message,
                }
            });
        }
        if chunk.usage.is_some() {
            self.usage = chunk.usage;
        }
        for choice in chunk.choices {
            let content = choice
                .delta
                .and_then(|d| d.content)
                .or_else(|| choice.message.and_then(|m| m.content));
            if let Some(content) = content.filter(|c| !c.is_empty()) {
                self.text.push_str(&content);
                self.pieces += 1;
            }
            if choice.finish_reason.is_some() {
                self.finish_reason = choice.finish_reason;
            }
        }
        Ok(())
    }

    fn finish(self, call: &Call<'_>, started: Instant) -> LlmResult<Reply> {
        let model = call.model.to_string();
        let usage = Usage {
            model: model.clone(),
            prompt_tokens: self
                .usage
                .map_or_else(|| estimate_messages(call.messages), |u| u.prompt_tokens),
            completion_tokens: self.usage.map_or(self.pieces, |u| u.completion_tokens),
            total_ms: started.elapsed().as_millis() as u64,
            ..Usage::default()
        };
        let cut_off = LlmError::CutOff {
            role: call.role,
            model: model.clone(),
            tokens: usage.completion_tokens,
            partial: self.text.clone(),
        };
        match self.finish_reason.as_deref() {
            Some("length") => return Err(cut_off),
            Some("content_filter") => {
                return Err(LlmError::ServerFailed {
                    url: call.config.base_url.clone(),
                    status: None,
                    message: "the answer was withheld by the server's content filter".into(),
                })
            }
            None if self.text.trim().is_empty() => {
                return Err(LlmError::ServerFailed {
                    url: call.config.base_url.clone(),
                    status: None,
                    message: "the answer stream ended before any answer and without a finish_reason; the server's log says why (often a prompt longer than its context)".into(),
                })
            }
            None => return Err(cut_off),
            Some(_) => {}
        }
        if usage.completion_tokens >= call.answer_budget {
            return Err(cut_off);
        }
        if self.text.trim().is_empty() {
            return Err(LlmError::Empty {
                role: call.role,
                model,
            });
        }
        Ok(Reply {
            text: self.text,
            usage,
            tool_calls: Vec::new(),
        })
    }
}

fn transport_error(err: reqwest::Error, role: Role, url: &str) -> LlmError {
    if err.is_connect() || err.is_timeout() {
        LlmError::ServerUnreachable {
            role,
            url: url.to_string(),
        }
    } else {
        LlmError::ServerFailed {
            url: url.to_string(),
            status: None,
            message: err.without_url().to_string(),
        }
    }
}

/// A refused request as an error a user can act on.
fn refusal(
    role: Role,
    model: &str,
    config: &RoleLlm,
    status: StatusCode,
    message: String,
    path: &str,
) -> LlmError {
    let url = config.base_url.clone();
    let lower = message.to_ascii_lowercase();
    let about_model = lower.contains("model")
        && (lower.contains("not found")
            || lower.contains("does not exist")
            || lower.contains("not exist")
            || lower.contains("model_not_found")
            || lower.contains("no such")
            || lower.contains("unknown"));
    match status.as_u16() {
        401 | 403 => LlmError::Unauthorized {
            role,
            url,
            status: status.as_u16(),
            key_env: config.api_key_env.clone(),
        },
        _ if is_context_error(&message) => context_exceeded(role, model, config, message),
        404 if !model.is_empty() && lower.contains("model") => LlmError::ModelNotServed {
            role,
            model: model.to_string(),
            url,
        },
        404 => LlmError::NoApi {
            role,
            url,
            status: 404,
            path: path.to_string(),
        },
        400 | 422 if about_model && !model.is_empty() => LlmError::ModelNotServed {
            role,
            model: model.to_string(),
            url,
        },
        405 => LlmError::NoApi {
            role,
            url,
            status: 405,
            path: path.to_string(),
        },
        code => LlmError::ServerFailed {
            url,
            status: Some(code),
            message,
        },
    }
}

fn context_exceeded(role: Role, model: &str, config: &RoleLlm, message: String) -> LlmError {
    LlmError::ContextExceeded {
        role,
        model: model.to_string(),
        url: config.base_url.clone(),
        num_ctx: config.num_ctx,
        message,
    }
}

/// Whether a server's error says the prompt is longer than its context. Servers word it
/// differently: OpenAI (`context_length_exceeded`, "maximum context length"), vLLM ("This
/// model's maximum context length"), llama-server ("exceeds the available context size",
/// `exceed_context_size_error`), llama-cpp-python ("exceed context window"), LM Studio and
/// others ("context length", "context window", "prompt is too long").
pub fn is_context_error(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    [
        "context_length_exceeded",
        "maximum context length",
        "exceeds the available context size",
        "exceed_context_size",
        "exceed context window",
        "exceeds the context window",
        "context length exceeded",
        "context window exceeded",
        "prompt is too long",
        "too many tokens",
    ]
    .iter()
    .any(|phrase| lower.contains(phrase))
}

/// The human part of an error body: `error.message`, `error`, `message` or `detail`, or the
/// start of the raw text.
fn error_message(body: &str) -> String {
    match serde_json::from_str::<Value>(body) {
        Ok(value) => error_text(&value),
        Err(_) => clip(body.trim()),
    }
}

fn error_text(value: &Value) -> String {
    let found = value
        .get("error")
        .map(|e| match e {
            Value::Object(_) => e
                .get("message")
                .map(error_text)
                .unwrap_or_else(|| e.to_string()),
            other => error_text(other),
        })
        .or_else(|| value.get("message").map(error_text))
        .or_else(|| value.get("detail").map(error_text));
    match (found, value) {
        (Some(text), _) => text,
        (None, Value::String(s)) => clip(s),
        (None, other) => clip(&other.to_string()),
    }
}

fn clip(text: &str) -> String {
    let mut end = text.len().min(500);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// Never lets a server's echo of the key reach an error, a log line or the database.
fn redact(text: &str, key: Option<&SecretString>) -> String {
    match key.map(|k| k.expose_secret()).filter(|k| k.len() >= 4) {
        Some(key) => text.replace(key, "<redacted>"),
        None => text.to_string(),
    }
}

/// `retry-after-ms` (OpenAI) or `retry-after` in seconds.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let number = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|n| n.is_finite() && *n >= 0.0)
    };
    number("retry-after-ms")
        .map(|ms| Duration::from_secs_f64(ms / 1000.0))
        .or_else(|| number("retry-after").map(Duration::from_secs_f64))
}

/// Whether `wanted` is among the ids a server lists: exactly, ignoring case, or with
/// Ollama's `:latest` default tag (Ollama's `/v1/models` lists full tags).
pub fn model_listed(served: &[String], wanted: &str) -> bool {
    let wanted = wanted.to_ascii_lowercase();
    served.iter().any(|s| {
        let s = s.to_ascii_lowercase();
        s == wanted || s == format!("{wanted}:latest")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_common_context_length_phrasings_are_recognised() {
        for message in [
            "This model's maximum context length is 4096 tokens. However, you requested 6036 tokens",
            "the request exceeds the available context size, try increasing it",
            "Requested tokens (6031) exceed context window of 4096",
            "Error code: context_length_exceeded",
        ] {
            assert!(is_context_error(message), "{message}");
        }
        assert!(!is_context_error("model 'x' not found"));
    }

    #[test]
    fn error_bodies_of_several_servers_give_their_message() {
        assert_eq!(
            error_message(
                r#"{"error":{"code":400,"message":"too big","type":"exceed_context_size_error"}}"#
            ),
            "too big"
        );
        assert_eq!(
            error_message(
                r#"{"object":"error","message":"The model `x` does not exist.","code":404}"#
            ),
            "The model `x` does not exist."
        );
        assert_eq!(
            error_message(r#"{"detail":"Invalid API key"}"#),
            "Invalid API key"
        );
        assert_eq!(
            error_message(r#"{"error":"model not loaded"}"#),
            "model not loaded"
        );
        assert_eq!(error_message("Bad Gateway"), "Bad Gateway");
    }

    #[test]
    fn refusals_of_our_parameters_step_down_the_dialect() {
        let start = Dialect::default();
        let json_mode = start
            .after_refusal(
                "Input should be 'text' or 'json_object' (response_format)",
                true,
            )
            .unwrap();
        assert_eq!(json_mode.format, Format::JsonObject);
        assert_eq!(
            json_mode
                .after_refusal("response_format unsupported", true)
                .unwrap()
                .format,
            Format::Instructions
        );
        assert!(start.after_refusal("response_format", false).is_none());
        assert!(
            !start
                .after_refusal("unknown field stream_options", false)
                .unwrap()
                .stream_options
        );
        assert!(
            start
                .after_refusal(
                    "Unsupported parameter: 'max_tokens'. Use 'max_completion_tokens' instead.",
                    false
                )
                .unwrap()
                .max_completion_tokens
        );
        assert!(start.after_refusal("something else", true).is_none());
    }

    #[test]
    fn keys_echoed_by_a_server_are_redacted() {
        let key = SecretString::from("sk-abcdef".to_string());
        assert_eq!(
            redact("bad key sk-abcdef given", Some(&key)),
            "bad key <redacted> given"
        );
    }

    #[test]
    fn listed_models_match_ignoring_case_and_the_latest_tag() {
        let served = vec!["Qwen3:latest".to_string(), "gpt-4o".to_string()];
        assert!(model_listed(&served, "qwen3"));
        assert!(model_listed(&served, "GPT-4o"));
        assert!(!model_listed(&served, "gpt-4"));
    }
}
