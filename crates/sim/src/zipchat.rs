//! Zipchat Backend API simulator, as described by
//! https://docs.zipchat.ai/installation-and-setup/chat-settings/integrations/backend-api :
//! Bearer `zc-` keys, chats, page-size caps, 120 requests / 60 s with `X-RateLimit-*` headers,
//! assignable users, manual mode and the 24-hour rule on Meta channels.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Extension, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch};
use axum::{Json, Router};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::world::{Gen, paginate, total_pages};

/// Where the API lives under the simulator.
pub const PREFIX: &str = "/zipchat/api/integrations/backend_api/v1";
/// The API key of the integration on chat [`CHAT_ID`].
pub const API_KEY: &str = "zc-switchboard-sim-key";
/// The chat the API key's integration belongs to.
pub const CHAT_ID: u64 = 1;
/// The API key of a second integration, on chat [`OTHER_CHAT_ID`].
pub const OTHER_API_KEY: &str = "zc-switchboard-sim-outlet";
/// Another chat of the same account: its conversations are 404 through chat 1.
pub const OTHER_CHAT_ID: u64 = 2;

/// The chat an API key's integration belongs to.
fn chat_of_key(key: &str) -> Option<u64> {
    match key {
        API_KEY => Some(CHAT_ID),
        OTHER_API_KEY => Some(OTHER_CHAT_ID),
        _ => None,
    }
}

/// The documented quota: 120 requests per 60 s per integration.
pub const QUOTA: u32 = 120;
const WINDOW_SECS: i64 = 60;

#[derive(Debug, Clone)]
struct User {
    id: u64,
    name: String,
    email: String,
    avatar_url: Option<String>,
}

#[derive(Debug, Clone)]
struct Lead {
    id: u64,
    first_name: String,
    last_name: String,
    email: Option<String>,
    phone_number: Option<String>,
    email_marketing_consent: bool,
    shopify_customer_id: Option<u64>,
}

#[derive(Debug, Clone)]
struct Msg {
    id: u64,
    role: &'static str,
    message: String,
    manual_reply: bool,
    sender_id: Option<u64>,
    created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
struct Conv {
    id: u64,
    chat_id: u64,
    created_at: DateTime<Utc>,
    last_message_at: DateTime<Utc>,
    channel: &'static str,
    manual_reply_mode: bool,
    last_escalated_at: Option<DateTime<Utc>>,
    last_escalation_resolved_at: Option<DateTime<Utc>>,
    assignee: Option<u64>,
    lead: Option<Lead>,
    messages: Vec<Msg>,
}

#[derive(Debug, Default)]
struct RateWindow {
    started: i64,
    count: u32,
}

/// The simulated Zipchat account.
#[derive(Debug)]
pub struct World {
    conversations: BTreeMap<u64, Conv>,
    users: BTreeMap<u64, Vec<User>>,
    next_message_id: u64,
    windows: BTreeMap<u64, RateWindow>,
    quota: u32,
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn opt_ts(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| Value::String(ts(t)))
}

impl World {
    /// A world of `conversations` conversations in chat 1 (and a few in chat 2), from `seed`.
    pub fn generate(seed: u64, conversations: usize, now: DateTime<Utc>) -> World {
        let mut g = Gen::for_vendor(seed, "zipchat", now);
        let mut users = BTreeMap::new();
        for (chat, first_id) in [(CHAT_ID, 7u64), (OTHER_CHAT_ID, 50)] {
            let list = (0..4)
                .map(|i| {
                    let name = g.agent_name(i + (first_id as usize));
                    let first = name.split(' ').next().unwrap_or("agent").to_owned();
                    User {
                        id: first_id + i as u64,
                        email: format!("{}@shop.example.com", ascii_local(&first)),
                        name,
                        avatar_url: (i % 2 == 0).then(|| {
                            format!(
                                "https://cdn.example.com/avatars/{}.png",
                                first_id + i as u64
                            )
                        }),
                    }
                })
                .collect();
            users.insert(chat, list);
        }
        let mut world = World {
            conversations: BTreeMap::new(),
            users,
            next_message_id: 1,
            windows: BTreeMap::new(),
            quota: QUOTA,
        };
        let others = 5.min(conversations);
        for i in 0..conversations + others {
            let (chat, id) = if i < conversations {
                (CHAT_ID, 12_000 + i as u64)
            } else {
                (OTHER_CHAT_ID, 90_000 + i as u64)
            };
            let conv = world.generate_conversation(&mut g, chat, id);
            world.conversations.insert(id, conv);
        }
        world
    }

