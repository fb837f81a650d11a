//! Clones of target repos under `WORKDIR_ROOT`: one lock per repo, fresh branches from the
//! up-to-date default branch, commits with the bot identity, guarded pushes, model edits
//! applied inside the clone only ([`edits`]), and checks run sandboxed ([`checks`]).

pub mod checks;
pub mod edits;
pub mod git;

use std::path::{Path, PathBuf};

use secrecy::SecretString;
use tokio::sync::OwnedMutexGuard;

use self::git::{Git, GitError};
use crate::error::{AppError, ErrorKind};
use crate::locks::KeyedLocks;
use crate::registry::Repo;
use crate::safety::paths::{self, RepoPath};

/// Why a workspace step failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkspaceError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("refusing to push {branch}: {why}")]
    PushRefused { branch: String, why: String },
    #[error("{0}")]
    Io(String),
}

impl From<WorkspaceError> for AppError {
    fn from(err: WorkspaceError) -> Self {
        let kind = match err {
            WorkspaceError::PushRefused { .. } => ErrorKind::Conflict,
            _ => ErrorKind::Unavailable,
        };
        AppError::new(kind, err.to_string())
    }
}

/// Where clones live and who commits.
#[derive(Clone, Debug)]
pub struct Workspace {
    root: PathBuf,
    git: Git,
    locks: KeyedLocks,
}

/// A clone, held under its repo's lock.
pub struct Clone {
    pub dir: PathBuf,
    pub default_branch: String,
    clone_url: String,
    git: Git,
    _lock: OwnedMutexGuard<()>,
}

impl Workspace {
    /// `root` must be absolute (settings resolve it at start-up): a relative root would put
    /// clones, and gaffer's git commands, wherever the process happens to run.
    /// `git_url` is `GITHUB_GIT_URL`, the only host the token is sent to.
    pub fn new(
        root: PathBuf,
        token: Option<SecretString>,
        git_url: &str,
        author_name: String,
        author_email: String,
    ) -> Self {
        let root = std::path::absolute(&root).unwrap_or(root);
        Workspace {
            root,
            git: Git {
                token,
                token_origin: git::token_origin(git_url),
                author_name,
                author_email,
            },
            locks: KeyedLocks::default(),
        }
    }

    /// Takes the repo's lock (two triggers never work one clone at once), clones or
    /// fetches it, and leaves a clean checkout of the up-to-date default branch.
    pub async fn checkout(&self, repo: &Repo) -> Result<Clone, WorkspaceError> {
        let guard = self.locks.lock(&repo.full_name).await;
        let dir = self.root.join(&repo.owner).join(&repo.name);
        if !dir.join(".git").is_dir() {
            if dir.exists() {
                // A clone that died half-way: start again.
                std::fs::remove_dir_all(&dir).map_err(|e| {
                    WorkspaceError::Io(format!("cannot clear {}: {e}", dir.display()))
                })?;
            }
            let parent = dir.parent().expect("clone dir has a parent").to_path_buf();
            std::fs::create_dir_all(&parent).map_err(|e| {
                WorkspaceError::Io(format!("cannot create {}: {e}", parent.display()))
            })?;
            self.git.clone_into(&parent, &repo.clone_url, &dir).await?;
            if !dir.join(".git").is_dir() {
                return Err(WorkspaceError::Io(format!(
                    "git clone did not create {}",
                    dir.join(".git").display()
                )));
            }
        } else {
            // The remote URL may have changed in the registry.
            self.git
                .run(&dir, &["remote", "set-url", "origin", &repo.clone_url])
                .await?;
            self.git
                .run_remote(
                    &dir,
                    &repo.clone_url,
                    &["fetch", "--quiet", "--prune", "--no-tags", "origin"],
                )
                .await?;
        }
        let clone = Clone {
            dir,
            default_branch: repo.default_branch.clone(),
            clone_url: repo.clone_url.clone(),
            git: self.git.clone(),
            _lock: guard,
        };
        clone
            .start_branch(
                &repo.default_branch,
                &format!("origin/{}", repo.default_branch),
            )
            .await?;
        Ok(clone)
    }
}

