//! The upstream pages an inbox traversal reached, kept in the store for its next pages.
//!
//! A traversal is named by a random id minted on its first page and carried in its signed cursor,
//! so two traversals never share a page. Each upstream page the traversal reads (as normalized
//! conversations, not the vendor's answer) is kept under
//! `traversal:{id}:{connection}:{generation}:{position}` for `[server] traversal_ttl_secs`, and
//! forgotten once the traversal has moved past it; the next page of the traversal starts from it
//! instead of asking the vendor again, on any replica (the store is shared). The connection's write generation is part of the key: after a write
//! through the gateway, its writer's next page reads the vendor again. A first page is always
//! read from the vendors.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use switchboard_core::merge::{KeptPage, KeptPages, MergeState};
use switchboard_core::{Conversation, Error, UpstreamPage};
use switchboard_upstream::Store;

/// The state an inbox cursor carries: the merge's, and the traversal it belongs to.
#[derive(Debug, Serialize, Deserialize)]
pub struct InboxCursor {
    /// Where each connection's lane stands.
    #[serde(flatten)]
    pub merge: MergeState,
    /// The traversal's id (absent in cursors made before traversals were named: the next page
    /// starts a name).
    #[serde(rename = "t", default, skip_serializing_if = "Option::is_none")]
    pub traversal: Option<String>,
}

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

/// One traversal's kept pages, for one gateway page.
#[derive(Debug)]
pub struct TraversalPages<'a> {
    store: &'a dyn Store,
    traversal: &'a str,
    ttl: Duration,
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
        traversal: &'a str,
        ttl: Duration,
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
            traversal,
            ttl,
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

    async fn put(&self, key: &str, page: &KeptPage<&Conversation>, at: u64) {
        let Ok(json) = serde_json::to_vec(page) else {
            return;
        };
        let mut value = Vec::with_capacity(8 + json.len());
        value.extend_from_slice(&at.to_le_bytes());
        value.extend_from_slice(&json);
        if let Err(e) = self.store.put_page(key, Bytes::from(value), self.ttl).await {
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
    ) -> Option<KeptPage<Conversation>> {
        let key = self.key(connection, page)?;
        let value = match self.store.get(&key).await {
            Ok(value) => value?,
            Err(e) => {
                tracing::debug!(connection, error = %e, "could not recall a traversal's upstream page");
                return None;
            }
        };
        let at = u64::from_le_bytes(value.get(..8)?.try_into().ok()?);
        let kept: KeptPage<Conversation> = serde_json::from_slice(value.get(8..)?).ok()?;
        // A lane can stay on one upstream page for many gateway pages (its conversations are
        // older than the others'): past half its time, the page is kept for another TTL.
        let now = unix_secs();
        if now.saturating_sub(at) * 2 >= self.ttl.as_secs() {
            let again = KeptPage {
                items: kept.items.iter().collect(),
                next: kept.next.clone(),
            };
            self.put(&key, &again, now).await;
        }
        Some(kept)
    }

    async fn keep(&self, connection: &str, page: &UpstreamPage, read: KeptPage<&Conversation>) {
        if let Some(key) = self.key(connection, page) {
            self.put(&key, &read, unix_secs()).await;
        }
    }

    async fn forget(&self, connection: &str, page: &UpstreamPage) {
        if let Some(key) = self.key(connection, page)
            && let Err(e) = self.store.delete_page(&key).await
        {
            tracing::debug!(connection, error = %e, "could not forget a traversal's upstream page; it expires with its TTL");
        }
    }
}
