//! Deterministic simulators of the vendor APIs Switchboard talks to, served on one port, each
//! under its own prefix followed by the vendor's real path, from one seeded world, with a
//! `/_control` endpoint that counts requests and injects faults. Each vendor is a module
//! (`mod.rs`: its objects and its [`SimVendor`]; `world.rs`: generation and state; `json.rs`:
//! its JSON and error bodies; `routes.rs`: its endpoints); the gateway's registry lists which
//! run.
//!
//! This crate depends on no adapter: it implements the vendors as their public documents describe
//! them, so the adapters are tested against an independent reading.
#![deny(missing_docs)]
// Handlers answer errors as ready `Response`s; boxing them would only add noise.
#![allow(clippy::result_large_err)]

pub mod chatbotx;
pub mod control;
pub mod echo;
mod generator;
mod json;
pub mod live;
pub mod octopush;
pub mod pingback;
pub mod zipchat;

use std::any::Any;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::{get, post, put};
use chrono::{DateTime, Utc};

pub use control::{Control, Faults, Report};
pub use live::{Change, ChangeKind, ChangeLog, ChangesPage, Tick};

/// How to build the simulated world.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// The seed: the same seed gives the same data.
    pub seed: u64,
    /// Conversations per vendor.
    pub conversations: usize,
}

impl Default for SimOptions {
    fn default() -> SimOptions {
        SimOptions {
            seed: 42,
            conversations: 300,
        }
    }
}

/// One simulated vendor, as the simulator's router, its `/_control` and a gateway's config see
/// it. Each vendor module has one (`zipchat::VENDOR`, ...).
#[derive(Debug, Clone, Copy)]
pub struct SimVendor {
    /// Its name in `/_control` (`/_control/faults/{name}`, the request counters).
    pub name: &'static str,
    /// Where its routes live: `/{name}` followed by the vendor's own base path.
    pub prefix: &'static str,
    /// Generates it from the options, with times before `now`.
    pub generate: fn(&SimOptions, DateTime<Utc>) -> Arc<dyn Simulated>,
    /// The keys of a gateway `[[connections]]` section for its account on a simulator at `base`
    /// (`http://127.0.0.1:9100`), other than `id` and `provider`, one per line.
    pub settings: fn(base: &str) -> String,
}

/// A request sent straight to a simulated vendor (the benchmark's floor).
#[derive(Debug, Clone)]
pub struct DirectRequest {
    /// The whole URL.
    pub url: String,
    /// The headers it needs (its credentials).
    pub headers: Vec<(&'static str, String)>,
}

/// One running simulated vendor.
pub trait Simulated: Send + Sync + std::fmt::Debug {
    /// Its routes, to be nested under its prefix.
    fn router(&self) -> Router;
    /// The native ids of the conversations its account's list shows.
    fn listed_conversations(&self) -> Vec<String>;
    /// The native id of its account's most recently active conversation.
    fn newest_conversation(&self) -> Option<String>;
    /// How many messages conversation `id` holds.
    fn message_count(&self, id: &str) -> usize;
    /// How many messages of every conversation hold exactly `text`: the vendor's own record of
    /// what it delivered.
    fn messages_with_text(&self, text: &str) -> usize;
    /// Lifts its request quota out of the way (benchmarks).
    fn lift_quota(&self);
    /// The requests a client sends for the first page of its account's conversations, with
    /// valid credentials, to a simulator at `base`.
    fn first_page(&self, base: &str) -> Vec<DirectRequest>;
    /// Its world (an `Arc<Mutex<World>>` of its module), for tests that read or change it.
    fn world(&self) -> &dyn Any;
    /// Takes one step of life by the vendor's rules at `now`, drawing from `seed`: a customer
    /// writes, a bot answers, an agent closes a conversation; what it changed, if anything.
    fn tick(&self, seed: u64, now: DateTime<Utc>) -> Option<Tick>;
}

/// The simulators and their shared control.
#[derive(Debug, Clone)]
pub struct Sim {
    /// Request counters and faults.
    pub control: Arc<Control>,
    vendors: Vec<(SimVendor, Arc<dyn Simulated>)>,
    changes: Arc<Mutex<ChangeLog>>,
    live_rng: Arc<Mutex<fastrand::Rng>>,
}

impl Sim {
    /// Generates the world of each of `vendors`.
    pub fn new(options: &SimOptions, vendors: &[SimVendor]) -> Sim {
        let now = Utc::now();
        Sim {
            control: Arc::new(Control::new(vendors.iter().map(|v| v.name))),
            vendors: vendors
                .iter()
                .map(|v| (*v, (v.generate)(options, now)))
                .collect(),
            changes: Arc::default(),
            live_rng: Arc::new(Mutex::new(fastrand::Rng::with_seed(
                options.seed ^ 0x6c69_7665,
            ))),
        }
    }