impl Clone {
    /// Checks out `branch` fresh from `start` (discarding anything left in the clone).
    pub async fn start_branch(&self, branch: &str, start: &str) -> Result<(), WorkspaceError> {
        self.git
            .run(
                &self.dir,
                &["checkout", "--quiet", "--force", "-B", branch, start],
            )
            .await?;
        self.git
            .run(&self.dir, &["reset", "--quiet", "--hard", start])
            .await?;
        self.git.run(&self.dir, &["clean", "-fdxq"]).await?;
        Ok(())
    }

    /// Discards uncommitted changes (between attempts).
    pub async fn reset(&self) -> Result<(), WorkspaceError> {
        self.git
            .run(&self.dir, &["reset", "--quiet", "--hard"])
            .await?;
        self.git.run(&self.dir, &["clean", "-fdxq"]).await?;
        Ok(())
    }

    /// The commit a remote branch points at, after the last fetch.
    pub async fn remote_branch_sha(&self, branch: &str) -> Option<String> {
        self.git
            .run(
                &self.dir,
                &[
                    "rev-parse",
                    "--verify",
                    "-q",
                    &format!("refs/remotes/origin/{branch}"),
                ],
            )
            .await
            .ok()
    }

    /// The commit HEAD points at.
    pub async fn head_sha(&self) -> Result<String, WorkspaceError> {
        Ok(self.git.run(&self.dir, &["rev-parse", "HEAD"]).await?)
    }

    /// The commit `a` and `b` grew from (the base a PR's change is judged against).
    pub async fn merge_base(&self, a: &str, b: &str) -> Result<String, WorkspaceError> {
        Ok(self.git.run(&self.dir, &["merge-base", a, b]).await?)
    }

    /// Records the working tree as it stands (what the model or the bootstrap wrote), so
    /// whatever the checks create or change afterwards can be thrown away with
    /// [`Clone::restore`]. Stages everything; `.gitignore`d files are not part of it.
    pub async fn snapshot(&self) -> Result<Snapshot, WorkspaceError> {
        self.git.run(&self.dir, &["add", "-A"]).await?;
        let tree = self.git.run(&self.dir, &["write-tree"]).await?;
        Ok(Snapshot { tree })
    }

    /// Puts the working tree back exactly as [`Clone::snapshot`] saw it: tracked files
    /// rewritten from the snapshot, everything else (check byproducts) removed.
    pub async fn restore(&self, snapshot: &Snapshot) -> Result<(), WorkspaceError> {
        self.git
            .run(&self.dir, &["read-tree", "--reset", "-u", &snapshot.tree])
            .await?;
        self.git
            .run(&self.dir, &["checkout-index", "--all", "--force"])
            .await?;
        self.git.run(&self.dir, &["clean", "-fdxq"]).await?;
        Ok(())
    }

    /// Paths that differ between `base` and HEAD (what a commit on top of `base` changed).
    pub async fn changed_since(&self, base: &str) -> Result<Vec<String>, WorkspaceError> {
        let out = self
            .git
            .run(
                &self.dir,
                &[
                    "diff",
                    "--no-ext-diff",
                    "--no-renames",
                    "--name-only",
                    base,
                    "HEAD",
                ],
            )
            .await?;
        Ok(out.lines().map(str::to_string).collect())
    }

    /// Paths the working tree changes against HEAD, new files included (the Developer's
    /// work before it is committed).
    pub async fn uncommitted_changes(&self) -> Result<Vec<String>, WorkspaceError> {
        self.git.run(&self.dir, &["add", "-A"]).await?;
        let out = self
            .git
            .run(
                &self.dir,
                &[
                    "diff",
                    "--no-ext-diff",
                    "--no-renames",
                    "--cached",
                    "--name-only",
                    "HEAD",
                ],
            )
            .await?;
        Ok(out.lines().map(str::to_string).collect())
    }

