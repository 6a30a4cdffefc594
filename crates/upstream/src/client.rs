//! One connection's HTTP client: deadlines, quota, retries of reads, and error mapping.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use switchboard_core::{BreakerState, ConnectionHealth, QuotaStatus, codes};
use switchboard_core::{Error, ErrorKind, Operation, Result};
use tokio::sync::oneshot;
use tokio::time::Instant;
use url::Url;

use crate::breaker::{Admission, Breaker, BreakerSettings, gauge};
use crate::budget::RateLimit;
use crate::deadline;
use crate::store::{MemoryStore, NotYet, Store};

/// Parses a vendor's non-2xx response into a gateway error. Pure; each adapter has one.
pub type ErrorParser = fn(StatusCode, &HeaderMap, &[u8]) -> Error;

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

/// One request to send: method, path segments under the base URL, query, JSON body, headers.
#[derive(Debug, Clone)]
pub struct Call {
    /// What the gateway was doing (for errors and logs).
    pub operation: Operation,
    /// HTTP method.
    pub method: Method,
    /// Path segments appended to the base URL, each percent-encoded.
    pub path: Vec<String>,
    /// Query parameters.
    pub query: Vec<(&'static str, String)>,
    /// JSON body.
    pub body: Option<serde_json::Value>,
    /// Extra headers (auth for vendors whose token changes, idempotency keys).
    pub headers: HeaderMap,
}

impl Call {
    /// A call of `method` to `path` for `operation`.
    pub fn new<S: Into<String>>(
        operation: Operation,
        method: Method,
        path: impl IntoIterator<Item = S>,
    ) -> Call {
        Call {
            operation,
            method,
            path: path.into_iter().map(Into::into).collect(),
            query: Vec::new(),
            body: None,
            headers: HeaderMap::new(),
        }
    }

    /// Adds a query parameter.
    pub fn query(mut self, name: &'static str, value: impl ToString) -> Call {
        self.query.push((name, value.to_string()));
        self
    }

    /// Sets the JSON body.
    pub fn json(mut self, body: serde_json::Value) -> Call {
        self.body = Some(body);
        self
    }

    /// Whether the call only reads (and so may be retried).
    pub fn is_read(&self) -> bool {
        self.method == Method::GET || self.method == Method::HEAD
    }
}

/// A successful (2xx) vendor response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl Response {
    /// Parses the body as JSON; an unreadable body is `upstream_unavailable`, never a panic.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        switchboard_core::tolerant::from_slice(&self.body).map_err(unreadable)
    }

    /// Parses the body as `T` and, with `keep_raw` (a caller's `include=raw`), keeps the vendor's
    /// JSON too. Without it `T` is read straight from the bytes; with it the tree is built once
    /// and `T` read from it, never from a copy.
    pub fn json_keeping_raw<T: serde::de::DeserializeOwned>(
        &self,
        keep_raw: bool,
    ) -> Result<(T, Option<serde_json::Value>)> {
        if !keep_raw {
            return self.json().map(|parsed| (parsed, None));
        }
        let raw: serde_json::Value = self.json()?;
        let parsed = T::deserialize(&raw).map_err(unreadable)?;
        Ok((parsed, Some(raw)))
    }
}

/// Whether a vendor's body can be JSON: empty, or an object or array whose last byte closes
/// what its first opened, or a bare literal. A body cut short ends inside a value and fails; a
/// body that passes and still does not parse fails in the adapter as `upstream_unavailable`.
fn looks_like_json(body: &[u8]) -> bool {
    let body = body.trim_ascii();
    match (body.first(), body.last()) {
        (None, _) => true,
        (Some(b'{'), Some(b'}')) | (Some(b'['), Some(b']')) => true,
        (Some(b'{' | b'['), _) => false,
        _ => serde_json::from_slice::<serde_json::Value>(body).is_ok(),
    }
}

fn unreadable(e: serde_json::Error) -> Error {
    Error::new(
        ErrorKind::UpstreamUnavailable,
        "the vendor answered with a body the gateway could not read",
    )
    .with_source(e)
}

