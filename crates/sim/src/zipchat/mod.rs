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
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::generator::{Gen, paginate, total_pages};
use crate::{ChangeKind, DirectRequest, SimOptions, SimVendor, SimWorld, Tick};

mod json;
mod routes;
mod world;

use json::*;
pub use routes::router;

/// The Zipchat simulator: the integration on chat [`CHAT_ID`] is its account.
pub const VENDOR: SimVendor = SimVendor {
    name: "zipchat",
    prefix: PREFIX,
    generate: crate::simulator::<World>,
    settings: |base| {
        format!("base_url = \"{base}{PREFIX}\"\nchat_id = \"{CHAT_ID}\"\napi_key = \"{API_KEY}\"\n")
    },
};

impl SimWorld for World {
    fn generate(options: &SimOptions, now: DateTime<Utc>) -> World {
        World::generate(options.seed, options.conversations, now)
    }

    fn routes(world: Shared) -> Router {
        router(world)
    }

    fn listed(&self) -> Vec<String> {
        let ids = self.conversation_ids(CHAT_ID);
        ids.iter().map(u64::to_string).collect()
    }

    fn newest(&self) -> Option<String> {
        self.newest_conversation(CHAT_ID).map(|id| id.to_string())
    }

    fn messages_in(&self, id: &str) -> usize {
        id.parse().map_or(0, |id| self.message_count(id))
    }

    fn messages_with_text(&self, text: &str) -> usize {
        self.conversations
            .values()
            .flat_map(|c| &c.messages)
            .filter(|m| m.message == text)
            .count()
    }

    fn lift_quota(&mut self) {
        self.set_quota(u32::MAX);
    }

    fn first_page(&mut self, base: &str) -> Vec<DirectRequest> {
        vec![DirectRequest {
            url: format!("{base}{PREFIX}/chats/{CHAT_ID}/conversations?page=1&per_page=100"),
            headers: vec![("authorization", format!("Bearer {API_KEY}"))],
        }]
    }

    fn tick(&mut self, g: &mut Gen, now: DateTime<Utc>) -> Option<Tick> {
        self.live_tick(g, now)
    }
}

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

/// The Zipchat simulator's state.
pub type Shared = Arc<Mutex<World>>;
