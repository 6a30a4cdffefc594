//! PingBack's JSON: objects as the API shows them, and FastAPI's error bodies.

use super::*;

/// Times as pydantic prints an aware UTC datetime: `Z`, fractional seconds only when present.
pub(super) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

pub(super) fn opt_ts(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| Value::String(ts(t)))
}

/// The current time at the microsecond precision the vendor stores.
pub(super) fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

impl World {
    pub(super) fn member_json(m: &Member) -> Value {
        json!({
            "id": m.membership_id,
            "user_id": m.user_id,
            "email": m.email,
            "name": m.name,
            "role": m.role,
            "status": m.status,
            "is_active": m.is_active,
            "invited_at": ts(m.invited_at),
        })
    }

    pub(super) fn message_json(conversation_id: &str, m: &Msg) -> Value {
        json!({
            "id": m.id,
            "conversation_id": conversation_id,
            "sender_type": m.sender_type,
            "sender_id": m.sender_id,
            "content": m.content,
            "attachments": m.attachments,
            "created_at": ts(m.created_at),
        })
    }

    /// A conversation as the API shows it; the list leaves `messages` empty (DOC: "may be empty
    /// in list responses for performance").
    pub(super) fn conv_json(c: &Conv, with_messages: bool) -> Value {
        let customer = c.customer.as_ref().map_or(Value::Null, |p| {
            json!({
                "id": p.id,
                "business_id": p.business_id,
                "name": p.name,
                "email": p.email,
                "phone": p.phone,
                "external_id": p.external_id,
                "created_at": ts(p.created_at),
            })
        });
        let messages: Vec<Value> = if with_messages {
            c.messages
                .iter()
                .map(|m| Self::message_json(&c.id, m))
                .collect()
        } else {
            Vec::new()
        };
        json!({
            "id": c.id,
            "business_id": c.business_id,
            "customer_id": c.customer_id,
            "assignee_id": c.assignee_id,
            "status": c.status,
            "channel_type": c.channel_type,
            "channel_id": c.channel_id,
            "created_at": ts(c.created_at),
            "updated_at": ts(c.updated_at),
            "first_response_at": opt_ts(c.first_response_at),
            "customer": customer,
            "messages": messages,
        })
    }
}

pub(super) fn detail(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "detail": message }))).into_response()
}

pub(super) fn not_found() -> Response {
    detail(StatusCode::NOT_FOUND, "Conversation not found")
}

pub(super) fn unauthorized(message: &str) -> Response {
    let mut response = detail(StatusCode::UNAUTHORIZED, message);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    response
}

/// FastAPI's validation error: every problem found, each with its location.
pub(super) fn validation(problems: Vec<Value>) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({ "detail": problems })),
    )
        .into_response()
}

pub(super) fn problem(kind: &str, loc: &[&str], msg: &str, input: Value) -> Value {
    json!({"type": kind, "loc": loc, "msg": msg, "input": input})
}
