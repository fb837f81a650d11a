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

    /// A chat call with the role's settings but a given model (a repo's override).
    pub async fn chat_as(
        &self,
        role: Role,
        model: Option<String>,
        messages: &[Message],
        schema: Option<&Value>,
    ) -> LlmResult<Reply> {
        match self.provider(role) {
            Provider::Ollama => {
                self.ollama
                    .chat_as(role, model, messages, schema, &[], &[])
                    .await
            }
            Provider::OpenAi => self.openai.chat_as(role, model, messages, schema).await,
        }
    }
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
        self.chat_as(role, self.model(role), messages, schema).await
    }
}

impl Models {
    /// Whether `model` calls tools natively on the role's server (Ollama only, for now).
    pub async fn calls_tools(&self, role: Role, model: &str) -> bool {
        match self.provider(role) {
            Provider::Ollama => self.ollama.model_calls_tools(role, model).await,
            Provider::OpenAi => false,
        }
    }

    /// A plain chat to a given model that stops at `stop` (Ollama's `stop` option; the
    /// OpenAI provider answers without it).
    pub async fn chat_until_as(
        &self,
        role: Role,
        model: Option<String>,
        messages: &[Message],
        stop: &[String],
    ) -> LlmResult<Reply> {
        match self.provider(role) {
            Provider::Ollama => {
                self.ollama
                    .chat_as(role, model, messages, None, &[], stop)
                    .await
            }
            Provider::OpenAi => self.openai.chat_as(role, model, messages, None).await,
        }
    }

    /// A chat call offering native tools to a given model (Ollama only, for now).
    pub async fn chat_tools_as(
        &self,
        role: Role,
        model: Option<String>,
        messages: &[Message],
        tools: &[ToolSpec],
    ) -> LlmResult<Reply> {
        match self.provider(role) {
            Provider::Ollama => {
                self.ollama
                    .chat_as(role, model, messages, None, tools, &[])
                    .await
            }
            Provider::OpenAi => Err(crate::llm::LlmError::ServerFailed {
                url: self.settings.role(role).base_url.clone(),
                status: None,
                message: "the openai provider has no native tool calling in gaffer yet: set LLM_DEVELOPER_EDIT_FORMAT=diff or auto".into(),
            }),
        }
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
        let model = self.model(role);
        let settings = self.inner.settings();
        let host = settings.role(role).base_url.clone();
        // One model host serves LLM_MAX_PARALLEL calls at once, whatever runs ask.
        let _slot = crate::llm::host_slot(&host, settings.max_parallel).await;
        let reply = self
            .inner
            .chat_as(role, model.clone(), messages, schema)
            .await;
        crate::engine::transcript::model_call(
            role.as_str(),
            model.as_deref().unwrap_or("none"),
            messages,
            reply.as_ref(),
        )
        .await;
        reply
    }

    async fn chat_until(
        &self,
        role: Role,
        messages: &[Message],
        stop: &[String],
    ) -> LlmResult<Reply> {
        let model = self.model(role);
        let settings = self.inner.settings();
        let host = settings.role(role).base_url.clone();
        let _slot = crate::llm::host_slot(&host, settings.max_parallel).await;
        let reply = self
            .inner
            .chat_until_as(role, model.clone(), messages, stop)
            .await;
        crate::engine::transcript::model_call(
            role.as_str(),
            model.as_deref().unwrap_or("none"),
            messages,
            reply.as_ref(),
        )
        .await;
        reply
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
        let model = self.model(role);
        let settings = self.inner.settings();
        let host = settings.role(role).base_url.clone();
        let _slot = crate::llm::host_slot(&host, settings.max_parallel).await;
        let reply = self
            .inner
            .chat_tools_as(role, model.clone(), messages, tools)
            .await;
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
