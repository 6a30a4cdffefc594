//! The change detector against an in-memory vendor whose world changes between upstream calls
//! (so items move during a pass): equal timestamps, items stamped exactly at the high-water mark
//! or late within the lookback, page sizes of two and three, budgets of one call per pass, sorted
//! and unsorted lists, with and without a native `updated_since`.
//!
//! After the baseline and every scripted change, passes run until nothing is pending; then every
//! new message and conversation has exactly one event, every `conversation.updated` names exactly
//! the fields that differ from what the events said before, replaying the events gives the
//! vendor's final state, and conversations nobody touched have no event.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use switchboard_core::{Conversation, Event, EventType, Mode, Status};
use switchboard_feed::detect::{CallBudget, DetectSettings, run_pass};
use switchboard_feed::snapshot::Snapshot;
use switchboard_store::MemoryStore;

const CONNECTION: &str = "mem";
const LOOKBACK_SECS: i64 = 2;
/// Passes without an event that count as settled: a few whole scans of the largest list.
const QUIET_PASSES: u32 = 60;

mod vendor;

use vendor::*;

/// The compared fields of a conversation.
type State = (
    Status,
    Option<Mode>,
    Option<String>,
    DateTime<Utc>,
    Option<u64>,
);

fn state(c: &Conversation) -> State {
    (
        c.status,
        c.mode,
        c.assignee.as_ref().map(|a| a.native_id.clone()),
        c.last_activity_at,
        c.message_count,
    )
}

fn differing(a: &State, b: &State) -> BTreeSet<&'static str> {
    let mut out = BTreeSet::new();
    if a.0 != b.0 {
        out.insert("status");
    }
    if a.1 != b.1 {
        out.insert("mode");
    }
    if a.2 != b.2 {
        out.insert("assignee");
    }
    if a.3 != b.3 {
        out.insert("last_activity_at");
    }
    if a.4 != b.4 {
        out.insert("message_count");
    }
    out
}

#[derive(Debug, Clone)]
struct Case {
    /// Initial conversations: (seconds before t0 of the activity, messages).
    initial: Vec<(i64, u8)>,
    script: Vec<(u32, Change)>,
    budget: u32,
    sorted: bool,
    native_since: bool,
    /// The vendor leaves the activity time alone on assignment (as Zipchat does), and every
    /// scan is a full one.
    silent_assignments: bool,
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        3 => (0i64..=2).prop_map(Change::Tick),
        1 => (0u8..=2).prop_map(Change::NewConversation),
        4 => (0usize..16, 0i64..=LOOKBACK_SECS).prop_map(|(i, back)| Change::Message(i, back)),
        2 => (0usize..16, prop_oneof![Just(Status::Open), Just(Status::Resolved), Just(Status::Closed)])
            .prop_map(|(i, s)| Change::Status(i, s)),
        2 => (0usize..16, proptest::option::of(0u64..3)).prop_map(|(i, a)| Change::Assign(i, a)),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        proptest::collection::vec((0i64..=3, 0u8..=3), 0..8),
        proptest::collection::vec((0u32..40, change()), 0..30),
        1u32..=4,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(initial, mut script, budget, sorted, native_since, silent_assignments)| {
                script.sort_by_key(|(at, _)| *at);
                Case {
                    initial,
                    script,
                    budget,
                    sorted,
                    native_since,
                    silent_assignments,
                }
            },
        )
}

fn world(case: &Case) -> World {
    let mut next_id = 1;
    let mut conversations = Vec::new();
    for (back, messages) in &case.initial {
        let activity = t0() - Duration::seconds(*back);
        let id = next_id;
        next_id += 1;
        let mut c = VConv {
            id,
            created: activity - Duration::seconds(30),
            activity,
            status: Status::Open,
            assignee: None,
            messages: Vec::new(),
            baseline_activity: Some(activity),
        };
        for i in 0..*messages {
            c.messages.push(VMsg {
                id: next_id,
                created: activity - Duration::seconds(i64::from(*messages - 1 - i)),
            });
            next_id += 1;
        }
        conversations.push(c);
    }
    World {
        clock: t0(),
        conversations,
        next_id,
        script: Vec::new(),
        calls: 0,
        list_calls: 0,
        touched: BTreeSet::new(),
        added_messages: BTreeSet::new(),
        added_conversations: BTreeSet::new(),
        silent_assignments: case.silent_assignments,
    }
}