    /// One step of the live world at `now`: each vendor in turn changes at most one thing by
    /// its rules. The changes are recorded for `/_control/changes` and returned. Given the seed
    /// (and no other writes), the same steps make the same changes.
    pub fn step(&self, now: DateTime<Utc>) -> Vec<Change> {
        let seeds: Vec<u64> = {
            let mut rng = lock(&self.live_rng);
            self.vendors.iter().map(|_| rng.u64(..)).collect()
        };
        let mut made = Vec::new();
        for ((vendor, simulated), seed) in self.vendors.iter().zip(seeds) {
            if let Some(tick) = simulated.tick(seed, now) {
                made.push(lock(&self.changes).record(vendor.name, tick, now));
            }
        }
        made
    }

    /// The changes made so far with a sequence number above `after`, oldest first.
    pub fn changes(&self, after: u64) -> Vec<Change> {
        lock(&self.changes).after(after)
    }

    /// Makes the world live: a background task takes a [`Sim::step`] every `every` until it is
    /// aborted.
    pub fn spawn_live(&self, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
        let sim = self.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(every);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The first tick is immediate: let the world be still for one period first.
            interval.tick().await;
            loop {
                interval.tick().await;
                for c in sim.step(Utc::now()) {
                    tracing::debug!(vendor = c.vendor, conversation = c.conversation, kind = ?c.kind, by = c.by, "live change");
                }
            }
        })
    }

    /// The simulated vendor named `name`.
    pub fn vendor(&self, name: &str) -> Option<&Arc<dyn Simulated>> {
        self.vendors
            .iter()
            .find(|(v, _)| v.name == name)
            .map(|(_, s)| s)
    }

    /// The world of type `W` (e.g. `sim.world::<zipchat::World>()`), if that vendor runs.
    pub fn world<W: Send + 'static>(&self) -> Option<Arc<Mutex<W>>> {
        self.vendors
            .iter()
            .find_map(|(_, s)| s.world().downcast_ref::<Arc<Mutex<W>>>())
            .cloned()
    }

    /// Every vendor's routes under its prefix, plus `/_control`.
    pub fn router(&self) -> Router {
        let control_routes = Router::new()
            .route("/_control", get(control::get_report))
            .route("/_control/faults/{vendor}", put(control::put_faults))
            .route("/_control/reset", post(control::reset))
            .with_state(self.control.clone())
            .merge(
                Router::new()
                    .route("/_control/changes", get(live::get_changes))
                    .with_state(self.changes.clone()),
            )
            .merge(
                Router::new()
                    .route("/_control/messages", get(messages_with_text))
                    .with_state(self.clone()),
            );
        let mut router = Router::new();
        for (vendor, simulated) in &self.vendors {
            let routes = simulated
                .router()
                .layer(axum::middleware::from_fn_with_state(
                    (self.control.clone(), vendor.name),
                    control::vendor_middleware,
                ));
            router = router.nest(vendor.prefix, routes);
        }
        router.merge(control_routes)
    }

    /// How many messages hold exactly `text`, per vendor: what each vendor delivered, by its own
    /// record.
    pub fn messages_with_text(&self, text: &str) -> BTreeMap<String, usize> {
        self.vendors
            .iter()
            .map(|(v, s)| (v.name.to_owned(), s.messages_with_text(text)))
            .collect()
    }

    /// Lifts every vendor's own request quota, so a benchmark measures the gateway rather than
    /// the vendors' limits.
    pub fn lift_rate_limits(&self) {
        for (_, simulated) in &self.vendors {
            simulated.lift_quota();
        }
    }

    /// Serves the simulators on `listener` until the task is dropped.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        axum::serve(listener, self.router()).await
    }

    /// Binds `addr` (port 0 for any) and serves in a background task; returns the bound address.
    pub async fn spawn(self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        tokio::spawn(async move {
            if let Err(e) = self.serve(listener).await {
                tracing::error!(error = %e, "simulator stopped");
            }
        });
        Ok(local)
    }
}

