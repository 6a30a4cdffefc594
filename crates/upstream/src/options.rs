//! What a connection is configured with: the settings every connection of one gateway shares
//! ([`Shared`]) and its own ([`UpstreamOptions`]).

use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::breaker::BreakerSettings;
use crate::budget::RateLimit;
use crate::cache::RecentPages;
use crate::http::HttpClients;
use crate::store::{MemoryStore, Store};

/// What every connection of one gateway shares: the store behind quotas and the page cache,
/// the cache's time to live, the circuit breakers' settings and the HTTP clients.
#[derive(Debug, Clone)]
pub struct Shared {
    /// Quotas, cached pages (and, in the server, idempotency records).
    pub store: Arc<dyn Store>,
    /// How long an upstream page stays cached; zero disables the cache and the coalescing of
    /// identical reads.
    pub cache_ttl: Duration,
    /// When a connection's breaker opens.
    pub breaker: BreakerSettings,
    /// The largest vendor answer read; a larger one is `upstream_response_too_large`.
    pub max_body_bytes: usize,
    /// The HTTP clients the connections send through.
    pub http: HttpClients,
    /// The cached pages served last, with what was read from them.
    pub recent: RecentPages,
}

/// The default cap on a vendor's answer: 8 MiB (a ChatbotX page of 100 conversations with their
/// messages is about 0.5 MB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

impl Default for Shared {
    /// An in-memory store, pages cached for 2 s, breakers at their defaults, answers capped at
    /// [`DEFAULT_MAX_BODY_BYTES`].
    fn default() -> Shared {
        Shared {
            store: Arc::new(MemoryStore::default()),
            cache_ttl: Duration::from_secs(2),
            breaker: BreakerSettings::default(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            http: HttpClients::default(),
            recent: RecentPages::default(),
        }
    }
}

/// How a connection talks to its vendor.
#[derive(Debug, Clone)]
pub struct UpstreamOptions {
    /// The vendor API's base URL; request paths are appended to it.
    pub base_url: Url,
    /// Time to establish a TCP/TLS connection.
    pub connect_timeout: Duration,
    /// Time for one request, retries included.
    pub deadline: Duration,
    /// How many times a failed read is retried.
    pub max_retries: usize,
    /// The vendor's quota; `None` for no budget.
    pub rate_limit: Option<RateLimit>,
    /// What the gateway's connections share.
    pub shared: Shared,
}

impl UpstreamOptions {
    /// Defaults for `base_url`: 5 s connect, 15 s deadline, 2 retries, no quota.
    pub fn new(base_url: Url, shared: Shared) -> UpstreamOptions {
        UpstreamOptions {
            base_url,
            connect_timeout: Duration::from_secs(5),
            deadline: Duration::from_secs(15),
            max_retries: 2,
            rate_limit: None,
            shared,
        }
    }
}
