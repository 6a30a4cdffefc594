//! Zipchat's JSON: objects as the API shows them, and its error bodies.

use serde::Serialize;

use super::*;
use crate::json::{EmptyObject, Fraction, Stamp, TimeFormat};

/// Times in whole seconds and `Z`.
const TIMES: TimeFormat = TimeFormat {
    fraction: Fraction::None,
    offset: None,
};

fn stamp(t: DateTime<Utc>) -> Stamp {
    Stamp(t, TIMES)
}

#[derive(Serialize)]
pub(super) struct UserJson<'a> {
    id: u64,
    name: &'a str,
    email: &'a str,
    avatar_url: Option<&'a str>,
}

#[derive(Serialize)]
pub(super) struct LeadJson<'a> {
    id: u64,
    full_name: String,
    email: Option<&'a str>,
    phone_number: Option<&'a str>,
    email_marketing_consent: bool,
    /// Only in a single conversation.
    #[serde(flatten)]
    detail: Option<LeadDetailJson<'a>>,
}

#[derive(Serialize)]
pub(super) struct LeadDetailJson<'a> {
    first_name: &'a str,
    last_name: &'a str,
    shopify_customer_id: Option<u64>,
    additional_attributes: EmptyObject,
}

#[derive(Serialize)]
pub(super) struct MessageJson<'a> {
    id: u64,
    role: &'a str,
    message: &'a str,
    manual_reply: bool,
    status: &'static str,
    sender_id: Option<u64>,
    created_at: Stamp,
}

#[derive(Serialize)]
pub(super) struct PaginationJson {
    page: usize,
    per_page: usize,
    total_count: usize,
    total_pages: usize,
}

impl PaginationJson {
    pub(super) fn new(page: usize, per_page: usize, total_count: usize) -> PaginationJson {
        PaginationJson {
            page,
            per_page,
            total_count,
            total_pages: total_pages(total_count, per_page),
        }
    }
}

/// A conversation; a single one also carries a page of its messages.
#[derive(Serialize)]
pub(super) struct ConversationJson<'a> {
    id: u64,
    chat_id: u64,
    created_at: Stamp,
    last_message_at: Stamp,
    channel: &'a str,
    manual_reply_mode: bool,
    last_escalated_at: Option<Stamp>,
    last_escalation_resolved_at: Option<Stamp>,
    assignee: Option<UserJson<'a>>,
    share_url: String,
    lead: Option<LeadJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) messages: Option<Vec<MessageJson<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) message_pagination: Option<PaginationJson>,
}

/// `{"conversation": ...}`.
#[derive(Serialize)]
pub(super) struct OneConversationJson<'a> {
    pub(super) conversation: ConversationJson<'a>,
}

/// A page of the conversation list.
#[derive(Serialize)]
pub(super) struct ConversationsJson<'a> {
    pub(super) conversations: Vec<ConversationJson<'a>>,
    pub(super) pagination: PaginationJson,
}

impl World {
    pub(super) fn user_json(u: &User) -> UserJson<'_> {
        UserJson {
            id: u.id,
            name: &u.name,
            email: &u.email,
            avatar_url: u.avatar_url.as_deref(),
        }
    }

    pub(super) fn conv_json<'a>(&'a self, c: &'a Conv, detail: bool) -> ConversationJson<'a> {
        let lead = c.lead.as_ref().map(|l| LeadJson {
            id: l.id,
            full_name: format!("{} {}", l.first_name, l.last_name),
            email: l.email.as_deref(),
            phone_number: l.phone_number.as_deref(),
            email_marketing_consent: l.email_marketing_consent,
            detail: detail.then_some(LeadDetailJson {
                first_name: &l.first_name,
                last_name: &l.last_name,
                shopify_customer_id: l.shopify_customer_id,
                additional_attributes: EmptyObject,
            }),
        });
        ConversationJson {
            id: c.id,
            chat_id: c.chat_id,
            created_at: stamp(c.created_at),
            last_message_at: stamp(c.last_message_at),
            channel: c.channel,
            manual_reply_mode: c.manual_reply_mode,
            last_escalated_at: c.last_escalated_at.map(stamp),
            last_escalation_resolved_at: c.last_escalation_resolved_at.map(stamp),
            assignee: c
                .assignee
                .and_then(|a| self.user(c.chat_id, a))
                .map(Self::user_json),
            share_url: format!(
                "https://app.zipchat.ai/chats/{}/conversations/{}",
                c.chat_id, c.id
            ),
            lead,
            messages: None,
            message_pagination: None,
        }
    }

    pub(super) fn message_json(m: &Msg) -> MessageJson<'_> {
        MessageJson {
            id: m.id,
            role: m.role,
            message: &m.message,
            manual_reply: m.manual_reply,
            status: "sent",
            sender_id: m.sender_id,
            created_at: stamp(m.created_at),
        }
    }
}

pub(super) fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": message}))).into_response()
}

pub(super) fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "Conversation not found")
}
