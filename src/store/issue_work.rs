//! Issues as a work source, status comments, commands and `/gaffer fix` feedback: the few
//! facts that must survive a restart so nothing is done twice (see migration 0021).

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::Store;
use crate::error::AppResult;

/// An issue gaffer took, and where its work stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IssueWork {
    pub issue: u64,
    /// The task id reserved for it (before anything was pushed).
    pub task: Option<String>,
    pub pr: Option<u64>,
    pub state: String,
    pub title: String,
}

/// One line of a status comment's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusLine {
    /// `YYYY-MM-DD HH:MM:SS` UTC.
    pub at: String,
    pub phase: String,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<i64>,
}

/// A status comment as gaffer keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusRecord {
    pub comment_id: Option<u64>,
    pub phase: String,
    pub label: Option<String>,
    pub lines: Vec<StatusLine>,
    pub body: String,
    pub stopped: bool,
}

fn key(repo: &str) -> String {
    repo.to_ascii_lowercase()
}

impl Store {
    /// The issue's work row, if gaffer ever looked at it.
    pub async fn issue_work(&self, repo: &str, issue: u64) -> AppResult<Option<IssueWork>> {
        let row = sqlx::query("SELECT * FROM issue_work WHERE repo = ? AND issue = ?")
            .bind(key(repo))
            .bind(issue as i64)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| issue_work_of(&r)).transpose()
    }

    /// Every issue row of a repo.
    pub async fn issue_works(&self, repo: &str) -> AppResult<Vec<IssueWork>> {
        let rows = sqlx::query("SELECT * FROM issue_work WHERE repo = ? ORDER BY issue")
            .bind(key(repo))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(issue_work_of).collect()
    }

    /// Records an issue's state (creating its row).
    pub async fn set_issue_state(
        &self,
        repo: &str,
        issue: u64,
        state: &str,
        title: &str,
    ) -> AppResult<()> {
        sqlx::query(
            "INSERT INTO issue_work (repo, issue, state, title) VALUES (?, ?, ?, ?)
             ON CONFLICT (repo, issue) DO UPDATE SET state = excluded.state,
                 title = CASE WHEN excluded.title = '' THEN title ELSE excluded.title END,
                 updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')",
        )
        .bind(key(repo))
        .bind(issue as i64)
        .bind(state)
        .bind(title)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Reserves `candidate` as the issue's task id unless one is reserved already; returns
    /// the id that holds. Done before any push, so a retry reuses the same branch.
    pub async fn reserve_issue_task(
        &self,
        repo: &str,
        issue: u64,
        candidate: &str,
    ) -> AppResult<String> {
        sqlx::query(
            "INSERT INTO issue_work (repo, issue, state, task) VALUES (?, ?, 'running', ?)
             ON CONFLICT (repo, issue) DO UPDATE SET task = COALESCE(task, excluded.task)",
        )
        .bind(key(repo))
        .bind(issue as i64)
        .bind(candidate)
        .execute(&self.pool)
        .await?;
        Ok(self
            .issue_work(repo, issue)
            .await?
            .and_then(|w| w.task)
            .unwrap_or_else(|| candidate.to_string()))
    }

    /// Forgets the reserved task and PR (`/gaffer retry` after its PR was closed unmerged).
    pub async fn reset_issue_task(&self, repo: &str, issue: u64) -> AppResult<()> {
        sqlx::query("UPDATE issue_work SET task = NULL, pr = NULL WHERE repo = ? AND issue = ?")
            .bind(key(repo))
            .bind(issue as i64)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The PR that works the issue.
    pub async fn set_issue_pr(&self, repo: &str, issue: u64, pr: u64) -> AppResult<()> {
        sqlx::query("UPDATE issue_work SET pr = ? WHERE repo = ? AND issue = ?")
            .bind(pr as i64)
            .bind(key(repo))
            .bind(issue as i64)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The issue a PR or a task works, if any.
    pub async fn issue_of(
        &self,
        repo: &str,
        pr: Option<u64>,
        task: Option<&str>,
    ) -> AppResult<Option<u64>> {
        let issue: Option<i64> = sqlx::query_scalar(
            "SELECT issue FROM issue_work WHERE repo = ? AND ((pr IS NOT NULL AND pr = ?) OR (task IS NOT NULL AND task = ?))
             ORDER BY issue DESC LIMIT 1",
        )
        .bind(key(repo))
        .bind(pr.map(|n| n as i64))
        .bind(task)
        .fetch_optional(&self.pool)
        .await?;
        Ok(issue.map(|n| n as u64))
    }

    /// The status comment kept for issue or PR `number`.
    pub async fn status_record(&self, repo: &str, number: u64) -> AppResult<StatusRecord> {
        let row = sqlx::query("SELECT * FROM status_comments WHERE repo = ? AND number = ?")
            .bind(key(repo))
            .bind(number as i64)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            return Ok(StatusRecord::default());
        };
        let lines: String = row.try_get("lines")?;
        Ok(StatusRecord {
            comment_id: row
                .try_get::<Option<i64>, _>("comment_id")?
                .map(|n| n as u64),
            phase: row.try_get("phase")?,
            label: row.try_get("label")?,
            lines: serde_json::from_str(&lines).unwrap_or_default(),
            body: row.try_get("body")?,
            stopped: row.try_get::<i64, _>("stopped")? != 0,
        })
    }

    /// Saves the status comment kept for `number`.
    pub async fn save_status_record(
        &self,
        repo: &str,
        number: u64,
        record: &StatusRecord,
    ) -> AppResult<()> {
        let lines = serde_json::to_string(&record.lines).unwrap_or_else(|_| "[]".into());
        sqlx::query(
            "INSERT INTO status_comments (repo, number, comment_id, phase, label, lines, body, stopped)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (repo, number) DO UPDATE SET comment_id = excluded.comment_id,
                 phase = excluded.phase, label = excluded.label, lines = excluded.lines,
                 body = excluded.body, stopped = excluded.stopped",
        )
        .bind(key(repo))
        .bind(number as i64)
        .bind(record.comment_id.map(|n| n as i64))
        .bind(&record.phase)
        .bind(&record.label)
        .bind(lines)
        .bind(&record.body)
        .bind(record.stopped)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Whether `/gaffer stop` holds for issue or PR `number`.
    pub async fn is_stopped(&self, repo: &str, number: u64) -> AppResult<bool> {
        let stopped: Option<i64> =
            sqlx::query_scalar("SELECT stopped FROM status_comments WHERE repo = ? AND number = ?")
                .bind(key(repo))
                .bind(number as i64)
                .fetch_optional(&self.pool)
                .await?;
        Ok(stopped.unwrap_or(0) != 0)
    }

    /// `true` the first time a command comment is seen (then it is obeyed), `false` after.
    pub async fn first_sight_of_command(&self, repo: &str, comment_id: u64) -> AppResult<bool> {
        let done =
            sqlx::query("INSERT OR IGNORE INTO commands_seen (repo, comment_id) VALUES (?, ?)")
                .bind(key(repo))
                .bind(comment_id as i64)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Keeps a `/gaffer fix` request for the PR's next Developer round.
    pub async fn add_pr_feedback(
        &self,
        repo: &str,
        pr: u64,
        comment_id: u64,
        author: &str,
        text: &str,
    ) -> AppResult<()> {
        sqlx::query(
            "INSERT OR IGNORE INTO pr_feedback (repo, pr, comment_id, author, text) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(key(repo))
        .bind(pr as i64)
        .bind(comment_id as i64)
        .bind(author)
        .bind(text)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// `(author, text)` of the `/gaffer fix` requests not worked on yet, oldest first.
    pub async fn pending_pr_feedback(
        &self,
        repo: &str,
        pr: u64,
    ) -> AppResult<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT author, text FROM pr_feedback WHERE repo = ? AND pr = ? AND consumed = 0 ORDER BY comment_id",
        )
        .bind(key(repo))
        .bind(pr as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("author")?, r.try_get("text")?)))
            .collect()
    }

    /// Marks the PR's pending `/gaffer fix` requests as worked on.
    pub async fn consume_pr_feedback(&self, repo: &str, pr: u64) -> AppResult<()> {
        sqlx::query("UPDATE pr_feedback SET consumed = 1 WHERE repo = ? AND pr = ?")
            .bind(key(repo))
            .bind(pr as i64)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

impl Store {
    /// Where the poller is in the repo's comment listing (`None` before the first cycle).
    pub async fn comment_cursor(&self, repo: &str) -> AppResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT since FROM comment_cursors WHERE repo = ?")
                .bind(key(repo))
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Moves the poller's place in the comment listing.
    pub async fn set_comment_cursor(&self, repo: &str, since: &str) -> AppResult<()> {
        sqlx::query(
            "INSERT INTO comment_cursors (repo, since) VALUES (?, ?)
             ON CONFLICT (repo) DO UPDATE SET since = excluded.since",
        )
        .bind(key(repo))
        .bind(since)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

fn issue_work_of(row: &sqlx::sqlite::SqliteRow) -> AppResult<IssueWork> {
    Ok(IssueWork {
        issue: row.try_get::<i64, _>("issue")? as u64,
        task: row.try_get("task")?,
        pr: row.try_get::<Option<i64>, _>("pr")?.map(|n| n as u64),
        state: row.try_get("state")?,
        title: row.try_get("title")?,
    })
}
