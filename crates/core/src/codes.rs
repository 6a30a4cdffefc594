//! Every stable machine `code` an error response can carry, in one place, so the OpenAPI spec can
//! list them and clients can switch on them.

/// The conversation is answered by the bot; a person must take it over before replying.
pub const CONVERSATION_IN_AI_MODE: &str = "conversation_in_ai_mode";
/// The channel's reply window (e.g. Meta's 24 hours) has closed.
pub const REPLY_WINDOW_CLOSED: &str = "reply_window_closed";
/// The assignee is not an assignable agent on this connection.
pub const INVALID_ASSIGNEE: &str = "invalid_assignee";
/// The sender is not an agent who may send on this connection.
pub const INVALID_SENDER: &str = "invalid_sender";
/// The cursor is malformed, forged, or was made for other filters or another caller.
pub const INVALID_CURSOR: &str = "invalid_cursor";
/// The event cursor is older than the event log's retention: resync, then read from the start.
pub const CURSOR_EXPIRED: &str = "cursor_expired";
/// The vendor's plan or quota forbids the operation.
pub const UPSTREAM_PLAN_LIMIT: &str = "upstream_plan_limit";
/// The vendor rejected the request as invalid for a reason the gateway does not map further.
pub const UPSTREAM_REJECTED: &str = "upstream_rejected";
/// The connection's vendor failed repeatedly; calls to it are paused (circuit breaker open).
pub const UPSTREAM_CIRCUIT_OPEN: &str = "upstream_circuit_open";
/// The vendor's answer was larger than `max_upstream_body_bytes`; it was not read whole.
pub const UPSTREAM_RESPONSE_TOO_LARGE: &str = "upstream_response_too_large";
/// The `Idempotency-Key` was used before for a different request.
pub const IDEMPOTENCY_KEY_REUSED: &str = "idempotency_key_reused";
/// A request with this `Idempotency-Key` is still in progress.
pub const IDEMPOTENCY_IN_PROGRESS: &str = "idempotency_in_progress";

/// A passthrough path that would leave the connection's base URL (`..`, `//host`, an absolute
/// URL, a backslash, a NUL); nothing was sent.
pub const INVALID_PASSTHROUGH_PATH: &str = "invalid_passthrough_path";

/// Request parameters whose errors carry their own `invalid_{name}` code.
pub const PARAMETERS: &[&str] = &[
    "id",
    "connection",
    "provider",
    "status",
    "mode",
    "channel",
    "assignee_id",
    "updated_since",
    "since",
    "limit",
    "cursor",
    "include",
    "body",
    "text",
    "sender_id",
    "idempotency_key",
    "type",
];

/// The code for an invalid `parameter`: `invalid_{parameter}` for known ones, else `invalid_parameter`.
pub fn invalid_code(parameter: &str) -> &'static str {
    match parameter {
        "id" => "invalid_id",
        "connection" => "invalid_connection",
        "provider" => "invalid_provider",
        "status" => "invalid_status",
        "mode" => "invalid_mode",
        "channel" => "invalid_channel",
        "assignee_id" => "invalid_assignee_id",
        "updated_since" => "invalid_updated_since",
        "since" => "invalid_since",
        "limit" => "invalid_limit",
        "cursor" => INVALID_CURSOR,
        "include" => "invalid_include",
        "body" => "invalid_body",
        "text" => "invalid_text",
        "sender_id" => "invalid_sender_id",
        "idempotency_key" => "invalid_idempotency_key",
        "type" => "invalid_type",
        _ => "invalid_parameter",
    }
}

/// Every code the gateway can emit, for the OpenAPI `code` enum (a test checks that every code
/// the source uses is here).
pub fn all() -> Vec<&'static str> {
    use crate::error::ErrorKind::*;
    let mut codes: Vec<&'static str> = [
        InvalidRequest,
        Unprocessable,
        Unauthenticated,
        Forbidden,
        NotFound,
        Conflict,
        Gone,
        Unsupported,
        TooManyRequests,
        RateLimited,
        UpstreamAuth,
        UpstreamTimeout,
        UpstreamUnavailable,
        StoreUnavailable,
        Unexpected,
    ]
    .into_iter()
    .map(|k| k.default_code())
    .collect();
    codes.extend(PARAMETERS.iter().map(|p| invalid_code(p)));
    codes.extend([
        CONVERSATION_IN_AI_MODE,
        REPLY_WINDOW_CLOSED,
        INVALID_ASSIGNEE,
        INVALID_SENDER,
        UPSTREAM_PLAN_LIMIT,
        UPSTREAM_REJECTED,
        UPSTREAM_CIRCUIT_OPEN,
        UPSTREAM_RESPONSE_TOO_LARGE,
        IDEMPOTENCY_KEY_REUSED,
        IDEMPOTENCY_IN_PROGRESS,
        INVALID_PASSTHROUGH_PATH,
        "payload_too_large",
        "uri_too_long",
        "headers_too_large",
        "method_not_allowed",
        "rate_limited",
        "request_timeout",
    ]);
    codes.sort_unstable();
    codes.dedup();
    codes
}
