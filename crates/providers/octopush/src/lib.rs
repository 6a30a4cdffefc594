//! Switchboard adapter for the Octopush SMS / RCS API
//! (https://octopush-api.readme.io/reference/get_public_apiconversationsget_conversations,
//! https://octopush-api.readme.io/reference/get_public_apiconversations_messagesget_messages,
//! https://octopush.com/en/sms-gateway-api-documentation/send-sms/).
//!
//! Octopush is an SMS / RCS gateway with a two-way inbox: a conversation is the thread with one
//! phone number. It has no bot (`mode` is null), no conversation status (every conversation is
//! `open`), no agents API and no assignment, and no endpoint for one conversation: the adapter
//! finds it in the (bounded) conversation list. A reply is an SMS to the conversation's phone
//! number through `POST /sms-campaign/send`, with the caller's idempotency key as `request_id`
//! so a retried reply is never billed twice.
#![deny(missing_docs)]

mod client;
pub mod config;
pub mod error;
pub mod mapping;
pub mod wire;

pub use client::{MAX_LOOKUP_PAGES, Octopush};
pub use config::Config;

use switchboard_core::{Capabilities, NativeFilters, PagingStyle, ProviderKind};
use switchboard_upstream::Vendor;

/// Octopush, as the gateway knows it.
pub static VENDOR: Vendor = Vendor {
    kind: ProviderKind::new("octopush"),
    name: "Octopush",
    base_url: "https://api.octopush.com/v1/public",
    // Octopush documents no request quota: no budget by default (a 429 is still honoured).
    rate_limit: None,
    capabilities,
    parse_error: error::parse_error,
    statuses: error::STATUSES,
    passthrough: "the public API under `/v1/public` (e.g. `sms-campaign/send`, campaigns and lists)",
};

/// What Octopush can do.
pub fn capabilities() -> Capabilities {
    Capabilities {
        list_conversations: true,
        get_conversation: true,
        list_messages: true,
        list_agents: false,
        assign: false,
        unassign: false,
        send_message: true,
        set_status: Vec::new(),
        idempotent_replies: true,
        native_filters: NativeFilters::default(),
        paging: PagingStyle::PageNumber,
        max_page_size: client::MAX_PAGE_SIZE,
        max_message_page_size: client::MAX_MESSAGE_PAGE_SIZE,
        // The order is not documented (INFERRED `last_message_at` desc): the gateway sorts the
        // list itself, a window of pages at a time.
        sorted_by_activity: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_core::Operation;

    #[test]
    fn reads_and_replies_but_has_no_agents_assignment_or_status() {
        let caps = capabilities();
        assert_eq!(
            caps.operations(),
            [
                Operation::ListConversations,
                Operation::GetConversation,
                Operation::ListMessages,
                Operation::SendMessage,
            ]
        );
        assert!(caps.set_status.is_empty() && caps.idempotent_replies);
        assert!(!caps.sorted_by_activity, "the order is not documented");
    }
}
