//! `/v1/conversations`: the merged inbox, one conversation, its messages, and the writes.

use std::sync::Arc;

use super::json::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use switchboard_core::{Conversation, Message, Status};
use utoipa::{IntoParams, ToSchema};

use super::extract::{IdempotencyKey, JsonBody, PathId};
use crate::auth::Authenticated;
use crate::config::Scope;
use crate::params::QueryPairs;
use crate::problem::{ApiError, Problem, TooManyRequests, UpstreamProblems};
use crate::service::{self, ConversationPage, ConversationQuery, MessagePage};
use crate::state::AppState;

/// Query of `GET /v1/conversations`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the query; parsed by `ConversationQuery`
pub struct ListConversationsParams {
    /// Only these connections (repeat or comma-separate).
    connection: Option<Vec<String>>,
    /// Only these vendors (repeat or comma-separate).
    provider: Option<Vec<switchboard_core::ProviderKind>>,
    /// Only these statuses (repeat or comma-separate).
    status: Option<Vec<Status>>,
    /// Only conversations answered by the bot (`ai`) or a person (`human`).
    mode: Option<switchboard_core::Mode>,
    /// Only these channels (repeat or comma-separate).
    channel: Option<Vec<switchboard_core::Channel>>,
    /// Only conversations assigned to this agent (`connection:native_id`).
    #[param(pattern = r"^[a-z0-9][a-z0-9_-]{0,62}:[^\u0000-\u001f\u007f-\u009f]+$")]
    assignee_id: Option<String>,
    /// Only conversations with activity at or after this time (RFC 3339).
    updated_since: Option<chrono::DateTime<chrono::Utc>>,
    /// Page size.
    #[param(minimum = 1, maximum = 100, default = 50)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page, with the same filters.
    cursor: Option<String>,
    /// `raw` adds each vendor's own JSON.
    #[param(inline)]
    include: Option<Include>,
}

/// Query of `GET /v1/conversations/{id}/messages`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the query; parsed in `service::list_messages`
pub struct ListMessagesParams {
    /// Page size.
    #[param(minimum = 1, maximum = 100, default = 50)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Only messages created at or after this time (RFC 3339).
    since: Option<chrono::DateTime<chrono::Utc>>,
    /// `raw` adds the vendor's own JSON.
    #[param(inline)]
    include: Option<Include>,
}

/// Query of `GET /v1/conversations/{id}`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the query
pub struct GetConversationParams {
    /// `raw` adds the vendor's own JSON.
    #[param(inline)]
    include: Option<Include>,
}

/// What `include` adds to a response.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // documents the query; parsed by `QueryPairs::include_raw`
pub enum Include {
    /// The vendor's own JSON, in `raw`.
    Raw,
}

/// Body of `PUT /v1/conversations/{id}/assignment`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"assignee_id": "shop-zipchat:7"}))]
pub struct AssignmentRequest {
    /// An agent id (`connection:native_id`, from `/v1/connections/{connection}/agents`): a person
    /// takes the conversation over from the bot. `null`: hand it back to the bot / unassign.
    /// Required, so that an empty body never hands a conversation back by accident.
    #[serde(deserialize_with = "Option::deserialize")]
    #[schema(
        required = true,
        example = "shop-zipchat:7",
        pattern = r"^[a-z0-9][a-z0-9_-]{0,62}:[^\u0000-\u001f\u007f-\u009f]+$"
    )]
    pub assignee_id: Option<String>,
}

/// Body of `POST /v1/conversations/{id}/messages`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"text": "Hi, a person here — looking into it."}))]
pub struct ReplyRequest {
    /// The reply, plain text.
    #[schema(min_length = 1, max_length = 10000)]
    pub text: String,
    /// The agent sending it (`connection:native_id`); defaults to the conversation's assignee
    /// where the vendor needs a sender.
    #[serde(default)]
    #[schema(pattern = r"^[a-z0-9][a-z0-9_-]{0,62}:[^\u0000-\u001f\u007f-\u009f]+$")]
    pub sender_id: Option<String>,
}

/// Body of `PUT /v1/conversations/{id}/status`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"status": "resolved"}))]
pub struct StatusRequest {
    /// The new status.
    pub status: Status,
}

/// List the inbox: every connection you can see, merged, latest activity first.
#[utoipa::path(
    get,
    path = "/v1/conversations",
    operation_id = "listConversations",
    tag = "conversations",
    params(ListConversationsParams),
    responses(
        (status = 200, description = "A page of conversations", body = ConversationPage, links(
            ("GetConversation" = (operation_id = "getConversation", parameters(("id" = "$response.body#/data/0/id")), description = "Read the first conversation of the page")),
            ("ListMessages" = (operation_id = "listMessages", parameters(("id" = "$response.body#/data/0/id")), description = "The messages of the first conversation of the page")),
        )),
        (status = 400, description = "Invalid cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing scope", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid parameter", body = Problem, content_type = "application/problem+json"),
        TooManyRequests,
        UpstreamProblems,
    )
)]
pub async fn list_conversations(
    State(state): State<Arc<AppState>>,
    caller: Authenticated,
    RawQuery(raw): RawQuery,
) -> Result<Json<ConversationPage>, ApiError> {
    caller.require(Scope::Read)?;
    let query = ConversationQuery::parse(&QueryPairs::parse(raw.as_deref()))?;
    Ok(Json(
        service::list_conversations(&state, &caller, query).await?,
    ))
}

