//! Runs and their events (see `engine/`): the durable queue behind a narrow interface.
//! A run is claimed with a lease (owner, expiry) in one UPDATE, never with an in-process
//! lock, so a shared PostgreSQL could later let several instances share the queue
//! (`SELECT ... FOR UPDATE SKIP LOCKED` in place of the single-writer UPDATE here).

use serde::Serialize;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use super::Store;
use crate::error::AppResult;

/// Run states that still have work ahead (one per step, see `dedupe`).
pub const ACTIVE_STATES: &[&str] = &["queued", "paused", "running"];

/// One run, as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRecord {
    pub id: i64,
    pub repo: String,
    pub role: String,
    pub task: Option<String>,
    pub pr: Option<u64>,
    pub trigger: String,
    pub state: String,
    pub attempts: i64,
    pub summary: String,
    pub outcome: Option<serde_json::Value>,
    pub retry_of: Option<i64>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    #[serde(skip)]
    pub dedupe: String,
    #[serde(skip)]
    pub cancel_requested: bool,
}

impl RunRecord {
    /// Whether the run has ended (succeeded, blocked, failed or cancelled).
    pub fn finished(&self) -> bool {
        !ACTIVE_STATES.contains(&self.state.as_str())
    }
}

/// A run to enqueue.
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    pub repo: &'a str,
    pub role: &'a str,
    pub task: Option<&'a str>,
    pub pr: Option<u64>,
    pub trigger: &'a str,
    pub dedupe: &'a str,
    pub retry_of: Option<i64>,
}

/// One progress line or transcript artefact.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunEvent {
    pub seq: i64,
    pub at: String,
    pub kind: String,
    pub body: String,
}

/// Filters for `GET /runs`.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub repo: Option<String>,
    pub state: Option<String>,
    pub role: Option<String>,
    pub limit: i64,
}

fn record(row: &SqliteRow) -> AppResult<RunRecord> {
    let outcome: Option<String> = row.try_get("outcome")?;
    Ok(RunRecord {
        id: row.try_get("id")?,
        repo: row.try_get("repo")?,
        role: row.try_get("role")?,
        task: row.try_get("task")?,
        pr: row.try_get::<Option<i64>, _>("pr")?.map(|n| n as u64),
        trigger: row.try_get("trigger")?,
        state: row.try_get("state")?,
        attempts: row.try_get("attempts")?,
        summary: row.try_get("summary")?,
        outcome: outcome.and_then(|o| serde_json::from_str(&o).ok()),
        retry_of: row.try_get("retry_of")?,
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        dedupe: row.try_get("dedupe")?,
        cancel_requested: row.try_get::<i64, _>("cancel_requested")? != 0,
    })
}

impl Store {
    /// Enqueues a run, or finds the active run for the same step: `(id, created)`. A run
    /// for a paused repo starts `paused`.
    pub async fn enqueue_run(&self, run: &NewRun<'_>) -> AppResult<(i64, bool)> {
        let inserted = sqlx::query(
            "INSERT OR IGNORE INTO runs (repo, role, task, pr, trigger, state, dedupe, retry_of)
             VALUES (?, ?, ?, ?, ?,
                 CASE WHEN EXISTS (SELECT 1 FROM paused_repos WHERE repo = ?) THEN 'paused' ELSE 'queued' END,
                 ?, ?)",
        )
        .bind(run.repo)
        .bind(run.role)
        .bind(run.task)
        .bind(run.pr.map(|n| n as i64))
        .bind(run.trigger)
        .bind(run.repo)
        .bind(run.dedupe)
        .bind(run.retry_of)
        .execute(&self.pool)
        .await?;
        if inserted.rows_affected() == 1 {
            return Ok((inserted.last_insert_rowid(), true));
        }
        let id: i64 = sqlx::query_scalar(
            "SELECT id FROM runs WHERE dedupe = ? AND state IN ('queued', 'paused', 'running')",
        )
        .bind(run.dedupe)
        .fetch_one(&self.pool)
        .await?;
        Ok((id, false))
    }

