//! The merge engine: one list, newest first, over many upstream lists ("lanes"), paged with a
//! stateless cursor.
//!
//! Each lane is one connection's list, sorted newest first. A page re-reads each lane's current
//! upstream page, skips what earlier pages consumed, and merges the lanes' heads by
//! (time desc, id desc). Reading is lazy: a lane's next upstream page is fetched only when its
//! head is needed, so a page costs at most one upstream call per lane that needs a refill (more
//! only when gateway-side filtering discards whole upstream pages, bounded by
//! [`MergeRequest::max_calls_per_lane`]), and memory is bounded by one upstream page per lane.
//!
//! Under change, a lane never repeats an item: anything at or above the lane's last emitted key
//! is skipped. A lane that fails keeps its position, so the next page retries it.
//!
//! With [`KeptPages`], each upstream page a traversal reads is kept for its next pages, which
//! start from it instead of reading it again: each upstream page is read once per traversal,
//! however slowly the caller pages. A kept page is the whole upstream page as read, and is used
//! exactly as a fresh read of it would be (what earlier pages consumed is skipped by key), so a
//! cursor used twice (a retried request) gets the same page both times.

use std::cmp::Ordering;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::future::join_all;
use serde::{Deserialize, Serialize};

use tokio::time::Instant;

pub use crate::cursor::shape::{LaneState, MergeState, SortKey, id_cmp};
use crate::error::{Error, ErrorKind};
use crate::model::{Conversation, Message};
use crate::provider::{Page, UpstreamPage};

/// Something that can be merged newest first.
pub trait Sortable {
    /// The sort time.
    fn sort_time(&self) -> DateTime<Utc>;
    /// The tie-breaking id.
    fn sort_id(&self) -> &str;
    /// The full key.
    fn sort_key(&self) -> SortKey {
        SortKey {
            micros: self.sort_time().timestamp_micros(),
            id: self.sort_id().to_owned(),
        }
    }
}

impl Sortable for Conversation {
    fn sort_time(&self) -> DateTime<Utc> {
        self.last_activity_at
    }
    fn sort_id(&self) -> &str {
        &self.id
    }
}

impl Sortable for Message {
    fn sort_time(&self) -> DateTime<Utc> {
        self.created_at
    }
    fn sort_id(&self) -> &str {
        &self.id
    }
}

fn key_cmp<T: Sortable>(a: &T, b: &T) -> Ordering {
    // At the key's precision (microseconds), as `below` and the cursor compare: ordering by the
    // full time made an item a few nanoseconds older but with a greater id come after one it
    // ties with in `below`, which then skipped it as already emitted.
    a.sort_time()
        .timestamp_micros()
        .cmp(&b.sort_time().timestamp_micros())
        .then_with(|| id_cmp(a.sort_id(), b.sort_id()))
}

fn below<T: Sortable>(item: &T, last: &SortKey) -> bool {
    let micros = item.sort_time().timestamp_micros();
    micros < last.micros
        || (micros == last.micros && id_cmp(item.sort_id(), &last.id) == Ordering::Less)
}

/// How many consecutive pages a failing lane is retried before the traversal gives it up.
pub const MAX_LANE_FAILURES: u8 = 3;

/// Where one lane's items come from.
#[async_trait]
pub trait LaneSource<T>: Send + Sync {
    /// The connection id.
    fn connection(&self) -> &str;
    /// Fetches the chunk of `window` upstream pages from `page` on, as one page (the next one
    /// after it, its `next`); a sorted source has chunks of one page.
    async fn fetch(
        &self,
        page: &UpstreamPage,
        page_size: u32,
        window: u32,
    ) -> Result<Page<T>, Error>;
    /// For a lane whose vendor does not say its list is sorted: how a new chunk is read now.
    /// `None`, one upstream page merged as a sorted list's (while the list has come in order);
    /// `Some(n)`, `n` pages the engine sorts and merges on their own.
    fn window(&self) -> Option<u32> {
        None
    }
    /// Told when a page of such a lane, read as a sorted list's, came out of order as the vendor
    /// listed it.
    fn out_of_order(&self) {}
}

