//! In-memory vendors for the merge engine's property tests, and a gateway page made the way
//! `switchboard-server`'s `list_conversations` makes it: cursor decoded, every connection behind
//! its capability check, the page assembled by `switchboard_core::inbox::inbox_page` (the
//! server's own code path), the next state signed into a cursor.
//!
//! Every vendor call is logged (connection, upstream page, ids served, next page), so a test can
//! check what the engine fetched and when. A world made with [`World::with_kept_pages`] keeps the
//! upstream pages each traversal reached, as the server keeps them in its store, and logs what
//! each page recalled from them.
#![allow(dead_code)]

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use switchboard_core::cursor::{Binding, CursorCodec};
use switchboard_core::inbox::{InboxRequest, inbox_page};
use switchboard_core::merge::{KeptPage, KeptPages, MergeOutput, MergeState, Sortable};
use switchboard_core::{
    Agent, Assignment, Capabilities, Channel, Checked, Conversation, ConversationFilter, Error,
    ErrorKind, ListQuery, Message, MessageQuery, Mode, NativeFilters, NewMessage, Operation, Page,
    PagingStyle, Provider, ProviderInfo, ProviderKind, Result, Status, UpstreamPage,
};

/// The kind of every in-memory vendor.
pub mod strategies;
mod vendor;

pub use vendor::*;

const KIND: ProviderKind = ProviderKind::new("memory");

/// Every generated time is an offset from this instant.
pub const BASE_SECS: i64 = 1_700_000_000;

/// A time `nanos` after the base instant.
pub fn at(nanos: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(BASE_SECS, 0).unwrap_or_default() + TimeDelta::nanoseconds(nanos)
}

/// How a vendor pages its conversation list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paging {
    /// `UpstreamPage::Number`; `next` only when more items exist.
    Number,
    /// `UpstreamPage::Number`; `next` whenever the page is full, so a list whose length is a
    /// multiple of the page size ends with an empty page (as many page-number APIs do).
    NumberTrailingEmpty,
    /// `UpstreamPage::Cursor` holding the last (time, id) served: the next page is what sorts
    /// strictly below it (a keyset cursor).
    Keyset,
}

/// One generated conversation.
#[derive(Debug, Clone)]
pub struct ConvSpec {
    /// Activity time, in nanoseconds after [`BASE_SECS`].
    pub at_nanos: i64,
    /// Status (filterable).
    pub status: Status,
    /// Mode (filtered by the gateway only).
    pub mode: Option<Mode>,
    /// Channel (filtered by the gateway only).
    pub channel: Channel,
}

/// One generated connection.
#[derive(Debug, Clone)]
pub struct VendorSpec {
    /// How it pages.
    pub paging: Paging,
    /// Its upstream page size (constant over a traversal).
    pub page_size: u32,
    /// Whether it applies the status filter itself.
    pub native_status: bool,
    /// Whether it applies `updated_since` itself (otherwise the gateway stops the scan).
    pub native_updated_since: bool,
    /// Whether it leaves its list's order undocumented (as Octopush does), though it lists
    /// newest first: the gateway then reads it as a sorted list only while it checks out.
    pub undocumented_order: bool,
    /// Its conversations.
    pub conversations: Vec<ConvSpec>,
    /// Fetch `i` fails when `failures[i % len]` is true; empty: never fails.
    pub failures: Vec<bool>,
    /// With a seed, a fetch first changes the vendor's data now and then (activity moves a
    /// conversation to the top, or a new one appears), as live traffic would.
    pub churn_seed: Option<u64>,
}

/// One vendor call as the test saw it.
/// A page recalled from what its traversal kept.
#[derive(Debug, Clone)]
pub struct Recall {
    /// The connection.
    pub connection: String,
    /// The upstream page.
    pub page: UpstreamPage,
    /// The ids of its items, in the order they were read.
    pub ids: Vec<String>,
    /// The vendor's next page.
    pub next: Option<UpstreamPage>,
}

/// A kept page's key: traversal, connection and upstream page.
type KeptKey = (u64, String, String);

/// What the traversals of a world kept, keyed by traversal, connection and upstream page.
#[derive(Debug, Default)]
struct KeptMemory {
    pages: Mutex<HashMap<KeptKey, Arc<KeptPage<Conversation>>>>,
    recalls: Mutex<Vec<Recall>>,
}

/// One traversal's view of [`KeptMemory`].
#[derive(Debug)]
struct KeptFor<'a> {
    memory: &'a KeptMemory,
    traversal: u64,
}

#[async_trait]
impl KeptPages<Conversation> for KeptFor<'_> {
    async fn recall(
        &self,
        connection: &str,
        page: &UpstreamPage,
    ) -> Option<Arc<KeptPage<Conversation>>> {
        let key = (self.traversal, connection.to_owned(), format!("{page:?}"));
        let kept = lock(&self.memory.pages).get(&key).cloned()?;
        lock(&self.memory.recalls).push(Recall {
            connection: connection.to_owned(),
            page: page.clone(),
            ids: kept.items.iter().map(|c| c.id.clone()).collect(),
            next: kept.next.clone(),
        });
        Some(kept)
    }

    async fn keep(&self, connection: &str, page: &UpstreamPage, read: Arc<KeptPage<Conversation>>) {
        let key = (self.traversal, connection.to_owned(), format!("{page:?}"));
        lock(&self.memory.pages).insert(key, read);
    }

    async fn forget(&self, connection: &str, page: &UpstreamPage) {
        let key = (self.traversal, connection.to_owned(), format!("{page:?}"));
        lock(&self.memory.pages).remove(&key);
    }
}

