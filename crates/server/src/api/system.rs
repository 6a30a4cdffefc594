//! Health endpoints.

use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

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

/// Readiness: the configuration is loaded and every connection is built.
#[utoipa::path(get, path = "/readyz", operation_id = "readyz", tag = "system", security(()),
    responses((status = 200, description = "Ready", body = Health)))]
pub async fn readyz() -> Json<Health> {
    Json(Health { status: "ok" })
}
