//! The repo registry: which repositories gaffer works on, and how (`observe`, `pr`,
//! `disabled`). Names are parsed once into [`FullName`] (GitHub's naming rules), so the
//! rest of the code never sees an unchecked name.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::error::{AppError, AppResult};
use crate::store::Store;

/// How much gaffer may do to a repo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Read and report; change nothing.
    Observe,
    /// Act, through pull requests only.
    Pr,
    /// Ignored by every trigger.
    Disabled,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Observe, Mode::Pr, Mode::Disabled];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Observe => "observe",
            Mode::Pr => "pr",
            Mode::Disabled => "disabled",
        }
    }
}

impl FromStr for Mode {
    type Err = AppError;

    fn from_str(s: &str) -> AppResult<Mode> {
        Mode::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                AppError::bad_request(format!(
                    "unknown mode {s:?}: expected observe, pr or disabled"
                ))
                .with_detail(json!({"field": "mode", "allowed": ["observe", "pr", "disabled"]}))
            })
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which forge hosts a repo; it decides how gaffer reads it and opens PRs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ForgeKind {
    /// github.com or GitHub Enterprise Server, through the REST API.
    Github,
    /// A bare git repository on disk (`file://` clone URL), PRs kept in gaffer's database.
    Local,
}

impl ForgeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ForgeKind::Github => "github",
            ForgeKind::Local => "local",
        }
    }
}

impl FromStr for ForgeKind {
    type Err = AppError;

    fn from_str(s: &str) -> AppResult<ForgeKind> {
        match s {
            "github" => Ok(ForgeKind::Github),
            "local" => Ok(ForgeKind::Local),
            other => Err(AppError::bad_request(format!(
                "unknown forge {other:?}: expected github or local"
            ))
            .with_detail(json!({"field": "forge", "allowed": ["github", "local"]}))),
        }
    }
}

/// A repository's `owner/name`, valid under GitHub's naming rules.
///
/// GitHub owners cannot contain `_`, so the original tool's single-segment id
/// `owner_name` splits unambiguously at the first underscore.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FullName {
    owner: String,
    name: String,
}

impl FullName {
    /// Parses `owner/name`.
    pub fn parse(full_name: &str) -> AppResult<FullName> {
        match full_name.split_once('/') {
            Some((owner, name)) => FullName::new(owner, name),
            None => Err(invalid_name(
                full_name,
                "expected owner/name, e.g. octocat/hello-world",
            )),
        }
    }

    /// Parses the original tool's id form `owner_name`.
    pub fn from_id(id: &str) -> AppResult<FullName> {
        match id.split_once('_') {
            Some((owner, name)) => FullName::new(owner, name),
            None => Err(invalid_name(
                id,
                "expected owner/name, or the id form owner_name",
            )),
        }
    }

    pub fn new(owner: &str, name: &str) -> AppResult<FullName> {
        let full = format!("{owner}/{name}");
        check_owner(owner).map_err(|why| invalid_name(&full, why))?;
        check_repo_name(name).map_err(|why| invalid_name(&full, why))?;
        Ok(FullName {
            owner: owner.to_string(),
            name: name.to_string(),
        })
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The original tool's single-segment id, `owner_name`.
    pub fn id(&self) -> String {
        format!("{}_{}", self.owner, self.name)
    }
}

impl fmt::Display for FullName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

fn invalid_name(given: &str, why: &str) -> AppError {
    AppError::bad_request(format!("invalid repository name {given:?}: {why}"))
        .with_detail(json!({"field": "full_name", "value": given}))
}

/// GitHub user and organisation names: 1-39 ASCII letters, digits and single hyphens,
/// neither first nor last.
fn check_owner(owner: &str) -> Result<(), &'static str> {
    if owner.is_empty() || owner.len() > 39 {
        return Err("the owner must be 1 to 39 characters");
    }
    if !owner.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err("the owner may only contain letters, digits and hyphens");
    }
    if owner.starts_with('-') || owner.ends_with('-') || owner.contains("--") {
        return Err("the owner cannot start or end with a hyphen or contain two in a row");
    }
    Ok(())
}

