//! The merged inbox: one page of conversations over many connections, assembled the one way the
//! gateway serves it (and the property tests check it).
//!
//! Each connection is a lane. A vendor whose list is sorted by activity is merged page by page;
//! one whose order is not guaranteed is too while its pages come in order, and once they have
//! not, is read its connection's window of upstream pages at a time ([`SortWindow`],
//! [`UNSORTED_CHUNK_PAGES`] by default) and sorted by the engine. A gateway-applied
//! `updated_since` ends a sorted lane at its first older item. A page fails only when every
//! connection failed and none gave anything.

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::capabilities::{Capabilities, PagingStyle};
use crate::error::{Error, ErrorKind};
use crate::lanes::ConversationLane;
use crate::merge::{
    KeptPages, Lane, LaneFailure, MergeOutput, MergeRequest, MergeState, merge_page,
};
use crate::model::Conversation;
use crate::provider::{ConversationFilter, Provider};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A vendor that does not say its list is sorted by activity, once its list has been seen out of
/// order, is read this many upstream pages at a time and sorted by the gateway, unless its
/// connection sets another window ([`SortWindow`]): the inbox order is exact within that window.
pub const UNSORTED_CHUNK_PAGES: u32 = 10;

/// How the inbox reads a list whose order its vendor does not document: as a sorted list, one
/// upstream page at a time, while every page read has come newest first, and `pages` at a time,
/// sorted together, once one has not.
///
/// A list that is sorted costs one vendor call per first page, not a window's worth, and keeps
/// every guarantee of a sorted one (exact order; under change, nothing repeated). A list that is
/// not is found out on the first page read of it that breaks the order (a page of 100
/// conversations in any other order is all but certain to), and from the next chunk on, that
/// connection's lanes read the window, each merged on its own; the page found out of order is
/// merged from its top, so nothing is lost (see [`crate::merge::Lane::sorted`]). A list whose
/// every page came newest first but whose pages overlapped would not be found out, and would
/// lose what a later page held above where the lane stood, as a sorted vendor's would; no vendor
/// is known to page so. What is seen is kept in memory: a restarted replica looks again.
#[derive(Debug)]
pub struct SortWindow {
    pages: u32,
    out_of_order: AtomicBool,
}

impl SortWindow {
    /// A window of `pages` upstream pages (at least one), used once the list is seen out of
    /// order.
    pub fn new(pages: u32) -> SortWindow {
        SortWindow {
            pages: pages.max(1),
            out_of_order: AtomicBool::new(false),
        }
    }

    /// How a new chunk is read now: `None`, one page merged as a sorted list's; `Some(pages)`,
    /// the window, sorted by the engine.
    pub fn pages(&self) -> Option<u32> {
        self.out_of_order
            .load(Ordering::Relaxed)
            .then_some(self.pages)
    }

    /// The window a list seen out of order is read in.
    pub fn configured(&self) -> u32 {
        self.pages
    }

    /// Records that the list came out of order; `true` the first time.
    pub fn saw_out_of_order(&self) -> bool {
        !self.out_of_order.swap(true, Ordering::Relaxed)
    }
}

impl Default for SortWindow {
    fn default() -> SortWindow {
        SortWindow::new(UNSORTED_CHUNK_PAGES)
    }
}

/// One page of the merged inbox to assemble.
#[derive(Debug)]
pub struct InboxRequest<'a> {
    /// The connections to merge (already narrowed to the caller's and the query's).
    pub connections: Vec<Arc<dyn Provider>>,
    /// The filters, in the connections' native ids; the gateway applies them all again.
    pub filter: &'a ConversationFilter,
    /// The state from the cursor; `None` starts a traversal.
    pub state: Option<MergeState>,
    /// How many conversations the page holds at most.
    pub limit: usize,
    /// Attach each conversation's vendor JSON.
    pub include_raw: bool,
    /// Upstream reads one connection may make for the page before it stops short.
    pub max_calls_per_lane: u32,
    /// When a connection still waiting on its vendor is given up for this page.
    pub deadline: Option<Instant>,
    /// Where the traversal keeps the upstream pages it reached for its next pages.
    pub kept: Option<&'a dyn KeptPages<Conversation>>,
}

