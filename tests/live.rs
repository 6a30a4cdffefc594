//! The live simulated world: the changes a live simulator reports are there in the vendors' own
//! APIs, the same seed makes the same changes, and a polling gateway turns every change on its
//! connection into an event.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use support::{ADMIN, Env, clients_toml};
use switchboard_demo::{self as registry, VENDORS};
use switchboard_feed::{Event, EventType};
use switchboard_sim::{Change, ChangeKind, ChangesPage, SimOptions};

/// The demo connection of simulated vendor `vendor`.
fn connection_of(vendor: &str) -> &'static str {
    VENDORS
        .iter()
        .find(|v| v.simulator.name == vendor)
        .unwrap_or_else(|| panic!("{vendor} is in the vendor table"))
        .demo_connection
}

async fn reported(http: &reqwest::Client, sim_url: &str, after: u64) -> ChangesPage {
    http.get(format!("{sim_url}/_control/changes?after={after}"))
        .send()
        .await
        .expect("control answers")
        .json()
        .await
        .expect("changes JSON")
}

#[tokio::test]
async fn a_live_worlds_changes_are_in_the_vendors_own_apis() {
    let env = Env::start(30).await;
    let mut made: Vec<Change> = Vec::new();
    for _ in 0..6 {
        made.extend(env.sim.step(Utc::now()));
    }
    // Every vendor moves by its rules.
    for entry in VENDORS {
        assert!(
            made.iter().any(|c| c.vendor == entry.simulator.name),
            "{} changed nothing in six steps",
            entry.simulator.name
        );
    }
    let page = reported(&env.http, &env.sim_url, 0).await;
    assert_eq!(page.changes, made, "/_control/changes reports every change");
    assert_eq!(page.last_seq, made.len() as u64);
    let later = reported(&env.http, &env.sim_url, 3).await;
    assert_eq!(later.changes, made[3..].to_vec());

    for change in &made {
        let id = format!("{}:{}", connection_of(&change.vendor), change.conversation);
        let (status, conversation) = env.get(ADMIN, &format!("/v1/conversations/{id}")).await;
        assert_eq!(status, 200, "{id}: {conversation}");
        let activity: chrono::DateTime<Utc> =
            serde_json::from_value(conversation["last_activity_at"].clone()).expect("a time");
        match change.kind {
            ChangeKind::Message => {
                let native = change.message.as_deref().expect("a message id");
                let (status, messages) = env
                    .get(ADMIN, &format!("/v1/conversations/{id}/messages?limit=50"))
                    .await;
                assert_eq!(status, 200, "{id}: {messages}");
                let found = messages["data"]
                    .as_array()
                    .expect("messages")
                    .iter()
                    .any(|m| m["native_id"] == native);
                assert!(found, "{change:?}: the message is not in {messages}");
                // Activity is stamped in whole seconds by some vendors.
                assert!(
                    activity >= change.at - chrono::Duration::seconds(1),
                    "{change:?}: the activity did not move ({activity})"
                );
            }
            ChangeKind::Status => {
                assert_ne!(
                    conversation["status"], "open",
                    "{change:?}: the conversation is still open"
                );
            }
        }
    }
}

#[test]
fn the_same_seed_makes_the_same_changes() {
    let options = SimOptions {
        seed: 5,
        conversations: 40,
    };
    let a = registry::simulators(&options);
    let b = registry::simulators(&options);
    let now = Utc::now();
    let key = |c: &Change| {
        (
            c.seq,
            c.vendor.clone(),
            c.conversation.clone(),
            c.kind,
            c.message.clone(),
            c.by.clone(),
        )
    };
    for _ in 0..20 {
        let x: Vec<_> = a.step(now).iter().map(key).collect();
        let y: Vec<_> = b.step(now).iter().map(key).collect();
        assert_eq!(x, y);
    }
    let c = registry::simulators(&SimOptions { seed: 6, ..options });
    let x: Vec<_> = a.step(now).iter().map(key).collect();
    let z: Vec<_> = c.step(now).iter().map(key).collect();
    assert_ne!(x, z, "another seed, other changes");
}

