//! Provider behaviour cases, run against every adapter through its simulator; the harness they
//! run on; and the one fixture loader.
//!
//! An adapter crate gets every case as its own test with one line in `tests/behaviour.rs`:
//!
//! ```ignore
//! switchboard_behaviour::behaviour_cases!(switchboard_zipchat::Zipchat, switchboard_sim::zipchat::VENDOR);
//! ```
//!
//! Each case is enabled by the adapter's `Capabilities`: an operation the adapter has is
//! exercised and read back; one it lacks is refused, by the capability check the registry puts
//! every connection behind, before any vendor call (the simulator's request counter says so).
#![deny(missing_docs)]

pub mod cases;
mod harness;

pub use harness::Harness;

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

/// What a vendor's `parse_error` makes of a non-2xx answer with `body` and no headers.
pub fn vendor_error(
    parse_error: switchboard_upstream::ErrorParser,
    status: u16,
    body: &str,
) -> switchboard_core::Error {
    let status = switchboard_upstream::StatusCode::from_u16(status)
        .unwrap_or(switchboard_upstream::StatusCode::IM_A_TEAPOT);
    parse_error(
        status,
        &switchboard_upstream::header::HeaderMap::new(),
        body.as_bytes(),
    )
}

/// Checks a vendor's `parse_error` against its table of `(vendor status, vendor body, gateway
/// status, gateway code)`, and that no gateway message repeats any of `never_shown` (words of the
/// vendor's bodies).
pub fn assert_error_table(
    parse_error: switchboard_upstream::ErrorParser,
    table: &[(u16, &str, u16, &str)],
    never_shown: &[&str],
) {
    for (status, body, http, code) in table {
        let e = vendor_error(parse_error, *status, body);
        assert_eq!(
            (e.kind().http_status(), e.code()),
            (*http, *code),
            "{status} {body}"
        );
        for vendor_text in never_shown {
            assert!(
                !e.message().contains(vendor_text),
                "{status} {body}: {}",
                e.message()
            );
        }
    }
}

/// One `#[tokio::test]` per behaviour case for adapter `$adapter` on simulator `$simulator` (a
/// `switchboard_sim::SimVendor`).
#[macro_export]
macro_rules! behaviour_cases {
    ($adapter:ty, $simulator:expr) => {
        $crate::behaviour_cases!(
            @each $adapter, $simulator,
            lists_every_conversation_once,
            includes_raw_only_when_asked,
            get_conversation,
            an_unknown_conversation_is_not_found,
            list_messages,
            list_agents,
            assign,
            unassign,
            send_message,
            set_status,
            the_bare_adapter_agrees_with_its_capabilities
        );
    };
    (@each $adapter:ty, $simulator:expr, $($case:ident),+) => {
        $(
            #[tokio::test]
            async fn $case() {
                $crate::cases::$case::<$adapter>($simulator).await;
            }
        )+
    };
}
