//! Settings: `config/gaffer.yaml`, then `.env`, then environment variables, into one typed,
//! validated [`Settings`].
//!
//! Every setting is one row of [`SETTINGS`]: its environment variable (the names users of
//! the original Python tool already have), its key in the YAML file and its default. Lookup,
//! unknown-key detection and error messages all come from that one table, so a setting
//! cannot be documented in one place and read under another name somewhere else.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use serde_json::Value;

use crate::registry::FullName;

/// The config file read when `GAFFER_CONFIG` does not name another one.
pub const DEFAULT_CONFIG_PATH: &str = "config/gaffer.yaml";

/// One row of the settings table.
struct Setting {
    env: &'static str,
    yaml: &'static str,
    default: Option<&'static str>,
    /// Secrets are read from the environment or `.env` only, never from the YAML file,
    /// and their values never appear in an error message.
    secret: bool,
}

const fn setting(env: &'static str, yaml: &'static str, default: Option<&'static str>) -> Setting {
    Setting {
        env,
        yaml,
        default,
        secret: false,
    }
}

const fn secret(env: &'static str, yaml: &'static str) -> Setting {
    Setting {
        env,
        yaml,
        default: None,
        secret: true,
    }
}

/// Every setting gaffer reads. `config/gaffer.yaml` documents the same rows.
const SETTINGS: &[Setting] = &[
    setting("GAFFER_BIND", "server.bind", Some("127.0.0.1:8000")),
    setting("GAFFER_DATA_DIR", "server.data_dir", Some("./data")),
    setting("GAFFER_LOG_FORMAT", "server.log_format", Some("text")),
    setting("GAFFER_LOG", "server.log_level", Some("info")),
    secret("GAFFER_API_TOKEN", "server.api_token"),
    secret("GH_TOKEN", "github.token"),
    setting(
        "GITHUB_API_URL",
        "github.api_url",
        Some("https://api.github.com"),
    ),
    setting(
        "GITHUB_GIT_URL",
        "github.git_url",
        Some("https://github.com"),
    ),
    setting("GITHUB_WRITE_GAP_MS", "github.write_gap_ms", Some("1000")),
    setting("GITHUB_TIMEOUT_MS", "github.timeout_ms", Some("30000")),
    setting("GITHUB_BACKOFF_MS", "github.backoff_ms", Some("500")),
    setting(
        "GITHUB_POINTS_PER_MINUTE",
        "github.points_per_minute",
        Some("900"),
    ),
    setting(
        "GITHUB_MAX_CONCURRENCY",
        "github.max_concurrency",
        Some("20"),
    ),
    setting("GITHUB_GRAPHQL", "github.graphql", Some("auto")),
    setting(
        "GITHUB_GRAPHQL_POINTS_PER_MINUTE",
        "github.graphql_points_per_minute",
        Some("2000"),
    ),
    setting("GITHUB_GRAPHQL_BATCH", "github.graphql_batch", Some("50")),
    setting("GH_OWNER", "github.owner", None),
    setting("GH_REPO", "github.repo", None),
    setting("DEFAULT_BRANCH", "github.default_branch", Some("main")),
    setting("WORKDIR_ROOT", "workspace.root", None),
    setting(
        "OLLAMA_BASE_URL",
        "llm.base_url",
        Some("http://localhost:11434"),
    ),
    setting("LLM_PLANNER_MODEL", "llm.models.planner", Some("qwen3:32b")),
    setting(
        "LLM_TASKMASTER_MODEL",
        "llm.models.taskmaster",
        Some("qwen3:32b"),
    ),
    setting(
        "LLM_DEVELOPER_MODEL",
        "llm.models.developer",
        Some("qwen3-coder:latest"),
    ),
    setting(
        "LLM_REVIEWER_MODEL",
        "llm.models.reviewer",
        Some("qwen3:32b"),
    ),
    setting(
        "LLM_INTEGRATOR_MODEL",
        "llm.models.integrator",
        Some("none"),
    ),
    setting(
        "LLM_PLANNER_PROVIDER",
        "llm.providers.planner",
        Some("ollama"),
    ),
    setting(
        "LLM_TASKMASTER_PROVIDER",
        "llm.providers.taskmaster",
        Some("ollama"),
    ),
    setting(
        "LLM_DEVELOPER_PROVIDER",
        "llm.providers.developer",
        Some("ollama"),
    ),
    setting(
        "LLM_REVIEWER_PROVIDER",
        "llm.providers.reviewer",
        Some("ollama"),
    ),
    setting(
        "LLM_INTEGRATOR_PROVIDER",
        "llm.providers.integrator",
        Some("ollama"),
    ),
    setting("LLM_PLANNER_API_KEY_ENV", "llm.api_key_env.planner", None),
    setting(
        "LLM_TASKMASTER_API_KEY_ENV",
        "llm.api_key_env.taskmaster",
        None,
    ),
    setting(
        "LLM_DEVELOPER_API_KEY_ENV",
        "llm.api_key_env.developer",
        None,
    ),
    setting("LLM_REVIEWER_API_KEY_ENV", "llm.api_key_env.reviewer", None),
    setting(
        "LLM_INTEGRATOR_API_KEY_ENV",
        "llm.api_key_env.integrator",
        None,
    ),
    setting("LLM_PLANNER_BASE_URL", "llm.base_urls.planner", None),
    setting("LLM_TASKMASTER_BASE_URL", "llm.base_urls.taskmaster", None),
    setting("LLM_DEVELOPER_BASE_URL", "llm.base_urls.developer", None),
    setting("LLM_REVIEWER_BASE_URL", "llm.base_urls.reviewer", None),
    setting("LLM_INTEGRATOR_BASE_URL", "llm.base_urls.integrator", None),
    setting(
        "LLM_PLANNER_TEMPERATURE",
        "llm.temperature.planner",
        Some("0.5"),
    ),
    setting(
        "LLM_TASKMASTER_TEMPERATURE",
        "llm.temperature.taskmaster",
        Some("0.3"),
    ),
    setting(
        "LLM_DEVELOPER_TEMPERATURE",
        "llm.temperature.developer",
        Some("0.1"),
    ),
    setting(
        "LLM_REVIEWER_TEMPERATURE",
        "llm.temperature.reviewer",
        Some("0.1"),
    ),
    setting(
        "LLM_INTEGRATOR_TEMPERATURE",
        "llm.temperature.integrator",
        Some("0.1"),
    ),
    setting("LLM_PLANNER_NUM_CTX", "llm.num_ctx.planner", Some("16384")),
    setting(
        "LLM_TASKMASTER_NUM_CTX",
        "llm.num_ctx.taskmaster",
        Some("16384"),
    ),
    setting(
        "LLM_DEVELOPER_NUM_CTX",
        "llm.num_ctx.developer",
        Some("32768"),
    ),
    setting(
        "LLM_REVIEWER_NUM_CTX",
        "llm.num_ctx.reviewer",
        Some("16384"),
    ),
    setting(
        "LLM_INTEGRATOR_NUM_CTX",
        "llm.num_ctx.integrator",
        Some("16384"),
    ),
    setting("LLM_KEEP_ALIVE", "llm.keep_alive_secs", Some("1800")),
    setting(
        "LLM_REQUEST_TIMEOUT",
        "llm.request_timeout_secs",
        Some("900"),
    ),
    setting("LLM_IDLE_TIMEOUT", "llm.idle_timeout_secs", Some("120")),
    setting(
        "LLM_STRUCTURED_RETRIES",
        "llm.structured_retries",
        Some("2"),
    ),
    setting("GAFFER_GIT_NAME", "work.git_name", Some("gaffer-bot")),
    setting(
        "GAFFER_GIT_EMAIL",
        "work.git_email",
        Some("gaffer-bot@users.noreply.github.com"),
    ),
    setting("CHECKS_TIMEOUT", "work.checks_timeout_secs", Some("600")),
    setting("CHECKS_SANDBOX", "work.checks_sandbox", Some("on")),
    setting("RUN_CONCURRENCY", "runs.concurrency", Some("4")),
    setting("RUN_STALL_TIMEOUT", "runs.stall_timeout_secs", Some("1800")),
    setting("RUN_LEASE_SECS", "runs.lease_secs", Some("30")),
    setting(
        "RUN_TRANSCRIPT_RETENTION",
        "runs.transcript_retention",
        Some("500"),
    ),
    setting("LLM_MAX_PARALLEL", "llm.max_parallel", Some("1")),
    setting(
        "CHECKS_SETUP_TIMEOUT",
        "work.checks_setup_timeout_secs",
        Some("900"),
    ),
    setting(
        "CHECKS_CACHE_MAX_MB",
        "work.checks_cache_max_mb",
        Some("2048"),
    ),
    setting("GAFFER_PUBLIC_URL", "server.public_url", None),
    setting("GAFFER_LOCAL_ROOT", "server.local_root", None),
    setting("DEV_MAX_ATTEMPTS", "work.max_attempts", Some("3")),
    setting("DEV_MAX_STEPS", "work.max_steps", Some("30")),
    setting("DEV_MAX_TOKENS", "work.max_tokens", Some("400000")),
    setting("DEV_MAX_MINUTES", "work.max_minutes", Some("60")),
    setting("DEV_MAX_ITERATIONS", "work.max_iterations", Some("2")),
    setting(
        "LLM_DEVELOPER_EDIT_FORMAT",
        "llm.developer_edit_format",
        Some("auto"),
    ),
    setting("DIFF_MAX_FILES", "work.diff_max_files", Some("20")),
    setting(
        "DIFF_MAX_ADDED_LINES",
        "work.diff_max_added_lines",
        Some("1000"),
    ),
    setting("POLLING_ENABLED", "polling.enabled", Some("false")),
    setting(
        "POLL_INTERVAL_ACTIVE",
        "polling.interval_active",
        Some("60"),
    ),
    setting("POLL_INTERVAL_IDLE", "polling.interval_idle", Some("300")),
    setting(
        "MIN_REMAINING_BUDGET",
        "polling.min_remaining_budget",
        Some("500"),
    ),
    secret("GITHUB_WEBHOOK_SECRET", "webhook.secret"),
    setting("POLL_CONCURRENCY", "polling.concurrency", Some("4")),
    setting("POLL_ISSUES_EVERY", "polling.issues_every", Some("5")),
    setting("WEBHOOK_RETENTION", "webhook.retention", Some("10000")),
    setting(
        "WEBHOOK_RETRY_ATTEMPTS",
        "webhook.retry_attempts",
        Some("5"),
    ),
    setting(
        "WEBHOOK_RETRY_BASE_SECS",
        "webhook.retry_base_secs",
        Some("30"),
    ),
    setting(
        "GAFFER_WEBHOOK_MAX_BODY",
        "webhook.max_body_bytes",
        Some("1048576"),
    ),
];

