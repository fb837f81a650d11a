//! The merge step: gaffer merges its own PR when [`merge_rules::may_merge`] says it may
//! (`.llm-team.yml` `workflow.auto_merge`), with `workflow.merge_strategy`, pinned to the
//! head SHA it judged (GitHub refuses the merge if anything was pushed since). Idempotent:
//! a merged PR is "already merged", a refused merge (the head moved, no longer open) is
//! nothing with the reason, never an error. `observe` mode and `dry_run` preview.

use super::merge_rules::{self, CodeFacts, Judged, MergeFacts, ReviewFact};
use super::{Action, Outcome, PrRef};
use crate::error::AppResult;
use crate::forge::{ForgeError, PullState};
use crate::pipeline::{read_task, read_team_config};
use crate::registry::{Mode, Repo};
use crate::team::{classify_branch, PullKind};
use crate::Gaffer;

const ROLE: &str = "merge";

/// Whether a merge step for the PR from `branch` is worth a run: the repo opts in to its
/// kind (read from the default branch; a conditional GET). Keeps follow-ups and triggers
/// from queueing runs that could only say "not opted in".
pub async fn worth_trying(gaffer: &Gaffer, repo: &Repo, branch: &str) -> bool {
    let forge = gaffer.forge(repo);
    match read_team_config(forge.as_ref(), repo, &repo.default_branch).await {
        Ok(config) => classify_branch(&config.branch_prefix, branch)
            .is_some_and(|(kind, _)| merge_rules::opted_in(kind, &config.auto_merge).is_ok()),
        Err(e) => {
            tracing::warn!(repo = %repo.full_name, error = %e, "could not read .llm-team.yml for auto-merge");
            false
        }
    }
}

