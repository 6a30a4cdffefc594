//! One worker per endpoint: it holds the endpoint's lease in the store (so exactly one replica
//! delivers to it), follows the event log from the endpoint's cursor, and delivers each event
//! the endpoint wants, in order, until it is delivered, the receiver answers `410`, or the
//! schedule is spent. Its state is saved after every attempt.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use switchboard_core::{ErrorKind, Event};
use switchboard_feed::EventLog;
use switchboard_store::{LogId, Store};
use tokio::sync::watch;
use tokio::time::Instant;

use super::Endpoint;
use super::outbox::{self, OutboxState};
use super::policy::Outcome;

/// How long a worker's lease lasts without renewal; another replica takes the endpoint over
/// this long after its holder died.
pub const LEASE_TTL: Duration = Duration::from_secs(30);
/// How often a worker renews its lease, and looks for replays asked on other replicas.
const RENEW_EVERY: Duration = Duration::from_secs(10);
/// How long a worker waits before trying the store again after it failed.
const STORE_RETRY: Duration = Duration::from_secs(1);

/// What a worker needs besides its endpoint.
#[derive(Clone)]
pub(super) struct Context {
    pub log: EventLog,
    /// This process's name in leases.
    pub holder: String,
    pub stop: watch::Receiver<bool>,
}

impl Context {
    fn store(&self) -> &dyn Store {
        self.log.store().as_ref()
    }

    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }
}

/// Why holding the lease ended.
enum Released {
    Lost,
    Stopping,
}

/// Runs until the gateway stops, delivering whenever this replica holds the lease.
pub(super) async fn run(endpoint: Arc<Endpoint>, mut ctx: Context) {
    let key = outbox::lease_key(&endpoint.config.id);
    let ttl = lease_ttl(&endpoint);
    loop {
        if ctx.stopping() {
            break;
        }
        match ctx.store().lease(&key, &ctx.holder, ttl).await {
            Ok(Some(_)) => match hold(&endpoint, &mut ctx, &key, ttl).await {
                Released::Stopping => break,
                Released::Lost => {}
            },
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(webhook = %endpoint.config.id, error = %e, "the webhook lease could not be taken")
            }
        }
        let mut stop = ctx.stop.clone();
        tokio::select! {
            () = tokio::time::sleep(RENEW_EVERY) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    if let Err(e) = ctx.store().release_lease(&key, &ctx.holder).await {
        tracing::debug!(webhook = %endpoint.config.id, error = %e, "the webhook lease could not be released");
    }
}

/// The lease outlives one attempt with room to spare.
fn lease_ttl(endpoint: &Endpoint) -> Duration {
    LEASE_TTL.max(endpoint.receiver.timeout() * 2 + Duration::from_secs(5))
}

/// The endpoint's state, or a new one that starts after the log's newest event (saved, so the
/// endpoint receives every event appended from then on).
pub(super) async fn load_or_start(
    endpoint: &Endpoint,
    log: &EventLog,
) -> switchboard_core::Result<OutboxState> {
    let id = &endpoint.config.id;
    let store = log.store().as_ref();
    if let Some(state) = outbox::load(store, id).await? {
        return Ok(state);
    }
    let state = OutboxState {
        cursor: log.newest().await?.map(|id| id.to_string()),
        ..OutboxState::default()
    };
    outbox::save(store, id, &state).await?;
    Ok(state)
}

async fn hold(endpoint: &Endpoint, ctx: &mut Context, key: &str, ttl: Duration) -> Released {
    let id = endpoint.config.id.as_str();
    let mut renewed = Instant::now();
    let mut feed = ctx.log.subscribe();
    let mut stop = ctx.stop.clone();
    let mut state: Option<OutboxState> = None;
    loop {
        if ctx.stopping() {
            return Released::Stopping;
        }
        if renewed.elapsed() >= RENEW_EVERY {
            match ctx.store().lease(key, &ctx.holder, ttl).await {
                Ok(Some(_)) => renewed = Instant::now(),
                Ok(None) => return Released::Lost,
                Err(e) => {
                    tracing::warn!(webhook = id, error = %e, "the webhook lease could not be renewed");
                    return Released::Lost;
                }
            }
        }
        let wake_at = renewed + RENEW_EVERY;
        let current = match state.take() {
            Some(s) => Ok(s),
            None => load_or_start(endpoint, &ctx.log).await,
        };
        let mut current = match current {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(webhook = id, error = %e, "the webhook state could not be read");
                sleep_or_stop(STORE_RETRY, &mut stop).await;
                continue;
            }
        };
        match step(endpoint, ctx, &mut current, &mut feed).await {
            Ok(Step::Again) => {}
            Ok(Step::Wait { until, for_feed }) => {
                let until = until.map_or(wake_at, |u| u.min(wake_at));
                tokio::select! {
                    () = tokio::time::sleep_until(until) => {}
                    () = endpoint.wake.notified() => {}
                    _ = feed.changed(), if for_feed => {}
                    _ = stop.wait_for(|s| *s) => return Released::Stopping,
                }
            }
            Err(e) => {
                tracing::warn!(webhook = id, error = %e, "webhook delivery is waiting for the store");
                // Read the state again: a save may have failed.
                sleep_or_stop(STORE_RETRY, &mut stop).await;
                continue;
            }
        }
        state = Some(current);
    }
}

