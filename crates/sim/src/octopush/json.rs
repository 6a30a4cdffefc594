//! Octopush's JSON: conversations and messages as the lists show them, and its error bodies.

use super::*;

impl World {
    pub(super) fn conv_json(c: &Conv) -> Value {
        let mut v = json!({
            "conversation_id": c.conversation_id(),
            "last_user_channel": c.last_user_channel,
            "recipient_details": { "phone_number": c.phone, "name": c.name },
            "from": c.from,
            "first_message_at": c.messages.first().map(|m| ts(m.at)),
            "last_message_at": c.messages.last().map(|m| ts(m.at)),
            "last_message": c.messages.last().map(|m| m.text.clone()),
            "purpose": c.purpose,
            "color": c.color,
            "number_of_messages": c.messages.len(),
        });
        // Present only when an agent is assigned (as in the documented example).
        if let Some(agent) = c.agent {
            v["agent_assigned_to"] = json!(agent);
        }
        v
    }

    pub(super) fn message_json(c: &Conv, m: &Msg) -> Value {
        json!({
            "message_id": m.id,
            "text": m.text,
            "direction": if m.inbound { "inbound" } else { "outbound" },
            "delivery_status": m.delivery_status,
            "channel": m.channel,
            "user_identifier": c.phone,
            "user_identifiers": { "phone_number": c.phone, "email": c.email, "facebook_page_id": null },
            "agent_assigned_to": c.agent,
            "sent_at": ts(m.at),
        })
    }
}

pub(super) fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"code": status.as_u16(), "message": message})),
    )
        .into_response()
}
