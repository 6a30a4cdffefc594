//! What an inbox cursor carries: per connection ("lane"), the upstream page holding the next
//! item, how many of its items are consumed, the page size, whether the lane is exhausted, the
//! last key it emitted and its consecutive failures; and the traversal the cursor belongs to
//! (its kept upstream pages). Field names are one letter: the cursor travels in every URL.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::provider::UpstreamPage;

/// The merge order key: (time, id), compared descending.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SortKey {
    /// Microseconds since the Unix epoch.
    #[serde(rename = "t")]
    pub micros: i64,
    /// The item's gateway id (tie-breaker).
    #[serde(rename = "i")]
    pub id: String,
}

impl Ord for SortKey {
    fn cmp(&self, other: &SortKey) -> Ordering {
        self.micros
            .cmp(&other.micros)
            .then_with(|| id_cmp(&self.id, &other.id))
    }
}

impl PartialOrd for SortKey {
    fn partial_cmp(&self, other: &SortKey) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

fn is_decimal(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Compares two gateway ids the way vendors order ids that tie on time: numerically when both
/// native ids are decimal numbers on one connection (so `c:9` < `c:10`), else as text.
pub fn id_cmp(a: &str, b: &str) -> Ordering {
    if let (Some((ca, na)), Some((cb, nb))) = (a.split_once(':'), b.split_once(':'))
        && ca == cb
        && is_decimal(na)
        && is_decimal(nb)
    {
        let (na, nb) = (na.trim_start_matches('0'), nb.trim_start_matches('0'));
        return na
            .len()
            .cmp(&nb.len())
            .then_with(|| na.cmp(nb))
            .then_with(|| a.cmp(b));
    }
    a.cmp(b)
}

/// One lane's position, as stored in the cursor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaneState {
    /// The connection id.
    #[serde(rename = "c")]
    pub connection: String,
    /// The upstream page holding the next unconsumed item.
    #[serde(rename = "p")]
    pub page: UpstreamPage,
    /// Items of that page already consumed (emitted or filtered out), in sorted order.
    #[serde(rename = "n")]
    pub consumed: u32,
    /// Upstream page size, fixed for the whole traversal so page numbers stay stable.
    #[serde(rename = "s")]
    pub page_size: u32,
    /// Nothing more to read.
    #[serde(rename = "x", default)]
    pub exhausted: bool,
    /// The last key this lane emitted; anything at or above it is skipped.
    #[serde(rename = "k", default)]
    pub last: Option<SortKey>,
    /// Consecutive failed pages; the lane is given up after [`crate::merge::MAX_LANE_FAILURES`].
    #[serde(rename = "f", default)]
    pub failures: u8,
    /// For a lane whose pages are not sorted across each other: the upstream pages its current
    /// chunk reads (and the engine sorts as one), fixed until the chunk is used up. Absent: what
    /// the lane's source reads now (a sorted lane's one page).
    #[serde(rename = "w", default, skip_serializing_if = "Option::is_none")]
    pub window: Option<u32>,
}

/// The merge state of a traversal, carried in the cursor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeState {
    /// One entry per lane.
    #[serde(rename = "l")]
    pub lanes: Vec<LaneState>,
}

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
