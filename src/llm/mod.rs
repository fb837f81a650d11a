//! Local models: the [`Llm`] trait every role thinks through, its errors, and structured
//! answers (a JSON schema in, a typed value out, re-asking with the parse error quoted).
//! [`ollama::OllamaLlm`] is the implementation on Ollama's native API, [`openai::OpenAiLlm`]
//! the one on OpenAI-compatible servers; [`models::Models`] sends each role to the one its
//! settings name. Prompts are built and fitted to the context window by [`prompt`].

pub mod models;
pub mod ollama;
pub mod openai;
pub mod prompt;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

pub use crate::config::Role;
use crate::error::{AppError, ErrorKind};

/// Who says a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Speaker {
    System,
    User,
    Assistant,
    /// The result of a native tool call, answering the assistant message before it.
    Tool,
}

/// A tool offered to a model that calls tools natively: a name, what it is for, and the
/// JSON schema of its arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub parameters: Value,
}

/// A native tool call a model made: the tool's name and its arguments as JSON text (kept as
/// text so messages stay comparable; the agent parses and validates it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToolCall {
    pub name: String,
    pub arguments: String,
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    pub speaker: Speaker,
    pub content: String,
    /// The native tool calls of an assistant message (sent back so the model sees them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
}

impl Message {
    pub fn system(content: impl Into<String>) -> Message {
        Message {
            speaker: Speaker::System,
            content: content.into(),
            tool_calls: Vec::new(),
        }
    }

    pub fn user(content: impl Into<String>) -> Message {
        Message {
            speaker: Speaker::User,
            content: content.into(),
            tool_calls: Vec::new(),
        }
    }

    pub fn assistant(content: impl Into<String>) -> Message {
        Message {
            speaker: Speaker::Assistant,
            content: content.into(),
            tool_calls: Vec::new(),
        }
    }

    /// An assistant message that made native tool calls.
    pub fn assistant_calls(content: impl Into<String>, tool_calls: Vec<ToolCall>) -> Message {
        Message {
            speaker: Speaker::Assistant,
            content: content.into(),
            tool_calls,
        }
    }

    /// A tool's result, for the native tool-calling protocol.
    pub fn tool(content: impl Into<String>) -> Message {
        Message {
            speaker: Speaker::Tool,
            content: content.into(),
            tool_calls: Vec::new(),
        }
    }
}

/// What a call cost, as the server reports it (OpenAI-style servers that report no usage:
/// gaffer's estimate of the prompt and the count of streamed pieces).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub model: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_ms: u64,
    pub load_ms: u64,
    pub prompt_eval_ms: u64,
    pub eval_ms: u64,
}

/// A model's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub text: String,
    pub usage: Usage,
    /// Native tool calls (only from [`Llm::chat_with_tools`]).
    pub tool_calls: Vec<ToolCall>,
}

/// Why a model call failed, with what a user needs to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    #[error("the {role} role has no model (LLM_{}_MODEL=none)", .role.as_str().to_ascii_uppercase())]
    Disabled { role: Role },
    #[error("cannot reach Ollama at {url}: connection refused or no answer (is `ollama serve` running there?)")]
    Unreachable { url: String },
    #[error("model {model} not found on {url}: run `ollama pull {model}` there")]
    ModelNotFound { model: String, url: String },
    #[error("the {role} model ({model}) did not answer within {}s", .after.as_secs())]
    Timeout {
        role: Role,
        model: String,
        after: Duration,
    },
    #[error("the {role} model ({model}) stopped sending for {}s mid-answer", .after.as_secs())]
    Stalled {
        role: Role,
        model: String,
        after: Duration,
    },
    #[error("the {role} model ({model}) gave an empty answer")]
    Empty { role: Role, model: String },
    #[error(
        "the {role} model ({model}) was cut off after {tokens} tokens: its answer is incomplete"
    )]
    CutOff {
        role: Role,
        model: String,
        tokens: u64,
        /// What the model had written when it was cut off (the agent salvages complete
        /// actions from it); never shown in the message.
        partial: String,
    },
    #[error("the prompt for the {role} role needs about {needed} tokens but only {available} fit in its context (LLM_{}_NUM_CTX); refusing to let the model server truncate it", .role.as_str().to_ascii_uppercase())]
    PromptTooLarge {
        role: Role,
        needed: u64,
        available: u64,
    },
    #[error("the {role} model ({model}) gave no usable answer after {attempts} attempts: {error}")]
    BadAnswer {
        role: Role,
        model: String,
        attempts: u32,
        error: String,
    },
    #[error("Ollama at {url} failed: {message}")]
    Other { url: String, message: String },
    #[error("cannot reach the model server at {url}: connection refused or no answer (is it running there? check LLM_{}_BASE_URL)", .role.as_str().to_ascii_uppercase())]
    ServerUnreachable { role: Role, url: String },
    #[error("model {model} is not served at {url}: load it in that server, or set LLM_{}_MODEL to one it serves (`gaffer doctor` lists them)", .role.as_str().to_ascii_uppercase())]
    ModelNotServed {
        role: Role,
        model: String,
        url: String,
    },
    #[error("no OpenAI-compatible API at {url} ({status} for {path}): check LLM_{}_BASE_URL (most servers want it to end in /v1)", .role.as_str().to_ascii_uppercase())]
    NoApi {
        role: Role,
        url: String,
        status: u16,
        path: String,
    },
    #[error("the model server at {url} refused the {role} role's request ({status}): {}", match .key_env {
        Some(name) => format!("check the API key in {name} (named by LLM_{}_API_KEY_ENV)", .role.as_str().to_ascii_uppercase()),
        None => format!("it wants an API key: put it in a variable and set LLM_{}_API_KEY_ENV to that variable's name", .role.as_str().to_ascii_uppercase()),
    })]
    Unauthorized {
        role: Role,
        url: String,
        status: u16,
        key_env: Option<String>,
    },
    #[error("the model server at {url} is rate-limiting the {role} role (429){}", match .retry_after {
        Some(secs) => format!(": it asks to retry after {secs}s, longer than this call may wait (LLM_REQUEST_TIMEOUT)"),
        None => ": still refused after retries; try again later or lower the load".to_string(),
    })]
    RateLimited {
        role: Role,
        url: String,
        retry_after: Option<u64>,
    },
    #[error("the prompt for the {role} role does not fit the context of {model} at {url} ({message}): the server's context is smaller than LLM_{}_NUM_CTX = {num_ctx}; set that to the server's context size, or start the server with a larger one", .role.as_str().to_ascii_uppercase())]
    ContextExceeded {
        role: Role,
        model: String,
        url: String,
        num_ctx: u64,
        message: String,
    },
    #[error("the model server at {url} failed{}: {message}", .status.map(|s| format!(" ({s})")).unwrap_or_default())]
    ServerFailed {
        url: String,
        status: Option<u16>,
        message: String,
    },
}

