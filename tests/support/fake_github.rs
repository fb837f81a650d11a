//! A stateful fake GitHub REST API on loopback. Repos are bare git repos on disk
//! (`file://` clone URLs), so refs, branches, diffs and merges are real git; PRs, comments,
//! reviews, labels and statuses live in memory. It answers with GitHub's status codes and
//! JSON shapes, ETags that change with the resource (304 when not), rate-limit headers
//! that count down (304s are free), and switchable faults: latency, 5xx, timeouts,
//! secondary limits with and without `retry-after`, 401.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use super::git::{self, git};

#[path = "fake_graphql.rs"]
mod graphql;

/// The login the fake gives whoever holds the token.
pub const BOT_LOGIN: &str = "gaffer-bot";
const HOUR: u64 = 3600;
/// GraphQL's hourly points on github.com.
const GRAPHQL_POINTS_PER_HOUR: u64 = 5000;

/// A fault to answer the next request(s) with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// This status with a GitHub-style error body (e.g. 500, 502).
    Status(u16),
    /// Hold the answer this long (longer than the client's timeout to simulate one).
    Delay(Duration),
    /// 403 "You have exceeded a secondary rate limit", with or without `retry-after`.
    Secondary { retry_after: Option<u64> },
    /// 429, with or without `retry-after`.
    TooManyRequests { retry_after: Option<u64> },
    /// 401 "Bad credentials".
    BadCredentials,
    /// Do the request (a write: the PR, review or comment is made), then answer 502.
    AfterWrite502,
    /// Do the request, then drop the connection mid-answer.
    AfterWriteDrop,
    /// Do the request, then hold the answer this long (past the client's timeout).
    AfterWriteStall(Duration),
}

/// Seeded random faults: the first four writes (POST/PATCH/PUT/DELETE) to each endpoint get
/// each write fault in turn: done and then answered 502, done and then cut off, done and
/// then stalled past the timeout, and 502 without doing it; later writes get one of them
/// with probability `write_rate`. Each read fails with 502 (not done) with `read_rate`.
#[derive(Debug)]
pub struct Chaos {
    pub rng: rand::rngs::StdRng,
    pub write_rate: f64,
    pub read_rate: f64,
    pub stall: Duration,
    /// Faults injected so far, by kind (`"502 after write"`, ...).
    pub injected: BTreeMap<String, u64>,
    /// Writes seen per endpoint.
    writes: BTreeMap<String, u64>,
}

impl Chaos {
    pub fn new(seed: u64, write_rate: f64, read_rate: f64, stall: Duration) -> Chaos {
        use rand::SeedableRng;
        Chaos {
            rng: rand::rngs::StdRng::seed_from_u64(seed),
            write_rate,
            read_rate,
            stall,
            injected: BTreeMap::new(),
            writes: BTreeMap::new(),
        }
    }

    fn pick(&mut self, method: &str, path: &str) -> Option<Fault> {
        use rand::Rng;
        if path.ends_with("/rate_limit") {
            return None;
        }
        if method == "GET" {
            if self.rng.random_bool(self.read_rate) {
                *self.injected.entry("502 on a read".into()).or_default() += 1;
                return Some(Fault::Status(502));
            }
            return None;
        }
        let endpoint = format!("{method} {}", endpoint(path));
        let seen = self.writes.entry(endpoint.clone()).or_default();
        *seen += 1;
        let kind = match *seen {
            n @ 1..=4 => n - 1,
            _ if self.rng.random_bool(self.write_rate) => self.rng.random_range(0..4),
            _ => return None,
        };
        let (name, fault) = match kind {
            0 => ("502 after write", Fault::AfterWrite502),
            1 => ("drop after write", Fault::AfterWriteDrop),
            2 => ("stall after write", Fault::AfterWriteStall(self.stall)),
            _ => ("502 before write", Fault::Status(502)),
        };
        *self
            .injected
            .entry(format!("{name} ({endpoint})"))
            .or_default() += 1;
        Some(fault)
    }
}

/// A path with numbers and names reduced to placeholders (`/repos/:o/:r/pulls/:n/reviews`).
fn endpoint(path: &str) -> String {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    segments
        .iter()
        .enumerate()
        .map(|(i, s)| match (i, s.parse::<u64>().is_ok()) {
            (1 | 2, _) if segments[0] == "repos" => ":r",
            (_, true) => ":n",
            _ => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// What the token the fake accepts may do, as GitHub would report and enforce it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenGrant {
    /// A classic token with these OAuth scopes: every answer carries `X-OAuth-Scopes`, and
    /// push access (the repo's `permissions.push`) follows from `repo` / `public_repo`.
    Classic(Vec<String>),
    /// A fine-grained token with these repository permissions, e.g. `("contents", "write")`,
    /// `("pull_requests", "read")`; others are none (`metadata` is always read). Calls
    /// needing more get GitHub's 403 "Resource not accessible by personal access token".
    FineGrained(Vec<(String, String)>),
}

impl TokenGrant {
    /// A fine-grained grant from `name=level` pairs.
    pub fn fine_grained(pairs: &[(&str, &str)]) -> TokenGrant {
        TokenGrant::FineGrained(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    /// A classic grant with these scopes.
    pub fn classic(scopes: &[&str]) -> TokenGrant {
        TokenGrant::Classic(scopes.iter().map(|s| s.to_string()).collect())
    }

    fn level(&self, permission: &str) -> u8 {
        match self {
            TokenGrant::Classic(scopes) => {
                let repo = scopes.iter().any(|s| s == "repo" || s == "public_repo");
                match (permission, repo) {
                    ("workflows", _) if scopes.iter().any(|s| s == "workflow") => 2,
                    ("workflows", _) => 0,
                    (_, true) => 2,
                    (_, false) => 1,
                }
            }
            TokenGrant::FineGrained(pairs) => match permission {
                "metadata" => 1,
                _ => pairs
                    .iter()
                    .find(|(k, _)| k == permission)
                    .map(|(_, v)| if v == "write" { 2 } else { 1 })
                    .unwrap_or(0),
            },
        }
    }
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    pub status: u16,
    pub if_none_match: Option<String>,
    pub authorization: Option<String>,
    pub accept: Option<String>,
    pub api_version: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Debug, Clone)]
struct Pull {
    number: u64,
    title: String,
    body: String,
    state: &'static str,
    draft: bool,
    head_ref: String,
    base_ref: String,
    /// The head and base SHAs when the PR was closed, once its branch may be gone.
    closed_head_sha: Option<String>,
    closed_base_sha: Option<String>,
    merged_at: Option<String>,
    merge_commit_sha: Option<String>,
    user: String,
    /// GitHub's `author_association` of `user` on the repo.
    association: String,
    labels: Vec<String>,
    created_at: String,
    updated_at: String,
}

#[derive(Debug, Clone)]
struct IssueComment {
    id: u64,
    issue: u64,
    body: String,
    user: String,
    /// The commenter's `author_association`.
    association: String,
    /// `owner/name`, and whether `issue` is a PR (for the comment's URLs).
    repo: String,
    on_pull: bool,
    created_at: String,
    updated_at: String,
}

/// An issue (PRs are kept apart, but share the number sequence as on GitHub).
#[derive(Debug, Clone)]
struct Issue {
    number: u64,
    title: String,
    body: String,
    state: &'static str,
    user: String,
    association: String,
    labels: Vec<String>,
    created_at: String,
    updated_at: String,
}

#[derive(Debug, Clone)]
struct PullReview {
    id: u64,
    pull: u64,
    commit_id: String,
    body: String,
    state: &'static str,
    user: String,
}

#[derive(Debug)]
struct Repo {
    owner: String,
    name: String,
    default_branch: String,
    bare: PathBuf,
    pulls: Vec<Pull>,
    issues: Vec<Issue>,
    /// `(comment id, content, user)` of each reaction.
    reactions: Vec<(u64, String, String)>,
    comments: Vec<IssueComment>,
    reviews: Vec<PullReview>,
    statuses: HashMap<String, Vec<(String, String)>>,
    check_runs: HashMap<String, Vec<(String, String, Option<String>)>>,
}

#[derive(Debug)]
struct State {
    repos: BTreeMap<String, Repo>,
    rate_limit: u64,
    rate_remaining: u64,
    rate_reset: u64,
    latency: Duration,
    faults: VecDeque<Fault>,
    token: Option<String>,
    grant: Option<TokenGrant>,
    log: Vec<LoggedRequest>,
    next_id: u64,
    clock: u64,
    chaos: Option<Chaos>,
    /// Every request is answered 502 until then (GitHub down for a while).
    outage_until: Option<std::time::Instant>,
    /// GitHub's secondary limits, when modelled.
    secondary: Option<SecondaryLimit>,
    /// Requests being answered now, and the most at once since start.
    in_flight: usize,
    peak_in_flight: usize,
    /// The GraphQL endpoint's switches and counts.
    graphql: GraphqlFake,
}

/// How the fake refuses GraphQL (see [`FakeGithub::refuse_graphql`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphqlRefusal {
    /// 404: a GitHub Enterprise Server without GraphQL.
    NotFound,
    /// 403 without a rate limit: the token may not use it.
    Forbidden,
    /// 200 with only an `errors` array of type `INSUFFICIENT_SCOPES`.
    InsufficientScopes,
    /// 200 with a body that is not the answer asked for.
    Garbage,
    /// 200 with a body of 9 MiB (more than gaffer reads).
    Oversized,
}

/// `POST /graphql`: its own budget (query costs an hour), its own secondary limit (points
/// per minute), a switch to refuse it, and counts.
#[derive(Debug)]
struct GraphqlFake {
    refuse: Option<GraphqlRefusal>,
    limit: Option<SecondaryLimit>,
    remaining: u64,
    queries: u64,
    points: u64,
}

/// GitHub's secondary limits as the fake enforces them: points per sliding minute (a
/// GET is 1 point, 304 or not; a write 5) and requests at once. A request over either
/// is answered 403 with GitHub's message and `retry-after`, and costs nothing.
#[derive(Debug)]
struct SecondaryLimit {
    points_per_minute: u32,
    max_concurrency: usize,
    /// `retry-after` to send; `None`: the seconds until the window has room.
    retry_after: Option<u64>,
    spent: VecDeque<(std::time::Instant, u32)>,
    /// Requests refused for the limit, and the most points any sliding minute held.
    refused: u64,
    peak_points: u32,
}

impl SecondaryLimit {
    /// `None` when the request may go on (its points are then spent), else the
    /// `retry-after` seconds.
    fn admit(&mut self, points: u32, in_flight: usize) -> Option<u64> {
        let now = std::time::Instant::now();
        while self
            .spent
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) >= Duration::from_secs(60))
        {
            self.spent.pop_front();
        }
        let total: u32 = self.spent.iter().map(|(_, p)| p).sum();
        if in_flight > self.max_concurrency || total + points > self.points_per_minute {
            self.refused += 1;
            let until_room = self
                .spent
                .front()
                .map(|(at, _)| 60 - now.duration_since(*at).as_secs().min(59))
                .unwrap_or(1);
            return Some(self.retry_after.unwrap_or(until_room));
        }
        self.spent.push_back((now, points));
        self.peak_points = self.peak_points.max(total + points);
        None
    }
}

