//! `Idempotency-Key` on replies: a reply retried with its key is delivered exactly once,
//! whatever failed on the way. The same key with another body is 422; a repeat while the first
//! is in flight is 409 with the `Retry-After` of its lease. Records live in the shared store,
//! scoped to the caller.
//!
//! What a key keeps depends on what is known of the vendor:
//! - **it acted or refused for good** (the message, or a documented 4xx such as
//!   `conversation_in_ai_mode`): the answer is kept for [`RETENTION`] and replayed;
//! - **it did not get the request** (no connection, a 429, an open breaker, a closed vendor
//!   window, the store down, the deadline before sending): the key is released, and a retry sends;
//! - **nobody knows** (a 5xx, a dropped or unreadable answer, a timeout after sending, a crash):
//!   the key is kept *unsettled* with when the attempt began, and the next retry first finds out
//!   (the reply's service looks for the message in the conversation, or sends again with the same
//!   vendor-side key to a vendor that deduplicates) before it sends.
//!
//! A claim's lease is [`LEASE`], renewed every [`RENEW_EVERY`] while its request works, so a
//! crashed replica's claim turns unsettled within [`LEASE`] and a retry then takes over. After a
//! timeout the key stays in flight [`LATE_ANSWER_GRACE`] longer, for a vendor still at work.

use std::future::Future;
use std::time::Duration;

use axum::http::StatusCode;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use switchboard_core::{Error, ErrorKind, Message, Operation, codes};
use switchboard_store::{Attempt, Claim as Held, Store};

use crate::problem::{PROBLEM_JSON, Problem, status_of};

/// How long a finished record, or an unsettled attempt, is kept.
pub const RETENTION: Duration = Duration::from_secs(24 * 60 * 60);
/// How long a claim holds its key unless renewed: a crashed request's key is taken over this
/// long after its last renewal at most.
pub const LEASE: Duration = Duration::from_secs(10);
/// How often a request at work renews its claim's lease.
pub const RENEW_EVERY: Duration = Duration::from_secs(3);
/// How long a key stays in flight after its request gave up waiting on the vendor (a timeout):
/// a vendor still working on it acts by then, before a retry looks for the message.
pub const LATE_ANSWER_GRACE: Duration = Duration::from_secs(5);

/// A finished answer, replayed as it was: the status, media type and body the first request
/// was answered with.
#[derive(Serialize, Deserialize)]
struct Stored {
    status: u16,
    content_type: String,
    body: String,
}

/// What a claim notes of its attempt, for the claim that takes over if it ends unsettled.
#[derive(Serialize, Deserialize)]
struct Note {
    began_at: DateTime<Utc>,
}

/// What `begin` found.
#[derive(Debug)]
pub enum Begin {
    /// The caller holds the key and must `finish` (after finding out about `earlier`, if set).
    Fresh(Claim),
    /// What the first request came to: its message, or its refusal (the caller's answer is then
    /// the first one, byte for byte).
    Replay(Box<Result<Message, Error>>),
}

/// The right to perform a keyed request once.
#[derive(Debug)]
pub struct Claim {
    key: String,
    fingerprint: String,
    earlier: Option<Earlier>,
}

/// An earlier attempt of the same request that ended without knowing whether the vendor acted.
#[derive(Debug, Clone, Copy)]
pub struct Earlier {
    /// When it began (`None` for a record that does not say): the message, if sent, is newer.
    pub began_at: Option<DateTime<Utc>>,
}

impl Claim {
    /// The earlier attempt to find out about before acting, if any.
    pub fn earlier(&self) -> Option<Earlier> {
        self.earlier
    }

