//! Webhook deliveries: the durable record made before acknowledging, the queue of
//! unprocessed ones (picked up again after a crash), the retry schedule (`retrying` until
//! `next_attempt_at`, `dead` when out of attempts), and the audit log.

use serde::Serialize;
use sqlx::Row;

use super::Store;
use crate::error::AppResult;
use crate::registry::FullName;

/// A delivery as the audit log shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    pub id: String,
    pub event: String,
    pub action: Option<String>,
    pub repo: Option<String>,
    /// `pending`, `done`, `ignored`, `retrying` (a transient failure; tried again at
    /// `next_attempt_at`), `dead` (out of attempts: retry by hand) or `failed` (permanent).
    pub status: String,
    pub verdict: String,
    pub received_at: String,
    /// Processing attempts made so far.
    pub attempts: i64,
    /// When the next automatic attempt is due (unix seconds), while `retrying`.
    pub next_attempt_at: Option<i64>,
}

/// The statuses a delivery can be retried by hand from.
pub const RETRYABLE_BY_HAND: [&str; 2] = ["failed", "dead"];

/// A delivery still to be processed.
pub struct PendingDelivery {
    pub id: String,
    pub event: String,
    pub repo: String,
    pub payload: String,
    /// Processing attempts made before this one.
    pub attempts: u32,
}

/// Why a delivery cannot be retried by hand.
pub enum RetryRefused {
    Unknown,
    /// Its status is not `failed` or `dead` (the status is given).
    NotFailed(String),
    /// Recorded before payloads were kept for retries: nothing to route.
    NoPayload,
}

/// What to record about a delivery.
pub struct NewDelivery<'a> {
    pub id: &'a str,
    pub event: &'a str,
    pub action: Option<&'a str>,
    pub repo: Option<&'a FullName>,
    pub status: &'a str,
    pub verdict: &'a str,
    pub payload: Option<&'a str>,
}

/// A write to the deliveries table, for [`Store::write_deliveries`].
#[derive(Debug, Clone)]
pub enum DeliveryWrite {
    /// Insert; answered `true` when new, `false` for a replayed id.
    Record {
        id: String,
        event: String,
        action: Option<String>,
        repo: Option<String>,
        status: &'static str,
        verdict: String,
        payload: Option<String>,
    },
    /// Mark processed (`done`, `ignored`), dropping the payload.
    Finish {
        id: String,
        status: &'static str,
        verdict: String,
    },
    /// A failed attempt: `retrying` (with when), `dead` or `failed`; the payload is kept
    /// for the next attempt or a retry by hand.
    Fail {
        id: String,
        status: &'static str,
        verdict: String,
        next_attempt_at: Option<i64>,
    },
}

