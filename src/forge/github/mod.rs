//! [`Forge`] on GitHub's REST API v3 (github.com or GitHub Enterprise Server).

pub mod access;
pub mod budget;
pub mod client;
pub mod governor;
pub mod graphql;
pub mod pace;
mod types;

use async_trait::async_trait;
use reqwest::Method;
use serde_json::json;

pub use budget::{CounterSnapshot, RateBudget};
pub use client::{ClientOptions, GithubClient, Replay};
pub use governor::WriteLimits;
pub use pace::{PaceLimits, PaceSnapshot};

use self::types::{
    status_state, ApiCheckRuns, ApiCombinedStatus, ApiComment, ApiContent, ApiIssue, ApiPull,
    ApiPullFile, ApiRef, ApiRepo, ApiReview,
};
use super::{
    CiState, CiStatus, Comment, DirEntry, FileContent, Forge, ForgeError, ForgeResult, Issue,
    MergeMethod, NewPull, NewReview, PullFile, PullRequest, PullState, PullUpdate, RepoInfo,
    Review, ReviewEvent,
};
use crate::registry::FullName;

/// GitHub behind the [`Forge`] trait.
#[derive(Clone, Debug)]
pub struct GithubForge {
    client: GithubClient,
    /// The token's login, asked once (`GET /user`).
    identity: std::sync::Arc<tokio::sync::OnceCell<String>>,
}

impl GithubForge {
    pub fn new(client: GithubClient) -> Self {
        GithubForge {
            client,
            identity: std::sync::Arc::default(),
        }
    }

    /// The underlying client: its budget and counters are what the poller reports.
    pub fn client(&self) -> &GithubClient {
        &self.client
    }

    fn repo_url(&self, repo: &FullName, rest: &[&str]) -> reqwest::Url {
        let mut segments = vec!["repos", repo.owner(), repo.name()];
        segments.extend_from_slice(rest);
        self.client.url(&segments)
    }

    async fn contents(
        &self,
        repo: &FullName,
        path: &str,
        git_ref: &str,
    ) -> ForgeResult<Option<serde_json::Value>> {
        let mut url = self.repo_url(repo, &["contents", path]);
        url.query_pairs_mut().append_pair("ref", git_ref);
        match self.client.get_json(url).await {
            Ok(value) => Ok(Some(value)),
            Err(ForgeError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.for_repo(repo)),
        }
    }
}

fn protocol(message: impl Into<String>) -> ForgeError {
    ForgeError::Protocol {
        message: message.into(),
    }
}

fn from_value<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> ForgeResult<T> {
    serde_json::from_value(value).map_err(|e| protocol(format!("unexpected JSON shape: {e}")))
}

#[async_trait]
impl Forge for GithubForge {
    async fn identity(&self) -> ForgeResult<String> {
        #[derive(serde::Deserialize)]
        struct Me {
            login: String,
        }
        self.identity
            .get_or_try_init(|| async {
                let me: Me = self.client.get_json(self.client.url(&["user"])).await?;
                Ok(me.login)
            })
            .await
            .cloned()
    }

    async fn repo_info(&self, repo: &FullName) -> ForgeResult<RepoInfo> {
        let api: ApiRepo = self
            .client
            .get_json(self.repo_url(repo, &[]))
            .await
            .map_err(|e| e.for_repo(repo))?;
        Ok(api.into())
    }

    async fn file(
        &self,
        repo: &FullName,
        path: &str,
        git_ref: &str,
    ) -> ForgeResult<Option<FileContent>> {
        match self.contents(repo, path, git_ref).await? {
            None => Ok(None),
            Some(value) if value.is_array() => Err(protocol(format!("{path} is a directory"))),
            Some(value) => from_value::<ApiContent>(value)?.into_file().map(Some),
        }
    }

    async fn list_dir(
        &self,
        repo: &FullName,
        path: &str,
        git_ref: &str,
    ) -> ForgeResult<Option<Vec<DirEntry>>> {
        match self.contents(repo, path, git_ref).await? {
            None => Ok(None),
            Some(value) if value.is_array() => {
                let items: Vec<ApiContent> = from_value(value)?;
                Ok(Some(
                    items.into_iter().map(ApiContent::into_entry).collect(),
                ))
            }
            Some(_) => Err(protocol(format!("{path} is a file, not a directory"))),
        }
    }

