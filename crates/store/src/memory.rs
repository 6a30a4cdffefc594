//! The in-memory store of one process: a bounded page cache with per-entry TTL, governor GCRA
//! budgets, blocks, idempotency records, lasting blobs, event logs and leases in maps. Nothing
//! survives the process.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use moka::Expiry;
use moka::sync::Cache;
use switchboard_core::Result;

use crate::budget::{Budget, RateLimit};
use crate::{
    Attempt, Claim, GENERATION_TTL, LASTING_TTL, LeaseState, LogEntry, LogId, NotYet, QuotaLeft,
    Store, next_log_id, retention_floor, unix_micros, unix_millis,
};

#[derive(Clone)]
struct Entry {
    value: Bytes,
    ttl: Duration,
}

struct PerEntryTtl;

impl Expiry<String, Entry> for PerEntryTtl {
    fn expire_after_create(&self, _: &String, entry: &Entry, _: Instant) -> Option<Duration> {
        Some(entry.ttl)
    }

    fn expire_after_update(
        &self,
        _: &String,
        entry: &Entry,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.ttl)
    }
}

#[derive(Debug)]
struct Record {
    expires: Instant,
    fingerprint: String,
    /// In flight until then; past it (a crash, or `unsettle`) the attempt is unsettled.
    lease_until: Instant,
    note: Bytes,
    done: Option<Bytes>,
}

/// Idempotency records kept in memory; expired ones are dropped on access and swept as the map
/// grows.
#[derive(Debug, Default)]
pub(super) struct Records {
    map: HashMap<String, Record>,
    sweep_at: usize,
}

impl Records {
    fn live(&mut self, key: &str, now: Instant) -> Option<&mut Record> {
        self.map.get_mut(key).filter(|r| r.expires > now)
    }

    pub(super) fn claim(&mut self, key: &str, attempt: &Attempt<'_>) -> Claim {
        let now = Instant::now();
        if let Some(r) = self.live(key, now) {
            if let Some(record) = &r.done {
                return Claim::Done {
                    fingerprint: r.fingerprint.clone(),
                    record: record.clone(),
                };
            }
            if r.lease_until > now {
                return Claim::InFlight {
                    fingerprint: r.fingerprint.clone(),
                    retry_in: r.lease_until - now,
                };
            }
            if r.fingerprint != attempt.fingerprint {
                return Claim::Unsettled {
                    fingerprint: r.fingerprint.clone(),
                };
            }
            r.lease_until = now + attempt.lease;
            r.expires = r.expires.max(r.lease_until);
            return Claim::Claimed {
                unsettled: Some(r.note.clone()),
            };
        }
        if self.map.len() >= self.sweep_at {
            self.map.retain(|_, r| r.expires > now);
            self.sweep_at = (self.map.len() * 2).max(1024);
        }
        self.map.insert(
            key.to_owned(),
            Record {
                expires: now + attempt.keep.max(attempt.lease),
                fingerprint: attempt.fingerprint.to_owned(),
                lease_until: now + attempt.lease,
                note: Bytes::copy_from_slice(attempt.note),
                done: None,
            },
        );
        Claim::FRESH
    }

    pub(super) fn renew(&mut self, key: &str, fingerprint: &str, lease: Duration) -> bool {
        let now = Instant::now();
        match self.live(key, now) {
            Some(r) if r.done.is_none() && r.fingerprint == fingerprint && r.lease_until > now => {
                r.lease_until = now + lease;
                r.expires = r.expires.max(r.lease_until);
                true
            }
            _ => false,
        }
    }

    pub(super) fn unsettle(&mut self, key: &str, fingerprint: &str) {
        let now = Instant::now();
        if let Some(r) = self.live(key, now)
            && r.done.is_none()
            && r.fingerprint == fingerprint
        {
            r.lease_until = now;
        }
    }

    pub(super) fn complete(&mut self, key: &str, fingerprint: &str, record: Bytes, ttl: Duration) {
        let now = Instant::now();
        let taken = self
            .map
            .get(key)
            .is_some_and(|r| r.expires > now && r.done.is_some() && r.fingerprint != fingerprint);
        if !taken {
            self.map.insert(
                key.to_owned(),
                Record {
                    expires: now + ttl,
                    fingerprint: fingerprint.to_owned(),
                    lease_until: now,
                    note: Bytes::new(),
                    done: Some(record),
                },
            );
        }
    }

    pub(super) fn release(&mut self, key: &str) {
        if self.map.get(key).is_some_and(|r| r.done.is_none()) {
            self.map.remove(key);
        }
    }
}

/// Blobs meant to last ([`LASTING_TTL`] or more): never evicted for space; expired ones are
/// dropped on access and swept as the map grows.
#[derive(Debug, Default)]
pub(super) struct Lasting {
    map: HashMap<String, (Bytes, Instant)>,
    sweep_at: usize,
}

