//! How one request spends its deadline: the connection's deadline (or the caller's, when
//! sooner) bounds every attempt, each attempt gets a share of it so a hanging vendor leaves
//! time for the next, and a failed read is tried again after an exponential backoff with
//! jitter, never sleeping past the deadline. A write is sent once.

use std::future::Future;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use switchboard_core::{Error, ErrorKind, Result, codes};
use tokio::time::Instant;

use crate::call::Call;
use crate::deadline;
use crate::meters::Meters;

/// A connection's deadline and retries.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Retry {
    deadline: Duration,
    max_retries: usize,
}

/// When one attempt must be over: its own share, and the whole request's deadline.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadlines {
    /// The whole request's deadline (quota waits included).
    pub(crate) request: Instant,
    /// This attempt's deadline: its share of the request's, never later.
    pub(crate) attempt: Instant,
}

impl Deadlines {
    /// The time left for the attempt's request; an unsent timeout when none is left.
    pub(crate) fn attempt_left(&self) -> Result<Duration> {
        let left = self.attempt.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timeout_error().unsent());
        }
        Ok(left)
    }
}

impl Retry {
    /// `deadline` for a whole request; reads are retried up to `max_retries` times.
    pub(crate) fn new(deadline: Duration, max_retries: usize) -> Retry {
        Retry {
            deadline,
            max_retries,
        }
    }

    /// Runs `attempt` until it succeeds, fails for good, or the deadline leaves no room for
    /// another try. When this request's own failures opened the breaker, the caller hears what
    /// the vendor did, not that the gateway stopped asking.
    pub(crate) async fn run<T, F, Fut>(
        &self,
        call: &Call,
        meters: &Meters,
        mut attempt: F,
    ) -> Result<T>
    where
        F: FnMut(Deadlines) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        // The connection's own deadline, or the caller's (a page deadline) when sooner.
        let deadline = deadline::sooner(Instant::now() + self.deadline);
        let retries = if call.is_read() { self.max_retries } else { 0 };
        // A hanging vendor must leave time for the retries.
        let attempt_budget = self.deadline / (retries as u32 + 1);
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(2))
            .with_max_times(retries)
            .with_jitter()
            .build();
        let mut tries = 0usize;
        let mut previous: Option<Error> = None;
        loop {
            tries += 1;
            let deadlines = Deadlines {
                request: deadline,
                attempt: deadline.min(Instant::now() + attempt_budget),
            };
            let error = match attempt(deadlines).await {
                Ok(answer) => return Ok(answer),
                Err(e) if e.code() == codes::UPSTREAM_CIRCUIT_OPEN && previous.is_some() => {
                    return Err(previous.take().unwrap_or(e));
                }
                Err(e) => e,
            };
            let delay = match backoff.next() {
                Some(d) if call.is_read() && worth_retrying(&error) => {
                    error.retry_after().map_or(d, |ra| ra.max(d))
                }
                _ => return Err(error),
            };
            // "Not before T" past the deadline is never slept on: the caller hears it now.
            if Instant::now() + delay >= deadline {
                return Err(error);
            }
            meters.retry();
            tracing::debug!(
                connection = meters.connection(),
                operation = call.operation.as_str(),
                attempt = tries,
                code = error.code(),
                delay_ms = delay.as_millis() as u64,
                "retrying upstream read"
            );
            tokio::time::sleep(delay).await;
            previous = Some(error);
        }
    }
}

/// Whether a failed read may be tried again inside the same request: not while the breaker is
/// open, the vendor's window is closed, or the answer was refused for its size.
pub(crate) fn worth_retrying(error: &Error) -> bool {
    error.is_temporary()
        && error.kind() != ErrorKind::RateLimited
        && error.code() != codes::UPSTREAM_CIRCUIT_OPEN
}