/// Read one conversation.
#[utoipa::path(
    get,
    path = "/v1/conversations/{id}",
    operation_id = "getConversation",
    tag = "conversations",
    params(("id" = String, Path, description = "Conversation id (`connection:native_id`)", pattern = r"^[a-z0-9][a-z0-9_-]{0,62}:[^\u0000-\u001f\u007f-\u009f]+$", example = "shop-zipchat:12279"), GetConversationParams),
    responses(
        (status = 200, description = "The conversation", body = Conversation, links(
            ("ListMessages" = (operation_id = "listMessages", parameters(("id" = "$response.body#/id")), description = "The messages of this conversation")),
            ("ReplyToConversation" = (operation_id = "replyToConversation", parameters(("id" = "$response.body#/id")), description = "Reply in this conversation")),
            ("SetAssignment" = (operation_id = "setAssignment", parameters(("id" = "$response.body#/id")), description = "Take over or hand back this conversation")),
            ("SetStatus" = (operation_id = "setStatus", parameters(("id" = "$response.body#/id")), description = "Change the status of this conversation")),
        )),
        (status = 400, description = "Malformed id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing read scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such conversation", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid or unknown query parameter", body = Problem, content_type = "application/problem+json"),
        TooManyRequests,
        UpstreamProblems,
    )
)]
pub async fn get_conversation(
    State(state): State<Arc<AppState>>,
    caller: Authenticated,
    PathId(id): PathId,
    RawQuery(raw): RawQuery,
) -> Result<Json<Conversation>, ApiError> {
    caller.require(Scope::Read)?;
    let q = QueryPairs::parse(raw.as_deref());
    let include_raw = q.only(&["include"])?.include_raw()?;
    Ok(Json(
        service::get_conversation(&state, &caller, &id, include_raw).await?,
    ))
}

/// List a conversation's messages, newest first.
#[utoipa::path(
    get,
    path = "/v1/conversations/{id}/messages",
    operation_id = "listMessages",
    tag = "conversations",
    params(("id" = String, Path, description = "Conversation id (`connection:native_id`)", pattern = r"^[a-z0-9][a-z0-9_-]{0,62}:[^\u0000-\u001f\u007f-\u009f]+$", example = "shop-zipchat:12279"), ListMessagesParams),
    responses(
        (status = 200, description = "A page of messages", body = MessagePage),
        (status = 400, description = "Malformed id or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing read scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such conversation", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid or unknown query parameter", body = Problem, content_type = "application/problem+json"),
        TooManyRequests,
        (status = 501, description = "The vendor cannot list messages", body = Problem, content_type = "application/problem+json"),
        UpstreamProblems,
    )
)]
pub async fn list_messages(
    State(state): State<Arc<AppState>>,
    caller: Authenticated,
    PathId(id): PathId,
    RawQuery(raw): RawQuery,
) -> Result<Json<MessagePage>, ApiError> {
    caller.require(Scope::Read)?;
    let q = QueryPairs::parse(raw.as_deref());
    Ok(Json(
        service::list_messages(&state, &caller, &id, &q).await?,
    ))
}

/// Reply in a conversation. Send an `Idempotency-Key` so a retried request never sends twice.
#[utoipa::path(
    post,
    path = "/v1/conversations/{id}/messages",
    operation_id = "replyToConversation",
    tag = "conversations",
    params(
        ("id" = String, Path, description = "Conversation id (`connection:native_id`)", pattern = r"^[a-z0-9][a-z0-9_-]{0,62}:[^\u0000-\u001f\u007f-\u009f]+$", example = "shop-zipchat:12279"),
        ("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 255, pattern = "^[!-~]+$",
            description = "1-255 visible ASCII characters; a retried request with the same key never sends twice. Passed on to vendors that accept one"),
    ),
    request_body = ReplyRequest,
    responses(
        (status = 201, description = "The reply as stored", body = Message, links(
            ("ListMessages" = (operation_id = "listMessages", parameters(("id" = "$response.body#/conversation_id")), description = "The messages of its conversation")),
            ("GetConversation" = (operation_id = "getConversation", parameters(("id" = "$response.body#/conversation_id")), description = "Read its conversation")),
        )),
        (status = 400, description = "Malformed id or body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing write scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such conversation", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The conversation cannot take a reply now (e.g. `conversation_in_ai_mode`, `reply_window_closed`, `upstream_plan_limit`)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid body (e.g. `invalid_text`, `invalid_sender`)", body = Problem, content_type = "application/problem+json"),
        TooManyRequests,
        (status = 501, description = "The vendor cannot reply", body = Problem, content_type = "application/problem+json"),
        UpstreamProblems,
    )
)]
pub async fn reply_to_conversation(
    State(state): State<Arc<AppState>>,
    caller: Authenticated,
    PathId(id): PathId,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(body): JsonBody<ReplyRequest>,
) -> Result<Response, ApiError> {
    caller.require(Scope::Write)?;
    let (response, replayed) =
        match service::reply(&state, &caller.0, &id, body.text, body.sender_id, key).await {
            Ok(reply) => (
                (StatusCode::CREATED, Json(reply.message)).into_response(),
                reply.replayed,
            ),
            Err(failed) => (ApiError(failed.error).into_response(), failed.replayed),
        };
    Ok(replayed_if(response, replayed))
}