impl Lasting {
    pub(super) fn get(&self, key: &str) -> Option<Bytes> {
        self.map
            .get(key)
            .filter(|(_, expires)| *expires > Instant::now())
            .map(|(value, _)| value.clone())
    }

    pub(super) fn put(&mut self, key: &str, value: Bytes, ttl: Duration) {
        let now = Instant::now();
        if self.map.len() >= self.sweep_at {
            self.map.retain(|_, (_, expires)| *expires > now);
            self.sweep_at = (self.map.len() * 2).max(1024);
        }
        self.map.insert(key.to_owned(), (value, now + ttl));
    }

    pub(super) fn remove(&mut self, key: &str) {
        self.map.remove(key);
    }

    pub(super) fn take(&mut self, key: &str) -> Option<Bytes> {
        self.map
            .remove(key)
            .filter(|(_, expires)| *expires > Instant::now())
            .map(|(value, _)| value)
    }
}

/// The in-memory store of one replica: a bounded cache with per-entry TTL and GCRA budgets.
pub struct MemoryStore {
    entries: Cache<String, Entry>,
    lasting: Mutex<Lasting>,
    logs: Mutex<HashMap<String, VecDeque<LogEntry>>>,
    leases: Mutex<HashMap<String, LeaseState>>,
    budgets: Mutex<HashMap<String, Arc<Budget>>>,
    blocked: Mutex<HashMap<String, Instant>>,
    generations: Mutex<HashMap<String, (u64, Instant)>>,
    records: Mutex<Records>,
}

/// Locks `m`, even when a panic poisoned it: every state kept behind these locks stays whole.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("entries", &self.entries.entry_count())
            .finish()
    }
}

impl MemoryStore {
    /// A store caching at most `max_entries` pages.
    pub fn new(max_entries: u64) -> MemoryStore {
        MemoryStore {
            entries: Cache::builder()
                .max_capacity(max_entries)
                .expire_after(PerEntryTtl)
                .build(),
            lasting: Mutex::default(),
            logs: Mutex::default(),
            leases: Mutex::default(),
            budgets: Mutex::default(),
            blocked: Mutex::default(),
            generations: Mutex::default(),
            records: Mutex::default(),
        }
    }

    fn budget(&self, bucket: &str, limit: RateLimit) -> Option<Arc<Budget>> {
        let mut budgets = lock(&self.budgets);
        if let Some(b) = budgets.get(bucket).filter(|b| b.limit() == limit) {
            return Some(b.clone());
        }
        let budget = Arc::new(Budget::new(limit)?);
        budgets.insert(bucket.to_owned(), budget.clone());
        Some(budget)
    }

    /// The time left on `bucket`'s block, without the store's error wrapping.
    pub(crate) fn block_left(&self, bucket: &str) -> Option<Duration> {
        let now = Instant::now();
        let mut blocked = lock(&self.blocked);
        match blocked.get(bucket) {
            Some(until) if *until > now => Some(*until - now),
            Some(_) => {
                blocked.remove(bucket);
                None
            }
            None => None,
        }
    }

    pub(super) fn set_block(&self, bucket: &str, duration: Duration) {
        let until = Instant::now() + duration;
        let mut blocked = lock(&self.blocked);
        let entry = blocked.entry(bucket.to_owned()).or_insert(until);
        *entry = (*entry).max(until);
    }

    pub(super) fn current_generation(&self, scope: &str) -> u64 {
        let now = Instant::now();
        lock(&self.generations)
            .get(scope)
            .filter(|(_, expires)| *expires > now)
            .map_or(0, |(generation, _)| *generation)
    }

    pub(super) fn next_generation(&self, scope: &str) -> u64 {
        let now = Instant::now();
        let mut generations = lock(&self.generations);
        let entry = generations.entry(scope.to_owned()).or_insert((0, now));
        if entry.1 <= now {
            entry.0 = 0;
        }
        entry.0 += 1;
        entry.1 = now + GENERATION_TTL;
        entry.0
    }

    pub(super) fn cached(&self, key: &str) -> Option<Bytes> {
        self.entries
            .get(key)
            .map(|e| e.value)
            .or_else(|| lock(&self.lasting).get(key))
    }

    pub(super) fn cache(&self, key: &str, value: Bytes, ttl: Duration) {
        if ttl >= LASTING_TTL {
            self.entries.invalidate(key);
            lock(&self.lasting).put(key, value, ttl);
        } else if !ttl.is_zero() {
            lock(&self.lasting).remove(key);
            self.entries.insert(key.to_owned(), Entry { value, ttl });
        }
    }

    pub(super) fn uncache(&self, key: &str) {
        self.entries.invalidate(key);
        lock(&self.lasting).remove(key);
    }

