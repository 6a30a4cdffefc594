//! In-memory vendors for the merge engine's property tests, and a gateway page made the way
//! `switchboard-server`'s `list_conversations` makes it: cursor decoded, every connection behind
//! its capability check, the page assembled by `switchboard_core::inbox::inbox_page` (the
//! server's own code path), the next state signed into a cursor.
//!
//! Every vendor call is logged (connection, upstream page, ids served, next page), so a test can
//! check what the engine fetched and when. A world made with [`World::with_kept_pages`] keeps the
//! upstream pages each traversal reached, as the server keeps them in its store, and logs what
//! each page recalled from them.

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
    /// Its conversations.
    pub conversations: Vec<ConvSpec>,
    /// Fetch `i` fails when `failures[i % len]` is true; empty: never fails.
    pub failures: Vec<bool>,
    /// With a seed, a fetch first changes the vendor's data now and then (activity moves a
    /// conversation to the top, or a new one appears), as live traffic would.
    pub churn_seed: Option<u64>,
}

/// One vendor call as the test saw it.
#[derive(Debug, Clone)]
pub struct Fetch {
    /// The connection called.
    pub connection: String,
    /// The upstream page asked for.
    pub page: UpstreamPage,
    /// The ids served, in the vendor's order; `None` when the call failed.
    pub served: Option<Vec<String>>,
    /// The next page the vendor announced.
    pub next: Option<UpstreamPage>,
}

/// Locks, ignoring poisoning (a panicking test fails anyway).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The vendor's (and the engine's) order: newest first, ties by id descending.
fn vendor_order(a: &Conversation, b: &Conversation) -> std::cmp::Ordering {
    b.last_activity_at
        .cmp(&a.last_activity_at)
        .then_with(|| switchboard_core::merge::id_cmp(&b.id, &a.id))
}

struct VendorData {
    /// Every conversation, in vendor order.
    list: Vec<Conversation>,
    fetches: usize,
    next_native: usize,
    rng: Option<u64>,
    /// Ids that got new activity or appeared after the vendor was built.
    changed: BTreeSet<String>,
}

/// An in-memory vendor connection.
#[derive(Debug)]
pub struct Vendor {
    info: ProviderInfo,
    spec: VendorSpecLite,
    data: Mutex<VendorData>,
    log: Arc<Mutex<Vec<Fetch>>>,
    /// The newest activity time handed out so far (nanoseconds after the base), shared by every
    /// vendor of a world so that new activity is later than anything listed.
    clock: Arc<Mutex<i64>>,
}

#[derive(Debug)]
struct VendorSpecLite {
    paging: Paging,
    native_status: bool,
    native_updated_since: bool,
    failures: Vec<bool>,
}

impl std::fmt::Debug for VendorData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VendorData")
            .field("conversations", &self.list.len())
            .field("fetches", &self.fetches)
            .finish()
    }
}

fn conversation(connection: &str, native: usize, spec: &ConvSpec) -> Conversation {
    Conversation {
        id: format!("{connection}:{native}"),
        connection: connection.to_owned(),
        provider: KIND,
        native_id: native.to_string(),
        channel: spec.channel,
        native_channel: Some(spec.channel.as_str().to_owned()),
        status: spec.status,
        mode: spec.mode,
        assignee: None,
        contact: None,
        created_at: None,
        updated_at: None,
        last_activity_at: at(spec.at_nanos),
        last_message: None,
        message_count: None,
        escalation: None,
        url: None,
        raw: None,
    }
}

fn capabilities(spec: &VendorSpec) -> Capabilities {
    Capabilities {
        list_conversations: true,
        get_conversation: false,
        list_messages: false,
        list_agents: false,
        assign: false,
        unassign: false,
        send_message: false,
        set_status: Vec::new(),
        idempotent_replies: false,
        native_filters: NativeFilters {
            status: spec.native_status,
            updated_since: spec.native_updated_since,
            ..NativeFilters::default()
        },
        paging: match spec.paging {
            Paging::Number | Paging::NumberTrailingEmpty => PagingStyle::PageNumber,
            Paging::Keyset => PagingStyle::Cursor,
        },
        max_page_size: spec.page_size,
        max_message_page_size: spec.page_size,
        sorted_by_activity: true,
    }
}

fn keyset_cursor(c: &Conversation) -> String {
    format!(
        "{}/{}",
        c.last_activity_at.timestamp_nanos_opt().unwrap_or_default(),
        c.id
    )
}

