//! The HTTP core of the GitHub client: headers GitHub asks for, conditional requests
//! with an ETag cache, the rate-limit budget, secondary-limit waits, retries with jittered
//! backoff, write pacing and `Link` pagination. Endpoint methods live in `super`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use moka::future::Cache;
use rand::Rng;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, USER_AGENT};
use reqwest::{Method, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::budget::{unix_now, CounterSnapshot, Counters, RateBudget};
use super::governor::{WriteGovernor, WriteLimits};
use super::pace::{Pace, PaceLimits, PaceSnapshot, READ_POINTS, WRITE_POINTS};
use super::types::ApiError;
use crate::forge::{ForgeError, ForgeResult};

tokio::task_local! {
    /// Requests made inside a scope (one repo's poll), counted while clients are shared.
    pub static TALLY: Arc<Tally>;
}

/// Per-scope request counts; see [`TALLY`].
#[derive(Debug, Default)]
pub struct Tally {
    pub requests: std::sync::atomic::AtomicU64,
    pub not_modified: std::sync::atomic::AtomicU64,
    pub units_spent: std::sync::atomic::AtomicU64,
}

fn tally(pick: impl Fn(&Tally) -> &std::sync::atomic::AtomicU64) {
    let _ = TALLY.try_with(|t| pick(t).fetch_add(1, std::sync::atomic::Ordering::Relaxed));
}

/// The REST API version gaffer is written against.
pub const API_VERSION: &str = "2022-11-28";
/// Cached answers kept on disk between restarts (the newest ones).
const PERSISTED_ANSWERS: u32 = 20_000;
/// Most pages followed for one listing (100 items each).
const MAX_PAGES: usize = 50;

/// How the client behaves; [`ClientOptions::new`] gives GitHub-friendly defaults.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// `https://api.github.com`, or `https://HOST/api/v3` for GitHub Enterprise Server.
    pub api_url: String,
    pub token: Option<SecretString>,
    /// Below this many calls left, stop calling and report when the budget resets.
    pub min_remaining_budget: u64,
    pub request_timeout: Duration,
    /// Retries after 5xx, timeouts and connection errors, and secondary-limit waits.
    pub max_retries: u32,
    /// First backoff step; doubled each retry, with jitter.
    pub backoff_base: Duration,
    /// Wait after a secondary limit that gives no `retry-after` (GitHub: at least a minute).
    pub secondary_default_wait: Duration,
    /// The longest a single call waits inside the client; longer waits become an error
    /// naming when to come back.
    pub max_inline_wait: Duration,
    pub write_limits: WriteLimits,
    /// Points per minute and requests in flight, for every request (secondary limits).
    pub pace: PaceLimits,
    /// Points per minute for GraphQL queries, a budget of their own (GitHub: 2,000); their
    /// requests in flight count against `pace`'s cap.
    pub graphql_points_per_minute: u32,
    /// Bytes of response bodies kept for conditional requests.
    pub cache_bytes: u64,
    /// Where cached answers are also written, so conditional requests stay free after a
    /// restart (see [`GithubClient::restore_cache`]).
    pub persist: Option<crate::store::Store>,
}

impl ClientOptions {
    pub fn new(api_url: &str, token: Option<SecretString>) -> Self {
        ClientOptions {
            api_url: api_url.trim_end_matches('/').to_string(),
            token,
            min_remaining_budget: 500,
            request_timeout: Duration::from_secs(30),
            max_retries: 3,
            backoff_base: Duration::from_millis(500),
            secondary_default_wait: Duration::from_secs(60),
            max_inline_wait: Duration::from_secs(120),
            write_limits: WriteLimits::default(),
            pace: PaceLimits::default(),
            graphql_points_per_minute: 2000,
            cache_bytes: 32 * 1024 * 1024,
            persist: None,
        }
    }
}

/// A cached answer to a GET, replayed when GitHub says 304.
#[derive(Debug)]
struct CachedResponse {
    etag: Option<String>,
    last_modified: Option<String>,
    body: Bytes,
    next_page: Option<Url>,
}