/// Why start-up stopped: one line naming the setting, the value and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

impl ConfigError {
    fn invalid(setting: &Setting, value: &str, origin: &str, allowed: &str) -> Self {
        let shown = if setting.secret {
            "<redacted>".to_string()
        } else {
            format!("{value:?}")
        };
        ConfigError(format!(
            "invalid setting {} ({}) = {shown} from {origin}: expected {allowed}",
            setting.env, setting.yaml
        ))
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines, the default on a terminal.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The roles that think with a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Planner,
    Taskmaster,
    Developer,
    Reviewer,
    Integrator,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Planner,
        Role::Taskmaster,
        Role::Developer,
        Role::Reviewer,
        Role::Integrator,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Planner => "planner",
            Role::Taskmaster => "taskmaster",
            Role::Developer => "developer",
            Role::Reviewer => "reviewer",
            Role::Integrator => "integrator",
        }
    }

    /// The role's name in settings (`LLM_<ROLE>_...`).
    fn env_name(self) -> &'static str {
        match self {
            Role::Planner => "PLANNER",
            Role::Taskmaster => "TASKMASTER",
            Role::Developer => "DEVELOPER",
            Role::Reviewer => "REVIEWER",
            Role::Integrator => "INTEGRATOR",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Below this context size Ollama silently drops the start of long prompts; roles set
/// lower are warned about at start-up and by `gaffer doctor`.
pub const MIN_RECOMMENDED_NUM_CTX: u64 = 16_384;

/// Which kind of model server a role talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Ollama's native API (`/api/chat`): the default.
    Ollama,
    /// Any OpenAI-compatible `/v1/chat/completions` server (llama-server, vLLM, LM Studio,
    /// LocalAI, LiteLLM, Ollama's `/v1`, hosted APIs).
    OpenAi,
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Provider::Ollama => "ollama",
            Provider::OpenAi => "openai",
        })
    }
}

/// How one role talks to its model.
#[derive(Debug, Clone)]
pub struct RoleLlm {
    /// `None` (`none` in settings): the role runs its built-in, model-free behaviour.
    pub model: Option<String>,
    pub provider: Provider,
    /// Ollama: the server root. OpenAI-compatible: the API root, ending in `/v1` for most
    /// servers (added when the URL has no path).
    pub base_url: String,
    /// The *name* of the variable holding the API key (`LLM_<ROLE>_API_KEY_ENV`).
    pub api_key_env: Option<String>,
    /// The key itself, read from that variable at start-up; redacted in debug output.
    pub api_key: Option<SecretString>,
    pub temperature: f32,
    /// Always sent explicitly (Ollama's own default can be as small as 4k).
    pub num_ctx: u64,
}

