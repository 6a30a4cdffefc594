//! ChatbotX's JSON, as serde types. Tolerant: unknown fields are ignored, ids (bigints sent as
//! numeric strings) are accepted as strings or numbers, nested objects that do not parse become
//! `None`, and unreadable optional values become `None` rather than failing the response.
//!
//! A conversation is read for the fields the gateway maps, and only those: a list page holds
//! a hundred of them, and a field read into a string only to be dropped costs on every one. The
//! vendor's whole JSON is still there for `include=raw`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchboard_core::tolerant;

/// `GET /v1/conversations`: `{data, nextCursor, prevCursor}`.
#[derive(Debug, Deserialize)]
#[serde(bound = "I: Deserialize<'de>")]
pub struct ConversationList<I = Value> {
    /// The page's conversations: JSON (for `include=raw`) or [`tolerant::Item`]s (one odd item
    /// never fails the page).
    #[serde(default, deserialize_with = "tolerant::nullable_vec")]
    pub data: Vec<I>,
    /// The next page's cursor; null on the last page.
    #[serde(
        default,
        rename = "nextCursor",
        deserialize_with = "tolerant::opt_string"
    )]
    pub next_cursor: Option<String>,
}

/// `{"data": <item>}` (`GET /v1/conversations/{id}`), or, tolerated, the bare item; the item as
/// `T` (or as JSON, to keep it for `include=raw`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Envelope<T = Value> {
    /// `{"data": {...}}`.
    Wrapped {
        /// The item.
        data: T,
    },
    /// The item itself.
    Bare(T),
}

impl<T> Envelope<T> {
    /// The item inside.
    pub fn into_inner(self) -> T {
        match self {
            Envelope::Wrapped { data } | Envelope::Bare(data) => data,
        }
    }
}

/// One of the contact's channel identities (`contactInboxes[]`).
#[derive(Debug, Clone, Deserialize)]
pub struct ContactInbox {
    /// `webchat`, `whatsapp`, `messenger`, `instagram`, `telegram`, `zalo`, `smtp`, `tiktok`, …
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub channel: Option<String>,
}

/// The conversation's inbox, when included.
#[derive(Debug, Clone, Deserialize)]
pub struct Inbox {
    /// Its channel.
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub channel: Option<String>,
}

/// The customer.
#[derive(Debug, Clone, Deserialize)]
pub struct Contact {
    /// Contact id.
    #[serde(default, deserialize_with = "tolerant::opt_id")]
    pub id: Option<String>,
    /// First name.
    #[serde(
        default,
        rename = "firstName",
        deserialize_with = "tolerant::opt_string"
    )]
    pub first_name: Option<String>,
    /// Last name.
    #[serde(
        default,
        rename = "lastName",
        deserialize_with = "tolerant::opt_string"
    )]
    pub last_name: Option<String>,
    /// Full name.
    #[serde(
        default,
        rename = "fullName",
        deserialize_with = "tolerant::opt_string"
    )]
    pub full_name: Option<String>,
    /// E-mail.
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub email: Option<String>,
    /// Phone.
    #[serde(
        default,
        rename = "phoneNumber",
        deserialize_with = "tolerant::opt_string"
    )]
    pub phone_number: Option<String>,
}

/// A workspace user (an agent): `assignedUser`, a message's `user`, a member's `user`.
#[derive(Debug, Clone, Deserialize)]
pub struct User {
    /// User id: what `assign` takes.
    #[serde(default, deserialize_with = "tolerant::opt_id")]
    pub id: Option<String>,
    /// Name.
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub name: Option<String>,
    /// E-mail (not in the member list's `user`).
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub email: Option<String>,
    /// Avatar URL.
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub image: Option<String>,
}

