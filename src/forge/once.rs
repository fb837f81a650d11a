//! Writes that may have happened are looked up, not repeated. The one place every role
//! goes through to open a PR, post a review or post a comment: look for the thing first;
//! write; and when the write failed ambiguously ([`ForgeError::AmbiguousWrite`]: a 5xx, a
//! timeout, a connection lost after sending), look again. Only a lookup that definitely
//! does not find it allows a second write. Each lookup is by what gaffer writes into the
//! thing itself (a PR's branch, a review's or comment's hidden marker), so it also finds
//! what a run that died half-way left behind.

use std::future::Future;
use std::time::Duration;

use super::{
    Comment, Forge, ForgeError, ForgeResult, NewPull, NewReview, PullRequest, PullState, Review,
};
use crate::registry::FullName;

/// Most times one write is sent when lookups keep saying "not done".
const MAX_WRITES: u32 = 3;
/// A pause before looking up after an ambiguous failure, so the lookup sees the write
/// if GitHub did it (listings may lag a write by a moment).
const SETTLE: Duration = Duration::from_millis(300);

/// What a write ended as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written<T> {
    /// Made by this call (possibly found by the lookup after an ambiguous failure).
    Created(T),
    /// There already before this call: nothing was written.
    Found(T),
}

impl<T> Written<T> {
    /// The thing, and whether this call made it.
    pub fn into_parts(self) -> (T, bool) {
        match self {
            Written::Created(t) => (t, true),
            Written::Found(t) => (t, false),
        }
    }
}

