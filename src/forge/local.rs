//! [`Forge`] on a git repository on disk: branches are real branches of a bare "origin",
//! PRs, comments and reviews are rows in gaffer's database, and a merge is a real git merge.
//! It is the embedded default for `gaffer demo`, and any repo registered with forge
//! `local` works everywhere a GitHub repo does.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use super::{
    CiState, CiStatus, Comment, DirEntry, EntryKind, FileContent, Forge, ForgeError, ForgeResult,
    Issue, MergeMethod, NewPull, NewReview, PullFile, PullRequest, PullState, PullUpdate, RepoInfo,
    Review,
};
use crate::registry::FullName;
use crate::store::Store;

/// The author name rows written by gaffer carry.
const BOT: &str = "gaffer-bot";

/// One local repo: its bare origin and the database holding its PRs.
#[derive(Debug, Clone)]
pub struct LocalForge {
    store: Store,
    origin: PathBuf,
}

/// Errors name the local forge (never "GitHub"); `status` is what GitHub would answer.
fn refused(status: u16, message: impl Into<String>) -> ForgeError {
    ForgeError::Local {
        status,
        message: message.into(),
    }
}

fn protocol(message: impl Into<String>) -> ForgeError {
    refused(500, message)
}

fn db(e: sqlx::Error) -> ForgeError {
    refused(503, format!("database error: {e}"))
}

fn key(repo: &FullName) -> String {
    repo.to_string().to_ascii_lowercase()
}

/// Refuses an origin whose own git config would make git run a program.
fn refuse_dangerous_config(origin: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(origin.join("config")).unwrap_or_default();
    let found = crate::safety::git::dangerous_config(&text);
    if found.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} sets git config that runs programs ({}); gaffer refuses to work with it",
            origin.display(),
            found.join(", ")
        ))
    }
}

/// Whether `origin` may be used as a local-forge origin: inside `root` (after resolving
/// symlinks) and with no program-running git config.
pub fn check_origin(origin: &Path, root: &Path) -> Result<(), String> {
    let real = std::fs::canonicalize(origin).map_err(|e| format!("{}: {e}", origin.display()))?;
    let root_real = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    if !real.starts_with(&root_real) {
        return Err(format!(
            "{} is outside GAFFER_LOCAL_ROOT ({}): local-forge origins must live under it",
            origin.display(),
            root_real.display()
        ));
    }
    refuse_dangerous_config(&real)
}

/// The bare repository a `file://` (or plain path) clone URL names.
pub fn origin_path(clone_url: &str) -> PathBuf {
    PathBuf::from(clone_url.strip_prefix("file://").unwrap_or(clone_url))
}

impl LocalForge {
    pub fn new(store: Store, origin: PathBuf) -> LocalForge {
        LocalForge { store, origin }
    }

    /// Runs git on the bare origin with gaffer's git hygiene (no hooks, no user config,
    /// no environment), after checking the origin's own config runs no programs.
    async fn git_bytes(&self, args: &[&str]) -> Result<Vec<u8>, String> {
        refuse_dangerous_config(&self.origin)?;
        let parent = self.origin.parent().unwrap_or(Path::new("/"));
        let output = crate::safety::git::command(parent)
            .arg("--git-dir")
            .arg(&self.origin)
            .args(args)
            .env("GIT_AUTHOR_NAME", BOT)
            .env("GIT_AUTHOR_EMAIL", "gaffer-bot@localhost")
            .env("GIT_COMMITTER_NAME", BOT)
            .env("GIT_COMMITTER_EMAIL", "gaffer-bot@localhost")
            .output()
            .await
            .map_err(|e| format!("cannot run git: {e}"))?;
        if output.status.success() {
            Ok(output.stdout)
        } else {
            Err(String::from_utf8_lossy(&output.stderr).trim().to_string())
        }
    }

    async fn git(&self, args: &[&str]) -> Result<String, String> {
        self.git_bytes(args)
            .await
            .map(|out| String::from_utf8_lossy(&out).trim_end().to_string())
    }