impl RoleLlm {
    /// A quarter of the context is the answer's (`num_predict` / `max_tokens`), whichever
    /// provider serves the role; the rest is for the prompt.
    pub fn answer_budget(&self) -> u64 {
        self.num_ctx / 4
    }

    /// Tokens the prompt may use: the context less the answer's share.
    pub fn prompt_budget(&self) -> u64 {
        self.num_ctx - self.answer_budget()
    }
}

/// Where GitHub is, and who gaffer is there.
#[derive(Debug, Clone)]
pub struct GithubSettings {
    /// Held as a secret so that it can never be logged or printed by accident.
    pub token: Option<SecretString>,
    pub api_url: String,
    pub git_url: String,
    /// Least time between two writes with the token (GitHub asks for about a second).
    pub write_gap: Duration,
    /// The longest one request may take (a write that takes longer is looked up, not
    /// sent again).
    pub timeout: Duration,
    /// First backoff step of the client's retries (doubled each retry, with jitter).
    pub backoff: Duration,
    /// GitHub's secondary limit for the token: points a minute (a read 1, a write 5);
    /// 0 turns pacing off (GitHub Enterprise without the limit).
    pub points_per_minute: u32,
    /// Requests in flight at once with the token (GitHub allows 100).
    pub max_concurrency: usize,
    /// `GITHUB_GRAPHQL=auto`: the poller finds changed repos with batched GraphQL queries
    /// (falling back to REST when refused); `off` forces the REST-only path.
    pub graphql: bool,
    /// GraphQL's own points per minute (GitHub: 2,000); 0 turns its pacing off.
    pub graphql_points_per_minute: u32,
    /// Repos per GraphQL query (1 to 100).
    pub graphql_batch: usize,
    /// `GH_OWNER` + `GH_REPO`: registered on first start, as the original tool did.
    pub seed_repo: Option<FullName>,
    pub default_branch: String,
}

/// The local models and where they are served.
#[derive(Debug, Clone)]
pub struct LlmSettings {
    pub base_url: String,
    /// One entry per [`Role`], in `Role::ALL` order.
    pub roles: Vec<(Role, RoleLlm)>,
    pub keep_alive: Duration,
    /// The longest one model call may take in all.
    pub request_timeout: Duration,
    /// The longest a streamed answer may go without a new token.
    pub idle_timeout: Duration,
    /// Re-asks after a structured answer that does not parse.
    pub structured_retries: u32,
    /// Model calls at once per model host (`LLM_MAX_PARALLEL`): a home GPU serves one
    /// request at a time well.
    pub max_parallel: usize,
}

impl LlmSettings {
    pub fn role(&self, role: Role) -> &RoleLlm {
        &self
            .roles
            .iter()
            .find(|(r, _)| *r == role)
            .expect("every role has settings")
            .1
    }

    /// Human-readable warnings about risky values (e.g. a small `num_ctx`).
    pub fn warnings(&self) -> Vec<String> {
        self.roles
            .iter()
            .filter(|(_, llm)| llm.model.is_some() && llm.num_ctx < MIN_RECOMMENDED_NUM_CTX)
            .map(|(role, llm)| {
                format!(
                    "LLM_{}_NUM_CTX is {}: below {MIN_RECOMMENDED_NUM_CTX} tokens long prompts (files, diffs) will be trimmed hard",
                    role.env_name(),
                    llm.num_ctx
                )
            })
            .collect()
    }
}

/// The NAT-friendly poller's pace and budget.
#[derive(Debug, Clone)]
pub struct PollingSettings {
    pub enabled: bool,
    pub interval_active: Duration,
    pub interval_idle: Duration,
    pub min_remaining_budget: u32,
    /// Repos polled at once (GitHub asks for few, mostly serial requests per token).
    pub concurrency: usize,
    /// Every this many cycles the poller also reads labelled issues and `/gaffer` commands
    /// of `pr` repos (two conditional GETs per repo), for set-ups without webhooks; 0: never.
    pub issues_every: u32,
}

/// How the roles work in a clone.
#[derive(Debug, Clone)]
pub struct WorkSettings {
    /// The identity on gaffer's commits.
    pub git_name: String,
    pub git_email: String,
    /// The longest the repo's checks may run.
    pub checks_timeout: Duration,
    /// `on`: repo code runs only under bubblewrap; `off` (explicit opt-out): unsandboxed.
    pub checks_sandbox: crate::safety::sandbox::SandboxMode,
    /// The longest the checks' set-up phase (installing dependencies) may run.
    pub checks_setup_timeout: Duration,
    /// Each repo's checks cache (pip, npm, cargo, go, venv) is trimmed back under this.
    pub checks_cache_max_bytes: u64,
    /// How many times the Developer may say it is done and be told what is still missing
    /// (failing checks, no fail-to-pass test) before the task is blocked.
    pub max_attempts: u32,
    /// The Developer's budget per run: model replies (steps), tokens (prompt and answer,
    /// as the server counts them) and wall time.
    pub max_steps: u32,
    pub max_tokens: u64,
    pub max_wall: Duration,
    /// Developer runs on one PR's feedback (review, CI, `/gaffer fix`) before gaffer stops
    /// iterating and leaves it to a person.
    pub max_iterations: u32,
    /// How the Developer's model acts: native tools, SEARCH/REPLACE text, whole files, or
    /// chosen per model (`auto`).
    pub edit_format: crate::agent::EditFormat,
    pub diff_max_files: usize,
    pub diff_max_added_lines: usize,
}

/// The engine's runs.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// Runs executed at once by the worker (never two for one repo).
    pub concurrency: usize,
    /// A running run with no progress for this long is failed by the watchdog.
    pub stall_timeout: Duration,
    /// Runs whose transcripts (model calls, check output) are kept.
    pub transcript_retention: i64,
    /// How long a run's claim lasts without renewal: after a crash, its run is queued
    /// again this long after the process died.
    pub lease: Duration,
}

/// Webhook verification and limits.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub secret: Option<SecretString>,
    pub max_body_bytes: usize,
    /// Deliveries kept in the audit log; older ones are dropped.
    pub retention: u32,
    /// Processing attempts per delivery before it is dead-lettered.
    pub retry_attempts: u32,
    /// The wait before the first retry; doubled each time (capped at an hour).
    pub retry_base: Duration,
}

/// Every variable gaffer was started with (environment over `.env`), for settings named at
/// run time, such as a repo's webhook-secret variable. Debug output shows no values.
#[derive(Clone, Default)]
pub struct EnvVars(std::sync::Arc<HashMap<String, SecretString>>);

impl EnvVars {
    pub fn get(&self, name: &str) -> Option<&SecretString> {
        self.0.get(name)
    }
}

impl fmt::Debug for EnvVars {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EnvVars(<{} variables>)", self.0.len())
    }
}