impl From<LlmError> for AppError {
    fn from(err: LlmError) -> Self {
        let kind = match err {
            LlmError::Disabled { .. }
            | LlmError::PromptTooLarge { .. }
            | LlmError::ContextExceeded { .. } => ErrorKind::Conflict,
            _ => ErrorKind::Unavailable,
        };
        AppError::new(kind, err.to_string())
    }
}

pub type LlmResult<T> = Result<T, LlmError>;

/// A chat model per role. Roles depend on this trait only, so tests can script answers.
#[async_trait]
pub trait Llm: Send + Sync + fmt::Debug {
    /// The model a role uses, or `None` when it runs without one.
    fn model(&self, role: Role) -> Option<String>;

    /// How many prompt tokens the role may send (the context minus room for the answer).
    fn prompt_budget(&self, role: Role) -> u64;

    /// One chat call; `schema` asks for JSON matching it (Ollama's `format`, OpenAI's
    /// `response_format`).
    async fn chat(
        &self,
        role: Role,
        messages: &[Message],
        schema: Option<&Value>,
    ) -> LlmResult<Reply>;

    /// A plain chat whose answer ends at the first of `stop` (the Developer's text
    /// protocol ends a reply before the model invents the results of its own actions).
    /// Providers that cannot stop early answer as [`Llm::chat`] does.
    async fn chat_until(
        &self,
        role: Role,
        messages: &[Message],
        _stop: &[String],
    ) -> LlmResult<Reply> {
        self.chat(role, messages, None).await
    }

    /// Whether the role's model calls tools natively (Ollama: `tools` among the model's
    /// `/api/show` capabilities). Providers without tool calling say no.
    async fn supports_tools(&self, _role: Role) -> bool {
        false
    }

    /// A chat call that offers `tools`; the reply carries the calls the model made (and
    /// maybe text). Providers without tool calling refuse, and the Developer falls back to
    /// its text protocol.
    async fn chat_with_tools(
        &self,
        role: Role,
        _messages: &[Message],
        _tools: &[ToolSpec],
    ) -> LlmResult<Reply> {
        Err(LlmError::ServerFailed {
            url: String::new(),
            status: None,
            message: format!("the {role} role's provider has no native tool calling"),
        })
    }
}

/// The JSON schema Ollama is given for `T`, with no `$ref`s (Ollama does not follow them).
pub fn schema_for<T: JsonSchema>() -> Value {
    let generator = schemars::generate::SchemaSettings::draft07()
        .with(|s| s.inline_subschemas = true)
        .into_generator();
    serde_json::to_value(generator.into_root_schema_for::<T>()).unwrap_or(Value::Null)
}

/// Parses a model's JSON answer strictly, but tolerates what models wrap it in (a code
/// fence, a sentence before or after).
pub fn parse_json_answer<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    let trimmed = text.trim();
    let candidate = match (trimmed.find('{'), trimmed.rfind('}')) {
        (Some(start), Some(end)) if end > start => &trimmed[start..=end],
        _ => trimmed,
    };
    serde_json::from_str(candidate).map_err(|e| e.to_string())
}