/// One answered request.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    pub status: u16,
    pub body: Bytes,
    pub next_page: Option<Url>,
    /// Answered 304 and served from the cache: cost nothing.
    pub not_modified: bool,
    /// `X-OAuth-Scopes`: the scopes of a classic token (absent for fine-grained tokens and
    /// apps); `gaffer doctor` names the missing ones.
    pub oauth_scopes: Option<String>,
}

/// A GitHub REST client for one token. Cheap to clone; clones share the cache, budget,
/// counters and write governor.
#[derive(Clone, Debug)]
pub struct GithubClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    base: Url,
    options: ClientOptions,
    cache: Cache<String, Arc<CachedResponse>>,
    budgets: Mutex<HashMap<String, RateBudget>>,
    /// Unix time before which a secondary limit asks us not to call.
    cooldown_until: Mutex<u64>,
    governor: WriteGovernor,
    pace: Pace,
    /// GraphQL's points, paced apart from REST's.
    graphql_pace: Pace,
    /// Where GraphQL queries go: derived from `base`, so on the same origin.
    graphql_url: Url,
    counters: Counters,
}

/// Whether a request may be sent again after an ambiguous failure (a 5xx, a timeout, a
/// connection lost after sending), when GitHub may have done it already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// Doing it twice is the same as doing it once: reads, PUT, DELETE, and PATCHes that
    /// set fields to given values (all gaffer's PATCHes are such).
    Safe,
    /// A second one would make a second thing (a PR, a review, a comment): never replayed
    /// blindly.
    Never,
}

impl Replay {
    /// POST creates; every other method gaffer sends is idempotent.
    pub fn for_method(method: &Method) -> Replay {
        if method == Method::POST {
            Replay::Never
        } else {
            Replay::Safe
        }
    }
}

enum LimitKind {
    Secondary { wait: Duration },
    Primary { reset: u64 },
}