    fn generate_conversation(&mut self, g: &mut Gen, chat_id: u64, id: u64) -> Conv {
        let channel = *g.pick(&[
            "web",
            "web",
            "web",
            "web",
            "whatsapp",
            "whatsapp",
            "instagram",
            "messenger",
            "email",
            "chat",
        ]);
        let created_at = g.time_within(Duration::days(30));
        let lead = (!g.chance(0.15)).then(|| {
            let (first, last) = g.person();
            Lead {
                id: 100 + id,
                email: (!g.chance(0.2)).then(|| g.email_for(&first)),
                phone_number: g.chance(0.5).then(|| g.phone()),
                email_marketing_consent: g.chance(0.5),
                shopify_customer_id: g.chance(0.3).then(|| 7_000_000 + id),
                first_name: first,
                last_name: last,
            }
        });
        let manual = g.chance(0.25);
        let assignable: Vec<u64> = self
            .users
            .get(&chat_id)
            .map(|u| u.iter().map(|u| u.id).collect())
            .unwrap_or_default();
        let assignee = manual.then(|| *g.pick(&assignable));
        let mut t = created_at;
        let mut messages = Vec::new();
        let turns = 1 + g.below(4);
        for turn in 0..turns {
            messages.push(self.message(g, "user", false, None, &mut t));
            let reply = if turn % 3 == 2 && g.chance(0.5) {
                json!([
                    {"type": "image", "source": {"url": format!("https://cdn.example.com/products/{}.jpg", id)}},
                    {"type": "text", "text": "Here is the product you asked about."}
                ])
                .to_string()
            } else {
                g.bot_text()
            };
            let m = self.message(g, "assistant", false, None, &mut t);
            messages.push(Msg {
                message: reply,
                ..m
            });
        }
        if let Some(agent) = assignee {
            let text = g.agent_text();
            let m = self.message(g, "assistant", true, Some(agent), &mut t);
            messages.push(Msg { message: text, ..m });
        }
        let escalated = manual || g.chance(0.15);
        let last_escalated_at = escalated.then(|| messages[messages.len() / 2].created_at);
        let last_escalation_resolved_at = (escalated && g.chance(0.4)).then_some(t);
        Conv {
            id,
            chat_id,
            created_at,
            last_message_at: t,
            channel,
            manual_reply_mode: manual,
            last_escalated_at,
            last_escalation_resolved_at,
            assignee,
            lead,
            messages,
        }
    }

    fn message(
        &mut self,
        g: &mut Gen,
        role: &'static str,
        manual: bool,
        sender: Option<u64>,
        t: &mut DateTime<Utc>,
    ) -> Msg {
        *t = g.time_after(*t, Duration::minutes(90));
        let id = self.next_message_id;
        self.next_message_id += 1;
        Msg {
            id,
            role,
            message: if role == "user" {
                g.customer_text()
            } else {
                String::new()
            },
            manual_reply: manual,
            sender_id: sender,
            created_at: *t,
        }
    }

    /// Overrides the quota (tests that need more headroom than the real 120 / 60 s).
    pub fn set_quota(&mut self, quota: u32) {
        self.quota = quota;
    }

    fn user(&self, chat: u64, id: u64) -> Option<&User> {
        self.users.get(&chat)?.iter().find(|u| u.id == id)
    }

    fn user_json(u: &User) -> Value {
        json!({"id": u.id, "name": u.name, "email": u.email, "avatar_url": u.avatar_url})
    }

    fn conv_json(&self, c: &Conv, detail: bool) -> Value {
        let assignee = c
            .assignee
            .and_then(|a| self.user(c.chat_id, a))
            .map_or(Value::Null, Self::user_json);
        let lead = c.lead.as_ref().map_or(Value::Null, |l| {
            let mut v = json!({
                "id": l.id,
                "full_name": format!("{} {}", l.first_name, l.last_name),
                "email": l.email,
                "phone_number": l.phone_number,
                "email_marketing_consent": l.email_marketing_consent,
            });
            if detail {
                v["first_name"] = json!(l.first_name);
                v["last_name"] = json!(l.last_name);
                v["shopify_customer_id"] = json!(l.shopify_customer_id);
                v["additional_attributes"] = json!({});
            }
            v
        });
        json!({
            "id": c.id,
            "chat_id": c.chat_id,
            "created_at": ts(c.created_at),
            "last_message_at": ts(c.last_message_at),
            "channel": c.channel,
            "manual_reply_mode": c.manual_reply_mode,
            "last_escalated_at": opt_ts(c.last_escalated_at),
            "last_escalation_resolved_at": opt_ts(c.last_escalation_resolved_at),
            "assignee": assignee,
            "share_url": format!("https://app.zipchat.ai/chats/{}/conversations/{}", c.chat_id, c.id),
            "lead": lead,
        })
    }

