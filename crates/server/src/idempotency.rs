//! `Idempotency-Key` on replies: a repeat with the same key and body returns the first answer
//! without a second send; the same key with another body is 422; a repeat while the first is in
//! flight is 409. Records live in the shared store for 24 hours, scoped to the caller. The claim
//! comes first and is atomic in the store (of two replicas given the same key at once, one sends):
//! when the store cannot answer, nothing is sent (503 `store_unavailable`).

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use switchboard_core::{Error, ErrorKind, codes};
use switchboard_upstream::Claim as Held;
use switchboard_upstream::Store;

/// How long a finished record is kept.
pub const RETENTION: Duration = Duration::from_secs(24 * 60 * 60);
/// How long an in-flight claim blocks its key if its request never finishes (a crash): longer
/// than any request may take (the gateway's own timeout is 30 s).
pub const IN_FLIGHT: Duration = Duration::from_secs(120);

/// A finished answer, replayed as it was.
#[derive(Serialize, Deserialize)]
struct Stored {
    status: u16,
    content_type: String,
    body: String,
}

/// What `begin` found.
#[derive(Debug)]
pub enum Begin {
    /// No record: the caller proceeds and must `finish`.
    Fresh(Claim),
    /// The first answer, to return as it is.
    Replay(Response),
}

/// The right to perform a keyed request once.
#[derive(Debug)]
pub struct Claim {
    key: String,
    fingerprint: String,
}

/// A hash of what the request asks for: the same key must come with the same request.
pub fn fingerprint(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

fn store_key(caller: &str, key: &str) -> String {
    format!("idem:{}:{key}", fingerprint(&[caller]))
}

/// Claims `key` for `caller`, or finds the earlier request's record.
pub async fn begin(
    store: &dyn Store,
    caller: &str,
    key: &str,
    fingerprint: String,
) -> Result<Begin, Error> {
    let store_key = store_key(caller, key);
    let (held_by, done) = match store.claim(&store_key, &fingerprint, IN_FLIGHT).await? {
        Held::Claimed => {
            return Ok(Begin::Fresh(Claim {
                key: store_key,
                fingerprint,
            }));
        }
        Held::InFlight { fingerprint } => (fingerprint, None),
        Held::Done {
            fingerprint,
            record,
        } => (fingerprint, Some(record)),
    };
    if held_by != fingerprint {
        return Err(Error::new(
            ErrorKind::Unprocessable,
            "this Idempotency-Key was used for a different request; use a new key for a new reply",
        )
        .with_code(codes::IDEMPOTENCY_KEY_REUSED)
        .with_parameter("idempotency_key"));
    }
    match done {
        None => Err(Error::new(
            ErrorKind::Conflict,
            "a request with this Idempotency-Key is still in progress; retry when it has finished",
        )
        .with_code(codes::IDEMPOTENCY_IN_PROGRESS)
        .with_retry_after(Duration::from_secs(1))),
        Some(record) => {
            let stored: Stored = serde_json::from_slice(&record).map_err(|e| {
                Error::new(ErrorKind::Unexpected, "unreadable idempotency record").with_source(e)
            })?;
            Ok(Begin::Replay(replay(stored)))
        }
    }
}

fn replay(stored: Stored) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut response = (status, stored.body).into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&stored.content_type) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    headers.insert("idempotency-replayed", HeaderValue::from_static("true"));
    response
}

/// Whether a failure leaves it unknown if the vendor acted (the answer is kept so a retry
/// cannot send twice), rather than known not to have (the key is freed for a corrected retry).
fn outcome_unknown(e: &Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::UpstreamTimeout | ErrorKind::UpstreamUnavailable
    )
}

/// Records the answer of a claimed request and returns it.
pub async fn finish(
    store: &dyn Store,
    claim: Claim,
    result: Result<Response, Error>,
    error_response: impl FnOnce(Error) -> Response,
) -> Response {
    let (response, keep) = match result {
        Ok(r) => (r, true),
        Err(e) => {
            let keep = outcome_unknown(&e);
            (error_response(e), keep)
        }
    };
    if !keep {
        if let Err(e) = store.release(&claim.key).await {
            tracing::warn!(error = %e, "could not release an idempotency key; it frees itself when its lease ends");
        }
        return response;
    }
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, crate::MAX_BODY_BYTES * 16)
        .await
        .unwrap_or_default();
    let stored = Stored {
        status: parts.status.as_u16(),
        content_type: parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json")
            .to_owned(),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let record = serde_json::to_vec(&stored).unwrap_or_default();
    if let Err(e) = store
        .complete(
            &claim.key,
            &claim.fingerprint,
            Bytes::from(record),
            RETENTION,
        )
        .await
    {
        // The answer was sent: the caller gets it. Until the lease ends a retry gets 409.
        tracing::error!(error = %e, "could not store an idempotency record; a retry after the lease ends may send again");
    }
    Response::from_parts(parts, axum::body::Body::from(body))
}
