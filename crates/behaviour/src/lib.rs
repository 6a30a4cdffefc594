//! Provider behaviour cases, run against every adapter through its simulator; the harness they
//! run on and the reads they make; the checks of every vendor's error parser; and the one
//! fixture loader.
//!
//! An adapter crate gets every case as its own test with one line in `tests/behaviour.rs` (a
//! test target with `harness = false`):
//!
//! ```ignore
//! switchboard_behaviour::behaviour_main!(switchboard_zipchat::Zipchat, switchboard_sim::zipchat::VENDOR);
//! ```
//!
//! Each case is enabled by the adapter's `Capabilities`: an operation the adapter has is
//! exercised and read back; one it lacks is refused, by the capability check the registry puts
//! every connection behind, before any vendor call (the simulator's request counter says so). A
//! case that cannot apply to the adapter at all is reported as ignored (skipped), with the
//! capability it needs, never as passed.
#![deny(missing_docs)]

pub mod cases;
mod errors;
mod harness;
mod reads;

use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;

use libtest_mimic::{Arguments, Failed, Trial};
use switchboard_core::Capabilities;
use switchboard_sim::SimVendor;
use switchboard_upstream::Adapter;

pub use errors::{assert_vendor_errors, vendor_error};
pub use harness::Harness;
pub use reads::{all_conversations, all_messages, assert_not_found, assert_once_newest_first};

/// The text of fixture `name` of the crate at `manifest_dir` (`{manifest_dir}/fixtures/{name}`):
/// the vendor's documented examples, verbatim. Panics, naming the file, when it cannot be read.
pub fn fixture(manifest_dir: &str, name: &str) -> String {
    let path = format!("{manifest_dir}/fixtures/{name}");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

/// Fixture `name` of the calling crate: `fixture!("list_conversations.json")`.
#[macro_export]
macro_rules! fixture {
    ($name:expr) => {
        $crate::fixture(env!("CARGO_MANIFEST_DIR"), $name)
    };
}

/// The behaviour suite's `main` for adapter `$adapter` on simulator `$simulator` (a
/// `switchboard_sim::SimVendor`), in a test target with `harness = false`.
#[macro_export]
macro_rules! behaviour_main {
    ($adapter:ty, $simulator:expr) => {
        fn main() -> std::process::ExitCode {
            $crate::run::<$adapter>($simulator)
        }
    };
}

/// A case: its name, the capability it needs to apply at all (`None`: every adapter), and how
/// to run it.
type Case = (
    &'static str,
    Needs,
    fn(SimVendor) -> Pin<Box<dyn Future<Output = ()> + Send>>,
);

/// The capability a case needs, by name, and how to read it.
type Needs = Option<(&'static str, fn(&Capabilities) -> bool)>;

/// Every case for adapter `A`.
fn cases<A: Adapter>() -> Vec<Case> {
    macro_rules! case {
        ($name:ident) => {
            (stringify!($name), None, |v| Box::pin(cases::$name::<A>(v)))
        };
        ($name:ident, needs $capability:ident) => {
            (
                stringify!($name),
                Some((stringify!($capability), |c: &Capabilities| c.$capability)),
                |v| Box::pin(cases::$name::<A>(v)),
            )
        };
    }
    vec![
        case!(lists_every_conversation_once),
        case!(includes_raw_only_when_asked, needs list_conversations),
        case!(get_conversation),
        case!(an_unknown_conversation_is_not_found, needs get_conversation),
        case!(list_messages),
        case!(list_agents),
        case!(assign),
        case!(unassign),
        case!(send_message),
        case!(set_status),
        case!(the_bare_adapter_agrees_with_its_capabilities),
    ]
}

/// The capability a case needs and `capabilities` lack, if any.
fn missing_capability(needs: Needs, capabilities: &Capabilities) -> Option<&'static str> {
    needs.and_then(|(capability, has)| (!has(capabilities)).then_some(capability))
}

/// Runs every behaviour case for adapter `A` on `vendor`'s simulator as a test, each on a
/// runtime of its own; a case whose capability the adapter lacks is ignored, naming it.
pub fn run<A: Adapter>(vendor: SimVendor) -> ExitCode {
    let args = Arguments::from_args();
    let capabilities = (A::VENDOR.capabilities)();
    let trials = cases::<A>()
        .into_iter()
        .map(|(name, needs, case)| {
            let missing = missing_capability(needs, &capabilities);
            let trial = Trial::test(name, move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| Failed::from(format!("no runtime: {e}")))?
                    .block_on(case(vendor));
                Ok(())
            });
            match missing {
                Some(capability) => trial
                    .with_kind(format!("needs {capability}"))
                    .with_ignored_flag(true),
                None => trial,
            }
        })
        .collect();
    libtest_mimic::run(&args, trials).exit_code()
}