/// GitHub repository names: 1-100 ASCII letters, digits, `.`, `-` and `_`, but not `.`
/// or `..`, and not ending in `.git` (GitHub strips it).
fn check_repo_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 100 {
        return Err("the repository name must be 1 to 100 characters");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        return Err("the repository name may only contain letters, digits, '.', '-' and '_'");
    }
    if name == "." || name == ".." {
        return Err("the repository name cannot be '.' or '..'");
    }
    if name.to_ascii_lowercase().ends_with(".git") {
        return Err("the repository name cannot end in .git");
    }
    Ok(())
}

/// Whether `name` is a usable git branch name (the subset of `git check-ref-format`
/// that matters for branches gaffer reads and creates).
pub fn valid_branch_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with(['-', '/', '.'])
        && !name.ends_with(['/', '.'])
        && !name.ends_with(".lock")
        && !name.contains("..")
        && !name.contains("//")
        && !name.contains("@{")
        && !name
            .chars()
            .any(|c| c.is_ascii_control() || " ~^:?*[\\".contains(c))
}

/// A per-role model override; absent roles use the global settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelOverrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taskmaster: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub developer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integrator: Option<String>,
}

/// Per-repo settings that differ from the global ones.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RepoOverrides {
    #[serde(default)]
    pub models: ModelOverrides,
    /// Seconds; overrides `POLL_INTERVAL_ACTIVE` for this repo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_interval_active: Option<u64>,
    /// Seconds; overrides `POLL_INTERVAL_IDLE` for this repo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_interval_idle: Option<u64>,
    /// The *name* of the environment variable holding this repo's webhook secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_secret_env: Option<String>,
    /// Whose PRs webhooks may act on (GitHub `author_association` values); default
    /// OWNER, MEMBER, COLLABORATOR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_associations: Option<Vec<String>>,
    /// UTC hours the crew leaves this repo alone, e.g. `"22:00-07:00"`: queued runs wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub quiet_hours: Option<QuietHours>,
    /// At most this many runs start per UTC day for this repo; later ones wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_runs_per_day: Option<u32>,
    /// The issue workflow's labels: the one that hands an issue to gaffer, and the ones
    /// mirroring its state.
    #[serde(default, skip_serializing_if = "IssueLabels::is_default")]
    pub labels: IssueLabels,
}

/// The labels of the issue workflow (each may be renamed per repo).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct IssueLabels {
    /// An open issue carrying it, by a trusted author, becomes a task.
    pub trigger: String,
    pub queued: String,
    pub running: String,
    pub review: String,
    pub done: String,
    pub blocked: String,
}

impl Default for IssueLabels {
    fn default() -> Self {
        IssueLabels {
            trigger: "gaffer".into(),
            queued: "gaffer:queued".into(),
            running: "gaffer:running".into(),
            review: "gaffer:review".into(),
            done: "gaffer:done".into(),
            blocked: "gaffer:blocked".into(),
        }
    }
}

impl IssueLabels {
    fn is_default(&self) -> bool {
        self == &IssueLabels::default()
    }

    fn all(&self) -> [(&'static str, &String); 6] {
        [
            ("trigger", &self.trigger),
            ("queued", &self.queued),
            ("running", &self.running),
            ("review", &self.review),
            ("done", &self.done),
            ("blocked", &self.blocked),
        ]
    }
}

/// A daily window in UTC, `HH:MM-HH:MM` (it may wrap past midnight).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuietHours {
    start: u32,
    end: u32,
}

impl QuietHours {
    /// Whether `minute` (of the UTC day) is inside the window.
    pub fn contains(&self, minute: u32) -> bool {
        if self.start <= self.end {
            (self.start..self.end).contains(&minute)
        } else {
            minute >= self.start || minute < self.end
        }
    }

    fn parse(text: &str) -> Option<QuietHours> {
        let minute = |t: &str| {
            let (h, m) = t.trim().split_once(':')?;
            let (h, m) = (h.parse::<u32>().ok()?, m.parse::<u32>().ok()?);
            (h < 24 && m < 60).then_some(h * 60 + m)
        };
        let (a, b) = text.split_once('-')?;
        Some(QuietHours {
            start: minute(a)?,
            end: minute(b)?,
        })
    }
}

impl Serialize for QuietHours {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!(
            "{:02}:{:02}-{:02}:{:02}",
            self.start / 60,
            self.start % 60,
            self.end / 60,
            self.end % 60
        ))
    }
}

