//! The store behind everything a gateway must keep beyond one request, or share with the other
//! replicas: quota budgets (GCRA), the vendor's "blocked until", cached upstream pages (with a
//! per-connection generation that writes bump), idempotency claims and records, event logs
//! (the change feed) and leases with fencing tokens (one poller per connection).
//!
//! One trait, three implementations: [`MemoryStore`] (one process, nothing survives it: tests and
//! the demo), [`EmbeddedStore`] (a redb file: the default for one replica; idempotency records
//! and vendor blocks survive a restart and a `kill -9`, quotas are counted in memory) and [`RedisStore`] (several replicas: GCRA,
//! claims and completions are Lua scripts, one round trip each, on Redis's own clock).
//!
//! Every method is fallible: a store that cannot answer gives `store_unavailable` (503, with a
//! `Retry-After` of about a second) quickly, never a panic and never a hang, and the caller fails
//! closed (no vendor call without its quota check, no reply without its idempotency claim).
#![deny(missing_docs)]

pub mod budget;
mod embedded;
mod memory;
mod redis;

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use switchboard_core::{Error, ErrorKind, Result};

pub use budget::{Budget, Gcra, GcraDecision, RateLimit};

pub use embedded::EmbeddedStore;
pub use memory::MemoryStore;
pub use redis::RedisStore;

/// How long a cache generation is kept after its last bump: far longer than any page's TTL, so a
/// generation that expires can only bring back pages that have expired too.
pub const GENERATION_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// How long a lease's fencing counter is kept after the last time anyone held the lease: far
/// longer than any holder can stay silent, so a new holder's token is always above a stale one's.
pub const LEASE_COUNTER_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// A position in an event log: Unix milliseconds and a sequence, shown as `"{ms}-{seq}"`;
/// increasing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogId {
    /// Unix milliseconds (the store's clock) when the entry was appended.
    pub ms: u64,
    /// The entry's sequence among those appended in the same millisecond.
    pub seq: u64,
}

impl LogId {
    /// The id right after `self` in the same millisecond.
    pub fn next(self) -> LogId {
        LogId {
            ms: self.ms,
            seq: self.seq.saturating_add(1),
        }
    }
}

impl std::fmt::Display for LogId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

impl std::str::FromStr for LogId {
    type Err = Error;

    /// `"{ms}-{seq}"` with both parts decimal digits; anything else is 400 `invalid_cursor`.
    fn from_str(s: &str) -> Result<LogId> {
        let invalid = || {
            Error::new(
                ErrorKind::InvalidRequest,
                format!("`{}` is not an event cursor; cursors look like `1767225600000-0` (an event's id)", s.escape_debug()),
            )
            .with_code(switchboard_core::codes::INVALID_CURSOR)
        };
        let digits = |part: &str| {
            (!part.is_empty() && part.len() <= 20 && part.bytes().all(|b| b.is_ascii_digit()))
                .then(|| part.parse::<u64>().ok())
                .flatten()
        };
        let (ms, seq) = s.split_once('-').ok_or_else(invalid)?;
        Ok(LogId {
            ms: digits(ms).ok_or_else(invalid)?,
            seq: digits(seq).ok_or_else(invalid)?,
        })
    }
}

/// One entry of an event log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Its position.
    pub id: LogId,
    /// What was appended.
    pub body: Bytes,
}

/// How much of a quota is left after taking one request from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaLeft {
    /// Requests that may still be sent at once (the rest comes back over time).
    pub remaining: u32,
}

/// A request claiming an idempotency key ([`Store::claim`]).
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    /// What the request asks for: the same key must come with the same request.
    pub fingerprint: &'a str,
    /// What the claimer notes of its attempt (when it began): handed to the next claimer when
    /// this attempt ends without knowing whether the vendor acted.
    pub note: &'a [u8],
    /// How long the claim holds the key unless renewed ([`Store::renew`]): a crashed holder's
    /// claim ends by itself this long after its last renewal.
    pub lease: Duration,
    /// How long a key whose attempt ended unsettled is kept (with its note).
    pub keep: Duration,
}

