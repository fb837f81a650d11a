//! One row per review the Reviewer posted: how its model judged, for `/stats/models`.

use serde::Serialize;

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
}
