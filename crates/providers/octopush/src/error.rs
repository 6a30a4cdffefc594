//! Octopush's error responses -> gateway errors. Pure, table-tested.
//!
//! The JSON error body of `/v1/public` is not documented: `message`, `error` and `code` are read
//! tolerantly, only to classify; a vendor body is never passed on to the caller.

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;
use switchboard_core::{Error, ErrorKind, codes};
use switchboard_upstream::StatusMessages;

use crate::wire;

/// Everything the vendor said, lowercased, for classification only.
fn vendor_words(body: &[u8]) -> String {
    let Ok(parsed) = serde_json::from_slice::<wire::ErrorBody>(body) else {
        return String::new();
    };
    let mut words = Vec::new();
    words.extend(parsed.message.into_inner());
    words.extend(parsed.code.into_inner());
    match parsed.error {
        Some(Value::String(s)) => words.push(s),
        Some(Value::Object(map)) => {
            for key in ["message", "code", "type"] {
                match map.get(key) {
                    Some(Value::String(s)) => words.push(s.clone()),
                    Some(Value::Number(n)) => words.push(n.to_string()),
                    _ => {}
                }
            }
        }
        _ => {}
    }
    words.join(" ").to_ascii_lowercase()
}

/// 403 is "forbidden to view" (DOC): the stored credential lacks the right.
const AUTH_FAILED: &str = "Octopush rejected this connection's credentials, or they may not view conversations; check the connection's api_login and api_key";

/// What Octopush's error statuses mean when its body says nothing more.
pub(crate) const STATUSES: StatusMessages = StatusMessages {
    unauthorized: AUTH_FAILED,
    forbidden: AUTH_FAILED,
    not_found: "no such conversation on this connection",
    rate_limited: "Octopush is limiting this connection's requests; retry later",
};

/// Maps a non-2xx Octopush response.
pub fn parse_error(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Error {
    let own = match status.as_u16() {
        401 | 403 | 404 | 429 => None,
        s if s < 500 => rejected(&vendor_words(body)),
        _ => None,
    };
    crate::VENDOR.classify(status, headers, own)
}

/// A 400 (or another 4xx): the vendor refused the request. The few causes worth telling apart
/// are recognised from its words (INFERRED: the body is undocumented); the others are the
/// status skeleton's "rejected".
fn rejected(words: &str) -> Option<Error> {
    if words.contains("credit") || words.contains("balance") {
        Some(
            Error::new(
                ErrorKind::Conflict,
                "the Octopush account has not enough credit to send this SMS",
            )
            .with_code(codes::UPSTREAM_PLAN_LIMIT),
        )
    } else if words.contains("api-key")
        || words.contains("api_key")
        || words.contains("api-login")
        || words.contains("authentication")
        || words.contains("unauthori")
    {
        Some(Error::new(ErrorKind::UpstreamAuth, AUTH_FAILED))
    } else if words.contains("sender") {
        Some(
            Error::new(
                ErrorKind::UpstreamUnavailable,
                "Octopush rejected the SMS sender; check the connection's sender",
            )
            .with_code(codes::UPSTREAM_REJECTED)
            .set_temporary(false),
        )
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_behaviour::vendor_error;

    #[test]
    fn maps_every_documented_status_and_tolerated_body() {
        let table: &[(u16, &str, u16, &str)] = &[
            (
                401,
                r#"{"code":401,"message":"Unauthorized"}"#,
                502,
                "upstream_auth_failed",
            ),
            (401, "", 502, "upstream_auth_failed"),
            (
                403,
                r#"{"error":"Forbidden to view"}"#,
                502,
                "upstream_auth_failed",
            ),
            (
                404,
                r#"{"message":"Conversation not found"}"#,
                404,
                "not_found",
            ),
            (
                400,
                r#"{"code":"bad_request","message":"sender is invalid"}"#,
                502,
                "upstream_rejected",
            ),
            (
                400,
                r#"{"message":"Not enough credit"}"#,
                409,
                "upstream_plan_limit",
            ),
            (
                400,
                r#"{"error":{"code":1000,"message":"Insufficient balance"}}"#,
                409,
                "upstream_plan_limit",
            ),
            (
                400,
                r#"{"error":"api-key is missing"}"#,
                502,
                "upstream_auth_failed",
            ),
            (400, r#"{"code":"oops"}"#, 502, "upstream_rejected"),
            (400, "<html>oops</html>", 502, "upstream_rejected"),
            (422, r#"[1,2]"#, 502, "upstream_rejected"),
            (
                503,
                r#"{"message":"maintenance"}"#,
                502,
                "upstream_unavailable",
            ),
        ];
        let never_shown = [
            "Forbidden to view",
            "maintenance",
            "Insufficient",
            "not found",
        ];
        switchboard_behaviour::assert_vendor_errors(parse_error, table, &never_shown);
        assert!(!vendor_error(parse_error, 400, "{}").is_temporary());
    }
}