/// One upstream page as a traversal read it, kept for its next pages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptPage<T> {
    /// Its items.
    #[serde(rename = "i")]
    pub items: Vec<T>,
    /// The vendor's page after it.
    #[serde(rename = "n")]
    pub next: Option<UpstreamPage>,
}

/// Upstream pages one traversal has read, kept for its next gateway pages (without them, the
/// stateless cursor makes every page read each lane's current upstream page again).
///
/// An implementation keys them by traversal, connection and upstream position (and whatever
/// else makes a kept page stale, such as a write to the connection); failures are its own to
/// log: a page not recalled is read from the vendor.
#[async_trait]
pub trait KeptPages<T>: Send + Sync + std::fmt::Debug {
    /// `page` of `connection`, when this traversal kept it.
    async fn recall(&self, connection: &str, page: &UpstreamPage) -> Option<Arc<KeptPage<T>>>;
    /// Keeps `page` of `connection`, just read from the vendor, for the traversal's next pages
    /// (shared with the lane reading it: keeping a page copies none of it).
    async fn keep(&self, connection: &str, page: &UpstreamPage, read: Arc<KeptPage<T>>);
    /// Forgets `page` of `connection`: the traversal has moved past it.
    async fn forget(&self, connection: &str, page: &UpstreamPage);
}

/// One lane of a merge.
pub struct Lane<'a, T> {
    /// Where its items come from.
    pub source: &'a dyn LaneSource<T>,
    /// Upstream page size for a new traversal.
    pub page_size: u32,
    /// Whether the source's pages may be read at any size (a cursor, not a page number, says
    /// where each starts, and the vendor applies every filter). A new traversal's first read then
    /// asks for no more than the page's `limit`, which is all a first page can take from one
    /// lane; the reads after it ask for `page_size`. (The read ends where the page does, so
    /// the vendor's order must be no finer than the engine's microsecond key, or it could end
    /// inside a run of items the engine takes as tied.)
    pub any_size: bool,
    /// Items older than this end the lane (a gateway-applied `updated_since` / `since`).
    pub stop_before: Option<DateTime<Utc>>,
    /// Whether the source's vendor says its pages follow each other in key order. When not,
    /// each chunk is read as [`LaneSource::window`] says when the lane reaches it, and that is
    /// kept in the cursor until the chunk is used up: one page merged as a sorted list's and
    /// checked as read ([`LaneSource::out_of_order`]), or a window of pages the engine sorts and
    /// merges on its own (the lane's order, and its skipping of what it already emitted, start
    /// again with each one).
    pub sorted: bool,
}

impl<T> Lane<'_, T> {
    /// How a new chunk of the lane is read now ([`LaneState::window`]): one page for a sorted
    /// vendor's lane, as the source says for any other.
    fn chunk_window(&self) -> Option<u32> {
        if self.sorted {
            None
        } else {
            self.source.window()
        }
    }
}

impl<T> std::fmt::Debug for Lane<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lane")
            .field("connection", &self.source.connection())
            .field("page_size", &self.page_size)
            .finish()
    }
}

/// One page's worth of merging.
#[allow(missing_debug_implementations)] // holds the filter closure
pub struct MergeRequest<'a, T> {
    /// The lanes to merge.
    pub lanes: Vec<Lane<'a, T>>,
    /// The state from the cursor; `None` starts a traversal.
    pub state: Option<MergeState>,
    /// How many items the page holds at most.
    pub limit: usize,
    /// Gateway-side filter; items failing it are consumed silently.
    pub filter: &'a (dyn Fn(&T) -> bool + Sync),
    /// Upstream calls one lane may make for one page before the page stops short.
    pub max_calls_per_lane: u32,
    /// When the page must be served: a lane still waiting on its vendor then fails this page
    /// with `upstream_timeout` (keeping its position, so the next page retries it) and the page
    /// is served from the others.
    pub deadline: Option<Instant>,
    /// Where the traversal keeps the upstream pages it reached; `None` reads every lane's
    /// current page from its vendor again. A first page (`state: None`) never recalls one.
    pub kept: Option<&'a dyn KeptPages<T>>,
}

/// A lane that failed this page.
#[derive(Debug)]
pub struct LaneFailure {
    /// The connection id.
    pub connection: String,
    /// What went wrong.
    pub error: Error,
    /// Whether the traversal gave the lane up (it will not be retried).
    pub given_up: bool,
}

