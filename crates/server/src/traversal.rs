//! The upstream pages an inbox traversal reached, kept for its next pages.
//!
//! A traversal is named by a random id minted on its first page and carried in its signed cursor,
//! so two traversals never share a page. Each upstream page the traversal reads (as normalized
//! conversations, not the vendor's answer) is kept under
//! `traversal:{id}:{connection}:{generation}:{position}` for `[server] traversal_ttl_secs`, and
//! forgotten once the traversal has moved past it; the next page of the traversal starts from it
//! instead of asking the vendor again. The connection's write generation is part of the key:
//! after a write through the gateway, its writer's next page reads the vendor again. A first page
//! is always read from the vendors.
//!
//! Pages are kept in this process as read ([`LocalPages`]: recalling one reads no JSON); with a
//! store other replicas share (Redis), each is also written there as JSON, so the traversal's
//! next page finds it on any replica. What a key holds never changes (the key names the
//! traversal, the write generation and the position), so a copy in this process is never stale.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use sha2::{Digest, Sha256};
use switchboard_core::merge::{KeptPage, KeptPages};
use switchboard_core::{Conversation, Error, UpstreamPage};
use switchboard_store::Store;

/// A new traversal id: 128 random bits, hex.
pub fn new_traversal_id() -> Result<String, Error> {
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).map_err(|e| {
        Error::new(
            switchboard_core::ErrorKind::Unexpected,
            format!("cannot read the system's random source: {e}"),
        )
    })?;
    Ok(hex::encode(id))
}

/// Conversations kept in this process at most by default (`[server]
/// traversal_kept_conversations`), the least recently used pages first out: the current pages of
/// about two traversals over the simulated inbox of four connections (Octopush's chunk of 1000
/// conversations is the largest page). Measured with `bench/scaling.sh` (four connections, 20
/// first pages, each keeping about 1150 conversations): peak RSS 39 MB keeping up to 8192, 31 MB
/// keeping up to 2048, 30 MB keeping none. A traversal whose pages were pushed out reads them from
/// its vendors again; a deployment paging deep through many connections at once raises it.
pub(crate) const LOCAL_CONVERSATIONS: u64 = 2048;

/// The kept pages held in this process, as read: shared by every traversal it serves, each
/// forgotten `ttl` after it was last kept or recalled.
#[derive(Clone)]
pub struct LocalPages {
    ttl: Duration,
    pages: moka::sync::Cache<String, Kept>,
}

/// A page held in this process, and when it was last written to a shared store (Unix seconds).
#[derive(Clone)]
struct Kept {
    page: Arc<KeptPage<Conversation>>,
    shared_at: u64,
}

impl std::fmt::Debug for LocalPages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalPages")
            .field("ttl", &self.ttl)
            .field("pages", &self.pages.entry_count())
            .finish()
    }
}

impl LocalPages {
    /// Pages kept for `ttl` (zero: none are kept, and traversals read every page from the
    /// vendors), `conversations` of them at most.
    pub fn new(ttl: Duration, conversations: u64) -> LocalPages {
        LocalPages {
            ttl,
            pages: moka::sync::Cache::builder()
                .max_capacity(conversations)
                .weigher(|_, kept: &Kept| {
                    u32::try_from(kept.page.items.len())
                        .unwrap_or(u32::MAX)
                        .max(1)
                })
                .time_to_idle(ttl.max(Duration::from_secs(1)))
                // The page just kept is the one its traversal reads next: a full cache drops
                // the least recently used, never the newcomer (moka's default, TinyLFU, admits
                // by past frequency and turned new traversals' pages away).
                .eviction_policy(moka::policy::EvictionPolicy::lru())
                .build(),
        }
    }

    /// How long a page is kept after it was last used.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn keep(&self, key: String, page: Arc<KeptPage<Conversation>>, shared_at: u64) {
        self.pages.insert(key, Kept { page, shared_at });
        // The bound holds now, not at the cache's next housekeeping.
        self.pages.run_pending_tasks();
    }
}

/// One traversal's kept pages, for one gateway page.
#[derive(Debug)]
pub struct TraversalPages<'a> {
    store: &'a dyn Store,
    local: &'a LocalPages,
    traversal: &'a str,
    /// Each connection's write generation when the page started; a connection whose generation
    /// the store did not give keeps nothing.
    generations: HashMap<&'a str, u64>,
}