/// Waits (at most two minutes, every 200 ms) until `ready` says yes.
async fn until<F, Fut>(what: &str, mut ready: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..600 {
        if ready().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("gave up waiting until {what}");
}

/// Whether `events` show `change` on `connection`.
fn seen(events: &[Event], connection: &str, change: &Change) -> bool {
    let conversation = format!("{connection}:{}", change.conversation);
    events.iter().any(|e| {
        e.conversation_id == conversation
            && match change.kind {
                ChangeKind::Message => {
                    e.kind == EventType::MessageCreated
                        && e.data
                            .message
                            .as_ref()
                            .is_some_and(|m| Some(&m.native_id) == change.message.as_ref())
                }
                ChangeKind::Status => {
                    e.kind == EventType::ConversationUpdated
                        && e.changed
                            .as_ref()
                            .is_some_and(|f| f.iter().any(|f| f == "status"))
                }
            }
    })
}

/// Simulator request counters per vendor, read every 100 ms while the test runs.
#[derive(Default)]
struct Counters {
    samples: Vec<(Instant, BTreeMap<String, u64>)>,
}

impl Counters {
    /// The most requests `vendor` received between two samples, against the most the poller
    /// may send in that time: `allowance` per `window`, plus `slack`.
    fn check(&self, vendor: &str, allowance: u64, window: Duration, slack: u64) {
        let count = |i: usize| self.samples[i].1.get(vendor).copied().unwrap_or(0);
        for i in 0..self.samples.len() {
            for j in i + 1..self.samples.len() {
                let elapsed = self.samples[j].0 - self.samples[i].0;
                // Requests counted between two samples were all received in less than
                // `elapsed`: at most one window's allowance per window started.
                let windows = (elapsed.as_secs_f64() / window.as_secs_f64()).floor() as u64 + 1;
                let sent = count(j) - count(i);
                assert!(
                    sent <= allowance * windows + slack,
                    "{vendor}: {sent} requests in {elapsed:?}, over its share ({allowance} per {window:?})"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_polling_gateway_turns_every_live_change_of_every_vendor_into_one_event() {
    let sim = registry::simulators(&SimOptions {
        seed: 23,
        conversations: 40,
    });
    let addr = sim
        .clone()
        .spawn("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("sim starts");
    let sim_url = format!("http://{addr}");
    // Every connection polled every second, within the default share (0.5) of its real quota.
    let mut connections = registry::demo_config(&sim_url);
    for v in VENDORS {
        connections = connections.replace(
            &format!("id = \"{}\"\n", v.demo_connection),
            &format!("id = \"{}\"\npoll_interval_secs = 1\n", v.demo_connection),
        );
    }
    let counters = Arc::new(Mutex::new(Counters::default()));
    let sampler = {
        let (control, counters) = (sim.control.clone(), counters.clone());
        tokio::spawn(async move {
            loop {
                let requests = control.report().requests;
                counters
                    .lock()
                    .expect("counters")
                    .samples
                    .push((Instant::now(), requests));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let (_gateway, state) =
        support::start_gateway_with_state(&format!("{}{connections}", clients_toml(&sim_url)))
            .await;
    let http = reqwest::Client::new();
    let all_events = || async {
        state
            .feed
            .page(None, 100_000, &|_: &Event| true)
            .await
            .expect("the log reads")
            .events
    };
    // The baseline is silent: the first events are the live world's.
    until("every poller recorded its baseline", || async {
        let mut all = true;
        for v in VENDORS {
            all &= state
                .store
                .get(&switchboard_feed::snapshot_key(v.demo_connection))
                .await
                .ok()
                .flatten()
                .and_then(|b| switchboard_feed::snapshot::Snapshot::decode(&b))
                .is_some_and(|s| s.baseline_done);
        }
        all
    })
    .await;
    assert!(all_events().await.is_empty(), "the baseline is silent");
    let live = sim.spawn_live(Duration::from_millis(150));
    until(
        "the live world made a dozen changes on every vendor",
        || async {
            let changes = sim.changes(0);
            VENDORS.iter().all(|v| {
                changes
                    .iter()
                    .filter(|c| c.vendor == v.simulator.name)
                    .count()
                    >= 12
            })
        },
    )
    .await;
    live.abort();
    let changes: Vec<Change> = reported(&http, &sim_url, 0).await.changes;
    for by in ["customer", "bot", "agent"] {
        assert!(
            changes.iter().any(|c| c.by == by),
            "no {by} change in {changes:?}"
        );
    }
    let mut missing = changes.clone();
    for _ in 0..600 {
        let events = all_events().await;
        missing.retain(|c| !seen(&events, connection_of(&c.vendor), c));
        if missing.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if !missing.is_empty() {
        // What the log and the poller's snapshot say of those conversations, to tell why.
        let events = all_events().await;
        for m in &missing {
            let connection = connection_of(&m.vendor);
            let id = format!("{connection}:{}", m.conversation);
            let theirs: Vec<(&str, EventType)> = events
                .iter()
                .filter(|e| e.conversation_id == id)
                .map(|e| (e.id.as_str(), e.kind))
                .collect();
            let tracked = state
                .store
                .get(&switchboard_feed::snapshot_key(connection))
                .await
                .ok()
                .flatten()
                .and_then(|b| switchboard_feed::snapshot::Snapshot::decode(&b))
                .and_then(|s| s.conversations.get(&m.conversation).cloned());
            eprintln!("no event for {m:?}\n  its events: {theirs:?}\n  tracked: {tracked:?}");
        }
    }
    assert!(
        missing.is_empty(),
        "changes without an event after two minutes: {missing:#?}"
    );
    // A few more passes: nothing arrives twice after catching up.
    tokio::time::sleep(Duration::from_secs(2)).await;
    sampler.abort();
    let events = all_events().await;
    let ids: BTreeSet<&str> = events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), events.len(), "an event id twice");
    let messages: Vec<&str> = events
        .iter()
        .filter_map(|e| e.data.message.as_ref().map(|m| m.id.as_str()))
        .collect();
    let unique: BTreeSet<&str> = messages.iter().copied().collect();
    assert_eq!(unique.len(), messages.len(), "a message announced twice");
    for v in VENDORS {
        let made: BTreeSet<&str> = changes
            .iter()
            .filter(|c| c.vendor == v.simulator.name)
            .filter_map(|c| c.message.as_deref())
            .collect();
        let announced = events
            .iter()
            .filter(|e| e.connection == v.demo_connection)
            .filter_map(|e| e.data.message.as_ref())
            .filter(|m| made.contains(m.native_id.as_str()))
            .count();
        assert_eq!(
            announced,
            made.len(),
            "{}: every new message once",
            v.simulator.name
        );
    }

    // Within the share: the simulator's own counters, against half the connection's quota (its
    // vendor's documented one, or the one assumed for a vendor that documents none).
    let counters = counters.lock().expect("counters");
    for v in VENDORS {
        let provider = state.registry.get(v.demo_connection).expect("connected");
        let (requests, per_seconds) = provider
            .health()
            .quota
            .map_or(switchboard_feed::UNDOCUMENTED_QUOTA, |q| {
                (q.requests, q.per_seconds)
            });
        let allowance = u64::from(requests) / 2;
        // PingBack's login is the adapter's own call, not a read the poller counts.
        let slack = u64::from(v.simulator.name == "pingback");
        counters.check(
            v.simulator.name,
            allowance,
            Duration::from_secs(u64::from(per_seconds)),
            slack,
        );
    }
}
