//! Zipchat's routes: auth and the rate limit, then the Backend API's endpoints.

use super::*;
use crate::json::ok_json;

/// The integration (chat) a request authenticated as.
#[derive(Debug, Clone, Copy)]
pub(super) struct Integration(u64);

/// Checks the key and its integration's quota, and stamps `X-RateLimit-*` on every response.
pub(super) async fn gate(
    State(world): State<Shared>,
    mut request: Request,
    next: Next,
) -> Response {
    let chat = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(chat_of_key);
    let Some(chat) = chat else {
        return error(StatusCode::UNAUTHORIZED, "Unauthorized");
    };
    let now = Utc::now().timestamp();
    let (allowed, limit, remaining, reset) = {
        let Ok(mut w) = world.lock() else {
            return error(StatusCode::INTERNAL_SERVER_ERROR, "poisoned");
        };
        let quota = w.quota;
        let window = w.windows.entry(chat).or_default();
        if now >= window.started + WINDOW_SECS {
            *window = RateWindow {
                started: now,
                count: 0,
            };
        }
        let allowed = window.count < quota;
        if allowed {
            window.count += 1;
        }
        (
            allowed,
            quota,
            quota.saturating_sub(window.count),
            window.started + WINDOW_SECS,
        )
    };
    request.extensions_mut().insert(Integration(chat));
    let mut response = if allowed {
        next.run(request).await
    } else {
        error(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded")
    };
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-ratelimit-limit", i64::from(limit)),
        ("x-ratelimit-remaining", i64::from(remaining)),
        ("x-ratelimit-reset", reset),
    ] {
        headers.insert(name, HeaderValue::from(value));
    }
    response
}

/// The Zipchat routes, to be nested under [`PREFIX`].
pub fn router(world: Shared) -> Router {
    Router::new()
        .route("/chats", get(list_chats))
        .route("/chats/{chat_id}/conversations", get(list_conversations))
        .route(
            "/chats/{chat_id}/conversations/{id}",
            get(show_conversation),
        )
        .route(
            "/chats/{chat_id}/conversations/{id}/assignment",
            patch(assign),
        )
        .route(
            "/chats/{chat_id}/conversations/{id}/messages",
            axum::routing::post(send_message),
        )
        .route("/chats/{chat_id}/users", get(list_users))
        .route("/chats/{chat_id}/users/{id}", get(show_user))
        .merge(crate::echo::routes())
        .layer(axum::middleware::from_fn_with_state(world.clone(), gate))
        .with_state(world)
}

pub(super) fn number(
    params: &BTreeMap<String, String>,
    name: &str,
    default: usize,
) -> Result<usize, Response> {
    match params.get(name) {
        None => Ok(default),
        Some(v) => v.parse::<usize>().ok().filter(|n| *n >= 1).ok_or_else(|| {
            error(
                StatusCode::UNPROCESSABLE_ENTITY,
                &format!("{name} must be a positive integer"),
            )
        }),
    }
}

pub(super) fn since(
    params: &BTreeMap<String, String>,
    name: &str,
) -> Result<Option<DateTime<Utc>>, Response> {
    params
        .get(name)
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    error(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        &format!("{name} must be an ISO 8601 timestamp"),
                    )
                })
        })
        .transpose()
}

pub(super) fn lock(world: &Shared) -> Result<std::sync::MutexGuard<'_, World>, Response> {
    world
        .lock()
        .map_err(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "poisoned"))
}

pub(super) fn check_chat(integration: Integration, chat_id: &str) -> Result<u64, Response> {
    match chat_id.parse::<u64>() {
        Ok(id) if id == integration.0 => Ok(id),
        _ => Err(error(StatusCode::NOT_FOUND, "Chat not found")),
    }
}

pub(super) async fn list_chats(Extension(integration): Extension<Integration>) -> Response {
    Json(json!({"chats": [{"id": integration.0}]})).into_response()
}

