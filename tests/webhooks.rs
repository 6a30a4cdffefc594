//! Webhooks end to end: a receiver on loopback port 0 that fails, times out, answers 429 or 410
//! on purpose; signatures checked with the `standardwebhooks` crate; the outbox surviving a
//! restart over the same store; an endpoint limited to one connection.

mod support;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use support::feed::{
    Answer, Gateway, HookReceiver, OPS, OUTSIDER, READER, SECRET, event, webhook_toml,
};
use switchboard_store::{MemoryStore, Store};

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("a timestamp: {v}"))
}

/// The wait the endpoint scheduled after its last attempt.
fn scheduled_wait(endpoint: &Value) -> Duration {
    (time(&endpoint["next_attempt_at"]) - time(&endpoint["last_attempt_at"]))
        .to_std()
        .expect("the next attempt is after the last")
}

#[tokio::test]
async fn a_receiver_that_fails_then_times_out_gets_the_event_again_per_the_schedule() {
    let receiver = HookReceiver::start(vec![
        Answer::Status(500),
        Answer::Hang(Duration::from_secs(5)),
    ])
    .await;
    let gateway = Gateway::start(&webhook_toml(
        "crm",
        &receiver.url,
        "timeout_secs = 0.5\nretry_schedule_secs = [0, 0.4, 0.6, 0.6]",
    ))
    .await;
    let endpoint = gateway.webhook("crm").await;
    assert_eq!(endpoint["state"], "active");
    assert_eq!(endpoint["url"], receiver.url.as_str());
    assert_eq!(endpoint["connections"], Value::Null);

    let appended = gateway
        .append(vec![event("message.created", "shop", 1)])
        .await;
    let event_id = appended[0].id.clone();

    // After the 500: one failed attempt, the next one scheduled 0.4 s (±10%) later.
    let retrying = gateway
        .webhook_until("crm", |w| w["attempts"] == 1 && w["last_error"].is_string())
        .await;
    assert_eq!(retrying["state"], "retrying");
    assert_eq!(retrying["last_error"], "the receiver answered HTTP 500");
    assert_eq!(retrying["backlog"], 1);
    let wait = scheduled_wait(&retrying);
    assert!(
        (Duration::from_millis(355)..=Duration::from_millis(445)).contains(&wait),
        "{wait:?}"
    );

    // After the timeout: the second failure, the next delay of the schedule.
    let timed_out = gateway.webhook_until("crm", |w| w["attempts"] == 2).await;
    assert!(
        timed_out["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("no answer within 0.5 s")),
        "{timed_out}"
    );
    let wait = scheduled_wait(&timed_out);
    assert!(
        (Duration::from_millis(535)..=Duration::from_millis(665)).contains(&wait),
        "{wait:?}"
    );

    // The third attempt gets 200.
    let delivered = gateway
        .webhook_until("crm", |w| w["last_success_at"].is_string())
        .await;
    assert_eq!(delivered["state"], "active");
    assert_eq!(delivered["attempts"], 0);
    assert_eq!(delivered["cursor"], event_id.as_str());
    assert_eq!(delivered["backlog"], 0);

    let deliveries = receiver.wait_for(3).await;
    assert_eq!(deliveries.len(), 3, "three attempts, no more");
    for delivery in &deliveries {
        assert_eq!(
            delivery.webhook_id(),
            event_id,
            "the same webhook-id on every attempt"
        );
        assert!(
            delivery.verify(SECRET),
            "the standardwebhooks crate verifies the signature"
        );
        assert_eq!(delivery.event()["id"], event_id.as_str());
        assert_eq!(delivery.event()["type"], "message.created");
        assert_eq!(
            delivery
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/json")
        );
    }
    assert!(
        !deliveries[0].verify("whsec_plJ3nmyCDGBKInavdOK15jslv+gavlGq"),
        "another secret fails"
    );
}

#[tokio::test]
async fn retry_after_is_honoured_a_spent_schedule_disables_and_a_replay_resumes_in_order() {
    let receiver = HookReceiver::start(vec![
        Answer::StatusWithRetryAfter(429, 1),
        Answer::Status(503),
        Answer::Status(404),
    ])
    .await;
    let gateway = Gateway::start(&webhook_toml(
        "crm",
        &receiver.url,
        "retry_schedule_secs = [0, 0.05, 0.05]",
    ))
    .await;
    let appended = gateway
        .append(vec![
            event("conversation.created", "shop", 1),
            event("conversation.created", "shop", 2),
        ])
        .await;

    let throttled = gateway.webhook_until("crm", |w| w["attempts"] == 1).await;
    assert_eq!(throttled["last_error"], "the receiver answered HTTP 429");
    assert!(
        scheduled_wait(&throttled) >= Duration::from_secs(1),
        "Retry-After: 1 wins over 50 ms"
    );

    // 429, 503, 404: every attempt of the schedule failed (a 4xx counts as a failure).
    let disabled = gateway
        .webhook_until("crm", |w| w["state"] == "disabled")
        .await;
    assert_eq!(disabled["attempts"], 3);
    assert_eq!(disabled["backlog"], 2);
    assert!(
        disabled["disabled_reason"]
            .as_str()
            .is_some_and(|r| r.contains("failed 3 attempts")),
        "{disabled}"
    );
    assert_eq!(receiver.deliveries().len(), 3);

    // Replay without a cursor: the event it stopped at first, then the next, in order.
    let (status, replayed) = gateway.post(OPS, "/v1/webhooks/crm/replay").await;
    assert_eq!(status, 202, "{replayed}");
    assert_eq!(replayed["state"], "active");
    let order = receiver.ids(5).await;
    assert_eq!(
        order[2..],
        [
            appended[0].id.clone(),
            appended[0].id.clone(),
            appended[1].id.clone()
        ]
    );
    gateway
        .webhook_until("crm", |w| w["backlog"] == 0 && w["state"] == "active")
        .await;

    // Replay from the beginning delivers both again.
    let (status, _) = gateway.post(OPS, "/v1/webhooks/crm/replay?after=0-0").await;
    assert_eq!(status, 202);
    let deliveries = receiver.wait_for(7).await;
    assert_eq!(deliveries[5].webhook_id(), appended[0].id);
    assert_eq!(deliveries[6].webhook_id(), appended[1].id);

    // Who may call these.
    let (status, _) = gateway.get(READER, "/v1/webhooks").await;
    assert_eq!(status, 403, "read scope is not enough");
    let (status, _) = gateway.post(READER, "/v1/webhooks/crm/replay").await;
    assert_eq!(status, 403);
    let (status, body) = gateway.get(OUTSIDER, "/v1/webhooks").await;
    assert_eq!(
        (status, body["data"].as_array().map(Vec::len)),
        (200, Some(0)),
        "an endpoint of every connection is not shown to a limited admin"
    );
    let (status, _) = gateway.post(OUTSIDER, "/v1/webhooks/crm/replay").await;
    assert_eq!(status, 404);
    let (status, problem) = gateway.post(OPS, "/v1/webhooks/crm/replay?after=x").await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (400, Some("invalid_cursor"))
    );
    let (status, problem) = gateway
        .post(OPS, "/v1/webhooks/crm/replay?after=1000-0")
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (410, Some("cursor_expired"))
    );
    let (status, _) = gateway.post(OPS, "/v1/webhooks/nope/replay").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn gone_disables_the_endpoint_until_a_replay() {
    let receiver = HookReceiver::start(vec![Answer::Status(410)]).await;
    let gateway = Gateway::start(&webhook_toml("crm", &receiver.url, "")).await;
    let first = gateway
        .append(vec![event("message.created", "shop", 1)])
        .await;
    let disabled = gateway
        .webhook_until("crm", |w| w["state"] == "disabled")
        .await;
    assert!(
        disabled["disabled_reason"]
            .as_str()
            .is_some_and(|r| r.contains("410")),
        "{disabled}"
    );
    assert_eq!(disabled["attempts"], 0, "410 is not a failure to retry");

    let second = gateway
        .append(vec![event("message.created", "shop", 2)])
        .await;
    gateway.webhook_until("crm", |w| w["backlog"] == 2).await;
    assert_eq!(
        receiver.deliveries().len(),
        1,
        "nothing is sent to a disabled endpoint"
    );

    let (status, _) = gateway.post(OPS, "/v1/webhooks/crm/replay").await;
    assert_eq!(status, 202);
    assert_eq!(
        receiver.ids(3).await,
        [
            first[0].id.clone(),
            first[0].id.clone(),
            second[0].id.clone()
        ]
    );
}

