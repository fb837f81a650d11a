//! What the Reviewer and the Integrator remember, so repeated triggers do nothing twice.

use super::Store;
use crate::error::AppResult;
use crate::registry::FullName;

fn key(name: &FullName) -> String {
    name.to_string().to_ascii_lowercase()
}

impl Store {
    pub async fn was_reviewed(&self, repo: &FullName, pr: u64, sha: &str) -> AppResult<bool> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT review_id FROM reviewed_shas WHERE repo = ? AND pr = ? AND sha = ?",
        )
        .bind(key(repo))
        .bind(pr as i64)
        .bind(sha)
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    pub async fn mark_reviewed(
        &self,
        repo: &FullName,
        pr: u64,
        sha: &str,
        review_id: u64,
    ) -> AppResult<()> {
        sqlx::query(
            "INSERT OR IGNORE INTO reviewed_shas (repo, pr, sha, review_id) VALUES (?, ?, ?, ?)",
        )
        .bind(key(repo))
        .bind(pr as i64)
        .bind(sha)
        .bind(review_id as i64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The integration PR already opened for a merged task PR, if any.
    pub async fn integration_of(&self, repo: &FullName, pr: u64) -> AppResult<Option<u64>> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT integration_pr FROM integrations WHERE repo = ? AND pr = ?")
                .bind(key(repo))
                .bind(pr as i64)
                .fetch_optional(&self.pool)
                .await?;
        Ok(found.map(|n| n as u64))
    }

    pub async fn mark_integrated(
        &self,
        repo: &FullName,
        pr: u64,
        task: &str,
        integration_pr: u64,
    ) -> AppResult<()> {
        sqlx::query("INSERT OR IGNORE INTO integrations (repo, pr, task, integration_pr) VALUES (?, ?, ?, ?)")
            .bind(key(repo))
            .bind(pr as i64)
            .bind(task)
            .bind(integration_pr as i64)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
