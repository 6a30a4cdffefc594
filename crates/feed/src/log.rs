//! The event log: events serialized into one store log, read back oldest first. Over Redis,
//! readers at the same place in the log at about the same time (the streams following its end,
//! all woken by one append) share one read of the store and its parsing.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use bytes::Bytes;
use switchboard_core::event::fields;
use switchboard_core::{Error, Event, EventType, Result};
use switchboard_store::{LogId, Store};
use tokio::sync::watch;

use crate::echo::GatewayWrite;

/// How long events are kept when `[feed] retention_days` is not set: 7 days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// The store log the events go to when not configured otherwise.
pub const DEFAULT_LOG: &str = "events";
/// How often the tail task looks for appends made by other replicas.
pub const TAIL_EVERY: Duration = Duration::from_millis(250);

/// Entries read from the store per batch while paging.
const READ_BATCH: usize = 200;
/// The most entries one page reads (filtered out or not) before it answers: a filter that
/// matches nothing still answers quickly, and its `next` has advanced.
const MAX_SCAN_PER_PAGE: usize = 5_000;
/// How many batches read from the store are kept for readers at the same place in the log.
const RECENT_BATCHES: usize = 16;
/// How long a short batch (the log's end) is served to readers at the same place: long enough
/// for the streams one append woke, short enough that an append by another replica this one
/// has not heard of shows on the next read after it.
const SHORT_BATCH_TTL: Duration = Duration::from_millis(100);

/// How the event log is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedConfig {
    /// How long events are kept (default 7 days); older cursors are `410 cursor_expired`.
    pub retention: Duration,
    /// The store log's name (default `events`).
    pub log: String,
}

impl Default for FeedConfig {
    fn default() -> FeedConfig {
        FeedConfig {
            retention: DEFAULT_RETENTION,
            log: DEFAULT_LOG.to_owned(),
        }
    }
}

/// One page of the log.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPage {
    /// The events that passed the filter, oldest first.
    pub events: Vec<Event>,
    /// The id of the last entry read (even if filtered out), or the `after` asked for when
    /// nothing newer exists: pass it as the next `after`.
    pub next: Option<LogId>,
}

struct Inner {
    store: Arc<dyn Store>,
    config: FeedConfig,
    newest: watch::Sender<Option<LogId>>,
    reads: Mutex<Reads>,
}

/// A batch read from the store: each entry's id and its event (`None`: unreadable).
type Batch = Arc<Vec<(LogId, Option<Event>)>>;

/// A batch's place: after which id, how many entries at most, and the newest id this replica
/// knew of when the read began (a reader woken by a newer append does not wait for a read that
/// began before it).
type BatchKey = (Option<LogId>, usize, Option<LogId>);

/// Batches read recently and the reads under way, so that the streams following the log's end
/// (all at the same place, all woken by the same append) read and parse each batch once.
#[derive(Default)]
struct Reads {
    recent: VecDeque<(BatchKey, Batch, std::time::Instant)>,
    under_way: HashMap<BatchKey, Arc<tokio::sync::OnceCell<Batch>>>,
}

impl Reads {
    /// A batch read at `key`: a full one, or a short one read under [`SHORT_BATCH_TTL`] ago.
    fn recent(&self, key: &BatchKey) -> Option<Batch> {
        self.recent
            .iter()
            .find(|(k, batch, read_at)| {
                k == key && (batch.len() == k.1 || read_at.elapsed() < SHORT_BATCH_TTL)
            })
            .map(|(_, batch, _)| batch.clone())
    }
}

/// The gateway's event log over its store: a cheap handle to clone.
#[derive(Clone)]
pub struct EventLog {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLog")
            .field("store", &self.inner.store.kind())
            .field("log", &self.inner.config.log)
            .field("retention", &self.inner.config.retention)
            .finish()
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

impl EventLog {
    /// The log `config.log` in `store`. Inside a Tokio runtime this also starts the tail task,
    /// which ends when the last handle is dropped.
    pub fn new(store: Arc<dyn Store>, config: FeedConfig) -> EventLog {
        let (newest, _) = watch::channel(None);
        let log = EventLog {
            inner: Arc::new(Inner {
                store,
                config,
                newest,
                reads: Mutex::default(),
            }),
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(tail(Arc::downgrade(&log.inner)));
        }
        log
    }

