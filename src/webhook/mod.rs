//! GitHub webhooks: verify `X-Hub-Signature-256` over the raw body with the secret of the
//! repo the payload names (its `webhook_secret_env`, else `GITHUB_WEBHOOK_SECRET`), record
//! the delivery durably, acknowledge fast, and process it in the background. A delivery id
//! seen before is acknowledged and not processed again (unless it ended failed or dead:
//! GitHub's "Redeliver" then retries it); deliveries acknowledged but not processed (a
//! crash) are picked up at start, and failed ones are retried (see [`retry`]).

pub mod retry;
pub mod writer;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::engine::{run_for_trigger, Job, Trigger};
use crate::error::{AppError, AppResult, ErrorKind};
use crate::registry::{FullName, Mode, Repo};
use crate::store::{DeliveryWrite, PendingDelivery};
use crate::team::task::TaskId;
use crate::Gaffer;

/// Trims the audit log every this many deliveries.
const TRIM_EVERY: u64 = 256;
static RECEIVED: AtomicU64 = AtomicU64::new(0);

/// The headers of a delivery.
pub struct Incoming<'a> {
    pub event: Option<&'a str>,
    pub delivery: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// What to answer GitHub.
#[derive(Debug)]
pub struct Ack {
    /// 200 for `ping`, 202 otherwise.
    pub status: u16,
    pub body: Value,
}

/// The fields gaffer reads from a delivery, parsed once (typed, so the rest of a 10-30 KB
/// payload is skipped, not built). What routing needs is stored as a small [`Routing`]
/// record instead of the whole payload.
#[derive(Deserialize)]
struct Envelope {
    action: Option<String>,
    repository: Option<RepoName>,
    zen: Option<String>,
    #[serde(rename = "ref")]
    pushed_ref: Option<String>,
    pull_request: Option<PullFields>,
    issue: Option<IssueFields>,
    label: Option<LabelFields>,
    comment: Option<CommentFields>,
    review: Option<ReviewFields>,
    /// `status` events: the commit and its new state.
    sha: Option<String>,
    state: Option<String>,
    check_suite: Option<CheckFields>,
    check_run: Option<CheckFields>,
}

#[derive(Deserialize)]
struct IssueFields {
    number: u64,
    user: Option<UserFields>,
    author_association: Option<String>,
    #[serde(default)]
    labels: Vec<LabelFields>,
    /// Present when the "issue" is a pull request (comments on PRs are issue comments).
    pull_request: Option<serde::de::IgnoredAny>,
}

/// A `pull_request_review`'s review: who, how, and what they wrote.
#[derive(Deserialize)]
struct ReviewFields {
    id: Option<u64>,
    user: Option<UserFields>,
    author_association: Option<String>,
    state: Option<String>,
    #[serde(default)]
    body: Option<String>,
}

#[derive(Deserialize)]
struct LabelFields {
    name: String,
}

#[derive(Deserialize)]
struct CommentFields {
    id: u64,
    user: Option<UserFields>,
    author_association: Option<String>,
    #[serde(default)]
    body: Option<String>,
}

/// A `check_suite` or `check_run`: the commit it ran on and how it ended.
#[derive(Deserialize)]
struct CheckFields {
    head_sha: Option<String>,
    conclusion: Option<String>,
}

#[derive(Deserialize)]
struct PullFields {
    number: u64,
    head: BranchFields,
    author_association: Option<String>,
    user: Option<UserFields>,
    merged: Option<bool>,
}

#[derive(Deserialize)]
struct UserFields {
    login: String,
}

#[derive(Deserialize)]
struct BranchFields {
    #[serde(rename = "ref")]
    name: String,
}