/// Everything gaffer is configured with, typed and validated once at start-up.
#[derive(Debug, Clone)]
pub struct Settings {
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    pub log_format: LogFormat,
    pub log_level: String,
    /// When set, mutating API calls need `Authorization: Bearer <token>`.
    pub api_token: Option<SecretString>,
    pub github: GithubSettings,
    pub workdir_root: PathBuf,
    /// Where bare repos of the local forge may live (`GAFFER_LOCAL_ROOT`, default the
    /// data directory): a registered local origin outside it is refused.
    pub local_root: PathBuf,
    /// The address users and GitHub reach gaffer at behind a proxy (`GAFFER_PUBLIC_URL`):
    /// its host is accepted in `Host` headers beside the bind address.
    pub public_url: Option<String>,
    pub work: WorkSettings,
    pub runs: RunSettings,
    pub llm: LlmSettings,
    pub polling: PollingSettings,
    pub webhook: WebhookSettings,
    pub env: EnvVars,
    /// The config file read (or where gaffer looked), for `doctor` and the start-up log.
    pub config_file: crate::config_file::ConfigFile,
}

impl Settings {
    /// Reads the config file (`GAFFER_CONFIG`, else the first found on the search path of
    /// [`crate::config_file::search_path`]; none found means embedded defaults), `.env` in
    /// the working directory, and the process environment, in rising order of precedence.
    pub fn load() -> Result<Settings, ConfigError> {
        let mut vars = read_dotenv(Path::new(".env"))?;
        vars.extend(std::env::vars());
        let exe = std::env::current_exe().ok();
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        let file = crate::config_file::find(&vars, exe.as_deref(), &cwd);
        let (yaml_text, yaml_name) = match &file.path {
            Some(path) => (
                Some(std::fs::read_to_string(path).map_err(|e| {
                    ConfigError(format!("cannot read the config file {}: {e}", file))
                })?),
                path.display().to_string(),
            ),
            None => (None, DEFAULT_CONFIG_PATH.to_string()),
        };
        let mut settings = Settings::from_sources(yaml_text.as_deref(), &yaml_name, &vars)?;
        settings.config_file = file;
        Ok(settings.absolute())
    }

    /// Resolves the data, work and local-forge directories against the current directory
    /// once, at start-up: a relative path would otherwise mean something else to every
    /// process gaffer starts in another directory.
    pub fn absolute(mut self) -> Settings {
        for dir in [
            &mut self.data_dir,
            &mut self.workdir_root,
            &mut self.local_root,
        ] {
            if let Ok(abs) = std::path::absolute(&*dir) {
                *dir = abs;
            }
        }
        self
    }

    /// Builds settings from a YAML text and a map of variables (`.env` merged under the
    /// environment). Pure, so every rule here is unit-tested without touching the process.
    pub fn from_sources(
        yaml_text: Option<&str>,
        yaml_name: &str,
        vars: &HashMap<String, String>,
    ) -> Result<Settings, ConfigError> {
        let yaml = match yaml_text {
            Some(text) if !text.trim().is_empty() => serde_saphyr::from_str::<Value>(text)
                .map_err(|e| {
                    ConfigError(format!(
                        "cannot parse {yaml_name}: {}",
                        first_line(&e.to_string())
                    ))
                })?,
            _ => Value::Null,
        };
        if !(yaml.is_object() || yaml.is_null()) {
            return Err(ConfigError(format!(
                "cannot use {yaml_name}: expected a mapping of sections such as `server:` and `github:`"
            )));
        }
        let raw = RawSettings {
            yaml,
            yaml_name,
            vars,
        };
        raw.check_yaml_keys()?;
        raw.build()
    }

    /// Whether this bind address is reachable only from this machine.
    pub fn binds_loopback(&self) -> bool {
        self.bind.ip().is_loopback()
    }

    /// The SQLite database file under the data directory.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("gaffer.db")
    }
}

