//! Stream tickets (`POST /v1/events/tickets`): what lets a browser's `EventSource` open the
//! change feed without the bearer token. Single use, short-lived, bound to the caller and its
//! filters, accepted by any replica over the shared store, refused by every other endpoint,
//! and never logged.

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use support::feed::{Gateway, OPS, OUTSIDER, READER, SseReader, config_text, event};
use switchboard_store::{MemoryStore, RedisStore, Store};
use switchboard_testkit::{RedisServer, TempDir, free_port};

impl Gateway {
    /// Mints a ticket for `token` with `filters` (the request body).
    async fn ticket(&self, token: &str, filters: Value) -> String {
        let (status, body) = self.mint(token, filters).await;
        assert_eq!(status, 201, "{body}");
        assert!(body["expires_at"].is_string(), "{body}");
        body["ticket"].as_str().expect("ticket").to_owned()
    }

    async fn mint(&self, token: &str, filters: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/v1/events/tickets", self.url))
            .bearer_auth(token)
            .json(&filters)
            .send()
            .await
            .expect("gateway answers");
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    /// `GET /v1/events/stream?ticket=..{query}` without a token.
    async fn open_with(&self, ticket: &str, query: &str) -> reqwest::Response {
        self.http
            .get(format!(
                "{}/v1/events/stream?ticket={ticket}{query}",
                self.url
            ))
            .send()
            .await
            .expect("gateway answers")
    }
}

async fn problem_code(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body: Value = response.json().await.expect("problem");
    (status, body["code"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn a_ticket_opens_one_stream_once() {
    let gateway = Gateway::start("").await;
    let appended = gateway
        .append(vec![event("conversation.created", "shop", 1)])
        .await;
    let ticket = gateway.ticket(READER, json!({})).await;
    assert!(ticket.starts_with("sbt_") && ticket.len() > 40, "{ticket}");

    let first = gateway.open_with(&ticket, "&after=0-0").await;
    assert_eq!(first.status(), 200);
    let mut stream = SseReader::new(first);
    let messages = stream.take(1).await;
    assert_eq!(messages[0].id.as_deref(), Some(appended[0].id.as_str()));

    let second = gateway.open_with(&ticket, "&after=0-0").await;
    assert_eq!(problem_code(second).await, (401, "unauthenticated".into()));
    let forged = gateway.open_with("sbt_forged", "").await;
    assert_eq!(problem_code(forged).await.0, 401);
}

#[tokio::test]
async fn a_ticket_expires() {
    let gateway = Gateway::start("[server]\nstream_ticket_ttl_ms = 50\n").await;
    let ticket = gateway.ticket(READER, json!({})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let late = gateway.open_with(&ticket, "").await;
    assert_eq!(problem_code(late).await.0, 401);
}

#[tokio::test]
async fn a_ticket_lives_at_most_a_minute() {
    let refused =
        switchboard_server::Config::parse(&config_text("[server]\nstream_ticket_ttl_ms = 60001\n"));
    assert!(refused.is_err(), "a ticket may not outlive a minute");
}

#[tokio::test]
async fn a_ticket_carries_its_callers_view_and_filters() {
    let gateway = Gateway::start("").await;
    let appended = gateway
        .append(vec![
            event("conversation.created", "shop", 1),
            event("message.created", "elsewhere", 2),
            event("conversation.updated", "elsewhere", 3),
            event("message.created", "shop", 4),
            event("message.created", "elsewhere", 5),
        ])
        .await;

    // Filters in the ticket.
    let ticket = gateway
        .ticket(
            OPS,
            json!({"type": ["message.created"], "connection": ["elsewhere"]}),
        )
        .await;
    let mut stream = SseReader::new(gateway.open_with(&ticket, "&after=0-0").await);
    let ids: Vec<_> = stream.take(2).await.into_iter().map(|m| m.id).collect();
    assert_eq!(
        ids,
        vec![Some(appended[1].id.clone()), Some(appended[4].id.clone())]
    );

    // The caller's own view: the outsider sees only `elsewhere`.
    let ticket = gateway.ticket(OUTSIDER, json!({})).await;
    let mut stream = SseReader::new(gateway.open_with(&ticket, "&after=0-0").await);
    let seen: Vec<_> = stream.take(3).await.into_iter().map(|m| m.id).collect();
    assert_eq!(
        seen,
        vec![
            Some(appended[1].id.clone()),
            Some(appended[2].id.clone()),
            Some(appended[4].id.clone())
        ]
    );

    // A connection the caller cannot see, an unknown type, an unknown field: 422.
    for body in [
        json!({"connection": ["shop"]}),
        json!({"type": ["conversation.deleted"]}),
        json!({"after": "0-0"}),
    ] {
        let (status, problem) = gateway.mint(OUTSIDER, body.clone()).await;
        assert!(status == 422 || status == 400, "{body}: {status} {problem}");
    }
    // Filters belong in the ticket, not beside it.
    let ticket = gateway.ticket(OPS, json!({})).await;
    let mixed = gateway.open_with(&ticket, "&type=message.created").await;
    assert_eq!(problem_code(mixed).await, (422, "invalid_parameter".into()));
}

#[tokio::test]
async fn a_ticket_is_refused_everywhere_but_the_stream() {
    let gateway = Gateway::start("").await;
    let ticket = gateway.ticket(OPS, json!({})).await;
    for path in [
        "/v1/events",
        "/v1/connections",
        "/v1/conversations",
        "/v1/webhooks",
    ] {
        let r = gateway
            .http
            .get(format!("{}{path}?ticket={ticket}", gateway.url))
            .send()
            .await
            .expect("answer");
        assert_eq!(r.status(), 401, "{path} refuses a ticket");
    }
    let r = gateway
        .http
        .post(format!("{}/v1/events/tickets?ticket={ticket}", gateway.url))
        .json(&json!({}))
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), 401, "a ticket does not mint tickets");
    // Still good for the stream.
    assert_eq!(gateway.open_with(&ticket, "").await.status(), 200);
}

/// Two gateways over one store: a ticket minted by one opens a stream on the other, once.
async fn replicas_share_tickets(store: impl Fn() -> Arc<dyn Store>) {
    let a = Gateway::over(store(), "").await;
    let b = Gateway::over(store(), "").await;
    let appended = a.append(vec![event("message.created", "shop", 1)]).await;
    let ticket = a.ticket(READER, json!({})).await;
    let mut stream = SseReader::new(b.open_with(&ticket, "&after=0-0").await);
    assert_eq!(
        stream.take(1).await[0].id.as_deref(),
        Some(appended[0].id.as_str())
    );
    assert_eq!(a.open_with(&ticket, "").await.status(), 401);
    assert_eq!(b.open_with(&ticket, "").await.status(), 401);
}

#[tokio::test]
async fn another_replica_accepts_a_ticket_over_a_shared_memory_store() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
    replicas_share_tickets(|| store.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_replica_accepts_a_ticket_over_redis() {
    let redis = RedisServer::start();
    let url = redis.url();
    replicas_share_tickets(|| {
        Arc::new(RedisStore::connect(&url, "tickets-test:").expect("redis store")) as Arc<dyn Store>
    })
    .await;
    // Only the hash is stored.
    let mut con = redis::Client::open(url.as_str())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connects");
    let gateway = Gateway::over(
        Arc::new(RedisStore::connect(&url, "tickets-test:").expect("redis store")),
        "",
    )
    .await;
    let ticket = gateway.ticket(READER, json!({})).await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("tickets-test:*")
        .query_async(&mut con)
        .await
        .expect("keys");
    let secret = ticket.trim_start_matches("sbt_");
    assert!(
        keys.iter().any(|k| k.contains("stream-ticket:")),
        "{keys:?}"
    );
    for key in &keys {
        assert!(!key.contains(secret), "the ticket itself is a key: {key}");
        let value: Option<Vec<u8>> = redis::cmd("GET")
            .arg(key)
            .query_async(&mut con)
            .await
            .unwrap_or(None);
        let value = String::from_utf8_lossy(&value.unwrap_or_default()).into_owned();
        assert!(!value.contains(secret), "the ticket is stored: {key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_is_never_logged() {
    let dir = TempDir::new();
    let config_path = dir.path().join("switchboard.toml");
    std::fs::write(&config_path, config_text("")).expect("config written");
    let mut gateway = support::process::Gateway::start_with_env(
        &config_path,
        free_port(),
        dir.path(),
        &[("SWITCHBOARD_LOG", "trace")],
    )
    .await;
    let http = reqwest::Client::new();
    let minted: Value = http
        .post(format!("{}/v1/events/tickets", gateway.url))
        .bearer_auth(OPS)
        .json(&json!({}))
        .send()
        .await
        .expect("mint")
        .json()
        .await
        .expect("JSON");
    let ticket = minted["ticket"].as_str().expect("ticket").to_owned();
    let open = http
        .get(format!("{}/v1/events/stream?ticket={ticket}", gateway.url))
        .send()
        .await
        .expect("stream");
    assert_eq!(open.status(), 200);
    drop(open);
    for path in ["/v1/events/stream", "/v1/conversations"] {
        let r = http
            .get(format!("{}{path}?ticket={ticket}", gateway.url))
            .send()
            .await
            .expect("answer");
        assert_eq!(r.status(), 401);
    }
    let metrics = support::metrics_text(&http, &gateway.url).await;
    let secret = ticket.trim_start_matches("sbt_");
    assert!(!metrics.contains(secret), "the ticket is in the metrics");
    // Stopped, not killed: its last lines are written as it stops.
    gateway.stop();
    let mut logged = String::new();
    for entry in std::fs::read_dir(dir.path()).expect("dir").flatten() {
        if entry.path().extension().is_some_and(|e| e == "log") {
            logged.push_str(&std::fs::read_to_string(entry.path()).expect("log"));
        }
    }
    assert!(
        logged.contains("request served"),
        "the requests were logged"
    );
    assert!(!logged.contains(secret), "the ticket is in the logs");
}
