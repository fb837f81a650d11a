//! Paces writes (POST/PATCH/PUT/DELETE) for one token: one at a time, a minimum gap
//! between them, and within GitHub's content-creation limits (80 a minute, 500 an hour),
//! so a burst of reviews never trips a secondary rate limit.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::{Mutex, MutexGuard};
use tokio::time::Instant;

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

/// The limits a governor enforces.
#[derive(Debug, Clone, Copy)]
pub struct WriteLimits {
    pub min_gap: Duration,
    pub per_minute: usize,
    pub per_hour: usize,
}

impl Default for WriteLimits {
    fn default() -> Self {
        WriteLimits {
            min_gap: Duration::from_secs(1),
            per_minute: 80,
            per_hour: 500,
        }
    }
}

/// Start times of the writes of the last hour.
#[derive(Debug, Default)]
pub struct WriteLog {
    started: VecDeque<Instant>,
}

/// One per token. Holding the returned guard is holding the only write slot.
#[derive(Debug)]
pub struct WriteGovernor {
    limits: WriteLimits,
    log: Mutex<WriteLog>,
}

impl WriteGovernor {
    pub fn new(limits: WriteLimits) -> Self {
        WriteGovernor {
            limits,
            log: Mutex::new(WriteLog::default()),
        }
    }

    /// Waits until a write may start, records it, and returns the slot; drop the guard
    /// once the write has been answered.
    pub async fn acquire(&self) -> MutexGuard<'_, WriteLog> {
        let mut log = self.log.lock().await;
        loop {
            let now = Instant::now();
            while log
                .started
                .front()
                .is_some_and(|t| now.duration_since(*t) >= HOUR)
            {
                log.started.pop_front();
            }
            let wait = self.wait_needed(&log, now);
            if wait.is_zero() {
                break;
            }
            tracing::debug!(wait_ms = wait.as_millis() as u64, "pacing GitHub writes");
            tokio::time::sleep(wait).await;
        }
        log.started.push_back(Instant::now());
        log
    }

    fn wait_needed(&self, log: &WriteLog, now: Instant) -> Duration {
        let mut wait = Duration::ZERO;
        if let Some(last) = log.started.back() {
            wait = wait.max((*last + self.limits.min_gap).saturating_duration_since(now));
        }
        let in_last_minute: Vec<&Instant> = log
            .started
            .iter()
            .filter(|t| now.duration_since(**t) < MINUTE)
            .collect();
        if in_last_minute.len() >= self.limits.per_minute {
            let oldest = in_last_minute[in_last_minute.len() - self.limits.per_minute];
            wait = wait.max((*oldest + MINUTE).saturating_duration_since(now));
        }
        if log.started.len() >= self.limits.per_hour {
            let oldest = log.started[log.started.len() - self.limits.per_hour];
            wait = wait.max((oldest + HOUR).saturating_duration_since(now));
        }
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn writes_are_spaced_by_the_minimum_gap() {
        let governor = WriteGovernor::new(WriteLimits::default());
        let start = Instant::now();
        for _ in 0..3 {
            drop(governor.acquire().await);
        }
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn the_per_minute_cap_holds_even_with_no_gap() {
        let governor = WriteGovernor::new(WriteLimits {
            min_gap: Duration::ZERO,
            per_minute: 80,
            per_hour: 500,
        });
        let start = Instant::now();
        for _ in 0..80 {
            drop(governor.acquire().await);
        }
        assert!(start.elapsed() < Duration::from_secs(1));
        drop(governor.acquire().await);
        assert_eq!(
            start.elapsed(),
            MINUTE,
            "the 81st write waits for the window"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_per_hour_cap_holds() {
        let governor = WriteGovernor::new(WriteLimits {
            min_gap: Duration::ZERO,
            per_minute: 1000,
            per_hour: 500,
        });
        let start = Instant::now();
        for _ in 0..501 {
            drop(governor.acquire().await);
        }
        assert_eq!(start.elapsed(), HOUR);
    }
}
