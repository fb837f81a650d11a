//! Embedded SQLite (WAL) behind a narrow interface: the rest of gaffer calls methods on
//! [`Store`], never SQL, so a shared database can back several instances later.

mod check_baselines;
mod deliveries;
mod developer_runs;
mod issue_work;
mod llm_calls;
mod poll_state;
mod repos;
mod review_verdicts;
mod role_memory;
mod runs;
mod scans;

pub use deliveries::{
    Delivery, DeliveryWrite, NewDelivery, PendingDelivery, RetryRefused, RETRYABLE_BY_HAND,
};
pub use developer_runs::{DeveloperModelStats, DeveloperRun};
pub use issue_work::{IssueWork, StatusLine, StatusRecord};
pub use llm_calls::{LlmCall, ModelStats};
pub use poll_state::{CachedAnswer, PollState};
pub use review_verdicts::ReviewVerdict;
pub use runs::{NewRun, RunEvent, RunFilter, RunRecord, ACTIVE_STATES};
pub use scans::Event;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use crate::error::{AppError, AppResult};

/// A handle on the database; cheap to clone (a connection pool).
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub async fn open(path: &Path) -> AppResult<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                AppError::new(
                    crate::error::ErrorKind::Unavailable,
                    format!("cannot create data directory {}: {e}", dir.display()),
                )
            })?;
        }
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            // Checkpoints run in the background (see below), not inside a commit that
            // happens to cross the threshold: that stall was the webhook ack's p99.
            .pragma("wal_autocheckpoint", "0");
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        sqlx::migrate!("src/store/migrations").run(&pool).await?;
        let checkpointer = pool.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                if checkpointer.is_closed() {
                    break;
                }
                // PASSIVE never blocks writers; it copies what it can and returns.
                if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                    .execute(&checkpointer)
                    .await
                {
                    tracing::debug!(error = %e, "WAL checkpoint skipped");
                }
            }
        });
        Ok(Store { pool })
    }

    /// Whether the database answers; used by `/health` and `gaffer doctor`.
    pub async fn ping(&self) -> AppResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn meta_get(&self, key: &str) -> AppResult<Option<String>> {
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn meta_set(&self, key: &str, value: &str) -> AppResult<()> {
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The pool, for modules that own their tables (the local forge).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Whether [`Store::close`] was called (background loops stop then).
    pub fn is_closed(&self) -> bool {
        self.pool.is_closed()
    }

    /// Closes the pool so the file can be reopened (tests of restart persistence).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
