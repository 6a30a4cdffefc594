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

type Handles = Arc<dyn Fn() -> Arc<dyn Store> + Send + Sync>;

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
fn attempt<'a>(fingerprint: &'a str, note: &'a str, lease: Duration) -> Attempt<'a> {
    Attempt {
        fingerprint,
        note: note.as_bytes(),
        lease,
        keep: Duration::from_secs(60),
    }
}

fn unsettled(note: &'static str) -> Claim {
    Claim::Claimed {
        unsettled: Some(Bytes::from_static(note.as_bytes())),
    }
}

const WEEK: Duration = Duration::from_secs(7 * 24 * 60 * 60);

fn bodies(names: &[&str]) -> Vec<Bytes> {
    names
        .iter()
        .map(|n| Bytes::copy_from_slice(n.as_bytes()))
        .collect()
}

async fn lasting_blobs(handles: &Handles) {
    let (a, b) = (handles(), handles());
    // A blob meant to last (a poller's snapshot) is found on every handle, replaced, deleted.
    a.put(
        "snap:c1",
        Bytes::from_static(b"v1"),
        Duration::from_secs(3600),
    )
    .await
    .expect("put");
    assert_eq!(
        b.get("snap:c1").await.expect("get").as_deref(),
        Some(&b"v1"[..])
    );
    b.put(
        "snap:c1",
        Bytes::from_static(b"v2"),
        Duration::from_secs(3600),
    )
    .await
    .expect("put");
    assert_eq!(
        a.get("snap:c1").await.expect("get").as_deref(),
        Some(&b"v2"[..])
    );
    a.delete("snap:c1").await.expect("delete");
    assert_eq!(b.get("snap:c1").await.expect("get"), None);
}

async fn log_append_and_read(handles: &Handles) {
    let (a, b) = (handles(), handles());
    assert_eq!(a.last_log_id("l1").await.expect("last"), None);
    assert!(a.read_log("l1", None, 10).await.expect("read").is_empty());
    let first = a
        .append_log("l1", bodies(&["e1", "e2", "e3"]), WEEK)
        .await
        .expect("append");
    assert_eq!(first.len(), 3);
    assert!(first.windows(2).all(|w| w[0] < w[1]), "{first:?}");
    let second = b
        .append_log("l1", bodies(&["e4"]), WEEK)
        .await
        .expect("append");
    assert!(second[0] > first[2], "ids keep increasing across handles");
    assert_eq!(a.last_log_id("l1").await.expect("last"), Some(second[0]));
    let all = b.read_log("l1", None, 10).await.expect("read");
    let texts: Vec<&[u8]> = all.iter().map(|e| e.body.as_ref()).collect();
    assert_eq!(texts, [&b"e1"[..], b"e2", b"e3", b"e4"]);
    assert_eq!(all[0].id, first[0]);
    // Strictly after: the entry named is not read again; a limit cuts the batch.
    let after = b.read_log("l1", Some(first[1]), 1).await.expect("read");
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].id, first[2]);
    assert!(
        b.read_log("l1", Some(second[0]), 10)
            .await
            .expect("read")
            .is_empty()
    );
    // An id between entries (a cursor made by another replica) reads from the next one.
    let between = LogId {
        ms: first[2].ms,
        seq: first[2].seq,
    };
    assert_eq!(
        b.read_log("l1", Some(between), 10).await.expect("read")[0].id,
        second[0]
    );
    // Logs are separate.
    assert!(a.read_log("l2", None, 10).await.expect("read").is_empty());
    assert!(
        a.append_log("l1", Vec::new(), WEEK)
            .await
            .expect("append")
            .is_empty()
    );
}

async fn log_concurrent_appends(handles: &Handles) {
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = handles();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for j in 0..5 {
                    let body = format!("{i}-{j}");
                    ids.extend(
                        store
                            .append_log("l3", bodies(&[&body, &body]), WEEK)
                            .await
                            .expect("append"),
                    );
                }
                ids
            })
        })
        .collect();
    let mut ids = Vec::new();
    for task in tasks {
        ids.extend(task.await.expect("task"));
    }
    let read: Vec<LogId> = handles()
        .read_log("l3", None, 1000)
        .await
        .expect("read")
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(read.len(), 80);
    assert!(
        read.windows(2).all(|w| w[0] < w[1]),
        "read in increasing order"
    );
    ids.sort();
    assert_eq!(
        ids, read,
        "every append's ids are the ones read, none shared"
    );
}

