//! A row per model call, so users can see what each local model costs and how often it fails.

use serde::Serialize;
use sqlx::Row;

use super::Store;
use crate::error::AppResult;

/// Totals for one role and model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelStats {
    pub role: String,
    pub model: String,
    pub calls: i64,
    pub failures: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub total_ms: i64,
}

/// One finished call, as recorded.
pub struct LlmCall<'a> {
    pub role: &'a str,
    pub model: &'a str,
    pub error: Option<&'a str>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_ms: u64,
    /// The run the call was made for, when it was made inside one.
    pub run_id: Option<i64>,
}

impl Store {
    pub async fn record_llm_call(&self, call: &LlmCall<'_>) -> AppResult<()> {
        sqlx::query(
            "INSERT INTO llm_calls (role, model, ok, error, prompt_tokens, completion_tokens, total_ms, run_id)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(call.role)
        .bind(call.model)
        .bind(call.error.is_none())
        .bind(call.error)
        .bind(call.prompt_tokens as i64)
        .bind(call.completion_tokens as i64)
        .bind(call.total_ms as i64)
        .bind(call.run_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn llm_stats(&self) -> AppResult<Vec<ModelStats>> {
        let rows = sqlx::query(
            "SELECT role, model, COUNT(*) AS calls, SUM(1 - ok) AS failures,
                    SUM(prompt_tokens) AS prompt_tokens, SUM(completion_tokens) AS completion_tokens,
                    SUM(total_ms) AS total_ms
             FROM llm_calls GROUP BY role, model ORDER BY role, model",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ModelStats {
                    role: r.try_get("role")?,
                    model: r.try_get("model")?,
                    calls: r.try_get("calls")?,
                    failures: r.try_get("failures")?,
                    prompt_tokens: r.try_get("prompt_tokens")?,
                    completion_tokens: r.try_get("completion_tokens")?,
                    total_ms: r.try_get("total_ms")?,
                })
            })
            .collect()
    }
}
