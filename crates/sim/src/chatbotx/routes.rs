//! ChatbotX's routes: auth, scope and the rate limit, then the public API's endpoints.

use super::messages::{get_message, list_messages, send_message};
use super::*;
use crate::json::ok_json;

pub(super) fn lock(world: &Shared) -> Result<MutexGuard<'_, World>, Response> {
    world.lock().map_err(|_| {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_SERVER_ERROR",
            "An unexpected error occurred",
        )
    })
}

/// A path id: a numeric string (`zodBigintAsString`), else 422 naming the field.
pub(super) fn path_id(field: &str, value: &str) -> Result<u64, Response> {
    if value.is_empty() || value.len() > 19 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(field, "Invalid input: expected a numeric string"));
    }
    value
        .parse()
        .map_err(|_| invalid(field, "Invalid input: expected a numeric string"))
}

// ── Auth, scope and the per-workspace rate limit ─────────────────────────────────────────

pub(super) async fn gate(State(world): State<Shared>, request: Request, next: Next) -> Response {
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    // The deprecated `?token=` query parameter is still accepted.
    let query_token = request.uri().query().and_then(|q| {
        q.split('&')
            .find_map(|pair| pair.strip_prefix("token="))
            .map(str::to_owned)
    });
    let Some(token) = bearer.or(query_token) else {
        return error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "Authentication required",
        );
    };
    let read_only = match token.as_str() {
        TOKEN => false,
        READ_ONLY_TOKEN => true,
        _ => {
            return error(
                StatusCode::UNAUTHORIZED,
                "INVALID_CHATBOT_TOKEN",
                "Invalid or missing workspace API token",
            );
        }
    };
    let now_ms = Utc::now().timestamp_millis();
    let window = now_ms.div_euclid(WINDOW_MS);
    let limited = {
        let mut w = match lock(&world) {
            Ok(w) => w,
            Err(e) => return e,
        };
        if w.window.0 != window {
            w.window = (window, 0);
        }
        w.window.1 = w.window.1.saturating_add(1);
        w.window.1 > w.quota
    };
    if limited {
        let retry_after = (WINDOW_MS - now_ms.rem_euclid(WINDOW_MS) + 999) / 1000;
        let mut response = error(
            StatusCode::TOO_MANY_REQUESTS,
            "tooManyRequests",
            "Too many requests",
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after.max(1)));
        return response;
    }
    if read_only && request.method() != Method::GET && request.method() != Method::HEAD {
        return error(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            "You do not have permission to perform this action",
        );
    }
    next.run(request).await
}

/// The ChatbotX routes, to be nested under [`PREFIX`].
pub fn router(world: Shared) -> Router {
    Router::new()
        .route("/v1/workspaces", get(list_workspaces))
        .route("/v1/conversations", get(list_conversations))
        .route("/v1/conversations/{id}", get(get_conversation))
        .route("/v1/conversations/{id}/{action}", post(conversation_action))
        .route(
            "/v1/conversations/{id}/messages",
            get(list_messages).post(send_message),
        )
        .route(
            "/v1/conversations/{id}/messages/{message_id}",
            get(get_message),
        )
        .route("/v1/members", get(list_members))
        .route("/v1/members/{id}", get(get_member))
        .route("/v1/teams", get(list_teams))
        .route("/v1/inboxes", get(list_inboxes))
        .merge(crate::echo::routes())
        .fallback(|| async { error(StatusCode::NOT_FOUND, "NOT_FOUND", "Not found") })
        .layer(axum::middleware::from_fn_with_state(world.clone(), gate))
        .with_state(world)
}

pub(super) type Params = BTreeMap<String, String>;

pub(super) fn per_page(
    params: &Params,
    default: usize,
    max: Option<usize>,
) -> Result<usize, Response> {
    let Some(raw) = params.get("perPage") else {
        return Ok(default);
    };
    let n = raw
        .trim()
        .parse::<usize>()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| invalid("perPage", "Invalid input: expected an integer ≥ 1"))?;
    match max {
        Some(max) if n > max => Err(invalid(
            "perPage",
            &format!("Too big: expected a number ≤ {max}"),
        )),
        _ => Ok(n),
    }
}

