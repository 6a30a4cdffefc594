//! Passthrough: a caller's own request to the connection's vendor API, for what the normalized
//! model leaves out. It goes through the same etiquette as every call (breaker, vendor window,
//! quota, deadline, body cap, metrics), is never retried or cached, and its path can never leave
//! the connection's base URL.

use reqwest::Method;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use switchboard_core::{Error, ErrorKind, PassthroughAnswer, PassthroughRequest, Result, codes};
use tokio::time::Instant;
use url::Url;

use super::Upstream;
use crate::deadline;
use crate::retry::Deadlines;

impl Upstream {
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
        let mut headers = self.default_headers.clone();
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
