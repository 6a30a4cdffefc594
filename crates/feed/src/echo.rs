//! Echoes of gateway writes: a write made through the gateway is appended to the log at once
//! (stamped `performed_by`), and remembered for a while per conversation, so the poller that later
//! sees its effect at the vendor takes it into its snapshot instead of reporting it again.

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchboard_core::{Conversation, Message, Mode, Result, Status, ids};
use switchboard_store::Store;

/// How long a gateway write's echo is kept: far longer than a poll interval.
pub const ECHO_TTL: Duration = Duration::from_secs(10 * 60);
/// The most echoes kept per conversation (the oldest go first).
const MAX_ECHOES: usize = 20;

/// A write made through the gateway, as it is recorded.
#[derive(Debug, Clone, Copy)]
pub enum GatewayWrite<'a> {
    /// An assignment (take over) or unassignment (hand back): the conversation as it is now.
    Assignment(&'a Conversation),
    /// A status change: the conversation as it is now.
    Status(&'a Conversation),
    /// A reply: the message as stored.
    Reply(&'a Message),
}

/// One remembered write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Echo {
    /// A random id, so a poller applies each echo once.
    pub id: u64,
    /// What was written.
    pub write: EchoedWrite,
}

/// What a remembered write changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum EchoedWrite {
    /// The conversation's compared fields after an assignment or status change.
    Conversation {
        /// `last_activity_at`.
        activity: DateTime<Utc>,
        /// `status`.
        status: Status,
        /// `mode`.
        mode: Option<Mode>,
        /// The assignee's native id.
        assignee: Option<String>,
        /// `message_count`.
        message_count: Option<u64>,
    },
    /// A reply.
    Message {
        /// Its native id.
        id: String,
        /// Its `created_at`.
        created_at: DateTime<Utc>,
    },
}

/// The store key of a conversation's echoes.
pub fn echo_key(connection: &str, native: &str) -> String {
    format!("feed:echo:{connection}:{native}")
}

/// The echoes remembered for a conversation, oldest first (none if unreadable or expired).
pub async fn load(store: &dyn Store, connection: &str, native: &str) -> Result<Vec<Echo>> {
    Ok(store
        .get(&echo_key(connection, native))
        .await?
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default())
}

/// Remembers `write` for its conversation for [`ECHO_TTL`].
pub async fn remember(store: &dyn Store, write: GatewayWrite<'_>) -> Result<()> {
    let (connection, native, echoed) = match write {
        GatewayWrite::Assignment(c) | GatewayWrite::Status(c) => (
            c.connection.as_str(),
            c.native_id.as_str(),
            EchoedWrite::Conversation {
                activity: c.last_activity_at,
                status: c.status,
                mode: c.mode,
                assignee: c.assignee.as_ref().map(|a| a.native_id.clone()),
                message_count: c.message_count,
            },
        ),
        GatewayWrite::Reply(m) => {
            let native =
                ids::split(&m.conversation_id).map_or(m.conversation_id.as_str(), |(_, n)| n);
            (
                m.connection.as_str(),
                native,
                EchoedWrite::Message {
                    id: m.native_id.clone(),
                    created_at: m.created_at,
                },
            )
        }
    };
    let mut echoes = load(store, connection, native).await?;
    echoes.push(Echo {
        id: random_id(),
        write: echoed,
    });
    let excess = echoes.len().saturating_sub(MAX_ECHOES);
    echoes.drain(..excess);
    let body = serde_json::to_vec(&echoes).unwrap_or_default();
    store
        .put(&echo_key(connection, native), Bytes::from(body), ECHO_TTL)
        .await
}

/// A random 64-bit id from the standard library's randomly keyed hasher.
pub(crate) fn random_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    hasher.finish()
}
