//! ChatbotX wire types -> the normalized model. Pure functions.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use switchboard_core::text::{html_to_text, looks_like_html};
use switchboard_core::tolerant::parse_timestamp;
use switchboard_core::{
    Agent, Attachment, Author, Channel, Contact, Conversation, DeliveryStatus, Direction,
    LastMessage, Message, MessageContext, Mode, Origin, Status,
};

use crate::wire;

/// ChatbotX's channel string for a channel, where it has one (for the list's `channel` filter).
pub fn native_channel(channel: Channel) -> Option<&'static str> {
    match channel {
        Channel::Web => Some("webchat"),
        Channel::Email => Some("smtp"),
        Channel::Whatsapp => Some("whatsapp"),
        Channel::Instagram => Some("instagram"),
        Channel::Messenger => Some("messenger"),
        Channel::Telegram => Some("telegram"),
        Channel::Zalo => Some("zalo"),
        Channel::Tiktok => Some("tiktok"),
        Channel::Sms | Channel::Rcs | Channel::Other => None,
    }
}

/// The channel of a ChatbotX channel string (`smtp` is e-mail; the rest as usual).
pub fn channel(native: &str) -> Channel {
    match native.trim().to_ascii_lowercase().as_str() {
        "smtp" => Channel::Email,
        other => Channel::from_native(other),
    }
}

/// Maps a user to an agent; `None` without a user id (nothing could be assigned to it).
pub fn user_agent(origin: &Origin, u: wire::User) -> Option<Agent> {
    let id = u.id.as_deref()?;
    Some(Agent {
        name: u.name.into(),
        email: u.email.into(),
        avatar_url: u.image.into(),
        ..origin.agent(id)
    })
}

/// Maps a workspace member to an agent. Its id is the member's *user* id, which is what
/// `assign` takes and what conversations name as `assignedUser`.
pub fn member_agent(origin: &Origin, m: wire::Member) -> Option<Agent> {
    let user = m.user.into_inner().unwrap_or_default();
    let user_id = m.user_id.into_inner().or(user.id.into_inner())?;
    user_agent(
        origin,
        wire::User {
            id: Some(user_id).into(),
            ..user
        },
    )
}

fn contact(origin: &Origin, c: wire::Contact) -> Contact {
    let name = c
        .full_name
        .into_inner()
        .filter(|n| !n.trim().is_empty())
        .or_else(|| {
            let parts: Vec<&str> = [c.first_name.as_deref(), c.last_name.as_deref()]
                .into_iter()
                .flatten()
                .filter(|p| !p.trim().is_empty())
                .collect();
            (!parts.is_empty()).then(|| parts.join(" "))
        });
    Contact {
        id: c.id.as_deref().map(|id| origin.id(id)),
        native_id: c.id.into(),
        name,
        email: c.email.into(),
        phone: c.phone_number.into(),
        external_ids: BTreeMap::new(),
    }
}

/// The conversation's raw channel: top-level `channel`, else its first contact inbox's, else
/// its inbox's.
fn native_channel_of(c: &wire::Conversation) -> Option<String> {
    c.channel
        .as_ref()
        .or_else(|| c.contact_inboxes.iter().find_map(|ci| ci.channel.as_ref()))
        .or_else(|| c.inbox.as_ref().and_then(|i| i.channel.as_ref()))
        .cloned()
}