/// Every connection failed and none gave a conversation: the page is this error. The merge's
/// output is kept for whoever wants to look at the lanes.
#[derive(Debug)]
pub struct AllConnectionsFailed {
    /// What the caller hears: the one connection's error, or for several their common error
    /// (see `every_lane_failed`).
    pub error: Error,
    /// What the merge returned.
    pub output: MergeOutput<Conversation>,
}

/// Where `updated_since` stops a connection's lane when its vendor does not apply it: at the
/// first older item of a list sorted by activity; nowhere in one that is not (it is read to its
/// end and filtered).
fn stop_before(
    capabilities: &Capabilities,
    updated_since: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    if capabilities.native_filters.updated_since || !capabilities.sorted_by_activity {
        None
    } else {
        updated_since
    }
}

/// Assembles one page of the merged inbox: builds a lane per connection, merges them newest
/// first, and applies the all-connections-failed rule.
pub async fn inbox_page(
    request: InboxRequest<'_>,
) -> Result<MergeOutput<Conversation>, AllConnectionsFailed> {
    let InboxRequest {
        connections,
        filter,
        state,
        limit,
        include_raw,
        max_calls_per_lane,
        deadline,
        kept,
    } = request;
    let sources: Vec<(ConversationLane, Option<DateTime<Utc>>)> = connections
        .into_iter()
        .map(|provider| {
            let stop_before = stop_before(&provider.info().capabilities, filter.updated_since);
            let source = ConversationLane {
                provider,
                filter: filter.clone(),
                include_raw,
            };
            (source, stop_before)
        })
        .collect();
    let lanes = sources
        .iter()
        .map(|(source, stop_before)| {
            let capabilities = &source.provider.info().capabilities;
            Lane {
                source,
                page_size: capabilities.max_page_size,
                // A page 1 of 50 over 64 connections read ChatbotX's lists 100 deep: twice what
                // any lane can give it, and a fifth of all the vendor JSON the page parsed.
                any_size: capabilities.paging == PagingStyle::Cursor
                    && capabilities.sorted_by_activity
                    && filter.applied_by(&capabilities.native_filters),
                stop_before: *stop_before,
                sorted: capabilities.sorted_by_activity,
            }
        })
        .collect();
    let matches = |c: &Conversation| filter.matches(c);
    let output = merge_page(MergeRequest {
        lanes,
        state,
        limit,
        filter: &matches,
        max_calls_per_lane,
        deadline,
        kept,
    })
    .await;
    if output.lanes == 0 || output.failures.len() < output.lanes || !output.items.is_empty() {
        return Ok(output);
    }
    let error = every_lane_failed(&output.failures);
    Err(AllConnectionsFailed { error, output })
}

/// The error of a page none of whose connections answered: one connection's own error; for
/// several, their common kind (all out of quota: `503 upstream_rate_limited`; the store down:
/// `503 store_unavailable`), else `502 upstream_unavailable`, with the soonest `Retry-After` any
/// of them gave.
fn every_lane_failed(failures: &[LaneFailure]) -> Error {
    if let [one] = failures {
        return one.error.duplicate();
    }
    let first = failures.first().map(|f| f.error.kind());
    let kind = match first {
        Some(kind) if failures.iter().all(|f| f.error.kind() == kind) => kind,
        _ => ErrorKind::UpstreamUnavailable,
    };
    let message = match kind {
        ErrorKind::RateLimited => "every connection's vendor quota is used up; retry later",
        ErrorKind::StoreUnavailable => "the gateway's store did not answer; retry later",
        ErrorKind::UpstreamTimeout => "no connection answered in time; retry later",
        _ => "every connection failed to answer; retry later",
    };
    let error = Error::new(kind, message);
    match failures.iter().filter_map(|f| f.error.retry_after()).min() {
        Some(soonest) => error.with_retry_after(soonest),
        None => error,
    }
}
