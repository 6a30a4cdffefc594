//! Switchboard adapter for the Zipchat Backend API
//! (https://docs.zipchat.ai/installation-and-setup/chat-settings/integrations/backend-api).
//!
//! Zipchat is an AI chatbot: a conversation is answered by the AI until a person takes it over
//! (assignment to a user = manual mode), and handed back by unassigning it. It has no
//! conversation status (every conversation is `open`) and no way to close one.
#![deny(missing_docs)]

mod client;
pub mod config;
pub mod error;
pub mod mapping;
pub mod wire;

pub use client::Zipchat;
pub use config::Config;

use switchboard_core::{Capabilities, NativeFilters, PagingStyle, ProviderKind};
use switchboard_upstream::{RateLimit, Vendor};

/// Zipchat, as the gateway knows it.
pub static VENDOR: Vendor = Vendor {
    kind: ProviderKind::new("zipchat"),
    name: "Zipchat",
    base_url: "https://app.zipchat.ai/api/integrations/backend_api/v1",
    // Zipchat's documented quota: 120 requests per 60 s per integration.
    rate_limit: Some(RateLimit {
        requests: 120,
        per_seconds: 60,
    }),
    capabilities,
    parse_error: error::parse_error,
    statuses: error::STATUSES,
    passthrough: "the Backend API under `/api/integrations/backend_api/v1` (e.g. `chats/{chat_id}/users`)",
};

/// What Zipchat can do.
pub fn capabilities() -> Capabilities {
    Capabilities {
        list_conversations: true,
        get_conversation: true,
        list_messages: true,
        list_agents: true,
        assign: true,
        unassign: true,
        send_message: true,
        set_status: Vec::new(),
        idempotent_replies: false,
        native_filters: NativeFilters {
            updated_since: true,
            ..NativeFilters::default()
        },
        paging: PagingStyle::PageNumber,
        max_page_size: client::MAX_PAGE_SIZE,
        max_message_page_size: client::MAX_MESSAGE_PAGE_SIZE,
        sorted_by_activity: true,
    }
}