/// The conversation's latest activity, from `lastActivityAt`, else `updatedAt`/`createdAt`.
pub fn last_activity(c: &wire::Conversation) -> DateTime<Utc> {
    c.last_activity_at
        .as_deref()
        .and_then(parse_timestamp)
        .or(*c.updated_at)
        .or(*c.created_at)
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// Compares numeric-string ids as numbers (longer is larger), others as strings.
pub fn compare_ids(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// The time ChatbotX's list orders a conversation by: its `lastActivityAt`, read.
pub fn listed_at(c: &wire::Conversation) -> Option<DateTime<Utc>> {
    c.last_activity_at.as_deref().and_then(parse_timestamp)
}

/// ChatbotX's list order of two conversations, each given as its [`listed_at`] and id:
/// `lastActivityAt` present first, then `lastActivityAt` desc, `id` desc.
pub fn list_order(a: (Option<DateTime<Utc>>, &str), b: (Option<DateTime<Utc>>, &str)) -> Ordering {
    match (a.0, b.0) {
        (Some(x), Some(y)) => y.cmp(&x),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
    .then_with(|| compare_ids(b.1, a.1))
}

/// Maps a conversation. `raw` is the vendor's JSON, kept for `include=raw`.
pub fn conversation(origin: &Origin, c: wire::Conversation, raw: Option<Value>) -> Conversation {
    let native = native_channel_of(&c);
    let last_activity_at = last_activity(&c);
    let assignee = c
        .assigned_user
        .into_inner()
        .and_then(|u| user_agent(origin, u))
        .or_else(|| c.assigned_user_id.as_deref().map(|id| origin.agent(id)));
    let last_message = c.messages.first().and_then(|m| {
        let text = m.text.as_deref()?;
        Some(LastMessage {
            text: plain(text).0,
            created_at: *m.created_at,
        })
    });
    Conversation {
        id: origin.id(&c.id),
        connection: origin.connection.to_owned(),
        provider: origin.provider.clone(),
        channel: native.as_deref().map_or(Channel::Other, channel),
        native_channel: native,
        status: if c.archived_at.as_deref().is_some_and(|a| !a.is_empty()) {
            Status::Closed
        } else {
            Status::Open
        },
        mode: c
            .bot_enabled
            .map(|bot| if bot { Mode::Ai } else { Mode::Human }),
        assignee,
        contact: c.contact.into_inner().map(|ct| contact(origin, ct)),
        created_at: *c.created_at,
        updated_at: *c.updated_at,
        last_activity_at,
        last_message,
        message_count: None,
        escalation: None,
        url: None,
        native_id: c.id,
        raw,
    }
}

/// Plain text and, when the text was HTML, the HTML.
fn plain(text: &str) -> (String, Option<String>) {
    if looks_like_html(text) {
        (html_to_text(text), Some(text.to_owned()))
    } else {
        (text.to_owned(), None)
    }
}

/// Whether a message is an internal note (seen by the team, never sent to the customer).
pub fn is_internal(m: &wire::Message) -> bool {
    m.is_internal.unwrap_or(false)
}

/// Maps a message of the conversation `at` names.
pub fn message(at: &MessageContext, m: wire::Message, raw: Option<Value>) -> Message {
    let message_type = m.message_type.as_deref().unwrap_or("");
    let sender_type = m.sender_type.as_deref().unwrap_or("");
    let direction = match (message_type, sender_type) {
        ("incoming", _) | ("", "contact") => Direction::Inbound,
        _ => Direction::Outbound,
    };
    let author = match (message_type, sender_type) {
        ("activity", _) => Author::System,
        (_, "contact") => Author::Contact,
        (_, "bot") => Author::Bot,
        // `user`: a person in ChatbotX's inbox; `api`: sent through the API (this gateway).
        (_, "user") | (_, "api") => Author::Agent,
        ("incoming", _) => Author::Contact,
        _ => Author::System,
    };
    let sender = match (author, sender_type) {
        (Author::Agent, "user") => m
            .user
            .into_inner()
            .and_then(|u| user_agent(&at.origin, u))
            .or_else(|| m.sender_id.as_deref().map(|id| at.origin.agent(id))),
        (Author::Agent, _) => m.user.into_inner().and_then(|u| user_agent(&at.origin, u)),
        _ => None,
    };
    let delivery_status = match direction {
        Direction::Inbound => None,
        Direction::Outbound if author == Author::System => None,
        Direction::Outbound => Some(if m.failed_at.is_some() {
            DeliveryStatus::Failed
        } else if m.read_at.is_some() {
            DeliveryStatus::Read
        } else if m.delivered_at.is_some() {
            DeliveryStatus::Delivered
        } else {
            DeliveryStatus::Sent
        }),
    };
    let (text, html) = plain(m.text.as_deref().unwrap_or(""));
    let attachments = m
        .attachments
        .into_iter()
        .filter_map(|a| {
            Some(Attachment {
                url: a.url.into_inner()?,
                content_type: a.mime_type.into(),
                name: a.name.into(),
            })
        })
        .collect();
    Message {
        sender,
        html,
        attachments,
        delivery_status,
        raw,
        ..at.message(m.id, author, direction, text, *m.created_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_behaviour::fixture;

    const CBX: Origin = Origin::new(&crate::VENDOR.kind, "cbx");

    fn parse_conversations(name: &str) -> (Vec<wire::Conversation>, wire::ConversationList) {
        let list: wire::ConversationList =
            serde_json::from_str(&fixture!(name)).expect("documented JSON parses");
        let items = list
            .data
            .iter()
            .map(|v| serde_json::from_value(v.clone()).expect("item parses"))
            .collect();
        (items, list)
    }

    #[test]
    fn maps_the_documented_list_example_placeholders_included() {
        let (items, list) = parse_conversations("list_conversations.json");
        assert_eq!(
            list.next_cursor.as_deref(),
            Some("eyJsYXN0QWN0aXZpdHlBdCI6…")
        );
        let c = conversation(&CBX, items[0].clone(), None);
        assert_eq!((c.id.as_str(), c.native_id.as_str()), ("cbx:…", "…"));
        assert_eq!(
            (c.channel, c.native_channel.as_deref()),
            (Channel::Whatsapp, Some("whatsapp"))
        );
        assert_eq!((c.status, c.mode), (Status::Open, Some(Mode::Ai)));
        // `lastActivityAt` and `updatedAt` are placeholders: the creation time is the activity.
        assert_eq!(c.last_activity_at.to_rfc3339(), "2023-11-07T05:31:56+00:00");
        assert_eq!(
            c.created_at.map(|t| t.to_rfc3339()).as_deref(),
            Some("2023-11-07T05:31:56+00:00")
        );
        assert_eq!(c.updated_at, None);
        let assignee = c.assignee.expect("assignedUser maps to the assignee");
        assert_eq!(assignee.id, "cbx:…");
        assert_eq!(assignee.name.as_deref(), Some("…"));
        assert_eq!(assignee.email.as_deref(), Some("…"));
        let contact = c.contact.expect("contact maps");
        assert_eq!(contact.id.as_deref(), Some("cbx:…"));
        assert_eq!(contact.name.as_deref(), Some("…"));
        assert_eq!(contact.phone.as_deref(), Some("…"));
        let last = c
            .last_message
            .expect("the latest message is the last message");
        assert_eq!(last.text, "…");
        assert_eq!(last.created_at, None);
        assert_eq!(c.message_count, None);
        assert_eq!(c.url, None);
    }

    #[test]
    fn maps_the_documented_members_example_to_user_ids() {
        let list: wire::MemberList =
            serde_json::from_str(&fixture!("list_members.json")).expect("documented JSON parses");
        assert_eq!(*list.page_count, Some(1));
        let member = list.data[0].clone();
        let agent = member_agent(&CBX, member).expect("a member with a user id");
        assert_eq!(agent.native_id, "…");
        assert_eq!(agent.name.as_deref(), Some("…"));
        assert_eq!(agent.avatar_url, None);
        assert_eq!(agent.email, None);
    }

    #[test]
    fn maps_archived_human_conversations_with_team_and_smtp() {
        let (items, list) = parse_conversations("list_conversations_code_shape.json");
        assert_eq!(*list.next_cursor, None);
        let c = conversation(&CBX, items[0].clone(), None);
        assert_eq!(c.id, "cbx:11590944070190001");
        assert_eq!(c.status, Status::Closed);
        assert_eq!(c.mode, Some(Mode::Human));
        assert_eq!(c.channel, Channel::Email);
        assert_eq!(c.native_channel.as_deref(), Some("smtp"));
        assert_eq!(
            c.last_activity_at.to_rfc3339(),
            "2026-01-15T10:45:00.123+00:00"
        );
        assert_eq!(
            c.assignee.as_ref().map(|a| a.native_id.as_str()),
            Some("11590944070170002")
        );
        assert_eq!(
            c.contact.as_ref().and_then(|ct| ct.name.as_deref()),
            Some("Zoë Müller")
        );
        // A conversation assigned to an inbox team has no agent, and a null contact is null.
        let team = conversation(&CBX, items[1].clone(), None);
        assert_eq!(team.assignee, None);
        assert_eq!(team.contact, None);
        assert_eq!(team.channel, Channel::Web);
        assert_eq!(team.mode, Some(Mode::Ai));
        assert_eq!(team.last_message, None);
        let (first, second) = (&items[0], &items[1]);
        assert_eq!(
            list_order(
                (listed_at(first), &first.id),
                (listed_at(second), &second.id)
            ),
            Ordering::Less
        );
    }

    #[test]
    fn maps_every_sender_type_newest_first() {
        let list: wire::MessageList =
            serde_json::from_str(&fixture!("list_messages_code_shape.json")).expect("parses");
        assert!(list.next_cursor.is_some());
        let messages: Vec<wire::Message> = list
            .data
            .iter()
            .map(|v| serde_json::from_value(v.clone()).expect("message parses"))
            .collect();
        let at = CBX.in_conversation("11590944070190001", DateTime::UNIX_EPOCH);
        let mapped: Vec<Message> = messages
            .iter()
            .take(5)
            .map(|m| message(&at, m.clone(), None))
            .collect();
        let authors: Vec<(Author, Direction)> =
            mapped.iter().map(|m| (m.author, m.direction)).collect();
        assert_eq!(
            authors,
            vec![
                (Author::Agent, Direction::Outbound),
                (Author::Agent, Direction::Outbound),
                (Author::System, Direction::Outbound),
                (Author::Bot, Direction::Outbound),
                (Author::Contact, Direction::Inbound),
            ]
        );
        assert_eq!(mapped[0].sender, None);
        assert_eq!(mapped[0].delivery_status, Some(DeliveryStatus::Sent));
        assert_eq!(
            mapped[1].sender.as_ref().map(|s| s.id.as_str()),
            Some("cbx:11590944070170002")
        );
        assert_eq!(
            mapped[1].sender.as_ref().and_then(|s| s.name.as_deref()),
            Some("Léa Martin")
        );
        assert_eq!(mapped[1].delivery_status, Some(DeliveryStatus::Read));
        assert_eq!(mapped[2].delivery_status, None);
        assert_eq!(mapped[3].text, "Here is our returns policy.");
        assert!(mapped[3].html.is_some());
        assert_eq!(mapped[3].delivery_status, Some(DeliveryStatus::Failed));
        assert_eq!(mapped[4].text, "");
        assert_eq!(mapped[4].attachments.len(), 1);
        assert_eq!(
            mapped[4].attachments[0].content_type.as_deref(),
            Some("image/jpeg")
        );
        assert_eq!(mapped[4].delivery_status, None);
        assert_eq!(mapped[4].conversation_id, "cbx:11590944070190001");
        assert!(is_internal(&messages[5]));
    }

    #[test]
    fn maps_channels_both_ways() {
        assert_eq!(channel("webchat"), Channel::Web);
        assert_eq!(channel("smtp"), Channel::Email);
        assert_eq!(channel("omnichannel"), Channel::Other);
        for c in Channel::ALL {
            if let Some(native) = native_channel(c) {
                assert_eq!(channel(native), c);
            }
        }
        assert_eq!(compare_ids("9", "10"), Ordering::Less);
    }
}