#[tokio::test]
async fn pending_deliveries_survive_a_restart_over_the_same_store() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
    let receiver = HookReceiver::start(vec![Answer::Status(500)]).await;
    let config = webhook_toml("crm", &receiver.url, "retry_schedule_secs = [0, 1.5]");
    let gateway = Gateway::over(store.clone(), &config).await;
    let first = gateway
        .append(vec![event("message.created", "shop", 1)])
        .await;
    gateway.webhook_until("crm", |w| w["attempts"] == 1).await;
    // The process stops with the event pending; another comes while it is down.
    gateway.stop().await;
    let down =
        switchboard_feed::EventLog::new(store.clone(), switchboard_feed::FeedConfig::default());
    let second = down
        .append(vec![event("message.created", "shop", 2)])
        .await
        .expect("appended");

    let restarted = Gateway::over(store, &config).await;
    let pending = restarted.webhook("crm").await;
    assert_eq!(
        pending["attempts"], 1,
        "the outbox came back from the store"
    );
    assert_eq!(pending["backlog"], 2);
    assert_eq!(
        receiver.ids(3).await,
        [
            first[0].id.clone(),
            first[0].id.clone(),
            second[0].id.clone()
        ],
        "the failed event again, then the next, in order"
    );
    restarted
        .webhook_until("crm", |w| {
            w["backlog"] == 0 && w["cursor"] == second[0].id.as_str()
        })
        .await;
}

