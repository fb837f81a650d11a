//! The checks' results on base commits ([`crate::workspace::checks::Baseline`]), kept so
//! the base is run once per SHA and set of commands, across restarts.

use sqlx::Row;

use super::Store;
use crate::error::AppResult;
use crate::registry::FullName;
use crate::workspace::checks::results::Side;

/// Baselines kept per repo; older ones are dropped.
const KEEP_PER_REPO: i64 = 50;

impl Store {
    /// The stored base results for `sha` with these commands, if any.
    pub async fn check_baseline(
        &self,
        repo: &FullName,
        sha: &str,
        plan_key: &str,
    ) -> AppResult<Option<Side>> {
        let row = sqlx::query(
            "SELECT side FROM check_baselines WHERE repo = ? AND sha = ? AND plan_key = ?",
        )
        .bind(repo.to_string().to_ascii_lowercase())
        .bind(sha)
        .bind(plan_key)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row
            .map(|r| r.try_get::<String, _>("side"))
            .transpose()?
            .and_then(|text| serde_json::from_str(&text).ok()))
    }

    /// Records the base results (a second run on the same SHA replaces them).
    pub async fn save_check_baseline(
        &self,
        repo: &FullName,
        sha: &str,
        plan_key: &str,
        side: &Side,
    ) -> AppResult<()> {
        let key = repo.to_string().to_ascii_lowercase();
        let text = serde_json::to_string(side).unwrap_or_else(|_| "{}".into());
        sqlx::query(
            "INSERT INTO check_baselines (repo, sha, plan_key, side) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (repo, sha, plan_key) DO UPDATE SET side = ?4",
        )
        .bind(&key)
        .bind(sha)
        .bind(plan_key)
        .bind(text)
        .execute(&self.pool)
        .await?;
        sqlx::query(
            "DELETE FROM check_baselines WHERE repo = ?1 AND rowid NOT IN
             (SELECT rowid FROM check_baselines WHERE repo = ?1 ORDER BY created_at DESC, rowid DESC LIMIT ?2)",
        )
        .bind(&key)
        .bind(KEEP_PER_REPO)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
