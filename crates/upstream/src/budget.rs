//! A connection's quota budget: the vendor never sees more requests than its documented quota.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use serde::Deserialize;

/// A vendor quota: `requests` per `per_seconds` window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Requests allowed per window.
    pub requests: u32,
    /// Window length in seconds.
    pub per_seconds: u32,
}

/// A GCRA budget that never exceeds `requests` in any window of `per_seconds`, whatever the
/// window's alignment: a burst of a quarter of the quota, the rest spread evenly
/// (burst + rate × window = quota).
#[derive(Debug)]
pub struct Budget {
    limiter: RateLimiter<NotKeyed, InMemoryState, DefaultClock, StateInformationMiddleware>,
    limit: RateLimit,
}

impl Budget {
    /// A budget for `limit`; `None` when the limit is zero (no budget).
    pub fn new(limit: RateLimit) -> Option<Budget> {
        if limit.requests == 0 || limit.per_seconds == 0 {
            return None;
        }
        let burst = (limit.requests / 4).max(1);
        let spread = (limit.requests - burst).max(1);
        let period = Duration::from_secs(u64::from(limit.per_seconds)) / spread;
        let quota = Quota::with_period(period)?.allow_burst(NonZeroU32::new(burst)?);
        Some(Budget {
            limiter: RateLimiter::direct(quota).with_middleware::<StateInformationMiddleware>(),
            limit,
        })
    }

    /// The quota this budget enforces.
    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Takes one request from the budget (returning how many could still go at once), or says
    /// how long until one is available.
    pub fn try_acquire(&self) -> Result<u32, Duration> {
        self.limiter
            .check()
            .map(|snapshot| snapshot.remaining_burst_capacity())
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_a_quarter_as_burst_then_waits() {
        let budget = Budget::new(RateLimit {
            requests: 120,
            per_seconds: 60,
        })
        .expect("a valid quota");
        let granted = (0..200).filter(|_| budget.try_acquire().is_ok()).count();
        assert_eq!(granted, 30);
        let wait = budget.try_acquire().err().unwrap_or_default();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
    }

    #[test]
    fn zero_means_no_budget() {
        assert!(
            Budget::new(RateLimit {
                requests: 0,
                per_seconds: 60
            })
            .is_none()
        );
    }
}
