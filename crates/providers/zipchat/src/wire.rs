//! Zipchat's JSON, as serde types. Tolerant: unknown fields are ignored, ids are accepted as
//! strings or numbers, page metadata is optional, and unreadable optional values become `None`.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use switchboard_core::tolerant;

/// Page metadata (INFERRED field names; every field optional).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Pagination {
    /// Current page.
    #[serde(default, deserialize_with = "tolerant::opt_u64")]
    pub page: Option<u64>,
    /// Page size.
    #[serde(default, deserialize_with = "tolerant::opt_u64")]
    pub per_page: Option<u64>,
    /// Items in all pages.
    #[serde(default, deserialize_with = "tolerant::opt_u64")]
    pub total_count: Option<u64>,
    /// Number of pages.
    #[serde(default, deserialize_with = "tolerant::opt_u64")]
    pub total_pages: Option<u64>,
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
#[derive(Debug, Deserialize)]
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
    #[serde(default, deserialize_with = "tolerant::opt_id")]
    pub chat_id: Option<String>,
    /// Created.
    #[serde(default, deserialize_with = "tolerant::opt_time")]
    pub created_at: Option<DateTime<Utc>>,
    /// Updated (not documented; used when present).
    #[serde(default, deserialize_with = "tolerant::opt_time")]
    pub updated_at: Option<DateTime<Utc>>,
    /// Latest message.
    #[serde(default, deserialize_with = "tolerant::opt_time")]
    pub last_message_at: Option<DateTime<Utc>>,
    /// Channel (`web`, older docs `chat`, …).
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub channel: Option<String>,
    /// True when a person answers (the AI is off).
    #[serde(default, deserialize_with = "tolerant::opt_bool")]
    pub manual_reply_mode: Option<bool>,
    /// When the AI escalated.
    #[serde(default, deserialize_with = "tolerant::opt_time")]
    pub last_escalated_at: Option<DateTime<Utc>>,
    /// When an agent resolved the escalation.
    #[serde(default, deserialize_with = "tolerant::opt_time")]
    pub last_escalation_resolved_at: Option<DateTime<Utc>>,
    /// The assigned user: an object, or (tolerated) a bare id.
    #[serde(default, deserialize_with = "tolerant::opt_object_or_id")]
    pub assignee: Option<User>,
    /// Link into Zipchat.
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub share_url: Option<String>,
    /// The customer.
    #[serde(default, deserialize_with = "tolerant::opt_object")]
    pub lead: Option<Lead>,
    /// Messages (detail only), parsed one by one into [`Message`] by the client, so an
    /// unreadable message is dropped rather than the page, and its JSON can be kept.
    #[serde(default, deserialize_with = "tolerant::lenient_vec")]
    pub messages: Vec<Value>,
    /// Message page metadata (detail only).
    #[serde(default)]
    pub message_pagination: Option<Pagination>,
}

/// The customer.
#[derive(Debug, Clone, Deserialize)]
pub struct Lead {
    /// Lead id.
    #[serde(default, deserialize_with = "tolerant::opt_id")]
    pub id: Option<String>,
    /// Full name.
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub full_name: Option<String>,
    /// First name (detail).
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub first_name: Option<String>,
    /// Last name (detail).
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub last_name: Option<String>,
    /// E-mail.
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub email: Option<String>,
    /// Phone.
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub phone_number: Option<String>,
    /// Shopify customer id (detail).
    #[serde(default, deserialize_with = "tolerant::opt_id")]
    pub shopify_customer_id: Option<String>,
}

/// A user (agent) of the chat: in the user list, or a conversation's assignee.
#[derive(Debug, Clone, Deserialize)]
pub struct User {
    /// User id; a user without one cannot be assigned, and is no agent.
    #[serde(default, deserialize_with = "tolerant::opt_id")]
    pub id: Option<String>,
    /// Name.
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub name: Option<String>,
    /// E-mail.
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub email: Option<String>,
    /// Avatar URL (null without an avatar).
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub avatar_url: Option<String>,
}

impl From<String> for User {
    /// An assignee given as its id alone.
    fn from(id: String) -> User {
        User {
            id: Some(id),
            name: None,
            email: None,
            avatar_url: None,
        }
    }
}

/// `GET /chats/:chat_id/users`.
#[derive(Debug, Deserialize)]
pub struct UserList {
    /// The page's users.
    #[serde(default, deserialize_with = "tolerant::lenient_vec")]
    pub users: Vec<User>,
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
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub role: Option<String>,
    /// Text, HTML, or a JSON-encoded array of blocks.
    #[serde(default)]
    pub message: Option<Value>,
    /// True for a person's reply in manual mode.
    #[serde(default, deserialize_with = "tolerant::opt_bool")]
    pub manual_reply: Option<bool>,
    /// Delivery status (values undocumented).
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub status: Option<String>,
    /// The user who sent a manual reply.
    #[serde(default, deserialize_with = "tolerant::opt_id")]
    pub sender_id: Option<String>,
    /// Sent at.
    #[serde(default, deserialize_with = "tolerant::opt_time")]
    pub created_at: Option<DateTime<Utc>>,
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