impl<'de> Deserialize<'de> for QuietHours {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        QuietHours::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "invalid quiet_hours {text:?}: expected HH:MM-HH:MM in UTC, e.g. 22:00-07:00"
            ))
        })
    }
}

/// GitHub's `author_association` values.
pub const ASSOCIATIONS: &[&str] = &[
    "OWNER",
    "MEMBER",
    "COLLABORATOR",
    "CONTRIBUTOR",
    "FIRST_TIME_CONTRIBUTOR",
    "FIRST_TIMER",
    "MANNEQUIN",
    "NONE",
];

/// Who may trigger roles by default.
pub const DEFAULT_ASSOCIATIONS: &[&str] = &["OWNER", "MEMBER", "COLLABORATOR"];

impl RepoOverrides {
    fn validate(&self) -> AppResult<()> {
        for (role, model) in [
            ("planner", &self.models.planner),
            ("taskmaster", &self.models.taskmaster),
            ("developer", &self.models.developer),
            ("reviewer", &self.models.reviewer),
            ("integrator", &self.models.integrator),
        ] {
            if let Some(model) = model {
                if model.is_empty() || model.contains(char::is_whitespace) {
                    return Err(AppError::bad_request(format!(
                        "invalid model {model:?} for role {role}: expected an Ollama model name such as qwen3:32b, or none"
                    ))
                    .with_detail(json!({"field": format!("models.{role}")})));
                }
            }
        }
        for (field, seconds) in [
            ("poll_interval_active", self.poll_interval_active),
            ("poll_interval_idle", self.poll_interval_idle),
        ] {
            if let Some(s) = seconds {
                if !(1..=86_400).contains(&s) {
                    return Err(AppError::bad_request(format!(
                        "invalid {field} {s}: expected seconds from 1 to 86400"
                    ))
                    .with_detail(json!({"field": field})));
                }
            }
        }
        if let Some(list) = &self.allowed_associations {
            if let Some(bad) = list.iter().find(|a| !ASSOCIATIONS.contains(&a.as_str())) {
                return Err(AppError::bad_request(format!(
                    "invalid allowed_associations entry {bad:?}: expected some of {}",
                    ASSOCIATIONS.join(", ")
                ))
                .with_detail(json!({"field": "allowed_associations"})));
            }
        }
        for (field, label) in self.labels.all() {
            // GitHub's issue listing takes labels comma-separated; 50 is its length limit.
            if label.trim().is_empty() || label.contains(',') || label.chars().count() > 50 {
                return Err(AppError::bad_request(format!(
                    "invalid labels.{field} {label:?}: expected a label name of 1 to 50 characters without commas"
                ))
                .with_detail(json!({"field": format!("labels.{field}")})));
            }
        }
        if let Some(var) = &self.webhook_secret_env {
            let is_env_name = var
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_uppercase() || c == '_')
                && var
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            if !is_env_name || var.len() > 128 {
                return Err(AppError::bad_request(
                    "invalid webhook_secret_env: expected the NAME of an environment variable (A-Z, 0-9, _), never the secret itself",
                )
                .with_detail(json!({"field": "webhook_secret_env"})));
            }
            // Only variables meant as webhook secrets: any other (HOME, GH_TOKEN) would let
            // whoever can sign with its value, or guess it, pass as GitHub.
            if !var.contains("WEBHOOK_SECRET") {
                return Err(AppError::bad_request(format!(
                    "invalid webhook_secret_env {var:?}: the variable's name must contain WEBHOOK_SECRET (e.g. TALLY_WEBHOOK_SECRET), so no other setting can serve as a webhook secret"
                ))
                .with_detail(json!({"field": "webhook_secret_env"})));
            }
        }
        Ok(())
    }
}

/// A registered repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Repo {
    /// The original tool's id, `owner_name`; usable wherever a path names a repo.
    pub id: String,
    pub full_name: String,
    pub owner: String,
    pub name: String,
    pub mode: Mode,
    pub default_branch: String,
    pub clone_url: String,
    pub forge: ForgeKind,
    pub overrides: RepoOverrides,
    pub created_at: String,
    pub updated_at: String,
}

impl Repo {
    pub fn full_name(&self) -> FullName {
        FullName {
            owner: self.owner.clone(),
            name: self.name.clone(),
        }
    }
}

