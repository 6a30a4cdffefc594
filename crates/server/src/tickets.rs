//! Stream tickets: short-lived, single-use stand-ins for a bearer token, for a browser's
//! `EventSource` (which cannot send headers). A ticket is bound to its caller and filters, kept in
//! the shared store only as its SHA-256 (so any replica redeems it, and a store dump reveals
//! none), taken from the store atomically on use, and never logged: the access log records the
//! path only, never the query.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchboard_core::{Error, ErrorKind, EventType};

use crate::auth::{Authenticated, sha256};
use crate::params::QueryPairs;
use crate::problem::ApiError;
use crate::state::AppState;

/// How long a ticket stays valid unless `[server] stream_ticket_ttl_secs` says otherwise.
pub const DEFAULT_TICKET_TTL: Duration = Duration::from_secs(30);
/// The longest a ticket may stay valid.
pub const MAX_TICKET_TTL: Duration = Duration::from_secs(60);
/// The prefix of every ticket, so one is recognised in a leak report.
const PREFIX: &str = "sbt_";

/// What a ticket stands for, as stored under its hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    /// The client's name from `[[clients]]`.
    pub client: String,
    /// The event types the stream keeps (empty: every type).
    pub types: Vec<EventType>,
    /// The connections the stream keeps (empty: every connection the client sees).
    pub connections: Vec<String>,
    /// When the ticket stops being valid, in Unix milliseconds.
    pub expires_ms: i64,
}

/// A freshly minted ticket.
#[derive(Debug)]
pub struct Minted {
    /// The ticket itself: shown once, stored only hashed.
    pub ticket: String,
    /// When it stops being valid.
    pub expires_at: DateTime<Utc>,
}

fn store_key(ticket: &str) -> String {
    format!("stream-ticket:{}", hex::encode(sha256(ticket.as_bytes())))
}

/// Mints a ticket for `client` with its filters, valid for `ttl` (at most [`MAX_TICKET_TTL`]).
pub async fn mint(
    state: &AppState,
    client: &str,
    types: Vec<EventType>,
    connections: Vec<String>,
) -> Result<Minted, Error> {
    let ttl = state.ticket_ttl.min(MAX_TICKET_TTL);
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| {
        Error::new(
            ErrorKind::Unexpected,
            format!("cannot read the system's random source: {e}"),
        )
    })?;
    let ticket = format!(
        "{PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
    );
    let expires_at = Utc::now() + chrono::Duration::from_std(ttl).unwrap_or_default();
    let grant = Grant {
        client: client.to_owned(),
        types,
        connections,
        expires_ms: expires_at.timestamp_millis(),
    };
    let body = serde_json::to_vec(&grant).map_err(|e| {
        Error::new(ErrorKind::Unexpected, "a ticket could not be written").with_source(e)
    })?;
    state
        .store
        .put(&store_key(&ticket), Bytes::from(body), ttl)
        .await?;
    Ok(Minted { ticket, expires_at })
}

/// Takes `ticket` from the store: its grant if it was valid, `None` if unknown, used or expired.
/// Either way the ticket is spent.
pub async fn redeem(state: &AppState, ticket: &str) -> Result<Option<Grant>, Error> {
    if !ticket.starts_with(PREFIX) {
        return Ok(None);
    }
    let Some(stored) = state.store.take_once(&store_key(ticket)).await? else {
        return Ok(None);
    };
    Ok(serde_json::from_slice::<Grant>(&stored)
        .ok()
        .filter(|g| g.expires_ms > Utc::now().timestamp_millis()))
}

/// The caller of `GET /v1/events/stream`: by its bearer token, or by a `ticket` in the query
/// (the ticket's filters then apply).
#[derive(Debug)]
pub struct Subscriber {
    /// Who is reading.
    pub caller: Authenticated,
    /// The ticket's grant, when it came with one.
    pub grant: Option<Grant>,
}

impl FromRequestParts<Arc<AppState>> for Subscriber {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Response> {
        let query = QueryPairs::parse(parts.uri.query());
        let ticket = match query.single("ticket") {
            Ok(Some(ticket)) => ticket.to_owned(),
            Ok(None) => {
                let caller = Authenticated::from_request_parts(parts, state).await?;
                return Ok(Subscriber {
                    caller,
                    grant: None,
                });
            }
            Err(e) => return Err(ApiError(e).into_response()),
        };
        let grant = redeem(state, &ticket)
            .await
            .map_err(|e| ApiError(e).into_response())?;
        let caller = grant
            .as_ref()
            .and_then(|g| state.clients.by_name(&g.client));
        let (Some(grant), Some(caller)) = (grant, caller) else {
            state.unauthenticated.check(parts).await?;
            return Err(ApiError(Error::new(
                ErrorKind::Unauthenticated,
                "the stream ticket is unknown, used or expired; mint a new one with POST /v1/events/tickets",
            ))
            .into_response());
        };
        caller.admit().map_err(IntoResponse::into_response)?;
        Ok(Subscriber {
            caller: Authenticated(caller),
            grant: Some(grant),
        })
    }
}
