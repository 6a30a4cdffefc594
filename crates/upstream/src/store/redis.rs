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

use super::{
    Claim, GENERATION_TTL, LEASE_COUNTER_TTL, LogEntry, LogId, NotYet, QuotaLeft, Store,
    unavailable,
};
use crate::budget::{Gcra, RateLimit};

/// The longest any one Redis call may take before the request fails with `store_unavailable`.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(1500);

/// GCRA, the same steps as [`Gcra::check`]. KEYS: TAT, blocked-until. ARGV: period and tolerance
/// (µs), and optionally `now` (µs; tests inject a clock, and as their clock is not Redis's the key
/// then lives a minute longer; otherwise Redis's `TIME` from a recent epoch keeps the numbers
/// exact in Lua's doubles). The TAT key expires when the TAT passes. Returns `{1, remaining}`,
/// `{0, wait_us}` (the budget's spacing) or `{2, wait_us}` (blocked).
const TAKE: &str = r"
local blocked = redis.call('PTTL', KEYS[2])
if blocked > 0 then return {2, blocked * 1000} end
local period = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local now
if ARGV[3] then
  now = tonumber(ARGV[3])
else
  local t = redis.call('TIME')
  now = (tonumber(t[1]) - 1700000000) * 1000000 + tonumber(t[2])
end
local tat = now
local stored = redis.call('GET', KEYS[1])
if stored then tat = math.max(tonumber(stored), now) end
local earliest = tat - tolerance
if now < earliest then return {0, earliest - now} end
local nxt = tat + period
local capacity = tolerance + period
local remaining = math.floor(math.min(math.max(now + capacity - nxt, 0), capacity) / period)
local ttl = math.ceil((nxt - now) / 1000)
if ARGV[3] then ttl = ttl + 60000 end
redis.call('SET', KEYS[1], string.format('%.0f', nxt), 'PX', ttl)
return {1, remaining}
";

/// Blocks KEYS[1] for ARGV[1] ms unless a longer block is in place.
const BLOCK: &str = r"
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
end
return 1
";

/// Claims KEYS[1] with fingerprint ARGV[1] for ARGV[2] ms, or returns what holds it:
/// `{'claimed'}`, `{'flight', fingerprint}` or `{'done', fingerprint, record}`.
const CLAIM: &str = r"
local held = redis.call('HMGET', KEYS[1], 's', 'f', 'r')
if held[1] then return {held[1], held[2] or '', held[3] or ''} end
redis.call('HSET', KEYS[1], 's', 'flight', 'f', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {'claimed'}
";

/// Stores the record ARGV[2] of fingerprint ARGV[1] under KEYS[1] for ARGV[3] ms, unless another
/// fingerprint's finished record is there.
const COMPLETE: &str = r"
local held = redis.call('HMGET', KEYS[1], 's', 'f')
if held[1] == 'done' and held[2] ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 's', 'done', 'f', ARGV[1], 'r', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
";

/// Deletes KEYS[1] if it is still in flight.
const RELEASE: &str = r"
if redis.call('HGET', KEYS[1], 's') == 'flight' then redis.call('DEL', KEYS[1]) end
return 1
";

/// Appends ARGV[2..] to stream KEYS[1] (field `b`) with ids from Redis's clock, dropping entries
/// older than ARGV[1] ms; the key lives ARGV[1] ms past the last append. Returns the ids.
const APPEND: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local retention = tonumber(ARGV[1])
local minid = math.max(now - retention, 0)
local ids = {}
for i = 2, #ARGV do
  if i == 2 then
    ids[#ids + 1] = redis.call('XADD', KEYS[1], 'MINID', string.format('%.0f', minid), '*', 'b', ARGV[i])
  else
    ids[#ids + 1] = redis.call('XADD', KEYS[1], '*', 'b', ARGV[i])
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return ids
";

/// Lease KEYS[1] (hash: h holder, t token, e expiry ms) for holder ARGV[1] for ARGV[2] ms; the
/// hash is kept ARGV[3] ms. Returns the token (a new one when the holder changes), or -1 while
/// another holder's lease is live.
const LEASE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local held = redis.call('HMGET', KEYS[1], 'h', 't', 'e')
local token = tonumber(held[2] or '0')
local live = tonumber(held[3] or '0') > now
if live and held[1] ~= ARGV[1] then return -1 end
if held[1] ~= ARGV[1] then token = token + 1 end
redis.call('HSET', KEYS[1], 'h', ARGV[1], 't', string.format('%.0f', token),
  'e', string.format('%.0f', now + tonumber(ARGV[2])))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return token
";

/// Ends KEYS[1]'s lease if ARGV[1] holds it (the token stays).
const RELEASE_LEASE: &str = r"
if redis.call('HGET', KEYS[1], 'h') == ARGV[1] then redis.call('HSET', KEYS[1], 'e', '0') end
return 1
";

struct Scripts {
    take: Script,
    block: Script,
    claim: Script,
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
            prefix: prefix.to_owned(),
            scripts: Scripts {
                take: Script::new(TAKE),
                block: Script::new(BLOCK),
                claim: Script::new(CLAIM),
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

    /// Runs one Redis call within [`CALL_TIMEOUT`]; any failure is `store_unavailable`.
    async fn call<T>(&self, what: &str, call: impl Future<Output = RedisResult<T>>) -> Result<T> {
        match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                Err(unavailable(format!("the Redis store failed to {what}")).with_source(e))
            }
            Err(_) => Err(unavailable(format!(
                "the Redis store did not answer in time to {what}"
            ))),
        }
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

    async fn claim(&self, key: &str, fingerprint: &str, lease: Duration) -> Result<Claim> {
        let mut con = self.manager.clone();
        let mut invocation = self.scripts.claim.prepare_invoke();
        invocation
            .key(self.key("idem", key))
            .arg(fingerprint)
            .arg(millis(lease));
        let reply: Vec<Vec<u8>> = self
            .call(
                "claim an idempotency key",
                invocation.invoke_async(&mut con),
            )
            .await?;
        let text = |i: usize| {
            String::from_utf8_lossy(reply.get(i).map_or(&[][..], Vec::as_slice)).into_owned()
        };
        match reply.first().map(Vec::as_slice) {
            Some(b"claimed") => Ok(Claim::Claimed),
            Some(b"flight") => Ok(Claim::InFlight {
                fingerprint: text(1),
            }),
            Some(b"done") => Ok(Claim::Done {
                fingerprint: text(1),
                record: Bytes::from(reply.get(2).cloned().unwrap_or_default()),
            }),
            _ => Err(unavailable(
                "the Redis store answered a claim with something unexpected",
            )),
        }
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