fn parse_keyset(cursor: &str) -> Option<(DateTime<Utc>, &str)> {
    let (nanos, id) = cursor.split_once('/')?;
    Some((DateTime::from_timestamp_nanos(nanos.parse().ok()?), id))
}

impl Vendor {
    /// A vendor named `connection` holding `spec`'s data, logging to `log`.
    pub fn new(
        connection: &str,
        spec: &VendorSpec,
        log: Arc<Mutex<Vec<Fetch>>>,
        clock: Arc<Mutex<i64>>,
    ) -> Vendor {
        let mut list: Vec<Conversation> = spec
            .conversations
            .iter()
            .enumerate()
            .map(|(i, c)| conversation(connection, i, c))
            .collect();
        list.sort_by(vendor_order);
        {
            let mut clock = lock(&clock);
            for c in &spec.conversations {
                *clock = (*clock).max(c.at_nanos);
            }
        }
        Vendor {
            info: ProviderInfo {
                kind: KIND,
                connection: connection.to_owned(),
                capabilities: capabilities(spec),
            },
            spec: VendorSpecLite {
                paging: spec.paging,
                native_status: spec.native_status,
                native_updated_since: spec.native_updated_since,
                failures: spec.failures.clone(),
            },
            data: Mutex::new(VendorData {
                next_native: list.len(),
                list,
                fetches: 0,
                rng: spec.churn_seed.map(|s| s | 1),
                changed: BTreeSet::new(),
            }),
            log,
            clock,
        }
    }

    /// Every conversation as it is now, in vendor order.
    pub fn conversations(&self) -> Vec<Conversation> {
        lock(&self.data).list.clone()
    }

    /// Ids that got new activity or appeared since the vendor was built.
    pub fn changed(&self) -> BTreeSet<String> {
        lock(&self.data).changed.clone()
    }

    fn tick(&self, bump_micros: i64) -> i64 {
        let mut clock = lock(&self.clock);
        *clock += bump_micros * 1_000;
        *clock
    }

    /// New activity on the conversation at `pick` (modulo the list length): it moves to the top.
    /// `bump_micros` of 0 gives it the latest time handed out so far (a tie).
    pub fn touch(&self, pick: usize, bump_micros: i64) {
        let now = self.tick(bump_micros);
        let mut data = lock(&self.data);
        if data.list.is_empty() {
            return;
        }
        let i = pick % data.list.len();
        let new_time = at(now);
        if new_time > data.list[i].last_activity_at {
            data.list[i].last_activity_at = new_time;
            let id = data.list[i].id.clone();
            data.changed.insert(id);
            data.list.sort_by(vendor_order);
        }
    }

    /// A new conversation with the latest activity.
    pub fn create(&self, bump_micros: i64, seed: usize) {
        let now = self.tick(bump_micros);
        let mut data = lock(&self.data);
        let native = data.next_native;
        data.next_native += 1;
        let spec = ConvSpec {
            at_nanos: now,
            status: Status::ALL[seed % Status::ALL.len()],
            mode: [None, Some(Mode::Ai), Some(Mode::Human)][seed % 3],
            channel: CHANNELS[seed % CHANNELS.len()],
        };
        let c = conversation(&self.info.connection, native, &spec);
        data.changed.insert(c.id.clone());
        data.list.push(c);
        data.list.sort_by(vendor_order);
    }

    fn churn(&self) {
        let roll = {
            let mut data = lock(&self.data);
            // Churn only early in a traversal, so that it ends.
            if data.fetches > CHURN_FETCHES {
                return;
            }
            let Some(mut x) = data.rng else { return };
            // xorshift64
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            data.rng = Some(x);
            x
        };
        match roll % 8 {
            0 | 1 => self.touch((roll >> 8) as usize, ((roll >> 4) % 3) as i64),
            2 => self.create(((roll >> 4) % 3) as i64, (roll >> 8) as usize),
            _ => {}
        }
    }

    fn record(&self, page: &UpstreamPage, served: Option<Vec<String>>, next: Option<UpstreamPage>) {
        lock(&self.log).push(Fetch {
            connection: self.info.connection.clone(),
            page: page.clone(),
            served,
            next,
        });
    }
}

/// How many fetches of a vendor may change its data (see [`VendorSpec::churn_seed`]).
pub const CHURN_FETCHES: usize = 64;

/// The channels generated data uses.
pub const CHANNELS: [Channel; 3] = [Channel::Web, Channel::Email, Channel::Sms];

