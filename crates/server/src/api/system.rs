//! Health endpoints.

use std::sync::Arc;
use std::time::Duration;

use super::json::Json;
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

/// The store in the readiness report.
#[derive(Debug, Serialize, ToSchema)]
pub struct StoreReadiness {
    /// `memory`, `embedded` or `redis`.
    #[schema(example = "redis")]
    pub kind: &'static str,
    /// `ok`, or `unavailable` when it does not answer (then nothing that needs it is served).
    #[schema(example = "ok")]
    pub status: &'static str,
    /// Why it is unavailable; null when it answers.
    #[schema(required = true)]
    pub error: Option<String>,
}

/// Readiness, with the store's and each connection's state.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ok`; `degraded` when some connection's breaker is open; `unavailable` when all are, or
    /// when the store does not answer.
    #[schema(example = "ok")]
    pub status: &'static str,
    /// The store behind quotas, idempotency and the page cache.
    pub store: StoreReadiness,
    /// Every connection.
    pub connections: Vec<ConnectionReadiness>,
}

/// Readiness: the gateway serves, and how the store and each connection are doing. 503 when the
/// store does not answer or every connection's breaker is open. Needs the ops token when
/// `[server] ops_token` is set.
#[utoipa::path(get, path = "/readyz", operation_id = "readyz", tag = "system", security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Ready (possibly degraded)", body = Readiness),
        (status = 401, description = "An ops token is configured and this is not it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests without a valid token from this address", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store does not answer, or every connection is failing", body = Readiness),
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
    let ping = tokio::time::timeout(Duration::from_secs(2), state.store.ping()).await;
    let store_error = match ping {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.message().to_owned()),
        Err(_) => Some("the store did not answer within 2 s".to_owned()),
    };
    let (code, status) = match open {
        _ if store_error.is_some() => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        0 => (StatusCode::OK, "ok"),
        n if n == connections.len() => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        _ => (StatusCode::OK, "degraded"),
    };
    let store = StoreReadiness {
        kind: state.store.kind(),
        status: if store_error.is_some() {
            "unavailable"
        } else {
            "ok"
        },
        error: store_error,
    };
    (
        code,
        Json(Readiness {
            status,
            store,
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