/// The core: `lookup` first; then `write`; after an ambiguous failure, `lookup` again and
/// write again only when it finds nothing (at most [`MAX_WRITES`] writes). An error from
/// a lookup is returned as it is (the write stays unknown; the next run looks up first).
pub async fn write_once<T, L, LF, W, WF>(
    what: &str,
    mut lookup: L,
    mut write: W,
) -> ForgeResult<Written<T>>
where
    L: FnMut() -> LF,
    LF: Future<Output = ForgeResult<Option<T>>>,
    W: FnMut() -> WF,
    WF: Future<Output = ForgeResult<T>>,
{
    if let Some(found) = lookup().await? {
        return Ok(Written::Found(found));
    }
    let mut sent = 0;
    loop {
        sent += 1;
        match write().await {
            Ok(done) => return Ok(Written::Created(done)),
            Err(ForgeError::AmbiguousWrite { message }) => {
                tracing::warn!(
                    attempt = sent,
                    "{what}: {message}; looking up whether it happened"
                );
                tokio::time::sleep(SETTLE * sent).await;
                match lookup().await? {
                    Some(found) => {
                        tracing::info!("{what}: it had happened; not writing again");
                        return Ok(Written::Created(found));
                    }
                    None if sent < MAX_WRITES => {
                        tracing::info!("{what}: it had not happened; writing again");
                    }
                    None => {
                        return Err(ForgeError::AmbiguousWrite {
                            message: format!("{what}: {message} ({sent} attempts)"),
                        })
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// The PR from `branch`, in any state: the open one, else a merged one, else the newest
/// closed one. A merged or closed PR counts: a task's PR is never opened twice.
pub async fn pull_for_branch(
    forge: &dyn Forge,
    repo: &FullName,
    branch: &str,
) -> ForgeResult<Option<PullRequest>> {
    let pulls = forge.pulls_for_branch(repo, branch).await?;
    let open = pulls.iter().find(|p| p.state == PullState::Open);
    let merged = pulls.iter().find(|p| p.is_merged());
    Ok(open.or(merged).or(pulls.first()).cloned())
}

/// Opens a PR once: an existing PR from its branch (any state) is returned as found; a
/// 422 "already exists" is looked up the same way.
pub async fn open_pull(
    forge: &dyn Forge,
    repo: &FullName,
    pull: &NewPull,
) -> ForgeResult<Written<PullRequest>> {
    let what = format!("opening a PR from {} in {repo}", pull.head);
    let lookup = || pull_for_branch(forge, repo, &pull.head);
    match write_once(&what, lookup, || forge.create_pull(repo, pull)).await {
        Err(e) if e.is_pull_already_exists() => match lookup().await? {
            Some(existing) => Ok(Written::Found(existing)),
            None => Err(e),
        },
        other => other,
    }
}

/// The review on PR `number` whose body carries `marker`, if any.
pub async fn find_review(
    forge: &dyn Forge,
    repo: &FullName,
    number: u64,
    marker: &str,
) -> ForgeResult<Option<Review>> {
    Ok(forge
        .reviews(repo, number)
        .await?
        .into_iter()
        .find(|r| r.body.contains(marker)))
}

/// Posts a review once: `marker` must be in its body, and a review carrying it is the
/// same review.
pub async fn post_review(
    forge: &dyn Forge,
    repo: &FullName,
    number: u64,
    review: &NewReview,
    marker: &str,
) -> ForgeResult<Written<Review>> {
    debug_assert!(review.body.contains(marker));
    write_once(
        &format!("posting a review on {repo}#{number}"),
        || find_review(forge, repo, number, marker),
        || forge.create_review(repo, number, review),
    )
    .await
}

/// Posts a conversation comment once: `marker` must be in `body`, and a comment carrying
/// it is the same comment.
pub async fn post_comment(
    forge: &dyn Forge,
    repo: &FullName,
    number: u64,
    body: &str,
    marker: &str,
) -> ForgeResult<Written<Comment>> {
    debug_assert!(body.contains(marker));
    write_once(
        &format!("commenting on {repo}#{number}"),
        || async {
            Ok(forge
                .comments(repo, number)
                .await?
                .into_iter()
                .find(|c| c.body.contains(marker)))
        },
        || forge.create_comment(repo, number, body),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Mutex;

    fn ambiguous() -> ForgeError {
        ForgeError::AmbiguousWrite {
            message: "answered 502".into(),
        }
    }

    /// A remote that holds things: `done_on_ambiguous` decides whether a failed write
    /// happened anyway.
    struct Remote {
        items: Mutex<Vec<u32>>,
        writes: AtomicU32,
        lookups: AtomicU32,
    }

    impl Remote {
        fn new() -> Remote {
            Remote {
                items: Mutex::new(Vec::new()),
                writes: AtomicU32::new(0),
                lookups: AtomicU32::new(0),
            }
        }
        async fn lookup(&self) -> ForgeResult<Option<u32>> {
            self.lookups.fetch_add(1, Ordering::SeqCst);
            Ok(self.items.lock().unwrap().first().copied())
        }
        /// Writes; the `n`th write's fate is `fates[n]`: (done, answer).
        async fn write(&self, fates: &[(bool, Result<(), ()>)]) -> ForgeResult<u32> {
            let n = self.writes.fetch_add(1, Ordering::SeqCst) as usize;
            let (done, answer) = fates[n];
            if done {
                self.items.lock().unwrap().push(7);
            }
            answer.map(|_| 7).map_err(|_| ambiguous())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_done_despite_the_error_is_found_not_repeated() {
        let remote = Remote::new();
        let fates = [(true, Err(())), (true, Ok(()))];
        let got = write_once("t", || remote.lookup(), || remote.write(&fates)).await;
        assert_eq!(got.unwrap(), Written::Created(7));
        assert_eq!(remote.writes.load(Ordering::SeqCst), 1);
        assert_eq!(remote.items.lock().unwrap().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_definitely_not_done_is_sent_again() {
        let remote = Remote::new();
        let fates = [(false, Err(())), (true, Ok(()))];
        let got = write_once("t", || remote.lookup(), || remote.write(&fates)).await;
        assert_eq!(got.unwrap(), Written::Created(7));
        assert_eq!(remote.writes.load(Ordering::SeqCst), 2);
        assert_eq!(remote.items.lock().unwrap().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn something_already_there_is_found_and_nothing_is_written() {
        let remote = Remote::new();
        remote.items.lock().unwrap().push(7);
        let got = write_once("t", || remote.lookup(), || remote.write(&[])).await;
        assert_eq!(got.unwrap(), Written::Found(7));
        assert_eq!(remote.writes.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn writes_are_bounded_and_the_failure_stays_ambiguous() {
        let remote = Remote::new();
        let fates = [(false, Err(())); 3];
        let got = write_once("t", || remote.lookup(), || remote.write(&fates)).await;
        assert!(
            matches!(got, Err(ForgeError::AmbiguousWrite { .. })),
            "{got:?}"
        );
        assert_eq!(remote.writes.load(Ordering::SeqCst), MAX_WRITES);
        assert_eq!(remote.lookups.load(Ordering::SeqCst), 1 + MAX_WRITES);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lookup_that_fails_stops_further_writes() {
        let remote = Remote::new();
        let looked = AtomicU32::new(0);
        let fates = [(false, Err(())), (true, Ok(()))];
        let got = write_once(
            "t",
            || async {
                if looked.fetch_add(1, Ordering::SeqCst) == 0 {
                    Ok(None)
                } else {
                    Err(ForgeError::Unavailable {
                        message: "down".into(),
                    })
                }
            },
            || remote.write(&fates),
        )
        .await;
        assert!(matches!(got, Err(ForgeError::Unavailable { .. })));
        assert_eq!(remote.writes.load(Ordering::SeqCst), 1);
    }
}
