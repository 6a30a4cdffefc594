//! The page cache and the coalescing of identical reads: a fresh page is served from the store
//! (so from any replica's read), identical reads at the same time share one upstream call, and a
//! write moves the connection to a new cache generation, so a caller always reads its own write.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use switchboard_core::Result;
use tokio::sync::oneshot;
use url::Url;

use crate::call::Response;
use crate::lock;
use crate::meters::Meters;
use crate::store::Store;

type Waiters = Vec<oneshot::Sender<Result<Response>>>;

/// One connection's cached pages and reads in flight.
#[derive(Debug)]
pub(crate) struct PageCache {
    store: Arc<dyn Store>,
    /// How long a page stays cached; zero disables the cache and the coalescing.
    ttl: Duration,
    connection: String,
    in_flight: Mutex<HashMap<String, Waiters>>,
    recent: RecentPages,
}

/// The largest answer whose reading [`RecentPages`] keeps: a conversation, a page of messages, a
/// short list. Larger pages are parsed again on every hit.
const RECENT_PAGE_BYTES: usize = 64 * 1024;

/// What [`RecentPages`] holds at most, counting each page at four times its body (the body and
/// what was read from it).
const RECENT_BYTES: u64 = 8 * 1024 * 1024;

/// The cached pages this process served last, each with what an adapter read from it, so a
/// page served again from the cache is not parsed again. Shared by a gateway's connections.
///
/// A page is handed back only when the store holds the very same bytes under its key (the key
/// names the connection, its write generation and the URL): a page another replica refreshed,
/// or one cached again after it expired, is read anew. The store stays the one truth of what is
/// cached and for how long.
#[derive(Debug, Clone)]
pub struct RecentPages {
    pages: moka::sync::Cache<String, Response>,
}

impl Default for RecentPages {
    fn default() -> RecentPages {
        RecentPages {
            pages: moka::sync::Cache::builder()
                .max_capacity(RECENT_BYTES)
                .weigher(|_, page: &Response| {
                    u32::try_from(page.body.len().saturating_mul(4)).unwrap_or(u32::MAX)
                })
                .build(),
        }
    }
}

impl RecentPages {
    /// The page kept under `key`, if `cached` (the store's bytes for it) is that very page.
    fn same(&self, key: &str, cached: &[u8]) -> Option<Response> {
        let kept = self.pages.get(key)?;
        let status = kept.status.as_u16().to_be_bytes();
        (cached.get(..2) == Some(&status[..]) && cached.get(2..) == Some(&kept.body[..]))
            .then_some(kept)
    }

    /// `page`, keeping its reading under `key` when it is small enough to be worth it.
    fn keep(&self, key: &str, page: Response) -> Response {
        if page.body.len() > RECENT_PAGE_BYTES {
            return page;
        }
        let page = page.keeping_its_reading();
        self.pages.insert(key.to_owned(), page.clone());
        page
    }
}

/// A read's turn: send it (and tell those who wait), or wait for the identical one in flight.
enum Turn<'a> {
    Lead(Flight<'a>),
    Wait(oneshot::Receiver<Result<Response>>),
}

impl PageCache {
    /// The cache of `connection`'s pages in `store`, each kept for `ttl`; the readings of
    /// those served again kept in `recent`.
    pub(crate) fn new(
        store: Arc<dyn Store>,
        ttl: Duration,
        connection: &str,
        recent: RecentPages,
    ) -> PageCache {
        PageCache {
            store,
            ttl,
            connection: connection.to_owned(),
            in_flight: Mutex::default(),
            recent,
        }
    }

    /// The page at `url`: cached, else the answer of an identical read in flight, else what
    /// `send` gets (cached when it succeeds). A reader whose leader is cancelled sends its own.
    pub(crate) async fn read<F, Fut>(&self, url: &Url, meters: &Meters, send: F) -> Result<Response>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Response>>,
    {
        if self.ttl.is_zero() {
            return send().await;
        }
        let generation = self.store.generation(&self.connection).await?;
        let key = page_key(&self.connection, generation, url);
        if let Some(cached) = self.store.get(&key).await? {
            let hit = match self.recent.same(&key, &cached) {
                Some(kept) => Some(kept),
                None => decode_page(cached).map(|page| self.recent.keep(&key, page)),
            };
            if let Some(hit) = hit {
                meters.cache_hit();
                return Ok(hit);
            }
        }
        let flight = match self.join(&key) {
            Turn::Lead(flight) => flight,
            Turn::Wait(leader) => {
                meters.coalesced();
                if let Ok(result) = leader.await {
                    return result;
                }
                // The call we waited on was cancelled: send our own.
                return send().await;
            }
        };
        let result = send().await.map(|page| self.recent.keep(&key, page));
        if let Ok(response) = &result
            && let Err(e) = self.store.put(&key, encode_page(response), self.ttl).await
        {
            tracing::debug!(connection = %self.connection, error = %e, "could not cache a page");
        }
        flight.finish(&result);
        result
    }

