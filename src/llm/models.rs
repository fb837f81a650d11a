//! The models of all roles behind one [`Llm`]: each role's calls go to the server kind its
//! settings name (`LLM_<ROLE>_PROVIDER`), so a role moves between Ollama and an
//! OpenAI-compatible server by settings alone. [`RepoLlm`] is the same as one repo sees it.

use async_trait::async_trait;
use serde_json::Value;

use super::ollama::{model_served, OllamaLlm};
use super::openai::{model_listed, OpenAiLlm};
use super::{Llm, LlmResult, Message, Reply, Role, ToolSpec};
use crate::config::{LlmSettings, Provider};
use crate::store::Store;

/// Every role's model, on the server its settings name.
#[derive(Debug)]
pub struct Models {
    settings: LlmSettings,
    pub ollama: OllamaLlm,
    pub openai: OpenAiLlm,
}

impl Models {
    /// `store`: where calls are recorded (none in unit tests and probes).
    pub fn new(settings: LlmSettings, store: Option<Store>) -> Models {
        Models {
            ollama: OllamaLlm::new(settings.clone(), store.clone()),
            openai: OpenAiLlm::new(settings.clone(), store),
            settings,
        }
    }

    pub fn settings(&self) -> &LlmSettings {
        &self.settings
    }

    fn provider(&self, role: Role) -> Provider {
        self.settings.role(role).provider
    }

    /// Ollama's model names at a base URL (`/api/tags`).
    pub async fn list_models(&self, base_url: &str) -> LlmResult<Vec<String>> {
        self.ollama.list_models(base_url).await
    }

    /// The models the role's server serves, as that server names them.
    pub async fn served(&self, role: Role) -> LlmResult<Vec<String>> {
        match self.provider(role) {
            Provider::Ollama => {
                self.ollama
                    .list_models(&self.settings.role(role).base_url)
                    .await
            }
            Provider::OpenAi => self.openai.list_models(role).await,
        }
    }

    /// Whether `model` is among `served` by the role's kind of server's naming rules.
    pub fn is_served(&self, role: Role, served: &[String], model: &str) -> bool {
        match self.provider(role) {
            Provider::Ollama => model_served(served, model),
            Provider::OpenAi => model_listed(served, model),
        }
    }

    /// One chat call with the role's settings but a given model (a repo's override), of the
    /// given kind: plain (maybe with a schema), stopping at sequences, or offering tools.
    pub async fn send(
        &self,
        role: Role,
        model: Option<String>,
        messages: &[Message],
        kind: CallKind<'_>,
    ) -> LlmResult<Reply> {
        match (self.provider(role), kind) {
            (Provider::Ollama, CallKind::Plain(schema)) => {
                self.ollama
                    .chat_as(role, model, messages, schema, &[], &[])
                    .await
            }
            (Provider::Ollama, CallKind::Until(stop)) => {
                self.ollama
                    .chat_as(role, model, messages, None, &[], stop)
                    .await
            }
            (Provider::Ollama, CallKind::Tools(tools)) => {
                self.ollama
                    .chat_as(role, model, messages, None, tools, &[])
                    .await
            }
            (Provider::OpenAi, CallKind::Plain(schema)) => {
                self.openai.chat_as(role, model, messages, schema).await
            }
            // The OpenAI provider answers without stop sequences (the parser copes).
            (Provider::OpenAi, CallKind::Until(_)) => {
                self.openai.chat_as(role, model, messages, None).await
            }
            (Provider::OpenAi, CallKind::Tools(_)) => Err(crate::llm::LlmError::ServerFailed {
                url: self.settings.role(role).base_url.clone(),
                status: None,
                message: "the openai provider has no native tool calling in gaffer yet: set LLM_DEVELOPER_EDIT_FORMAT=diff or auto".into(),
            }),
        }
    }