    /// Makes the working tree and index `rev`'s tree while HEAD stays: `rev`'s change
    /// against HEAD becomes the uncommitted work (the Reviewer's proof, an iteration).
    pub async fn take_tree_of(&self, rev: &str) -> Result<(), WorkspaceError> {
        self.git
            .run(&self.dir, &["read-tree", "--reset", "-u", rev])
            .await?;
        self.git.run(&self.dir, &["clean", "-fdxq"]).await?;
        Ok(())
    }

    /// Puts `paths` back as HEAD has them (files HEAD lacks are removed): the base's
    /// version of a change's code, for the fail-to-pass proof.
    pub async fn revert_to_head(&self, paths: &[String]) -> Result<(), WorkspaceError> {
        for path in paths {
            let tracked = self
                .git
                .run(&self.dir, &["cat-file", "-e", &format!("HEAD:{path}")])
                .await
                .is_ok();
            if tracked {
                self.git
                    .run(&self.dir, &["checkout", "HEAD", "--", path])
                    .await?;
            } else {
                self.git
                    .run(&self.dir, &["rm", "-q", "-f", "--cached", "--", path])
                    .await
                    .ok();
                let checked =
                    RepoPath::parse(path).map_err(|e| WorkspaceError::Io(e.to_string()))?;
                paths::remove(&self.dir, &checked).ok();
            }
        }
        Ok(())
    }

    /// The diff of the working tree against HEAD, new files included (what the Reviewer
    /// of an iteration and the PR see).
    pub async fn uncommitted_diff(&self) -> Result<String, WorkspaceError> {
        self.git.run(&self.dir, &["add", "-A"]).await?;
        Ok(self
            .git
            .run(
                &self.dir,
                &["diff", "--no-ext-diff", "--no-textconv", "--cached", "HEAD"],
            )
            .await?)
    }

    /// Commits everything changed; `None` when there was nothing to commit.
    pub async fn commit_all(&self, message: &str) -> Result<Option<String>, WorkspaceError> {
        self.git.run(&self.dir, &["add", "-A"]).await?;
        if self
            .git
            .run(&self.dir, &["diff", "--cached", "--quiet"])
            .await
            .is_ok()
        {
            return Ok(None);
        }
        self.git
            .run(
                &self.dir,
                &["commit", "--quiet", "--no-verify", "-m", message],
            )
            .await?;
        Ok(Some(self.git.run(&self.dir, &["rev-parse", "HEAD"]).await?))
    }

    /// Files changed against the default branch, and lines added (for the diff budget).
    pub async fn diff_size(&self) -> Result<(usize, usize), WorkspaceError> {
        self.git
            .run(&self.dir, &["add", "-A", "--intent-to-add"])
            .await
            .ok();
        let numstat = self
            .git
            .run(
                &self.dir,
                &[
                    "diff",
                    "--no-ext-diff",
                    "--no-textconv",
                    "--numstat",
                    "HEAD",
                ],
            )
            .await?;
        let mut files = 0;
        let mut added = 0;
        for line in numstat.lines() {
            files += 1;
            added += line
                .split('\t')
                .next()
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(0);
        }
        Ok((files, added))
    }