    /// The store the log lives in.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// How long events are kept.
    pub fn retention(&self) -> Duration {
        self.inner.config.retention
    }

    /// Appends `events` in order (their `id` is ignored and assigned); returns them with their
    /// ids. Wakes subscribers.
    pub async fn append(&self, mut events: Vec<Event>) -> Result<Vec<Event>> {
        if events.is_empty() {
            return Ok(events);
        }
        let bodies = events
            .iter_mut()
            .map(|event| {
                event.id.clear();
                serde_json::to_vec(event).map(Bytes::from).map_err(|e| {
                    Error::new(
                        switchboard_core::ErrorKind::Unexpected,
                        "an event could not be serialized",
                    )
                    .with_source(e)
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let ids = self
            .inner
            .store
            .append_log(&self.inner.config.log, bodies, self.inner.config.retention)
            .await?;
        for (event, id) in events.iter_mut().zip(&ids) {
            event.id = id.to_string();
        }
        if let Some(last) = ids.last() {
            self.advance(*last);
        }
        Ok(events)
    }

    /// Events after `after` (from the oldest kept when `None`), oldest first: at most `limit`
    /// that pass `keep`, reading the log in batches (at most a few thousand entries per call).
    /// `next` is the id of the last entry read, even if filtered out, so a consumer always
    /// advances. A cursor older than the retention is `410 cursor_expired`.
    pub async fn page(
        &self,
        after: Option<LogId>,
        limit: usize,
        keep: &(dyn Fn(&Event) -> bool + Sync),
    ) -> Result<EventPage> {
        if let Some(after) = after {
            let floor = now_ms()
                .saturating_sub(u64::try_from(self.retention().as_millis()).unwrap_or(u64::MAX));
            if after.ms < floor {
                return Err(Error::cursor_expired(format!(
                    "the cursor `{after}` is older than the event log's retention ({} days); resync (e.g. GET /v1/conversations?updated_since=...) and read the events again from the start",
                    self.retention().as_secs() / 86_400
                )));
            }
        }
        let mut events = Vec::new();
        let mut next = after;
        let mut scanned = 0;
        while events.len() < limit && scanned < MAX_SCAN_PER_PAGE {
            let want = READ_BATCH.min(MAX_SCAN_PER_PAGE - scanned);
            let batch = self.read_batch(next, want).await?;
            let exhausted = batch.len() < want;
            // A batch read for this reader alone is taken as it is; a shared one is copied,
            // only the events this reader keeps.
            let entries = Arc::try_unwrap(batch).unwrap_or_else(|shared| {
                shared
                    .iter()
                    .map(|(id, e)| (*id, e.as_ref().filter(|e| keep(e)).cloned()))
                    .collect()
            });
            for (id, event) in entries {
                scanned += 1;
                next = Some(id);
                if let Some(event) = event.filter(|e| keep(e)) {
                    events.push(event);
                    if events.len() == limit {
                        break;
                    }
                }
            }
            if exhausted {
                break;
            }
        }
        Ok(EventPage { events, next })
    }

    /// Up to `want` entries after `after`, parsed. Readers asking for the same batch while this
    /// replica knows of the same newest id share one read: a full batch never changes (ids only
    /// grow), a short one is served for [`SHORT_BATCH_TTL`].
    async fn read_batch(&self, after: Option<LogId>, want: usize) -> Result<Batch> {
        if self.inner.store.kind() != "redis" {
            // A read in the process costs less than the sharing's bookkeeping (measured by
            // bench/feedlog.rs): each reader reads for itself.
            let entries = self
                .inner
                .store
                .read_log(&self.inner.config.log, after, want)
                .await?;
            return Ok(parse(entries));
        }
        let key = (after, want, *self.inner.newest.borrow());
        let reads = || {
            self.inner
                .reads
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        };
        let read = {
            let mut reads = reads();
            if let Some(batch) = reads.recent(&key) {
                return Ok(batch);
            }
            reads.under_way.entry(key).or_default().clone()
        };
        // The first reader reads; the others wait for its batch and all wake when it is there
        // (a failed read leaves the next one to try).
        let batch = read
            .get_or_try_init(|| async {
                let entries = self
                    .inner
                    .store
                    .read_log(&self.inner.config.log, after, want)
                    .await?;
                Ok::<Batch, Error>(parse(entries))
            })
            .await;
        let mut reads = reads();
        match batch {
            Ok(batch) => {
                // A full batch never changes; a short one may grow by another replica's
                // append this one has not heard of, so it is served only briefly.
                if reads.under_way.remove(&key).is_some() {
                    reads.recent.retain(|(k, _, _)| *k != key);
                    if reads.recent.len() == RECENT_BATCHES {
                        reads.recent.pop_front();
                    }
                    reads
                        .recent
                        .push_back((key, batch.clone(), std::time::Instant::now()));
                }
                Ok(batch.clone())
            }
            Err(e) => {
                if !read.initialized() {
                    reads.under_way.remove(&key);
                }
                Err(e)
            }
        }
    }

    /// Changes whenever the log may have grown: at once for appends through this handle (or its
    /// clones), within [`TAIL_EVERY`] for appends by other replicas.
    pub fn subscribe(&self) -> watch::Receiver<Option<LogId>> {
        self.inner.newest.subscribe()
    }

    /// The newest event's id (`None`: the log is empty): where a consumer that wants only what
    /// comes next starts.
    pub async fn newest(&self) -> Result<Option<LogId>> {
        self.inner.store.last_log_id(&self.inner.config.log).await
    }

    /// Appends the event of a write made through the gateway by `client`, stamped
    /// `performed_by`, and remembers it so the poller does not report it again. Call it after the
    /// vendor accepted the write (for a reply sent with an `Idempotency-Key`, not when the answer
    /// is replayed).
    pub async fn record_write(&self, client: &str, write: GatewayWrite<'_>) -> Result<Event> {
        crate::echo::remember(self.inner.store.as_ref(), write).await?;
        let now = chrono::Utc::now();
        let event = match write {
            GatewayWrite::Assignment(c) => {
                let mut changed = vec![fields::ASSIGNEE.to_owned()];
                if c.mode.is_some() {
                    changed.push(fields::MODE.to_owned());
                }
                Event::conversation(EventType::ConversationUpdated, c.clone(), now)
                    .with_changed(changed)
            }
            GatewayWrite::Status(c) => {
                Event::conversation(EventType::ConversationUpdated, c.clone(), now)
                    .with_changed(vec![fields::STATUS.to_owned()])
            }
            GatewayWrite::Reply(m) => Event::message(m.clone(), now),
        };
        let mut appended = self.append(vec![event.performed_by(client)]).await?;
        appended.pop().ok_or_else(|| {
            Error::new(
                switchboard_core::ErrorKind::Unexpected,
                "the event log appended nothing",
            )
        })
    }

    fn advance(&self, id: LogId) {
        advance(&self.inner.newest, id);
    }
}

/// The events of `entries` (`None` for an unreadable one).
fn parse(entries: Vec<switchboard_store::LogEntry>) -> Batch {
    Arc::new(
        entries
            .into_iter()
            .map(|entry| match serde_json::from_slice::<Event>(&entry.body) {
                Ok(mut event) => {
                    event.id = entry.id.to_string();
                    (entry.id, Some(event))
                }
                Err(e) => {
                    tracing::warn!(id = %entry.id, error = %e, "skipping an unreadable event log entry");
                    (entry.id, None)
                }
            })
            .collect(),
    )
}

fn advance(newest: &watch::Sender<Option<LogId>>, id: LogId) {
    newest.send_if_modified(|current| {
        if current.is_none_or(|c| c < id) {
            *current = Some(id);
            true
        } else {
            false
        }
    });
}

/// Follows the log's end for appends made elsewhere, while anyone subscribes.
async fn tail(inner: Weak<Inner>) {
    loop {
        {
            let Some(inner) = inner.upgrade() else { return };
            if inner.newest.receiver_count() > 0 {
                match inner.store.last_log_id(&inner.config.log).await {
                    Ok(Some(id)) => advance(&inner.newest, id),
                    Ok(None) => {}
                    Err(e) => tracing::debug!(error = %e, "the event log's tail could not be read"),
                }
            }
        }
        tokio::time::sleep(TAIL_EVERY).await;
    }
}
