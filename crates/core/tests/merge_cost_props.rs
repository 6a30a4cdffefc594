//! Property tests of the merge engine's cost and failures (DESIGN.md §4), over in-memory vendors
//! driven the way the server drives them:
//!
//! 3. a page makes only the upstream calls it needs: one per active lane, plus one each time a
//!    lane used up its upstream page while the page still had room; never a page fetched ahead
//!    or twice, and no more per page deep in a traversal than at its start;
//! 4. a failing lane is reported, keeps its position, is given up after `MAX_LANE_FAILURES`
//!    consecutive failed pages, and never costs the other lanes an item or a duplicate.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashSet};

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use switchboard_core::merge::{MAX_LANE_FAILURES, Sortable};
use switchboard_core::{Channel, Conversation, ConversationFilter, Status, UpstreamPage};

use support::{ConvSpec, GatewayPage, Paging, VendorSpec, World};

use support::strategies::*;

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
        undocumented_order: false,
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

/// The upstream pages a traversal of `limit` reads from one lane of 25 conversations, by how
/// many items each served, and how many conversations it returned.
async fn upstream_reads(
    paging: Paging,
    filter: &ConversationFilter,
    limit: usize,
) -> (Vec<usize>, usize) {
    let times: Vec<i64> = (1..=25).rev().map(|s| s * SECOND).collect();
    let world = World::keeping(&[one_lane(paging, 10, &times, vec![])], true);
    let mut cursor: Option<String> = None;
    let mut returned = Vec::new();
    for _ in 0..100 {
        let Ok(page) = world.page(filter, cursor.as_deref(), limit, 4).await else {
            break;
        };
        returned.extend(ids(&page.out.items));
        cursor = page.cursor;
        if cursor.is_none() {
            break;
        }
    }
    let expected = ids(&world.expected(filter));
    assert_eq!(returned, expected, "each match once, newest first");
    let reads = support::lock(&world.log)
        .iter()
        .map(|f| f.served.as_ref().map_or(0, Vec::len))
        .collect();
    (reads, returned.len())
}

/// A cursor-paged list is read only as deep as a first page can use, then in full pages; a
/// list paged by number keeps one size (page `n` of another size starts elsewhere), as does a
/// list the gateway filters (a short read could then fill less than the page).
#[tokio::test]
async fn only_a_cursor_paged_list_is_read_at_the_first_pages_limit() {
    let all = ConversationFilter::default();
    let reads = |paging, limit| upstream_reads(paging, &all, limit);
    assert_eq!(reads(Paging::Keyset, 3).await, (vec![3, 10, 10, 2], 25));
    assert_eq!(reads(Paging::Keyset, 30).await, (vec![10, 10, 5], 25));
    assert_eq!(reads(Paging::Number, 3).await, (vec![10, 10, 5], 25));
    // Filtered by the gateway (no conversation here has a mode): full pages from the first.
    let by_mode = ConversationFilter {
        mode: Some(switchboard_core::Mode::Ai),
        ..ConversationFilter::default()
    };
    let reads = upstream_reads(Paging::Keyset, &by_mode, 3).await;
    assert_eq!(reads, (vec![10, 10, 5], 0));
}
