//! Switchboard adapter for the PingBack helpdesk API (https://docs.pingback.live/api-reference).
//!
//! PingBack is a team inbox without a bot API: people answer every conversation, so `mode` is
//! always null and there is no hand-back. It has no API key: the adapter logs in with the
//! connection's e-mail and password (`POST /api/v1/auth/login`) for a JWT, caches it, and logs in
//! again once when PingBack answers 401. Conversations are resolved or closed, never reopened
//! through the API, and assigned to a team member (`user_id`), never unassigned.
#![deny(missing_docs)]

mod client;
pub mod config;
pub mod error;
pub mod mapping;
pub mod wire;

pub use client::Pingback;
pub use config::Config;

use switchboard_core::{Capabilities, NativeFilters, PagingStyle, ProviderKind, Status};
use switchboard_upstream::Vendor;

/// PingBack, as the gateway knows it. It documents no request quota.
pub static VENDOR: Vendor = Vendor {
    kind: ProviderKind::new("pingback"),
    name: "PingBack",
    // Paths `/api/v1/...` follow it.
    base_url: "https://api.pingback.live",
    rate_limit: None,
    capabilities,
    parse_error: error::parse_error,
    statuses: error::STATUSES,
    passthrough: "the API from its root, logged in (e.g. `POST api/v1/conversations/` to create one)",
};

/// What PingBack can do.
pub fn capabilities() -> Capabilities {
    Capabilities {
        list_conversations: true,
        get_conversation: true,
        list_messages: true,
        list_agents: true,
        assign: true,
        unassign: false,
        send_message: true,
        set_status: vec![Status::Resolved, Status::Closed],
        idempotent_replies: false,
        native_filters: NativeFilters {
            status: true,
            assignee: true,
            ..NativeFilters::default()
        },
        paging: PagingStyle::PageNumber,
        max_page_size: client::MAX_PAGE_SIZE,
        max_message_page_size: client::MAX_MESSAGE_PAGE_SIZE,
        sorted_by_activity: true,
    }
}
