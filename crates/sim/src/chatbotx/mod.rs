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
use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value, json};

use crate::generator::Gen;
use crate::{ChangeKind, DirectRequest, SimOptions, SimVendor, SimWorld, Tick};

mod json;
mod messages;
mod routes;
mod world;

use json::*;
pub use routes::router;

/// The ChatbotX simulator: the workspace of [`TOKEN`] is its account.
pub const VENDOR: SimVendor = SimVendor {
    name: "chatbotx",
    prefix: PREFIX,
    generate: crate::simulator::<World>,
    settings,
};

/// The keys of a gateway connection to this simulator's workspace on `base`.
fn settings(base: &str) -> String {
    format!("base_url = \"{base}{PREFIX}\"\ntoken = \"{TOKEN}\"\n")
}

impl SimWorld for World {
    fn generate(options: &SimOptions, now: DateTime<Utc>) -> World {
        World::generate(options.seed, options.conversations, now)
    }

    fn routes(world: Shared) -> Router {
        router(world)
    }

    /// Conversations of blocked contacts are hidden from the lists.
    fn listed(&self) -> Vec<String> {
        self.listed_conversation_ids()
    }

    fn newest(&self) -> Option<String> {
        self.conversations
            .values()
            .filter(|c| c.contact.blocked_at.is_none())
            .max_by_key(|c| (c.last_activity_at, c.id))
            .map(|c| c.id.to_string())
    }

    fn messages_in(&self, id: &str) -> usize {
        self.message_count(id)
    }

    fn messages_with_text(&self, text: &str) -> usize {
        self.conversations
            .values()
            .flat_map(|c| &c.messages)
            .filter(|m| m.text.as_deref() == Some(text))
            .count()
    }

    fn lift_quota(&mut self) {
        self.set_quota(u32::MAX);
    }

    /// The open and the archived lists, which an unfiltered page reads together.
    fn first_page(&mut self, base: &str) -> Vec<DirectRequest> {
        let list = format!("{base}{PREFIX}/v1/conversations?perPage=100");
        let archived = format!("{list}&tags=%5B%22archived%22%5D");
        [list, archived]
            .into_iter()
            .map(|url| DirectRequest {
                url,
                headers: vec![("authorization", format!("Bearer {TOKEN}"))],
            })
            .collect()
    }

    fn tick(&mut self, g: &mut Gen, now: DateTime<Utc>) -> Option<Tick> {
        self.live_tick(g, now)
    }
}

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
            settings("http://127.0.0.1:9100")
                .contains("base_url = \"http://127.0.0.1:9100/chatbotx/api\"")
        );
    }
}