/// Marks the answer of a repeated `Idempotency-Key` (`Idempotency-Replayed: true`).
fn replayed_if(mut response: Response, replayed: bool) -> Response {
    if replayed {
        response.headers_mut().insert(
            HeaderName::from_static("idempotency-replayed"),
            HeaderValue::from_static("true"),
        );
    }
    response
}

/// Take a conversation over (assign it to an agent) or hand it back to the bot (`null`).
#[utoipa::path(
    put,
    path = "/v1/conversations/{id}/assignment",
    operation_id = "setAssignment",
    tag = "conversations",
    params(("id" = String, Path, description = "Conversation id (`connection:native_id`)", pattern = r"^[a-z0-9][a-z0-9_-]{0,62}:[^\u0000-\u001f\u007f-\u009f]+$", example = "shop-zipchat:12279")),
    request_body = AssignmentRequest,
    responses(
        (status = 200, description = "The conversation as it is now", body = Conversation, links(
            ("GetConversation" = (operation_id = "getConversation", parameters(("id" = "$response.body#/id")), description = "Read this conversation")),
            ("ListMessages" = (operation_id = "listMessages", parameters(("id" = "$response.body#/id")), description = "The messages of this conversation")),
            ("ReplyToConversation" = (operation_id = "replyToConversation", parameters(("id" = "$response.body#/id")), description = "Reply in this conversation")),
        )),
        (status = 400, description = "Malformed id or body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing write scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such conversation", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The vendor's plan does not allow this (`upstream_plan_limit`)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid body, or the agent cannot be assigned (`invalid_assignee`)", body = Problem, content_type = "application/problem+json"),
        TooManyRequests,
        (status = 501, description = "The vendor cannot assign / hand back", body = Problem, content_type = "application/problem+json"),
        UpstreamProblems,
    )
)]
pub async fn set_assignment(
    State(state): State<Arc<AppState>>,
    caller: Authenticated,
    PathId(id): PathId,
    JsonBody(body): JsonBody<AssignmentRequest>,
) -> Result<Json<Conversation>, ApiError> {
    caller.require(Scope::Write)?;
    Ok(Json(
        service::set_assignment(&state, &caller, &id, body.assignee_id.as_deref()).await?,
    ))
}

/// Change a conversation's status (resolve, close, reopen) where the vendor supports it.
#[utoipa::path(
    put,
    path = "/v1/conversations/{id}/status",
    operation_id = "setStatus",
    tag = "conversations",
    params(("id" = String, Path, description = "Conversation id (`connection:native_id`)", pattern = r"^[a-z0-9][a-z0-9_-]{0,62}:[^\u0000-\u001f\u007f-\u009f]+$", example = "shop-zipchat:12279")),
    request_body = StatusRequest,
    responses(
        (status = 200, description = "The conversation as it is now", body = Conversation, links(
            ("GetConversation" = (operation_id = "getConversation", parameters(("id" = "$response.body#/id")), description = "Read this conversation")),
            ("ListMessages" = (operation_id = "listMessages", parameters(("id" = "$response.body#/id")), description = "The messages of this conversation")),
            ("ReplyToConversation" = (operation_id = "replyToConversation", parameters(("id" = "$response.body#/id")), description = "Reply in this conversation")),
        )),
        (status = 400, description = "Malformed id or body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing write scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such conversation", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The vendor's plan does not allow this (`upstream_plan_limit`)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid body", body = Problem, content_type = "application/problem+json"),
        TooManyRequests,
        (status = 501, description = "The vendor cannot set this status", body = Problem, content_type = "application/problem+json"),
        UpstreamProblems,
    )
)]
pub async fn set_status(
    State(state): State<Arc<AppState>>,
    caller: Authenticated,
    PathId(id): PathId,
    JsonBody(body): JsonBody<StatusRequest>,
) -> Result<Json<Conversation>, ApiError> {
    caller.require(Scope::Write)?;
    Ok(Json(
        service::set_status(&state, &caller, &id, body.status).await?,
    ))
}
