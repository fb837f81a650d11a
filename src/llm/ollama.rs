//! [`Llm`] on Ollama's native API through `ollama-rs`. Every call sends the role's model,
//! temperature, `num_ctx` (always, explicitly), an answer budget (`num_predict`) and
//! `keep_alive`; answers are streamed so a stalled model is noticed; every call is
//! recorded with the token counts and durations Ollama returns.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use async_trait::async_trait;
use futures_util::StreamExt;
use ollama_rs::error::OllamaError;
use ollama_rs::generation::chat::request::ChatMessageRequest;
use ollama_rs::generation::chat::{ChatMessage, ChatMessageFinalResponseData};
use ollama_rs::generation::parameters::{FormatType, JsonStructure, KeepAlive, TimeUnit};
use ollama_rs::models::ModelOptions;
use ollama_rs::Ollama;
use serde_json::Value;

use super::prompt::estimate_messages;
use super::{Llm, LlmError, LlmResult, Message, Reply, Role, Speaker, ToolCall, ToolSpec, Usage};
use crate::config::LlmSettings;
use crate::store::Store;

/// Ollama, one client per base URL, per-role settings.
#[derive(Debug)]
pub struct OllamaLlm {
    settings: LlmSettings,
    http: reqwest::Client,
    clients: Mutex<HashMap<String, Ollama>>,
    store: Option<Store>,
}

impl OllamaLlm {
    /// `store`: where calls are recorded (none in unit tests).
    pub fn new(settings: LlmSettings, store: Option<Store>) -> OllamaLlm {
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            .build()
            .expect("a plain reqwest client builds");
        OllamaLlm {
            settings,
            http,
            clients: Mutex::new(HashMap::new()),
            store,
        }
    }

    pub fn settings(&self) -> &LlmSettings {
        &self.settings
    }

    fn client(&self, base_url: &str) -> LlmResult<Ollama> {
        let mut clients = self.clients.lock().expect("client map lock");
        if let Some(client) = clients.get(base_url) {
            return Ok(client.clone());
        }
        let url = reqwest::Url::parse(base_url).map_err(|e| LlmError::Other {
            url: base_url.to_string(),
            message: format!("not a URL: {e}"),
        })?;
        let client = Ollama::builder()
            .url(url)
            .reqwest_client(self.http.clone())
            .build();
        clients.insert(base_url.to_string(), client.clone());
        Ok(client)
    }

    /// The model names served at a base URL (`/api/tags`).
    pub async fn list_models(&self, base_url: &str) -> LlmResult<Vec<String>> {
        let client = self.client(base_url)?;
        let models = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            client.list_local_models(),
        )
        .await
        .map_err(|_| LlmError::Unreachable {
            url: base_url.to_string(),
        })?
        .map_err(|e| classify(e, base_url, ""))?;
        Ok(models.into_iter().map(|m| m.name).collect())
    }

    async fn stream_answer(
        &self,
        role: Role,
        model: &str,
        base_url: &str,
        request: ChatMessageRequest,
        answer_budget: u64,
    ) -> LlmResult<Reply> {
        let client = self.client(base_url)?;
        let idle = self.settings.idle_timeout;
        let started = Instant::now();
        let mut stream = client
            .send_chat_messages_stream(request)
            .await
            .map_err(|e| classify(e, base_url, model))?;
        let mut text = String::new();
        let mut tool_calls = Vec::new();
        let mut last: Option<ChatMessageFinalResponseData> = None;
        let mut finished = false;
        loop {
            match tokio::time::timeout(idle, stream.next()).await {
                Err(_) => {
                    return Err(LlmError::Stalled {
                        role,
                        model: model.to_string(),
                        after: idle,
                    })
                }
                Ok(None) => break,
                Ok(Some(Err(()))) => {
                    return Err(LlmError::Other {
                        url: base_url.to_string(),
                        message: "the answer stream broke off".into(),
                    })
                }
                Ok(Some(Ok(chunk))) => {
                    text.push_str(&chunk.message.content);
                    tool_calls.extend(chunk.message.tool_calls.into_iter().map(|c| ToolCall {
                        name: c.function.name,
                        arguments: c.function.arguments.to_string(),
                    }));
                    if chunk.done {
                        last = chunk.final_data;
                        finished = true;
                        break;
                    }
                }
            }
        }
        let data = last.unwrap_or(ChatMessageFinalResponseData {
            total_duration: started.elapsed().as_nanos() as u64,
            load_duration: 0,
            prompt_eval_count: 0,
            prompt_eval_duration: 0,
            eval_count: 0,
            eval_duration: 0,
        });
        let usage = Usage {
            model: model.to_string(),
            prompt_tokens: data.prompt_eval_count,
            completion_tokens: data.eval_count,
            total_ms: data.total_duration / 1_000_000,
            load_ms: data.load_duration / 1_000_000,
            prompt_eval_ms: data.prompt_eval_duration / 1_000_000,
            eval_ms: data.eval_duration / 1_000_000,
        };
        if !finished {
            return Err(LlmError::CutOff {
                role,
                model: model.to_string(),
                tokens: usage.completion_tokens,
                partial: text,
            });
        }
        if usage.completion_tokens >= answer_budget {
            return Err(LlmError::CutOff {
                role,
                model: model.to_string(),
                tokens: usage.completion_tokens,
                partial: text,
            });
        }
        if text.trim().is_empty() && tool_calls.is_empty() {
            return Err(LlmError::Empty {
                role,
                model: model.to_string(),
            });
        }
        Ok(Reply {
            text,
            usage,
            tool_calls,
        })
    }
}

