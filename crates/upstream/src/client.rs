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
//!
//! Requests go out through the gateway's shared HTTP client ([`crate::http`]) with the
//! connection's own headers. A caller's own request to the vendor takes the same steps but the
//! first two ([`passthrough`]).

use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use switchboard_core::quota_state::{Ledger, QuotaState};
use switchboard_core::{ConnectionHealth, QuotaStatus, codes};
use switchboard_core::{Error, ErrorKind, Result};
use tokio::time::Instant;
use url::Url;

use crate::body::{self, BodyError, transport_error};
use crate::breaker::{Admission, Breaker};
use crate::cache::PageCache;
use crate::call::{Call, ErrorParser, Response};
use crate::lock;
use crate::meters::Meters;
use crate::options::UpstreamOptions;
use crate::quota::{self, Quota, VendorSaid, stated_quota};
use crate::retry::{Deadlines, Retry};
use crate::window::VendorWindow;

mod passthrough;
pub use passthrough::{PASSTHROUGH_ANSWER_HEADERS, PASSTHROUGH_REQUEST_HEADERS, passthrough_url};

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
    /// The connection's own headers (its credentials, marked sensitive), sent on every call.
    default_headers: HeaderMap,
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
        let http = options.shared.http.client(options.connect_timeout)?;
        let shared = &options.shared;
        let quota = Quota::new(Arc::clone(&shared.store), connection, options.rate_limit);
        Ok(Upstream {
            http,
            default_headers,
            connection: connection.to_owned(),
            parse_error,
            cache: PageCache::new(
                Arc::clone(&shared.store),
                shared.cache_ttl,
                connection,
                shared.recent.clone(),
            ),
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
            return Ok(Response::new(status, headers, body));
        }
        Err(self.vendor_error(admission, call, status, &headers, &body))
    }

    /// The request of `call` to `url`, to be answered within `timeout`.
    fn request_of(&self, call: &Call, url: &Url, timeout: Duration) -> reqwest::RequestBuilder {
        let request = self
            .http
            .request(call.method.clone(), url.clone())
            .headers(self.default_headers.clone())
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
            let mut response = request.send().await.map_err(BodyError::Transport)?;
            let status = response.status();
            let headers = std::mem::take(response.headers_mut());
            let body = body::read_capped(response, cap).await?;
            Ok((status, headers, body))
        }
        .await;
        self.meters.duration(started.elapsed());
        received
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