/// The result of one page.
#[derive(Debug)]
pub struct MergeOutput<T> {
    /// The page's items, newest first.
    pub items: Vec<T>,
    /// The state for the next page; `None` when the traversal is complete.
    pub next: Option<MergeState>,
    /// Lanes that failed.
    pub failures: Vec<LaneFailure>,
    /// How many lanes the traversal has (exhausted ones included).
    pub lanes: usize,
    /// Upstream calls made.
    pub upstream_calls: u32,
}

struct Run<'a, T> {
    lane: Lane<'a, T>,
    deadline: Option<Instant>,
    kept: Option<&'a dyn KeptPages<T>>,
    /// The lane's first load of this page may come from `kept`.
    may_recall: bool,
    /// The pages this page recalled or kept (forgotten at its end when the lane moved past).
    touched: Vec<UpstreamPage>,
    state: LaneState,
    buf: Buffer<T>,
    next: Option<UpstreamPage>,
    loaded: bool,
    calls: u32,
    stalled: bool,
    error: Option<Error>,
}

/// The upstream page a lane is reading: its items as read (shared with what the traversal
/// kept), taken in merge order from `pos`.
struct Buffer<T> {
    page: Option<Arc<KeptPage<T>>>,
    /// Indices into the page's items, newest first.
    order: Vec<usize>,
    pos: usize,
}

impl<T: Sortable> Buffer<T> {
    fn empty() -> Buffer<T> {
        Buffer {
            page: None,
            order: Vec::new(),
            pos: 0,
        }
    }

    fn new(page: Arc<KeptPage<T>>) -> Buffer<T> {
        let items = &page.items;
        let mut order: Vec<usize> = (0..items.len()).collect();
        order.sort_by(|&a, &b| key_cmp(&items[b], &items[a]));
        Buffer {
            page: Some(page),
            order,
            pos: 0,
        }
    }

    fn item(&self, index: usize) -> Option<&T> {
        self.page.as_ref()?.items.get(index)
    }

    fn front(&self) -> Option<&T> {
        self.item(*self.order.get(self.pos)?)
    }

    /// Moves past the front item.
    fn skip(&mut self) {
        self.pos = (self.pos + 1).min(self.order.len());
    }

    /// Moves past every item.
    fn clear(&mut self) {
        self.pos = self.order.len();
    }

    fn is_empty(&self) -> bool {
        self.pos >= self.order.len()
    }

    fn iter(&self) -> impl Iterator<Item = &T> {
        self.order[self.pos..]
            .iter()
            .filter_map(|&index| self.item(index))
    }
}

