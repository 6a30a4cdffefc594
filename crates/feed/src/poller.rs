//! One poller per connection: a task that, every interval, holds the connection's lease in the
//! store (one replica polls a connection at a time), runs a detector pass within its share of the
//! vendor's quota, checks it still holds the lease (fencing), then appends the events and saves
//! the snapshot.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use switchboard_core::{Provider, Result};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::detect::{self, CallBudget, DetectSettings};
use crate::log::EventLog;
use crate::snapshot::Snapshot;

/// The quota a poller assumes, `(requests, per_seconds)`, for a connection whose vendor documents
/// none and whose `rate_limit` is not set (PingBack, Octopush): 4 requests a second, twice
/// Zipchat's documented rate and a third of ChatbotX's. The poller spends its share of it like
/// any quota; an account with a known limit sets `rate_limit` and the poller sizes itself to that.
pub const UNDOCUMENTED_QUOTA: (u32, u32) = (240, 60);
/// How long a connection's snapshot is kept after its last save.
pub const SNAPSHOT_TTL: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// A lease lasts this many poll intervals; the holder renews it every pass.
pub const LEASE_INTERVALS: u32 = 3;

/// How one connection is polled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PollSettings {
    /// Time between passes.
    pub interval: Duration,
    /// The largest share of the vendor's quota the poller spends, in (0, 1].
    pub quota_share: f64,
    /// How far below the high-water mark each scan reads again.
    pub lookback: Duration,
}

impl PollSettings {
    /// Polling every `interval` within `quota_share` of the quota, with the default lookback.
    pub fn new(interval: Duration, quota_share: f64) -> PollSettings {
        PollSettings {
            interval,
            quota_share,
            lookback: detect::DEFAULT_LOOKBACK,
        }
    }

    /// How long a lease lasts: [`LEASE_INTERVALS`] intervals.
    pub fn lease_ttl(&self) -> Duration {
        self.interval * LEASE_INTERVALS
    }
}

/// The poller's own limit: at most `share × requests` calls in any window of `per_seconds`,
/// spread evenly over the passes of a window. The quota is the connection's (its `rate_limit`, or
/// its vendor's documented one), else [`UNDOCUMENTED_QUOTA`].
#[derive(Debug, Clone)]
pub struct QuotaShare {
    window: Duration,
    allowance: u32,
    per_pass: u32,
    spent: VecDeque<(Instant, u32)>,
}

impl QuotaShare {
    /// The share of `quota` (`(requests, per_seconds)`; `None` when the connection has none:
    /// [`UNDOCUMENTED_QUOTA`]) for passes every `interval`.
    pub fn new(quota: Option<(u32, u32)>, share: f64, interval: Duration) -> QuotaShare {
        let (requests, per_seconds) = quota
            .filter(|(r, p)| *r > 0 && *p > 0)
            .unwrap_or(UNDOCUMENTED_QUOTA);
        let allowance = ((f64::from(requests) * share).floor() as u32).max(1);
        let window = Duration::from_secs(u64::from(per_seconds));
        let passes = window.as_secs_f64() / interval.as_secs_f64().max(0.001);
        let per_pass = ((f64::from(allowance) / passes.max(1.0)).ceil() as u32).clamp(1, allowance);
        QuotaShare {
            window,
            allowance,
            per_pass,
            spent: VecDeque::new(),
        }
    }

    /// The most calls any window may see.
    pub fn allowance(&self) -> u32 {
        self.allowance
    }

    /// The window the allowance is counted over.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// The most calls one pass makes.
    pub fn per_pass(&self) -> u32 {
        self.per_pass
    }

    /// The budget of a pass starting `now`.
    pub fn budget(&mut self, now: Instant) -> CallBudget {
        while self
            .spent
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) >= self.window)
        {
            self.spent.pop_front();
        }
        let in_window: u32 = self.spent.iter().map(|(_, n)| n).sum();
        let left = self.allowance.saturating_sub(in_window);
        CallBudget::new(left.min(self.per_pass))
    }

    /// Records `calls` made by a pass that ended `now` (counted at its end, which keeps them in
    /// the window at least as long as they really are).
    pub fn spend(&mut self, calls: u32, now: Instant) {
        if calls > 0 {
            self.spent.push_back((now, calls));
        }
    }
}

/// The store key of a connection's lease.
pub fn lease_key(connection: &str) -> String {
    format!("feed:poll:{connection}")
}

/// The store key of when a connection's last poll pass completed (RFC 3339).
fn last_poll_key(connection: &str) -> String {
    format!("feed:poll:{connection}:last")
}

