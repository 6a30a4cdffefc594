//! PingBack API simulator, as described by https://docs.pingback.live/api-reference (auth, conversations,
//! team) and https://docs.pingback.live/billing/upgrading (plan limits):
//! e-mail + password login for a bearer token checked on every call, conversations of one business
//! paged with `page`/`limit` as a bare array (newest `updated_at` first), the full message history
//! embedded in the conversation, replies counted against a monthly message quota, resolve / close /
//! assign, team members with roles (only owners and admins may assign), and FastAPI-style errors
//! (`{"detail": ...}`, 422 `{"detail": [{type, loc, msg, input}]}`, 307 to the trailing-slash path).

// Handlers build their error answers as `Response`s; boxing them would only add noise.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{OriginalUri, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Extension, Json, Router};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::world::{Gen, paginate};

/// Where the API lives under the simulator: the vendor's `/api/v1/...` paths follow it.
pub const PREFIX: &str = "/pingback";
/// The login of the business owner the gateway signs in as.
pub const EMAIL: &str = "owner@helpdesk.example.com";
/// The owner's password.
pub const PASSWORD: &str = "pingback-sim-owner-password";
/// The login of a team member with the `agent` role (may not assign conversations).
pub const AGENT_EMAIL: &str = "agent@helpdesk.example.com";
/// The agent's password.
pub const AGENT_PASSWORD: &str = "pingback-sim-agent-password";
/// The plan's monthly message quota (`max_messages_per_month`).
pub const MONTHLY_MESSAGE_LIMIT: u32 = 10_000;
/// The largest `limit` the list accepts (INFERRED: the docs give no maximum).
pub const MAX_LIMIT: usize = 100;
const DEFAULT_LIMIT: usize = 50;
const PLAN: &str = "Pro";
const STATUSES: [&str; 4] = ["open", "pending", "resolved", "closed"];

#[derive(Debug, Clone)]
struct Member {
    membership_id: String,
    user_id: String,
    email: String,
    name: String,
    role: &'static str,
    status: &'static str,
    is_active: bool,
    invited_at: DateTime<Utc>,
    password: Option<&'static str>,
}

