//! Batched change detection: before a cycle's REST calls, GraphQL queries of up to
//! `GITHUB_GRAPHQL_BATCH` repos each read every GitHub repo's default-branch head and
//! open PR heads; a repo whose answer matches what the poller stored is done for the
//! cycle without a REST call, the others go on to today's conditional REST calls.
//!
//! When GraphQL is refused (no endpoint on a GitHub Enterprise, a token without the
//! scope, an answer that is not what was asked) the poller falls back to REST for every
//! repo, says so in the cycle's report, `/metrics` and the log, and asks GraphQL again
//! after [`RETRY_REFUSED`]. A passing failure (5xx, timeout, a rate limit) sends only that
//! batch's repos to REST, for that cycle. `GITHUB_GRAPHQL=off` forces REST only.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::Serialize;

use crate::forge::github::graphql::{self, BatchError, RepoQuery, RepoSnapshot};
use crate::forge::github::{PaceSnapshot, RateBudget};
use crate::registry::{ForgeKind, Repo};
use crate::store::PollState;
use crate::Gaffer;

/// After GraphQL was refused, it is left alone this long before it is asked again.
pub const RETRY_REFUSED: Duration = Duration::from_secs(600);

/// GraphQL's standing across cycles, and its counters for `/metrics`.
#[derive(Debug, Default)]
pub struct GraphqlState {
    /// Until when GraphQL is not asked, and why.
    refused: Mutex<Option<(Instant, String)>>,
    pub queries: AtomicU64,
    pub points: AtomicU64,
    /// Batches whose repos fell back to REST (refused or failed).
    pub fallbacks: AtomicU64,
    /// Repos a batch showed unchanged (no REST call).
    pub unchanged: AtomicU64,
    pub last_cycle_points: AtomicU64,
    /// 1 when the last cycle detected changes with GraphQL (all or some repos).
    pub last_cycle_batched: AtomicU64,
}

impl GraphqlState {
    /// Why GraphQL is not asked now, if it is not.
    pub fn refused_now(&self) -> Option<(Duration, String)> {
        let mut refused = self.refused.lock().expect("graphql state lock");
        match refused.as_ref() {
            Some((until, why)) if Instant::now() < *until => {
                Some((until.saturating_duration_since(Instant::now()), why.clone()))
            }
            Some(_) => {
                *refused = None;
                tracing::info!("asking GraphQL again for change detection");
                None
            }
            None => None,
        }
    }

    fn refuse(&self, why: &str) {
        let mut refused = self.refused.lock().expect("graphql state lock");
        if refused.is_none() {
            tracing::warn!(
                retry_s = RETRY_REFUSED.as_secs(),
                "GraphQL change detection refused, falling back to REST: {why}"
            );
        }
        *refused = Some((Instant::now() + RETRY_REFUSED, why.to_string()));
    }
}

/// What a cycle's report says about detection.
#[derive(Debug, Clone, Serialize)]
pub struct Detection {
    /// `graphql`: every GitHub repo was checked in batches; `partial`: some batches
    /// failed and their repos were polled over REST; `rest`: REST only.
    pub mode: &'static str,
    /// Why REST was used (for all repos or some), when it was.
    pub fallback: Option<String>,
    pub queries: u64,
    /// GraphQL points the queries cost, as GitHub counted them.
    pub graphql_points: u64,
    /// Repos GraphQL showed unchanged: no REST call this cycle.
    pub unchanged: usize,
    /// Repos polled over REST (changed, unknown, or not checked by GraphQL).
    pub polled_over_rest: usize,
    pub graphql_pace: PaceSnapshot,
    /// GitHub's last word on the GraphQL budget (query costs an hour).
    pub graphql_budget: Option<RateBudget>,
}

/// The outcome for one repo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// GraphQL shows what was stored: nothing to do; `in_flight`: a task PR is open.
    Unchanged { in_flight: bool },
    /// GraphQL shows a change (or could not tell): poll it over REST.
    Changed,
}