/// Everything routing needs, kept durably until the delivery is processed. Missing fields
/// default, so rows written in another shape still route (as far as they can).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Routing {
    pub action: Option<String>,
    pub pushed_ref: Option<String>,
    pub pr: Option<u64>,
    pub head_ref: Option<String>,
    pub association: Option<String>,
    /// The PR author's login (gaffer's own PRs are recognised by it, never by their text).
    pub author: Option<String>,
    pub merged: bool,
    /// `issues` and `issue_comment` events: the issue (or PR) number, whether it is a PR,
    /// its author and their association, its labels and the label just added.
    pub issue_number: Option<u64>,
    pub issue_is_pull: bool,
    pub issue_author: Option<String>,
    pub issue_association: Option<String>,
    pub issue_labels: Vec<String>,
    pub added_label: Option<String>,
    /// `issue_comment`: the comment's id, author and association, and its text from the
    /// first `/gaffer` line on (bounded; nothing is kept of a comment without a command).
    pub comment_id: Option<u64>,
    pub comment_author: Option<String>,
    pub comment_association: Option<String>,
    pub command: Option<String>,
    /// `pull_request_review`: the review's id, author, association, state and its text
    /// (bounded, and kept only when it requests changes).
    pub review_id: Option<u64>,
    pub review_author: Option<String>,
    pub review_association: Option<String>,
    pub review_state: Option<String>,
    pub review_text: Option<String>,
    /// The commit a `status`, `check_suite` or `check_run` event is about.
    pub sha: Option<String>,
    /// How that status or check ended (`success`, `failure`, `pending`, ...).
    pub conclusion: Option<String>,
}

/// The part of a comment kept for routing: from its first `/gaffer` on, at most 4 KiB.
fn command_text(body: &str) -> Option<String> {
    let at = body.find("/gaffer")?;
    let start = body[..at].rfind('\n').map(|i| i + 1).unwrap_or(0);
    Some(body[start..].chars().take(4_096).collect())
}

impl From<&Envelope> for Routing {
    fn from(e: &Envelope) -> Routing {
        let pull = e.pull_request.as_ref();
        Routing {
            action: e.action.clone(),
            pushed_ref: e.pushed_ref.clone(),
            pr: pull.map(|p| p.number),
            head_ref: pull.map(|p| p.head.name.clone()),
            association: pull.and_then(|p| p.author_association.clone()),
            author: pull.and_then(|p| p.user.as_ref()).map(|u| u.login.clone()),
            merged: pull.and_then(|p| p.merged).unwrap_or(false),
            issue_number: e.issue.as_ref().map(|i| i.number),
            issue_is_pull: e.issue.as_ref().is_some_and(|i| i.pull_request.is_some()),
            issue_author: e
                .issue
                .as_ref()
                .and_then(|i| i.user.as_ref())
                .map(|u| u.login.clone()),
            issue_association: e.issue.as_ref().and_then(|i| i.author_association.clone()),
            issue_labels: e
                .issue
                .as_ref()
                .map(|i| i.labels.iter().map(|l| l.name.clone()).collect())
                .unwrap_or_default(),
            added_label: e.label.as_ref().map(|l| l.name.clone()),
            comment_id: e.comment.as_ref().map(|c| c.id),
            comment_author: e
                .comment
                .as_ref()
                .and_then(|c| c.user.as_ref())
                .map(|u| u.login.clone()),
            comment_association: e
                .comment
                .as_ref()
                .and_then(|c| c.author_association.clone()),
            command: e
                .comment
                .as_ref()
                .and_then(|c| c.body.as_deref())
                .and_then(command_text),
            review_id: e.review.as_ref().and_then(|r| r.id),
            review_author: e
                .review
                .as_ref()
                .and_then(|r| r.user.as_ref())
                .map(|u| u.login.clone()),
            review_association: e.review.as_ref().and_then(|r| r.author_association.clone()),
            review_state: e.review.as_ref().and_then(|r| r.state.clone()),
            review_text: e
                .review
                .as_ref()
                .filter(|r| {
                    r.state
                        .as_deref()
                        .is_some_and(|s| s.eq_ignore_ascii_case("changes_requested"))
                })
                .and_then(|r| r.body.as_deref())
                .map(|b| b.chars().take(4_096).collect()),
            sha: e
                .sha
                .clone()
                .or_else(|| e.check_suite.as_ref().and_then(|c| c.head_sha.clone()))
                .or_else(|| e.check_run.as_ref().and_then(|c| c.head_sha.clone())),
            conclusion: e
                .state
                .clone()
                .or_else(|| e.check_suite.as_ref().and_then(|c| c.conclusion.clone()))
                .or_else(|| e.check_run.as_ref().and_then(|c| c.conclusion.clone())),
        }
    }
}

