//! The `Provider` trait every vendor adapter implements, and the queries it takes.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use std::sync::Arc;

use crate::capabilities::{Capabilities, Operation};
use crate::error::Result;
use crate::inbox::SortWindow;
use crate::model::{
    Agent, Channel, ConnectionHealth, Conversation, Message, Mode, ProviderKind, Status,
};

/// Who a provider is: its kind, its connection id and what it can do.
#[derive(Debug, Clone)]
pub struct ProviderInfo {
    /// The vendor.
    pub kind: ProviderKind,
    /// The operator-chosen connection id.
    pub connection: String,
    /// What the vendor can do.
    pub capabilities: Capabilities,
    /// For a vendor that does not say its list is sorted by activity: how many upstream pages
    /// the merged inbox reads and sorts together, one until the list is seen out of order
    /// (shared by every clone of this info).
    pub sort_window: Arc<SortWindow>,
}

/// An adapter's own position in an upstream list: opaque to everything but the adapter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum UpstreamPage {
    /// The first page.
    #[serde(rename = "f")]
    First,
    /// A page number (1-based).
    #[serde(rename = "n")]
    Number(u32),
    /// A vendor cursor.
    #[serde(rename = "c")]
    Cursor(String),
}

/// One upstream page of items, and where the next one starts (`None`: the list ends here).
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The items, in the vendor's order.
    pub items: Vec<T>,
    /// The position of the next page, if any.
    pub next: Option<UpstreamPage>,
}

impl<T> Page<T> {
    /// A page that ends the list.
    pub fn last(items: Vec<T>) -> Page<T> {
        Page { items, next: None }
    }
}

/// The conversation-list filters, in each connection's native terms.
///
/// An adapter applies the ones its `Capabilities::native_filters` declares; the gateway applies
/// every filter again on what comes back, so a vendor that ignores one is still filtered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConversationFilter {
    /// Only these statuses (empty: any).
    pub status: Vec<Status>,
    /// Only this mode.
    pub mode: Option<Mode>,
    /// Only these channels (empty: any).
    pub channel: Vec<Channel>,
    /// Only conversations assigned to this agent (native id on this connection).
    pub assignee: Option<String>,
    /// Only conversations with activity at or after this time.
    pub updated_since: Option<DateTime<Utc>>,
}

impl ConversationFilter {
    /// Whether `c` passes every filter.
    pub fn matches(&self, c: &Conversation) -> bool {
        (self.status.is_empty() || self.status.contains(&c.status))
            && self.mode.is_none_or(|m| c.mode == Some(m))
            && (self.channel.is_empty() || self.channel.contains(&c.channel))
            && self
                .assignee
                .as_deref()
                .is_none_or(|a| c.assignee.as_ref().is_some_and(|ag| ag.native_id == a))
            && self.updated_since.is_none_or(|t| c.last_activity_at >= t)
    }

    /// Whether a vendor applying `native` leaves every conversation of its list matching, but
    /// for `updated_since`: a list sorted by activity ends at its first older conversation rather
    /// than thinning out, so a page of `n` still holds the next `n` matches.
    pub fn applied_by(&self, native: &crate::NativeFilters) -> bool {
        (self.status.is_empty() || native.status)
            && (self.mode.is_none() || native.mode)
            && (self.channel.is_empty() || native.channel)
            && (self.assignee.is_none() || native.assignee)
    }
}

/// A request for one upstream page of conversations.
#[derive(Debug, Clone)]
pub struct ListQuery<'a> {
    /// The filters (native ones are sent upstream).
    pub filter: &'a ConversationFilter,
    /// How many items per upstream page; constant over a traversal, but for a cursor-paged list
    /// whose first read may ask for fewer (the first page's `limit`).
    pub page_size: u32,
    /// Attach each item's vendor JSON as `raw` (the caller asked `include=raw`).
    pub include_raw: bool,
}

impl<'a> ListQuery<'a> {
    /// Pages of `page_size` conversations that pass `filter`, without their vendor JSON.
    pub fn new(filter: &'a ConversationFilter, page_size: u32) -> ListQuery<'a> {
        ListQuery {
            filter,
            page_size,
            include_raw: false,
        }
    }
}

/// A request for one upstream page of a conversation's messages.
#[derive(Debug, Clone)]
pub struct MessageQuery {
    /// Only messages created at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// How many items per upstream page; constant over a traversal.
    pub page_size: u32,
    /// Attach each message's vendor JSON as `raw` (the caller asked `include=raw`).
    pub include_raw: bool,
}

impl MessageQuery {
    /// Pages of `page_size` messages, however old, without their vendor JSON.
    pub fn new(page_size: u32) -> MessageQuery {
        MessageQuery {
            since: None,
            page_size,
            include_raw: false,
        }
    }
}

/// A change of who handles a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assignment {
    /// A person (native agent id) takes the conversation over from the bot.
    Agent(String),
    /// Hand the conversation back to the bot / leave it unassigned.
    Unassigned,
}

