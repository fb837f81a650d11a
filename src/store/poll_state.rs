//! The poller's memory (last default-branch SHA, open PR heads, handled closed PRs) and the
//! persisted HTTP cache behind GitHub's conditional requests.

use std::collections::BTreeMap;

use sqlx::Row;

use super::Store;
use crate::error::AppResult;
use crate::registry::FullName;

/// What the poller saw of a repo last time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollState {
    pub default_sha: Option<String>,
    pub open_heads: BTreeMap<u64, String>,
    pub cycles: i64,
}

/// One cached answer.
#[derive(Debug, Clone)]
pub struct CachedAnswer {
    pub url: String,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub next_page: Option<String>,
    pub body: Vec<u8>,
}

fn key(name: &FullName) -> String {
    name.to_string().to_ascii_lowercase()
}

impl Store {
    pub async fn poll_state(&self, repo: &FullName) -> AppResult<PollState> {
        let row =
            sqlx::query("SELECT default_sha, open_heads, cycles FROM poll_state WHERE repo = ?")
                .bind(key(repo))
                .fetch_optional(&self.pool)
                .await?;
        Ok(match row {
            None => PollState::default(),
            Some(r) => PollState {
                default_sha: r.try_get("default_sha")?,
                open_heads: serde_json::from_str(&r.try_get::<String, _>("open_heads")?)
                    .unwrap_or_default(),
                cycles: r.try_get("cycles")?,
            },
        })
    }

    /// Every repo's state in one query (lower-case `owner/name` -> state), for batched
    /// change detection over thousands of repos.
    pub async fn all_poll_states(&self) -> AppResult<std::collections::HashMap<String, PollState>> {
        let rows = sqlx::query("SELECT repo, default_sha, open_heads, cycles FROM poll_state")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get::<String, _>("repo")?,
                    PollState {
                        default_sha: r.try_get("default_sha")?,
                        open_heads: serde_json::from_str(&r.try_get::<String, _>("open_heads")?)
                            .unwrap_or_default(),
                        cycles: r.try_get("cycles")?,
                    },
                ))
            })
            .collect()
    }

    pub async fn save_poll_state(
        &self,
        repo: &FullName,
        state: &PollState,
        changed: bool,
    ) -> AppResult<()> {
        sqlx::query(
            "INSERT INTO poll_state (repo, default_sha, open_heads, cycles, changed_at, polled_at)
             VALUES (?1, ?2, ?3, ?4, CASE WHEN ?5 THEN strftime('%Y-%m-%dT%H:%M:%SZ', 'now') END,
                     strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
             ON CONFLICT (repo) DO UPDATE SET default_sha = ?2, open_heads = ?3, cycles = ?4,
                 changed_at = CASE WHEN ?5 THEN strftime('%Y-%m-%dT%H:%M:%SZ', 'now') ELSE changed_at END,
                 polled_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')",
        )
        .bind(key(repo))
        .bind(&state.default_sha)
        .bind(serde_json::to_string(&state.open_heads).unwrap_or_else(|_| "{}".into()))
        .bind(state.cycles)
        .bind(changed)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// `(polled_at, changed_at, cycles)`: when the poller last looked at `repo`, when it
    /// last saw a change, and how many cycles it made; `None` before the first poll.
    pub async fn poll_times(
        &self,
        repo: &FullName,
    ) -> AppResult<Option<(Option<String>, Option<String>, i64)>> {
        let row =
            sqlx::query("SELECT polled_at, changed_at, cycles FROM poll_state WHERE repo = ?")
                .bind(key(repo))
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| {
            Ok((
                r.try_get("polled_at")?,
                r.try_get("changed_at")?,
                r.try_get("cycles")?,
            ))
        })
        .transpose()
    }

    /// Marks a closed PR handled; `false` when it was handled before.
    pub async fn mark_closed_seen(&self, repo: &FullName, pr: u64) -> AppResult<bool> {
        let done = sqlx::query("INSERT OR IGNORE INTO closed_seen (repo, pr) VALUES (?, ?)")
            .bind(key(repo))
            .bind(pr as i64)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn closed_seen(&self, repo: &FullName, pr: u64) -> AppResult<bool> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT pr FROM closed_seen WHERE repo = ? AND pr = ?")
                .bind(key(repo))
                .bind(pr as i64)
                .fetch_optional(&self.pool)
                .await?;
        Ok(found.is_some())
    }

    pub async fn save_cached_answer(&self, answer: &CachedAnswer) -> AppResult<()> {
        sqlx::query(
            // REPLACE gives the row a new rowid, so rowid order is recency order for trimming.
            "INSERT OR REPLACE INTO http_cache (url, etag, last_modified, next_page, body) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&answer.url)
        .bind(&answer.etag)
        .bind(&answer.last_modified)
        .bind(&answer.next_page)
        .bind(&answer.body)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Keeps the newest `keep` cached answers (by when they were last written).
    pub async fn trim_cached_answers(&self, keep: u32) -> AppResult<()> {
        sqlx::query(
            "DELETE FROM http_cache WHERE rowid <= (SELECT MAX(rowid) FROM http_cache) - ?",
        )
        .bind(i64::from(keep))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn cached_answers(&self) -> AppResult<Vec<CachedAnswer>> {
        let rows = sqlx::query("SELECT url, etag, last_modified, next_page, body FROM http_cache")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(CachedAnswer {
                    url: r.try_get("url")?,
                    etag: r.try_get("etag")?,
                    last_modified: r.try_get("last_modified")?,
                    next_page: r.try_get("next_page")?,
                    body: r.try_get("body")?,
                })
            })
            .collect()
    }
}