/// What each vendor's world tells the simulator about itself; [`simulator`] makes a running
/// [`Simulated`] of it.
trait SimWorld: Send + std::fmt::Debug + Sized + 'static {
    /// Generates the world from the options, with times before `now`.
    fn generate(options: &SimOptions, now: DateTime<Utc>) -> Self;
    /// Its routes over the shared world.
    fn routes(world: Arc<Mutex<Self>>) -> Router;
    /// See [`Simulated::listed_conversations`].
    fn listed(&self) -> Vec<String>;
    /// See [`Simulated::newest_conversation`].
    fn newest(&self) -> Option<String>;
    /// See [`Simulated::message_count`].
    fn messages_in(&self, id: &str) -> usize;
    /// See [`Simulated::messages_with_text`].
    fn messages_with_text(&self, text: &str) -> usize;
    /// See [`Simulated::lift_quota`].
    fn lift_quota(&mut self);
    /// See [`Simulated::first_page`].
    fn first_page(&mut self, base: &str) -> Vec<DirectRequest>;
    /// See [`Simulated::tick`]: one change by the vendor's rules at `now`, drawing from `g`.
    fn tick(&mut self, g: &mut generator::Gen, now: DateTime<Utc>) -> Option<Tick>;
}

/// What `GET /_control/messages` asks: the exact text to count.
#[derive(Debug, serde::Deserialize)]
struct TextQuery {
    text: String,
}

/// `GET /_control/messages?text=...`: how many messages hold exactly `text`, per vendor.
async fn messages_with_text(
    axum::extract::State(sim): axum::extract::State<Sim>,
    axum::extract::Query(query): axum::extract::Query<TextQuery>,
) -> axum::Json<BTreeMap<String, usize>> {
    axum::Json(sim.messages_with_text(&query.text))
}

/// Locks a mutex, even after a panic elsewhere.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A running simulated vendor: its world, shared by its routes and the tests.
#[derive(Debug)]
struct Simulator<W>(Arc<Mutex<W>>);

impl<W: SimWorld> Simulator<W> {
    /// Locks the world, even after a panic elsewhere.
    fn lock(&self) -> std::sync::MutexGuard<'_, W> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl<W: SimWorld> Simulated for Simulator<W> {
    fn router(&self) -> Router {
        W::routes(self.0.clone())
    }

    fn listed_conversations(&self) -> Vec<String> {
        self.lock().listed()
    }

    fn newest_conversation(&self) -> Option<String> {
        self.lock().newest()
    }

    fn message_count(&self, id: &str) -> usize {
        self.lock().messages_in(id)
    }

    fn messages_with_text(&self, text: &str) -> usize {
        self.lock().messages_with_text(text)
    }

    fn lift_quota(&self) {
        self.lock().lift_quota();
    }

    fn first_page(&self, base: &str) -> Vec<DirectRequest> {
        self.lock().first_page(base)
    }

    fn world(&self) -> &dyn Any {
        &self.0
    }

    fn tick(&self, seed: u64, now: DateTime<Utc>) -> Option<Tick> {
        self.lock().tick(&mut generator::Gen::new(seed, now), now)
    }
}

/// A running simulator of world `W` (each vendor's [`SimVendor::generate`]).
fn simulator<W: SimWorld>(options: &SimOptions, now: DateTime<Utc>) -> Arc<dyn Simulated> {
    Arc::new(Simulator(Arc::new(Mutex::new(W::generate(options, now)))))
}