#[derive(Deserialize)]
struct RepoName {
    full_name: String,
}

fn unauthorized(message: &str) -> AppError {
    AppError::new(ErrorKind::Unauthorized, message)
}

/// Checks a `sha256=<hex>` signature over `body` in constant time.
pub fn signature_matches(secret: &SecretString, body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_sig.trim()) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes())
        .expect("HMAC takes any key length");
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// The secret a delivery for `repo` must be signed with.
fn secret_for<'a>(gaffer: &'a Gaffer, repo: Option<&Repo>) -> Option<&'a SecretString> {
    let per_repo = repo
        .and_then(|r| r.overrides.webhook_secret_env.as_deref())
        .and_then(|var| gaffer.settings.env.get(var));
    per_repo.or(gaffer.settings.webhook.secret.as_ref())
}

/// Verifies and records a delivery; processing happens in the background.
pub async fn accept(gaffer: &Arc<Gaffer>, incoming: Incoming<'_>, body: &[u8]) -> AppResult<Ack> {
    let Some(signature) = incoming.signature else {
        return Err(unauthorized(
            "missing X-Hub-Signature-256: configure the webhook with a secret",
        ));
    };
    // Only the repo's name is read before verifying, to pick the secret; nothing else is
    // looked at, stored or acted on until the signature matches.
    let envelope = serde_json::from_slice::<Envelope>(body);
    let named = envelope
        .as_ref()
        .ok()
        .and_then(|e| e.repository.as_ref())
        .and_then(|r| FullName::parse(&r.full_name).ok());
    let repo = match &named {
        Some(name) => gaffer.registry.get(name).await.ok(),
        None => None,
    };
    let Some(secret) = secret_for(gaffer, repo.as_ref()) else {
        return Err(unauthorized("no webhook secret is configured for this repo (set GITHUB_WEBHOOK_SECRET or the repo's webhook_secret_env)"));
    };
    if !signature_matches(secret, body, signature) {
        return Err(unauthorized(
            "X-Hub-Signature-256 does not match the body: wrong secret or altered payload",
        ));
    }
    let envelope = envelope.map_err(|e| {
        AppError::bad_request(format!(
            "the body is not JSON (a JSON object is expected): {e}"
        ))
    })?;
    let event = incoming
        .event
        .ok_or_else(|| AppError::bad_request("missing X-GitHub-Event"))?;
    let delivery = incoming
        .delivery
        .ok_or_else(|| AppError::bad_request("missing X-GitHub-Delivery"))?;
    if delivery.len() > 100 || event.len() > 100 {
        return Err(AppError::bad_request(
            "X-GitHub-Delivery or X-GitHub-Event is too long",
        ));
    }
    if RECEIVED.fetch_add(1, Ordering::Relaxed) % TRIM_EVERY == TRIM_EVERY - 1 {
        let (store, keep) = (gaffer.store.clone(), gaffer.settings.webhook.retention);
        tokio::spawn(async move { store.trim_deliveries(keep).await });
    }
    let record = |status: &'static str, verdict: String, payload: Option<String>| {
        gaffer.deliveries.write(DeliveryWrite::Record {
            id: delivery.to_string(),
            event: event.to_string(),
            action: envelope.action.clone(),
            repo: named.as_ref().map(|n| n.to_string().to_ascii_lowercase()),
            status,
            verdict,
            payload,
        })
    };

    if event == "ping" {
        record("done", "ping answered".into(), None).await?;
        return Ok(Ack {
            status: 200,
            body: json!({"pong": true, "zen": envelope.zen, "delivery": delivery}),
        });
    }
    let ignored = match &repo {
        None => Some(match &named {
            Some(name) => format!("ignored: {name} is not registered"),
            None => "ignored: the payload names no repository".to_string(),
        }),
        Some(r) if r.mode == Mode::Disabled => {
            Some(format!("ignored: {} is disabled", r.full_name))
        }
        Some(_) => None,
    };
    if let Some(verdict) = ignored {
        tracing::info!(delivery, event, "{verdict}");
        let fresh = record("ignored", verdict.clone(), None).await?;
        return Ok(Ack {
            status: 202,
            body: json!({"accepted": false, "duplicate": !fresh, "verdict": verdict, "delivery": delivery}),
        });
    }
    let routing = Routing::from(&envelope);
    let stored = serde_json::to_string(&routing).map_err(|e| AppError::internal(e.to_string()))?;
    if !record("pending", String::new(), Some(stored)).await? {
        // GitHub's "Redeliver" sends the same GUID: a delivery that ended failed or dead is
        // processed again (as a retry by hand); any other is not processed twice.
        let retried = match gaffer.store.claim_for_retry(delivery).await? {
            Ok(claimed) => {
                gaffer.deliveries.retries.fetch_add(1, Ordering::Relaxed);
                let gaffer = Arc::clone(gaffer);
                tokio::spawn(async move {
                    if let Err(e) = process_stored(&gaffer, &claimed).await {
                        tracing::error!(error = %e, "retrying a redelivered delivery failed");
                    }
                });
                true
            }
            Err(_) => false,
        };
        return Ok(Ack {
            status: 202,
            body: json!({"accepted": true, "duplicate": true, "retried": retried, "delivery": delivery}),
        });
    }
    let (gaffer, id) = (Arc::clone(gaffer), delivery.to_string());
    let (event, repo) = (event.to_string(), repo.expect("registered repo"));
    tokio::spawn(async move { process(&gaffer, &id, &event, &repo, &routing, 0).await });
    Ok(Ack {
        status: 202,
        body: json!({"accepted": true, "duplicate": false, "delivery": delivery}),
    })
}

