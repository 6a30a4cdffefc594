//! PingBack's JSON, as serde types. Tolerant: unknown fields are ignored, ids are accepted as
//! strings or numbers (the docs mix UUIDs and integers), and unreadable optional values become
//! `None`.
//!
//! A conversation is read for the fields the gateway maps, and only those: a list page holds
//! a hundred of them, and a field read into a string only to be dropped costs on every one. The
//! vendor's whole JSON is still there for `include=raw`.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use switchboard_core::tolerant;

/// `POST /api/v1/auth/login` (and `/auth/register`, `/auth/google`).
#[derive(Debug, Clone, Deserialize)]
pub struct Login {
    /// The JWT to send as `Authorization: Bearer …`.
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub access_token: Option<String>,
    /// Always `bearer`.
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub token_type: Option<String>,
}

/// `GET /api/v1/auth/me`.
#[derive(Debug, Clone, Deserialize)]
pub struct Me {
    /// The logged-in user.
    #[serde(default)]
    pub user: Option<MeUser>,
    /// `owner`, `admin`, `agent`, or null without a business.
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub team_role: Option<String>,
}

/// The user in `GET /api/v1/auth/me`.
#[derive(Debug, Clone, Deserialize)]
pub struct MeUser {
    /// User id (the `user_id` of team members, the `sender_id` of their messages).
    #[serde(default, deserialize_with = "tolerant::opt_id")]
    pub id: Option<String>,
    /// E-mail.
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub email: Option<String>,
    /// Display name.
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub full_name: Option<String>,
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
    #[serde(default, deserialize_with = "tolerant::opt_id")]
    pub customer_id: Option<String>,
    /// The assigned team member's user id.
    #[serde(default, deserialize_with = "tolerant::opt_id")]
    pub assignee_id: Option<String>,
    /// `open`, `pending`, `resolved` or `closed`.
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub status: Option<String>,
    /// `widget`, `webchat`, `email`, `whatsapp`, `telegram`, `instagram`, `x`, `sms`, …
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub channel_type: Option<String>,
    /// Created.
    #[serde(default, deserialize_with = "tolerant::opt_time")]
    pub created_at: Option<DateTime<Utc>>,
    /// Last changed (the list's sort key).
    #[serde(default, deserialize_with = "tolerant::opt_time")]
    pub updated_at: Option<DateTime<Utc>>,
    /// The customer, when it is an object (its ids are integers in the docs' example).
    #[serde(default, deserialize_with = "tolerant::opt_object")]
    pub customer: Option<Customer>,
    /// Messages, chronological: the full history in the detail, possibly empty in the list.
    #[serde(default, deserialize_with = "tolerant::lenient_vec")]
    pub messages: Vec<M>,
}

/// A message of a conversation read for the conversation alone (its last message, its count):
/// the detail holds the whole history, so the rest of each message is skipped, not read.
#[derive(Debug, Clone, Deserialize)]
pub struct MessageText {
    /// Text.
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub content: Option<String>,
    /// Sent at.
    #[serde(default, deserialize_with = "tolerant::opt_time")]
    pub created_at: Option<DateTime<Utc>>,
}

/// The customer embedded in a conversation.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Customer {
    /// Customer id (a UUID, or an integer in the docs' example).
    #[serde(default, deserialize_with = "tolerant::opt_id")]
    pub id: Option<String>,
    /// Name.
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub name: Option<String>,
    /// E-mail.
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub email: Option<String>,
    /// Phone.
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub phone: Option<String>,
    /// The business's own identifier for the customer.
    #[serde(default, deserialize_with = "tolerant::opt_id")]
    pub external_id: Option<String>,
}

/// A message.
#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    /// Message id.
    #[serde(deserialize_with = "tolerant::id")]
    pub id: String,
    /// The conversation.
    #[serde(default, deserialize_with = "tolerant::opt_id")]
    pub conversation_id: Option<String>,
    /// `agent` or `customer`.
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub sender_type: Option<String>,
    /// The agent's user id; null for customer messages.
    #[serde(default, deserialize_with = "tolerant::opt_id")]
    pub sender_id: Option<String>,
    /// Text.
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub content: Option<String>,
    /// Attachment objects (shape not documented) or URLs.
    #[serde(default, deserialize_with = "tolerant::lenient_vec")]
    pub attachments: Vec<Value>,
    /// Sent at.
    #[serde(default, deserialize_with = "tolerant::opt_time")]
    pub created_at: Option<DateTime<Utc>>,
}

/// `GET /api/v1/team/members`: a bare array.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct MemberList(#[serde(deserialize_with = "tolerant::lenient_vec")] pub Vec<Member>);

/// A team member.
#[derive(Debug, Clone, Deserialize)]
pub struct Member {
    /// The membership record's id (not assignable).
    #[serde(default, deserialize_with = "tolerant::opt_id")]
    pub id: Option<String>,
    /// The user's id: what assignment takes and what `assignee_id` holds.
    #[serde(default, deserialize_with = "tolerant::opt_id")]
    pub user_id: Option<String>,
    /// E-mail.
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub email: Option<String>,
    /// Full name.
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub name: Option<String>,
    /// `owner`, `admin` or `agent`.
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub role: Option<String>,
    /// `live`, `away` or `offline`.
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub status: Option<String>,
    /// Whether the account is active.
    #[serde(default, deserialize_with = "tolerant::opt_bool")]
    pub is_active: Option<bool>,
}
