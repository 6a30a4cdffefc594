//! The change feed's event: one change to a conversation or one new message, as consumers see it
//! in the event log (`GET /v1/events`, the SSE stream and webhooks).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::model::{Conversation, Message, ProviderKind};

/// One change, as consumers see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "1767225600000-0", "type": "conversation.updated",
    "occurred_at": "2026-01-01T00:00:00Z", "connection": "shop-zipchat", "provider": "zipchat",
    "conversation_id": "shop-zipchat:12345",
    "data": {"conversation": {
        "id": "shop-zipchat:12345", "connection": "shop-zipchat", "provider": "zipchat",
        "native_id": "12345", "channel": "web", "native_channel": "web", "status": "resolved",
        "mode": "human", "assignee": null, "contact": null,
        "created_at": "2025-12-31T23:00:00Z", "updated_at": null,
        "last_activity_at": "2026-01-01T00:00:00Z", "last_message": null, "message_count": 4,
        "escalation": null, "url": null}},
    "changed": ["status"],
    "performed_by": {"client": "inbox-ui"}
}))]
pub struct Event {
    /// The event's position in the log, `"{ms}-{seq}"`: also the cursor to resume after it.
    #[schema(example = "1767225600000-0")]
    pub id: String,
    /// What happened.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// When the gateway saw the change (for a gateway write: when it was made).
    #[serde(serialize_with = "crate::rfc3339::serialize")]
    pub occurred_at: DateTime<Utc>,
    /// The connection the conversation lives on.
    pub connection: String,
    /// The vendor behind that connection.
    pub provider: ProviderKind,
    /// The conversation's gateway id (`"{connection}:{native_id}"`).
    pub conversation_id: String,
    /// The conversation as it is now, or the new message.
    pub data: EventData,
    /// `conversation.updated` only: the fields that changed (`status`, `mode`, `assignee`,
    /// `last_activity_at`, `message_count`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub changed: Option<Vec<String>>,
    /// Set when the change was made through the gateway: which client made it, so a consumer can
    /// ignore its own echoes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub performed_by: Option<PerformedBy>,
}

/// The kinds of events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum EventType {
    /// A conversation the gateway had not seen before.
    #[serde(rename = "conversation.created")]
    ConversationCreated,
    /// A known conversation changed; `changed` names the fields.
    #[serde(rename = "conversation.updated")]
    ConversationUpdated,
    /// A new message in a conversation.
    #[serde(rename = "message.created")]
    MessageCreated,
}

impl EventType {
    /// Every event type, in a stable order.
    pub const ALL: [EventType; 3] = [
        EventType::ConversationCreated,
        EventType::ConversationUpdated,
        EventType::MessageCreated,
    ];

    /// The name used in the API (`conversation.created`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::ConversationCreated => "conversation.created",
            EventType::ConversationUpdated => "conversation.updated",
            EventType::MessageCreated => "message.created",
        }
    }

    /// Parses the API name.
    pub fn parse(s: &str) -> Option<EventType> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an event carries: the conversation (conversation events) or the message
/// (`message.created`). The vendor's `raw` JSON is never kept.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct EventData {
    /// The conversation as it is now (conversation events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub conversation: Option<Conversation>,
    /// The new message (`message.created`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub message: Option<Message>,
}

/// Who made a change through the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PerformedBy {
    /// The `[[clients]]` name of the caller.
    pub client: String,
}

/// Field names `conversation.updated` lists in `changed`.
pub mod fields {
    /// `status`.
    pub const STATUS: &str = "status";
    /// `mode`.
    pub const MODE: &str = "mode";
    /// `assignee`.
    pub const ASSIGNEE: &str = "assignee";
    /// `last_activity_at`.
    pub const LAST_ACTIVITY_AT: &str = "last_activity_at";
    /// `message_count`.
    pub const MESSAGE_COUNT: &str = "message_count";
}

impl Event {
    /// An event about `conversation` (its `raw` dropped); the id is assigned by the log.
    pub fn conversation(
        kind: EventType,
        mut conversation: Conversation,
        occurred_at: DateTime<Utc>,
    ) -> Event {
        conversation.raw = None;
        Event {
            id: String::new(),
            kind,
            occurred_at,
            connection: conversation.connection.clone(),
            provider: conversation.provider.clone(),
            conversation_id: conversation.id.clone(),
            data: EventData {
                conversation: Some(conversation),
                message: None,
            },
            changed: None,
            performed_by: None,
        }
    }

    /// `message.created` for `message` (its `raw` dropped); the id is assigned by the log.
    pub fn message(mut message: Message, occurred_at: DateTime<Utc>) -> Event {
        message.raw = None;
        Event {
            id: String::new(),
            kind: EventType::MessageCreated,
            occurred_at,
            connection: message.connection.clone(),
            provider: message.provider.clone(),
            conversation_id: message.conversation_id.clone(),
            data: EventData {
                conversation: None,
                message: Some(message),
            },
            changed: None,
            performed_by: None,
        }
    }

    /// The same event naming the `changed` fields.
    pub fn with_changed(mut self, changed: Vec<String>) -> Event {
        self.changed = Some(changed);
        self
    }

    /// The same event stamped as made through the gateway by `client`.
    pub fn performed_by(mut self, client: &str) -> Event {
        self.performed_by = Some(PerformedBy {
            client: client.to_owned(),
        });
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_round_trip_through_serde_and_parse() {
        for t in EventType::ALL {
            let json = serde_json::to_value(t).expect("serializes");
            assert_eq!(json, serde_json::Value::String(t.as_str().to_owned()));
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
        assert_eq!(EventType::parse("conversation.deleted"), None);
    }
}