#[tokio::test]
async fn an_endpoint_limited_to_one_connection_receives_only_its_events() {
    let receiver = HookReceiver::start(Vec::new()).await;
    let everything = HookReceiver::start(Vec::new()).await;
    let gateway = Gateway::start(&format!(
        "{}{}",
        webhook_toml(
            "outlet",
            &receiver.url,
            "connections = [\"elsewhere\"]\nevents = [\"message.created\", \"conversation.updated\"]"
        ),
        webhook_toml("all", &everything.url, ""),
    ))
    .await;
    let appended = gateway
        .append(
            (0..9)
                .map(|n| {
                    let connection = if n % 2 == 0 { "elsewhere" } else { "shop" };
                    let kind = if n == 4 {
                        "conversation.created"
                    } else {
                        "message.created"
                    };
                    event(kind, connection, n)
                })
                .collect(),
        )
        .await;
    let wanted: Vec<String> = appended
        .iter()
        .filter(|e| e.connection == "elsewhere" && e.kind.as_str() != "conversation.created")
        .map(|e| e.id.clone())
        .collect();
    // Once the unfiltered endpoint has all nine, the filtered one has had its chance at them.
    everything.wait_for(9).await;
    let endpoint = gateway
        .webhook_until("outlet", |w| w["cursor"] == appended[8].id.as_str())
        .await;
    assert_eq!(endpoint["connections"], serde_json::json!(["elsewhere"]));
    assert_eq!(receiver.ids(0).await, wanted);
    assert!(
        receiver
            .deliveries()
            .iter()
            .all(|d| d.event()["connection"] == "elsewhere")
    );

    // The admin limited to `elsewhere` sees this endpoint, not the other.
    let (status, body) = gateway.get(OUTSIDER, "/v1/webhooks").await;
    assert_eq!(status, 200);
    let shown: Vec<&str> = body["data"]
        .as_array()
        .map(|a| a.iter().filter_map(|w| w["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(shown, ["outlet"]);
}
