//! The merged inbox: one page of conversations over many connections, assembled the one way the
//! gateway serves it (and the property tests check it).
//!
//! Each connection is a lane. A vendor whose list is sorted by activity is merged page by page;
//! one whose order is not guaranteed is read its connection's window of upstream pages at a time
//! ([`UNSORTED_CHUNK_PAGES`] by default) and sorted by the engine. A gateway-applied
//! `updated_since` ends a sorted lane at its first older item. A page fails only when every
//! connection failed and none gave anything.

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::capabilities::PagingStyle;
use crate::error::{Error, ErrorKind};
use crate::lanes::ConversationLane;
use crate::merge::{
    KeptPages, Lane, LaneFailure, MergeOutput, MergeRequest, MergeState, merge_page,
};
use crate::model::Conversation;
use crate::provider::{ConversationFilter, Provider, ProviderInfo};
use std::sync::Arc;

/// A vendor whose list is not sorted by activity is read this many upstream pages at a time and
/// sorted by the gateway, unless its connection sets another window
/// ([`ProviderInfo::sort_window_pages`]): the inbox order is exact within that window.
pub const UNSORTED_CHUNK_PAGES: u32 = 10;

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

/// How a connection's lane is read: upstream pages per lane page, and where `updated_since` stops
/// it when the vendor does not apply it.
fn lane_shape(
    info: &ProviderInfo,
    updated_since: Option<DateTime<Utc>>,
) -> (u32, Option<DateTime<Utc>>) {
    let capabilities = &info.capabilities;
    let sorted = capabilities.sorted_by_activity;
    let chunk_pages = if sorted {
        1
    } else {
        info.sort_window_pages.max(1)
    };
    let stop_before = if capabilities.native_filters.updated_since || !sorted {
        None
    } else {
        updated_since
    };
    (chunk_pages, stop_before)
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
            let (chunk_pages, stop_before) = lane_shape(provider.info(), filter.updated_since);
            let source = ConversationLane {
                provider,
                filter: filter.clone(),
                chunk_pages,
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