    async fn branch_sha(&self, repo: &FullName, branch: &str) -> ForgeResult<Option<String>> {
        let url = self.repo_url(repo, &["git", "ref", "heads", branch]);
        match self.client.get_json::<ApiRef>(url).await {
            Ok(r) => Ok(Some(r.object.sha)),
            Err(ForgeError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.for_repo(repo)),
        }
    }

    async fn create_branch(&self, repo: &FullName, branch: &str, sha: &str) -> ForgeResult<()> {
        let body = json!({"ref": format!("refs/heads/{branch}"), "sha": sha});
        let _: ApiRef = self
            .client
            .write_json(Method::POST, self.repo_url(repo, &["git", "refs"]), &body)
            .await?;
        Ok(())
    }

    /// Open PRs: every page. Closed PRs: the 100 most recently updated, which is what
    /// "recently merged" needs without walking a repo's whole history.
    async fn list_pulls(&self, repo: &FullName, state: PullState) -> ForgeResult<Vec<PullRequest>> {
        let mut url = self.repo_url(repo, &["pulls"]);
        url.query_pairs_mut()
            .append_pair("state", state.as_str())
            .append_pair("sort", "updated")
            .append_pair("direction", "desc");
        let pulls: Vec<ApiPull> = match state {
            PullState::Open => self.client.get_all(url).await,
            PullState::Closed => {
                url.query_pairs_mut().append_pair("per_page", "100");
                self.client.get_json(url).await
            }
        }
        .map_err(|e| e.for_repo(repo))?;
        Ok(pulls.into_iter().map(PullRequest::from).collect())
    }

    /// `head=OWNER:branch&state=all`: GitHub filters by branch, whatever the PR's state.
    async fn pulls_for_branch(
        &self,
        repo: &FullName,
        branch: &str,
    ) -> ForgeResult<Vec<PullRequest>> {
        let mut url = self.repo_url(repo, &["pulls"]);
        url.query_pairs_mut()
            .append_pair("state", "all")
            .append_pair("head", &format!("{}:{branch}", repo.owner()));
        let pulls: Vec<ApiPull> = self
            .client
            .get_all(url)
            .await
            .map_err(|e| e.for_repo(repo))?;
        let mut pulls: Vec<PullRequest> = pulls
            .into_iter()
            .map(PullRequest::from)
            .filter(|p| p.head_ref == branch)
            .collect();
        pulls.sort_by_key(|p| std::cmp::Reverse(p.number));
        Ok(pulls)
    }

    async fn pull(&self, repo: &FullName, number: u64) -> ForgeResult<PullRequest> {
        let api: ApiPull = self
            .client
            .get_json(self.repo_url(repo, &["pulls", &number.to_string()]))
            .await?;
        Ok(api.into())
    }

    async fn pull_files(&self, repo: &FullName, number: u64) -> ForgeResult<Vec<PullFile>> {
        let files: Vec<ApiPullFile> = self
            .client
            .get_all(self.repo_url(repo, &["pulls", &number.to_string(), "files"]))
            .await?;
        Ok(files.into_iter().map(PullFile::from).collect())
    }

    async fn create_pull(&self, repo: &FullName, pull: &NewPull) -> ForgeResult<PullRequest> {
        let body =
            json!({"title": pull.title, "head": pull.head, "base": pull.base, "body": pull.body});
        let api: ApiPull = self
            .client
            .write_json(Method::POST, self.repo_url(repo, &["pulls"]), &body)
            .await?;
        Ok(api.into())
    }

    async fn update_pull(
        &self,
        repo: &FullName,
        number: u64,
        update: &PullUpdate,
    ) -> ForgeResult<PullRequest> {
        let mut body = serde_json::Map::new();
        if let Some(title) = &update.title {
            body.insert("title".into(), json!(title));
        }
        if let Some(text) = &update.body {
            body.insert("body".into(), json!(text));
        }
        if let Some(state) = update.state {
            body.insert("state".into(), json!(state.as_str()));
        }
        let api: ApiPull = self
            .client
            .write_json(
                Method::PATCH,
                self.repo_url(repo, &["pulls", &number.to_string()]),
                &body.into(),
            )
            .await?;
        Ok(api.into())
    }