async fn pass(
    vendor: &MemVendor,
    store: &MemoryStore,
    snapshot: &mut Snapshot,
    budget: u32,
    full_scans: bool,
) -> Vec<Event> {
    let settings = DetectSettings {
        lookback: Duration::seconds(LOOKBACK_SECS),
        // Every scan a full one, or (practically) never after the baseline.
        full_scan_every: if full_scans {
            Duration::zero()
        } else {
            Duration::days(365)
        },
    };
    let mut calls = CallBudget::new(budget);
    let outcome = run_pass(vendor, store, snapshot, &mut calls, settings, Utc::now()).await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert!(calls.used() <= budget, "a pass stays within its budget");
    outcome.events
}

fn settled(snapshot: &Snapshot) -> bool {
    snapshot.baseline_done && snapshot.scan.is_none() && snapshot.message_queue.is_empty()
}

async fn check(case: Case) -> Result<(), TestCaseError> {
    let vendor = MemVendor::of(&case);
    let store = MemoryStore::default();
    let mut snapshot = Snapshot::default();
    let baseline: BTreeMap<String, State> = vendor
        .world()
        .conversations
        .iter()
        .map(|c| (c.id.to_string(), state(&conversation(c))))
        .collect();
    for _ in 0..100 {
        let events = pass(
            &vendor,
            &store,
            &mut snapshot,
            case.budget,
            case.silent_assignments,
        )
        .await;
        prop_assert!(events.is_empty(), "the baseline is silent: {events:?}");
        if settled(&snapshot) {
            break;
        }
    }
    prop_assert!(settled(&snapshot), "the baseline completes");
    {
        let mut world = vendor.world();
        let offset = world.calls;
        world.script = case
            .script
            .iter()
            .map(|(at, c)| (at + offset, c.clone()))
            .collect();
    }
    // Quiet: enough passes without an event, after the script ended, for several whole scans
    // of the largest list at one call per pass, and nothing left to read.
    let mut events = Vec::new();
    let mut quiet = 0;
    for _ in 0..5_000 {
        let found = pass(
            &vendor,
            &store,
            &mut snapshot,
            case.budget,
            case.silent_assignments,
        )
        .await;
        let script_done = vendor.world().script.is_empty();
        quiet = if found.is_empty() && script_done {
            quiet + 1
        } else {
            0
        };
        events.extend(found);
        if quiet >= QUIET_PASSES && snapshot.message_queue.is_empty() {
            break;
        }
    }
    prop_assert!(
        quiet >= QUIET_PASSES && snapshot.message_queue.is_empty(),
        "the detector settles once the world stops changing"
    );

    let world = vendor.world();
    // Every new message once, and no other.
    let mut messages = BTreeMap::new();
    for e in events
        .iter()
        .filter(|e| e.kind == EventType::MessageCreated)
    {
        let m = e
            .data
            .message
            .as_ref()
            .expect("a message event has its message");
        *messages
            .entry(m.native_id.parse::<u64>().expect("numeric"))
            .or_insert(0) += 1;
    }
    for (id, n) in &messages {
        prop_assert_eq!(*n, 1, "message {} reported {} times", id, n);
    }
    let reported: BTreeSet<u64> = messages.keys().copied().collect();
    prop_assert_eq!(
        &reported,
        &world.added_messages,
        "every new message, and only those"
    );

    // Every new conversation once; replaying the events gives the final state, each update
    // naming exactly the fields that changed.
    let mut implied = baseline.clone();
    let mut created = BTreeSet::new();
    let mut with_events = BTreeSet::new();
    for e in &events {
        let native = e.conversation_id.trim_start_matches("mem:").to_owned();
        with_events.insert(native.parse::<u64>().expect("numeric"));
        let Some(c) = &e.data.conversation else {
            continue;
        };
        match e.kind {
            EventType::ConversationCreated => {
                prop_assert!(created.insert(native.clone()), "created twice: {}", native);
                prop_assert!(
                    !baseline.contains_key(&native),
                    "an old conversation reported as created"
                );
                implied.insert(native, state(c));
            }
            EventType::ConversationUpdated => {
                let before = implied.get(&native).cloned();
                prop_assert!(
                    before.is_some(),
                    "an update of a conversation never reported: {}",
                    native
                );
                let before = before.expect("checked");
                let after = state(c);
                let named: BTreeSet<&str> =
                    e.changed.iter().flatten().map(String::as_str).collect();
                prop_assert!(!named.is_empty(), "an update names what changed");
                prop_assert_eq!(
                    named,
                    differing(&before, &after),
                    "the fields named are those that changed"
                );
                implied.insert(native, after);
            }
            EventType::MessageCreated => {}
        }
    }
    let expected_created: BTreeSet<String> = world
        .added_conversations
        .iter()
        .map(u64::to_string)
        .collect();
    prop_assert_eq!(created, expected_created, "every new conversation once");
    for c in &world.conversations {
        let native = c.id.to_string();
        prop_assert_eq!(
            implied.get(&native),
            Some(&state(&conversation(c))),
            "replaying the events gives conversation {}'s final state",
            native
        );
        if !world.touched.contains(&c.id) {
            prop_assert!(
                !with_events.contains(&c.id),
                "conversation {} did not change but has events",
                native
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn no_change_is_lost_and_none_is_reported_twice(case in case()) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(check(case))?;
    }
}

/// A budget too small for every conversation whose activity moved: each pass reads the list and
/// as many waiting conversations' messages as it can, and the others wait in the snapshot
/// (through its stored form, as between a poller's passes) to be read first by the next passes;
/// every message is reported once, none skipped.
#[tokio::test]
async fn message_reads_a_budget_cannot_cover_wait_in_the_snapshot_for_the_next_passes() {
    const BUDGET: u32 = 3;
    let case = Case {
        initial: vec![(1, 1); 6],
        script: Vec::new(),
        budget: BUDGET,
        sorted: true,
        native_since: true,
        silent_assignments: false,
    };
    let vendor = MemVendor::of(&case);
    let store = MemoryStore::default();
    let mut snapshot = Snapshot::default();
    for _ in 0..20 {
        pass(&vendor, &store, &mut snapshot, BUDGET, false).await;
        if settled(&snapshot) {
            break;
        }
    }
    assert!(settled(&snapshot), "the baseline completes");
    // Every conversation gets a message, a second apart.
    {
        let mut world = vendor.world();
        for i in 0..6 {
            world.apply(&Change::Tick(1));
            world.apply(&Change::Message(i, 0));
        }
    }
    let mut reported: Vec<String> = Vec::new();
    let mut per_pass = Vec::new();
    for _ in 0..20 {
        let lists = vendor.world().list_calls;
        let events = pass(&vendor, &store, &mut snapshot, BUDGET, false).await;
        assert!(
            vendor.world().list_calls > lists,
            "every pass keeps a call for the list"
        );
        snapshot = Snapshot::decode(&snapshot.encode()).expect("the stored snapshot reads back");
        let messages: Vec<String> = events
            .iter()
            .filter(|e| e.kind == EventType::MessageCreated)
            .filter_map(|e| e.data.message.as_ref().map(|m| m.native_id.clone()))
            .collect();
        per_pass.push(messages.len());
        reported.extend(messages);
        if snapshot.message_queue.is_empty() && snapshot.scan.is_none() {
            break;
        }
    }
    assert!(
        per_pass.iter().filter(|n| **n > 0).count() > 1,
        "the budget could not read them all in one pass: {per_pass:?}"
    );
    let added: BTreeSet<String> = vendor
        .world()
        .added_messages
        .iter()
        .map(u64::to_string)
        .collect();
    let unique: BTreeSet<String> = reported.iter().cloned().collect();
    assert_eq!(unique.len(), reported.len(), "a message reported twice");
    assert_eq!(unique, added, "every new message, none skipped");
}