/// Counts a request in flight until it is answered (whatever path the answer takes).
struct InFlight(web::Data<Mutex<State>>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut s) = self.0.lock() {
            s.in_flight -= 1;
        }
    }
}

impl State {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// A fresh timestamp, one second after the previous one (deterministic, so ETags
    /// change only when state does).
    fn now(&mut self) -> String {
        self.clock += 1;
        rfc3339(1_767_225_600 + self.clock)
    }
}

/// An answer before rate-limit headers, ETags and logging are added.
struct Reply {
    status: u16,
    body: Option<Value>,
    headers: Vec<(String, String)>,
}

impl Reply {
    fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            body: Some(body),
            headers: Vec::new(),
        }
    }

    fn error(status: u16, message: &str) -> Reply {
        Reply::json(
            status,
            json!({"message": message, "documentation_url": "https://docs.github.com/rest"}),
        )
    }

    fn not_found() -> Reply {
        Reply::error(404, "Not Found")
    }

    fn validation(message: &str, errors: Value) -> Reply {
        Reply::json(
            422,
            json!({"message": message, "errors": errors, "documentation_url": "https://docs.github.com/rest"}),
        )
    }
}

/// The fake server and its state; dropping it stops nothing, call [`FakeGithub::stop`].
pub struct FakeGithub {
    base_url: String,
    root: Arc<TempDir>,
    state: Arc<Mutex<State>>,
    handle: ServerHandle,
}

