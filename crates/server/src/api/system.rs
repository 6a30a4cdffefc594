//! Health endpoints.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use switchboard_core::{BreakerState, ConnectionHealth};
use utoipa::ToSchema;

use crate::auth::Operator;
use crate::problem::Problem;
use crate::state::AppState;

/// Liveness / readiness.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: &'static str,
}

/// Liveness: the process serves requests.
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "system", security(()),
    responses((status = 200, description = "Alive", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// One connection in the readiness report.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionReadiness {
    /// The connection id.
    pub id: String,
    /// Its breaker, last error and quota.
    pub health: ConnectionHealth,
}

/// Readiness, with each connection's state.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ok`; `degraded` when some connection's breaker is open; `unavailable` when all are.
    #[schema(example = "ok")]
    pub status: &'static str,
    /// Every connection.
    pub connections: Vec<ConnectionReadiness>,
}

/// Readiness: the gateway serves, and how each connection is doing. 503 only when every
/// connection's breaker is open. Needs the ops token when `[server] ops_token` is set.
#[utoipa::path(get, path = "/readyz", operation_id = "readyz", tag = "system", security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Ready (possibly degraded)", body = Readiness),
        (status = 401, description = "An ops token is configured and this is not it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests without a valid token from this address", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Every connection is failing", body = Readiness),
    ))]
pub async fn readyz(
    _: Operator,
    State(state): State<Arc<AppState>>,
) -> (StatusCode, Json<Readiness>) {
    let connections: Vec<ConnectionReadiness> = state
        .registry
        .iter()
        .map(|p| ConnectionReadiness {
            id: p.info().connection.clone(),
            health: p.health(),
        })
        .collect();
    let open = connections
        .iter()
        .filter(|c| c.health.breaker == BreakerState::Open)
        .count();
    let (code, status) = match open {
        0 => (StatusCode::OK, "ok"),
        n if n == connections.len() => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        _ => (StatusCode::OK, "degraded"),
    };
    (
        code,
        Json(Readiness {
            status,
            connections,
        }),
    )
}

/// Metrics in Prometheus text format: requests by route and status, upstream calls by
/// connection and outcome, retries, coalesced calls, cache hits, quota waits, breaker states.
/// Needs the ops token when `[server] ops_token` is set.
#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "system", security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Prometheus text exposition format", body = String, content_type = "text/plain"),
        (status = 401, description = "An ops token is configured and this is not it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests without a valid token from this address", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn metrics(_: Operator) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        crate::metrics::render(),
    )
}

/// The OpenAPI 3.1 document of this API (what `openapi/openapi.json` holds).
#[utoipa::path(get, path = "/openapi.json", operation_id = "openapi", tag = "system", security(()),
    responses((status = 200, description = "The OpenAPI document", body = Object)))]
pub async fn openapi() -> Json<serde_json::Value> {
    static SPEC: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    Json(SPEC.get_or_init(super::openapi_json).clone())
}
