//! GitHub REST v3 JSON shapes: only the fields gaffer reads, unknown fields ignored, and
//! converted to the forge's own types at once. Checked against real recorded responses.

use base64::Engine;
use serde::Deserialize;

use crate::forge::{
    CiCheck, CiState, Comment, DirEntry, EntryKind, FileContent, ForgeError, Issue, PullFile,
    PullRequest, PullState, RepoInfo, Review,
};

/// GitHub's `state` of a PR or issue: `open`, else closed (merged PRs are closed too).
fn open_or_closed(state: &str) -> PullState {
    if state == "open" {
        PullState::Open
    } else {
        PullState::Closed
    }
}

#[derive(Debug, Deserialize)]
pub struct ApiUser {
    pub login: String,
}

/// The login GitHub shows for a deleted account; the API sends `user: null` for it
/// (`nullable-simple-user` in GitHub's OpenAPI description).
pub const GHOST: &str = "ghost";

fn login(user: Option<ApiUser>) -> String {
    user.map(|u| u.login).unwrap_or_else(|| GHOST.to_string())
}

#[derive(Debug, Deserialize)]
pub struct ApiRepo {
    pub full_name: String,
    pub default_branch: Option<String>,
    pub clone_url: String,
    #[serde(default)]
    pub private: bool,
}

impl From<ApiRepo> for RepoInfo {
    fn from(r: ApiRepo) -> Self {
        RepoInfo {
            full_name: r.full_name,
            default_branch: r.default_branch.unwrap_or_else(|| "main".into()),
            clone_url: r.clone_url,
            private: r.private,
        }
    }
}

/// One item of the contents API: a file (with base64 content) or a directory entry.
#[derive(Debug, Deserialize)]
pub struct ApiContent {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub path: String,
    pub sha: String,
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub encoding: Option<String>,
}

impl ApiContent {
    pub fn into_file(self) -> Result<FileContent, ForgeError> {
        let protocol = |message: String| ForgeError::Protocol { message };
        if self.kind != "file" {
            return Err(protocol(format!(
                "{} is a {}, not a file",
                self.path, self.kind
            )));
        }
        let text = match (self.encoding.as_deref(), self.content) {
            (Some("base64"), Some(content)) => {
                let compact: String = content.chars().filter(|c| !c.is_whitespace()).collect();
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(compact)
                    .map_err(|e| protocol(format!("{}: bad base64 content: {e}", self.path)))?;
                String::from_utf8(bytes)
                    .map_err(|_| protocol(format!("{} is not UTF-8 text", self.path)))?
            }
            (Some("none"), _) | (_, None) => {
                return Err(protocol(format!(
                    "{} is too large for the contents API (over 1 MB)",
                    self.path
                )))
            }
            (_, Some(content)) => content,
        };
        Ok(FileContent {
            path: self.path,
            sha: self.sha,
            text,
        })
    }

