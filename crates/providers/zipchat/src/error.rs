//! Zipchat's error responses -> gateway errors. Pure, table-tested.

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;
use switchboard_core::{Error, ErrorKind, codes};
use switchboard_upstream::{StatusMessages, invalid_assignee, invalid_sender};

/// What Zipchat's error statuses mean when its body says nothing more.
pub(crate) const STATUSES: StatusMessages = StatusMessages {
    unauthorized: "Zipchat rejected this connection's API key; check the connection's api_key",
    forbidden: "Zipchat rejected this connection's API key; check the connection's api_key",
    not_found: "no such conversation or user on this connection",
    rate_limited: "Zipchat's request quota for this connection is used up; retry later",
};

/// The vendor's error message: `error`, `message` or `detail`, in that order (envelope INFERRED).
fn vendor_message(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    ["error", "message", "detail"]
        .iter()
        .find_map(|k| v.get(*k).and_then(Value::as_str))
        .map(str::to_owned)
}

/// Maps a non-2xx Zipchat response. Only the documented messages are recognised; a vendor body
/// is never passed on to the caller.
pub fn parse_error(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Error {
    let own = (status == StatusCode::UNPROCESSABLE_ENTITY)
        .then(|| unprocessable(&vendor_message(body).unwrap_or_default()));
    crate::VENDOR.classify(status, headers, own)
}

fn unprocessable(message: &str) -> Error {
    let m = message.to_ascii_lowercase();
    if m.contains("ai mode") {
        Error::new(
            ErrorKind::Conflict,
            "the conversation is answered by the AI; take it over (assign it to an agent) before replying",
        )
        .with_code(codes::CONVERSATION_IN_AI_MODE)
    } else if m.contains("24 hours") {
        Error::new(
            ErrorKind::Conflict,
            "the customer last wrote more than 24 hours ago on a Meta channel; the channel does not allow a reply now",
        )
        .with_code(codes::REPLY_WINDOW_CLOSED)
    } else if m.contains("assignee_id is not an assignable user") {
        invalid_assignee()
    } else if m.contains("sender_id is not an assignable user") {
        invalid_sender()
    } else if m.contains("sender_id is required") {
        Error::invalid_parameter(
            "sender_id",
            "Zipchat needs a sender_id (an agent id) for a reply",
        )
    } else if m.contains("message is required") {
        Error::invalid_parameter("text", "the reply text is required")
    } else if m.contains("assignee_id is required") {
        Error::invalid_parameter("assignee_id", "assignee_id is required")
    } else {
        crate::VENDOR.rejected_as_invalid()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_every_documented_error() {
        let table: &[(u16, &str, u16, &str)] = &[
            (
                401,
                r#"{"error":"Unauthorized"}"#,
                502,
                "upstream_auth_failed",
            ),
            (
                404,
                r#"{"error":"Conversation not found"}"#,
                404,
                "not_found",
            ),
            (
                422,
                r#"{"error":"assignee_id is required (use null to assign to AI)"}"#,
                422,
                "invalid_assignee_id",
            ),
            (
                422,
                r#"{"error":"assignee_id is not an assignable user for this chat"}"#,
                422,
                "invalid_assignee",
            ),
            (
                422,
                r#"{"error":"message is required"}"#,
                422,
                "invalid_text",
            ),
            (
                422,
                r#"{"error":"sender_id is required"}"#,
                422,
                "invalid_sender_id",
            ),
            (
                422,
                r#"{"error":"sender_id is not an assignable user for this chat"}"#,
                422,
                "invalid_sender",
            ),
            (
                422,
                r#"{"error":"Conversation is in AI mode; assign it to a user before sending a manual message"}"#,
                409,
                "conversation_in_ai_mode",
            ),
            (
                422,
                r#"{"message":"Cannot send: customer last messaged more than 24 hours ago on a Meta channel"}"#,
                409,
                "reply_window_closed",
            ),
            (
                422,
                r#"{"detail":"something new"}"#,
                422,
                "upstream_rejected",
            ),
            (400, "not json", 502, "upstream_rejected"),
        ];
        switchboard_behaviour::assert_vendor_errors(parse_error, table, &["something new"]);
    }
}
