//! Octopush's JSON, as serde types. Tolerant: unknown fields are ignored, ids are accepted as
//! strings or numbers, and unreadable optional values become `None`. Lists are bare arrays
//! (DOC); a wrapped list is tolerated.
//!
//! A conversation is read for the fields the gateway maps, and only those: a list page holds
//! a hundred of them, and a field read into a string only to be dropped costs on every one. The
//! vendor's whole JSON is still there for `include=raw`.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};
use switchboard_core::tolerant::{Count, Id, Object, ObjectOrId, Text, Time};

/// The items of a list response: a bare array (DOC), or tolerated, an object holding the array
/// under `data`, `items`, `results`, `conversations` or `messages`. `None` when neither.
pub fn list_items(body: Value) -> Option<Vec<Value>> {
    match body {
        Value::Array(items) => Some(items),
        Value::Object(mut map) => ["data", "items", "results", "conversations", "messages"]
            .iter()
            .find_map(|key| match map.remove(*key) {
                Some(Value::Array(items)) => Some(items),
                _ => None,
            }),
        _ => None,
    }
}

/// A conversation of `GET /conversations/list` (DOC, values masked in the docs).
#[derive(Debug, Clone, Deserialize)]
pub struct Conversation {
    /// The conversation id (the docs use `cid_{uuid}` as the messages filter value).
    pub conversation_id: Id,
    /// The channel of the contact's latest message (`sms`, `rcs`, …; INFERRED meaning).
    pub last_user_channel: Text,
    /// The contact: `{phone_number, name}`.
    pub recipient_details: Object<RecipientDetails>,
    /// The agent the conversation is assigned to: its login or id (format undocumented) or,
    /// tolerated, an object; absent when none.
    pub agent_assigned_to: ObjectOrId<AgentRef>,
    /// First message.
    pub first_message_at: Time,
    /// Latest message.
    pub last_message_at: Time,
    /// Latest message's text.
    pub last_message: Text,
    /// Messages in the conversation.
    pub number_of_messages: Count,
}

/// `recipient_details`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RecipientDetails {
    /// Phone number (E.164).
    pub phone_number: Text,
    /// Name.
    pub name: Text,
}

/// An agent: given as an object (tolerated), or as the masked scalar the docs show.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AgentRef {
    /// Id.
    pub id: Id,
    /// Login e-mail.
    pub email: Text,
    /// Login.
    pub login: Text,
    /// Name.
    pub name: Text,
}

impl From<String> for AgentRef {
    /// An agent given as a scalar: its login (an e-mail, or a masked value) or id.
    fn from(login: String) -> AgentRef {
        AgentRef {
            login: Some(login).into(),
            ..AgentRef::default()
        }
    }
}

/// The names a message's timestamp is looked up under, in order (the field is not documented).
pub const MESSAGE_TIME_FIELDS: &[&str] = &[
    "created_at",
    "sent_at",
    "date",
    "send_date",
    "received_at",
    "reception_date",
    "creation_date",
    "sending_date",
    "timestamp",
];

/// A message of `GET /conversations/messages/list` (DOC up to `agent_assigned_to`; the rest of
/// the object is not documented and is kept in `other`).
#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    /// Message id.
    pub message_id: Id,
    /// Text.
    pub text: Text,
    /// `inbound` (DOC) or `outbound` (INFERRED).
    pub direction: Text,
    /// Delivery state of an outbound message; null for inbound.
    pub delivery_status: Text,
    /// The message's channel.
    pub channel: Text,
    /// The contact's identifier on that channel.
    pub user_identifier: Text,
    /// `{phone_number, email, facebook_page_id}`.
    #[serde(default)]
    pub user_identifiers: Option<Value>,
    /// The agent assigned at the time (format undocumented).
    #[serde(default)]
    pub agent_assigned_to: Option<Value>,
    /// Every other field, among them the (undocumented) timestamp.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl Message {
    /// When the message was sent: the first readable field of [`MESSAGE_TIME_FIELDS`], else the
    /// first other field named like a time (`…_at`, `…date`, `…time`) that reads as one.
    pub fn created_at(&self) -> Option<DateTime<Utc>> {
        let read = |v: &Value| Time::deserialize(v).ok().and_then(Option::from);
        MESSAGE_TIME_FIELDS
            .iter()
            .find_map(|name| self.other.get(*name).and_then(read))
            .or_else(|| {
                self.other
                    .iter()
                    .filter(|(k, _)| {
                        k.ends_with("_at") || k.ends_with("date") || k.ends_with("time")
                    })
                    .find_map(|(_, v)| read(v))
            })
    }
}

/// `POST /sms-campaign/send` response (CODE, official PHP SDK README).
#[derive(Debug, Clone, Deserialize)]
pub struct SendResponse {
    /// The campaign ticket: the sent message's id.
    pub sms_ticket: Id,
    /// Recipients.
    pub number_of_contacts: Count,
    /// Cost in the account's currency.
    #[serde(default)]
    pub total_cost: Option<Value>,
    /// SMS parts needed.
    pub number_of_sms_needed: Count,
    /// Credit left.
    #[serde(default)]
    pub residual_credit: Option<Value>,
}

/// An error body (undocumented for `/v1/public`): any of `message`, `error`, `code`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ErrorBody {
    /// A message.
    pub message: Text,
    /// An error string, or an object holding `message` / `code`.
    #[serde(default)]
    pub error: Option<Value>,
    /// A machine code, string or number.
    pub code: Text,
}
