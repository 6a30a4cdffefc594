//! Idempotency claims: one winner, completion and replay, leases, unsettled attempts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use switchboard_store::{Attempt, Claim, LogId, RateLimit, Store};

use super::Handles;

pub fn attempt<'a>(fingerprint: &'a str, note: &'a str, lease: Duration) -> Attempt<'a> {
    Attempt {
        fingerprint,
        note: note.as_bytes(),
        lease,
        keep: Duration::from_secs(60),
    }
}

pub fn unsettled(note: &'static str) -> Claim {
    Claim::Claimed {
        unsettled: Some(Bytes::from_static(note.as_bytes())),
    }
}

pub async fn claim_race(handles: &Handles) {
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

pub async fn claim_complete_replay(handles: &Handles) {
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

pub async fn lease_expiry_and_release(handles: &Handles) {
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
pub async fn unsettled_attempts(handles: &Handles) {
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
