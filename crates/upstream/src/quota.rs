//! The connection's quota budget, kept in the store so every replica spends the same one: a
//! request goes out only once taken from it, waiting for it within the deadline or refused
//! (`upstream_rate_limited`) when the wait would not fit.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_core::quota_state::QuotaState;
use switchboard_core::{Error, ErrorKind, Result};
use tokio::time::Instant;

use crate::budget::RateLimit;
use crate::lock;
use crate::meters::Meters;
use crate::store::{NotYet, Store};

/// One connection's share of its vendor's quota.
#[derive(Debug)]
pub(crate) struct Quota {
    store: Arc<dyn Store>,
    /// The store bucket of the budget and of the vendor's block.
    bucket: String,
    limit: Option<RateLimit>,
    /// What the budget had left after the last request taken from it.
    remaining: Mutex<Option<u32>>,
}

impl Quota {
    /// The quota of `connection` for `limit` (`None`: no budget, only the vendor's block).
    pub(crate) fn new(store: Arc<dyn Store>, connection: &str, limit: Option<RateLimit>) -> Quota {
        Quota {
            store,
            bucket: format!("quota:{connection}"),
            limit,
            remaining: Mutex::default(),
        }
    }

    /// The store bucket of this connection's quota and vendor block.
    pub(crate) fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The configured quota.
    pub(crate) fn limit(&self) -> Option<RateLimit> {
        self.limit
    }

    /// What the budget had left after the last request taken from it.
    pub(crate) fn remaining(&self) -> Option<u32> {
        *lock(&self.remaining)
    }

