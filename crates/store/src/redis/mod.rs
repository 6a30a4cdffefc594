//! The store shared by several replicas, in Redis.
//!
//! A quota check, a claim and a completion are each one Lua script (one round trip, atomic);
//! GCRA reads Redis's own clock (`TIME`), so replicas' clocks never matter. Every key lives under
//! the configured prefix and has a TTL. Every call gives up after [`CALL_TIMEOUT`] with
//! `store_unavailable`; the connection manager reconnects by itself when Redis comes back.
//!
//! An event log is a stream: appends are `XADD *` in one script (ids from Redis's clock, so they
//! increase across replicas) that trims entries past the retention (`MINID`, exact, so no read
//! ever returns one) and keeps the key for the retention; reads are `XRANGE` with an exclusive
//! start. A lease is one script over a hash (holder, token, expiry on Redis's clock); the hash
//! outlives the lease ([`LEASE_COUNTER_TTL`]), so the next holder's token is greater.

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, RedisResult, Script};
use switchboard_core::{Error, ErrorKind, Result};

use crate::budget::{Gcra, RateLimit};
use crate::memory::lock;

mod scripts;

use crate::{
    Attempt, Claim, GENERATION_TTL, LEASE_COUNTER_TTL, LogEntry, LogId, NotYet, QuotaLeft, Store,
    unavailable,
};
use scripts::{APPEND, BLOCK, CLAIM, COMPLETE, LEASE, RELEASE, RELEASE_LEASE, SET_LEASE, TAKE};

/// The longest any one Redis call may take before the request fails with `store_unavailable`.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(1000);

/// How long after a failed Redis call every call fails at once, so a request that needs several
/// store calls answers `store_unavailable` after one call's timeout, not one per call: with
/// Redis paused or gone, every request that needs it answers 503 within 1.5 s.
pub const FAIL_FAST_FOR: Duration = Duration::from_millis(1000);

/// Whether Redis failed moments ago.
#[derive(Debug, Default)]
struct FailFast {
    failed_at: std::sync::Mutex<Option<tokio::time::Instant>>,
}

impl FailFast {
    fn failed_recently(&self) -> bool {
        lock(&self.failed_at).is_some_and(|at| at.elapsed() < FAIL_FAST_FOR)
    }

    /// Runs one Redis call within [`CALL_TIMEOUT`], or fails at once while Redis failed
    /// recently; any failure is `store_unavailable`.
    async fn call<T>(&self, what: &str, call: impl Future<Output = RedisResult<T>>) -> Result<T> {
        if self.failed_recently() {
            return Err(unavailable(format!(
                "the Redis store failed moments ago; not trying to {what} again yet"
            )));
        }
        let outcome = match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                Err(unavailable(format!("the Redis store failed to {what}")).with_source(e))
            }
            Err(_) => Err(unavailable(format!(
                "the Redis store did not answer in time to {what}"
            ))),
        };
        *lock(&self.failed_at) = outcome.is_err().then(tokio::time::Instant::now);
        outcome
    }
}

struct Scripts {
    take: Script,
    block: Script,
    claim: Script,
    set_lease: Script,
    complete: Script,
    release: Script,
    append: Script,
    lease: Script,
    release_lease: Script,
}

/// Stream entries as XRANGE answers them: id, then field/value pairs.
type StreamEntries = Vec<(String, Vec<Vec<u8>>)>;

fn log_entries(entries: StreamEntries) -> Result<Vec<LogEntry>> {
    entries
        .into_iter()
        .map(|(id, fields)| {
            let id: LogId = id.parse().map_err(|_| {
                unavailable("the Redis store holds an event log entry with a malformed id")
            })?;
            let body = fields
                .chunks(2)
                .find(|pair| pair.first().is_some_and(|f| f == b"b"))
                .and_then(|pair| pair.get(1))
                .cloned()
                .unwrap_or_default();
            Ok(LogEntry {
                id,
                body: Bytes::from(body),
            })
        })
        .collect()
}

