//! The gateway's operations over its connections, one module per kind: [`listing`] (the merged
//! inbox, a conversation, its messages, agents), [`writes`] (assignment and status) and
//! [`replies`] (a reply, delivered exactly once per `Idempotency-Key`). The HTTP handlers in
//! [`crate::api`] extract, call one of these, and answer.

pub mod listing;
pub mod replies;
pub mod writes;

pub use listing::{
    AgentPage, CONVERSATION_PARAMS, ConversationPage, ConversationQuery, MESSAGE_PARAMS,
    MessagePage, PartialFailure, get_conversation, list_agents, list_conversations, list_messages,
};
pub use replies::{MAX_REPLY_CHARS, Reply, ReplyError, reply};
pub use writes::{set_assignment, set_status};