/// The vendor did not answer before the deadline.
pub(crate) fn timeout_error() -> Error {
    Error::new(
        ErrorKind::UpstreamTimeout,
        "the vendor did not answer in time",
    )
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};
    use std::collections::VecDeque;

    use reqwest::Method;
    use switchboard_core::Operation;

    use super::*;

    const DEADLINE: Duration = Duration::from_secs(15);

    fn read() -> Call {
        Call::new(Operation::ListConversations, Method::GET, ["conversations"])
    }

    fn write() -> Call {
        Call::new(Operation::SendMessage, Method::POST, ["messages"])
    }

    fn unavailable() -> Error {
        Error::new(ErrorKind::UpstreamUnavailable, "the vendor answered 503")
    }

    fn circuit_open() -> Error {
        Error::new(ErrorKind::UpstreamUnavailable, "paused")
            .with_code(codes::UPSTREAM_CIRCUIT_OPEN)
            .unsent()
    }

    /// Runs `call` against attempts answering `answers` in turn; returns the outcome and how
    /// many attempts were made.
    async fn run(call: &Call, answers: Vec<Result<&'static str>>) -> (Result<&'static str>, usize) {
        let meters = Meters::new("acme");
        let answers = RefCell::new(VecDeque::from(answers));
        let made = Cell::new(0);
        let outcome = Retry::new(DEADLINE, 2)
            .run(call, &meters, |_| {
                made.set(made.get() + 1);
                let answer = answers.borrow_mut().pop_front();
                async move { answer.unwrap_or(Ok("more than asked")) }
            })
            .await;
        (outcome, made.get())
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_is_retried_on_temporary_errors() {
        let (outcome, made) = run(
            &read(),
            vec![Err(unavailable()), Err(unavailable()), Ok("page")],
        )
        .await;
        assert_eq!(outcome.expect("succeeds"), "page");
        assert_eq!(made, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_gives_up_after_its_retries() {
        let (outcome, made) = run(
            &read(),
            vec![Err(unavailable()), Err(unavailable()), Err(unavailable())],
        )
        .await;
        assert_eq!(
            outcome.expect_err("fails").kind(),
            ErrorKind::UpstreamUnavailable
        );
        assert_eq!(made, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_is_never_retried() {
        let (outcome, made) = run(&write(), vec![Err(unavailable()), Ok("sent")]).await;
        assert!(outcome.is_err());
        assert_eq!(made, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_breaker_a_closed_window_or_a_permanent_error_is_not_retried() {
        let rate_limited = Error::new(ErrorKind::RateLimited, "quota").unsent();
        let not_found = Error::new(ErrorKind::NotFound, "no such conversation");
        for error in [circuit_open(), rate_limited, not_found] {
            let code = error.code();
            let (outcome, made) = run(&read(), vec![Err(error), Ok("page")]).await;
            assert_eq!(outcome.expect_err("fails").code(), code);
            assert_eq!(made, 1, "{code}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_breaker_opened_by_this_request_reports_the_vendors_error() {
        let (outcome, made) = run(&read(), vec![Err(unavailable()), Err(circuit_open())]).await;
        let error = outcome.expect_err("fails");
        assert_eq!(error.code(), "upstream_unavailable");
        assert_eq!(error.message(), "the vendor answered 503");
        assert_eq!(made, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_after_past_the_deadline_is_never_slept_on() {
        let started = Instant::now();
        let later = unavailable().with_retry_after(Duration::from_secs(60));
        let (outcome, made) = run(&read(), vec![Err(later), Ok("page")]).await;
        assert!(outcome.is_err());
        assert_eq!(made, 1);
        assert_eq!(
            started.elapsed(),
            Duration::ZERO,
            "the caller hears at once"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_never_sleeps_past_the_deadline() {
        let meters = Meters::new("acme");
        let started = Instant::now();
        let made = Cell::new(0);
        let outcome: Result<()> = Retry::new(DEADLINE, 1000)
            .run(&read(), &meters, |deadlines| {
                made.set(made.get() + 1);
                async move {
                    // A vendor that hangs until the attempt's deadline.
                    tokio::time::sleep_until(deadlines.attempt).await;
                    Err(timeout_error())
                }
            })
            .await;
        assert_eq!(
            outcome.expect_err("fails").kind(),
            ErrorKind::UpstreamTimeout
        );
        assert!(made.get() > 1, "the hang left room for retries");
        assert!(started.elapsed() <= DEADLINE, "{:?}", started.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn a_callers_sooner_deadline_bounds_every_attempt() {
        let meters = Meters::new("acme");
        let page = Instant::now() + Duration::from_secs(2);
        let outcome = deadline::within(page, async {
            Retry::new(DEADLINE, 2)
                .run(&read(), &meters, |deadlines| async move {
                    assert_eq!(deadlines.request, page);
                    assert!(deadlines.attempt <= page);
                    Ok(())
                })
                .await
        })
        .await;
        assert!(outcome.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn an_attempt_with_no_time_left_is_an_unsent_timeout() {
        let now = Instant::now();
        let spent = Deadlines {
            request: now,
            attempt: now,
        };
        let error = spent.attempt_left().expect_err("refused");
        assert_eq!(error.kind(), ErrorKind::UpstreamTimeout);
        assert!(error.is_unsent());
    }
}
