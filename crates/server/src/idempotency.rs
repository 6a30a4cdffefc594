//! `Idempotency-Key` on replies: a repeat with the same key and body returns the first answer
//! without a second send; the same key with another body is 422; a repeat while the first is in
//! flight is 409. Records live in the shared store for 24 hours, scoped to the caller.

use std::time::Duration;

use axum::http::StatusCode;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use switchboard_core::{Error, ErrorKind, Message, Operation, codes};
use switchboard_upstream::Claim as Held;
use switchboard_upstream::Store;

use crate::problem::{PROBLEM_JSON, Problem, status_of};

/// How long a finished record is kept.
pub const RETENTION: Duration = Duration::from_secs(24 * 60 * 60);
/// How long an in-flight record blocks its key if its request never finishes (a crash): longer
/// than any request may take.
const IN_FLIGHT: Duration = Duration::from_secs(120);

/// A finished answer, replayed as it was: the status, media type and body the first request
/// was answered with.
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
    /// What the first request came to: its message, or its error (the caller's answer is then
    /// the first one, byte for byte).
    Replay(Box<Result<Message, Error>>),
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
            Ok(Begin::Replay(Box::new(replay(stored))))
        }
    }
}

/// The first request's outcome, read back from its answer.
fn replay(stored: Stored) -> Result<Message, Error> {
    let unreadable = |e: serde_json::Error| {
        Error::new(ErrorKind::Unexpected, "unreadable idempotency record").with_source(e)
    };
    if (200..300).contains(&stored.status) {
        return serde_json::from_str(&stored.body).map_err(unreadable);
    }
    let problem: Problem = serde_json::from_str(&stored.body).map_err(unreadable)?;
    Err(error_of(problem))
}

/// The error a kept problem was made from (only failures whose outcome is unknown are kept:
/// `upstream_timeout` and `upstream_unavailable`), so it renders as the same bytes again.
fn error_of(problem: Problem) -> Error {
    let kind = if problem.status == StatusCode::GATEWAY_TIMEOUT.as_u16() {
        ErrorKind::UpstreamTimeout
    } else {
        ErrorKind::UpstreamUnavailable
    };
    let code = codes::all()
        .into_iter()
        .find(|c| *c == problem.code)
        .unwrap_or(kind.default_code());
    let mut error = Error::new(kind, problem.detail).with_code(code);
    if let Some(parameter) = problem
        .parameter
        .and_then(|p| codes::PARAMETERS.iter().find(|known| **known == p))
    {
        error = error.with_parameter(parameter);
    }
    if let Some(connection) = problem.connection {
        error = error.with_connection(connection);
    }
    if let Some(op) = problem
        .operation
        .and_then(|name| Operation::ALL.into_iter().find(|op| op.as_str() == name))
    {
        error = error.with_operation(op);
    }
    if let Some(secs) = problem.retry_after {
        error = error.with_retry_after(Duration::from_secs(secs));
    }
    error
}

/// How the outcome is answered, to be answered again the same way.
fn stored(result: &Result<Message, Error>) -> Stored {
    match result {
        Ok(message) => Stored {
            status: StatusCode::CREATED.as_u16(),
            content_type: "application/json".to_owned(),
            body: serde_json::to_string(message).unwrap_or_default(),
        },
        Err(e) => {
            let status = status_of(e);
            Stored {
                status: status.as_u16(),
                content_type: PROBLEM_JSON.to_owned(),
                body: serde_json::to_string(&Problem::of(status, e)).unwrap_or_default(),
            }
        }
    }
}

/// Whether a failure leaves it unknown if the vendor acted (the answer is kept so a retry
/// cannot send twice), rather than known not to have (the key is freed for a corrected retry).
fn outcome_unknown(e: &Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::UpstreamTimeout | ErrorKind::UpstreamUnavailable
    )
}

/// Records the outcome of a claimed request and returns it.
pub async fn finish(
    store: &dyn Store,
    claim: Claim,
    result: Result<Message, Error>,
) -> Result<Message, Error> {
    let keep = match &result {
        Ok(_) => true,
        Err(e) => outcome_unknown(e),
    };
    if !keep {
        if let Err(e) = store.release(&claim.key).await {
            tracing::warn!(error = %e, "could not release an idempotency key; it frees itself when its lease ends");
        }
        return result;
    }
    let record = serde_json::to_vec(&stored(&result)).unwrap_or_default();
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
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn again(first: &Result<Message, Error>) -> (Stored, Stored) {
        let stored_first = stored(first);
        let json = serde_json::to_string(&stored_first).unwrap_or_default();
        let read: Stored = serde_json::from_str(&json).expect("a record");
        (stored_first, stored(&replay(read)))
    }

    #[test]
    fn a_replay_is_the_first_answer_byte_for_byte() {
        let message: Message = serde_json::from_value(serde_json::json!({
            "id": "shop:3", "conversation_id": "shop:12", "connection": "shop",
            "provider": "zipchat", "native_id": "3", "author": "agent",
            "sender": {"id": "shop:7", "connection": "shop", "provider": "zipchat",
                       "native_id": "7", "name": "Jane", "email": null, "avatar_url": null},
            "text": "Hello ✓", "html": "<p>Hello ✓</p>",
            "attachments": [{"url": "https://x.example/a.png", "content_type": "image/png", "name": null}],
            "created_at": "2026-01-15T10:45:00.123456Z", "direction": "outbound",
            "delivery_status": "sent"
        }))
        .expect("a message");
        let timeout = Error::new(
            ErrorKind::UpstreamTimeout,
            "the vendor did not answer in time",
        )
        .with_connection("shop")
        .with_operation(Operation::SendMessage);
        let open_breaker = Error::new(ErrorKind::UpstreamUnavailable, "paused")
            .with_code(codes::UPSTREAM_CIRCUIT_OPEN)
            .with_connection("shop")
            .with_retry_after(Duration::from_secs(9));
        for first in [Ok(message), Err(timeout), Err(open_breaker)] {
            let (stored_first, replayed) = again(&first);
            assert_eq!(
                (replayed.status, &replayed.content_type, &replayed.body),
                (
                    stored_first.status,
                    &stored_first.content_type,
                    &stored_first.body
                )
            );
        }
    }
}