impl GithubClient {
    pub fn new(options: ClientOptions) -> ForgeResult<GithubClient> {
        let base =
            Url::parse(&format!("{}/", options.api_url)).map_err(|e| ForgeError::Protocol {
                message: format!("GITHUB_API_URL {:?} is not a URL: {e}", options.api_url),
            })?;
        let http = reqwest::Client::builder()
            .timeout(options.request_timeout)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ForgeError::Unavailable {
                message: format!("cannot build the HTTP client: {e}"),
            })?;
        let cache = Cache::builder()
            .weigher(|key: &String, value: &Arc<CachedResponse>| {
                u32::try_from(key.len() + value.body.len()).unwrap_or(u32::MAX)
            })
            .max_capacity(options.cache_bytes)
            .build();
        let graphql_url = graphql_url(&base);
        Ok(GithubClient {
            inner: Arc::new(Inner {
                http,
                graphql_url,
                base,
                governor: WriteGovernor::new(options.write_limits),
                pace: Pace::new(options.pace),
                graphql_pace: Pace::new(PaceLimits {
                    points_per_minute: options.graphql_points_per_minute,
                    max_concurrency: options.pace.max_concurrency,
                }),
                options,
                cache,
                budgets: Mutex::new(HashMap::new()),
                cooldown_until: Mutex::new(0),
                counters: Counters::default(),
            }),
        })
    }

    /// The API URL for a path given as segments; each segment is percent-encoded, and a
    /// segment holding `/` (a file path, a branch like `feature/x`) keeps its slashes.
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.inner.base.clone();
        {
            let mut path = url.path_segments_mut().expect("API URL is a base URL");
            path.pop_if_empty();
            for segment in segments {
                path.extend(segment.split('/').filter(|s| !s.is_empty()));
            }
        }
        url
    }

    /// The last-known budget of the `core` resource (what most calls spend).
    pub fn budget(&self) -> Option<RateBudget> {
        self.inner
            .budgets
            .lock()
            .expect("budget lock")
            .get("core")
            .cloned()
    }

    /// The pace in force against GitHub's secondary limits (lowered after a hit).
    pub fn pace(&self) -> PaceSnapshot {
        self.inner.pace.snapshot()
    }

    /// The pace of GraphQL points (its own budget; lowered after a GraphQL secondary limit).
    pub fn graphql_pace(&self) -> PaceSnapshot {
        self.inner.graphql_pace.snapshot()
    }

    /// The last-known budget of the `graphql` resource (query costs, 5,000 an hour).
    pub fn graphql_budget(&self) -> Option<RateBudget> {
        self.inner
            .budgets
            .lock()
            .expect("budget lock")
            .get("graphql")
            .cloned()
    }

    /// Where GraphQL queries are sent (`/graphql`, or `/api/graphql` on GitHub Enterprise).
    pub fn graphql_endpoint(&self) -> &Url {
        &self.inner.graphql_url
    }

    /// POSTs one GraphQL query costing `points`, paced by the GraphQL budget and holding
    /// one of the token's concurrency slots; the answer's body is read up to `max_bytes`.
    /// Never retried here: a failed query falls back to REST for its repos. A secondary
    /// limit lowers the GraphQL pace and comes back as [`ForgeError::RateLimited`]; any
    /// other status is returned with its body for the caller to judge.
    pub async fn post_graphql(
        &self,
        body: &Value,
        points: u32,
        max_bytes: usize,
    ) -> ForgeResult<(u16, Bytes)> {
        let now = unix_now();
        if let Some(reset) = self
            .graphql_budget()
            .and_then(|b| b.exhausted_until(self.inner.options.min_remaining_budget, now))
        {
            return Err(ForgeError::RateLimited {
                resets_at: reset,
                secondary: false,
            });
        }
        let url = self.inner.graphql_url.clone();
        let mut headers = self.headers_for(&url);
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let request = self.inner.http.post(url).headers(headers).json(body);
        let _points = self.inner.graphql_pace.acquire(points).await;
        let _slot = self.inner.pace.slot().await;
        let mut response = request.send().await.map_err(|e| ForgeError::Unavailable {
            message: format!("POST /graphql: {}", describe(&e)),
        })?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let mut bytes = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if bytes.len() + chunk.len() > max_bytes {
                        return Err(ForgeError::Protocol {
                            message: format!("the GraphQL answer is over {max_bytes} bytes"),
                        });
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(ForgeError::Unavailable {
                        message: format!("POST /graphql: {}", describe(&e)),
                    })
                }
            }
        }
        let bytes = Bytes::from(bytes);
        if let Some(budget) = RateBudget::from_headers(&headers) {
            self.inner
                .budgets
                .lock()
                .expect("budget lock")
                .insert(budget.resource.clone(), budget);
        }
        if matches!(status, 403 | 429) {
            match classify_limit(status, &headers, &bytes, &self.inner.options) {
                Some(LimitKind::Secondary { wait }) => {
                    self.inner.graphql_pace.lower();
                    tracing::warn!(
                        wait_s = wait.as_secs(),
                        "GitHub secondary rate limit on GraphQL"
                    );
                    return Err(ForgeError::RateLimited {
                        resets_at: unix_now() + wait.as_secs().max(1),
                        secondary: true,
                    });
                }
                Some(LimitKind::Primary { reset }) => {
                    return Err(ForgeError::RateLimited {
                        resets_at: reset,
                        secondary: false,
                    })
                }
                None => {}
            }
        }
        Ok((status, bytes))
    }

    pub fn counters(&self) -> CounterSnapshot {
        self.inner.counters.snapshot()
    }

    /// GET one JSON value.
    pub async fn get_json<T: DeserializeOwned>(&self, url: Url) -> ForgeResult<T> {
        let response = self.send(Method::GET, url, None).await?;
        parse_body(&response.body)
    }

    /// GET every page of a listing (`per_page=100`, following `Link: rel="next"`).
    pub async fn get_all<T: DeserializeOwned>(&self, mut url: Url) -> ForgeResult<Vec<T>> {
        url.query_pairs_mut().append_pair("per_page", "100");
        let mut items = Vec::new();
        let mut next = Some(url);
        let mut pages = 0;
        while let Some(page_url) = next.take() {
            let response = self.send(Method::GET, page_url, None).await?;
            items.extend(parse_body::<Vec<T>>(&response.body)?);
            pages += 1;
            if pages >= MAX_PAGES {
                tracing::warn!(pages, "stopped following pagination at the page limit");
                break;
            }
            next = response.next_page;
        }
        Ok(items)
    }

    /// GET every page of a listing wrapped in an object (`{"total_count", FIELD: [...]}`,
    /// as check runs and combined statuses are): the items of every page, and the first
    /// page's whole object (for `total_count`, a combined `state`).
    pub async fn get_all_wrapped<T: DeserializeOwned>(
        &self,
        mut url: Url,
        field: &str,
    ) -> ForgeResult<(Vec<T>, Value)> {
        url.query_pairs_mut().append_pair("per_page", "100");
        let mut items = Vec::new();
        let mut first: Option<Value> = None;
        let mut next = Some(url);
        let mut pages = 0;
        while let Some(page_url) = next.take() {
            let response = self.send(Method::GET, page_url, None).await?;
            let mut page: Value = parse_body(&response.body)?;
            let list = page
                .as_object_mut()
                .and_then(|o| o.remove(field))
                .unwrap_or(Value::Null);
            if !list.is_null() {
                items.extend(serde_json::from_value::<Vec<T>>(list).map_err(|e| {
                    ForgeError::Protocol {
                        message: format!("cannot parse {field}: {e}"),
                    }
                })?);
            }
            first.get_or_insert(page);
            pages += 1;
            if pages >= MAX_PAGES {
                tracing::warn!(pages, "stopped following pagination at the page limit");
                break;
            }
            next = response.next_page;
        }
        Ok((items, first.unwrap_or(Value::Null)))
    }

    /// A write (POST/PATCH/PUT/DELETE) with a JSON body, paced by the governor; replayed
    /// after an ambiguous failure only when [`Replay::for_method`] allows it.
    pub async fn write_json<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: &Value,
    ) -> ForgeResult<T> {
        let replay = Replay::for_method(&method);
        let response = self.send_with(method, url, Some(body), replay).await?;
        parse_body(&response.body)
    }

    /// A write whose answer body does not matter (DELETE, 204s), with an explicit replay
    /// policy (e.g. adding labels is a set union: [`Replay::Safe`] although it is a POST).
    pub async fn write(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        replay: Replay,
    ) -> ForgeResult<()> {
        self.send_with(method, url, body, replay).await.map(|_| ())
    }

    /// Sends one request, with everything GitHub asks of a good client, replaying it after
    /// an ambiguous failure only when its method is idempotent.
    pub async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> ForgeResult<ApiResponse> {
        let replay = Replay::for_method(&method);
        self.send_with(method, url, body, replay).await
    }

    /// [`Self::send`] with an explicit replay policy. With [`Replay::Never`], a 5xx, a
    /// timeout or a connection lost after the request went out is not retried: it comes
    /// back as [`ForgeError::AmbiguousWrite`], for `forge::once` to look up what happened.
    /// Failures that prove nothing was done (a refused connection, a rate limit) are still
    /// retried.
    pub async fn send_with(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        replay: Replay,
    ) -> ForgeResult<ApiResponse> {
        let is_read = method == Method::GET || method == Method::HEAD;
        let ambiguous = |what: String| ForgeError::AmbiguousWrite {
            message: format!("{method} {}: {what}", url.path()),
        };
        let cache_key = url.as_str().to_string();
        // Writes are serial and paced; the slot is held across this write's retries.
        let _write_slot = if is_read {
            None
        } else {
            Some(self.inner.governor.acquire().await)
        };
        let mut attempt: u32 = 0;
        loop {
            self.wait_for_budget().await?;
            let cached = if is_read {
                self.inner.cache.get(&cache_key).await
            } else {
                None
            };
            let mut request = self
                .inner
                .http
                .request(method.clone(), url.clone())
                .headers(self.headers_for(&url));
            if let Some(cached) = &cached {
                if let Some(etag) = &cached.etag {
                    request = request.header(reqwest::header::IF_NONE_MATCH, etag);
                } else if let Some(modified) = &cached.last_modified {
                    request = request.header(reqwest::header::IF_MODIFIED_SINCE, modified);
                }
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let points = if is_read { READ_POINTS } else { WRITE_POINTS };
            let slot = self.inner.pace.acquire(points).await;
            Counters::bump(&self.inner.counters.requests);
            tally(|t| &t.requests);
            let outcome = match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let headers = response.headers().clone();
                    match response.bytes().await {
                        Ok(bytes) => Ok((status, headers, bytes)),
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e),
            };
            drop(slot);
            let (status, headers, bytes) = match outcome {
                Ok(answer) => answer,
                // Not sent at all, or possibly done: only the first may be replayed blindly.
                Err(e) if replay == Replay::Never && !e.is_connect() => {
                    return Err(ambiguous(describe(&e)))
                }
                Err(e) if attempt < self.inner.options.max_retries => {
                    attempt += 1;
                    self.note_retry(
                        attempt,
                        &format!("{} {}: {}", method, url.path(), describe(&e)),
                    )
                    .await;
                    continue;
                }
                Err(e) => {
                    return Err(ForgeError::Unavailable {
                        message: format!(
                            "{} {} failed after {} attempts: {}",
                            method,
                            url.path(),
                            attempt + 1,
                            describe(&e)
                        ),
                    })
                }
            };
            if let Some(budget) = RateBudget::from_headers(&headers) {
                self.inner
                    .budgets
                    .lock()
                    .expect("budget lock")
                    .insert(budget.resource.clone(), budget);
            }
            if status == 304 {
                Counters::bump(&self.inner.counters.not_modified);
                tally(|t| &t.not_modified);
                let Some(cached) = cached else {
                    return Err(ForgeError::Protocol {
                        message: format!("304 for {} without a cached copy", url.path()),
                    });
                };
                return Ok(ApiResponse {
                    status: 200,
                    body: cached.body.clone(),
                    next_page: cached.next_page.clone(),
                    not_modified: true,
                    oauth_scopes: oauth_scopes(&headers),
                });
            }
            Counters::bump(&self.inner.counters.units_spent);
            tally(|t| &t.units_spent);
            match status {
                200..=299 => {
                    let next_page = self.next_page(&headers);
                    if is_read {
                        self.remember(cache_key, &headers, &bytes, &next_page).await;
                    }
                    return Ok(ApiResponse {
                        status,
                        body: bytes,
                        next_page,
                        not_modified: false,
                        oauth_scopes: oauth_scopes(&headers),
                    });
                }
                401 => return Err(ForgeError::Unauthorized),
                403 | 429 => match classify_limit(status, &headers, &bytes, &self.inner.options) {
                    Some(LimitKind::Secondary { wait }) => {
                        Counters::bump(&self.inner.counters.secondary_waits);
                        self.inner.pace.lower();
                        let until = unix_now() + wait.as_secs().max(1);
                        *self.inner.cooldown_until.lock().expect("cooldown lock") = until;
                        tracing::warn!(
                            wait_s = wait.as_secs(),
                            path = url.path(),
                            "GitHub secondary rate limit"
                        );
                        if wait > self.inner.options.max_inline_wait
                            || attempt >= self.inner.options.max_retries
                        {
                            return Err(ForgeError::RateLimited {
                                resets_at: until,
                                secondary: true,
                            });
                        }
                        attempt += 1;
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    Some(LimitKind::Primary { reset }) => {
                        return Err(ForgeError::RateLimited {
                            resets_at: reset,
                            secondary: false,
                        })
                    }
                    None => {
                        return Err(ForgeError::Status {
                            status,
                            message: error_message(&bytes),
                        })
                    }
                },
                404 => {
                    return Err(ForgeError::NotFound {
                        what: url.path().to_string(),
                    })
                }
                422 => {
                    return Err(ForgeError::Validation {
                        message: error_message(&bytes),
                    })
                }
                500..=599 if replay == Replay::Never => {
                    return Err(ambiguous(format!("answered {status}")))
                }
                500..=599 if attempt < self.inner.options.max_retries => {
                    attempt += 1;
                    self.note_retry(
                        attempt,
                        &format!("{} {} answered {status}", method, url.path()),
                    )
                    .await;
                    continue;
                }
                500..=599 => {
                    return Err(ForgeError::Unavailable {
                        message: format!(
                            "{} {} answered {status} after {} attempts",
                            method,
                            url.path(),
                            attempt + 1
                        ),
                    })
                }
                _ => {
                    return Err(ForgeError::Status {
                        status,
                        message: error_message(&bytes),
                    })
                }
            }
        }
    }

    /// Refuses to call while the budget is under the minimum, and waits out a secondary
    /// cooldown when it is short enough.
    async fn wait_for_budget(&self) -> ForgeResult<()> {
        let now = unix_now();
        let exhausted = self
            .budget()
            .and_then(|b| b.exhausted_until(self.inner.options.min_remaining_budget, now));
        if let Some(reset) = exhausted {
            Counters::bump(&self.inner.counters.refused_for_budget);
            return Err(ForgeError::RateLimited {
                resets_at: reset,
                secondary: false,
            });
        }
        let cooldown = *self.inner.cooldown_until.lock().expect("cooldown lock");
        if cooldown > now {
            let wait = Duration::from_secs(cooldown - now);
            if wait > self.inner.options.max_inline_wait {
                return Err(ForgeError::RateLimited {
                    resets_at: cooldown,
                    secondary: true,
                });
            }
            tokio::time::sleep(wait).await;
        }
        Ok(())
    }

    async fn note_retry(&self, attempt: u32, what: &str) {
        Counters::bump(&self.inner.counters.retries);
        let base = self.inner.options.backoff_base;
        let step = base.saturating_mul(1 << (attempt - 1).min(5));
        let jittered = step.mul_f64(rand::rng().random_range(0.5..1.5));
        let wait = jittered.min(Duration::from_secs(10));
        tracing::warn!(
            attempt,
            wait_ms = wait.as_millis() as u64,
            "retrying GitHub call: {what}"
        );
        tokio::time::sleep(wait).await;
    }

    /// Headers for a request; the token only ever goes to the configured API host.
    fn headers_for(&self, url: &Url) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/vnd.github+json"),
        );
        headers.insert(
            "X-GitHub-Api-Version",
            HeaderValue::from_static(API_VERSION),
        );
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("gaffer/", env!("CARGO_PKG_VERSION"))),
        );
        if let Some(token) = &self.inner.options.token {
            if same_origin(url, &self.inner.base) {
                if let Ok(mut value) =
                    HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
                {
                    value.set_sensitive(true);
                    headers.insert(AUTHORIZATION, value);
                }
            }
        }
        headers
    }

    /// The `rel="next"` page, if it is on the API host (a token never follows a link
    /// elsewhere).
    fn next_page(&self, headers: &HeaderMap) -> Option<Url> {
        let link = headers.get("link")?.to_str().ok()?;
        link.split(',').find_map(|part| {
            let (target, params) = part.split_once(';')?;
            if !params.contains("rel=\"next\"") {
                return None;
            }
            let url =
                Url::parse(target.trim().trim_start_matches('<').trim_end_matches('>')).ok()?;
            same_origin(&url, &self.inner.base).then_some(url)
        })
    }

    async fn remember(&self, key: String, headers: &HeaderMap, body: &Bytes, next: &Option<Url>) {
        let header = |name| {
            headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::to_string)
        };
        let etag = header(reqwest::header::ETAG);
        let last_modified = header(reqwest::header::LAST_MODIFIED);
        if etag.is_some() || last_modified.is_some() {
            if let Some(store) = &self.inner.options.persist {
                let answer = crate::store::CachedAnswer {
                    url: key.clone(),
                    etag: etag.clone(),
                    last_modified: last_modified.clone(),
                    next_page: next.as_ref().map(|u| u.to_string()),
                    body: body.to_vec(),
                };
                if let Err(e) = store.save_cached_answer(&answer).await {
                    tracing::warn!(error = %e, "could not persist a cached GitHub answer");
                }
            }
            self.inner
                .cache
                .insert(
                    key,
                    Arc::new(CachedResponse {
                        etag,
                        last_modified,
                        body: body.clone(),
                        next_page: next.clone(),
                    }),
                )
                .await;
        }
    }

    /// Loads the persisted answers into the cache (at start-up), so the first poll after a
    /// restart is answered with 304s.
    pub async fn restore_cache(&self) -> usize {
        let Some(store) = &self.inner.options.persist else {
            return 0;
        };
        if let Err(e) = store.trim_cached_answers(PERSISTED_ANSWERS).await {
            tracing::warn!(error = %e, "could not trim the persisted GitHub cache");
        }
        let answers = match store.cached_answers().await {
            Ok(answers) => answers,
            Err(e) => {
                tracing::warn!(error = %e, "could not load the persisted GitHub cache");
                return 0;
            }
        };
        let count = answers.len();
        for answer in answers {
            let next_page = answer.next_page.as_deref().and_then(|u| Url::parse(u).ok());
            self.inner
                .cache
                .insert(
                    answer.url,
                    Arc::new(CachedResponse {
                        etag: answer.etag,
                        last_modified: answer.last_modified,
                        body: Bytes::from(answer.body),
                        next_page,
                    }),
                )
                .await;
        }
        count
    }
}

