//! What every Switchboard adapter shares to talk to its vendor: one HTTP client per connection,
//! a quota budget, deadlines, retries of reads with backoff, and the mapping of transport failures
//! and unreadable bodies to the gateway's errors; the settings every connection has, who a vendor
//! is ([`Vendor`], [`Adapter`]), the one constructor of a connection's client and identity
//! ([`Edge`]), and the status skeleton of vendor errors ([`Vendor::classify`]). Vendor-specific
//! error bodies are read by each adapter's own `error.rs`.
#![deny(missing_docs)]

mod breaker;
mod client;
mod edge;
mod native;
mod secret;

/// The store crate, under the paths this crate's modules use.
use switchboard_store as store;
use switchboard_store::budget;

pub use breaker::{Admission, Breaker, BreakerSettings};
pub use client::{
    Call, DEFAULT_MAX_BODY_BYTES, ErrorParser, Response, Shared, Upstream, UpstreamOptions,
    retry_after_from_headers,
};
pub use edge::{
    Adapter, ConnectionSettings, Edge, StatusMessages, Vendor, invalid_assignee, invalid_cursor,
    invalid_sender, next_page_number, page_number,
};
pub use native::{MAX_NATIVE_ID_BYTES, native_id};
pub use reqwest::{Method, StatusCode, header};
pub use secret::Secret;
pub use switchboard_core::deadline;
pub use switchboard_store::budget::{Budget, Gcra, GcraDecision, RateLimit};
pub use switchboard_store::{
    Attempt, Claim, EmbeddedStore, GENERATION_TTL, LASTING_TTL, LEASE_COUNTER_TTL, LogEntry, LogId,
    MemoryStore, NotYet, QuotaLeft, RedisStore, STORE_RETRY_AFTER, Store, unavailable,
};
pub use url::Url;
