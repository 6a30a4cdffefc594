//! PingBack's routes: the login, the bearer check, then the API's endpoints.

use super::*;
use crate::json::ok_json;

pub(super) fn lock(world: &Shared) -> Result<std::sync::MutexGuard<'_, World>, Response> {
    world
        .lock()
        .map_err(|_| detail(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"))
}

/// Checks the bearer token and hands the caller to the handler.
pub(super) async fn gate(
    State(world): State<Shared>,
    mut request: Request,
    next: Next,
) -> Response {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned());
    let Some(token) = token else {
        return unauthorized("Not authenticated");
    };
    let caller = match world.lock() {
        Ok(w) => w.sessions.get(&token).cloned(),
        Err(_) => return detail(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
    };
    let Some(caller) = caller else {
        return unauthorized("Could not validate credentials");
    };
    request.extensions_mut().insert(caller);
    next.run(request).await
}

/// The PingBack routes, to be nested under [`PREFIX`].
pub fn router(world: Shared) -> Router {
    let protected = Router::new()
        .route("/api/v1/auth/me", get(me))
        .route(
            "/api/v1/conversations/",
            get(list_conversations).post(create_conversation),
        )
        .route(
            "/api/v1/conversations/{conversation_id}",
            get(show_conversation),
        )
        .route(
            "/api/v1/conversations/{conversation_id}/messages",
            post(send_message),
        )
        .route(
            "/api/v1/conversations/{conversation_id}/resolve",
            put(resolve),
        )
        .route("/api/v1/conversations/{conversation_id}/close", put(close))
        .route(
            "/api/v1/conversations/{conversation_id}/assign/{agent_id}",
            put(assign),
        )
        .route("/api/v1/team/assign/{conversation_id}", post(team_assign))
        .route("/api/v1/team/members", get(team_members))
        .merge(crate::echo::routes())
        .layer(axum::middleware::from_fn_with_state(world.clone(), gate));
    Router::new()
        .route("/api/v1/auth/login", post(login))
        // Starlette redirects a collection path without its trailing slash (before any auth).
        .route("/api/v1/conversations", get(add_slash).post(add_slash))
        .merge(protected)
        .fallback(|| async { detail(StatusCode::NOT_FOUND, "Not Found") })
        .method_not_allowed_fallback(|| async {
            detail(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
        })
        .with_state(world)
}

pub(super) async fn add_slash(OriginalUri(uri): OriginalUri) -> Response {
    let location = match uri.query() {
        Some(q) => format!("{}/?{q}", uri.path()),
        None => format!("{}/", uri.path()),
    };
    (
        StatusCode::TEMPORARY_REDIRECT,
        [(header::LOCATION, location)],
    )
        .into_response()
}

/// The JSON object body, or FastAPI's 422 for anything else.
pub(super) fn json_object(body: &[u8]) -> Result<serde_json::Map<String, Value>, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(validation(vec![problem(
            "model_attributes_type",
            &["body"],
            "Input should be a valid dictionary or object to extract fields from",
            other,
        )])),
        Err(_) => Err(validation(vec![problem(
            "json_invalid",
            &["body", "0"],
            "JSON decode error",
            json!({}),
        )])),
    }
}

pub(super) fn required_string(
    body: &serde_json::Map<String, Value>,
    field: &'static str,
    problems: &mut Vec<Value>,
) -> Option<String> {
    match body.get(field) {
        None => {
            problems.push(problem(
                "missing",
                &["body", field],
                "Field required",
                Value::Object(body.clone()),
            ));
            None
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            problems.push(problem(
                "string_type",
                &["body", field],
                "Input should be a valid string",
                other.clone(),
            ));
            None
        }
    }
}

pub(super) async fn login(State(world): State<Shared>, body: axum::body::Bytes) -> Response {
    let run = || -> Result<Response, Response> {
        let body = json_object(&body)?;
        let mut problems = Vec::new();
        let email = required_string(&body, "email", &mut problems);
        let password = required_string(&body, "password", &mut problems);
        let (Some(email), Some(password)) = (email, password) else {
            return Err(validation(problems));
        };
        let mut w = lock(&world)?;
        let caller = w
            .members
            .iter()
            .find(|m| {
                m.is_active
                    && m.email.eq_ignore_ascii_case(email.trim())
                    && m.password == Some(password.as_str())
            })
            .map(|m| Caller {
                user_id: m.user_id.clone(),
                role: m.role,
            });
        let Some(caller) = caller else {
            return Err(unauthorized("Incorrect email or password"));
        };
        let token = w.issue_token(caller);
        Ok(Json(json!({"access_token": token, "token_type": "bearer"})).into_response())
    };
    run().unwrap_or_else(|e| e)
}

