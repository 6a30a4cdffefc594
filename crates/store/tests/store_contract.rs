//! One contract, three stores: memory, embedded (redb) and Redis (a redis-server of the test's
//! own). Each case takes a factory of handles onto the same store: for Redis every handle is a
//! separate client, as separate replicas would have.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use switchboard_store::{
    Attempt, Claim, EmbeddedStore, LogId, MemoryStore, RateLimit, RedisStore, Store,
};
use switchboard_testkit::{RedisServer, TempDir};

mod contract;

use contract::Handles;
use contract::claims::*;
use contract::logs::*;

async fn contract(handles: Handles) {
    ping(&handles).await;
    bytes_with_ttl(&handles).await;
    take_once(&handles).await;
    generations(&handles).await;
    claim_race(&handles).await;
    claim_complete_replay(&handles).await;
    lease_expiry_and_release(&handles).await;
    unsettled_attempts(&handles).await;
    quota_burst_then_wait(&handles).await;
    quota_window_never_exceeded(&handles).await;
    vendor_block(&handles).await;
    lasting_blobs(&handles).await;
    log_append_and_read(&handles).await;
    log_concurrent_appends(&handles).await;
    log_retention(&handles).await;
    lease_one_holder_with_fencing(&handles).await;
    lease_race(&handles).await;
}

/// A claim of `fingerprint` for `lease`, noting `note`, kept a minute when unsettled.
async fn ping(handles: &Handles) {
    handles().ping().await.expect("the store answers PING");
}

async fn bytes_with_ttl(handles: &Handles) {
    let (a, b) = (handles(), handles());
    let long = Duration::from_secs(60);
    a.put("page:1", Bytes::from_static(b"one"), long)
        .await
        .expect("put");
    assert_eq!(
        b.get("page:1").await.expect("get").as_deref(),
        Some(&b"one"[..])
    );
    b.delete("page:1").await.expect("delete");
    assert_eq!(a.get("page:1").await.expect("get"), None);
    a.put("page:2", Bytes::from_static(b"two"), Duration::ZERO)
        .await
        .expect("put");
    assert_eq!(
        a.get("page:2").await.expect("get"),
        None,
        "zero TTL stores nothing"
    );
    a.put(
        "page:3",
        Bytes::from_static(b"three"),
        Duration::from_millis(100),
    )
    .await
    .expect("put");
    assert!(a.get("page:3").await.expect("get").is_some());
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(a.get("page:3").await.expect("get"), None, "expired");
}

async fn take_once(handles: &Handles) {
    let (a, b) = (handles(), handles());
    let ttl = Duration::from_secs(30);
    a.put("ticket:1", Bytes::from_static(b"one"), ttl)
        .await
        .expect("put");
    let mut takes = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let store = handles();
        takes.spawn(async move { store.take_once("ticket:1").await.expect("take") });
    }
    let taken: Vec<_> = takes.join_all().await.into_iter().flatten().collect();
    assert_eq!(
        taken,
        vec![Bytes::from_static(b"one")],
        "exactly one take gets it"
    );
    assert_eq!(b.take_once("ticket:1").await.expect("take"), None);
    assert_eq!(
        a.get("ticket:1").await.expect("get"),
        None,
        "gone once taken"
    );
    a.put(
        "ticket:2",
        Bytes::from_static(b"two"),
        Duration::from_millis(50),
    )
    .await
    .expect("put");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        b.take_once("ticket:2").await.expect("take"),
        None,
        "expired"
    );
    a.put(
        "ticket:3",
        Bytes::from_static(b"three"),
        Duration::from_secs(120),
    )
    .await
    .expect("put");
    assert_eq!(
        b.take_once("ticket:3").await.expect("take").as_deref(),
        Some(&b"three"[..]),
        "a lasting blob is taken too"
    );
    assert_eq!(a.take_once("ticket:3").await.expect("take"), None);
}

async fn generations(handles: &Handles) {
    let (a, b) = (handles(), handles());
    assert_eq!(a.generation("conn-a").await.expect("generation"), 0);
    let key = |g: u64| format!("cache:conn-a:{g}:/list");
    a.put(&key(0), Bytes::from_static(b"old"), Duration::from_secs(60))
        .await
        .expect("put");
    // A write through another handle (replica) moves the generation: the old page is not found.
    assert_eq!(b.bump_generation("conn-a").await.expect("bump"), 1);
    let now = a.generation("conn-a").await.expect("generation");
    assert_eq!(now, 1);
    assert_eq!(a.get(&key(now)).await.expect("get"), None);
    assert_eq!(a.generation("conn-b").await.expect("generation"), 0);
}

