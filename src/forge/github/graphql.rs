//! Batch change detection over GitHub's GraphQL API: one query reads, for up to
//! [`MAX_BATCH`] repos at once, the head of each one's default branch and its open pull
//! requests (number, head SHA, head ref, author, association, `updatedAt`). The poller
//! compares that with what it stored and sends its conditional REST calls only for the
//! repos that changed.
//!
//! Repos are passed as GraphQL variables (`$o0`, `$n0`, `$b0`, ...), never spliced into
//! the query text, so a name cannot change the query. The answer is hostile input: read
//! up to [`MAX_ANSWER_BYTES`], parsed into closed shapes (unknown fields refused), every
//! value checked (SHAs are hex, refs and logins bounded, associations from GitHub's
//! list), and error messages cut short and stripped of control characters.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::client::GithubClient;
use crate::forge::ForgeError;

/// Most repos in one query (GitHub: keep a query under 500,000 nodes and 10 s).
pub const MAX_BATCH: usize = 100;
/// Open PRs read per repo; a repo with more is polled over REST (which pages).
pub const OPEN_PULLS: usize = 100;
/// The most bytes of one answer read (100 repos x 100 PRs is about 3 MB).
pub const MAX_ANSWER_BYTES: usize = 8 * 1024 * 1024;
/// Longest error text kept from an answer.
const MAX_MESSAGE: usize = 200;

/// One repo to ask about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoQuery {
    pub owner: String,
    pub name: String,
    /// The branch gaffer treats as the default (the registry's `default_branch`).
    pub branch: String,
}

/// One open PR as the batch sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenPull {
    pub number: u64,
    pub head_sha: String,
    pub head_ref: String,
    /// `None` for a deleted account.
    pub author: Option<String>,
    pub association: String,
    pub updated_at: String,
}

/// What one repo looks like now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoSnapshot {
    /// The default branch's head; `None` when the branch does not exist.
    pub default_sha: Option<String>,
    /// Every open PR, or `None` when it has more than [`OPEN_PULLS`] (not all were read).
    pub open: Option<Vec<OpenPull>>,
}

impl RepoSnapshot {
    /// Open PR number -> head SHA, as the poller stores it; `None` when incomplete.
    pub fn open_heads(&self) -> Option<BTreeMap<u64, String>> {
        self.open.as_ref().map(|pulls| {
            pulls
                .iter()
                .map(|p| (p.number, p.head_sha.clone()))
                .collect()
        })
    }
}

/// The answer to one batch: per repo (in the order asked) its snapshot or why there is
/// none (not found, no access: that repo goes to REST, which says it properly).
#[derive(Debug, Clone)]
pub struct BatchAnswer {
    pub repos: Vec<Result<RepoSnapshot, String>>,
    /// The query's cost as GitHub counted it (`rateLimit.cost`), else the estimate.
    pub cost: u32,
}

/// Why a batch has no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchError {
    /// GraphQL is not there or not for this token (404, 401, 403, an `errors` array with
    /// no data, insufficient scopes, an answer that is not what was asked): fall back to
    /// REST and ask again later.
    Refused(String),
    /// A passing failure (5xx, timeout, a rate limit): REST for these repos this cycle.
    Transient(String),
}

impl BatchError {
    pub fn message(&self) -> &str {
        match self {
            BatchError::Refused(m) | BatchError::Transient(m) => m,
        }
    }
}

/// GraphQL points a batch of `repos` costs, as GitHub computes a query's cost: the
/// requests its connections need (one `pullRequests` page per repo) over 100, rounded,
/// at least 1.
pub fn estimated_cost(repos: usize) -> u32 {
    (((repos + 50) / 100).max(1)) as u32
}

/// The query and variables for `repos`.
pub fn request_body(repos: &[RepoQuery]) -> Value {
    let mut variables = Map::new();
    for (i, repo) in repos.iter().enumerate() {
        variables.insert(format!("o{i}"), json!(repo.owner));
        variables.insert(format!("n{i}"), json!(repo.name));
        variables.insert(
            format!("b{i}"),
            json!(format!("refs/heads/{}", repo.branch)),
        );
    }
    json!({"query": query_text(repos.len()), "variables": variables})
}