    /// Pushes HEAD to `branch`, refusing the default branch and anything outside the
    /// repo's branch prefix. Enforced here, whatever the caller asked for.
    /// A branch that already exists on the remote is only replaced when every commit on it
    /// (beyond the default branch) is gaffer's own, and only if it still points where the
    /// last fetch saw it (`--force-with-lease` with that SHA): someone else's work is never
    /// overwritten.
    pub async fn push(&self, branch: &str, branch_prefix: &str) -> Result<(), WorkspaceError> {
        check_push_target(branch, &self.default_branch, branch_prefix)?;
        let expected = self.remote_branch_sha(branch).await.unwrap_or_default();
        if !expected.is_empty() {
            let range = format!("origin/{}..{expected}", self.default_branch);
            let authors = self
                .git
                .run(&self.dir, &["log", "--format=%ae%x09%ce", &range])
                .await?;
            let own = self.git.author_email.to_ascii_lowercase();
            if let Some(other) = authors
                .lines()
                .flat_map(|l| l.split('\t'))
                .find(|email| email.to_ascii_lowercase() != own)
            {
                return Err(WorkspaceError::PushRefused {
                    branch: branch.to_string(),
                    why: format!("it has commits by someone else ({other}); gaffer never overwrites another person's work"),
                });
            }
        }
        let refspec = format!("HEAD:refs/heads/{branch}");
        let lease = format!("--force-with-lease=refs/heads/{branch}:{expected}");
        self.git
            .run_remote(
                &self.dir,
                &self.clone_url,
                &["push", "--quiet", &lease, "origin", &refspec],
            )
            .await?;
        Ok(())
    }

    /// Reads a file of the clone, if present, through the path guard (never through a
    /// symlink, never `.git`, never more than the read limit).
    pub fn read(&self, relative: &str) -> Option<String> {
        let path = RepoPath::parse(relative).ok()?;
        paths::read_to_string(&self.dir, &path).ok().flatten()
    }

    /// Writes a file of the clone (gaffer's own, deterministic writes; model edits go
    /// through [`edits::apply`]), through the same guard.
    pub fn write(&self, relative: &str, text: &str) -> Result<(), WorkspaceError> {
        let path = RepoPath::parse(relative).map_err(|e| WorkspaceError::Io(e.to_string()))?;
        paths::write(&self.dir, &path, text).map_err(|e| WorkspaceError::Io(e.to_string()))
    }

    /// Tracked regular files of the clone, for prompts: symlinks and submodules are left
    /// out (their targets are not the repository's to show).
    pub async fn files(&self) -> Vec<String> {
        self.git
            .run(&self.dir, &["ls-files", "-s"])
            .await
            .map(|out| {
                out.lines()
                    .filter_map(|l| {
                        let (meta, path) = l.split_once('\t')?;
                        let mode = meta.split_whitespace().next()?;
                        (mode == "100644" || mode == "100755").then(|| path.to_string())
                    })
                    .filter(|p| RepoPath::parse(p).is_ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// A recorded working tree (a git tree object), see [`Clone::snapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    tree: String,
}

/// The push rule, on its own so it is tested directly.
pub fn check_push_target(
    branch: &str,
    default_branch: &str,
    branch_prefix: &str,
) -> Result<(), WorkspaceError> {
    let refuse = |why: &str| {
        Err(WorkspaceError::PushRefused {
            branch: branch.to_string(),
            why: why.to_string(),
        })
    };
    if branch == default_branch || branch.trim_start_matches("refs/heads/") == default_branch {
        return refuse("it is the default branch; gaffer only changes it through PRs");
    }
    if !branch.starts_with(branch_prefix) || branch.len() == branch_prefix.len() {
        return refuse(&format!(
            "it is outside the branch prefix {branch_prefix:?} from .llm-team.yml"
        ));
    }
    if !crate::registry::valid_branch_name(branch) {
        return refuse("it is not a valid branch name");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushes_to_the_default_branch_or_outside_the_prefix_are_refused() {
        assert!(check_push_target("feature/T-0001-ci", "main", "feature/").is_ok());
        for (branch, why) in [
            ("main", "default branch"),
            ("refs/heads/main", "default branch"),
            ("release/1.0", "outside the branch prefix"),
            ("feature/", "outside the branch prefix"),
            ("feature/a..b", "not a valid branch name"),
        ] {
            let err = check_push_target(branch, "main", "feature/").unwrap_err();
            assert!(err.to_string().contains(why), "{branch}: {err}");
        }
        // Even a prefix that would cover the default branch does not allow it.
        assert!(check_push_target("main", "main", "ma").is_err());
    }
}