    async fn sha_of(&self, git_ref: &str) -> Option<String> {
        self.git(&[
            "rev-parse",
            "--verify",
            "-q",
            &format!("{git_ref}^{{commit}}"),
        ])
        .await
        .ok()
    }

    async fn branch(&self, name: &str) -> Option<String> {
        self.sha_of(&format!("refs/heads/{name}")).await
    }

    async fn pull_from_row(&self, row: &SqliteRow) -> ForgeResult<PullRequest> {
        let state: String = row.try_get("state").map_err(db)?;
        let head_ref: String = row.try_get("head_ref").map_err(db)?;
        let closed_head: Option<String> = row.try_get("closed_head_sha").map_err(db)?;
        let head_sha = match closed_head {
            Some(sha) => sha,
            None => self.branch(&head_ref).await.unwrap_or_default(),
        };
        let labels: String = row.try_get("labels").map_err(db)?;
        let number: i64 = row.try_get("number").map_err(db)?;
        Ok(PullRequest {
            number: number as u64,
            title: row.try_get("title").map_err(db)?,
            body: row.try_get("body").map_err(db)?,
            state: if state == "open" {
                PullState::Open
            } else {
                PullState::Closed
            },
            merged_at: row.try_get("merged_at").map_err(db)?,
            head_ref,
            head_sha,
            base_ref: row.try_get("base_ref").map_err(db)?,
            author: row.try_get("author").map_err(db)?,
            // Everyone who can write PR rows into gaffer's database owns the repo.
            author_association: Some("OWNER".into()),
            html_url: format!("file://{}#pull/{number}", self.origin.display()),
            updated_at: row.try_get("updated_at").map_err(db)?,
            draft: false,
            labels: serde_json::from_str(&labels).unwrap_or_default(),
            mergeable: Some(state == "open"),
        })
    }

    async fn pull_row(&self, repo: &FullName, number: u64) -> ForgeResult<SqliteRow> {
        sqlx::query("SELECT * FROM local_pulls WHERE repo = ? AND number = ?")
            .bind(key(repo))
            .bind(number as i64)
            .fetch_optional(self.store.pool())
            .await
            .map_err(db)?
            .ok_or_else(|| refused(404, format!("no pull request #{number} in {repo}")))
    }

    /// Merges an open PR with a real merge commit on its base branch, as the merge button
    /// does; used by `gaffer demo` (standing in for the human) and tests.
    pub async fn merge(&self, repo: &FullName, number: u64) -> ForgeResult<String> {
        let pull = self.pull(repo, number).await?;
        if pull.state != PullState::Open {
            return Err(refused(405, format!("pull request #{number} is not open")));
        }
        let base = self
            .branch(&pull.base_ref)
            .await
            .ok_or_else(|| protocol("the base branch is gone"))?;
        let head = self
            .branch(&pull.head_ref)
            .await
            .ok_or_else(|| protocol("the head branch is gone"))?;
        let tree = self
            .git(&["merge-tree", "--write-tree", &base, &head])
            .await
            .map_err(|_| refused(405, format!("pull request #{number} has conflicts")))?;
        let tree = tree.lines().next().unwrap_or_default().to_string();
        let message = format!(
            "Merge pull request #{number} from {}\n\n{}",
            pull.head_ref, pull.title
        );
        let commit = self
            .git(&[
                "commit-tree",
                &tree,
                "-p",
                &base,
                "-p",
                &head,
                "-m",
                &message,
            ])
            .await
            .map_err(protocol)?;
        self.git(&[
            "update-ref",
            &format!("refs/heads/{}", pull.base_ref),
            &commit,
            &base,
        ])
        .await
        .map_err(protocol)?;
        sqlx::query(
            "UPDATE local_pulls SET state = 'closed', closed_head_sha = ?, closed_base_sha = ?, merge_sha = ?,
                 merged_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')
             WHERE repo = ? AND number = ?",
        )
        .bind(&head)
        .bind(&base)
        .bind(&commit)
        .bind(key(repo))
        .bind(number as i64)
        .execute(self.store.pool())
        .await
        .map_err(db)?;
        Ok(commit)
    }

