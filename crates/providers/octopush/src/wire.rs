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
use switchboard_core::tolerant;

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
    #[serde(default, deserialize_with = "tolerant::opt_id")]
    pub conversation_id: Option<String>,
    /// The channel of the contact's latest message (`sms`, `rcs`, …; INFERRED meaning).
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub last_user_channel: Option<String>,
    /// The contact: `{phone_number, name}`.
    #[serde(default, deserialize_with = "tolerant::opt_object")]
    pub recipient_details: Option<RecipientDetails>,
    /// The agent the conversation is assigned to: its login or id (format undocumented) or,
    /// tolerated, an object; absent when none.
    #[serde(default, deserialize_with = "tolerant::opt_object_or_id")]
    pub agent_assigned_to: Option<AgentRef>,
    /// First message.
    #[serde(default, deserialize_with = "tolerant::opt_time")]
    pub first_message_at: Option<DateTime<Utc>>,
    /// Latest message.
    #[serde(default, deserialize_with = "tolerant::opt_time")]
    pub last_message_at: Option<DateTime<Utc>>,
    /// Latest message's text.
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub last_message: Option<String>,
    /// Messages in the conversation.
    #[serde(default, deserialize_with = "tolerant::opt_u64")]
    pub number_of_messages: Option<u64>,
}

/// `recipient_details`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RecipientDetails {
    /// Phone number (E.164).
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub phone_number: Option<String>,
    /// Name.
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub name: Option<String>,
}

/// An agent: given as an object (tolerated), or as the masked scalar the docs show.
#[derive(Debug, Clone, Deserialize)]
pub struct AgentRef {
    /// Id.
    #[serde(default, deserialize_with = "tolerant::opt_id")]
    pub id: Option<String>,
    /// Login e-mail.
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub email: Option<String>,
    /// Login.
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub login: Option<String>,
    /// Name.
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub name: Option<String>,
}

impl From<String> for AgentRef {
    /// An agent given as a scalar: its login (an e-mail, or a masked value) or id.
    fn from(login: String) -> AgentRef {
        AgentRef {
            id: None,
            email: None,
            login: Some(login),
            name: None,
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
    #[serde(default, deserialize_with = "tolerant::opt_id")]
    pub message_id: Option<String>,
    /// Text.
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub text: Option<String>,
    /// `inbound` (DOC) or `outbound` (INFERRED).
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub direction: Option<String>,
    /// Delivery state of an outbound message; null for inbound.
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub delivery_status: Option<String>,
    /// The message's channel.
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub channel: Option<String>,
    /// The contact's identifier on that channel.
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub user_identifier: Option<String>,
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
        let read = |v: &Value| tolerant::opt_time(v.clone()).ok().flatten();
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
    #[serde(default, deserialize_with = "tolerant::opt_id")]
    pub sms_ticket: Option<String>,
    /// Recipients.
    #[serde(default, deserialize_with = "tolerant::opt_u64")]
    pub number_of_contacts: Option<u64>,
    /// Cost in the account's currency.
    #[serde(default)]
    pub total_cost: Option<Value>,
    /// SMS parts needed.
    #[serde(default, deserialize_with = "tolerant::opt_u64")]
    pub number_of_sms_needed: Option<u64>,
    /// Credit left.
    #[serde(default)]
    pub residual_credit: Option<Value>,
}

/// An error body (undocumented for `/v1/public`): any of `message`, `error`, `code`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ErrorBody {
    /// A message.
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub message: Option<String>,
    /// An error string, or an object holding `message` / `code`.
    #[serde(default)]
    pub error: Option<Value>,
    /// A machine code, string or number.
    #[serde(default, deserialize_with = "tolerant::opt_string")]
    pub code: Option<String>,
}
