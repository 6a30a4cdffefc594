//! Zipchat wire types -> the normalized model. Pure functions.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use switchboard_core::text::{html_to_text, looks_like_html};
use switchboard_core::{
    Agent, Attachment, Author, Channel, Contact, Conversation, Direction, Escalation, Message,
    MessageContext, Mode, Origin, Status,
};

use crate::wire;

/// Maps a user to an agent; `None` without a user id.
pub fn agent(origin: &Origin, u: wire::User) -> Option<Agent> {
    let id = u.id.as_deref()?;
    Some(Agent {
        name: u.name.into(),
        email: u.email.into(),
        avatar_url: u.avatar_url.into(),
        ..origin.agent(id)
    })
}

fn contact(origin: &Origin, lead: wire::Lead) -> Contact {
    let name = lead.full_name.into_inner().or_else(|| {
        let parts: Vec<&str> = [lead.first_name.as_deref(), lead.last_name.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    });
    let mut external_ids = BTreeMap::new();
    if let Some(shopify) = lead.shopify_customer_id.into_inner() {
        external_ids.insert("shopify_customer_id".to_owned(), shopify);
    }
    Contact {
        id: lead.id.as_deref().map(|id| origin.id(id)),
        native_id: lead.id.into(),
        name,
        email: lead.email.into(),
        phone: lead.phone_number.into(),
        external_ids,
    }
}

/// Maps a conversation. `raw` is the vendor's JSON, kept when the caller asked `include=raw`.
pub fn conversation(origin: &Origin, c: wire::Conversation, raw: Option<Value>) -> Conversation {
    let last_activity_at = c
        .last_message_at
        .or(*c.updated_at)
        .or(*c.created_at)
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    let escalation = (c.last_escalated_at.is_some() || c.last_escalation_resolved_at.is_some())
        .then_some(Escalation {
            escalated_at: *c.last_escalated_at,
            resolved_at: *c.last_escalation_resolved_at,
        });
    let message_count = c.message_pagination.as_ref().and_then(|p| *p.total_count);
    Conversation {
        id: origin.id(&c.id),
        connection: origin.connection.to_owned(),
        provider: origin.provider.clone(),
        channel: c
            .channel
            .as_deref()
            .map_or(Channel::Other, Channel::from_native),
        native_channel: c.channel.into(),
        // Zipchat has no conversation status: every conversation is open.
        status: Status::Open,
        mode: c
            .manual_reply_mode
            .map(|manual| if manual { Mode::Human } else { Mode::Ai }),
        assignee: c.assignee.into_inner().and_then(|u| agent(origin, u)),
        contact: c.lead.into_inner().map(|l| contact(origin, l)),
        created_at: *c.created_at,
        updated_at: *c.updated_at,
        last_activity_at,
        last_message: None,
        message_count,
        escalation,
        url: c.share_url.into(),
        native_id: c.id,
        raw,
    }
}

/// Text and attachments of a message body: plain text, HTML, or a JSON array of blocks.
fn body(value: Option<&Value>) -> (String, Option<String>, Vec<Attachment>) {
    let blocks = match value {
        Some(Value::String(s)) => {
            let trimmed = s.trim_start();
            if trimmed.starts_with('[') {
                serde_json::from_str::<Vec<Value>>(trimmed).ok()
            } else if looks_like_html(s) {
                return (html_to_text(s), Some(s.clone()), Vec::new());
            } else {
                return (s.clone(), None, Vec::new());
            }
        }
        Some(Value::Array(items)) => Some(items.clone()),
        _ => None,
    };
    let Some(blocks) = blocks else {
        let raw = value.and_then(Value::as_str).unwrap_or_default().to_owned();
        return (raw, None, Vec::new());
    };
    let mut texts = Vec::new();
    let mut attachments = Vec::new();
    for block in &blocks {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => {
                if let Some(t) = block.get("text").and_then(Value::as_str) {
                    texts.push(t.to_owned());
                }
            }
            Some(kind) => {
                let url = block
                    .pointer("/source/url")
                    .or_else(|| block.get("url"))
                    .and_then(Value::as_str);
                if let Some(url) = url {
                    attachments.push(Attachment {
                        url: url.to_owned(),
                        content_type: (kind == "image").then(|| "image/*".to_owned()),
                        name: block.get("name").and_then(Value::as_str).map(str::to_owned),
                    });
                }
            }
            None => {}
        }
    }
    (texts.join("\n"), None, attachments)
}

