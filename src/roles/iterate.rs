//! The Developer's next round on its own PR: when the Reviewer found criteria unmet or the
//! checks failing, or CI failed on the head, the agent works again on the PR's branch with
//! that feedback and pushes fix commits to the same PR (never a new one), at most
//! `DEV_MAX_ITERATIONS` times per PR; the Reviewer then reviews the new head as usual. A
//! maintainer's `/gaffer fix <what>` adds its text to the feedback and gets a round even
//! past that limit.
//!
//! The clone is put at the merge base with the branch's tree as the work, so the checks and
//! the fail-to-pass proof judge the whole change against the base; the result is committed
//! on top of the branch's head. A round that cannot fix it pushes nothing and says why in
//! one comment per head.

use serde_json::json;

use super::{developer, ensure_pr_mode, marker, Action, Outcome, PrRef, RepoChecks};
use crate::error::AppResult;
use crate::forge::{once, CiState, PullState};
use crate::llm::{Llm, Role};
use crate::pipeline::read_team_config;
use crate::registry::Repo;
use crate::store::DeveloperRun;
use crate::team::task::parse_task;
use crate::team::{classify_branch, PullKind};
use crate::Gaffer;

const ROLE: &str = "developer";

/// One round on PR `number`'s feedback.
pub async fn iterate(gaffer: &Gaffer, repo: &Repo, number: u64) -> AppResult<Outcome> {
    let _turn = gaffer.turns.lock(&repo.full_name).await;
    ensure_pr_mode(repo)?;
    let name = repo.full_name();
    let forge = gaffer.forge(repo);
    let nothing = |why: String| Ok(Outcome::new(ROLE, repo, Action::Nothing, why));
    let pull = forge.pull(&name, number).await?;
    if pull.state != PullState::Open {
        return nothing(format!("PR #{number} is not open"));
    }
    if let Err(why) = super::trusted_author(gaffer, forge.as_ref(), repo, &pull).await? {
        return nothing(format!("PR #{number} is not gaffer's to change: {why}"));
    }
    let config = read_team_config(forge.as_ref(), repo, &pull.head_sha).await?;
    let Some((PullKind::Develop, task_id)) = classify_branch(&config.branch_prefix, &pull.head_ref)
    else {
        return nothing(format!("PR #{number} is not a task's work PR"));
    };
    let max = gaffer.settings.work.max_iterations;
    let done = gaffer.store.iterations_on(&name, number).await?;
    // `/gaffer fix` requests: a person asked, so the automatic rounds' limit does not apply.
    let asked = gaffer
        .store
        .pending_pr_feedback(&repo.full_name, number)
        .await?;
    if done >= max && asked.is_empty() {
        return nothing(format!(
            "PR #{number} had its {done} iteration(s) (DEV_MAX_ITERATIONS={max}): a person takes it from here"
        ));
    }
    let found = feedback_on(gaffer, repo, number, &pull.head_sha).await?;
    let feedback = match (asked.is_empty(), found) {
        (true, found) => found,
        (false, found) => {
            let requests: Vec<String> = asked
                .iter()
                .map(|(who, text)| format!("A maintainer (@{who}) asked on the PR: {text}"))
                .collect();
            Some(
                std::iter::once(requests.join("\n"))
                    .chain(found)
                    .collect::<Vec<_>>()
                    .join("\n\n"),
            )
        }
    };
    let Some(feedback) = feedback else {
        return nothing(format!(
            "PR #{number} at {} has no unmet review criteria and no failing checks to fix",
            short(&pull.head_sha)
        ));
    };
    let llm = gaffer.llm_for(repo);
    let Some(model) = llm.model(Role::Developer) else {
        return nothing("no Developer model is configured (LLM_DEVELOPER_MODEL=none)".into());
    };

    let clone = gaffer.workspace.checkout(repo).await?;
    let branch = pull.head_ref.clone();
    let head = format!("origin/{branch}");
    let base = clone
        .merge_base(&head, &format!("origin/{}", repo.default_branch))
        .await?;
    clone.start_branch("gaffer-iterate", &base).await?;
    let checks = RepoChecks::new(gaffer, repo, &clone, &config).await;
    let baseline = checks.baseline(gaffer, repo, &clone, &base).await?;
    clone.take_tree_of(&head).await?;
    let Some(task) = task_of(&clone, &config, &task_id).await else {
        return nothing(format!(
            "the branch of PR #{number} has no task file for {task_id}"
        ));
    };
    let mut stats = DeveloperRun {
        task: task.id.to_string(),
        model: model.clone(),
        iteration: done + 1,
        pr_number: Some(number),
        ..DeveloperRun::default()
    };
    let work = developer::model_work(
        gaffer,
        repo,
        &clone,
        &task,
        &config,
        &checks,
        baseline,
        &mut stats,
        Some(feedback),
    )
    .await;
    let round = done + 1;
    gaffer
        .store
        .consume_pr_feedback(&repo.full_name, number)
        .await?;
    match work {
        Ok(finished) => {
            stats.outcome = "pr".into();
            // The agent's tree, committed on top of the branch's head.
            let result = clone.snapshot().await?;
            clone.start_branch(&branch, &head).await?;
            clone.restore(&result).await?;
            let committed = clone
                .commit_all(&format!(
                    "{}: address review feedback (iteration {round})",
                    task.id
                ))
                .await?;
            gaffer.store.record_developer_run(&name, &stats).await?;
            if committed.is_none() {
                return nothing(format!(
                    "iteration {round} on PR #{number} ended with nothing new to push"
                ));
            }
            clone.push(&branch, &config.branch_prefix).await?;
            let summary = format!(
                "pushed iteration {round} to PR #{number} ({} step(s)): the Reviewer looks at the new head next",
                stats.steps
            );
            gaffer.store.add_event(&name, ROLE, &summary).await?;
            let mut o = Outcome::new(ROLE, repo, Action::Pushed, summary);
            o.task = Some(task.id.clone());
            o.pr = Some(PrRef::from(&pull));
            o.checks = Some(finished.checks);
            o.detail = json!({"stats": stats, "proof": finished.proof, "iteration": round});
            Ok(o)
        }
        Err(blocked) => {
            stats.outcome = "blocked".into();
            gaffer.store.record_developer_run(&name, &stats).await?;
            let comment_marker = format!(
                "{} iteration={round} sha={} -->",
                marker(&task.id, ROLE).trim_end_matches(" -->"),
                pull.head_sha
            );
            let body = developer::bounded_body(format!(
                "{comment_marker}\ngaffer's Developer ({model}) could not address the feedback in iteration {round} of {max}, so nothing was pushed.\n\n```text\n{}\n```\n",
                blocked.reason.replace("```", "'''")
            ));
            once::post_comment(forge.as_ref(), &name, number, &body, &comment_marker).await?;
            let summary = format!(
                "iteration {round} on PR #{number} could not fix it: {}",
                blocked.reason.lines().next().unwrap_or("")
            );
            let mut o = Outcome::new(ROLE, repo, Action::Nothing, summary);
            o.task = Some(task.id.clone());
            o.pr = Some(PrRef::from(&pull));
            o.detail = json!({"stats": stats, "blocked": blocked.reason, "iteration": round});
            Ok(o)
        }
    }
}