/// GraphQL's endpoint for an API base: `https://api.github.com` -> `/graphql`;
/// GitHub Enterprise's `https://HOST/api/v3` -> `https://HOST/api/graphql`; any other
/// base -> its path + `/graphql`. Always the base's origin, so the token goes nowhere else.
pub fn graphql_url(base: &Url) -> Url {
    let mut url = base.clone();
    let path = base.path().trim_end_matches('/');
    let path = match path.strip_suffix("/api/v3") {
        Some(prefix) => format!("{prefix}/api/graphql"),
        None => format!("{path}/graphql"),
    };
    url.set_path(&path);
    url.set_query(None);
    url
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// Tells a secondary limit (wait, then retry) from an exhausted primary budget (report
/// the reset) from a plain permission error (neither). As GitHub documents: honour
/// `retry-after`; `x-ratelimit-remaining: 0` means wait for `x-ratelimit-reset`;
/// otherwise a secondary limit means waiting at least a minute.
fn classify_limit(
    status: u16,
    headers: &HeaderMap,
    body: &Bytes,
    options: &ClientOptions,
) -> Option<LimitKind> {
    let retry_after = headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(seconds) = retry_after {
        return Some(LimitKind::Secondary {
            wait: Duration::from_secs(seconds),
        });
    }
    if let Some(budget) = RateBudget::from_headers(headers) {
        if budget.remaining == Some(0) {
            return Some(LimitKind::Primary {
                reset: budget.reset.unwrap_or_else(|| unix_now() + 60),
            });
        }
    }
    let message = error_message(body).to_ascii_lowercase();
    if status == 429 || message.contains("secondary rate limit") || message.contains("abuse") {
        return Some(LimitKind::Secondary {
            wait: options.secondary_default_wait,
        });
    }
    None
}

fn error_message(body: &Bytes) -> String {
    serde_json::from_slice::<ApiError>(body)
        .map(|e| e.describe())
        .unwrap_or_else(|_| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned())
}

fn parse_body<T: DeserializeOwned>(body: &Bytes) -> ForgeResult<T> {
    serde_json::from_slice(body).map_err(|e| ForgeError::Protocol {
        message: format!("cannot parse the JSON body: {e}"),
    })
}

/// A reqwest error as a short line a user can act on (URL reduced to its path).
fn describe(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "timed out".to_string()
    } else if err.is_connect() {
        "connection failed".to_string()
    } else {
        let text = err.to_string();
        match err.url() {
            Some(url) => text.replace(url.as_str(), url.path()),
            None => text,
        }
    }
}

fn oauth_scopes(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-oauth-scopes")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}
