//! The event log: events serialized into one store log, read back oldest first.

use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use switchboard_core::event::fields;
use switchboard_core::{Error, Event, EventType, Result};
use switchboard_upstream::{LogId, Store};
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
            let batch = self
                .inner
                .store
                .read_log(&self.inner.config.log, next, want)
                .await?;
            let exhausted = batch.len() < want;
            for entry in batch {
                scanned += 1;
                next = Some(entry.id);
                match serde_json::from_slice::<Event>(&entry.body) {
                    Ok(mut event) => {
                        event.id = entry.id.to_string();
                        if keep(&event) {
                            events.push(event);
                            if events.len() == limit {
                                break;
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(id = %entry.id, error = %e, "skipping an unreadable event log entry")
                    }
                }
            }
            if exhausted {
                break;
            }
        }
        Ok(EventPage { events, next })
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
