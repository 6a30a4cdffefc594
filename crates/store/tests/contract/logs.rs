//! Event logs, lasting blobs and leases with fencing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use switchboard_store::{Attempt, Claim, LogId, RateLimit, Store};

use super::Handles;

pub const WEEK: Duration = Duration::from_secs(7 * 24 * 60 * 60);

pub fn bodies(names: &[&str]) -> Vec<Bytes> {
    names
        .iter()
        .map(|n| Bytes::copy_from_slice(n.as_bytes()))
        .collect()
}

pub async fn lasting_blobs(handles: &Handles) {
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

pub async fn log_append_and_read(handles: &Handles) {
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

pub async fn log_concurrent_appends(handles: &Handles) {
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

pub async fn log_retention(handles: &Handles) {
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

pub async fn lease_one_holder_with_fencing(handles: &Handles) {
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

pub async fn lease_race(handles: &Handles) {
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
