//! Failed deliveries are retried: a transient failure (GitHub down or limited, a write
//! whose outcome was unknown, a race) is tried again with a doubling wait, or after a
//! limit's reset, up to `WEBHOOK_RETRY_ATTEMPTS` attempts; then the delivery is dead-lettered
//! (`dead`), visible in the status, the audit log and `/metrics`, and retried by hand. A
//! permanent failure (what waiting does not fix: not found, no access, a bad payload) is
//! `failed` at once. The schedule is in the database, so it survives a restart.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;

use crate::config::WebhookSettings;
use crate::error::{AppError, AppResult, ErrorKind};
use crate::store::{PendingDelivery, RetryRefused};
use crate::Gaffer;

/// The longest wait between two attempts.
const MAX_WAIT: Duration = Duration::from_secs(3600);
/// How often the loop looks for due retries at most.
const TICK: Duration = Duration::from_secs(1);

/// Retries started since this process began (automatic and by hand), for `/metrics`.
pub fn retries_total(gaffer: &Gaffer) -> u64 {
    gaffer.deliveries.retries.load(Ordering::Relaxed)
}

/// Whether a failure is worth another attempt, and not before when (unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    Never,
    Later { not_before: Option<u64> },
}

/// Sorts a processing failure: errors from GitHub say themselves (`detail.transient`,
/// `detail.resets_at`); otherwise bad input and missing things are permanent, and the rest
/// (the database, the workspace, a conflict from a race) is worth another go.
pub fn classify(err: &AppError) -> Retry {
    if let Some(detail) = err.detail.as_ref().filter(|d| d.get("forge").is_some()) {
        if detail.get("transient").and_then(|t| t.as_bool()) == Some(false) {
            return Retry::Never;
        }
        return Retry::Later {
            not_before: detail.get("resets_at").and_then(|r| r.as_u64()),
        };
    }
    match err.kind {
        ErrorKind::BadRequest
        | ErrorKind::NotFound
        | ErrorKind::PayloadTooLarge
        | ErrorKind::UnsupportedMediaType
        | ErrorKind::Unauthorized
        | ErrorKind::Forbidden => Retry::Never,
        ErrorKind::Conflict | ErrorKind::Unavailable | ErrorKind::Internal => {
            Retry::Later { not_before: None }
        }
    }
}

/// The wait before attempt `attempt + 1`: the base doubled per attempt made, jittered by
/// up to a quarter either way, at most an hour.
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    let step = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    step.mul_f64(rand::rng().random_range(0.75..1.25))
        .min(MAX_WAIT)
}

/// What a failed attempt (`attempt`, counting from 1) makes of a delivery: its status,
/// verdict and, when retrying, the next attempt's time (unix seconds).
pub fn after_failure(
    settings: &WebhookSettings,
    attempt: u32,
    err: &AppError,
) -> (&'static str, String, Option<i64>) {
    match classify(err) {
        Retry::Never => (
            "failed",
            format!("failed (permanent): {}", err.message),
            None,
        ),
        Retry::Later { .. } if attempt >= settings.retry_attempts => (
            "dead",
            format!(
                "dead-lettered after {attempt} attempts: {} (retry with POST /deliveries/ID/retry)",
                err.message
            ),
            None,
        ),
        Retry::Later { not_before } => {
            let now = now();
            let mut at = now + backoff(settings.retry_base, attempt).as_secs().max(1);
            if let Some(reset) = not_before {
                at = at.max(reset + 1);
            }
            let wait = at - now;
            (
                "retrying",
                format!(
                    "attempt {attempt} of {} failed: {}; next in {wait} s",
                    settings.retry_attempts, err.message
                ),
                Some(at as i64),
            )
        }
    }
}

fn now() -> u64 {
    crate::forge::github::budget::unix_now()
}

/// Runs due retries until the store closes: claims what is due, processes each in the
/// background, sleeps until the next is due (at most [`TICK`]).
pub async fn run_loop(gaffer: Arc<Gaffer>) {
    loop {
        if gaffer.store.is_closed() {
            break;
        }
        match gaffer.store.claim_due_deliveries(now() as i64, 64).await {
            Ok(due) => {
                for delivery in due {
                    gaffer.deliveries.retries.fetch_add(1, Ordering::Relaxed);
                    let gaffer = Arc::clone(&gaffer);
                    tokio::spawn(async move {
                        if let Err(e) = super::process_stored(&gaffer, &delivery).await {
                            tracing::error!(delivery = delivery.id, error = %e, "retrying a delivery failed");
                        }
                    });
                }
            }
            Err(e) if gaffer.store.is_closed() => {
                tracing::debug!(error = %e, "delivery retries stopped");
                break;
            }
            Err(e) => tracing::warn!(error = %e, "could not look for due delivery retries"),
        }
        tokio::time::sleep(TICK).await;
    }
}

