//! ChatbotX's error responses (the oRPC envelope `{defined, code, status, message, data}`) ->
//! gateway errors. Pure, table-tested. A vendor body is never passed on to the caller: only its
//! `code` and the field names of validation issues are read.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use switchboard_core::{Error, ErrorKind, codes};
use switchboard_upstream::StatusMessages;
use switchboard_upstream::invalid_assignee;

use crate::wire::ErrorBody;

/// What ChatbotX's error statuses mean when its body says nothing more.
pub(crate) const STATUSES: StatusMessages = StatusMessages {
    unauthorized: "ChatbotX rejected this connection's workspace API token; check the connection's token",
    forbidden: "ChatbotX refused this connection's token for this call; it needs the `inbox` scope and write access",
    not_found: "no such conversation, message or member on this connection",
    rate_limited: "ChatbotX's request quota for this workspace is used up; retry later",
};

/// Maps a non-2xx ChatbotX response.
pub fn parse_error(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Error {
    let envelope: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let code = envelope.code.as_deref().unwrap_or("");
    let own = match (status.as_u16(), code) {
        (403, "trialExpired" | "macLimitReached") => Some(
            Error::new(
                ErrorKind::UpstreamUnavailable,
                "the ChatbotX workspace's plan does not allow this now (trial expired or contact limit reached)",
            )
            .with_code(codes::UPSTREAM_PLAN_LIMIT)
            .set_temporary(false),
        ),
        // The wait in the body, unless the headers say one.
        (429, _) => envelope.retry_after_secs().map(|secs| {
            Error::new(ErrorKind::RateLimited, STATUSES.rate_limited)
                .with_retry_after(Duration::from_secs(secs))
        }),
        (400, "invalidCursor") => Some(vendor_refused_cursor()),
        (409, "idempotencyKeyConflict") => Some(
            Error::new(
                ErrorKind::Conflict,
                "a request with this Idempotency-Key is still in progress; retry later",
            )
            .with_parameter("idempotency_key"),
        ),
        (422, "idempotencyKeyInvalid") => Some(Error::invalid_parameter(
            "idempotency_key",
            "ChatbotX accepts an Idempotency-Key of 1 to 255 characters",
        )),
        (422, "idempotencyKeyReused") => Some(Error::invalid_parameter(
            "idempotency_key",
            "this Idempotency-Key was already used with a different request",
        )),
        (422, "invalidRequestData") => Some(invalid_request_data(&envelope)),
        (400 | 422, _) => Some(crate::VENDOR.rejected_as_invalid()),
        _ => None,
    };
    crate::VENDOR.classify(status, headers, own)
}

/// ChatbotX itself refused the cursor (it expired, or the list changed under it).
fn vendor_refused_cursor() -> Error {
    Error::new(
        ErrorKind::InvalidRequest,
        "the cursor does not fit this connection; start again without a cursor",
    )
    .with_code(codes::INVALID_CURSOR)
}

/// Input validation failed: name our parameter when the vendor's field is one of ours.
fn invalid_request_data(envelope: &ErrorBody) -> Error {
    let fields = envelope.issue_fields();
    let has = |name: &str| fields.iter().any(|f| f == name);
    if has("text") {
        Error::invalid_parameter("text", "ChatbotX accepts a reply of 1 to 1000 characters")
    } else if has("assignedId") {
        invalid_assignee()
    } else if has("cursor") {
        vendor_refused_cursor()
    } else if has("id") || has("conversationId") || has("messageId") || has("memberId") {
        Error::not_found("no such conversation, message or member on this connection")
    } else {
        crate::VENDOR.rejected_as_invalid()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_behaviour::vendor_error;

    #[test]
    fn maps_every_declared_error() {
        let table: &[(u16, &str, u16, &str)] = &[
            (
                401,
                r#"{"defined":true,"code":"UNAUTHORIZED","status":401,"message":"Authentication required"}"#,
                502,
                "upstream_auth_failed",
            ),
            (
                401,
                r#"{"defined":true,"code":"INVALID_CHATBOT_TOKEN","status":401,"message":"Invalid or missing workspace API token"}"#,
                502,
                "upstream_auth_failed",
            ),
            (
                403,
                r#"{"defined":true,"code":"FORBIDDEN","status":403,"message":"You do not have permission to perform this action"}"#,
                502,
                "upstream_auth_failed",
            ),
            (
                403,
                r#"{"defined":true,"code":"trialExpired","status":403,"message":"Trial expired"}"#,
                502,
                "upstream_plan_limit",
            ),
            (
                403,
                r#"{"defined":true,"code":"macLimitReached","status":403,"message":"MAC limit"}"#,
                502,
                "upstream_plan_limit",
            ),
            (
                404,
                r#"{"defined":true,"code":"notFound","status":404,"message":"Resource not found"}"#,
                404,
                "not_found",
            ),
            (
                400,
                r#"{"defined":true,"code":"invalidCursor","status":400,"message":"The cursor is invalid. Start again without a cursor."}"#,
                400,
                "invalid_cursor",
            ),
            (
                400,
                r#"{"defined":true,"code":"businessError","status":400,"message":"secret vendor detail"}"#,
                422,
                "upstream_rejected",
            ),
            (
                400,
                r#"{"defined":true,"code":"systemError","status":400,"message":"The request could not be processed"}"#,
                422,
                "upstream_rejected",
            ),
            (
                409,
                r#"{"defined":true,"code":"idempotencyKeyConflict","status":409,"message":"in progress"}"#,
                409,
                "conflict",
            ),
            (
                422,
                r#"{"defined":true,"code":"idempotencyKeyInvalid","status":422,"message":"Idempotency-Key must be 1-255 characters"}"#,
                422,
                "invalid_idempotency_key",
            ),
            (
                422,
                r#"{"defined":true,"code":"idempotencyKeyReused","status":422,"message":"reused"}"#,
                422,
                "invalid_idempotency_key",
            ),
            (
                422,
                r#"{"defined":true,"code":"invalidRequestData","status":422,"message":"Input validation failed","data":{"issues":[{"message":"Too big","path":["text"]}]}}"#,
                422,
                "invalid_text",
            ),
            (
                422,
                r#"{"defined":true,"code":"invalidRequestData","status":422,"message":"Input validation failed","data":{"issues":[{"message":"Required","path":["assignedId"]}]}}"#,
                422,
                "invalid_assignee",
            ),
            (
                422,
                r#"{"defined":true,"code":"invalidRequestData","status":422,"message":"Input validation failed","data":{"issues":[{"message":"Invalid","path":[{"key":"id"}]}]}}"#,
                404,
                "not_found",
            ),
            (
                422,
                r#"{"defined":true,"code":"invalidRequestData","status":422,"message":"Input validation failed","data":{"issues":[{"message":"Too big","path":["perPage"]}]}}"#,
                422,
                "upstream_rejected",
            ),
            (
                422,
                r#"{"defined":true,"code":"validation","status":422,"message":"Validation error"}"#,
                422,
                "upstream_rejected",
            ),
            (
                429,
                r#"{"defined":true,"code":"tooManyRequests","status":429,"message":"Too many requests"}"#,
                503,
                "upstream_rate_limited",
            ),
            (
                500,
                r#"{"defined":false,"code":"INTERNAL_SERVER_ERROR","status":500,"message":"oops"}"#,
                502,
                "upstream_unavailable",
            ),
        ];
        switchboard_behaviour::assert_vendor_errors(parse_error, table, &["secret"]);
        assert!(!vendor_error(parse_error, 403, r#"{"code":"trialExpired"}"#).is_temporary());
    }

    #[test]
    fn waits_as_the_body_says_when_the_headers_do_not() {
        let body = r#"{"defined":true,"code":"tooManyRequests","status":429,"message":"Too many requests","data":{"retryAfter":4}}"#;
        let e = vendor_error(parse_error, 429, body);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(4)));
    }
}
