//! PingBack wire types -> the normalized model. Pure functions.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use switchboard_core::text::{html_to_text, looks_like_html};
use switchboard_core::{
    Agent, Attachment, Author, Channel, Contact, Conversation, Direction, LastMessage, Message,
    MessageContext, Origin, Status,
};

use crate::wire::{self, MessageText};

/// Maps a team member to an agent; `None` without a `user_id` (the only assignable id).
pub fn agent(origin: &Origin, m: wire::Member) -> Option<Agent> {
    let user_id = m.user_id.as_deref()?;
    Some(Agent {
        name: m.name.into(),
        email: m.email.into(),
        ..origin.agent(user_id)
    })
}

/// The normalized status; PingBack's four statuses are the gateway's own.
pub fn status(native: Option<&str>) -> Status {
    native
        .map(|s| s.trim().to_ascii_lowercase())
        .and_then(|s| Status::parse(&s))
        .unwrap_or(Status::Open)
}

/// The contact: its id is the conversation's `customer_id` (the UUID the API takes), else the
/// embedded customer's own `id` (an integer in the docs' example).
fn contact(
    origin: &Origin,
    customer_id: Option<String>,
    customer: Option<wire::Customer>,
) -> Option<Contact> {
    if customer.is_none() && customer_id.is_none() {
        return None;
    }
    let customer = customer.unwrap_or_default();
    let native_id = customer_id.or(customer.id.into());
    Some(Contact {
        id: native_id.as_deref().map(|id| origin.id(id)),
        native_id,
        name: customer.name.into(),
        email: customer.email.into(),
        phone: customer.phone.into(),
        external_ids: customer
            .external_id
            .into_inner()
            .map(|external| BTreeMap::from([("external_id".to_owned(), external)]))
            .unwrap_or_default(),
    })
}

/// The text of a message, and its HTML when it was HTML (e-mail).
fn text(content: Option<&str>) -> (String, Option<String>) {
    match content {
        Some(s) if looks_like_html(s) => (html_to_text(s), Some(s.to_owned())),
        Some(s) => (s.to_owned(), None),
        None => (String::new(), None),
    }
}

/// An attachment: a URL, or an object with a URL (the shape is not documented).
pub fn attachment(v: &Value) -> Option<Attachment> {
    let field = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| v.get(*n).and_then(Value::as_str))
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    match v {
        Value::String(url) if !url.is_empty() => Some(Attachment {
            url: url.clone(),
            content_type: None,
            name: None,
        }),
        Value::Object(_) => Some(Attachment {
            url: field(&["url", "file_url", "download_url", "href"])?,
            content_type: field(&["content_type", "mime_type", "mimetype"])
                .or_else(|| field(&["type"]).filter(|t| t.contains('/'))),
            name: field(&["filename", "file_name", "name"]),
        }),
        _ => None,
    }
}

/// Maps a conversation. `detail` says the messages are the full history (the single-conversation
/// read), so they can be counted; `raw` is the vendor's JSON, kept when the caller asked for it.
pub fn conversation(
    origin: &Origin,
    c: wire::Conversation<MessageText>,
    detail: bool,
    raw: Option<Value>,
) -> Conversation {
    let newest = c
        .messages
        .iter()
        .filter(|m| m.created_at.is_some())
        .max_by_key(|m| *m.created_at)
        .or(c.messages.last());
    let last_message = newest.map(|m| LastMessage {
        text: text(m.content.as_deref()).0,
        created_at: *m.created_at,
    });
    // The list is ordered by `updated_at`, so that is the sort key.
    let last_activity_at = c
        .updated_at
        .or_else(|| newest.and_then(|m| *m.created_at))
        .or(*c.created_at)
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    // The list may leave `messages` empty, so only the detail's history counts them.
    let message_count = detail.then_some(c.messages.len() as u64);
    Conversation {
        id: origin.id(&c.id),
        connection: origin.connection.to_owned(),
        provider: origin.provider.clone(),
        channel: c
            .channel_type
            .as_deref()
            .map_or(Channel::Other, Channel::from_native),
        native_channel: c.channel_type.into(),
        status: status(c.status.as_deref()),
        // PingBack has no bot API: people answer every conversation.
        mode: None,
        assignee: c.assignee_id.as_deref().map(|a| origin.agent(a)),
        contact: contact(origin, c.customer_id.into(), c.customer.into()),
        created_at: *c.created_at,
        updated_at: *c.updated_at,
        last_activity_at,
        last_message,
        message_count,
        escalation: None,
        url: None,
        native_id: c.id,
        raw,
    }
}

