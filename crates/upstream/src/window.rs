//! What the vendor says of its own quota: `X-RateLimit-Remaining` and `-Reset` for the health
//! page, and a closed window (a 429, or nothing remaining) during which no request goes out.
//! A closed window is shared with every replica through [`Store::block`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use tokio::time::Instant;

use crate::lock;
use crate::store::Store;

/// One connection's view of the vendor's window.
#[derive(Debug)]
pub(crate) struct VendorWindow {
    store: Arc<dyn Store>,
    connection: String,
    /// The store bucket whose block every replica honours.
    bucket: String,
    said: Mutex<Said>,
}

/// What the vendor last said.
#[derive(Debug, Default)]
struct Said {
    /// No request goes out before this (a 429, or `X-RateLimit-Remaining: 0`).
    blocked_until: Option<Instant>,
    limit: Option<u32>,
    remaining: Option<u32>,
    reset_at: Option<DateTime<Utc>>,
}

/// What one answer's status and headers say of the window.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Heard {
    /// `X-RateLimit-Limit`.
    pub(crate) limit: Option<u32>,
    /// `X-RateLimit-Remaining`.
    pub(crate) remaining: Option<u32>,
    /// `X-RateLimit-Reset` as a time, when the vendor sent `remaining` too.
    pub(crate) reset_at: Option<DateTime<Utc>>,
    /// How long the window stays closed: a 429's `Retry-After` (1 s without one), or the wait
    /// the vendor names when nothing remains.
    pub(crate) wait: Option<Duration>,
}

impl Heard {
    /// Reads the window from an answer.
    pub(crate) fn from_answer(status: StatusCode, headers: &HeaderMap) -> Heard {
        let limit: Option<u32> = header_number(headers, "x-ratelimit-limit");
        let remaining: Option<u32> = header_number(headers, "x-ratelimit-remaining");
        let reset: Option<i64> = header_number(headers, "x-ratelimit-reset");
        let wait = if status == StatusCode::TOO_MANY_REQUESTS {
            retry_after_from_headers(headers).or(Some(Duration::from_secs(1)))
        } else if remaining == Some(0) {
            retry_after_from_headers(headers)
        } else {
            None
        };
        Heard {
            limit,
            remaining,
            reset_at: reset
                .filter(|_| remaining.is_some())
                .and_then(|r| DateTime::from_timestamp(r, 0)),
            wait,
        }
    }
}

impl VendorWindow {
    /// The window of `connection`, shared through `bucket` in `store`.
    pub(crate) fn new(store: Arc<dyn Store>, connection: &str, bucket: &str) -> VendorWindow {
        VendorWindow {
            store,
            connection: connection.to_owned(),
            bucket: bucket.to_owned(),
            said: Mutex::default(),
        }
    }

    /// How long the window stays closed, as this replica heard it; `None` when open.
    pub(crate) fn closed_for(&self) -> Option<Duration> {
        let until = lock(&self.said).blocked_until?;
        let left = until.saturating_duration_since(Instant::now());
        (!left.is_zero()).then_some(left)
    }

    /// The `Retry-After` of a 429 that named none: the window's time left, at least 1 s.
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        let until = lock(&self.said).blocked_until?;
        Some(
            until
                .saturating_duration_since(Instant::now())
                .max(Duration::from_secs(1)),
        )
    }

    /// `X-RateLimit-Remaining` and `-Reset` as last heard.
    pub(crate) fn quota(&self) -> (Option<u32>, Option<DateTime<Utc>>) {
        let said = lock(&self.said);
        (said.remaining, said.reset_at)
    }

    /// `X-RateLimit-Limit` as last heard (with a `-Remaining`).
    pub(crate) fn limit(&self) -> Option<u32> {
        lock(&self.said).limit
    }

    /// Keeps the window in step with an answer. A closed window is shared with every replica
    /// before the caller hears of it, so once any caller has seen the vendor's 429 no replica
    /// sends to that connection until the window reopens.
    pub(crate) async fn observe(&self, status: StatusCode, headers: &HeaderMap) {
        let heard = Heard::from_answer(status, headers);
        if heard.remaining.is_none() && heard.wait.is_none() {
            return;
        }
        {
            let mut said = lock(&self.said);
            if heard.remaining.is_some() {
                said.limit = heard.limit;
                said.remaining = heard.remaining;
                said.reset_at = heard.reset_at;
            }
            if let Some(wait) = heard.wait {
                said.blocked_until = Some(Instant::now() + wait);
            }
        }
        let Some(wait) = heard.wait else {
            return;
        };
        // Every replica holds back too; this replica already does (above) while it lands.
        if let Err(e) = self.store.block(&self.bucket, wait).await {
            tracing::warn!(connection = %self.connection, error = %e, "could not share the vendor's block with other replicas");
        }
    }
}