pub(super) async fn me(
    State(world): State<Shared>,
    Extension(caller): Extension<Caller>,
) -> Response {
    let run = || -> Result<Response, Response> {
        let w = lock(&world)?;
        let m = w
            .members
            .iter()
            .find(|m| m.user_id == caller.user_id)
            .ok_or_else(|| unauthorized("Could not validate credentials"))?;
        Ok(Json(json!({
            "user": {
                "id": m.user_id,
                "email": m.email,
                "full_name": m.name,
                "is_verified": true,
                "is_google_account": false,
                "avatar_url": null,
            },
            "business": {
                "id": w.business_id,
                "name": w.business_name,
                "website": "https://helpdesk.example.com",
                "goal": "Reduce response time",
                "industry": "E-commerce",
                "team_size": "1-10",
                "created_at": ts(w.business_created_at),
            },
            "onboarding_complete": true,
            "team_role": m.role,
        }))
        .into_response())
    };
    run().unwrap_or_else(|e| e)
}

/// An integer query parameter within `min..=max`, as FastAPI's `Query(ge=.., le=..)` checks it.
pub(super) fn int_param(
    params: &BTreeMap<String, String>,
    name: &'static str,
    default: usize,
    min: usize,
    max: Option<usize>,
    problems: &mut Vec<Value>,
) -> usize {
    let Some(raw) = params.get(name) else {
        return default;
    };
    let Ok(n) = raw.trim().parse::<i64>() else {
        problems.push(problem(
            "int_parsing",
            &["query", name],
            "Input should be a valid integer, unable to parse string as an integer",
            json!(raw),
        ));
        return default;
    };
    if n < min as i64 {
        problems.push(json!({
            "type": "greater_than_equal", "loc": ["query", name],
            "msg": format!("Input should be greater than or equal to {min}"), "input": raw, "ctx": {"ge": min},
        }));
        return default;
    }
    if let Some(max) = max.filter(|m| n > *m as i64) {
        problems.push(json!({
            "type": "less_than_equal", "loc": ["query", name],
            "msg": format!("Input should be less than or equal to {max}"), "input": raw, "ctx": {"le": max},
        }));
        return default;
    }
    n as usize
}

pub(super) async fn list_conversations(
    State(world): State<Shared>,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    let run = || -> Result<Response, Response> {
        let mut problems = Vec::new();
        let page = int_param(&params, "page", 1, 1, None, &mut problems);
        let limit = int_param(
            &params,
            "limit",
            DEFAULT_LIMIT,
            1,
            Some(MAX_LIMIT),
            &mut problems,
        );
        let status = params.get("status").map(String::as_str);
        if let Some(s) = status.filter(|s| !STATUSES.contains(s)) {
            problems.push(json!({
                "type": "enum", "loc": ["query", "status"],
                "msg": "Input should be 'open', 'pending', 'resolved' or 'closed'", "input": s,
                "ctx": {"expected": "'open', 'pending', 'resolved' or 'closed'"},
            }));
        }
        if !problems.is_empty() {
            return Err(validation(problems));
        }
        let assignee = params
            .get("assignee_id")
            .map(|a| parse_uuid(a).unwrap_or_else(|| a.clone()));
        let w = lock(&world)?;
        let mut list: Vec<&Conv> = w
            .conversations
            .values()
            .filter(|c| c.business_id == w.business_id)
            .filter(|c| status.is_none_or(|s| c.status == s))
            .filter(|c| {
                assignee
                    .as_ref()
                    .is_none_or(|a| c.assignee_id.as_ref() == Some(a))
            })
            .collect();
        crate::generator::sort_first(&mut list, page.saturating_mul(limit.max(1)), |a, b| {
            b.updated_at.cmp(&a.updated_at).then(b.id.cmp(&a.id))
        });
        let items: Vec<ConversationJson> = paginate(&list, page, limit)
            .into_iter()
            .map(|c| World::conv_json(c, false))
            .collect();
        Ok(ok_json(&items))
    };
    run().unwrap_or_else(|e| e)
}

/// A UUID path parameter, or FastAPI's 422 naming it.
pub(super) fn path_uuid(name: &'static str, raw: &str, problems: &mut Vec<Value>) -> String {
    parse_uuid(raw).unwrap_or_else(|| {
        problems.push(problem(
            "uuid_parsing",
            &["path", name],
            "Input should be a valid UUID, invalid character or length",
            json!(raw),
        ));
        String::new()
    })
}