/// Maps a message of the conversation `at` names.
pub fn message(at: &MessageContext, m: wire::Message, raw: Option<Value>) -> Message {
    let kind = m
        .sender_type
        .as_deref()
        .map(|s| s.trim().to_ascii_lowercase());
    let (author, direction) = match kind.as_deref() {
        Some("customer" | "contact" | "visitor" | "user") => (Author::Contact, Direction::Inbound),
        Some("agent") => (Author::Agent, Direction::Outbound),
        Some("bot" | "ai" | "assistant") => (Author::Bot, Direction::Outbound),
        _ => (Author::System, Direction::Outbound),
    };
    let sender = match author {
        Author::Agent => m.sender_id.as_deref().map(|id| at.origin.agent(id)),
        _ => None,
    };
    let (text, html) = text(m.content.as_deref());
    Message {
        sender,
        html,
        attachments: m.attachments.iter().filter_map(attachment).collect(),
        raw,
        ..at.message(m.id, author, direction, text, *m.created_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_behaviour::fixture;

    const HELPDESK: Origin = Origin::new(&crate::VENDOR.kind, "helpdesk");

    /// A conversation's JSON read twice, as the gateway reads it: for the conversation alone
    /// (its messages as [`MessageText`]), and for its messages, to list them.
    fn conversation_and_messages(
        json: &str,
    ) -> (wire::Conversation<MessageText>, Vec<wire::Message>) {
        let conversation = serde_json::from_str(json).expect("the conversation parses");
        let messages = serde_json::from_str::<wire::Conversation>(json)
            .expect("the conversation parses")
            .messages
            .into_inner();
        (conversation, messages)
    }

    #[test]
    fn maps_the_documented_conversation() {
        let (wire, messages) = conversation_and_messages(&fixture!("get_conversation.json"));
        let c = conversation(&HELPDESK, wire, true, None);
        assert_eq!(c.id, "helpdesk:c3d4e5f6-a7b8-9012-cdef-123456789012");
        assert_eq!(
            (c.channel, c.native_channel.as_deref()),
            (Channel::Web, Some("widget"))
        );
        assert_eq!((c.status, c.mode), (Status::Open, None));
        assert_eq!(
            c.assignee.as_ref().map(|a| a.id.as_str()),
            Some("helpdesk:a1b2c3d4-e5f6-7890-abcd-ef1234567890")
        );
        assert_eq!(c.last_activity_at.to_rfc3339(), "2024-03-01T09:20:00+00:00");
        assert_eq!(c.message_count, Some(1));
        assert_eq!(c.last_message.as_ref().map(|m| m.text.as_str()), Some("Hi"));
        // The integer `customer.id` (42) is accepted; the contact is known by `customer_id`.
        let contact = c.contact.expect("customer maps to contact");
        assert_eq!(
            contact.native_id.as_deref(),
            Some("d4e5f6a7-b8c9-0123-defa-234567890123")
        );
        assert_eq!(contact.name.as_deref(), Some("Alex Johnson"));
        assert_eq!(contact.email.as_deref(), Some("alex@example.com"));
        assert_eq!(contact.phone, None);
        assert!(contact.external_ids.is_empty());

        let at = HELPDESK.in_conversation(&c.native_id, c.last_activity_at);
        let m = message(&at, messages[0].clone(), None);
        assert_eq!(m.native_id, "g7b8c9d0-…");
        assert_eq!(
            (m.author, m.direction),
            (Author::Contact, Direction::Inbound)
        );
        assert_eq!(m.sender, None);
        assert_eq!(m.text, "Hi");
        assert_eq!(m.conversation_id, c.id);
        assert_eq!(m.created_at.to_rfc3339(), "2024-03-01T09:00:00+00:00");
    }

    #[test]
    fn maps_the_documented_list_without_messages() {
        let list: wire::ConversationList =
            serde_json::from_str(&fixture!("list_conversations.json"))
                .expect("documented JSON parses");
        assert_eq!(list.0.len(), 1);
        let first: wire::Conversation<MessageText> =
            serde_json::from_value(list.0[0].clone()).expect("the item parses");
        let c = conversation(&HELPDESK, first, false, None);
        assert_eq!(c.message_count, None);
        assert_eq!(c.last_message, None);
        assert_eq!(c.last_activity_at.to_rfc3339(), "2024-03-01T09:20:00+00:00");
        assert_eq!(
            c.created_at.map(|t| t.to_rfc3339()).as_deref(),
            Some("2024-03-01T09:00:00+00:00")
        );
    }

    #[test]
    fn maps_the_documented_reply() {
        let m: wire::Message =
            serde_json::from_str(&fixture!("send_message.json")).expect("parses");
        let at =
            HELPDESK.in_conversation("c3d4e5f6-a7b8-9012-cdef-123456789012", DateTime::UNIX_EPOCH);
        let m = message(&at, m, None);
        assert_eq!(
            (m.author, m.direction),
            (Author::Agent, Direction::Outbound)
        );
        assert_eq!(
            m.sender.map(|s| s.native_id).as_deref(),
            Some("a1b2c3d4-e5f6-7890-abcd-ef1234567890")
        );
        assert_eq!(m.text, "Thanks for reaching out! I can help you with that.");
        assert!(m.attachments.is_empty());
    }

    #[test]
    fn maps_the_documented_team_members_by_user_id() {
        let list: wire::MemberList =
            serde_json::from_str(&fixture!("team_members.json")).expect("parses");
        let agents: Vec<Agent> = list
            .0
            .into_iter()
            .filter_map(|m| agent(&HELPDESK, m))
            .collect();
        assert_eq!(agents.len(), 2);
        assert_eq!(agents[0].native_id, "f0e1d2c3-b4a5-9687-fedc-ba9876543210");
        assert_eq!(
            agents[0].id,
            "helpdesk:f0e1d2c3-b4a5-9687-fedc-ba9876543210"
        );
        assert_eq!(agents[0].name.as_deref(), Some("Sarah Chen"));
        assert_eq!(agents[1].email.as_deref(), Some("james@acme.com"));
    }

    #[test]
    fn reads_the_documented_login_and_me() {
        let login: wire::Login = serde_json::from_str(&fixture!("login.json")).expect("parses");
        assert_eq!(
            login.access_token.as_deref(),
            Some("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9...")
        );
        let me: wire::Me = serde_json::from_str(&fixture!("me.json")).expect("parses");
        assert_eq!(
            me.user.and_then(|u| u.id.into_inner()).as_deref(),
            Some("a1b2c3d4-e5f6-7890-abcd-ef1234567890")
        );
        assert_eq!(me.team_role.as_deref(), Some("owner"));
    }

    #[test]
    fn tolerates_other_shapes() {
        let json = serde_json::json!({
            "id": 17, "status": "RESOLVED", "channel_type": "x", "customer": null, "customer_id": null,
            "created_at": "2024-03-01 09:00:00", "messages": [
                {"id": 1, "sender_type": "agent", "sender_id": 9, "content": "<p>Hello &amp; bye</p>",
                 "attachments": ["https://cdn.example.com/a.pdf", {"file_url": "https://cdn.example.com/b.png",
                 "type": "image/png", "filename": "b.png"}, {"no": "url"}], "created_at": "2024-03-01T10:00:00+02:00"}
            ]
        });
        let (c, messages) = conversation_and_messages(&json.to_string());
        let mapped = conversation(&HELPDESK, c, true, None);
        assert_eq!(mapped.native_id, "17");
        assert_eq!(
            (mapped.status, mapped.channel),
            (Status::Resolved, Channel::Other)
        );
        assert_eq!((mapped.contact, mapped.assignee), (None, None));
        // Without `updated_at`, the newest message is the latest activity.
        assert_eq!(
            mapped.last_activity_at.to_rfc3339(),
            "2024-03-01T08:00:00+00:00"
        );
        let at = HELPDESK.in_conversation("17", DateTime::UNIX_EPOCH);
        let m = message(&at, messages[0].clone(), None);
        assert_eq!(m.text, "Hello & bye");
        assert_eq!(m.html.as_deref(), Some("<p>Hello &amp; bye</p>"));
        assert_eq!(m.sender.map(|s| s.id).as_deref(), Some("helpdesk:9"));
        assert_eq!(m.attachments.len(), 2);
        assert_eq!(m.attachments[1].content_type.as_deref(), Some("image/png"));
        assert_eq!(m.attachments[1].name.as_deref(), Some("b.png"));
    }
}
