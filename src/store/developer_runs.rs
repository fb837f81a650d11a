//! One row per Developer run, and per-model totals for `/repos/{owner}/{name}/status`.

use serde::Serialize;
use sqlx::Row;

use super::Store;
use crate::error::AppResult;
use crate::registry::FullName;

/// What one Developer run did with its model.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeveloperRun {
    pub task: String,
    pub model: String,
    pub attempts: u32,
    pub well_formed: u32,
    pub malformed: u32,
    pub applied_first_try: bool,
    pub lazy_placeholders: u32,
    pub outcome: String,
    /// `tools`, `diff`, `whole`, or `builtin` (the bootstrap).
    pub edit_format: String,
    /// Model replies.
    pub steps: u32,
    pub edits_applied: u32,
    /// Edits put back because the file no longer parsed or the diff grew too big.
    pub edits_undone: u32,
    pub checks_passed: bool,
    /// `Some(true)`: a new test failed on the base and passed with the change; `None`: no
    /// proof was asked for.
    pub fail_to_pass: Option<bool>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// 0 for a task's first run, n for the n-th round on its PR's feedback.
    pub iteration: u32,
    pub pr_number: Option<u64>,
}

/// Per-model totals over a repo's Developer runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeveloperModelStats {
    pub model: String,
    pub runs: i64,
    pub prs: i64,
    pub blocked: i64,
    pub well_formed_replies: i64,
    pub malformed_replies: i64,
    pub applied_first_try: i64,
    /// Attempts beyond the first, summed.
    pub retries: i64,
    pub lazy_placeholders: i64,
}

impl Store {
    pub async fn record_developer_run(&self, repo: &FullName, run: &DeveloperRun) -> AppResult<()> {
        sqlx::query(
            "INSERT INTO developer_runs (repo, task, model, attempts, well_formed, malformed,
                 applied_first_try, lazy_placeholders, outcome, edit_format, steps, edits_applied,
                 edits_undone, checks_passed, fail_to_pass, prompt_tokens, completion_tokens,
                 iteration, pr_number)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(repo.to_string().to_ascii_lowercase())
        .bind(&run.task)
        .bind(&run.model)
        .bind(run.attempts)
        .bind(run.well_formed)
        .bind(run.malformed)
        .bind(run.applied_first_try)
        .bind(run.lazy_placeholders)
        .bind(&run.outcome)
        .bind(&run.edit_format)
        .bind(run.steps)
        .bind(run.edits_applied)
        .bind(run.edits_undone)
        .bind(run.checks_passed)
        .bind(run.fail_to_pass)
        .bind(run.prompt_tokens as i64)
        .bind(run.completion_tokens as i64)
        .bind(run.iteration)
        .bind(run.pr_number.map(|n| n as i64))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// How many feedback rounds the Developer ran on PR `number` (an iteration limit).
    pub async fn iterations_on(&self, repo: &FullName, number: u64) -> AppResult<u32> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM developer_runs WHERE repo = ? AND pr_number = ? AND iteration > 0",
        )
        .bind(repo.to_string().to_ascii_lowercase())
        .bind(number as i64)
        .fetch_one(&self.pool)
        .await?;
        Ok(n as u32)
    }

    pub async fn developer_stats(&self, repo: &FullName) -> AppResult<Vec<DeveloperModelStats>> {
        let rows = sqlx::query(
            "SELECT model, COUNT(*) AS runs, SUM(outcome = 'pr') AS prs, SUM(outcome = 'blocked') AS blocked,
                    SUM(well_formed) AS well_formed, SUM(malformed) AS malformed,
                    SUM(applied_first_try) AS first_try, SUM(attempts - 1) AS retries,
                    SUM(lazy_placeholders) AS lazy
             FROM developer_runs WHERE repo = ? GROUP BY model ORDER BY model",
        )
        .bind(repo.to_string().to_ascii_lowercase())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DeveloperModelStats {
                    model: r.try_get("model")?,
                    runs: r.try_get("runs")?,
                    prs: r.try_get("prs")?,
                    blocked: r.try_get("blocked")?,
                    well_formed_replies: r.try_get("well_formed")?,
                    malformed_replies: r.try_get("malformed")?,
                    applied_first_try: r.try_get("first_try")?,
                    retries: r.try_get("retries")?,
                    lazy_placeholders: r.try_get("lazy")?,
                })
            })
            .collect()
    }
}