impl FakeGithub {
    pub async fn start() -> FakeGithub {
        let state = Arc::new(Mutex::new(State {
            repos: BTreeMap::new(),
            rate_limit: 5000,
            rate_remaining: 5000,
            rate_reset: unix_now() + HOUR,
            latency: Duration::ZERO,
            faults: VecDeque::new(),
            token: None,
            grant: None,
            log: Vec::new(),
            next_id: 1000,
            clock: 0,
            chaos: None,
            outage_until: None,
            secondary: None,
            in_flight: 0,
            peak_in_flight: 0,
            graphql: GraphqlFake {
                refuse: None,
                limit: None,
                remaining: GRAPHQL_POINTS_PER_HOUR,
                queries: 0,
                points: 0,
            },
        }));
        let shared = web::Data::from(Arc::clone(&state));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .app_data(web::PayloadConfig::new(16 * 1024 * 1024))
                .default_service(web::to(handle))
        })
        .workers(2)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        FakeGithub {
            base_url: format!("http://127.0.0.1:{port}"),
            root: Arc::new(TempDir::new().unwrap()),
            state,
            handle,
        }
    }

    /// The API base, as `https://api.github.com` would be.
    pub fn api_url(&self) -> String {
        self.base_url.clone()
    }

    /// The same API under GitHub Enterprise Server's `/api/v3` prefix.
    pub fn enterprise_api_url(&self) -> String {
        format!("{}/api/v3", self.base_url)
    }

    pub async fn stop(&self) {
        self.handle.stop(false).await;
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    /// Adds the in-memory side of a repo whose bare git repo is at `bare`.
    fn insert_repo(&self, full_name: &str, bare: &Path) {
        let (owner, name) = full_name.split_once('/').unwrap();
        self.lock().repos.insert(
            full_name.to_ascii_lowercase(),
            Repo {
                owner: owner.into(),
                name: name.into(),
                default_branch: "main".into(),
                bare: bare.to_path_buf(),
                pulls: Vec::new(),
                comments: Vec::new(),
                issues: Vec::new(),
                reactions: Vec::new(),
                reviews: Vec::new(),
                statuses: HashMap::new(),
                check_runs: HashMap::new(),
            },
        );
    }

    /// Creates `owner/name` with `main` holding the files of `seed` (or a README).
    pub fn create_repo(&self, full_name: &str, seed: Option<&Path>) -> PathBuf {
        let (owner, name) = full_name.split_once('/').unwrap();
        let bare = self.root.path().join(format!("{owner}/{name}.git"));
        git::init_bare(&bare, "main", seed);
        self.insert_repo(full_name, &bare);
        bare
    }

    /// Adds `owner/name` as a copy of an existing bare repo (fast, for hundreds of repos).
    pub fn copy_repo(&self, full_name: &str, template: &Path) -> PathBuf {
        let (owner, name) = full_name.split_once('/').unwrap();
        let bare = self.root.path().join(format!("{owner}/{name}.git"));
        copy_dir(template, &bare);
        self.insert_repo(full_name, &bare);
        bare
    }

    /// Sets the hourly limit the rate-limit headers report, and fills the budget.
    pub fn set_rate_limit(&self, limit: u64) {
        let mut state = self.lock();
        state.rate_limit = limit;
        state.rate_remaining = limit;
    }

    pub fn bare_path(&self, full_name: &str) -> PathBuf {
        self.lock().repos[&full_name.to_ascii_lowercase()]
            .bare
            .clone()
    }

    pub fn clone_url(&self, full_name: &str) -> String {
        format!("file://{}", self.bare_path(full_name).display())
    }

    /// Pushes one commit to `branch` (as a user or CI would).
    pub fn commit(
        &self,
        full_name: &str,
        branch: &str,
        files: &[(&str, &str)],
        message: &str,
    ) -> String {
        let bare = self.bare_path(full_name);
        let files: Vec<(&str, &[u8])> = files.iter().map(|(p, c)| (*p, c.as_bytes())).collect();
        git::commit_files(&bare, branch, &files, &[], message)
    }

    /// Opens a PR as a human would; panics on GitHub's 422s.
    pub fn open_pull(
        &self,
        full_name: &str,
        head: &str,
        base: &str,
        title: &str,
        body: &str,
    ) -> u64 {
        let mut state = self.lock();
        let reply = create_pull(
            &mut state,
            &full_name.to_ascii_lowercase(),
            &json!({"head": head, "base": base, "title": title, "body": body}),
            "octocat",
        );
        assert_eq!(reply.status, 201, "open_pull: {:?}", reply.body);
        reply.body.unwrap()["number"].as_u64().unwrap()
    }

    /// Opens a PR as `login` with the given `author_association` (an outsider: "NONE").
    pub fn open_pull_as(
        &self,
        full_name: &str,
        head: &str,
        body: &str,
        login: &str,
        association: &str,
    ) -> u64 {
        let number = self.open_pull(full_name, head, "main", "a change", body);
        let mut state = self.lock();
        let repo = state
            .repos
            .get_mut(&full_name.to_ascii_lowercase())
            .expect("repo");
        let pull = repo
            .pulls
            .iter_mut()
            .find(|p| p.number == number)
            .expect("pull");
        pull.user = login.to_string();
        pull.association = association.to_string();
        number
    }

    /// Merges a PR with a real merge commit, as the merge button does.
    pub fn merge(&self, full_name: &str, number: u64) -> Result<String, String> {
        let mut state = self.lock();
        let reply = merge_pull(
            &mut state,
            &full_name.to_ascii_lowercase(),
            number,
            &json!({}),
        );
        match reply.status {
            200 => Ok(reply.body.unwrap()["sha"].as_str().unwrap().to_string()),
            _ => Err(reply.body.map(|b| b.to_string()).unwrap_or_default()),
        }
    }

    /// Closes a PR without merging.
    pub fn close(&self, full_name: &str, number: u64) {
        let mut state = self.lock();
        let reply = update_pull(
            &mut state,
            &full_name.to_ascii_lowercase(),
            number,
            &json!({"state": "closed"}),
        );
        assert_eq!(reply.status, 200);
    }

    /// Every PR as the API shows it.
    pub fn pulls(&self, full_name: &str) -> Vec<Value> {
        let state = self.lock();
        let repo = &state.repos[&full_name.to_ascii_lowercase()];
        repo.pulls
            .iter()
            .map(|p| pull_json(repo, p, true))
            .collect()
    }

    /// Bodies of the conversation comments on an issue or PR.
    pub fn comments(&self, full_name: &str, number: u64) -> Vec<String> {
        let state = self.lock();
        let repo = &state.repos[&full_name.to_ascii_lowercase()];
        repo.comments
            .iter()
            .filter(|c| c.issue == number)
            .map(|c| c.body.clone())
            .collect()
    }

    /// `(commit_id, state, body)` of each review on a PR.
    pub fn reviews(&self, full_name: &str, number: u64) -> Vec<(String, String, String)> {
        let state = self.lock();
        let repo = &state.repos[&full_name.to_ascii_lowercase()];
        repo.reviews
            .iter()
            .filter(|r| r.pull == number)
            .map(|r| (r.commit_id.clone(), r.state.to_string(), r.body.clone()))
            .collect()
    }

    /// Labels on a PR or an issue.
    pub fn labels(&self, full_name: &str, number: u64) -> Vec<String> {
        let mut state = self.lock();
        let repo = state
            .repos
            .get_mut(&full_name.to_ascii_lowercase())
            .expect("repo");
        labels_of(repo, number).cloned().unwrap_or_default()
    }

    /// Opens an issue as `login` (with that `author_association`) carrying `labels`.
    pub fn open_issue(
        &self,
        full_name: &str,
        title: &str,
        body: &str,
        login: &str,
        association: &str,
        labels: &[&str],
    ) -> u64 {
        let mut state = self.lock();
        let now = state.now();
        let repo = state
            .repos
            .get_mut(&full_name.to_ascii_lowercase())
            .expect("repo");
        let number = next_number(repo);
        repo.issues.push(Issue {
            number,
            title: title.into(),
            body: body.into(),
            state: "open",
            user: login.into(),
            association: association.into(),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            created_at: now.clone(),
            updated_at: now,
        });
        number
    }

    /// Adds a label to an issue or PR, as a maintainer does.
    pub fn label(&self, full_name: &str, number: u64, label: &str) {
        let mut state = self.lock();
        let repo = state
            .repos
            .get_mut(&full_name.to_ascii_lowercase())
            .expect("repo");
        let labels = labels_of(repo, number).expect("issue or PR");
        if !labels.iter().any(|l| l == label) {
            labels.push(label.to_string());
        }
    }

    /// An issue as the API shows it.
    pub fn issue(&self, full_name: &str, number: u64) -> Value {
        let state = self.lock();
        let repo = &state.repos[&full_name.to_ascii_lowercase()];
        let issue = repo
            .issues
            .iter()
            .find(|i| i.number == number)
            .expect("issue");
        issue_json(repo, issue)
    }

    /// Posts a conversation comment as `login` (with that `author_association`); its id.
    pub fn comment_as(
        &self,
        full_name: &str,
        number: u64,
        body: &str,
        login: &str,
        association: &str,
    ) -> u64 {
        let mut state = self.lock();
        let id = state.id();
        let now = state.now();
        let repo = state
            .repos
            .get_mut(&full_name.to_ascii_lowercase())
            .expect("repo");
        let on_pull = repo.pulls.iter().any(|p| p.number == number);
        let full_name = format!("{}/{}", repo.owner, repo.name);
        repo.comments.push(IssueComment {
            id,
            issue: number,
            body: body.into(),
            user: login.into(),
            association: association.into(),
            repo: full_name,
            on_pull,
            created_at: now.clone(),
            updated_at: now,
        });
        id
    }

    /// A comment as the API shows it (for webhook payloads).
    pub fn comment_json(&self, full_name: &str, id: u64) -> Value {
        let state = self.lock();
        let repo = &state.repos[&full_name.to_ascii_lowercase()];
        comment_json(repo.comments.iter().find(|c| c.id == id).expect("comment"))
    }

    /// The reactions gaffer left on a comment.
    pub fn reactions(&self, full_name: &str, comment_id: u64) -> Vec<String> {
        let state = self.lock();
        let repo = &state.repos[&full_name.to_ascii_lowercase()];
        repo.reactions
            .iter()
            .filter(|(c, _, _)| *c == comment_id)
            .map(|(_, what, _)| what.clone())
            .collect()
    }

    /// A commit status, as an external CI posts it.
    pub fn set_status(&self, full_name: &str, sha: &str, context: &str, status: &str) {
        let mut state = self.lock();
        let repo = state
            .repos
            .get_mut(&full_name.to_ascii_lowercase())
            .unwrap();
        let list = repo.statuses.entry(sha.to_string()).or_default();
        list.retain(|(c, _)| c != context);
        list.push((context.to_string(), status.to_string()));
    }

    /// A check run, as GitHub Actions posts it.
    pub fn add_check_run(
        &self,
        full_name: &str,
        sha: &str,
        name: &str,
        status: &str,
        conclusion: Option<&str>,
    ) {
        let mut state = self.lock();
        let repo = state
            .repos
            .get_mut(&full_name.to_ascii_lowercase())
            .unwrap();
        repo.check_runs.entry(sha.to_string()).or_default().push((
            name.into(),
            status.into(),
            conclusion.map(str::to_string),
        ));
    }

    /// Answers every request with 502 for this long from now (an outage).
    pub fn outage(&self, length: Duration) {
        self.lock().outage_until = Some(std::time::Instant::now() + length);
    }

    /// Seeded random faults from now on (see [`Chaos`]); `None` stops them.
    pub fn set_chaos(&self, chaos: Option<Chaos>) {
        self.lock().chaos = chaos;
    }

    /// The faults chaos injected so far, by kind.
    pub fn chaos_injected(&self) -> BTreeMap<String, u64> {
        self.lock()
            .chaos
            .as_ref()
            .map(|c| c.injected.clone())
            .unwrap_or_default()
    }

    /// The author of PR `number` deletes their account: the API shows `user: null` for the
    /// PR and for their comments and reviews, as GitHub does.
    pub fn delete_author(&self, full_name: &str, number: u64) {
        let mut state = self.lock();
        let repo = state
            .repos
            .get_mut(&full_name.to_ascii_lowercase())
            .unwrap();
        let pull = repo.pulls.iter_mut().find(|p| p.number == number).unwrap();
        let login = std::mem::take(&mut pull.user);
        for c in repo.comments.iter_mut().filter(|c| c.user == login) {
            c.user.clear();
        }
        for r in repo.reviews.iter_mut().filter(|r| r.user == login) {
            r.user.clear();
        }
    }

    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    /// Answers the next `times` requests with `fault`.
    pub fn inject(&self, fault: Fault, times: usize) {
        let mut state = self.lock();
        for _ in 0..times {
            state.faults.push_back(fault.clone());
        }
    }

    /// Sets what is left of the budget and when it resets (seconds from now).
    pub fn set_rate_remaining(&self, remaining: u64, reset_in: u64) {
        let mut state = self.lock();
        state.rate_remaining = remaining;
        state.rate_reset = unix_now() + reset_in;
    }

    pub fn rate_remaining(&self) -> u64 {
        self.lock().rate_remaining
    }

    /// Only this bearer token is accepted from now on (others get 401).
    pub fn require_token(&self, token: &str) {
        self.lock().token = Some(token.to_string());
    }

    /// From now on the token may do only what `grant` allows (default: everything, and no
    /// `X-OAuth-Scopes` header).
    pub fn grant(&self, grant: TokenGrant) {
        self.lock().grant = Some(grant);
    }

    pub fn log(&self) -> Vec<LoggedRequest> {
        self.lock().log.clone()
    }

    /// From now on, model GitHub's secondary limits: at most `points_per_minute` points in
    /// any sliding minute (GET 1, writes 5) and `max_concurrency` requests at once;
    /// `retry_after` fixes the header's seconds (else: until the window has room).
    pub fn set_secondary_limit(
        &self,
        points_per_minute: u32,
        max_concurrency: usize,
        retry_after: Option<u64>,
    ) {
        let mut state = self.lock();
        state.peak_in_flight = state.in_flight;
        state.secondary = Some(SecondaryLimit {
            points_per_minute,
            max_concurrency,
            retry_after,
            spent: VecDeque::new(),
            refused: 0,
            peak_points: 0,
        });
    }

    /// Requests refused for the secondary limit, the most points a sliding minute held,
    /// and the most requests in flight at once.
    pub fn secondary_stats(&self) -> (u64, u32, usize) {
        let s = self.lock();
        let (refused, peak) = s
            .secondary
            .as_ref()
            .map(|l| (l.refused, l.peak_points))
            .unwrap_or_default();
        (refused, peak, s.peak_in_flight)
    }

    /// From now on GraphQL is refused this way (`None`: answered again).
    pub fn refuse_graphql(&self, refusal: Option<GraphqlRefusal>) {
        self.lock().graphql.refuse = refusal;
    }

    /// GraphQL's secondary limit: at most `points_per_minute` points in a sliding minute
    /// (a query costs what GitHub's cost formula says, at least 1), else 403 with
    /// `retry-after`.
    pub fn set_graphql_limit(&self, points_per_minute: u32, retry_after: Option<u64>) {
        self.lock().graphql.limit = Some(SecondaryLimit {
            points_per_minute,
            max_concurrency: usize::MAX,
            retry_after,
            spent: VecDeque::new(),
            refused: 0,
            peak_points: 0,
        });
    }

    /// GraphQL queries answered, the points they cost, queries refused for the limit, and
    /// the most points a sliding minute held.
    pub fn graphql_stats(&self) -> (u64, u64, u64, u32) {
        let s = self.lock();
        let (refused, peak) = s
            .graphql
            .limit
            .as_ref()
            .map(|l| (l.refused, l.peak_points))
            .unwrap_or_default();
        (s.graphql.queries, s.graphql.points, refused, peak)
    }

    /// Requests logged from index `from` on (the log only grows until cleared).
    pub fn log_since(&self, from: usize) -> Vec<LoggedRequest> {
        let s = self.lock();
        s.log.get(from..).map(<[_]>::to_vec).unwrap_or_default()
    }

    pub fn log_len(&self) -> usize {
        self.lock().log.len()
    }

    pub fn clear_log(&self) {
        self.lock().log.clear();
    }
}

