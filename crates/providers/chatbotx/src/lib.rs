//! Switchboard adapter for the ChatbotX public API
//! (https://chatbotx.io/docs/api-reference/api-overview,
//! https://chatbotx.io/docs/api-reference/conversations/list-conversations).
//!
//! ChatbotX is an omnichannel chatbot inbox: a conversation is answered by the bot until a person
//! takes it over (`disable-bot`), and can be assigned to a workspace user. Archiving is its way to
//! close a conversation (`closed`); everything else is `open`. Lists are cursor-paged newest
//! activity first; the default list hides archived conversations, so an unfiltered list merges
//! the open and the archived lists.
#![deny(missing_docs)]

mod client;
pub mod config;
pub mod error;
pub mod mapping;
pub mod wire;

pub use client::Chatbotx;
pub use config::Config;

use switchboard_core::{Capabilities, NativeFilters, PagingStyle, ProviderKind, Status};
use switchboard_upstream::{RateLimit, Vendor};

/// ChatbotX, as the gateway knows it.
pub static VENDOR: Vendor = Vendor {
    kind: ProviderKind::new("chatbotx"),
    name: "ChatbotX",
    // The cloud API (self-hosted: `https://{YOUR_DOMAIN}/api`); paths are `/v1/...`.
    base_url: "https://app.chatbotx.io/api",
    // The quota in ChatbotX's server code: 120 requests per 10 s per workspace. (Its API overview
    // page says 30 requests per hour; set `rate_limit` lower if the cloud enforces that.)
    rate_limit: Some(RateLimit {
        requests: 120,
        per_seconds: 10,
    }),
    capabilities,
    parse_error: error::parse_error,
    statuses: error::STATUSES,
    passthrough: "the API under `/api` (e.g. `v1/inboxes`, `v1/teams`, tags and contacts)",
};

/// What ChatbotX can do.
pub fn capabilities() -> Capabilities {
    Capabilities {
        list_conversations: true,
        get_conversation: true,
        list_messages: true,
        list_agents: true,
        assign: true,
        unassign: true,
        send_message: true,
        set_status: vec![Status::Open, Status::Closed],
        idempotent_replies: true,
        native_filters: NativeFilters {
            status: true,
            mode: true,
            channel: true,
            assignee: true,
            updated_since: false,
        },
        paging: PagingStyle::Cursor,
        max_page_size: client::MAX_PAGE_SIZE,
        max_message_page_size: client::MAX_MESSAGE_PAGE_SIZE,
        sorted_by_activity: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_core::Operation;

    #[test]
    fn supports_every_operation_but_only_open_and_closed() {
        let caps = capabilities();
        assert_eq!(caps.operations(), Operation::ALL.to_vec());
        assert_eq!(caps.set_status, vec![Status::Open, Status::Closed]);
        assert!(caps.idempotent_replies);
    }
}