/// What a cursor of the world carries: the merge state and its traversal.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct WorldCursor {
    #[serde(flatten)]
    merge: MergeState,
    #[serde(rename = "t")]
    traversal: u64,
}

/// Several vendors behind one gateway, with one fetch log.
#[derive(Debug)]
pub struct World {
    /// The connections, named `c0`, `c1`, ...
    pub vendors: Vec<Arc<Vendor>>,
    /// The same connections behind their capability check, as the server's registry holds them.
    checked: Vec<Arc<dyn Provider>>,
    /// Every vendor call, in order.
    pub log: Arc<Mutex<Vec<Fetch>>>,
    codec: CursorCodec,
    /// The upstream pages traversals reached, when the world keeps them.
    kept: Option<KeptMemory>,
    traversals: AtomicU64,
}

/// One gateway page and what it took.
#[derive(Debug)]
pub struct GatewayPage {
    /// The state the cursor carried in (`None` on the first page).
    pub state_in: Option<MergeState>,
    /// What the engine returned.
    pub out: MergeOutput<Conversation>,
    /// The error the caller got instead of the page, when every connection failed.
    pub error: Option<Error>,
    /// The signed cursor for the next page.
    pub cursor: Option<String>,
    /// The vendor calls this page made, in order.
    pub fetches: Vec<Fetch>,
    /// The upstream pages this page recalled from what its traversal kept.
    pub recalls: Vec<Recall>,
}

impl World {
    /// A world of one vendor per spec.
    pub fn new(specs: &[VendorSpec]) -> World {
        let log = Arc::new(Mutex::new(Vec::new()));
        let clock = Arc::new(Mutex::new(0));
        let vendors: Vec<Arc<Vendor>> = specs
            .iter()
            .enumerate()
            .map(|(i, s)| Arc::new(Vendor::new(&format!("c{i}"), s, log.clone(), clock.clone())))
            .collect();
        World {
            checked: vendors
                .iter()
                .map(|v| Checked::wrap(v.clone() as Arc<dyn Provider>))
                .collect(),
            vendors,
            log,
            codec: CursorCodec::new(b"merge-props-secret"),
            kept: None,
            traversals: AtomicU64::new(0),
        }
    }

    /// A world that keeps the upstream pages each traversal reached for its next pages.
    pub fn with_kept_pages(specs: &[VendorSpec]) -> World {
        World {
            kept: Some(KeptMemory::default()),
            ..World::new(specs)
        }
    }

    /// A world that keeps pages when `kept`.
    pub fn keeping(specs: &[VendorSpec], kept: bool) -> World {
        if kept {
            World::with_kept_pages(specs)
        } else {
            World::new(specs)
        }
    }

    /// Every conversation that matches `filter` now, in merge order.
    pub fn expected(&self, filter: &ConversationFilter) -> Vec<Conversation> {
        let mut all: Vec<Conversation> = self
            .vendors
            .iter()
            .flat_map(|v| v.conversations())
            .filter(|c| filter.matches(c))
            .collect();
        all.sort_by_key(|c| std::cmp::Reverse(c.sort_key()));
        all
    }

    /// One `GET /v1/conversations` page, as the server makes it.
    pub async fn page(
        &self,
        filter: &ConversationFilter,
        cursor: Option<&str>,
        limit: usize,
        max_calls_per_lane: u32,
    ) -> std::result::Result<GatewayPage, String> {
        let binding = Binding::new("merge-props", "conversations", filter);
        let cursor_in: Option<WorldCursor> = cursor
            .map(|c| self.codec.decode(&binding, c))
            .transpose()
            .map_err(|e| format!("the engine's own cursor does not decode: {e:?}"))?;
        let (state_in, traversal) = match cursor_in {
            Some(c) => (Some(c.merge), c.traversal),
            None => (None, self.traversals.fetch_add(1, Ordering::Relaxed)),
        };
        let kept = self
            .kept
            .as_ref()
            .map(|memory| KeptFor { memory, traversal });
        if let Some(memory) = &self.kept {
            lock(&memory.recalls).clear();
        }
        let log_start = lock(&self.log).len();
        let (out, error) = match inbox_page(InboxRequest {
            connections: self
                .checked
                .iter()
                .map(|p| Arc::clone(p) as Arc<dyn Provider>)
                .collect(),
            filter,
            state: state_in.clone(),
            limit,
            include_raw: false,
            max_calls_per_lane,
            deadline: None,
            kept: kept.as_ref().map(|k| k as &dyn KeptPages<Conversation>),
        })
        .await
        {
            Ok(out) => (out, None),
            Err(failed) => (failed.output, Some(failed.error)),
        };
        let fetches = lock(&self.log)[log_start..].to_vec();
        let recalls = self
            .kept
            .as_ref()
            .map(|memory| lock(&memory.recalls).clone())
            .unwrap_or_default();
        let cursor = match &out.next {
            None => None,
            Some(state) => {
                let encoded = self.codec.encode(
                    &binding,
                    &WorldCursor {
                        merge: state.clone(),
                        traversal,
                    },
                );
                let decoded: WorldCursor = self
                    .codec
                    .decode(&binding, &encoded)
                    .map_err(|e| format!("the next state does not round-trip: {e:?}"))?;
                if &decoded.merge != state || decoded.traversal != traversal {
                    return Err(format!(
                        "the next state changed through the cursor: {state:?} -> {decoded:?}"
                    ));
                }
                Some(encoded)
            }
        };
        Ok(GatewayPage {
            state_in,
            out,
            error,
            cursor,
            fetches,
            recalls,
        })
    }
}
