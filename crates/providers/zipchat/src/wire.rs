//! Zipchat's JSON, as serde types. Tolerant: unknown fields are ignored, ids are accepted as
//! strings or numbers, page metadata is optional, and unreadable optional values become `None`.

use serde::Deserialize;
use serde_json::Value;
use switchboard_core::tolerant::{self, Count, Flag, Id, List, Object, ObjectOrId, Text, Time};

/// Page metadata (INFERRED field names; every field optional).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Pagination {
    /// Current page.
    pub page: Count,
    /// Page size.
    pub per_page: Count,
    /// Items in all pages.
    pub total_count: Count,
    /// Number of pages.
    pub total_pages: Count,
}

/// `GET /chats/:chat_id/conversations`.
#[derive(Debug, Deserialize)]
#[serde(bound = "I: Deserialize<'de>")]
pub struct ConversationList<I = Value> {
    /// The page's conversations: JSON (for `include=raw`) or [`tolerant::Item`]s (one that
    /// does not parse is dropped, not the page).
    #[serde(default, deserialize_with = "tolerant::nullable_vec")]
    pub conversations: Vec<I>,
    /// Page metadata, when sent.
    #[serde(default)]
    pub pagination: Option<Pagination>,
}

/// `GET /chats/:chat_id/conversations/:id`: wrapped in `conversation` (or, tolerated, bare).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ConversationEnvelope {
    /// `{"conversation": {...}}`.
    Wrapped {
        /// The conversation.
        conversation: Box<Conversation>,
    },
    /// The conversation itself.
    Bare(Box<Conversation>),
}

impl ConversationEnvelope {
    /// The conversation inside.
    pub fn into_inner(self) -> Conversation {
        match self {
            ConversationEnvelope::Wrapped { conversation }
            | ConversationEnvelope::Bare(conversation) => *conversation,
        }
    }
}

/// A conversation (list item or detail).
#[derive(Debug, Clone, Deserialize)]
pub struct Conversation {
    /// Conversation id.
    #[serde(deserialize_with = "tolerant::id")]
    pub id: String,
    /// Chat id.
    pub chat_id: Id,
    /// Created.
    pub created_at: Time,
    /// Updated (not documented; used when present).
    pub updated_at: Time,
    /// Latest message.
    pub last_message_at: Time,
    /// Channel (`web`, older docs `chat`, …).
    pub channel: Text,
    /// True when a person answers (the AI is off).
    pub manual_reply_mode: Flag,
    /// When the AI escalated.
    pub last_escalated_at: Time,
    /// When an agent resolved the escalation.
    pub last_escalation_resolved_at: Time,
    /// The assigned user: an object, or (tolerated) a bare id.
    pub assignee: ObjectOrId<User>,
    /// Link into Zipchat.
    pub share_url: Text,
    /// The customer.
    pub lead: Object<Lead>,
    /// Messages (detail only), parsed one by one into [`Message`] by the client, so an
    /// unreadable message is dropped rather than the page, and its JSON can be kept.
    pub messages: List<Value>,
    /// Message page metadata (detail only).
    #[serde(default)]
    pub message_pagination: Option<Pagination>,
}

/// The customer.
#[derive(Debug, Clone, Deserialize)]
pub struct Lead {
    /// Lead id.
    pub id: Id,
    /// Full name.
    pub full_name: Text,
    /// First name (detail).
    pub first_name: Text,
    /// Last name (detail).
    pub last_name: Text,
    /// E-mail.
    pub email: Text,
    /// Phone.
    pub phone_number: Text,
    /// Shopify customer id (detail).
    pub shopify_customer_id: Id,
}

/// A user (agent) of the chat: in the user list, or a conversation's assignee.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct User {
    /// User id; a user without one cannot be assigned, and is no agent.
    pub id: Id,
    /// Name.
    pub name: Text,
    /// E-mail.
    pub email: Text,
    /// Avatar URL (null without an avatar).
    pub avatar_url: Text,
}

impl From<String> for User {
    /// An assignee given as its id alone.
    fn from(id: String) -> User {
        User {
            id: Some(id).into(),
            ..User::default()
        }
    }
}

/// `GET /chats/:chat_id/users`.
#[derive(Debug, Deserialize)]
pub struct UserList {
    /// The page's users.
    pub users: List<User>,
    /// Page metadata, when sent.
    #[serde(default)]
    pub pagination: Option<Pagination>,
}

/// A message.
#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    /// Message id.
    #[serde(deserialize_with = "tolerant::id")]
    pub id: String,
    /// `user` (customer), `assistant` (AI or agent), others possible.
    pub role: Text,
    /// Text, HTML, or a JSON-encoded array of blocks.
    #[serde(default)]
    pub message: Option<Value>,
    /// True for a person's reply in manual mode.
    pub manual_reply: Flag,
    /// Delivery status (values undocumented).
    pub status: Text,
    /// The user who sent a manual reply.
    pub sender_id: Id,
    /// Sent at.
    pub created_at: Time,
}

/// A created message: wrapped in `message` (INFERRED) or bare.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum MessageEnvelope {
    /// `{"message": {...}}`.
    Wrapped {
        /// The message.
        message: Message,
    },
    /// The message itself.
    Bare(Message),
}

impl MessageEnvelope {
    /// The message inside.
    pub fn into_inner(self) -> Message {
        match self {
            MessageEnvelope::Wrapped { message } | MessageEnvelope::Bare(message) => message,
        }
    }
}
