//! Octopush wire types -> the normalized model. Pure functions.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use switchboard_core::{
    Agent, Author, Channel, Contact, Conversation, DeliveryStatus, Direction, LastMessage, Message,
    MessageContext, Origin, Status,
};

use crate::wire;

/// The prefix Octopush puts before a conversation's UUID in the messages filter (`cid_{uuid}`).
pub const CONVERSATION_ID_PREFIX: &str = "cid_";

/// Whether two conversation ids name the same conversation: equal once the `cid_` prefix is
/// dropped (ASCII case ignored, as UUIDs may come in either case).
pub fn same_conversation(a: &str, b: &str) -> bool {
    let bare = |s: &str| {
        s.strip_prefix(CONVERSATION_ID_PREFIX)
            .unwrap_or(s)
            .to_owned()
    };
    bare(a).eq_ignore_ascii_case(&bare(b))
}

fn looks_like_email(s: &str) -> bool {
    s.split_once('@')
        .is_some_and(|(user, domain)| !user.is_empty() && domain.contains('.'))
        && !s.contains(char::is_whitespace)
}

/// The agent of `agent_assigned_to`: a scalar (the agent's login or id, format undocumented) or,
/// tolerated, an object. A login that is an e-mail is also the agent's e-mail.
pub fn assignee(origin: &Origin, a: wire::AgentRef) -> Option<Agent> {
    let login = a.login.into_inner().filter(|l| !l.trim().is_empty());
    let email = a
        .email
        .into_inner()
        .or_else(|| login.clone().filter(|l| looks_like_email(l)));
    let id = a.id.into_inner().or(login).or_else(|| email.clone())?;
    Some(Agent {
        name: a.name.into(),
        email,
        ..origin.agent(&id)
    })
}

/// The contact of `recipient_details`. Octopush gives the contact no id: `id` stays null.
pub fn contact(details: &wire::RecipientDetails) -> Option<Contact> {
    let phone = details
        .phone_number
        .as_ref()
        .filter(|p| !p.trim().is_empty())
        .cloned();
    let name = details
        .name
        .as_ref()
        .filter(|n| !n.trim().is_empty())
        .cloned();
    if phone.is_none() && name.is_none() {
        return None;
    }
    Some(Contact {
        id: None,
        native_id: None,
        name,
        email: None,
        phone,
        external_ids: BTreeMap::new(),
    })
}

/// The phone number replies go to, if the conversation has one.
pub fn reply_phone(c: &wire::Conversation) -> Option<String> {
    c.recipient_details
        .as_ref()
        .and_then(contact)
        .and_then(|contact| contact.phone)
}

/// Maps a conversation; `None` when it has no id (it could not be addressed). `raw` is the
/// vendor's JSON, kept when the caller asked `include=raw`.
pub fn conversation(
    origin: &Origin,
    c: wire::Conversation,
    raw: Option<Value>,
) -> Option<Conversation> {
    let native_id = c
        .conversation_id
        .into_inner()
        .filter(|id| !id.trim().is_empty())?;
    let last_activity_at = c
        .last_message_at
        .or(*c.first_message_at)
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    let last_message = c.last_message.into_inner().map(|text| LastMessage {
        text,
        created_at: *c.last_message_at,
    });
    Some(Conversation {
        id: origin.id(&native_id),
        connection: origin.connection.to_owned(),
        provider: origin.provider.clone(),
        channel: c
            .last_user_channel
            .as_deref()
            .map_or(Channel::Other, Channel::from_native),
        native_channel: c.last_user_channel.into(),
        // Octopush has no conversation status: every conversation is open.
        status: Status::Open,
        // No bot answers on Octopush.
        mode: None,
        assignee: c
            .agent_assigned_to
            .into_inner()
            .and_then(|a| assignee(origin, a)),
        contact: c.recipient_details.as_ref().and_then(contact),
        created_at: *c.first_message_at,
        updated_at: None,
        last_activity_at,
        last_message,
        message_count: *c.number_of_messages,
        escalation: None,
        url: None,
        native_id,
        raw,
    })
}

/// Maps a vendor delivery status; unknown values (e.g. `UNKNOWN_DELIVERY`) are `None`.
pub fn delivery_status(s: &str) -> Option<DeliveryStatus> {
    let lower = s.trim().to_ascii_lowercase().replace([' ', '-'], "_");
    match lower.as_str() {
        "delivered" | "received" => Some(DeliveryStatus::Delivered),
        "read" | "seen" | "displayed" => Some(DeliveryStatus::Read),
        "sent" | "sending" | "pending" | "queued" | "accepted" | "in_progress" | "scheduled" => {
            Some(DeliveryStatus::Sent)
        }
        "failed" | "not_delivered" | "undelivered" | "error" | "rejected" | "expired"
        | "not_allowed" | "blacklisted_number" | "blacklisted" => Some(DeliveryStatus::Failed),
        _ => None,
    }
}