#[async_trait]
impl Provider for Vendor {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }

    fn health(&self) -> switchboard_core::ConnectionHealth {
        switchboard_core::ConnectionHealth {
            breaker: switchboard_core::BreakerState::Closed,
            last_error: None,
            last_success_at: None,
            quota: None,
        }
    }

    async fn list_conversations(
        &self,
        query: &ListQuery<'_>,
        page: &UpstreamPage,
    ) -> Result<Page<Conversation>> {
        let n = {
            let mut data = lock(&self.data);
            data.fetches += 1;
            data.fetches - 1
        };
        let failures = &self.spec.failures;
        if !failures.is_empty() && failures[n % failures.len()] {
            self.record(page, None, None);
            return Err(
                Error::new(ErrorKind::UpstreamUnavailable, "injected vendor failure")
                    .with_connection(&self.info.connection),
            );
        }
        self.churn();
        let data = lock(&self.data);
        let filter = query.filter;
        let visible: Vec<&Conversation> = data
            .list
            .iter()
            .filter(|c| {
                (!self.spec.native_status
                    || filter.status.is_empty()
                    || filter.status.contains(&c.status))
                    && (!self.spec.native_updated_since
                        || filter.updated_since.is_none_or(|t| c.last_activity_at >= t))
            })
            .collect();
        let size = query.page_size.max(1) as usize;
        let (items, next): (Vec<Conversation>, Option<UpstreamPage>) = match self.spec.paging {
            Paging::Number | Paging::NumberTrailingEmpty => {
                let number = match page {
                    UpstreamPage::First => 1,
                    UpstreamPage::Number(n) if *n >= 1 => *n,
                    other => {
                        return Err(Error::new(
                            ErrorKind::InvalidRequest,
                            format!("not a page number: {other:?}"),
                        ));
                    }
                };
                let start = (number as usize - 1).saturating_mul(size);
                let items: Vec<Conversation> = visible
                    .iter()
                    .skip(start)
                    .take(size)
                    .map(|c| (*c).clone())
                    .collect();
                let more = match self.spec.paging {
                    Paging::NumberTrailingEmpty => items.len() == size,
                    _ => visible.len() > start.saturating_add(size),
                };
                (items, more.then_some(UpstreamPage::Number(number + 1)))
            }
            Paging::Keyset => {
                let after = match page {
                    UpstreamPage::First => None,
                    UpstreamPage::Cursor(c) => Some(parse_keyset(c).ok_or_else(|| {
                        Error::new(ErrorKind::InvalidRequest, "not a keyset cursor")
                    })?),
                    UpstreamPage::Number(_) => {
                        return Err(Error::new(ErrorKind::InvalidRequest, "not a cursor"));
                    }
                };
                let rest: Vec<&&Conversation> = visible
                    .iter()
                    .filter(|c| {
                        after.is_none_or(|(t, id)| {
                            c.last_activity_at < t
                                || (c.last_activity_at == t
                                    && switchboard_core::merge::id_cmp(&c.id, id).is_lt())
                        })
                    })
                    .collect();
                let items: Vec<Conversation> =
                    rest.iter().take(size).map(|c| (**c).clone()).collect();
                let next = (rest.len() > size)
                    .then(|| items.last().map(|c| UpstreamPage::Cursor(keyset_cursor(c))))
                    .flatten();
                (items, next)
            }
        };
        drop(data);
        self.record(
            page,
            Some(items.iter().map(|c| c.id.clone()).collect()),
            next.clone(),
        );
        Ok(Page { items, next })
    }

    async fn get_conversation(&self, _id: &str, _include_raw: bool) -> Result<Conversation> {
        Err(Error::unsupported(Operation::GetConversation))
    }

    async fn list_messages(
        &self,
        _conversation: &str,
        _query: &MessageQuery,
        _page: &UpstreamPage,
    ) -> Result<Page<Message>> {
        Err(Error::unsupported(Operation::ListMessages))
    }

    async fn list_agents(&self, _page: &UpstreamPage) -> Result<Page<Agent>> {
        Err(Error::unsupported(Operation::ListAgents))
    }

    async fn set_assignment(
        &self,
        _conversation: &str,
        _assignment: Assignment,
    ) -> Result<Conversation> {
        Err(Error::unsupported(Operation::Assign))
    }

    async fn send_message(&self, _conversation: &str, _message: NewMessage) -> Result<Message> {
        Err(Error::unsupported(Operation::SendMessage))
    }

    async fn set_status(&self, _conversation: &str, _status: Status) -> Result<Conversation> {
        Err(Error::unsupported(Operation::SetStatus))
    }
}

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
