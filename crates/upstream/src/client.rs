//! One connection's client to its vendor. It composes the etiquette pieces in one order:
//!
//! 1. **cache and coalescing** ([`crate::cache`]): a fresh page is served from the store, and
//!    identical reads at once share one call; a write hides the cached pages;
//! 2. **deadline and retry** ([`crate::retry`]): the request's deadline bounds everything below;
//!    a read is tried again on temporary failures, a write is sent once;
//! 3. then each attempt: the **breaker** ([`crate::breaker`]) lets it through, the **vendor
//!    window** ([`crate::window`]) is open, and the **quota** ([`crate::quota`]) gives it a
//!    request: otherwise it fails unsent;
//! 4. the request goes out and its answer is read under the **body cap** ([`crate::body`]); the
//!    vendor window hears what the answer says of the quota;
//! 5. **metrics** ([`crate::meters`]), the breaker and the health page hear how it went.

use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use reqwest::Method;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use switchboard_core::quota_state::{Ledger, QuotaState};
use switchboard_core::{ConnectionHealth, QuotaStatus, codes};
use switchboard_core::{Error, ErrorKind, PassthroughAnswer, PassthroughRequest, Result};
use tokio::time::Instant;
use url::Url;

use crate::body::{self, BodyError};
use crate::breaker::{Admission, Breaker, BreakerSettings};
use crate::budget::RateLimit;
use crate::cache::PageCache;
use crate::call::{Call, ErrorParser, Response};
use crate::deadline;
use crate::lock;
use crate::meters::Meters;
use crate::quota::{self, Quota};
use crate::retry::{Deadlines, Retry, timeout_error};
use crate::store::{MemoryStore, Store};
use crate::window::VendorWindow;

/// What every connection of one gateway shares: the store behind quotas and the page cache,
/// the cache's time to live, and the circuit breakers' settings.
#[derive(Debug, Clone)]
pub struct Shared {
    /// Quotas, cached pages (and, in the server, idempotency records).
    pub store: Arc<dyn Store>,
    /// How long an upstream page stays cached; zero disables the cache and the coalescing of
    /// identical reads.
    pub cache_ttl: Duration,
    /// When a connection's breaker opens.
    pub breaker: BreakerSettings,
    /// The largest vendor answer read; a larger one is `upstream_response_too_large`.
    pub max_body_bytes: usize,
}

/// The default cap on a vendor's answer: 8 MiB (a ChatbotX page of 100 conversations with their
/// messages is about 0.5 MB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

