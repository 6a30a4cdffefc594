//! `/v1/connections/{connection}/passthrough/{path}`: a request sent through to the connection's
//! own vendor API, with the connection's credentials and under its etiquette, for what the
//! normalized model leaves out.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use switchboard_core::{Error, ErrorKind, PassthroughAnswer, PassthroughRequest, codes};
use switchboard_upstream::PASSTHROUGH_REQUEST_HEADERS;

use crate::auth::Authenticated;
use crate::config::Scope;
use crate::problem::{ApiError, Problem, TooManyRequests, UpstreamProblems, VendorAnswer};
use crate::state::AppState;

/// The header every vendor answer carries, so a caller tells it from a gateway refusal (which
/// is problem+json without it).
pub const PASSTHROUGH_HEADER: HeaderName = HeaderName::from_static("switchboard-passthrough");

/// Sends the request through to the connection's vendor.
async fn pass_through(
    state: &AppState,
    caller: &Authenticated,
    connection: &str,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require(Scope::Passthrough)?;
    let provider = state.connection(caller, connection)?;
    let path = vendor_path(uri.path()).and_then(checked_path)?;
    let request = PassthroughRequest {
        method: method.as_str().to_owned(),
        path: path.to_owned(),
        query: uri.query().map(str::to_owned),
        headers: PASSTHROUGH_REQUEST_HEADERS
            .iter()
            .filter_map(|name| {
                let value = headers.get(*name)?.to_str().ok()?;
                Some(((*name).to_owned(), value.to_owned()))
            })
            .collect(),
        body: body.to_vec(),
    };
    let answered = provider.passthrough(request).await;
    let status = answered.as_ref().map_or_else(
        |e| crate::problem::status_of(e).as_u16(),
        |answer| answer.status,
    );
    crate::metrics::passthrough(connection, &method, status);
    tracing::info!(
        connection = %crate::logging::Escaped(connection),
        method = %method,
        path = %crate::logging::Escaped(path),
        status,
        vendor = answered.is_ok(),
        "passthrough"
    );
    Ok(vendor_answer(answered?))
}

/// The request body, at most the inbound cap.
async fn read_body(body: Body) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, crate::MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            Error::new(
                ErrorKind::TooLarge,
                format!(
                    "the request body is too large; at most {} bytes are accepted",
                    crate::MAX_BODY_BYTES
                ),
            )
            .with_code("payload_too_large")
            .into()
        })
}

/// The vendor's answer as it was: its status, body and allowlisted headers, marked as the
/// vendor's.
fn vendor_answer(answer: PassthroughAnswer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut response = (status, Body::from(answer.body)).into_response();
    let headers = response.headers_mut();
    for (name, value) in answer.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            headers.append(name, value);
        }
    }
    headers.insert(PASSTHROUGH_HEADER, HeaderValue::from_static("vendor"));
    response.extensions_mut().insert(VendorAnswer);
    response
}

/// The part of the request path after `/passthrough/`, as received (percent-encoded).
fn vendor_path(raw: &str) -> Result<&str, ApiError> {
    raw.strip_prefix("/v1/connections/")
        .and_then(|rest| rest.split_once('/'))
        .and_then(|(_, rest)| rest.strip_prefix("passthrough/"))
        .ok_or_else(|| escapes("the path must be under /v1/connections/{id}/passthrough/").into())
}

/// `path` when it stays under the connection's base URL: no `..` or `.` segment (encoded or
/// not), no empty segment (`//host`), no scheme (an absolute URL), no backslash, no NUL or other
/// control character, and no double encoding of those.
pub fn checked_path(path: &str) -> Result<&str, ApiError> {
    if path.is_empty() {
        return Err(escapes("name a path under the vendor's base URL").into());
    }
    let decoded = percent_decode(path);
    if decoded.iter().any(|&b| b == b'\\' || b < 0x20 || b == 0x7f) {
        return Err(escapes("the path may not hold a backslash or a control character").into());
    }
    let decoded = String::from_utf8_lossy(&decoded);
    let lower = decoded.to_ascii_lowercase();
    if ["%2e", "%2f", "%5c", "%00", "%25"]
        .iter()
        .any(|e| lower.contains(e))
    {
        return Err(escapes("the path may not be encoded twice").into());
    }
    let segments: Vec<&str> = decoded.split('/').collect();
    let last = segments.len() - 1;
    for (i, segment) in segments.iter().enumerate() {
        let bare = segment.split(';').next().unwrap_or_default().trim();
        if bare == "." || bare == ".." {
            return Err(escapes("the path may not hold `.` or `..` segments").into());
        }
        if segment.is_empty() && i != last {
            return Err(escapes("the path may not hold an empty segment (`//`)").into());
        }
    }
    if segments[0].contains(':') {
        return Err(escapes("the path must be relative, not an absolute URL").into());
    }
    Ok(path)
}

fn escapes(detail: &str) -> Error {
    Error::new(ErrorKind::InvalidRequest, detail)
        .with_code(codes::INVALID_PASSTHROUGH_PATH)
        .with_parameter("path")
}

