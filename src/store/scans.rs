//! The last scan per repo, and each repo's recent events.

use serde::Serialize;
use sqlx::Row;

use super::Store;
use crate::error::AppResult;
use crate::registry::FullName;

/// Events kept per repo; older ones are dropped as new ones arrive.
const EVENTS_KEPT: i64 = 200;

/// One line of a repo's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    pub kind: String,
    pub summary: String,
    pub at: String,
}

fn key(name: &FullName) -> String {
    name.to_string().to_ascii_lowercase()
}

impl Store {
    /// Replaces a repo's last scan; returns when it was stored.
    pub async fn save_scan(&self, name: &FullName, report_json: &str) -> AppResult<String> {
        let at: String = sqlx::query_scalar(
            "INSERT INTO scans (repo, report) VALUES (?, ?)
             ON CONFLICT (repo) DO UPDATE SET report = excluded.report,
                 scanned_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')
             RETURNING scanned_at",
        )
        .bind(key(name))
        .bind(report_json)
        .fetch_one(&self.pool)
        .await?;
        Ok(at)
    }

    /// The last scan's JSON, if the repo was ever scanned.
    pub async fn last_scan(&self, name: &FullName) -> AppResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT report FROM scans WHERE repo = ?")
                .bind(key(name))
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Every stored scan, keyed by lower-case `owner/name` (one query for a listing).
    pub async fn all_scans(&self) -> AppResult<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT repo, report FROM scans")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("repo")?, r.try_get("report")?)))
            .collect()
    }

    pub async fn add_event(&self, name: &FullName, kind: &str, summary: &str) -> AppResult<()> {
        let repo = key(name);
        sqlx::query("INSERT INTO events (repo, kind, summary) VALUES (?, ?, ?)")
            .bind(&repo)
            .bind(kind)
            .bind(summary)
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "DELETE FROM events WHERE repo = ? AND id <= (SELECT id FROM events WHERE repo = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
        )
        .bind(&repo)
        .bind(&repo)
        .bind(EVENTS_KEPT)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The newest events first.
    pub async fn recent_events(&self, name: &FullName, limit: i64) -> AppResult<Vec<Event>> {
        let rows = sqlx::query(
            "SELECT kind, summary, created_at FROM events WHERE repo = ? ORDER BY id DESC LIMIT ?",
        )
        .bind(key(name))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Event {
                    kind: r.try_get("kind")?,
                    summary: r.try_get("summary")?,
                    at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Forgets everything kept about a repo (when it is unregistered).
    pub async fn forget_repo_state(&self, name: &FullName) -> AppResult<()> {
        for sql in [
            "DELETE FROM scans WHERE repo = ?",
            "DELETE FROM events WHERE repo = ?",
        ] {
            sqlx::query(sql).bind(key(name)).execute(&self.pool).await?;
        }
        Ok(())
    }
}