impl Default for Shared {
    /// An in-memory store, pages cached for 2 s, breakers at their defaults, answers capped at
    /// [`DEFAULT_MAX_BODY_BYTES`].
    fn default() -> Shared {
        Shared {
            store: Arc::new(MemoryStore::default()),
            cache_ttl: Duration::from_secs(2),
            breaker: BreakerSettings::default(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

/// How a connection talks to its vendor.
#[derive(Debug, Clone)]
pub struct UpstreamOptions {
    /// The vendor API's base URL; request paths are appended to it.
    pub base_url: Url,
    /// Time to establish a TCP/TLS connection.
    pub connect_timeout: Duration,
    /// Time for one request, retries included.
    pub deadline: Duration,
    /// How many times a failed read is retried.
    pub max_retries: usize,
    /// The vendor's quota; `None` for no budget.
    pub rate_limit: Option<RateLimit>,
    /// What the gateway's connections share.
    pub shared: Shared,
}

impl UpstreamOptions {
    /// Defaults for `base_url`: 5 s connect, 15 s deadline, 2 retries, no quota.
    pub fn new(base_url: Url, shared: Shared) -> UpstreamOptions {
        UpstreamOptions {
            base_url,
            connect_timeout: Duration::from_secs(5),
            deadline: Duration::from_secs(15),
            max_retries: 2,
            rate_limit: None,
            shared,
        }
    }
}

/// How the last call ended, for the health page.
#[derive(Debug, Default)]
struct LastOutcome {
    error: Option<&'static str>,
    success_at: Option<DateTime<Utc>>,
}

/// A connection's client to its vendor.
#[derive(Debug)]
pub struct Upstream {
    http: reqwest::Client,
    connection: String,
    options: UpstreamOptions,
    parse_error: ErrorParser,
    cache: PageCache,
    retry: Retry,
    breaker: Breaker,
    window: VendorWindow,
    quota: Quota,
    meters: Meters,
    last: Mutex<LastOutcome>,
}

impl Upstream {
    /// A client for `connection` sending `default_headers` (mark secrets sensitive) on every call.
    pub fn new(
        connection: &str,
        options: UpstreamOptions,
        default_headers: HeaderMap,
        parse_error: ErrorParser,
    ) -> Result<Upstream> {
        let http = reqwest::Client::builder()
            .default_headers(default_headers)
            .connect_timeout(options.connect_timeout)
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            // A vendor API answers where it is asked; a redirect is an answer to report, not
            // to follow with the connection's credentials.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| {
                Error::new(ErrorKind::Config, "could not build the HTTP client").with_source(e)
            })?;
        let shared = &options.shared;
        let quota = Quota::new(Arc::clone(&shared.store), connection, options.rate_limit);
        Ok(Upstream {
            http,
            connection: connection.to_owned(),
            parse_error,
            cache: PageCache::new(Arc::clone(&shared.store), shared.cache_ttl, connection),
            retry: Retry::new(options.deadline, options.max_retries),
            breaker: Breaker::new(shared.breaker),
            window: VendorWindow::new(Arc::clone(&shared.store), connection, quota.bucket()),
            quota,
            meters: Meters::new(connection),
            last: Mutex::default(),
            options,
        })
    }

    /// The connection id.
    pub fn connection(&self) -> &str {
        &self.connection
    }

    /// The options.
    pub fn options(&self) -> &UpstreamOptions {
        &self.options
    }

    /// The base URL joined with `segments`, each percent-encoded (an id can never change the path).
    pub fn url(&self, segments: &[String]) -> Url {
        let mut url = self.options.base_url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            for s in segments {
                path.push(s);
            }
        }
        url
    }

    fn full_url(&self, call: &Call) -> Url {
        let mut url = self.url(&call.path);
        if !call.query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(call.query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        url
    }

    /// How the connection is doing.
    pub fn health(&self) -> ConnectionHealth {
        let last = lock(&self.last);
        let (vendor_remaining, vendor_reset_at) = self.window.quota();
        ConnectionHealth {
            breaker: self.breaker.state(),
            last_error: last.error.map(str::to_owned),
            last_success_at: last.success_at,
            quota: self.quota.limit().map(|limit| QuotaStatus {
                requests: limit.requests,
                per_seconds: limit.per_seconds,
                remaining: self.quota.remaining(),
                vendor_remaining,
                vendor_reset_at,
            }),
        }
    }

    /// The connection's quota as a caller may be told it: the gateway's budget for the vendor,
    /// never more than the vendor itself last said it allows (`X-RateLimit-Limit`) or has left
    /// (`X-RateLimit-Remaining`), and none left while the vendor's window is closed. `None` when neither the budget nor the vendor says.
    pub fn quota_state(&self) -> Option<QuotaState> {
        let (remaining, reset_at) = self.window.quota();
        let vendor = VendorSaid {
            limit: self.window.limit(),
            remaining,
            reset_secs: reset_at
                .map(|at| u64::try_from((at - Utc::now()).num_seconds()).unwrap_or(0)),
        };
        stated_quota(
            self.quota.limit(),
            self.quota.remaining(),
            vendor,
            self.window.closed_for(),
        )
    }

    /// Notes the connection's quota in the request's ledger: the request reached the vendor.
    fn note_reached(&self) {
        if let Some(state) = self.quota_state() {
            Ledger::note_connection(&self.connection, state);
        }
    }

    /// Sends `call`.
    ///
    /// Reads are served from the page cache when fresh; identical concurrent reads share one
    /// upstream call; failed reads are retried on temporary failures with exponential backoff
    /// and jitter, honouring `Retry-After`, inside the deadline. Writes are sent once and
    /// invalidate the connection's cached pages, so a caller always reads its own write.
    pub async fn send(&self, call: &Call) -> Result<Response> {
        let url = self.full_url(call);
        if !call.is_read() {
            let result = self.send_now(call, &url).await;
            self.cache.forget_pages().await;
            return result;
        }
        self.cache
            .read(&url, &self.meters, || self.send_now(call, &url))
            .await
            .map_err(|e| self.finish(e, call))
    }

    /// Sends `call` past the cache: attempts within the deadline, retried when worth it.
    async fn send_now(&self, call: &Call, url: &Url) -> Result<Response> {
        self.retry
            .run(call, &self.meters, |deadlines| {
                self.attempt(call, url, deadlines)
            })
            .await
            .map_err(|e| self.finish(e, call))
    }

    /// Names the connection and the operation in `error` (kept when already named).
    fn finish(&self, error: Error, call: &Call) -> Error {
        let error = error.with_connection(&self.connection);
        match error.operation() {
            Some(_) => error,
            None => error.with_operation(call.operation),
        }
    }

    /// One try: admitted by the breaker, the vendor window and the quota, then sent and read.
    async fn attempt(&self, call: &Call, url: &Url, deadlines: Deadlines) -> Result<Response> {
        let (admission, status, headers, body) = self
            .admitted_exchange(deadlines, |timeout| self.request_of(call, url, timeout))
            .await?;
        if status.is_success() {
            // Every vendor speaks JSON: a body that is not is a failure to retry, never a page
            // to cache. The adapter parses the body once, into its own types; here only its
            // shape is checked (an HTML page, a body cut short), which costs nothing.
            if !body::looks_like_json(&body) {
                return Err(self.failed(admission, "malformed", body::not_json()));
            }
            self.record("ok", None);
            self.answered(admission);
            return Ok(Response {
                status,
                headers,
                body,
            });
        }
        Err(self.vendor_error(admission, call, status, &headers, &body))
    }

    /// The request of `call` to `url`, to be answered within `timeout`.
    fn request_of(&self, call: &Call, url: &Url, timeout: Duration) -> reqwest::RequestBuilder {
        let request = self
            .http
            .request(call.method.clone(), url.clone())
            .headers(call.headers.clone())
            .timeout(timeout);
        match &call.body {
            Some(body) => request.json(body),
            None => request,
        }
    }

    /// Admits one request (the breaker, the vendor window, the quota, the deadline), sends what
    /// `build` makes of the time left, and reads its answer under the body cap; the vendor
    /// window hears the answer. Refused, failed on the way or too large: the error, counted.
    async fn admitted_exchange(
        &self,
        deadlines: Deadlines,
        build: impl FnOnce(Duration) -> reqwest::RequestBuilder,
    ) -> Result<(Admission<'_>, StatusCode, HeaderMap, Bytes)> {
        let admission = self
            .breaker
            .admit()
            .map_err(|wait| self.circuit_open(wait))?;
        self.meters.breaker(self.breaker.state());
        // A probe refused here (vendor window, quota, deadline) was never sent: dropping its
        // admission gives the probe back.
        if let Some(wait) = self.window.closed_for() {
            return Err(quota::rate_limited(wait, &self.meters));
        }
        self.quota.take(deadlines.request, &self.meters).await?;
        let remaining = match deadlines.attempt_left() {
            Ok(remaining) => remaining,
            Err(error) => {
                admission.neutral();
                return Err(error);
            }
        };
        let cap = self.options.shared.max_body_bytes;
        let (status, headers, body) = match self.exchange_request(build(remaining), cap).await {
            Ok(parts) => parts,
            Err(BodyError::TooLarge) => {
                self.note_reached();
                return Err(self.failed(admission, "too_large", body::too_large(cap)));
            }
            Err(BodyError::Transport(e)) => {
                let error = transport_error(e);
                let outcome = match error.kind() {
                    ErrorKind::UpstreamTimeout => "timeout",
                    _ => "unreachable",
                };
                return Err(self.failed(admission, outcome, error));
            }
        };
        self.window.observe(status, &headers).await;
        self.note_reached();
        Ok((admission, status, headers, body))
    }

    /// Sends `request` and reads its answer, at most `cap` bytes of it.
    async fn exchange_request(
        &self,
        request: reqwest::RequestBuilder,
        cap: usize,
    ) -> Result<(StatusCode, HeaderMap, Bytes), BodyError> {
        let started = Instant::now();
        let received = async {
            let response = request.send().await.map_err(BodyError::Transport)?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = body::read_capped(response, cap).await?;
            Ok((status, headers, body))
        }
        .await;
        self.meters.duration(started.elapsed());
        received
    }

    /// Sends a caller's own request to the vendor (`passthrough`) with the connection's
    /// credentials (its default headers, and `credentials` for a vendor whose token changes).
    /// The same etiquette as every call: the breaker, the vendor window, the quota and the
    /// deadline admit it, its answer is read under the body cap, the window hears what the
    /// answer says of the quota (a 429 closes it for everyone) and a 5xx counts against the
    /// breaker. Never retried, never cached: the answer comes back whatever its status. A
    /// write hides the connection's cached pages, as the adapters' writes do.
    pub async fn passthrough(
        &self,
        request: &PassthroughRequest,
        credentials: HeaderMap,
    ) -> Result<PassthroughAnswer> {
        let answer = self
            .send_through(request, credentials)
            .await
            .map_err(|e| e.with_connection(&self.connection));
        if request.method != "GET" {
            self.cache.forget_pages().await;
        }
        answer
    }

    async fn send_through(
        &self,
        request: &PassthroughRequest,
        credentials: HeaderMap,
    ) -> Result<PassthroughAnswer> {
        let method = passthrough_method(&request.method)?;
        let url = passthrough_url(
            &self.options.base_url,
            &request.path,
            request.query.as_deref(),
        )?;
        let mut headers = HeaderMap::new();
        for (name, value) in &request.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) && PASSTHROUGH_REQUEST_HEADERS.contains(&name.as_str())
            {
                headers.insert(name, value);
            }
        }
        // The connection's credentials last: nothing of the caller's can stand in for them.
        for (name, value) in &credentials {
            headers.insert(name.clone(), value.clone());
        }
        let deadline = deadline::sooner(Instant::now() + self.options.deadline);
        let deadlines = Deadlines {
            request: deadline,
            attempt: deadline,
        };
        let (admission, status, headers, body) = self
            .admitted_exchange(deadlines, |timeout| {
                let outgoing = self
                    .http
                    .request(method, url)
                    .headers(headers)
                    .timeout(timeout);
                // A request without a body goes without one (no `Content-Length: 0` on a GET).
                if request.body.is_empty() {
                    outgoing
                } else {
                    outgoing.body(request.body.clone())
                }
            })
            .await?;
        if status.is_server_error() {
            self.failed(
                admission,
                "server_error",
                Error::new(
                    ErrorKind::UpstreamUnavailable,
                    "the vendor failed to answer",
                ),
            );
        } else {
            let outcome = match status {
                StatusCode::TOO_MANY_REQUESTS => "rate_limited",
                s if s.is_success() || s.is_redirection() => "ok",
                _ => "client_error",
            };
            self.meters.request(outcome);
            self.answered(admission);
        }
        let returned = headers
            .iter()
            .filter(|(name, _)| PASSTHROUGH_ANSWER_HEADERS.contains(&name.as_str()))
            .filter_map(|(name, value)| {
                Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
            })
            .collect();
        Ok(PassthroughAnswer {
            status: status.as_u16(),
            headers: returned,
            body: body.to_vec(),
        })
    }

