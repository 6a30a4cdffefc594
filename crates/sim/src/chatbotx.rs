//! ChatbotX public API simulator, as described by https://chatbotx.io/docs/api-reference and the
//! vendor's open-source server (oRPC handlers): workspace Bearer tokens (or the deprecated
//! `?token=`), read-only tokens limited to reads, bigint ids as numeric strings, cursor-paged
//! conversations (base64 of `{"lastActivityAt","id"}`, newest activity first, archived and
//! blocked hidden unless asked for) and messages (newest first, `perPage` ≤ 50), page-numbered
//! members, assign / bot / archive actions, replies with `Idempotency-Key`, the oRPC error
//! envelope `{defined, code, status, message, data}`, and 120 requests per fixed 10 s window per
//! workspace (429 `tooManyRequests` with `Retry-After`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use crate::world::Gen;

/// Where the API lives under the simulator (the vendor's `/v1/...` paths follow it).
pub const PREFIX: &str = "/chatbotx/api";
/// The simulated workspace's API token (scope `inbox`, read and write).
pub const TOKEN: &str = "cbx-switchboard-sim-token";
/// A read-only token of the same workspace: every non-GET call is 403 `FORBIDDEN`.
pub const READ_ONLY_TOKEN: &str = "cbx-switchboard-sim-read-only-token";
/// The simulated workspace's id.
pub const WORKSPACE_ID: &str = "11590944070180001";
/// The quota in ChatbotX's server code: 120 requests per fixed 10 s window per workspace.
pub const QUOTA: u32 = 120;
/// The largest `perPage` of messages and members (`PUBLIC_LIST_MAX_PER_PAGE`).
pub const MAX_PER_PAGE: usize = 50;

const WINDOW_MS: i64 = 10_000;
const DEFAULT_PER_PAGE: usize = 20;
const MAX_TEXT_CHARS: usize = 1000;
const MAX_IDEMPOTENCY_KEY: usize = 255;

const WORKSPACE: u64 = 11_590_944_070_180_001;
const FIRST_USER: u64 = 11_590_944_070_170_001;
const FIRST_MEMBER: u64 = 11_590_944_070_175_001;
const FIRST_TEAM: u64 = 11_590_944_070_130_001;
const FIRST_INBOX: u64 = 11_590_944_070_140_001;
const FIRST_CONTACT: u64 = 11_590_944_070_160_001;
const FIRST_CONVERSATION: u64 = 11_590_944_070_190_001;
const FIRST_OBJECT: u64 = 11_590_944_070_300_001;

/// The channels of the workspace's inboxes (`channelTypes`, without the UI-only `omnichannel`).
const CHANNELS: [&str; 8] = [
    "webchat",
    "whatsapp",
    "messenger",
    "instagram",
    "telegram",
    "smtp",
    "zalo",
    "tiktok",
];
const TAGS: [&str; 5] = ["noAdminReply", "unread", "followUp", "archived", "blocked"];

