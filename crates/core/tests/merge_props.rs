//! Property tests of the merge engine's guarantees (DESIGN.md §4), over in-memory vendors driven
//! the way the server drives them, with the state carried between pages in the real signed cursor:
//!
//! 1. over data that does not change, a traversal returns every matching conversation exactly
//!    once, newest first, and ends;
//! 2. over data that changes between and during pages, it never returns a conversation twice, and
//!    never misses one that did not change;
//! 3. a page makes only the upstream calls it needs: one per active lane, plus one each time a
//!    lane used up its upstream page while the page still had room; never a page fetched ahead
//!    or twice, and no more per page deep in a traversal than at its start;
//! 4. a failing lane is reported, keeps its position, is given up after `MAX_LANE_FAILURES`
//!    consecutive failed pages, and never costs the other lanes an item or a duplicate.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::future::Future;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use switchboard_core::merge::{LaneState, MAX_LANE_FAILURES, MergeState, Sortable};
use switchboard_core::{Channel, Conversation, ConversationFilter, Mode, Status, UpstreamPage};

use support::{CHANNELS, ConvSpec, GatewayPage, Paging, VendorSpec, World};

fn config(cases: u32) -> ProptestConfig {
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

fn block_on<F: Future<Output = Result<(), TestCaseError>>>(f: F) -> Result<(), TestCaseError> {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| TestCaseError::fail(format!("no runtime: {e}")))?
        .block_on(f)
}

// ---------------------------------------------------------------------------------------------
// Strategies

fn status() -> impl Strategy<Value = Status> {
    prop::sample::select(Status::ALL.to_vec())
}

fn mode() -> impl Strategy<Value = Option<Mode>> {
    prop::sample::select(vec![None, Some(Mode::Ai), Some(Mode::Human)])
}

fn channel() -> impl Strategy<Value = Channel> {
    prop::sample::select(CHANNELS.to_vec())
}

/// Activity within 40 seconds, mostly on whole seconds: many ties in time. With `sub_micro`,
/// also nanoseconds below the microsecond (vendors sending RFC 3339 with 9 digits).
fn conv_spec(sub_micro: bool) -> impl Strategy<Value = ConvSpec> {
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

fn paging() -> impl Strategy<Value = Paging> {
    prop::sample::select(vec![
        Paging::Number,
        Paging::NumberTrailingEmpty,
        Paging::Keyset,
    ])
}

/// What may go wrong with a vendor in a test.
#[derive(Debug, Clone, Copy)]
struct Trouble {
    failures: bool,
    churn: bool,
}

const CALM: Trouble = Trouble {
    failures: false,
    churn: false,
};

fn failures(enabled: bool) -> BoxedStrategy<Vec<bool>> {
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

fn vendor_spec(trouble: Trouble) -> impl Strategy<Value = VendorSpec> {
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
                conversations,
                failures,
                churn_seed,
            )| {
                VendorSpec {
                    paging,
                    page_size,
                    native_status,
                    native_updated_since,
                    conversations,
                    failures,
                    churn_seed,
                }
            },
        )
}

fn world(trouble: Trouble) -> impl Strategy<Value = Vec<VendorSpec>> {
    prop::collection::vec(vendor_spec(trouble), 1..=5)
}