/// Seconds since the Unix epoch.
fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl<'a> TraversalPages<'a> {
    /// The kept pages of `traversal` over `connections`, keyed by each connection's write
    /// generation now (read before any vendor call of the page, so a page read after a write is
    /// never kept under the generation before it).
    pub async fn new(
        store: &'a dyn Store,
        local: &'a LocalPages,
        traversal: &'a str,
        connections: impl IntoIterator<Item = &'a str>,
    ) -> TraversalPages<'a> {
        let generations = futures::future::join_all(connections.into_iter().map(|c| async move {
            match store.generation(c).await {
                Ok(generation) => Some((c, generation)),
                Err(e) => {
                    tracing::debug!(connection = c, error = %e, "no write generation: this page's upstream pages are not kept");
                    None
                }
            }
        }))
        .await
        .into_iter()
        .flatten()
        .collect();
        TraversalPages {
            store,
            local,
            traversal,
            generations,
        }
    }

    fn key(&self, connection: &str, page: &UpstreamPage) -> Option<String> {
        let generation = self.generations.get(connection)?;
        let position = serde_json::to_vec(page).ok()?;
        let position = hex::encode(&Sha256::digest(&position)[..12]);
        Some(format!(
            "traversal:{}:{connection}:{generation}:{position}",
            self.traversal
        ))
    }

    /// Whether a page written to the shared store at `at` is past half its time there: a lane
    /// can stay on one upstream page for many gateway pages (its conversations are older than
    /// the others'), so such a page is written again, for another TTL.
    fn due_again(&self, at: u64, now: u64) -> bool {
        self.store.shared() && now.saturating_sub(at) * 2 >= self.local.ttl.as_secs()
    }

    /// Writes `page` to the shared store, for the other replicas.
    async fn share(&self, key: &str, page: &KeptPage<Conversation>, at: u64) {
        let Ok(json) = serde_json::to_vec(page) else {
            return;
        };
        let mut value = Vec::with_capacity(8 + json.len());
        value.extend_from_slice(&at.to_le_bytes());
        value.extend_from_slice(&json);
        if let Err(e) = self
            .store
            .put(key, Bytes::from(value), self.local.ttl)
            .await
        {
            tracing::debug!(error = %e, "could not keep a traversal's upstream page");
        }
    }
}

#[async_trait]
impl KeptPages<Conversation> for TraversalPages<'_> {
    async fn recall(
        &self,
        connection: &str,
        page: &UpstreamPage,
    ) -> Option<Arc<KeptPage<Conversation>>> {
        let key = self.key(connection, page)?;
        if let Some(Kept { page, shared_at }) = self.local.pages.get(&key) {
            let now = unix_secs();
            if self.due_again(shared_at, now) {
                self.share(&key, &page, now).await;
                self.local.keep(key, Arc::clone(&page), now);
            }
            return Some(page);
        }
        if !self.store.shared() {
            return None;
        }
        let value = match self.store.get(&key).await {
            Ok(value) => value?,
            Err(e) => {
                tracing::debug!(connection, error = %e, "could not recall a traversal's upstream page");
                return None;
            }
        };
        let at = u64::from_le_bytes(value.get(..8)?.try_into().ok()?);
        let kept: KeptPage<Conversation> = serde_json::from_slice(value.get(8..)?).ok()?;
        let now = unix_secs();
        let shared_at = if self.due_again(at, now) {
            self.share(&key, &kept, now).await;
            now
        } else {
            at
        };
        let kept = Arc::new(kept);
        self.local.keep(key, Arc::clone(&kept), shared_at);
        Some(kept)
    }

    async fn keep(&self, connection: &str, page: &UpstreamPage, read: Arc<KeptPage<Conversation>>) {
        let Some(key) = self.key(connection, page) else {
            return;
        };
        let now = unix_secs();
        if self.store.shared() {
            self.share(&key, &read, now).await;
        }
        self.local.keep(key, read, now);
    }

    async fn forget(&self, connection: &str, page: &UpstreamPage) {
        let Some(key) = self.key(connection, page) else {
            return;
        };
        self.local.pages.invalidate(&key);
        if self.store.shared()
            && let Err(e) = self.store.delete(&key).await
        {
            tracing::debug!(connection, error = %e, "could not forget a traversal's upstream page; it expires with its TTL");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use switchboard_core::{Channel, ProviderKind, Status};
    use switchboard_store::MemoryStore;

    fn conversation(n: usize) -> Conversation {
        Conversation {
            id: format!("sms:{n}"),
            connection: "sms".into(),
            provider: ProviderKind::new("octopush"),
            native_id: n.to_string(),
            channel: Channel::Sms,
            native_channel: None,
            status: Status::Open,
            mode: None,
            assignee: None,
            contact: None,
            created_at: None,
            updated_at: None,
            last_activity_at: Utc::now(),
            last_message: None,
            message_count: None,
            escalation: None,
            url: None,
            raw: None,
        }
    }

    /// Pages kept past the bound push the least recently used out at once: the process never
    /// holds more than `LOCAL_CONVERSATIONS` of them, however many traversals keep pages, and
    /// the page a traversal just kept is always there for its next page (a cache that admits
    /// by frequency turned new traversals' pages away once full: each page 2 read its vendors
    /// again).
    #[tokio::test]
    async fn a_process_holds_a_bounded_number_of_kept_conversations() {
        let store = MemoryStore::default();
        let local = LocalPages::new(Duration::from_secs(300), LOCAL_CONVERSATIONS);
        let page: Arc<KeptPage<Conversation>> = Arc::new(KeptPage {
            items: (0..1000).map(conversation).collect(),
            next: None,
        });
        for traversal in 0..20 {
            let traversal = traversal.to_string();
            let pages = TraversalPages::new(&store, &local, &traversal, ["sms"]).await;
            pages
                .keep("sms", &UpstreamPage::Number(1), Arc::clone(&page))
                .await;
            assert!(
                local.pages.weighted_size() <= LOCAL_CONVERSATIONS,
                "{} conversations kept after {traversal}",
                local.pages.weighted_size()
            );
            assert!(
                pages
                    .recall("sms", &UpstreamPage::Number(1))
                    .await
                    .is_some(),
                "traversal {traversal} lost the page it just kept"
            );
        }
        assert!(local.pages.weighted_size() > LOCAL_CONVERSATIONS / 2);
    }
}
