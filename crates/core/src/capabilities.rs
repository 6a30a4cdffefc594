//! What a connection's vendor can do, declared by each adapter and checked before routing.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::model::Status;

/// An operation a client can ask of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// List conversations.
    ListConversations,
    /// Read one conversation.
    GetConversation,
    /// Read a conversation's messages.
    ListMessages,
    /// List the agents that can be assigned.
    ListAgents,
    /// Assign a conversation to an agent (a person takes over from the bot).
    Assign,
    /// Unassign a conversation / hand it back to the bot.
    Unassign,
    /// Reply in a conversation.
    SendMessage,
    /// Change a conversation's status (resolve, close, reopen).
    SetStatus,
}

impl Operation {
    /// Every operation, in a stable order.
    pub const ALL: [Operation; 8] = [
        Operation::ListConversations,
        Operation::GetConversation,
        Operation::ListMessages,
        Operation::ListAgents,
        Operation::Assign,
        Operation::Unassign,
        Operation::SendMessage,
        Operation::SetStatus,
    ];

    /// The snake_case name used in errors and in `GET /v1/connections`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::ListConversations => "list_conversations",
            Operation::GetConversation => "get_conversation",
            Operation::ListMessages => "list_messages",
            Operation::ListAgents => "list_agents",
            Operation::Assign => "assign",
            Operation::Unassign => "unassign",
            Operation::SendMessage => "send_message",
            Operation::SetStatus => "set_status",
        }
    }
}

/// How a vendor pages its lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PagingStyle {
    /// `page` numbers starting at 1.
    PageNumber,
    /// An opaque cursor returned with each page.
    Cursor,
    /// The whole list in one response.
    Single,
}

/// Which conversation-list filters the vendor applies itself; the gateway applies the rest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NativeFilters {
    /// `status`.
    pub status: bool,
    /// `mode` (bot or person).
    pub mode: bool,
    /// `channel`.
    pub channel: bool,
    /// `assignee_id`.
    pub assignee: bool,
    /// `updated_since` (activity at or after a time).
    pub updated_since: bool,
}

/// Everything a client or the gateway needs to know about a vendor before calling it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Capabilities {
    /// List conversations.
    pub list_conversations: bool,
    /// Read one conversation.
    pub get_conversation: bool,
    /// Read messages.
    pub list_messages: bool,
    /// List assignable agents.
    pub list_agents: bool,
    /// Assign to an agent (take over from the bot).
    pub assign: bool,
    /// Unassign / hand back to the bot.
    pub unassign: bool,
    /// Reply.
    pub send_message: bool,
    /// The statuses a conversation can be set to (empty: status cannot be changed).
    pub set_status: Vec<Status>,
    /// Whether `Idempotency-Key` is passed on to the vendor (or enforced by it).
    pub idempotent_replies: bool,
    /// Filters applied by the vendor; the others are applied by the gateway.
    pub native_filters: NativeFilters,
    /// How the vendor pages conversations.
    pub paging: PagingStyle,
    /// The largest conversation page the vendor serves.
    pub max_page_size: u32,
    /// The largest message page the vendor serves.
    pub max_message_page_size: u32,
    /// Whether the vendor's conversation list is sorted by latest activity, newest first.
    pub sorted_by_activity: bool,
}

impl Capabilities {
    /// Whether the vendor supports `op` at all.
    pub fn supports(&self, op: Operation) -> bool {
        match op {
            Operation::ListConversations => self.list_conversations,
            Operation::GetConversation => self.get_conversation,
            Operation::ListMessages => self.list_messages,
            Operation::ListAgents => self.list_agents,
            Operation::Assign => self.assign,
            Operation::Unassign => self.unassign,
            Operation::SendMessage => self.send_message,
            Operation::SetStatus => !self.set_status.is_empty(),
        }
    }

    /// The operations the vendor supports, in a stable order.
    pub fn operations(&self) -> Vec<Operation> {
        Operation::ALL
            .into_iter()
            .filter(|op| self.supports(*op))
            .collect()
    }
}
