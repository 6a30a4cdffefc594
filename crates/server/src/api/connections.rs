//! `/v1/connections`: what the caller can reach and what each connection can do.

use std::sync::Arc;

use super::json::Json;
use axum::extract::{Path, RawQuery, State};
use serde::{Deserialize, Serialize};
use switchboard_core::{Capabilities, ConnectionHealth, Operation, ProviderKind};
use utoipa::ToSchema;

use crate::auth::Authenticated;
use crate::config::Scope;
use crate::params::QueryPairs;
use crate::problem::{ApiError, Problem, TooManyRequests, UpstreamProblems};
use crate::service::{self, AgentPage};
use crate::state::AppState;

/// One connection and what its vendor can do.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConnectionInfo {
    /// The connection id.
    pub id: String,
    /// The vendor.
    pub provider: ProviderKind,
    /// The operations the vendor supports (grey out the others).
    pub operations: Vec<Operation>,
    /// The full capabilities.
    pub capabilities: Capabilities,
    /// Circuit breaker, last error and quota.
    pub health: ConnectionHealth,
    /// When the change feed last polled the connection (null: not polled, or no pass in the
    /// last three intervals).
    #[schema(required = true)]
    #[serde(serialize_with = "switchboard_core::rfc3339::serialize_opt")]
    pub last_poll_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The connections visible to the caller.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConnectionList {
    /// Connections, by id.
    pub data: Vec<ConnectionInfo>,
}

/// List the connections you can see, with their capabilities.
#[utoipa::path(
    get,
    path = "/v1/connections",
    operation_id = "listConnections",
    tag = "connections",
    responses(
        (status = 200, description = "The connections", body = ConnectionList, links(
            ("ListAgents" = (operation_id = "listAgents", parameters(("connection" = "$response.body#/data/0/id")), description = "The agents of the first connection")),
            ("ListConversations" = (operation_id = "listConversations", parameters(("connection" = "$response.body#/data/0/id")), description = "The inbox of the first connection")),
        )),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing scope", body = Problem, content_type = "application/problem+json"),
        TooManyRequests,
    )
)]
pub async fn list_connections(
    State(state): State<Arc<AppState>>,
    caller: Authenticated,
) -> Result<Json<ConnectionList>, ApiError> {
    caller.require(Scope::Read)?;
    let polled = state.pollers.connections();
    let data = futures::future::join_all(state.visible(&caller).map(|p| async {
        let info = p.info();
        let last_poll_at = if polled.contains(&info.connection.as_str()) {
            switchboard_feed::last_poll(state.store.as_ref(), &info.connection).await
        } else {
            None
        };
        ConnectionInfo {
            id: info.connection.clone(),
            provider: info.kind.clone(),
            operations: info.capabilities.operations(),
            capabilities: info.capabilities.clone(),
            health: p.health(),
            last_poll_at,
        }
    }))
    .await;
    Ok(Json(ConnectionList { data }))
}

/// List the agents a conversation on this connection can be assigned to.
#[utoipa::path(
    get,
    path = "/v1/connections/{connection}/agents",
    operation_id = "listAgents",
    tag = "connections",
    params(
        ("connection" = String, Path, description = "Connection id", pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$", example = "shop-zipchat"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of agents", body = AgentPage, links(
            ("ListConversations" = (operation_id = "listConversations", parameters(("assignee_id" = "$response.body#/data/0/id")), description = "The conversations assigned to the first agent")),
        )),
        (status = 400, description = "Invalid cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing read scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such connection", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown query parameter", body = Problem, content_type = "application/problem+json"),
        TooManyRequests,
        (status = 501, description = "The vendor has no agents API", body = Problem, content_type = "application/problem+json"),
        UpstreamProblems,
    )
)]
pub async fn list_agents(
    State(state): State<Arc<AppState>>,
    caller: Authenticated,
    Path(connection): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<AgentPage>, ApiError> {
    caller.require(Scope::Read)?;
    let q = QueryPairs::parse(raw.as_deref());
    Ok(Json(
        service::list_agents(&state, &caller, &connection, &q).await?,
    ))
}