    /// Removes `key` and returns its value if it was live; one caller at most gets it.
    pub(super) fn take_cached(&self, key: &str) -> Option<Bytes> {
        // `remove` hands back an expired entry too: only a live one counts.
        let live = self.entries.contains_key(key);
        let cached = self.entries.remove(key).filter(|_| live).map(|e| e.value);
        let lasting = lock(&self.lasting).take(key);
        cached.or(lasting)
    }
}

impl Default for MemoryStore {
    fn default() -> MemoryStore {
        MemoryStore::new(100_000)
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        Ok(self.cached(key))
    }

    async fn put(&self, key: &str, value: Bytes, ttl: Duration) -> Result<()> {
        self.cache(key, value, ttl);
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.uncache(key);
        Ok(())
    }

    async fn take_once(&self, key: &str) -> Result<Option<Bytes>> {
        Ok(self.take_cached(key))
    }

    async fn generation(&self, scope: &str) -> Result<u64> {
        Ok(self.current_generation(scope))
    }

    async fn bump_generation(&self, scope: &str) -> Result<u64> {
        Ok(self.next_generation(scope))
    }

    async fn take(
        &self,
        bucket: &str,
        limit: RateLimit,
    ) -> Result<std::result::Result<QuotaLeft, NotYet>> {
        if let Some(left) = self.block_left(bucket) {
            return Ok(Err(NotYet::blocked(left)));
        }
        Ok(match self.budget(bucket, limit) {
            Some(budget) => budget
                .try_acquire()
                .map(|remaining| QuotaLeft { remaining })
                .map_err(NotYet::spacing),
            None => Ok(QuotaLeft {
                remaining: u32::MAX,
            }),
        })
    }

    async fn block(&self, bucket: &str, duration: Duration) -> Result<()> {
        self.set_block(bucket, duration);
        Ok(())
    }

    async fn blocked_for(&self, bucket: &str) -> Result<Option<Duration>> {
        Ok(self.block_left(bucket))
    }

    async fn claim(&self, key: &str, attempt: &Attempt<'_>) -> Result<Claim> {
        Ok(lock(&self.records).claim(key, attempt))
    }

    async fn renew(&self, key: &str, fingerprint: &str, lease: Duration) -> Result<bool> {
        Ok(lock(&self.records).renew(key, fingerprint, lease))
    }

    async fn unsettle(&self, key: &str, fingerprint: &str) -> Result<()> {
        lock(&self.records).unsettle(key, fingerprint);
        Ok(())
    }

    async fn complete(
        &self,
        key: &str,
        fingerprint: &str,
        record: Bytes,
        ttl: Duration,
    ) -> Result<()> {
        lock(&self.records).complete(key, fingerprint, record, ttl);
        Ok(())
    }

    async fn release(&self, key: &str) -> Result<()> {
        lock(&self.records).release(key);
        Ok(())
    }

    async fn append_log(
        &self,
        log: &str,
        bodies: Vec<Bytes>,
        retention: Duration,
    ) -> Result<Vec<LogId>> {
        let now = unix_millis();
        let mut logs = lock(&self.logs);
        let entries = logs.entry(log.to_owned()).or_default();
        let mut ids = Vec::with_capacity(bodies.len());
        for body in bodies {
            let id = next_log_id(entries.back().map(|e| e.id), now);
            entries.push_back(LogEntry { id, body });
            ids.push(id);
        }
        let floor = retention_floor(now, retention);
        while entries.front().is_some_and(|e| e.id.ms < floor) {
            entries.pop_front();
        }
        Ok(ids)
    }

    async fn read_log(
        &self,
        log: &str,
        after: Option<LogId>,
        limit: usize,
    ) -> Result<Vec<LogEntry>> {
        let logs = lock(&self.logs);
        let Some(entries) = logs.get(log) else {
            return Ok(Vec::new());
        };
        let start = after.map_or(0, |after| entries.partition_point(|e| e.id <= after));
        Ok(entries.iter().skip(start).take(limit).cloned().collect())
    }

    async fn last_log_id(&self, log: &str) -> Result<Option<LogId>> {
        Ok(lock(&self.logs)
            .get(log)
            .and_then(|entries| entries.back())
            .map(|e| e.id))
    }

    async fn lease(&self, key: &str, holder: &str, ttl: Duration) -> Result<Option<u64>> {
        let mut leases = lock(&self.leases);
        let granted = LeaseState::grant(leases.get(key), holder, unix_micros(), ttl);
        Ok(granted.map(|state| {
            let token = state.token();
            leases.insert(key.to_owned(), state);
            token
        }))
    }

    async fn release_lease(&self, key: &str, holder: &str) -> Result<()> {
        let mut leases = lock(&self.leases);
        if let Some(state) = leases.get(key).map(|s| s.released(holder)) {
            leases.insert(key.to_owned(), state);
        }
        Ok(())
    }
}
