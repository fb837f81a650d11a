//! Webhook deliveries: the durable record made before acknowledging, the queue of
//! unprocessed ones (picked up again after a crash), and the audit log.

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
    pub status: String,
    pub verdict: String,
    pub received_at: String,
}

/// A delivery still to be processed.
pub struct PendingDelivery {
    pub id: String,
    pub event: String,
    pub repo: String,
    pub payload: String,
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
    /// Mark processed, dropping the payload.
    Finish {
        id: String,
        status: &'static str,
        verdict: String,
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
                             processed_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?",
                        )
                        .bind(*status)
                        .bind(verdict)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?
                    }
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
            "SELECT id, event, repo, payload FROM deliveries WHERE status = 'pending' ORDER BY received_at",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PendingDelivery {
                    id: r.try_get("id")?,
                    event: r.try_get("event")?,
                    repo: r.try_get::<Option<String>, _>("repo")?.unwrap_or_default(),
                    payload: r
                        .try_get::<Option<String>, _>("payload")?
                        .unwrap_or_default(),
                })
            })
            .collect()
    }

    /// A repo's newest deliveries.
    pub async fn recent_deliveries(&self, repo: &FullName, limit: i64) -> AppResult<Vec<Delivery>> {
        let rows = sqlx::query(
            "SELECT id, event, action, repo, status, verdict, received_at FROM deliveries
             WHERE repo = ? ORDER BY received_at DESC LIMIT ?",
        )
        .bind(repo.to_string().to_ascii_lowercase())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Delivery {
                    id: r.try_get("id")?,
                    event: r.try_get("event")?,
                    action: r.try_get("action")?,
                    repo: r.try_get("repo")?,
                    status: r.try_get("status")?,
                    verdict: r.try_get("verdict")?,
                    received_at: r.try_get("received_at")?,
                })
            })
            .collect()
    }

    /// Keeps about the newest `keep` deliveries (by arrival; pending ones are always kept).
    /// A rowid range, so trimming costs what it deletes, not a sort of the whole log.
    pub async fn trim_deliveries(&self, keep: u32) -> AppResult<()> {
        sqlx::query(
            "DELETE FROM deliveries WHERE status != 'pending'
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
