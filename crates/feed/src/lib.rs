//! Switchboard's change feed: the event log every consumer reads (`GET /v1/events`, Server-Sent
//! Events, webhooks), kept in the gateway's store.
//!
//! [`EventLog`] appends events with increasing ids (`"{ms}-{seq}"`, also the consumers' cursor),
//! keeps them for the configured retention, pages them oldest first and wakes subscribers when
//! the log grows, on this replica at once and on the others within a quarter second.
//!
//! A poller per connection ([`spawn_poller`]) reads the connection's inbox newest first through
//! its `Provider` (so quotas, the breaker and the page cache apply), within a share of the vendor's
//! quota, and appends `conversation.created`, `conversation.updated` and `message.created` events;
//! one replica polls a connection at a time (a lease with a fencing token in the store). Writes
//! made through the gateway are appended at once by [`EventLog::record_write`], stamped
//! `performed_by`, and the poller does not report them again.
#![deny(missing_docs)]

pub mod detect;
mod echo;
mod log;
mod poller;
pub mod snapshot;

pub use echo::{ECHO_TTL, GatewayWrite};
pub use log::{DEFAULT_LOG, DEFAULT_RETENTION, EventLog, EventPage, FeedConfig, TAIL_EVERY};
pub use poller::{
    LEASE_INTERVALS, PollSettings, PollerHandle, QuotaShare, SNAPSHOT_TTL, UNDOCUMENTED_QUOTA,
    last_poll, lease_key, snapshot_key, spawn_poller,
};
pub use switchboard_core::{Event, EventData, EventType, PerformedBy};
pub use switchboard_store::LogId;
