//! What every Switchboard adapter shares to talk to its vendor: one HTTP client per connection,
//! a quota budget, deadlines, retries of reads with backoff, and the mapping of transport failures
//! and unreadable bodies to the gateway's errors. Vendor-specific error bodies are parsed by each
//! adapter's own `error.rs` and handed in as an [`ErrorParser`].
#![deny(missing_docs)]

mod breaker;
mod budget;
mod client;
pub mod deadline;
mod endpoint;
mod native;
mod secret;
mod store;

pub use breaker::{Admission, Breaker, BreakerSettings};
pub use budget::{Budget, Gcra, GcraDecision, RateLimit};
pub use client::{
    Call, DEFAULT_MAX_BODY_BYTES, ErrorParser, Response, Shared, Upstream, UpstreamOptions,
    retry_after_from_headers,
};
pub use endpoint::{Timeouts, options};
pub use native::{MAX_NATIVE_ID_BYTES, native_id};
pub use reqwest::{Method, StatusCode, header};
pub use secret::Secret;
pub use store::{
    Claim, EmbeddedStore, GENERATION_TTL, LASTING_TTL, LEASE_COUNTER_TTL, LogEntry, LogId,
    MemoryStore, NotYet, QuotaLeft, RedisStore, STORE_RETRY_AFTER, Store, unavailable,
};
pub use url::Url;