/// A JSON-encoded array query parameter (`tags`, `status`): unreadable JSON is ignored, as the
/// vendor's `jsonQueryParam` does; values outside the enum are a 422.
pub(super) fn json_array(params: &Params, name: &str) -> Result<Vec<String>, Response> {
    let Some(raw) = params.get(name).filter(|v| !v.is_empty()) else {
        return Ok(Vec::new());
    };
    let Ok(Value::Array(items)) = serde_json::from_str::<Value>(raw) else {
        return Ok(Vec::new());
    };
    items
        .into_iter()
        .map(|v| match v.as_str() {
            Some(s) if TAGS.contains(&s) => Ok(s.to_owned()),
            _ => Err(invalid(
                name,
                "Invalid option: expected one of noAdminReply|unread|followUp|archived|blocked",
            )),
        })
        .collect()
}

pub(super) fn decode_json_cursor(raw: &str) -> Option<Map<String, Value>> {
    let bytes = base64_decode(raw)?;
    match serde_json::from_slice::<Value>(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

pub(super) fn cursor_id(map: &Map<String, Value>) -> Option<u64> {
    map.get("id")?.as_str()?.parse().ok()
}

pub(super) fn cursor_time(value: Option<&Value>) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value?.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

pub(super) fn invalid_cursor() -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "invalidCursor",
        "The cursor is invalid. Start again without a cursor.",
    )
}

pub(super) fn conversation_cursor(c: &Conv) -> String {
    let json = json!({"lastActivityAt": ts(c.last_activity_at), "id": c.id.to_string()});
    base64_encode(json.to_string().as_bytes())
}

pub(super) async fn list_workspaces() -> Response {
    Json(json!({"data": [{"id": WORKSPACE_ID, "name": "Shop"}]})).into_response()
}

pub(super) async fn list_conversations(
    State(world): State<Shared>,
    Query(params): Query<Params>,
) -> Response {
    let run = || -> Result<Response, Response> {
        let per_page = per_page(&params, DEFAULT_PER_PAGE, None)?;
        // `status` takes the same values as `tags`; both filter.
        let mut tags = json_array(&params, "tags")?;
        tags.extend(json_array(&params, "status")?);
        let bot_enabled = match params.get("botEnabled").map(String::as_str) {
            None | Some("") => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(_) => return Err(invalid("botEnabled", "Invalid input: expected boolean")),
        };
        let bot_category = match params.get("botCategory").map(String::as_str) {
            None | Some("all") => None,
            Some("bot") => Some(true),
            Some("human") => Some(false),
            Some(_) => {
                return Err(invalid(
                    "botCategory",
                    "Invalid option: expected one of bot|human|all",
                ));
            }
        };
        let bot = bot_enabled.or(bot_category);
        let channel = match params.get("channel").map(String::as_str) {
            None | Some("omnichannel") => None,
            Some(c) if CHANNELS.contains(&c) => Some(c.to_owned()),
            Some(_) => return Err(invalid("channel", "Invalid option")),
        };
        // `assignedId`: `unassigned`, `u_{userId}` or `t_{teamId}`; anything else filters nothing.
        let assigned = params.get("assignedId").map(String::as_str).unwrap_or("");
        let keyword = params
            .get("keyword")
            .map(|k| k.to_lowercase())
            .filter(|k| !k.is_empty());
        let after = match params.get("cursor").filter(|c| !c.is_empty()) {
            None => None,
            Some(raw) => {
                let map = decode_json_cursor(raw).ok_or_else(invalid_cursor)?;
                let id = cursor_id(&map).ok_or_else(invalid_cursor)?;
                let time = match map.get("lastActivityAt") {
                    None | Some(Value::Null) => None,
                    Some(v) => Some(cursor_time(Some(v)).ok_or_else(invalid_cursor)?),
                };
                Some((time, id))
            }
        };
        let w = lock(&world)?;
        let has = |t: &str| tags.iter().any(|x| x == t);
        let mut list: Vec<&Conv> = w
            .conversations
            .values()
            .filter(|c| c.archived_at.is_some() == has("archived"))
            .filter(|c| c.contact.blocked_at.is_some() == has("blocked"))
            .filter(|c| bot.is_none_or(|b| c.bot_enabled == b))
            .filter(|c| match assigned {
                "unassigned" => c.assigned_user.is_none() && c.assigned_team.is_none(),
                a => match (a.strip_prefix("u_"), a.strip_prefix("t_")) {
                    (Some(u), _) => u
                        .parse()
                        .ok()
                        .is_none_or(|u: u64| c.assigned_user == Some(u)),
                    (_, Some(t)) => t
                        .parse()
                        .ok()
                        .is_none_or(|t: u64| c.assigned_team == Some(t)),
                    _ => true,
                },
            })
            .filter(|c| {
                channel
                    .as_deref()
                    .is_none_or(|ch| w.channels_of(c).contains(&ch))
            })
            .filter(|c| {
                keyword.as_deref().is_none_or(|k| {
                    [
                        &c.contact.first_name,
                        &c.contact.last_name,
                        &c.contact.email,
                        &c.contact.phone,
                    ]
                    .into_iter()
                    .flatten()
                    .any(|v| v.to_lowercase().contains(k))
                })
            })
            .filter(|c| !has("noAdminReply") || c.contact_replied_at > c.admin_replied_at)
            .filter(|c| {
                !has("unread") || c.agent_last_read_at.is_none_or(|r| r < c.last_activity_at)
            })
            .filter(|c| !has("followUp") || c.followed)
            .filter(|c| match after {
                None => true,
                Some((Some(t), id)) => {
                    c.last_activity_at < t || (c.last_activity_at == t && c.id < id)
                }
                // Every conversation here has an activity time, so none sorts after a null one.
                Some((None, _)) => false,
            })
            .collect();
        let more = list.len() > per_page;
        crate::generator::sort_first(&mut list, per_page, |a, b| {
            b.last_activity_at
                .cmp(&a.last_activity_at)
                .then(b.id.cmp(&a.id))
        });
        let next_cursor = list.last().filter(|_| more).map(|c| conversation_cursor(c));
        let prev_cursor = after.map(|_| {
            list.first()
                .map_or_else(String::new, |c| conversation_cursor(c))
        });
        let page = PageJson {
            data: list.iter().map(|c| w.conv_json(c, false)).collect(),
            next_cursor,
            prev_cursor,
        };
        Ok(ok_json(&page))
    };
    run().unwrap_or_else(|e| e)
}