/// Asks for a typed answer: the schema goes in Ollama's `format` or OpenAI's
/// `response_format`; an answer that does not parse is sent back with the parse error, up
/// to `retries` times.
pub async fn ask_structured<T: DeserializeOwned + JsonSchema>(
    llm: &dyn Llm,
    role: Role,
    mut messages: Vec<Message>,
    retries: u32,
) -> LlmResult<(T, Vec<Usage>)> {
    let schema = schema_for::<T>();
    let model = llm.model(role).ok_or(LlmError::Disabled { role })?;
    let mut usages = Vec::new();
    let mut last_error = String::new();
    for attempt in 1..=retries + 1 {
        let (answer, error) = match llm.chat(role, &messages, Some(&schema)).await {
            Ok(reply) => {
                usages.push(reply.usage.clone());
                match parse_json_answer::<T>(&reply.text) {
                    Ok(value) => return Ok((value, usages)),
                    Err(e) => (
                        reply.text,
                        format!("it is not valid JSON for the schema: {e}"),
                    ),
                }
            }
            Err(LlmError::Empty { .. }) => (String::new(), "it was empty".to_string()),
            Err(e @ LlmError::CutOff { .. }) => (String::new(), e.to_string()),
            Err(other) => return Err(other),
        };
        tracing::warn!(%role, attempt, error = %error, "model answer unusable, asking again");
        last_error = error.clone();
        if !answer.is_empty() {
            messages.push(Message::assistant(answer));
        }
        messages.push(Message::user(format!(
            "Your previous answer could not be used: {error}. Answer again with only one JSON object that matches the schema, no prose and no code fence."
        )));
    }
    Err(LlmError::BadAnswer {
        role,
        model,
        attempts: retries + 1,
        error: last_error,
    })
}

/// Records one model call (tokens, time, or the error) for the per-role, per-model
/// statistics, whichever provider made it.
pub async fn record_call(
    store: Option<&crate::store::Store>,
    role: Role,
    model: &str,
    usage: Option<&Usage>,
    error: Option<&LlmError>,
) {
    let Some(store) = store else { return };
    let error_text = error.map(ToString::to_string);
    let call = crate::store::LlmCall {
        role: role.as_str(),
        model,
        error: error_text.as_deref(),
        prompt_tokens: usage.map_or(0, |u| u.prompt_tokens),
        // A cut-off answer still cost the tokens it ran to.
        completion_tokens: usage.map_or(
            match error {
                Some(LlmError::CutOff { tokens, .. }) => *tokens,
                _ => 0,
            },
            |u| u.completion_tokens,
        ),
        total_ms: usage.map_or(0, |u| u.total_ms),
        run_id: crate::engine::transcript::current().map(|c| c.run_id),
    };
    if let Err(e) = store.record_llm_call(&call).await {
        tracing::warn!(error = %e, "could not record a model call");
    }
}

/// A permit for one call to the model host at `base_url`, at most `max` at once per host
/// (across every run of this process).
pub async fn host_slot(base_url: &str, max: usize) -> tokio::sync::OwnedSemaphorePermit {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    static SLOTS: OnceLock<Mutex<HashMap<String, Arc<tokio::sync::Semaphore>>>> = OnceLock::new();
    let semaphore = SLOTS
        .get_or_init(Mutex::default)
        .lock()
        .expect("model host slots")
        .entry(base_url.to_string())
        .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(max.max(1))))
        .clone();
    semaphore.acquire_owned().await.expect("never closed")
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn a_model_host_serves_at_most_its_limit_at_once() {
        let host = "http://slots.test:1";
        let first = super::host_slot(host, 1).await;
        let second = tokio::time::timeout(
            std::time::Duration::from_millis(200),
            super::host_slot(host, 1),
        )
        .await;
        assert!(
            second.is_err(),
            "a second call waits while the first holds the slot"
        );
        // Another host is not held back.
        let _other = super::host_slot("http://other.test:1", 1).await;
        drop(first);
        let _again = tokio::time::timeout(
            std::time::Duration::from_millis(200),
            super::host_slot(host, 1),
        )
        .await
        .expect("free again once the first call ended");
    }

    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, JsonSchema, PartialEq)]
    struct Verdict {
        ok: bool,
        note: String,
    }

    #[test]
    fn answers_are_parsed_out_of_fences_and_prose() {
        let v: Verdict =
            parse_json_answer("Sure!\n```json\n{\"ok\": true, \"note\": \"x\"}\n```\nBye").unwrap();
        assert_eq!(
            v,
            Verdict {
                ok: true,
                note: "x".into()
            }
        );
        assert!(parse_json_answer::<Verdict>("{\"ok\": \"yes\"}").is_err());
        assert!(parse_json_answer::<Verdict>("no json here").is_err());
    }

    #[test]
    fn schemas_have_no_refs() {
        #[derive(Deserialize, JsonSchema)]
        #[allow(dead_code)]
        struct Outer {
            items: Vec<Verdict>,
        }
        let schema = schema_for::<Outer>().to_string();
        assert!(!schema.contains("$ref"), "{schema}");
        assert!(schema.contains("\"note\""));
    }
}