/// Every request lands here: faults, auth and budget first, then the route, then ETag,
/// rate-limit headers and the log.
async fn handle(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<Mutex<State>>,
) -> HttpResponse {
    if req.method() == actix_web::http::Method::POST
        && matches!(req.path(), "/graphql" | "/api/graphql")
    {
        return graphql::handle(req, body, state).await;
    }
    let _in_flight = InFlight(state.clone());
    let (latency, fault) = {
        let mut s = state.lock().unwrap();
        s.in_flight += 1;
        s.peak_in_flight = s.peak_in_flight.max(s.in_flight);
        let points = if req.method() == actix_web::http::Method::GET {
            1
        } else {
            5
        };
        let in_flight = s.in_flight;
        let limited = s
            .secondary
            .as_mut()
            .and_then(|l| l.admit(points, in_flight))
            .map(|seconds| Fault::Secondary {
                retry_after: Some(seconds),
            });
        // A refused request is not done, and takes no queued or random fault.
        let (queued, chaotic) = if limited.is_some() {
            (None, None)
        } else {
            let method = req.method().to_string();
            (
                s.faults.pop_front(),
                s.chaos.as_mut().and_then(|c| c.pick(&method, req.path())),
            )
        };
        let down = s
            .outage_until
            .is_some_and(|until| std::time::Instant::now() < until)
            .then_some(Fault::Status(502));
        (s.latency, limited.or(down).or(queued).or(chaotic))
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let if_none_match = header("if-none-match");
    let authorization = header("authorization");
    let mut conditional_hit = false;
    let mut after = None;
    let reply = match fault {
        Some(f @ (Fault::AfterWrite502 | Fault::AfterWriteDrop | Fault::AfterWriteStall(_))) => {
            let done = route_locked(&req, &body, &state);
            after = Some(f);
            if matches!(after, Some(Fault::AfterWrite502)) {
                Reply::error(502, "Bad Gateway")
            } else {
                done
            }
        }
        Some(Fault::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            route_locked(&req, &body, &state)
        }
        Some(Fault::Status(code)) => Reply::error(code, "Server Error"),
        Some(Fault::Secondary { retry_after }) => {
            let mut reply = Reply::error(
                403,
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
            );
            if let Some(seconds) = retry_after {
                reply
                    .headers
                    .push(("retry-after".into(), seconds.to_string()));
            }
            reply
        }
        Some(Fault::TooManyRequests { retry_after }) => {
            let mut reply = Reply::error(429, "Too Many Requests");
            if let Some(seconds) = retry_after {
                reply
                    .headers
                    .push(("retry-after".into(), seconds.to_string()));
            }
            reply
        }
        Some(Fault::BadCredentials) => Reply::error(401, "Bad credentials"),
        None => {
            let expected = state.lock().unwrap().token.clone();
            let exhausted = state.lock().unwrap().rate_remaining == 0;
            if expected.is_some_and(|t| authorization.as_deref() != Some(&format!("Bearer {t}"))) {
                Reply::error(401, "Bad credentials")
            } else if exhausted && !req.path().ends_with("/rate_limit") {
                Reply::error(403, "API rate limit exceeded for user ID 1.")
            } else {
                route_locked(&req, &body, &state)
            }
        }
    };

    let (mut builder, payload) = {
        let mut s = state.lock().unwrap();
        let mut builder =
            HttpResponse::build(actix_web::http::StatusCode::from_u16(reply.status).unwrap());
        let mut payload = None;
        if let Some(value) = &reply.body {
            let text = serde_json::to_vec(value).unwrap();
            if req.method() == actix_web::http::Method::GET && reply.status == 200 {
                let etag = format!("W/\"{}\"", hex::encode(&Sha256::digest(&text)[..16]));
                conditional_hit = if_none_match.as_deref() == Some(etag.as_str());
                builder.insert_header(("etag", etag));
            }
            payload = Some(text);
        }
        let free = conditional_hit || req.path().ends_with("/rate_limit") || s.rate_remaining == 0;
        if !free {
            s.rate_remaining = s.rate_remaining.saturating_sub(1);
        }
        let secondary = reply.status == 429
            || (reply.status == 403 && reply.headers.iter().any(|(k, _)| k == "retry-after"));
        if !secondary {
            builder
                .insert_header(("x-ratelimit-limit", s.rate_limit.to_string()))
                .insert_header(("x-ratelimit-remaining", s.rate_remaining.to_string()))
                .insert_header((
                    "x-ratelimit-used",
                    (s.rate_limit - s.rate_remaining).to_string(),
                ))
                .insert_header(("x-ratelimit-reset", s.rate_reset.to_string()))
                .insert_header(("x-ratelimit-resource", "core"));
        }
        for (k, v) in &reply.headers {
            builder.insert_header((k.as_str(), v.as_str()));
        }
        if let Some(TokenGrant::Classic(scopes)) = &s.grant {
            builder.insert_header(("x-oauth-scopes", scopes.join(", ")));
        }
        let status = if conditional_hit { 304 } else { reply.status };
        s.log.push(LoggedRequest {
            method: req.method().to_string(),
            path: match req.query_string() {
                "" => req.path().to_string(),
                q => format!("{}?{}", req.path(), q),
            },
            status,
            if_none_match,
            authorization,
            accept: header("accept"),
            api_version: header("x-github-api-version"),
            user_agent: header("user-agent"),
        });
        (builder, payload)
    };
    if let Some(Fault::AfterWriteStall(stall)) = after {
        // Logged and done; the answer waits.
        tokio::time::sleep(stall).await;
    }
    if after == Some(Fault::AfterWriteDrop) {
        // Headers go out, then the body stream fails: the connection is cut.
        let broken = futures_util::stream::once(async {
            Err::<web::Bytes, _>(std::io::Error::other("connection dropped by the fake"))
        });
        return builder.streaming(broken);
    }
    if conditional_hit {
        builder.status(actix_web::http::StatusCode::NOT_MODIFIED);
        return builder.finish();
    }
    match payload {
        Some(bytes) => builder
            .content_type("application/json; charset=utf-8")
            .body(bytes),
        None => builder.finish(),
    }
}

fn route_locked(req: &HttpRequest, body: &web::Bytes, state: &Mutex<State>) -> Reply {
    let mut s = state.lock().unwrap();
    route(req, body, &mut s)
}

fn route(req: &HttpRequest, body: &[u8], s: &mut State) -> Reply {
    let path = req.path().strip_prefix("/api/v3").unwrap_or(req.path());
    let segments: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    let query: HashMap<String, String> =
        web::Query::<HashMap<String, String>>::from_query(req.query_string())
            .map(|q| q.into_inner())
            .unwrap_or_default();
    let json_body: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(_) => return Reply::error(400, "Problems parsing JSON"),
        }
    };
    let method = req.method().as_str();
    if seg == ["rate_limit"] {
        let core = json!({"limit": s.rate_limit, "remaining": s.rate_remaining,
                          "used": s.rate_limit.saturating_sub(s.rate_remaining), "reset": s.rate_reset});
        return Reply::json(200, json!({"resources": {"core": core}, "rate": core}));
    }
    if seg == ["user"] && method == "GET" {
        return Reply::json(200, json!({"login": BOT_LOGIN, "id": 4242, "type": "User"}));
    }
    let ["repos", owner, name, rest @ ..] = seg.as_slice() else {
        return Reply::not_found();
    };
    let key = format!("{owner}/{name}").to_ascii_lowercase();
    if !s.repos.contains_key(&key) {
        return Reply::not_found();
    }
    let link_base = format!("http://{}{}", req.connection_info().host(), req.path());
    let number = |text: &str| text.parse::<u64>().ok();
    if let Some(grant) = &s.grant {
        let (permission, level) = needed_permission(method, rest);
        if grant.level(permission) < level {
            let mut reply = Reply::error(403, "Resource not accessible by personal access token");
            let wanted = if level == 2 { "write" } else { "read" };
            reply.headers.push((
                "x-accepted-github-permissions".into(),
                format!("{permission}={wanted}"),
            ));
            return reply;
        }
    }
    match (method, rest) {
        ("GET", []) => {
            let mut body = repo_json(&s.repos[&key]);
            let push = s.grant.as_ref().is_none_or(|g| g.level("contents") == 2);
            body["permissions"] = json!({"admin": false, "maintain": false, "push": push, "triage": push, "pull": true});
            Reply::json(200, body)
        }
        ("GET", ["contents", path @ ..]) => {
            let repo = &s.repos[&key];
            let git_ref = query
                .get("ref")
                .cloned()
                .unwrap_or_else(|| repo.default_branch.clone());
            contents(repo, &path.join("/"), &git_ref)
        }
        ("GET", ["git", "ref" | "refs", "heads", branch @ ..]) => {
            let repo = &s.repos[&key];
            let branch = branch.join("/");
            match git::branch_sha(&repo.bare, &branch) {
                Some(sha) => Reply::json(
                    200,
                    json!({"ref": format!("refs/heads/{branch}"),
                    "object": {"sha": sha, "type": "commit"}}),
                ),
                None => Reply::not_found(),
            }
        }
        ("POST", ["git", "refs"]) => create_ref(&s.repos[&key], &json_body),
        ("GET", ["pulls"]) => list_pulls(&s.repos[&key], &query, &link_base),
        ("POST", ["pulls"]) => create_pull(s, &key, &json_body, BOT_LOGIN),
        ("GET", ["pulls", n]) => match number(n).and_then(|n| find_pull(&s.repos[&key], n)) {
            Some(p) => Reply::json(200, pull_json(&s.repos[&key], p, true)),
            None => Reply::not_found(),
        },
        ("PATCH", ["pulls", n]) => match number(n) {
            Some(n) => update_pull(s, &key, n, &json_body),
            None => Reply::not_found(),
        },
        ("GET", ["pulls", n, "files"]) => {
            match number(n).and_then(|n| find_pull(&s.repos[&key], n)) {
                Some(p) => paginate(pull_files(&s.repos[&key], p), &query, &link_base),
                None => Reply::not_found(),
            }
        }
        ("PUT", ["pulls", n, "merge"]) => match number(n) {
            Some(n) => merge_pull(s, &key, n, &json_body),
            None => Reply::not_found(),
        },
        ("GET", ["pulls", n, "reviews"]) => {
            let n = number(n).unwrap_or_default();
            let repo = &s.repos[&key];
            let items = repo
                .reviews
                .iter()
                .filter(|r| r.pull == n)
                .map(review_json)
                .collect();
            paginate(items, &query, &link_base)
        }
        ("POST", ["pulls", n, "reviews"]) => match number(n) {
            Some(n) => create_review(s, &key, n, &json_body),
            None => Reply::not_found(),
        },
        ("GET", ["issues", "comments"]) => repo_comments(&s.repos[&key], &query, &link_base),
        ("GET", ["issues", n, "comments"]) => {
            let n = number(n).unwrap_or_default();
            let items = s.repos[&key]
                .comments
                .iter()
                .filter(|c| c.issue == n)
                .map(comment_json)
                .collect();
            paginate(items, &query, &link_base)
        }
        ("POST", ["issues", n, "comments"]) => match number(n) {
            Some(n) => create_comment(s, &key, n, &json_body),
            None => Reply::not_found(),
        },
        ("PATCH", ["issues", "comments", id]) => match number(id) {
            Some(id) => update_comment(s, &key, id, &json_body),
            None => Reply::not_found(),
        },
        ("POST", ["issues", n, "labels"]) => {
            let n = number(n).unwrap_or_default();
            let now = s.now();
            let repo = s.repos.get_mut(&key).unwrap();
            if let Some(pull) = repo.pulls.iter_mut().find(|p| p.number == n) {
                pull.updated_at = now.clone();
            }
            if let Some(issue) = repo.issues.iter_mut().find(|i| i.number == n) {
                issue.updated_at = now;
            }
            let Some(labels) = labels_of(repo, n) else {
                return Reply::not_found();
            };
            for label in json_body["labels"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|l| l.as_str())
            {
                if !labels.iter().any(|l| l == label) {
                    labels.push(label.to_string());
                }
            }
            Reply::json(
                200,
                json!(labels
                    .iter()
                    .map(|l| json!({"name": l}))
                    .collect::<Vec<_>>()),
            )
        }
        ("DELETE", ["issues", n, "labels", label]) => {
            let n = number(n).unwrap_or_default();
            let repo = s.repos.get_mut(&key).unwrap();
            let Some(labels) = labels_of(repo, n) else {
                return Reply::not_found();
            };
            let before = labels.len();
            labels.retain(|l| l != label);
            if before == labels.len() {
                return Reply::error(404, "Label does not exist");
            }
            Reply::json(
                200,
                json!(labels
                    .iter()
                    .map(|l| json!({"name": l}))
                    .collect::<Vec<_>>()),
            )
        }
        ("GET", ["issues"]) => list_issues(&s.repos[&key], &query, &link_base),
        ("GET", ["issues", n]) => {
            let repo = &s.repos[&key];
            let n = number(n).unwrap_or_default();
            if let Some(issue) = repo.issues.iter().find(|i| i.number == n) {
                return Reply::json(200, issue_json(repo, issue));
            }
            match find_pull(repo, n) {
                Some(p) => Reply::json(200, pull_as_issue(repo, p)),
                None => Reply::not_found(),
            }
        }
        ("PATCH", ["issues", n]) => {
            let n = number(n).unwrap_or_default();
            let now = s.now();
            let repo = s.repos.get_mut(&key).unwrap();
            let Some(issue) = repo.issues.iter_mut().find(|i| i.number == n) else {
                return Reply::not_found();
            };
            match json_body["state"].as_str() {
                Some("closed") => issue.state = "closed",
                Some("open") => issue.state = "open",
                _ => {}
            }
            issue.updated_at = now;
            let issue = issue.clone();
            Reply::json(200, issue_json(&s.repos[&key], &issue))
        }
        ("POST", ["issues", "comments", id, "reactions"]) => {
            let id = number(id).unwrap_or_default();
            let Some(content) = json_body["content"].as_str().map(str::to_string) else {
                return Reply::validation("Validation Failed", json!([{"field": "content"}]));
            };
            let repo = s.repos.get_mut(&key).unwrap();
            if !repo.comments.iter().any(|c| c.id == id) {
                return Reply::not_found();
            }
            let known = repo
                .reactions
                .iter()
                .any(|(c, what, user)| *c == id && *what == content && user == BOT_LOGIN);
            if !known {
                repo.reactions.push((id, content.clone(), BOT_LOGIN.into()));
            }
            Reply::json(
                if known { 200 } else { 201 },
                json!({"id": id + 70000, "content": content, "user": user_json(BOT_LOGIN)}),
            )
        }
        ("GET", ["commits", git_ref, "status"]) => {
            let repo = &s.repos[&key];
            let sha = resolve(repo, git_ref).unwrap_or_else(|| git_ref.to_string());
            let statuses: Vec<Value> = repo
                .statuses
                .get(&sha)
                .into_iter()
                .flatten()
                .map(|(context, state)| json!({"context": context, "state": state}))
                .collect();
            let state = if statuses
                .iter()
                .any(|s| s["state"] == "failure" || s["state"] == "error")
            {
                "failure"
            } else if statuses.iter().all(|s| s["state"] == "success") && !statuses.is_empty() {
                "success"
            } else {
                "pending"
            };
            let total = statuses.len();
            let mut reply = paginate(statuses, &query, &link_base);
            let page = reply.body.take().unwrap_or_default();
            reply.body =
                Some(json!({"state": state, "sha": sha, "total_count": total, "statuses": page}));
            reply
        }
        ("GET", ["commits", git_ref, "check-runs"]) => {
            let repo = &s.repos[&key];
            let sha = resolve(repo, git_ref).unwrap_or_else(|| git_ref.to_string());
            let runs: Vec<Value> = repo.check_runs.get(&sha).into_iter().flatten()
                .map(|(name, status, conclusion)| json!({"name": name, "status": status, "conclusion": conclusion, "head_sha": sha}))
                .collect();
            // Paged like GitHub: 30 a page unless `per_page` (up to 100), with `Link`.
            let total = runs.len();
            let mut reply = paginate(runs, &query, &link_base);
            let page = reply.body.take().unwrap_or_default();
            reply.body = Some(json!({"total_count": total, "check_runs": page}));
            reply
        }
        _ => Reply::not_found(),
    }
}