    pub fn origin(&self) -> &Path {
        &self.origin
    }
}

#[async_trait]
impl Forge for LocalForge {
    async fn identity(&self) -> ForgeResult<String> {
        Ok(BOT.to_string())
    }

    async fn repo_info(&self, repo: &FullName) -> ForgeResult<RepoInfo> {
        let head = self
            .git(&["symbolic-ref", "--short", "HEAD"])
            .await
            .map_err(|_| {
                refused(
                    404,
                    format!(
                        "no bare git repository at {} (the clone URL of {repo})",
                        self.origin.display()
                    ),
                )
            })?;
        Ok(RepoInfo {
            full_name: repo.to_string(),
            default_branch: head,
            clone_url: format!("file://{}", self.origin.display()),
            private: true,
        })
    }

    async fn file(
        &self,
        _repo: &FullName,
        path: &str,
        git_ref: &str,
    ) -> ForgeResult<Option<FileContent>> {
        let object = format!("{git_ref}:{path}");
        match self.git(&["cat-file", "-t", &object]).await.as_deref() {
            Ok("blob") => {}
            Ok(other) => return Err(protocol(format!("{path} is a {other}, not a file"))),
            Err(_) => return Ok(None),
        }
        let sha = self.git(&["rev-parse", &object]).await.map_err(protocol)?;
        let bytes = self
            .git_bytes(&["cat-file", "blob", &sha])
            .await
            .map_err(protocol)?;
        let text =
            String::from_utf8(bytes).map_err(|_| protocol(format!("{path} is not UTF-8 text")))?;
        Ok(Some(FileContent {
            path: path.to_string(),
            sha,
            text,
        }))
    }

    async fn list_dir(
        &self,
        _repo: &FullName,
        path: &str,
        git_ref: &str,
    ) -> ForgeResult<Option<Vec<DirEntry>>> {
        let object = format!("{git_ref}:{path}");
        match self.git(&["cat-file", "-t", &object]).await.as_deref() {
            Ok("tree") => {}
            Ok(_) => return Err(protocol(format!("{path} is a file, not a directory"))),
            Err(_) => return Ok(None),
        }
        let listing = self.git(&["ls-tree", &object]).await.map_err(protocol)?;
        Ok(Some(
            listing
                .lines()
                .filter_map(|line| {
                    let (meta, name) = line.split_once('\t')?;
                    let mut parts = meta.split_whitespace();
                    let (mode, _, sha) = (parts.next()?, parts.next()?, parts.next()?);
                    Some(DirEntry {
                        name: name.to_string(),
                        path: if path.is_empty() {
                            name.to_string()
                        } else {
                            format!("{path}/{name}")
                        },
                        kind: match mode {
                            "040000" => EntryKind::Dir,
                            "120000" => EntryKind::Symlink,
                            "160000" => EntryKind::Submodule,
                            _ => EntryKind::File,
                        },
                        sha: sha.to_string(),
                    })
                })
                .collect(),
        ))
    }

    async fn branch_sha(&self, _repo: &FullName, branch: &str) -> ForgeResult<Option<String>> {
        Ok(self.branch(branch).await)
    }

    async fn create_branch(&self, _repo: &FullName, branch: &str, sha: &str) -> ForgeResult<()> {
        if self.branch(branch).await.is_some() {
            return Err(refused(422, "Reference already exists"));
        }
        self.git(&["update-ref", &format!("refs/heads/{branch}"), sha, ""])
            .await
            .map(|_| ())
            .map_err(|e| refused(422, e))
    }

    async fn list_pulls(&self, repo: &FullName, state: PullState) -> ForgeResult<Vec<PullRequest>> {
        let rows = sqlx::query("SELECT * FROM local_pulls WHERE repo = ? AND state = ? ORDER BY updated_at DESC, number DESC LIMIT 100")
            .bind(key(repo))
            .bind(state.as_str())
            .fetch_all(self.store.pool())
            .await
            .map_err(db)?;
        let mut pulls = Vec::with_capacity(rows.len());
        for row in &rows {
            pulls.push(self.pull_from_row(row).await?);
        }
        Ok(pulls)
    }