/// Author and direction of a message from its `direction`: inbound is the contact, outbound is
/// an agent (Octopush has no bot), anything else a system message.
fn author(direction: Option<&str>) -> (Author, Direction) {
    let lower = direction.map(|d| d.trim().to_ascii_lowercase());
    match lower.as_deref() {
        Some("inbound" | "in" | "incoming" | "received" | "mo") => {
            (Author::Contact, Direction::Inbound)
        }
        Some("outbound" | "out" | "outgoing" | "sent" | "mt") => {
            (Author::Agent, Direction::Outbound)
        }
        _ => (Author::System, Direction::Outbound),
    }
}

/// Maps a message of the conversation `at` names; `None` when it has no id.
pub fn message(at: &MessageContext, m: wire::Message, raw: Option<Value>) -> Option<Message> {
    let created_at = m.created_at();
    let native_id = m
        .message_id
        .into_inner()
        .filter(|id| !id.trim().is_empty())?;
    let (author, direction) = author(m.direction.as_deref());
    let delivery_status = match direction {
        Direction::Outbound => m.delivery_status.as_deref().and_then(delivery_status),
        Direction::Inbound => None,
    };
    let text = m.text.into_inner().unwrap_or_default();
    // Octopush does not say which person sent an outbound message: no sender.
    Some(Message {
        delivery_status,
        raw,
        ..at.message(native_id, author, direction, text, created_at)
    })
}