/// The fine-grained permission (and level: 1 read, 2 write) an endpoint needs, as GitHub's
/// `X-Accepted-GitHub-Permissions` would name it.
fn needed_permission(method: &str, rest: &[&str]) -> (&'static str, u8) {
    let level = if method == "GET" || method == "HEAD" {
        1
    } else {
        2
    };
    match rest {
        [] => ("metadata", 1),
        ["pulls", ..] => ("pull_requests", level),
        ["commits", _, "status"] | ["statuses", ..] => ("statuses", level),
        ["commits", _, "check-runs"] | ["check-runs", ..] => ("checks", level),
        ["issues", ..] => ("pull_requests", level),
        ["contents", ".github", "workflows", ..] if level == 2 => ("workflows", 2),
        _ => ("contents", level),
    }
}

/// A `nullable-simple-user`: null for a deleted account (an empty login here).
fn user_json(login: &str) -> Value {
    if login.is_empty() {
        Value::Null
    } else {
        json!({"login": login, "id": 1, "type": "User"})
    }
}

fn repo_json(repo: &Repo) -> Value {
    json!({
        "id": 1, "name": repo.name, "full_name": format!("{}/{}", repo.owner, repo.name),
        "owner": {"login": repo.owner}, "private": false,
        "default_branch": repo.default_branch,
        "clone_url": format!("file://{}", repo.bare.display()),
        "html_url": format!("https://github.com/{}/{}", repo.owner, repo.name),
    })
}