async fn quota_burst_then_wait(handles: &Handles) {
    let store = handles();
    // 8 per second: a burst of 2, then one every 1/6 s.
    let limit = RateLimit {
        requests: 8,
        per_seconds: 1,
    };
    let first = store.take("q1", limit).await.expect("take");
    let second = store.take("q1", limit).await.expect("take");
    assert_eq!(first.map(|l| l.remaining), Ok(1));
    assert_eq!(second.map(|l| l.remaining), Ok(0));
    let wait = store
        .take("q1", limit)
        .await
        .expect("take")
        .expect_err("the burst is spent");
    assert!(!wait.blocked, "the budget's spacing, not a vendor block");
    let wait = wait.wait;
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_millis(167),
        "{wait:?}"
    );
}

async fn quota_window_never_exceeded(handles: &Handles) {
    // Many callers hammer one bucket through several handles for a window and a half; the
    // grants in the first window never exceed the quota, and the burst was granted at once.
    let limit = RateLimit {
        requests: 12,
        per_seconds: 1,
    };
    let start = Instant::now();
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let store = handles();
            tokio::spawn(async move {
                let mut grants = Vec::new();
                while start.elapsed() < Duration::from_millis(1500) {
                    if store.take("q2", limit).await.expect("take").is_ok() {
                        grants.push(Instant::now());
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                grants
            })
        })
        .collect();
    let mut grants = Vec::new();
    for task in tasks {
        grants.extend(task.await.expect("task"));
    }
    grants.sort();
    let first = grants.first().copied().expect("some grants");
    let in_first_window = grants
        .iter()
        .filter(|t| t.duration_since(first) < Duration::from_secs(1))
        .count();
    assert!(
        (3..=12).contains(&in_first_window),
        "{in_first_window} grants in one window of a 12/s quota"
    );
    for (i, t) in grants.iter().enumerate() {
        let window = grants[i..]
            .iter()
            .filter(|u| u.duration_since(*t) < Duration::from_secs(1))
            .count();
        assert!(window <= 12, "{window} grants in a window from grant {i}");
    }
}

