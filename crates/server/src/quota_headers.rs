//! Where the caller stands, in every authenticated answer: the IETF httpapi `RateLimit-Policy`
//! and `RateLimit` header fields (draft-ietf-httpapi-ratelimit-headers). The caller's own quota is
//! the policy `"client"`; each connection whose vendor the request reached adds a policy named
//! after the connection, never stating more than the vendor itself allows. Every 429 and 503
//! carries `Retry-After`.

use std::fmt::Write as _;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use switchboard_core::quota_state::{Ledger, QuotaState};

/// `RateLimit-Policy`: each policy's quota and window.
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// `RateLimit`: what is left of each policy, and when it is whole again.
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
/// The name of the caller's own policy.
pub const CLIENT_POLICY: &str = "client";

/// Runs the request with a ledger, then states what it noted in the answer's headers.
pub async fn quota_headers(request: Request, next: Next) -> Response {
    let ledger = Ledger::default();
    let mut response = ledger.clone().scope(next.run(request)).await;
    let headers = response.headers_mut();
    if let Some(caller) = ledger.caller() {
        let mut policies = vec![(CLIENT_POLICY.to_owned(), caller)];
        policies.extend(ledger.connections());
        let (policy, state) = fields(&policies);
        if let (Ok(policy), Ok(state)) = (
            HeaderValue::from_str(&policy),
            HeaderValue::from_str(&state),
        ) {
            headers.insert(RATELIMIT_POLICY, policy);
            headers.insert(RATELIMIT, state);
        }
    }
    let status = response.status();
    if (status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE)
        && !response.headers().contains_key(header::RETRY_AFTER)
    {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(1));
    }
    response
}

/// The `RateLimit-Policy` and `RateLimit` field values of `policies`, in order. Written into
/// two strings directly: every authenticated answer carries them.
pub fn fields(policies: &[(String, QuotaState)]) -> (String, String) {
    let mut policy = String::with_capacity(48 * policies.len());
    let mut state = String::with_capacity(48 * policies.len());
    for (name, s) in policies {
        if !is_sf_string(name) {
            continue;
        }
        if !policy.is_empty() {
            policy.push_str(", ");
            state.push_str(", ");
        }
        push_sf_string(&mut policy, name);
        push_sf_string(&mut state, name);
        let _ = write!(policy, ";q={};w={}", s.quota, s.window_secs);
        let _ = write!(state, ";r={};t={}", s.remaining, s.reset_secs);
    }
    (policy, state)
}

/// Whether `name` fits a structured-field string (RFC 9651): printable ASCII only.
fn is_sf_string(name: &str) -> bool {
    name.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// Appends `name` to `out` as a structured-field string, quoted, `\` and `"` escaped.
fn push_sf_string(out: &mut String, name: &str) {
    out.push('"');
    let mut rest = name;
    while let Some(at) = rest.find(['\\', '"']) {
        out.push_str(&rest[..at]);
        out.push('\\');
        out.push_str(&rest[at..=at]);
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_are_listed_in_order_as_structured_fields() {
        let policies = vec![
            ("client".to_owned(), QuotaState::refilling(600, 60, 597)),
            ("zip\"chat".to_owned(), QuotaState::refilling(120, 60, 119)),
            ("a\\b\"".to_owned(), QuotaState::refilling(5, 10, 4)),
            ("bad\nname".to_owned(), QuotaState::refilling(1, 1, 1)),
        ];
        let (policy, state) = fields(&policies);
        assert_eq!(
            policy,
            r#""client";q=600;w=60, "zip\"chat";q=120;w=60, "a\\b\"";q=5;w=10"#
        );
        assert_eq!(
            state,
            r#""client";r=597;t=1, "zip\"chat";r=119;t=1, "a\\b\"";r=4;t=2"#
        );
    }
}
