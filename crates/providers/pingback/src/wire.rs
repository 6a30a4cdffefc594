//! PingBack's JSON, as serde types. Tolerant: unknown fields are ignored, ids are accepted as
//! strings or numbers (the docs mix UUIDs and integers), and unreadable optional values become
//! `None`.
//!
//! A conversation is read for the fields the gateway maps, and only those: a list page holds
//! a hundred of them, and a field read into a string only to be dropped costs on every one. The
//! vendor's whole JSON is still there for `include=raw`.

use serde::Deserialize;
use serde_json::Value;
use switchboard_core::tolerant::{self, Flag, Id, List, Object, Text, Time};

/// `POST /api/v1/auth/login` (and `/auth/register`, `/auth/google`).
#[derive(Debug, Clone, Deserialize)]
pub struct Login {
    /// The JWT to send as `Authorization: Bearer …`.
    pub access_token: Text,
    /// Always `bearer`.
    pub token_type: Text,
}

/// `GET /api/v1/auth/me`.
#[derive(Debug, Clone, Deserialize)]
pub struct Me {
    /// The logged-in user.
    #[serde(default)]
    pub user: Option<MeUser>,
    /// `owner`, `admin`, `agent`, or null without a business.
    pub team_role: Text,
}

/// The user in `GET /api/v1/auth/me`.
#[derive(Debug, Clone, Deserialize)]
pub struct MeUser {
    /// User id (the `user_id` of team members, the `sender_id` of their messages).
    pub id: Id,
    /// E-mail.
    pub email: Text,
    /// Display name.
    pub full_name: Text,
}

/// `GET /api/v1/conversations/`: a bare array, of JSON (for `include=raw`) or of
/// [`tolerant::Item`]s (one that does not parse is dropped, not the page).
#[derive(Debug, Deserialize)]
#[serde(bound = "I: Deserialize<'de>")]
#[serde(transparent)]
pub struct ConversationList<I = Value>(
    #[serde(deserialize_with = "tolerant::nullable_vec")] pub Vec<I>,
);

/// A conversation (list item, or detail with its full message history), its messages read as
/// `M`: whole [`Message`]s to serve them, or only what the conversation shows of them
/// ([`MessageText`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(bound = "M: serde::de::DeserializeOwned")]
pub struct Conversation<M = Message> {
    /// Conversation id (UUID).
    #[serde(deserialize_with = "tolerant::id")]
    pub id: String,
    /// The customer's id.
    pub customer_id: Id,
    /// The assigned team member's user id.
    pub assignee_id: Id,
    /// `open`, `pending`, `resolved` or `closed`.
    pub status: Text,
    /// `widget`, `webchat`, `email`, `whatsapp`, `telegram`, `instagram`, `x`, `sms`, …
    pub channel_type: Text,
    /// Created.
    pub created_at: Time,
    /// Last changed (the list's sort key).
    pub updated_at: Time,
    /// The customer, when it is an object (its ids are integers in the docs' example).
    pub customer: Object<Customer>,
    /// Messages, chronological: the full history in the detail, possibly empty in the list.
    pub messages: List<M>,
}

/// A message of a conversation read for the conversation alone (its last message, its count):
/// the detail holds the whole history, so the rest of each message is skipped, not read.
#[derive(Debug, Clone, Deserialize)]
pub struct MessageText {
    /// Text.
    pub content: Text,
    /// Sent at.
    pub created_at: Time,
}

/// The customer embedded in a conversation.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Customer {
    /// Customer id (a UUID, or an integer in the docs' example).
    pub id: Id,
    /// Name.
    pub name: Text,
    /// E-mail.
    pub email: Text,
    /// Phone.
    pub phone: Text,
    /// The business's own identifier for the customer.
    pub external_id: Id,
}

/// A message.
#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    /// Message id.
    #[serde(deserialize_with = "tolerant::id")]
    pub id: String,
    /// The conversation.
    pub conversation_id: Id,
    /// `agent` or `customer`.
    pub sender_type: Text,
    /// The agent's user id; null for customer messages.
    pub sender_id: Id,
    /// Text.
    pub content: Text,
    /// Attachment objects (shape not documented) or URLs.
    pub attachments: List<Value>,
    /// Sent at.
    pub created_at: Time,
}

/// `GET /api/v1/team/members`: a bare array.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct MemberList(pub List<Member>);

/// A team member.
#[derive(Debug, Clone, Deserialize)]
pub struct Member {
    /// The membership record's id (not assignable).
    pub id: Id,
    /// The user's id: what assignment takes and what `assignee_id` holds.
    pub user_id: Id,
    /// E-mail.
    pub email: Text,
    /// Full name.
    pub name: Text,
    /// `owner`, `admin` or `agent`.
    pub role: Text,
    /// `live`, `away` or `offline`.
    pub status: Text,
    /// Whether the account is active.
    pub is_active: Flag,
}
