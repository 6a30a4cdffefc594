//! Webhooks: every event delivered to each configured endpoint, signed per the Standard Webhooks
//! spec, at least once and in order per endpoint, with retries on the spec's schedule.
//!
//! - `config`: `[[webhooks]]`;
//! - `signing`: `webhook-id` / `webhook-timestamp` / `webhook-signature`;
//! - `policy`: the retry schedule and what each receiver answer means;
//! - `target`: which addresses webhooks may go to;
//! - `receiver`: the bounded HTTP client that makes one attempt;
//! - `outbox`: each endpoint's delivery state in the store, and replay requests;
//! - `worker`: one delivery loop per endpoint, under a store lease.

pub mod config;
pub mod outbox;
pub mod policy;
pub mod receiver;
pub mod signing;
pub mod target;
mod worker;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use switchboard_core::{Event, EventType, Result};
use switchboard_feed::EventLog;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

pub use config::WebhookConfig;
pub use outbox::OutboxState;
pub use policy::{Outcome, RetrySchedule};
pub use receiver::Receiver;
pub use signing::WebhookSecret;
pub use worker::LEASE_TTL;

/// The most pending events `GET /v1/webhooks` counts per endpoint.
pub const BACKLOG_CAP: usize = 1000;

/// One configured endpoint.
#[derive(Debug)]
pub struct Endpoint {
    /// Its `[[webhooks]]` entry.
    pub config: WebhookConfig,
    /// The event types it receives.
    pub types: Vec<EventType>,
    /// The connections whose events it receives (`None`: all).
    pub connections: Option<BTreeSet<String>>,
    receiver: Receiver,
    schedule: RetrySchedule,
    /// Wakes the worker (a replay was asked on this replica).
    wake: Notify,
}

impl Endpoint {
    /// Whether `event` goes to this endpoint.
    pub fn wants(&self, event: &Event) -> bool {
        self.types.contains(&event.kind)
            && self
                .connections
                .as_ref()
                .is_none_or(|c| c.contains(&event.connection))
    }

    /// The retry schedule.
    pub fn schedule(&self) -> &RetrySchedule {
        &self.schedule
    }
}

/// Every endpoint and its worker.
#[derive(Debug)]
pub struct Webhooks {
    endpoints: Vec<Arc<Endpoint>>,
    stop: watch::Sender<bool>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl Default for Webhooks {
    fn default() -> Webhooks {
        Webhooks::new(Vec::new())
    }
}

impl Webhooks {
    fn new(endpoints: Vec<Arc<Endpoint>>) -> Webhooks {
        Webhooks {
            endpoints,
            stop: watch::channel(false).0,
            workers: Mutex::new(Vec::new()),
        }
    }

    /// The endpoints of validated `[[webhooks]]` entries.
    pub fn from_config(
        configs: &[WebhookConfig],
        allow_private_default: bool,
    ) -> anyhow::Result<Webhooks> {
        let endpoints = configs
            .iter()
            .map(|config| {
                let types = match &config.events {
                    Some(names) => names.iter().filter_map(|n| EventType::parse(n)).collect(),
                    None => EventType::ALL.to_vec(),
                };
                Ok(Arc::new(Endpoint {
                    config: config.clone(),
                    types,
                    connections: config
                        .connections
                        .as_ref()
                        .map(|c| c.iter().cloned().collect()),
                    receiver: Receiver::new(config, allow_private_default)?,
                    schedule: config.schedule(),
                    wake: Notify::new(),
                }))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Webhooks::new(endpoints))
    }

    /// Every endpoint, in config order.
    pub fn endpoints(&self) -> &[Arc<Endpoint>] {
        &self.endpoints
    }

    /// The endpoint `id`.
    pub fn get(&self, id: &str) -> Option<&Arc<Endpoint>> {
        self.endpoints.iter().find(|e| e.config.id == id)
    }

    /// Starts one worker per endpoint over `log`. A new endpoint's state is saved first, so it
    /// receives every event appended once this returns (if the store does not answer now, its
    /// worker saves it later, starting from the log's end then).
    pub async fn start(&self, log: &EventLog) {
        let holder = holder_name();
        for endpoint in &self.endpoints {
            if let Err(e) = worker::load_or_start(endpoint, log).await {
                tracing::warn!(webhook = %endpoint.config.id, error = %e, "the webhook state could not be read yet");
            }
        }
        let mut workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        for endpoint in &self.endpoints {
            let ctx = worker::Context {
                log: log.clone(),
                holder: holder.clone(),
                stop: self.stop.subscribe(),
            };
            workers.push(tokio::spawn(worker::run(endpoint.clone(), ctx)));
        }
    }

    /// Stops the workers (each finishes its attempt in flight, saves, and gives its lease up).
    pub async fn stop(&self) {
        let _ = self.stop.send(true);
        let workers: Vec<JoinHandle<()>> =
            std::mem::take(&mut *self.workers.lock().unwrap_or_else(|p| p.into_inner()));
        for worker in workers {
            let _ = worker.await;
        }
    }

    /// Asks `endpoint`'s worker (on whichever replica holds it) to deliver again: from `after`
    /// when `rewind`, else from where it stopped; re-enables it. [`Webhooks::status`] shows it
    /// as applied at once; the worker applies it within seconds (at once on this replica).
    pub async fn replay(
        &self,
        endpoint: &Endpoint,
        log: &EventLog,
        after: Option<String>,
        rewind: bool,
    ) -> Result<()> {
        let request = outbox::ReplayRequest {
            request: holder_name(),
            after,
            rewind,
        };
        outbox::request_replay(log.store().as_ref(), &endpoint.config.id, &request).await?;
        endpoint.wake.notify_one();
        Ok(())
    }

    /// `endpoint`'s state (with a replay asked but not yet applied shown as applied), and its
    /// backlog: the events it has yet to receive, counted up to [`BACKLOG_CAP`].
    pub async fn status(
        &self,
        endpoint: &Endpoint,
        log: &EventLog,
    ) -> Result<(OutboxState, usize)> {
        let store = log.store().as_ref();
        let id = &endpoint.config.id;
        let mut state = outbox::load(store, id).await?.unwrap_or_default();
        if let Some(replay) = outbox::pending_replay(store, id).await? {
            state.apply(&replay);
        }
        let keep = |event: &Event| endpoint.wants(event);
        let mut backlog = 0;
        let mut after = state.position();
        // A bounded scan: at most a few pages of the log.
        for _ in 0..10 {
            let page = match log.page(after, BACKLOG_CAP - backlog, &keep).await {
                Ok(page) => page,
                // Past the retention: the worker goes on from the oldest event kept.
                Err(e) if e.kind() == switchboard_core::ErrorKind::Gone && after.is_some() => {
                    after = None;
                    continue;
                }
                Err(e) => return Err(e),
            };
            backlog += page.events.len();
            if backlog >= BACKLOG_CAP || page.next == after {
                break;
            }
            after = page.next;
        }
        Ok((state, backlog))
    }
}

/// A name for this process in leases (and for replay requests): random, so two replicas
/// never share one.
fn holder_name() -> String {
    let mut bytes = [0u8; 12];
    if getrandom::fill(&mut bytes).is_err() {
        bytes = fastrand::u128(..).to_le_bytes()[..12]
            .try_into()
            .unwrap_or_default();
    }
    hex::encode(bytes)
}