fn read_dotenv(path: &Path) -> Result<HashMap<String, String>, ConfigError> {
    match dotenvy::from_path_iter(path) {
        Ok(iter) => iter
            .map(|item| item.map_err(|e| ConfigError(format!("cannot parse {path:?}: {e}"))))
            .collect(),
        Err(e) if e.not_found() => Ok(HashMap::new()),
        Err(e) => Err(ConfigError(format!("cannot read {path:?}: {e}"))),
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

/// The layered, still untyped sources.
struct RawSettings<'a> {
    yaml: Value,
    yaml_name: &'a str,
    vars: &'a HashMap<String, String>,
}

impl RawSettings<'_> {
    /// Rejects YAML keys that are not settings (typos must not silently fall back to a
    /// default) and secrets written into the file.
    fn check_yaml_keys(&self) -> Result<(), ConfigError> {
        let mut leaves = BTreeSet::new();
        collect_leaves(&self.yaml, String::new(), &mut leaves);
        for leaf in leaves {
            match SETTINGS.iter().find(|s| s.yaml == leaf) {
                None => {
                    return Err(ConfigError(format!(
                        "unknown key {leaf:?} in {}; known keys: {}",
                        self.yaml_name,
                        SETTINGS
                            .iter()
                            .filter(|s| !s.secret)
                            .map(|s| s.yaml)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )))
                }
                Some(s) if s.secret => {
                    return Err(ConfigError(format!(
                        "{leaf} must not be written in {}: secrets are read from the environment or .env only (set {})",
                        self.yaml_name, s.env
                    )))
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// The value of a setting and where it came from, or `None` when unset everywhere.
    fn get(&self, env: &str) -> Option<(String, String)> {
        let setting = lookup(env);
        if let Some(value) = self.vars.get(env) {
            return Some((value.clone(), "the environment".to_string()));
        }
        let mut node = &self.yaml;
        for part in setting.yaml.split('.') {
            node = node.get(part).unwrap_or(&Value::Null);
        }
        match node {
            Value::Null => setting
                .default
                .map(|d| (d.to_string(), "the built-in default".to_string())),
            Value::String(s) => Some((s.clone(), self.yaml_name.to_string())),
            other => Some((other.to_string(), self.yaml_name.to_string())),
        }
    }

    fn parse<T>(
        &self,
        env: &str,
        allowed: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Option<T>, ConfigError> {
        match self.get(env) {
            None => Ok(None),
            Some((value, origin)) => parse(value.trim())
                .map(Some)
                .ok_or_else(|| ConfigError::invalid(lookup(env), &value, &origin, allowed)),
        }
    }

    fn required<T>(
        &self,
        env: &str,
        allowed: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<T, ConfigError> {
        Ok(self
            .parse(env, allowed, parse)?
            .expect("settings with a default are always present"))
    }

    fn text(&self, env: &str) -> Option<String> {
        self.get(env)
            .map(|(v, _)| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    fn secret(&self, env: &str) -> Option<SecretString> {
        self.text(env).map(SecretString::from)
    }

    fn seconds(&self, env: &str) -> Result<Duration, ConfigError> {
        self.required(
            env,
            "a whole number of seconds from 1 to 86400",
            |v| match v.parse::<u64>() {
                Ok(n) if (1..=86_400).contains(&n) => Some(Duration::from_secs(n)),
                _ => None,
            },
        )
    }

    fn url(&self, env: &str) -> Result<String, ConfigError> {
        self.required(env, "an http:// or https:// URL", |v| {
            let ok = (v.starts_with("http://") || v.starts_with("https://"))
                && v.len() > "https://".len()
                && !v.contains(char::is_whitespace);
            ok.then(|| v.trim_end_matches('/').to_string())
        })
    }

    fn model(&self, env: &str) -> Result<Option<String>, ConfigError> {
        self.required(
            env,
            "an Ollama model name such as qwen3:32b, or none",
            |v| {
                if v.eq_ignore_ascii_case("none") {
                    Some(None)
                } else if !v.is_empty() && !v.contains(char::is_whitespace) {
                    Some(Some(v.to_string()))
                } else {
                    None
                }
            },
        )
    }

    fn build(&self) -> Result<Settings, ConfigError> {
        let bind = self.required(
            "GAFFER_BIND",
            "an IP:PORT address such as 127.0.0.1:8000",
            |v| v.parse::<SocketAddr>().ok(),
        )?;
        let data_dir = PathBuf::from(self.text("GAFFER_DATA_DIR").unwrap_or_default());
        let log_format = self.required("GAFFER_LOG_FORMAT", "text or json", |v| match v {
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        })?;
        let log_level = self.required(
            "GAFFER_LOG",
            "a tracing filter such as info or gaffer=debug,info",
            |v| {
                tracing_subscriber::EnvFilter::try_new(v)
                    .ok()
                    .map(|_| v.to_string())
            },
        )?;
        let seed_repo = match (self.text("GH_OWNER"), self.text("GH_REPO")) {
            (None, None) => None,
            (Some(owner), Some(repo)) => {
                let full = format!("{owner}/{repo}");
                Some(FullName::parse(&full).map_err(|e| {
                    ConfigError(format!(
                        "invalid setting GH_OWNER/GH_REPO = {full:?}: expected a GitHub owner and repository name ({e})"
                    ))
                })?)
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err(ConfigError(
                    "invalid settings GH_OWNER/GH_REPO: expected both (to register that repo on first start) or neither".into(),
                ))
            }
        };
        let default_branch =
            self.required("DEFAULT_BRANCH", "a git branch name such as main", |v| {
                crate::registry::valid_branch_name(v).then(|| v.to_string())
            })?;
        let local_root = self
            .text("GAFFER_LOCAL_ROOT")
            .map(PathBuf::from)
            .unwrap_or_else(|| data_dir.clone());
        let workdir_root = self
            .text("WORKDIR_ROOT")
            .map(PathBuf::from)
            .unwrap_or_else(|| data_dir.join("work"));
        let polling = PollingSettings {
            enabled: self.required("POLLING_ENABLED", "true or false", parse_bool)?,
            interval_active: self.seconds("POLL_INTERVAL_ACTIVE")?,
            interval_idle: self.seconds("POLL_INTERVAL_IDLE")?,
            min_remaining_budget: self.required(
                "MIN_REMAINING_BUDGET",
                "a whole number of requests from 0 to 100000",
                |v| v.parse::<u32>().ok().filter(|n| *n <= 100_000),
            )?,
            concurrency: self.required(
                "POLL_CONCURRENCY",
                "a number of repos polled at once, from 1 to 64",
                |v| v.parse::<usize>().ok().filter(|n| (1..=64).contains(n)),
            )?,
            issues_every: self.required(
                "POLL_ISSUES_EVERY",
                "a number of cycles from 0 (never) to 1000",
                |v| v.parse::<u32>().ok().filter(|n| *n <= 1000),
            )?,
        };
        if polling.interval_idle < polling.interval_active {
            return Err(ConfigError(format!(
                "invalid settings POLL_INTERVAL_IDLE = {} and POLL_INTERVAL_ACTIVE = {}: expected the idle interval to be at least the active one",
                polling.interval_idle.as_secs(),
                polling.interval_active.as_secs()
            )));
        }
        Ok(Settings {
            bind,
            data_dir,
            log_format,
            log_level,
            api_token: self.secret("GAFFER_API_TOKEN"),
            github: GithubSettings {
                token: self.secret("GH_TOKEN"),
                api_url: self.url("GITHUB_API_URL")?,
                git_url: self.url("GITHUB_GIT_URL")?,
                write_gap: self.required(
                    "GITHUB_WRITE_GAP_MS",
                    "milliseconds from 0 to 60000 (keep 1000 or more against github.com)",
                    |v| {
                        v.parse::<u64>()
                            .ok()
                            .filter(|ms| *ms <= 60_000)
                            .map(Duration::from_millis)
                    },
                )?,
                timeout: self.required(
                    "GITHUB_TIMEOUT_MS",
                    "milliseconds from 100 to 600000",
                    |v| {
                        v.parse::<u64>()
                            .ok()
                            .filter(|ms| (100..=600_000).contains(ms))
                            .map(Duration::from_millis)
                    },
                )?,
                backoff: self.required(
                    "GITHUB_BACKOFF_MS",
                    "milliseconds from 1 to 60000",
                    |v| {
                        v.parse::<u64>()
                            .ok()
                            .filter(|ms| (1..=60_000).contains(ms))
                            .map(Duration::from_millis)
                    },
                )?,
                points_per_minute: self.required(
                    "GITHUB_POINTS_PER_MINUTE",
                    "points from 0 (off) to 1000000 (github.com: 900)",
                    |v| v.parse::<u32>().ok().filter(|p| *p <= 1_000_000),
                )?,
                max_concurrency: self.required(
                    "GITHUB_MAX_CONCURRENCY",
                    "requests from 1 to 100",
                    |v| v.parse::<usize>().ok().filter(|c| (1..=100).contains(c)),
                )?,
                graphql: self.required("GITHUB_GRAPHQL", "auto or off", |v| match v {
                    "auto" => Some(true),
                    "off" => Some(false),
                    _ => None,
                })?,
                graphql_points_per_minute: self.required(
                    "GITHUB_GRAPHQL_POINTS_PER_MINUTE",
                    "points from 0 (off) to 1000000 (github.com: 2000)",
                    |v| v.parse::<u32>().ok().filter(|p| *p <= 1_000_000),
                )?,
                graphql_batch: self.required(
                    "GITHUB_GRAPHQL_BATCH",
                    "repos per query, from 1 to 100",
                    |v| v.parse::<usize>().ok().filter(|n| (1..=100).contains(n)),
                )?,
                seed_repo,
                default_branch,
            },
            local_root,
            public_url: match self.text("GAFFER_PUBLIC_URL") {
                None => None,
                Some(_) => Some(self.required(
                    "GAFFER_PUBLIC_URL",
                    "an http(s) URL such as https://gaffer.example.com",
                    |v| {
                        reqwest::Url::parse(v)
                            .ok()
                            .filter(|u| {
                                matches!(u.scheme(), "http" | "https") && u.host_str().is_some()
                            })
                            .map(|_| v.trim_end_matches('/').to_string())
                    },
                )?),
            },
            workdir_root,
            work: WorkSettings {
                git_name: self.required("GAFFER_GIT_NAME", "a name for gaffer's commits", |v| {
                    (!v.is_empty()).then(|| v.to_string())
                })?,
                git_email: self.required(
                    "GAFFER_GIT_EMAIL",
                    "an email address for gaffer's commits",
                    |v| v.contains('@').then(|| v.to_string()),
                )?,
                checks_timeout: self.seconds_in("CHECKS_TIMEOUT", 1, 86_400)?,
                checks_setup_timeout: self.seconds_in("CHECKS_SETUP_TIMEOUT", 1, 86_400)?,
                checks_cache_max_bytes: self.required(
                    "CHECKS_CACHE_MAX_MB",
                    "a size in MB from 1 to 1000000",
                    |v| {
                        v.parse::<u64>()
                            .ok()
                            .filter(|n| (1..=1_000_000).contains(n))
                    },
                )? * 1024
                    * 1024,
                checks_sandbox: self.required("CHECKS_SANDBOX", "on or off", |v| match v {
                    "on" => Some(crate::safety::sandbox::SandboxMode::On),
                    "off" => Some(crate::safety::sandbox::SandboxMode::Off),
                    _ => None,
                })?,
                max_attempts: self.required(
                    "DEV_MAX_ATTEMPTS",
                    "a number of attempts from 1 to 10",
                    |v| v.parse::<u32>().ok().filter(|n| (1..=10).contains(n)),
                )?,
                max_steps: self.required(
                    "DEV_MAX_STEPS",
                    "a number of model replies from 1 to 500",
                    |v| v.parse::<u32>().ok().filter(|n| (1..=500).contains(n)),
                )?,
                max_tokens: self.required(
                    "DEV_MAX_TOKENS",
                    "a number of tokens from 1000 to 100000000",
                    |v| {
                        v.parse::<u64>()
                            .ok()
                            .filter(|n| (1000..=100_000_000).contains(n))
                    },
                )?,
                max_wall: Duration::from_secs(
                    60 * self.required(
                        "DEV_MAX_MINUTES",
                        "a number of minutes from 1 to 1440",
                        |v| v.parse::<u64>().ok().filter(|n| (1..=1440).contains(n)),
                    )?,
                ),
                max_iterations: self.required(
                    "DEV_MAX_ITERATIONS",
                    "a number of iterations from 0 to 20",
                    |v| v.parse::<u32>().ok().filter(|n| *n <= 20),
                )?,
                edit_format: self.required(
                    "LLM_DEVELOPER_EDIT_FORMAT",
                    "auto, tools, diff or whole",
                    crate::agent::EditFormat::parse,
                )?,
                diff_max_files: self.required(
                    "DIFF_MAX_FILES",
                    "a number of files from 1 to 1000",
                    |v| v.parse::<usize>().ok().filter(|n| (1..=1000).contains(n)),
                )?,
                diff_max_added_lines: self.required(
                    "DIFF_MAX_ADDED_LINES",
                    "a number of lines from 1 to 100000",
                    |v| {
                        v.parse::<usize>()
                            .ok()
                            .filter(|n| (1..=100_000).contains(n))
                    },
                )?,
            },
            runs: RunSettings {
                concurrency: self.required(
                    "RUN_CONCURRENCY",
                    "a number of runs at once, from 1 to 64",
                    |v| v.parse::<usize>().ok().filter(|n| (1..=64).contains(n)),
                )?,
                stall_timeout: self.seconds_in("RUN_STALL_TIMEOUT", 1, 86_400)?,
                lease: self.seconds_in("RUN_LEASE_SECS", 2, 3_600)?,
                transcript_retention: self.required(
                    "RUN_TRANSCRIPT_RETENTION",
                    "a number of runs from 1 to 1000000",
                    |v| {
                        v.parse::<i64>()
                            .ok()
                            .filter(|n| (1..=1_000_000).contains(n))
                    },
                )?,
            },
            llm: self.llm()?,
            polling,
            config_file: Default::default(),
            env: EnvVars(std::sync::Arc::new(
                self.vars
                    .iter()
                    .map(|(k, v)| (k.clone(), SecretString::from(v.clone())))
                    .collect(),
            )),
            webhook: WebhookSettings {
                retention: self.required(
                    "WEBHOOK_RETENTION",
                    "a number of deliveries from 100 to 10000000",
                    |v| {
                        v.parse::<u32>()
                            .ok()
                            .filter(|n| (100..=10_000_000).contains(n))
                    },
                )?,
                retry_attempts: self.required(
                    "WEBHOOK_RETRY_ATTEMPTS",
                    "a number of attempts from 1 to 50",
                    |v| v.parse::<u32>().ok().filter(|n| (1..=50).contains(n)),
                )?,
                retry_base: self.seconds_in("WEBHOOK_RETRY_BASE_SECS", 1, 3600)?,
                secret: self.secret("GITHUB_WEBHOOK_SECRET"),
                max_body_bytes: self.required(
                    "GAFFER_WEBHOOK_MAX_BODY",
                    "a size in bytes from 1024 to 26214400 (GitHub caps payloads at 25 MB)",
                    |v| {
                        v.parse::<usize>()
                            .ok()
                            .filter(|n| (1024..=26_214_400).contains(n))
                    },
                )?,
            },
        })
    }
}

impl RawSettings<'_> {
    fn llm(&self) -> Result<LlmSettings, ConfigError> {
        let base_url = self.url("OLLAMA_BASE_URL")?;
        let mut roles = Vec::new();
        for role in Role::ALL {
            let name = role.env_name();
            let role_url = format!("LLM_{name}_BASE_URL");
            let provider_env = format!("LLM_{name}_PROVIDER");
            let provider = self.required(&provider_env, "ollama or openai", |v| {
                match v.to_ascii_lowercase().as_str() {
                    "ollama" => Some(Provider::Ollama),
                    "openai" => Some(Provider::OpenAi),
                    _ => None,
                }
            })?;
            let url = match (self.text(&role_url), provider) {
                (Some(_), Provider::Ollama) => self.url(&role_url)?,
                (Some(_), Provider::OpenAi) => openai_api_root(&self.url(&role_url)?),
                (None, Provider::Ollama) => base_url.clone(),
                (None, Provider::OpenAi) => {
                    return Err(ConfigError(format!(
                        "{provider_env}=openai needs {role_url}: the server's OpenAI-compatible API, e.g. http://localhost:8080/v1 (llama-server) or http://localhost:11434/v1 (Ollama)"
                    )))
                }
            };
            let (api_key_env, api_key) = self.api_key(name, provider)?;
            roles.push((
                role,
                RoleLlm {
                    model: self.model(&format!("LLM_{name}_MODEL"))?,
                    provider,
                    base_url: url,
                    api_key_env,
                    api_key,
                    temperature: self.required(
                        &format!("LLM_{name}_TEMPERATURE"),
                        "a number from 0 to 2",
                        |v| v.parse::<f32>().ok().filter(|t| (0.0..=2.0).contains(t)),
                    )?,
                    num_ctx: self.required(
                        &format!("LLM_{name}_NUM_CTX"),
                        "a number of tokens from 2048 to 1048576",
                        |v| {
                            v.parse::<u64>()
                                .ok()
                                .filter(|n| (2048..=1_048_576).contains(n))
                        },
                    )?,
                },
            ));
        }
        Ok(LlmSettings {
            base_url,
            roles,
            keep_alive: self.seconds_in("LLM_KEEP_ALIVE", 0, 7 * 86_400)?,
            request_timeout: self.seconds_in("LLM_REQUEST_TIMEOUT", 1, 86_400)?,
            idle_timeout: self.seconds_in("LLM_IDLE_TIMEOUT", 1, 86_400)?,
            structured_retries: self.required(
                "LLM_STRUCTURED_RETRIES",
                "a number of re-asks from 0 to 10",
                |v| v.parse::<u32>().ok().filter(|n| *n <= 10),
            )?,
            max_parallel: self.required(
                "LLM_MAX_PARALLEL",
                "a number of model calls at once per host, from 1 to 64",
                |v| v.parse::<usize>().ok().filter(|n| (1..=64).contains(n)),
            )?,
        })
    }

    /// `LLM_<ROLE>_API_KEY_ENV` and the key in the variable it names. The key is a secret:
    /// it is never echoed, and a named variable that is unset stops start-up.
    #[allow(clippy::type_complexity)]
    fn api_key(
        &self,
        role: &str,
        provider: Provider,
    ) -> Result<(Option<String>, Option<SecretString>), ConfigError> {
        let env = format!("LLM_{role}_API_KEY_ENV");
        if self.text(&env).is_none() {
            return Ok((None, None)); // unset or empty
        }
        let Some(name) = self.parse(
            &env,
            "the name of a variable, such as OPENAI_API_KEY",
            |v| {
                let mut chars = v.chars();
                let first_ok = chars
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
                (first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_'))
                    .then(|| v.to_string())
            },
        )?
        else {
            return Ok((None, None));
        };
        if provider != Provider::OpenAi {
            return Err(ConfigError(format!(
                "{env} is set but LLM_{role}_PROVIDER is not openai: Ollama's native API takes no key (set LLM_{role}_PROVIDER=openai, or unset {env})"
            )));
        }
        match self.vars.get(&name).map(|v| v.trim()).filter(|v| !v.is_empty()) {
            Some(key) => Ok((Some(name), Some(SecretString::from(key.to_string())))),
            None => Err(ConfigError(format!(
                "{env} names {name}, which is not set: put the API key in {name} (environment or .env)"
            ))),
        }
    }

    fn seconds_in(&self, env: &str, min: u64, max: u64) -> Result<Duration, ConfigError> {
        self.required(
            env,
            &format!("a whole number of seconds from {min} to {max}"),
            |v| {
                v.parse::<u64>()
                    .ok()
                    .filter(|n| (min..=max).contains(n))
                    .map(Duration::from_secs)
            },
        )
    }
}

/// An OpenAI-compatible API root: a bare `http://host:port` gets `/v1`, where every
/// well-known server (llama-server, vLLM, LM Studio, Ollama) serves it.
fn openai_api_root(url: &str) -> String {
    let path = url
        .split_once("://")
        .map(|(_, rest)| rest)
        .and_then(|rest| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or("");
    if path.trim_matches('/').is_empty() {
        format!("{}/v1", url.trim_end_matches('/'))
    } else {
        url.to_string()
    }
}

fn lookup(env: &str) -> &'static Setting {
    SETTINGS
        .iter()
        .find(|s| s.env == env)
        .expect("every setting read is in SETTINGS")
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn collect_leaves(value: &Value, prefix: String, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                collect_leaves(child, path, out);
            }
        }
        Value::Null => {}
        _ if prefix.is_empty() => {}
        _ => {
            out.insert(prefix);
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn build(yaml: Option<&str>, pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::from_sources(yaml, "test.yaml", &vars(pairs))
    }

    #[test]
    fn defaults_match_the_original_tool() {
        let s = build(None, &[]).unwrap();
        assert_eq!(s.bind.to_string(), "127.0.0.1:8000");
        assert_eq!(s.data_dir, PathBuf::from("./data"));
        assert_eq!(s.workdir_root, PathBuf::from("./data/work"));
        assert_eq!(
            s.llm.role(Role::Planner).model.as_deref(),
            Some("qwen3:32b")
        );
        assert_eq!(
            s.llm.role(Role::Developer).model.as_deref(),
            Some("qwen3-coder:latest")
        );
        assert_eq!(s.llm.role(Role::Integrator).model, None);
        assert!(s.llm.role(Role::Developer).temperature <= 0.2);
        assert!(s.llm.role(Role::Reviewer).temperature <= 0.2);
        assert!(s.llm.role(Role::Developer).num_ctx >= 16_384);
        assert!(s.llm.warnings().is_empty());
        assert!(!s.polling.enabled);
        assert_eq!(s.github.api_url, "https://api.github.com");
        assert!(s.github.seed_repo.is_none());
        assert_eq!(s.webhook.max_body_bytes, 1 << 20);
    }

    #[test]
    fn the_shipped_config_file_parses_and_equals_the_embedded_defaults() {
        let text = include_str!("../config/gaffer.yaml");
        let from_file = build(Some(text), &[]).unwrap();
        let embedded = build(None, &[]).unwrap();
        assert_eq!(format!("{from_file:?}"), format!("{embedded:?}"));
    }

    #[test]
    fn environment_beats_yaml_and_yaml_beats_defaults() {
        let yaml = "polling:\n  interval_active: 30\n  interval_idle: 900\n";
        let s = build(Some(yaml), &[("POLL_INTERVAL_ACTIVE", "45")]).unwrap();
        assert_eq!(s.polling.interval_active, Duration::from_secs(45));
        assert_eq!(s.polling.interval_idle, Duration::from_secs(900));
    }

    #[test]
    fn a_bad_value_names_the_setting_the_value_and_what_is_allowed() {
        let err = build(None, &[("POLL_INTERVAL_ACTIVE", "soon")]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("POLL_INTERVAL_ACTIVE"), "{msg}");
        assert!(msg.contains("\"soon\""), "{msg}");
        assert!(msg.contains("whole number of seconds"), "{msg}");
        assert_eq!(msg.lines().count(), 1);
    }

    #[test]
    fn bad_values_of_each_kind_are_refused() {
        for (key, value) in [
            ("GAFFER_BIND", "localhost"),
            ("GAFFER_LOG_FORMAT", "xml"),
            ("POLLING_ENABLED", "maybe"),
            ("MIN_REMAINING_BUDGET", "-1"),
            ("OLLAMA_BASE_URL", "localhost:11434"),
            ("LLM_DEVELOPER_MODEL", "two words"),
            ("DEFAULT_BRANCH", "bad..branch"),
            ("GAFFER_WEBHOOK_MAX_BODY", "10"),
        ] {
            let err = build(None, &[(key, value)]).unwrap_err().to_string();
            assert!(err.contains(key), "{key}: {err}");
        }
    }

    #[test]
    fn unknown_yaml_keys_are_refused() {
        let err = build(Some("polling:\n  intervall_active: 5\n"), &[]).unwrap_err();
        assert!(err.to_string().contains("polling.intervall_active"));
    }

    #[test]
    fn secrets_in_yaml_are_refused_and_never_echoed() {
        let err = build(Some("github:\n  token: ghp_supersecret\n"), &[]).unwrap_err();
        assert!(err.to_string().contains("GH_TOKEN"));
        assert!(!err.to_string().contains("ghp_supersecret"));
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let s = build(None, &[("GH_TOKEN", "ghp_supersecret")]).unwrap();
        assert_eq!(
            s.github.token.as_ref().unwrap().expose_secret(),
            "ghp_supersecret"
        );
        assert!(!format!("{s:?}").contains("ghp_supersecret"));
    }

    #[test]
    fn owner_and_repo_come_together_and_are_validated() {
        let s = build(None, &[("GH_OWNER", "acme"), ("GH_REPO", "widget")]).unwrap();
        assert_eq!(s.github.seed_repo.unwrap().to_string(), "acme/widget");
        assert!(build(None, &[("GH_OWNER", "acme")]).is_err());
        assert!(build(None, &[("GH_OWNER", "-acme"), ("GH_REPO", "w")]).is_err());
    }

    #[test]
    fn per_role_llm_overrides_and_small_context_warnings() {
        let s = build(
            None,
            &[
                ("LLM_REVIEWER_BASE_URL", "http://gpu-box:11434/"),
                ("LLM_DEVELOPER_NUM_CTX", "8192"),
                ("LLM_PLANNER_TEMPERATURE", "0.7"),
            ],
        )
        .unwrap();
        assert_eq!(s.llm.role(Role::Reviewer).base_url, "http://gpu-box:11434");
        assert_eq!(
            s.llm.role(Role::Developer).base_url,
            "http://localhost:11434"
        );
        assert_eq!(s.llm.role(Role::Planner).temperature, 0.7);
        let warnings = s.llm.warnings();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("LLM_DEVELOPER_NUM_CTX"));
        assert!(build(None, &[("LLM_REVIEWER_TEMPERATURE", "hot")]).is_err());
        assert!(build(None, &[("LLM_DEVELOPER_NUM_CTX", "100")]).is_err());
    }

    #[test]
    fn a_role_switches_to_an_openai_server_by_settings_alone() {
        let s = build(
            None,
            &[
                ("LLM_REVIEWER_PROVIDER", "openai"),
                ("LLM_REVIEWER_BASE_URL", "http://127.0.0.1:8080"),
                ("LLM_REVIEWER_API_KEY_ENV", "MY_KEY"),
                ("MY_KEY", "sk-very-secret"),
                ("LLM_DEVELOPER_PROVIDER", "OpenAI"),
                (
                    "LLM_DEVELOPER_BASE_URL",
                    "https://api.example.com/openai/v1/",
                ),
            ],
        )
        .unwrap();
        let reviewer = s.llm.role(Role::Reviewer);
        assert_eq!(reviewer.provider, Provider::OpenAi);
        assert_eq!(reviewer.base_url, "http://127.0.0.1:8080/v1");
        assert_eq!(reviewer.api_key_env.as_deref(), Some("MY_KEY"));
        assert_eq!(
            reviewer.api_key.as_ref().unwrap().expose_secret(),
            "sk-very-secret"
        );
        let developer = s.llm.role(Role::Developer);
        assert_eq!(developer.base_url, "https://api.example.com/openai/v1");
        assert!(developer.api_key.is_none());
        assert_eq!(s.llm.role(Role::Planner).provider, Provider::Ollama);
        assert!(!format!("{s:?}").contains("sk-very-secret"));
    }

    #[test]
    fn openai_settings_that_cannot_work_are_refused_without_the_key() {
        let no_url = build(None, &[("LLM_REVIEWER_PROVIDER", "openai")]).unwrap_err();
        assert!(
            no_url.to_string().contains("LLM_REVIEWER_BASE_URL"),
            "{no_url}"
        );
        let bad = build(None, &[("LLM_REVIEWER_PROVIDER", "anthropic")]).unwrap_err();
        assert!(bad.to_string().contains("ollama or openai"), "{bad}");
        let base = [
            ("LLM_REVIEWER_PROVIDER", "openai"),
            ("LLM_REVIEWER_BASE_URL", "http://127.0.0.1:8080/v1"),
        ];
        let unset = build(
            None,
            &[base[0], base[1], ("LLM_REVIEWER_API_KEY_ENV", "NOPE")],
        )
        .unwrap_err()
        .to_string();
        assert!(
            unset.contains("NOPE") && unset.contains("not set"),
            "{unset}"
        );
        let not_a_name = build(
            None,
            &[base[0], base[1], ("LLM_REVIEWER_API_KEY_ENV", "sk-abc123")],
        )
        .unwrap_err()
        .to_string();
        assert!(not_a_name.contains("name of a variable"), "{not_a_name}");
        let on_ollama = build(
            None,
            &[
                ("LLM_REVIEWER_API_KEY_ENV", "MY_KEY"),
                ("MY_KEY", "sk-secret"),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(on_ollama.contains("not openai") && !on_ollama.contains("sk-secret"));
    }

    #[test]
    fn idle_interval_must_not_be_shorter_than_active() {
        let err = build(
            None,
            &[
                ("POLL_INTERVAL_ACTIVE", "600"),
                ("POLL_INTERVAL_IDLE", "60"),
            ],
        )
        .unwrap_err();
        assert!(err.to_string().contains("POLL_INTERVAL_IDLE"));
    }
}
