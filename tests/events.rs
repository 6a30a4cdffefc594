//! The change feed as consumers read it: `GET /v1/events` and `GET /v1/events/stream`, resumed
//! after a disconnect with the cursor / `Last-Event-ID`, filtered, limited to the caller's
//! connections, and ended by the server's shutdown.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::feed::{Gateway, OPS, OUTSIDER, READER, event};

fn ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["id"].as_str().expect("an id").to_owned())
        .collect()
}

/// Pages `GET /v1/events` from `after` to the end, `limit` at a time; returns the events and the
/// last `next_cursor`.
async fn read_all(
    gateway: &Gateway,
    token: &str,
    after: &str,
    query: &str,
    limit: u32,
) -> (Vec<Value>, String) {
    let mut events = Vec::new();
    let mut cursor = after.to_owned();
    loop {
        let (status, body) = gateway
            .get(
                token,
                &format!("/v1/events?after={cursor}&limit={limit}{query}"),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let page = body["data"].as_array().cloned().unwrap_or_default();
        let next = body["next_cursor"]
            .as_str()
            .expect("next_cursor is never null")
            .to_owned();
        if page.is_empty() {
            assert_eq!(next, cursor, "an empty page stays where it is");
            return (events, next);
        }
        assert!(page.len() <= limit as usize);
        events.extend(page);
        cursor = next;
    }
}

#[tokio::test]
async fn the_events_api_resumes_from_its_cursor_with_every_event_once() {
    let gateway = Gateway::start("").await;
    let (status, empty) = gateway.get(READER, "/v1/events").await;
    assert_eq!(status, 200);
    assert_eq!(empty["data"], serde_json::json!([]));
    assert_eq!(
        empty["next_cursor"], "0-0",
        "an empty log: the cursor is the beginning"
    );

    let first = gateway
        .append(
            (0..7)
                .map(|n| event("conversation.updated", "shop", n))
                .collect(),
        )
        .await;
    let (seen, cursor) = read_all(&gateway, READER, "0-0", "", 3).await;
    assert_eq!(
        ids(&seen),
        first.iter().map(|e| e.id.clone()).collect::<Vec<_>>()
    );

    // The consumer goes away; events arrive meanwhile; it comes back with its cursor.
    let missed = gateway
        .append(
            (7..12)
                .map(|n| event("message.created", "elsewhere", n))
                .collect(),
        )
        .await;
    let (after, _) = read_all(&gateway, READER, &cursor, "", 2).await;
    assert_eq!(
        ids(&after),
        missed.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        "every missed event, none twice"
    );
    assert_eq!(after[0]["type"], "message.created");
    assert_eq!(after[0]["connection"], "elsewhere");

    // Filters: types and connections, repeated or comma-separated.
    let (messages, _) = read_all(&gateway, READER, "0-0", "&type=message.created", 100).await;
    assert_eq!(messages.len(), 5);
    let (both, _) = read_all(
        &gateway,
        READER,
        "0-0",
        "&type=message.created,conversation.updated&connection=shop",
        100,
    )
    .await;
    assert_eq!(
        ids(&both),
        first.iter().map(|e| e.id.clone()).collect::<Vec<_>>()
    );

    // Errors.
    let (status, problem) = gateway.get(READER, "/v1/events?after=yesterday").await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (400, Some("invalid_cursor"))
    );
    let (status, problem) = gateway.get(READER, "/v1/events?after=1000-0").await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (410, Some("cursor_expired")),
        "{problem}"
    );
    let (status, problem) = gateway.get(READER, "/v1/events?type=message.deleted").await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (422, Some("invalid_type")),
        "{problem}"
    );
    let (status, _) = gateway.get(READER, "/v1/events?limit=0").await;
    assert_eq!(status, 422);
    let (status, problem) = gateway.get(READER, "/v1/events?colour=red").await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (422, Some("invalid_parameter"))
    );
}

