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

/// The GCRA of [`Budget`] as a pure function over integer microseconds, for stores that keep the
/// theoretical arrival time (TAT) themselves (the embedded file; Redis runs the same steps in
/// Lua): the same burst, period and answers as the in-memory budget, with the clock passed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gcra {
    /// Microseconds between two requests once the burst is spent.
    pub period_us: u64,
    /// How far ahead of now the TAT may run: `period × (burst − 1)`.
    pub tolerance_us: u64,
}

/// One decision of [`Gcra::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GcraDecision {
    /// Allowed: the new TAT to keep, and how many more requests could go at once.
    Allow {
        /// The TAT to store (microseconds, same clock as `now`).
        tat_us: u64,
        /// Requests that may still be sent at once.
        remaining: u32,
    },
    /// Refused: microseconds until one request is allowed.
    Wait(u64),
}

impl Gcra {
    /// The GCRA for `limit`; `None` when the limit is zero (no budget).
    pub fn new(limit: RateLimit) -> Option<Gcra> {
        if limit.requests == 0 || limit.per_seconds == 0 {
            return None;
        }
        let burst = u64::from((limit.requests / 4).max(1));
        let spread = u64::from((limit.requests - (limit.requests / 4).max(1)).max(1));
        let window_us = u64::from(limit.per_seconds) * 1_000_000;
        // Rounded up: the budget may only ever be slower than the quota, never faster.
        let period_us = window_us.div_ceil(spread);
        Some(Gcra {
            period_us,
            tolerance_us: period_us * (burst - 1),
        })
    }

    /// Takes one request at `now_us` given the stored TAT (`None`: never used, or expired).
    pub fn check(&self, tat_us: Option<u64>, now_us: u64) -> GcraDecision {
        let tat = tat_us.unwrap_or(now_us);
        let earliest = tat.saturating_sub(self.tolerance_us);
        if now_us < earliest {
            return GcraDecision::Wait(earliest - now_us);
        }
        let next = tat.max(now_us) + self.period_us;
        let capacity = self.tolerance_us + self.period_us;
        let remaining = (now_us + capacity).saturating_sub(next).min(capacity) / self.period_us;
        GcraDecision::Allow {
            tat_us: next,
            remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
        }
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
