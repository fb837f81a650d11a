//! The fake GitHub's `POST /graphql` (and GitHub Enterprise's `/api/graphql`): it answers
//! the query shape gaffer's change detection sends (aliased `repository(owner:, name:)`
//! fields reading a ref's target oid and the open pull requests, and `rateLimit`),
//! computed from the fake's real state: refs from the bare repos, PRs from memory. The
//! query is parsed minimally: aliases and the variables they name; a query without the
//! fields gaffer relies on gets GraphQL's `errors` answer. Queries cost what GitHub's
//! formula says (connections' requests / 100, at least 1), counted against an hourly
//! budget and, when set, a points-per-minute secondary limit; a switch refuses GraphQL.

use std::sync::Mutex;

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use super::{rfc3339, user_json, GraphqlRefusal, InFlight, LoggedRequest, Repo, State};

/// Fields gaffer's query must ask for; the fake answers exactly these.
const NEEDED: &[&str] = &[
    "ref(qualifiedName: $",
    "target { oid }",
    "pullRequests(states: OPEN, first: 100",
    "totalCount",
    "headRefOid",
    "headRefName",
    "updatedAt",
    "authorAssociation",
    "author { login }",
    "rateLimit { cost",
];

/// One aliased repository field: alias, and the variables naming owner, name and ref.
struct Field {
    alias: String,
    owner: String,
    name: String,
    qualified: String,
}

fn between<'a>(text: &'a str, start: &str, end: char) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let rest = &text[from..];
    Some(&rest[..rest.find(end)?])
}

/// The aliased `repository` fields of `query`, with their variables resolved.
fn fields(query: &str, variables: &Map<String, Value>) -> Result<Vec<Field>, String> {
    let var = |name: &str| {
        variables
            .get(name.trim())
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| format!("Variable ${} was not provided", name.trim()))
    };
    let starts: Vec<usize> = query
        .match_indices(": repository(")
        .map(|(at, _)| at)
        .collect();
    let mut found = Vec::new();
    for (i, at) in starts.iter().enumerate() {
        let alias = query[..*at]
            .rsplit(|c: char| c.is_whitespace() || c == '{')
            .next()
            .unwrap_or_default()
            .to_string();
        let field = &query[*at..starts.get(i + 1).copied().unwrap_or(query.len())];
        let owner = between(field, "owner: $", ',').ok_or("repository needs owner")?;
        let name = between(field, "name: $", ')').ok_or("repository needs name")?;
        let qualified = between(field, "ref(qualifiedName: $", ')').ok_or("ref needs a name")?;
        found.push(Field {
            alias,
            owner: var(owner)?,
            name: var(name)?,
            qualified: var(qualified)?,
        });
    }
    Ok(found)
}

/// A branch head: the loose ref file when there is one (fast: a batch reads hundreds),
/// else what git says.
fn branch_sha(repo: &Repo, branch: &str) -> Option<String> {
    match std::fs::read_to_string(repo.bare.join("refs/heads").join(branch)) {
        Ok(text) if text.trim().len() == 40 => Some(text.trim().to_string()),
        _ => super::git::branch_sha(&repo.bare, branch),
    }
}

fn repository(repo: &Repo, qualified: &str) -> Value {
    let target = qualified
        .strip_prefix("refs/heads/")
        .and_then(|branch| branch_sha(repo, branch))
        .map(|oid| json!({"target": {"oid": oid}}))
        .unwrap_or(Value::Null);
    let mut open: Vec<_> = repo.pulls.iter().filter(|p| p.state == "open").collect();
    open.sort_by(|a, b| {
        b.updated_at
            .cmp(&a.updated_at)
            .then(b.number.cmp(&a.number))
    });
    let nodes: Vec<Value> = open
        .iter()
        .take(100)
        .map(|p| {
            json!({
                "number": p.number,
                "headRefOid": branch_sha(repo, &p.head_ref).unwrap_or_default(),
                "headRefName": p.head_ref,
                "updatedAt": p.updated_at,
                "authorAssociation": p.association,
                "author": user_json(&p.user).get("login").map(|l| json!({"login": l})),
            })
        })
        .collect();
    json!({"ref": target, "pullRequests": {"totalCount": open.len(), "nodes": nodes}})
}

