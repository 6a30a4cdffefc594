//! A vendor in memory: its conversations, paged as its spec says (page numbers, keyset,
//! unsorted), with failures and counted fetches.

use super::*;

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
        sorted_by_activity: !spec.undocumented_order,
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
                sort_window: std::sync::Arc::default(),
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
