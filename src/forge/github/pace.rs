//! Paces every request of one token to GitHub's secondary limits: a points-per-minute
//! budget over a sliding minute (a read costs 1 point, 304 or not; a write 5) and a cap on
//! requests in flight. When GitHub answers with a secondary limit anyway, the pace is
//! halved and then recovers linearly over [`RECOVERY`], so a client that was too fast
//! slows down instead of only waiting and tripping the limit again.
//!
//! Written here rather than with the `governor` crate: its quota is fixed at build time,
//! while this pace changes at run time (lowered after a hit, recovering after), and the
//! window must match GitHub's own accounting (points per sliding minute) exactly.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// GitHub's minute, and a second more: a request is counted here when it leaves and
/// there when it arrives, so the window slides a little later than GitHub's does.
const MINUTE: Duration = Duration::from_secs(61);
/// After a secondary-limit hit, the pace climbs back to the configured one over this long.
pub const RECOVERY: Duration = Duration::from_secs(600);
/// Hits this soon after a lowering are the same burst (many requests in flight refused at
/// once) and lower the pace only once.
const SAME_HIT: Duration = Duration::from_secs(10);
/// Points a read (GET/HEAD) costs against GitHub's secondary limit.
pub const READ_POINTS: u32 = 1;
/// Points a write (POST/PATCH/PUT/DELETE) costs.
pub const WRITE_POINTS: u32 = 5;

/// The configured pace (`GITHUB_POINTS_PER_MINUTE`, `GITHUB_MAX_CONCURRENCY`).
#[derive(Debug, Clone, Copy)]
pub struct PaceLimits {
    /// 0 turns pacing off (GitHub Enterprise without secondary limits).
    pub points_per_minute: u32,
    /// Requests in flight at once (GitHub allows 100).
    pub max_concurrency: usize,
}

impl Default for PaceLimits {
    fn default() -> Self {
        PaceLimits {
            points_per_minute: 900,
            max_concurrency: 20,
        }
    }
}

/// What `/poll/once` and `/metrics` say about the pace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PaceSnapshot {
    /// The configured points per minute (0: pacing off).
    pub configured_points_per_minute: u32,
    /// The pace in force now (lower than configured after a secondary-limit hit).
    pub points_per_minute: u32,
    /// The pace is below the configured one because of a recent secondary-limit hit.
    pub lowered: bool,
    /// Times a secondary limit lowered the pace since start-up.
    pub lowered_total: u64,
    /// Points spent in the last minute.
    pub points_last_minute: u32,
    pub max_concurrency: usize,
}

#[derive(Debug, Default)]
struct Window {
    /// When each request of the last minute started, and its points.
    spent: VecDeque<(Instant, u32)>,
    total: u32,
    /// The pace right after the last hit, and when it was.
    lowered: Option<(u32, Instant)>,
}

/// One per token, shared by every clone of the client (the poller and the roles).
#[derive(Debug)]
pub struct Pace {
    limits: PaceLimits,
    window: Mutex<Window>,
    slots: Arc<Semaphore>,
    lowered_total: AtomicU64,
}

/// Held while a request is in flight.
#[derive(Debug)]
pub struct Slot {
    _permit: OwnedSemaphorePermit,
}

impl Pace {
    pub fn new(limits: PaceLimits) -> Pace {
        Pace {
            limits,
            window: Mutex::new(Window::default()),
            slots: Arc::new(Semaphore::new(limits.max_concurrency.max(1))),
            lowered_total: AtomicU64::new(0),
        }
    }

    /// Waits until `points` fit in the last minute's budget and a concurrency slot is
    /// free; the points are spent when this returns. Hold the slot until answered.
    pub async fn acquire(&self, points: u32) -> Slot {
        loop {
            let wait = {
                let mut window = self.window.lock().expect("pace lock");
                let now = Instant::now();
                prune(&mut window, now);
                let pace = self.current(&window, now);
                match wait_for(&window, pace, points, now) {
                    None => {
                        window.spent.push_back((now, points));
                        window.total += points;
                        break;
                    }
                    Some(wait) => wait,
                }
            };
            tracing::debug!(wait_ms = wait.as_millis() as u64, "pacing GitHub requests");
            tokio::time::sleep(wait).await;
        }
        let permit = Arc::clone(&self.slots)
            .acquire_owned()
            .await
            .expect("the pace semaphore is never closed");
        Slot { _permit: permit }
    }

    /// Only a concurrency slot, for a request whose points another pace counts (GraphQL
    /// queries: their own points, the token's requests in flight).
    pub async fn slot(&self) -> Slot {
        let permit = Arc::clone(&self.slots)
            .acquire_owned()
            .await
            .expect("the pace semaphore is never closed");
        Slot { _permit: permit }
    }

