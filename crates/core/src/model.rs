//! The normalized model every vendor is mapped to.
//!
//! A field a vendor does not have is `null`, never invented. Timestamps are UTC and serialize as
//! RFC 3339.

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Which vendor API a connection talks to.
///
/// The vendor's lowercase name (`zipchat`), as written in `provider = "..."` and in the API. The
/// names this build knows are the registry's vendor table; the spec's enum is generated from it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ProviderKind(Cow<'static, str>);

impl ProviderKind {
    /// The kind named `name`: 1 to 32 lowercase ASCII letters and digits, starting with a
    /// letter. Checked at compile time where used in a `const`.
    pub const fn new(name: &'static str) -> ProviderKind {
        assert!(ProviderKind::is_valid(name), "not a provider kind name");
        ProviderKind(Cow::Borrowed(name))
    }

    /// Whether `name` can name a vendor: 1 to 32 lowercase ASCII letters and digits, starting
    /// with a letter.
    pub const fn is_valid(name: &str) -> bool {
        let bytes = name.as_bytes();
        if bytes.is_empty() || bytes.len() > 32 || !bytes[0].is_ascii_lowercase() {
            return false;
        }
        let mut i = 1;
        while i < bytes.len() {
            if !(bytes[i].is_ascii_lowercase() || bytes[i].is_ascii_digit()) {
                return false;
            }
            i += 1;
        }
        true
    }

    /// The lowercase name used in the API and the config.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ProviderKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ProviderKind, D::Error> {
        let name = String::deserialize(d)?;
        if ProviderKind::is_valid(&name) {
            Ok(ProviderKind(Cow::Owned(name)))
        } else {
            Err(serde::de::Error::custom(format!(
                "`{name}` is not a provider name"
            )))
        }
    }
}

impl utoipa::PartialSchema for ProviderKind {
    /// A string; the server's spec lists the names of its vendor table as the enum.
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("Which vendor API a connection talks to."))
            .into()
    }
}

impl ToSchema for ProviderKind {}

/// The channel a conversation happens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// A website chat widget.
    Web,
    /// E-mail.
    Email,
    /// WhatsApp.
    Whatsapp,
    /// Instagram direct messages.
    Instagram,
    /// Facebook Messenger.
    Messenger,
    /// SMS.
    Sms,
    /// RCS business messaging.
    Rcs,
    /// Telegram.
    Telegram,
    /// Zalo.
    Zalo,
    /// TikTok.
    Tiktok,
    /// Anything else; `native_channel` keeps the vendor's string.
    Other,
}

impl Channel {
    /// Every channel, in a stable order.
    pub const ALL: [Channel; 11] = [
        Channel::Web,
        Channel::Email,
        Channel::Whatsapp,
        Channel::Instagram,
        Channel::Messenger,
        Channel::Sms,
        Channel::Rcs,
        Channel::Telegram,
        Channel::Zalo,
        Channel::Tiktok,
        Channel::Other,
    ];

    /// The lowercase name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Web => "web",
            Channel::Email => "email",
            Channel::Whatsapp => "whatsapp",
            Channel::Instagram => "instagram",
            Channel::Messenger => "messenger",
            Channel::Sms => "sms",
            Channel::Rcs => "rcs",
            Channel::Telegram => "telegram",
            Channel::Zalo => "zalo",
            Channel::Tiktok => "tiktok",
            Channel::Other => "other",
        }
    }

    /// Parses the API name exactly (used for query parameters).
    pub fn parse(s: &str) -> Option<Channel> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Maps a vendor's channel string, case-insensitively, to a channel; unknown strings are `Other`.
    pub fn from_native(native: &str) -> Channel {
        let lower = native.trim().to_ascii_lowercase();
        match lower.as_str() {
            "web" | "chat" | "webchat" | "widget" | "live_chat" | "livechat" | "website" => {
                Channel::Web
            }
            "email" | "mail" => Channel::Email,
            "whatsapp" | "wa" => Channel::Whatsapp,
            "instagram" | "ig" => Channel::Instagram,
            "messenger" | "facebook" | "fb" | "facebook_messenger" => Channel::Messenger,
            "sms" | "voice_sms" => Channel::Sms,
            "rcs" => Channel::Rcs,
            "telegram" => Channel::Telegram,
            "zalo" => Channel::Zalo,
            "tiktok" => Channel::Tiktok,
            _ => Channel::Other,
        }
    }

    /// Whether Meta's 24-hour customer-service window applies to replies on this channel.
    pub fn is_meta(self) -> bool {
        matches!(
            self,
            Channel::Whatsapp | Channel::Instagram | Channel::Messenger
        )
    }
}

/// Where a conversation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Waiting on the business.
    Open,
    /// Waiting on the customer or parked.
    Pending,
    /// Solved; may reopen.
    Resolved,
    /// Closed or archived.
    Closed,
}

impl Status {
    /// Every status, in a stable order.
    pub const ALL: [Status; 4] = [
        Status::Open,
        Status::Pending,
        Status::Resolved,
        Status::Closed,
    ];