    /// Claims the oldest queued run of a repo that has none running and is not in
    /// `skip_repos`, with a lease for `owner` until `lease_until`.
    pub async fn claim_next_run(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        skip_repos: &[String],
    ) -> AppResult<Option<RunRecord>> {
        let skip = serde_json::to_string(skip_repos).unwrap_or_else(|_| "[]".into());
        let row = sqlx::query(
            "UPDATE runs SET state = 'running', lease_owner = ?, lease_until = ?, progress_at = ?,
                 attempts = attempts + 1, started_unix = ?,
                 started_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')
             WHERE id = (
                 SELECT r.id FROM runs r
                 WHERE r.state = 'queued'
                   AND NOT EXISTS (SELECT 1 FROM runs x WHERE x.repo = r.repo AND x.state = 'running')
                   AND r.repo NOT IN (SELECT value FROM json_each(?))
                 ORDER BY r.id LIMIT 1)
               AND state = 'queued'
             RETURNING *",
        )
        .bind(owner)
        .bind(lease_until)
        .bind(now)
        .bind(now)
        .bind(skip)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(record).transpose()
    }

    /// Claims one particular queued run (the CLI runs its own run in-process), unless its
    /// repo already has one running.
    pub async fn claim_run(
        &self,
        id: i64,
        owner: &str,
        now: i64,
        lease_until: i64,
    ) -> AppResult<Option<RunRecord>> {
        let row = sqlx::query(
            "UPDATE runs SET state = 'running', lease_owner = ?, lease_until = ?, progress_at = ?,
                 attempts = attempts + 1, started_unix = ?,
                 started_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')
             WHERE id = ? AND state = 'queued'
               AND NOT EXISTS (SELECT 1 FROM runs x WHERE x.repo = runs.repo AND x.state = 'running')
             RETURNING *",
        )
        .bind(owner)
        .bind(lease_until)
        .bind(now)
        .bind(now)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(record).transpose()
    }

    /// Extends a running run's lease; returns whether a cancel was asked for (`None`: the
    /// run is no longer ours).
    pub async fn renew_run_lease(
        &self,
        id: i64,
        owner: &str,
        lease_until: i64,
    ) -> AppResult<Option<bool>> {
        let cancel: Option<i64> = sqlx::query_scalar(
            "UPDATE runs SET lease_until = ? WHERE id = ? AND lease_owner = ? AND state = 'running'
             RETURNING cancel_requested",
        )
        .bind(lease_until)
        .bind(id)
        .bind(owner)
        .fetch_optional(&self.pool)
        .await?;
        Ok(cancel.map(|c| c != 0))
    }

