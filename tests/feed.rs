//! The change feed's engine end to end: gateways polling the simulators, their writes recorded
//! at once, two replicas sharing one Redis, and the poller's share of a vendor's real quota.
//! The simulated world is changed through the vendors' own APIs on the simulator, or through the
//! gateway.

mod support;

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use support::{ADMIN, clients_toml};
use switchboard_demo as registry;
use switchboard_feed::snapshot::{Snapshot, Tracked};
use switchboard_feed::{Event, EventType};
use switchboard_server::AppState;
use switchboard_sim::{Sim, SimOptions};
use switchboard_testkit::RedisServer;

/// A gateway (in-process state and its HTTP address) in front of `sim_url`.
struct Gateway {
    url: String,
    state: Arc<AppState>,
}

async fn gateway(config_text: &str) -> Gateway {
    let (url, state) = support::start_gateway_with_state(config_text).await;
    Gateway { url, state }
}

async fn simulator(conversations: usize) -> (Sim, String) {
    let sim = registry::simulators(&SimOptions {
        seed: 11,
        conversations,
    });
    let addr = sim
        .clone()
        .spawn("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("sim starts");
    (sim, format!("http://{addr}"))
}

/// The simulator's gateway config with `connection` polled every second (and `extra` keys).
fn config(sim_url: &str, connection: &str, extra: &str) -> String {
    let connections = registry::demo_config(sim_url).replace(
        &format!("id = \"{connection}\"\n"),
        &format!("id = \"{connection}\"\npoll_interval_secs = 1\n{extra}"),
    );
    format!("{}{connections}", clients_toml(sim_url))
}

/// The connection's poller snapshot as stored.
async fn snapshot(state: &AppState, connection: &str) -> Option<Snapshot> {
    state
        .store
        .get(&switchboard_feed::snapshot_key(connection))
        .await
        .ok()
        .flatten()
        .and_then(|b| Snapshot::decode(&b))
}

/// Waits (at most a minute, polling every 100 ms) until `ready` says yes.
async fn until<F, Fut>(what: &str, mut ready: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..600 {
        if ready().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("gave up waiting until {what}");
}

async fn baseline_done(state: &AppState, connection: &str) {
    until("the poller recorded its baseline", || async {
        snapshot(state, connection)
            .await
            .is_some_and(|s| s.baseline_done)
    })
    .await;
}

/// Every event in the log about `conversation_id`.
async fn events_of(state: &AppState, conversation_id: &str) -> Vec<Event> {
    let id = conversation_id.to_owned();
    state
        .feed
        .page(None, 10_000, &move |e: &Event| e.conversation_id == id)
        .await
        .expect("the log reads")
        .events
}

async fn sim_requests(http: &reqwest::Client, sim_url: &str, vendor: &str) -> u64 {
    support::sim_report(http, sim_url).await["requests"][vendor]
        .as_u64()
        .expect("a counter")
}

/// Waits until the simulated `vendor` received `n` more requests (a poller's next passes).
async fn more_passes(http: &reqwest::Client, sim_url: &str, vendor: &str, n: u64) {
    let calls = sim_requests(http, sim_url, vendor).await;
    until("more poll passes", || async {
        sim_requests(http, sim_url, vendor).await >= calls + n
    })
    .await;
}

async fn call(
    http: &reqwest::Client,
    gateway: &str,
    method: Method,
    path: &str,
    body: Value,
    key: Option<&str>,
) -> (u16, Value) {
    let mut request = http
        .request(method, format!("{gateway}{path}"))
        .bearer_auth(ADMIN)
        .json(&body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.expect("gateway answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A Zipchat conversation on the web channel (no 24-hour rule), by gateway id: the fifth newest,
/// so its activity is older than the baseline's instant (the simulator stamps in seconds and the
/// newest conversation's activity is when the world was made; a message stamped in the very
/// second the baseline recorded is taken as already there).
async fn web_conversation(http: &reqwest::Client, gateway: &str) -> String {
    let (status, page) = call(
        http,
        gateway,
        Method::GET,
        "/v1/conversations?connection=shop-zipchat&channel=web&limit=5",
        Value::Null,
        None,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    page["data"][4]["id"]
        .as_str()
        .expect("five web conversations")
        .to_owned()
}

/// Sends a message on Zipchat conversation `native` directly at the simulator (not through the
/// gateway), as agent 7; returns its native id.
async fn zipchat_message_at_the_vendor(
    http: &reqwest::Client,
    sim_url: &str,
    native: &str,
    text: &str,
) -> String {
    let url = format!(
        "{sim_url}{}/chats/{}/conversations/{native}/messages",
        switchboard_sim::zipchat::PREFIX,
        switchboard_sim::zipchat::CHAT_ID
    );
    let response = http
        .post(url)
        .bearer_auth(switchboard_sim::zipchat::API_KEY)
        .json(&json!({"message": text, "sender_id": 7}))
        .send()
        .await
        .expect("the simulator answers");
    assert!(response.status().is_success(), "{}", response.status());
    let body: Value = response.json().await.expect("JSON");
    match &body["message"]["id"] {
        Value::Number(n) => n.to_string(),
        other => other.as_str().expect("a message id").to_owned(),
    }
}

/// Assigns Zipchat conversation `native` to agent 7 directly at the simulator.
async fn zipchat_take_over_at_the_vendor(http: &reqwest::Client, sim_url: &str, native: &str) {
    let url = format!(
        "{sim_url}{}/chats/{}/conversations/{native}/assignment",
        switchboard_sim::zipchat::PREFIX,
        switchboard_sim::zipchat::CHAT_ID
    );
    let response = http
        .patch(url)
        .bearer_auth(switchboard_sim::zipchat::API_KEY)
        .json(&json!({"assignee_id": 7}))
        .send()
        .await
        .expect("the simulator answers");
    assert!(response.status().is_success(), "{}", response.status());
}

fn message_events<'a>(events: &'a [Event], native: &str) -> Vec<&'a Event> {
    events
        .iter()
        .filter(|e| {
            e.kind == EventType::MessageCreated
                && e.data
                    .message
                    .as_ref()
                    .is_some_and(|m| m.native_id == native)
        })
        .collect()
}

/// The poller's tracked state of a conversation.
async fn tracked(state: &AppState, connection: &str, native: &str) -> Option<Tracked> {
    snapshot(state, connection)
        .await
        .and_then(|s| s.conversations.get(native).cloned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_through_the_gateway_are_one_event_each_stamped_with_the_client_and_the_poller_adds_none()
 {
    let (_sim, sim_url) = simulator(30).await;
    let gw = gateway(&config(&sim_url, "shop-zipchat", "")).await;
    let http = reqwest::Client::new();
    baseline_done(&gw.state, "shop-zipchat").await;
    assert!(
        gw.state
            .feed
            .page(None, 10, &|_| true)
            .await
            .expect("reads")
            .events
            .is_empty(),
        "the baseline is recorded silently"
    );

    let id = web_conversation(&http, &gw.url).await;
    let native = id.trim_start_matches("shop-zipchat:").to_owned();
    let (status, _) = call(
        &http,
        &gw.url,
        Method::PUT,
        &format!("/v1/conversations/{id}/assignment"),
        json!({"assignee_id": "shop-zipchat:7"}),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let reply = json!({"text": "A person here, how can I help?"});
    let path = format!("/v1/conversations/{id}/messages");
    let (status, sent) = call(
        &http,
        &gw.url,
        Method::POST,
        &path,
        reply.clone(),
        Some("reply-1"),
    )
    .await;
    assert_eq!(status, 201, "{sent}");
    let reply_native = sent["native_id"]
        .as_str()
        .expect("the reply's id")
        .to_owned();
    let (status, replayed) =
        call(&http, &gw.url, Method::POST, &path, reply, Some("reply-1")).await;
    assert!(
        status < 300,
        "the replay answers as the first time: {replayed}"
    );
    assert_eq!(replayed["id"], sent["id"]);

    // The poller sees the new state at the vendor, takes the echoes into its snapshot, and has
    // read the conversation's messages; then a few more passes.
    until("the poller's snapshot has the reply", || async {
        tracked(&gw.state, "shop-zipchat", &native)
            .await
            .is_some_and(|t| {
                t.assignee.as_deref() == Some("7")
                    && t.messages.known.iter().any(|(m, _)| *m == reply_native)
            })
            && snapshot(&gw.state, "shop-zipchat")
                .await
                .is_some_and(|s| s.message_queue.is_empty())
    })
    .await;
    more_passes(&http, &sim_url, "zipchat", 3).await;

    let events = events_of(&gw.state, &id).await;
    assert_eq!(
        events.len(),
        2,
        "one event per write, none from the poller: {events:#?}"
    );
    assert_eq!(events[0].kind, EventType::ConversationUpdated);
    assert!(events[0].changed.iter().flatten().any(|f| f == "assignee"));
    assert_eq!(events[1].kind, EventType::MessageCreated);
    assert_eq!(message_events(&events, &reply_native).len(), 1);
    for e in &events {
        assert_eq!(
            e.performed_by.as_ref().map(|p| p.client.as_str()),
            Some("admin")
        );
        assert_eq!(e.connection, "shop-zipchat");
        assert!(e.id.parse::<switchboard_feed::LogId>().is_ok(), "{}", e.id);
    }

    // A message sent in the vendor's own tools is the poller's to report: once, unstamped.
    let outside =
        zipchat_message_at_the_vendor(&http, &sim_url, &native, "Sent from Zipchat itself").await;
    until("the poller reports the vendor-side message", || async {
        !message_events(&events_of(&gw.state, &id).await, &outside).is_empty()
    })
    .await;
    more_passes(&http, &sim_url, "zipchat", 3).await;
    let events = events_of(&gw.state, &id).await;
    let reported = message_events(&events, &outside);
    assert_eq!(reported.len(), 1, "{events:#?}");
    assert_eq!(reported[0].performed_by, None);
    assert_eq!(
        events
            .iter()
            .filter(|e| e.kind == EventType::MessageCreated)
            .count(),
        2,
        "the gateway's reply once, the vendor-side message once: {events:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_redis_poll_a_connection_once_and_the_survivor_takes_over() {
    let redis = RedisServer::start();
    let (_sim, sim_url) = simulator(30).await;
    let text = format!(
        "[server]\ncursor_secret = \"replicas-share-this\"\n[store]\nredis_url = \"{}\"\nkey_prefix = \"feed-replicas:\"\n{}",
        redis.url(),
        config(&sim_url, "shop-zipchat", "")
    );
    let a = gateway(&text).await;
    let b = gateway(&text).await;
    let http = reqwest::Client::new();
    baseline_done(&a.state, "shop-zipchat").await;

    let client = redis::Client::open(redis.url().as_str()).expect("url");
    let redis_con = client
        .get_multiplexed_async_connection()
        .await
        .expect("connects");
    let lease_key = format!(
        "feed-replicas:lease:{}",
        switchboard_feed::lease_key("shop-zipchat")
    );
    let lease = |mut con: redis::aio::MultiplexedConnection| {
        let key = lease_key.clone();
        async move {
            let (holder, token): (Option<String>, Option<u64>) = redis::cmd("HMGET")
                .arg(&key)
                .arg("h")
                .arg("t")
                .query_async(&mut con)
                .await
                .expect("HMGET");
            (holder.unwrap_or_default(), token.unwrap_or_default())
        }
    };
    let holders = [
        a.state.pollers.holders()[0].to_owned(),
        b.state.pollers.holders()[0].to_owned(),
    ];
    assert_ne!(
        holders[0], holders[1],
        "each replica polls under its own name"
    );
    let (first_holder, first_token) = lease(redis_con.clone()).await;
    let held_by_a = first_holder == holders[0];
    assert!(
        held_by_a || first_holder == holders[1],
        "{first_holder} holds the lease"
    );
    let (holder, survivor) = if held_by_a { (&a, &b) } else { (&b, &a) };

    // A change while both run: reported once, by the holder.
    let id = web_conversation(&http, &a.url).await;
    let native = id.trim_start_matches("shop-zipchat:").to_owned();
    zipchat_take_over_at_the_vendor(&http, &sim_url, &native).await;
    let before = zipchat_message_at_the_vendor(&http, &sim_url, &native, "before the crash").await;
    until("the change is reported", || async {
        !message_events(&events_of(&survivor.state, &id).await, &before).is_empty()
    })
    .await;
    assert_eq!(
        lease(redis_con.clone()).await,
        (first_holder.clone(), first_token),
        "the lease stayed with its holder"
    );

    // The holder dies without giving the lease up; a change made meanwhile is not lost.
    holder.state.pollers.abort_all();
    let during =
        zipchat_message_at_the_vendor(&http, &sim_url, &native, "while nobody polls").await;
    until("the other replica holds the lease", || {
        let con = redis_con.clone();
        let lease = &lease;
        let expected = if held_by_a { &holders[1] } else { &holders[0] };
        async move { lease(con).await.0 == *expected }
    })
    .await;
    let (_, second_token) = lease(redis_con.clone()).await;
    assert!(
        second_token > first_token,
        "the new holder's fencing token is greater"
    );
    until(
        "the change made during the takeover is reported",
        || async { !message_events(&events_of(&survivor.state, &id).await, &during).is_empty() },
    )
    .await;
    let after = zipchat_message_at_the_vendor(&http, &sim_url, &native, "after the takeover").await;
    until("a change after the takeover is reported", || async {
        !message_events(&events_of(&survivor.state, &id).await, &after).is_empty()
    })
    .await;
    more_passes(&http, &sim_url, "zipchat", 3).await;

    let events = events_of(&survivor.state, &id).await;
    for message in [&before, &during, &after] {
        assert_eq!(
            message_events(&events, message).len(),
            1,
            "message {message}: {events:#?}"
        );
    }
    let mut ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    ids.dedup();
    assert_eq!(ids.len(), events.len(), "no event id twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_poller_spends_at_most_its_share_of_the_real_quota_and_leaves_the_rest() {
    // ChatbotX: 120 requests per 10 s per workspace; a tenth of it is 12 per 10 s, at most two
    // a pass. Sixty conversations changed at the vendor need more than 60 reads: the poller is
    // held to its share for a whole window.
    let (_sim, sim_url) = simulator(120).await;
    let gw = gateway(&config(
        &sim_url,
        "support-chatbotx",
        "poll_quota_share = 0.1\n",
    ))
    .await;
    let http = reqwest::Client::new();
    baseline_done(&gw.state, "support-chatbotx").await;

    let (status, page) = call(
        &http,
        &gw.url,
        Method::GET,
        "/v1/conversations?connection=support-chatbotx&limit=60",
        Value::Null,
        None,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let natives: Vec<String> = page["data"]
        .as_array()
        .expect("conversations")
        .iter()
        .map(|c| c["native_id"].as_str().expect("native id").to_owned())
        .collect();
    assert_eq!(natives.len(), 60);
    for native in &natives {
        let response = http
            .post(format!(
                "{sim_url}{}/v1/conversations/{native}/messages",
                switchboard_sim::chatbotx::PREFIX
            ))
            .bearer_auth(switchboard_sim::chatbotx::TOKEN)
            .json(&json!({"text": "a change at the vendor"}))
            .send()
            .await
            .expect("the simulator answers");
        assert!(response.status().is_success(), "{}", response.status());
    }

    let start = sim_requests(&http, &sim_url, "chatbotx").await;
    tokio::time::sleep(Duration::from_millis(9_500)).await;
    let spent = sim_requests(&http, &sim_url, "chatbotx").await - start;
    assert!(spent >= 1, "the poller works");
    assert!(
        spent <= 12,
        "{spent} requests in less than one 10 s window: more than a tenth of 120"
    );
    let pending = snapshot(&gw.state, "support-chatbotx")
        .await
        .map(|s| s.message_queue.len() + usize::from(s.scan.is_some()))
        .unwrap_or_default();
    assert!(
        pending > 0,
        "the poller still had work: its share held it back"
    );

    // The rest of the quota serves interactive callers at once.
    for _ in 0..10 {
        let (status, body) = call(
            &http,
            &gw.url,
            Method::GET,
            "/v1/conversations?connection=support-chatbotx&limit=20",
            Value::Null,
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
}
