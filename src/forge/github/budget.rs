//! What GitHub says is left of the token's rate limit, read from every response's
//! `x-ratelimit-*` headers, and the counters a poller and `/metrics` read.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderMap;
use serde::Serialize;

/// The last-known state of one rate-limit resource (`core`, `search`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RateBudget {
    pub resource: String,
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    pub used: Option<u64>,
    /// Unix time at which `remaining` goes back to `limit`.
    pub reset: Option<u64>,
}

impl RateBudget {
    /// Reads the headers of a response; `None` when it carries no rate-limit headers
    /// (secondary-limit answers often do not).
    pub fn from_headers(headers: &HeaderMap) -> Option<RateBudget> {
        let number = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let remaining = number("x-ratelimit-remaining")?;
        Some(RateBudget {
            resource: headers
                .get("x-ratelimit-resource")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("core")
                .to_string(),
            limit: number("x-ratelimit-limit"),
            remaining: Some(remaining),
            used: number("x-ratelimit-used"),
            reset: number("x-ratelimit-reset"),
        })
    }

    /// When `remaining` is under `minimum` and the window has not reset yet: the reset
    /// time to wait for.
    pub fn exhausted_until(&self, minimum: u64, now: u64) -> Option<u64> {
        match (self.remaining, self.reset) {
            (Some(remaining), Some(reset)) if remaining < minimum && reset > now => Some(reset),
            _ => None,
        }
    }
}

/// Running totals since start-up.
#[derive(Debug, Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub not_modified: AtomicU64,
    pub units_spent: AtomicU64,
    pub retries: AtomicU64,
    pub secondary_waits: AtomicU64,
    pub refused_for_budget: AtomicU64,
}

/// A copy of [`Counters`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CounterSnapshot {
    /// HTTP requests actually sent.
    pub requests: u64,
    /// Conditional requests answered 304 (free).
    pub not_modified: u64,
    /// Requests that cost rate-limit budget (every answer but a 304).
    pub units_spent: u64,
    /// Retries after 5xx, timeouts and connection errors.
    pub retries: u64,
    /// Waits imposed by secondary rate limits.
    pub secondary_waits: u64,
    /// Calls not made because the budget was under `MIN_REMAINING_BUDGET`.
    pub refused_for_budget: u64,
}

impl Counters {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> CounterSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CounterSnapshot {
            requests: get(&self.requests),
            not_modified: get(&self.not_modified),
            units_spent: get(&self.units_spent),
            retries: get(&self.retries),
            secondary_waits: get(&self.secondary_waits),
            refused_for_budget: get(&self.refused_for_budget),
        }
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rate_limit_headers() {
        let mut headers = HeaderMap::new();
        headers.insert("x-ratelimit-limit", "5000".parse().unwrap());
        headers.insert("x-ratelimit-remaining", "42".parse().unwrap());
        headers.insert("x-ratelimit-used", "4958".parse().unwrap());
        headers.insert("x-ratelimit-reset", "1700000000".parse().unwrap());
        let budget = RateBudget::from_headers(&headers).unwrap();
        assert_eq!(budget.resource, "core");
        assert_eq!(budget.remaining, Some(42));
        assert_eq!(
            budget.exhausted_until(100, 1_600_000_000),
            Some(1_700_000_000)
        );
        assert_eq!(budget.exhausted_until(10, 1_600_000_000), None);
        assert_eq!(
            budget.exhausted_until(100, 1_800_000_000),
            None,
            "already reset"
        );
        assert!(RateBudget::from_headers(&HeaderMap::new()).is_none());
    }
}