pub(super) fn conversation_path(raw: &str) -> Result<String, Response> {
    let mut problems = Vec::new();
    let id = path_uuid("conversation_id", raw, &mut problems);
    if problems.is_empty() {
        Ok(id)
    } else {
        Err(validation(problems))
    }
}

pub(super) async fn show_conversation(
    State(world): State<Shared>,
    Path(conversation_id): Path<String>,
) -> Response {
    let run = || -> Result<Response, Response> {
        let id = conversation_path(&conversation_id)?;
        let w = lock(&world)?;
        let c = w.own(&id).ok_or_else(not_found)?;
        Ok(ok_json(&World::conv_json(c, true)))
    };
    run().unwrap_or_else(|e| e)
}

/// The monthly quota answer (DOC: 429 when the monthly message limit is reached; the body,
/// not shown, is INFERRED in the shape of the documented 402 plan-limit bodies).
pub(super) fn message_limit_reached(w: &World) -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        Json(json!({
            "error": "limit_exceeded",
            "plan": PLAN,
            "feature": "messages",
            "current": w.messages_this_month,
            "limit": w.message_limit,
            "message": format!(
                "Monthly message limit reached. Current plan allows {} messages per month.",
                w.message_limit
            ),
        })),
    )
        .into_response()
}

pub(super) async fn create_conversation(
    State(world): State<Shared>,
    Extension(caller): Extension<Caller>,
    body: axum::body::Bytes,
) -> Response {
    let run = || -> Result<Response, Response> {
        let body = json_object(&body)?;
        let mut problems = Vec::new();
        let business = required_string(&body, "business_id", &mut problems);
        if !problems.is_empty() {
            return Err(validation(problems));
        }
        let business = business.and_then(|b| parse_uuid(&b));
        let initial = body
            .get("initial_message")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let customer_id = body
            .get("customer_id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let mut w = lock(&world)?;
        if business.as_deref() != Some(w.business_id.as_str()) {
            return Err(detail(
                StatusCode::FORBIDDEN,
                "Not authorized for this business",
            ));
        }
        let customer = match &customer_id {
            None => None,
            Some(cid) => {
                let found = w
                    .conversations
                    .values()
                    .find(|c| {
                        c.business_id == w.business_id
                            && c.customer_id.as_deref() == Some(cid.as_str())
                    })
                    .and_then(|c| c.customer.clone());
                Some(found.ok_or_else(|| detail(StatusCode::NOT_FOUND, "Customer not found"))?)
            }
        };
        if initial.is_some() && w.messages_this_month >= w.message_limit {
            return Err(message_limit_reached(&w));
        }
        let t = now();
        let id = w.ids.uuid();
        let mut messages = Vec::new();
        if let Some(content) = initial {
            w.messages_this_month += 1;
            messages.push(Msg {
                id: w.ids.uuid(),
                sender_type: "agent",
                sender_id: Some(caller.user_id.clone()),
                content,
                attachments: Vec::new(),
                created_at: t,
            });
        }
        let conv = Conv {
            id: id.clone(),
            business_id: w.business_id.clone(),
            customer_id: customer.as_ref().and(customer_id),
            assignee_id: None,
            status: "open",
            channel_type: "widget",
            channel_id: Some(w.default_channel_id.clone()),
            created_at: t,
            updated_at: t,
            first_response_at: messages.first().map(|m| m.created_at),
            resolved_at: None,
            closed_at: None,
            customer,
            messages,
        };
        let response = Json(World::conv_json(&conv, true)).into_response();
        w.conversations.insert(id, conv);
        Ok(response)
    };
    run().unwrap_or_else(|e| e)
}

pub(super) async fn send_message(
    State(world): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(conversation_id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let run = || -> Result<Response, Response> {
        let id = conversation_path(&conversation_id)?;
        let body = json_object(&body)?;
        let mut problems = Vec::new();
        let content = required_string(&body, "content", &mut problems);
        let attachments = match body.get("attachments") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items.clone(),
            Some(other) => {
                problems.push(problem(
                    "list_type",
                    &["body", "attachments"],
                    "Input should be a valid list",
                    other.clone(),
                ));
                Vec::new()
            }
        };
        let Some(content) = content.filter(|_| problems.is_empty()) else {
            return Err(validation(problems));
        };
        let mut w = lock(&world)?;
        if w.own(&id).is_none() {
            return Err(not_found());
        }
        if w.messages_this_month >= w.message_limit {
            return Err(message_limit_reached(&w));
        }
        let message_id = w.ids.uuid();
        w.messages_this_month += 1;
        let c = w.own_mut(&id).ok_or_else(not_found)?;
        let created_at = c.messages.last().map_or(now(), |m| now().max(m.created_at));
        let message = Msg {
            id: message_id,
            sender_type: "agent",
            sender_id: Some(caller.user_id.clone()),
            content,
            attachments,
            created_at,
        };
        c.messages.push(message.clone());
        c.first_response_at = c.first_response_at.or(Some(created_at));
        c.updated_at = c.updated_at.max(created_at);
        Ok(Json(World::message_json(&c.id, &message)).into_response())
    };
    run().unwrap_or_else(|e| e)
}

pub(super) async fn resolve(
    State(world): State<Shared>,
    Path(conversation_id): Path<String>,
) -> Response {
    transition(&world, &conversation_id, "resolved")
}

pub(super) async fn close(
    State(world): State<Shared>,
    Path(conversation_id): Path<String>,
) -> Response {
    transition(&world, &conversation_id, "closed")
}

/// `PUT .../resolve` and `.../close`: set the status and its timestamp; a repeat is a 200
/// `{"detail": "Already resolved"}` / `{"detail": "Already closed"}` (DOC).
pub(super) fn transition(world: &Shared, conversation_id: &str, to: &'static str) -> Response {
    let run = || -> Result<Response, Response> {
        let id = conversation_path(conversation_id)?;
        let mut w = lock(world)?;
        let c = w.own_mut(&id).ok_or_else(not_found)?;
        if c.status == to {
            let message = if to == "resolved" {
                "Already resolved"
            } else {
                "Already closed"
            };
            return Ok(detail(StatusCode::OK, message));
        }
        let t = now().max(c.updated_at);
        c.status = to;
        c.updated_at = t;
        if to == "resolved" {
            c.resolved_at = Some(t);
            Ok(Json(json!({"resolved_at": ts(t)})).into_response())
        } else {
            c.closed_at = Some(t);
            Ok(Json(json!({"closed_at": ts(t)})).into_response())
        }
    };
    run().unwrap_or_else(|e| e)
}

/// Assigns `conversation` to the team member `agent` on behalf of `caller`.
pub(super) fn assign_to(
    world: &Shared,
    caller: &Caller,
    conversation: &str,
    agent: &str,
) -> Result<String, Response> {
    if !matches!(caller.role, "owner" | "admin") {
        return Err(detail(
            StatusCode::FORBIDDEN,
            "Only owners and admins can assign conversations",
        ));
    }
    let mut w = lock(world)?;
    if w.own(conversation).is_none() {
        return Err(not_found());
    }
    let is_member = w.members.iter().any(|m| m.user_id == agent && m.is_active);
    if !is_member {
        return Err(detail(
            StatusCode::BAD_REQUEST,
            "Agent is not an active member of your team",
        ));
    }
    let c = w.own_mut(conversation).ok_or_else(not_found)?;
    c.assignee_id = Some(agent.to_owned());
    c.updated_at = now().max(c.updated_at);
    Ok(agent.to_owned())
}

pub(super) async fn assign(
    State(world): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path((conversation_id, agent_id)): Path<(String, String)>,
) -> Response {
    let run = || -> Result<Response, Response> {
        let mut problems = Vec::new();
        let conversation = path_uuid("conversation_id", &conversation_id, &mut problems);
        let agent = path_uuid("agent_id", &agent_id, &mut problems);
        if !problems.is_empty() {
            return Err(validation(problems));
        }
        let assignee = assign_to(&world, &caller, &conversation, &agent)?;
        // DOC: "the ID of the newly assigned agent"; the field name is INFERRED.
        Ok(Json(json!({"assignee_id": assignee})).into_response())
    };
    run().unwrap_or_else(|e| e)
}

pub(super) async fn team_assign(
    State(world): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(conversation_id): Path<String>,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    let run = || -> Result<Response, Response> {
        let mut problems = Vec::new();
        let conversation = path_uuid("conversation_id", &conversation_id, &mut problems);
        let agent = match params.get("agent_id") {
            Some(a) => path_uuid("agent_id", a, &mut problems),
            None => {
                problems.push(problem(
                    "missing",
                    &["query", "agent_id"],
                    "Field required",
                    Value::Null,
                ));
                String::new()
            }
        };
        if !problems.is_empty() {
            return Err(validation(problems));
        }
        assign_to(&world, &caller, &conversation, &agent)?;
        Ok(Json(json!({"message": "Conversation assigned successfully"})).into_response())
    };
    run().unwrap_or_else(|e| e)
}

pub(super) async fn team_members(State(world): State<Shared>) -> Response {
    let run = || -> Result<Response, Response> {
        let w = lock(&world)?;
        let members: Vec<MemberJson> = w.members.iter().map(World::member_json).collect();
        Ok(Json(members).into_response())
    };
    run().unwrap_or_else(|e| e)
}