    /// GitHub answered with a secondary limit: halve the pace in force (it then recovers
    /// over [`RECOVERY`]); refusals within [`SAME_HIT`] of the last lowering count once.
    pub fn lower(&self) {
        if self.limits.points_per_minute == 0 {
            return;
        }
        let mut window = self.window.lock().expect("pace lock");
        let now = Instant::now();
        if window
            .lowered
            .is_some_and(|(_, at)| now.duration_since(at) < SAME_HIT)
        {
            return;
        }
        let halved = (self.current(&window, now) / 2).max(1);
        window.lowered = Some((halved, now));
        self.lowered_total.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            points_per_minute = halved,
            "GitHub secondary limit: pace lowered"
        );
    }

    pub fn snapshot(&self) -> PaceSnapshot {
        let mut window = self.window.lock().expect("pace lock");
        let now = Instant::now();
        prune(&mut window, now);
        let pace = self.current(&window, now);
        PaceSnapshot {
            configured_points_per_minute: self.limits.points_per_minute,
            points_per_minute: pace,
            lowered: pace < self.limits.points_per_minute,
            lowered_total: self.lowered_total.load(Ordering::Relaxed),
            points_last_minute: window.total,
            max_concurrency: self.limits.max_concurrency,
        }
    }

    /// The points per minute in force: the configured pace, or after a hit the lowered
    /// one climbing linearly back to it. 0 when pacing is off.
    fn current(&self, window: &Window, now: Instant) -> u32 {
        let full = self.limits.points_per_minute;
        match window.lowered {
            Some((floor, at)) if full > 0 => {
                let gone = now.duration_since(at).as_secs_f64() / RECOVERY.as_secs_f64();
                if gone >= 1.0 {
                    full
                } else {
                    let climbed = f64::from(full.saturating_sub(floor)) * gone;
                    (floor + climbed as u32).min(full)
                }
            }
            _ => full,
        }
    }
}

fn prune(window: &mut Window, now: Instant) {
    while let Some((at, points)) = window.spent.front().copied() {
        if now.duration_since(at) < MINUTE {
            break;
        }
        window.spent.pop_front();
        window.total -= points;
    }
}

/// `None` when `points` may be spent now; else how long until enough of the window
/// has slid past. A request bigger than the whole pace goes alone into an empty window.
fn wait_for(window: &Window, pace: u32, points: u32, now: Instant) -> Option<Duration> {
    if pace == 0 || window.total + points <= pace || window.spent.is_empty() {
        return None;
    }
    let mut left = window.total;
    for (at, spent) in &window.spent {
        left -= spent;
        if left + points <= pace {
            return Some((*at + MINUTE).saturating_duration_since(now) + Duration::from_millis(1));
        }
    }
    window
        .spent
        .back()
        .map(|(at, _)| (*at + MINUTE).saturating_duration_since(now) + Duration::from_millis(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pace(points_per_minute: u32) -> Pace {
        Pace::new(PaceLimits {
            points_per_minute,
            max_concurrency: 100,
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_minute_never_holds_more_than_the_points() {
        let pace = pace(60);
        let start = Instant::now();
        for _ in 0..60 {
            drop(pace.acquire(READ_POINTS).await);
        }
        assert!(start.elapsed() < Duration::from_secs(1));
        drop(pace.acquire(READ_POINTS).await);
        assert!(
            start.elapsed() >= MINUTE,
            "the 61st point waits for the window"
        );
        assert!(start.elapsed() < MINUTE + Duration::from_secs(1));
        assert!(
            start.elapsed() > Duration::from_secs(60),
            "GitHub's minute has passed"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn writes_cost_five_points() {
        let pace = pace(10);
        let start = Instant::now();
        drop(pace.acquire(WRITE_POINTS).await);
        drop(pace.acquire(WRITE_POINTS).await);
        assert!(start.elapsed() < Duration::from_secs(1));
        drop(pace.acquire(READ_POINTS).await);
        assert!(start.elapsed() >= MINUTE);
    }

    #[tokio::test(start_paused = true)]
    async fn zero_turns_pacing_off() {
        let pace = pace(0);
        let start = Instant::now();
        for _ in 0..10_000 {
            drop(pace.acquire(WRITE_POINTS).await);
        }
        assert!(start.elapsed() < Duration::from_secs(1));
        pace.lower();
        assert!(!pace.snapshot().lowered);
    }

    #[tokio::test(start_paused = true)]
    async fn a_hit_halves_the_pace_which_then_recovers() {
        let pace = pace(900);
        pace.lower();
        let s = pace.snapshot();
        assert_eq!(s.points_per_minute, 450);
        assert!(s.lowered);
        assert_eq!(s.lowered_total, 1);
        pace.lower();
        let s = pace.snapshot();
        assert_eq!(
            s.points_per_minute, 450,
            "a burst of refusals lowers it once"
        );
        assert_eq!(s.lowered_total, 1);
        tokio::time::advance(SAME_HIT).await;
        pace.lower();
        let lowered = pace.snapshot().points_per_minute;
        assert!((225..230).contains(&lowered), "{lowered}");
        tokio::time::advance(RECOVERY / 2).await;
        let half_way = pace.snapshot().points_per_minute;
        assert!(half_way > 230 && half_way < 900, "{half_way}");
        tokio::time::advance(RECOVERY).await;
        let s = pace.snapshot();
        assert_eq!(s.points_per_minute, 900);
        assert!(!s.lowered);
        assert_eq!(s.lowered_total, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrency_is_capped() {
        let pace = Pace::new(PaceLimits {
            points_per_minute: 0,
            max_concurrency: 2,
        });
        let a = pace.acquire(1).await;
        let _b = pace.acquire(1).await;
        let third = tokio::time::timeout(Duration::from_secs(5), pace.acquire(1)).await;
        assert!(third.is_err(), "a third request waits for a slot");
        drop(a);
        let third = tokio::time::timeout(Duration::from_secs(5), pace.acquire(1)).await;
        assert!(third.is_ok());
    }
}
