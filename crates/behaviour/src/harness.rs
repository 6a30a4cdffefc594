//! One adapter against its simulator on a loopback port.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use switchboard_core::{Checked, Provider};
use switchboard_sim::{Sim, SimOptions, SimVendor, Simulated};
use switchboard_upstream::{Adapter, Shared};

fn settings(vendor: SimVendor, base: &str) -> toml::Table {
    let text = (vendor.settings)(base);
    let mut settings: toml::Table =
        toml::from_str(&text).expect("the simulator's settings are TOML");
    let mut limit = toml::Table::new();
    limit.insert("requests".into(), 1_000_000.into());
    limit.insert("per_seconds".into(), 1.into());
    settings.insert("rate_limit".into(), limit.into());
    settings
}

fn connect<A: Adapter>(settings: &toml::Table, connection: &str) -> switchboard_core::Result<A> {
    let config: A::Config = toml::Value::Table(settings.clone())
        .try_into()
        .expect("the simulator's settings are a section of this adapter");
    A::connect(connection, &config, &Shared::default())
}

/// Adapter `A` connected to its simulator, alone on a loopback port (port 0), with the
/// simulator's quota lifted and the connection's own budget out of the way.
#[derive(Debug)]
pub struct Harness<A: Adapter> {
    /// The simulator (one vendor).
    pub sim: Sim,
    /// Its root URL (`http://127.0.0.1:{port}`).
    pub base: String,
    /// The connection id.
    pub connection: String,
    /// The bare adapter.
    pub adapter: Arc<A>,
    /// The same adapter behind its capability check, as the registry holds every connection.
    pub checked: Arc<dyn Provider>,
    vendor: SimVendor,
}

impl<A: Adapter> Harness<A> {
    /// The simulator of `vendor` with 60 conversations from seed 42, and connection `vendor.name`.
    pub async fn start(vendor: SimVendor) -> Harness<A> {
        let options = SimOptions {
            seed: 42,
            conversations: 60,
        };
        Harness::start_with(vendor, &options, vendor.name).await
    }

    /// The simulator of `vendor` generated from `options`, and connection `connection`.
    pub async fn start_with(
        vendor: SimVendor,
        options: &SimOptions,
        connection: &str,
    ) -> Harness<A> {
        let sim = Sim::new(options, &[vendor]);
        let addr = sim
            .clone()
            .spawn(([127, 0, 0, 1], 0).into())
            .await
            .expect("the simulator binds a loopback port");
        if let Some(simulated) = sim.vendor(vendor.name) {
            simulated.lift_quota();
        }
        let base = format!("http://{addr}");
        let adapter = Arc::new(
            connect::<A>(&settings(vendor, &base), connection).expect("the adapter connects"),
        );
        Harness {
            sim,
            base,
            connection: connection.to_owned(),
            checked: Checked::wrap(adapter.clone() as Arc<dyn Provider>),
            adapter,
            vendor,
        }
    }

    /// The `[[connections]]` keys of the simulator's account (what the gateway's demo config
    /// holds, minus `id` and `provider`), with the connection's budget out of the way.
    pub fn settings(&self) -> toml::Table {
        settings(self.vendor, &self.base)
    }

    /// Another connection to the simulator, with its settings changed by `edit` (other
    /// credentials, a short timeout): read by the adapter's own config type, as the server does.
    pub fn connect(&self, edit: impl FnOnce(&mut toml::Table)) -> switchboard_core::Result<A> {
        let mut settings = self.settings();
        edit(&mut settings);
        connect::<A>(&settings, &self.connection)
    }

    /// The running simulator.
    pub fn simulated(&self) -> &Arc<dyn Simulated> {
        self.sim
            .vendor(self.vendor.name)
            .expect("the harness runs its vendor")
    }

    /// Requests the simulated vendor received so far.
    pub fn requests(&self) -> u64 {
        self.sim
            .control
            .report()
            .requests
            .get(self.vendor.name)
            .copied()
            .unwrap_or_default()
    }

    /// The simulator's world (`harness.world::<switchboard_sim::zipchat::World>()`).
    pub fn world<W: Send + 'static>(&self) -> Arc<Mutex<W>> {
        self.sim
            .world::<W>()
            .expect("the world of the harness's vendor")
    }

    /// The gateway ids of the conversations the account lists.
    pub fn listed(&self) -> HashSet<String> {
        self.simulated()
            .listed_conversations()
            .into_iter()
            .map(|id| format!("{}:{id}", self.connection))
            .collect()
    }
}
