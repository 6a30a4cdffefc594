//! Callers of the gateway: bearer tokens, scopes and the connections each may see.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use std::num::NonZeroU32;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::HeaderValue;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use sha2::{Digest, Sha256};
use switchboard_core::{Error, ErrorKind};
use switchboard_upstream::RateLimit;

use crate::config::{ClientConfig, Scope};
use crate::problem::ApiError;
use crate::state::AppState;

/// An authenticated caller.
#[derive(Debug)]
pub struct Caller {
    /// The client's name from the config.
    pub name: String,
    scopes: BTreeSet<Scope>,
    connections: Option<BTreeSet<String>>,
    limit: RateLimit,
    limiter: DefaultDirectRateLimiter,
}

impl Caller {
    /// Fails with 403 unless the caller has `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.scopes.contains(&scope) {
            Ok(())
        } else {
            let what = match scope {
                Scope::Read => "read",
                Scope::Write => "write",
            };
            Err(Error::new(
                ErrorKind::Forbidden,
                format!("this token lacks the `{what}` scope"),
            )
            .into())
        }
    }

    /// Whether the caller may see `connection`.
    pub fn can_see(&self, connection: &str) -> bool {
        self.connections
            .as_ref()
            .is_none_or(|allowed| allowed.contains(connection))
    }
}

/// Every client, by the SHA-256 of its token.
#[derive(Debug, Default)]
pub struct Clients {
    by_token_hash: HashMap<[u8; 32], Arc<Caller>>,
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

impl Clients {
    /// From the config's `[[clients]]` (validated: each has exactly one of token / token_sha256).
    pub fn from_config(clients: &[ClientConfig]) -> Clients {
        let mut by_token_hash = HashMap::new();
        for c in clients {
            let hash = match (&c.token_sha256, &c.token) {
                (Some(hex_hash), _) => {
                    let mut h = [0u8; 32];
                    if hex::decode_to_slice(hex_hash, &mut h).is_err() {
                        continue;
                    }
                    h
                }
                (None, Some(token)) => sha256(token.expose().as_bytes()),
                (None, None) => continue,
            };
            let Some(limiter) = inbound_limiter(c.rate_limit) else {
                continue;
            };
            by_token_hash.insert(
                hash,
                Arc::new(Caller {
                    name: c.name.clone(),
                    scopes: c.scopes.iter().copied().collect(),
                    connections: c.connections.as_ref().map(|v| v.iter().cloned().collect()),
                    limit: c.rate_limit,
                    limiter,
                }),
            );
        }
        Clients { by_token_hash }
    }

    /// The caller holding `token`.
    pub fn authenticate(&self, token: &str) -> Option<Arc<Caller>> {
        self.by_token_hash.get(&sha256(token.as_bytes())).cloned()
    }
}

/// A client's quota: the whole quota may come at once, and it refills evenly over the window.
fn inbound_limiter(limit: RateLimit) -> Option<DefaultDirectRateLimiter> {
    let period = Duration::from_secs(u64::from(limit.per_seconds)) / limit.requests.max(1);
    let quota = Quota::with_period(period)?.allow_burst(NonZeroU32::new(limit.requests)?);
    Some(RateLimiter::direct(quota))
}

/// A caller over its quota: 429 problem+json with `Retry-After` and `X-RateLimit-*`.
#[derive(Debug)]
pub struct OverQuota {
    limit: RateLimit,
    retry_after_secs: u64,
}

impl IntoResponse for OverQuota {
    fn into_response(self) -> Response {
        let error = Error::new(
            ErrorKind::TooManyRequests,
            format!(
                "this token made more than {} requests in {} s; retry later",
                self.limit.requests, self.limit.per_seconds
            ),
        )
        .with_retry_after(Duration::from_secs(self.retry_after_secs));
        let mut response = ApiError(error).into_response();
        let headers = response.headers_mut();
        headers.insert("x-ratelimit-limit", HeaderValue::from(self.limit.requests));
        headers.insert("x-ratelimit-remaining", HeaderValue::from(0));
        headers.insert(
            "x-ratelimit-reset",
            HeaderValue::from(self.retry_after_secs),
        );
        response
    }
}

impl Caller {
    /// Takes one request from the caller's quota.
    fn admit(&self) -> Result<(), OverQuota> {
        let Err(not_until) = self.limiter.check() else {
            return Ok(());
        };
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        Err(OverQuota {
            limit: self.limit,
            retry_after_secs: secs.max(1),
        })
    }
}

fn unauthenticated(message: &str) -> ApiError {
    Error::new(ErrorKind::Unauthenticated, message).into()
}

/// The authenticated caller of a request (an extractor).
#[derive(Debug, Clone)]
pub struct Authenticated(pub Arc<Caller>);

impl std::ops::Deref for Authenticated {
    type Target = Caller;

    fn deref(&self) -> &Caller {
        &self.0
    }
}

impl FromRequestParts<Arc<AppState>> for Authenticated {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Response> {
        let caller = authenticate(parts, state).map_err(IntoResponse::into_response)?;
        caller.admit().map_err(IntoResponse::into_response)?;
        Ok(caller)
    }
}

fn authenticate(parts: &Parts, state: &AppState) -> Result<Authenticated, ApiError> {
    let header = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| unauthenticated("send `Authorization: Bearer <token>`"))?;
    let token = header
        .to_str()
        .ok()
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|t| !t.is_empty())
        .ok_or_else(|| unauthenticated("the Authorization header must be `Bearer <token>`"))?;
    state
        .clients
        .authenticate(token)
        .map(Authenticated)
        .ok_or_else(|| unauthenticated("the bearer token is not valid"))
}