    async fn pulls_for_branch(
        &self,
        repo: &FullName,
        branch: &str,
    ) -> ForgeResult<Vec<PullRequest>> {
        let rows = sqlx::query(
            "SELECT * FROM local_pulls WHERE repo = ? AND head_ref = ? ORDER BY number DESC",
        )
        .bind(key(repo))
        .bind(branch)
        .fetch_all(self.store.pool())
        .await
        .map_err(db)?;
        let mut pulls = Vec::with_capacity(rows.len());
        for row in &rows {
            pulls.push(self.pull_from_row(row).await?);
        }
        Ok(pulls)
    }

    async fn pull(&self, repo: &FullName, number: u64) -> ForgeResult<PullRequest> {
        let row = self.pull_row(repo, number).await?;
        self.pull_from_row(&row).await
    }

    async fn pull_files(&self, repo: &FullName, number: u64) -> ForgeResult<Vec<PullFile>> {
        let row = self.pull_row(repo, number).await?;
        let pull = self.pull_from_row(&row).await?;
        let closed_base: Option<String> = row.try_get("closed_base_sha").map_err(db)?;
        let range = match closed_base {
            Some(base) => format!("{base}..{}", pull.head_sha),
            None => format!("refs/heads/{}...{}", pull.base_ref, pull.head_sha),
        };
        let status = self
            .git(&[
                "diff",
                "--no-ext-diff",
                "--no-textconv",
                "--name-status",
                &range,
            ])
            .await
            .map_err(protocol)?;
        let numstat = self
            .git(&[
                "diff",
                "--no-ext-diff",
                "--no-textconv",
                "--numstat",
                &range,
            ])
            .await
            .map_err(protocol)?;
        let mut files = Vec::new();
        for (st, num) in status.lines().zip(numstat.lines()) {
            let Some((code, name)) = st.split_once('\t') else {
                continue;
            };
            let mut n = num.split('\t');
            let additions = n.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            let deletions = n.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            let diff = self
                .git(&["diff", "--no-ext-diff", "--no-textconv", &range, "--", name])
                .await
                .unwrap_or_default();
            files.push(PullFile {
                filename: name.to_string(),
                status: match code.chars().next() {
                    Some('A') => "added",
                    Some('D') => "removed",
                    _ => "modified",
                }
                .into(),
                additions,
                deletions,
                patch: diff.find("@@").map(|at| diff[at..].to_string()),
            });
        }
        Ok(files)
    }

    async fn create_pull(&self, repo: &FullName, pull: &NewPull) -> ForgeResult<PullRequest> {
        for branch in [&pull.base, &pull.head] {
            if self.branch(branch).await.is_none() {
                return Err(refused(
                    422,
                    format!("Validation Failed (branch {branch} does not exist)"),
                ));
            }
        }
        let open = self.list_pulls(repo, PullState::Open).await?;
        if open
            .iter()
            .any(|p| p.head_ref == pull.head && p.base_ref == pull.base)
        {
            return Err(refused(
                422,
                format!(
                    "Validation Failed (A pull request already exists for {}.)",
                    pull.head
                ),
            ));
        }
        let ahead = self
            .git(&[
                "rev-list",
                "--count",
                &format!("refs/heads/{}..refs/heads/{}", pull.base, pull.head),
            ])
            .await
            .unwrap_or_default();
        if ahead == "0" {
            return Err(refused(
                422,
                format!(
                    "Validation Failed (No commits between {} and {})",
                    pull.base, pull.head
                ),
            ));
        }
        let number: i64 = sqlx::query_scalar(
            "INSERT INTO local_pulls (repo, number, title, body, state, head_ref, base_ref, author)
             VALUES (?1, (SELECT COALESCE(MAX(number), 0) + 1 FROM local_pulls WHERE repo = ?1), ?2, ?3, 'open', ?4, ?5, ?6)
             RETURNING number",
        )
        .bind(key(repo))
        .bind(&pull.title)
        .bind(&pull.body)
        .bind(&pull.head)
        .bind(&pull.base)
        .bind(BOT)
        .fetch_one(self.store.pool())
        .await
        .map_err(db)?;
        self.pull(repo, number as u64).await
    }

