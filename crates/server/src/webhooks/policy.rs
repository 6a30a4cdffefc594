//! When to deliver again: the Standard Webhooks retry schedule with jitter, and what each
//! answer of a receiver means.
//!
//! - `2xx`: delivered.
//! - `410 Gone`: the receiver wants no more; the endpoint is disabled until a replay.
//! - anything else (a timeout, a connection error, `3xx` (redirects are not followed), `429`,
//!   `5xx`, and the other `4xx` too, as the spec advises: "the rest of the status codes should be
//!   treated as a failure") is a failed attempt, retried on the schedule; a `Retry-After` (on a
//!   `429`, `503` or any other failure) is honoured when it asks for longer than the schedule, up
//!   to [`MAX_RETRY_AFTER`].
//! - After the last attempt of the schedule fails, the endpoint is disabled (nothing is skipped:
//!   deliveries are in order, so a replay resumes from the event that failed).

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The longest `Retry-After` honoured; a longer one is cut to it.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// How much each delay may move either way, so that many endpoints failing together do not
/// retry in step.
pub const JITTER: f64 = 0.1;

/// The delays before each attempt of one event: the first is usually zero ("immediately").
#[derive(Debug, Clone, PartialEq)]
pub struct RetrySchedule(Vec<Duration>);

impl Default for RetrySchedule {
    /// The spec's schedule: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (eight
    /// attempts over about 27.6 hours).
    fn default() -> RetrySchedule {
        RetrySchedule(
            [
                0,
                5,
                5 * 60,
                30 * 60,
                2 * 3600,
                5 * 3600,
                10 * 3600,
                10 * 3600,
            ]
            .into_iter()
            .map(Duration::from_secs)
            .collect(),
        )
    }
}

impl RetrySchedule {
    /// A schedule of these delays (at least one).
    pub fn new(delays: Vec<Duration>) -> Option<RetrySchedule> {
        (!delays.is_empty()).then_some(RetrySchedule(delays))
    }

    /// How many attempts an event gets.
    pub fn attempts(&self) -> u32 {
        u32::try_from(self.0.len()).unwrap_or(u32::MAX)
    }

    /// The delays, in order.
    pub fn delays(&self) -> &[Duration] {
        &self.0
    }

    /// The wait before the next attempt after `failed` attempts of one event have failed, or
    /// `None` when the schedule is spent. `retry_after` (from the last answer) wins when longer.
    /// `unit` in `0.0..1.0` picks the jitter (`fastrand::f64()` in production).
    pub fn next_delay(
        &self,
        failed: u32,
        retry_after: Option<Duration>,
        unit: f64,
    ) -> Option<Duration> {
        let base = *self.0.get(usize::try_from(failed).ok()?)?;
        let factor = 1.0 + JITTER * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
        let jittered = base.mul_f64(factor);
        Some(match retry_after {
            Some(wait) => jittered.max(wait.min(MAX_RETRY_AFTER)),
            None => jittered,
        })
    }
}

/// What one delivery attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `2xx`.
    Delivered,
    /// `410 Gone`: disable the endpoint.
    Gone,
    /// Anything else: retry on the schedule.
    Failed {
        /// What happened, for `GET /v1/webhooks` (never the receiver's body).
        error: String,
        /// The receiver's `Retry-After`, if it sent one.
        retry_after: Option<Duration>,
    },
}

/// The outcome of an answer with `status` and the raw `Retry-After` header, if any.
pub fn classify(status: u16, retry_after: Option<&str>, now: DateTime<Utc>) -> Outcome {
    match status {
        200..=299 => Outcome::Delivered,
        410 => Outcome::Gone,
        _ => Outcome::Failed {
            error: format!("the receiver answered HTTP {status}"),
            retry_after: retry_after.and_then(|v| parse_retry_after(v, now)),
        },
    }
}

/// `Retry-After` as delta-seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn the_default_is_the_specs_schedule() {
        let schedule = RetrySchedule::default();
        let middle: Vec<Duration> = (0..8)
            .map(|n| schedule.next_delay(n, None, 0.5).expect("in the schedule"))
            .collect();
        assert_eq!(
            middle,
            [0, 5, 300, 1800, 7200, 18000, 36000, 36000].map(secs)
        );
        assert_eq!(
            schedule.next_delay(8, None, 0.5),
            None,
            "eight attempts, then give up"
        );
    }

    #[test]
    fn jitter_stays_within_a_tenth() {
        let schedule = RetrySchedule::default();
        assert_eq!(schedule.next_delay(2, None, 0.0), Some(secs(270)));
        assert_eq!(schedule.next_delay(2, None, 1.0), Some(secs(330)));
        assert_eq!(schedule.next_delay(0, None, 0.0), Some(Duration::ZERO));
    }

    #[test]
    fn retry_after_wins_when_longer_and_is_capped() {
        let schedule = RetrySchedule::default();
        assert_eq!(schedule.next_delay(1, Some(secs(60)), 0.5), Some(secs(60)));
        assert_eq!(schedule.next_delay(2, Some(secs(60)), 0.5), Some(secs(300)));
        assert_eq!(
            schedule.next_delay(1, Some(secs(10 * 86400)), 0.5),
            Some(MAX_RETRY_AFTER)
        );
    }

    #[test]
    fn answers_are_classified_as_the_spec_advises() {
        let now = Utc::now();
        assert_eq!(classify(200, None, now), Outcome::Delivered);
        assert_eq!(classify(204, None, now), Outcome::Delivered);
        assert_eq!(classify(410, None, now), Outcome::Gone);
        for status in [301, 400, 404, 429, 500, 502, 503] {
            assert!(
                matches!(classify(status, None, now), Outcome::Failed { .. }),
                "{status} is a failed attempt"
            );
        }
        assert_eq!(
            classify(429, Some("120"), now),
            Outcome::Failed {
                error: "the receiver answered HTTP 429".into(),
                retry_after: Some(secs(120)),
            }
        );
        let date = (now + chrono::Duration::seconds(90)).to_rfc2822();
        let Outcome::Failed { retry_after, .. } = classify(503, Some(&date), now) else {
            panic!("503 is a failure");
        };
        let wait = retry_after.expect("an HTTP date is read");
        assert!((secs(89)..=secs(90)).contains(&wait), "{wait:?}");
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
