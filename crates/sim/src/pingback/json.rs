//! PingBack's JSON: objects as the API shows them, and FastAPI's error bodies.

use serde::Serialize;

use super::*;
use crate::json::{Fraction, Stamp, TimeFormat};

/// Times as pydantic prints an aware UTC datetime: `Z`, fractional seconds only when present.
const TIMES: TimeFormat = TimeFormat {
    fraction: Fraction::Auto,
    offset: None,
};

pub(super) fn ts(t: DateTime<Utc>) -> String {
    TIMES.text(t)
}

fn stamp(t: DateTime<Utc>) -> Stamp {
    Stamp(t, TIMES)
}

/// The current time at the microsecond precision the vendor stores.
pub(super) fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

#[derive(Serialize)]
pub(super) struct MemberJson<'a> {
    id: &'a str,
    user_id: &'a str,
    email: &'a str,
    name: &'a str,
    role: &'a str,
    status: &'a str,
    is_active: bool,
    invited_at: Stamp,
}

#[derive(Serialize)]
pub(super) struct MessageJson<'a> {
    id: &'a str,
    conversation_id: &'a str,
    sender_type: &'a str,
    sender_id: Option<&'a str>,
    content: &'a str,
    attachments: &'a [Value],
    created_at: Stamp,
}

#[derive(Serialize)]
pub(super) struct CustomerJson<'a> {
    id: &'a Value,
    business_id: &'a Value,
    name: Option<&'a str>,
    email: Option<&'a str>,
    phone: Option<&'a str>,
    external_id: Option<&'a str>,
    created_at: Stamp,
}

#[derive(Serialize)]
pub(super) struct ConversationJson<'a> {
    id: &'a str,
    business_id: &'a str,
    customer_id: Option<&'a str>,
    assignee_id: Option<&'a str>,
    status: &'a str,
    channel_type: &'a str,
    channel_id: Option<&'a str>,
    created_at: Stamp,
    updated_at: Stamp,
    first_response_at: Option<Stamp>,
    customer: Option<CustomerJson<'a>>,
    messages: Vec<MessageJson<'a>>,
}

impl World {
    pub(super) fn member_json(m: &Member) -> MemberJson<'_> {
        MemberJson {
            id: &m.membership_id,
            user_id: &m.user_id,
            email: &m.email,
            name: &m.name,
            role: m.role,
            status: m.status,
            is_active: m.is_active,
            invited_at: stamp(m.invited_at),
        }
    }

    pub(super) fn message_json<'a>(conversation_id: &'a str, m: &'a Msg) -> MessageJson<'a> {
        MessageJson {
            id: &m.id,
            conversation_id,
            sender_type: m.sender_type,
            sender_id: m.sender_id.as_deref(),
            content: &m.content,
            attachments: &m.attachments,
            created_at: stamp(m.created_at),
        }
    }

    /// A conversation as the API shows it; the list leaves `messages` empty (DOC: "may be empty
    /// in list responses for performance").
    pub(super) fn conv_json(c: &Conv, with_messages: bool) -> ConversationJson<'_> {
        let customer = c.customer.as_ref().map(|p| CustomerJson {
            id: &p.id,
            business_id: &p.business_id,
            name: p.name.as_deref(),
            email: p.email.as_deref(),
            phone: p.phone.as_deref(),
            external_id: p.external_id.as_deref(),
            created_at: stamp(p.created_at),
        });
        let messages = if with_messages {
            c.messages
                .iter()
                .map(|m| Self::message_json(&c.id, m))
                .collect()
        } else {
            Vec::new()
        };
        ConversationJson {
            id: &c.id,
            business_id: &c.business_id,
            customer_id: c.customer_id.as_deref(),
            assignee_id: c.assignee_id.as_deref(),
            status: c.status,
            channel_type: c.channel_type,
            channel_id: c.channel_id.as_deref(),
            created_at: stamp(c.created_at),
            updated_at: stamp(c.updated_at),
            first_response_at: c.first_response_at.map(stamp),
            customer,
            messages,
        }
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