    /// Ends a run (only if it is still running under `owner`).
    pub async fn finish_run(
        &self,
        id: i64,
        owner: &str,
        state: &str,
        summary: &str,
        outcome: Option<&serde_json::Value>,
        now: i64,
    ) -> AppResult<bool> {
        let done = sqlx::query(
            "UPDATE runs SET state = ?, summary = ?, outcome = ?, lease_owner = NULL, lease_until = NULL,
                 finished_unix = ?, finished_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')
             WHERE id = ? AND lease_owner = ? AND state = 'running'",
        )
        .bind(state)
        .bind(summary)
        .bind(outcome.map(|o| o.to_string()))
        .bind(now)
        .bind(id)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Puts runs whose lease ran out (their process died) back in the queue; returns them.
    pub async fn requeue_expired_runs(&self, now: i64) -> AppResult<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "UPDATE runs SET state = 'queued', lease_owner = NULL, lease_until = NULL
             WHERE state = 'running' AND lease_until < ? RETURNING id",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Running runs with no sign of life since `before` (the watchdog fails them).
    pub async fn stalled_runs(&self, before: i64) -> AppResult<Vec<RunRecord>> {
        let rows = sqlx::query("SELECT * FROM runs WHERE state = 'running' AND progress_at < ?")
            .bind(before)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(record).collect()
    }

    /// Ends a run whoever holds it (the watchdog, a cancel of a queued run).
    pub async fn force_finish_run(
        &self,
        id: i64,
        state: &str,
        summary: &str,
        now: i64,
    ) -> AppResult<bool> {
        let done = sqlx::query(
            "UPDATE runs SET state = ?, summary = ?, lease_owner = NULL, lease_until = NULL,
                 finished_unix = ?, finished_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')
             WHERE id = ? AND state IN ('queued', 'paused', 'running')",
        )
        .bind(state)
        .bind(summary)
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Asks the process running `id` to stop it (seen at its next lease renewal).
    pub async fn request_run_cancel(&self, id: i64) -> AppResult<()> {
        sqlx::query("UPDATE runs SET cancel_requested = 1 WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Marks a sign of life of a running run.
    pub async fn touch_run(&self, id: i64, now: i64) -> AppResult<()> {
        sqlx::query("UPDATE runs SET progress_at = ? WHERE id = ?")
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn get_run(&self, id: i64) -> AppResult<Option<RunRecord>> {
        let row = sqlx::query("SELECT * FROM runs WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(record).transpose()
    }

    /// Runs, newest first.
    pub async fn list_runs(&self, filter: &RunFilter) -> AppResult<Vec<RunRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM runs
             WHERE (?1 IS NULL OR repo = ?1) AND (?2 IS NULL OR state = ?2) AND (?3 IS NULL OR role = ?3)
             ORDER BY id DESC LIMIT ?4",
        )
        .bind(filter.repo.as_deref().map(str::to_ascii_lowercase))
        .bind(filter.state.as_deref())
        .bind(filter.role.as_deref())
        .bind(filter.limit.clamp(1, 1000))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record).collect()
    }

    pub async fn add_run_event(&self, id: i64, kind: &str, body: &str) -> AppResult<()> {
        sqlx::query("INSERT INTO run_events (run_id, kind, body) VALUES (?, ?, ?)")
            .bind(id)
            .bind(kind)
            .bind(body)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A run's events after `after_seq`, oldest first.
    pub async fn run_events(
        &self,
        id: i64,
        after_seq: i64,
        kind: Option<&str>,
    ) -> AppResult<Vec<RunEvent>> {
        let rows = sqlx::query(
            "SELECT seq, at, kind, body FROM run_events
             WHERE run_id = ? AND seq > ? AND (? IS NULL OR kind = ?) ORDER BY seq LIMIT 1000",
        )
        .bind(id)
        .bind(after_seq)
        .bind(kind)
        .bind(kind)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RunEvent {
                    seq: r.try_get("seq")?,
                    at: r.try_get("at")?,
                    kind: r.try_get("kind")?,
                    body: r.try_get("body")?,
                })
            })
            .collect()
    }

    /// Keeps the transcripts (model calls, check output) of the newest `keep` runs only.
    pub async fn trim_run_transcripts(&self, keep: i64) -> AppResult<()> {
        sqlx::query(
            "DELETE FROM run_events WHERE kind != 'progress'
               AND run_id <= (SELECT COALESCE(MAX(id), 0) FROM runs) - ?",
        )
        .bind(keep)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Pauses a repo: its queued runs wait as `paused`.
    pub async fn pause_repo(&self, repo: &str) -> AppResult<()> {
        sqlx::query("INSERT OR IGNORE INTO paused_repos (repo) VALUES (?)")
            .bind(repo)
            .execute(&self.pool)
            .await?;
        sqlx::query("UPDATE runs SET state = 'paused' WHERE repo = ? AND state = 'queued'")
            .bind(repo)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Resumes a repo: its paused runs are queued again.
    pub async fn resume_repo(&self, repo: &str) -> AppResult<()> {
        sqlx::query("DELETE FROM paused_repos WHERE repo = ?")
            .bind(repo)
            .execute(&self.pool)
            .await?;
        sqlx::query("UPDATE runs SET state = 'queued' WHERE repo = ? AND state = 'paused'")
            .bind(repo)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn repo_paused(&self, repo: &str) -> AppResult<bool> {
        Ok(
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM paused_repos WHERE repo = ?")
                .bind(repo)
                .fetch_one(&self.pool)
                .await?
                > 0,
        )
    }

    /// Runs of `repo` started since `since` (unix seconds), for `max_runs_per_day`.
    pub async fn runs_started_since(&self, repo: &str, since: i64) -> AppResult<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM runs WHERE repo = ? AND started_unix >= ?")
                .bind(repo)
                .bind(since)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// `(role, state, count, seconds run)` for the metrics.
    pub async fn run_totals(&self) -> AppResult<Vec<(String, String, i64, i64)>> {
        let rows = sqlx::query(
            "SELECT role, state, COUNT(*) AS n,
                    COALESCE(SUM(CASE WHEN finished_unix IS NOT NULL THEN finished_unix - started_unix END), 0) AS secs
             FROM runs GROUP BY role, state",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("role")?,
                    r.try_get("state")?,
                    r.try_get("n")?,
                    r.try_get("secs")?,
                ))
            })
            .collect()
    }
}