    /// Hides the connection's cached pages from every replica (after a write). When the store
    /// fails here the write has been sent already: its answer stands, and the pages expire.
    pub(crate) async fn forget_pages(&self) {
        if let Err(e) = self.store.bump_generation(&self.connection).await {
            tracing::warn!(connection = %self.connection, error = %e, "could not invalidate cached pages after a write; they expire with their TTL");
        }
    }

    fn join<'a>(&'a self, key: &'a str) -> Turn<'a> {
        let mut in_flight = lock(&self.in_flight);
        match in_flight.get_mut(key) {
            Some(waiters) => {
                let (tx, rx) = oneshot::channel();
                waiters.push(tx);
                Turn::Wait(rx)
            }
            None => {
                in_flight.insert(key.to_owned(), Vec::new());
                Turn::Lead(Flight {
                    in_flight: &self.in_flight,
                    key,
                })
            }
        }
    }
}

/// Removes a coalesced read from the in-flight map when its leader finishes or is cancelled;
/// waiters left then see their channel close and send the read themselves.
struct Flight<'a> {
    in_flight: &'a Mutex<HashMap<String, Waiters>>,
    key: &'a str,
}

impl Flight<'_> {
    fn finish(self, result: &Result<Response>) {
        let waiters = lock(self.in_flight).remove(self.key).unwrap_or_default();
        for waiter in waiters {
            let copy = match result {
                Ok(r) => Ok(r.clone()),
                Err(e) => Err(e.duplicate()),
            };
            let _ = waiter.send(copy);
        }
    }
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        lock(self.in_flight).remove(self.key);
    }
}

/// The store key of `connection`'s page at `url` in write generation `generation`.
fn page_key(connection: &str, generation: u64, url: &Url) -> String {
    format!("cache:{connection}:{generation}:{url}")
}

/// A page as cached: its status (two bytes) and its body; headers are not kept.
fn encode_page(response: &Response) -> Bytes {
    let mut out = Vec::with_capacity(2 + response.body.len());
    out.extend_from_slice(&response.status.as_u16().to_be_bytes());
    out.extend_from_slice(&response.body);
    Bytes::from(out)
}

