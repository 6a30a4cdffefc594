//! Callers of the gateway: bearer tokens, scopes and the connections each may see.

use std::collections::{BTreeSet, HashMap};
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use sha2::{Digest, Sha256};
use switchboard_core::quota_state::{Ledger, QuotaState};
use switchboard_core::{Error, ErrorKind};
use switchboard_store::RateLimit;
use tower::util::BoxCloneSyncService;
use tower::{Layer, ServiceExt};
use tower_governor::GovernorError;
use tower_governor::GovernorLayer;
use tower_governor::governor::{GovernorConfig, GovernorConfigBuilder};
use tower_governor::key_extractor::KeyExtractor;

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
    limiter: ClientLimiter,
}

/// A client's quota, telling what is left after each request.
type ClientLimiter = RateLimiter<NotKeyed, InMemoryState, DefaultClock, StateInformationMiddleware>;

impl Caller {
    /// Fails with 403 unless the caller has `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.scopes.contains(&scope) {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::Forbidden,
                format!("this token lacks the `{}` scope", scope.as_str()),
            )
            .into())
        }
    }

    /// Whether the caller may see every connection (no `connections` list).
    pub fn sees_every_connection(&self) -> bool {
        self.connections.is_none()
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
    by_name: HashMap<String, Arc<Caller>>,
}

/// The SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

impl Clients {
    /// From the config's `[[clients]]` (validated: each has exactly one of token / token_sha256).
    pub fn from_config(clients: &[ClientConfig]) -> Clients {
        let mut by_token_hash = HashMap::new();
        let mut by_name = HashMap::new();
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
            let caller = Arc::new(Caller {
                name: c.name.clone(),
                scopes: c.scopes.iter().copied().collect(),
                connections: c.connections.as_ref().map(|v| v.iter().cloned().collect()),
                limit: c.rate_limit,
                limiter,
            });
            by_name.insert(c.name.clone(), caller.clone());
            by_token_hash.insert(hash, caller);
        }
        Clients {
            by_token_hash,
            by_name,
        }
    }

    /// The client named `name` in `[[clients]]` (a stream ticket names its client).
    pub fn by_name(&self, name: &str) -> Option<Arc<Caller>> {
        self.by_name.get(name).cloned()
    }

    /// The caller holding `token`.
    pub fn authenticate(&self, token: &str) -> Option<Arc<Caller>> {
        self.by_token_hash.get(&sha256(token.as_bytes())).cloned()
    }
}

/// A client's quota: the whole quota may come at once, and it refills evenly over the window.
fn inbound_limiter(limit: RateLimit) -> Option<ClientLimiter> {
    let period = Duration::from_secs(u64::from(limit.per_seconds)) / limit.requests.max(1);
    let quota = Quota::with_period(period)?.allow_burst(NonZeroU32::new(limit.requests)?);
    Some(RateLimiter::direct(quota).with_middleware::<StateInformationMiddleware>())
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
    /// Takes one request from the caller's quota, and notes what is left in the request's
    /// ledger (the answer's `RateLimit` header fields).
    pub(crate) fn admit(&self) -> Result<(), OverQuota> {
        let (requests, window) = (self.limit.requests, self.limit.per_seconds);
        let not_until = match self.limiter.check() {
            Ok(snapshot) => {
                let left = snapshot.remaining_burst_capacity();
                Ledger::note_caller(QuotaState::refilling(requests, window, left));
                return Ok(());
            }
            Err(not_until) => not_until,
        };
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        let secs = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
        let mut state = QuotaState::refilling(requests, window, 0);
        state.reset_secs = state.reset_secs.max(secs);
        Ledger::note_caller(state);
        Err(OverQuota {
            limit: self.limit,
            retry_after_secs: secs,
        })
    }
}

fn unauthenticated(message: &str) -> ApiError {
    Error::new(ErrorKind::Unauthenticated, message).into()
}

/// The client IP a request came from (the peer address; loopback when served in-process).
#[derive(Debug, Clone, Copy)]
struct PeerIp;

impl KeyExtractor for PeerIp {
    type Key = IpAddr;

    fn extract<T>(&self, request: &axum::http::Request<T>) -> Result<IpAddr, GovernorError> {
        Ok(request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |c| c.0.ip()))
    }
}

/// Requests without a valid token, throttled per client IP (`tower_governor`), so guessing
/// tokens is slow: past the limit they get `429 rate_limited` with `Retry-After` instead of 401.
/// Authenticated callers never pass through it; they have their own quotas.
#[derive(Clone)]
pub struct Unauthenticated {
    gate: BoxCloneSyncService<Request, Response, Infallible>,
    config: Arc<
        GovernorConfig<
            PeerIp,
            governor::middleware::NoOpMiddleware<governor::clock::QuantaInstant>,
        >,
    >,
    checks: Arc<AtomicU32>,
}

