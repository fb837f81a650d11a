//! What the engine tells the status comments: a run queued, started, ended (and what it
//! did) or failed, said on the issue the work is for, or on the task PR when the task has
//! no issue. PRs of others get nothing: a PR's status comment starts only when gaffer's
//! Developer opened it or gaffer acted on it.

use super::status::{self, Phase, Subject};
use crate::engine::Job;
use crate::forge::PullState;
use crate::registry::Repo;
use crate::roles::{Action, Outcome};
use crate::Gaffer;

/// The subject a run reports on, if any; `outcomes` add the PR a run opened.
async fn subject_of(
    gaffer: &Gaffer,
    repo: &Repo,
    job: &Job,
    outcomes: &[Outcome],
) -> Option<Subject> {
    if let Job::Issue(n) = job {
        return Some(super::issue_subject(*n));
    }
    if matches!(job, Job::Taskmaster) {
        return None;
    }
    let pr = job.pr().or_else(|| {
        outcomes
            .iter()
            .find_map(|o| o.pr.as_ref().map(|p| p.number))
    });
    let task = job.task().or_else(|| {
        outcomes
            .iter()
            .find_map(|o| o.task.as_ref().map(|t| t.to_string()))
    });
    if let Ok(Some(issue)) = gaffer
        .store
        .issue_of(&repo.full_name, pr, task.as_deref())
        .await
    {
        return Some(super::issue_subject(issue));
    }
    pr.map(|number| Subject {
        number,
        issue: false,
    })
}

/// Whether a PR subject has a status comment already (only then do starts and failures
/// show on it).
async fn has_status(gaffer: &Gaffer, repo: &Repo, subject: Subject) -> bool {
    subject.issue
        || gaffer
            .store
            .status_record(&repo.full_name, subject.number)
            .await
            .is_ok_and(|r| r.comment_id.is_some())
}

/// Whether `/gaffer stop` holds for what `job` works on: then no automatic run starts.
pub async fn stopped(gaffer: &Gaffer, repo: &Repo, job: &Job) -> Option<String> {
    let subject = subject_of(gaffer, repo, job, &[]).await?;
    let mut numbers = vec![subject.number];
    numbers.extend(job.pr());
    for number in numbers {
        if gaffer
            .store
            .is_stopped(&repo.full_name, number)
            .await
            .unwrap_or(false)
        {
            return Some(format!(
                "#{number} was stopped with /gaffer stop (comment /gaffer retry to go on)"
            ));
        }
    }
    None
}

/// A run of an issue job was queued.
pub async fn queued(gaffer: &Gaffer, repo: &Repo, run: i64, job: &Job) {
    if let Job::Issue(n) = job {
        status::report(
            gaffer,
            repo,
            super::issue_subject(*n),
            Phase::Queued,
            "queued: the Developer takes it when the repo's turn comes",
            Some(run),
        )
        .await;
    }
}

/// A run started.
pub async fn started(gaffer: &Gaffer, repo: &Repo, run: i64, job: &Job) {
    if matches!(job, Job::Merge(_)) {
        return;
    }
    let Some(subject) = subject_of(gaffer, repo, job, &[]).await else {
        return;
    };
    if !has_status(gaffer, repo, subject).await {
        return;
    }
    let what = match job {
        Job::Issue(_) | Job::Developer(_) => "the Developer is working on it".to_string(),
        Job::Fix(pr) => format!("the Developer is working on feedback on PR #{pr}"),
        Job::Reviewer(Some(pr)) => format!("the Reviewer is reviewing PR #{pr}"),
        Job::Integrator(Some(pr)) => format!("PR #{pr} merged: the Integrator records it"),
        _ => format!("{} started", job.role()),
    };
    status::report(gaffer, repo, subject, Phase::Running, &what, Some(run)).await;
}

/// A run failed with `message`.
pub async fn failed(gaffer: &Gaffer, repo: &Repo, run: i64, job: &Job, message: &str) {
    let Some(subject) = subject_of(gaffer, repo, job, &[]).await else {
        return;
    };
    if !has_status(gaffer, repo, subject).await {
        return;
    }
    let line = format!(
        "{} failed: {} (comment /gaffer retry to try again)",
        job.role(),
        message.lines().next().unwrap_or("")
    );
    status::report(gaffer, repo, subject, Phase::Blocked, &line, Some(run)).await;
}

/// A run ended with `outcomes`: the line and phase they mean. After the Integrator on a
/// merged PR that works an issue, the issue is done (and closed if GitHub did not).
pub async fn ended(gaffer: &Gaffer, repo: &Repo, run: i64, job: &Job, outcomes: &[Outcome]) {
    let Some(subject) = subject_of(gaffer, repo, job, outcomes).await else {
        return;
    };
    let acted = outcomes.iter().any(|o| {
        matches!(
            o.action,
            Action::OpenedPr | Action::Blocked | Action::Pushed | Action::Reviewed
        )
    });
    let known = has_status(gaffer, repo, subject).await;
    if !(acted || known) {
        return;
    }
    for o in outcomes {
        let (phase, text) = match (job, o.action) {
            (_, Action::Preview) => continue,
            (Job::Integrator(Some(pr)), _) => {
                let forge = gaffer.forge(repo);
                let merged = forge
                    .pull(&repo.full_name(), *pr)
                    .await
                    .is_ok_and(|p| p.is_merged());
                if !merged {
                    continue;
                }
                if subject.issue {
                    finish_issue(gaffer, repo, subject.number).await;
                }
                (Phase::Done, format!("PR #{pr} merged: {}", o.summary))
            }
            (_, Action::Merged) => (Phase::Merged, o.summary.clone()),
            // "Not yet" from the merge step (CI pending, say) is no news on the status.
            (Job::Merge(_), _) => continue,
            (_, Action::OpenedPr) => (Phase::Review, o.summary.clone()),
            (_, Action::Blocked) => (Phase::Blocked, o.summary.clone()),
            (_, Action::Pushed) => (Phase::Iterating, o.summary.clone()),
            (_, Action::Reviewed) => (Phase::Review, o.summary.clone()),
            (Job::Issue(_), Action::ExistingPr) => (Phase::Review, o.summary.clone()),
            (_, Action::ExistingPr) => continue,
            (_, Action::Nothing) => {
                let phase = status::phase_of(gaffer, repo, subject.number)
                    .await
                    .filter(|p| *p != Phase::Running)
                    .unwrap_or(if subject.issue {
                        Phase::Queued
                    } else {
                        Phase::Review
                    });
                (phase, o.summary.clone())
            }
        };
        status::report(gaffer, repo, subject, phase, &text, Some(run)).await;
    }
}

/// The issue's work PR was merged: recorded done, and the issue closed if it is open
/// still (GitHub closes it on `Closes #N` when the PR merges into the default branch).
async fn finish_issue(gaffer: &Gaffer, repo: &Repo, number: u64) {
    let _ = gaffer
        .store
        .set_issue_state(&repo.full_name, number, "done", "")
        .await;
    let forge = gaffer.forge(repo);
    let name = repo.full_name();
    match forge.issue(&name, number).await {
        Ok(issue) if issue.state == PullState::Open => {
            if let Err(e) = forge.close_issue(&name, number).await {
                tracing::warn!(repo = %repo.full_name, number, error = %e, "could not close the finished issue");
            }
        }
        Ok(_) => {}
        Err(e) => {
            tracing::info!(repo = %repo.full_name, number, error = %e, "could not read the finished issue")
        }
    }
}
