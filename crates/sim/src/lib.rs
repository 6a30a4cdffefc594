//! Deterministic simulators of the vendor APIs Switchboard talks to, served on one port, each
//! under its own prefix followed by the vendor's real path, from one seeded world, with a
//! `/_control` endpoint that counts requests and injects faults.
//!
//! This crate depends on no adapter: it implements the vendors as their public documents describe
//! them, so the adapters are tested against an independent reading.
#![deny(missing_docs)]
// Handlers answer errors as ready `Response`s; boxing them would only add noise.
#![allow(clippy::result_large_err)]

pub mod chatbotx;
pub mod control;
pub mod octopush;
pub mod pingback;
pub mod world;
pub mod zipchat;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::{get, post, put};
use chrono::Utc;

pub use control::{Control, Faults, Report};

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

/// The simulators and their shared control.
#[derive(Debug, Clone)]
pub struct Sim {
    /// Request counters and faults.
    pub control: Arc<Control>,
    /// The Zipchat account.
    pub zipchat: zipchat::Shared,
    /// The ChatbotX workspace.
    pub chatbotx: chatbotx::Shared,
    /// The PingBack business.
    pub pingback: pingback::Shared,
    /// The Octopush account.
    pub octopush: octopush::Shared,
}

impl Sim {
    /// Generates the world.
    pub fn new(options: &SimOptions) -> Sim {
        let now = Utc::now();
        Sim {
            control: Arc::new(Control::new()),
            zipchat: Arc::new(Mutex::new(zipchat::World::generate(
                options.seed,
                options.conversations,
                now,
            ))),
            chatbotx: Arc::new(Mutex::new(chatbotx::World::generate(
                options.seed,
                options.conversations,
                now,
            ))),
            pingback: Arc::new(Mutex::new(pingback::World::generate(
                options.seed,
                options.conversations,
                now,
            ))),
            octopush: Arc::new(Mutex::new(octopush::World::generate(
                options.seed,
                options.conversations,
                now,
            ))),
        }
    }

    /// Every vendor's routes under its prefix, plus `/_control`.
    pub fn router(&self) -> Router {
        let vendor = |name: &'static str, routes: Router| {
            routes.layer(axum::middleware::from_fn_with_state(
                (self.control.clone(), name),
                control::vendor_middleware,
            ))
        };
        let control_routes = Router::new()
            .route("/_control", get(control::get_report))
            .route("/_control/faults/{vendor}", put(control::put_faults))
            .route("/_control/reset", post(control::reset))
            .with_state(self.control.clone());
        Router::new()
            .nest(
                zipchat::PREFIX,
                vendor("zipchat", zipchat::router(self.zipchat.clone())),
            )
            .nest(
                chatbotx::PREFIX,
                vendor("chatbotx", chatbotx::router(self.chatbotx.clone())),
            )
            .nest(
                pingback::PREFIX,
                vendor("pingback", pingback::router(self.pingback.clone())),
            )
            .nest(
                octopush::PREFIX,
                vendor("octopush", octopush::router(self.octopush.clone())),
            )
            .merge(control_routes)
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

/// A gateway config (TOML) whose connections point at a simulator on `base` (e.g.
/// `http://127.0.0.1:9100`), one connection per vendor.
pub fn gateway_config(base: &str) -> String {
    let zipchat = format!(
        r#"# Connections to the Switchboard simulator at {base}.
[[connections]]
id = "shop-zipchat"
provider = "zipchat"
base_url = "{base}{zipchat_prefix}"
chat_id = "{chat}"
api_key = "{zipchat_key}"
"#,
        zipchat_prefix = zipchat::PREFIX,
        chat = zipchat::CHAT_ID,
        zipchat_key = zipchat::API_KEY,
    );
    [
        zipchat,
        chatbotx::config_snippet(base),
        pingback::config_snippet(base),
        octopush::config_snippet(base),
    ]
    .join("\n")
}

impl Sim {
    /// Lifts the vendors' own request quotas (Zipchat's and ChatbotX's windows), so a benchmark
    /// measures the gateway rather than the vendors' limits.
    pub fn lift_rate_limits(&self) {
        if let Ok(mut world) = self.zipchat.lock() {
            world.set_quota(u32::MAX);
        }
        if let Ok(mut world) = self.chatbotx.lock() {
            world.set_quota(u32::MAX);
        }
    }

    /// The gateway id of the newest Zipchat conversation (for the demo's example lines).
    pub fn newest_zipchat_conversation(&self) -> Option<String> {
        let world = self.zipchat.lock().ok()?;
        world
            .newest_conversation(zipchat::CHAT_ID)
            .map(|id| format!("shop-zipchat:{id}"))
    }
}