/// What [`Store::claim`] found under an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The caller holds the key now (for the lease) and must `complete`, `release` or `unsettle`
    /// it. `unsettled` is the note of an earlier attempt with the same fingerprint that ended
    /// without knowing whether the vendor acted (a lost answer, a crash): the caller must find
    /// out before acting again.
    Claimed {
        /// The earliest unsettled attempt's note, if there was one.
        unsettled: Option<Bytes>,
    },
    /// Another request holds the key and has not finished.
    InFlight {
        /// The fingerprint that request was claimed with.
        fingerprint: String,
        /// When its lease ends unless renewed: a retry then finds its outcome or takes over.
        retry_in: Duration,
    },
    /// A request with another fingerprint held the key and ended unsettled.
    Unsettled {
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

impl Claim {
    /// A fresh claim: nobody held the key.
    pub const FRESH: Claim = Claim::Claimed { unsettled: None };
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

    /// Whether other processes read and write this store too (Redis): what one replica keeps
    /// there, every replica finds.
    fn shared(&self) -> bool {
        false
    }

    /// Whether the store answers (for `/readyz`).
    async fn ping(&self) -> Result<()>;

    /// The cached value under `key`, unless missing or expired.
    async fn get(&self, key: &str) -> Result<Option<Bytes>>;
    /// Caches `value` under `key` for `ttl` (a zero `ttl` stores nothing).
    async fn put(&self, key: &str, value: Bytes, ttl: Duration) -> Result<()>;
    /// Removes `key`.
    async fn delete(&self, key: &str) -> Result<()>;
    /// Removes `key` and returns the value it held, unless missing or expired, atomically: of
    /// concurrent takes of one key (from any replica) at most one gets the value (single-use
    /// secrets such as stream tickets).
    async fn take_once(&self, key: &str) -> Result<Option<Bytes>>;
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

    /// Claims idempotency `key` for `attempt`, atomically: of concurrent claims exactly one is
    /// `Claimed`. A key whose holder's lease ended without an answer (a crash) or that was
    /// [`Store::unsettle`]d is claimed again, with the earliest attempt's note.
    async fn claim(&self, key: &str, attempt: &Attempt<'_>) -> Result<Claim>;
    /// Extends a held claim's lease to `lease` from now; `false` when `fingerprint` no longer
    /// holds `key` in flight.
    async fn renew(&self, key: &str, fingerprint: &str, lease: Duration) -> Result<bool>;
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
    /// Ends the lease of a claimed `key` whose request does not know whether the vendor acted:
    /// the key is kept (for the claim's `keep`) with its earliest note, and the next claim of
    /// the same fingerprint gets it at once, to find out before acting.
    async fn unsettle(&self, key: &str, fingerprint: &str) -> Result<()>;

    /// Appends `bodies` to `log` in order, assigning increasing ids (on Redis, `XADD *` in one
    /// script, so ids increase across replicas), and drops the entries older than `retention`.
    /// Returns the ids, in order.
    async fn append_log(
        &self,
        log: &str,
        bodies: Vec<Bytes>,
        retention: Duration,
    ) -> Result<Vec<LogId>>;
    /// Up to `limit` entries strictly after `after` (from the oldest kept when `None`), oldest
    /// first.
    async fn read_log(
        &self,
        log: &str,
        after: Option<LogId>,
        limit: usize,
    ) -> Result<Vec<LogEntry>>;
    /// The newest id in `log`, if any.
    async fn last_log_id(&self, log: &str) -> Result<Option<LogId>>;

    /// Holds lease `key` for `holder` for `ttl`: `Some(fencing token)` when `holder` holds it now
    /// (a new holder gets a greater token than every earlier holder; renewing keeps the token, as
    /// does taking an expired lease back when nobody held it since), `None` while another
    /// holder's lease is live. Atomic across replicas.
    async fn lease(&self, key: &str, holder: &str, ttl: Duration) -> Result<Option<u64>>;
    /// Gives the lease up if `holder` holds it (its token stays counted).
    async fn release_lease(&self, key: &str, holder: &str) -> Result<()>;
}

/// Blobs `put` with at least this TTL are meant to last (poller snapshots, webhook state): the
/// embedded store writes them to its file, and no store evicts them for space before they expire.
/// Shorter ones (cached pages) may stay in memory and be evicted.
pub const LASTING_TTL: Duration = Duration::from_secs(60);

/// How long a caller should wait before retrying after the store failed.
pub const STORE_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The error of a store that did not answer: 503 `store_unavailable`, retry in about a second.
pub fn unavailable(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::StoreUnavailable, message).with_retry_after(STORE_RETRY_AFTER)
}

/// Milliseconds since the Unix epoch on this machine's clock.
pub(crate) fn unix_millis() -> u64 {
    unix_micros() / 1000
}

/// The id after `last` for an entry appended at `now_ms`: increasing even if the clock steps back.
pub(crate) fn next_log_id(last: Option<LogId>, now_ms: u64) -> LogId {
    match last {
        Some(last) if last.ms >= now_ms => last.next(),
        _ => LogId { ms: now_ms, seq: 0 },
    }
}

/// The oldest millisecond kept under `retention` at `now_ms`.
pub(crate) fn retention_floor(now_ms: u64, retention: Duration) -> u64 {
    now_ms.saturating_sub(u64::try_from(retention.as_millis()).unwrap_or(u64::MAX))
}

/// Microseconds since the Unix epoch on this machine's clock.
fn unix_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

/// A lease as memory and the embedded file keep it: who holds it until when, and the last token
/// handed out (kept after the lease ends, so the next holder's token is greater).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LeaseState {
    holder: String,
    token: u64,
    expires_us: u64,
}