    /// Runs `work` while renewing the claim's lease, so no retry takes over a request at work.
    pub async fn hold<T>(&self, store: &dyn Store, work: impl Future<Output = T>) -> T {
        let mut work = std::pin::pin!(work);
        loop {
            match tokio::time::timeout(RENEW_EVERY, &mut work).await {
                Ok(out) => return out,
                Err(_) => match store.renew(&self.key, &self.fingerprint, LEASE).await {
                    Ok(true) => {}
                    Ok(false) => tracing::warn!(
                        "an idempotency claim's lease ended while its request worked; a retry may check the vendor meanwhile"
                    ),
                    Err(e) => {
                        tracing::warn!(error = %e, "could not renew an idempotency claim's lease")
                    }
                },
            }
        }
    }
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
    let note = serde_json::to_vec(&Note {
        began_at: Utc::now(),
    })
    .unwrap_or_default();
    let attempt = Attempt {
        fingerprint: &fingerprint,
        note: &note,
        lease: LEASE,
        keep: RETENTION,
    };
    let reused = || {
        Error::new(
            ErrorKind::Unprocessable,
            "this Idempotency-Key was used for a different request; use a new key for a new reply",
        )
        .with_code(codes::IDEMPOTENCY_KEY_REUSED)
        .with_parameter("idempotency_key")
    };
    match store.claim(&store_key, &attempt).await? {
        Held::Claimed { unsettled } => Ok(Begin::Fresh(Claim {
            key: store_key,
            fingerprint,
            earlier: unsettled.map(|note| Earlier {
                began_at: serde_json::from_slice::<Note>(&note)
                    .ok()
                    .map(|n| n.began_at),
            }),
        })),
        Held::InFlight {
            fingerprint: held_by,
            retry_in,
        } => {
            if held_by != fingerprint {
                return Err(reused());
            }
            // Whole seconds, rounded up: at that time the claim has finished or ended.
            let secs = retry_in.as_millis().div_ceil(1000).max(1);
            Err(Error::new(
                ErrorKind::Conflict,
                "a request with this Idempotency-Key is still in progress; retry after Retry-After seconds",
            )
            .with_code(codes::IDEMPOTENCY_IN_PROGRESS)
            .with_retry_after(Duration::from_secs(u64::try_from(secs).unwrap_or(u64::MAX))))
        }
        Held::Unsettled { .. } => Err(reused()),
        Held::Done {
            fingerprint: held_by,
            record,
        } => {
            if held_by != fingerprint {
                return Err(reused());
            }
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

/// The error a kept problem was made from, so it renders as the same bytes again.
fn error_of(problem: Problem) -> Error {
    // Only final answers are kept: refusals (4xx, 501) and a vendor's documented rejection.
    let kind = match problem.status {
        400 => ErrorKind::InvalidRequest,
        401 => ErrorKind::Unauthenticated,
        403 => ErrorKind::Forbidden,
        404 => ErrorKind::NotFound,
        409 => ErrorKind::Conflict,
        410 => ErrorKind::Gone,
        413 => ErrorKind::TooLarge,
        422 => ErrorKind::Unprocessable,
        501 => ErrorKind::Unsupported,
        502 => ErrorKind::UpstreamUnavailable,
        504 => ErrorKind::UpstreamTimeout,
        _ => ErrorKind::Unexpected,
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

/// What a request's answer tells of the vendor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It acted (the message), or refused for good (a documented 4xx): the answer is final and
    /// kept.
    Final,
    /// It never got the request: the key is freed (unless an earlier attempt is unsettled).
    NotSent,
    /// Nobody knows whether it acted: the key is kept unsettled.
    Unknown,
}

/// What `error` tells of the vendor.
pub fn outcome_of(error: &Error) -> Outcome {
    if error.is_unsent() {
        return Outcome::NotSent;
    }
    match error.kind() {
        // A 4xx the vendor documents, as its own code: it did not act.
        ErrorKind::UpstreamUnavailable if error.code() == codes::UPSTREAM_REJECTED => {
            Outcome::Final
        }
        ErrorKind::UpstreamTimeout | ErrorKind::UpstreamUnavailable => Outcome::Unknown,
        // A 429, the vendor refusing the gateway's credential, the store or the caller's own
        // quota: nothing was done, and a retry may go through.
        ErrorKind::RateLimited
        | ErrorKind::UpstreamAuth
        | ErrorKind::StoreUnavailable
        | ErrorKind::TooManyRequests
        | ErrorKind::Config
        | ErrorKind::Unexpected => Outcome::NotSent,
        ErrorKind::InvalidRequest
        | ErrorKind::Unprocessable
        | ErrorKind::TooLarge
        | ErrorKind::Unauthenticated
        | ErrorKind::Forbidden
        | ErrorKind::NotFound
        | ErrorKind::Conflict
        | ErrorKind::Gone
        | ErrorKind::Unsupported => Outcome::Final,
    }
}

/// Records the outcome of a claimed request and returns it.
pub async fn finish(
    store: &dyn Store,
    claim: Claim,
    result: Result<Message, Error>,
) -> Result<Message, Error> {
    let outcome = match &result {
        Ok(_) => Outcome::Final,
        Err(e) => outcome_of(e),
    };
    let kept = match outcome {
        Outcome::Final => {
            let record = serde_json::to_vec(&stored(&result)).unwrap_or_default();
            store
                .complete(
                    &claim.key,
                    &claim.fingerprint,
                    Bytes::from(record),
                    RETENTION,
                )
                .await
        }
        // An earlier attempt still unsettled stays so until one is known to have acted.
        Outcome::NotSent if claim.earlier.is_none() => store.release(&claim.key).await,
        // The vendor may still be working on a request it did not answer in time: the key
        // turns unsettled once it would have acted.
        Outcome::Unknown
            if result
                .as_ref()
                .is_err_and(|e| e.kind() == ErrorKind::UpstreamTimeout) =>
        {
            store
                .renew(&claim.key, &claim.fingerprint, LATE_ANSWER_GRACE)
                .await
                .map(|_| ())
        }
        Outcome::NotSent | Outcome::Unknown => store.unsettle(&claim.key, &claim.fingerprint).await,
    };
    if let Err(e) = kept {
        // The caller gets its answer. The claim's lease ends by itself, and a retry then finds
        // out from the vendor before it sends.
        tracing::warn!(error = %e, ?outcome, "could not record a reply's outcome under its Idempotency-Key; a retry checks the vendor first");
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
        let ai_mode = Error::new(ErrorKind::Conflict, "the bot answers this conversation")
            .with_code(codes::CONVERSATION_IN_AI_MODE)
            .with_connection("shop")
            .with_operation(Operation::SendMessage);
        let bad_sender = Error::new(ErrorKind::Unprocessable, "not an agent")
            .with_code(codes::INVALID_SENDER)
            .with_parameter("sender_id");
        let rejected = Error::new(ErrorKind::UpstreamUnavailable, "Acme rejected the request")
            .with_code(codes::UPSTREAM_REJECTED)
            .set_temporary(false)
            .with_connection("shop");
        for first in [Ok(message), Err(ai_mode), Err(bad_sender), Err(rejected)] {
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

    #[test]
    fn what_an_answer_tells_of_the_vendor() {
        let upstream = |kind, code| Error::new(kind, "x").with_code(code);
        let table = [
            (
                upstream(ErrorKind::UpstreamUnavailable, "upstream_unavailable"),
                Outcome::Unknown,
            ),
            (
                upstream(ErrorKind::UpstreamTimeout, "upstream_timeout"),
                Outcome::Unknown,
            ),
            (
                upstream(ErrorKind::UpstreamTimeout, "upstream_timeout").unsent(),
                Outcome::NotSent,
            ),
            (
                upstream(ErrorKind::UpstreamUnavailable, codes::UPSTREAM_CIRCUIT_OPEN).unsent(),
                Outcome::NotSent,
            ),
            (
                upstream(ErrorKind::RateLimited, "upstream_rate_limited"),
                Outcome::NotSent,
            ),
            (
                upstream(ErrorKind::UpstreamAuth, "upstream_auth_failed"),
                Outcome::NotSent,
            ),
            (
                upstream(ErrorKind::StoreUnavailable, "store_unavailable"),
                Outcome::NotSent,
            ),
            (
                upstream(ErrorKind::UpstreamUnavailable, codes::UPSTREAM_REJECTED),
                Outcome::Final,
            ),
            (
                upstream(ErrorKind::Conflict, codes::CONVERSATION_IN_AI_MODE),
                Outcome::Final,
            ),
            (upstream(ErrorKind::NotFound, "not_found"), Outcome::Final),
        ];
        for (error, outcome) in table {
            assert_eq!(outcome_of(&error), outcome, "{error}");
        }
    }
}
