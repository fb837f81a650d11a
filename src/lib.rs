//! gaffer: a self-hosted orchestrator that runs local-LLM roles against GitHub repos,
//! changing them only through pull requests.
//!
//! This file lists the modules and builds the running app from [`config::Settings`]:
//! [`Gaffer`] holds the services (shared by the HTTP API and the CLI), [`Application`]
//! serves them over HTTP.

pub mod agent;
pub mod config;
pub mod config_file;
pub mod demo;
pub mod doctor;
pub mod engine;
pub mod error;
pub mod forge;
pub mod http;
pub mod issues;
pub mod llm;
pub mod locks;
pub mod pipeline;
pub mod poller;
pub mod pulls;
pub mod registry;
pub mod roles;
pub mod safety;
pub mod stats;
pub mod store;
pub mod team;
pub mod telemetry;
pub mod ui;
pub mod webhook;
pub mod workspace;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Instant;

use actix_web::dev::{Server, ServerHandle};

use crate::config::Settings;
use crate::error::{AppError, AppResult, ErrorKind};
use crate::forge::github::{ClientOptions, GithubClient, GithubForge};
use crate::forge::Forge;
use crate::llm::models::Models;
use crate::registry::{ForgeKind, Registry, Repo, RepoDefaults};
use crate::store::Store;
use crate::workspace::Workspace;

/// The services every entry point (HTTP handler, CLI command, poller) works through.
#[derive(Clone)]
pub struct Gaffer {
    pub settings: Settings,
    pub store: Store,
    pub registry: Registry,
    /// One GitHub client per token: it owns the ETag cache, the budget and the write
    /// governor, so every role and the poller share them.
    pub github: GithubForge,
    /// The models, per role, each on the server its settings name.
    pub llm: Arc<Models>,
    /// Clones of target repos, one lock per repo.
    pub workspace: Workspace,
    /// One role run per repo at a time, whatever triggered it (API, webhook, poller).
    pub turns: crate::locks::KeyedLocks,
    /// Held while a poll cycle runs: cycles never overlap.
    pub poll_cycle: Arc<tokio::sync::Mutex<()>>,
    pub poll_metrics: Arc<crate::poller::PollMetrics>,
    /// What the poller last judged for auto-merge, per PR: it asks again only when that
    /// changes (see `poller::consider_merges`).
    pub merge_judged: Arc<crate::poller::MergeJudged>,
    /// Group-commits webhook deliveries (see `webhook::writer`).
    pub deliveries: crate::webhook::writer::DeliveryWriter,
    /// Runs: this process's lease identity, the worker's wake-up, local cancels.
    pub engine: crate::engine::Engine,
    pub started_at: Instant,
}

impl Gaffer {
    /// Opens the database under the data directory. Registers nothing: see
    /// [`Gaffer::seed_configured_repo`].
    pub async fn open(settings: Settings) -> AppResult<Gaffer> {
        let settings = settings.absolute();
        let engine = crate::engine::Engine::new(settings.runs.lease);
        let store = Store::open(&settings.database_path()).await?;
        let registry = Registry::new(
            store.clone(),
            RepoDefaults {
                default_branch: settings.github.default_branch.clone(),
                git_url: settings.github.git_url.clone(),
                local_root: settings.local_root.clone(),
            },
        );
        let mut options =
            ClientOptions::new(&settings.github.api_url, settings.github.token.clone());
        options.min_remaining_budget = u64::from(settings.polling.min_remaining_budget);
        options.write_limits.min_gap = settings.github.write_gap;
        options.request_timeout = settings.github.timeout;
        options.backoff_base = settings.github.backoff;
        options.pace = crate::forge::github::PaceLimits {
            points_per_minute: settings.github.points_per_minute,
            max_concurrency: settings.github.max_concurrency,
        };
        options.graphql_points_per_minute = settings.github.graphql_points_per_minute;
        options.persist = Some(store.clone());
        let github = GithubForge::new(GithubClient::new(options)?);
        let restored = github.client().restore_cache().await;
        tracing::debug!(restored, "GitHub answers restored for conditional requests");
        for warning in settings.llm.warnings() {
            tracing::warn!("{warning}");
        }
        let llm = Arc::new(Models::new(settings.llm.clone(), Some(store.clone())));
        let deliveries = crate::webhook::writer::DeliveryWriter::start(store.clone());
        let workspace = Workspace::new(
            settings.workdir_root.clone(),
            settings.github.token.clone(),
            &settings.github.git_url,
            settings.work.git_name.clone(),
            settings.work.git_email.clone(),
        );
        Ok(Gaffer {
            settings,
            store,
            registry,
            github,
            llm,
            workspace,
            turns: crate::locks::KeyedLocks::default(),
            poll_cycle: Arc::default(),
            poll_metrics: Arc::default(),
            merge_judged: Arc::default(),
            deliveries,
            engine,
            started_at: Instant::now(),
        })
    }

