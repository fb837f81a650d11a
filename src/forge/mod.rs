//! The forge: where target repos live (GitHub; a local git forge later). Roles and the
//! pipeline talk to [`Forge`] only, in gaffer's own types, so the same role runs against
//! GitHub, the fake GitHub in tests, or a repo on disk.

pub mod github;
pub mod local;
pub mod once;

use std::fmt;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::json;

use crate::error::{AppError, ErrorKind};
use crate::registry::FullName;

/// What a repo is, as the forge reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepoInfo {
    pub full_name: String,
    pub default_branch: String,
    pub clone_url: String,
    pub private: bool,
}

/// A text file at a ref.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileContent {
    pub path: String,
    /// The blob SHA (needed to update the file through the API).
    pub sha: String,
    pub text: String,
}

/// What a directory entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    Submodule,
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DirEntry {
    pub name: String,
    pub path: String,
    pub kind: EntryKind,
    pub sha: String,
}

/// Open or closed; a merged PR is closed with `merged_at` set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PullState {
    Open,
    Closed,
}

impl PullState {
    pub fn as_str(self) -> &'static str {
        match self {
            PullState::Open => "open",
            PullState::Closed => "closed",
        }
    }
}

/// A pull request, with what the roles decide on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PullRequest {
    pub number: u64,
    pub title: String,
    pub body: String,
    pub state: PullState,
    pub merged_at: Option<String>,
    pub head_ref: String,
    pub head_sha: String,
    pub base_ref: String,
    pub author: String,
    /// GitHub's `author_association` (OWNER, MEMBER, COLLABORATOR, CONTRIBUTOR, NONE, ...):
    /// what [`crate::safety::trust`] decides on.
    pub author_association: Option<String>,
    pub html_url: String,
    pub updated_at: String,
    pub draft: bool,
    pub labels: Vec<String>,
    /// GitHub's `mergeable` (only `GET /pulls/{n}` computes it; `None` while GitHub is
    /// still working it out, and in listings).
    pub mergeable: Option<bool>,
}

impl PullRequest {
    pub fn is_merged(&self) -> bool {
        self.merged_at.is_some()
    }
}

/// A file changed by a pull request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PullFile {
    pub filename: String,
    pub status: String,
    pub additions: u64,
    pub deletions: u64,
    /// The unified diff hunk; absent for binary or very large files.
    pub patch: Option<String>,
}

/// A pull request to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPull {
    pub title: String,
    pub head: String,
    pub base: String,
    pub body: String,
}

/// Changes to a pull request; `None` leaves a field alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullUpdate {
    pub title: Option<String>,
    pub body: Option<String>,
    pub state: Option<PullState>,
}

/// An issue (or PR conversation) comment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Comment {
    pub id: u64,
    pub body: String,
    pub author: String,
    /// The author's `author_association` on the repo: whether a command in the comment
    /// is obeyed ([`crate::safety::trust`]).
    pub author_association: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// An issue (never a pull request: listings leave those out), with what the issue work
/// source decides on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issue {
    pub number: u64,
    pub title: String,
    pub body: String,
    pub state: PullState,
    pub author: String,
    /// GitHub's `author_association` of the issue's author: an outsider's issue never
    /// becomes a task.
    pub author_association: Option<String>,
    pub labels: Vec<String>,
    pub html_url: String,
    pub updated_at: String,
}

/// A conversation comment with the issue or PR it is on (from the repo-wide listing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ThreadComment {
    pub number: u64,
    /// On a pull request's conversation rather than an issue's.
    pub on_pull: bool,
    pub comment: Comment,
}

/// How a pull request is merged (`.llm-team.yml` `workflow.merge_strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MergeMethod {
    Merge,
    Squash,
    Rebase,
}

impl MergeMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            MergeMethod::Merge => "merge",
            MergeMethod::Squash => "squash",
            MergeMethod::Rebase => "rebase",
        }
    }
}

/// What a review says about the PR. gaffer only ever comments: it never approves or
/// merges by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ReviewEvent {
    Comment,
}

/// A review to post, pinned to the head SHA it judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReview {
    pub commit_id: String,
    pub body: String,
    pub event: ReviewEvent,
}

/// A posted review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Review {
    pub id: u64,
    pub commit_id: Option<String>,
    pub body: String,
    pub state: String,
    pub author: String,
}

/// The CI verdict on a commit, combining commit statuses and check runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CiState {
    Success,
    Failure,
    Pending,
    /// No CI reported anything for this commit.
    None,
}

/// One status context or check run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CiCheck {
    pub name: String,
    pub state: CiState,
}

/// The CI state of a commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CiStatus {
    pub state: CiState,
    pub checks: Vec<CiCheck>,
}