/// A conversation (list item or detail).
#[derive(Debug, Clone, Deserialize)]
pub struct Conversation {
    /// Conversation id (numeric string).
    #[serde(deserialize_with = "tolerant::id")]
    pub id: String,
    /// Created.
    #[serde(default, rename = "createdAt", deserialize_with = "tolerant::opt_time")]
    pub created_at: Option<DateTime<Utc>>,
    /// Updated.
    #[serde(default, rename = "updatedAt", deserialize_with = "tolerant::opt_time")]
    pub updated_at: Option<DateTime<Utc>>,
    /// The list's sort key, kept as sent: a list cursor repeats it exactly.
    #[serde(
        default,
        rename = "lastActivityAt",
        deserialize_with = "tolerant::opt_string"
    )]
    pub last_activity_at: Option<String>,
    /// True while the bot answers; false once a person has taken over.
    #[serde(
        default,
        rename = "botEnabled",
        deserialize_with = "tolerant::opt_bool"
    )]
    pub bot_enabled: Option<bool>,
    /// Set when archived (closed); kept as sent, since any value means archived.
    #[serde(
        default,
        rename = "archivedAt",
        deserialize_with = "tolerant::opt_string"
    )]
    pub archived_at: Option<String>,
    /// A top-level channel (older payloads); `contactInboxes[].channel` otherwise.
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub channel: Option<String>,
    /// The contact's channel identities.
    #[serde(
        default,
        rename = "contactInboxes",
        deserialize_with = "tolerant::lenient_vec"
    )]
    pub contact_inboxes: Vec<ContactInbox>,
    /// The conversation's inbox, when included.
    #[serde(default, deserialize_with = "tolerant::opt_object")]
    pub inbox: Option<Inbox>,
    /// At most the latest message.
    #[serde(default, deserialize_with = "tolerant::lenient_vec")]
    pub messages: Vec<LatestMessage>,
    /// The customer.
    #[serde(default, deserialize_with = "tolerant::opt_object")]
    pub contact: Option<Contact>,
    /// The assigned user.
    #[serde(
        default,
        rename = "assignedUser",
        deserialize_with = "tolerant::opt_object"
    )]
    pub assigned_user: Option<User>,
    /// The assigned user's id.
    #[serde(
        default,
        rename = "assignedUserId",
        deserialize_with = "tolerant::opt_id"
    )]
    pub assigned_user_id: Option<String>,
}

/// A file attached to a message.
#[derive(Debug, Clone, Deserialize)]
pub struct Attachment {
    /// Presigned download URL (null while the vendor is still fetching the file).
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub url: Option<String>,
    /// MIME type.
    #[serde(
        default,
        rename = "mimeType",
        deserialize_with = "tolerant::opt_string"
    )]
    pub mime_type: Option<String>,
    /// File name.
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub name: Option<String>,
}

/// A conversation's latest message, as the conversation embeds it: only what its
/// `last_message` shows is read (a list of 100 embeds 100 of them).
#[derive(Debug, Clone, Deserialize)]
pub struct LatestMessage {
    /// Sent at.
    #[serde(default, rename = "createdAt", deserialize_with = "tolerant::opt_time")]
    pub created_at: Option<DateTime<Utc>>,
    /// Text (null for attachments and locations).
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub text: Option<String>,
}

/// A message.
#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    /// Message id (numeric string).
    #[serde(deserialize_with = "tolerant::id")]
    pub id: String,
    /// Sent at.
    #[serde(default, rename = "createdAt", deserialize_with = "tolerant::opt_time")]
    pub created_at: Option<DateTime<Utc>>,
    /// Text (null for attachments and locations).
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub text: Option<String>,
    /// `incoming`, `outgoing` or `activity`.
    #[serde(
        default,
        rename = "messageType",
        deserialize_with = "tolerant::opt_string"
    )]
    pub message_type: Option<String>,
    /// `bot`, `contact`, `system`, `user` or `api`.
    #[serde(
        default,
        rename = "senderType",
        deserialize_with = "tolerant::opt_string"
    )]
    pub sender_type: Option<String>,
    /// The sending user (for `user`) or contact.
    #[serde(default, rename = "senderId", deserialize_with = "tolerant::opt_id")]
    pub sender_id: Option<String>,
    /// An internal note, seen by the team only.
    #[serde(
        default,
        rename = "isInternal",
        deserialize_with = "tolerant::opt_bool"
    )]
    pub is_internal: Option<bool>,
    /// Delivered to the device.
    #[serde(
        default,
        rename = "deliveredAt",
        deserialize_with = "tolerant::opt_string"
    )]
    pub delivered_at: Option<String>,
    /// Read by the customer.
    #[serde(default, rename = "readAt", deserialize_with = "tolerant::opt_string")]
    pub read_at: Option<String>,
    /// Failed to deliver.
    #[serde(
        default,
        rename = "failedAt",
        deserialize_with = "tolerant::opt_string"
    )]
    pub failed_at: Option<String>,
    /// Attached files (list items).
    #[serde(default, deserialize_with = "tolerant::lenient_vec")]
    pub attachments: Vec<Attachment>,
    /// The sending user, when included.
    #[serde(default, deserialize_with = "tolerant::opt_object")]
    pub user: Option<User>,
}