async fn log_retention(handles: &Handles) {
    let store = handles();
    let short = Duration::from_millis(100);
    store
        .append_log("l4", bodies(&["old1", "old2"]), short)
        .await
        .expect("append");
    tokio::time::sleep(Duration::from_millis(250)).await;
    let fresh = store
        .append_log("l4", bodies(&["new"]), short)
        .await
        .expect("append");
    let kept = store.read_log("l4", None, 10).await.expect("read");
    assert_eq!(kept.len(), 1, "entries past the retention are gone");
    assert_eq!(kept[0].id, fresh[0]);
}

async fn lease_one_holder_with_fencing(handles: &Handles) {
    let (a, b) = (handles(), handles());
    let ttl = Duration::from_millis(300);
    let first = a
        .lease("poll:c", "replica-a", ttl)
        .await
        .expect("lease")
        .expect("a free lease is granted");
    assert_eq!(
        b.lease("poll:c", "replica-b", ttl).await.expect("lease"),
        None
    );
    assert_eq!(
        a.lease("poll:c", "replica-a", ttl).await.expect("lease"),
        Some(first),
        "renewing keeps the token"
    );
    // The holder dies (stops renewing): the lease ends and the next holder's token is greater.
    tokio::time::sleep(Duration::from_millis(450)).await;
    let second = b
        .lease("poll:c", "replica-b", ttl)
        .await
        .expect("lease")
        .expect("an expired lease passes on");
    assert!(second > first, "{second} > {first}");
    assert_eq!(
        a.lease("poll:c", "replica-a", ttl).await.expect("lease"),
        None
    );
    // Giving it up frees it at once; only the holder can.
    a.release_lease("poll:c", "replica-a")
        .await
        .expect("release");
    assert_eq!(
        b.lease("poll:c", "replica-b", ttl).await.expect("lease"),
        Some(second)
    );
    b.release_lease("poll:c", "replica-b")
        .await
        .expect("release");
    let third = a
        .lease("poll:c", "replica-a", ttl)
        .await
        .expect("lease")
        .expect("a released lease is free");
    assert!(third > second);
    // Leases are separate.
    assert!(
        b.lease("poll:d", "replica-b", ttl)
            .await
            .expect("lease")
            .is_some()
    );
}

async fn lease_race(handles: &Handles) {
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = handles();
            tokio::spawn(async move {
                store
                    .lease(
                        "poll:race",
                        &format!("replica-{i}"),
                        Duration::from_secs(60),
                    )
                    .await
                    .expect("lease")
            })
        })
        .collect();
    let mut granted = 0;
    for task in tasks {
        granted += usize::from(task.await.expect("task").is_some());
    }
    assert_eq!(
        granted, 1,
        "exactly one of 16 concurrent replicas holds the lease"
    );
}

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