#[derive(Debug, Clone)]
struct Customer {
    /// A UUID string, or (like the docs' own example) an integer.
    id: Value,
    business_id: Value,
    name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    external_id: Option<String>,
    created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
struct Msg {
    id: String,
    sender_type: &'static str,
    sender_id: Option<String>,
    content: String,
    attachments: Vec<Value>,
    created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
struct Conv {
    id: String,
    business_id: String,
    customer_id: Option<String>,
    assignee_id: Option<String>,
    status: &'static str,
    channel_type: &'static str,
    channel_id: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    first_response_at: Option<DateTime<Utc>>,
    resolved_at: Option<DateTime<Utc>>,
    closed_at: Option<DateTime<Utc>>,
    customer: Option<Customer>,
    messages: Vec<Msg>,
}

#[derive(Debug, Clone)]
struct Caller {
    user_id: String,
    role: &'static str,
}

/// The simulated PingBack account: one business (the login's), its team and conversations, and
/// a few conversations of another business that must stay invisible.
#[derive(Debug)]
pub struct World {
    business_id: String,
    business_name: String,
    business_created_at: DateTime<Utc>,
    default_channel_id: String,
    members: Vec<Member>,
    conversations: BTreeMap<String, Conv>,
    sessions: BTreeMap<String, Caller>,
    logins: u64,
    messages_this_month: u32,
    message_limit: u32,
    ids: Gen,
}

/// Times as pydantic prints an aware UTC datetime: `Z`, fractional seconds only when present.
fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn opt_ts(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| Value::String(ts(t)))
}

/// The current time at the microsecond precision the vendor stores.
fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

/// Whether `s` is a UUID as Python's `uuid.UUID` reads it (hyphenated or 32 hex digits).
fn parse_uuid(s: &str) -> Option<String> {
    let lower = s.trim().to_ascii_lowercase();
    let hex: String = lower.chars().filter(|c| *c != '-').collect();
    let hyphens_ok = lower.len() == 32
        || (lower.len() == 36 && [8, 13, 18, 23].iter().all(|i| lower.as_bytes()[*i] == b'-'));
    (hyphens_ok && hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| {
        format!(
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        )
    })
}

impl World {
    /// A business with a team of six and `conversations` conversations (plus five of another
    /// business), from `seed`, with times before `now`.
    pub fn generate(seed: u64, conversations: usize, now: DateTime<Utc>) -> World {
        let now = DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
        let mut g = Gen::for_vendor(seed, "pingback", now);
        let business_id = g.uuid();
        let roles: [(&str, &str, bool); 6] = [
            ("owner", "live", true),
            ("admin", "live", true),
            ("agent", "away", true),
            ("agent", "live", true),
            ("agent", "offline", true),
            ("agent", "offline", false),
        ];
        let members = roles
            .iter()
            .enumerate()
            .map(|(i, (role, status, active))| {
                let name = g.agent_name(i);
                let (email, password) = match i {
                    0 => (EMAIL.to_owned(), Some(PASSWORD)),
                    2 => (AGENT_EMAIL.to_owned(), Some(AGENT_PASSWORD)),
                    _ => (g.email_for(&name), None),
                };
                Member {
                    membership_id: g.uuid(),
                    user_id: g.uuid(),
                    email,
                    name,
                    role,
                    status,
                    is_active: *active,
                    invited_at: g.time_within(Duration::days(400)),
                    password,
                }
            })
            .collect();
        let mut world = World {
            business_created_at: g.time_within(Duration::days(500)),
            business_name: "Helpdesk Ltd".to_owned(),
            default_channel_id: g.uuid(),
            business_id,
            members,
            conversations: BTreeMap::new(),
            sessions: BTreeMap::new(),
            logins: 0,
            messages_this_month: 1_000 + g.below(2_000) as u32,
            message_limit: MONTHLY_MESSAGE_LIMIT,
            ids: Gen::for_vendor(seed ^ 0x5eed, "pingback-runtime", now),
        };
        let other_business = g.uuid();
        for i in 0..conversations {
            let conv = world.generate_conversation(&mut g, i, None);
            world.conversations.insert(conv.id.clone(), conv);
        }
        for i in 0..5.min(conversations) {
            let conv =
                world.generate_conversation(&mut g, conversations + i, Some(&other_business));
            world.conversations.insert(conv.id.clone(), conv);
        }
        world
    }

