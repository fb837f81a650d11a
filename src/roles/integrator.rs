//! The Integrator: when a task's work PR is merged, a small PR moving the task to `done`
//! (or to `ready_for_integration` when `.llm-team.yml` lists that state, from a `ready-`
//! branch); when that PR is merged, a second small PR (from the `done-` branch) moving it
//! on to `done`. A PR closed without merge moves nothing. Once per merged PR (stored, and
//! found by branch).

use super::{ensure_pr_mode, marker, pr_state, task_pr_for, Action, Outcome, PrRef};
use crate::error::AppResult;
use crate::forge::NewPull;
use crate::pipeline::{self, read_task, read_team_config, Step};
use crate::registry::{Mode, Repo};
use crate::team::task::{set_front_matter_field, Status};
use crate::team::{classify_branch, integration_branch, PullKind};
use crate::Gaffer;

const ROLE: &str = "integrator";

/// Integrates what work-next says is merged and waiting, if anything.
pub async fn integrate_pending(gaffer: &Gaffer, repo: &Repo) -> AppResult<Outcome> {
    let report = pipeline::scan(gaffer, repo).await?;
    match report.next.step {
        Step::Integrator { pull, .. } => integrate(gaffer, repo, pull).await,
        _ => Ok(Outcome::new(
            ROLE,
            repo,
            Action::Nothing,
            report.next.reason,
        )),
    }
}

/// Handles merged PR `number`.
pub async fn integrate(gaffer: &Gaffer, repo: &Repo, number: u64) -> AppResult<Outcome> {
    let _turn = gaffer.turns.lock(&repo.full_name).await;
    if repo.mode != Mode::Observe {
        ensure_pr_mode(repo)?;
    }
    let name = repo.full_name();
    let forge = gaffer.forge(repo);
    let pull = forge.pull(&name, number).await?;
    let nothing = |why: String| Ok(Outcome::new(ROLE, repo, Action::Nothing, why));
    if !pull.is_merged() {
        return nothing(match pull.state {
            crate::forge::PullState::Open => format!("PR #{number} is still open"),
            crate::forge::PullState::Closed => {
                format!("PR #{number} was closed without merge: nothing moves")
            }
        });
    }
    if let Some(done) = gaffer.store.integration_of(&name, number).await? {
        return nothing(format!("PR #{number} was integrated already in PR #{done}"));
    }
    let config = read_team_config(forge.as_ref(), repo, &repo.default_branch).await?;
    let Some((kind @ (PullKind::Develop | PullKind::Integrate), task_id)) =
        classify_branch(&config.branch_prefix, &pull.head_ref)
    else {
        return nothing(format!(
            "PR #{number} ({}) is not a task's work or integration PR",
            pull.head_ref
        ));
    };
    if !config.roles.integrator {
        return nothing("the Integrator is disabled in .llm-team.yml".into());
    }
    let Some((task, text)) = read_task(
        forge.as_ref(),
        repo,
        &config,
        &task_id,
        &repo.default_branch,
    )
    .await?
    else {
        return nothing(format!(
            "{task_id} has no valid task file on {}",
            repo.default_branch
        ));
    };
    // A task ready for integration moves on to done (after its `ready-` PR merged, or a
    // late trigger for its work PR); a work PR's task moves to the first state after review.
    let target = if task.status == Status::ReadyForIntegration {
        Status::Done
    } else if kind == PullKind::Integrate {
        return nothing(format!(
            "{task_id} is {}: nothing moves after its integration PR #{number}",
            task.status
        ));
    } else if config.uses_ready_for_integration() {
        Status::ReadyForIntegration
    } else {
        Status::Done
    };
    if task.status == target || task.status == Status::Done {
        return nothing(format!("{task_id} is {} already", task.status));
    }
    if !task.status.can_become(target) {
        return nothing(format!(
            "{task_id} is {}; it cannot become {target}",
            task.status
        ));
    }
    let branch = integration_branch(
        &config.branch_prefix,
        target == Status::ReadyForIntegration,
        &task.id,
        &task.title,
    );
    let with_task = |mut o: Outcome| {
        o.task = Some(task_id.clone());
        o
    };
    if let Some(open) = task_pr_for(forge.as_ref(), &name, &branch).await? {
        gaffer
            .store
            .mark_integrated(&name, number, task_id.as_str(), open.number)
            .await?;
        let mut o = Outcome::new(
            ROLE,
            repo,
            Action::ExistingPr,
            format!(
                "{task_id} is already moving to {target} in PR #{} ({})",
                open.number,
                pr_state(&open)
            ),
        );
        o.pr = Some(PrRef::from(&open));
        return Ok(with_task(o));
    }
    if repo.mode == Mode::Observe || config.dry_run {
        return Ok(with_task(Outcome::new(
            ROLE,
            repo,
            Action::Preview,
            format!("would move {task_id} to {target} in a PR from {branch}"),
        )));
    }
    let updated = set_front_matter_field(&text, "status", target.as_str())
        .map_err(crate::error::AppError::internal)?;
    let body = format!(
        "{}\nPR #{number} (**{task_id}: {}**) was merged, so this moves `{}` from `{}` to `{target}`. Only that line changes.\n",
        marker(&task_id, ROLE),
        task.title,
        task.path,
        task.status
    );
    let request = NewPull {
        title: format!("{task_id}: {target}"),
        head: branch,
        base: repo.default_branch.clone(),
        body,
    };
    let (opened, created) = super::propose(
        gaffer,
        repo,
        &config.branch_prefix,
        &[(task.path.as_str(), updated.as_str())],
        &format!("{task_id}: {target} (PR #{number} merged)"),
        &request,
    )
    .await?;
    gaffer
        .store
        .mark_integrated(&name, number, task_id.as_str(), opened.number)
        .await?;
    let summary = format!(
        "{task_id} -> {target} in PR #{} (after PR #{number} merged)",
        opened.number
    );
    let mut o = super::pr_outcome(
        gaffer,
        ROLE,
        repo,
        Action::OpenedPr,
        &opened,
        created,
        summary,
    )
    .await?;
    o.files = vec![task.path];
    Ok(with_task(o))
}