pub(super) async fn list_conversations(
    State(world): State<Shared>,
    Extension(integration): Extension<Integration>,
    Path(chat_id): Path<String>,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    let run = || -> Result<Response, Response> {
        let chat = check_chat(integration, &chat_id)?;
        let page = number(&params, "page", 1)?;
        let per_page = number(&params, "per_page", 50)?.min(100);
        let since = since(&params, "last_message_at_since")?;
        let w = lock(&world)?;
        let mut list: Vec<&Conv> = w
            .conversations
            .values()
            .filter(|c| c.chat_id == chat && since.is_none_or(|s| c.last_message_at >= s))
            .collect();
        let total = list.len();
        crate::generator::sort_first(&mut list, page.saturating_mul(per_page.max(1)), |a, b| {
            b.last_message_at
                .cmp(&a.last_message_at)
                .then(b.id.cmp(&a.id))
        });
        let body = ConversationsJson {
            conversations: paginate(&list, page, per_page)
                .into_iter()
                .map(|c| w.conv_json(c, false))
                .collect(),
            pagination: PaginationJson::new(page, per_page, total),
        };
        Ok(ok_json(&body))
    };
    run().unwrap_or_else(|e| e)
}

pub(super) async fn show_conversation(
    State(world): State<Shared>,
    Extension(integration): Extension<Integration>,
    Path((chat_id, id)): Path<(String, String)>,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    let run = || -> Result<Response, Response> {
        let chat = check_chat(integration, &chat_id)?;
        let page = number(&params, "message_page", 1)?;
        let per_page = number(&params, "message_per_page", 100)?.min(200);
        let since = since(&params, "message_created_at_since")?;
        let w = lock(&world)?;
        let c = id
            .parse::<u64>()
            .ok()
            .and_then(|id| w.conversations.get(&id))
            .filter(|c| c.chat_id == chat)
            .ok_or_else(not_found)?;
        let messages: Vec<&Msg> = c
            .messages
            .iter()
            .filter(|m| since.is_none_or(|s| m.created_at >= s))
            .collect();
        let total = messages.len();
        let mut conversation = w.conv_json(c, true);
        conversation.messages = Some(
            paginate(&messages, page, per_page)
                .into_iter()
                .map(World::message_json)
                .collect(),
        );
        conversation.message_pagination = Some(PaginationJson::new(page, per_page, total));
        Ok(ok_json(&OneConversationJson { conversation }))
    };
    run().unwrap_or_else(|e| e)
}

pub(super) async fn list_users(
    State(world): State<Shared>,
    Extension(integration): Extension<Integration>,
    Path(chat_id): Path<String>,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    let run = || -> Result<Response, Response> {
        let chat = check_chat(integration, &chat_id)?;
        let page = number(&params, "page", 1)?;
        let per_page = number(&params, "per_page", 50)?.min(100);
        let w = lock(&world)?;
        let users: Vec<&User> = w.users.get(&chat).into_iter().flatten().collect();
        let items: Vec<UserJson> = paginate(&users, page, per_page)
            .into_iter()
            .map(World::user_json)
            .collect();
        let pagination = PaginationJson::new(page, per_page, users.len());
        Ok(Json(json!({"users": items, "pagination": pagination})).into_response())
    };
    run().unwrap_or_else(|e| e)
}

pub(super) async fn show_user(
    State(world): State<Shared>,
    Extension(integration): Extension<Integration>,
    Path((chat_id, id)): Path<(String, String)>,
) -> Response {
    let run = || -> Result<Response, Response> {
        let chat = check_chat(integration, &chat_id)?;
        let w = lock(&world)?;
        let user = id
            .parse()
            .ok()
            .and_then(|id| w.user(chat, id))
            .ok_or_else(|| error(StatusCode::NOT_FOUND, "User not found"))?;
        Ok(Json(json!({"user": World::user_json(user)})).into_response())
    };
    run().unwrap_or_else(|e| e)
}