/// Why a forge call failed, in terms a user can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForgeError {
    #[error("GitHub token invalid or expired (401): set a valid GH_TOKEN")]
    Unauthorized,
    #[error("{repo} not found or the token lacks access to {repo} (needs Contents and Pull requests read/write)")]
    NoAccess { repo: String },
    #[error("not found: {what}")]
    NotFound { what: String },
    #[error("GitHub refused the request (422): {message}")]
    Validation { message: String },
    #[error("GitHub answered {status}: {message}")]
    Status { status: u16, message: String },
    #[error("{}", rate_limit_message(*.resets_at, *.secondary))]
    RateLimited { resets_at: u64, secondary: bool },
    #[error("GitHub unavailable: {message}")]
    Unavailable { message: String },
    /// A write that failed in a way that does not say whether GitHub did it (a 5xx, a
    /// timeout, a connection lost after sending). Never replayed blindly: `forge::once`
    /// looks up what happened first.
    #[error("GitHub may or may not have done it: {message}")]
    AmbiguousWrite { message: String },
    #[error("unexpected answer from GitHub: {message}")]
    Protocol { message: String },
    /// The local forge (a bare repository on disk) refused or failed; `status` is the HTTP
    /// status GitHub would have answered, so callers map it the same way.
    #[error("local forge: {message}")]
    Local { status: u16, message: String },
}

fn rate_limit_message(resets_at: u64, secondary: bool) -> String {
    let kind = if secondary {
        "secondary rate limit"
    } else {
        "rate-limit budget below MIN_REMAINING_BUDGET"
    };
    format!("GitHub {kind}: not calling until {resets_at} (unix time)")
}

impl ForgeError {
    /// Maps "not found" and "forbidden" on a repo-level call to the error a user can act
    /// on: the repo does not exist or the token cannot see it.
    pub fn for_repo(self, repo: &FullName) -> ForgeError {
        match self {
            ForgeError::NotFound { .. } | ForgeError::Status { status: 403, .. } => {
                ForgeError::NoAccess {
                    repo: repo.to_string(),
                }
            }
            other => other,
        }
    }

    /// Whether trying again later may succeed (GitHub down or limited, a write whose
    /// outcome is unknown, a 422 race); `false` for what waiting does not fix (no access,
    /// not found, a bad token).
    pub fn is_transient(&self) -> bool {
        match self {
            ForgeError::Unauthorized
            | ForgeError::NoAccess { .. }
            | ForgeError::NotFound { .. } => false,
            ForgeError::Status { status, .. } | ForgeError::Local { status, .. } => {
                *status >= 500 || *status == 409
            }
            _ => true,
        }
    }

    /// GitHub's 422 when a PR for that head already exists: idempotent callers treat it
    /// as "it is there already", not as a failure.
    pub fn is_pull_already_exists(&self) -> bool {
        matches!(self, ForgeError::Validation { message } | ForgeError::Local { status: 422, message } if message.contains("already exists"))
    }
}

impl From<ForgeError> for AppError {
    fn from(err: ForgeError) -> Self {
        let kind = match &err {
            ForgeError::Unauthorized | ForgeError::NoAccess { .. } => ErrorKind::Unavailable,
            ForgeError::NotFound { .. } => ErrorKind::NotFound,
            ForgeError::Validation { .. } => ErrorKind::Conflict,
            ForgeError::RateLimited { .. }
            | ForgeError::Unavailable { .. }
            | ForgeError::AmbiguousWrite { .. } => ErrorKind::Unavailable,
            ForgeError::Status { .. } | ForgeError::Protocol { .. } => ErrorKind::Unavailable,
            ForgeError::Local { status, .. } => match status {
                404 => ErrorKind::NotFound,
                405 | 409 | 422 => ErrorKind::Conflict,
                503 => ErrorKind::Unavailable,
                _ => ErrorKind::Internal,
            },
        };
        let transient = err.is_transient();
        let detail = match &err {
            ForgeError::RateLimited {
                resets_at,
                secondary,
            } => {
                json!({"forge": "github", "transient": true, "resets_at": resets_at, "secondary": secondary})
            }
            ForgeError::Local { status, .. } => {
                json!({"forge": "local", "status": status, "transient": transient})
            }
            _ => json!({"forge": "github", "transient": transient}),
        };
        AppError::new(kind, err.to_string()).with_detail(detail)
    }
}

/// Forge results.
pub type ForgeResult<T> = Result<T, ForgeError>;