    async fn comments(&self, repo: &FullName, number: u64) -> ForgeResult<Vec<Comment>> {
        let comments: Vec<ApiComment> = self
            .client
            .get_all(self.repo_url(repo, &["issues", &number.to_string(), "comments"]))
            .await?;
        Ok(comments.into_iter().map(Comment::from).collect())
    }

    async fn create_comment(
        &self,
        repo: &FullName,
        number: u64,
        body: &str,
    ) -> ForgeResult<Comment> {
        let api: ApiComment = self
            .client
            .write_json(
                Method::POST,
                self.repo_url(repo, &["issues", &number.to_string(), "comments"]),
                &json!({"body": body}),
            )
            .await?;
        Ok(api.into())
    }

    async fn update_comment(
        &self,
        repo: &FullName,
        comment_id: u64,
        body: &str,
    ) -> ForgeResult<Comment> {
        let api: ApiComment = self
            .client
            .write_json(
                Method::PATCH,
                self.repo_url(repo, &["issues", "comments", &comment_id.to_string()]),
                &json!({"body": body}),
            )
            .await?;
        Ok(api.into())
    }

    async fn create_review(
        &self,
        repo: &FullName,
        number: u64,
        review: &NewReview,
    ) -> ForgeResult<Review> {
        let event = match review.event {
            ReviewEvent::Comment => "COMMENT",
        };
        let body = json!({"commit_id": review.commit_id, "body": review.body, "event": event});
        let api: ApiReview = self
            .client
            .write_json(
                Method::POST,
                self.repo_url(repo, &["pulls", &number.to_string(), "reviews"]),
                &body,
            )
            .await?;
        Ok(api.into())
    }

    async fn reviews(&self, repo: &FullName, number: u64) -> ForgeResult<Vec<Review>> {
        let reviews: Vec<ApiReview> = self
            .client
            .get_all(self.repo_url(repo, &["pulls", &number.to_string(), "reviews"]))
            .await?;
        Ok(reviews.into_iter().map(Review::from).collect())
    }

    async fn add_labels(&self, repo: &FullName, number: u64, labels: &[String]) -> ForgeResult<()> {
        self.client
            .write(
                Method::POST,
                self.repo_url(repo, &["issues", &number.to_string(), "labels"]),
                Some(&json!({"labels": labels})),
                // Adding labels is a set union: doing it twice changes nothing.
                Replay::Safe,
            )
            .await
    }

    async fn remove_label(&self, repo: &FullName, number: u64, label: &str) -> ForgeResult<()> {
        // The label is one path segment: `a/b` is sent as `a%2Fb`, not as two segments.
        let mut url = self.repo_url(repo, &["issues", &number.to_string(), "labels"]);
        url.path_segments_mut()
            .expect("API URL is a base URL")
            .push(label);
        match self
            .client
            .write(Method::DELETE, url, None, Replay::Safe)
            .await
        {
            Err(ForgeError::NotFound { .. }) => Ok(()), // already absent: the goal holds
            other => other,
        }
    }

    /// Every page of both listings (a commit can carry hundreds of check runs), and the
    /// combined status's own `state`, which GitHub computes over all statuses.
    async fn ci_status(&self, repo: &FullName, git_ref: &str) -> ForgeResult<CiStatus> {
        let (statuses, first): (Vec<types::ApiStatus>, _) = self
            .client
            .get_all_wrapped(
                self.repo_url(repo, &["commits", git_ref, "status"]),
                "statuses",
            )
            .await?;
        let combined: ApiCombinedStatus = from_value(first)?;
        let (check_runs, _) = self
            .client
            .get_all_wrapped::<types::ApiCheckRun>(
                self.repo_url(repo, &["commits", git_ref, "check-runs"]),
                "check_runs",
            )
            .await?;
        let combined = ApiCombinedStatus {
            statuses,
            ..combined
        };
        let runs = ApiCheckRuns { check_runs };
        let mut checks: Vec<_> = combined
            .statuses
            .iter()
            .map(|s| super::CiCheck {
                name: s.context.clone(),
                state: status_state(&s.state),
            })
            .collect();
        checks.extend(runs.check_runs.iter().map(|r| r.to_check()));
        let combined_failed = !combined.statuses.is_empty()
            && matches!(combined.state.as_deref(), Some("failure" | "error"));
        let state = if checks.is_empty() {
            CiState::None
        } else if combined_failed || checks.iter().any(|c| c.state == CiState::Failure) {
            CiState::Failure
        } else if checks.iter().any(|c| c.state == CiState::Pending) {
            CiState::Pending
        } else {
            CiState::Success
        };
        Ok(CiStatus { state, checks })
    }

