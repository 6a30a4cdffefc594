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
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::generator::{Gen, paginate};
use crate::{ChangeKind, DirectRequest, SimOptions, SimVendor, SimWorld, Tick};

mod json;
mod routes;
mod world;

use json::*;
pub use routes::router;

/// The PingBack simulator: the business of its owner ([`EMAIL`]) is its account.
pub const VENDOR: SimVendor = SimVendor {
    name: "pingback",
    prefix: PREFIX,
    generate: crate::simulator::<World>,
    settings,
};

/// The keys of a gateway connection to this simulator's business, as its owner, on `base`.
pub fn settings(base: &str) -> String {
    format!("base_url = \"{base}{PREFIX}\"\nemail = \"{EMAIL}\"\npassword = \"{PASSWORD}\"\n")
}

impl SimWorld for World {
    fn generate(options: &SimOptions, now: DateTime<Utc>) -> World {
        World::generate(options.seed, options.conversations, now)
    }

    fn routes(world: Shared) -> Router {
        router(world)
    }

    fn listed(&self) -> Vec<String> {
        self.conversation_ids()
    }

    fn newest(&self) -> Option<String> {
        self.conversations
            .values()
            .filter(|c| c.business_id == self.business_id)
            .max_by_key(|c| (c.updated_at, c.id.clone()))
            .map(|c| c.id.clone())
    }

    fn messages_in(&self, id: &str) -> usize {
        self.message_count(id)
    }

    fn messages_with_text(&self, text: &str) -> usize {
        self.conversations
            .values()
            .flat_map(|c| &c.messages)
            .filter(|m| m.content == text)
            .count()
    }

    /// PingBack documents no request quota; the monthly message quota stays.
    fn lift_quota(&mut self) {}

    /// With a session of the owner, as the login would give it.
    fn first_page(&mut self, base: &str) -> Vec<DirectRequest> {
        let owner = self
            .members
            .iter()
            .find(|m| m.email == EMAIL)
            .map(|m| Caller {
                user_id: m.user_id.clone(),
                role: m.role,
            });
        let token = owner
            .map(|caller| self.issue_token(caller))
            .unwrap_or_default();
        vec![DirectRequest {
            url: format!("{base}{PREFIX}/api/v1/conversations/?page=1&limit=100"),
            headers: vec![("authorization", format!("Bearer {token}"))],
        }]
    }

    fn tick(&mut self, g: &mut Gen, now: DateTime<Utc>) -> Option<Tick> {
        self.live_tick(g, now)
    }
}

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

/// The PingBack simulator's state.
pub type Shared = Arc<Mutex<World>>;

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