impl LeaseState {
    /// `holder` asks for the lease at `now_us` for `ttl`: the token it holds now (and the state
    /// to keep), or `None` while another holder's lease is live.
    pub(crate) fn grant(
        current: Option<&LeaseState>,
        holder: &str,
        now_us: u64,
        ttl: Duration,
    ) -> Option<LeaseState> {
        let expires_us = now_us.saturating_add(u64::try_from(ttl.as_micros()).unwrap_or(u64::MAX));
        match current {
            // The same holder again, live or not: nobody held it in between, so the token stays.
            Some(c) if c.holder == holder => Some(LeaseState {
                expires_us,
                ..c.clone()
            }),
            Some(c) if c.expires_us > now_us => None,
            _ => Some(LeaseState {
                holder: holder.to_owned(),
                token: current.map_or(0, |c| c.token).saturating_add(1),
                expires_us,
            }),
        }
    }

    /// The state after `holder` gives the lease up (unchanged if it does not hold it).
    pub(crate) fn released(&self, holder: &str) -> LeaseState {
        let mut state = self.clone();
        if state.holder == holder {
            state.expires_us = 0;
        }
        state
    }

    /// The token.
    pub(crate) fn token(&self) -> u64 {
        self.token
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.holder.len());
        out.extend_from_slice(&self.token.to_le_bytes());
        out.extend_from_slice(&self.expires_us.to_le_bytes());
        out.extend_from_slice(self.holder.as_bytes());
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Option<LeaseState> {
        Some(LeaseState {
            token: u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?),
            expires_us: u64::from_le_bytes(bytes.get(8..16)?.try_into().ok()?),
            holder: String::from_utf8(bytes.get(16..)?.to_vec()).ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ids_print_and_parse() {
        let id = LogId {
            ms: 1767225600000,
            seq: 3,
        };
        assert_eq!(id.to_string(), "1767225600000-3");
        assert_eq!("1767225600000-3".parse::<LogId>().ok(), Some(id));
        for bad in [
            "",
            "1",
            "1-",
            "-1",
            "1-2-3",
            "a-1",
            "1-b",
            "+1-2",
            "1 -2",
            "99999999999999999999999-0",
        ] {
            let err = bad.parse::<LogId>().expect_err(bad);
            assert_eq!(err.code(), "invalid_cursor", "{bad}");
        }
        assert!(LogId { ms: 1, seq: 9 } < LogId { ms: 2, seq: 0 });
    }

    #[test]
    fn ids_increase_even_when_the_clock_steps_back() {
        let last = LogId { ms: 100, seq: 4 };
        assert_eq!(next_log_id(Some(last), 90), LogId { ms: 100, seq: 5 });
        assert_eq!(next_log_id(Some(last), 100), LogId { ms: 100, seq: 5 });
        assert_eq!(next_log_id(Some(last), 101), LogId { ms: 101, seq: 0 });
        assert_eq!(next_log_id(None, 7), LogId { ms: 7, seq: 0 });
    }

    #[test]
    fn a_lease_renews_for_its_holder_and_passes_on_with_a_greater_token() {
        let ttl = Duration::from_micros(100);
        let a = LeaseState::grant(None, "a", 0, ttl).expect("free");
        assert_eq!(a.token(), 1);
        assert_eq!(LeaseState::grant(Some(&a), "b", 50, ttl), None);
        let renewed = LeaseState::grant(Some(&a), "a", 50, ttl).expect("renews");
        assert_eq!(renewed.token(), 1);
        let late = LeaseState::grant(Some(&renewed), "a", 500, ttl).expect("taken back");
        assert_eq!(late.token(), 1, "nobody held it in between");
        let b = LeaseState::grant(Some(&renewed), "b", 150, ttl).expect("expired");
        assert_eq!(b.token(), 2);
        let released = b.released("b");
        assert_eq!(
            LeaseState::grant(Some(&released), "a", 151, ttl).map(|s| s.token()),
            Some(3)
        );
        assert_eq!(LeaseState::decode(&b.encode()), Some(b));
    }
}