    fn generate_conversation(&self, g: &mut Gen, i: usize, other_business: Option<&str>) -> Conv {
        let business_id = other_business.unwrap_or(&self.business_id).to_owned();
        let channel_type = *g.pick(&[
            "widget",
            "widget",
            "widget",
            "webchat",
            "email",
            "email",
            "whatsapp",
            "whatsapp",
            "telegram",
            "instagram",
            "x",
            "sms",
        ]);
        // A few conversations were opened by an agent without a first message (days ago).
        let turns = if g.chance(0.03) { 0 } else { 1 + g.below(5) };
        let created_at = g.time_within(Duration::days(30))
            - if turns == 0 {
                Duration::days(3)
            } else {
                Duration::zero()
            };
        let customer_uuid = g.uuid();
        let customer = (!g.chance(0.1)).then(|| {
            let (first, last) = g.person();
            // Some customers carry integer ids, as in the docs' own example.
            let legacy = g.chance(0.1);
            Customer {
                id: if legacy {
                    json!(40 + i)
                } else {
                    json!(customer_uuid)
                },
                business_id: if legacy { json!(7) } else { json!(business_id) },
                email: g.chance(0.7).then(|| g.email_for(&first)),
                phone: g.chance(0.4).then(|| g.phone()),
                external_id: g.chance(0.3).then(|| format!("crm-{}", 48_000 + i)),
                name: (!g.chance(0.1)).then(|| format!("{first} {last}")),
                created_at: created_at - Duration::days(g.below(90) as i64),
            }
        });
        let status = *g.pick(&[
            "open", "open", "open", "open", "pending", "pending", "resolved", "resolved", "closed",
        ]);
        let active: Vec<&Member> = self.members.iter().filter(|m| m.is_active).collect();
        let assigned = other_business.is_none() && (status != "open" || g.chance(0.5));
        let assignee_id = assigned
            .then(|| active.get(g.below(active.len())).map(|m| m.user_id.clone()))
            .flatten();
        let conv_id = g.uuid();
        let mut messages = Vec::new();
        let mut t = created_at;
        for turn in 0..turns {
            t = g.time_after(t, Duration::minutes(120));
            let attachments = if g.chance(0.08) {
                vec![json!({
                    "url": format!("https://files.pingback.live/uploads/{}/photo.jpg", g.uuid()),
                    "filename": "photo.jpg",
                    "content_type": "image/jpeg",
                })]
            } else {
                Vec::new()
            };
            messages.push(Msg {
                id: g.uuid(),
                sender_type: "customer",
                sender_id: None,
                content: g.customer_text(),
                attachments,
                created_at: t,
            });
            let replier = assignee_id.clone().or_else(|| {
                (turn == 0 && g.chance(0.3)).then(|| active[g.below(active.len())].user_id.clone())
            });
            if let Some(agent) = replier.filter(|_| turn + 1 < turns || g.chance(0.6)) {
                t = g.time_after(t, Duration::minutes(60));
                messages.push(Msg {
                    id: g.uuid(),
                    sender_type: "agent",
                    sender_id: Some(agent),
                    content: g.agent_text(),
                    attachments: Vec::new(),
                    created_at: t,
                });
            }
        }
        let first_response_at = messages
            .iter()
            .find(|m| m.sender_type == "agent")
            .map(|m| m.created_at);
        let resolved_at =
            matches!(status, "resolved" | "closed").then(|| g.time_after(t, Duration::hours(3)));
        let closed_at = (status == "closed")
            .then(|| g.time_after(resolved_at.unwrap_or(t), Duration::hours(24)));
        let updated_at = closed_at.or(resolved_at).unwrap_or(t);
        Conv {
            id: conv_id,
            customer_id: customer.as_ref().map(|_| customer_uuid),
            business_id,
            assignee_id,
            status,
            channel_type,
            channel_id: (channel_type != "x" || g.chance(0.5)).then(|| g.uuid()),
            created_at,
            updated_at,
            first_response_at,
            resolved_at,
            closed_at,
            customer,
            messages,
        }
    }

    fn member_json(m: &Member) -> Value {
        json!({
            "id": m.membership_id,
            "user_id": m.user_id,
            "email": m.email,
            "name": m.name,
            "role": m.role,
            "status": m.status,
            "is_active": m.is_active,
            "invited_at": ts(m.invited_at),
        })
    }

    fn message_json(conversation_id: &str, m: &Msg) -> Value {
        json!({
            "id": m.id,
            "conversation_id": conversation_id,
            "sender_type": m.sender_type,
            "sender_id": m.sender_id,
            "content": m.content,
            "attachments": m.attachments,
            "created_at": ts(m.created_at),
        })
    }

    /// A conversation as the API shows it; the list leaves `messages` empty (DOC: "may be empty
    /// in list responses for performance").
    fn conv_json(c: &Conv, with_messages: bool) -> Value {
        let customer = c.customer.as_ref().map_or(Value::Null, |p| {
            json!({
                "id": p.id,
                "business_id": p.business_id,
                "name": p.name,
                "email": p.email,
                "phone": p.phone,
                "external_id": p.external_id,
                "created_at": ts(p.created_at),
            })
        });
        let messages: Vec<Value> = if with_messages {
            c.messages
                .iter()
                .map(|m| Self::message_json(&c.id, m))
                .collect()
        } else {
            Vec::new()
        };
        json!({
            "id": c.id,
            "business_id": c.business_id,
            "customer_id": c.customer_id,
            "assignee_id": c.assignee_id,
            "status": c.status,
            "channel_type": c.channel_type,
            "channel_id": c.channel_id,
            "created_at": ts(c.created_at),
            "updated_at": ts(c.updated_at),
            "first_response_at": opt_ts(c.first_response_at),
            "customer": customer,
            "messages": messages,
        })
    }

    fn own(&self, id: &str) -> Option<&Conv> {
        self.conversations
            .get(id)
            .filter(|c| c.business_id == self.business_id)
    }

    fn own_mut(&mut self, id: &str) -> Option<&mut Conv> {
        let business = self.business_id.clone();
        self.conversations
            .get_mut(id)
            .filter(|c| c.business_id == business)
    }