    pub fn into_entry(self) -> DirEntry {
        DirEntry {
            kind: match self.kind.as_str() {
                "dir" => EntryKind::Dir,
                "symlink" => EntryKind::Symlink,
                "submodule" => EntryKind::Submodule,
                _ => EntryKind::File,
            },
            name: self.name,
            path: self.path,
            sha: self.sha,
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ApiGitObject {
    pub sha: String,
}

#[derive(Debug, Deserialize)]
pub struct ApiRef {
    /// `refs/heads/<branch>`; checked against the fixtures, not otherwise needed.
    #[serde(rename = "ref")]
    #[allow(dead_code)]
    pub name: String,
    pub object: ApiGitObject,
}

#[derive(Debug, Deserialize)]
pub struct ApiBranchRef {
    #[serde(rename = "ref")]
    pub name: String,
    pub sha: String,
}

#[derive(Debug, Deserialize)]
pub struct ApiLabel {
    pub name: String,
}

#[derive(Debug, Deserialize)]
pub struct ApiPull {
    pub number: u64,
    pub title: String,
    #[serde(default)]
    pub body: Option<String>,
    pub state: String,
    #[serde(default)]
    pub merged_at: Option<String>,
    pub head: ApiBranchRef,
    pub base: ApiBranchRef,
    /// `nullable-simple-user`: null when the author's account was deleted.
    pub user: Option<ApiUser>,
    #[serde(default)]
    pub author_association: Option<String>,
    pub html_url: String,
    pub updated_at: String,
    #[serde(default)]
    pub draft: Option<bool>,
    #[serde(default)]
    pub labels: Vec<ApiLabel>,
    #[serde(default)]
    pub mergeable: Option<bool>,
}

impl From<ApiPull> for PullRequest {
    fn from(p: ApiPull) -> Self {
        PullRequest {
            number: p.number,
            title: p.title,
            body: p.body.unwrap_or_default(),
            state: open_or_closed(&p.state),
            merged_at: p.merged_at,
            head_ref: p.head.name,
            head_sha: p.head.sha,
            base_ref: p.base.name,
            author: login(p.user),
            author_association: p.author_association,
            html_url: p.html_url,
            updated_at: p.updated_at,
            draft: p.draft.unwrap_or(false),
            labels: p.labels.into_iter().map(|l| l.name).collect(),
            mergeable: p.mergeable,
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ApiPullFile {
    pub filename: String,
    pub status: String,
    #[serde(default)]
    pub additions: u64,
    #[serde(default)]
    pub deletions: u64,
    /// Absent for binary and very large files.
    #[serde(default)]
    pub patch: Option<String>,
}

impl From<ApiPullFile> for PullFile {
    fn from(f: ApiPullFile) -> Self {
        PullFile {
            filename: f.filename,
            status: f.status,
            additions: f.additions,
            deletions: f.deletions,
            patch: f.patch,
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ApiComment {
    pub id: u64,
    /// Not required in the description.
    #[serde(default)]
    pub body: Option<String>,
    /// `nullable-simple-user`.
    pub user: Option<ApiUser>,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default)]
    pub author_association: Option<String>,
    /// `.../issues/12` (also for a PR's conversation).
    #[serde(default)]
    pub issue_url: Option<String>,
    /// `.../pull/12#issuecomment-1` on a PR, `.../issues/12#...` on an issue.
    #[serde(default)]
    pub html_url: Option<String>,
}

impl ApiComment {
    /// The issue or PR number this comment is on, and whether it is a PR.
    pub fn thread(&self) -> Option<(u64, bool)> {
        let number = self
            .issue_url
            .as_deref()?
            .rsplit('/')
            .next()?
            .parse()
            .ok()?;
        let on_pull = self
            .html_url
            .as_deref()
            .is_some_and(|u| u.contains("/pull/"));
        Some((number, on_pull))
    }
}

impl From<ApiComment> for Comment {
    fn from(c: ApiComment) -> Self {
        Comment {
            id: c.id,
            body: c.body.unwrap_or_default(),
            author: login(c.user),
            author_association: c.author_association,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// An issue as `GET /issues` lists it; pull requests come with a `pull_request` key.
#[derive(Debug, Deserialize)]
pub struct ApiIssue {
    pub number: u64,
    pub title: String,
    #[serde(default)]
    pub body: Option<String>,
    pub state: String,
    /// `nullable-simple-user`.
    pub user: Option<ApiUser>,
    #[serde(default)]
    pub author_association: Option<String>,
    #[serde(default)]
    pub labels: Vec<ApiLabel>,
    pub html_url: String,
    pub updated_at: String,
    #[serde(default)]
    pub pull_request: Option<serde_json::Value>,
}

impl From<ApiIssue> for Issue {
    fn from(i: ApiIssue) -> Self {
        Issue {
            number: i.number,
            title: i.title,
            body: i.body.unwrap_or_default(),
            state: open_or_closed(&i.state),
            author: login(i.user),
            author_association: i.author_association,
            labels: i.labels.into_iter().map(|l| l.name).collect(),
            html_url: i.html_url,
            updated_at: i.updated_at,
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ApiReview {
    pub id: u64,
    #[serde(default)]
    pub commit_id: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
    pub state: String,
    /// `nullable-simple-user`.
    pub user: Option<ApiUser>,
}

impl From<ApiReview> for Review {
    fn from(r: ApiReview) -> Self {
        Review {
            id: r.id,
            commit_id: r.commit_id,
            body: r.body.unwrap_or_default(),
            state: r.state,
            author: login(r.user),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ApiStatus {
    pub context: String,
    pub state: String,
}

#[derive(Debug, Deserialize)]
pub struct ApiCombinedStatus {
    /// GitHub's verdict over every status (not only this page's).
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub statuses: Vec<ApiStatus>,
}

#[derive(Debug, Deserialize)]
pub struct ApiCheckRun {
    pub name: String,
    pub status: String,
    /// Null until the run completes.
    #[serde(default)]
    pub conclusion: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ApiCheckRuns {
    #[serde(default)]
    pub check_runs: Vec<ApiCheckRun>,
}

impl ApiCheckRun {
    pub fn to_check(&self) -> CiCheck {
        let state = match (self.status.as_str(), self.conclusion.as_deref()) {
            ("completed", Some("success" | "neutral" | "skipped")) => CiState::Success,
            ("completed", _) => CiState::Failure,
            _ => CiState::Pending,
        };
        CiCheck {
            name: self.name.clone(),
            state,
        }
    }
}

/// A commit status state (`success`, `failure`, `error`, `pending`).
pub fn status_state(state: &str) -> CiState {
    match state {
        "success" => CiState::Success,
        "failure" | "error" => CiState::Failure,
        _ => CiState::Pending,
    }
}

/// GitHub's error body: `{"message", "errors": [...], "documentation_url"}`.
#[derive(Debug, Default, Deserialize)]
pub struct ApiError {
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub errors: Vec<serde_json::Value>,
}

impl ApiError {
    /// `message` plus each validation error's own message or code, as one line.
    pub fn describe(&self) -> String {
        let details: Vec<String> = self
            .errors
            .iter()
            .map(|e| match e {
                serde_json::Value::String(s) => s.clone(),
                other => other
                    .get("message")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
                    .unwrap_or_else(|| {
                        let field = other.get("field").and_then(|f| f.as_str()).unwrap_or("?");
                        let code = other
                            .get("code")
                            .and_then(|c| c.as_str())
                            .unwrap_or("invalid");
                        format!("{field}: {code}")
                    }),
            })
            .collect();
        if details.is_empty() {
            self.message.clone()
        } else {
            format!("{} ({})", self.message, details.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    //! Every relevant response in the recorded fixtures parses into these types.
    use super::*;
    use serde::de::DeserializeOwned;
    use serde_json::Value;
    use std::path::PathBuf;

    fn fixtures_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/github/rest")
    }

    /// (method, path without query, status, body) of every recorded interaction.
    fn interactions() -> Vec<(String, String, u16, Value, String)> {
        let mut all = Vec::new();
        let dir = fixtures_dir();
        if !dir.exists() {
            panic!("fixtures missing at {}", dir.display());
        }
        for source in std::fs::read_dir(&dir).unwrap() {
            for file in std::fs::read_dir(source.unwrap().path()).unwrap() {
                let path = file.unwrap().path();
                let doc: Value =
                    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
                for i in doc["interactions"].as_array().unwrap() {
                    let url = i["request"]["url"].as_str().unwrap();
                    let path_only = url
                        .split("://")
                        .nth(1)
                        .and_then(|rest| rest.find('/').map(|at| &rest[at..]))
                        .unwrap_or(url)
                        .split('?')
                        .next()
                        .unwrap()
                        .to_string();
                    all.push((
                        i["request"]["method"].as_str().unwrap().to_string(),
                        path_only,
                        i["response"]["status"].as_u64().unwrap() as u16,
                        i["response"]["body"].clone(),
                        path.file_name().unwrap().to_string_lossy().into_owned(),
                    ));
                }
            }
        }
        all
    }

    fn parse<T: DeserializeOwned>(body: &Value, what: &str) -> T {
        serde_json::from_value(body.clone())
            .unwrap_or_else(|e| panic!("{what}: does not parse: {e}\n{body:#}"))
    }

    fn segments(path: &str) -> Vec<&str> {
        path.trim_matches('/').split('/').collect()
    }

    #[test]
    fn recorded_responses_parse_into_our_types() {
        let mut checked = std::collections::BTreeMap::<&str, usize>::new();
        for (method, path, status, body, file) in interactions() {
            let what = format!("{file}: {method} {path} -> {status}");
            let s = segments(&path);
            let is_repo_path = s.first() == Some(&"repos") && s.len() >= 3;
            if status >= 400 {
                if body.is_object() {
                    let err: ApiError = parse(&body, &what);
                    assert!(!err.describe().is_empty(), "{what}");
                    *checked.entry("error").or_default() += 1;
                }
                continue;
            }
            if !(200..300).contains(&status) || !is_repo_path || body.is_null() {
                continue;
            }
            let rest = &s[3..];
            let kind = match (method.as_str(), rest) {
                ("GET", []) => {
                    let repo: RepoInfo = parse::<ApiRepo>(&body, &what).into();
                    assert!(!repo.default_branch.is_empty());
                    "repo"
                }
                ("GET", ["pulls"]) => {
                    let pulls: Vec<ApiPull> = parse(&body, &what);
                    pulls.into_iter().for_each(|p| drop(PullRequest::from(p)));
                    "pull list"
                }
                ("POST" | "PATCH", ["pulls"]) | ("GET" | "PATCH", ["pulls", _]) => {
                    let pull: PullRequest = parse::<ApiPull>(&body, &what).into();
                    assert!(pull.number > 0 && !pull.head_sha.is_empty());
                    "pull"
                }
                ("GET", ["pulls", _, "files"]) => {
                    let _: Vec<ApiPullFile> = parse(&body, &what);
                    "pull files"
                }
                ("GET", ["pulls", _, "reviews"]) => {
                    let _: Vec<ApiReview> = parse(&body, &what);
                    "review list"
                }
                ("POST", ["pulls", _, "reviews"])
                | ("POST", ["pulls", _, "reviews", _, "events"]) => {
                    let review: Review = parse::<ApiReview>(&body, &what).into();
                    assert!(review.id > 0);
                    "review"
                }
                ("GET", ["issues", _, "comments"]) => {
                    let _: Vec<ApiComment> = parse(&body, &what);
                    "comment list"
                }
                ("POST", ["issues", _, "comments"]) | ("PATCH", ["issues", "comments", _]) => {
                    let comment: Comment = parse::<ApiComment>(&body, &what).into();
                    assert!(comment.id > 0);
                    "comment"
                }
                ("GET", ["git", "refs", "heads", ..])
                | ("GET", ["git", "ref", ..])
                | ("POST", ["git", "refs"]) => {
                    if body.is_array() {
                        let _: Vec<ApiRef> = parse(&body, &what);
                    } else {
                        let r: ApiRef = parse(&body, &what);
                        assert!(r.name.starts_with("refs/") && !r.object.sha.is_empty());
                    }
                    "ref"
                }
                ("GET", ["contents", ..]) => {
                    if body.is_array() {
                        let entries: Vec<ApiContent> = parse(&body, &what);
                        entries.into_iter().for_each(|e| drop(e.into_entry()));
                    } else if body.is_object() {
                        let file: ApiContent = parse(&body, &what);
                        file.into_file().unwrap_or_else(|e| panic!("{what}: {e}"));
                    } else {
                        continue; // raw media type: the body is the file itself
                    }
                    "contents"
                }
                ("POST", ["issues", _, "labels"]) => {
                    let _: Vec<ApiLabel> = parse(&body, &what);
                    "labels"
                }
                _ => continue,
            };
            *checked.entry(kind).or_default() += 1;
        }
        for kind in [
            "repo",
            "pull",
            "pull list",
            "comment",
            "comment list",
            "review",
            "ref",
            "contents",
            "error",
        ] {
            assert!(
                checked.contains_key(kind),
                "no fixture exercised {kind}: {checked:?}"
            );
        }
    }

    fn nullable_fixture(name: &str) -> Value {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/nullable")
            .join(format!("{name}.json"));
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        doc["body"].clone()
    }

    /// What GitHub's OpenAPI description allows to be null or absent parses: a PR, review
    /// or comment by a deleted account (`user: null`), a null body, no `draft`, a running
    /// check run's null conclusion.
    #[test]
    fn nullable_and_optional_fields_parse() {
        let pulls: Vec<ApiPull> = parse(&nullable_fixture("pulls"), "pulls");
        let pulls: Vec<PullRequest> = pulls.into_iter().map(PullRequest::from).collect();
        assert_eq!(pulls[0].author, GHOST);
        assert_eq!(pulls[0].body, "");
        assert!(!pulls[0].draft);
        assert_ne!(pulls[1].author, GHOST, "the others keep their author");

        let reviews: Vec<ApiReview> = parse(&nullable_fixture("reviews"), "reviews");
        let review = Review::from(reviews.into_iter().next().unwrap());
        assert_eq!((review.author.as_str(), review.commit_id), (GHOST, None));

        let comments: Vec<ApiComment> = parse(&nullable_fixture("comments"), "comments");
        let comment = Comment::from(comments.into_iter().next().unwrap());
        assert_eq!(
            (comment.author.as_str(), comment.body.as_str()),
            (GHOST, "")
        );

        let runs: ApiCheckRuns = parse(&nullable_fixture("check-runs"), "check runs");
        let states: Vec<CiState> = runs.check_runs.iter().map(|r| r.to_check().state).collect();
        assert_eq!(states, [CiState::Pending, CiState::Success]);

        let status: ApiCombinedStatus = parse(&nullable_fixture("combined-status"), "status");
        assert_eq!(status.state.as_deref(), Some("pending"));
        assert_eq!(status.statuses.len(), 1);
    }
}
