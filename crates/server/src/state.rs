//! What every handler shares.

use std::sync::Arc;
use std::time::Duration;

use switchboard_core::cursor::CursorCodec;
use switchboard_core::{Error, Provider, ids};
use switchboard_feed::{EventLog, FeedConfig, PollerHandle};
use switchboard_store::Store;

use crate::auth::{Caller, Clients, Unauthenticated};
use crate::registry::Registry;
use crate::traversal::LocalPages;
use crate::webhooks::Webhooks;

/// The gateway's shared state.
#[derive(Debug)]
pub struct AppState {
    /// The connections.
    pub registry: Registry,
    /// The callers.
    pub clients: Clients,
    /// Signs and verifies cursors.
    pub cursors: CursorCodec,
    /// Shared state (idempotency records; the connections keep their quotas and pages there).
    pub store: Arc<dyn Store>,
    /// The change feed's event log, in `store`.
    pub feed: EventLog,
    /// The webhook endpoints and their workers (started by `Webhooks::start`).
    pub webhooks: Webhooks,
    /// The change feed's pollers on this replica (connections with `poll_interval_secs`).
    pub pollers: Pollers,
    /// Origins whose browser apps may call the gateway (CORS).
    pub allowed_origins: Vec<String>,
    /// How long a multi-connection page waits for a slow connection.
    pub page_deadline: Duration,
    /// The upstream pages inbox traversals reached, kept for their next pages (a zero TTL:
    /// not kept).
    pub traversal_pages: LocalPages,
    /// The SHA-256 of the token `/readyz` and `/metrics` require, if any.
    pub ops_token: Option<[u8; 32]>,
    /// Throttles requests without a valid token, per client IP.
    pub unauthenticated: Unauthenticated,
    /// How long a stream ticket stays valid.
    pub ticket_ttl: Duration,
    /// Whether `/console` is served.
    pub console: bool,
}

/// The pollers a replica runs; they stop when this is dropped.
#[derive(Debug, Default)]
pub struct Pollers {
    handles: Vec<PollerHandle>,
}

impl Pollers {
    /// Pollers from their handles.
    pub fn new(handles: Vec<PollerHandle>) -> Pollers {
        Pollers { handles }
    }

    /// The connections polled, in start order.
    pub fn connections(&self) -> Vec<&str> {
        self.handles.iter().map(PollerHandle::connection).collect()
    }

    /// The lease holder name of each poller, in start order.
    pub fn holders(&self) -> Vec<&str> {
        self.handles.iter().map(PollerHandle::holder).collect()
    }

    /// Stops every poller at once without giving its lease up (as a crash would): another
    /// replica takes over when the leases end.
    pub fn abort_all(&self) {
        for handle in &self.handles {
            handle.abort();
        }
    }
}

impl AppState {
    /// State from its parts; the event log is in `store` with the default retention.
    pub fn new(
        registry: Registry,
        clients: Clients,
        cursor_secret: &[u8],
        store: Arc<dyn Store>,
    ) -> AppState {
        AppState {
            registry,
            clients,
            cursors: CursorCodec::new(cursor_secret),
            feed: EventLog::new(store.clone(), FeedConfig::default()),
            webhooks: Webhooks::default(),
            pollers: Pollers::default(),
            store,
            allowed_origins: Vec::new(),
            page_deadline: Duration::from_millis(2500),
            traversal_pages: LocalPages::new(
                Duration::from_secs(300),
                crate::traversal::LOCAL_CONVERSATIONS,
            ),
            ops_token: None,
            unauthenticated: Unauthenticated::new(
                crate::config::default_unauthenticated_rate_limit(),
            ),
            ticket_ttl: crate::tickets::DEFAULT_TICKET_TTL,
            console: true,
        }
    }

    /// The newest event's cursor (`None`: the log is empty).
    pub async fn newest_event(&self) -> Result<Option<switchboard_feed::LogId>, Error> {
        self.feed.newest().await
    }

    /// The connections `caller` may see, in id order.
    pub fn visible<'a>(
        &'a self,
        caller: &'a Caller,
    ) -> impl Iterator<Item = &'a Arc<dyn Provider>> + 'a {
        self.registry
            .iter()
            .filter(|p| caller.can_see(&p.info().connection))
    }

    /// The connection `connection` if `caller` may see it; otherwise 404, exactly as if it did not
    /// exist.
    pub fn connection(
        &self,
        caller: &Caller,
        connection: &str,
    ) -> Result<&Arc<dyn Provider>, Error> {
        self.registry
            .get(connection)
            .filter(|_| caller.can_see(connection))
            .ok_or_else(|| Error::not_found(format!("no connection `{connection}`")))
    }

    /// Resolves a resource id `"{connection}:{native_id}"` to its connection and native id.
    /// A malformed id is 400 `invalid_id`; an unknown or invisible connection is 404.
    pub fn resolve<'a>(
        &self,
        caller: &Caller,
        id: &'a str,
        what: &str,
    ) -> Result<(&Arc<dyn Provider>, &'a str), Error> {
        let (connection, native) = ids::split(id).ok_or_else(|| {
            Error::new(
                switchboard_core::ErrorKind::InvalidRequest,
                format!("`{id}` is not a {what} id; ids look like `connection:native_id`"),
            )
            .with_code("invalid_id")
            .with_parameter("id")
        })?;
        let provider = self
            .connection(caller, connection)
            .map_err(|_| Error::not_found(format!("no {what} `{id}`")))?;
        Ok((provider, native))
    }
}
