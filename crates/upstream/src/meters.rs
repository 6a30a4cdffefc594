//! A connection's metrics, each registered once, since a `metrics` macro looks its name and
//! labels up again each time. Counters are registered when they first count, so `/metrics`
//! lists only what has happened.

use std::sync::Mutex;
use std::time::Duration;

use switchboard_core::BreakerState;

use crate::breaker::gauge;
use crate::lock;

/// A counter's name and its `outcome` label (`""`: none).
type Counted = (&'static str, &'static str);

/// The metrics of one connection's calls to its vendor.
#[derive(Debug)]
pub(crate) struct Meters {
    connection: String,
    breaker: metrics::Gauge,
    duration: metrics::Histogram,
    /// The counters, by name and outcome (`""` for none), each registered when it first counts.
    counters: Mutex<Vec<(Counted, metrics::Counter)>>,
}

impl Meters {
    /// The meters of `connection`, its breaker shown closed.
    pub(crate) fn new(connection: &str) -> Meters {
        let meters = Meters {
            connection: connection.to_owned(),
            breaker: metrics::gauge!("switchboard_upstream_breaker_state", "connection" => connection.to_owned()),
            duration: metrics::histogram!("switchboard_upstream_request_duration_seconds", "connection" => connection.to_owned()),
            counters: Mutex::default(),
        };
        meters.breaker(BreakerState::Closed);
        meters
    }

    /// The connection the meters are labelled with.
    pub(crate) fn connection(&self) -> &str {
        &self.connection
    }

    /// Counts a call that ended with `outcome` (`ok`, `timeout`, `rate_limited`, ...).
    pub(crate) fn request(&self, outcome: &'static str) {
        self.count(("switchboard_upstream_requests_total", outcome));
    }

    /// Shows the breaker's state: 0 closed, 1 half-open, 2 open.
    pub(crate) fn breaker(&self, state: BreakerState) {
        self.breaker.set(gauge(state));
    }

    /// Records how long one attempt took, answer read.
    pub(crate) fn duration(&self, elapsed: Duration) {
        self.duration.record(elapsed.as_secs_f64());
    }

    /// Counts a read served from the page cache.
    pub(crate) fn cache_hit(&self) {
        self.count(("switchboard_upstream_cache_hits_total", ""));
    }

    /// Counts a read that waited on an identical one in flight.
    pub(crate) fn coalesced(&self) {
        self.count(("switchboard_upstream_coalesced_total", ""));
    }

    /// Counts a retried read.
    pub(crate) fn retry(&self) {
        self.count(("switchboard_upstream_retries_total", ""));
    }

    /// Counts a wait for the quota's next request.
    pub(crate) fn quota_wait(&self) {
        self.count(("switchboard_upstream_quota_waits_total", ""));
    }

    /// Counts one rarer event under `name`, registered as it happens.
    fn count(&self, (name, outcome): Counted) {
        let mut counters = lock(&self.counters);
        if let Some((_, counter)) = counters.iter().find(|(c, _)| *c == (name, outcome)) {
            counter.increment(1);
            return;
        }
        let connection = self.connection.clone();
        let counter = match outcome {
            "" => metrics::counter!(name, "connection" => connection),
            _ => metrics::counter!(name, "connection" => connection, "outcome" => outcome),
        };
        counter.increment(1);
        counters.push(((name, outcome), counter));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use metrics::{
        Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
    };

    use super::*;

    /// Counts registrations per metric name and keeps each counter's value by its labels.
    #[derive(Default)]
    struct Registrations {
        registered: Mutex<HashMap<String, usize>>,
        counters: Mutex<HashMap<String, Arc<AtomicU64>>>,
    }

    impl Registrations {
        fn registered(&self, name: &str) -> usize {
            lock(&self.registered).get(name).copied().unwrap_or(0)
        }

        fn count(&self, key: &str) -> u64 {
            lock(&self.counters)
                .get(key)
                .map_or(0, |c| c.load(Ordering::Relaxed))
        }

        fn register(&self, key: &Key) {
            *lock(&self.registered)
                .entry(key.name().to_owned())
                .or_default() += 1;
        }
    }

    impl Recorder for Registrations {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            self.register(key);
            let labels: Vec<_> = key.labels().map(|l| l.value().to_owned()).collect();
            let value = Arc::clone(
                lock(&self.counters)
                    .entry(format!("{}{labels:?}", key.name()))
                    .or_default(),
            );
            Counter::from_arc(value)
        }

        fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
            self.register(key);
            Gauge::noop()
        }

        fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
            self.register(key);
            Histogram::noop()
        }
    }

    #[test]
    fn an_outcome_counter_is_registered_once_and_counts_every_call() {
        let recorder = Registrations::default();
        metrics::with_local_recorder(&recorder, || {
            let meters = Meters::new("acme");
            for _ in 0..3 {
                meters.request("ok");
            }
            meters.request("timeout");
            meters.request("ok");
        });
        assert_eq!(
            recorder.registered("switchboard_upstream_requests_total"),
            2
        );
        assert_eq!(
            recorder.count(r#"switchboard_upstream_requests_total["acme", "ok"]"#),
            4
        );
        assert_eq!(
            recorder.count(r#"switchboard_upstream_requests_total["acme", "timeout"]"#),
            1
        );
        assert_eq!(recorder.registered("switchboard_upstream_breaker_state"), 1);
        assert_eq!(
            recorder.registered("switchboard_upstream_request_duration_seconds"),
            1
        );
    }
}