impl<T: Sortable + Clone + Send + Sync> Run<'_, T> {
    fn active(&self) -> bool {
        !self.state.exhausted && self.error.is_none()
    }

    fn is_candidate(&self, item: &T, filter: &(dyn Fn(&T) -> bool + Sync)) -> bool {
        filter(item)
            && self
                .state
                .last
                .as_ref()
                .is_none_or(|last| below(item, last))
    }

    fn is_past_stop(&self, item: &T) -> bool {
        self.lane.stop_before.is_some_and(|t| item.sort_time() < t)
    }

    /// Recalls the lane's current upstream page from what the traversal kept, within the page
    /// deadline; `None` when it was not kept (or not in time).
    async fn recall(&mut self) -> Option<Arc<KeptPage<T>>> {
        if !std::mem::take(&mut self.may_recall) {
            return None;
        }
        let kept = self.kept?;
        let recall = kept.recall(self.lane.source.connection(), &self.state.page);
        match self.deadline {
            None => recall.await,
            Some(deadline) => tokio::time::timeout_at(deadline, recall)
                .await
                .ok()
                .flatten(),
        }
    }

    async fn load(&mut self) {
        if let Some(page) = self.recall().await {
            self.touched.push(self.state.page.clone());
            self.fill(page);
            return;
        }
        self.calls += 1;
        let window = self.state.window.unwrap_or(1);
        let fetch = self
            .lane
            .source
            .fetch(&self.state.page, self.state.page_size, window);
        let fetched = match self.deadline {
            None => fetch.await,
            Some(deadline) => tokio::time::timeout_at(deadline, fetch)
                .await
                .unwrap_or_else(|_| {
                    Err(Error::new(
                        ErrorKind::UpstreamTimeout,
                        "the vendor did not answer within the page deadline; the next page retries it",
                    ))
                }),
        };
        match fetched {
            Ok(page) => {
                let page = Arc::new(KeptPage {
                    items: page.items,
                    next: page.next,
                });
                if let Some(kept) = self.kept {
                    kept.keep(
                        self.lane.source.connection(),
                        &self.state.page,
                        Arc::clone(&page),
                    )
                    .await;
                    self.touched.push(self.state.page.clone());
                }
                self.fill(page);
            }
            Err(e) => self.error = Some(e),
        }
    }

    /// Makes `page` (an upstream page, read now or kept) the lane's buffer, in merge order.
    fn fill(&mut self, page: Arc<KeptPage<T>>) {
        if !self.lane.sorted && self.state.window.is_none() {
            self.check_order(&page.items);
        }
        // What earlier pages consumed of this upstream page is skipped again by key (at or
        // above `last`) and by the filter in `ensure_head`, which counts it anew. Skipping
        // `consumed` items by position skipped unread ones whenever the page had shifted up
        // since (a keyset page one of whose emitted items got new activity and left it, or a
        // vendor-filtered item that stopped matching).
        self.state.consumed = 0;
        self.next = page.next.clone();
        self.buf = Buffer::new(page);
        self.loaded = true;
    }

    /// Checks a page of a list of undocumented order, read as a sorted list's, as its vendor
    /// listed it: newest first. One page is one answer, a snapshot, so a sorted list passes
    /// under change too. (Where the page starts against where the lane stood says nothing:
    /// new activity above pushes conversations the lane already emitted down into it.) A page
    /// out of order is told to the source; when none of it is consumed yet, the lane also stops
    /// skipping what is at or above `last` in it, which would otherwise be lost.
    fn check_order(&mut self, items: &[T]) {
        let in_order = items
            .windows(2)
            .all(|pair| pair[0].sort_time() >= pair[1].sort_time());
        if !in_order {
            self.lane.source.out_of_order();
            if self.state.consumed == 0 {
                self.state.last = None;
            }
        }
    }

    /// Forgets the kept pages this page recalled or kept that the lane has moved past.
    async fn forget_passed(&mut self) {
        let Some(kept) = self.kept else { return };
        let current = (self.loaded && !self.state.exhausted).then_some(&self.state.page);
        for page in &self.touched {
            if Some(page) != current {
                kept.forget(self.lane.source.connection(), page).await;
            }
        }
    }

    /// Brings a matching item to the front of the buffer, refilling as needed (within the
    /// per-lane call budget). Returns without a head when the lane ends, fails or stalls.
    async fn ensure_head(&mut self, filter: &(dyn Fn(&T) -> bool + Sync), max_calls: u32) {
        loop {
            if !self.active() {
                return;
            }
            if !self.loaded {
                if self.calls >= max_calls {
                    self.stalled = true;
                    return;
                }
                self.load().await;
                continue;
            }
            while let Some(front) = self.buf.front() {
                if self.is_past_stop(front) {
                    self.buf.clear();
                    self.next = None;
                    self.state.exhausted = true;
                    return;
                }
                if self.is_candidate(front, filter) {
                    return;
                }
                self.buf.skip();
                self.state.consumed += 1;
            }
            self.turn_page();
        }
    }

    /// Moves past a used-up upstream page: to the vendor's next page (fetched when needed), or
    /// to the end of the lane.
    fn turn_page(&mut self) {
        match self.next.take() {
            None => self.state.exhausted = true,
            Some(page) => {
                self.state.page = page;
                self.state.consumed = 0;
                if self.lane.any_size {
                    self.state.page_size = self.lane.page_size;
                }
                self.loaded = false;
                // A new chunk, read as the source says now; a window is merged on its own.
                self.state.window = self.lane.chunk_window();
                if self.state.window.is_some() {
                    self.state.last = None;
                }
            }
        }
    }

    fn head(&self) -> Option<&T> {
        if self.active() {
            self.buf.front()
        } else {
            None
        }
    }

    fn has_more(&self, filter: &(dyn Fn(&T) -> bool + Sync)) -> bool {
        if self.state.exhausted {
            return false;
        }
        if self.error.is_some() || self.stalled || !self.loaded || self.next.is_some() {
            return true;
        }
        self.buf
            .iter()
            .take_while(|item| !self.is_past_stop(item))
            .any(|item| self.is_candidate(item, filter))
    }
}

