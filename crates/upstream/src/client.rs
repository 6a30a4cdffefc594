//! One connection's HTTP client: deadlines, quota, retries of reads, and error mapping.

use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use bytes::Bytes;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use switchboard_core::{Error, ErrorKind, Operation, Result};
use url::Url;

use crate::budget::{Budget, RateLimit};

/// Parses a vendor's non-2xx response into a gateway error. Pure; each adapter has one.
pub type ErrorParser = fn(StatusCode, &HeaderMap, &[u8]) -> Error;

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
}

impl UpstreamOptions {
    /// Defaults for `base_url`: 5 s connect, 15 s deadline, 2 retries, no quota.
    pub fn new(base_url: Url) -> UpstreamOptions {
        UpstreamOptions {
            base_url,
            connect_timeout: Duration::from_secs(5),
            deadline: Duration::from_secs(15),
            max_retries: 2,
            rate_limit: None,
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
#[derive(Debug)]
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
        serde_json::from_slice(&self.body).map_err(|e| {
            Error::new(
                ErrorKind::UpstreamUnavailable,
                "the vendor answered with a body the gateway could not read",
            )
            .with_source(e)
        })
    }
}

/// A connection's client to its vendor.
#[derive(Debug)]
pub struct Upstream {
    http: reqwest::Client,
    connection: String,
    options: UpstreamOptions,
    budget: Option<Budget>,
    parse_error: ErrorParser,
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
            .build()
            .map_err(|e| {
                Error::new(ErrorKind::Config, "could not build the HTTP client").with_source(e)
            })?;
        Ok(Upstream {
            http,
            connection: connection.to_owned(),
            budget: options.rate_limit.and_then(Budget::new),
            options,
            parse_error,
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

    /// Sends `call`. Reads are retried on temporary failures with exponential backoff and jitter,
    /// honouring `Retry-After`, inside the deadline; writes are sent once.
    pub async fn send(&self, call: &Call) -> Result<Response> {
        let started = Instant::now();
        let deadline = started + self.options.deadline;
        let retries = if call.is_read() {
            self.options.max_retries
        } else {
            0
        };
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(2))
            .with_max_times(retries)
            .with_jitter()
            .build();
        let mut attempt = 0usize;
        loop {
            attempt += 1;
            let result = self.attempt(call, deadline).await;
            let error = match result {
                Ok(response) => return Ok(response),
                Err(e) => e,
            };
            let can_retry = call.is_read() && error.is_temporary();
            let delay = match backoff.next() {
                Some(d) if can_retry => error.retry_after().map_or(d, |ra| ra.max(d)),
                _ => return Err(self.finish(error, call)),
            };
            if Instant::now() + delay >= deadline {
                return Err(self.finish(error, call));
            }
            tracing::debug!(
                connection = %self.connection,
                operation = call.operation.as_str(),
                attempt,
                code = error.code(),
                delay_ms = delay.as_millis() as u64,
                "retrying upstream read"
            );
            tokio::time::sleep(delay).await;
        }
    }

    fn finish(&self, error: Error, call: &Call) -> Error {
        let error = error.with_connection(&self.connection);
        match error.operation() {
            Some(_) => error,
            None => error.with_operation(call.operation),
        }
    }

    async fn acquire(&self, deadline: Instant) -> Result<()> {
        let Some(budget) = &self.budget else {
            return Ok(());
        };
        loop {
            match budget.try_acquire() {
                Ok(()) => return Ok(()),
                Err(wait) => {
                    if Instant::now() + wait >= deadline {
                        return Err(Error::new(
                            ErrorKind::RateLimited,
                            "the vendor's request quota for this connection is used up; retry later",
                        )
                        .with_retry_after(wait.max(Duration::from_secs(1))));
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    async fn attempt(&self, call: &Call, deadline: Instant) -> Result<Response> {
        self.acquire(deadline).await?;
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(timeout_error());
        }
        let mut request = self
            .http
            .request(call.method.clone(), self.url(&call.path))
            .headers(call.headers.clone())
            .timeout(remaining);
        if !call.query.is_empty() {
            request = request.query(&call.query);
        }
        if let Some(body) = &call.body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(transport_error)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(transport_error)?;
        if status.is_success() {
            Ok(Response {
                status,
                headers,
                body,
            })
        } else {
            let error = (self.parse_error)(status, &headers, &body);
            tracing::debug!(
                connection = %self.connection,
                operation = call.operation.as_str(),
                status = status.as_u16(),
                code = error.code(),
                "vendor answered with an error"
            );
            Err(error)
        }
    }
}

fn timeout_error() -> Error {
    Error::new(
        ErrorKind::UpstreamTimeout,
        "the vendor did not answer in time",
    )
}

fn transport_error(e: reqwest::Error) -> Error {
    if e.is_timeout() {
        timeout_error().with_source(e)
    } else if e.is_connect() {
        Error::new(
            ErrorKind::UpstreamUnavailable,
            "the vendor could not be reached",
        )
        .with_source(e)
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