impl Store {
    /// Applies many writes in one transaction (group commit): SQLite has one writer, so
    /// one commit for a burst of deliveries beats one per delivery by far.
    pub async fn write_deliveries(&self, writes: &[DeliveryWrite]) -> AppResult<Vec<bool>> {
        let mut tx = self.pool.begin().await?;
        let mut results = Vec::with_capacity(writes.len());
        for write in writes {
            let done =
                match write {
                    DeliveryWrite::Record {
                        id,
                        event,
                        action,
                        repo,
                        status,
                        verdict,
                        payload,
                    } => sqlx::query(
                        "INSERT INTO deliveries (id, event, action, repo, status, verdict, payload)
                         VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(id)
                    .bind(event)
                    .bind(action)
                    .bind(repo)
                    .bind(*status)
                    .bind(verdict)
                    .bind(payload)
                    .execute(&mut *tx)
                    .await?,
                    DeliveryWrite::Finish {
                        id,
                        status,
                        verdict,
                    } => {
                        sqlx::query(
                            "UPDATE deliveries SET status = ?, verdict = ?, payload = NULL,
                             attempts = attempts + 1, next_attempt_at = NULL,
                             processed_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?",
                        )
                        .bind(*status)
                        .bind(verdict)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?
                    }
                    DeliveryWrite::Fail {
                        id,
                        status,
                        verdict,
                        next_attempt_at,
                    } => sqlx::query(
                        "UPDATE deliveries SET status = ?, verdict = ?, attempts = attempts + 1,
                             next_attempt_at = ?,
                             processed_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?",
                    )
                    .bind(*status)
                    .bind(verdict)
                    .bind(next_attempt_at)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?,
                };
            results.push(done.rows_affected() == 1);
        }
        tx.commit().await?;
        Ok(results)
    }

    /// Records a delivery; `false` when its id was seen before (nothing is changed then).
    pub async fn record_delivery(&self, d: &NewDelivery<'_>) -> AppResult<bool> {
        let done = sqlx::query(
            "INSERT INTO deliveries (id, event, action, repo, status, verdict, payload)
             VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
        )
        .bind(d.id)
        .bind(d.event)
        .bind(d.action)
        .bind(d.repo.map(|r| r.to_string().to_ascii_lowercase()))
        .bind(d.status)
        .bind(d.verdict)
        .bind(d.payload)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks a delivery processed, with what it caused; its payload is dropped.
    pub async fn finish_delivery(&self, id: &str, status: &str, verdict: &str) -> AppResult<()> {
        sqlx::query(
            "UPDATE deliveries SET status = ?, verdict = ?, payload = NULL,
                 processed_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?",
        )
        .bind(status)
        .bind(verdict)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deliveries acknowledged but not processed (e.g. before a crash), oldest first.
    pub async fn pending_deliveries(&self) -> AppResult<Vec<PendingDelivery>> {
        let rows = sqlx::query(
            "SELECT id, event, repo, payload, attempts FROM deliveries WHERE status = 'pending' ORDER BY received_at",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(pending_from_row).collect()
    }

    /// Claims the deliveries whose retry is due at `now` (unix seconds): they become
    /// `pending` (so a crash meanwhile leaves them to the next start) and are returned.
    pub async fn claim_due_deliveries(
        &self,
        now: i64,
        limit: i64,
    ) -> AppResult<Vec<PendingDelivery>> {
        let rows = sqlx::query(
            "UPDATE deliveries SET status = 'pending', next_attempt_at = NULL
             WHERE id IN (SELECT id FROM deliveries WHERE status = 'retrying' AND next_attempt_at <= ?
                          ORDER BY next_attempt_at LIMIT ?)
             RETURNING id, event, repo, payload, attempts",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(pending_from_row).collect()
    }

    /// The soonest due retry (unix seconds), if any delivery is waiting for one.
    pub async fn next_retry_at(&self) -> AppResult<Option<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(next_attempt_at) FROM deliveries WHERE status = 'retrying'",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// A retry by hand: a `failed` or `dead` delivery becomes `pending` with its attempts
    /// counted afresh, and is returned for processing. Atomic, so two callers never both
    /// get it.
    pub async fn claim_for_retry(
        &self,
        id: &str,
    ) -> AppResult<Result<PendingDelivery, RetryRefused>> {
        let row = sqlx::query(
            "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = NULL
             WHERE id = ? AND status IN ('failed', 'dead') AND payload IS NOT NULL
             RETURNING id, event, repo, payload, attempts",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = row {
            return Ok(Ok(pending_from_row(&row)?));
        }
        let found: Option<(String, bool)> =
            sqlx::query_as("SELECT status, payload IS NOT NULL FROM deliveries WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(Err(match found {
            None => RetryRefused::Unknown,
            Some((status, _)) if !RETRYABLE_BY_HAND.contains(&status.as_str()) => {
                RetryRefused::NotFailed(status)
            }
            Some(_) => RetryRefused::NoPayload,
        }))
    }

    /// One delivery as the audit log shows it.
    pub async fn delivery(&self, id: &str) -> AppResult<Option<Delivery>> {
        let row = sqlx::query(
            "SELECT id, event, action, repo, status, verdict, received_at, attempts, next_attempt_at
             FROM deliveries WHERE id = ?",
        )
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(delivery_from_row).transpose()
    }

    /// The newest deliveries, optionally of one status and one repo.
    pub async fn list_deliveries(
        &self,
        status: Option<&str>,
        repo: Option<&FullName>,
        limit: i64,
    ) -> AppResult<Vec<Delivery>> {
        let rows = sqlx::query(
            "SELECT id, event, action, repo, status, verdict, received_at, attempts, next_attempt_at
             FROM deliveries WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR repo = ?2)
             ORDER BY received_at DESC LIMIT ?3",
        )
        .bind(status)
        .bind(repo.map(|r| r.to_string().to_ascii_lowercase()))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery_from_row).collect()
    }

    /// A repo's deliveries waiting for a retry, dead-lettered or failed, newest first,
    /// however old: what needs a look.
    pub async fn unsettled_deliveries(
        &self,
        repo: &FullName,
        limit: i64,
    ) -> AppResult<Vec<Delivery>> {
        let rows = sqlx::query(
            "SELECT id, event, action, repo, status, verdict, received_at, attempts, next_attempt_at
             FROM deliveries WHERE repo = ? AND status IN ('retrying', 'dead', 'failed')
             ORDER BY received_at DESC LIMIT ?",
        )
        .bind(repo.to_string().to_ascii_lowercase())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery_from_row).collect()
    }

