//! Errors as RFC 9457 `application/problem+json`, mapped from the core error in one place.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use switchboard_core::{Error, ErrorKind, Operation};
use utoipa::{IntoResponses, ToSchema};

/// The problem+json media type.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem: what went wrong, with a stable machine `code`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type: `https://switchboard.dev/problems/{code}`.
    #[serde(rename = "type")]
    pub type_: String,
    /// Short summary of the status.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What happened, for a person.
    pub detail: String,
    /// A stable machine code to switch on (e.g. `invalid_limit`, `not_found`, `conversation_in_ai_mode`).
    #[schema(example = "invalid_updated_since")]
    pub code: String,
    /// The request parameter at fault, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub parameter: Option<String>,
    /// The connection involved, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub connection: Option<String>,
    /// The operation involved (e.g. the unsupported one), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Operation>, nullable = false)]
    pub operation: Option<String>,
    /// Seconds to wait before retrying, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub retry_after: Option<u64>,
}

/// The 429 of every authenticated route: the caller went over its client's quota.
#[derive(Debug, IntoResponses)]
#[response(
    status = 429,
    description = "Over this token's request quota (`rate_limited`); retry after `Retry-After` seconds",
    content_type = "application/problem+json",
    headers(
        ("Retry-After" = u64, description = "Seconds to wait before retrying"),
        ("X-RateLimit-Limit" = u32, description = "Requests the token may make per window"),
        ("X-RateLimit-Remaining" = u32, description = "Requests left in the window (0)"),
        ("X-RateLimit-Reset" = u64, description = "Seconds until a request is admitted again"),
    )
)]
#[allow(dead_code)] // documents the response; the error itself is `auth::OverQuota`
pub struct TooManyRequests(Problem);

/// The errors of every route that calls a vendor, listed in its OpenAPI entry.
#[derive(Debug, IntoResponses)]
#[allow(dead_code)] // documents responses; the errors themselves are `ApiError`s
pub enum UpstreamProblems {
    /// The vendor failed, answered with something unreadable, or rejected the gateway's own
    /// credential (`upstream_unavailable`, `upstream_rejected`, `upstream_auth_failed`).
    #[response(status = 502, content_type = "application/problem+json")]
    BadGateway(Problem),
    /// The vendor's quota or plan is used up (`upstream_rate_limited`, `upstream_plan_limit`);
    /// `Retry-After` says when to try again, where known.
    #[response(
        status = 503,
        content_type = "application/problem+json",
        headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))
    )]
    Unavailable(Problem),
    /// The vendor did not answer in time (`upstream_timeout`).
    #[response(status = 504, content_type = "application/problem+json")]
    Timeout(Problem),
}

/// What middleware logs about an error response (kept out of the body).
#[derive(Debug, Clone)]
pub struct ErrorLog {
    /// Status.
    pub status: u16,
    /// Code.
    pub code: &'static str,
    /// The full error, with its source chain (never sent to the caller).
    pub detail: Arc<str>,
    /// The connection involved, if any.
    pub connection: Option<Arc<str>>,
}

/// Marks a vendor's own answer (passthrough): returned as it is, whatever its status.
#[derive(Debug, Clone, Copy)]
pub struct VendorAnswer;

/// A handler error: a core error rendered as problem+json.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        ApiError(e)
    }
}

fn problem_type(code: &str) -> String {
    format!("https://switchboard.dev/problems/{code}")
}

fn render(status: StatusCode, problem: &Problem) -> Response {
    let body = serde_json::to_vec(problem).unwrap_or_default();
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        with_status(status_of(&self.0), self.0)
    }
}

/// `e` as problem+json with `status` (for statuses no error kind maps to, such as 414 and 431).
pub fn with_status(status: StatusCode, e: Error) -> Response {
    let problem = Problem::of(status, &e);
    let retry_after = problem.retry_after;
    let mut response = render(status, &problem);
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"switchboard\""),
        );
    }
    response.extensions_mut().insert(ErrorLog {
        status: status.as_u16(),
        code: e.code(),
        detail: e.to_string().into(),
        connection: e.connection().map(Into::into),
    });
    response
}