/// What a caller asks to register. Both the current shape (`full_name`) and the original
/// tool's (`owner` + `repo`) are accepted.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRepo {
    /// `owner/name`.
    pub full_name: Option<String>,
    /// With `repo`: the original tool's way of naming the repository.
    pub owner: Option<String>,
    pub repo: Option<String>,
    /// `observe` (default), `pr` or `disabled`.
    pub mode: Option<String>,
    /// Defaults to `DEFAULT_BRANCH`.
    pub default_branch: Option<String>,
    /// Defaults to `GITHUB_GIT_URL/owner/name.git`.
    pub clone_url: Option<String>,
    /// `github` (default).
    pub forge: Option<String>,
    #[serde(default)]
    pub overrides: Option<RepoOverrides>,
}

/// A partial update; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RepoPatch {
    pub mode: Option<String>,
    pub default_branch: Option<String>,
    pub clone_url: Option<String>,
    /// Replaces the overrides as a whole.
    pub overrides: Option<RepoOverrides>,
}

/// How many repos are in each mode.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct ModeCounts {
    pub observe: usize,
    pub pr: usize,
    pub disabled: usize,
}

/// Values a new repo takes when the caller does not give them.
#[derive(Debug, Clone)]
pub struct RepoDefaults {
    pub default_branch: String,
    pub git_url: String,
    /// Where local-forge origins may live.
    pub local_root: std::path::PathBuf,
}

/// How long a looked-up repo is served from memory. Changes made through this process
/// clear it at once; changes by another process (the CLI) show within this time.
const LOOKUP_TTL: std::time::Duration = std::time::Duration::from_secs(2);

/// The registry service: validation here, persistence in the store.
#[derive(Clone)]
pub struct Registry {
    store: Store,
    defaults: RepoDefaults,
    /// Hot lookups (every webhook delivery, every poll) skip the database.
    recent: moka::future::Cache<String, Repo>,
}

impl Registry {
    pub fn new(store: Store, defaults: RepoDefaults) -> Self {
        Registry {
            store,
            defaults,
            recent: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(LOOKUP_TTL)
                .build(),
        }
    }

    fn cache_key(name: &FullName) -> String {
        name.to_string().to_ascii_lowercase()
    }

    /// Registers a repo; 409 if it (in any letter case) is already registered.
    pub async fn add(&self, request: NewRepo) -> AppResult<Repo> {
        {
            let full_name = match (&request.full_name, &request.owner, &request.repo) {
                (Some(full), None, None) => FullName::parse(full)?,
                (None, Some(owner), Some(repo)) => FullName::new(owner, repo)?,
                (None, None, None) => {
                    return Err(AppError::bad_request(
                        "missing repository: give full_name (\"owner/name\") or owner and repo",
                    )
                    .with_detail(json!({"field": "full_name"})))
                }
                _ => {
                    return Err(AppError::bad_request(
                        "give either full_name or owner and repo, not a mix",
                    )
                    .with_detail(json!({"field": "full_name"})))
                }
            };
            let mode = request.mode.as_deref().unwrap_or("observe").parse()?;
            let forge: ForgeKind = request.forge.as_deref().unwrap_or("github").parse()?;
            let default_branch = match request.default_branch {
                Some(branch) => checked_branch(branch)?,
                None => self.defaults.default_branch.clone(),
            };
            let clone_url = match request.clone_url {
                Some(url) => checked_clone_url(url)?,
                None => format!("{}/{}.git", self.defaults.git_url, full_name),
            };
            if forge == ForgeKind::Local {
                check_local_origin(&clone_url, &self.defaults.local_root)?;
            }
            let overrides = request.overrides.unwrap_or_default();
            overrides.validate()?;
            let row = NewRepoRow {
                full_name: &full_name,
                mode,
                default_branch: &default_branch,
                clone_url: &clone_url,
                forge,
                overrides: &overrides,
            };
            self.store.insert_repo(&row).await
        }
    }

    pub async fn get(&self, name: &FullName) -> AppResult<Repo> {
        let key = Self::cache_key(name);
        if let Some(repo) = self.recent.get(&key).await {
            return Ok(repo);
        }
        let repo = self
            .store
            .find_repo(name)
            .await?
            .ok_or_else(|| not_registered(name))?;
        self.recent.insert(key, repo.clone()).await;
        Ok(repo)
    }

