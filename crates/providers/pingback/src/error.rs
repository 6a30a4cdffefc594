//! PingBack's error responses -> gateway errors. Pure, table-tested.
//!
//! PingBack is a FastAPI service: errors are `{"detail": "<message>"}`, validation errors
//! `{"detail": [{"type", "loc", "msg", "input"}]}` (both INFERRED from `{"detail": "Already
//! resolved"}`), plan limits `{"error": "limit_exceeded" | "feature_locked", ...}` (DOC, 402).

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;
use switchboard_core::{Error, ErrorKind, codes};
use switchboard_upstream::{StatusMessages, invalid_assignee};

/// What PingBack's error statuses mean when its body says nothing more.
pub(crate) const STATUSES: StatusMessages = StatusMessages {
    unauthorized: "PingBack rejected this connection's login; check the connection's email and password",
    forbidden: "PingBack refused this connection's user; its role may not do this (assigning needs an owner or admin)",
    not_found: "no such conversation on this connection",
    rate_limited: "PingBack's request quota is used up; retry later",
};

/// What the gateway reads from an error body (never shown to the caller).
#[derive(Debug, Default)]
struct Body {
    /// `detail` when it is a string, else `message`.
    message: String,
    /// The last element of each validation problem's `loc` (the field or parameter name).
    fields: Vec<String>,
    /// The plan-limit `error` (`limit_exceeded`, `feature_locked`).
    plan_error: Option<String>,
}

fn read_body(body: &[u8]) -> Body {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return Body::default();
    };
    let message = ["detail", "message", "error"]
        .iter()
        .find_map(|k| v.get(*k).and_then(Value::as_str))
        .unwrap_or_default()
        .to_ascii_lowercase();
    let fields = v
        .get("detail")
        .and_then(Value::as_array)
        .map(|problems| {
            problems
                .iter()
                .filter_map(|p| p.get("loc").and_then(Value::as_array)?.last()?.as_str())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let plan_error = v
        .get("error")
        .and_then(Value::as_str)
        .filter(|e| matches!(*e, "limit_exceeded" | "feature_locked"))
        .map(str::to_owned);
    Body {
        message,
        fields,
        plan_error,
    }
}

/// Maps a non-2xx PingBack response. A vendor body is never passed on to the caller.
pub fn parse_error(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Error {
    let body = read_body(body);
    let about_an_agent = body.message.contains("agent") || body.message.contains("member");
    let own = match status.as_u16() {
        402 => Some(
            Error::new(
                ErrorKind::Conflict,
                "PingBack's plan for this account does not allow this",
            )
            .with_code(codes::UPSTREAM_PLAN_LIMIT),
        ),
        400 | 404 if about_an_agent => Some(invalid_assignee()),
        422 => Some(unprocessable(&body)),
        429 if body.plan_error.is_some() || body.message.contains("month") => Some(
            Error::new(
                ErrorKind::RateLimited,
                "PingBack's monthly message quota for this account is used up",
            )
            .with_code(codes::UPSTREAM_PLAN_LIMIT)
            .set_temporary(false),
        ),
        _ => None,
    };
    crate::VENDOR.classify(status, headers, own)
}

/// A 422: which field PingBack's validation named decides the error.
fn unprocessable(body: &Body) -> Error {
    let named = |name: &str| body.fields.iter().any(|f| f == name);
    if named("conversation_id") {
        // A conversation id PingBack cannot read cannot name one of its conversations.
        Error::not_found("no such conversation on this connection")
    } else if named("agent_id") {
        invalid_assignee()
    } else if named("email") || named("password") {
        Error::new(
            ErrorKind::UpstreamAuth,
            "PingBack rejected this connection's login as malformed; check the connection's email and password",
        )
    } else if named("content") {
        Error::invalid_parameter("text", "PingBack rejected the reply text")
    } else if named("status") {
        Error::invalid_parameter("status", "PingBack rejected the status filter")
    } else {
        crate::VENDOR.rejected_as_invalid()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_behaviour::{fixture, vendor_error};

    #[test]
    fn maps_every_documented_error() {
        let limit = fixture!("plan_limit_exceeded.json");
        let locked = fixture!("plan_feature_locked.json");
        let table: &[(u16, &str, u16, &str)] = &[
            (
                401,
                r#"{"detail":"Incorrect email or password"}"#,
                502,
                "upstream_auth_failed",
            ),
            (
                401,
                r#"{"detail":"Could not validate credentials"}"#,
                502,
                "upstream_auth_failed",
            ),
            (
                403,
                r#"{"detail":"Only owners and admins can assign conversations"}"#,
                502,
                "upstream_auth_failed",
            ),
            (
                404,
                r#"{"detail":"Conversation not found"}"#,
                404,
                "not_found",
            ),
            (404, r#"{"detail":"Not Found"}"#, 404, "not_found"),
            (
                404,
                r#"{"detail":"Agent not found"}"#,
                422,
                "invalid_assignee",
            ),
            (
                400,
                r#"{"detail":"Agent is not an active member of your team"}"#,
                422,
                "invalid_assignee",
            ),
            (
                400,
                r#"{"detail":"Cannot invite the owner"}"#,
                502,
                "upstream_rejected",
            ),
            (402, limit.as_str(), 409, "upstream_plan_limit"),
            (402, locked.as_str(), 409, "upstream_plan_limit"),
            (
                422,
                r#"{"detail":[{"type":"uuid_parsing","loc":["path","conversation_id"],"msg":"Input should be a valid UUID","input":"x"}]}"#,
                404,
                "not_found",
            ),
            (
                422,
                r#"{"detail":[{"type":"uuid_parsing","loc":["path","agent_id"],"msg":"Input should be a valid UUID","input":"x"}]}"#,
                422,
                "invalid_assignee",
            ),
            (
                422,
                r#"{"detail":[{"type":"missing","loc":["body","content"],"msg":"Field required","input":{}}]}"#,
                422,
                "invalid_text",
            ),
            (
                422,
                r#"{"detail":[{"type":"missing","loc":["body","password"],"msg":"Field required","input":{}}]}"#,
                502,
                "upstream_auth_failed",
            ),
            (
                422,
                r#"{"detail":[{"type":"int_parsing","loc":["query","page"],"msg":"Input should be a valid integer","input":"x"}]}"#,
                422,
                "upstream_rejected",
            ),
            (
                429,
                r#"{"error":"limit_exceeded","plan":"Pro","feature":"messages","current":10000,"limit":10000,"message":"Monthly message limit reached."}"#,
                503,
                "upstream_plan_limit",
            ),
            (
                429,
                r#"{"error":"Too many requests"}"#,
                503,
                "upstream_rate_limited",
            ),
        ];
        let never_shown = ["Incorrect", "Upgrade", "Omnichannel", "validate"];
        switchboard_behaviour::assert_vendor_errors(parse_error, table, &never_shown);
    }

    #[test]
    fn a_monthly_quota_is_not_retried_but_a_rate_limit_is() {
        let monthly = r#"{"error":"limit_exceeded","feature":"messages"}"#;
        assert!(!vendor_error(parse_error, 429, monthly).is_temporary());
        assert!(vendor_error(parse_error, 429, r#"{"error":"Too many requests"}"#).is_temporary());
    }
}