impl Assignment {
    /// The operation it asks for: `assign` or `unassign`.
    pub fn operation(&self) -> Operation {
        match self {
            Assignment::Agent(_) => Operation::Assign,
            Assignment::Unassigned => Operation::Unassign,
        }
    }
}

/// A reply to send.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Plain text.
    pub text: String,
    /// The agent (native id) sending it, if the caller names one.
    pub sender: Option<String>,
    /// The caller's idempotency key, passed on to vendors that accept one.
    pub idempotency_key: Option<String>,
}

/// A request sent through to a connection's vendor as the caller wrote it (`passthrough`): the
/// gateway has checked the path and kept only the headers it forwards.
#[derive(Debug, Clone)]
pub struct PassthroughRequest {
    /// `GET`, `POST`, `PUT`, `PATCH` or `DELETE`.
    pub method: String,
    /// The path under the connection's base URL, percent-encoded as received, no leading `/`;
    /// checked to stay under the base URL (no `..`, no `//host`, no backslash).
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    /// The caller's headers the gateway forwards (`Content-Type`, `Accept`, `Idempotency-Key`).
    pub headers: Vec<(String, String)>,
    /// The body, at most the gateway's inbound cap.
    pub body: Vec<u8>,
}

/// The vendor's answer to a passthrough request, as it was: any status, its body (capped), and
/// the headers the gateway returns.
#[derive(Debug, Clone)]
pub struct PassthroughAnswer {
    /// The vendor's status.
    pub status: u16,
    /// The vendor's headers the gateway returns (an allowlist, `Content-Type` among them).
    pub headers: Vec<(String, String)>,
    /// The vendor's body.
    pub body: Vec<u8>,
}

/// One vendor connection. Every method is required: an adapter lacking an operation returns
/// `Error::unsupported(op)`, in agreement with its `Capabilities`.
///
/// Conversation ids here are the vendor's native ids; the adapter builds the gateway ids
/// (`"{connection}:{native_id}"`) of what it returns.
#[async_trait]
pub trait Provider: Send + Sync + std::fmt::Debug {
    /// Kind, connection id and capabilities.
    fn info(&self) -> &ProviderInfo;

    /// How the connection is doing: breaker, last error, quota.
    fn health(&self) -> ConnectionHealth;

    /// One upstream page of conversations.
    async fn list_conversations(
        &self,
        query: &ListQuery<'_>,
        page: &UpstreamPage,
    ) -> Result<Page<Conversation>>;

    /// One conversation; with `include_raw`, the vendor's JSON of it as `raw` (else `None`, and
    /// the adapter need not build it).
    async fn get_conversation(&self, id: &str, include_raw: bool) -> Result<Conversation>;

    /// One upstream page of a conversation's messages, newest first.
    async fn list_messages(
        &self,
        conversation: &str,
        query: &MessageQuery,
        page: &UpstreamPage,
    ) -> Result<Page<Message>>;

    /// One upstream page of assignable agents.
    async fn list_agents(&self, page: &UpstreamPage) -> Result<Page<Agent>>;

    /// Assigns (takes over) or unassigns (hands back) a conversation; returns it as it is now.
    async fn set_assignment(
        &self,
        conversation: &str,
        assignment: Assignment,
    ) -> Result<Conversation>;

    /// Sends a reply; returns the message as stored.
    async fn send_message(&self, conversation: &str, message: NewMessage) -> Result<Message>;

    /// Changes a conversation's status; returns it as it is now.
    async fn set_status(&self, conversation: &str, status: Status) -> Result<Conversation>;

    /// Sends `request` to the vendor with the connection's credentials, under the connection's
    /// quota, vendor window, breaker, body cap and deadline; never retried, never cached. A
    /// connection without a vendor API behind it (an in-memory one) does not support it.
    async fn passthrough(&self, request: PassthroughRequest) -> Result<PassthroughAnswer> {
        let _ = request;
        Err(crate::error::Error::new(
            crate::error::ErrorKind::Unsupported,
            "this connection has no vendor API to pass requests through to",
        )
        .with_connection(&self.info().connection))
    }
}
