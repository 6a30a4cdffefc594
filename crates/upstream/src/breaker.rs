//! A circuit breaker per connection: after repeated failures, calls fail fast (sparing a vendor
//! that is down and callers who would wait on it) until a probe succeeds.
//!
//! Half-open lets exactly one probe through. The probe is an [`Admission`] that must be resolved
//! (`success`, `failure` or `neutral`); one that is dropped unresolved (the caller went away, the
//! quota refused it before it was sent) hands the breaker back to open with no cooldown left, so
//! the next call probes again. A probe that is never resolved nor dropped expires after
//! [`BreakerSettings::probe_timeout`]: a breaker can never be stuck half-open.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;

/// When the breaker opens and how long it stays open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerSettings {
    /// Consecutive failed calls that open the breaker.
    #[serde(default = "default_failures")]
    pub failures: u32,
    /// Seconds the breaker stays open before one probe call is let through.
    #[serde(default = "default_cooldown")]
    pub cooldown_secs: u64,
}

fn default_failures() -> u32 {
    5
}

fn default_cooldown() -> u64 {
    10
}

impl Default for BreakerSettings {
    fn default() -> BreakerSettings {
        BreakerSettings {
            failures: default_failures(),
            cooldown_secs: default_cooldown(),
        }
    }
}

impl BreakerSettings {
    /// How long a probe may stay out before another is let through: longer than any request.
    pub fn probe_timeout(&self) -> Duration {
        Duration::from_secs(60)
    }
}

pub use switchboard_core::BreakerState;

/// The gauge value of a state: 0 closed, 1 half-open, 2 open.
pub fn gauge(state: BreakerState) -> f64 {
    match state {
        BreakerState::Closed => 0.0,
        BreakerState::HalfOpen => 1.0,
        BreakerState::Open => 2.0,
    }
}

#[derive(Debug)]
enum Inner {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probe: u64, expires: Instant },
}

/// One connection's breaker.
#[derive(Debug)]
pub struct Breaker {
    settings: BreakerSettings,
    inner: Mutex<(Inner, u64)>,
}

/// Leave to make one call. When it is the half-open probe, resolve it; dropping it unresolved
/// gives the probe back.
#[derive(Debug)]
#[must_use = "an admission records how the call went"]
pub struct Admission<'a> {
    breaker: &'a Breaker,
    probe: Option<u64>,
}

impl Admission<'_> {
    /// Whether this call is the half-open probe.
    pub fn is_probe(&self) -> bool {
        self.probe.is_some()
    }

    /// The vendor answered (whatever it said): the breaker closes.
    pub fn success(mut self) {
        self.probe = None;
        let mut inner = self.breaker.lock();
        inner.0 = Inner::Closed { failures: 0 };
    }

    /// The call failed (no answer, a 5xx, an unreadable body); returns whether this opened the
    /// breaker.
    pub fn failure(mut self) -> bool {
        self.probe = None;
        self.breaker.record_failure()
    }

    /// The call ended without telling anything about the vendor (it was never sent).
    pub fn neutral(self) {}
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        if let Some(probe) = self.probe {
            let mut inner = self.breaker.lock();
            if matches!(inner.0, Inner::HalfOpen { probe: p, .. } if p == probe) {
                // Nothing was learnt: the next call may probe at once.
                inner.0 = Inner::Open {
                    until: Instant::now(),
                };
            }
        }
    }
}

