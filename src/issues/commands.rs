//! `/gaffer` commands in issue and PR comments. Obeyed only from authors the repo trusts
//! ([`crate::safety::trust`], the same decision as for PRs and issues), once per comment
//! whichever path saw it (webhook, redelivery), acknowledged with a reaction and a line in
//! the status comment; an unknown command is answered once with the list; gaffer's own
//! comments and outsiders' are never obeyed.

use super::status::{self, Phase, Subject};
use crate::engine::{self, Job, Trigger};
use crate::error::AppResult;
use crate::forge::{once, PullState};
use crate::registry::Repo;
use crate::store::RunFilter;
use crate::Gaffer;

/// Longest `/gaffer fix` text kept (characters).
const MAX_FIX_TEXT: usize = 4_000;

/// What a comment asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Runs the last failed step again and lifts a stop.
    Retry,
    /// No more automatic runs for this issue or PR; cancels what is queued or running.
    Stop,
    /// A Developer round on the PR with this text as feedback.
    Fix(String),
    /// The Taskmaster now.
    Plan,
    /// Anything else after `/gaffer`.
    Unknown(String),
}

/// The list an unknown command is answered with.
pub const HELP: &str = "`/gaffer retry` (run the last failed step again; lifts a stop), `/gaffer stop` (no more automatic runs here), `/gaffer fix <what to change>` (on a task PR: a Developer round on that), `/gaffer plan` (the Taskmaster plans now)";