    pub async fn list(&self) -> AppResult<(Vec<Repo>, ModeCounts)> {
        let repos = self.store.list_repos().await?;
        let mut counts = ModeCounts::default();
        for repo in &repos {
            match repo.mode {
                Mode::Observe => counts.observe += 1,
                Mode::Pr => counts.pr += 1,
                Mode::Disabled => counts.disabled += 1,
            }
        }
        Ok((repos, counts))
    }

    pub async fn update(&self, name: &FullName, patch: RepoPatch) -> AppResult<Repo> {
        let mut repo = self.get(name).await?;
        if let Some(mode) = patch.mode {
            repo.mode = mode.parse()?;
        }
        if let Some(branch) = patch.default_branch {
            repo.default_branch = checked_branch(branch)?;
        }
        if let Some(url) = patch.clone_url {
            repo.clone_url = checked_clone_url(url)?;
            if repo.forge == ForgeKind::Local {
                check_local_origin(&repo.clone_url, &self.defaults.local_root)?;
            }
        }
        if let Some(overrides) = patch.overrides {
            overrides.validate()?;
            repo.overrides = overrides;
        }
        self.store.update_repo(&repo).await?;
        self.recent.invalidate(&Self::cache_key(name)).await;
        self.get(name).await
    }

    pub async fn set_mode(&self, name: &FullName, mode: &str) -> AppResult<Repo> {
        self.update(
            name,
            RepoPatch {
                mode: Some(mode.to_string()),
                ..RepoPatch::default()
            },
        )
        .await
    }

    pub async fn remove(&self, name: &FullName) -> AppResult<Repo> {
        let repo = self.get(name).await?;
        self.store.delete_repo(name).await?;
        self.recent.invalidate(&Self::cache_key(name)).await;
        self.store.forget_repo_state(name).await?;
        Ok(repo)
    }

    /// Registers `GH_OWNER/GH_REPO` the first time gaffer starts with them set. Only once:
    /// a user who later removes that repo does not see it come back on the next start.
    pub async fn seed_once(&self, name: &FullName) -> AppResult<Option<Repo>> {
        let key = format!("seeded:{}", name.to_string().to_ascii_lowercase());
        if self.store.meta_get(&key).await?.is_some() {
            return Ok(None);
        }
        let added = match self.store.find_repo(name).await? {
            Some(_) => None,
            None => Some(
                self.add(NewRepo {
                    full_name: Some(name.to_string()),
                    ..NewRepo::default()
                })
                .await?,
            ),
        };
        self.store.meta_set(&key, "1").await?;
        Ok(added)
    }
}

/// The validated columns of a repo about to be inserted.
pub struct NewRepoRow<'a> {
    pub full_name: &'a FullName,
    pub mode: Mode,
    pub default_branch: &'a str,
    pub clone_url: &'a str,
    pub forge: ForgeKind,
    pub overrides: &'a RepoOverrides,
}

fn not_registered(name: &FullName) -> AppError {
    AppError::not_found(format!("repo {name} is not registered"))
        .with_detail(json!({"full_name": name.to_string()}))
}

fn checked_branch(branch: String) -> AppResult<String> {
    if valid_branch_name(&branch) {
        Ok(branch)
    } else {
        Err(AppError::bad_request(format!(
            "invalid default_branch {branch:?}: expected a git branch name such as main"
        ))
        .with_detail(json!({"field": "default_branch"})))
    }
}

/// A `local` repo's clone URL must name an existing bare git repository on disk, under
/// the allowed root (`GAFFER_LOCAL_ROOT`), whose own config runs no programs.
fn check_local_origin(clone_url: &str, local_root: &Path) -> AppResult<()> {
    let bad = |why: String| {
        AppError::bad_request(format!("invalid clone_url for forge local: {why}"))
            .with_detail(json!({"field": "clone_url"}))
    };
    let path = crate::forge::local::origin_path(clone_url);
    let bare = path.join("HEAD").is_file() && path.join("objects").is_dir();
    if !(path.is_absolute() && bare) {
        return Err(bad(format!(
            "{clone_url} is not an absolute path (or file:// URL) to a bare git repository"
        )));
    }
    crate::forge::local::check_origin(&path, local_root).map_err(bad)
}