/// What to fix on the PR's head: the unmet criteria and failing checks of gaffer's review
/// of that head, and failing CI. `None` when there is nothing.
async fn feedback_on(
    gaffer: &Gaffer,
    repo: &Repo,
    number: u64,
    head: &str,
) -> AppResult<Option<String>> {
    let forge = gaffer.forge(repo);
    let name = repo.full_name();
    let mut parts = Vec::new();
    let review_tag = format!("role=reviewer sha={head}");
    if let Some(review) = forge
        .reviews(&name, number)
        .await?
        .into_iter()
        .rev()
        .find(|r| r.body.contains(&review_tag))
    {
        let unmet: Vec<&str> = review
            .body
            .lines()
            .filter(|l| l.starts_with("- [ ] ") && !l.contains(super::reviewer::BY_HAND))
            .collect();
        if !unmet.is_empty() {
            parts.push(format!(
                "The Reviewer found these acceptance criteria not met:\n{}",
                unmet.join("\n")
            ));
        }
        if review.body.contains("**failed**") {
            parts.push("The Reviewer's run of the checks failed on this commit.".to_string());
        }
    }
    let ci = forge.ci_status(&name, head).await?;
    if ci.state == CiState::Failure {
        let failing: Vec<String> = ci
            .checks
            .iter()
            .filter(|c| c.state == CiState::Failure)
            .map(|c| c.name.clone())
            .collect();
        parts.push(format!("CI failed on this commit: {}", failing.join(", ")));
    }
    Ok((!parts.is_empty()).then(|| parts.join("\n\n")))
}

async fn task_of(
    clone: &crate::workspace::Clone,
    config: &crate::team::team_config::TeamConfig,
    id: &crate::team::task::TaskId,
) -> Option<crate::team::task::Task> {
    let prefix = format!("{}/{id}-", config.tasks_dir);
    let path = clone
        .uncommitted_changes()
        .await
        .ok()
        .into_iter()
        .flatten()
        .chain(clone.files().await)
        .find(|f| f.starts_with(&prefix) && f.ends_with(".md"))?;
    let text = clone.read(&path)?;
    parse_task(&path, &text).0
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(7)]
}
