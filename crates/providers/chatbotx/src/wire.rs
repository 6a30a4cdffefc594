//! ChatbotX's JSON, as serde types. Tolerant: unknown fields are ignored, ids (bigints sent as
//! numeric strings) are accepted as strings or numbers, nested objects that do not parse become
//! `None`, and unreadable optional values become `None` rather than failing the response.
//! ChatbotX writes its fields in camelCase.
//!
//! A conversation is read for the fields the gateway maps, and only those: a list page holds
//! a hundred of them, and a field read into a string only to be dropped costs on every one. The
//! vendor's whole JSON is still there for `include=raw`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchboard_core::tolerant::{self, Count, Flag, Id, List, Object, Text, Time};

/// `GET /v1/conversations`: `{data, nextCursor, prevCursor}`.
#[derive(Debug, Deserialize)]
#[serde(bound = "I: Deserialize<'de>")]
#[serde(rename_all = "camelCase")]
pub struct ConversationList<I = Value> {
    /// The page's conversations: JSON (for `include=raw`) or [`tolerant::Item`]s (one odd item
    /// never fails the page).
    #[serde(default, deserialize_with = "tolerant::nullable_vec")]
    pub data: Vec<I>,
    /// The next page's cursor; null on the last page.
    pub next_cursor: Text,
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
    pub channel: Text,
}

/// The conversation's inbox, when included.
#[derive(Debug, Clone, Deserialize)]
pub struct Inbox {
    /// Its channel.
    pub channel: Text,
}

/// The customer.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    /// Contact id.
    pub id: Id,
    /// First name.
    pub first_name: Text,
    /// Last name.
    pub last_name: Text,
    /// Full name.
    pub full_name: Text,
    /// E-mail.
    pub email: Text,
    /// Phone.
    pub phone_number: Text,
}

/// A workspace user (an agent): `assignedUser`, a message's `user`, a member's `user`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct User {
    /// User id: what `assign` takes.
    pub id: Id,
    /// Name.
    pub name: Text,
    /// E-mail (not in the member list's `user`).
    pub email: Text,
    /// Avatar URL.
    pub image: Text,
}

/// A conversation (list item or detail).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conversation {
    /// Conversation id (numeric string).
    #[serde(deserialize_with = "tolerant::id")]
    pub id: String,
    /// Created.
    pub created_at: Time,
    /// Updated.
    pub updated_at: Time,
    /// The list's sort key, kept as sent: a list cursor repeats it exactly.
    pub last_activity_at: Text,
    /// True while the bot answers; false once a person has taken over.
    pub bot_enabled: Flag,
    /// Set when archived (closed); kept as sent, since any value means archived.
    pub archived_at: Text,
    /// A top-level channel (older payloads); `contactInboxes[].channel` otherwise.
    pub channel: Text,
    /// The contact's channel identities.
    pub contact_inboxes: List<ContactInbox>,
    /// The conversation's inbox, when included.
    pub inbox: Object<Inbox>,
    /// At most the latest message.
    pub messages: List<LatestMessage>,
    /// The customer.
    pub contact: Object<Contact>,
    /// The assigned user.
    pub assigned_user: Object<User>,
    /// The assigned user's id.
    pub assigned_user_id: Id,
}

/// A file attached to a message.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    /// Presigned download URL (null while the vendor is still fetching the file).
    pub url: Text,
    /// MIME type.
    pub mime_type: Text,
    /// File name.
    pub name: Text,
}

/// A conversation's latest message, as the conversation embeds it: only what its
/// `last_message` shows is read (a list of 100 embeds 100 of them).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LatestMessage {
    /// Sent at.
    pub created_at: Time,
    /// Text (null for attachments and locations).
    pub text: Text,
}

/// A message.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    /// Message id (numeric string).
    #[serde(deserialize_with = "tolerant::id")]
    pub id: String,
    /// Sent at.
    pub created_at: Time,
    /// Text (null for attachments and locations).
    pub text: Text,
    /// `incoming`, `outgoing` or `activity`.
    pub message_type: Text,
    /// `bot`, `contact`, `system`, `user` or `api`.
    pub sender_type: Text,
    /// The sending user (for `user`) or contact.
    pub sender_id: Id,
    /// An internal note, seen by the team only.
    pub is_internal: Flag,
    /// Delivered to the device.
    pub delivered_at: Text,
    /// Read by the customer.
    pub read_at: Text,
    /// Failed to deliver.
    pub failed_at: Text,
    /// Attached files (list items).
    pub attachments: List<Attachment>,
    /// The sending user, when included.
    pub user: Object<User>,
}

/// `GET /v1/conversations/{id}/messages`: `{data, nextCursor, prevCursor}`, newest first.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageList {
    /// The page's messages, raw.
    #[serde(default, deserialize_with = "tolerant::nullable_vec")]
    pub data: Vec<Value>,
    /// The cursor of the next (older) page; null on the last.
    pub next_cursor: Text,
}

/// A workspace member.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    /// Member row id (not what `assign` takes).
    pub id: Id,
    /// The member's user id.
    pub user_id: Id,
    /// `owner`, `admin`, …
    pub role: Text,
    /// The user: `{id, name, image}`.
    pub user: Object<User>,
}

/// `GET /v1/members`: `{data, pageCount}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberList {
    /// The page's members.
    pub data: List<Member>,
    /// Number of pages.
    pub page_count: Count,
}

/// The oRPC error envelope: `{defined, code, status, message, data}`.
#[derive(Debug, Default, Deserialize)]
pub struct ErrorBody {
    /// Whether the route declares the code.
    pub defined: Flag,
    /// `notFound`, `invalidRequestData`, `tooManyRequests`, …
    pub code: Text,
    /// The HTTP status, repeated.
    pub status: Count,
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
#[serde(rename_all = "camelCase")]
struct ConversationCursor<'a> {
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
