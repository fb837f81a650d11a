//! Pull requests by hand: list them on any forge; merge or close them on the local forge,
//! where no GitHub web page exists to do it. On GitHub gaffer never merges or closes a PR:
//! a human does, on GitHub, and the refusal says so.

use serde::Serialize;

use crate::error::{AppError, AppResult};
use crate::forge::local::{origin_path, LocalForge};
use crate::forge::{Forge, PullRequest, PullState, PullUpdate};
use crate::registry::{ForgeKind, Repo};
use crate::Gaffer;

/// A merged PR: its number, the base branch and the merge commit.
#[derive(Debug, Clone, Serialize)]
pub struct Merged {
    pub number: u64,
    pub base: String,
    pub merge_sha: String,
}

/// Open (or closed) PRs of a repo, newest first.
pub async fn list(gaffer: &Gaffer, repo: &Repo, state: PullState) -> AppResult<Vec<PullRequest>> {
    Ok(gaffer
        .forge(repo)
        .list_pulls(&repo.full_name(), state)
        .await?)
}

/// Merges an open PR of a local-forge repo with a real merge commit, as the merge button does.
pub async fn merge(gaffer: &Gaffer, repo: &Repo, number: u64) -> AppResult<Merged> {
    let forge = local(gaffer, repo, "merge")?;
    let _turn = gaffer.turns.lock(&repo.full_name).await;
    let name = repo.full_name();
    let merge_sha = forge.merge(&name, number).await?;
    let pull = forge_pull(&forge, repo, number).await?;
    Ok(Merged {
        number,
        base: pull.base_ref,
        merge_sha,
    })
}

/// Closes an open PR of a local-forge repo without merging it.
pub async fn close(gaffer: &Gaffer, repo: &Repo, number: u64) -> AppResult<PullRequest> {
    let forge = local(gaffer, repo, "close")?;
    let _turn = gaffer.turns.lock(&repo.full_name).await;
    let pull = forge_pull(&forge, repo, number).await?;
    if pull.state != PullState::Open {
        return Err(AppError::conflict(format!(
            "local forge: pull request #{number} of {} is not open",
            repo.full_name
        ))
        .with_detail(serde_json::json!({"forge": "local"})));
    }
    Ok(forge
        .update_pull(
            &repo.full_name(),
            number,
            &PullUpdate {
                title: None,
                body: None,
                state: Some(PullState::Closed),
            },
        )
        .await?)
}

async fn forge_pull(forge: &LocalForge, repo: &Repo, number: u64) -> AppResult<PullRequest> {
    Ok(forge.pull(&repo.full_name(), number).await?)
}

/// The repo's local forge, or a refusal naming where its PRs are merged instead.
fn local(gaffer: &Gaffer, repo: &Repo, verb: &str) -> AppResult<LocalForge> {
    match repo.forge {
        ForgeKind::Local => Ok(LocalForge::new(
            gaffer.store.clone(),
            origin_path(&repo.clone_url),
        )),
        ForgeKind::Github => Err(AppError::conflict(format!(
            "{} is on GitHub: gaffer does not {verb} its pull requests, a human does that on GitHub",
            repo.full_name
        ))
        .with_detail(serde_json::json!({"forge": "github"}))),
    }
}