/// The query text for `count` repos: aliases `r0..`, variables `$o{i}` (owner), `$n{i}`
/// (name), `$b{i}` (`refs/heads/BRANCH`), and the query's `rateLimit`.
pub fn query_text(count: usize) -> String {
    let mut params = Vec::with_capacity(count);
    let mut fields = String::new();
    for i in 0..count {
        params.push(format!("$o{i}: String!, $n{i}: String!, $b{i}: String!"));
        fields.push_str(&format!(
            " r{i}: repository(owner: $o{i}, name: $n{i}) {{ ref(qualifiedName: $b{i}) {{ target {{ oid }} }} \
             pullRequests(states: OPEN, first: {OPEN_PULLS}, orderBy: {{field: UPDATED_AT, direction: DESC}}) \
             {{ totalCount nodes {{ number headRefOid headRefName updatedAt authorAssociation author {{ login }} }} }} }}"
        ));
    }
    format!(
        "query Watch({}) {{{fields} rateLimit {{ cost remaining resetAt }} }}",
        params.join(", ")
    )
}

/// Asks GitHub about `repos` (at most [`MAX_BATCH`]) in one query.
pub async fn fetch(client: &GithubClient, repos: &[RepoQuery]) -> Result<BatchAnswer, BatchError> {
    debug_assert!(repos.len() <= MAX_BATCH);
    let estimate = estimated_cost(repos.len());
    let (status, body) = client
        .post_graphql(&request_body(repos), estimate, MAX_ANSWER_BYTES)
        .await
        .map_err(|e| match e {
            ForgeError::Protocol { message } => BatchError::Refused(message),
            ForgeError::Unauthorized => BatchError::Refused("GraphQL answered 401".into()),
            other => BatchError::Transient(other.to_string()),
        })?;
    match status {
        200 => parse(&body, repos.len(), estimate),
        500..=599 => Err(BatchError::Transient(format!("GraphQL answered {status}"))),
        _ => Err(BatchError::Refused(format!(
            "GraphQL answered {status}: {}",
            rest_message(&body)
        ))),
    }
}

/// A REST-style error body's `message`, cleaned.
fn rest_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Message {
        message: String,
    }
    match serde_json::from_slice::<Message>(body) {
        Ok(m) => clean(&m.message),
        Err(_) => clean(&String::from_utf8_lossy(
            &body[..body.len().min(MAX_MESSAGE)],
        )),
    }
}