/// The Redis store: one multiplexed connection that reconnects by itself.
pub struct RedisStore {
    manager: ConnectionManager,
    prefix: String,
    scripts: Scripts,
    fail_fast: FailFast,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: it is never printed.
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish()
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl RedisStore {
    /// A store on the Redis at `url` with every key under `prefix`. Connects lazily, so a gateway
    /// starts while Redis is down (and is not ready until it answers); only a malformed URL is an
    /// error here. Must be called inside a Tokio runtime.
    pub fn connect(url: &str, prefix: &str) -> Result<RedisStore> {
        let client = redis::Client::open(url).map_err(|e| {
            // The error may quote the URL, and the URL may hold a password: say only what kind.
            Error::new(
                ErrorKind::Config,
                format!(
                    "[store] redis_url is not a valid Redis URL ({:?}); write it like redis://[:password@]host:6379[/db]",
                    e.kind()
                ),
            )
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let manager = ConnectionManager::new_lazy_with_config(client, config).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("cannot set up the Redis connection ({:?})", e.kind()),
            )
        })?;
        Ok(RedisStore {
            manager,
            fail_fast: FailFast::default(),
            prefix: prefix.to_owned(),
            scripts: Scripts {
                take: Script::new(TAKE),
                block: Script::new(BLOCK),
                claim: Script::new(CLAIM),
                set_lease: Script::new(SET_LEASE),
                complete: Script::new(COMPLETE),
                release: Script::new(RELEASE),
                append: Script::new(APPEND),
                lease: Script::new(LEASE),
                release_lease: Script::new(RELEASE_LEASE),
            },
        })
    }

    fn key(&self, kind: &str, key: &str) -> String {
        format!("{}{kind}:{key}", self.prefix)
    }

    /// Runs one Redis call (see [`FailFast::call`]).
    async fn call<T>(&self, what: &str, call: impl Future<Output = RedisResult<T>>) -> Result<T> {
        self.fail_fast.call(what, call).await
    }

    async fn set_lease(
        &self,
        key: &str,
        fingerprint: &str,
        lease: Duration,
        only_live: bool,
    ) -> Result<bool> {
        let mut con = self.manager.clone();
        let mut invocation = self.scripts.set_lease.prepare_invoke();
        invocation
            .key(self.key("idem", key))
            .arg(fingerprint)
            .arg(if lease.is_zero() { 0 } else { millis(lease) })
            .arg(if only_live { "1" } else { "0" });
        let moved: i64 = self
            .call(
                "move an idempotency claim's lease",
                invocation.invoke_async(&mut con),
            )
            .await?;
        Ok(moved == 1)
    }

    async fn gcra(
        &self,
        bucket: &str,
        limit: RateLimit,
        now_us: Option<u64>,
    ) -> Result<std::result::Result<QuotaLeft, NotYet>> {
        let Some(gcra) = Gcra::new(limit) else {
            return Ok(match self.blocked_for(bucket).await? {
                Some(left) => Err(NotYet::blocked(left)),
                None => Ok(QuotaLeft {
                    remaining: u32::MAX,
                }),
            });
        };
        let mut invocation = self.scripts.take.prepare_invoke();
        invocation
            .key(self.key("gcra", bucket))
            .key(self.key("blocked", bucket))
            .arg(gcra.period_us)
            .arg(gcra.tolerance_us);
        if let Some(now) = now_us {
            invocation.arg(now);
        }
        let mut con = self.manager.clone();
        let (allowed, value): (u8, u64) = self
            .call(
                "check a quota",
                invocation.invoke_async::<(u8, u64)>(&mut con),
            )
            .await?;
        Ok(match allowed {
            1 => Ok(QuotaLeft {
                remaining: u32::try_from(value).unwrap_or(u32::MAX),
            }),
            2 => Err(NotYet::blocked(Duration::from_micros(value))),
            _ => Err(NotYet::spacing(Duration::from_micros(value))),
        })
    }

    /// [`Store::take`] with the clock injected (`now_us`, microseconds from any fixed epoch the
    /// caller keeps using for this bucket) instead of Redis's `TIME`: the same script, so tests
    /// can compare it with the pure GCRA.
    pub async fn take_at(
        &self,
        bucket: &str,
        limit: RateLimit,
        now_us: u64,
    ) -> Result<std::result::Result<QuotaLeft, NotYet>> {
        self.gcra(bucket, limit, Some(now_us)).await
    }
}