    /// Takes one request from the budget, waiting for it until `deadline` at the latest; fails
    /// at once while the bucket is blocked (another replica heard the vendor close its window).
    /// The store's answer is the shared budget and block: when it cannot answer, no request
    /// goes out (`store_unavailable`). Every refusal is [`Error::unsent`].
    pub(crate) async fn take(&self, deadline: Instant, meters: &Meters) -> Result<()> {
        loop {
            let taken = match self.limit {
                Some(limit) => self.store.take(&self.bucket, limit).await,
                // No budget: only the vendor's block holds a request back.
                None => match self.store.blocked_for(&self.bucket).await {
                    Ok(Some(wait)) => Ok(Err(NotYet::blocked(wait))),
                    Ok(None) => return Ok(()),
                    Err(e) => Err(e),
                },
            };
            match taken.map_err(Error::unsent)? {
                Ok(left) => {
                    *lock(&self.remaining) = Some(left.remaining);
                    return Ok(());
                }
                Err(not_yet) if not_yet.blocked => return Err(rate_limited(not_yet.wait, meters)),
                Err(NotYet { wait, .. }) => {
                    if Instant::now() + wait >= deadline {
                        *lock(&self.remaining) = Some(0);
                        return Err(rate_limited(wait, meters));
                    }
                    meters.quota_wait();
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

/// The refusal of a request the quota or the vendor's window holds back for `wait`: never sent,
/// counted as `quota_exhausted`.
pub(crate) fn rate_limited(wait: Duration, meters: &Meters) -> Error {
    meters.request("quota_exhausted");
    Error::new(
        ErrorKind::RateLimited,
        "the vendor's request quota for this connection is used up; retry later",
    )
    .with_retry_after(wait.max(Duration::from_secs(1)))
    .unsent()
}

/// What the vendor last said of its quota (`X-RateLimit-Limit`, `-Remaining`, `-Reset`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct VendorSaid {
    pub(crate) limit: Option<u32>,
    pub(crate) remaining: Option<u32>,
    pub(crate) reset_secs: Option<u64>,
}

/// The quota stated for a connection with budget `budget` (`left` of it after the last request),
/// what the vendor said, and its window closed for `closed`: never more than the vendor allows
/// or has left. `None` when neither the budget nor the vendor tells a quota.
pub(crate) fn stated_quota(
    budget: Option<RateLimit>,
    left: Option<u32>,
    vendor: VendorSaid,
    closed: Option<Duration>,
) -> Option<QuotaState> {
    let mut state = match (budget, vendor.remaining) {
        (Some(budget), _) => QuotaState::refilling(
            budget.requests,
            budget.per_seconds,
            left.unwrap_or(budget.requests),
        ),
        (None, Some(remaining)) => {
            let window = vendor.reset_secs.unwrap_or(1).max(1);
            QuotaState {
                quota: vendor.limit.unwrap_or(remaining).max(1),
                window_secs: u32::try_from(window).unwrap_or(u32::MAX),
                remaining,
                reset_secs: window,
            }
        }
        (None, None) => return None,
    };
    if let Some(limit) = vendor.limit {
        state.quota = state.quota.min(limit.max(1));
        state.remaining = state.remaining.min(state.quota);
    }
    if let Some(remaining) = vendor.remaining
        && remaining < state.remaining
    {
        state.remaining = remaining;
        state.reset_secs = vendor.reset_secs.unwrap_or(u64::from(state.window_secs));
    }
    if let Some(closed) = closed {
        state.remaining = 0;
        state.reset_secs = state.reset_secs.max(closed.as_secs().max(1));
    }
    Some(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    /// Two requests at once (a quarter of eight), then one every 167 ms.
    const EIGHT_A_SECOND: RateLimit = RateLimit {
        requests: 8,
        per_seconds: 1,
    };

    fn quota(limit: Option<RateLimit>) -> (Quota, Arc<dyn Store>) {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
        (Quota::new(Arc::clone(&store), "acme", limit), store)
    }

    // The memory store's budget runs on the machine's clock, not tokio's: these tests wait for
    // real, a sixth of a second at most.
    #[tokio::test]
    async fn a_spent_budget_waits_when_the_wait_fits_the_deadline() {
        let (quota, _) = quota(Some(EIGHT_A_SECOND));
        let meters = Meters::new("acme");
        let deadline = Instant::now() + Duration::from_secs(5);
        for _ in 0..3 {
            quota.take(deadline, &meters).await.expect("takes");
        }
        assert_eq!(quota.remaining(), Some(0));
    }

    #[tokio::test]
    async fn a_spent_budget_refuses_when_the_wait_would_pass_the_deadline() {
        let (quota, _) = quota(Some(EIGHT_A_SECOND));
        let meters = Meters::new("acme");
        let deadline = Instant::now() + Duration::from_millis(20);
        quota.take(deadline, &meters).await.expect("takes");
        quota.take(deadline, &meters).await.expect("takes");
        let refused = quota.take(deadline, &meters).await.expect_err("refused");
        assert_eq!(refused.kind(), ErrorKind::RateLimited);
        assert_eq!(refused.code(), "upstream_rate_limited");
        assert!(refused.is_unsent());
        assert_eq!(refused.retry_after(), Some(Duration::from_secs(1)));
        assert_eq!(quota.remaining(), Some(0));
    }

    #[tokio::test]
    async fn a_blocked_bucket_refuses_at_once_with_or_without_a_budget() {
        for limit in [Some(EIGHT_A_SECOND), None] {
            let (quota, store) = quota(limit);
            let meters = Meters::new("acme");
            store
                .block(quota.bucket(), Duration::from_secs(30))
                .await
                .expect("blocks");
            let deadline = Instant::now() + Duration::from_secs(60);
            let refused = quota.take(deadline, &meters).await.expect_err("refused");
            assert_eq!(refused.kind(), ErrorKind::RateLimited);
            assert!(refused.is_unsent());
            assert!(refused.retry_after().expect("names a wait") > Duration::from_secs(20));
        }
    }

    #[tokio::test]
    async fn no_budget_lets_every_request_go() {
        let (quota, _) = quota(None);
        let meters = Meters::new("acme");
        let deadline = Instant::now();
        for _ in 0..100 {
            quota.take(deadline, &meters).await.expect("takes");
        }
        assert_eq!(quota.remaining(), None);
    }

    const STATED_BUDGET: RateLimit = RateLimit {
        requests: 120,
        per_seconds: 60,
    };

    #[test]
    fn the_budget_is_stated_when_the_vendor_says_nothing() {
        let state = stated_quota(Some(STATED_BUDGET), Some(110), VendorSaid::default(), None)
            .expect("a quota");
        assert_eq!(
            (
                state.quota,
                state.window_secs,
                state.remaining,
                state.reset_secs
            ),
            (120, 60, 110, 5)
        );
        assert_eq!(stated_quota(None, None, VendorSaid::default(), None), None);
    }

    #[test]
    fn never_more_than_the_vendor_allows_or_has_left() {
        let vendor = VendorSaid {
            limit: Some(100),
            remaining: Some(7),
            reset_secs: Some(42),
        };
        let state = stated_quota(Some(STATED_BUDGET), Some(110), vendor, None).expect("a quota");
        assert_eq!(
            (state.quota, state.remaining, state.reset_secs),
            (100, 7, 42)
        );
        let roomy = VendorSaid {
            limit: Some(1000),
            remaining: Some(900),
            reset_secs: Some(42),
        };
        let state = stated_quota(Some(STATED_BUDGET), Some(3), roomy, None).expect("a quota");
        assert_eq!((state.quota, state.remaining), (120, 3), "the budget binds");
        let unbudgeted = stated_quota(None, None, vendor, None).expect("the vendor's");
        assert_eq!((unbudgeted.quota, unbudgeted.remaining), (100, 7));
    }

    #[test]
    fn a_closed_window_leaves_nothing() {
        let state = stated_quota(
            Some(STATED_BUDGET),
            Some(110),
            VendorSaid::default(),
            Some(Duration::from_secs(90)),
        )
        .expect("a quota");
        assert_eq!((state.remaining, state.reset_secs), (0, 90));
    }
}