    /// Whether `model` calls tools natively on the role's server (Ollama only, for now).
    pub async fn calls_tools(&self, role: Role, model: &str) -> bool {
        match self.provider(role) {
            Provider::Ollama => self.ollama.model_calls_tools(role, model).await,
            Provider::OpenAi => false,
        }
    }
}

/// What kind of chat call [`Models::send`] makes.
#[derive(Debug, Clone, Copy)]
pub enum CallKind<'a> {
    /// A plain answer, JSON for the schema when one is given.
    Plain(Option<&'a Value>),
    /// A plain answer that ends at the first of these sequences.
    Until(&'a [String]),
    /// Native tool calls offered.
    Tools(&'a [ToolSpec]),
}

#[async_trait]
impl Llm for Models {
    fn model(&self, role: Role) -> Option<String> {
        self.settings.role(role).model.clone()
    }

    fn prompt_budget(&self, role: Role) -> u64 {
        match self.provider(role) {
            Provider::Ollama => self.ollama.prompt_budget(role),
            Provider::OpenAi => self.openai.prompt_budget(role),
        }
    }

    async fn chat(
        &self,
        role: Role,
        messages: &[Message],
        schema: Option<&Value>,
    ) -> LlmResult<Reply> {
        self.send(role, self.model(role), messages, CallKind::Plain(schema))
            .await
    }
}

/// The models as one repo sees them: its `overrides.models` replace the global model of a
/// role (`none` switches that role's model off for the repo), on whatever server the role
/// uses; everything else is shared.
#[derive(Debug)]
pub struct RepoLlm<'a> {
    pub inner: &'a Models,
    pub overrides: &'a crate::registry::ModelOverrides,
}

#[async_trait]
impl Llm for RepoLlm<'_> {
    fn model(&self, role: Role) -> Option<String> {
        let own = match role {
            Role::Planner => &self.overrides.planner,
            Role::Taskmaster => &self.overrides.taskmaster,
            Role::Developer => &self.overrides.developer,
            Role::Reviewer => &self.overrides.reviewer,
            Role::Integrator => &self.overrides.integrator,
        };
        match own {
            Some(model) if model.eq_ignore_ascii_case("none") => None,
            Some(model) => Some(model.clone()),
            None => self.inner.model(role),
        }
    }

    fn prompt_budget(&self, role: Role) -> u64 {
        self.inner.prompt_budget(role)
    }

    async fn chat(
        &self,
        role: Role,
        messages: &[Message],
        schema: Option<&Value>,
    ) -> LlmResult<Reply> {
        self.call(role, messages, CallKind::Plain(schema)).await
    }

    async fn chat_until(
        &self,
        role: Role,
        messages: &[Message],
        stop: &[String],
    ) -> LlmResult<Reply> {
        self.call(role, messages, CallKind::Until(stop)).await
    }

    async fn supports_tools(&self, role: Role) -> bool {
        match self.model(role) {
            Some(model) => self.inner.calls_tools(role, &model).await,
            None => false,
        }
    }

    async fn chat_with_tools(
        &self,
        role: Role,
        messages: &[Message],
        tools: &[ToolSpec],
    ) -> LlmResult<Reply> {
        self.call(role, messages, CallKind::Tools(tools)).await
    }
}

impl RepoLlm<'_> {
    /// One call with the repo's model for the role: within the model host's
    /// `LLM_MAX_PARALLEL` (whatever runs ask), recorded in the run's transcript.
    async fn call(&self, role: Role, messages: &[Message], kind: CallKind<'_>) -> LlmResult<Reply> {
        let model = self.model(role);
        let settings = self.inner.settings();
        let host = settings.role(role).base_url.clone();
        let _slot = crate::llm::host_slot(&host, settings.max_parallel).await;
        let reply = self.inner.send(role, model.clone(), messages, kind).await;
        crate::engine::transcript::model_call(
            role.as_str(),
            model.as_deref().unwrap_or("none"),
            messages,
            reply.as_ref(),
        )
        .await;
        reply
    }
}
