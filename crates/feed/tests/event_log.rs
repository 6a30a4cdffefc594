//! The event log over the memory and Redis stores: ids, paging with filters, the retention's
//! 410, and subscribers woken by local and remote appends.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use switchboard_core::{Channel, Conversation, Event, EventType, ProviderKind, Status};
use switchboard_feed::{EventLog, FeedConfig, LogId};
use switchboard_store::{MemoryStore, RedisStore, Store};
use switchboard_testkit::RedisServer;

fn conversation(connection: &str, native: &str) -> Conversation {
    let at = Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("time");
    Conversation {
        id: format!("{connection}:{native}"),
        connection: connection.into(),
        provider: ProviderKind::new("zipchat"),
        native_id: native.into(),
        channel: Channel::Web,
        native_channel: None,
        status: Status::Open,
        mode: None,
        assignee: None,
        contact: None,
        created_at: Some(at),
        updated_at: None,
        last_activity_at: at,
        last_message: None,
        message_count: None,
        escalation: None,
        url: None,
        raw: Some(serde_json::json!({"secret": "vendor json"})),
    }
}

fn created(connection: &str, native: &str) -> Event {
    Event::conversation(
        EventType::ConversationCreated,
        conversation(connection, native),
        Utc::now(),
    )
}

fn log(store: Arc<dyn Store>) -> EventLog {
    EventLog::new(store, FeedConfig::default())
}

#[tokio::test]
async fn appended_events_get_increasing_ids_and_page_back_oldest_first() {
    let log = log(Arc::new(MemoryStore::default()));
    let appended = log
        .append(vec![
            created("a", "1"),
            created("b", "2"),
            created("a", "3"),
        ])
        .await
        .expect("append");
    let ids: Vec<LogId> = appended
        .iter()
        .map(|e| e.id.parse().expect("the id is a cursor"))
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    assert!(
        appended[0]
            .data
            .conversation
            .as_ref()
            .is_some_and(|c| c.raw.is_none()),
        "the vendor's raw JSON is never kept"
    );

    let all = log.page(None, 10, &|_| true).await.expect("page");
    assert_eq!(all.events, appended);
    assert_eq!(all.next, ids.last().copied());

    // Two at a time, resumed with `next`: every event once.
    let first = log.page(None, 2, &|_| true).await.expect("page");
    assert_eq!(first.events.len(), 2);
    let second = log.page(first.next, 2, &|_| true).await.expect("page");
    assert_eq!(second.events, appended[2..]);
    let end = log.page(second.next, 2, &|_| true).await.expect("page");
    assert!(end.events.is_empty());
    assert_eq!(
        end.next, second.next,
        "nothing newer: next stays where it was"
    );

    // A filter skips events but `next` still advances past what it read.
    let only_b = log
        .page(None, 10, &|e: &Event| e.connection == "b")
        .await
        .expect("page");
    assert_eq!(only_b.events.len(), 1);
    assert_eq!(only_b.events[0].conversation_id, "b:2");
    assert_eq!(only_b.next, ids.last().copied());
    let none = log.page(None, 10, &|_| false).await.expect("page");
    assert!(none.events.is_empty());
    assert_eq!(none.next, ids.last().copied());
}

#[tokio::test]
async fn an_empty_log_pages_nothing_and_keeps_no_cursor() {
    let log = log(Arc::new(MemoryStore::default()));
    let page = log.page(None, 10, &|_| true).await.expect("page");
    assert!(page.events.is_empty());
    assert_eq!(page.next, None);
}

#[tokio::test]
async fn a_cursor_older_than_the_retention_is_gone() {
    let log = EventLog::new(
        Arc::new(MemoryStore::default()),
        FeedConfig {
            retention: Duration::from_secs(3600),
            ..FeedConfig::default()
        },
    );
    log.append(vec![created("a", "1")]).await.expect("append");
    let old = LogId { ms: 1_000, seq: 0 };
    let err = log
        .page(Some(old), 10, &|_| true)
        .await
        .expect_err("expired");
    assert_eq!(err.code(), "cursor_expired");
    assert_eq!(err.kind().http_status(), 410);
    assert_eq!(log.retention(), Duration::from_secs(3600));
}

#[tokio::test]
async fn subscribers_wake_on_local_appends_at_once() {
    let log = log(Arc::new(MemoryStore::default()));
    let mut rx = log.subscribe();
    let appended = log.append(vec![created("a", "1")]).await.expect("append");
    rx.changed().await.expect("woken");
    assert_eq!(
        rx.borrow_and_update().map(|id| id.to_string()),
        Some(appended[0].id.clone())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_replicas_appends_reach_subscribers_through_the_tail() {
    let redis = RedisServer::start();
    let store = |_: ()| -> Arc<dyn Store> {
        Arc::new(RedisStore::connect(&redis.url(), "feed-test:").expect("connects"))
    };
    let reader = log(store(()));
    let writer = log(store(()));
    let mut rx = reader.subscribe();
    let appended = writer
        .append(vec![created("a", "1")])
        .await
        .expect("append");
    let want: LogId = appended[0].id.parse().expect("id");
    tokio::time::timeout(Duration::from_secs(10), async {
        while rx.borrow_and_update().is_none_or(|id| id < want) {
            rx.changed().await.expect("tail runs");
        }
    })
    .await
    .expect("the other replica's append is seen");
    let page = reader.page(None, 10, &|_| true).await.expect("page");
    assert_eq!(page.events, appended);
}

/// Readers at the same place, over Redis (where they share the store's reads): a hundred
/// followers woken by an append all get it, each filtered its own way; a reader at the log's end
/// reads another replica's append though this replica never hears of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_at_the_same_place_each_get_every_new_event() {
    let redis = RedisServer::start();
    let store = || -> Arc<dyn Store> {
        Arc::new(RedisStore::connect(&redis.url(), "feed-shared:").expect("connects"))
    };
    let reader = log(store());
    let writer = log(store());
    let first = reader
        .append(vec![created("a", "1")])
        .await
        .expect("append");
    let after: Option<LogId> = Some(first[0].id.parse().expect("id"));
    let empty = reader.page(after, 10, &|_| true).await.expect("page");
    assert!(empty.events.is_empty());
    let appended = reader
        .append(vec![created("a", "2"), created("b", "3")])
        .await
        .expect("append");
    let mut readers = tokio::task::JoinSet::new();
    for i in 0..100 {
        let reader = reader.clone();
        readers.spawn(async move {
            let keep = move |e: &Event| i % 2 == 0 || e.connection == "b";
            (i, reader.page(after, 10, &keep).await.expect("page"))
        });
    }
    let pages = readers.join_all().await;
    assert_eq!(pages.len(), 100);
    for (i, page) in pages {
        let expected: Vec<Event> = appended
            .iter()
            .filter(|e| i % 2 == 0 || e.connection == "b")
            .cloned()
            .collect();
        assert_eq!(page.events, expected, "reader {i}");
        assert_eq!(
            page.next.map(|id| id.to_string()),
            Some(appended[1].id.clone())
        );
    }
    // Another replica appends: a reader at the end here gets it, though nobody here subscribes
    // (so this replica never hears of the append).
    let end: Option<LogId> = Some(appended[1].id.parse().expect("id"));
    assert!(
        reader
            .page(end, 10, &|_| true)
            .await
            .expect("page")
            .events
            .is_empty()
    );
    let theirs = writer
        .append(vec![created("c", "4")])
        .await
        .expect("append");
    tokio::time::timeout(Duration::from_secs(10), async {
        while reader.page(end, 10, &|_| true).await.expect("page").events != theirs {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the other replica's append is read");
}
