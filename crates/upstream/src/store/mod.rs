//! The store behind everything a gateway must keep beyond one request, or share with the other
//! replicas: quota budgets (GCRA), the vendor's "blocked until", cached upstream pages (with a
//! per-connection generation that writes bump) and idempotency claims and records.
//!
//! One trait, three implementations: [`MemoryStore`] (one process, nothing survives it: tests and
//! the demo), [`EmbeddedStore`] (a redb file: the default for one replica; idempotency records
//! and quotas survive a restart and a `kill -9`) and [`RedisStore`] (several replicas: GCRA,
//! claims and completions are Lua scripts, one round trip each, on Redis's own clock).
//!
//! Every method is fallible: a store that cannot answer gives `store_unavailable` (503, with a
//! `Retry-After` of about a second) quickly, never a panic and never a hang, and the caller fails
//! closed (no vendor call without its quota check, no reply without its idempotency claim).

mod embedded;
mod memory;
mod redis;

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use switchboard_core::{Error, ErrorKind, Result};

use crate::budget::RateLimit;

pub use embedded::EmbeddedStore;
pub use memory::MemoryStore;
pub use redis::RedisStore;

/// How long a cache generation is kept after its last bump: far longer than any page's TTL, so a
/// generation that expires can only bring back pages that have expired too.
pub const GENERATION_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// How much of a quota is left after taking one request from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaLeft {
    /// Requests that may still be sent at once (the rest comes back over time).
    pub remaining: u32,
}

/// What [`Store::claim`] found under an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Nobody held the key: the caller holds it now (for the lease) and must `complete` or
    /// `release` it.
    Claimed,
    /// Another request holds the key and has not finished.
    InFlight {
        /// The fingerprint that request was claimed with.
        fingerprint: String,
    },
    /// A request with this key finished; its record is kept.
    Done {
        /// The fingerprint that request was claimed with.
        fingerprint: String,
        /// What it stored with `complete`.
        record: Bytes,
    },
}

/// Why a quota gave nothing now, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotYet {
    /// How long until a request may go.
    pub wait: Duration,
    /// The vendor said its window is closed ([`Store::block`]), as opposed to the budget's own
    /// spacing: a caller fails at once rather than wait for it.
    pub blocked: bool,
}

impl NotYet {
    /// The budget's own spacing: the next request may go after `wait`.
    pub fn spacing(wait: Duration) -> NotYet {
        NotYet {
            wait,
            blocked: false,
        }
    }

    /// The vendor's window is closed for `wait`.
    pub fn blocked(wait: Duration) -> NotYet {
        NotYet {
            wait,
            blocked: true,
        }
    }
}

/// Shared state. Keys are plain strings chosen by the callers; each implementation namespaces
/// them per kind of state (and, on Redis, under the configured prefix).
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// `memory`, `embedded` or `redis` (for `/readyz` and logs).
    fn kind(&self) -> &'static str;

    /// Whether the store answers (for `/readyz`).
    async fn ping(&self) -> Result<()>;

    /// The cached value under `key`, unless missing or expired.
    async fn get(&self, key: &str) -> Result<Option<Bytes>>;
    /// Caches `value` under `key` for `ttl` (a zero `ttl` stores nothing).
    async fn put(&self, key: &str, value: Bytes, ttl: Duration) -> Result<()>;
    /// Removes `key`.
    async fn delete(&self, key: &str) -> Result<()>;
    /// The current cache generation of `scope` (0 when never bumped); callers fold it into
    /// their cache keys.
    async fn generation(&self, scope: &str) -> Result<u64>;
    /// Moves `scope` to a new generation, so every replica stops finding the pages cached under
    /// the old one; returns the new generation.
    async fn bump_generation(&self, scope: &str) -> Result<u64>;

    /// Takes one request from the quota `bucket` (a GCRA for `limit`: a quarter of the quota as
    /// burst, the rest spread evenly, so no window of `per_seconds` sees more than `requests`),
    /// or says how long until one is available. While the bucket is blocked (see
    /// [`Store::block`]) nothing is taken and the answer is the time left.
    async fn take(
        &self,
        bucket: &str,
        limit: RateLimit,
    ) -> Result<std::result::Result<QuotaLeft, NotYet>>;
    /// Blocks `bucket` for `duration` (the vendor said its quota is spent); a longer block in
    /// place is kept.
    async fn block(&self, bucket: &str, duration: Duration) -> Result<()>;
    /// How long `bucket` stays blocked, if it is.
    async fn blocked_for(&self, bucket: &str) -> Result<Option<Duration>>;

    /// Claims idempotency `key` for a request with `fingerprint` for at most `lease` (longer
    /// than any request may take), atomically: of concurrent claims exactly one is `Claimed`.
    async fn claim(&self, key: &str, fingerprint: &str, lease: Duration) -> Result<Claim>;
    /// Stores the finished request's `record` under `key` for `ttl` (a finished record of
    /// another fingerprint is never overwritten). Durable once it returns.
    async fn complete(
        &self,
        key: &str,
        fingerprint: &str,
        record: Bytes,
        ttl: Duration,
    ) -> Result<()>;
    /// Frees a claimed `key` whose request is known not to have acted (a finished record stays).
    async fn release(&self, key: &str) -> Result<()>;
}

/// How long a caller should wait before retrying after the store failed.
pub const STORE_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The error of a store that did not answer: 503 `store_unavailable`, retry in about a second.
pub fn unavailable(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::StoreUnavailable, message).with_retry_after(STORE_RETRY_AFTER)
}

/// Microseconds since the Unix epoch on this machine's clock.
fn unix_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}
