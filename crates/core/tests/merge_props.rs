//! Property tests of the merge engine's guarantees (DESIGN.md §4), over in-memory vendors driven
//! the way the server drives them, with the state carried between pages in the real signed cursor:
//!
//! 1. over data that does not change, a traversal returns every matching conversation exactly
//!    once, newest first, and ends;
//! 2. over data that changes between and during pages, it never returns a conversation twice, and
//!    never misses one that did not change;
//!
//! Properties 3 (cost) and 4 (failures) are in `merge_cost_props.rs`.

mod support;

use std::collections::{BTreeSet, HashSet};

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use switchboard_core::ConversationFilter;

use support::{Paging, VendorSpec, World};

use support::strategies::*;

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
///
/// Paged by number only: a keyset list is first read at the page's limit, and this world's
/// keyset vendor orders by the nanosecond, finer than the engine's microsecond key, so that read
/// could end inside a run of ties. (ChatbotX, the one keyset vendor, writes milliseconds.)
fn single_page_world() -> impl Strategy<Value = Vec<VendorSpec>> {
    let paging = prop::sample::select(vec![Paging::Number, Paging::NumberTrailingEmpty]);
    let vendor = (paging, prop::collection::vec(conv_spec(true), 0..40)).prop_map(
        |(paging, conversations)| VendorSpec {
            paging,
            page_size: 50,
            native_status: false,
            native_updated_since: false,
            undocumented_order: false,
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