/// No filter a quarter of the time; otherwise status (vendor-native on some connections),
/// mode and channel (gateway-only) and `updated_since` (a stop for sorted lanes without it).
fn filter() -> impl Strategy<Value = ConversationFilter> {
    let some = (
        prop::sample::subsequence(Status::ALL.to_vec(), 0..=2),
        proptest::option::of(prop::sample::select(vec![Mode::Ai, Mode::Human])),
        prop::sample::subsequence(CHANNELS.to_vec(), 0..=2),
        proptest::option::of((0i64..40).prop_map(|s| support::at(s * 1_000_000_000))),
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
fn limits() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(prop_oneof![1usize..=4, 1usize..=100], 1..6)
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn ids(items: &[Conversation]) -> Vec<String> {
    items.iter().map(|c| c.id.clone()).collect()
}

fn fresh_lane(connection: &str) -> LaneState {
    LaneState {
        connection: connection.to_owned(),
        page: UpstreamPage::First,
        consumed: 0,
        page_size: 0,
        exhausted: false,
        last: None,
        failures: 0,
    }
}

/// A lane's state as the page started.
fn lane_in(page: &GatewayPage, connection: &str) -> Option<LaneState> {
    match &page.state_in {
        None => Some(fresh_lane(connection)),
        Some(MergeState { lanes }) => lanes.iter().find(|l| l.connection == connection).cloned(),
    }
}

fn lane_out<'a>(page: &'a GatewayPage, connection: &str) -> Option<&'a LaneState> {
    page.out
        .next
        .as_ref()
        .and_then(|s| s.lanes.iter().find(|l| l.connection == connection))
}

/// Upstream pages a vendor's list spans (plus the trailing empty one some vendors serve).
fn upstream_pages(spec: &VendorSpec) -> usize {
    spec.conversations.len() / spec.page_size as usize + 2
}

fn strictly_descending(items: &[Conversation]) -> bool {
    items.windows(2).all(|w| w[0].sort_key() > w[1].sort_key())
}

fn connections(specs: &[VendorSpec]) -> Vec<String> {
    (0..specs.len()).map(|i| format!("c{i}")).collect()
}

// ---------------------------------------------------------------------------------------------
// 1. Static data: every match exactly once, in order, and the traversal ends.

async fn check_static_traversal(
    specs: Vec<VendorSpec>,
    filter: ConversationFilter,
    limits: Vec<usize>,
    max_calls: u32,
    kept: bool,
) -> Result<(), TestCaseError> {
    let world = World::keeping(&specs, kept);
    let expected = world.expected(&filter);
    let max_pages = expected.len() + specs.iter().map(upstream_pages).sum::<usize>() + 1;
    let mut got = Vec::new();
    let mut cursor: Option<String> = None;
    for n in 0.. {
        prop_assert!(n < max_pages, "no end after {n} pages");
        let limit = limits[n % limits.len()];
        let page = world
            .page(&filter, cursor.as_deref(), limit, max_calls)
            .await
            .map_err(TestCaseError::fail)?;
        prop_assert!(page.out.failures.is_empty());
        prop_assert_eq!(page.out.lanes, specs.len());
        prop_assert!(page.out.items.len() <= limit);
        prop_assert!(strictly_descending(&page.out.items));
        // A short page ends the traversal, or a lane spent its whole call budget.
        if page.out.items.len() < limit && page.cursor.is_some() {
            let stalled = connections(&specs).iter().any(|c| {
                page.fetches.iter().filter(|f| &f.connection == c).count() == max_calls as usize
            });
            prop_assert!(
                stalled,
                "page {n} is short ({} < {limit}) without cause",
                page.out.items.len()
            );
        }
        got.extend(page.out.items);
        match page.cursor {
            None => break,
            Some(c) => cursor = Some(c),
        }
    }
    prop_assert_eq!(ids(&got), ids(&expected));
    Ok(())
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn static_traversal_returns_every_match_once_in_order(
        specs in world(CALM),
        filter in filter(),
        limits in limits(),
        max_calls in 1u32..=6,
        kept in any::<bool>(),
    ) {
        block_on(check_static_traversal(specs, filter, limits, max_calls, kept))?;
    }
}