#[derive(Debug, Clone)]
struct User {
    id: u64,
    name: String,
    email: String,
    image: Option<String>,
    created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
struct Member {
    id: u64,
    role: &'static str,
    user: User,
}

#[derive(Debug, Clone)]
struct Team {
    id: u64,
    name: &'static str,
    created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
struct Inbox {
    id: u64,
    channel: &'static str,
    name: String,
}

#[derive(Debug, Clone)]
struct Contact {
    id: u64,
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    avatar: Option<String>,
    locale: Option<&'static str>,
    blocked_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
struct ContactInbox {
    id: u64,
    inbox: usize,
}

#[derive(Debug, Clone)]
struct Attachment {
    id: u64,
    file_type: &'static str,
    mime_type: &'static str,
    name: Option<String>,
    origin_path: String,
}

#[derive(Debug, Clone)]
struct Msg {
    id: u64,
    created_at: DateTime<Utc>,
    contact_inbox: u64,
    text: Option<String>,
    message_type: &'static str,
    sender_type: &'static str,
    sender_id: Option<u64>,
    is_internal: bool,
    delivered_at: Option<DateTime<Utc>>,
    read_at: Option<DateTime<Utc>>,
    failed_at: Option<DateTime<Utc>>,
    attachments: Vec<Attachment>,
}

#[derive(Debug, Clone)]
struct Conv {
    id: u64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    bot_enabled: bool,
    archived_at: Option<DateTime<Utc>>,
    last_activity_at: DateTime<Utc>,
    followed: bool,
    agent_last_read_at: Option<DateTime<Utc>>,
    contact_last_read_at: Option<DateTime<Utc>>,
    admin_replied_at: Option<DateTime<Utc>>,
    contact_replied_at: Option<DateTime<Utc>>,
    contact: Contact,
    contact_inboxes: Vec<ContactInbox>,
    assigned_user: Option<u64>,
    assigned_team: Option<u64>,
    /// Oldest first.
    messages: Vec<Msg>,
}

#[derive(Debug, Clone)]
struct Stored {
    fingerprint: String,
    status: StatusCode,
    body: Value,
}

/// The simulated ChatbotX workspace.
#[derive(Debug)]
pub struct World {
    conversations: BTreeMap<u64, Conv>,
    members: Vec<Member>,
    teams: Vec<Team>,
    inboxes: Vec<Inbox>,
    next_id: u64,
    window: (i64, u32),
    quota: u32,
    idempotency: HashMap<String, Stored>,
}

/// The ChatbotX simulator's state.
pub type Shared = Arc<Mutex<World>>;

/// Milliseconds are all ChatbotX's timestamps carry (JavaScript `Date`).
fn millis(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

fn ts(t: DateTime<Utc>) -> Value {
    Value::String(t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

fn opt_ts(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, ts)
}

fn id(n: u64) -> Value {
    Value::String(n.to_string())
}

fn opt_id(n: Option<u64>) -> Value {
    n.map_or(Value::Null, id)
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding, like Node's `Buffer.toString("base64")`.
fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(BASE64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard or URL-safe base64, padded or not (Node's decoder is as lenient).
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

impl World {
    /// A workspace of `conversations` conversations (a few of them with blocked contacts, so
    /// hidden from the default lists), six members, two inbox teams and eight channel inboxes,
    /// from `seed`.
    pub fn generate(seed: u64, conversations: usize, now: DateTime<Utc>) -> World {
        let mut g = Gen::for_vendor(seed, "chatbotx", millis(now));
        let members = (0..6)
            .map(|i| {
                let name = g.agent_name(i);
                let first = name
                    .split(' ')
                    .next()
                    .unwrap_or("agent")
                    .to_ascii_lowercase();
                let user = User {
                    id: FIRST_USER + i as u64,
                    email: format!("{first}@shop.example.com"),
                    image: (i % 3 != 2).then(|| {
                        format!(
                            "https://cdn.example.com/avatars/{}.png",
                            FIRST_USER + i as u64
                        )
                    }),
                    created_at: g.time_within(Duration::days(400)),
                    name,
                };
                Member {
                    id: FIRST_MEMBER + i as u64 * 3,
                    role: match i {
                        0 => "owner",
                        1 => "admin",
                        _ => "member",
                    },
                    user,
                }
            })
            .collect();
        let teams = [(0u64, "Support FR"), (1, "Returns & Refunds")]
            .into_iter()
            .map(|(i, name)| Team {
                id: FIRST_TEAM + i,
                name,
                created_at: g.time_within(Duration::days(300)),
            })
            .collect();
        let inboxes = CHANNELS
            .iter()
            .enumerate()
            .map(|(i, channel)| Inbox {
                id: FIRST_INBOX + i as u64,
                channel,
                name: format!("Shop {channel}"),
            })
            .collect();
        let mut world = World {
            conversations: BTreeMap::new(),
            members,
            teams,
            inboxes,
            next_id: FIRST_OBJECT,
            window: (0, 0),
            quota: QUOTA,
            idempotency: HashMap::new(),
        };
        let mut previous: Option<DateTime<Utc>> = None;
        for i in 0..conversations {
            let mut conv = world.generate_conversation(&mut g, i);
            // A few conversations share their activity time with the previous one: the list
            // then orders them by id.
            if let Some(t) = previous.filter(|_| g.chance(0.05)) {
                conv.last_activity_at = t.max(conv.created_at);
            }
            previous = Some(conv.last_activity_at);
            world.conversations.insert(conv.id, conv);
        }
        world
    }

    fn object_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn generate_conversation(&mut self, g: &mut Gen, i: usize) -> Conv {
        let weights = [0usize, 0, 0, 0, 1, 1, 1, 2, 2, 3, 3, 4, 5, 6, 7];
        let inbox = *g.pick(&weights);
        let channel = CHANNELS[inbox];
        let created_at = g.time_within(Duration::days(45));
        let (first, last) = g.person();
        let contact = Contact {
            id: FIRST_CONTACT + i as u64,
            email: (channel == "smtp" || g.chance(0.6)).then(|| g.email_for(&first)),
            phone: (channel == "whatsapp" || g.chance(0.3)).then(|| g.phone()),
            avatar: g.chance(0.3).then(|| {
                format!(
                    "https://cdn.example.com/contacts/{}.jpg",
                    FIRST_CONTACT + i as u64
                )
            }),
            locale: g
                .chance(0.7)
                .then(|| *g.pick(&["en", "fr", "de", "ja", "es", "vi"])),
            first_name: (!g.chance(0.05)).then_some(first),
            last_name: (!g.chance(0.1)).then_some(last),
            blocked_at: g.chance(0.03).then_some(created_at),
            created_at,
        };
        let mut contact_inboxes = vec![ContactInbox {
            id: self.object_id(),
            inbox,
        }];
        if g.chance(0.15) {
            let other = (inbox + 1 + g.below(CHANNELS.len() - 1)) % CHANNELS.len();
            contact_inboxes.push(ContactInbox {
                id: self.object_id(),
                inbox: other,
            });
        }
        let bot_enabled = g.chance(0.7);
        let users: Vec<u64> = self.members.iter().map(|m| m.user.id).collect();
        let teams: Vec<u64> = self.teams.iter().map(|t| t.id).collect();
        let (assigned_user, assigned_team) = if !bot_enabled {
            (g.chance(0.85).then(|| *g.pick(&users)), None)
        } else if g.chance(0.15) {
            (None, Some(*g.pick(&teams)))
        } else {
            (g.chance(0.05).then(|| *g.pick(&users)), None)
        };
        let ci = contact_inboxes[0].id;
        let mut t = created_at;
        let mut messages = Vec::new();
        let turns = if g.chance(0.04) {
            40 + g.below(40)
        } else {
            1 + g.below(5)
        };
        for turn in 0..turns {
            t = g.time_after(t, Duration::minutes(60));
            let photo = g.chance(0.08);
            let text = (!photo).then(|| g.customer_text());
            let mut m = self.message(t, ci, text, "incoming", "contact", Some(contact.id));
            if photo {
                let id = self.object_id();
                m.attachments.push(Attachment {
                    id,
                    file_type: "image",
                    mime_type: "image/jpeg",
                    name: g
                        .chance(0.5)
                        .then(|| format!("IMG_{}.jpg", 1000 + g.below(9000))),
                    origin_path: format!("workspaces/{WORKSPACE}/attachments/{id}.jpg"),
                });
            }
            messages.push(m);
            t = g.time_after(t, Duration::minutes(2));
            let human_turn = !bot_enabled && turn + 1 == turns;
            if human_turn {
                if let Some(user) = assigned_user {
                    let name = self.user(user).map(|u| u.name.clone()).unwrap_or_default();
                    messages.push(self.message(
                        t,
                        ci,
                        Some(format!("Conversation assigned to {name}")),
                        "activity",
                        "system",
                        None,
                    ));
                    t = g.time_after(t, Duration::minutes(5));
                    let text = g.agent_text();
                    let mut reply = self.message(t, ci, Some(text), "outgoing", "user", Some(user));
                    reply.is_internal = g.chance(0.1);
                    messages.push(reply);
                }
            } else {
                let text = g.bot_text();
                messages.push(self.message(t, ci, Some(text), "outgoing", "bot", None));
            }
        }
        for m in messages
            .iter_mut()
            .filter(|m| m.message_type == "outgoing" && !m.is_internal)
        {
            let roll = g.below(20);
            if roll == 0 {
                m.failed_at = Some(m.created_at + Duration::seconds(2));
            } else if roll < 12 {
                m.delivered_at = Some(m.created_at + Duration::seconds(1));
                if roll < 7 {
                    m.read_at = Some(m.created_at + Duration::seconds(30));
                }
            }
        }
        let contact_replied_at = messages
            .iter()
            .rev()
            .find(|m| m.sender_type == "contact")
            .map(|m| m.created_at);
        let admin_replied_at = messages
            .iter()
            .rev()
            .find(|m| m.sender_type == "user" && !m.is_internal)
            .map(|m| m.created_at);
        let archived_at = g.chance(0.2).then(|| g.time_after(t, Duration::hours(6)));
        Conv {
            id: FIRST_CONVERSATION + i as u64 * 7,
            created_at,
            updated_at: archived_at.unwrap_or(t),
            bot_enabled,
            archived_at,
            last_activity_at: t,
            followed: g.chance(0.1),
            agent_last_read_at: g.chance(0.6).then_some(t),
            contact_last_read_at: g.chance(0.5).then_some(t),
            admin_replied_at,
            contact_replied_at,
            contact,
            contact_inboxes,
            assigned_user,
            assigned_team,
            messages,
        }
    }

    fn message(
        &mut self,
        created_at: DateTime<Utc>,
        contact_inbox: u64,
        text: Option<String>,
        message_type: &'static str,
        sender_type: &'static str,
        sender_id: Option<u64>,
    ) -> Msg {
        Msg {
            id: self.object_id(),
            created_at: millis(created_at),
            contact_inbox,
            text,
            message_type,
            sender_type,
            sender_id,
            is_internal: false,
            delivered_at: None,
            read_at: None,
            failed_at: None,
            attachments: Vec::new(),
        }
    }

    /// Overrides the quota (tests that need more headroom, or a 429 soon).
    pub fn set_quota(&mut self, quota: u32) {
        self.quota = quota;
    }

    /// Every conversation id.
    pub fn conversation_ids(&self) -> Vec<String> {
        self.conversations.keys().map(u64::to_string).collect()
    }

    /// The conversations the default lists show (open and archived together): every one whose
    /// contact is not blocked.
    pub fn listed_conversation_ids(&self) -> Vec<String> {
        self.conversations
            .values()
            .filter(|c| c.contact.blocked_at.is_none())
            .map(|c| c.id.to_string())
            .collect()
    }

    /// How many messages (internal notes included) a conversation holds.
    pub fn message_count(&self, conversation: &str) -> usize {
        conversation
            .parse()
            .ok()
            .and_then(|id| self.conversations.get(&id))
            .map_or(0, |c| c.messages.len())
    }

    /// How many of a conversation's messages are internal notes.
    pub fn internal_note_count(&self, conversation: &str) -> usize {
        conversation
            .parse()
            .ok()
            .and_then(|id| self.conversations.get(&id))
            .map_or(0, |c| c.messages.iter().filter(|m| m.is_internal).count())
    }

    /// The user ids of the workspace's members (what `assign` takes).
    pub fn member_user_ids(&self) -> Vec<String> {
        self.members.iter().map(|m| m.user.id.to_string()).collect()
    }

    fn user(&self, id: u64) -> Option<&User> {
        self.members.iter().map(|m| &m.user).find(|u| u.id == id)
    }

    fn user_json(u: &User) -> Value {
        json!({
            "id": id(u.id), "name": u.name, "email": u.email, "emailVerified": true,
            "image": u.image, "isAnonymous": false, "createdAt": ts(u.created_at), "updatedAt": ts(u.created_at),
        })
    }

    fn team_json(t: &Team) -> Value {
        json!({
            "id": id(t.id), "name": t.name, "workspaceId": WORKSPACE_ID,
            "createdAt": ts(t.created_at), "updatedAt": ts(t.created_at),
        })
    }

    fn inbox_json(i: &Inbox) -> Value {
        json!({"id": id(i.id), "name": i.name, "channel": i.channel, "workspaceId": WORKSPACE_ID})
    }

    fn contact_json(c: &Contact) -> Value {
        let full = [c.first_name.as_deref(), c.last_name.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        json!({
            "id": id(c.id), "avatar": c.avatar, "phoneNumber": c.phone, "email": c.email,
            "emailVerified": c.email.is_some(), "emailOptIn": c.email.is_some(),
            "firstName": c.first_name, "lastName": c.last_name,
            "fullName": (!full.is_empty()).then_some(full),
            "lastReadAt": null, "ref": null, "country": null, "state": null, "city": null,
            "location": null, "locale": c.locale, "timezone": null,
            "subscribedAt": ts(c.created_at), "broadcastSubscribedAt": null,
            "blockedAt": opt_ts(c.blocked_at), "workspaceId": WORKSPACE_ID,
            "createdAt": ts(c.created_at), "updatedAt": ts(c.created_at),
            "contactsOnSequences": [],
        })
    }

    fn message_json(&self, conversation: u64, m: &Msg, relations: bool) -> Value {
        let mut v = json!({
            "id": id(m.id), "createdAt": ts(m.created_at), "updatedAt": ts(m.created_at),
            "conversationId": id(conversation), "contactInboxId": id(m.contact_inbox),
            "workspaceId": WORKSPACE_ID, "text": m.text, "contentAttributes": {},
            "messageType": m.message_type, "contentType": "text", "senderType": m.sender_type,
            "senderId": opt_id(m.sender_id),
            "sourceId": (m.sender_type == "contact").then(|| format!("src.{}", m.id)),
            "isInternal": m.is_internal, "deliveredAt": opt_ts(m.delivered_at), "readAt": opt_ts(m.read_at),
            "failedAt": opt_ts(m.failed_at),
            "failureReason": m.failed_at.map(|_| "The channel rejected the message"),
        });
        if relations {
            v["attachments"] = m
                .attachments
                .iter()
                .map(|a| {
                    json!({
                        "id": id(a.id), "messageId": id(m.id), "fileType": a.file_type, "mimeType": a.mime_type,
                        "name": a.name, "originPath": a.origin_path, "size": 48_213,
                        "url": format!("https://files.chatbotx.example/{}?X-Amz-Expires=3600", a.origin_path),
                    })
                })
                .collect();
            if m.sender_type == "user"
                && let Some(u) = m.sender_id.and_then(|u| self.user(u))
            {
                v["user"] = Self::user_json(u);
            }
        }
        v
    }

    /// A conversation as `conversations.list` / `conversations.get` return it; `messages` holds
    /// the latest message (any type in the list, incoming or outgoing in `get`).
    fn conv_json(&self, c: &Conv, detail: bool) -> Value {
        let contact_inboxes: Vec<Value> = c
            .contact_inboxes
            .iter()
            .filter_map(|ci| {
                let inbox = self.inboxes.get(ci.inbox)?;
                Some(json!({
                    "id": id(ci.id), "contactId": id(c.contact.id), "inboxId": id(inbox.id),
                    "channel": inbox.channel, "inbox": Self::inbox_json(inbox),
                }))
            })
            .collect();
        let latest = c
            .messages
            .iter()
            .rev()
            .find(|m| !detail || matches!(m.message_type, "incoming" | "outgoing"));
        let inbox = c
            .contact_inboxes
            .first()
            .and_then(|ci| self.inboxes.get(ci.inbox));
        json!({
            "id": id(c.id), "createdAt": ts(c.created_at), "updatedAt": ts(c.updated_at),
            "botEnabled": c.bot_enabled, "botResumeAt": null, "archivedAt": opt_ts(c.archived_at),
            "additionalAttributes": {}, "contactLastReadAt": opt_ts(c.contact_last_read_at),
            "agentLastReadAt": opt_ts(c.agent_last_read_at), "lastActivityAt": ts(c.last_activity_at),
            "followed": c.followed, "workspaceId": WORKSPACE_ID, "contactId": id(c.contact.id),
            "adminRepliedAt": opt_ts(c.admin_replied_at), "contactRepliedAt": opt_ts(c.contact_replied_at),
            "contactInboxes": contact_inboxes,
            "inbox": inbox.map_or(Value::Null, Self::inbox_json),
            "messages": latest.map(|m| self.message_json(c.id, m, false)).into_iter().collect::<Vec<_>>(),
            "contact": Self::contact_json(&c.contact),
            "assignedUser": c.assigned_user.and_then(|u| self.user(u)).map_or(Value::Null, Self::user_json),
            "assignedInboxTeam": c
                .assigned_team
                .and_then(|t| self.teams.iter().find(|team| team.id == t))
                .map_or(Value::Null, Self::team_json),
            "aiContextLastMessageId": null,
            "assignedUserId": opt_id(c.assigned_user),
            "assignedInboxTeamId": opt_id(c.assigned_team),
        })
    }

    fn channels_of(&self, c: &Conv) -> Vec<&'static str> {
        c.contact_inboxes
            .iter()
            .filter_map(|ci| self.inboxes.get(ci.inbox).map(|i| i.channel))
            .collect()
    }
}

// ── Errors: the oRPC envelope ────────────────────────────────────────────────────────────

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body =
        json!({"defined": true, "code": code, "status": status.as_u16(), "message": message});
    (status, Json(body)).into_response()
}

fn invalid(field: &str, message: &str) -> Response {
    let body = json!({
        "defined": true, "code": "invalidRequestData", "status": 422, "message": "Input validation failed",
        "data": {"issues": [{"code": "custom", "message": message, "path": [field]}]},
    });
    (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
}

fn not_found(what: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "notFound",
        &format!("{what} not found"),
    )
}

fn lock(world: &Shared) -> Result<MutexGuard<'_, World>, Response> {
    world.lock().map_err(|_| {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_SERVER_ERROR",
            "An unexpected error occurred",
        )
    })
}

/// A path id: a numeric string (`zodBigintAsString`), else 422 naming the field.
fn path_id(field: &str, value: &str) -> Result<u64, Response> {
    if value.is_empty() || value.len() > 19 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(field, "Invalid input: expected a numeric string"));
    }
    value
        .parse()
        .map_err(|_| invalid(field, "Invalid input: expected a numeric string"))
}

// ── Auth, scope and the per-workspace rate limit ─────────────────────────────────────────

async fn gate(State(world): State<Shared>, request: Request, next: Next) -> Response {
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
        .fallback(|| async { error(StatusCode::NOT_FOUND, "NOT_FOUND", "Not found") })
        .layer(axum::middleware::from_fn_with_state(world.clone(), gate))
        .with_state(world)
}

type Params = BTreeMap<String, String>;

fn per_page(params: &Params, default: usize, max: Option<usize>) -> Result<usize, Response> {
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
fn json_array(params: &Params, name: &str) -> Result<Vec<String>, Response> {
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

fn decode_json_cursor(raw: &str) -> Option<Map<String, Value>> {
    let bytes = base64_decode(raw)?;
    match serde_json::from_slice::<Value>(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

fn cursor_id(map: &Map<String, Value>) -> Option<u64> {
    map.get("id")?.as_str()?.parse().ok()
}

fn cursor_time(value: Option<&Value>) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value?.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn invalid_cursor() -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "invalidCursor",
        "The cursor is invalid. Start again without a cursor.",
    )
}

fn conversation_cursor(c: &Conv) -> String {
    let json = json!({"lastActivityAt": ts(c.last_activity_at), "id": c.id.to_string()});
    base64_encode(json.to_string().as_bytes())
}

async fn list_workspaces() -> Response {
    Json(json!({"data": [{"id": WORKSPACE_ID, "name": "Shop"}]})).into_response()
}

async fn list_conversations(State(world): State<Shared>, Query(params): Query<Params>) -> Response {
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
        list.sort_by(|a, b| {
            b.last_activity_at
                .cmp(&a.last_activity_at)
                .then(b.id.cmp(&a.id))
        });
        let more = list.len() > per_page;
        list.truncate(per_page);
        let next_cursor = list.last().filter(|_| more).map(|c| conversation_cursor(c));
        let prev_cursor = after.map(|_| {
            list.first()
                .map_or_else(String::new, |c| conversation_cursor(c))
        });
        let data: Vec<Value> = list.iter().map(|c| w.conv_json(c, false)).collect();
        Ok(
            Json(json!({"data": data, "nextCursor": next_cursor, "prevCursor": prev_cursor}))
                .into_response(),
        )
    };
    run().unwrap_or_else(|e| e)
}

async fn get_conversation(State(world): State<Shared>, Path(raw): Path<String>) -> Response {
    let run = || -> Result<Response, Response> {
        let id = path_id("id", &raw)?;
        let w = lock(&world)?;
        let c = w
            .conversations
            .get(&id)
            .ok_or_else(|| not_found("Conversation"))?;
        Ok(Json(json!({"data": w.conv_json(c, true)})).into_response())
    };
    run().unwrap_or_else(|e| e)
}

/// Checks the `Idempotency-Key` of a write: `Ok(None)` without one, the stored answer when the
/// same request was already made with it, 422 when it was used for another request.
fn replay(
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

fn remember(
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

fn json_body(body: &[u8]) -> Result<Map<String, Value>, Response> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(invalid("body", "Invalid input: expected object")),
    }
}

async fn conversation_action(
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

async fn list_messages(
    State(world): State<Shared>,
    Path(raw): Path<String>,
    Query(params): Query<Params>,
) -> Response {
    let run = || -> Result<Response, Response> {
        let id = path_id("conversationId", &raw)?;
        let per_page = per_page(&params, DEFAULT_PER_PAGE, Some(MAX_PER_PAGE))?;
        let before = match params.get("cursor").filter(|c| !c.is_empty()) {
            None => None,
            Some(c) => {
                let map = decode_json_cursor(c).ok_or_else(invalid_cursor)?;
                let time = cursor_time(map.get("createdAt")).ok_or_else(invalid_cursor)?;
                Some((time, cursor_id(&map).ok_or_else(invalid_cursor)?))
            }
        };
        let w = lock(&world)?;
        let c = w
            .conversations
            .get(&id)
            .ok_or_else(|| not_found("Conversation"))?;
        let mut list: Vec<&Msg> = c
            .messages
            .iter()
            .filter(|m| {
                before.is_none_or(|(t, mid)| m.created_at < t || (m.created_at == t && m.id < mid))
            })
            .collect();
        list.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        let more = list.len() > per_page;
        list.truncate(per_page);
        let next_cursor = list.last().filter(|_| more).map(|m| {
            let json =
                json!({"direction": "prev", "createdAt": ts(m.created_at), "id": m.id.to_string()});
            base64_encode(json.to_string().as_bytes())
        });
        let data: Vec<Value> = list.iter().map(|m| w.message_json(c.id, m, true)).collect();
        Ok(
            Json(json!({"data": data, "nextCursor": next_cursor, "prevCursor": null}))
                .into_response(),
        )
    };
    run().unwrap_or_else(|e| e)
}

async fn get_message(
    State(world): State<Shared>,
    Path((raw, raw_message)): Path<(String, String)>,
    Query(params): Query<Params>,
) -> Response {
    let run = || -> Result<Response, Response> {
        let id = path_id("conversationId", &raw)?;
        let message_id = path_id("messageId", &raw_message)?;
        let created_at = params
            .get("createdAt")
            .and_then(|v| DateTime::parse_from_rfc3339(v).ok())
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| invalid("createdAt", "Invalid input: expected date"))?;
        let w = lock(&world)?;
        let c = w
            .conversations
            .get(&id)
            .ok_or_else(|| not_found("Message"))?;
        // The sharded store finds a message only with its exact `createdAt`.
        let m = c
            .messages
            .iter()
            .find(|m| m.id == message_id && m.created_at == created_at)
            .ok_or_else(|| not_found("Message"))?;
        Ok(Json(w.message_json(c.id, m, true)).into_response())
    };
    run().unwrap_or_else(|e| e)
}

async fn send_message(
    State(world): State<Shared>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let run = || -> Result<Response, Response> {
        let id = path_id("conversationId", &raw)?;
        let body = json_body(&body)?;
        let mut w = lock(&world)?;
        let fingerprint = format!("POST {id}/messages {}", Value::Object(body.clone()));
        let (key, stored) = replay(&w, &headers, &fingerprint)?;
        if let Some(stored) = stored {
            return Ok(stored);
        }
        if !w.conversations.contains_key(&id) {
            return Err(not_found("Conversation"));
        }
        if body.contains_key("flowId") {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "businessError",
                "An error occurred while processing your request",
            ));
        }
        let text = match body.get("text") {
            Some(Value::String(s)) => s.trim().to_owned(),
            Some(_) => return Err(invalid("text", "Invalid input: expected string")),
            None => {
                return Err(invalid(
                    "text",
                    "Invalid input: expected string, received undefined",
                ));
            }
        };
        if text.is_empty() {
            return Err(invalid(
                "text",
                "Too small: expected string to have ≥1 characters",
            ));
        }
        if text.chars().count() > MAX_TEXT_CHARS {
            return Err(invalid(
                "text",
                "Too big: expected string to have ≤1000 characters",
            ));
        }
        let message_id = w.object_id();
        let Some(c) = w.conversations.get_mut(&id) else {
            return Err(not_found("Conversation"));
        };
        let last = c.messages.last().map(|m| m.created_at);
        let created_at = millis(Utc::now()).max(last.unwrap_or(DateTime::<Utc>::UNIX_EPOCH));
        let contact_inbox = c.contact_inboxes.first().map_or(0, |ci| ci.id);
        let message = Msg {
            id: message_id,
            created_at,
            contact_inbox,
            text: Some(text),
            message_type: "outgoing",
            sender_type: "api",
            sender_id: None,
            is_internal: false,
            delivered_at: None,
            read_at: None,
            failed_at: None,
            attachments: Vec::new(),
        };
        c.messages.push(message.clone());
        c.last_activity_at = created_at;
        c.admin_replied_at = Some(created_at);
        c.updated_at = created_at;
        let json = w.message_json(id, &message, true);
        Ok(remember(
            &mut w,
            key,
            fingerprint,
            StatusCode::CREATED,
            json,
        ))
    };
    run().unwrap_or_else(|e| e)
}

fn member_json(m: &Member) -> Value {
    json!({
        "id": id(m.id), "userId": id(m.user.id), "workspaceId": WORKSPACE_ID, "role": m.role,
        "permissions": {}, "notificationTypes": {}, "notificationChannels": {},
        "createdAt": ts(m.user.created_at), "updatedAt": ts(m.user.created_at),
        "user": {"id": id(m.user.id), "name": m.user.name, "image": m.user.image},
    })
}

async fn list_members(State(world): State<Shared>, Query(params): Query<Params>) -> Response {
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

async fn get_member(State(world): State<Shared>, Path(raw): Path<String>) -> Response {
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

async fn list_teams(State(world): State<Shared>) -> Response {
    let run = || -> Result<Response, Response> {
        let w = lock(&world)?;
        let data: Vec<Value> = w.teams.iter().map(World::team_json).collect();
        Ok(Json(json!({"data": data, "pageCount": 1})).into_response())
    };
    run().unwrap_or_else(|e| e)
}

async fn list_inboxes(State(world): State<Shared>) -> Response {
    let run = || -> Result<Response, Response> {
        let w = lock(&world)?;
        let data: Vec<Value> = w.inboxes.iter().map(World::inbox_json).collect();
        Ok(Json(json!({"data": data})).into_response())
    };
    run().unwrap_or_else(|e| e)
}

/// The `[[connections]]` block of a gateway pointing at this simulator on `base`
/// (e.g. `http://127.0.0.1:9100`).
pub fn config_snippet(base: &str) -> String {
    format!(
        r#"[[connections]]
id = "support-chatbotx"
provider = "chatbotx"
base_url = "{base}{PREFIX}"
token = "{TOKEN}"
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_like_node() {
        for s in [
            "",
            "a",
            "ab",
            "abc",
            r#"{"lastActivityAt":"2026-01-15T10:45:00.123Z","id":"11590944070190001"}"#,
        ] {
            let encoded = base64_encode(s.as_bytes());
            assert_eq!(encoded.len() % 4, 0);
            assert_eq!(base64_decode(&encoded).as_deref(), Some(s.as_bytes()));
        }
        assert_eq!(base64_encode(b"{\"a\":1}"), "eyJhIjoxfQ==");
        assert_eq!(
            base64_decode("eyJhIjoxfQ").as_deref(),
            Some(&b"{\"a\":1}"[..])
        );
        assert_eq!(base64_decode("not base64!"), None);
    }

    #[test]
    fn generates_the_same_varied_world_from_a_seed() {
        let now = Utc::now();
        let a = World::generate(7, 200, now);
        let b = World::generate(7, 200, now);
        assert_eq!(a.conversation_ids(), b.conversation_ids());
        assert_eq!(a.conversations.len(), 200);
        let all: Vec<&Conv> = a.conversations.values().collect();
        assert!(all.iter().any(|c| c.archived_at.is_some()));
        assert!(
            all.iter()
                .any(|c| !c.bot_enabled && c.assigned_user.is_some())
        );
        assert!(all.iter().any(|c| c.assigned_team.is_some()));
        assert!(all.iter().any(|c| c.contact.blocked_at.is_some()));
        assert!(all.iter().any(|c| c.messages.len() > MAX_PER_PAGE));
        assert!(
            all.iter()
                .any(|c| c.messages.iter().any(|m| !m.attachments.is_empty()))
        );
        assert!(all.iter().all(|c| c.id.to_string().len() == 17));
        let mut times: Vec<DateTime<Utc>> = all.iter().map(|c| c.last_activity_at).collect();
        times.sort();
        assert!(
            times.windows(2).any(|w| w[0] == w[1]),
            "some conversations share an activity time"
        );
        let channels: std::collections::BTreeSet<&str> =
            all.iter().flat_map(|c| a.channels_of(c)).collect();
        assert!(channels.len() >= 6, "{channels:?}");
        assert!(
            config_snippet("http://127.0.0.1:9100")
                .contains("base_url = \"http://127.0.0.1:9100/chatbotx/api\"")
        );
    }
}