/// Detects which of `repos` changed. Repos missing from the map (local forge, GraphQL
/// off, refused or failed) are polled over REST.
pub async fn detect(gaffer: &Gaffer, repos: &[Repo]) -> (Detection, HashMap<String, Verdict>) {
    let client = gaffer.github.client();
    let state = &gaffer.poll_metrics.graphql;
    let github: Vec<&Repo> = repos
        .iter()
        .filter(|r| r.forge == ForgeKind::Github)
        .collect();
    let mut detection = Detection {
        mode: "rest",
        fallback: None,
        queries: 0,
        graphql_points: 0,
        unchanged: 0,
        polled_over_rest: repos.len(),
        graphql_pace: client.graphql_pace(),
        graphql_budget: client.graphql_budget(),
    };
    let mut verdicts = HashMap::new();
    let finish = |mut detection: Detection, verdicts: HashMap<String, Verdict>| {
        detection.graphql_pace = client.graphql_pace();
        detection.graphql_budget = client.graphql_budget();
        state
            .last_cycle_points
            .store(detection.graphql_points, Ordering::Relaxed);
        state
            .last_cycle_batched
            .store(u64::from(detection.mode != "rest"), Ordering::Relaxed);
        (detection, verdicts)
    };
    if !gaffer.settings.github.graphql {
        detection.fallback = Some("GITHUB_GRAPHQL=off: REST only".into());
        return finish(detection, verdicts);
    }
    if github.is_empty() {
        return finish(detection, verdicts);
    }
    if let Some((left, why)) = state.refused_now() {
        detection.fallback = Some(format!(
            "GraphQL was refused ({why}); REST only, GraphQL asked again in {}s",
            left.as_secs()
        ));
        return finish(detection, verdicts);
    }
    let stored = match gaffer.store.all_poll_states().await {
        Ok(stored) => stored,
        Err(e) => {
            detection.fallback = Some(format!("cannot read the stored poll state: {e}"));
            return finish(detection, verdicts);
        }
    };
    let batch = gaffer
        .settings
        .github
        .graphql_batch
        .clamp(1, graphql::MAX_BATCH);
    let concurrency = gaffer.settings.polling.concurrency;
    // Owned batches: the stream runs inside the spawned poll loop.
    let batches: Vec<(Vec<String>, Vec<RepoQuery>)> = github
        .chunks(batch)
        .map(|chunk| {
            let keys = chunk
                .iter()
                .map(|r| r.full_name.to_ascii_lowercase())
                .collect();
            let queries = chunk
                .iter()
                .map(|r| RepoQuery {
                    owner: r.owner.clone(),
                    name: r.name.clone(),
                    branch: r.default_branch.clone(),
                })
                .collect();
            (keys, queries)
        })
        .collect();
    let answers: Vec<(Vec<String>, Result<graphql::BatchAnswer, BatchError>)> =
        futures_util::stream::iter(batches)
            .map(
                |(keys, queries): (Vec<String>, Vec<RepoQuery>)| async move {
                    if let Some((_, why)) = state.refused_now() {
                        return (keys, Err(BatchError::Refused(why)));
                    }
                    let answer = graphql::fetch(client, &queries).await;
                    if let Err(BatchError::Refused(why)) = &answer {
                        state.refuse(why);
                    }
                    (keys, answer)
                },
            )
            .buffer_unordered(concurrency)
            .collect()
            .await;
    let (mut answered, mut failed) = (0usize, 0usize);
    for (keys, answer) in answers {
        match answer {
            Ok(answer) => {
                answered += 1;
                detection.queries += 1;
                detection.graphql_points += u64::from(answer.cost);
                for (key, snapshot) in keys.into_iter().zip(answer.repos) {
                    let verdict = match snapshot {
                        Ok(snapshot) => verdict(&snapshot, stored.get(&key)),
                        Err(why) => {
                            tracing::debug!(repo = %key, "not in the GraphQL answer: {why}");
                            Verdict::Changed
                        }
                    };
                    verdicts.insert(key, verdict);
                }
            }
            Err(e) => {
                failed += 1;
                if let BatchError::Transient(why) = &e {
                    tracing::warn!("a GraphQL batch failed, its repos are polled over REST: {why}");
                }
                detection.fallback.get_or_insert_with(|| match &e {
                    BatchError::Refused(why) => format!("GraphQL refused: {why}"),
                    BatchError::Transient(why) => format!("a GraphQL batch failed: {why}"),
                });
            }
        }
    }
    detection.mode = match (answered, failed) {
        (_, 0) => "graphql",
        (0, _) => "rest",
        _ => "partial",
    };
    detection.unchanged = verdicts
        .values()
        .filter(|v| matches!(v, Verdict::Unchanged { .. }))
        .count();
    detection.polled_over_rest = repos.len() - detection.unchanged;
    state
        .queries
        .fetch_add(detection.queries, Ordering::Relaxed);
    state
        .points
        .fetch_add(detection.graphql_points, Ordering::Relaxed);
    state.fallbacks.fetch_add(failed as u64, Ordering::Relaxed);
    state
        .unchanged
        .fetch_add(detection.unchanged as u64, Ordering::Relaxed);
    finish(detection, verdicts)
}