/// The size of a new traversal's first upstream read from `lane` for a page of `limit`.
fn first_page_size<T>(lane: &Lane<'_, T>, limit: usize) -> u32 {
    if lane.any_size {
        let limit = u32::try_from(limit).unwrap_or(u32::MAX).max(1);
        lane.page_size.min(limit)
    } else {
        lane.page_size
    }
}

/// Produces one page of the merged list.
pub async fn merge_page<T: Sortable + Clone + Send + Sync>(
    req: MergeRequest<'_, T>,
) -> MergeOutput<T> {
    let MergeRequest {
        lanes,
        state,
        limit,
        filter,
        max_calls_per_lane,
        deadline,
        kept,
    } = req;
    let may_recall = state.is_some();
    let mut runs: Vec<Run<'_, T>> = lanes
        .into_iter()
        .map(|lane| {
            let connection = lane.source.connection();
            let lane_state = match &state {
                None => Some(LaneState {
                    connection: connection.to_owned(),
                    page: UpstreamPage::First,
                    consumed: 0,
                    page_size: first_page_size(&lane, limit),
                    exhausted: false,
                    last: None,
                    failures: 0,
                    window: lane.chunk_window(),
                }),
                // A connection the cursor does not know joined mid-traversal: it waits for the
                // next traversal, so no item can be emitted out of place twice.
                Some(s) => s.lanes.iter().find(|l| l.connection == connection).cloned(),
            };
            (lane, lane_state)
        })
        .filter_map(|(lane, lane_state)| {
            lane_state.map(|state| Run {
                lane,
                deadline,
                kept,
                may_recall,
                touched: Vec::new(),
                state,
                buf: Buffer::empty(),
                next: None,
                loaded: false,
                calls: 0,
                stalled: false,
                error: None,
            })
        })
        .collect();

    let lanes_in_traversal = runs.len();
    let mut items = Vec::with_capacity(limit.min(1024));
    if limit > 0 {
        join_all(
            runs.iter_mut()
                .map(|r| r.ensure_head(filter, max_calls_per_lane)),
        )
        .await;
        while items.len() < limit {
            if runs.iter().any(|r| r.active() && r.stalled) {
                break;
            }
            let best = runs
                .iter()
                .enumerate()
                .filter_map(|(i, r)| r.head().map(|h| (i, h)))
                .max_by(|(_, a), (_, b)| key_cmp(*a, *b))
                .map(|(i, _)| i);
            let Some(i) = best else { break };
            let run = &mut runs[i];
            if let Some(item) = run.buf.front().cloned() {
                run.buf.skip();
                run.state.consumed += 1;
                run.state.last = Some(item.sort_key());
                items.push(item);
                // Record the move past a used-up upstream page now, even when this item fills
                // the page: otherwise the next page re-fetched it only to skip all of it.
                if run.buf.is_empty() {
                    run.turn_page();
                }
            }
            if items.len() < limit {
                run.ensure_head(filter, max_calls_per_lane).await;
            }
        }
    }

    join_all(runs.iter_mut().map(Run::forget_passed)).await;

    let mut failures = Vec::new();
    let mut upstream_calls = 0;
    let mut more = false;
    let mut lane_states = Vec::with_capacity(runs.len());
    for mut run in runs {
        upstream_calls += run.calls;
        if let Some(error) = run.error.take() {
            run.state.failures = run.state.failures.saturating_add(1);
            let given_up = run.state.failures >= MAX_LANE_FAILURES;
            if given_up {
                run.state.exhausted = true;
            }
            failures.push(LaneFailure {
                connection: run.state.connection.clone(),
                error,
                given_up,
            });
        } else if run.calls > 0 {
            // Every call this page succeeded. (`loaded` is false when the page ended on an
            // upstream page boundary or a stall, which kept a lane that answered in between
            // counting towards being given up.)
            run.state.failures = 0;
        }
        more |= run.has_more(filter);
        lane_states.push(run.state);
    }
    MergeOutput {
        items,
        next: more.then_some(MergeState { lanes: lane_states }),
        failures,
        lanes: lanes_in_traversal,
        upstream_calls,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;
    use std::sync::atomic::Ordering::SeqCst;

    use super::*;

    /// An item `t`: at second `t / 10`, with the id `c:{t}` (so `71` and `70` tie on time and
    /// go by id, as `id_cmp` orders decimal ids).
    #[derive(Debug, Clone)]
    struct Item(i64, String);

    impl Sortable for Item {
        fn sort_time(&self) -> DateTime<Utc> {
            DateTime::from_timestamp(self.0 / 10, 0).unwrap_or_default()
        }
        fn sort_id(&self) -> &str {
            &self.1
        }
    }

    /// A vendor whose list order is not documented: its list in pages of 3 (page numbers from
    /// 0), read a chunk of `window` pages at a time (0: one page, as a sorted list's), and how
    /// often the engine said they came out of order. Told so, it reads windows of `widen_to`
    /// (0: it goes on as before).
    struct Unsorted {
        list: std::sync::Mutex<Vec<i64>>,
        window: AtomicU32,
        widen_to: u32,
        out_of_order: AtomicU32,
    }

    impl Unsorted {
        fn new(list: &[i64], widen_to: u32) -> Unsorted {
            Unsorted {
                list: std::sync::Mutex::new(list.to_vec()),
                window: AtomicU32::new(0),
                widen_to,
                out_of_order: AtomicU32::new(0),
            }
        }

        fn told_out_of_order(&self) -> u32 {
            self.out_of_order.load(SeqCst)
        }

        /// New activity: `t` joins the list at its top.
        fn touch(&self, t: i64) {
            if let Ok(mut list) = self.list.lock() {
                list.insert(0, t);
            }
        }
    }

    #[async_trait]
    impl LaneSource<Item> for Unsorted {
        fn connection(&self) -> &str {
            "c"
        }
        async fn fetch(
            &self,
            page: &UpstreamPage,
            _: u32,
            window: u32,
        ) -> Result<Page<Item>, Error> {
            let first = match page {
                UpstreamPage::Number(n) => *n as usize,
                _ => 0,
            };
            let list = self.list.lock().map(|l| l.clone()).unwrap_or_default();
            let pages: Vec<&[i64]> = list.chunks(3).collect();
            let end = (first + window as usize).min(pages.len());
            let items = pages[first.min(end)..end]
                .iter()
                .copied()
                .flatten()
                .map(|t| Item(*t, format!("c:{t}")))
                .collect();
            let next = (end < pages.len()).then_some(UpstreamPage::Number(end as u32));
            Ok(Page { items, next })
        }
        fn window(&self) -> Option<u32> {
            Some(self.window.load(SeqCst)).filter(|&w| w > 0)
        }
        fn out_of_order(&self) {
            self.out_of_order.fetch_add(1, SeqCst);
            if self.widen_to > 0 {
                self.window.store(self.widen_to, SeqCst);
            }
        }
    }

    /// Every page of a traversal of `source` alone, `limit` items a page, each page's cursor
    /// passed through `between` (as JSON, the way it travels) before the next page.
    async fn traverse(
        source: &Unsorted,
        limit: usize,
        between: &dyn Fn(&MergeState),
    ) -> Vec<Vec<i64>> {
        let mut state = None;
        let mut pages = Vec::new();
        for _ in 0..20 {
            let out = merge_page(MergeRequest {
                lanes: vec![Lane {
                    source,
                    page_size: 3,
                    any_size: false,
                    stop_before: None,
                    sorted: false,
                }],
                state: state.take(),
                limit,
                filter: &|_: &Item| true,
                max_calls_per_lane: 4,
                deadline: None,
                kept: None,
            })
            .await;
            pages.push(out.items.iter().map(|i| i.0).collect());
            let Some(next) = out.next else { break };
            between(&next);
            let json = serde_json::to_string(&next).unwrap_or_default();
            state = serde_json::from_str(&json).ok();
            assert!(state.is_some(), "the cursor reads back");
        }
        pages
    }

    #[tokio::test]
    async fn a_list_out_of_order_loses_nothing_and_is_read_in_windows_once_seen() {
        let source = Unsorted::new(&[5, 90, 40, 70, 10, 95, 50, 1], 3);
        let seen: Vec<i64> = traverse(&source, 2, &|_| {}).await.concat();
        assert_eq!(
            seen,
            [90, 40, 5, 95, 70, 50, 10, 1],
            "the first page sorted on its own, then a window of the two left; every item once"
        );
        assert!(source.told_out_of_order() > 0, "the order was seen broken");
    }

    #[tokio::test]
    async fn a_list_out_of_order_loses_nothing_read_a_page_at_a_time() {
        // Never widened: each page is read as a sorted list's, and each found out of order is
        // merged from its top, not skipped from where the lane stood.
        let source = Unsorted::new(&[5, 90, 40, 70, 10, 95, 1, 50], 0);
        let seen: Vec<i64> = traverse(&source, 2, &|_| {}).await.concat();
        assert_eq!(seen, [90, 40, 5, 95, 70, 10, 50, 1], "every item once");
        assert!(source.told_out_of_order() > 0);
    }

    #[tokio::test]
    async fn a_list_in_order_is_never_told_out_of_order() {
        let list = [90, 80, 71, 70, 50, 40, 30, 20, 10];
        let source = Unsorted::new(&list, 3);
        let seen: Vec<i64> = traverse(&source, 2, &|_| {}).await.concat();
        assert_eq!(seen, list, "a tie on time across pages is in order");
        assert_eq!(source.told_out_of_order(), 0);
    }

    #[tokio::test]
    async fn a_list_in_order_repeats_nothing_as_it_shifts_under_change() {
        // New activity between pages pushes the list down: the item that ended a page opens the
        // next one, and is skipped as emitted, as for any sorted list. Merged on its own, the
        // next page would have repeated it.
        let source = Unsorted::new(&[9, 8, 7, 6, 5, 4, 3, 2, 1], 3);
        let next_time = AtomicU32::new(100);
        let pages = traverse(&source, 3, &|_| {
            source.touch(i64::from(next_time.fetch_add(1, SeqCst)));
        })
        .await;
        assert_eq!(pages.concat(), [9, 8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(source.told_out_of_order(), 0, "new activity is no disorder");
    }

    #[tokio::test]
    async fn a_later_page_out_of_order_is_merged_from_its_top() {
        // The first page is in order; the second is not, and holds an item above where the
        // lane stood.
        let source = Unsorted::new(&[90, 80, 70, 50, 100, 40, 30, 20, 10], 0);
        let pages = traverse(&source, 4, &|_| {}).await;
        assert_eq!(pages[0], [90, 80, 70, 100], "100 merged, not skipped");
        assert_eq!(pages.concat().len(), 9, "every item once");
        assert!(source.told_out_of_order() > 0);
    }

    #[tokio::test]
    async fn a_chunk_keeps_how_it_is_read_until_it_is_used_up() {
        // The source starts reading windows of three pages while the first page is half read:
        // the rest of that page is still read as one, and the next chunk is the two pages left.
        let source = Unsorted::new(&[5, 90, 40, 70, 10, 95, 50, 1], 0);
        let windows = std::sync::Mutex::new(Vec::new());
        let pages = traverse(&source, 2, &|next| {
            source.window.store(3, SeqCst);
            if let Ok(mut windows) = windows.lock() {
                windows.push(next.lanes[0].window);
            }
        })
        .await;
        assert_eq!(
            pages.concat(),
            [90, 40, 5, 95, 70, 50, 10, 1],
            "every item once, the last two pages sorted as one"
        );
        let windows = windows.into_inner().unwrap_or_default();
        assert_eq!(windows[..2], [None, Some(3)]);
    }

    #[test]
    fn numeric_native_ids_compare_by_value() {
        assert_eq!(id_cmp("c:9", "c:10"), Ordering::Less);
        assert_eq!(
            id_cmp("c:11590944070190022", "c:11590944070190008"),
            Ordering::Greater
        );
        assert_eq!(id_cmp("c:007", "c:7"), Ordering::Less);
        assert_eq!(id_cmp("c:b", "c:a"), Ordering::Greater);
        assert_eq!(id_cmp("a:9", "b:10"), Ordering::Less);
    }
}