/// Decodes `%XX` escapes; a `%` not followed by two hex digits stays as it is.
fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// One handler per method, each with its own operation in the spec.
macro_rules! passthrough_handler {
    ($name:ident, $method:ident, $id:literal, $summary:literal) => {
        #[doc = $summary]
        ///
        /// The request goes to `{the connection's base_url}/{path}` with its query string, its
        /// body (at most the inbound cap), its `Content-Type`, `Accept` and `Idempotency-Key`,
        /// and the connection's own credentials; nothing else of the caller's (its token, its
        /// cookies, any other header) reaches the vendor. It spends the connection's vendor
        /// quota (shared with the normalized API and the change feed's poller), honours the
        /// vendor's closed window and the breaker, and is never retried or cached. The vendor's
        /// answer comes back as it was (status, body, `Content-Type` and an allowlist of its
        /// headers), marked `Switchboard-Passthrough: vendor`; a gateway refusal is
        /// problem+json without that header. Writes made here reach the change feed only when
        /// the poller sees them. Needs the `passthrough` scope.
        #[utoipa::path(
            $method,
            path = "/v1/connections/{connection}/passthrough/{*path}",
            operation_id = $id,
            tag = "passthrough",
            params(
                ("connection" = String, Path, description = "Connection id", pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$", example = "shop-zipchat"),
                ("path" = String, Path, description = "The path under the connection's base URL (no `..`, `//`, absolute URL, backslash or NUL)", example = "chats/1/conversations"),
            ),
            responses(
                (status = 200, description = "The vendor's answer, as it was; any other status the vendor answers with comes back the same way, marked `Switchboard-Passthrough: vendor`", headers(
                    ("Switchboard-Passthrough" = String, description = "`vendor` on the vendor's own answer; absent on the gateway's refusals"),
                )),
                (status = "default", description = "The vendor's answer with another status (`Switchboard-Passthrough: vendor`)", headers(
                    ("Switchboard-Passthrough" = String, description = "`vendor` on the vendor's own answer; absent on the gateway's refusals"),
                )),
                (status = 400, description = "The path would leave the vendor's base URL (`invalid_passthrough_path`); nothing was sent", body = Problem, content_type = "application/problem+json"),
                (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
                (status = 403, description = "Missing the passthrough scope", body = Problem, content_type = "application/problem+json"),
                (status = 404, description = "No such connection (or not one this token may see)", body = Problem, content_type = "application/problem+json"),
                (status = 413, description = "The body is larger than the inbound cap", body = Problem, content_type = "application/problem+json"),
                TooManyRequests,
                (status = 501, description = "The connection has no vendor API behind it", body = Problem, content_type = "application/problem+json"),
                UpstreamProblems,
            )
        )]
        pub async fn $name(
            State(state): State<Arc<AppState>>,
            caller: Authenticated,
            Path(target): Path<(String, String)>,
            method: Method,
            uri: Uri,
            headers: HeaderMap,
            body: Body,
        ) -> Result<Response, ApiError> {
            let body = read_body(body).await?;
            pass_through(&state, &caller, &target.0, method, &uri, &headers, body).await
        }
    };
}

passthrough_handler!(
    passthrough_get,
    get,
    "passthroughGet",
    "Read from the connection's own vendor API (GET)."
);
passthrough_handler!(
    passthrough_post,
    post,
    "passthroughPost",
    "Create at the connection's own vendor API (POST)."
);
passthrough_handler!(
    passthrough_put,
    put,
    "passthroughPut",
    "Replace at the connection's own vendor API (PUT)."
);
passthrough_handler!(
    passthrough_patch,
    patch,
    "passthroughPatch",
    "Change at the connection's own vendor API (PATCH)."
);
passthrough_handler!(
    passthrough_delete,
    delete,
    "passthroughDelete",
    "Delete at the connection's own vendor API (DELETE)."
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_would_leave_the_base_url_are_refused() {
        for escape in [
            "..",
            "../admin",
            "a/../../b",
            "a/..",
            "%2e%2e/admin",
            "%2E%2E/admin",
            ".%2e/admin",
            "a/%2e%2e%2fb",
            "a%2f..%2fb",
            "%252e%252e/admin",
            "./a",
            "a/./b",
            "..;/admin",
            "/evil.example/x",
            "a//b",
            "http://evil.example/x",
            "http:%2f%2fevil.example",
            "https:evil.example",
            "a\\b",
            "a%5cb",
            "a%5C..%5Cb",
            "a%00b",
            "a%0ab",
            "",
        ] {
            let refused = checked_path(escape).expect_err(escape);
            assert_eq!(
                refused.0.code(),
                codes::INVALID_PASSTHROUGH_PATH,
                "{escape}"
            );
        }
    }

    #[test]
    fn ordinary_paths_pass_as_they_are() {
        for path in [
            "chats/1/conversations",
            "api/v1/tags/",
            "campaigns/a%20b",
            "v1/contacts/42/inboxes",
            "files/report.v2.json",
            "a/...",
        ] {
            assert_eq!(checked_path(path).expect(path), path);
        }
    }

    #[test]
    fn the_vendor_path_is_what_follows_passthrough() {
        assert_eq!(
            vendor_path("/v1/connections/shop/passthrough/chats/1").expect("a path"),
            "chats/1"
        );
        assert_eq!(
            vendor_path("/v1/connections/shop/passthrough//evil").expect("a path"),
            "/evil"
        );
    }
}