/// When the poller (on whichever replica holds the lease) last completed a pass over
/// `connection`; `None` before the first pass, after three intervals without one, or when the
/// store does not answer.
pub async fn last_poll(
    store: &dyn switchboard_store::Store,
    connection: &str,
) -> Option<DateTime<Utc>> {
    let stored = store.get(&last_poll_key(connection)).await.ok()??;
    let text = std::str::from_utf8(&stored).ok()?;
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The store key of a connection's snapshot.
pub fn snapshot_key(connection: &str) -> String {
    format!("feed:poll:{connection}:snapshot")
}

/// A running poller; dropping it stops the task (the lease then ends within its TTL).
#[derive(Debug)]
pub struct PollerHandle {
    connection: String,
    holder: String,
    feed: EventLog,
    task: JoinHandle<()>,
}

impl PollerHandle {
    /// The connection polled.
    pub fn connection(&self) -> &str {
        &self.connection
    }

    /// Who this poller is when it holds the lease (`{replica}/{connection}`).
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Stops the task at once without giving the lease up (as a crash would).
    pub fn abort(&self) {
        self.task.abort();
    }

    /// Stops the task and gives the lease up, so another replica takes over at its next pass.
    pub async fn stop(self) {
        self.task.abort();
        let key = lease_key(&self.connection);
        if let Err(e) = self.feed.store().release_lease(&key, &self.holder).await {
            tracing::warn!(connection = %self.connection, error = %e, "giving the poll lease up failed");
        }
    }
}

impl Drop for PollerHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts polling `provider` into `feed` as `replica` (an id unique to this gateway process).
/// Must be called inside a Tokio runtime.
pub fn spawn_poller(
    provider: Arc<dyn Provider>,
    feed: EventLog,
    settings: PollSettings,
    replica: &str,
) -> PollerHandle {
    let connection = provider.info().connection.clone();
    let holder = format!("{replica}/{connection}");
    let quota = provider.health().quota.map(|q| (q.requests, q.per_seconds));
    let poller = Poller {
        key: lease_key(&connection),
        snapshot_key: snapshot_key(&connection),
        holder: holder.clone(),
        provider,
        feed: feed.clone(),
        settings,
        share: QuotaShare::new(quota, settings.quota_share, settings.interval),
        held: None,
    };
    PollerHandle {
        connection,
        holder,
        feed,
        task: tokio::spawn(poller.run()),
    }
}

/// The lease this replica holds, with the snapshot as of its last pass.
struct Held {
    token: u64,
    snapshot: Snapshot,
    saved: Vec<u8>,
}

struct Poller {
    key: String,
    snapshot_key: String,
    holder: String,
    provider: Arc<dyn Provider>,
    feed: EventLog,
    settings: PollSettings,
    share: QuotaShare,
    held: Option<Held>,
}

impl Poller {
    async fn run(mut self) {
        let connection = self.provider.info().connection.clone();
        tracing::info!(
            connection = %connection,
            interval_secs = self.settings.interval.as_secs_f64(),
            calls_per_pass = self.share.per_pass(),
            calls_per_window = self.share.allowance(),
            window_secs = self.share.window().as_secs(),
            "polling the connection for the change feed"
        );
        let mut ticker = tokio::time::interval(self.settings.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if let Err(e) = self.pass().await {
                tracing::warn!(connection = %connection, error = %e, "a poll pass failed; retrying next interval");
            }
        }
    }

    /// Holds the lease (`None`: another replica does).
    async fn lease(&self) -> Result<Option<u64>> {
        self.feed
            .store()
            .lease(&self.key, &self.holder, self.settings.lease_ttl())
            .await
    }

    async fn pass(&mut self) -> Result<()> {
        let connection = self.provider.info().connection.clone();
        let Some(token) = self.lease().await? else {
            if self.held.take().is_some() {
                tracing::info!(connection = %connection, "another replica holds the poll lease now; this one stands by");
            }
            return Ok(());
        };
        let mut held = match self.held.take() {
            Some(held) if held.token == token => held,
            _ => {
                let stored = self.feed.store().get(&self.snapshot_key).await?;
                let snapshot = stored
                    .as_deref()
                    .and_then(Snapshot::decode)
                    .unwrap_or_default();
                tracing::info!(connection = %connection, token, baseline_done = snapshot.baseline_done, "holding the poll lease");
                Held {
                    token,
                    snapshot,
                    saved: stored.as_deref().unwrap_or_default().to_vec(),
                }
            }
        };
        let mut snapshot = held.snapshot.clone();
        let mut budget = self.share.budget(Instant::now());
        let settings = DetectSettings {
            lookback: chrono::Duration::from_std(self.settings.lookback).unwrap_or_default(),
            ..DetectSettings::default()
        };
        let pass = detect::run_pass(
            self.provider.as_ref(),
            self.feed.store().as_ref(),
            &mut snapshot,
            &mut budget,
            settings,
            Utc::now(),
        );
        // The lease is renewed while the pass runs, so a slow pass keeps it.
        let renew = async {
            loop {
                tokio::time::sleep(self.settings.interval).await;
                if let Err(e) = self.lease().await {
                    tracing::debug!(connection = %connection, error = %e, "renewing the poll lease failed");
                }
            }
        };
        let outcome = tokio::select! {
            outcome = pass => outcome,
            never = renew => never,
        };
        self.share.spend(budget.used(), Instant::now());
        // Fencing: a replica whose lease ended during the pass (or passed to another and back)
        // appends nothing; the holder reads the stored snapshot and finds the same changes.
        if self.lease().await? != Some(token) {
            tracing::warn!(connection = %connection, "the poll lease ended during a pass; its results are dropped");
            return Ok(());
        }
        let found = outcome.events.len();
        if let Err(e) = self.feed.append(outcome.events).await {
            // Nothing appended: the next pass starts from the same snapshot and finds them again.
            self.held = Some(held);
            return Err(e);
        }
        held.snapshot = snapshot;
        let bytes = held.snapshot.encode();
        let saved = if bytes == held.saved {
            Ok(())
        } else {
            self.feed
                .store()
                .put(&self.snapshot_key, Bytes::from(bytes.clone()), SNAPSHOT_TTL)
                .await
                .map(|()| held.saved = bytes)
        };
        self.held = Some(held);
        saved?;
        tracing::debug!(connection = %connection, events = found, calls = budget.used(), "poll pass done");
        if let Some(e) = outcome.error {
            tracing::warn!(connection = %connection, error = %e, "a poll pass stopped early; it goes on next interval");
        }
        let finished = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        self.feed
            .store()
            .put(
                &last_poll_key(&connection),
                Bytes::from(finished),
                self.settings.interval * 3 + Duration::from_secs(1),
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spend_passes(
        share: &mut QuotaShare,
        interval: Duration,
        passes: u32,
        start: Instant,
    ) -> Vec<(Instant, u32)> {
        (0..passes)
            .map(|i| {
                let at = start + interval * i;
                let budget = share.budget(at).left();
                share.spend(budget, at);
                (at, budget)
            })
            .collect()
    }

    #[test]
    fn a_documented_quota_is_shared_evenly_and_no_window_sees_more_than_the_share() {
        // Zipchat: 120 per 60 s, half of it, every 5 s: 5 calls a pass, 60 a minute.
        let interval = Duration::from_secs(5);
        let mut share = QuotaShare::new(Some((120, 60)), 0.5, interval);
        assert_eq!(share.allowance(), 60);
        assert_eq!(share.per_pass(), 5);
        let start = Instant::now();
        let passes = spend_passes(&mut share, interval, 60, start);
        for (i, (at, _)) in passes.iter().enumerate() {
            let in_window: u32 = passes[i..]
                .iter()
                .filter(|(later, _)| later.duration_since(*at) < Duration::from_secs(60))
                .map(|(_, n)| n)
                .sum();
            assert!(
                in_window <= 60,
                "{in_window} calls in a minute from pass {i}"
            );
        }
        // Passes closer together than planned still stay within the window's share.
        let mut share = QuotaShare::new(Some((120, 60)), 0.5, interval);
        let crowded = spend_passes(&mut share, Duration::from_millis(100), 100, start);
        let total: u32 = crowded.iter().map(|(_, n)| n).sum();
        assert_eq!(
            total, 60,
            "100 passes within 10 s spend the minute's share and no more"
        );
    }

    #[test]
    fn a_short_interval_gets_at_least_one_call_and_an_undocumented_quota_an_assumed_one() {
        let share = QuotaShare::new(Some((120, 60)), 0.5, Duration::from_secs(1));
        assert_eq!(share.per_pass(), 1);
        let share = QuotaShare::new(Some((120, 10)), 0.5, Duration::from_secs(5));
        assert_eq!((share.allowance(), share.per_pass()), (60, 30));
        // No quota: half of 240 a minute, every 5 s: 10 calls a pass, 120 a minute.
        let mut share = QuotaShare::new(None, 0.5, Duration::from_secs(5));
        assert_eq!(
            (share.allowance(), share.per_pass(), share.window()),
            (120, 10, Duration::from_secs(60))
        );
        assert_eq!(share.budget(Instant::now()).left(), 10);
        let tiny = QuotaShare::new(Some((1, 3600)), 0.1, Duration::from_secs(5));
        assert_eq!((tiny.allowance(), tiny.per_pass()), (1, 1));
    }
}