/// Unchanged when the default branch's head and every open PR's head are what was stored
/// (a PR whose review failed was stored with its old head, so it is tried again).
pub fn verdict(snapshot: &RepoSnapshot, stored: Option<&PollState>) -> Verdict {
    let empty = PollState::default();
    let stored = stored.unwrap_or(&empty);
    let same = snapshot.default_sha == stored.default_sha
        && snapshot.open_heads().as_ref() == Some(&stored.open_heads);
    if !same {
        return Verdict::Changed;
    }
    let in_flight = snapshot
        .open
        .iter()
        .flatten()
        .any(|p| crate::webhook::looks_like_task_branch(&p.head_ref));
    Verdict::Unchanged { in_flight }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forge::github::graphql::OpenPull;

    fn sha(c: char) -> String {
        std::iter::repeat_n(c, 40).collect()
    }

    fn pull(number: u64, head: char, head_ref: &str) -> OpenPull {
        OpenPull {
            number,
            head_sha: sha(head),
            head_ref: head_ref.into(),
            author: Some("octocat".into()),
            association: "MEMBER".into(),
            updated_at: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn only_what_was_stored_is_unchanged() {
        let snapshot = RepoSnapshot {
            default_sha: Some(sha('a')),
            open: Some(vec![pull(1, 'b', "feature/T-0001-x"), pull(2, 'c', "docs")]),
        };
        let mut stored = PollState {
            default_sha: Some(sha('a')),
            open_heads: [(1, sha('b')), (2, sha('c'))].into(),
            cycles: 3,
        };
        assert_eq!(
            verdict(&snapshot, Some(&stored)),
            Verdict::Unchanged { in_flight: true }
        );
        // Never seen: a first sighting goes to REST.
        assert_eq!(verdict(&snapshot, None), Verdict::Changed);
        // A push to a PR, a new PR, a PR gone, the default branch moved.
        stored.open_heads.insert(1, sha('d'));
        assert_eq!(verdict(&snapshot, Some(&stored)), Verdict::Changed);
        stored.open_heads.insert(1, sha('b'));
        stored.open_heads.insert(3, sha('e'));
        assert_eq!(verdict(&snapshot, Some(&stored)), Verdict::Changed);
        stored.open_heads.remove(&3);
        stored.default_sha = Some(sha('f'));
        assert_eq!(verdict(&snapshot, Some(&stored)), Verdict::Changed);
        // More open PRs than one query reads: REST pages through them.
        stored.default_sha = Some(sha('a'));
        let partial = RepoSnapshot {
            open: None,
            ..snapshot
        };
        assert_eq!(verdict(&partial, Some(&stored)), Verdict::Changed);
    }
}