/// Processes deliveries acknowledged but not processed, e.g. before a crash.
pub async fn resume_pending(gaffer: Arc<Gaffer>) -> AppResult<usize> {
    let pending = gaffer.store.pending_deliveries().await?;
    let count = pending.len();
    for delivery in pending {
        process_stored(&gaffer, &delivery).await?;
    }
    if count > 0 {
        tracing::info!(
            count,
            "processed webhook deliveries left pending by the last run"
        );
    }
    Ok(count)
}

/// Processes a delivery from its stored routing record (a resumed, retried or hand-retried
/// one). A repo no longer registered makes it `ignored`, as at arrival.
pub async fn process_stored(gaffer: &Gaffer, delivery: &PendingDelivery) -> AppResult<()> {
    let repo = match FullName::parse(&delivery.repo).ok() {
        Some(name) => gaffer.registry.get(&name).await.ok(),
        None => None,
    };
    let routing: Routing = serde_json::from_str(&delivery.payload).unwrap_or_default();
    match repo {
        Some(repo) if repo.mode != Mode::Disabled => {
            process(
                gaffer,
                &delivery.id,
                &delivery.event,
                &repo,
                &routing,
                delivery.attempts,
            )
            .await
        }
        Some(_) => {
            gaffer
                .store
                .finish_delivery(&delivery.id, "ignored", "ignored: the repo is disabled")
                .await?
        }
        None => {
            gaffer
                .store
                .finish_delivery(
                    &delivery.id,
                    "ignored",
                    "ignored: the repo is no longer registered",
                )
                .await?
        }
    }
    Ok(())
}