/// The message a successful `POST /sms-campaign/send` stands for, sent now (the fallback time of
/// `at`): its `sms_ticket` is the id. `None` when the response has no ticket.
pub fn sent_message(at: &MessageContext, sent: &wire::SendResponse, text: &str) -> Option<Message> {
    let ticket = sent
        .sms_ticket
        .as_ref()
        .filter(|t| !t.trim().is_empty())
        .cloned()?;
    Some(Message {
        // Octopush accepted the SMS for sending; delivery is reported later.
        delivery_status: Some(DeliveryStatus::Sent),
        ..at.message(
            ticket,
            Author::Agent,
            Direction::Outbound,
            text.to_owned(),
            None,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_behaviour::fixture;

    const SMS: Origin = Origin::new(&crate::VENDOR.kind, "sms");

    /// Conversation `cid_1`, whose messages without a readable time are from the Unix epoch.
    const CID_1: MessageContext = MessageContext {
        origin: SMS,
        conversation: "cid_1",
        fallback_time: DateTime::<Utc>::UNIX_EPOCH,
    };

    fn items<T: serde::de::DeserializeOwned>(name: &str) -> Vec<T> {
        let body: Value = serde_json::from_str(&fixture!(name)).expect("documented JSON parses");
        wire::list_items(body)
            .expect("a list")
            .into_iter()
            .map(|v| serde_json::from_value(v).expect("item parses"))
            .collect()
    }

    #[test]
    fn maps_the_documented_conversation_list() {
        let list: Vec<wire::Conversation> = items("list_conversations.json");
        assert_eq!(list.len(), 2);
        let rcs = conversation(&SMS, list[0].clone(), None).expect("has an id");
        assert_eq!(
            (rcs.id.as_str(), rcs.native_id.as_str()),
            ("sms:****", "****")
        );
        assert_eq!(
            (rcs.channel, rcs.native_channel.as_deref()),
            (Channel::Rcs, Some("rcs"))
        );
        assert_eq!(
            (rcs.status, rcs.mode, rcs.assignee),
            (Status::Open, None, None)
        );
        assert_eq!(
            rcs.created_at.map(|t| t.to_rfc3339()).as_deref(),
            Some("2024-06-21T03:08:06+00:00")
        );
        assert_eq!(
            rcs.last_activity_at.to_rfc3339(),
            "2024-06-21T03:08:06+00:00"
        );
        assert_eq!(rcs.message_count, Some(1));
        let last = rcs.last_message.expect("last message");
        assert_eq!(last.text, "RCS 1");
        assert_eq!(last.created_at, Some(rcs.last_activity_at));
        let contact = rcs.contact.expect("recipient_details map to the contact");
        assert_eq!(
            contact.id, None,
            "Octopush gives contacts no id; none is invented"
        );
        assert_eq!(contact.phone.as_deref(), Some("***"));
        assert_eq!(contact.name.as_deref(), Some("***"));

        let sms = conversation(&SMS, list[1].clone(), None).expect("has an id");
        assert_eq!(sms.channel, Channel::Sms);
        assert_eq!(sms.message_count, Some(4));
        assert_eq!(
            sms.last_activity_at.to_rfc3339(),
            "2024-06-07T03:22:43+00:00"
        );
        assert_eq!(
            sms.created_at.map(|t| t.to_rfc3339()).as_deref(),
            Some("2024-06-07T03:03:06+00:00")
        );
        let agent = sms
            .assignee
            .expect("agent_assigned_to maps to the assignee");
        assert_eq!(agent.id, "sms:***");
        assert_eq!(agent.email, None);
        assert_eq!(sms.url, None);
        assert_eq!(sms.escalation, None);
    }

    #[test]
    fn maps_the_documented_message() {
        let list: Vec<wire::Message> = items("list_messages.json");
        let m = message(&CID_1, list[0].clone(), None).expect("has an id");
        assert_eq!(
            (m.id.as_str(), m.conversation_id.as_str()),
            ("sms:***", "sms:cid_1")
        );
        assert_eq!(m.text, "Example inbound RCS message");
        assert_eq!(
            (m.author, m.direction),
            (Author::Contact, Direction::Inbound)
        );
        assert_eq!((m.delivery_status, m.sender), (None, None));
        // The documented example is cut before any timestamp: the fallback is used.
        assert_eq!(m.created_at, CID_1.fallback_time);
    }

    #[test]
    fn reads_undocumented_timestamps_directions_and_statuses_tolerantly() {
        let list: Vec<wire::Message> = items("list_messages_tolerant.json");
        let mapped: Vec<Option<Message>> =
            list.into_iter().map(|m| message(&CID_1, m, None)).collect();
        let first = mapped[0].as_ref().expect("numeric id");
        assert_eq!(first.native_id, "88123");
        assert_eq!(first.author, Author::Agent);
        assert_eq!(first.direction, Direction::Outbound);
        assert_eq!(first.delivery_status, Some(DeliveryStatus::Delivered));
        assert_eq!(first.created_at.to_rfc3339(), "2024-06-07T05:03:06+00:00");
        let second = mapped[1].as_ref().expect("id");
        assert_eq!(second.direction, Direction::Outbound);
        assert_eq!(second.delivery_status, Some(DeliveryStatus::Failed));
        assert_eq!(second.text, "Merci, à demain !");
        assert_eq!(second.created_at.to_rfc3339(), "2024-06-07T03:22:43+00:00");
        let third = mapped[2].as_ref().expect("id");
        assert_eq!(third.author, Author::Contact);
        assert_eq!(third.created_at.timestamp(), 1_717_730_000);
        let fourth = mapped[3].as_ref().expect("id");
        assert_eq!(
            (fourth.author, fourth.direction),
            (Author::System, Direction::Outbound)
        );
        assert_eq!(fourth.created_at, CID_1.fallback_time);
        assert!(mapped[4].is_none(), "a message without an id is dropped");
    }

    #[test]
    fn maps_the_send_response_to_the_new_message() {
        let sent: wire::SendResponse = serde_json::from_str(&fixture!("sms_campaign_send.json"))
            .expect("documented JSON parses");
        let m = sent_message(&CID_1, &sent, "On it!").expect("ticket");
        assert_eq!(m.id, "sms:sms_5fec89fe97109");
        assert_eq!(m.conversation_id, "sms:cid_1");
        assert_eq!(m.created_at, CID_1.fallback_time, "sent now");
        assert_eq!(
            (m.author, m.direction),
            (Author::Agent, Direction::Outbound)
        );
        assert_eq!(m.delivery_status, Some(DeliveryStatus::Sent));
        assert_eq!(m.text, "On it!");
        assert_eq!(*sent.number_of_sms_needed, Some(1));
    }

    #[test]
    fn matches_conversation_ids_with_or_without_the_prefix() {
        assert!(same_conversation("cid_3f2a", "3f2a"));
        assert!(same_conversation("3F2A", "cid_3f2a"));
        assert!(same_conversation("cid_3f2a", "cid_3f2a"));
        assert!(!same_conversation("cid_3f2a", "3f2b"));
    }

    #[test]
    fn reads_assignees_in_every_shape() {
        // As the list sends them: `agent_assigned_to` of a conversation.
        let assignee = |v: Value| {
            let c: wire::Conversation =
                serde_json::from_value(serde_json::json!({ "agent_assigned_to": v }))
                    .expect("a conversation parses whatever its assignee");
            c.agent_assigned_to
                .into_inner()
                .and_then(|a| assignee(&SMS, a))
        };
        let a = assignee(Value::String("lea@shop.example.com".into())).expect("login");
        assert_eq!(a.email.as_deref(), Some("lea@shop.example.com"));
        assert_eq!(a.native_id, "lea@shop.example.com");
        let b = assignee(serde_json::json!(17)).expect("id");
        assert_eq!(b.id, "sms:17");
        assert_eq!(b.email, None);
        let c = assignee(serde_json::json!({"id": 3, "name": "Léa"})).expect("object");
        assert_eq!(
            (c.native_id.as_str(), c.name.as_deref()),
            ("3", Some("Léa"))
        );
        for nothing in [
            Value::Null,
            Value::String(String::new()),
            Value::String("  ".into()),
            serde_json::json!([]),
            serde_json::json!({"name": "no id"}),
        ] {
            assert!(assignee(nothing.clone()).is_none(), "{nothing}");
        }
    }
}