/// Clone URLs may be https, http, ssh (`git@host:owner/name.git`) or file, and must not
/// carry credentials anywhere (user info with a password, a query string or fragment):
/// a token in a URL ends up in logs and in `.git/config`.
fn checked_clone_url(url: String) -> AppResult<String> {
    let bad = |why: &str| {
        AppError::bad_request(format!("invalid clone_url: {why}"))
            .with_detail(json!({"field": "clone_url"}))
    };
    if url.contains(char::is_whitespace) || url.chars().any(|c| c.is_control()) {
        return Err(bad("it contains whitespace"));
    }
    if url.contains(['?', '#']) {
        return Err(bad(
            "a query string or fragment is not allowed (tokens such as ?access_token= do not belong in URLs)",
        ));
    }
    let credentials =
        "credentials in a clone URL are not allowed (gaffer passes GH_TOKEN as an auth header)";
    if let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    {
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.contains('@') {
            return Err(bad(credentials));
        }
        if authority.is_empty() {
            return Err(bad("it has no host"));
        }
        return Ok(url);
    }
    if let Some(rest) = url.strip_prefix("ssh://") {
        // ssh://user@host/path is fine; ssh://user:password@host is not.
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.split('@').count() > 2
            || authority
                .rsplit_once('@')
                .is_some_and(|(user, _)| user.contains(':'))
        {
            return Err(bad(credentials));
        }
        return Ok(url);
    }
    if let Some(rest) = url.strip_prefix("git@") {
        if rest.split(':').next().unwrap_or_default().contains('@') {
            return Err(bad(credentials));
        }
        return Ok(url);
    }
    if url.starts_with("file://") {
        return Ok(url);
    }
    Err(bad(
        "expected an https://, http://, ssh://, git@ or file:// URL",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_naming_rules() {
        for ok in ["octocat/hello-world", "a/b", "A-1/x.y_z", "acme/.github"] {
            assert!(FullName::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "octocat", "/x", "x/", "-a/x", "a-/x", "a--b/x", "a_b/x", "a/b/c", "a/..", "a/.",
            "a/x.git", "a/sp ace", "a/ü",
        ] {
            assert!(FullName::parse(bad).is_err(), "{bad}");
        }
        assert!(FullName::parse(&format!("{}/x", "a".repeat(40))).is_err());
        assert!(FullName::parse(&format!("a/{}", "x".repeat(101))).is_err());
    }

    #[test]
    fn the_id_form_splits_at_the_first_underscore() {
        let name = FullName::from_id("acme_my_repo").unwrap();
        assert_eq!(name.owner(), "acme");
        assert_eq!(name.name(), "my_repo");
        assert_eq!(name.id(), "acme_my_repo");
        assert!(FullName::from_id("acme").is_err());
    }

    #[test]
    fn branch_names() {
        for ok in ["main", "release/1.0", "feature/T-0001-ci"] {
            assert!(valid_branch_name(ok), "{ok}");
        }
        for bad in ["", "-x", "a..b", "a b", "x.lock", "a/", "a~1", "a:b", "@{x"] {
            assert!(!valid_branch_name(bad), "{bad}");
        }
    }

    #[test]
    fn clone_urls_never_carry_credentials() {
        assert!(checked_clone_url("https://github.com/a/b.git".into()).is_ok());
        assert!(checked_clone_url("file:///tmp/a.git".into()).is_ok());
        assert!(checked_clone_url("git@github.com:a/b.git".into()).is_ok());
        assert!(
            checked_clone_url("https://x-access-token:ghp_1@github.com/a/b.git".into()).is_err()
        );
        assert!(checked_clone_url("ftp://example.com/a".into()).is_err());
        assert!(checked_clone_url("ssh://git@github.com/a/b.git".into()).is_ok());
        for bad in [
            "ssh://user:pass@github.com/a/b.git",
            "ssh://a@b@github.com/a/b.git",
            "https://github.com/a/b.git?access_token=ghp_1",
            "https://github.com/a/b.git#ghp_1",
            "file:///tmp/a.git?x=1",
            "git@evil@github.com:a/b.git",
        ] {
            assert!(checked_clone_url(bad.into()).is_err(), "{bad}");
        }
    }

    #[test]
    fn modes_parse_with_a_helpful_error() {
        assert_eq!("pr".parse::<Mode>().unwrap(), Mode::Pr);
        let err = "active".parse::<Mode>().unwrap_err();
        assert!(err.message.contains("observe, pr or disabled"));
    }
}