impl Problem {
    /// What the caller is told of `e`, answered with `status`: never an internal detail.
    pub fn of(status: StatusCode, e: &Error) -> Problem {
        let detail = match e.kind() {
            // Internal details stay in the log.
            ErrorKind::Unexpected | ErrorKind::Config => "an internal error occurred".to_owned(),
            _ => e.message().to_owned(),
        };
        Problem {
            type_: problem_type(e.code()),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            code: e.code().to_owned(),
            parameter: e.parameter().map(str::to_owned),
            connection: e.connection().map(str::to_owned),
            operation: e.operation().map(|op| op.as_str().to_owned()),
            retry_after: e.retry_after().map(|d| d.as_secs().max(1)),
        }
    }
}

/// The status `ApiError` answers `e` with.
pub fn status_of(e: &Error) -> StatusCode {
    StatusCode::from_u16(e.kind().http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// Turns error responses made outside the handlers (unknown route, wrong method, body too large,
/// timeout) into problem+json, and logs every request once, inside its span, at a level that
/// fits: a caller's mistake (4xx, 501) is `info`, a vendor's failure (502-504) `warn`, and only
/// the gateway's own failure (500) `error`.
pub async fn problem_layer(request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let response = as_problem(response);
    log_request(&response, started.elapsed());
    response
}

fn log_request(response: &Response, elapsed: std::time::Duration) {
    let status = response.status().as_u16();
    let latency_ms = (elapsed.as_secs_f64() * 1000.0 * 10.0).round() / 10.0;
    let Some(log) = response.extensions().get::<ErrorLog>() else {
        tracing::info!(status, latency_ms, "request served");
        return;
    };
    let code = log.code;
    let connection = log.connection.as_deref().unwrap_or("-");
    let error = crate::logging::Escaped(&log.detail);
    match status {
        500 => tracing::error!(status, latency_ms, code, connection, %error, "request failed"),
        502..=504 => {
            tracing::warn!(status, latency_ms, code, connection, %error, "vendor failed")
        }
        _ => tracing::info!(status, latency_ms, code, connection, %error, "request refused"),
    }
}

fn as_problem(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    // A handler's own error (logged below), or a JSON answer it chose (e.g. `/readyz`'s 503),
    // stays as it is; bodies from outside the handlers become problems.
    if response.extensions().get::<ErrorLog>().is_some()
        || response.extensions().get::<VendorAnswer>().is_some()
        || is_json
    {
        response
    } else {
        outside_handler(status, response.headers())
    }
}

fn outside_handler(status: StatusCode, headers: &header::HeaderMap) -> Response {
    let (code, detail) = match status {
        StatusCode::NOT_FOUND => ("not_found", "no such route"),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this route does not accept that method",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "the request body is too large"),
        StatusCode::REQUEST_TIMEOUT => ("request_timeout", "the request took too long"),
        StatusCode::GATEWAY_TIMEOUT => (
            "upstream_timeout",
            "the request took too long; the vendors were slow to answer",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("invalid_body", "send the body as application/json"),
        StatusCode::URI_TOO_LONG => ("uri_too_long", "the request target is too long"),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
            ("headers_too_large", "the request headers are too large")
        }
        StatusCode::BAD_REQUEST => ("invalid_request", "the request could not be read"),
        _ if status.is_server_error() => ("internal_error", "an internal error occurred"),
        _ => ("invalid_request", "the request is invalid"),
    };
    let problem = Problem {
        type_: problem_type(code),
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        status: status.as_u16(),
        detail: detail.to_owned(),
        code: code.to_owned(),
        parameter: None,
        connection: None,
        operation: None,
        retry_after: None,
    };
    let mut response = render(status, &problem);
    if let Some(allow) = headers.get(header::ALLOW) {
        response.headers_mut().insert(header::ALLOW, allow.clone());
    }
    response.extensions_mut().insert(ErrorLog {
        status: status.as_u16(),
        code,
        detail: detail.into(),
        connection: None,
    });
    response
}