async fn claim_race(handles: &Handles) {
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let store = handles();
            tokio::spawn(async move {
                store
                    .claim("race", &attempt("fp-1", "n", Duration::from_secs(60)))
                    .await
                    .expect("claim")
            })
        })
        .collect();
    let mut claimed = 0;
    for task in tasks {
        match task.await.expect("task") {
            Claim::Claimed { unsettled: None } => claimed += 1,
            Claim::InFlight { fingerprint, .. } => assert_eq!(fingerprint, "fp-1"),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(claimed, 1, "exactly one of 16 concurrent claims wins");
}

async fn claim_complete_replay(handles: &Handles) {
    let (a, b) = (handles(), handles());
    let lease = Duration::from_secs(60);
    assert_eq!(
        a.claim("k1", &attempt("fp", "n", lease))
            .await
            .expect("claim"),
        Claim::FRESH
    );
    match b
        .claim("k1", &attempt("other", "n", lease))
        .await
        .expect("claim")
    {
        Claim::InFlight {
            fingerprint,
            retry_in,
        } => {
            assert_eq!(fingerprint, "fp");
            assert!(
                retry_in > Duration::from_secs(50) && retry_in <= lease,
                "a retry is told when the lease ends: {retry_in:?}"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    a.complete(
        "k1",
        "fp",
        Bytes::from_static(b"answer"),
        Duration::from_secs(60),
    )
    .await
    .expect("complete");
    let done = Claim::Done {
        fingerprint: "fp".into(),
        record: Bytes::from_static(b"answer"),
    };
    assert_eq!(
        b.claim("k1", &attempt("fp", "n", lease))
            .await
            .expect("claim"),
        done
    );
    assert_eq!(
        b.claim("k1", &attempt("other", "n", lease))
            .await
            .expect("claim"),
        done
    );
    // Another fingerprint never overwrites a finished record; release and unsettle keep it.
    b.complete(
        "k1",
        "other",
        Bytes::from_static(b"x"),
        Duration::from_secs(60),
    )
    .await
    .expect("complete");
    b.release("k1").await.expect("release");
    b.unsettle("k1", "fp").await.expect("unsettle");
    assert_eq!(
        a.claim("k1", &attempt("fp", "n", lease))
            .await
            .expect("claim"),
        done
    );
    // A finished record lives for its TTL.
    assert_eq!(
        a.claim("k2", &attempt("fp", "n", lease))
            .await
            .expect("claim"),
        Claim::FRESH
    );
    a.complete(
        "k2",
        "fp",
        Bytes::from_static(b"a"),
        Duration::from_millis(100),
    )
    .await
    .expect("complete");
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(
        a.claim("k2", &attempt("fp", "n", lease))
            .await
            .expect("claim"),
        Claim::FRESH
    );
}

async fn lease_expiry_and_release(handles: &Handles) {
    let (a, b) = (handles(), handles());
    let short = Duration::from_millis(100);
    assert_eq!(
        a.claim("k3", &attempt("fp", "first", short))
            .await
            .expect("claim"),
        Claim::FRESH
    );
    assert!(matches!(
        b.claim("k3", &attempt("fp", "second", short))
            .await
            .expect("claim"),
        Claim::InFlight { .. }
    ));
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(
        b.claim("k3", &attempt("fp", "second", short))
            .await
            .expect("claim"),
        unsettled("first"),
        "a crashed holder's lease ends, and the next claim hears of its attempt"
    );
    let lease = Duration::from_secs(60);
    assert_eq!(
        a.claim("k4", &attempt("fp", "n", lease))
            .await
            .expect("claim"),
        Claim::FRESH
    );
    a.release("k4").await.expect("release");
    assert_eq!(
        b.claim("k4", &attempt("fp", "n", lease))
            .await
            .expect("claim"),
        Claim::FRESH,
        "a released key is free"
    );
}

/// An attempt that does not know whether the vendor acted hands its note to the next claim of
/// the same request, at once; a renewed lease keeps the key held past its first term.
async fn unsettled_attempts(handles: &Handles) {
    let (a, b) = (handles(), handles());
    let lease = Duration::from_secs(60);
    assert_eq!(
        a.claim("k5", &attempt("fp", "at-1", lease))
            .await
            .expect("claim"),
        Claim::FRESH
    );
    a.unsettle("k5", "fp").await.expect("unsettle");
    assert_eq!(
        b.claim("k5", &attempt("other", "x", lease))
            .await
            .expect("claim"),
        Claim::Unsettled {
            fingerprint: "fp".into()
        },
        "another request never takes over an unsettled key"
    );
    assert_eq!(
        b.claim("k5", &attempt("fp", "at-2", lease))
            .await
            .expect("claim"),
        unsettled("at-1")
    );
    assert!(matches!(
        a.claim("k5", &attempt("fp", "at-3", lease))
            .await
            .expect("claim"),
        Claim::InFlight { .. }
    ));
    // Unsettled again, then claimed again: still the earliest attempt's note.
    b.unsettle("k5", "fp").await.expect("unsettle");
    assert_eq!(
        a.claim("k5", &attempt("fp", "at-3", lease))
            .await
            .expect("claim"),
        unsettled("at-1")
    );
    // A renewed lease outlives its first term; a lapsed one cannot be renewed.
    let short = Duration::from_millis(200);
    assert_eq!(
        a.claim("k6", &attempt("fp", "n", short))
            .await
            .expect("claim"),
        Claim::FRESH
    );
    assert!(a.renew("k6", "fp", lease).await.expect("renew"));
    assert!(!a.renew("k6", "other", lease).await.expect("renew"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(matches!(
        b.claim("k6", &attempt("fp", "n", short))
            .await
            .expect("claim"),
        Claim::InFlight { .. }
    ));
    assert_eq!(
        a.claim("k7", &attempt("fp", "n", short))
            .await
            .expect("claim"),
        Claim::FRESH
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !a.renew("k7", "fp", lease).await.expect("renew"),
        "a lease that ended is not renewed: another claim may have taken over"
    );
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
    }
    let store = EmbeddedStore::open(&path).expect("reopens");
    assert!(
        store.take("q", limit).await.expect("take").is_err(),
        "a restart continues the same budget"
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