/// `POST /deliveries/{id}/retry`, `gaffer deliveries retry ID`: claims a `failed` or
/// `dead` delivery for one more round of attempts (404 unknown, 409 in any other state).
/// The caller processes what is returned.
pub async fn claim_by_hand(gaffer: &Gaffer, id: &str) -> AppResult<PendingDelivery> {
    match gaffer.store.claim_for_retry(id).await? {
        Ok(delivery) => {
            gaffer.deliveries.retries.fetch_add(1, Ordering::Relaxed);
            tracing::info!(delivery = id, "delivery retried by hand");
            Ok(delivery)
        }
        Err(RetryRefused::Unknown) => Err(AppError::not_found(format!("no delivery {id}"))),
        Err(RetryRefused::NotFailed(status)) => Err(AppError::conflict(format!(
            "delivery {id} is {status}: only failed or dead deliveries are retried by hand"
        ))),
        Err(RetryRefused::NoPayload) => Err(AppError::conflict(format!(
            "delivery {id} was recorded before deliveries were kept for retries: ask GitHub to redeliver it"
        ))),
    }
}

/// Claims a delivery by hand ([`claim_by_hand`]) and processes it in the background, as
/// the API and the dashboard's retry button do; returns its id.
pub async fn retry_in_background(gaffer: Arc<Gaffer>, id: &str) -> AppResult<String> {
    let delivery = claim_by_hand(&gaffer, id).await?;
    let id = delivery.id.clone();
    tokio::spawn(async move {
        if let Err(e) = crate::webhook::process_stored(&gaffer, &delivery).await {
            tracing::error!(delivery = delivery.id, error = %e, "retrying a delivery failed");
        }
    });
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forge::ForgeError;

    fn settings() -> WebhookSettings {
        WebhookSettings {
            secret: None,
            max_body_bytes: 1024,
            retention: 100,
            retry_attempts: 3,
            retry_base: Duration::from_secs(10),
        }
    }

    #[test]
    fn github_trouble_is_retried_and_missing_things_are_not() {
        let down: AppError = ForgeError::Unavailable {
            message: "502".into(),
        }
        .into();
        assert_eq!(classify(&down), Retry::Later { not_before: None });
        let ambiguous: AppError = ForgeError::AmbiguousWrite {
            message: "timed out".into(),
        }
        .into();
        assert!(matches!(classify(&ambiguous), Retry::Later { .. }));
        let limited: AppError = ForgeError::RateLimited {
            resets_at: 4_000_000_000,
            secondary: true,
        }
        .into();
        assert_eq!(
            classify(&limited),
            Retry::Later {
                not_before: Some(4_000_000_000)
            }
        );
        let race: AppError = ForgeError::Validation {
            message: "Reference update failed".into(),
        }
        .into();
        assert!(matches!(classify(&race), Retry::Later { .. }));
        let gone: AppError = ForgeError::NoAccess { repo: "a/b".into() }.into();
        assert_eq!(classify(&gone), Retry::Never);
        assert_eq!(classify(&AppError::not_found("PR #9")), Retry::Never);
        assert_eq!(classify(&AppError::bad_request("no number")), Retry::Never);
    }

    #[test]
    fn attempts_are_bounded_and_limits_wait_for_their_reset() {
        let s = settings();
        let err: AppError = ForgeError::Unavailable {
            message: "502".into(),
        }
        .into();
        let (status, verdict, at) = after_failure(&s, 1, &err);
        assert_eq!(status, "retrying");
        assert!(verdict.contains("attempt 1 of 3"), "{verdict}");
        let wait = at.unwrap() - now() as i64;
        assert!((7..=13).contains(&wait), "{wait}");
        let (status, _, at) = after_failure(&s, 2, &err);
        assert_eq!(status, "retrying");
        assert!(at.unwrap() - now() as i64 >= 15, "the wait doubles");
        let (status, verdict, at) = after_failure(&s, 3, &err);
        assert_eq!((status, at), ("dead", None));
        assert!(verdict.contains("dead-lettered after 3 attempts"));

        let reset = now() + 900;
        let limited: AppError = ForgeError::RateLimited {
            resets_at: reset,
            secondary: false,
        }
        .into();
        let (_, _, at) = after_failure(&s, 1, &limited);
        assert!(at.unwrap() as u64 > reset, "after the reset");
        let (status, _, _) = after_failure(&s, 1, &AppError::not_found("gone"));
        assert_eq!(status, "failed");
        assert_eq!(backoff(Duration::from_secs(1), 40), MAX_WAIT);
    }
}