    fn issue_token(&mut self, caller: Caller) -> String {
        self.logins += 1;
        let token = format!(
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.{:016x}{:08x}.{:016x}",
            self.ids.u64(),
            self.logins,
            self.ids.u64()
        );
        self.sessions.insert(token.clone(), caller);
        token
    }

    /// The business the login belongs to.
    pub fn business_id(&self) -> &str {
        &self.business_id
    }

    /// Ids of the business's conversations (those of the other business are excluded).
    pub fn conversation_ids(&self) -> Vec<String> {
        self.conversations
            .values()
            .filter(|c| c.business_id == self.business_id)
            .map(|c| c.id.clone())
            .collect()
    }

    /// How many messages a conversation holds.
    pub fn message_count(&self, conversation: &str) -> usize {
        self.conversations
            .get(conversation)
            .map_or(0, |c| c.messages.len())
    }

    /// Ids of conversations that belong to another business (404 through this login).
    pub fn foreign_conversation_ids(&self) -> Vec<String> {
        self.conversations
            .values()
            .filter(|c| c.business_id != self.business_id)
            .map(|c| c.id.clone())
            .collect()
    }

    /// The `user_id`s of the active team members (the assignable agents).
    pub fn active_agent_ids(&self) -> Vec<String> {
        self.members
            .iter()
            .filter(|m| m.is_active)
            .map(|m| m.user_id.clone())
            .collect()
    }

    /// The `user_id` of the member who logs in with `email`.
    pub fn user_id_of(&self, email: &str) -> Option<String> {
        self.members
            .iter()
            .find(|m| m.email == email)
            .map(|m| m.user_id.clone())
    }

    /// A conversation's status, assignee and message count, for tests that read writes back.
    pub fn conversation_state(&self, id: &str) -> Option<(String, Option<String>, usize)> {
        self.own(id)
            .map(|c| (c.status.to_owned(), c.assignee_id.clone(), c.messages.len()))
    }

    /// Invalidates every issued token (as a logout, a password change or an expiry would).
    pub fn revoke_tokens(&mut self) {
        self.sessions.clear();
    }

    /// How many successful logins the API has served.
    pub fn logins(&self) -> u64 {
        self.logins
    }

    /// Sets the monthly message quota (tests that exhaust it).
    pub fn set_message_limit(&mut self, limit: u32) {
        self.message_limit = limit;
    }

    /// Messages counted against this month's quota.
    pub fn messages_this_month(&self) -> u32 {
        self.messages_this_month
    }
}

/// The PingBack simulator's state.
pub type Shared = Arc<Mutex<World>>;

fn detail(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "detail": message }))).into_response()
}

fn not_found() -> Response {
    detail(StatusCode::NOT_FOUND, "Conversation not found")
}

fn unauthorized(message: &str) -> Response {
    let mut response = detail(StatusCode::UNAUTHORIZED, message);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    response
}

/// FastAPI's validation error: every problem found, each with its location.
fn validation(problems: Vec<Value>) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({ "detail": problems })),
    )
        .into_response()
}

fn problem(kind: &str, loc: &[&str], msg: &str, input: Value) -> Value {
    json!({"type": kind, "loc": loc, "msg": msg, "input": input})
}