pub(super) async fn get_conversation(
    State(world): State<Shared>,
    Path(raw): Path<String>,
) -> Response {
    let run = || -> Result<Response, Response> {
        let id = path_id("id", &raw)?;
        let w = lock(&world)?;
        let c = w
            .conversations
            .get(&id)
            .ok_or_else(|| not_found("Conversation"))?;
        Ok(ok_json(&DataJson {
            data: w.conv_json(c, true),
        }))
    };
    run().unwrap_or_else(|e| e)
}

/// Checks the `Idempotency-Key` of a write: `Ok(None)` without one, the stored answer when the
/// same request was already made with it, 422 when it was used for another request.
pub(super) fn replay(
    w: &World,
    headers: &HeaderMap,
    fingerprint: &str,
) -> Result<(Option<String>, Option<Response>), Response> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok((None, None));
    };
    let key = value.to_str().unwrap_or("");
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY {
        return Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotencyKeyInvalid",
            "Idempotency-Key must be 1-255 characters",
        ));
    }
    match w.idempotency.get(key) {
        None => Ok((Some(key.to_owned()), None)),
        Some(stored) if stored.fingerprint == fingerprint => Ok((
            None,
            Some((stored.status, Json(stored.body.clone())).into_response()),
        )),
        Some(_) => Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotencyKeyReused",
            "This Idempotency-Key was already used with a different request",
        )),
    }
}

pub(super) fn remember(
    w: &mut World,
    key: Option<String>,
    fingerprint: String,
    status: StatusCode,
    body: Value,
) -> Response {
    if let Some(key) = key {
        w.idempotency.insert(
            key,
            Stored {
                fingerprint,
                status,
                body: body.clone(),
            },
        );
    }
    (status, Json(body)).into_response()
}

pub(super) fn json_body(body: &[u8]) -> Result<Map<String, Value>, Response> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(invalid("body", "Invalid input: expected object")),
    }
}