    fn message_json(m: &Msg) -> Value {
        json!({
            "id": m.id,
            "role": m.role,
            "message": m.message,
            "manual_reply": m.manual_reply,
            "status": "sent",
            "sender_id": m.sender_id,
            "created_at": ts(m.created_at),
        })
    }

    /// Every conversation of `chat` as `(id, last_message_at)`, for tests that compare.
    pub fn conversation_ids(&self, chat: u64) -> Vec<u64> {
        self.conversations
            .values()
            .filter(|c| c.chat_id == chat)
            .map(|c| c.id)
            .collect()
    }

    /// The conversation of `chat` with the latest message.
    pub fn newest_conversation(&self, chat: u64) -> Option<u64> {
        self.conversations
            .values()
            .filter(|c| c.chat_id == chat)
            .max_by(|a, b| {
                a.last_message_at
                    .cmp(&b.last_message_at)
                    .then(a.id.cmp(&b.id))
            })
            .map(|c| c.id)
    }

    /// How many messages a conversation holds (tests read replies back through this).
    pub fn message_count(&self, id: u64) -> usize {
        self.conversations.get(&id).map_or(0, |c| c.messages.len())
    }
}

/// The Zipchat simulator's state.
pub type Shared = Arc<Mutex<World>>;

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": message}))).into_response()
}

fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "Conversation not found")
}

/// The integration (chat) a request authenticated as.
#[derive(Debug, Clone, Copy)]
struct Integration(u64);

/// Checks the key and its integration's quota, and stamps `X-RateLimit-*` on every response.
async fn gate(State(world): State<Shared>, mut request: Request, next: Next) -> Response {
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
        .layer(axum::middleware::from_fn_with_state(world.clone(), gate))
        .with_state(world)
}

fn number(
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

fn since(params: &BTreeMap<String, String>, name: &str) -> Result<Option<DateTime<Utc>>, Response> {
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

fn pagination(page: usize, per_page: usize, total: usize) -> Value {
    json!({"page": page, "per_page": per_page, "total_count": total, "total_pages": total_pages(total, per_page)})
}

fn lock(world: &Shared) -> Result<std::sync::MutexGuard<'_, World>, Response> {
    world
        .lock()
        .map_err(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "poisoned"))
}

fn check_chat(integration: Integration, chat_id: &str) -> Result<u64, Response> {
    match chat_id.parse::<u64>() {
        Ok(id) if id == integration.0 => Ok(id),
        _ => Err(error(StatusCode::NOT_FOUND, "Chat not found")),
    }
}

async fn list_chats(Extension(integration): Extension<Integration>) -> Response {
    Json(json!({"chats": [{"id": integration.0}]})).into_response()
}

async fn list_conversations(
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
        list.sort_by(|a, b| {
            b.last_message_at
                .cmp(&a.last_message_at)
                .then(b.id.cmp(&a.id))
        });
        let total = list.len();
        let items: Vec<Value> = paginate(&list, page, per_page)
            .into_iter()
            .map(|c| w.conv_json(c, false))
            .collect();
        Ok(
            Json(json!({"conversations": items, "pagination": pagination(page, per_page, total)}))
                .into_response(),
        )
    };
    run().unwrap_or_else(|e| e)
}

async fn show_conversation(
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
        let mut body = w.conv_json(c, true);
        body["messages"] = paginate(&messages, page, per_page)
            .into_iter()
            .map(World::message_json)
            .collect();
        body["message_pagination"] = pagination(page, per_page, total);
        Ok(Json(json!({"conversation": body})).into_response())
    };
    run().unwrap_or_else(|e| e)
}

async fn list_users(
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
        let users = w.users.get(&chat).cloned().unwrap_or_default();
        let items: Vec<Value> = paginate(&users, page, per_page)
            .iter()
            .map(World::user_json)
            .collect();
        Ok(
            Json(json!({"users": items, "pagination": pagination(page, per_page, users.len())}))
                .into_response(),
        )
    };
    run().unwrap_or_else(|e| e)
}

async fn show_user(
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

fn json_body(headers: &HeaderMap, body: &[u8]) -> Result<serde_json::Map<String, Value>, Response> {
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

async fn assign(
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
        Ok(Json(json!({"conversation": w.conv_json(&c, false)})).into_response())
    };
    run().unwrap_or_else(|e| e)
}

#[derive(Deserialize)]
struct NoQuery {}

async fn send_message(
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

fn ascii_local(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase()
}