fn resolve(repo: &Repo, git_ref: &str) -> Option<String> {
    git(
        &repo.bare,
        &[
            "rev-parse",
            "--verify",
            "-q",
            &format!("{git_ref}^{{commit}}"),
        ],
    )
    .ok()
}

fn contents(repo: &Repo, path: &str, git_ref: &str) -> Reply {
    let object = format!("{git_ref}:{path}");
    let Ok(kind) = git(&repo.bare, &["cat-file", "-t", &object]) else {
        return Reply::not_found();
    };
    let sha = git(&repo.bare, &["rev-parse", &object]).unwrap();
    if kind == "blob" {
        let bytes = std::process::Command::new("git")
            .arg("-C")
            .arg(&repo.bare)
            .args(["cat-file", "blob", &sha])
            .output()
            .unwrap()
            .stdout;
        let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
        // GitHub wraps base64 content at 60 columns.
        let wrapped: Vec<String> = encoded
            .as_bytes()
            .chunks(60)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        let name = path.rsplit('/').next().unwrap_or(path);
        return Reply::json(
            200,
            json!({"type": "file", "encoding": "base64", "size": bytes.len(),
            "name": name, "path": path, "sha": sha, "content": wrapped.join("\n") + "\n"}),
        );
    }
    let listing = git(&repo.bare, &["ls-tree", &object]).unwrap();
    let entries: Vec<Value> = listing
        .lines()
        .filter_map(|line| {
            let (meta, name) = line.split_once('\t')?;
            let mut parts = meta.split_whitespace();
            let (mode, _, sha) = (parts.next()?, parts.next()?, parts.next()?);
            let kind = match mode {
                "040000" => "dir",
                "120000" => "symlink",
                "160000" => "submodule",
                _ => "file",
            };
            let full = if path.is_empty() {
                name.to_string()
            } else {
                format!("{path}/{name}")
            };
            Some(json!({"type": kind, "name": name, "path": full, "sha": sha}))
        })
        .collect();
    Reply::json(200, json!(entries))
}

fn create_ref(repo: &Repo, body: &Value) -> Reply {
    let (Some(name), Some(sha)) = (body["ref"].as_str(), body["sha"].as_str()) else {
        return Reply::validation("Invalid request.", json!(["ref and sha are required"]));
    };
    let Some(branch) = name.strip_prefix("refs/heads/") else {
        return Reply::validation(
            "Reference name must start with 'refs/' and have at least two slashes.",
            json!([]),
        );
    };
    if git::branch_sha(&repo.bare, branch).is_some() {
        return Reply::validation("Reference already exists", json!([]));
    }
    if git(&repo.bare, &["update-ref", name, sha, ""]).is_err() {
        return Reply::validation("Object does not exist", json!([]));
    }
    Reply::json(
        201,
        json!({"ref": name, "object": {"sha": sha, "type": "commit"}}),
    )
}

/// Issues and PRs share one sequence of numbers.
fn next_number(repo: &Repo) -> u64 {
    let pulls = repo.pulls.iter().map(|p| p.number);
    let issues = repo.issues.iter().map(|i| i.number);
    pulls.chain(issues).max().unwrap_or(0) + 1
}

fn issue_json(repo: &Repo, issue: &Issue) -> Value {
    let full_name = format!("{}/{}", repo.owner, repo.name);
    json!({
        "id": issue.number + 9000, "number": issue.number, "state": issue.state,
        "title": issue.title, "body": issue.body, "user": user_json(&issue.user),
        "labels": issue.labels.iter().map(|l| json!({"name": l})).collect::<Vec<_>>(),
        "html_url": format!("https://github.com/{full_name}/issues/{}", issue.number),
        "created_at": issue.created_at, "updated_at": issue.updated_at,
        "author_association": issue.association, "comments": repo.comments.iter().filter(|c| c.issue == issue.number).count(),
    })
}

/// A PR as `GET /issues` shows it: an issue with a `pull_request` key.
fn pull_as_issue(repo: &Repo, pull: &Pull) -> Value {
    let mut value = pull_json(repo, pull, false);
    value["pull_request"] =
        json!({"url": format!("/repos/{}/{}/pulls/{}", repo.owner, repo.name, pull.number)});
    value
}

fn list_issues(repo: &Repo, query: &HashMap<String, String>, link_base: &str) -> Reply {
    let wanted = query.get("state").map(String::as_str).unwrap_or("open");
    let labels: Vec<&str> = query
        .get("labels")
        .map(|l| l.split(',').filter(|l| !l.is_empty()).collect())
        .unwrap_or_default();
    let keep = |state: &str, have: &[String]| {
        (wanted == "all" || state == wanted) && labels.iter().all(|l| have.iter().any(|h| h == l))
    };
    let mut items: Vec<(u64, Value)> = repo
        .issues
        .iter()
        .filter(|i| keep(i.state, &i.labels))
        .map(|i| (i.number, issue_json(repo, i)))
        .chain(
            repo.pulls
                .iter()
                .filter(|p| keep(p.state, &p.labels))
                .map(|p| (p.number, pull_as_issue(repo, p))),
        )
        .collect();
    items.sort_by_key(|(n, _)| std::cmp::Reverse(*n));
    paginate(
        items.into_iter().map(|(_, v)| v).collect(),
        query,
        link_base,
    )
}

/// The labels of issue or PR `number`, to change in place.
fn labels_of(repo: &mut Repo, number: u64) -> Option<&mut Vec<String>> {
    if let Some(pull) = repo.pulls.iter_mut().find(|p| p.number == number) {
        return Some(&mut pull.labels);
    }
    repo.issues
        .iter_mut()
        .find(|i| i.number == number)
        .map(|i| &mut i.labels)
}