    async fn issue(&self, repo: &FullName, number: u64) -> ForgeResult<Issue> {
        let api: ApiIssue = self
            .client
            .get_json(self.repo_url(repo, &["issues", &number.to_string()]))
            .await?;
        if api.pull_request.is_some() {
            return Err(ForgeError::NotFound {
                what: format!("issue #{number} of {repo} (it is a pull request)"),
            });
        }
        Ok(api.into())
    }

    /// Every page of `GET /issues?state=open&labels=...` (conditional, so an unchanged
    /// listing costs no rate limit), pull requests dropped.
    async fn list_issues(&self, repo: &FullName, label: &str) -> ForgeResult<Vec<Issue>> {
        let mut url = self.repo_url(repo, &["issues"]);
        url.query_pairs_mut()
            .append_pair("state", "open")
            .append_pair("labels", label)
            .append_pair("sort", "created")
            .append_pair("direction", "desc")
            .append_pair("per_page", "100");
        let issues: Vec<ApiIssue> = self
            .client
            .get_all(url)
            .await
            .map_err(|e| e.for_repo(repo))?;
        Ok(issues
            .into_iter()
            .filter(|i| i.pull_request.is_none())
            .map(Issue::from)
            .collect())
    }

    async fn comments_since(
        &self,
        repo: &FullName,
        since: &str,
    ) -> ForgeResult<Vec<super::ThreadComment>> {
        let mut url = self.repo_url(repo, &["issues", "comments"]);
        url.query_pairs_mut()
            .append_pair("sort", "updated")
            .append_pair("direction", "asc")
            .append_pair("since", since)
            .append_pair("per_page", "100");
        let comments: Vec<ApiComment> = self
            .client
            .get_all(url)
            .await
            .map_err(|e| e.for_repo(repo))?;
        Ok(comments
            .into_iter()
            .filter_map(|c| {
                let (number, on_pull) = c.thread()?;
                Some(super::ThreadComment {
                    number,
                    on_pull,
                    comment: c.into(),
                })
            })
            .collect())
    }

    async fn newest_comment_at(&self, repo: &FullName) -> ForgeResult<Option<String>> {
        let mut url = self.repo_url(repo, &["issues", "comments"]);
        url.query_pairs_mut()
            .append_pair("sort", "updated")
            .append_pair("direction", "desc")
            .append_pair("per_page", "1");
        let newest: Vec<ApiComment> = self
            .client
            .get_json(url)
            .await
            .map_err(|e| e.for_repo(repo))?;
        Ok(newest.into_iter().next().map(|c| c.updated_at))
    }

    async fn close_issue(&self, repo: &FullName, number: u64) -> ForgeResult<()> {
        self.client
            .write(
                Method::PATCH,
                self.repo_url(repo, &["issues", &number.to_string()]),
                Some(&json!({"state": "closed", "state_reason": "completed"})),
                // Closing a closed issue changes nothing.
                Replay::Safe,
            )
            .await
    }

    async fn react(&self, repo: &FullName, comment_id: u64, content: &str) -> ForgeResult<()> {
        self.client
            .write(
                Method::POST,
                self.repo_url(
                    repo,
                    &["issues", "comments", &comment_id.to_string(), "reactions"],
                ),
                Some(&json!({"content": content})),
                // GitHub answers 200 with the existing reaction when it is there already.
                Replay::Safe,
            )
            .await
    }

    async fn merge_pull(
        &self,
        repo: &FullName,
        number: u64,
        method: MergeMethod,
        sha: &str,
    ) -> ForgeResult<String> {
        #[derive(serde::Deserialize)]
        struct Merged {
            sha: String,
        }
        let merged: Merged = self
            .client
            .write_json(
                Method::PUT,
                self.repo_url(repo, &["pulls", &number.to_string(), "merge"]),
                &json!({"merge_method": method.as_str(), "sha": sha}),
            )
            .await?;
        Ok(merged.sha)
    }
}