/// The first command in a comment: a line starting with `/gaffer`, outside code blocks
/// and quotes. The rest of the comment is ignored.
pub fn parse(body: &str) -> Option<Command> {
    let mut in_code = false;
    for line in body.lines() {
        let t = line.trim();
        if t.starts_with("```") || t.starts_with("~~~") {
            in_code = !in_code;
            continue;
        }
        if in_code || t.starts_with('>') {
            continue;
        }
        let Some(rest) = t.strip_prefix("/gaffer") else {
            continue;
        };
        if !(rest.is_empty() || rest.starts_with(char::is_whitespace)) {
            continue;
        }
        let rest = rest.trim();
        let (word, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        return Some(match word.to_ascii_lowercase().as_str() {
            "retry" => Command::Retry,
            "stop" => Command::Stop,
            "plan" => Command::Plan,
            "fix" => Command::Fix(args.trim().chars().take(MAX_FIX_TEXT).collect()),
            other => Command::Unknown(other.chars().take(40).collect()),
        });
    }
    None
}

/// A comment as a webhook (or a listing) reports it.
#[derive(Debug, Clone)]
pub struct CommentEvent {
    /// The issue or PR the comment is on.
    pub number: u64,
    pub is_pull: bool,
    pub comment_id: u64,
    pub author: String,
    pub association: Option<String>,
    pub body: String,
}

/// Obeys the comment's command, if it has one its author may give; returns what was done
/// (the delivery's verdict).
pub async fn obey(gaffer: &Gaffer, repo: &Repo, event: &CommentEvent) -> AppResult<String> {
    let Some(command) = parse(&event.body) else {
        return Ok(format!("comment on #{}: no command", event.number));
    };
    let forge = gaffer.forge(repo);
    let identity = forge.identity().await.ok();
    if identity
        .as_deref()
        .is_some_and(|me| me.eq_ignore_ascii_case(&event.author))
    {
        return Ok(format!("comment on #{}: gaffer's own", event.number));
    }
    let ignored = format!("command on #{} ignored", event.number);
    let who = (event.author.as_str(), event.association.as_deref());
    if let Err(why) =
        crate::roles::trusted(gaffer, repo, identity.as_deref(), who, &ignored).await?
    {
        return Ok(format!("{ignored}: {why}"));
    }
    if !gaffer
        .store
        .first_sight_of_command(&repo.full_name, event.comment_id)
        .await?
    {
        return Ok(format!(
            "command in comment {} was obeyed already",
            event.comment_id
        ));
    }
    let subject = subject_of(gaffer, repo, event).await?;
    let who = format!("@{}", event.author);
    let name = repo.full_name();
    let (reaction, verdict) = match command {
        Command::Unknown(word) => {
            let marker = format!("<!-- gaffer:reply={} -->", event.comment_id);
            let body = format!(
                "{marker}\n{who}: gaffer does not know `/gaffer {}`. The commands are: {HELP}.\n",
                word.replace('`', "'")
            );
            once::post_comment(forge.as_ref(), &name, event.number, &body, &marker).await?;
            (
                "confused",
                format!("unknown command /gaffer {word}: answered with the list"),
            )
        }
        Command::Plan => {
            let run = engine::enqueue(gaffer, repo, &Job::Taskmaster, Trigger::Command).await?;
            let line = format!("/gaffer plan by {who}: the Taskmaster is queued");
            keep_phase(gaffer, repo, subject, &line, Some(run)).await;
            ("+1", format!("{line} (run {run})"))
        }
        Command::Stop => {
            status::set_stopped(gaffer, repo, subject.number, true).await?;
            if subject.issue {
                gaffer
                    .store
                    .set_issue_state(&repo.full_name, subject.number, "stopped", "")
                    .await?;
            }
            let cancelled = cancel_runs_for(gaffer, repo, subject).await?;
            let line = format!(
                "stopped by {who}: no automatic runs until /gaffer retry ({cancelled} run(s) cancelled)"
            );
            status::report(gaffer, repo, subject, Phase::Stopped, &line, None).await;
            ("+1", line)
        }
        Command::Retry => {
            let line = retry(gaffer, repo, subject, &who).await?;
            ("+1", line)
        }
        Command::Fix(text) => fix(gaffer, repo, event, subject, &who, text).await?,
    };
    if let Err(e) = forge.react(&name, event.comment_id, reaction).await {
        tracing::info!(repo = %repo.full_name, error = %e, "could not react to a command");
    }
    gaffer
        .store
        .add_event(&repo.full_name(), "command", &verdict)
        .await?;
    Ok(verdict)
}

/// Where the status of a comment's thread is kept: the issue itself, or for a task PR the
/// issue it works (if any), else the PR.
async fn subject_of(gaffer: &Gaffer, repo: &Repo, event: &CommentEvent) -> AppResult<Subject> {
    if !event.is_pull {
        return Ok(super::issue_subject(event.number));
    }
    Ok(
        match gaffer
            .store
            .issue_of(&repo.full_name, Some(event.number), None)
            .await?
        {
            Some(issue) => super::issue_subject(issue),
            None => Subject {
                number: event.number,
                issue: false,
            },
        },
    )
}

/// A line in the status without changing the phase (queued when there is none yet).
async fn keep_phase(gaffer: &Gaffer, repo: &Repo, subject: Subject, line: &str, run: Option<i64>) {
    let phase = status::phase_of(gaffer, repo, subject.number)
        .await
        .unwrap_or(Phase::Queued);
    status::report(gaffer, repo, subject, phase, line, run).await;
}

/// Runs of this repo that concern the subject (its issue job, its task, its PR).
async fn runs_for(
    gaffer: &Gaffer,
    repo: &Repo,
    subject: Subject,
) -> AppResult<Vec<crate::store::RunRecord>> {
    let runs = gaffer
        .store
        .list_runs(&RunFilter {
            repo: Some(repo.full_name.clone()),
            limit: 200,
            ..RunFilter::default()
        })
        .await?;
    let work = if subject.issue {
        gaffer
            .store
            .issue_work(&repo.full_name, subject.number)
            .await?
    } else {
        None
    };
    let issue_task = format!("issue #{}", subject.number);
    Ok(runs
        .into_iter()
        .filter(|r| {
            if subject.issue {
                r.task.as_deref() == Some(issue_task.as_str())
                    || work.as_ref().is_some_and(|w| {
                        (w.task.is_some() && r.task == w.task) || (w.pr.is_some() && r.pr == w.pr)
                    })
            } else {
                r.pr == Some(subject.number)
            }
        })
        .collect())
}

async fn cancel_runs_for(gaffer: &Gaffer, repo: &Repo, subject: Subject) -> AppResult<usize> {
    let mut cancelled = 0;
    for run in runs_for(gaffer, repo, subject).await? {
        if !run.finished() && engine::cancel(gaffer, run.id).await.is_ok() {
            cancelled += 1;
        }
    }
    Ok(cancelled)
}

/// `/gaffer retry`: lifts a stop, then runs again the newest step for the subject that
/// failed, was cancelled or blocked; an issue with no PR (or whose PR was closed unmerged)
/// is worked again from the start.
async fn retry(gaffer: &Gaffer, repo: &Repo, subject: Subject, who: &str) -> AppResult<String> {
    status::set_stopped(gaffer, repo, subject.number, false).await?;
    let forge = gaffer.forge(repo);
    let name = repo.full_name();
    if subject.issue {
        let work = gaffer
            .store
            .issue_work(&repo.full_name, subject.number)
            .await?;
        let pr_state = match work.as_ref().and_then(|w| w.pr) {
            Some(pr) => Some(forge.pull(&name, pr).await?),
            None => None,
        };
        let closed_unmerged = pr_state
            .as_ref()
            .is_some_and(|p| p.state == PullState::Closed && !p.is_merged());
        if closed_unmerged {
            gaffer
                .store
                .reset_issue_task(&repo.full_name, subject.number)
                .await?;
        }
        if pr_state.is_none() || closed_unmerged {
            gaffer
                .store
                .set_issue_state(&repo.full_name, subject.number, "queued", "")
                .await?;
            let run = engine::enqueue(gaffer, repo, &Job::Issue(subject.number), Trigger::Command)
                .await?;
            let line = format!("retry by {who}: the Developer works the issue again");
            status::report(gaffer, repo, subject, Phase::Queued, &line, Some(run)).await;
            return Ok(format!("{line} (run {run})"));
        }
        gaffer
            .store
            .set_issue_state(&repo.full_name, subject.number, "review", "")
            .await?;
    }
    let last = runs_for(gaffer, repo, subject)
        .await?
        .into_iter()
        .find(|r| r.finished() && r.state != "succeeded");
    match last {
        Some(run) => {
            let new = engine::retry(gaffer, run.id).await?;
            let line = format!("retry by {who}: run {} ({}) queued again", run.id, run.role);
            keep_phase(gaffer, repo, subject, &line, Some(new)).await;
            Ok(format!("{line} as run {new}"))
        }
        None => {
            let line =
                format!("retry by {who}: nothing failed here, nothing to retry (a stop is lifted)");
            keep_phase(gaffer, repo, subject, &line, None).await;
            Ok(line)
        }
    }
}

/// `/gaffer fix <what>`: on a task PR of gaffer's, the text becomes the feedback of a
/// Developer round on that PR.
async fn fix(
    gaffer: &Gaffer,
    repo: &Repo,
    event: &CommentEvent,
    subject: Subject,
    who: &str,
    text: String,
) -> AppResult<(&'static str, String)> {
    let forge = gaffer.forge(repo);
    let name = repo.full_name();
    let refuse = |why: String| async move {
        let marker = format!("<!-- gaffer:reply={} -->", event.comment_id);
        let body = format!("{marker}\n{who}: {why}\n");
        once::post_comment(forge.as_ref(), &name, event.number, &body, &marker).await?;
        AppResult::Ok(("confused", why))
    };
    if !event.is_pull {
        return refuse(
            "`/gaffer fix <what>` works on a task PR of gaffer's; comment it on the PR".into(),
        )
        .await;
    }
    if text.is_empty() {
        return refuse("say what to fix: `/gaffer fix <what to change>`".into()).await;
    }
    match queue_fix(
        gaffer,
        repo,
        event.number,
        event.comment_id,
        &event.author,
        &text,
    )
    .await?
    {
        Err(why) => refuse(why).await,
        Ok(run) => {
            let line = format!(
                "/gaffer fix by {who}: a Developer round on PR #{} is queued",
                event.number
            );
            status::report(gaffer, repo, subject, Phase::Iterating, &line, Some(run)).await;
            Ok(("+1", format!("{line} (run {run})")))
        }
    }
}

/// Keeps `text` as feedback for PR `pr` (once per `source_id`, a comment or review) and
/// queues a Developer round on it; `Err` with the reason when the PR is not an open PR of
/// gaffer's.
async fn queue_fix(
    gaffer: &Gaffer,
    repo: &Repo,
    pr: u64,
    source_id: u64,
    author: &str,
    text: &str,
) -> AppResult<Result<i64, String>> {
    let forge = gaffer.forge(repo);
    let pull = forge.pull(&repo.full_name(), pr).await?;
    let identity = forge.identity().await.ok();
    let gaffers = identity
        .as_deref()
        .is_some_and(|me| me.eq_ignore_ascii_case(&pull.author));
    if !gaffers || pull.state != PullState::Open {
        return Ok(Err(format!(
            "PR #{pr} is not an open PR of gaffer's, so gaffer does not change it"
        )));
    }
    gaffer
        .store
        .add_pr_feedback(&repo.full_name, pr, source_id, author, text)
        .await?;
    Ok(Ok(engine::enqueue(
        gaffer,
        repo,
        &Job::Fix(pr),
        Trigger::Command,
    )
    .await?))
}

/// A review that requests changes, as a webhook reports it.
#[derive(Debug, Clone)]
pub struct ReviewEvent {
    pub pr: u64,
    pub review_id: u64,
    pub author: String,
    pub association: Option<String>,
    pub text: String,
}

/// A trusted reviewer's "changes requested" on a task PR of gaffer's: its text becomes the
/// feedback of a Developer round on the PR, as `/gaffer fix` would (once per review).
pub async fn changes_requested(
    gaffer: &Gaffer,
    repo: &Repo,
    review: &ReviewEvent,
) -> AppResult<String> {
    let identity = gaffer.forge(repo).identity().await.ok();
    let skipped = format!("review on PR #{} not worked on", review.pr);
    let who = (review.author.as_str(), review.association.as_deref());
    if let Err(why) =
        crate::roles::trusted(gaffer, repo, identity.as_deref(), who, &skipped).await?
    {
        return Ok(format!("{skipped}: {why}"));
    }
    if review.text.trim().is_empty() {
        return Ok(format!(
            "changes requested on PR #{} without a text: nothing for the Developer to work on",
            review.pr
        ));
    }
    if !gaffer
        .store
        .first_sight_of_command(&repo.full_name, review.review_id)
        .await?
    {
        return Ok(format!("review {} was worked on already", review.review_id));
    }
    let who = format!("@{}", review.author);
    match queue_fix(
        gaffer,
        repo,
        review.pr,
        review.review_id,
        &review.author,
        review.text.trim(),
    )
    .await?
    {
        Err(why) => Ok(why),
        Ok(run) => {
            let subject = match gaffer
                .store
                .issue_of(&repo.full_name, Some(review.pr), None)
                .await?
            {
                Some(issue) => super::issue_subject(issue),
                None => Subject {
                    number: review.pr,
                    issue: false,
                },
            };
            let line = format!(
                "changes requested by {who}: a Developer round on PR #{} is queued",
                review.pr
            );
            status::report(gaffer, repo, subject, Phase::Iterating, &line, Some(run)).await;
            Ok(format!("{line} (run {run})"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_found_where_people_write_them() {
        assert_eq!(parse("/gaffer retry"), Some(Command::Retry));
        assert_eq!(parse("thanks!\n  /gaffer STOP please"), Some(Command::Stop));
        assert_eq!(parse("/gaffer plan"), Some(Command::Plan));
        assert_eq!(
            parse("/gaffer fix handle an empty list\nmore words"),
            Some(Command::Fix("handle an empty list".into()))
        );
        assert_eq!(parse("/gaffer fix"), Some(Command::Fix(String::new())));
        assert_eq!(
            parse("/gaffer dance"),
            Some(Command::Unknown("dance".into()))
        );
        assert_eq!(parse("/gaffer"), Some(Command::Unknown(String::new())));
    }

    #[test]
    fn quotes_code_and_lookalikes_are_not_commands() {
        assert_eq!(parse("> /gaffer stop"), None);
        assert_eq!(parse("```\n/gaffer stop\n```"), None);
        assert_eq!(parse("/gafferstop"), None);
        assert_eq!(parse("please /gaffer stop"), None);
        assert_eq!(parse("no command here"), None);
        let long = format!("/gaffer fix {}", "x".repeat(10_000));
        match parse(&long) {
            Some(Command::Fix(t)) => assert_eq!(t.chars().count(), MAX_FIX_TEXT),
            other => panic!("{other:?}"),
        }
    }
}