fn lock(world: &Shared) -> Result<std::sync::MutexGuard<'_, World>, Response> {
    world
        .lock()
        .map_err(|_| detail(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"))
}

/// Checks the bearer token and hands the caller to the handler.
async fn gate(State(world): State<Shared>, mut request: Request, next: Next) -> Response {
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

async fn add_slash(OriginalUri(uri): OriginalUri) -> Response {
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
fn json_object(body: &[u8]) -> Result<serde_json::Map<String, Value>, Response> {
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

fn required_string(
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

async fn login(State(world): State<Shared>, body: axum::body::Bytes) -> Response {
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

async fn me(State(world): State<Shared>, Extension(caller): Extension<Caller>) -> Response {
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
fn int_param(
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

async fn list_conversations(
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
        list.sort_by(|a, b| b.updated_at.cmp(&a.updated_at).then(b.id.cmp(&a.id)));
        let items: Vec<Value> = paginate(&list, page, limit)
            .into_iter()
            .map(|c| World::conv_json(c, false))
            .collect();
        Ok(Json(Value::Array(items)).into_response())
    };
    run().unwrap_or_else(|e| e)
}

/// A UUID path parameter, or FastAPI's 422 naming it.
fn path_uuid(name: &'static str, raw: &str, problems: &mut Vec<Value>) -> String {
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

fn conversation_path(raw: &str) -> Result<String, Response> {
    let mut problems = Vec::new();
    let id = path_uuid("conversation_id", raw, &mut problems);
    if problems.is_empty() {
        Ok(id)
    } else {
        Err(validation(problems))
    }
}

async fn show_conversation(
    State(world): State<Shared>,
    Path(conversation_id): Path<String>,
) -> Response {
    let run = || -> Result<Response, Response> {
        let id = conversation_path(&conversation_id)?;
        let w = lock(&world)?;
        let c = w.own(&id).ok_or_else(not_found)?;
        Ok(Json(World::conv_json(c, true)).into_response())
    };
    run().unwrap_or_else(|e| e)
}

/// The monthly quota answer (DOC: 429 when the monthly message limit is reached; the body,
/// not shown, is INFERRED in the shape of the documented 402 plan-limit bodies).
fn message_limit_reached(w: &World) -> Response {
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

async fn create_conversation(
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
        let body = World::conv_json(&conv, true);
        w.conversations.insert(id, conv);
        Ok(Json(body).into_response())
    };
    run().unwrap_or_else(|e| e)
}

async fn send_message(
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

async fn resolve(State(world): State<Shared>, Path(conversation_id): Path<String>) -> Response {
    transition(&world, &conversation_id, "resolved")
}

async fn close(State(world): State<Shared>, Path(conversation_id): Path<String>) -> Response {
    transition(&world, &conversation_id, "closed")
}

/// `PUT .../resolve` and `.../close`: set the status and its timestamp; a repeat is a 200
/// `{"detail": "Already resolved"}` / `{"detail": "Already closed"}` (DOC).
fn transition(world: &Shared, conversation_id: &str, to: &'static str) -> Response {
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
fn assign_to(
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

async fn assign(
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

async fn team_assign(
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

async fn team_members(State(world): State<Shared>) -> Response {
    let run = || -> Result<Response, Response> {
        let w = lock(&world)?;
        Ok(Json(Value::Array(
            w.members.iter().map(World::member_json).collect(),
        ))
        .into_response())
    };
    run().unwrap_or_else(|e| e)
}

/// The `[[connections]]` block of a gateway pointing at this simulator on `base`
/// (e.g. `http://127.0.0.1:9100`).
pub fn config_snippet(base: &str) -> String {
    format!(
        r#"[[connections]]
id = "helpdesk-pingback"
provider = "pingback"
base_url = "{base}{PREFIX}"
email = "{EMAIL}"
password = "{PASSWORD}"
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_uuids_like_python() {
        assert_eq!(
            parse_uuid("C3D4E5F6-A7B8-9012-CDEF-123456789012").as_deref(),
            Some("c3d4e5f6-a7b8-9012-cdef-123456789012")
        );
        assert_eq!(
            parse_uuid("c3d4e5f6a7b89012cdef123456789012").as_deref(),
            Some("c3d4e5f6-a7b8-9012-cdef-123456789012")
        );
        assert_eq!(parse_uuid("42"), None);
        assert_eq!(parse_uuid("g7b8c9d0-e1f2-3456-abcd-567890123456"), None);
    }

    #[test]
    fn the_same_seed_gives_the_same_world() {
        let now = Utc::now();
        let a = World::generate(7, 40, now);
        let b = World::generate(7, 40, now);
        assert_eq!(a.conversation_ids(), b.conversation_ids());
        assert_eq!(a.conversation_ids().len(), 40);
        assert_eq!(a.foreign_conversation_ids().len(), 5);
        let statuses: std::collections::BTreeSet<&str> =
            a.conversations.values().map(|c| c.status).collect();
        assert_eq!(statuses.len(), 4, "every status occurs");
        assert!(
            a.conversations
                .values()
                .any(|c| c.customer.as_ref().is_some_and(|p| p.id.is_number()))
        );
        assert!(a.conversations.values().any(|c| c.assignee_id.is_none()));
    }
}