impl Breaker {
    /// A closed breaker.
    pub fn new(settings: BreakerSettings) -> Breaker {
        Breaker {
            settings,
            inner: Mutex::new((Inner::Closed { failures: 0 }, 0)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, (Inner, u64)> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Leave to call now, or how long until a probe may go.
    pub fn admit(&self) -> Result<Admission<'_>, Duration> {
        let mut guard = self.lock();
        let now = Instant::now();
        let (inner, probes) = &mut *guard;
        match *inner {
            Inner::Closed { .. } => Ok(Admission {
                breaker: self,
                probe: None,
            }),
            Inner::Open { until } if now < until => Err(until - now),
            Inner::HalfOpen { expires, .. } if now < expires => {
                // The probe is out; the others fail fast until it answers.
                Err(Duration::from_secs(1))
            }
            Inner::Open { .. } | Inner::HalfOpen { .. } => {
                *probes += 1;
                *inner = Inner::HalfOpen {
                    probe: *probes,
                    expires: now + self.settings.probe_timeout(),
                };
                Ok(Admission {
                    breaker: self,
                    probe: Some(*probes),
                })
            }
        }
    }

    fn record_failure(&self) -> bool {
        let mut inner = self.lock();
        let open = Inner::Open {
            until: Instant::now() + Duration::from_secs(self.settings.cooldown_secs),
        };
        match inner.0 {
            Inner::Closed { failures } if failures + 1 >= self.settings.failures.max(1) => {
                inner.0 = open;
                true
            }
            Inner::Closed { failures } => {
                inner.0 = Inner::Closed {
                    failures: failures + 1,
                };
                false
            }
            Inner::HalfOpen { .. } => {
                inner.0 = open;
                true
            }
            // Calls admitted before the breaker opened are still answering: keep the cooldown.
            Inner::Open { .. } => false,
        }
    }

    /// The state now.
    pub fn state(&self) -> BreakerState {
        let now = Instant::now();
        match self.lock().0 {
            Inner::Closed { .. } => BreakerState::Closed,
            Inner::Open { until } if now >= until => BreakerState::HalfOpen,
            Inner::Open { .. } => BreakerState::Open,
            Inner::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(failures: u32, cooldown_secs: u64) -> Breaker {
        Breaker::new(BreakerSettings {
            failures,
            cooldown_secs,
        })
    }

    fn fail(b: &Breaker) -> bool {
        b.admit().map(Admission::failure).unwrap_or(false)
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_repeated_failures_and_closes_after_a_probe() {
        let b = breaker(3, 600);
        assert!(!fail(&b));
        assert!(!fail(&b));
        assert!(fail(&b));
        assert_eq!(b.state(), BreakerState::Open);
        let wait = b.admit().err();
        assert_eq!(wait, Some(Duration::from_secs(600)));
        tokio::time::advance(Duration::from_secs(600)).await;
        let probe = b.admit().expect("the cooldown is over: one probe");
        assert!(probe.is_probe());
        assert!(b.admit().is_err(), "only one probe at a time");
        probe.success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.admit().is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_opens_it_for_another_cooldown() {
        let b = breaker(1, 600);
        assert!(fail(&b));
        tokio::time::advance(Duration::from_secs(600)).await;
        assert!(b.admit().expect("probe").failure());
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.admit().err(), Some(Duration::from_secs(600)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_probe_lets_the_next_call_probe() {
        let b = breaker(1, 600);
        assert!(fail(&b));
        tokio::time::advance(Duration::from_secs(600)).await;
        let probe = b.admit().expect("probe");
        drop(probe); // the caller hung up, or the quota refused it before it was sent
        assert_eq!(b.state(), BreakerState::HalfOpen);
        let again = b.admit().expect("a new probe, with no cooldown to wait");
        assert!(again.is_probe());
        again.success();
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_that_never_answers_expires() {
        let b = breaker(1, 600);
        assert!(fail(&b));
        tokio::time::advance(Duration::from_secs(600)).await;
        let stuck = b.admit().expect("probe");
        assert!(b.admit().is_err());
        tokio::time::advance(b.settings.probe_timeout()).await;
        let next = b.admit().expect("the stuck probe expired");
        // The stale probe resolving late changes nothing for the new one.
        drop(stuck);
        assert!(b.admit().is_err(), "the new probe is still out");
        next.success();
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_neutral_probe_also_gives_the_probe_back() {
        let b = breaker(1, 600);
        assert!(fail(&b));
        tokio::time::advance(Duration::from_secs(600)).await;
        b.admit().expect("probe").neutral();
        assert!(b.admit().expect("probe again").is_probe());
    }
}