async fn sleep_or_stop(wait: Duration, stop: &mut watch::Receiver<bool>) {
    tokio::select! {
        () = tokio::time::sleep(wait) => {}
        _ = stop.wait_for(|s| *s) => {}
    }
}

enum Step {
    /// Go on at once.
    Again,
    /// Wait for a replay, the time given, or (when `for_feed`) a new event.
    Wait {
        until: Option<Instant>,
        for_feed: bool,
    },
}

/// One step: apply a replay, wait while disabled, find the next event, wait for its attempt
/// time, or attempt it.
async fn step(
    endpoint: &Endpoint,
    ctx: &Context,
    state: &mut OutboxState,
    feed: &mut watch::Receiver<Option<LogId>>,
) -> switchboard_core::Result<Step> {
    let id = endpoint.config.id.as_str();
    let store = ctx.store();
    if let Some(replay) = outbox::pending_replay(store, id).await?
        && state.apply(&replay)
    {
        outbox::save(store, id, state).await?;
        tracing::info!(webhook = id, after = ?state.cursor, "webhook replay applied");
    }
    if state.disabled.is_some() {
        return Ok(Step::Wait {
            until: None,
            for_feed: false,
        });
    }
    // Seen before reading, so an append during the read still wakes the wait below.
    feed.borrow_and_update();
    let keep = |event: &Event| endpoint.wants(event);
    let page = match ctx.log.page(state.position(), 1, &keep).await {
        Ok(page) => page,
        Err(e) if e.kind() == ErrorKind::Gone => {
            // Down longer than the retention: what was dropped cannot be delivered; go on from
            // the oldest event kept, and say so.
            tracing::warn!(webhook = id, cursor = ?state.cursor, "webhook events older than the retention were dropped before delivery");
            state.cursor = None;
            state.last_error = Some(
                "events older than the log's retention were dropped before they could be delivered"
                    .to_owned(),
            );
            state.last_error_at = Some(Utc::now());
            outbox::save(store, id, state).await?;
            return Ok(Step::Again);
        }
        Err(e) => return Err(e),
    };
    let Some(event) = page.events.into_iter().next() else {
        let next = page.next.map(|n| n.to_string());
        if next != state.cursor {
            // Events this endpoint does not want: pass over them.
            state.cursor = next;
            outbox::save(store, id, state).await?;
        }
        return Ok(Step::Wait {
            until: None,
            for_feed: true,
        });
    };
    if let Some(at) = state.next_attempt_at {
        let wait = (at - Utc::now()).to_std().unwrap_or_default();
        if !wait.is_zero() {
            return Ok(Step::Wait {
                until: Some(Instant::now() + wait),
                for_feed: false,
            });
        }
    }
    let body = serde_json::to_vec(&event).map_err(|e| {
        switchboard_core::Error::new(ErrorKind::Unexpected, "an event could not be serialized")
            .with_source(e)
    })?;
    let outcome = endpoint.receiver.deliver(&event.id, body.into()).await;
    let now = Utc::now();
    state.last_attempt_at = Some(now);
    let result = match &outcome {
        Outcome::Delivered => "delivered",
        Outcome::Gone => "gone",
        Outcome::Failed { .. } => "failed",
    };
    metrics::counter!("switchboard_webhook_attempts_total", "webhook" => id.to_owned(), "outcome" => result)
        .increment(1);
    match outcome {
        Outcome::Delivered => {
            state.cursor = Some(event.id.clone());
            state.attempts = 0;
            state.next_attempt_at = None;
            state.last_success_at = Some(now);
        }
        Outcome::Gone => {
            let why = "the receiver answered 410 Gone: deliveries stopped until a replay";
            tracing::warn!(webhook = id, event = %event.id, "{why}");
            state.last_error = Some(why.to_owned());
            state.last_error_at = Some(now);
            state.next_attempt_at = None;
            state.disabled = Some(why.to_owned());
        }
        Outcome::Failed { error, retry_after } => {
            state.attempts += 1;
            tracing::info!(webhook = id, event = %event.id, attempts = state.attempts, %error, "webhook delivery failed");
            state.last_error = Some(error);
            state.last_error_at = Some(now);
            match endpoint
                .schedule
                .next_delay(state.attempts, retry_after, fastrand::f64())
            {
                Some(delay) => {
                    state.next_attempt_at = Some(
                        now + chrono::Duration::from_std(delay)
                            .unwrap_or_else(|_| chrono::Duration::zero()),
                    );
                }
                None => {
                    let why = format!(
                        "event {} failed {} attempts: deliveries stopped until a replay",
                        event.id, state.attempts
                    );
                    tracing::warn!(webhook = id, "{why}");
                    state.next_attempt_at = None;
                    state.disabled = Some(why);
                }
            }
        }
    }
    outbox::save(store, id, state).await?;
    Ok(Step::Again)
}
