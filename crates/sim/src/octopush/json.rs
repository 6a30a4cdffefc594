//! Octopush's JSON: conversations and messages as the lists show them, and its error bodies.

use serde::Serialize;

use super::*;
use crate::json::{Null, Stamp};

fn stamp(t: DateTime<Utc>) -> Stamp {
    Stamp(t, TIMES)
}

#[derive(Serialize)]
pub(super) struct RecipientJson<'a> {
    phone_number: &'a str,
    name: Option<&'a str>,
}

#[derive(Serialize)]
pub(super) struct ConversationJson<'a> {
    conversation_id: String,
    last_user_channel: &'a str,
    recipient_details: RecipientJson<'a>,
    from: &'a str,
    first_message_at: Option<Stamp>,
    last_message_at: Option<Stamp>,
    last_message: Option<&'a str>,
    purpose: &'a str,
    color: u8,
    number_of_messages: usize,
    /// Present only when an agent is assigned (as in the documented example).
    #[serde(skip_serializing_if = "Option::is_none")]
    agent_assigned_to: Option<&'a str>,
}

#[derive(Serialize)]
pub(super) struct UserIdentifiersJson<'a> {
    phone_number: &'a str,
    email: Option<&'a str>,
    facebook_page_id: Null,
}

#[derive(Serialize)]
pub(super) struct MessageJson<'a> {
    message_id: &'a str,
    text: &'a str,
    direction: &'static str,
    delivery_status: Option<&'a str>,
    channel: &'a str,
    user_identifier: &'a str,
    user_identifiers: UserIdentifiersJson<'a>,
    agent_assigned_to: Option<&'a str>,
    sent_at: Stamp,
}

impl World {
    pub(super) fn conv_json(c: &Conv) -> ConversationJson<'_> {
        ConversationJson {
            conversation_id: c.conversation_id(),
            last_user_channel: c.last_user_channel,
            recipient_details: RecipientJson {
                phone_number: &c.phone,
                name: c.name.as_deref(),
            },
            from: &c.from,
            first_message_at: c.messages.first().map(|m| stamp(m.at)),
            last_message_at: c.messages.last().map(|m| stamp(m.at)),
            last_message: c.messages.last().map(|m| m.text.as_str()),
            purpose: c.purpose,
            color: c.color,
            number_of_messages: c.messages.len(),
            agent_assigned_to: c.agent,
        }
    }

    pub(super) fn message_json<'a>(c: &'a Conv, m: &'a Msg) -> MessageJson<'a> {
        MessageJson {
            message_id: &m.id,
            text: &m.text,
            direction: if m.inbound { "inbound" } else { "outbound" },
            delivery_status: m.delivery_status,
            channel: m.channel,
            user_identifier: &c.phone,
            user_identifiers: UserIdentifiersJson {
                phone_number: &c.phone,
                email: c.email.as_deref(),
                facebook_page_id: Null,
            },
            agent_assigned_to: c.agent,
            sent_at: stamp(m.at),
        }
    }
}

pub(super) fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"code": status.as_u16(), "message": message})),
    )
        .into_response()
}