pub(super) async fn conversation_action(
    State(world): State<Shared>,
    Path((raw, action)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let run = || -> Result<Response, Response> {
        if !matches!(
            action.as_str(),
            "assign"
                | "disable-bot"
                | "enable-bot"
                | "archive"
                | "unarchive"
                | "read"
                | "unread"
                | "follow"
                | "unfollow"
        ) {
            return Err(error(StatusCode::NOT_FOUND, "NOT_FOUND", "Not found"));
        }
        let id = path_id("id", &raw)?;
        let body = json_body(&body)?;
        let mut w = lock(&world)?;
        let fingerprint = format!("POST {id}/{action} {}", Value::Object(body.clone()));
        let (key, stored) = replay(&w, &headers, &fingerprint)?;
        if let Some(stored) = stored {
            return Ok(stored);
        }
        if !w.conversations.contains_key(&id) {
            return Err(not_found("Conversation"));
        }
        let (user, team) = if action == "assign" {
            match body.get("assignedId") {
                None => {
                    return Err(invalid(
                        "assignedId",
                        "Invalid input: expected string, received undefined",
                    ));
                }
                Some(Value::Null) => (None, None),
                Some(Value::String(s)) if !s.trim().is_empty() => {
                    let target = s.trim().parse::<u64>().ok();
                    let user = target.filter(|t| w.user(*t).is_some());
                    let team = target.filter(|t| w.teams.iter().any(|team| team.id == *t));
                    if user.is_none() && team.is_none() {
                        return Err(error(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            "validation",
                            "The assignee is neither a member nor an inbox team of this workspace",
                        ));
                    }
                    (user, team)
                }
                Some(_) => return Err(invalid("assignedId", "Invalid input: expected string")),
            }
        } else {
            (None, None)
        };
        let now = millis(Utc::now());
        let Some(c) = w.conversations.get_mut(&id) else {
            return Err(not_found("Conversation"));
        };
        match action.as_str() {
            "assign" => {
                c.assigned_user = user;
                c.assigned_team = team;
            }
            "disable-bot" => c.bot_enabled = false,
            "enable-bot" => c.bot_enabled = true,
            "archive" => c.archived_at = c.archived_at.or(Some(now)),
            "unarchive" => c.archived_at = None,
            "read" => c.agent_last_read_at = Some(now),
            "unread" => c.agent_last_read_at = None,
            "follow" => c.followed = true,
            _ => c.followed = false,
        }
        c.updated_at = now;
        Ok(remember(
            &mut w,
            key,
            fingerprint,
            StatusCode::OK,
            json!({"success": true}),
        ))
    };
    run().unwrap_or_else(|e| e)
}

pub(super) fn member_json(m: &Member) -> Value {
    json!({
        "id": id(m.id), "userId": id(m.user.id), "workspaceId": WORKSPACE_ID, "role": m.role,
        "permissions": {}, "notificationTypes": {}, "notificationChannels": {},
        "createdAt": ts(m.user.created_at), "updatedAt": ts(m.user.created_at),
        "user": {"id": id(m.user.id), "name": m.user.name, "image": m.user.image},
    })
}

pub(super) async fn list_members(
    State(world): State<Shared>,
    Query(params): Query<Params>,
) -> Response {
    let run = || -> Result<Response, Response> {
        let page = match params.get("page") {
            None => 1,
            Some(p) => p
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|p| *p >= 1)
                .ok_or_else(|| invalid("page", "Invalid input: expected an integer ≥ 1"))?,
        };
        let per_page = per_page(&params, MAX_PER_PAGE, Some(MAX_PER_PAGE))?;
        let keyword = params
            .get("keyword")
            .map(|k| k.to_lowercase())
            .filter(|k| !k.is_empty());
        let w = lock(&world)?;
        let members: Vec<&Member> = w
            .members
            .iter()
            .filter(|m| {
                keyword
                    .as_deref()
                    .is_none_or(|k| m.user.name.to_lowercase().contains(k))
            })
            .collect();
        let page_count = members.len().div_ceil(per_page).max(1);
        let data: Vec<Value> = members
            .iter()
            .skip((page - 1).saturating_mul(per_page))
            .take(per_page)
            .map(|m| member_json(m))
            .collect();
        Ok(Json(json!({"data": data, "pageCount": page_count})).into_response())
    };
    run().unwrap_or_else(|e| e)
}

pub(super) async fn get_member(State(world): State<Shared>, Path(raw): Path<String>) -> Response {
    let run = || -> Result<Response, Response> {
        let id = path_id("memberId", &raw)?;
        let w = lock(&world)?;
        let m = w
            .members
            .iter()
            .find(|m| m.id == id)
            .ok_or_else(|| not_found("Member"))?;
        Ok(Json(member_json(m)).into_response())
    };
    run().unwrap_or_else(|e| e)
}

pub(super) async fn list_teams(State(world): State<Shared>) -> Response {
    let run = || -> Result<Response, Response> {
        let w = lock(&world)?;
        let data: Vec<TeamJson> = w.teams.iter().map(World::team_json).collect();
        Ok(Json(json!({"data": data, "pageCount": 1})).into_response())
    };
    run().unwrap_or_else(|e| e)
}

pub(super) async fn list_inboxes(State(world): State<Shared>) -> Response {
    let run = || -> Result<Response, Response> {
        let w = lock(&world)?;
        let data: Vec<InboxJson> = w.inboxes.iter().map(World::inbox_json).collect();
        Ok(Json(DataJson { data }).into_response())
    };
    run().unwrap_or_else(|e| e)
}
