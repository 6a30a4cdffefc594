//! The vendor edge every Switchboard adapter shares: the HTTP clients its connections share and
//! the etiquette around each call, in named pieces composed by [`Upstream`] (cache and coalescing,
//! deadline and retry, breaker, vendor window, quota, body cap, metrics), and the mapping of
//! transport failures and unreadable bodies to the gateway's errors; the settings every connection has, who a vendor
//! is ([`Vendor`], [`Adapter`]), the one constructor of a connection's client and identity
//! ([`Edge`]), and the status skeleton of vendor errors ([`Vendor::classify`]). Vendor-specific
//! error bodies are read by each adapter's own `error.rs`.
#![deny(missing_docs)]

mod body;
mod breaker;
mod cache;
mod call;
mod client;
mod edge;
mod http;
mod meters;
mod native;
mod options;
mod quota;
mod retry;
mod secret;
mod window;

/// The store crate, under the paths this crate's modules use.
use switchboard_store as store;
use switchboard_store::budget;

pub use breaker::{Admission, Breaker, BreakerSettings};
pub use cache::RecentPages;
pub use call::{Call, ErrorParser, Response};
pub use client::{
    PASSTHROUGH_ANSWER_HEADERS, PASSTHROUGH_REQUEST_HEADERS, Upstream, passthrough_url,
};
pub use edge::{
    Adapter, ConnectionSettings, Edge, StatusMessages, Vendor, invalid_assignee, invalid_cursor,
    invalid_sender, next_page_number, page_number,
};
pub use http::HttpClients;
pub use native::{MAX_NATIVE_ID_BYTES, native_id};
pub use options::{DEFAULT_MAX_BODY_BYTES, Shared, UpstreamOptions};
pub use reqwest::{Method, StatusCode, header};
pub use secret::Secret;
pub use switchboard_core::deadline;
pub use switchboard_store::budget::{Budget, Gcra, GcraDecision, RateLimit};
pub use switchboard_store::{
    Attempt, Claim, EmbeddedStore, GENERATION_TTL, LASTING_TTL, LEASE_COUNTER_TTL, LogEntry, LogId,
    MemoryStore, NotYet, QuotaLeft, RedisStore, STORE_RETRY_AFTER, Store, unavailable,
};
pub use url::Url;
pub use window::retry_after_from_headers;

/// Locks `m`, even when a panic poisoned it: every state kept behind these locks stays whole.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
