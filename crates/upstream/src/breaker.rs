//! A circuit breaker per connection: after repeated failures, calls fail fast (sparing a vendor
//! that is down and callers who would wait on it) until a probe succeeds.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

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
    HalfOpen,
}

/// One connection's breaker.
#[derive(Debug)]
pub struct Breaker {
    settings: BreakerSettings,
    inner: Mutex<Inner>,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(settings: BreakerSettings) -> Breaker {
        Breaker {
            settings,
            inner: Mutex::new(Inner::Closed { failures: 0 }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a call may go now; when not, how long until a probe may.
    pub fn allow(&self) -> Result<(), Duration> {
        let mut inner = self.lock();
        match *inner {
            Inner::Closed { .. } => Ok(()),
            Inner::Open { until } => {
                let now = Instant::now();
                if now >= until {
                    *inner = Inner::HalfOpen;
                    Ok(())
                } else {
                    Err(until - now)
                }
            }
            // The probe is out; others wait for its answer.
            Inner::HalfOpen => Err(Duration::from_secs(1)),
        }
    }

    /// Records a call that the vendor answered (whatever it said).
    pub fn success(&self) {
        *self.lock() = Inner::Closed { failures: 0 };
    }

    /// Records a call that failed (no answer, or a 5xx); returns whether this opened the breaker.
    pub fn failure(&self) -> bool {
        let mut inner = self.lock();
        let open = Inner::Open {
            until: Instant::now() + Duration::from_secs(self.settings.cooldown_secs),
        };
        match *inner {
            Inner::Closed { failures } if failures + 1 >= self.settings.failures.max(1) => {
                *inner = open;
                true
            }
            Inner::Closed { failures } => {
                *inner = Inner::Closed {
                    failures: failures + 1,
                };
                false
            }
            Inner::HalfOpen | Inner::Open { .. } => {
                *inner = open;
                true
            }
        }
    }

    /// The state now.
    pub fn state(&self) -> BreakerState {
        match *self.lock() {
            Inner::Closed { .. } => BreakerState::Closed,
            Inner::Open { until } if Instant::now() >= until => BreakerState::HalfOpen,
            Inner::Open { .. } => BreakerState::Open,
            Inner::HalfOpen => BreakerState::HalfOpen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_repeated_failures_and_closes_after_a_probe() {
        let breaker = Breaker::new(BreakerSettings {
            failures: 3,
            cooldown_secs: 0,
        });
        assert!(!breaker.failure());
        assert!(!breaker.failure());
        assert!(breaker.failure());
        // Cooldown 0: the next call is the probe; others wait for it.
        assert!(breaker.allow().is_ok());
        assert!(breaker.allow().is_err());
        breaker.success();
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert!(breaker.allow().is_ok());
    }

    #[test]
    fn a_failed_probe_opens_it_again() {
        let breaker = Breaker::new(BreakerSettings {
            failures: 1,
            cooldown_secs: 60,
        });
        assert!(breaker.failure());
        assert!(breaker.allow().is_err());
        assert_eq!(breaker.state(), BreakerState::Open);
    }
}
