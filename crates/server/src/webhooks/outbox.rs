//! An endpoint's delivery state, kept in the store (so pending deliveries survive a restart and
//! any replica can show it), and replay requests, which any replica may write for the
//! endpoint's worker to apply.

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchboard_core::{Error, ErrorKind, Result};
use switchboard_store::{LogId, Store};

/// How long an endpoint's state is kept in the store after its last change.
pub const STATE_TTL: Duration = Duration::from_secs(400 * 24 * 60 * 60);

/// Where one endpoint's deliveries stand.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OutboxState {
    /// The last event delivered, or passed over as not for this endpoint; `None`: the log's
    /// beginning.
    pub cursor: Option<String>,
    /// Failed attempts of the event after `cursor`.
    pub attempts: u32,
    /// When that event is tried next; `None`: as soon as it exists.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When the last attempt was made.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// What went wrong last.
    pub last_error: Option<String>,
    /// When it went wrong.
    pub last_error_at: Option<DateTime<Utc>>,
    /// When an event was last delivered.
    pub last_success_at: Option<DateTime<Utc>>,
    /// Why deliveries stopped (410 Gone, or the schedule spent); `None` while they go on.
    pub disabled: Option<String>,
    /// The last replay request applied.
    pub replay_applied: Option<String>,
}

/// A replay asked for through `POST /v1/webhooks/{id}/replay`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplayRequest {
    /// Unique per request, so that the worker applies each once.
    pub request: String,
    /// Deliver again the events after this cursor (`None`: the log's beginning).
    pub after: Option<String>,
    /// Whether `after` was given; without it the endpoint resumes where it stopped.
    pub rewind: bool,
}

impl OutboxState {
    /// The cursor as a log position.
    pub fn position(&self) -> Option<LogId> {
        self.cursor.as_deref().and_then(|c| c.parse().ok())
    }

    /// Applies `replay` if it is new: rewinds (when asked), re-enables, and tries at once.
    pub fn apply(&mut self, replay: &ReplayRequest) -> bool {
        if self.replay_applied.as_deref() == Some(replay.request.as_str()) {
            return false;
        }
        if replay.rewind {
            self.cursor = replay.after.clone();
        }
        self.attempts = 0;
        self.next_attempt_at = None;
        self.disabled = None;
        self.replay_applied = Some(replay.request.clone());
        true
    }
}

fn state_key(endpoint: &str) -> String {
    format!("webhook:{endpoint}:state")
}

fn replay_key(endpoint: &str) -> String {
    format!("webhook:{endpoint}:replay")
}

/// The lease key of an endpoint's worker.
pub fn lease_key(endpoint: &str) -> String {
    format!("webhook:{endpoint}")
}

fn corrupt(what: &str, e: serde_json::Error) -> Error {
    Error::new(
        ErrorKind::Unexpected,
        format!("the stored webhook {what} is unreadable"),
    )
    .with_source(e)
}

/// The stored state of `endpoint`, if any.
pub async fn load(store: &dyn Store, endpoint: &str) -> Result<Option<OutboxState>> {
    match store.get(&state_key(endpoint)).await? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| corrupt("state", e)),
        None => Ok(None),
    }
}

/// Stores the state of `endpoint`.
pub async fn save(store: &dyn Store, endpoint: &str, state: &OutboxState) -> Result<()> {
    let bytes = serde_json::to_vec(state).map_err(|e| corrupt("state", e))?;
    store
        .put(&state_key(endpoint), Bytes::from(bytes), STATE_TTL)
        .await
}

/// The latest replay request of `endpoint`, if any.
pub async fn pending_replay(store: &dyn Store, endpoint: &str) -> Result<Option<ReplayRequest>> {
    match store.get(&replay_key(endpoint)).await? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| corrupt("replay request", e)),
        None => Ok(None),
    }
}

/// Records a replay request of `endpoint` for its worker.
pub async fn request_replay(
    store: &dyn Store,
    endpoint: &str,
    replay: &ReplayRequest,
) -> Result<()> {
    let bytes = serde_json::to_vec(replay).map_err(|e| corrupt("replay request", e))?;
    store
        .put(&replay_key(endpoint), Bytes::from(bytes), STATE_TTL)
        .await
}