    /// The gateway's error for a vendor's non-2xx answer. A 5xx is a failure to the breaker;
    /// any other answer shows the vendor is up. A 429 that names no wait gets the window's.
    fn vendor_error(
        &self,
        admission: Admission<'_>,
        call: &Call,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Error {
        let mut error = (self.parse_error)(status, headers, body);
        tracing::debug!(
            connection = %self.connection,
            operation = call.operation.as_str(),
            status = status.as_u16(),
            code = error.code(),
            "vendor answered with an error"
        );
        if status.is_server_error() {
            return self.failed(admission, "server_error", error);
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            self.record("rate_limited", Some(&error));
            // The window is closed: every caller hears so at once until it reopens.
            if error.retry_after().is_none()
                && let Some(wait) = self.window.retry_after()
            {
                error = error.with_retry_after(wait);
            }
        } else {
            self.record("client_error", Some(&error));
        }
        // The vendor answered: it is up, whatever it thought of the request.
        self.answered(admission);
        error
    }

    /// Counts the call's `outcome` and keeps how it ended for the health page.
    fn record(&self, outcome: &'static str, error: Option<&Error>) {
        self.meters.request(outcome);
        let mut last = lock(&self.last);
        match error {
            None => {
                last.error = None;
                last.success_at = Some(Utc::now());
            }
            Some(e) => last.error = Some(e.code()),
        }
    }

    /// A call that failed for want of a good answer: recorded, and a failure to the breaker.
    fn failed(&self, admission: Admission<'_>, outcome: &'static str, error: Error) -> Error {
        self.record(outcome, Some(&error));
        if admission.failure() {
            tracing::warn!(connection = %self.connection, "circuit breaker opened: calls to this vendor fail fast for a while");
        }
        self.meters.breaker(self.breaker.state());
        error
    }

    /// The vendor answered: the breaker closes.
    fn answered(&self, admission: Admission<'_>) {
        admission.success();
        self.meters.breaker(self.breaker.state());
    }

    fn circuit_open(&self, wait: Duration) -> Error {
        self.meters.request("circuit_open");
        Error::new(
            ErrorKind::UpstreamUnavailable,
            "the vendor failed repeatedly; calls to it are paused for a while",
        )
        .with_code(codes::UPSTREAM_CIRCUIT_OPEN)
        .with_retry_after(wait.max(Duration::from_secs(1)))
        .unsent()
    }
}

/// What the vendor last said of its quota (`X-RateLimit-Limit`, `-Remaining`, `-Reset`).
#[derive(Debug, Clone, Copy, Default)]
struct VendorSaid {
    limit: Option<u32>,
    remaining: Option<u32>,
    reset_secs: Option<u64>,
}

/// The quota stated for a connection with budget `budget` (`left` of it after the last request),
/// what the vendor said, and its window closed for `closed`: never more than the vendor allows
/// or has left. `None` when neither the budget nor the vendor tells a quota.
fn stated_quota(
    budget: Option<RateLimit>,
    left: Option<u32>,
    vendor: VendorSaid,
    closed: Option<Duration>,
) -> Option<QuotaState> {
    let mut state = match (budget, vendor.remaining) {
        (Some(budget), _) => QuotaState::refilling(
            budget.requests,
            budget.per_seconds,
            left.unwrap_or(budget.requests),
        ),
        (None, Some(remaining)) => {
            let window = vendor.reset_secs.unwrap_or(1).max(1);
            QuotaState {
                quota: vendor.limit.unwrap_or(remaining).max(1),
                window_secs: u32::try_from(window).unwrap_or(u32::MAX),
                remaining,
                reset_secs: window,
            }
        }
        (None, None) => return None,
    };
    if let Some(limit) = vendor.limit {
        state.quota = state.quota.min(limit.max(1));
        state.remaining = state.remaining.min(state.quota);
    }
    if let Some(remaining) = vendor.remaining
        && remaining < state.remaining
    {
        state.remaining = remaining;
        state.reset_secs = vendor.reset_secs.unwrap_or(u64::from(state.window_secs));
    }
    if let Some(closed) = closed {
        state.remaining = 0;
        state.reset_secs = state.reset_secs.max(closed.as_secs().max(1));
    }
    Some(state)
}

/// The caller's headers a passthrough request forwards; every other one stays at the gateway.
pub const PASSTHROUGH_REQUEST_HEADERS: &[&str] = &["content-type", "accept", "idempotency-key"];

/// The vendor's headers a passthrough answer returns; every other one stays at the gateway.
pub const PASSTHROUGH_ANSWER_HEADERS: &[&str] = &[
    "content-type",
    "content-language",
    "content-disposition",
    "etag",
    "last-modified",
    "cache-control",
    "location",
    "link",
    "retry-after",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "x-total-count",
];

/// The methods a passthrough request may use.
fn passthrough_method(method: &str) -> Result<Method> {
    match method {
        "GET" => Ok(Method::GET),
        "POST" => Ok(Method::POST),
        "PUT" => Ok(Method::PUT),
        "PATCH" => Ok(Method::PATCH),
        "DELETE" => Ok(Method::DELETE),
        _ => Err(Error::new(
            ErrorKind::InvalidRequest,
            "passthrough accepts GET, POST, PUT, PATCH and DELETE",
        )),
    }
}

/// `path` (percent-encoded, checked by the server) and `query` under `base`. The result is checked
/// again: same scheme, host and port as `base`, and a path under `base`'s, or nothing is sent.
pub fn passthrough_url(base: &Url, path: &str, query: Option<&str>) -> Result<Url> {
    let escapes = || {
        Error::new(
            ErrorKind::InvalidRequest,
            "the passthrough path must stay under the connection's base URL",
        )
        .with_code(codes::INVALID_PASSTHROUGH_PATH)
    };
    let base_path = base.path().trim_end_matches('/');
    let mut url = base.clone();
    url.set_path(&format!("{base_path}/{path}"));
    url.set_query(query.filter(|q| !q.is_empty()));
    url.set_fragment(None);
    let under = url.path() == base_path
        || url
            .path()
            .strip_prefix(base_path)
            .is_some_and(|rest| rest.starts_with('/'));
    let same_origin = url.scheme() == base.scheme()
        && url.host_str() == base.host_str()
        && url.port_or_known_default() == base.port_or_known_default();
    if !under || !same_origin {
        return Err(escapes());
    }
    Ok(url)
}

/// A request that failed on the way. One that never connected was never sent (`unsent`); any
/// other may have reached the vendor.
fn transport_error(e: reqwest::Error) -> Error {
    if e.is_connect() {
        let error = if e.is_timeout() {
            timeout_error()
        } else {
            Error::new(
                ErrorKind::UpstreamUnavailable,
                "the vendor could not be reached",
            )
        };
        error.with_source(e).unsent()
    } else if e.is_timeout() {
        timeout_error().with_source(e)
    } else {
        Error::new(
            ErrorKind::UpstreamUnavailable,
            "the connection to the vendor failed",
        )
        .with_source(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUDGET: RateLimit = RateLimit {
        requests: 120,
        per_seconds: 60,
    };

    #[test]
    fn the_budget_is_stated_when_the_vendor_says_nothing() {
        let state =
            stated_quota(Some(BUDGET), Some(110), VendorSaid::default(), None).expect("a quota");
        assert_eq!(
            (
                state.quota,
                state.window_secs,
                state.remaining,
                state.reset_secs
            ),
            (120, 60, 110, 5)
        );
        assert_eq!(stated_quota(None, None, VendorSaid::default(), None), None);
    }

    #[test]
    fn never_more_than_the_vendor_allows_or_has_left() {
        let vendor = VendorSaid {
            limit: Some(100),
            remaining: Some(7),
            reset_secs: Some(42),
        };
        let state = stated_quota(Some(BUDGET), Some(110), vendor, None).expect("a quota");
        assert_eq!(
            (state.quota, state.remaining, state.reset_secs),
            (100, 7, 42)
        );
        let roomy = VendorSaid {
            limit: Some(1000),
            remaining: Some(900),
            reset_secs: Some(42),
        };
        let state = stated_quota(Some(BUDGET), Some(3), roomy, None).expect("a quota");
        assert_eq!((state.quota, state.remaining), (120, 3), "the budget binds");
        let unbudgeted = stated_quota(None, None, vendor, None).expect("the vendor's");
        assert_eq!((unbudgeted.quota, unbudgeted.remaining), (100, 7));
    }

    #[test]
    fn a_closed_window_leaves_nothing() {
        let state = stated_quota(
            Some(BUDGET),
            Some(110),
            VendorSaid::default(),
            Some(Duration::from_secs(90)),
        )
        .expect("a quota");
        assert_eq!((state.remaining, state.reset_secs), (0, 90));
    }
}