/// At most [`MAX_MESSAGE`] characters, control characters replaced.
fn clean(text: &str) -> String {
    text.chars()
        .take(MAX_MESSAGE)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    data: Option<Map<String, Value>>,
    errors: Option<Vec<AnswerError>>,
    #[serde(default, rename = "extensions")]
    _extensions: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct AnswerError {
    #[serde(default)]
    message: String,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    path: Option<Vec<Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RepoNode {
    #[serde(rename = "ref")]
    branch: Option<RefNode>,
    #[serde(rename = "pullRequests")]
    pull_requests: PullConnection,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefNode {
    target: Option<TargetNode>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetNode {
    oid: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PullConnection {
    #[serde(rename = "totalCount")]
    total_count: u64,
    nodes: Vec<PullNode>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PullNode {
    number: u64,
    #[serde(rename = "headRefOid")]
    head_ref_oid: String,
    #[serde(rename = "headRefName")]
    head_ref_name: String,
    #[serde(rename = "updatedAt")]
    updated_at: String,
    #[serde(rename = "authorAssociation")]
    author_association: String,
    author: Option<Author>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Author {
    login: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RateLimitNode {
    cost: u32,
    #[serde(default, rename = "remaining")]
    _remaining: Option<u64>,
    #[serde(default, rename = "resetAt")]
    _reset_at: Option<String>,
}

/// GitHub's `CommentAuthorAssociation` values.
const ASSOCIATIONS: &[&str] = &[
    "COLLABORATOR",
    "CONTRIBUTOR",
    "FIRST_TIMER",
    "FIRST_TIME_CONTRIBUTOR",
    "MANNEQUIN",
    "MEMBER",
    "NONE",
    "OWNER",
];

fn refused(message: impl Into<String>) -> BatchError {
    BatchError::Refused(message.into())
}

/// Reads a 200 answer for `count` repos.
pub fn parse(body: &[u8], count: usize, estimate: u32) -> Result<BatchAnswer, BatchError> {
    let answer: Answer = serde_json::from_slice(body).map_err(|e| {
        refused(format!(
            "the GraphQL answer is not what was asked: {}",
            clean(&e.to_string())
        ))
    })?;
    let errors = answer.errors.unwrap_or_default();
    // Errors that belong to one repo (`path: ["r3"]`) leave that repo to REST.
    let mut per_repo: BTreeMap<usize, String> = BTreeMap::new();
    let mut global = Vec::new();
    for error in &errors {
        let alias = error
            .path
            .as_ref()
            .and_then(|p| p.first())
            .and_then(Value::as_str)
            .and_then(alias_index)
            .filter(|i| *i < count);
        let text = match &error.kind {
            Some(kind) => format!("{}: {}", clean(kind), clean(&error.message)),
            None => clean(&error.message),
        };
        match alias {
            Some(i) => {
                per_repo.entry(i).or_insert(text);
            }
            None => global.push((error.kind.clone(), text)),
        }
    }
    if let Some((kind, text)) = global.first() {
        let limited = kind.as_deref() == Some("RATE_LIMITED");
        let text = format!("GraphQL refused the query: {text}");
        return Err(if limited {
            BatchError::Transient(text)
        } else {
            refused(text)
        });
    }
    let Some(mut data) = answer.data else {
        return Err(refused("the GraphQL answer has no data"));
    };
    let cost = match data.remove("rateLimit") {
        None | Some(Value::Null) => estimate,
        Some(v) => {
            serde_json::from_value::<RateLimitNode>(v)
                .map_err(|e| refused(format!("rateLimit: {}", clean(&e.to_string()))))?
                .cost
        }
    };
    let mut repos: Vec<Result<RepoSnapshot, String>> = (0..count)
        .map(|i| {
            Err(per_repo
                .get(&i)
                .cloned()
                .unwrap_or_else(|| "missing from the GraphQL answer".to_string()))
        })
        .collect();
    for (key, value) in data {
        let Some(i) = alias_index(&key).filter(|i| *i < count) else {
            return Err(refused(format!(
                "the GraphQL answer has a field that was not asked for: {}",
                clean(&key)
            )));
        };
        if value.is_null() {
            continue; // not found or no access: its error says which, REST will too
        }
        let node: RepoNode = serde_json::from_value(value)
            .map_err(|e| refused(format!("{key}: {}", clean(&e.to_string()))))?;
        repos[i] = Ok(snapshot(node).map_err(|e| refused(format!("{key}: {e}")))?);
    }
    Ok(BatchAnswer { repos, cost })
}

fn alias_index(alias: &str) -> Option<usize> {
    let digits = alias.strip_prefix('r')?;
    if digits.is_empty() || digits.len() > 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn snapshot(node: RepoNode) -> Result<RepoSnapshot, String> {
    let default_sha = match node.branch.and_then(|b| b.target) {
        Some(target) => Some(checked_sha(target.oid)?),
        None => None,
    };
    let connection = node.pull_requests;
    if connection.nodes.len() > OPEN_PULLS {
        return Err(format!("more than {OPEN_PULLS} PRs in one page"));
    }
    let mut open = Vec::with_capacity(connection.nodes.len());
    for pull in connection.nodes {
        if pull.number == 0 {
            return Err("a PR numbered 0".into());
        }
        if !ASSOCIATIONS.contains(&pull.author_association.as_str()) {
            return Err(format!(
                "unknown authorAssociation {:?}",
                clean(&pull.author_association)
            ));
        }
        let author = match pull.author {
            Some(a) if a.login.len() <= 100 && !a.login.chars().any(char::is_control) => {
                Some(a.login)
            }
            Some(_) => return Err("an author login that is too long or not text".into()),
            None => None,
        };
        if pull.head_ref_name.is_empty()
            || pull.head_ref_name.len() > 255
            || pull.head_ref_name.chars().any(char::is_control)
        {
            return Err("a head ref name that is empty, too long or not text".into());
        }
        if pull.updated_at.len() > 40 || pull.updated_at.chars().any(char::is_control) {
            return Err("an updatedAt that is not a timestamp".into());
        }
        open.push(OpenPull {
            number: pull.number,
            head_sha: checked_sha(pull.head_ref_oid)?,
            head_ref: pull.head_ref_name,
            author,
            association: pull.author_association,
            updated_at: pull.updated_at,
        });
    }
    let complete = connection.total_count as usize == open.len();
    Ok(RepoSnapshot {
        default_sha,
        open: complete.then_some(open),
    })
}

/// A git object id: 40 (SHA-1) or 64 (SHA-256) hex digits.
fn checked_sha(oid: String) -> Result<String, String> {
    let hex = oid.bytes().all(|b| b.is_ascii_hexdigit());
    if hex && (oid.len() == 40 || oid.len() == 64) {
        Ok(oid.to_ascii_lowercase())
    } else {
        Err(format!("{:?} is not a commit SHA", clean(&oid)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    fn pull(number: u64) -> Value {
        json!({"number": number, "headRefOid": SHA, "headRefName": "feature/T-0001-x",
               "updatedAt": "2026-01-01T00:00:00Z", "authorAssociation": "MEMBER",
               "author": {"login": "octocat"}})
    }

    fn repo(pulls: Vec<Value>, total: usize) -> Value {
        json!({"ref": {"target": {"oid": SHA}},
               "pullRequests": {"totalCount": total, "nodes": pulls}})
    }

    fn body(data: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({ "data": data })).unwrap()
    }

    #[test]
    fn the_url_follows_the_api_base() {
        let url = |base: &str| {
            super::super::client::graphql_url(&reqwest::Url::parse(base).unwrap()).to_string()
        };
        assert_eq!(
            url("https://api.github.com/"),
            "https://api.github.com/graphql"
        );
        assert_eq!(
            url("https://ghe.example.com/api/v3/"),
            "https://ghe.example.com/api/graphql"
        );
        assert_eq!(url("http://127.0.0.1:9/"), "http://127.0.0.1:9/graphql");
    }

    #[test]
    fn names_travel_as_variables_never_in_the_query() {
        let repos = [RepoQuery {
            owner: "a\") { x }".into(),
            name: "b".into(),
            branch: "main".into(),
        }];
        let body = request_body(&repos);
        let query = body["query"].as_str().unwrap();
        assert!(!query.contains("x }\""), "{query}");
        assert_eq!(body["variables"]["o0"], "a\") { x }");
        assert_eq!(body["variables"]["b0"], "refs/heads/main");
        assert!(query.contains("r0: repository(owner: $o0, name: $n0)"));
        assert_eq!(estimated_cost(50), 1);
        assert_eq!(estimated_cost(100), 1);
        assert_eq!(estimated_cost(1), 1);
    }

    #[test]
    fn an_answer_is_read_per_repo() {
        let data = json!({"r0": repo(vec![pull(3)], 1), "r1": null,
                          "rateLimit": {"cost": 1, "remaining": 4999, "resetAt": "x"}});
        let mut raw: Value = serde_json::from_slice(&body(data)).unwrap();
        raw["errors"] =
            json!([{"type": "NOT_FOUND", "path": ["r1"], "message": "Could not resolve"}]);
        let answer = parse(&serde_json::to_vec(&raw).unwrap(), 2, 1).unwrap();
        let first = answer.repos[0].as_ref().unwrap();
        assert_eq!(first.default_sha.as_deref(), Some(SHA));
        assert_eq!(first.open_heads().unwrap()[&3], SHA);
        assert!(answer.repos[1].as_ref().unwrap_err().contains("NOT_FOUND"));
        // More PRs than one page: not known in full.
        let answer = parse(&body(json!({"r0": repo(vec![pull(1)], 150)})), 1, 1).unwrap();
        assert_eq!(answer.repos[0].as_ref().unwrap().open, None);
    }

    #[test]
    fn hostile_answers_are_refused_clearly() {
        let refused_with = |bytes: Vec<u8>| match parse(&bytes, 1, 1) {
            Err(BatchError::Refused(m)) => m,
            other => panic!("{other:?}"),
        };
        let mut bad_sha = repo(vec![pull(1)], 1);
        bad_sha["pullRequests"]["nodes"][0]["headRefOid"] = json!("../../etc");
        assert!(refused_with(body(json!({ "r0": bad_sha }))).contains("not a commit SHA"));
        let mut extra = repo(vec![], 0);
        extra["secret"] = json!(1);
        assert!(refused_with(body(json!({ "r0": extra }))).contains("unknown field"));
        assert!(refused_with(body(json!({"r7": repo(vec![], 0)}))).contains("not asked for"));
        assert!(refused_with(b"<html>".to_vec()).contains("not what was asked"));
        let scopes = json!({"data": null, "errors": [{"type": "INSUFFICIENT_SCOPES",
            "message": "Your token has not been granted the required scopes\u{1b}[31m"}]});
        let message = refused_with(serde_json::to_vec(&scopes).unwrap());
        assert!(message.contains("INSUFFICIENT_SCOPES"), "{message}");
        assert!(!message.contains('\u{1b}'));
        let limited =
            json!({"errors": [{"type": "RATE_LIMITED", "message": "API rate limit exceeded"}]});
        assert!(matches!(
            parse(&serde_json::to_vec(&limited).unwrap(), 1, 1),
            Err(BatchError::Transient(_))
        ));
    }
}
