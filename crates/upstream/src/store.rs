//! The store behind everything a gateway replica must share with the others: quota budgets,
//! cached upstream pages and idempotency records. One trait; this in-memory implementation
//! serves a single replica, and a shared one (e.g. Redis: `SET NX PX`, `GET`, `DEL`, a GCRA
//! script) can take its place without touching the callers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use moka::Expiry;
use moka::sync::Cache;

use crate::budget::{Budget, RateLimit};

/// How much of a quota is left after taking one request from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaLeft {
    /// Requests that may still be sent at once (the rest comes back over time).
    pub remaining: u32,
}

/// Shared state: bytes under string keys with a time to live, and request quotas.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// The value under `key`, unless missing or expired.
    async fn get(&self, key: &str) -> Option<Bytes>;
    /// Stores `value` under `key` for `ttl`.
    async fn put(&self, key: &str, value: Bytes, ttl: Duration);
    /// Stores `value` under `key` for `ttl` unless a live value is there; returns that value.
    async fn put_if_absent(&self, key: &str, value: Bytes, ttl: Duration) -> Option<Bytes>;
    /// Removes `key`.
    async fn delete(&self, key: &str);
    /// Removes every key starting with `prefix`.
    async fn delete_prefix(&self, prefix: &str);
    /// Takes one request from the quota `bucket` (created with `limit` on first use), or says
    /// how long until one is available.
    async fn take(&self, bucket: &str, limit: RateLimit) -> Result<QuotaLeft, Duration>;
}

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

/// The in-memory store of one replica: a bounded cache with per-entry TTL and GCRA budgets.
pub struct MemoryStore {
    entries: Cache<String, Entry>,
    budgets: Mutex<HashMap<String, Arc<Budget>>>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("entries", &self.entries.entry_count())
            .finish()
    }
}

impl MemoryStore {
    /// A store holding at most `max_entries` values.
    pub fn new(max_entries: u64) -> MemoryStore {
        MemoryStore {
            entries: Cache::builder()
                .max_capacity(max_entries)
                .expire_after(PerEntryTtl)
                .support_invalidation_closures()
                .build(),
            budgets: Mutex::new(HashMap::new()),
        }
    }

    fn budget(&self, bucket: &str, limit: RateLimit) -> Option<Arc<Budget>> {
        let mut budgets = self.budgets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = budgets.get(bucket).filter(|b| b.limit() == limit) {
            return Some(b.clone());
        }
        let budget = Arc::new(Budget::new(limit)?);
        budgets.insert(bucket.to_owned(), budget.clone());
        Some(budget)
    }
}

impl Default for MemoryStore {
    fn default() -> MemoryStore {
        MemoryStore::new(100_000)
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Option<Bytes> {
        self.entries.get(key).map(|e| e.value)
    }

    async fn put(&self, key: &str, value: Bytes, ttl: Duration) {
        if !ttl.is_zero() {
            self.entries.insert(key.to_owned(), Entry { value, ttl });
        }
    }

    async fn put_if_absent(&self, key: &str, value: Bytes, ttl: Duration) -> Option<Bytes> {
        let entry = self
            .entries
            .entry(key.to_owned())
            .or_insert_with(|| Entry { value, ttl });
        (!entry.is_fresh()).then(|| entry.into_value().value)
    }

    async fn delete(&self, key: &str) {
        self.entries.invalidate(key);
    }

    async fn delete_prefix(&self, prefix: &str) {
        let prefix = prefix.to_owned();
        // Only fails when invalidation closures are not enabled, which `new` does.
        let _ = self
            .entries
            .invalidate_entries_if(move |key, _| key.starts_with(&prefix));
    }

    async fn take(&self, bucket: &str, limit: RateLimit) -> Result<QuotaLeft, Duration> {
        match self.budget(bucket, limit) {
            Some(budget) => budget
                .try_acquire()
                .map(|remaining| QuotaLeft { remaining }),
            None => Ok(QuotaLeft {
                remaining: u32::MAX,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keeps_values_until_their_ttl_and_deletes_by_prefix() {
        let store = MemoryStore::default();
        store
            .put(
                "cache:a:1",
                Bytes::from_static(b"x"),
                Duration::from_secs(60),
            )
            .await;
        store
            .put(
                "cache:a:2",
                Bytes::from_static(b"y"),
                Duration::from_secs(60),
            )
            .await;
        store
            .put(
                "cache:b:1",
                Bytes::from_static(b"z"),
                Duration::from_secs(60),
            )
            .await;
        store
            .put("gone", Bytes::from_static(b"-"), Duration::from_millis(1))
            .await;
        assert_eq!(store.get("cache:a:1").await.as_deref(), Some(&b"x"[..]));
        store.delete_prefix("cache:a:").await;
        store.entries.run_pending_tasks();
        assert_eq!(store.get("cache:a:2").await, None);
        assert_eq!(store.get("cache:b:1").await.as_deref(), Some(&b"z"[..]));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(store.get("gone").await, None);
    }

    #[tokio::test]
    async fn put_if_absent_returns_what_was_there() {
        let store = MemoryStore::default();
        let ttl = Duration::from_secs(60);
        assert_eq!(
            store
                .put_if_absent("k", Bytes::from_static(b"1"), ttl)
                .await,
            None
        );
        assert_eq!(
            store
                .put_if_absent("k", Bytes::from_static(b"2"), ttl)
                .await
                .as_deref(),
            Some(&b"1"[..])
        );
    }
}
