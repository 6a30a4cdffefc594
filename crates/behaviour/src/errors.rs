//! Checks of a vendor's `parse_error` (its `error.rs`): its own table, and what every vendor
//! answers alike because its errors end in `Vendor::classify`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use switchboard_core::Error;
use switchboard_upstream::header::HeaderMap;
use switchboard_upstream::{ErrorParser, StatusCode};

/// What a vendor's `parse_error` makes of a non-2xx answer with `body` and no headers.
pub fn vendor_error(parse_error: ErrorParser, status: u16, body: &str) -> Error {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::IM_A_TEAPOT);
    parse_error(status, &HeaderMap::new(), body.as_bytes())
}

/// What the gateway answers for every vendor alike, as `(vendor status, vendor body, gateway
/// status, gateway code)`: a server error, a refusal the vendor's table does not know, and a
/// quota with no wait given.
const EVERY_VENDOR: &[(u16, &str, u16, &str)] = &[
    (500, "<html>oops</html>", 502, "upstream_unavailable"),
    (503, "", 502, "upstream_unavailable"),
    (418, "not json", 502, "upstream_rejected"),
    (429, "", 503, "upstream_rate_limited"),
];

/// Checks a vendor's `parse_error` against its table of `(vendor status, vendor body, gateway
/// status, gateway code)` and against what every vendor answers alike, and that no gateway
/// message repeats any of `never_shown` (words of the vendor's bodies).
pub fn assert_vendor_errors(
    parse_error: ErrorParser,
    table: &[(u16, &str, u16, &str)],
    never_shown: &[&str],
) {
    for (status, body, http, code) in EVERY_VENDOR.iter().chain(table) {
        let e = vendor_error(parse_error, *status, body);
        assert_eq!(
            (e.kind().http_status(), e.code()),
            (*http, *code),
            "{status} {body}"
        );
        for vendor_text in never_shown.iter().chain(&["oops"]) {
            assert!(
                !e.message().contains(vendor_text),
                "{status} {body}: {}",
                e.message()
            );
        }
    }
    assert_retries_as_every_vendor(parse_error);
}

/// A server error is worth retrying and a refusal is not; a 429 waits as its headers say
/// (`Retry-After` seconds, or the `X-RateLimit-Reset` time), and no wait is invented.
fn assert_retries_as_every_vendor(parse_error: ErrorParser) {
    assert!(vendor_error(parse_error, 503, "").is_temporary());
    assert!(!vendor_error(parse_error, 418, "not json").is_temporary());
    assert_eq!(vendor_error(parse_error, 429, "").retry_after(), None);
    let quota = |header: &'static str, value: u64| {
        let mut headers = HeaderMap::new();
        headers.insert(header, value.into());
        parse_error(StatusCode::TOO_MANY_REQUESTS, &headers, b"{}")
    };
    let after = quota("retry-after", 7);
    assert!(after.is_temporary());
    assert_eq!(after.retry_after(), Some(Duration::from_secs(7)));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let reset = quota("x-ratelimit-reset", now + 30).retry_after();
    let secs = reset.map(|wait| wait.as_secs()).unwrap_or_default();
    assert!((28..=31).contains(&secs), "{secs}");
}