/// `GET /v1/conversations/{id}/messages`: `{data, nextCursor, prevCursor}`, newest first.
#[derive(Debug, Deserialize)]
pub struct MessageList {
    /// The page's messages, raw.
    #[serde(default, deserialize_with = "tolerant::nullable_vec")]
    pub data: Vec<Value>,
    /// The cursor of the next (older) page; null on the last.
    #[serde(
        default,
        rename = "nextCursor",
        deserialize_with = "tolerant::opt_string"
    )]
    pub next_cursor: Option<String>,
}

/// A workspace member.
#[derive(Debug, Clone, Deserialize)]
pub struct Member {
    /// Member row id (not what `assign` takes).
    #[serde(default, deserialize_with = "tolerant::opt_id")]
    pub id: Option<String>,
    /// The member's user id.
    #[serde(default, rename = "userId", deserialize_with = "tolerant::opt_id")]
    pub user_id: Option<String>,
    /// `owner`, `admin`, …
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub role: Option<String>,
    /// The user: `{id, name, image}`.
    #[serde(default, deserialize_with = "tolerant::opt_object")]
    pub user: Option<User>,
}

/// `GET /v1/members`: `{data, pageCount}`.
#[derive(Debug, Deserialize)]
pub struct MemberList {
    /// The page's members.
    #[serde(default, deserialize_with = "tolerant::lenient_vec")]
    pub data: Vec<Member>,
    /// Number of pages.
    #[serde(default, rename = "pageCount", deserialize_with = "tolerant::opt_u64")]
    pub page_count: Option<u64>,
}

/// The oRPC error envelope: `{defined, code, status, message, data}`.
#[derive(Debug, Default, Deserialize)]
pub struct ErrorBody {
    /// Whether the route declares the code.
    #[serde(default, deserialize_with = "tolerant::opt_bool")]
    pub defined: Option<bool>,
    /// `notFound`, `invalidRequestData`, `tooManyRequests`, …
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub code: Option<String>,
    /// The HTTP status, repeated.
    #[serde(default, deserialize_with = "tolerant::opt_u64")]
    pub status: Option<u64>,
    /// Details: `{issues: [{message, path}]}` for `invalidRequestData`.
    #[serde(default)]
    pub data: Option<Value>,
}

impl ErrorBody {
    /// The first path segment of every validation issue (`text`, `assignedId`, `cursor`, …).
    pub fn issue_fields(&self) -> Vec<String> {
        let issues = self
            .data
            .as_ref()
            .and_then(|d| d.get("issues"))
            .and_then(Value::as_array);
        issues
            .into_iter()
            .flatten()
            .filter_map(|issue| issue.get("path")?.as_array()?.first().cloned())
            .filter_map(|first| match first {
                Value::String(s) => Some(s),
                Value::Object(o) => o.get("key").and_then(Value::as_str).map(str::to_owned),
                _ => None,
            })
            .collect()
    }

    /// `data.retryAfter` (seconds), when the vendor puts it in the body.
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.data.as_ref()?.get("retryAfter")?.as_u64()
    }
}

/// The conversation list's cursor: base64 of `{"lastActivityAt": …, "id": "…"}`.
#[derive(Debug, Serialize)]
struct ConversationCursor<'a> {
    #[serde(rename = "lastActivityAt")]
    last_activity_at: Option<&'a str>,
    id: &'a str,
}

/// The cursor that continues the conversation list after the item (`last_activity_at`, `id`),
/// exactly as ChatbotX builds its own `nextCursor`.
pub fn conversation_cursor(last_activity_at: Option<&str>, id: &str) -> String {
    let json = serde_json::to_vec(&ConversationCursor {
        last_activity_at,
        id,
    })
    .unwrap_or_default();
    STANDARD.encode(json)
}