    async fn update_pull(
        &self,
        repo: &FullName,
        number: u64,
        update: &PullUpdate,
    ) -> ForgeResult<PullRequest> {
        let current = self.pull(repo, number).await?;
        let closing = update.state == Some(PullState::Closed)
            && current.state == PullState::Open
            && current.merged_at.is_none();
        let (head, base) = if closing {
            (
                self.branch(&current.head_ref).await,
                self.branch(&current.base_ref).await,
            )
        } else {
            (None, None)
        };
        sqlx::query(
            "UPDATE local_pulls SET title = COALESCE(?, title), body = COALESCE(?, body),
                 state = COALESCE(?, state), closed_head_sha = COALESCE(?, closed_head_sha),
                 closed_base_sha = COALESCE(?, closed_base_sha),
                 updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')
             WHERE repo = ? AND number = ? AND (merged_at IS NULL OR ? IS NULL)",
        )
        .bind(&update.title)
        .bind(&update.body)
        .bind(update.state.map(PullState::as_str))
        .bind(head)
        .bind(base)
        .bind(key(repo))
        .bind(number as i64)
        .bind(update.state.map(PullState::as_str))
        .execute(self.store.pool())
        .await
        .map_err(db)?;
        self.pull(repo, number).await
    }

    async fn comments(&self, repo: &FullName, number: u64) -> ForgeResult<Vec<Comment>> {
        let rows =
            sqlx::query("SELECT * FROM local_comments WHERE repo = ? AND number = ? ORDER BY id")
                .bind(key(repo))
                .bind(number as i64)
                .fetch_all(self.store.pool())
                .await
                .map_err(db)?;
        rows.iter().map(comment_from_row).collect()
    }

    async fn create_comment(
        &self,
        repo: &FullName,
        number: u64,
        body: &str,
    ) -> ForgeResult<Comment> {
        self.pull_row(repo, number).await?;
        let row = sqlx::query("INSERT INTO local_comments (repo, number, body, author) VALUES (?, ?, ?, ?) RETURNING *")
            .bind(key(repo))
            .bind(number as i64)
            .bind(body)
            .bind(BOT)
            .fetch_one(self.store.pool())
            .await
            .map_err(db)?;
        comment_from_row(&row)
    }

    async fn update_comment(
        &self,
        repo: &FullName,
        comment_id: u64,
        body: &str,
    ) -> ForgeResult<Comment> {
        let row = sqlx::query(
            "UPDATE local_comments SET body = ?, updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')
             WHERE repo = ? AND id = ? RETURNING *",
        )
        .bind(body)
        .bind(key(repo))
        .bind(comment_id as i64)
        .fetch_optional(self.store.pool())
        .await
        .map_err(db)?
        .ok_or_else(|| refused(404, format!("no comment {comment_id} in {repo}")))?;
        comment_from_row(&row)
    }

    async fn create_review(
        &self,
        repo: &FullName,
        number: u64,
        review: &NewReview,
    ) -> ForgeResult<Review> {
        self.pull_row(repo, number).await?;
        let row = sqlx::query(
            "INSERT INTO local_reviews (repo, number, commit_id, body, state, author) VALUES (?, ?, ?, ?, 'COMMENTED', ?) RETURNING *",
        )
        .bind(key(repo))
        .bind(number as i64)
        .bind(&review.commit_id)
        .bind(&review.body)
        .bind(BOT)
        .fetch_one(self.store.pool())
        .await
        .map_err(db)?;
        review_from_row(&row)
    }

    async fn reviews(&self, repo: &FullName, number: u64) -> ForgeResult<Vec<Review>> {
        let rows =
            sqlx::query("SELECT * FROM local_reviews WHERE repo = ? AND number = ? ORDER BY id")
                .bind(key(repo))
                .bind(number as i64)
                .fetch_all(self.store.pool())
                .await
                .map_err(db)?;
        rows.iter().map(review_from_row).collect()
    }