    /// The lowercase name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Pending => "pending",
            Status::Resolved => "resolved",
            Status::Closed => "closed",
        }
    }

    /// Parses the API name.
    pub fn parse(s: &str) -> Option<Status> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// Who answers the customer: the vendor's bot, or a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The vendor's AI / bot answers.
    Ai,
    /// A person answers; the bot is silent.
    Human,
}

impl Mode {
    /// The lowercase name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Ai => "ai",
            Mode::Human => "human",
        }
    }

    /// Parses the API name.
    pub fn parse(s: &str) -> Option<Mode> {
        [Mode::Ai, Mode::Human]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// A person on the business side who can be assigned conversations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Agent {
    /// `"{connection}:{native_id}"`.
    #[schema(example = "shop-zipchat:7")]
    pub id: String,
    /// The connection this agent belongs to.
    pub connection: String,
    /// The vendor behind that connection.
    pub provider: ProviderKind,
    /// The vendor's own id for the agent.
    pub native_id: String,
    /// Display name, when the vendor gives one.
    #[schema(required = true)]
    pub name: Option<String>,
    /// E-mail address, when the vendor gives one.
    #[schema(required = true)]
    pub email: Option<String>,
    /// Avatar image URL, when the vendor gives one.
    #[schema(required = true)]
    pub avatar_url: Option<String>,
}

/// The customer on the other side of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Contact {
    /// `"{connection}:{native_id}"`, or null when the vendor gives the contact no id.
    #[schema(required = true)]
    pub id: Option<String>,
    /// The vendor's own id for the contact.
    #[schema(required = true)]
    pub native_id: Option<String>,
    /// Full name.
    #[schema(required = true)]
    pub name: Option<String>,
    /// E-mail address.
    #[schema(required = true)]
    pub email: Option<String>,
    /// Phone number as the vendor gives it (usually E.164).
    #[schema(required = true)]
    pub phone: Option<String>,
    /// Other ids the vendor knows the contact by, e.g. `shopify_customer_id`.
    pub external_ids: BTreeMap<String, String>,
}

/// The latest message of a conversation, where the vendor includes it in the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LastMessage {
    /// Plain text.
    pub text: String,
    /// When it was sent, if known.
    #[schema(required = true)]
    #[serde(serialize_with = "crate::rfc3339::serialize_opt")]
    pub created_at: Option<DateTime<Utc>>,
}

/// When the bot escalated the conversation to a person, and when that was resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Escalation {
    /// When the bot escalated.
    #[schema(required = true)]
    #[serde(serialize_with = "crate::rfc3339::serialize_opt")]
    pub escalated_at: Option<DateTime<Utc>>,
    /// When a person marked the escalation resolved.
    #[schema(required = true)]
    #[serde(serialize_with = "crate::rfc3339::serialize_opt")]
    pub resolved_at: Option<DateTime<Utc>>,
}

/// One conversation with one customer on one connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "shop-zipchat:12345", "connection": "shop-zipchat", "provider": "zipchat",
    "native_id": "12345", "channel": "whatsapp", "native_channel": "whatsapp", "status": "open",
    "mode": "human",
    "assignee": {"id": "shop-zipchat:7", "connection": "shop-zipchat", "provider": "zipchat",
                 "native_id": "7", "name": "Jane Agent", "email": "jane@shop.example.com", "avatar_url": null},
    "contact": {"id": "shop-zipchat:100", "native_id": "100", "name": "John Doe",
                "email": "john@example.com", "phone": "+1234567890",
                "external_ids": {"shopify_customer_id": "7000100"}},
    "created_at": "2026-01-15T10:30:00Z", "updated_at": null,
    "last_activity_at": "2026-01-15T10:45:00Z", "last_message": null, "message_count": 3,
    "escalation": {"escalated_at": "2026-01-15T10:40:00Z", "resolved_at": null},
    "url": "https://app.zipchat.ai/chats/1/conversations/12345"
}))]
pub struct Conversation {
    /// `"{connection}:{native_id}"`.
    #[schema(example = "shop-zipchat:12345")]
    pub id: String,
    /// The connection (operator-chosen id) this conversation lives on.
    pub connection: String,
    /// The vendor behind that connection.
    pub provider: ProviderKind,
    /// The vendor's own id.
    pub native_id: String,
    /// Normalized channel.
    pub channel: Channel,
    /// The vendor's raw channel string.
    #[schema(required = true)]
    pub native_channel: Option<String>,
    /// Normalized status.
    pub status: Status,
    /// Who answers: the bot (`ai`) or a person (`human`); null where the vendor has no bot.
    #[schema(required = true)]
    pub mode: Option<Mode>,
    /// The assigned agent.
    #[schema(required = true)]
    pub assignee: Option<Agent>,
    /// The customer.
    #[schema(required = true)]
    pub contact: Option<Contact>,
    /// When the conversation started.
    #[schema(required = true)]
    #[serde(serialize_with = "crate::rfc3339::serialize_opt")]
    pub created_at: Option<DateTime<Utc>>,
    /// When the vendor last changed it, if the vendor says.
    #[schema(required = true)]
    #[serde(serialize_with = "crate::rfc3339::serialize_opt")]
    pub updated_at: Option<DateTime<Utc>>,
    /// The latest activity: the inbox sort key, always set.
    #[serde(serialize_with = "crate::rfc3339::serialize")]
    pub last_activity_at: DateTime<Utc>,
    /// The latest message, where the vendor includes it.
    #[schema(required = true)]
    pub last_message: Option<LastMessage>,
    /// Number of messages, where the vendor counts them.
    #[schema(required = true)]
    pub message_count: Option<u64>,
    /// Bot-to-person escalation, where the vendor tracks it.
    #[schema(required = true)]
    pub escalation: Option<Escalation>,
    /// Link to the conversation in the vendor's own UI.
    #[schema(required = true)]
    pub url: Option<String>,
    /// The vendor's JSON, only with `include=raw`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<HashMap<String, Value>>, nullable = false)]
    pub raw: Option<serde_json::Value>,
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Author {
    /// The customer.
    Contact,
    /// A person on the business side.
    Agent,
    /// The vendor's bot / AI.
    Bot,
    /// The vendor itself (events, notices).
    System,
}

/// Whether a message came from the customer or went to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// From the customer.
    Inbound,
    /// To the customer.
    Outbound,
}