/// Everything the roles, the pipeline and the poller need from where a repo lives.
#[async_trait]
pub trait Forge: Send + Sync + fmt::Debug {
    /// The login gaffer acts as on this forge (the token's own user): a PR is gaffer's only
    /// when its author is this login.
    async fn identity(&self) -> ForgeResult<String>;
    async fn repo_info(&self, repo: &FullName) -> ForgeResult<RepoInfo>;
    /// A text file at `git_ref`, or `None` when it does not exist there.
    async fn file(
        &self,
        repo: &FullName,
        path: &str,
        git_ref: &str,
    ) -> ForgeResult<Option<FileContent>>;
    /// A directory listing at `git_ref`, or `None` when the directory does not exist.
    async fn list_dir(
        &self,
        repo: &FullName,
        path: &str,
        git_ref: &str,
    ) -> ForgeResult<Option<Vec<DirEntry>>>;
    /// The commit SHA a branch points at, or `None` when there is no such branch.
    async fn branch_sha(&self, repo: &FullName, branch: &str) -> ForgeResult<Option<String>>;
    async fn create_branch(&self, repo: &FullName, branch: &str, sha: &str) -> ForgeResult<()>;
    /// Pull requests in a state, newest first (closed ones: most recently updated first).
    async fn list_pulls(&self, repo: &FullName, state: PullState) -> ForgeResult<Vec<PullRequest>>;
    /// Every pull request from `branch` (of the repo itself), in any state: open, closed
    /// or merged, newest first. What a task's PR is looked up by.
    async fn pulls_for_branch(
        &self,
        repo: &FullName,
        branch: &str,
    ) -> ForgeResult<Vec<PullRequest>>;
    async fn pull(&self, repo: &FullName, number: u64) -> ForgeResult<PullRequest>;
    async fn pull_files(&self, repo: &FullName, number: u64) -> ForgeResult<Vec<PullFile>>;
    async fn create_pull(&self, repo: &FullName, pull: &NewPull) -> ForgeResult<PullRequest>;
    async fn update_pull(
        &self,
        repo: &FullName,
        number: u64,
        update: &PullUpdate,
    ) -> ForgeResult<PullRequest>;
    async fn comments(&self, repo: &FullName, number: u64) -> ForgeResult<Vec<Comment>>;
    async fn create_comment(
        &self,
        repo: &FullName,
        number: u64,
        body: &str,
    ) -> ForgeResult<Comment>;
    async fn update_comment(
        &self,
        repo: &FullName,
        comment_id: u64,
        body: &str,
    ) -> ForgeResult<Comment>;
    async fn create_review(
        &self,
        repo: &FullName,
        number: u64,
        review: &NewReview,
    ) -> ForgeResult<Review>;
    async fn reviews(&self, repo: &FullName, number: u64) -> ForgeResult<Vec<Review>>;
    async fn add_labels(&self, repo: &FullName, number: u64, labels: &[String]) -> ForgeResult<()>;
    async fn remove_label(&self, repo: &FullName, number: u64, label: &str) -> ForgeResult<()>;
    /// The CI state of a commit: commit statuses and check runs combined.
    async fn ci_status(&self, repo: &FullName, git_ref: &str) -> ForgeResult<CiStatus>;
    /// An issue by number (`NotFound` for a pull request's number or no such issue).
    async fn issue(&self, repo: &FullName, number: u64) -> ForgeResult<Issue>;
    /// Open issues carrying `label`, newest first; pull requests are left out.
    async fn list_issues(&self, repo: &FullName, label: &str) -> ForgeResult<Vec<Issue>>;
    /// Closes an issue as completed (closing a closed issue changes nothing).
    async fn close_issue(&self, repo: &FullName, number: u64) -> ForgeResult<()>;
    /// The repo's conversation comments (issues and PRs) updated at or after `since`
    /// (RFC 3339), oldest first: how the poller finds `/gaffer` commands without webhooks.
    async fn comments_since(&self, repo: &FullName, since: &str)
        -> ForgeResult<Vec<ThreadComment>>;
    /// When the repo's most recently updated conversation comment was updated (the
    /// forge's own clock), or `None` when there is none: where a comment listing starts.
    async fn newest_comment_at(&self, repo: &FullName) -> ForgeResult<Option<String>>;
    /// Adds a reaction (`+1`, `eyes`, `confused`, ...) to a conversation comment: how a
    /// command is acknowledged. Reacting twice leaves one reaction.
    async fn react(&self, repo: &FullName, comment_id: u64, content: &str) -> ForgeResult<()>;
    /// Merges an open PR with `method`, only if its head is still `sha` (GitHub refuses
    /// otherwise, so a push after the checks is never merged unseen); the merge commit.
    async fn merge_pull(
        &self,
        repo: &FullName,
        number: u64,
        method: MergeMethod,
        sha: &str,
    ) -> ForgeResult<String>;
}