pub(super) fn json_body(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<serde_json::Map<String, Value>, Response> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Content-Type must be application/json",
        ));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "body must be a JSON object",
        )),
    }
}

pub(super) async fn assign(
    State(world): State<Shared>,
    Extension(integration): Extension<Integration>,
    Path((chat_id, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let run = || -> Result<Response, Response> {
        let chat = check_chat(integration, &chat_id)?;
        let body = json_body(&headers, &body)?;
        let mut w = lock(&world)?;
        let conv_id = id
            .parse::<u64>()
            .ok()
            .filter(|id| w.conversations.get(id).is_some_and(|c| c.chat_id == chat))
            .ok_or_else(not_found)?;
        let assignee = match body.get("assignee_id") {
            None => {
                return Err(error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "assignee_id is required (use null to assign to AI)",
                ));
            }
            Some(Value::Null) => None,
            Some(v) => {
                let user = v
                    .as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                    .filter(|u| w.user(chat, *u).is_some());
                match user {
                    Some(u) => Some(u),
                    None => {
                        return Err(error(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            "assignee_id is not an assignable user for this chat",
                        ));
                    }
                }
            }
        };
        let Some(c) = w.conversations.get_mut(&conv_id) else {
            return Err(not_found());
        };
        c.assignee = assignee;
        c.manual_reply_mode = assignee.is_some();
        let c = c.clone();
        let conversation = w.conv_json(&c, false);
        Ok(ok_json(&OneConversationJson { conversation }))
    };
    run().unwrap_or_else(|e| e)
}

#[derive(Deserialize)]
pub(super) struct NoQuery {}

pub(super) async fn send_message(
    State(world): State<Shared>,
    Extension(integration): Extension<Integration>,
    Path((chat_id, id)): Path<(String, String)>,
    Query(_): Query<NoQuery>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let run = || -> Result<Response, Response> {
        let chat = check_chat(integration, &chat_id)?;
        let body = json_body(&headers, &body)?;
        let mut w = lock(&world)?;
        let conv_id = id
            .parse::<u64>()
            .ok()
            .filter(|id| w.conversations.get(id).is_some_and(|c| c.chat_id == chat))
            .ok_or_else(not_found)?;
        let text = body
            .get("message")
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty());
        let Some(text) = text else {
            return Err(error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "message is required",
            ));
        };
        let sender = match body.get("sender_id") {
            None | Some(Value::Null) => {
                return Err(error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "sender_id is required",
                ));
            }
            Some(v) => v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok())),
        };
        let Some(sender) = sender.filter(|s| w.user(chat, *s).is_some()) else {
            return Err(error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "sender_id is not an assignable user for this chat",
            ));
        };
        let now = Utc::now();
        let id = w.next_message_id;
        w.next_message_id += 1;
        let Some(c) = w.conversations.get_mut(&conv_id) else {
            return Err(not_found());
        };
        if !c.manual_reply_mode {
            return Err(error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Conversation is in AI mode; assign it to a user before sending a manual message",
            ));
        }
        let meta = matches!(c.channel, "whatsapp" | "instagram" | "messenger");
        let last_customer = c
            .messages
            .iter()
            .rev()
            .find(|m| m.role == "user")
            .map(|m| m.created_at);
        if meta && last_customer.is_none_or(|t| now - t > Duration::hours(24)) {
            return Err(error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Cannot send: customer last messaged more than 24 hours ago on a Meta channel",
            ));
        }
        let created_at = now.max(c.last_message_at);
        let message = Msg {
            id,
            role: "assistant",
            message: text.to_owned(),
            manual_reply: true,
            sender_id: Some(sender),
            created_at,
        };
        c.messages.push(message.clone());
        c.last_message_at = created_at;
        Ok((
            StatusCode::CREATED,
            Json(json!({"message": World::message_json(&message)})),
        )
            .into_response())
    };
    run().unwrap_or_else(|e| e)
}