    async fn add_labels(&self, repo: &FullName, number: u64, labels: &[String]) -> ForgeResult<()> {
        let mut current = self.pull(repo, number).await?.labels;
        for label in labels {
            if !current.contains(label) {
                current.push(label.clone());
            }
        }
        self.set_labels(repo, number, &current).await
    }

    async fn remove_label(&self, repo: &FullName, number: u64, label: &str) -> ForgeResult<()> {
        let mut current = self.pull(repo, number).await?.labels;
        current.retain(|l| l != label);
        self.set_labels(repo, number, &current).await
    }

    /// A local origin has no CI service: the state is `none` (the Developer's and the
    /// Reviewer's own check runs are what report on the code).
    async fn ci_status(&self, _repo: &FullName, _git_ref: &str) -> ForgeResult<CiStatus> {
        Ok(CiStatus {
            state: CiState::None,
            checks: Vec::new(),
        })
    }

    /// A local origin has no issue tracker: no issue exists.
    async fn issue(&self, repo: &FullName, number: u64) -> ForgeResult<Issue> {
        Err(refused(
            404,
            format!("no issue #{number} in {repo}: the local forge has no issues"),
        ))
    }

    async fn list_issues(&self, _repo: &FullName, _label: &str) -> ForgeResult<Vec<Issue>> {
        Ok(Vec::new())
    }

    /// Commands on the local forge come through the API, not comments: none are listed.
    async fn comments_since(
        &self,
        _repo: &FullName,
        _since: &str,
    ) -> ForgeResult<Vec<super::ThreadComment>> {
        Ok(Vec::new())
    }

    async fn newest_comment_at(&self, _repo: &FullName) -> ForgeResult<Option<String>> {
        Ok(None)
    }

    async fn close_issue(&self, repo: &FullName, number: u64) -> ForgeResult<()> {
        self.issue(repo, number).await.map(|_| ())
    }

    async fn react(&self, _repo: &FullName, _comment_id: u64, _content: &str) -> ForgeResult<()> {
        Err(refused(405, "the local forge has no reactions"))
    }

    /// A real merge commit whatever `method` says (the local forge has one merge button);
    /// refused when the head moved from `sha`.
    async fn merge_pull(
        &self,
        repo: &FullName,
        number: u64,
        _method: MergeMethod,
        sha: &str,
    ) -> ForgeResult<String> {
        let pull = self.pull(repo, number).await?;
        if pull.head_sha != sha {
            return Err(refused(
                409,
                format!("Head branch was modified. Review and try the merge again (#{number})"),
            ));
        }
        self.merge(repo, number).await
    }
}

impl LocalForge {
    async fn set_labels(&self, repo: &FullName, number: u64, labels: &[String]) -> ForgeResult<()> {
        sqlx::query("UPDATE local_pulls SET labels = ? WHERE repo = ? AND number = ?")
            .bind(serde_json::to_string(labels).unwrap_or_else(|_| "[]".into()))
            .bind(key(repo))
            .bind(number as i64)
            .execute(self.store.pool())
            .await
            .map_err(db)?;
        Ok(())
    }
}

fn comment_from_row(row: &SqliteRow) -> ForgeResult<Comment> {
    let id: i64 = row.try_get("id").map_err(db)?;
    Ok(Comment {
        id: id as u64,
        body: row.try_get("body").map_err(db)?,
        author: row.try_get("author").map_err(db)?,
        // Everyone who can write rows into gaffer's database owns the repo.
        author_association: Some("OWNER".into()),
        created_at: row.try_get("created_at").map_err(db)?,
        updated_at: row.try_get("updated_at").map_err(db)?,
    })
}

fn review_from_row(row: &SqliteRow) -> ForgeResult<Review> {
    let id: i64 = row.try_get("id").map_err(db)?;
    Ok(Review {
        id: id as u64,
        commit_id: row.try_get("commit_id").map_err(db)?,
        body: row.try_get("body").map_err(db)?,
        state: row.try_get("state").map_err(db)?,
        author: row.try_get("author").map_err(db)?,
    })
}