/// GitHub's closing keywords in a merged PR's body close those issues.
fn closes(body: &str) -> Vec<u64> {
    let lower = body.to_ascii_lowercase();
    let mut found = Vec::new();
    for word in [
        "close", "closes", "closed", "fix", "fixes", "fixed", "resolve", "resolves", "resolved",
    ] {
        for (at, _) in lower.match_indices(&format!("{word} #")) {
            let boundary = at == 0 || !lower.as_bytes()[at - 1].is_ascii_alphanumeric();
            let digits: String = lower[at + word.len() + 2..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if let (true, Ok(n)) = (boundary, digits.parse()) {
                found.push(n);
            }
        }
    }
    found
}

fn find_pull(repo: &Repo, number: u64) -> Option<&Pull> {
    repo.pulls.iter().find(|p| p.number == number)
}

fn head_sha(repo: &Repo, pull: &Pull) -> String {
    pull.closed_head_sha
        .clone()
        .or_else(|| git::branch_sha(&repo.bare, &pull.head_ref))
        .unwrap_or_default()
}

fn base_sha(repo: &Repo, pull: &Pull) -> String {
    pull.closed_base_sha
        .clone()
        .or_else(|| git::branch_sha(&repo.bare, &pull.base_ref))
        .unwrap_or_default()
}

fn pull_json(repo: &Repo, pull: &Pull, full: bool) -> Value {
    let full_name = format!("{}/{}", repo.owner, repo.name);
    let side = |branch: &str, sha: String| {
        json!({"label": format!("{}:{branch}", repo.owner), "ref": branch,
        "sha": sha, "repo": {"full_name": full_name}})
    };
    let mut value = json!({
        "id": pull.number + 5000, "number": pull.number, "state": pull.state, "locked": false,
        "title": pull.title, "body": pull.body, "draft": pull.draft,
        "user": user_json(&pull.user),
        "labels": pull.labels.iter().map(|l| json!({"name": l})).collect::<Vec<_>>(),
        "html_url": format!("https://github.com/{full_name}/pull/{}", pull.number),
        "created_at": pull.created_at, "updated_at": pull.updated_at,
        "closed_at": if pull.state == "closed" { json!(pull.updated_at) } else { Value::Null },
        "merged_at": pull.merged_at, "merge_commit_sha": pull.merge_commit_sha,
        "head": side(&pull.head_ref, head_sha(repo, pull)),
        "base": side(&pull.base_ref, base_sha(repo, pull)),
        "author_association": pull.association,
    });
    if full {
        value["merged"] = json!(pull.merged_at.is_some());
        value["mergeable"] = json!(pull.state == "open");
    }
    value
}

fn list_pulls(repo: &Repo, query: &HashMap<String, String>, link_base: &str) -> Reply {
    let wanted = query.get("state").map(String::as_str).unwrap_or("open");
    let mut pulls: Vec<&Pull> = repo
        .pulls
        .iter()
        .filter(|p| wanted == "all" || p.state == wanted)
        .filter(|p| match query.get("head") {
            // `head=owner:branch`, as GitHub filters it.
            Some(head) => head.eq_ignore_ascii_case(&format!("{}:{}", repo.owner, p.head_ref)),
            None => true,
        })
        .collect();
    // sort=updated&direction=desc (what gaffer asks for); default is newest first.
    if query.get("sort").map(String::as_str) == Some("updated") {
        pulls.sort_by(|a, b| {
            b.updated_at
                .cmp(&a.updated_at)
                .then(b.number.cmp(&a.number))
        });
    } else {
        pulls.sort_by_key(|p| std::cmp::Reverse(p.number));
    }
    let items = pulls
        .into_iter()
        .map(|p| pull_json(repo, p, false))
        .collect();
    paginate(items, query, link_base)
}

/// One page of `items` with GitHub's `Link` header (`per_page` up to 100, default 30).
fn paginate(items: Vec<Value>, query: &HashMap<String, String>, link_base: &str) -> Reply {
    let per_page = query
        .get("per_page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    let page = query
        .get("page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let last = items.len().div_ceil(per_page).max(1);
    let slice: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    let mut reply = Reply::json(200, json!(slice));
    if page < last {
        let mut params: Vec<(String, String)> = query
            .iter()
            .filter(|(k, _)| k.as_str() != "page")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        params.sort();
        let link = |p: usize| {
            let mut all = params.clone();
            all.push(("page".into(), p.to_string()));
            let q: Vec<String> = all.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("<{link_base}?{}>", q.join("&"))
        };
        reply.headers.push((
            "link".into(),
            format!(
                "{}; rel=\"next\", {}; rel=\"last\"",
                link(page + 1),
                link(last)
            ),
        ));
    }
    reply
}

fn create_pull(s: &mut State, key: &str, body: &Value, user: &str) -> Reply {
    let repo = &s.repos[key];
    let field = |name: &str| body[name].as_str().map(str::to_string);
    let (Some(title), Some(head), Some(base)) = (field("title"), field("head"), field("base"))
    else {
        return Reply::validation(
            "Validation Failed",
            json!([{"resource": "PullRequest", "code": "missing_field", "field": "title/head/base"}]),
        );
    };
    let head = head
        .split_once(':')
        .map(|(_, b)| b.to_string())
        .unwrap_or(head);
    for (name, branch) in [("base", &base), ("head", &head)] {
        if git::branch_sha(&repo.bare, branch).is_none() {
            return Reply::validation(
                "Validation Failed",
                json!([{"resource": "PullRequest", "code": "invalid", "field": name}]),
            );
        }
    }
    if repo
        .pulls
        .iter()
        .any(|p| p.state == "open" && p.head_ref == head && p.base_ref == base)
    {
        return Reply::validation(
            "Validation Failed",
            json!([{"resource": "PullRequest", "code": "custom",
            "message": format!("A pull request already exists for {}:{head}.", repo.owner)}]),
        );
    }
    let ahead = git(
        &repo.bare,
        &["rev-list", "--count", &format!("{base}..{head}")],
    )
    .unwrap_or_default();
    if ahead == "0" {
        return Reply::validation(
            "Validation Failed",
            json!([{"resource": "PullRequest", "code": "custom",
            "message": format!("No commits between {base} and {head}")}]),
        );
    }
    let now = s.now();
    let repo = s.repos.get_mut(key).unwrap();
    let number = next_number(repo);
    let pull = Pull {
        number,
        title,
        body: field("body").unwrap_or_default(),
        state: "open",
        draft: body["draft"].as_bool().unwrap_or(false),
        head_ref: head,
        base_ref: base,
        closed_head_sha: None,
        closed_base_sha: None,
        merged_at: None,
        merge_commit_sha: None,
        user: user.to_string(),
        // gaffer's token is a bot without a role on the repo: its PRs are recognised by
        // login (GET /user), never by association.
        association: if user == BOT_LOGIN { "NONE" } else { "OWNER" }.to_string(),
        labels: Vec::new(),
        created_at: now.clone(),
        updated_at: now,
    };
    repo.pulls.push(pull.clone());
    let repo = &s.repos[key];
    Reply::json(201, pull_json(repo, &pull, true))
}

fn update_pull(s: &mut State, key: &str, number: u64, body: &Value) -> Reply {
    let now = s.now();
    let repo = s.repos.get_mut(key).unwrap();
    let bare = repo.bare.clone();
    let Some(pull) = repo.pulls.iter_mut().find(|p| p.number == number) else {
        return Reply::not_found();
    };
    if let Some(title) = body["title"].as_str() {
        pull.title = title.to_string();
    }
    if let Some(text) = body["body"].as_str() {
        pull.body = text.to_string();
    }
    match body["state"].as_str() {
        Some("closed") if pull.state == "open" => {
            pull.state = "closed";
            pull.closed_head_sha = git::branch_sha(&bare, &pull.head_ref);
            pull.closed_base_sha = git::branch_sha(&bare, &pull.base_ref);
        }
        Some("open") if pull.state == "closed" && pull.merged_at.is_none() => {
            pull.state = "open";
            pull.closed_head_sha = None;
            pull.closed_base_sha = None;
        }
        _ => {}
    }
    pull.updated_at = now;
    let pull = pull.clone();
    Reply::json(200, pull_json(&s.repos[key], &pull, true))
}

fn pull_files(repo: &Repo, pull: &Pull) -> Vec<Value> {
    let range = format!("{}...{}", base_sha(repo, pull), head_sha(repo, pull));
    let range = if pull.merged_at.is_some() {
        // After a merge base...head is empty; show what the PR brought instead.
        format!(
            "{}..{}",
            pull.closed_base_sha.clone().unwrap_or_default(),
            head_sha(repo, pull)
        )
    } else {
        range
    };
    let status = git(&repo.bare, &["diff", "--name-status", &range]).unwrap_or_default();
    let numstat = git(&repo.bare, &["diff", "--numstat", &range]).unwrap_or_default();
    status.lines().zip(numstat.lines()).filter_map(|(st, num)| {
        let (code, file) = st.split_once('\t')?;
        let mut n = num.split('\t');
        let additions = n.next()?.parse::<u64>().unwrap_or(0);
        let deletions = n.next()?.parse::<u64>().unwrap_or(0);
        let diff = git(&repo.bare, &["diff", &range, "--", file]).unwrap_or_default();
        let patch = diff.find("@@").map(|at| diff[at..].to_string());
        let status = match code.chars().next() { Some('A') => "added", Some('D') => "removed", Some('R') => "renamed", _ => "modified" };
        Some(json!({"filename": file, "status": status, "additions": additions, "deletions": deletions,
                    "changes": additions + deletions, "patch": patch}))
    }).collect()
}

fn merge_pull(s: &mut State, key: &str, number: u64, body: &Value) -> Reply {
    let now = s.now();
    let repo = s.repos.get_mut(key).unwrap();
    let bare = repo.bare.clone();
    let Some(pull) = repo.pulls.iter_mut().find(|p| p.number == number) else {
        return Reply::not_found();
    };
    if pull.state != "open" {
        return Reply::error(405, "Pull Request is not mergeable");
    }
    let (Some(base), Some(head)) = (
        git::branch_sha(&bare, &pull.base_ref),
        git::branch_sha(&bare, &pull.head_ref),
    ) else {
        return Reply::error(405, "Pull Request is not mergeable");
    };
    if body["sha"].as_str().is_some_and(|sha| sha != head) {
        return Reply::error(
            409,
            "Head branch was modified. Review and try the merge again.",
        );
    }
    let Ok(tree) = git(&bare, &["merge-tree", "--write-tree", &base, &head]) else {
        return Reply::error(405, "Pull Request is not mergeable");
    };
    let tree = tree.lines().next().unwrap_or_default().to_string();
    let message = format!(
        "Merge pull request #{number} from {}/{}",
        repo.owner, pull.head_ref
    );
    let squash = matches!(body["merge_method"].as_str(), Some("squash" | "rebase"));
    let mut args = vec!["commit-tree", tree.as_str(), "-p", base.as_str()];
    if !squash {
        args.extend(["-p", head.as_str()]);
    }
    args.extend(["-m", message.as_str()]);
    let commit = git(&bare, &args).unwrap();
    git(
        &bare,
        &[
            "update-ref",
            &format!("refs/heads/{}", pull.base_ref),
            &commit,
            &base,
        ],
    )
    .unwrap();
    pull.state = "closed";
    pull.closed_head_sha = Some(head);
    pull.closed_base_sha = Some(base);
    pull.merged_at = Some(now.clone());
    pull.merge_commit_sha = Some(commit.clone());
    pull.updated_at = now.clone();
    let into_default = pull.base_ref == repo.default_branch;
    let closing = closes(&pull.body);
    if into_default {
        for issue in repo
            .issues
            .iter_mut()
            .filter(|i| closing.contains(&i.number))
        {
            issue.state = "closed";
            issue.updated_at = now.clone();
        }
    }
    Reply::json(
        200,
        json!({"sha": commit, "merged": true, "message": "Pull Request successfully merged"}),
    )
}

fn review_json(review: &PullReview) -> Value {
    json!({"id": review.id, "user": user_json(&review.user), "body": review.body, "state": review.state,
           "commit_id": review.commit_id, "submitted_at": "2026-01-01T00:00:00Z"})
}

fn create_review(s: &mut State, key: &str, number: u64, body: &Value) -> Reply {
    let id = s.id();
    let repo = s.repos.get_mut(key).unwrap();
    let Some(pull) = repo.pulls.iter().find(|p| p.number == number).cloned() else {
        return Reply::not_found();
    };
    let text = body["body"].as_str().unwrap_or_default().to_string();
    let state = match body["event"].as_str() {
        Some("COMMENT") => "COMMENTED",
        Some("APPROVE") => "APPROVED",
        Some("REQUEST_CHANGES") => "CHANGES_REQUESTED",
        None => "PENDING",
        Some(_) => return Reply::validation("Unprocessable Entity", json!(["event is invalid"])),
    };
    if state != "APPROVED" && state != "PENDING" && text.trim().is_empty() {
        return Reply::validation(
            "Unprocessable Entity",
            json!(["Body is required for this event"]),
        );
    }
    let commit_id = body["commit_id"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| head_sha(repo, &pull));
    let review = PullReview {
        id,
        pull: number,
        commit_id,
        body: text,
        state,
        user: BOT_LOGIN.into(),
    };
    repo.reviews.push(review.clone());
    Reply::json(200, review_json(&review))
}

fn comment_json(c: &IssueComment) -> Value {
    let kind = if c.on_pull { "pull" } else { "issues" };
    json!({"id": c.id, "body": c.body, "user": user_json(&c.user), "created_at": c.created_at,
           "updated_at": c.updated_at, "author_association": c.association,
           "issue_url": format!("https://api.github.com/repos/{}/issues/{}", c.repo, c.issue),
           "html_url": format!("https://github.com/{}/{kind}/{}#issuecomment-{}", c.repo, c.issue, c.id)})
}

/// `GET /issues/comments`: every conversation comment of the repo, `since` an updated
/// time (inclusive), sorted by `sort` in `direction`.
fn repo_comments(repo: &Repo, query: &HashMap<String, String>, link_base: &str) -> Reply {
    let since = query.get("since").cloned().unwrap_or_default();
    let mut items: Vec<&IssueComment> = repo
        .comments
        .iter()
        .filter(|c| c.updated_at >= since)
        .collect();
    let by_updated = query.get("sort").map(String::as_str) == Some("updated");
    items.sort_by(|a, b| {
        if by_updated {
            a.updated_at.cmp(&b.updated_at).then(a.id.cmp(&b.id))
        } else {
            a.id.cmp(&b.id)
        }
    });
    if query.get("direction").map(String::as_str) == Some("desc") {
        items.reverse();
    }
    paginate(
        items.into_iter().map(comment_json).collect(),
        query,
        link_base,
    )
}

fn create_comment(s: &mut State, key: &str, number: u64, body: &Value) -> Reply {
    let Some(text) = body["body"].as_str() else {
        return Reply::validation(
            "Validation Failed",
            json!([{"resource": "IssueComment", "code": "missing_field", "field": "body"}]),
        );
    };
    let repo = &s.repos[key];
    if !repo.pulls.iter().any(|p| p.number == number)
        && !repo.issues.iter().any(|i| i.number == number)
    {
        return Reply::not_found();
    }
    let on_pull = repo.pulls.iter().any(|p| p.number == number);
    let full_name = format!("{}/{}", repo.owner, repo.name);
    let id = s.id();
    let now = s.now();
    let comment = IssueComment {
        id,
        issue: number,
        body: text.to_string(),
        user: BOT_LOGIN.into(),
        association: "NONE".into(),
        repo: full_name,
        on_pull,
        created_at: now.clone(),
        updated_at: now,
    };
    s.repos.get_mut(key).unwrap().comments.push(comment.clone());
    let mut reply = Reply::json(201, comment_json(&comment));
    reply.headers.push((
        "location".into(),
        format!("/repos/{key}/issues/comments/{id}"),
    ));
    reply
}

fn update_comment(s: &mut State, key: &str, id: u64, body: &Value) -> Reply {
    let now = s.now();
    let repo = s.repos.get_mut(key).unwrap();
    let Some(comment) = repo.comments.iter_mut().find(|c| c.id == id) else {
        return Reply::not_found();
    };
    if let Some(text) = body["body"].as_str() {
        comment.body = text.to_string();
        comment.updated_at = now;
    }
    Reply::json(200, comment_json(comment))
}

fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(byte) = u8::from_str_radix(&segment[i + 1..i + 3], 16) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a Unix time (civil-from-days, proleptic Gregorian).
fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

impl FakeGithub {
    /// Pushes one commit to a new branch `head` off `main` and opens a PR for it.
    pub fn open_pull_after_commit(&self, full_name: &str, head: &str) -> u64 {
        let bare = self.bare_path(full_name);
        let main = git::branch_sha(&bare, "main").unwrap();
        git(&bare, &["update-ref", &format!("refs/heads/{head}"), &main]).unwrap();
        let file = format!("work/{}.txt", head.replace('/', "_"));
        self.commit(full_name, head, &[(file.as_str(), "work\n")], "work");
        self.open_pull(full_name, head, "main", head, "")
    }
}

impl FakeGithub {
    /// A review by `login` (a person): `state` is `APPROVED`, `CHANGES_REQUESTED`,
    /// `COMMENTED` or `DISMISSED`, on the PR's current head.
    pub fn review_as(&self, full_name: &str, number: u64, login: &str, state: &'static str) {
        let mut state_ = self.lock();
        let id = state_.id();
        let repo = state_
            .repos
            .get_mut(&full_name.to_ascii_lowercase())
            .expect("repo");
        let pull = repo
            .pulls
            .iter()
            .find(|p| p.number == number)
            .cloned()
            .expect("pull");
        let commit_id = head_sha(repo, &pull);
        repo.reviews.push(PullReview {
            id,
            pull: number,
            commit_id,
            body: format!("{state} by {login}"),
            state,
            user: login.into(),
        });
    }
}