async fn vendor_block(handles: &Handles) {
    let (a, b) = (handles(), handles());
    let limit = RateLimit {
        requests: 100,
        per_seconds: 1,
    };
    assert_eq!(b.blocked_for("q3").await.expect("blocked_for"), None);
    a.block("q3", Duration::from_millis(300))
        .await
        .expect("block");
    a.block("q3", Duration::from_millis(10))
        .await
        .expect("a shorter block keeps the longer one");
    let left = b
        .blocked_for("q3")
        .await
        .expect("blocked_for")
        .expect("blocked on every handle");
    assert!(left > Duration::from_millis(100) && left <= Duration::from_millis(300));
    let wait = b
        .take("q3", limit)
        .await
        .expect("take")
        .expect_err("a blocked bucket gives nothing");
    assert!(wait.blocked, "a vendor block says so");
    let wait = wait.wait;
    assert!(wait > Duration::ZERO && wait <= Duration::from_millis(300));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(b.blocked_for("q3").await.expect("blocked_for"), None);
    assert!(b.take("q3", limit).await.expect("take").is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_keeps_the_contract() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
    contract(Arc::new(move || store.clone())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_store_keeps_the_contract() {
    let dir = TempDir::new();
    let store: Arc<dyn Store> =
        Arc::new(EmbeddedStore::open(&dir.path().join("s.db")).expect("opens"));
    contract(Arc::new(move || store.clone())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store_keeps_the_contract() {
    let redis = RedisServer::start();
    let url = redis.url();
    let handles_url = url.clone();
    contract(Arc::new(move || {
        Arc::new(RedisStore::connect(&handles_url, "test:").expect("connects")) as Arc<dyn Store>
    }))
    .await;
    // Every key the contract left is under the prefix and has a TTL.
    let client = redis::Client::open(url.as_str()).expect("url");
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .expect("connects");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut con)
        .await
        .expect("KEYS");
    assert!(!keys.is_empty());
    for key in keys {
        assert!(key.starts_with("test:"), "{key} is outside the prefix");
        let ttl: i64 = redis::cmd("PTTL")
            .arg(&key)
            .query_async(&mut con)
            .await
            .expect("PTTL");
        assert!(ttl > 0, "{key} has no TTL ({ttl})");
    }
}

#[tokio::test]
async fn embedded_records_survive_reopening_and_expired_ones_are_swept() {
    let dir = TempDir::new();
    let path = dir.path().join("s.db");
    {
        let store = EmbeddedStore::open(&path).expect("opens");
        assert_eq!(
            store
                .claim("kept", &attempt("fp", "n", Duration::from_secs(60)))
                .await
                .expect("claim"),
            Claim::FRESH
        );
        store
            .complete(
                "kept",
                "fp",
                Bytes::from_static(b"r"),
                Duration::from_secs(60),
            )
            .await
            .expect("complete");
        store
            .claim(
                "gone",
                &Attempt {
                    keep: Duration::from_millis(50),
                    ..attempt("fp", "n", Duration::from_millis(50))
                },
            )
            .await
            .expect("claim");
    }
    let limit = RateLimit {
        requests: 4,
        per_seconds: 60,
    };
    {
        let store = EmbeddedStore::open(&path).expect("reopens");
        assert!(store.take("q", limit).await.expect("take").is_ok());
        assert!(store.take("q", limit).await.expect("take").is_err());
        // The vendor closed a window: that is kept across a restart.
        store
            .block("closed", Duration::from_secs(3600))
            .await
            .expect("block");
    }
    let store = EmbeddedStore::open(&path).expect("reopens");
    // Quotas are counted in memory: a restart starts them whole (no durable commit per call).
    assert!(
        store.take("q", limit).await.expect("take").is_ok(),
        "a quota starts whole after a restart"
    );
    let blocked = store
        .take("closed", limit)
        .await
        .expect("take")
        .expect_err("the vendor's window is still closed after a restart");
    assert!(
        blocked.blocked && blocked.wait > Duration::from_secs(3500),
        "{blocked:?}"
    );
    assert!(
        store.blocked_for("closed").await.expect("blocked_for") > Some(Duration::from_secs(3500))
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(store.sweep().await.expect("sweep"), 1, "the expired claim");
    assert_eq!(
        store
            .claim("kept", &attempt("fp", "n", Duration::from_secs(60)))
            .await
            .expect("claim"),
        Claim::Done {
            fingerprint: "fp".into(),
            record: Bytes::from_static(b"r")
        }
    );
}

#[tokio::test]
async fn embedded_logs_leases_and_lasting_blobs_survive_reopening() {
    let dir = TempDir::new();
    let path = dir.path().join("s.db");
    let (ids, token) = {
        let store = EmbeddedStore::open(&path).expect("opens");
        let ids = store
            .append_log("events", bodies(&["a", "b"]), WEEK)
            .await
            .expect("append");
        let token = store
            .lease("poll:c", "before", Duration::from_millis(10))
            .await
            .expect("lease")
            .expect("granted");
        store
            .put(
                "snap:c",
                Bytes::from_static(b"snapshot"),
                Duration::from_secs(3600),
            )
            .await
            .expect("put");
        (ids, token)
    };
    let store = EmbeddedStore::open(&path).expect("reopens");
    let read: Vec<LogId> = store
        .read_log("events", None, 10)
        .await
        .expect("read")
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(read, ids);
    let more = store
        .append_log("events", bodies(&["c"]), WEEK)
        .await
        .expect("append");
    assert!(more[0] > ids[1], "ids keep increasing after a restart");
    tokio::time::sleep(Duration::from_millis(30)).await;
    let after = store
        .lease("poll:c", "after", Duration::from_secs(1))
        .await
        .expect("lease")
        .expect("granted");
    assert!(
        after > token,
        "fencing tokens keep increasing after a restart"
    );
    assert_eq!(
        store.get("snap:c").await.expect("get").as_deref(),
        Some(&b"snapshot"[..])
    );
}

#[test]
fn an_embedded_file_that_cannot_be_created_names_its_path() {
    let err = EmbeddedStore::open(std::path::Path::new("/nonexistent-dir/switchboard.db"))
        .expect_err("no such directory");
    assert!(
        err.to_string().contains("/nonexistent-dir/switchboard.db"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_redis_fails_fast_and_is_found_again() {
    let mut redis = RedisServer::start();
    let store = RedisStore::connect(&redis.url(), "test:").expect("connects");
    store.ping().await.expect("up");
    redis.stop();
    let err = store
        .claim("k", &attempt("fp", "n", Duration::from_secs(60)))
        .await
        .expect_err("Redis is down");
    assert_eq!(err.code(), "store_unavailable");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));
    let err = store
        .take(
            "q",
            RateLimit {
                requests: 10,
                per_seconds: 1,
            },
        )
        .await
        .expect_err("Redis is down");
    assert_eq!(err.code(), "store_unavailable");
    redis.restart();
    let mut back = false;
    for _ in 0..50 {
        if store.ping().await.is_ok() {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(back, "the store reconnects by itself");
    assert_eq!(
        store
            .claim("k", &attempt("fp", "n", Duration::from_secs(60)))
            .await
            .expect("claim"),
        Claim::FRESH
    );
}