/// Merges PR `number` if every auto-merge condition holds; otherwise says which does not.
pub async fn merge_if_ready(gaffer: &Gaffer, repo: &Repo, number: u64) -> AppResult<Outcome> {
    let _turn = gaffer.turns.lock(&repo.full_name).await;
    super::ensure_active(repo)?;
    let name = repo.full_name();
    let forge = gaffer.forge(repo);
    let pull = forge.pull(&name, number).await?;
    let nothing = |why: String| {
        let mut o = Outcome::new(ROLE, repo, Action::Nothing, why);
        o.pr = Some(PrRef::from(&pull));
        Ok(o)
    };
    if pull.is_merged() {
        return nothing(format!("PR #{number} is already merged"));
    }
    if pull.state == PullState::Closed {
        return nothing(format!("PR #{number} is closed"));
    }
    let config = read_team_config(forge.as_ref(), repo, &repo.default_branch).await?;
    let Some((kind, task_id)) = classify_branch(&config.branch_prefix, &pull.head_ref) else {
        return nothing(format!("PR #{number} ({}) is not a task PR", pull.head_ref));
    };
    if let Err(why) = merge_rules::opted_in(kind, &config.auto_merge) {
        return nothing(format!("PR #{number} not merged: {why}"));
    }
    let identity = forge.identity().await.ok();
    let files: Vec<(String, String)> = forge
        .pull_files(&name, number)
        .await?
        .into_iter()
        .map(|f| (f.filename, f.status))
        .collect();
    let sha = pull.head_sha.clone();
    let ci = forge.ci_status(&name, &sha).await?;
    let reviews: Vec<ReviewFact> = forge
        .reviews(&name, number)
        .await?
        .into_iter()
        .map(|r| ReviewFact {
            author: r.author,
            state: r.state,
        })
        .collect();
    let code = match kind {
        PullKind::Develop => Some(code_facts(gaffer, repo, &config, &task_id, number, &sha).await?),
        _ => None,
    };
    let facts = MergeFacts {
        number,
        kind,
        task: &task_id,
        auto_merge: &config.auto_merge,
        identity: identity.as_deref(),
        author: &pull.author,
        open: pull.state == PullState::Open,
        draft: pull.draft,
        into_default_branch: pull.base_ref == repo.default_branch,
        tasks_dir: &config.tasks_dir,
        files: &files,
        ci: ci.state,
        mergeable: pull.mergeable,
        reviews: &reviews,
        code: code.as_ref(),
    };
    let short = &sha[..sha.len().min(7)];
    let method = config.merge_strategy.method();
    let with_task = |mut o: Outcome| {
        o.task = Some(task_id.clone());
        o.pr = Some(PrRef::from(&pull));
        o.detail = serde_json::json!({"sha": sha, "merge_method": method.as_str()});
        o
    };
    if let Err(why) = merge_rules::may_merge(&facts) {
        let summary = format!("PR #{number} at {short} not merged: {why}");
        gaffer.store.add_event(&name, ROLE, &summary).await?;
        return Ok(with_task(Outcome::new(
            ROLE,
            repo,
            Action::Nothing,
            summary,
        )));
    }
    if repo.mode != Mode::Pr || config.dry_run {
        return Ok(with_task(Outcome::new(
            ROLE,
            repo,
            Action::Preview,
            format!("would merge PR #{number} at {short} ({})", method.as_str()),
        )));
    }
    match forge.merge_pull(&name, number, method, &sha).await {
        Ok(commit) => {
            let summary = format!(
                "merged PR #{number} at {short} ({}, {}): every auto-merge condition held",
                method.as_str(),
                &commit[..commit.len().min(7)]
            );
            gaffer.store.add_event(&name, ROLE, &summary).await?;
            Ok(with_task(Outcome::new(ROLE, repo, Action::Merged, summary)))
        }
        Err(e) => {
            // Did it happen anyway (a write whose answer was lost, another run)?
            if forge.pull(&name, number).await.is_ok_and(|p| p.is_merged()) {
                return Ok(with_task(Outcome::new(
                    ROLE,
                    repo,
                    Action::Nothing,
                    format!("PR #{number} is already merged"),
                )));
            }
            if refused(&e) {
                let summary = format!("PR #{number} at {short} not merged: GitHub refused ({e})");
                gaffer.store.add_event(&name, ROLE, &summary).await?;
                return Ok(with_task(Outcome::new(
                    ROLE,
                    repo,
                    Action::Nothing,
                    summary,
                )));
            }
            Err(e.into())
        }
    }
}

/// GitHub's "the head moved" (409) and "not mergeable" (405): the PR changed under the
/// judgement, so the next trigger judges it again.
fn refused(e: &ForgeError) -> bool {
    matches!(
        e,
        ForgeError::Status {
            status: 405 | 409,
            ..
        } | ForgeError::Local {
            status: 405 | 409,
            ..
        }
    )
}

/// What a code PR's merge depends on beyond the PR itself: its task's `auto_policy` on the
/// default branch and the Reviewer's stored verdict on this head.
async fn code_facts(
    gaffer: &Gaffer,
    repo: &Repo,
    config: &crate::team::team_config::TeamConfig,
    task_id: &crate::team::task::TaskId,
    number: u64,
    sha: &str,
) -> AppResult<CodeFacts> {
    let forge = gaffer.forge(repo);
    let task = read_task(forge.as_ref(), repo, config, task_id, &repo.default_branch)
        .await?
        .map(|(t, _)| t);
    let verdict = gaffer
        .store
        .review_verdict(&repo.full_name().to_string(), number, sha)
        .await?
        .map(|v| Judged {
            criteria: v.criteria,
            met: v.met,
            fell_back: v.fell_back,
            checks_passed: v.checks_passed,
            fail_to_pass: v.fail_to_pass,
        });
    Ok(CodeFacts {
        proof_required: task.as_ref().is_none_or(|t| {
            super::developer::needs_proof(t, config) && !super::bootstrap::is_bootstrap(&t.title)
        }),
        expected_criteria: task.as_ref().map_or(0, |t| t.acceptance.len() as u32),
        auto_policy: task.and_then(|t| t.auto_policy),
        verdict,
    })
}