    /// Registers `GH_OWNER/GH_REPO` the first time gaffer runs with them set. Called by
    /// `serve` and the CLI's write commands only, so a read command never writes.
    pub async fn seed_configured_repo(&self) -> AppResult<()> {
        if let Some(seed) = &self.settings.github.seed_repo {
            if let Some(repo) = self.registry.seed_once(seed).await? {
                tracing::info!(repo = %repo.full_name, mode = %repo.mode, "registered GH_OWNER/GH_REPO on first start");
            }
        }
        Ok(())
    }

    /// The models as `repo` sees them (its per-role overrides applied).
    pub fn llm_for<'a>(&'a self, repo: &'a Repo) -> crate::llm::models::RepoLlm<'a> {
        crate::llm::models::RepoLlm {
            inner: &self.llm,
            overrides: &repo.overrides.models,
        }
    }

    /// The forge a registered repo lives on.
    pub fn forge(&self, repo: &Repo) -> Arc<dyn Forge> {
        match repo.forge {
            ForgeKind::Github => Arc::new(self.github.clone()),
            ForgeKind::Local => Arc::new(crate::forge::local::LocalForge::new(
                self.store.clone(),
                crate::forge::local::origin_path(&repo.clone_url),
            )),
        }
    }
}

/// The HTTP API, bound and ready to run.
pub struct Application {
    port: u16,
    server: Server,
    gaffer: actix_web::web::Data<Gaffer>,
}

impl Application {
    /// Binds the listener and builds the server; refuses a non-loopback address without
    /// `GAFFER_API_TOKEN`, since the API can change repos.
    pub async fn build(gaffer: Gaffer) -> AppResult<Application> {
        let settings = &gaffer.settings;
        if !settings.binds_loopback() && settings.api_token.is_none() {
            return Err(AppError::bad_request(format!(
                "refusing to listen on {} without GAFFER_API_TOKEN: the API can change repos, so set a token or bind to 127.0.0.1",
                settings.bind
            )));
        }
        gaffer.seed_configured_repo().await?;
        let settings = &gaffer.settings;
        let listener = TcpListener::bind(settings.bind).map_err(|e| {
            AppError::new(
                ErrorKind::Unavailable,
                format!("cannot listen on {}: {e}", settings.bind),
            )
        })?;
        let port = listener
            .local_addr()
            .map_err(|e| AppError::internal(e.to_string()))?
            .port();
        let gaffer = actix_web::web::Data::new(gaffer);
        let resume = gaffer.clone().into_inner();
        tokio::spawn(async move {
            if let Err(e) = webhook::resume_pending(resume).await {
                tracing::error!(error = %e, "could not resume pending webhook deliveries");
            }
        });
        tokio::spawn(webhook::retry::run_loop(gaffer.clone().into_inner()));
        let server = http::server(gaffer.clone(), listener)
            .map_err(|e| AppError::internal(format!("cannot start the HTTP server: {e}")))?;
        Ok(Application {
            port,
            server,
            gaffer,
        })
    }

    /// The port actually bound (useful with port 0 in tests).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle to stop the server gracefully.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until the server is stopped (SIGINT/SIGTERM or the handle). The engine's
    /// worker runs beside it; with `POLLING_ENABLED`, so does the poller, which stops
    /// after the repo it is on.
    pub async fn run(self) -> std::io::Result<()> {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let worker = tokio::spawn(engine::worker(
            self.gaffer.clone().into_inner(),
            stopped.clone(),
        ));
        let poller = self
            .gaffer
            .settings
            .polling
            .enabled
            .then(|| tokio::spawn(poller::run_loop(self.gaffer.clone().into_inner(), stopped)));
        let served = self.server.await;
        let _ = stop.send(true);
        if let Some(poller) = poller {
            let _ = poller.await;
        }
        // Runs in flight stop with the process; their leases run out and the next start
        // queues them again.
        worker.abort();
        // Let go of the database now, not when the runtime winds down.
        self.gaffer.store.close().await;
        served
    }
}

/// The full path of a program on PATH, if it is there.
pub fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_file())
    })
}