fn header_number<T: std::str::FromStr>(headers: &HeaderMap, name: &str) -> Option<T> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// How long a vendor asks to wait: `Retry-After` (seconds), else `X-RateLimit-Reset` (a Unix
/// timestamp, or seconds from now when small).
pub fn retry_after_from_headers(headers: &HeaderMap) -> Option<Duration> {
    if let Some(secs) = header_number::<i64>(headers, RETRY_AFTER.as_str()) {
        return Some(Duration::from_secs(secs.max(0) as u64));
    }
    let reset: i64 = header_number(headers, "x-ratelimit-reset")?;
    let now = chrono::Utc::now().timestamp();
    let secs = if reset > 1_000_000_000 {
        reset - now
    } else {
        reset
    };
    Some(Duration::from_secs(secs.max(1) as u64))
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;
    use crate::store::MemoryStore;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, HeaderValue::from_str(value).expect("a header value"));
        }
        headers
    }

    #[test]
    fn headers_say_what_remains_and_when_it_resets() {
        let heard = Heard::from_answer(
            StatusCode::OK,
            &headers(&[
                ("x-ratelimit-remaining", "17"),
                ("x-ratelimit-reset", "1767225600"),
            ]),
        );
        assert_eq!(heard.remaining, Some(17));
        assert_eq!(heard.reset_at, DateTime::from_timestamp(1_767_225_600, 0));
        assert_eq!(heard.wait, None, "a window with requests left is open");
    }

    #[test]
    fn nothing_remaining_closes_the_window_for_the_named_wait() {
        let heard = Heard::from_answer(
            StatusCode::OK,
            &headers(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "30")]),
        );
        assert_eq!(heard.wait, Some(Duration::from_secs(30)));
        let unnamed =
            Heard::from_answer(StatusCode::OK, &headers(&[("x-ratelimit-remaining", "0")]));
        assert_eq!(unnamed.wait, None, "no wait named, none assumed");
    }

    #[test]
    fn a_429_closes_the_window_for_its_retry_after_or_one_second() {
        let named = Heard::from_answer(
            StatusCode::TOO_MANY_REQUESTS,
            &headers(&[("retry-after", "7")]),
        );
        assert_eq!(named.wait, Some(Duration::from_secs(7)));
        let bare = Heard::from_answer(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new());
        assert_eq!(bare.wait, Some(Duration::from_secs(1)));
    }

    #[test]
    fn retry_after_wins_over_the_reset_and_a_reset_is_at_least_a_second() {
        let both = headers(&[("retry-after", "3"), ("x-ratelimit-reset", "40")]);
        assert_eq!(
            retry_after_from_headers(&both),
            Some(Duration::from_secs(3))
        );
        let past = (Utc::now().timestamp() - 60).to_string();
        let passed = headers(&[("x-ratelimit-reset", &past)]);
        assert_eq!(
            retry_after_from_headers(&passed),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            retry_after_from_headers(&headers(&[("retry-after", "soon")])),
            None
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_is_shared_through_the_store_before_observe_returns() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
        let window = VendorWindow::new(Arc::clone(&store), "acme", "quota:acme");
        window
            .observe(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new())
            .await;
        assert_eq!(window.closed_for(), Some(Duration::from_secs(1)));
        assert_eq!(window.retry_after(), Some(Duration::from_secs(1)));
        assert!(
            store
                .blocked_for("quota:acme")
                .await
                .expect("answers")
                .is_some()
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(window.closed_for(), None, "the window reopens");
        assert_eq!(window.retry_after(), Some(Duration::from_secs(1)));
    }

    #[tokio::test]
    async fn an_answer_without_rate_headers_keeps_what_was_heard() {
        let window = VendorWindow::new(Arc::new(MemoryStore::default()), "acme", "quota:acme");
        window
            .observe(StatusCode::OK, &headers(&[("x-ratelimit-remaining", "5")]))
            .await;
        window.observe(StatusCode::OK, &HeaderMap::new()).await;
        assert_eq!(window.quota(), (Some(5), None));
        assert_eq!(window.closed_for(), None);
    }
}