#[tokio::test]
async fn the_stream_replays_from_last_event_id_then_follows_live() {
    let _turn = STREAMS.lock().await;
    let gateway = Gateway::start("").await;
    let before = gateway
        .append(
            (0..3)
                .map(|n| event("conversation.created", "shop", n))
                .collect(),
        )
        .await;

    // Without a cursor: only what comes next.
    let mut fresh = gateway.stream(READER, "", None).await;
    // From the beginning: the three, then live ones.
    let mut stream = gateway.stream(READER, "?after=0-0", None).await;
    let replayed = stream.take(3).await;
    assert_eq!(
        replayed
            .iter()
            .map(|m| m.id.clone().unwrap_or_default())
            .collect::<Vec<_>>(),
        before.iter().map(|e| e.id.clone()).collect::<Vec<_>>()
    );
    let message = &replayed[0];
    assert_eq!(message.event.as_deref(), Some("conversation.created"));
    let data: Value = serde_json::from_str(&message.data).expect("data is the event's JSON");
    assert_eq!(data["id"], before[0].id.as_str());
    assert_eq!(data["conversation_id"], "shop:0");

    let live = gateway
        .append(vec![event("message.created", "shop", 3)])
        .await;
    assert_eq!(
        stream.take(1).await[0].id.as_deref(),
        Some(live[0].id.as_str())
    );
    assert_eq!(
        fresh.take(1).await[0].id.as_deref(),
        Some(live[0].id.as_str()),
        "a fresh stream starts at the end"
    );

    // Disconnect; events arrive meanwhile; reconnect with Last-Event-ID.
    let last = live[0].id.clone();
    drop(stream);
    let missed = gateway
        .append(
            (4..9)
                .map(|n| event("conversation.updated", "elsewhere", n))
                .collect(),
        )
        .await;
    // `after` is what a browser's EventSource keeps in its URL; Last-Event-ID wins.
    let mut resumed = gateway.stream(READER, "?after=0-0", Some(&last)).await;
    let got = resumed.take(5).await;
    assert_eq!(
        got.iter()
            .map(|m| m.id.clone().unwrap_or_default())
            .collect::<Vec<_>>(),
        missed.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        "every missed event, none twice"
    );
    let next = gateway
        .append(vec![event("message.created", "shop", 9)])
        .await;
    assert_eq!(
        resumed.take(1).await[0].id.as_deref(),
        Some(next[0].id.as_str())
    );

    // A bad or expired cursor is an HTTP error before any stream.
    let r = gateway
        .http
        .get(format!("{}/v1/events/stream", gateway.url))
        .bearer_auth(READER)
        .header("Last-Event-ID", "1000-0")
        .send()
        .await
        .expect("answers");
    assert_eq!(r.status(), 410);
    let r = gateway
        .http
        .get(format!("{}/v1/events/stream?after=nope", gateway.url))
        .bearer_auth(READER)
        .send()
        .await
        .expect("answers");
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn a_client_limited_to_one_connection_sees_only_its_events_in_the_api_and_the_stream() {
    let _turn = STREAMS.lock().await;
    let gateway = Gateway::start("").await;
    let mut all = gateway.stream(OPS, "?after=0-0", None).await;
    let mut limited = gateway.stream(OUTSIDER, "?after=0-0", None).await;
    let appended = gateway
        .append(
            (0..10)
                .map(|n| {
                    let connection = if n % 3 == 0 { "elsewhere" } else { "shop" };
                    event("message.created", connection, n)
                })
                .collect(),
        )
        .await;
    let theirs: Vec<String> = appended
        .iter()
        .filter(|e| e.connection == "elsewhere")
        .map(|e| e.id.clone())
        .collect();

    let (seen, _) = read_all(&gateway, OUTSIDER, "0-0", "", 2).await;
    assert_eq!(ids(&seen), theirs, "the API shows only `elsewhere`");
    let (status, problem) = gateway.get(OUTSIDER, "/v1/events?connection=shop").await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (422, Some("invalid_connection"))
    );

    let streamed = limited.take(theirs.len()).await;
    assert_eq!(
        streamed
            .iter()
            .map(|m| m.id.clone().unwrap_or_default())
            .collect::<Vec<_>>(),
        theirs
    );
    // The unrestricted stream sees all ten; by the time it has, the limited one would have
    // had any `shop` event queued before this marker.
    assert_eq!(all.take(10).await.len(), 10);
    let marker = gateway
        .append(vec![event("message.created", "elsewhere", 99)])
        .await;
    let next = limited.take(1).await;
    assert_eq!(
        next[0].id.as_deref(),
        Some(marker[0].id.as_str()),
        "nothing of `shop` in between"
    );
}

