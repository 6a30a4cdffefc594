//! `/v1/webhooks`: each endpoint's delivery state, and replays. Needs the `admin` scope; a
//! client limited to some connections sees only the endpoints limited to those connections.

use std::sync::Arc;

use super::json::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchboard_core::{Error, Event, EventType};
use utoipa::ToSchema;

use super::events::{FeedProblems, START, cursor_text, parse_cursor};
use crate::auth::{Authenticated, Caller};
use crate::config::Scope;
use crate::params::QueryPairs;
use crate::problem::{ApiError, Problem, TooManyRequests};
use crate::state::AppState;
use crate::webhooks::{BACKLOG_CAP, Endpoint, OutboxState};

/// Where an endpoint's deliveries stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Delivering (or caught up).
    Active,
    /// The next event failed and will be tried again at `next_attempt_at`.
    Retrying,
    /// Stopped (the receiver answered 410 Gone, or every attempt of the schedule failed) until
    /// a replay.
    Disabled,
}

/// One webhook endpoint.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookEndpoint {
    /// The endpoint's id from `[[webhooks]]`.
    #[schema(example = "crm")]
    pub id: String,
    /// Where events go: scheme, host, port and path (credentials and query left out).
    #[schema(example = "https://hooks.example.com/switchboard")]
    pub url: String,
    /// The event types it receives.
    pub events: Vec<EventType>,
    /// The connections whose events it receives; null: every connection.
    #[schema(required = true)]
    pub connections: Option<Vec<String>>,
    /// Delivering, retrying or disabled.
    pub state: DeliveryState,
    /// The last event delivered or passed over (`0-0`: the log's beginning); delivery goes on
    /// after it.
    #[schema(example = "1767225600000-3")]
    pub cursor: String,
    /// Failed attempts of the next event.
    pub attempts: u32,
    /// When the next event is tried again; null unless retrying.
    #[schema(required = true)]
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When the last attempt was made.
    #[schema(required = true)]
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// What went wrong last (never the receiver's answer body).
    #[schema(required = true)]
    pub last_error: Option<String>,
    /// When it went wrong.
    #[schema(required = true)]
    pub last_error_at: Option<DateTime<Utc>>,
    /// When an event was last delivered.
    #[schema(required = true)]
    pub last_success_at: Option<DateTime<Utc>>,
    /// Why deliveries stopped, when disabled.
    #[schema(required = true)]
    pub disabled_reason: Option<String>,
    /// Events waiting for this endpoint, counted up to 1000.
    pub backlog: u32,
    /// Whether there are at least 1000 (the count stopped there).
    pub backlog_capped: bool,
}

/// The webhook endpoints you may see.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookList {
    /// Endpoints, in config order.
    pub data: Vec<WebhookEndpoint>,
}

/// Whether `caller` may see `endpoint`: every connection it delivers must be one the caller
/// sees.
fn visible(caller: &Caller, endpoint: &Endpoint) -> bool {
    match &endpoint.connections {
        Some(connections) => connections.iter().all(|c| caller.can_see(c)),
        None => caller.sees_every_connection(),
    }
}

fn public_url(url: &url::Url) -> String {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_query(None);
    url.set_fragment(None);
    url.to_string()
}

fn view(endpoint: &Endpoint, state: OutboxState, backlog: usize) -> WebhookEndpoint {
    let delivery = match (&state.disabled, state.attempts) {
        (Some(_), _) => DeliveryState::Disabled,
        (None, 0) => DeliveryState::Active,
        (None, _) => DeliveryState::Retrying,
    };
    WebhookEndpoint {
        id: endpoint.config.id.clone(),
        url: public_url(&endpoint.config.url),
        events: endpoint.types.clone(),
        connections: endpoint
            .connections
            .as_ref()
            .map(|c| c.iter().cloned().collect()),
        state: delivery,
        cursor: state.cursor.clone().unwrap_or_else(|| START.to_owned()),
        attempts: state.attempts,
        next_attempt_at: state.next_attempt_at,
        last_attempt_at: state.last_attempt_at,
        last_error: state.last_error,
        last_error_at: state.last_error_at,
        last_success_at: state.last_success_at,
        disabled_reason: state.disabled,
        backlog: u32::try_from(backlog).unwrap_or(u32::MAX),
        backlog_capped: backlog >= BACKLOG_CAP,
    }
}

/// List the webhook endpoints with their delivery state and backlog (`admin` scope).
#[utoipa::path(
    get,
    path = "/v1/webhooks",
    operation_id = "listWebhooks",
    tag = "webhooks",
    responses(
        (status = 200, description = "The endpoints", body = WebhookList),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing admin scope", body = Problem, content_type = "application/problem+json"),
        TooManyRequests,
        (status = 503, description = "The store does not answer (`store_unavailable`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_webhooks(
    State(state): State<Arc<AppState>>,
    caller: Authenticated,
) -> Result<Json<WebhookList>, ApiError> {
    caller.require(Scope::Admin)?;
    let mut data = Vec::new();
    for endpoint in state.webhooks.endpoints() {
        if visible(&caller, endpoint) {
            let (outbox, backlog) = state.webhooks.status(endpoint, &state.feed).await?;
            data.push(view(endpoint, outbox, backlog));
        }
    }
    Ok(Json(WebhookList { data }))
}

/// Deliver again: rewind the endpoint to `after` (or, without it, retry the event it stopped
/// at) and re-enable it (`admin` scope). The endpoint's worker applies it within seconds.
#[utoipa::path(
    post,
    path = "/v1/webhooks/{id}/replay",
    operation_id = "replayWebhook",
    tag = "webhooks",
    params(
        ("id" = String, Path, description = "Webhook id", pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$", example = "crm"),
        ("after" = Option<String>, Query, nullable = false, pattern = r"^[0-9]{1,20}-[0-9]{1,20}$", example = "1767225600000-0",
            description = "Deliver the events after this cursor again (`0-0`: every event kept); omitted: resume at the event that failed"),
    ),
    responses(
        (status = 202, description = "The replay is recorded; the endpoint as it will be", body = WebhookEndpoint),
        (status = 404, description = "No such webhook", body = Problem, content_type = "application/problem+json"),
        FeedProblems,
        TooManyRequests,
    )
)]
pub async fn replay_webhook(
    State(state): State<Arc<AppState>>,
    caller: Authenticated,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<(StatusCode, Json<WebhookEndpoint>), ApiError> {
    caller.require(Scope::Admin)?;
    let q = QueryPairs::parse(raw.as_deref());
    q.only(&["after"])?;
    let endpoint = state
        .webhooks
        .get(&id)
        .filter(|e| visible(&caller, e))
        .ok_or_else(|| Error::not_found(format!("no webhook `{id}`")))?;
    let after = q
        .single("after")?
        .map(|v| parse_cursor(v, "after"))
        .transpose()?;
    if let Some(Some(cursor)) = after {
        // 410 when it is past the retention.
        state.feed.page(Some(cursor), 1, &|_: &Event| false).await?;
    }
    let rewind = after.is_some();
    let after = after.flatten().map(|c| cursor_text(Some(c)));
    state
        .webhooks
        .replay(endpoint, &state.feed, after, rewind)
        .await?;
    let (outbox, backlog) = state.webhooks.status(endpoint, &state.feed).await?;
    Ok((StatusCode::ACCEPTED, Json(view(endpoint, outbox, backlog))))
}