impl std::fmt::Debug for Unauthenticated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unauthenticated").finish_non_exhaustive()
    }
}

impl Unauthenticated {
    /// `limit` requests per window per IP, the whole of it usable at once.
    pub fn new(limit: RateLimit) -> Unauthenticated {
        let requests = limit.requests.max(1);
        let period = Duration::from_secs(u64::from(limit.per_seconds.max(1))) / requests;
        let config = Arc::new(
            GovernorConfigBuilder::default()
                .key_extractor(PeerIp)
                .period(period)
                .burst_size(requests)
                .finish()
                .unwrap_or_else(|| {
                    // Unreachable: both are above zero.
                    GovernorConfigBuilder::default()
                        .key_extractor(PeerIp)
                        .finish()
                        .unwrap_or_else(|| unreachable!())
                }),
        );
        // Admitted requests reach a service that only says so; the caller then answers 401.
        let admitted = tower::service_fn(|_: Request| async {
            Ok::<_, Infallible>(StatusCode::UNAUTHORIZED.into_response())
        });
        let gate = GovernorLayer::new(config.clone())
            .error_handler(move |error| throttled(error, limit))
            .layer(admitted);
        Unauthenticated {
            gate: BoxCloneSyncService::new(gate),
            config,
            checks: Arc::new(AtomicU32::new(0)),
        }
    }

    /// Counts a request that failed authentication; `Err` holds the 429 to send instead of 401.
    pub async fn check(&self, parts: &Parts) -> Result<(), Response> {
        // Forget IPs whose budget is whole again, so the table stays bounded.
        if self.checks.fetch_add(1, Ordering::Relaxed) % 1024 == 1023 {
            self.config.limiter().retain_recent();
        }
        let mut request = Request::new(Body::empty());
        if let Some(peer) = parts.extensions.get::<ConnectInfo<SocketAddr>>() {
            request.extensions_mut().insert(*peer);
        }
        match self.gate.clone().oneshot(request).await {
            Ok(response) if response.status() == StatusCode::UNAUTHORIZED => Ok(()),
            Ok(response) => Err(response),
            Err(never) => match never {},
        }
    }
}

fn throttled(error: GovernorError, limit: RateLimit) -> Response {
    let wait = match error {
        GovernorError::TooManyRequests { wait_time, .. } => wait_time.max(1),
        _ => 1,
    };
    let error = Error::new(
        ErrorKind::TooManyRequests,
        format!(
            "too many requests without a valid token from this address (at most {} in {} s); retry later",
            limit.requests, limit.per_seconds
        ),
    )
    .with_retry_after(Duration::from_secs(wait));
    ApiError(error).into_response()
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
        let caller = match authenticate(parts, state) {
            Ok(caller) => caller,
            Err(error) => {
                state.unauthenticated.check(parts).await?;
                return Err(error.into_response());
            }
        };
        caller.admit().map_err(IntoResponse::into_response)?;
        Ok(caller)
    }
}

/// The bearer token of a request.
fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let header = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| unauthenticated("send `Authorization: Bearer <token>`"))?;
    header
        .to_str()
        .ok()
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|t| !t.is_empty())
        .ok_or_else(|| unauthenticated("the Authorization header must be `Bearer <token>`"))
}

fn authenticate(parts: &Parts, state: &AppState) -> Result<Authenticated, ApiError> {
    state
        .clients
        .authenticate(bearer(parts)?)
        .map(Authenticated)
        .ok_or_else(|| unauthenticated("the bearer token is not valid"))
}

/// An operator of the gateway: the bearer of `[server] ops_token`, when one is configured
/// (anyone otherwise). Guards `/readyz` and `/metrics`.
#[derive(Debug, Clone, Copy)]
pub struct Operator;

impl FromRequestParts<Arc<AppState>> for Operator {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Response> {
        let Some(expected) = state.ops_token else {
            return Ok(Operator);
        };
        let valid = bearer(parts).and_then(|token| {
            subtle_eq(&sha256(token.as_bytes()), &expected)
                .then_some(Operator)
                .ok_or_else(|| unauthenticated("this endpoint needs the gateway's ops token"))
        });
        match valid {
            Ok(operator) => Ok(operator),
            Err(error) => {
                state.unauthenticated.check(parts).await?;
                Err(error.into_response())
            }
        }
    }
}

/// Compares two hashes in constant time.
fn subtle_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