/// The answer's body for a parsed request, and the query's cost.
fn answer(s: &mut State, request: &Value) -> (Value, u64) {
    let query = request["query"].as_str().unwrap_or_default();
    let empty = Map::new();
    let variables = request["variables"].as_object().unwrap_or(&empty);
    if let Some(missing) = NEEDED.iter().find(|n| !query.contains(**n)) {
        let message = format!("the fake GraphQL does not understand a query without {missing}");
        return (json!({"errors": [{"message": message}]}), 1);
    }
    let fields = match fields(query, variables) {
        Ok(fields) => fields,
        Err(message) => return (json!({"errors": [{"message": message}]}), 1),
    };
    // One pullRequests page per repository; requests / 100, rounded, at least 1.
    let cost = (((fields.len() as u64) + 50) / 100).max(1);
    let mut data = Map::new();
    let mut errors = Vec::new();
    for field in &fields {
        let key = format!("{}/{}", field.owner, field.name).to_ascii_lowercase();
        match s.repos.get(&key) {
            Some(repo) => {
                data.insert(field.alias.clone(), repository(repo, &field.qualified));
            }
            None => {
                data.insert(field.alias.clone(), Value::Null);
                errors.push(json!({"type": "NOT_FOUND", "path": [field.alias],
                    "message": format!("Could not resolve to a Repository with the name '{}/{}'.", field.owner, field.name)}));
            }
        }
    }
    s.graphql.remaining = s.graphql.remaining.saturating_sub(cost);
    s.graphql.queries += 1;
    s.graphql.points += cost;
    data.insert(
        "rateLimit".into(),
        json!({"cost": cost, "remaining": s.graphql.remaining, "resetAt": rfc3339(s.rate_reset)}),
    );
    let mut body = json!({ "data": data });
    if !errors.is_empty() {
        body["errors"] = json!(errors);
    }
    (body, cost)
}

pub(super) async fn handle(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<Mutex<State>>,
) -> HttpResponse {
    let _in_flight = InFlight(state.clone());
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let estimate = request["query"].as_str().map_or(1, |q| {
        ((q.matches(": repository(").count() as u32 + 50) / 100).max(1)
    });
    let authorization = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (latency, limited, refusal) = {
        let mut s = state.lock().unwrap();
        s.in_flight += 1;
        s.peak_in_flight = s.peak_in_flight.max(s.in_flight);
        let in_flight = s.in_flight;
        let too_many = s
            .secondary
            .as_ref()
            .is_some_and(|l| in_flight > l.max_concurrency);
        let limited = match s.graphql.limit.as_mut() {
            Some(limit) => limit.admit(estimate, in_flight),
            None => None,
        }
        .or(too_many.then_some(60));
        (s.latency, limited, s.graphql.refuse)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut s = state.lock().unwrap();
    let expected = s.token.clone();
    let (status, body, headers): (u16, Vec<u8>, Vec<(&str, String)>) = if let Some(seconds) =
        limited
    {
        let text = json!({"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."});
        (
            403,
            text.to_string().into_bytes(),
            vec![("retry-after", seconds.to_string())],
        )
    } else if expected.is_some_and(|t| authorization.as_deref() != Some(&format!("Bearer {t}"))) {
        (
            401,
            json!({"message": "Bad credentials"})
                .to_string()
                .into_bytes(),
            vec![],
        )
    } else {
        match refusal {
            Some(GraphqlRefusal::NotFound) => {
                (404, json!({"message": "Not Found"}).to_string().into_bytes(), vec![])
            }
            Some(GraphqlRefusal::Forbidden) => (
                403,
                json!({"message": "Resource not accessible by personal access token"})
                    .to_string()
                    .into_bytes(),
                vec![],
            ),
            Some(GraphqlRefusal::InsufficientScopes) => (
                200,
                json!({"errors": [{"type": "INSUFFICIENT_SCOPES", "locations": [{"line": 1, "column": 1}],
                    "message": "Your token has not been granted the required scopes to execute this query."}]})
                .to_string()
                .into_bytes(),
                vec![],
            ),
            Some(GraphqlRefusal::Oversized) => {
                let padding = "x".repeat(9 * 1024 * 1024);
                (200, json!({ "data": { "r0": padding } }).to_string().into_bytes(), vec![])
            }
            Some(GraphqlRefusal::Garbage) => {
                (200, b"<html><body>Unicorn!</body></html>".to_vec(), vec![])
            }
            None => {
                let (answer, _cost) = answer(&mut s, &request);
                let remaining = s.graphql.remaining;
                let headers = vec![
                    ("x-ratelimit-limit", super::GRAPHQL_POINTS_PER_HOUR.to_string()),
                    ("x-ratelimit-remaining", remaining.to_string()),
                    (
                        "x-ratelimit-used",
                        (super::GRAPHQL_POINTS_PER_HOUR - remaining).to_string(),
                    ),
                    ("x-ratelimit-reset", s.rate_reset.to_string()),
                    ("x-ratelimit-resource", "graphql".to_string()),
                ];
                (200, answer.to_string().into_bytes(), headers)
            }
        }
    };
    s.log.push(LoggedRequest {
        method: "POST".into(),
        path: req.path().to_string(),
        status,
        if_none_match: None,
        authorization,
        accept: req
            .headers()
            .get("accept")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        api_version: None,
        user_agent: None,
    });
    drop(s);
    let mut builder = HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap());
    for (k, v) in headers {
        builder.insert_header((k, v));
    }
    builder.content_type("application/json").body(body)
}