/// Routes one delivery and records what it caused: `done`; or, on failure, `retrying`
/// (transient, with the next attempt's time), `dead` (out of attempts) or `failed`
/// (permanent). `attempts`: attempts made before this one.
async fn process(
    gaffer: &Gaffer,
    id: &str,
    event: &str,
    repo: &Repo,
    routing: &Routing,
    attempts: u32,
) {
    let (status, verdict, next_attempt_at) = match route(gaffer, event, repo, routing).await {
        Ok(verdict) => ("done", verdict, None),
        Err(e) => retry::after_failure(&gaffer.settings.webhook, attempts + 1, &e),
    };
    if status == "dead" {
        tracing::warn!(delivery = id, event, repo = %repo.full_name, "webhook delivery dead-lettered: {verdict}");
    } else {
        tracing::info!(delivery = id, event, repo = %repo.full_name, status, "{verdict}");
    }
    let (id, verdict) = (id.to_string(), verdict);
    let write = if status == "done" {
        DeliveryWrite::Finish {
            id,
            status,
            verdict,
        }
    } else {
        DeliveryWrite::Fail {
            id,
            status,
            verdict,
            next_attempt_at,
        }
    };
    if let Err(e) = gaffer.deliveries.write(write).await {
        tracing::error!(error = %e, "could not record what a delivery caused");
    }
}