/// Every page is requested twice with the same cursor (the first answer lost on its way, the
/// client retries), and only the second answer is used: nothing is lost or repeated, with or
/// without the pages a traversal reached kept for it.
async fn check_retried_traversal(
    specs: Vec<VendorSpec>,
    filter: ConversationFilter,
    limits: Vec<usize>,
    max_calls: u32,
    kept: bool,
) -> Result<(), TestCaseError> {
    let world = World::keeping(&specs, kept);
    let expected = world.expected(&filter);
    let max_pages = expected.len() + specs.iter().map(upstream_pages).sum::<usize>() + 1;
    let mut got = Vec::new();
    let mut cursor: Option<String> = None;
    for n in 0.. {
        prop_assert!(n < max_pages, "no end after {n} pages");
        let limit = limits[n % limits.len()];
        world
            .page(&filter, cursor.as_deref(), limit, max_calls)
            .await
            .map_err(TestCaseError::fail)?;
        let page = world
            .page(&filter, cursor.as_deref(), limit, max_calls)
            .await
            .map_err(TestCaseError::fail)?;
        prop_assert!(strictly_descending(&page.out.items));
        got.extend(page.out.items);
        match page.cursor {
            None => break,
            Some(c) => cursor = Some(c),
        }
    }
    prop_assert_eq!(ids(&got), ids(&expected));
    Ok(())
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn a_retried_page_loses_nothing(
        specs in world(CALM),
        filter in filter(),
        limits in limits(),
        max_calls in 1u32..=6,
        kept in any::<bool>(),
    ) {
        block_on(check_retried_traversal(specs, filter, limits, max_calls, kept))?;
    }
}

