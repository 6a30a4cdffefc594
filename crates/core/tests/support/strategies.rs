//! The merge properties' strategies (worlds of vendors, filters, page limits) and the helpers
//! their checks share.
#![allow(dead_code)]

use std::future::Future;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use switchboard_core::merge::{LaneState, MergeState, Sortable};
use switchboard_core::{Channel, Conversation, ConversationFilter, Mode, Status, UpstreamPage};

use super::{CHANNELS, ConvSpec, GatewayPage, Paging, VendorSpec};

pub fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(cases),
        // `PROPTEST_CASES=5000` runs more. Minimal failing cases found so far are kept as named
        // tests at the end of this file rather than in a regressions file.
        failure_persistence: None,
        max_shrink_iters: 16_384,
        ..ProptestConfig::default()
    }
}

pub fn block_on<F: Future<Output = Result<(), TestCaseError>>>(f: F) -> Result<(), TestCaseError> {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| TestCaseError::fail(format!("no runtime: {e}")))?
        .block_on(f)
}

// ---------------------------------------------------------------------------------------------
// Strategies

pub fn status() -> impl Strategy<Value = Status> {
    prop::sample::select(Status::ALL.to_vec())
}

pub fn mode() -> impl Strategy<Value = Option<Mode>> {
    prop::sample::select(vec![None, Some(Mode::Ai), Some(Mode::Human)])
}

pub fn channel() -> impl Strategy<Value = Channel> {
    prop::sample::select(CHANNELS.to_vec())
}

/// Activity within 40 seconds, mostly on whole seconds: many ties in time. With `sub_micro`,
/// also nanoseconds below the microsecond (vendors sending RFC 3339 with 9 digits).
pub fn conv_spec(sub_micro: bool) -> impl Strategy<Value = ConvSpec> {
    let fraction = if sub_micro {
        prop_oneof![Just(0i64), 0i64..3, (0i64..3).prop_map(|n| 1_000 + n)].boxed()
    } else {
        prop_oneof![3 => Just(0i64), 1 => (1i64..3).prop_map(|us| us * 1_000)].boxed()
    };
    (0i64..40, fraction, status(), mode(), channel()).prop_map(
        |(secs, fraction, status, mode, channel)| ConvSpec {
            at_nanos: secs * 1_000_000_000 + fraction,
            status,
            mode,
            channel,
        },
    )
}

pub fn paging() -> impl Strategy<Value = Paging> {
    prop::sample::select(vec![
        Paging::Number,
        Paging::NumberTrailingEmpty,
        Paging::Keyset,
    ])
}

/// What may go wrong with a vendor in a test.
#[derive(Debug, Clone, Copy)]
pub struct Trouble {
    pub failures: bool,
    pub churn: bool,
}

pub const CALM: Trouble = Trouble {
    failures: false,
    churn: false,
};

pub fn failures(enabled: bool) -> BoxedStrategy<Vec<bool>> {
    if enabled {
        prop_oneof![
            3 => Just(Vec::new()),
            3 => prop::collection::vec(prop::bool::weighted(0.3), 1..8),
            1 => Just(vec![true]),
        ]
        .boxed()
    } else {
        Just(Vec::new()).boxed()
    }
}

pub fn vendor_spec(trouble: Trouble) -> impl Strategy<Value = VendorSpec> {
    let conversations = prop_oneof![
        prop::collection::vec(conv_spec(false), 0..12),
        prop::collection::vec(conv_spec(false), 0..200),
    ];
    let churn = if trouble.churn {
        proptest::option::of(any::<u64>()).boxed()
    } else {
        Just(None).boxed()
    };
    (
        paging(),
        1u32..30,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        conversations,
        failures(trouble.failures),
        churn,
    )
        .prop_map(
            |(
                paging,
                page_size,
                native_status,
                native_updated_since,
                undocumented_order,
                conversations,
                failures,
                churn_seed,
            )| {
                VendorSpec {
                    paging,
                    page_size,
                    native_status,
                    native_updated_since,
                    undocumented_order,
                    conversations,
                    failures,
                    churn_seed,
                }
            },
        )
}

pub fn world(trouble: Trouble) -> impl Strategy<Value = Vec<VendorSpec>> {
    prop::collection::vec(vendor_spec(trouble), 1..=5)
}

/// No filter a quarter of the time; otherwise status (vendor-native on some connections),
/// mode and channel (gateway-only) and `updated_since` (a stop for sorted lanes without it).
pub fn filter() -> impl Strategy<Value = ConversationFilter> {
    let some = (
        prop::sample::subsequence(Status::ALL.to_vec(), 0..=2),
        proptest::option::of(prop::sample::select(vec![Mode::Ai, Mode::Human])),
        prop::sample::subsequence(CHANNELS.to_vec(), 0..=2),
        proptest::option::of((0i64..40).prop_map(|s| super::at(s * 1_000_000_000))),
    )
        .prop_map(
            |(status, mode, channel, updated_since)| ConversationFilter {
                status,
                mode,
                channel,
                assignee: None,
                updated_since,
            },
        );
    prop_oneof![1 => Just(ConversationFilter::default()), 3 => some]
}

/// The limit of each page, cycled: the client may change it between pages.
pub fn limits() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(prop_oneof![1usize..=4, 1usize..=100], 1..6)
}

// ---------------------------------------------------------------------------------------------
// Helpers

pub fn ids(items: &[Conversation]) -> Vec<String> {
    items.iter().map(|c| c.id.clone()).collect()
}

pub fn fresh_lane(connection: &str) -> LaneState {
    LaneState {
        connection: connection.to_owned(),
        page: UpstreamPage::First,
        consumed: 0,
        page_size: 0,
        exhausted: false,
        last: None,
        failures: 0,
        window: None,
    }
}

/// A lane's state as the page started.
pub fn lane_in(page: &GatewayPage, connection: &str) -> Option<LaneState> {
    match &page.state_in {
        None => Some(fresh_lane(connection)),
        Some(MergeState { lanes }) => lanes.iter().find(|l| l.connection == connection).cloned(),
    }
}

pub fn lane_out<'a>(page: &'a GatewayPage, connection: &str) -> Option<&'a LaneState> {
    page.out
        .next
        .as_ref()
        .and_then(|s| s.lanes.iter().find(|l| l.connection == connection))
}

/// Upstream pages a vendor's list spans (plus the trailing empty one some vendors serve).
pub fn upstream_pages(spec: &VendorSpec) -> usize {
    spec.conversations.len() / spec.page_size as usize + 2
}

pub fn strictly_descending(items: &[Conversation]) -> bool {
    items.windows(2).all(|w| w[0].sort_key() > w[1].sort_key())
}

pub fn connections(specs: &[VendorSpec]) -> Vec<String> {
    (0..specs.len()).map(|i| format!("c{i}")).collect()
}

// ---------------------------------------------------------------------------------------------
// 1. Static data: every match exactly once, in order, and the traversal ends.