#[tokio::test]
async fn the_servers_shutdown_ends_open_streams() {
    let _turn = STREAMS.lock().await;
    // Connections get a long time to finish after the signal; streams must not use it.
    let mut gateway = Gateway::start("[server]\nshutdown_timeout_secs = 3600\n").await;
    let mut stream = gateway.stream(READER, "", None).await;
    let mut other = gateway.stream(OPS, "?after=0-0", None).await;
    gateway.begin_shutdown();
    let served = gateway.served.take().expect("serving");
    tokio::time::timeout(Duration::from_secs(30), served)
        .await
        .expect("the server stops without waiting for the streams")
        .expect("joined")
        .expect("served");
    assert!(stream.next().await.is_none(), "the stream ended");
    assert!(other.next().await.is_none(), "the stream ended");
}

/// The open-streams gauge is one per process: the tests that open streams take turns.
static STREAMS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Open event streams, from `/metrics`.
async fn open_streams(gateway: &Gateway) -> f64 {
    let text = gateway
        .http
        .get(format!("{}/metrics", gateway.url))
        .send()
        .await
        .expect("metrics answer")
        .text()
        .await
        .expect("text");
    text.lines()
        .find_map(|l| l.strip_prefix("switchboard_event_streams "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_subscriber_that_reads_nothing_is_disconnected() {
    let _turn = STREAMS.lock().await;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let gateway = Gateway::start("[server]\nwrite_timeout_secs = 1\n").await;
    let addr: std::net::SocketAddr = gateway
        .url
        .trim_start_matches("http://")
        .parse()
        .expect("addr");
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .set_recv_buffer_size(4096)
        .expect("a small receive buffer");
    let mut stalled = socket.connect(addr).await.expect("connects");
    stalled
        .write_all(
            format!("GET /v1/events/stream HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {READER}\r\n\r\n")
                .as_bytes(),
        )
        .await
        .expect("request sent");
    let mut reading = gateway.stream(READER, "", None).await;
    let mut open = 0.0;
    for _ in 0..200 {
        open = open_streams(&gateway).await;
        if open == 2.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(open, 2.0, "both streams are open");

    // Large events until the stalled subscriber's buffers are full and its stream is closed;
    // the gateway keeps nothing for it meanwhile (the log is the buffer).
    let big = "x".repeat(16 * 1024);
    let mut appended = 0;
    for _ in 0..100 {
        let batch = gateway
            .append(
                (0..50)
                    .map(|n| {
                        let mut e = event("message.created", "shop", n);
                        e.conversation_id = format!("shop:{big}");
                        e
                    })
                    .collect(),
            )
            .await;
        appended += batch.len();
        // The subscriber that reads keeps up.
        assert_eq!(reading.take(batch.len()).await.len(), batch.len());
        open = open_streams(&gateway).await;
        if open == 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(open, 1.0, "the stalled stream was closed");
    // The stalled client, reading at last, gets what was in flight and then the end.
    let mut sink = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stalled.read_to_end(&mut sink))
        .await
        .expect("the connection ends")
        .ok();
    assert!(
        sink.len() < appended * big.len(),
        "it did not get everything: it was cut off"
    );
    // The other subscriber goes on.
    let next = gateway
        .append(vec![event("message.created", "shop", 1)])
        .await;
    assert_eq!(
        reading.take(1).await[0].id.as_deref(),
        Some(next[0].id.as_str())
    );
}