/// What each event leads to. Roles only act on task PRs (or PRs gaffer opened) whose
/// author's association is allowed.
async fn route(gaffer: &Gaffer, event: &str, repo: &Repo, routing: &Routing) -> AppResult<String> {
    let action = routing.action.as_deref().unwrap_or("");
    match (event, action) {
        ("pull_request", "opened" | "synchronize" | "reopened" | "closed") => {
            let number = routing
                .pr
                .ok_or_else(|| AppError::bad_request("pull_request.number missing"))?;
            let head_ref = routing.head_ref.as_deref().unwrap_or("");
            if !looks_like_task_branch(head_ref) {
                return Ok(format!(
                    "PR #{number} ({head_ref}) is not a task PR: recorded"
                ));
            }
            if action == "closed" {
                if !routing.merged {
                    return Ok(format!("PR #{number} closed without merge: recorded"));
                }
                return run_for_trigger(
                    gaffer,
                    repo,
                    Job::Integrator(Some(number)),
                    Trigger::Webhook,
                )
                .await;
            }
            // The same trust decision the Reviewer makes, on the payload's author, so an
            // outsider's PR costs no GitHub call.
            let identity = gaffer.forge(repo).identity().await.ok();
            if let Err(why) = crate::safety::trust::may_start_role(
                repo,
                identity.as_deref(),
                routing.author.as_deref().unwrap_or(""),
                routing.association.as_deref(),
            ) {
                return Ok(format!("PR #{number} recorded, not reviewed: {why}"));
            }
            run_for_trigger(gaffer, repo, Job::Reviewer(Some(number)), Trigger::Webhook).await
        }
        ("push", _) => {
            let pushed = routing.pushed_ref.as_deref().unwrap_or("");
            if pushed == format!("refs/heads/{}", repo.default_branch) {
                // A push to the default branch (a merge, new tasks): decide and, in pr
                // mode, queue the next step.
                let (reason, run) = crate::engine::drive(gaffer, repo, Trigger::Webhook).await?;
                let queued = run
                    .map(|id| format!(" (run {id} queued)"))
                    .unwrap_or_default();
                Ok(format!(
                    "rescanned after a push to {}: next: {reason}{queued}",
                    repo.default_branch
                ))
            } else {
                Ok(format!("push to {pushed}: recorded"))
            }
        }
        ("issues", "labeled" | "opened" | "reopened") => {
            let trigger = &repo.overrides.labels.trigger;
            let labelled = match action {
                "labeled" => routing.added_label.as_deref() == Some(trigger.as_str()),
                _ => routing.issue_labels.iter().any(|l| l == trigger),
            };
            if !labelled {
                return Ok(format!(
                    "{event} {action}: not labelled {trigger}, recorded"
                ));
            }
            let number = routing
                .issue_number
                .ok_or_else(|| AppError::bad_request("issue.number missing"))?;
            crate::issues::on_labeled(
                gaffer,
                repo,
                number,
                routing.issue_author.as_deref().unwrap_or(""),
                routing.issue_association.as_deref(),
                Trigger::Webhook,
            )
            .await
        }
        ("issue_comment", "created") => {
            let (Some(number), Some(comment_id)) = (routing.issue_number, routing.comment_id)
            else {
                return Err(AppError::bad_request("issue.number or comment.id missing"));
            };
            let Some(body) = routing.command.clone() else {
                return Ok(format!("comment on #{number}: no command, recorded"));
            };
            crate::issues::commands::obey(
                gaffer,
                repo,
                &crate::issues::commands::CommentEvent {
                    number,
                    is_pull: routing.issue_is_pull,
                    comment_id,
                    author: routing.comment_author.clone().unwrap_or_default(),
                    association: routing.comment_association.clone(),
                    body,
                },
            )
            .await
        }
        ("status", _) | ("check_suite" | "check_run", "completed") => {
            let Some(sha) = routing.sha.as_deref() else {
                return Ok(format!("{event} {action}: names no commit, recorded"));
            };
            let ended = routing.conclusion.as_deref().unwrap_or("");
            if !matches!(ended, "success" | "neutral" | "skipped") {
                return Ok(format!(
                    "{event} {ended} on {}: nothing to merge, recorded",
                    &sha[..sha.len().min(7)]
                ));
            }
            merge_prs_at(gaffer, repo, sha).await
        }
        ("pull_request_review", "submitted" | "dismissed") => {
            let number = routing
                .pr
                .ok_or_else(|| AppError::bad_request("pull_request.number missing"))?;
            let head_ref = routing.head_ref.as_deref().unwrap_or("");
            let requests_changes = action == "submitted"
                && routing
                    .review_state
                    .as_deref()
                    .is_some_and(|s| s.eq_ignore_ascii_case("changes_requested"));
            if let (true, true, Some(review_id)) = (
                requests_changes,
                looks_like_task_branch(head_ref),
                routing.review_id,
            ) {
                return crate::issues::commands::changes_requested(
                    gaffer,
                    repo,
                    &crate::issues::commands::ReviewEvent {
                        pr: number,
                        review_id,
                        author: routing.review_author.clone().unwrap_or_default(),
                        association: routing.review_association.clone(),
                        text: routing.review_text.clone().unwrap_or_default(),
                    },
                )
                .await;
            }
            if !looks_like_task_branch(head_ref)
                || !crate::roles::merger::worth_trying(gaffer, repo, head_ref).await
            {
                return Ok(format!(
                    "review on PR #{number}: recorded (no auto-merge for {head_ref})"
                ));
            }
            run_for_trigger(gaffer, repo, Job::Merge(number), Trigger::Webhook).await
        }
        ("issues" | "issue_comment", _) => Ok(format!("{event} {action}: recorded")),
        _ => Ok(format!("{event} {action}: recorded, nothing to do")),
    }
}

/// CI turned green on `sha`: the merge step for each open task PR at that head whose kind
/// the repo auto-merges (one conditional GET for the open PRs).
async fn merge_prs_at(gaffer: &Gaffer, repo: &Repo, sha: &str) -> AppResult<String> {
    let short = &sha[..sha.len().min(7)];
    let open = gaffer
        .forge(repo)
        .list_pulls(&repo.full_name(), crate::forge::PullState::Open)
        .await?;
    let mut done = Vec::new();
    for pull in open
        .iter()
        .filter(|p| p.head_sha == sha && looks_like_task_branch(&p.head_ref))
    {
        if crate::roles::merger::worth_trying(gaffer, repo, &pull.head_ref).await {
            done.push(
                run_for_trigger(gaffer, repo, Job::Merge(pull.number), Trigger::Webhook).await?,
            );
        }
    }
    Ok(if done.is_empty() {
        format!("CI green on {short}: no open task PR there to auto-merge")
    } else {
        done.join("; ")
    })
}