#[async_trait]
impl Store for RedisStore {
    fn kind(&self) -> &'static str {
        "redis"
    }

    fn shared(&self) -> bool {
        true
    }

    async fn ping(&self) -> Result<()> {
        let mut con = self.manager.clone();
        let _: String = self
            .call("answer PING", redis::cmd("PING").query_async(&mut con))
            .await?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let mut con = self.manager.clone();
        let value: Option<Vec<u8>> = self
            .call("read a cached page", con.get(self.key("kv", key)))
            .await?;
        Ok(value.map(Bytes::from))
    }

    async fn put(&self, key: &str, value: Bytes, ttl: Duration) -> Result<()> {
        if ttl.is_zero() {
            return Ok(());
        }
        let mut con = self.manager.clone();
        self.call(
            "cache a page",
            con.pset_ex::<_, _, ()>(self.key("kv", key), value.as_ref(), millis(ttl)),
        )
        .await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let mut con = self.manager.clone();
        self.call("delete a key", con.del::<_, ()>(self.key("kv", key)))
            .await
    }

    async fn take_once(&self, key: &str) -> Result<Option<Bytes>> {
        let mut con = self.manager.clone();
        // GETDEL (Redis 6.2+): one command, so two replicas never both get the value.
        let value: Option<Vec<u8>> = self
            .call("take a key", con.get_del(self.key("kv", key)))
            .await?;
        Ok(value.map(Bytes::from))
    }

    async fn generation(&self, scope: &str) -> Result<u64> {
        let mut con = self.manager.clone();
        let value: Option<u64> = self
            .call("read a cache generation", con.get(self.key("gen", scope)))
            .await?;
        Ok(value.unwrap_or(0))
    }

    async fn bump_generation(&self, scope: &str) -> Result<u64> {
        let key = self.key("gen", scope);
        let mut con = self.manager.clone();
        let (generation, _): (u64, i64) = self
            .call(
                "bump a cache generation",
                redis::pipe()
                    .atomic()
                    .incr(&key, 1)
                    .pexpire(
                        &key,
                        i64::try_from(millis(GENERATION_TTL)).unwrap_or(i64::MAX),
                    )
                    .query_async(&mut con),
            )
            .await?;
        Ok(generation)
    }

    async fn take(
        &self,
        bucket: &str,
        limit: RateLimit,
    ) -> Result<std::result::Result<QuotaLeft, NotYet>> {
        self.gcra(bucket, limit, None).await
    }

    async fn block(&self, bucket: &str, duration: Duration) -> Result<()> {
        let mut con = self.manager.clone();
        let mut invocation = self.scripts.block.prepare_invoke();
        invocation
            .key(self.key("blocked", bucket))
            .arg(millis(duration));
        self.call(
            "block a connection",
            invocation.invoke_async::<()>(&mut con),
        )
        .await
    }

    async fn blocked_for(&self, bucket: &str) -> Result<Option<Duration>> {
        let mut con = self.manager.clone();
        let ttl: i64 = self
            .call(
                "read a connection's block",
                con.pttl(self.key("blocked", bucket)),
            )
            .await?;
        Ok(u64::try_from(ttl)
            .ok()
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis))
    }

    async fn claim(&self, key: &str, attempt: &Attempt<'_>) -> Result<Claim> {
        let mut con = self.manager.clone();
        let mut invocation = self.scripts.claim.prepare_invoke();
        invocation
            .key(self.key("idem", key))
            .arg(attempt.fingerprint)
            .arg(attempt.note)
            .arg(millis(attempt.lease))
            .arg(millis(attempt.keep));
        let reply: Vec<Vec<u8>> = self
            .call(
                "claim an idempotency key",
                invocation.invoke_async(&mut con),
            )
            .await?;
        let field = |i: usize| reply.get(i).map_or(&[][..], Vec::as_slice);
        let text = |i: usize| String::from_utf8_lossy(field(i)).into_owned();
        match field(0) {
            b"claimed" => Ok(Claim::FRESH),
            b"reclaimed" => Ok(Claim::Claimed {
                unsettled: Some(Bytes::copy_from_slice(field(1))),
            }),
            b"flight" => Ok(Claim::InFlight {
                fingerprint: text(1),
                retry_in: Duration::from_millis(text(2).parse().unwrap_or(0)),
            }),
            b"unsettled" => Ok(Claim::Unsettled {
                fingerprint: text(1),
            }),
            b"done" => Ok(Claim::Done {
                fingerprint: text(1),
                record: Bytes::copy_from_slice(field(2)),
            }),
            _ => Err(unavailable(
                "the Redis store answered a claim with something unexpected",
            )),
        }
    }

    async fn renew(&self, key: &str, fingerprint: &str, lease: Duration) -> Result<bool> {
        self.set_lease(key, fingerprint, lease, true).await
    }

    async fn unsettle(&self, key: &str, fingerprint: &str) -> Result<()> {
        self.set_lease(key, fingerprint, Duration::ZERO, false)
            .await
            .map(|_| ())
    }

    async fn complete(
        &self,
        key: &str,
        fingerprint: &str,
        record: Bytes,
        ttl: Duration,
    ) -> Result<()> {
        let mut con = self.manager.clone();
        let mut invocation = self.scripts.complete.prepare_invoke();
        invocation
            .key(self.key("idem", key))
            .arg(fingerprint)
            .arg(record.as_ref())
            .arg(millis(ttl));
        self.call(
            "store an idempotency record",
            invocation.invoke_async::<()>(&mut con),
        )
        .await
    }

    async fn release(&self, key: &str) -> Result<()> {
        let mut con = self.manager.clone();
        let mut invocation = self.scripts.release.prepare_invoke();
        invocation.key(self.key("idem", key));
        self.call(
            "release an idempotency key",
            invocation.invoke_async::<()>(&mut con),
        )
        .await
    }

    async fn append_log(
        &self,
        log: &str,
        bodies: Vec<Bytes>,
        retention: Duration,
    ) -> Result<Vec<LogId>> {
        if bodies.is_empty() {
            return Ok(Vec::new());
        }
        let mut con = self.manager.clone();
        let mut invocation = self.scripts.append.prepare_invoke();
        invocation.key(self.key("log", log)).arg(millis(retention));
        for body in &bodies {
            invocation.arg(body.as_ref());
        }
        let ids: Vec<String> = self
            .call("append to an event log", invocation.invoke_async(&mut con))
            .await?;
        ids.iter()
            .map(|id| {
                id.parse().map_err(|_| {
                    unavailable("the Redis store answered an append with a malformed id")
                })
            })
            .collect()
    }

    async fn read_log(
        &self,
        log: &str,
        after: Option<LogId>,
        limit: usize,
    ) -> Result<Vec<LogEntry>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let start = after.map_or_else(|| "-".to_owned(), |id| format!("({id}"));
        let mut con = self.manager.clone();
        let entries: StreamEntries = self
            .call(
                "read an event log",
                redis::cmd("XRANGE")
                    .arg(self.key("log", log))
                    .arg(start)
                    .arg("+")
                    .arg("COUNT")
                    .arg(limit)
                    .query_async(&mut con),
            )
            .await?;
        log_entries(entries)
    }

    async fn last_log_id(&self, log: &str) -> Result<Option<LogId>> {
        let mut con = self.manager.clone();
        let entries: StreamEntries = self
            .call(
                "read an event log's end",
                redis::cmd("XREVRANGE")
                    .arg(self.key("log", log))
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(1)
                    .query_async(&mut con),
            )
            .await?;
        Ok(log_entries(entries)?.pop().map(|e| e.id))
    }

    async fn lease(&self, key: &str, holder: &str, ttl: Duration) -> Result<Option<u64>> {
        let mut con = self.manager.clone();
        let mut invocation = self.scripts.lease.prepare_invoke();
        invocation
            .key(self.key("lease", key))
            .arg(holder)
            .arg(millis(ttl))
            .arg(millis(LEASE_COUNTER_TTL.max(ttl)));
        let token: i64 = self
            .call("hold a lease", invocation.invoke_async(&mut con))
            .await?;
        Ok(u64::try_from(token).ok())
    }

    async fn release_lease(&self, key: &str, holder: &str) -> Result<()> {
        let mut con = self.manager.clone();
        let mut invocation = self.scripts.release_lease.prepare_invoke();
        invocation.key(self.key("lease", key)).arg(holder);
        self.call("release a lease", invocation.invoke_async::<()>(&mut con))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With Redis silent, the first call waits its timeout and the calls after it fail at once,
    /// until the window ends and Redis is tried again; a success closes the window.
    #[tokio::test(start_paused = true)]
    async fn after_a_failed_call_the_next_ones_fail_at_once() {
        let guard = FailFast::default();
        let silent = || std::future::pending::<RedisResult<()>>();
        let started = tokio::time::Instant::now();
        let first = guard.call("read", silent()).await.expect_err("times out");
        assert_eq!(first.code(), "store_unavailable");
        assert_eq!(started.elapsed(), CALL_TIMEOUT);
        for _ in 0..5 {
            guard
                .call("read", silent())
                .await
                .expect_err("fails at once");
        }
        assert_eq!(started.elapsed(), CALL_TIMEOUT, "no second wait");
        tokio::time::sleep(FAIL_FAST_FOR).await;
        guard
            .call("read", async { Ok(()) })
            .await
            .expect("tried again after the window");
        guard
            .call("read", async { Ok(()) })
            .await
            .expect("and open again");
    }
}
