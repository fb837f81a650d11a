//! Issues as a work source: an open issue labelled for gaffer by a trusted author becomes
//! a task the Developer works directly (the task file is added in the same PR, which says
//! `Closes #N`); its progress is shown in one status comment ([`status`]) and its labels;
//! maintainers steer with `/gaffer` commands in comments ([`commands`]).

pub mod commands;
pub mod status;
pub mod track;

use serde_json::json;

use crate::error::{AppError, AppResult};
use crate::forge::PullState;
use crate::pipeline;
use crate::registry::{Mode, Repo};
use crate::roles::{self, developer, Action, Outcome};
use crate::team::charter::{self, IssueTask};
use crate::team::task::{self, parse_task, TaskId};
use crate::Gaffer;

use self::status::Subject;

const ROLE: &str = "developer";

/// The hidden line in a PR body saying which issue it works; only counted on PRs whose
/// author is gaffer's own login.
pub fn issue_marker(number: u64) -> String {
    format!("<!-- gaffer:issue={number} -->")
}

/// The issue a PR body's marker names.
pub fn issue_in_body(body: &str) -> Option<u64> {
    let start = body.find("<!-- gaffer:issue=")? + "<!-- gaffer:issue=".len();
    let digits: String = body[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The issue number a task's `source` names (`issue #12`).
pub fn issue_of_source(source: Option<&str>) -> Option<u64> {
    source?.trim().strip_prefix("issue #")?.trim().parse().ok()
}

/// What a task PR body says about its issue: `Closes #N` when merging it finishes the
/// issue (never for a PR that only records a block), and the marker.
pub fn pr_footer(task: &crate::team::task::Task, closes: bool) -> String {
    match issue_of_source(task.source.as_deref()) {
        Some(n) if closes => format!("\n\nCloses #{n}\n{}\n", issue_marker(n)),
        Some(n) => format!(
            "\n\nRefs #{n} (merging this does not close it)\n{}\n",
            issue_marker(n)
        ),
        None => String::new(),
    }
}

/// The status comment's subject for issue `number`.
pub fn issue_subject(number: u64) -> Subject {
    Subject {
        number,
        issue: true,
    }
}

/// Works issue `number`: the task file is made from the issue (its id reserved before
/// anything is pushed, so a retry reuses the branch and finds its PR), and the Developer
/// does the task in one PR that adds the file and closes the issue when merged.
pub async fn work_issue(gaffer: &Gaffer, repo: &Repo, number: u64) -> AppResult<Outcome> {
    let _turn = gaffer.turns.lock(&repo.full_name).await;
    if repo.mode != Mode::Observe {
        roles::ensure_pr_mode(repo)?;
    }
    let name = repo.full_name();
    let forge = gaffer.forge(repo);
    let nothing = |why: String| {
        let mut o = Outcome::new(ROLE, repo, Action::Nothing, why);
        o.detail = json!({"issue": number});
        Ok(o)
    };
    let report = pipeline::scan(gaffer, repo).await?;
    if !report.config.roles.developer {
        return nothing("the Developer is disabled in .llm-team.yml".into());
    }
    let issue = forge.issue(&name, number).await?;
    if issue.state != PullState::Open {
        return nothing(format!("issue #{number} is closed"));
    }
    let label = &repo.overrides.labels.trigger;
    if !issue.labels.iter().any(|l| l == label) {
        return nothing(format!("issue #{number} is not labelled {label}"));
    }
    let identity = forge.identity().await.ok();
    let who = (issue.author.as_str(), issue.author_association.as_deref());
    let ignored = format!("issue #{number} ignored");
    if let Err(why) = roles::trusted(gaffer, repo, identity.as_deref(), who, &ignored).await? {
        return nothing(format!("issue #{number} is not taken: {why}"));
    }
    if gaffer.store.is_stopped(&repo.full_name, number).await? {
        return nothing(format!(
            "issue #{number} was stopped with /gaffer stop (comment /gaffer retry to go on)"
        ));
    }
    let mut ids = roles::ids_in_use(&report);
    let works = gaffer.store.issue_works(&repo.full_name).await?;
    ids.extend(
        works
            .iter()
            .filter(|w| w.issue != number)
            .filter_map(|w| w.task.as_deref().and_then(TaskId::parse)),
    );
    let candidate = task::next_id(&ids);
    let reserved = gaffer
        .store
        .reserve_issue_task(&repo.full_name, number, candidate.as_str())
        .await?;
    let id = TaskId::parse(&reserved)
        .ok_or_else(|| AppError::internal(format!("reserved task id {reserved:?} is not an id")))?;
    let facts = IssueTask {
        id: &id,
        number,
        title: &issue.title,
        body: &issue.body,
        author: &issue.author,
        url: &issue.html_url,
        labels: &issue.labels,
    };
    let text = charter::task_file(&facts);
    let path = format!(
        "{}/{}",
        report.config.tasks_dir,
        task::file_name(&id, &charter::task_title(&facts))
    );
    let (parsed, problems) = parse_task(&path, &text);
    let Some(task) = parsed else {
        return Err(AppError::internal(format!(
            "the task made from issue #{number} does not parse: {problems:?}"
        )));
    };
    gaffer
        .store
        .set_issue_state(&repo.full_name, number, "running", &task.title)
        .await?;
    let mut outcome = developer::develop_new(gaffer, repo, &report, task, text).await?;
    if let Some(pr) = &outcome.pr {
        gaffer
            .store
            .set_issue_pr(&repo.full_name, number, pr.number)
            .await?;
    }
    let state = match outcome.action {
        Action::Blocked => "blocked",
        Action::OpenedPr | Action::ExistingPr => "review",
        Action::Preview => "queued",
        _ => "running",
    };
    gaffer
        .store
        .set_issue_state(&repo.full_name, number, state, "")
        .await?;
    if let Value::Object(detail) = &mut outcome.detail {
        detail.insert("issue".into(), json!(number));
    } else {
        outcome.detail = json!({"issue": number});
    }
    Ok(outcome)
}

use serde_json::Value;

/// An issue was labelled for gaffer (a webhook, or the poller seeing it): an outsider's is
/// noted and left alone; a trusted author's is queued and the next step decided, and its
/// status comment says where it stands.
pub async fn on_labeled(
    gaffer: &Gaffer,
    repo: &Repo,
    number: u64,
    author: &str,
    association: Option<&str>,
    trigger: crate::engine::Trigger,
) -> AppResult<String> {
    if repo.mode != Mode::Pr {
        return Ok(format!(
            "issue #{number} labelled: {} is in {} mode, nothing is taken",
            repo.full_name,
            repo.mode.as_str()
        ));
    }
    let identity = gaffer.forge(repo).identity().await.ok();
    let ignored = format!("issue #{number} ignored");
    let who = (author, association);
    if let Err(why) = roles::trusted(gaffer, repo, identity.as_deref(), who, &ignored).await? {
        // Noted once: the poller does not take it up again each cycle.
        gaffer
            .store
            .set_issue_state(&repo.full_name, number, "ignored", "")
            .await?;
        return Ok(format!("{ignored}: {why}"));
    }
    let work = gaffer.store.issue_work(&repo.full_name, number).await?;
    if let Some(w) = work
        .as_ref()
        .filter(|w| w.state != "queued" && w.state != "ignored")
    {
        return Ok(format!("issue #{number} is {} already", w.state));
    }
    gaffer
        .store
        .set_issue_state(&repo.full_name, number, "queued", "")
        .await?;
    let (reason, run) = crate::engine::drive(gaffer, repo, trigger).await?;
    let picked = reason.starts_with(&format!("Developer on issue #{number}:"));
    if !picked {
        status::report(
            gaffer,
            repo,
            issue_subject(number),
            status::Phase::Queued,
            &format!("queued: waits for its turn ({reason})"),
            None,
        )
        .await;
    }
    let queued = run
        .map(|id| format!(" (run {id} queued)"))
        .unwrap_or_default();
    Ok(format!("issue #{number} taken: next: {reason}{queued}"))
}
