//! One row per review the Reviewer posted: how its model judged, for `/stats/models`, and
//! what the auto-merge rules read back for a code PR's head.

use serde::Serialize;

use sqlx::Row;

use super::Store;
use crate::error::AppResult;

/// What one review found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReviewVerdict {
    pub repo: String,
    pub pr: u64,
    pub sha: String,
    pub model: String,
    pub criteria: u32,
    /// Criteria met, with evidence (after the evidence rules).
    pub met: u32,
    /// "Met" claims of the model refused for lack of evidence.
    pub downgraded: u32,
    /// The model failed and the built-in review stood in.
    pub fell_back: bool,
    pub checks_passed: bool,
    /// `None`: no proof was run for this PR.
    pub fail_to_pass: Option<bool>,
}

impl Store {
    /// Records a posted review's verdict.
    pub async fn record_review_verdict(&self, v: &ReviewVerdict) -> AppResult<()> {
        sqlx::query(
            "INSERT INTO review_verdicts (repo, pr, sha, model, criteria, met, downgraded,
                 fell_back, checks_passed, fail_to_pass) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(v.repo.to_ascii_lowercase())
        .bind(v.pr as i64)
        .bind(&v.sha)
        .bind(&v.model)
        .bind(v.criteria)
        .bind(v.met)
        .bind(v.downgraded)
        .bind(v.fell_back)
        .bind(v.checks_passed)
        .bind(v.fail_to_pass)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The newest verdict on `repo` PR `pr` at head `sha`, if the Reviewer's model judged
    /// that very head: a code PR is only auto-merged on what was reviewed.
    pub async fn review_verdict(
        &self,
        repo: &str,
        pr: u64,
        sha: &str,
    ) -> AppResult<Option<ReviewVerdict>> {
        let row = sqlx::query(
            "SELECT repo, pr, sha, model, criteria, met, downgraded, fell_back, checks_passed,
                 fail_to_pass FROM review_verdicts WHERE repo = ? AND pr = ? AND sha = ?
                 ORDER BY id DESC LIMIT 1",
        )
        .bind(repo.to_ascii_lowercase())
        .bind(pr as i64)
        .bind(sha)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else {
            return Ok(None);
        };
        Ok(Some(ReviewVerdict {
            repo: r.try_get("repo")?,
            pr: r.try_get::<i64, _>("pr")? as u64,
            sha: r.try_get("sha")?,
            model: r.try_get("model")?,
            criteria: r.try_get("criteria")?,
            met: r.try_get("met")?,
            downgraded: r.try_get("downgraded")?,
            fell_back: r.try_get("fell_back")?,
            checks_passed: r.try_get("checks_passed")?,
            fail_to_pass: r.try_get("fail_to_pass")?,
        }))
    }
}