/// Times below the microsecond (RFC 3339 with nine digits) within one upstream page: the
/// engine's order and its "already emitted" test must agree on them.
fn single_page_world() -> impl Strategy<Value = Vec<VendorSpec>> {
    let vendor = (paging(), prop::collection::vec(conv_spec(true), 0..40)).prop_map(
        |(paging, conversations)| VendorSpec {
            paging,
            page_size: 50,
            native_status: false,
            native_updated_since: false,
            conversations,
            failures: Vec::new(),
            churn_seed: None,
        },
    );
    prop::collection::vec(vendor, 1..=3)
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn sub_microsecond_times_are_neither_lost_nor_reordered(
        specs in single_page_world(),
        limits in limits(),
        kept in any::<bool>(),
    ) {
        block_on(check_static_traversal(specs, ConversationFilter::default(), limits, 4, kept))?;
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Changing data: never a duplicate; nothing that did not change is missed.

/// A change between two pages.
#[derive(Debug, Clone)]
enum Change {
    /// New activity on a conversation: it moves to the top of its lane.
    Touch {
        lane: usize,
        pick: usize,
        bump_micros: i64,
    },
    /// A new conversation appears at the top of its lane.
    Create {
        lane: usize,
        bump_micros: i64,
        seed: usize,
    },
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        3 => (0usize..5, any::<usize>(), 0i64..3).prop_map(|(lane, pick, bump_micros)| {
            Change::Touch { lane, pick, bump_micros }
        }),
        1 => (0usize..5, 0i64..3, any::<usize>()).prop_map(|(lane, bump_micros, seed)| {
            Change::Create { lane, bump_micros, seed }
        }),
    ]
}

fn apply(world: &World, change: &Change) {
    let vendor = |lane: usize| &world.vendors[lane % world.vendors.len()];
    match *change {
        Change::Touch {
            lane,
            pick,
            bump_micros,
        } => vendor(lane).touch(pick, bump_micros),
        Change::Create {
            lane,
            bump_micros,
            seed,
        } => vendor(lane).create(bump_micros, seed),
    }
}

async fn check_changing_traversal(
    specs: Vec<VendorSpec>,
    filter: ConversationFilter,
    limits: Vec<usize>,
    changes: Vec<Vec<Change>>,
    max_calls: u32,
    kept: bool,
) -> Result<(), TestCaseError> {
    let world = World::keeping(&specs, kept);
    let at_start = world.expected(&filter);
    let grown = specs.iter().map(upstream_pages).sum::<usize>()
        + at_start.len()
        + changes.iter().map(Vec::len).sum::<usize>()
        + specs.len() * support::CHURN_FETCHES;
    let max_pages = 2 * grown + 2;
    let mut seen = HashSet::new();
    let mut cursor: Option<String> = None;
    for n in 0.. {
        prop_assert!(n < max_pages, "no end after {n} pages");
        if n > 0 {
            for c in changes.get(n - 1).into_iter().flatten() {
                apply(&world, c);
            }
        }
        let limit = limits[n % limits.len()];
        let page = world
            .page(&filter, cursor.as_deref(), limit, max_calls)
            .await
            .map_err(TestCaseError::fail)?;
        prop_assert!(page.out.items.len() <= limit);
        prop_assert!(
            strictly_descending(&page.out.items),
            "page {n} is out of order"
        );
        for c in &page.out.items {
            prop_assert!(
                seen.insert(c.id.clone()),
                "{} returned twice (page {n})",
                c.id
            );
        }
        match page.cursor {
            None => break,
            Some(c) => cursor = Some(c),
        }
    }
    // What moved is for the next `updated_since` sync; what did not must be in this traversal.
    let changed: BTreeSet<String> = world.vendors.iter().flat_map(|v| v.changed()).collect();
    let missed: Vec<&String> = at_start
        .iter()
        .map(|c| &c.id)
        .filter(|id| !changed.contains(*id) && !seen.contains(*id))
        .collect();
    prop_assert!(
        missed.is_empty(),
        "unchanged conversations missed: {missed:?}"
    );
    Ok(())
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn changing_data_never_duplicates_nor_misses_what_did_not_change(
        specs in world(Trouble { failures: false, churn: true }),
        filter in filter(),
        limits in limits(),
        changes in prop::collection::vec(prop::collection::vec(change(), 0..6), 0..30),
        max_calls in 1u32..=6,
        kept in any::<bool>(),
    ) {
        block_on(check_changing_traversal(specs, filter, limits, changes, max_calls, kept))?;
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Cost and memory.

/// Checks one page's calls against what it needed, lane by lane (no filter, static data).
fn check_page_cost(
    page: &GatewayPage,
    specs: &[VendorSpec],
    limit: usize,
    max_calls: u32,
) -> Result<(), TestCaseError> {
    let mut active = 0;
    let mut page_bound = 0;
    let mut ran_out = 0;
    for (i, connection) in connections(specs).iter().enumerate() {
        let input = lane_in(page, connection)
            .ok_or_else(|| TestCaseError::fail(format!("{connection} left the traversal")))?;
        let fetches: Vec<_> = page
            .fetches
            .iter()
            .filter(|f| &f.connection == connection)
            .collect();
        if input.exhausted {
            prop_assert!(fetches.is_empty(), "{connection} is exhausted yet called");
            continue;
        }
        active += 1;
        // What the traversal kept of the lane's current page, when this page started from it.
        let recall = page.recalls.iter().find(|r| &r.connection == connection);
        prop_assert!(
            !fetches.is_empty() || recall.is_some(),
            "{connection} is active yet not read"
        );
        prop_assert!(fetches.len() <= max_calls as usize);
        // Paging deeper never costs more: this bound does not depend on how deep the page is.
        let page_size = specs[i].page_size as usize;
        let lane_bound = 1 + (limit - 1).div_ceil(page_size);
        prop_assert!(
            fetches.len() <= lane_bound,
            "{connection}: {} calls for a page of {limit} from upstream pages of {page_size}",
            fetches.len()
        );
        page_bound += lane_bound.min(max_calls as usize);
        // The lane reads from where it stopped (the kept page, else the vendor's), and follows
        // the vendor's own `next`.
        let consumed = input.consumed as usize;
        let mut sources: Vec<(Vec<String>, Option<UpstreamPage>, UpstreamPage)> = Vec::new();
        let first = match recall {
            Some(r) => {
                prop_assert_eq!(&r.page, &input.page);
                Some(r.ids.clone())
            }
            None => {
                prop_assert_eq!(&fetches[0].page, &input.page);
                None
            }
        };
        let from_first = first
            .clone()
            .unwrap_or_else(|| fetches[0].served.clone().unwrap_or_default());
        // No re-read of an upstream page whose every item was consumed already.
        prop_assert!(
            consumed == 0 || from_first.len() > consumed,
            "{connection} re-read {:?}, all {} of whose items were consumed",
            input.page,
            from_first.len()
        );
        if let Some(r) = recall {
            let unread = r.ids[consumed.min(r.ids.len())..].to_vec();
            sources.push((unread, r.next.clone(), r.page.clone()));
        }
        for (k, fetch) in fetches.iter().enumerate() {
            let served = fetch.served.clone().unwrap_or_default();
            let unread = if k == 0 && recall.is_none() {
                served[consumed.min(served.len())..].to_vec()
            } else {
                served
            };
            sources.push((unread, fetch.next.clone(), fetch.page.clone()));
        }
        for w in sources.windows(2) {
            prop_assert_eq!(Some(&w[1].2), w[0].1.as_ref());
        }
        if sources.len() > 1 {
            ran_out += 1;
        }
        let emitted: Vec<&str> = page
            .out
            .items
            .iter()
            .filter(|c| &c.connection == connection)
            .map(|c| c.id.as_str())
            .collect();
        // What the lane emitted is exactly what it read, in order; each upstream page but the
        // last was used up before the next was fetched, and only while the page had room.
        let mut offset = 0;
        for (k, (unread, _, _)) in sources.iter().enumerate() {
            let is_last = k + 1 == sources.len();
            let take = if is_last {
                emitted.len() - offset.min(emitted.len())
            } else {
                unread.len()
            };
            prop_assert!(take <= unread.len() && offset + take <= emitted.len());
            prop_assert_eq!(&emitted[offset..offset + take], &unread[..take]);
            if !is_last {
                prop_assert!(
                    !unread.is_empty(),
                    "{connection} fetched past an empty page"
                );
                let last_id = unread[unread.len() - 1].as_str();
                let position = page.out.items.iter().position(|c| c.id == last_id);
                prop_assert!(
                    !(page.out.items.len() == limit && position == Some(limit - 1)),
                    "{connection} fetched {:?} after the page was full",
                    sources[k + 1].2
                );
            }
            offset += take;
        }
        prop_assert_eq!(offset, emitted.len());
    }
    let calls = page.fetches.len();
    prop_assert_eq!(page.out.upstream_calls as usize, calls);
    prop_assert!(calls <= page_bound, "{calls} calls, bound {page_bound}");
    // When each upstream page holds a gateway page, that is: one call per active lane, plus one
    // per lane that ran out of its upstream page during this gateway page.
    if specs.iter().all(|s| s.page_size as usize >= limit) {
        prop_assert!(
            calls <= active + ran_out,
            "{calls} calls for {active} lanes, {ran_out} refills"
        );
    }
    Ok(())
}

async fn check_cost(
    specs: Vec<VendorSpec>,
    limits: Vec<usize>,
    max_calls: u32,
    kept: bool,
) -> Result<(), TestCaseError> {
    let world = World::keeping(&specs, kept);
    let mut read: BTreeMap<(String, String), usize> = BTreeMap::new();
    let filter = ConversationFilter::default();
    let expected = world.expected(&filter);
    let max_pages = expected.len() + specs.iter().map(upstream_pages).sum::<usize>() + 1;
    let mut got = Vec::new();
    let mut cursor: Option<String> = None;
    for n in 0.. {
        prop_assert!(n < max_pages, "no end after {n} pages");
        let limit = limits[n % limits.len()];
        let page = world
            .page(&filter, cursor.as_deref(), limit, max_calls)
            .await
            .map_err(TestCaseError::fail)?;
        check_page_cost(&page, &specs, limit, max_calls)
            .map_err(|e| TestCaseError::fail(format!("page {n} (limit {limit}): {e}")))?;
        for f in &page.fetches {
            *read
                .entry((f.connection.clone(), format!("{:?}", f.page)))
                .or_default() += 1;
        }
        got.extend(page.out.items);
        match page.cursor {
            None => break,
            Some(c) => cursor = Some(c),
        }
    }
    prop_assert_eq!(ids(&got), ids(&expected));
    // With the pages it reached kept, a traversal reads each upstream page once.
    if kept {
        let twice: Vec<_> = read.iter().filter(|(_, n)| **n > 1).collect();
        prop_assert!(twice.is_empty(), "upstream pages read again: {twice:?}");
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn pages_make_only_the_calls_they_need(
        specs in world(CALM),
        limits in limits(),
        max_calls in 1u32..=6,
        kept in any::<bool>(),
    ) {
        block_on(check_cost(specs, limits, max_calls, kept))?;
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Failures.

async fn check_failures(
    specs: Vec<VendorSpec>,
    filter: ConversationFilter,
    limits: Vec<usize>,
    max_calls: u32,
    kept: bool,
) -> Result<(), TestCaseError> {
    let world = World::keeping(&specs, kept);
    let expected = world.expected(&filter);
    let max_pages = 10 * (expected.len() + specs.iter().map(upstream_pages).sum::<usize>() + 10);
    let mut got: Vec<Conversation> = Vec::new();
    let mut seen = HashSet::new();
    let mut streak: BTreeMap<String, u8> = BTreeMap::new();
    let mut given_up: BTreeSet<String> = BTreeSet::new();
    let mut cursor: Option<String> = None;
    for n in 0.. {
        prop_assert!(n < max_pages, "no end after {n} pages");
        let limit = limits[n % limits.len()];
        let page = world
            .page(&filter, cursor.as_deref(), limit, max_calls)
            .await
            .map_err(TestCaseError::fail)?;
        prop_assert_eq!(page.out.lanes, specs.len());
        prop_assert!(page.out.items.len() <= limit);
        prop_assert!(
            strictly_descending(&page.out.items),
            "page {n} is out of order"
        );
        for c in &page.out.items {
            prop_assert!(
                seen.insert(c.id.clone()),
                "{} returned twice (page {n})",
                c.id
            );
        }

        let failed: BTreeSet<&str> = page
            .fetches
            .iter()
            .filter(|f| f.served.is_none())
            .map(|f| f.connection.as_str())
            .collect();
        let read: BTreeSet<&str> = page
            .fetches
            .iter()
            .filter(|f| f.served.is_some())
            .map(|f| f.connection.as_str())
            .collect();
        for f in &page.fetches {
            prop_assert!(
                !given_up.contains(&f.connection),
                "{} called after it was given up",
                f.connection
            );
        }
        for c in &failed {
            *streak.entry((*c).to_owned()).or_default() += 1;
        }
        for c in read.difference(&failed) {
            streak.insert((*c).to_owned(), 0);
        }
        // Exactly the lanes that failed are reported; given up after MAX_LANE_FAILURES in a row.
        let reported: BTreeSet<&str> = page
            .out
            .failures
            .iter()
            .map(|f| f.connection.as_str())
            .collect();
        prop_assert_eq!(&reported, &failed);
        // The caller gets an error instead of the page exactly when every lane failed and none
        // gave anything (the lanes' state is still checked below, as the engine kept it).
        let all_failed = page.out.lanes > 0
            && page.out.failures.len() == page.out.lanes
            && page.out.items.is_empty();
        prop_assert_eq!(page.error.is_some(), all_failed, "page {}", n);
        for f in &page.out.failures {
            let expect_given_up =
                streak.get(&f.connection).copied().unwrap_or(0) >= MAX_LANE_FAILURES;
            prop_assert_eq!(
                f.given_up,
                expect_given_up,
                "{} on page {}",
                &f.connection,
                n
            );
            if f.given_up {
                given_up.insert(f.connection.clone());
            }
        }
        // A failed lane keeps its position: the page it could not read, with what was consumed
        // of it, and the last key it emitted.
        for connection in &failed {
            let input = lane_in(&page, connection)
                .ok_or_else(|| TestCaseError::fail(format!("{connection} left the traversal")))?;
            let fetches: Vec<_> = page
                .fetches
                .iter()
                .filter(|f| f.connection == *connection)
                .collect();
            let failed_fetch = fetches[fetches.len() - 1];
            prop_assert!(
                failed_fetch.served.is_none(),
                "{connection} was called after failing"
            );
            let Some(out) = lane_out(&page, connection) else {
                prop_assert!(
                    given_up.contains(*connection),
                    "{connection} failed, yet the traversal ended"
                );
                continue;
            };
            prop_assert_eq!(&out.page, &failed_fetch.page);
            // A lane that started from its kept page failed on a later one.
            let recalled = page.recalls.iter().any(|r| r.connection == *connection);
            let consumed = if fetches.len() == 1 && !recalled {
                input.consumed
            } else {
                0
            };
            prop_assert_eq!(out.consumed, consumed);
            let last = page
                .out
                .items
                .iter()
                .rfind(|c| c.connection == *connection)
                .map(Sortable::sort_key)
                .or(input.last);
            prop_assert_eq!(&out.last, &last);
            prop_assert_eq!(out.exhausted, given_up.contains(*connection));
        }
        got.extend(page.out.items);
        match page.cursor {
            None => break,
            Some(c) => cursor = Some(c),
        }
    }
    // The other lanes lose nothing; a lane given up returned a prefix of its list.
    for connection in connections(&specs) {
        let want: Vec<String> = expected
            .iter()
            .filter(|c| c.connection == connection)
            .map(|c| c.id.clone())
            .collect();
        let have: Vec<String> = got
            .iter()
            .filter(|c| c.connection == connection)
            .map(|c| c.id.clone())
            .collect();
        if given_up.contains(&connection) {
            prop_assert!(
                want.starts_with(&have),
                "{connection}: {have:?} is not a prefix of {want:?}"
            );
        } else {
            prop_assert_eq!(&have, &want, "{}", connection);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn failing_lanes_keep_their_place_and_cost_the_others_nothing(
        specs in world(Trouble { failures: true, churn: false }),
        filter in filter(),
        limits in limits(),
        max_calls in 1u32..=6,
        kept in any::<bool>(),
    ) {
        block_on(check_failures(specs, filter, limits, max_calls, kept))?;
    }
}

// ---------------------------------------------------------------------------------------------
// The smallest cases of the bugs these properties found, kept as plain tests.

fn one_lane(paging: Paging, page_size: u32, times: &[i64], failures: Vec<bool>) -> VendorSpec {
    VendorSpec {
        paging,
        page_size,
        native_status: false,
        native_updated_since: false,
        conversations: times
            .iter()
            .map(|&at_nanos| ConvSpec {
                at_nanos,
                status: Status::Open,
                mode: None,
                channel: Channel::Web,
            })
            .collect(),
        failures,
        churn_seed: None,
    }
}

const SECOND: i64 = 1_000_000_000;

/// Pages to the end with `limit` and a budget of `max_calls`; `None` if it does not end.
async fn traverse(world: &World, limit: usize, max_calls: u32) -> Option<Vec<GatewayPage>> {
    let filter = ConversationFilter::default();
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let page = world
            .page(&filter, cursor.as_deref(), limit, max_calls)
            .await
            .ok()?;
        cursor = page.cursor.clone();
        pages.push(page);
        if cursor.is_none() {
            return Some(pages);
        }
    }
    None
}

fn returned(pages: &[GatewayPage]) -> Vec<String> {
    pages.iter().flat_map(|p| ids(&p.out.items)).collect()
}

/// `c0:0` is one nanosecond newer than `c0:1`, in the same microsecond: the engine sorted it
/// first by its full time, then skipped `c0:1` as "at or above" the key it had just emitted.
#[tokio::test]
async fn a_sub_microsecond_tie_is_not_skipped() {
    let world = World::new(&[one_lane(
        Paging::Number,
        50,
        &[11 * SECOND + 1, 11 * SECOND],
        vec![],
    )]);
    let pages = traverse(&world, 1, 4).await.unwrap_or_default();
    assert_eq!(returned(&pages), ["c0:1", "c0:0"]);
}

/// A keyset page whose emitted item got new activity (and so left it) between two pages: the
/// re-read page is shifted up by one, and skipping what was consumed by position skipped the
/// unchanged `c0:3`, which no later `updated_since` sync would catch either.
#[tokio::test]
async fn an_unchanged_conversation_is_not_skipped_when_its_upstream_page_shifts() {
    let times = [5 * SECOND, 4 * SECOND, 3 * SECOND, 2 * SECOND, SECOND];
    let world = World::new(&[one_lane(Paging::Keyset, 2, &times, vec![])]);
    let filter = ConversationFilter::default();
    let first = world.page(&filter, None, 3, 4).await;
    let first = first
        .as_ref()
        .map(|p| (ids(&p.out.items), p.cursor.clone()));
    let Ok((items, Some(cursor))) = first else {
        panic!("the first page failed or ended the traversal: {first:?}")
    };
    assert_eq!(items, ["c0:0", "c0:1", "c0:2"]);
    world.vendors[0].touch(2, 1); // `c0:2` gets new activity
    let second = world.page(&filter, Some(&cursor), 3, 4).await;
    assert_eq!(
        second.map(|p| ids(&p.out.items)),
        Ok(vec!["c0:3".to_owned(), "c0:4".to_owned()])
    );
}

/// A page that ends exactly where its lane's upstream page ends: the next page starts on the
/// vendor's next page, instead of re-fetching the used-up one only to skip all of it.
#[tokio::test]
async fn a_used_up_upstream_page_is_not_fetched_again() {
    let times = [4 * SECOND, 3 * SECOND, 2 * SECOND, SECOND];
    let world = World::new(&[one_lane(Paging::Number, 2, &times, vec![])]);
    let pages = traverse(&world, 2, 4).await.unwrap_or_default();
    let fetched: Vec<Vec<UpstreamPage>> = pages
        .iter()
        .map(|p| p.fetches.iter().map(|f| f.page.clone()).collect())
        .collect();
    assert_eq!(
        fetched,
        [vec![UpstreamPage::First], vec![UpstreamPage::Number(2)]]
    );
    assert_eq!(returned(&pages), ["c0:0", "c0:1", "c0:2", "c0:3"]);
}

/// proptest's minimal case: the lane fails, answers on two pages (each ending on an upstream
/// page boundary), then fails twice. Those are not three consecutive failed pages, yet the
/// engine gave it up, because a page that ended on a boundary did not reset the count.
#[tokio::test]
async fn a_lane_that_answered_in_between_is_not_given_up() {
    let times = [21 * SECOND, 21 * SECOND, 0];
    let world = World::new(&[one_lane(
        Paging::Number,
        1,
        &times,
        vec![true, false, false, true],
    )]);
    let pages = traverse(&world, 3, 1).await.unwrap_or_default();
    let failed: Vec<(usize, bool)> = pages
        .iter()
        .enumerate()
        .flat_map(|(n, p)| p.out.failures.iter().map(move |f| (n, f.given_up)))
        .collect();
    assert_eq!(failed, [(0, false), (3, false), (4, false)]);
    assert_eq!(returned(&pages), ["c0:1", "c0:0", "c0:2"]);
}
