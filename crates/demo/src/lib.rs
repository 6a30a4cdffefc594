//! The demo's pairing of each vendor the gateway knows with its simulator: the simulators that
//! `switchboard demo` and `switchboard sim` run, and the gateway config whose connections point
//! at them. The server never depends on the simulators; the binary, the tests and the benchmarks
//! reach them through this crate.
#![deny(missing_docs)]

use switchboard_core::{Capabilities, ProviderKind};
use switchboard_server::registry::{self, VendorEntry};
use switchboard_sim::{Sim, SimOptions, SimVendor};

/// One vendor of the demo: the gateway's entry for it, its simulator, and the demo's
/// connection to that simulator.
#[derive(Debug)]
pub struct DemoVendor {
    /// The gateway's entry (kind, name, capabilities, how to connect).
    pub entry: &'static VendorEntry,
    /// Its simulator.
    pub simulator: SimVendor,
    /// The id of the demo's connection to its simulator.
    pub demo_connection: &'static str,
}

impl DemoVendor {
    /// The vendor's `provider = "..."` name.
    pub fn kind(&self) -> &'static ProviderKind {
        self.entry.kind()
    }

    /// What the vendor can do.
    pub fn capabilities(&self) -> Capabilities {
        self.entry.capabilities()
    }

    /// The demo's `[[connections]]` section for its simulator on `base`.
    pub fn demo_section(&self, base: &str) -> String {
        format!(
            "[[connections]]\nid = \"{}\"\nprovider = \"{}\"\n{}",
            self.demo_connection,
            self.kind(),
            (self.simulator.settings)(base)
        )
    }
}

/// Every vendor of [`registry::VENDORS`] with its simulator, in the same order.
pub static VENDORS: &[DemoVendor] = &[
    DemoVendor {
        entry: &registry::VENDORS[0],
        simulator: switchboard_sim::zipchat::VENDOR,
        demo_connection: "shop-zipchat",
    },
    DemoVendor {
        entry: &registry::VENDORS[1],
        simulator: switchboard_sim::chatbotx::VENDOR,
        demo_connection: "support-chatbotx",
    },
    DemoVendor {
        entry: &registry::VENDORS[2],
        simulator: switchboard_sim::pingback::VENDOR,
        demo_connection: "helpdesk-pingback",
    },
    DemoVendor {
        entry: &registry::VENDORS[3],
        simulator: switchboard_sim::octopush::VENDOR,
        demo_connection: "sms",
    },
];

/// The simulators of every vendor, generated from `options`, on one router.
pub fn simulators(options: &SimOptions) -> Sim {
    let vendors: Vec<SimVendor> = VENDORS.iter().map(|v| v.simulator).collect();
    Sim::new(options, &vendors)
}

/// A gateway config (TOML) whose connections point at the simulators on `base` (e.g.
/// `http://127.0.0.1:9100`): one demo connection per vendor.
pub fn demo_config(base: &str) -> String {
    let sections: Vec<String> = VENDORS.iter().map(|v| v.demo_section(base)).collect();
    format!(
        "# Connections to the Switchboard simulator at {base}.\n{}",
        sections.join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use switchboard_server::registry::Registry;
    use switchboard_upstream::Shared;

    #[test]
    fn every_vendor_has_its_simulator_and_its_demo_section_connects_to_it() {
        assert_eq!(
            VENDORS.len(),
            registry::VENDORS.len(),
            "every vendor is in the demo"
        );
        for (demo, entry) in VENDORS.iter().zip(registry::VENDORS) {
            assert_eq!(demo.kind(), entry.kind(), "in the registry's order");
        }
        let unique = |names: Vec<&str>| names.iter().collect::<HashSet<_>>().len() == names.len();
        assert!(unique(VENDORS.iter().map(|v| v.demo_connection).collect()));
        assert!(unique(VENDORS.iter().map(|v| v.simulator.name).collect()));
        let config = switchboard_server::Config::parse(&demo_config("http://127.0.0.1:9100"))
            .expect("the demo config parses");
        let registry =
            Registry::from_config(&config.connections, &Shared::default()).expect("it connects");
        for v in VENDORS {
            let provider = registry.get(v.demo_connection).expect("a demo connection");
            assert_eq!(provider.info().kind, *v.kind());
            assert!(
                v.demo_section("http://127.0.0.1:9100").contains(&format!(
                    "base_url = \"http://127.0.0.1:9100/{}",
                    v.simulator.name
                )),
                "{}: its simulator's routes are under its name",
                v.kind()
            );
        }
    }
}