/// What the vendor said of its own quota.
#[derive(Debug, Default)]
struct VendorWindow {
    /// No request goes out before this (a 429, or `X-RateLimit-Remaining: 0`).
    blocked_until: Option<Instant>,
    remaining: Option<u32>,
    reset_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Default)]
struct LastOutcome {
    error: Option<&'static str>,
    success_at: Option<DateTime<Utc>>,
    quota_remaining: Option<u32>,
}

type Waiters = Vec<oneshot::Sender<Result<Response>>>;

/// A connection's client to its vendor.
#[derive(Debug)]
pub struct Upstream {
    http: reqwest::Client,
    connection: String,
    options: UpstreamOptions,
    parse_error: ErrorParser,
    breaker: Breaker,
    vendor: Mutex<VendorWindow>,
    last: Mutex<LastOutcome>,
    in_flight: Mutex<HashMap<String, Waiters>>,
    meters: Meters,
}

/// The connection's metrics of every call, registered once: a `metrics` macro looks its name and
/// labels up again at each call.
#[derive(Debug)]
struct Meters {
    breaker: metrics::Gauge,
    duration: metrics::Histogram,
    /// `switchboard_upstream_requests_total` by outcome, each registered when it first happens.
    requests: Mutex<Vec<(&'static str, metrics::Counter)>>,
}

impl Meters {
    fn new(connection: &str) -> Meters {
        Meters {
            breaker: metrics::gauge!("switchboard_upstream_breaker_state", "connection" => connection.to_owned()),
            duration: metrics::histogram!("switchboard_upstream_request_duration_seconds", "connection" => connection.to_owned()),
            requests: Mutex::default(),
        }
    }

    fn request(&self, connection: &str, outcome: &'static str) {
        let mut requests = lock(&self.requests);
        if let Some((_, counter)) = requests.iter().find(|(o, _)| *o == outcome) {
            counter.increment(1);
            return;
        }
        let counter = metrics::counter!("switchboard_upstream_requests_total", "connection" => connection.to_owned(), "outcome" => outcome);
        counter.increment(1);
        requests.push((outcome, counter));
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Removes a coalesced read from the in-flight map when its leader finishes or is cancelled;
/// waiters left then see their channel close and send the read themselves.
struct Flight<'a> {
    in_flight: &'a Mutex<HashMap<String, Waiters>>,
    key: &'a str,
}

impl Flight<'_> {
    fn finish(self, result: &Result<Response>) {
        let waiters = lock(self.in_flight).remove(self.key).unwrap_or_default();
        for waiter in waiters {
            let copy = match result {
                Ok(r) => Ok(r.clone()),
                Err(e) => Err(e.duplicate()),
            };
            let _ = waiter.send(copy);
        }
    }
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        lock(self.in_flight).remove(self.key);
    }
}

fn encode_cached(response: &Response) -> Bytes {
    let mut out = Vec::with_capacity(2 + response.body.len());
    out.extend_from_slice(&response.status.as_u16().to_be_bytes());
    out.extend_from_slice(&response.body);
    Bytes::from(out)
}

fn decode_cached(bytes: Bytes) -> Option<Response> {
    let status = u16::from_be_bytes([*bytes.first()?, *bytes.get(1)?]);
    Some(Response {
        status: StatusCode::from_u16(status).ok()?,
        headers: HeaderMap::new(),
        body: bytes.slice(2..),
    })
}