/// Delivery state of an outbound message, where the vendor reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Handed to the channel.
    Sent,
    /// Delivered to the device.
    Delivered,
    /// Read by the customer.
    Read,
    /// Failed.
    Failed,
}

/// A file or image attached to a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Attachment {
    /// Where to fetch it.
    pub url: String,
    /// MIME type, if known.
    #[schema(required = true)]
    pub content_type: Option<String>,
    /// File name, if known.
    #[schema(required = true)]
    pub name: Option<String>,
}

/// One message in a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "shop-zipchat:3", "conversation_id": "shop-zipchat:12345", "connection": "shop-zipchat",
    "provider": "zipchat", "native_id": "3", "author": "agent",
    "sender": {"id": "shop-zipchat:7", "connection": "shop-zipchat", "provider": "zipchat",
               "native_id": "7", "name": null, "email": null, "avatar_url": null},
    "text": "Hello! A person here.", "html": "<p>Hello! A person here.</p>", "attachments": [],
    "created_at": "2026-01-15T10:45:00Z", "direction": "outbound", "delivery_status": null
}))]
pub struct Message {
    /// `"{connection}:{native_id}"`.
    pub id: String,
    /// The conversation's id (`"{connection}:{native_id}"`).
    pub conversation_id: String,
    /// The connection.
    pub connection: String,
    /// The vendor behind that connection.
    pub provider: ProviderKind,
    /// The vendor's own message id.
    pub native_id: String,
    /// Who wrote it.
    pub author: Author,
    /// The agent who sent it, for agent messages where the vendor says who.
    #[schema(required = true)]
    pub sender: Option<Agent>,
    /// Plain text (HTML stripped; the original is in `html`).
    pub text: String,
    /// The vendor's HTML, when the message was HTML.
    #[schema(required = true)]
    pub html: Option<String>,
    /// Attached files and images.
    pub attachments: Vec<Attachment>,
    /// When it was sent.
    #[serde(serialize_with = "crate::rfc3339::serialize")]
    pub created_at: DateTime<Utc>,
    /// Inbound (from the customer) or outbound.
    pub direction: Direction,
    /// Delivery state, where the vendor reports it.
    #[schema(required = true)]
    pub delivery_status: Option<DeliveryStatus>,
    /// The vendor's JSON, only with `include=raw`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<HashMap<String, Value>>, nullable = false)]
    pub raw: Option<serde_json::Value>,
}

/// A connection's circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls fail fast after repeated failures, until a probe succeeds.
    Open,
    /// One probe call is being let through.
    HalfOpen,
}

/// A connection's quota as the gateway sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QuotaStatus {
    /// Requests allowed per window.
    pub requests: u32,
    /// Window length in seconds.
    pub per_seconds: u32,
    /// Requests the gateway could still send at once, as of its last request.
    #[schema(required = true)]
    pub remaining: Option<u32>,
    /// What the vendor last reported as remaining (`X-RateLimit-Remaining`), where it does.
    #[schema(required = true)]
    pub vendor_remaining: Option<u32>,
    /// When the vendor's window resets (`X-RateLimit-Reset`), where it says.
    #[schema(required = true)]
    #[serde(serialize_with = "crate::rfc3339::serialize_opt")]
    pub vendor_reset_at: Option<DateTime<Utc>>,
}

/// How a connection is doing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConnectionHealth {
    /// The circuit breaker.
    pub breaker: BreakerState,
    /// The code of the last failed upstream call, if the last call failed.
    #[schema(required = true)]
    pub last_error: Option<String>,
    /// When the vendor last answered.
    #[schema(required = true)]
    #[serde(serialize_with = "crate::rfc3339::serialize_opt")]
    pub last_success_at: Option<DateTime<Utc>>,
    /// The quota, when the connection has one.
    #[schema(required = true)]
    pub quota: Option<QuotaStatus>,
}