/// A branch that can be a task's (`<prefix>T-NNNN-...`, `<prefix>done-T-NNNN-...`): a
/// cheap filter before any forge call; the roles check the repo's exact prefix.
pub fn looks_like_task_branch(branch: &str) -> bool {
    branch.match_indices("T-").any(|(at, _)| {
        let boundary = at == 0 || branch[..at].ends_with(['/', '-']);
        boundary && TaskId::prefix_of(&branch[at..]).is_some()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn githubs_published_test_vector() {
        let secret = SecretString::from("It's a Secret to Everybody");
        let good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert!(signature_matches(&secret, b"Hello, World!", good));
        assert!(!signature_matches(&secret, b"Hello, World?", good));
        assert!(!signature_matches(
            &secret,
            b"Hello, World!",
            "sha1=757107ea"
        ));
        assert!(!signature_matches(&secret, b"Hello, World!", "sha256=zz"));
        assert!(!signature_matches(
            &SecretString::from("other"),
            b"Hello, World!",
            good
        ));
    }

    fn routing_of(fixture: &str) -> Routing {
        let path = format!(
            "{}/tests/fixtures/github/webhooks/{fixture}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let body = std::fs::read(path).unwrap();
        Routing::from(&serde_json::from_slice::<Envelope>(&body).unwrap())
    }

    #[test]
    fn githubs_recorded_issue_payloads_route_as_expected() {
        let labeled = routing_of("issues.labeled");
        assert_eq!(labeled.issue_number, Some(1));
        assert_eq!(labeled.added_label.as_deref(), Some("bug"));
        assert_eq!(labeled.issue_author.as_deref(), Some("Codertocat"));
        assert_eq!(labeled.issue_association.as_deref(), Some("OWNER"));
        assert_eq!(labeled.issue_labels, ["bug"]);
        assert!(!labeled.issue_is_pull);
        let on_pr = routing_of("issue_comment.created.on-pull-request");
        assert_eq!(on_pr.issue_number, Some(7));
        assert!(on_pr.issue_is_pull);
        assert_eq!(on_pr.comment_id, Some(1402562524));
        assert_eq!(on_pr.comment_association.as_deref(), Some("OWNER"));
        assert_eq!(
            on_pr.command, None,
            "no /gaffer line: nothing of the text is kept"
        );
        let review = routing_of("pull_request_review.submitted");
        assert_eq!(review.review_id, Some(237895671));
        assert_eq!(review.review_author.as_deref(), Some("Codertocat"));
        assert_eq!(review.review_state.as_deref(), Some("commented"));
        assert_eq!(
            review.review_text, None,
            "only a change request's text is kept"
        );
        let on_issue = routing_of("issue_comment.created");
        assert!(!on_issue.issue_is_pull);
        assert_eq!(on_issue.comment_author.as_deref(), Some("Codertocat"));
    }

    #[test]
    fn only_the_command_part_of_a_comment_is_kept() {
        let long = format!("thanks!\nplease\n/gaffer fix {}\n", "x".repeat(10_000));
        let kept = command_text(&long).unwrap();
        assert!(kept.starts_with("/gaffer fix x"));
        assert_eq!(kept.chars().count(), 4_096);
        assert_eq!(command_text("no command"), None);
    }

    #[test]
    fn task_branches_are_recognised_cheaply() {
        assert!(looks_like_task_branch("feature/T-0003-add-cli"));
        assert!(looks_like_task_branch("feature/done-T-0003-add-cli"));
        assert!(looks_like_task_branch("gaffer/T-0012"));
        assert!(!looks_like_task_branch("changes"));
        assert!(!looks_like_task_branch("feature/login"));
    }
}
