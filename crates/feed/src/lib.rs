//! Switchboard's change feed: the event log every consumer reads (`GET /v1/events`, Server-Sent
//! Events, webhooks), kept in the gateway's store.
//!
//! [`EventLog`] appends events with increasing ids (`"{ms}-{seq}"`, also the consumers' cursor),
//! keeps them for the configured retention, pages them oldest first and wakes subscribers when
//! the log grows, on this replica at once and on the others within a quarter second.
#![deny(missing_docs)]

mod log;

pub use log::{DEFAULT_LOG, DEFAULT_RETENTION, EventLog, EventPage, FeedConfig, TAIL_EVERY};
pub use switchboard_core::{Event, EventData, EventType, PerformedBy};
pub use switchboard_upstream::LogId;
