//! The live simulated world: the changes a live simulator reports are there in the vendors' own
//! APIs, the same seed makes the same changes, and a polling gateway turns every change on its
//! connection into an event.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::Utc;
use support::{ADMIN, Env, clients_toml};
use switchboard_feed::{Event, EventType};
use switchboard_server::registry::{self, VENDORS};
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

#[tokio::test]
async fn a_polling_gateway_turns_every_live_change_into_one_event() {
    let vendor = "chatbotx";
    let connection = connection_of(vendor);
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
    let connections = registry::demo_config(&sim_url).replace(
        &format!("id = \"{connection}\"\n"),
        &format!("id = \"{connection}\"\npoll_interval_secs = 1\n"),
    );
    let (_gateway, state) =
        support::start_gateway_with_state(&format!("{}{connections}", clients_toml(&sim_url)))
            .await;
    let http = reqwest::Client::new();
    let all_events = || async {
        state
            .feed
            .page(None, 100_000, &|e: &Event| e.connection == connection)
            .await
            .expect("the log reads")
            .events
    };
    // The baseline is silent: the first events are the live world's.
    until("the poller recorded its baseline", || async {
        state
            .store
            .get(&switchboard_feed::snapshot_key(connection))
            .await
            .ok()
            .flatten()
            .and_then(|b| switchboard_feed::snapshot::Snapshot::decode(&b))
            .is_some_and(|s| s.baseline_done)
    })
    .await;
    let live = sim.spawn_live(Duration::from_millis(150));
    until(
        "the live world made a dozen changes on the connection",
        || async { sim.changes(0).iter().filter(|c| c.vendor == vendor).count() >= 12 },
    )
    .await;
    live.abort();
    let changes: Vec<Change> = reported(&http, &sim_url, 0)
        .await
        .changes
        .into_iter()
        .filter(|c| c.vendor == vendor)
        .collect();
    for by in ["customer", "bot", "agent"] {
        assert!(
            changes.iter().any(|c| c.by == by),
            "no {by} change in {changes:?}"
        );
    }
    until("every reported change is an event", || async {
        let events = all_events().await;
        changes.iter().all(|c| seen(&events, connection, c))
    })
    .await;
    let events = all_events().await;
    let ids: BTreeSet<&str> = events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), events.len(), "an event id twice");
    let messages: Vec<&str> = events
        .iter()
        .filter_map(|e| e.data.message.as_ref().map(|m| m.id.as_str()))
        .collect();
    let unique: BTreeSet<&str> = messages.iter().copied().collect();
    assert_eq!(unique.len(), messages.len(), "a message announced twice");
}