    /// How many deliveries are in each status.
    pub async fn delivery_counts(&self) -> AppResult<Vec<(String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT status, COUNT(*) FROM deliveries GROUP BY status ORDER BY status",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// A repo's newest deliveries.
    pub async fn recent_deliveries(&self, repo: &FullName, limit: i64) -> AppResult<Vec<Delivery>> {
        let rows = sqlx::query(
            "SELECT id, event, action, repo, status, verdict, received_at, attempts, next_attempt_at
             FROM deliveries WHERE repo = ? ORDER BY received_at DESC LIMIT ?",
        )
        .bind(repo.to_string().to_ascii_lowercase())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery_from_row).collect()
    }

    /// Keeps about the newest `keep` deliveries (by arrival; pending, retrying and dead
    /// ones are always kept: they still have work or a decision waiting).
    /// A rowid range, so trimming costs what it deletes, not a sort of the whole log.
    pub async fn trim_deliveries(&self, keep: u32) -> AppResult<()> {
        sqlx::query(
            "DELETE FROM deliveries WHERE status NOT IN ('pending', 'retrying', 'dead')
             AND rowid <= (SELECT MAX(rowid) FROM deliveries) - ?",
        )
        .bind(i64::from(keep))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn delivery_count(&self) -> AppResult<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM deliveries")
            .fetch_one(&self.pool)
            .await?)
    }
}

fn delivery_from_row(r: &sqlx::sqlite::SqliteRow) -> AppResult<Delivery> {
    Ok(Delivery {
        id: r.try_get("id")?,
        event: r.try_get("event")?,
        action: r.try_get("action")?,
        repo: r.try_get("repo")?,
        status: r.try_get("status")?,
        verdict: r.try_get("verdict")?,
        received_at: r.try_get("received_at")?,
        attempts: r.try_get("attempts")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
    })
}

fn pending_from_row(r: &sqlx::sqlite::SqliteRow) -> AppResult<PendingDelivery> {
    Ok(PendingDelivery {
        id: r.try_get("id")?,
        event: r.try_get("event")?,
        repo: r.try_get::<Option<String>, _>("repo")?.unwrap_or_default(),
        payload: r
            .try_get::<Option<String>, _>("payload")?
            .unwrap_or_default(),
        attempts: u32::try_from(r.try_get::<i64, _>("attempts")?).unwrap_or(0),
    })
}