/// Maps a message of the conversation `at` names.
pub fn message(at: &MessageContext, m: wire::Message, raw: Option<Value>) -> Message {
    let manual = m.manual_reply.unwrap_or(false);
    let (author, direction) = match m.role.as_deref() {
        Some("user") | Some("customer") | Some("lead") => (Author::Contact, Direction::Inbound),
        Some("assistant") | Some("agent") if manual || m.sender_id.is_some() => {
            (Author::Agent, Direction::Outbound)
        }
        Some("assistant") | Some("bot") | Some("ai") => (Author::Bot, Direction::Outbound),
        _ => (Author::System, Direction::Outbound),
    };
    let (text, html, attachments) = body(m.message.as_ref());
    let sender = match author {
        Author::Agent => m.sender_id.as_deref().map(|id| at.origin.agent(id)),
        _ => None,
    };
    Message {
        sender,
        html,
        attachments,
        raw,
        ..at.message(m.id, author, direction, text, *m.created_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_behaviour::fixture;

    const SHOP: Origin = Origin::new(&crate::VENDOR.kind, "shop");

    #[test]
    fn maps_the_documented_list_example() {
        let list: wire::ConversationList =
            serde_json::from_str(&fixture!("list_conversations.json"))
                .expect("documented JSON parses");
        assert!(list.pagination.is_none());
        let first = serde_json::from_value(list.conversations[0].clone()).expect("the item parses");
        let c = conversation(&SHOP, first, None);
        assert_eq!(c.id, "shop:12345");
        assert_eq!(c.native_id, "12345");
        assert_eq!(c.channel, Channel::Web);
        assert_eq!(c.mode, Some(Mode::Ai));
        assert_eq!(c.status, Status::Open);
        assert_eq!(c.assignee, None);
        assert_eq!(c.escalation, None);
        assert_eq!(c.last_activity_at.to_rfc3339(), "2026-01-15T10:45:00+00:00");
        let contact = c.contact.expect("lead maps to contact");
        assert_eq!(contact.id.as_deref(), Some("shop:100"));
        assert_eq!(contact.name.as_deref(), Some("John Doe"));
        assert_eq!(contact.phone.as_deref(), Some("+1234567890"));
        assert_eq!(
            c.url.as_deref(),
            Some("https://app.zipchat.ai/chats/1/conversations/12345")
        );
    }

    #[test]
    fn maps_the_show_example_with_messages() {
        let show: wire::ConversationEnvelope =
            serde_json::from_str(&fixture!("show_conversation.json")).expect("show JSON parses");
        let wire = show.into_inner();
        let messages = wire.messages.clone();
        let c = conversation(&SHOP, wire, None);
        assert_eq!(c.mode, Some(Mode::Human));
        assert_eq!(c.assignee.as_ref().map(|a| a.id.as_str()), Some("shop:7"));
        assert_eq!(
            c.assignee.as_ref().and_then(|a| a.name.as_deref()),
            Some("Jane Agent")
        );
        assert_eq!(c.message_count, Some(3));
        assert!(
            c.escalation
                .as_ref()
                .is_some_and(|e| e.escalated_at.is_some() && e.resolved_at.is_none())
        );
        let mapped: Vec<Message> = messages
            .into_iter()
            .map(|m| serde_json::from_value(m).expect("the message parses"))
            .map(|m| message(&SHOP.in_conversation("12345", c.last_activity_at), m, None))
            .collect();
        assert_eq!(mapped[0].author, Author::Contact);
        assert_eq!(mapped[0].direction, Direction::Inbound);
        assert_eq!(mapped[1].author, Author::Bot);
        assert_eq!(mapped[1].text, "Hello!");
        assert_eq!(mapped[1].html.as_deref(), Some("<p>Hello!</p>"));
        assert_eq!(mapped[2].author, Author::Agent);
        assert_eq!(
            mapped[2].sender.as_ref().map(|s| s.id.as_str()),
            Some("shop:7")
        );
        assert_eq!(mapped[2].conversation_id, "shop:12345");
    }

    #[test]
    fn tolerates_string_ids_old_channels_naive_times_and_unknown_fields() {
        let list: wire::ConversationList =
            serde_json::from_str(&fixture!("list_conversations_old_channel.json")).expect("parses");
        let first = serde_json::from_value(list.conversations[0].clone()).expect("the item parses");
        let c = conversation(&SHOP, first, None);
        assert_eq!(c.id, "shop:12346");
        assert_eq!(c.channel, Channel::Web);
        assert_eq!(c.native_channel.as_deref(), Some("chat"));
        assert_eq!(
            c.created_at.map(|t| t.to_rfc3339()).as_deref(),
            Some("2025-11-02T08:00:00+00:00")
        );
        assert_eq!(c.last_activity_at.to_rfc3339(), "2025-11-02T08:00:00+00:00");
        assert_eq!(c.assignee.map(|a| a.native_id), Some("7".to_owned()));
        assert_eq!(c.contact, None);
    }

    #[test]
    fn splits_block_messages_into_text_and_attachments() {
        let m: wire::Message =
            serde_json::from_str(&fixture!("message_blocks.json")).expect("parses");
        let m = message(&SHOP.in_conversation("1", DateTime::UNIX_EPOCH), m, None);
        assert_eq!(m.text, "Here it is");
        assert_eq!(m.attachments.len(), 1);
        assert_eq!(m.attachments[0].url, "https://cdn.example.com/p/1.jpg");
    }
}