#[async_trait]
impl Llm for OllamaLlm {
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
        self.chat_as(role, self.model(role), messages, schema, &[], &[])
            .await
    }

    async fn supports_tools(&self, role: Role) -> bool {
        match self.model(role) {
            Some(model) => self.model_calls_tools(role, &model).await,
            None => false,
        }
    }

    async fn chat_with_tools(
        &self,
        role: Role,
        messages: &[Message],
        tools: &[ToolSpec],
    ) -> LlmResult<Reply> {
        self.chat_as(role, self.model(role), messages, None, tools, &[])
            .await
    }
}

impl OllamaLlm {
    /// Whether `model` lists `tools` among its capabilities (`/api/show`), asked once per
    /// Developer run (a model can be replaced under the same name); a server that cannot
    /// say counts as no.
    pub async fn model_calls_tools(&self, role: Role, model: &str) -> bool {
        let base_url = self.settings.role(role).base_url.clone();
        let Ok(client) = self.client(&base_url) else {
            return false;
        };
        match tokio::time::timeout(
            std::time::Duration::from_secs(10),
            client.show_model_info(model.to_string()),
        )
        .await
        {
            Ok(Ok(info)) => info.capabilities.iter().any(|c| c == "tools"),
            _ => false,
        }
    }

    /// A chat call with the role's settings but a given model (a repo's override);
    /// `tools` are offered for native tool calls (none: a plain chat).
    pub async fn chat_as(
        &self,
        role: Role,
        model: Option<String>,
        messages: &[Message],
        schema: Option<&Value>,
        tools: &[ToolSpec],
        stop: &[String],
    ) -> LlmResult<Reply> {
        let config = self.settings.role(role).clone();
        let model = model.ok_or(LlmError::Disabled { role })?;
        let answer_budget = config.answer_budget();
        let needed = estimate_messages(messages);
        let available = self.prompt_budget(role);
        if needed > available {
            return Err(LlmError::PromptTooLarge {
                role,
                needed,
                available,
            });
        }
        let options = ModelOptions::default()
            .temperature(config.temperature)
            .num_ctx(config.num_ctx)
            .num_predict(i32::try_from(answer_budget).unwrap_or(i32::MAX));
        let options = if stop.is_empty() {
            options
        } else {
            options.stop(stop.to_vec())
        };
        let chat_messages: Vec<ChatMessage> = messages
            .iter()
            .map(|m| match m.speaker {
                Speaker::System => ChatMessage::system(m.content.clone()),
                Speaker::User => ChatMessage::user(m.content.clone()),
                Speaker::Assistant => {
                    let mut message = ChatMessage::assistant(m.content.clone());
                    message.tool_calls = m.tool_calls.iter().map(to_ollama_call).collect();
                    message
                }
                Speaker::Tool => ChatMessage::tool(m.content.clone()),
            })
            .collect();
        let mut request = ChatMessageRequest::new(model.clone(), chat_messages)
            .options(options)
            .keep_alive(KeepAlive::Until {
                time: self.settings.keep_alive.as_secs(),
                unit: TimeUnit::Seconds,
            });
        if !tools.is_empty() {
            request = request.tools(tools_for_ollama(tools, &config.base_url)?);
        }
        if let Some(schema) = schema {
            let schema =
                schemars::Schema::try_from(schema.clone()).map_err(|e| LlmError::Other {
                    url: config.base_url.clone(),
                    message: format!("invalid answer schema: {e}"),
                })?;
            request = request.format(FormatType::StructuredJson(Box::new(
                JsonStructure::new_for_schema(schema),
            )));
        }
        let limit = self.settings.request_timeout;
        let result = match tokio::time::timeout(
            limit,
            self.stream_answer(role, &model, &config.base_url, request, answer_budget),
        )
        .await
        {
            Ok(result) => result,
            Err(_) => Err(LlmError::Timeout {
                role,
                model: model.clone(),
                after: limit,
            }),
        };
        match &result {
            Ok(reply) => {
                tracing::info!(%role, model = %model, prompt_tokens = reply.usage.prompt_tokens,
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
}

/// One of our tool calls as `ollama-rs` sends it back in the conversation.
fn to_ollama_call(call: &ToolCall) -> ollama_rs::generation::tools::ToolCall {
    ollama_rs::generation::tools::ToolCall {
        function: ollama_rs::generation::tools::ToolCallFunction {
            name: call.name.clone(),
            arguments: serde_json::from_str(&call.arguments).unwrap_or(Value::Null),
        },
    }
}

/// The tools as Ollama's `tools` field wants them.
fn tools_for_ollama(
    tools: &[ToolSpec],
    url: &str,
) -> LlmResult<Vec<ollama_rs::generation::tools::ToolInfo>> {
    use ollama_rs::generation::tools::{ToolFunctionInfo, ToolInfo, ToolType};
    tools
        .iter()
        .map(|t| {
            let parameters =
                schemars::Schema::try_from(t.parameters.clone()).map_err(|e| LlmError::Other {
                    url: url.to_string(),
                    message: format!("invalid schema for the {} tool: {e}", t.name),
                })?;
            Ok(ToolInfo {
                tool_type: ToolType::Function,
                function: ToolFunctionInfo {
                    name: t.name.clone(),
                    description: t.description.clone(),
                    parameters,
                },
            })
        })
        .collect()
}

/// Turns an `ollama-rs` error into one a user can act on.
fn classify(err: OllamaError, url: &str, model: &str) -> LlmError {
    match err {
        OllamaError::ReqwestError(e) if e.is_connect() || e.is_timeout() => LlmError::Unreachable {
            url: url.to_string(),
        },
        OllamaError::Other(body) => {
            let message = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
                .unwrap_or(body);
            if message.contains("not found") && !model.is_empty() {
                LlmError::ModelNotFound {
                    model: model.to_string(),
                    url: url.to_string(),
                }
            } else {
                LlmError::Other {
                    url: url.to_string(),
                    message,
                }
            }
        }
        other => LlmError::Other {
            url: url.to_string(),
            message: other.to_string(),
        },
    }
}

/// Whether `wanted` is among `served`, with Ollama's `:latest` default tag.
pub fn model_served(served: &[String], wanted: &str) -> bool {
    let normalize = |name: &str| {
        let lower = name.to_ascii_lowercase();
        if lower.contains(':') {
            lower
        } else {
            format!("{lower}:latest")
        }
    };
    let wanted = normalize(wanted);
    served.iter().any(|s| normalize(s) == wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_match_with_the_default_tag() {
        let served = vec!["smollm2:135m".to_string(), "qwen3-coder:latest".to_string()];
        assert!(model_served(&served, "qwen3-coder"));
        assert!(model_served(&served, "SmolLM2:135m"));
        assert!(!model_served(&served, "smollm2"));
        assert!(!model_served(&served, "qwen3:32b"));
    }
}