fn header_number<T: std::str::FromStr>(headers: &HeaderMap, name: &str) -> Option<T> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
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
        let breaker = Breaker::new(options.shared.breaker);
        let meters = Meters::new(connection);
        meters.breaker.set(gauge(BreakerState::Closed));
        Ok(Upstream {
            http,
            connection: connection.to_owned(),
            options,
            parse_error,
            breaker,
            vendor: Mutex::default(),
            last: Mutex::default(),
            in_flight: Mutex::default(),
            meters,
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

    /// The store bucket of this connection's quota and vendor block.
    fn bucket(&self) -> String {
        format!("quota:{}", self.connection)
    }

    /// How the connection is doing.
    pub fn health(&self) -> ConnectionHealth {
        let last = lock(&self.last);
        let vendor = lock(&self.vendor);
        ConnectionHealth {
            breaker: self.breaker.state(),
            last_error: last.error.map(str::to_owned),
            last_success_at: last.success_at,
            quota: self.options.rate_limit.map(|limit| QuotaStatus {
                requests: limit.requests,
                per_seconds: limit.per_seconds,
                remaining: last.quota_remaining,
                vendor_remaining: vendor.remaining,
                vendor_reset_at: vendor.reset_at,
            }),
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
        let ttl = self.options.shared.cache_ttl;
        if !call.is_read() {
            let result = self.send_now(call, &url).await;
            // A new generation hides the connection's cached pages from every replica. When the
            // store fails here the write has been sent already: its answer stands.
            if let Err(e) = self
                .options
                .shared
                .store
                .bump_generation(&self.connection)
                .await
            {
                tracing::warn!(connection = %self.connection, error = %e, "could not invalidate cached pages after a write; they expire with their TTL");
            }
            return result;
        }
        if ttl.is_zero() {
            return self.send_now(call, &url).await;
        }
        let store = &self.options.shared.store;
        let generation = store
            .generation(&self.connection)
            .await
            .map_err(|e| self.finish(e, call))?;
        let key = format!("cache:{}:{generation}:{url}", self.connection);
        let cached = store.get(&key).await.map_err(|e| self.finish(e, call))?;
        if let Some(hit) = cached.and_then(decode_cached) {
            metrics::counter!("switchboard_upstream_cache_hits_total", "connection" => self.connection.clone())
                .increment(1);
            return Ok(hit);
        }
        let waiter = {
            let mut in_flight = lock(&self.in_flight);
            match in_flight.get_mut(&key) {
                Some(waiters) => {
                    let (tx, rx) = oneshot::channel();
                    waiters.push(tx);
                    Some(rx)
                }
                None => {
                    in_flight.insert(key.clone(), Vec::new());
                    None
                }
            }
        };
        if let Some(rx) = waiter {
            metrics::counter!("switchboard_upstream_coalesced_total", "connection" => self.connection.clone())
                .increment(1);
            if let Ok(result) = rx.await {
                return result;
            }
            // The call we waited on was cancelled: send our own.
            return self.send_now(call, &url).await;
        }
        let flight = Flight {
            in_flight: &self.in_flight,
            key: &key,
        };
        let result = self.send_now(call, &url).await;
        if let Ok(response) = &result
            && let Err(e) = store.put(&key, encode_cached(response), ttl).await
        {
            tracing::debug!(connection = %self.connection, error = %e, "could not cache a page");
        }
        flight.finish(&result);
        result
    }

    async fn send_now(&self, call: &Call, url: &Url) -> Result<Response> {
        // The connection's own deadline, or the caller's (a page deadline) when sooner.
        let deadline = deadline::sooner(Instant::now() + self.options.deadline);
        let retries = if call.is_read() {
            self.options.max_retries
        } else {
            0
        };
        // A hanging vendor must leave time for the retries.
        let attempt_budget = self.options.deadline / (retries as u32 + 1);
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(2))
            .with_max_times(retries)
            .with_jitter()
            .build();
        let mut attempt = 0usize;
        let mut previous: Option<Error> = None;
        loop {
            attempt += 1;
            let attempt_deadline = deadline.min(Instant::now() + attempt_budget);
            let error = match self.attempt(call, url, deadline, attempt_deadline).await {
                Ok(response) => return Ok(response),
                // This request's own failures opened the breaker: the caller hears what the
                // vendor did, not that the gateway stopped asking.
                Err(e) if e.code() == codes::UPSTREAM_CIRCUIT_OPEN && previous.is_some() => {
                    return Err(self.finish(previous.take().unwrap_or(e), call));
                }
                Err(e) => e,
            };
            let delay = match backoff.next() {
                Some(d) if call.is_read() && worth_retrying(&error) => {
                    error.retry_after().map_or(d, |ra| ra.max(d))
                }
                _ => return Err(self.finish(error, call)),
            };
            // "Not before T" past the deadline is never slept on: the caller hears it now.
            if Instant::now() + delay >= deadline {
                return Err(self.finish(error, call));
            }
            metrics::counter!("switchboard_upstream_retries_total", "connection" => self.connection.clone())
                .increment(1);
            tracing::debug!(
                connection = %self.connection,
                operation = call.operation.as_str(),
                attempt,
                code = error.code(),
                delay_ms = delay.as_millis() as u64,
                "retrying upstream read"
            );
            tokio::time::sleep(delay).await;
            previous = Some(error);
        }
    }

    fn finish(&self, error: Error, call: &Call) -> Error {
        let error = error.with_connection(&self.connection);
        match error.operation() {
            Some(_) => error,
            None => error.with_operation(call.operation),
        }
    }

    /// Takes one request from the connection's budget, waiting for it within the deadline; fails
    /// at once while the vendor's own window is known to be closed: the vendor never sees the
    /// excess, and no caller waits on a window that will not open in time.
    async fn acquire(&self, deadline: Instant) -> Result<()> {
        let blocked_until = lock(&self.vendor).blocked_until;
        if let Some(until) = blocked_until {
            let now = Instant::now();
            if until > now {
                return Err(self.rate_limited(until - now));
            }
        }
        // The store's answer is the shared budget and block: when it cannot answer, no request
        // goes out (`store_unavailable`).
        let bucket = self.bucket();
        let store = &self.options.shared.store;
        loop {
            let taken = match self.options.rate_limit {
                Some(limit) => store.take(&bucket, limit).await?,
                None => match store.blocked_for(&bucket).await? {
                    Some(wait) => Err(NotYet::blocked(wait)),
                    None => return Ok(()),
                },
            };
            match taken {
                Ok(left) => {
                    lock(&self.last).quota_remaining = Some(left.remaining);
                    return Ok(());
                }
                // Another replica heard the vendor close its window.
                Err(not_yet) if not_yet.blocked => return Err(self.rate_limited(not_yet.wait)),
                Err(NotYet { wait, .. }) => {
                    if Instant::now() + wait >= deadline {
                        lock(&self.last).quota_remaining = Some(0);
                        return Err(self.rate_limited(wait));
                    }
                    metrics::counter!("switchboard_upstream_quota_waits_total", "connection" => self.connection.clone())
                        .increment(1);
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    fn rate_limited(&self, wait: Duration) -> Error {
        self.meters.request(&self.connection, "quota_exhausted");
        Error::new(
            ErrorKind::RateLimited,
            "the vendor's request quota for this connection is used up; retry later",
        )
        .with_retry_after(wait.max(Duration::from_secs(1)))
    }

    /// Keeps the budget in step with what the vendor says of its quota. A closed window is
    /// shared with every replica before the caller hears of it, so once any caller has seen
    /// the vendor's 429 no replica sends to that connection until the window reopens.
    async fn observe_vendor_window(&self, status: StatusCode, headers: &HeaderMap) {
        let remaining: Option<u32> = header_number(headers, "x-ratelimit-remaining");
        let reset: Option<i64> = header_number(headers, "x-ratelimit-reset");
        let wait = if status == StatusCode::TOO_MANY_REQUESTS {
            retry_after_from_headers(headers).or(Some(Duration::from_secs(1)))
        } else if remaining == Some(0) {
            retry_after_from_headers(headers)
        } else {
            None
        };
        {
            let mut vendor = lock(&self.vendor);
            if remaining.is_some() {
                vendor.remaining = remaining;
                vendor.reset_at = reset.and_then(|r| DateTime::from_timestamp(r, 0));
            }
            if let Some(wait) = wait {
                vendor.blocked_until = Some(Instant::now() + wait);
            }
        }
        let Some(wait) = wait else {
            return;
        };
        // Every replica holds back too; this replica already does (above) while it lands.
        if let Err(e) = self.options.shared.store.block(&self.bucket(), wait).await {
            tracing::warn!(connection = %self.connection, error = %e, "could not share the vendor's block with other replicas");
        }
    }

    fn record(&self, outcome: &'static str, error: Option<&Error>) {
        self.meters.request(&self.connection, outcome);
        let mut last = lock(&self.last);
        match error {
            None => {
                last.error = None;
                last.success_at = Some(Utc::now());
            }
            Some(e) => last.error = Some(e.code()),
        }
    }

    fn breaker_failure(&self, admission: Admission<'_>) {
        if admission.failure() {
            tracing::warn!(connection = %self.connection, "circuit breaker opened: calls to this vendor fail fast for a while");
        }
        self.breaker_gauge();
    }

    fn breaker_success(&self, admission: Admission<'_>) {
        admission.success();
        self.breaker_gauge();
    }

    fn breaker_gauge(&self) {
        self.meters.breaker.set(gauge(self.breaker.state()));
    }

    fn circuit_open(&self, wait: Duration) -> Error {
        self.meters.request(&self.connection, "circuit_open");
        Error::new(
            ErrorKind::UpstreamUnavailable,
            "the vendor failed repeatedly; calls to it are paused for a while",
        )
        .with_code(codes::UPSTREAM_CIRCUIT_OPEN)
        .with_retry_after(wait.max(Duration::from_secs(1)))
        .unsent()
    }

    /// Reads a 2xx/4xx/5xx body, at most `max_body_bytes` of it: a larger answer is refused
    /// as soon as its `Content-Length` or its bytes say so, never read whole.
    async fn read_body(&self, mut response: reqwest::Response) -> Result<Bytes, BodyError> {
        let cap = self.options.shared.max_body_bytes;
        if response.content_length().is_some_and(|n| n > cap as u64) {
            return Err(BodyError::TooLarge);
        }
        let mut body = bytes::BytesMut::with_capacity(
            response.content_length().map_or(8 * 1024, |n| n as usize),
        );
        while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
            if body.len() + chunk.len() > cap {
                return Err(BodyError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }

    async fn attempt(
        &self,
        call: &Call,
        url: &Url,
        deadline: Instant,
        attempt_deadline: Instant,
    ) -> Result<Response> {
        let admission = self
            .breaker
            .admit()
            .map_err(|wait| self.circuit_open(wait))?;
        self.breaker_gauge();
        // A probe refused here (quota, deadline) was never sent: dropping its admission gives
        // the probe back.
        self.acquire(deadline).await.map_err(Error::unsent)?;
        let remaining = attempt_deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            admission.neutral();
            return Err(timeout_error().unsent());
        }
        let mut request = self
            .http
            .request(call.method.clone(), url.clone())
            .headers(call.headers.clone())
            .timeout(remaining);
        if let Some(body) = &call.body {
            request = request.json(body);
        }
        let started = Instant::now();
        let received = async {
            let response = request.send().await.map_err(BodyError::Transport)?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = self.read_body(response).await?;
            Ok::<_, BodyError>((status, headers, body))
        }
        .await;
        self.meters.duration.record(started.elapsed().as_secs_f64());
        let (status, headers, body) = match received {
            Ok(parts) => parts,
            Err(BodyError::TooLarge) => {
                let error = Error::new(
                    ErrorKind::UpstreamUnavailable,
                    format!(
                        "the vendor's answer was larger than the gateway accepts ({} bytes)",
                        self.options.shared.max_body_bytes
                    ),
                )
                .with_code(codes::UPSTREAM_RESPONSE_TOO_LARGE)
                .set_temporary(false);
                self.record("too_large", Some(&error));
                self.breaker_failure(admission);
                return Err(error);
            }
            Err(BodyError::Transport(e)) => {
                let error = transport_error(e);
                self.record(
                    if error.kind() == ErrorKind::UpstreamTimeout {
                        "timeout"
                    } else {
                        "unreachable"
                    },
                    Some(&error),
                );
                self.breaker_failure(admission);
                return Err(error);
            }
        };
        self.observe_vendor_window(status, &headers).await;
        if status.is_success() {
            // Every vendor speaks JSON: a body that is not is a failure to retry, never a page
            // to cache. The adapter parses the body once, into its own types; here only its
            // shape is checked (an HTML page, a body cut short), which costs nothing.
            if !looks_like_json(&body) {
                let error = Error::new(
                    ErrorKind::UpstreamUnavailable,
                    "the vendor answered with a body the gateway could not read",
                );
                self.record("malformed", Some(&error));
                self.breaker_failure(admission);
                return Err(error);
            }
            self.record("ok", None);
            self.breaker_success(admission);
            return Ok(Response {
                status,
                headers,
                body,
            });
        }
        let mut error = (self.parse_error)(status, &headers, &body);
        tracing::debug!(
            connection = %self.connection,
            operation = call.operation.as_str(),
            status = status.as_u16(),
            code = error.code(),
            "vendor answered with an error"
        );
        if status.is_server_error() {
            self.record("server_error", Some(&error));
            self.breaker_failure(admission);
        } else {
            if status == StatusCode::TOO_MANY_REQUESTS {
                self.record("rate_limited", Some(&error));
                // The window is closed: every caller hears so at once until it reopens.
                if error.retry_after().is_none()
                    && let Some(until) = lock(&self.vendor).blocked_until
                {
                    error = error.with_retry_after(
                        until
                            .saturating_duration_since(Instant::now())
                            .max(Duration::from_secs(1)),
                    );
                }
            } else {
                self.record("client_error", Some(&error));
            }
            // The vendor answered: it is up, whatever it thought of the request.
            self.breaker_success(admission);
        }
        Err(error)
    }
}

/// Why a vendor's answer could not be read.
enum BodyError {
    Transport(reqwest::Error),
    TooLarge,
}

/// Whether a failed read may be tried again inside the same request: not while the breaker is
/// open, the vendor's window is closed, or the answer was refused for its size.
fn worth_retrying(error: &Error) -> bool {
    error.is_temporary()
        && error.kind() != ErrorKind::RateLimited
        && error.code() != codes::UPSTREAM_CIRCUIT_OPEN
}

fn timeout_error() -> Error {
    Error::new(
        ErrorKind::UpstreamTimeout,
        "the vendor did not answer in time",
    )
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

/// How long a vendor asks to wait: `Retry-After` (seconds), else `X-RateLimit-Reset` (a Unix
/// timestamp, or seconds from now when small).
pub fn retry_after_from_headers(headers: &HeaderMap) -> Option<Duration> {
    let number = |name: &str| -> Option<i64> {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
    };
    if let Some(secs) = number(RETRY_AFTER.as_str()) {
        return Some(Duration::from_secs(secs.max(0) as u64));
    }
    let reset = number("x-ratelimit-reset")?;
    let now = chrono::Utc::now().timestamp();
    let secs = if reset > 1_000_000_000 {
        reset - now
    } else {
        reset
    };
    Some(Duration::from_secs(secs.max(1) as u64))
}

#[cfg(test)]
mod tests {
    use super::looks_like_json;

    #[test]
    fn a_body_cut_short_or_not_json_is_refused() {
        for ok in [
            &b""[..],
            b" {\"a\": [1, {\"b\": 2}]} \n",
            b"[]",
            b"null",
            b"\"text\"",
            b"42",
        ] {
            assert!(looks_like_json(ok), "{}", String::from_utf8_lossy(ok));
        }
        for bad in [
            &b"{\"conversations\": [ {\"id\": "[..],
            b"[1, 2",
            b"<html><body>Bad gateway</body></html>",
            b"{\"a\": 1}]",
            b"nul",
        ] {
            assert!(!looks_like_json(bad), "{}", String::from_utf8_lossy(bad));
        }
    }
}