/// A cached page, or `None` when the bytes are not one.
fn decode_page(bytes: Bytes) -> Option<Response> {
    let status = u16::from_be_bytes([*bytes.first()?, *bytes.get(1)?]);
    Some(Response::new(
        StatusCode::from_u16(status).ok()?,
        HeaderMap::new(),
        bytes.slice(2..),
    ))
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use switchboard_core::{Error, ErrorKind};
    use tokio::sync::Notify;
    use tokio::time::Instant;

    use super::*;
    use crate::store::MemoryStore;

    fn cache(ttl: Duration) -> PageCache {
        PageCache::new(
            Arc::new(MemoryStore::default()),
            ttl,
            "acme",
            RecentPages::default(),
        )
    }

    fn page(body: &'static str) -> Response {
        Response::new(
            StatusCode::OK,
            HeaderMap::new(),
            Bytes::from_static(body.as_bytes()),
        )
    }

    fn url() -> Url {
        Url::parse("http://vendor.test/conversations?page=2").expect("a URL")
    }

    #[test]
    fn a_page_survives_its_encoding() {
        let mut response = page("{\"conversations\": []}");
        response.status = StatusCode::ACCEPTED;
        let decoded = decode_page(encode_page(&response)).expect("decodes");
        assert_eq!(decoded.status, StatusCode::ACCEPTED);
        assert_eq!(decoded.body, response.body);
        assert!(decode_page(Bytes::from_static(b"\x00")).is_none());
        assert!(
            decode_page(Bytes::from_static(b"\x00\x07{}")).is_none(),
            "status 7"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_cached_page_is_served_until_a_write_forgets_it() {
        let cache = cache(Duration::from_secs(2));
        let meters = Meters::new("acme");
        let sends = Cell::new(0);
        let send = || async {
            sends.set(sends.get() + 1);
            Ok(page("[]"))
        };
        cache.read(&url(), &meters, send).await.expect("reads");
        cache.read(&url(), &meters, send).await.expect("reads");
        assert_eq!(sends.get(), 1);
        cache.forget_pages().await;
        cache.read(&url(), &meters, send).await.expect("reads");
        assert_eq!(sends.get(), 2, "a write is read back");
    }

    thread_local! {
        /// How many times a [`Counted`] was parsed on this thread.
        static PARSED: Cell<usize> = const { Cell::new(0) };
    }

    /// A body that counts its parses.
    #[derive(Debug, Clone, PartialEq)]
    struct Counted(Vec<u32>);

    impl<'de> serde::Deserialize<'de> for Counted {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Counted, D::Error> {
            PARSED.with(|n| n.set(n.get() + 1));
            Vec::deserialize(d).map(Counted)
        }
    }

    /// What `cache` serves for the test URL, read as [`Counted`].
    async fn parsed<F, Fut>(cache: &PageCache, meters: &Meters, send: F) -> Counted
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Response>>,
    {
        let page = cache.read(&url(), meters, send).await.expect("reads");
        page.json_kept().expect("parses")
    }

    #[tokio::test(start_paused = true)]
    async fn a_page_served_again_is_not_parsed_again_unless_another_replica_refreshed_it() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
        let ttl = Duration::from_secs(2);
        let replica = || PageCache::new(Arc::clone(&store), ttl, "acme", RecentPages::default());
        let (a, b) = (replica(), replica());
        let meters = Meters::new("acme");
        let sends = Cell::new(0);
        let send = || async {
            sends.set(sends.get() + 1);
            Ok(page("[1]"))
        };
        for _ in 0..3 {
            assert_eq!(parsed(&a, &meters, send).await, Counted(vec![1]));
        }
        let counts = || (sends.get(), PARSED.with(Cell::get));
        assert_eq!(counts(), (1, 1), "sent once, parsed once");
        // Replica b serves the same cached bytes: parsed once there too.
        assert_eq!(parsed(&b, &meters, send).await, Counted(vec![1]));
        assert_eq!(counts(), (1, 2));

        // Another replica caches a fresher page under the same key: a serves it, parsed anew.
        let generation = store.generation("acme").await.expect("generation");
        let key = page_key("acme", generation, &url());
        let fresher = encode_page(&page("[2]"));
        store.put(&key, fresher, ttl).await.expect("caches");
        let fresh = parsed(&a, &meters, send).await;
        assert_eq!(
            fresh,
            Counted(vec![2]),
            "a does not serve its stale reading"
        );
        assert_eq!(parsed(&a, &meters, send).await, Counted(vec![2]));
        assert_eq!(counts(), (1, 3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_read_is_not_cached_and_no_ttl_caches_nothing() {
        let meters = Meters::new("acme");
        let sends = Cell::new(0);
        let failing = || async {
            sends.set(sends.get() + 1);
            Err(Error::new(ErrorKind::UpstreamUnavailable, "503"))
        };
        let cache_on = cache(Duration::from_secs(2));
        assert!(cache_on.read(&url(), &meters, failing).await.is_err());
        assert!(cache_on.read(&url(), &meters, failing).await.is_err());
        assert_eq!(sends.get(), 2);
        let succeeding = || async {
            sends.set(sends.get() + 1);
            Ok(page("[]"))
        };
        let cache_off = cache(Duration::ZERO);
        cache_off
            .read(&url(), &meters, succeeding)
            .await
            .expect("reads");
        cache_off
            .read(&url(), &meters, succeeding)
            .await
            .expect("reads");
        assert_eq!(sends.get(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn identical_reads_at_once_make_one_upstream_call() {
        let cache = cache(Duration::from_secs(2));
        let meters = Meters::new("acme");
        let sends = Cell::new(0);
        let answer = Notify::new();
        let send = || async {
            sends.set(sends.get() + 1);
            answer.notified().await;
            Ok(page("[1]"))
        };
        let url = url();
        let (first, second, ()) = tokio::join!(
            cache.read(&url, &meters, send),
            async {
                tokio::task::yield_now().await;
                cache.read(&url, &meters, send).await
            },
            async {
                tokio::task::yield_now().await;
                tokio::task::yield_now().await;
                answer.notify_one();
            },
        );
        assert_eq!(first.expect("reads").body, second.expect("reads").body);
        assert_eq!(sends.get(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_reader_whose_leader_is_cancelled_sends_its_own() {
        let cache = cache(Duration::from_secs(2));
        let meters = Meters::new("acme");
        let sends = Cell::new(0);
        let hanging = || std::future::pending::<Result<Response>>();
        let send = || async {
            sends.set(sends.get() + 1);
            Ok(page("[2]"))
        };
        let url = url();
        let started = Instant::now();
        let (led, waited) = tokio::join!(
            tokio::time::timeout(Duration::from_secs(1), cache.read(&url, &meters, hanging)),
            async {
                tokio::task::yield_now().await;
                let waited = cache.read(&url, &meters, send).await;
                // It waited on the leader until the leader was cancelled.
                assert_eq!(started.elapsed(), Duration::from_secs(1));
                waited
            },
        );
        assert!(led.is_err(), "the leader was cancelled");
        assert_eq!(&waited.expect("reads").body[..], b"[2]");
        assert_eq!(sends.get(), 1);
    }
}
