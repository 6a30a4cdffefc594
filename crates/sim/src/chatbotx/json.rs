//! ChatbotX's JSON: objects as the API shows them, cursors, and the oRPC error envelope.

use base64::Engine as _;
use serde::Serialize;

use crate::json::{EmptyArray, EmptyObject, Fraction, Null, NumericString, Stamp, TimeFormat};

use super::*;

/// Milliseconds are all ChatbotX's timestamps carry (JavaScript `Date`).
pub(super) fn millis(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// A time as ChatbotX prints it: milliseconds and `Z`.
const TIMES: TimeFormat = TimeFormat {
    fraction: Fraction::Millis,
    offset: None,
};

pub(super) fn ts(t: DateTime<Utc>) -> String {
    TIMES.text(t)
}

fn stamp(t: DateTime<Utc>) -> Stamp {
    Stamp(t, TIMES)
}

fn opt_stamp(t: Option<DateTime<Utc>>) -> Option<Stamp> {
    t.map(stamp)
}

/// A bigint id, as a numeric string.
pub(super) fn id(n: u64) -> NumericString {
    NumericString(n)
}

fn opt_id(n: Option<u64>) -> Option<NumericString> {
    n.map(id)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct UserJson<'a> {
    id: NumericString,
    name: &'a str,
    email: &'a str,
    email_verified: bool,
    image: Option<&'a str>,
    is_anonymous: bool,
    created_at: Stamp,
    updated_at: Stamp,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TeamJson<'a> {
    id: NumericString,
    name: &'a str,
    workspace_id: &'static str,
    created_at: Stamp,
    updated_at: Stamp,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct InboxJson<'a> {
    id: NumericString,
    name: &'a str,
    channel: &'a str,
    workspace_id: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ContactJson<'a> {
    id: NumericString,
    avatar: Option<&'a str>,
    phone_number: Option<&'a str>,
    email: Option<&'a str>,
    email_verified: bool,
    email_opt_in: bool,
    first_name: Option<&'a str>,
    last_name: Option<&'a str>,
    full_name: Option<String>,
    last_read_at: Null,
    #[serde(rename = "ref")]
    reference: Null,
    country: Null,
    state: Null,
    city: Null,
    location: Null,
    locale: Option<&'a str>,
    timezone: Null,
    subscribed_at: Stamp,
    broadcast_subscribed_at: Null,
    blocked_at: Option<Stamp>,
    workspace_id: &'static str,
    created_at: Stamp,
    updated_at: Stamp,
    contacts_on_sequences: EmptyArray,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AttachmentJson<'a> {
    id: NumericString,
    message_id: NumericString,
    file_type: &'a str,
    mime_type: &'a str,
    name: Option<&'a str>,
    origin_path: &'a str,
    size: u32,
    url: String,
}

/// A message; `attachments` and `user` (its sender when a member) only with its relations.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct MessageJson<'a> {
    id: NumericString,
    created_at: Stamp,
    updated_at: Stamp,
    conversation_id: NumericString,
    contact_inbox_id: NumericString,
    workspace_id: &'static str,
    text: Option<&'a str>,
    content_attributes: EmptyObject,
    message_type: &'a str,
    content_type: &'static str,
    sender_type: &'a str,
    sender_id: Option<NumericString>,
    source_id: Option<String>,
    is_internal: bool,
    delivered_at: Option<Stamp>,
    read_at: Option<Stamp>,
    failed_at: Option<Stamp>,
    failure_reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attachments: Option<Vec<AttachmentJson<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<UserJson<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ContactInboxJson<'a> {
    id: NumericString,
    contact_id: NumericString,
    inbox_id: NumericString,
    channel: &'a str,
    inbox: InboxJson<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ConversationJson<'a> {
    id: NumericString,
    created_at: Stamp,
    updated_at: Stamp,
    bot_enabled: bool,
    bot_resume_at: Null,
    archived_at: Option<Stamp>,
    additional_attributes: EmptyObject,
    contact_last_read_at: Option<Stamp>,
    agent_last_read_at: Option<Stamp>,
    last_activity_at: Stamp,
    followed: bool,
    workspace_id: &'static str,
    contact_id: NumericString,
    admin_replied_at: Option<Stamp>,
    contact_replied_at: Option<Stamp>,
    contact_inboxes: Vec<ContactInboxJson<'a>>,
    inbox: Option<InboxJson<'a>>,
    messages: Vec<MessageJson<'a>>,
    contact: ContactJson<'a>,
    assigned_user: Option<UserJson<'a>>,
    assigned_inbox_team: Option<TeamJson<'a>>,
    ai_context_last_message_id: Null,
    assigned_user_id: Option<NumericString>,
    assigned_inbox_team_id: Option<NumericString>,
}

/// A cursor-paged list: `{data, nextCursor, prevCursor}`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PageJson<T> {
    pub(super) data: Vec<T>,
    pub(super) next_cursor: Option<String>,
    pub(super) prev_cursor: Option<String>,
}

/// `{data}`.
#[derive(Serialize)]
pub(super) struct DataJson<T> {
    pub(super) data: T,
}

impl World {
    pub(super) fn user_json(u: &User) -> UserJson<'_> {
        UserJson {
            id: id(u.id),
            name: &u.name,
            email: &u.email,
            email_verified: true,
            image: u.image.as_deref(),
            is_anonymous: false,
            created_at: stamp(u.created_at),
            updated_at: stamp(u.created_at),
        }
    }

    pub(super) fn team_json(t: &Team) -> TeamJson<'_> {
        TeamJson {
            id: id(t.id),
            name: t.name,
            workspace_id: WORKSPACE_ID,
            created_at: stamp(t.created_at),
            updated_at: stamp(t.created_at),
        }
    }

    pub(super) fn inbox_json(i: &Inbox) -> InboxJson<'_> {
        InboxJson {
            id: id(i.id),
            name: &i.name,
            channel: i.channel,
            workspace_id: WORKSPACE_ID,
        }
    }

    pub(super) fn contact_json(c: &Contact) -> ContactJson<'_> {
        let full_name = match (c.first_name.as_deref(), c.last_name.as_deref()) {
            (Some(first), Some(last)) => Some(format!("{first} {last}")),
            (Some(one), None) | (None, Some(one)) => Some(one.to_owned()),
            (None, None) => None,
        }
        .filter(|full| !full.is_empty());
        ContactJson {
            id: id(c.id),
            avatar: c.avatar.as_deref(),
            phone_number: c.phone.as_deref(),
            email: c.email.as_deref(),
            email_verified: c.email.is_some(),
            email_opt_in: c.email.is_some(),
            first_name: c.first_name.as_deref(),
            last_name: c.last_name.as_deref(),
            full_name,
            last_read_at: Null,
            reference: Null,
            country: Null,
            state: Null,
            city: Null,
            location: Null,
            locale: c.locale,
            timezone: Null,
            subscribed_at: stamp(c.created_at),
            broadcast_subscribed_at: Null,
            blocked_at: opt_stamp(c.blocked_at),
            workspace_id: WORKSPACE_ID,
            created_at: stamp(c.created_at),
            updated_at: stamp(c.created_at),
            contacts_on_sequences: EmptyArray,
        }
    }

    pub(super) fn message_json<'a>(
        &'a self,
        conversation: u64,
        m: &'a Msg,
        relations: bool,
    ) -> MessageJson<'a> {
        let attachments = relations.then(|| {
            m.attachments
                .iter()
                .map(|a| AttachmentJson {
                    id: id(a.id),
                    message_id: id(m.id),
                    file_type: a.file_type,
                    mime_type: a.mime_type,
                    name: a.name.as_deref(),
                    origin_path: &a.origin_path,
                    size: 48_213,
                    url: format!(
                        "https://files.chatbotx.example/{}?X-Amz-Expires=3600",
                        a.origin_path
                    ),
                })
                .collect()
        });
        let user = (relations && m.sender_type == "user")
            .then(|| m.sender_id.and_then(|u| self.user(u)))
            .flatten()
            .map(Self::user_json);
        MessageJson {
            id: id(m.id),
            created_at: stamp(m.created_at),
            updated_at: stamp(m.created_at),
            conversation_id: id(conversation),
            contact_inbox_id: id(m.contact_inbox),
            workspace_id: WORKSPACE_ID,
            text: m.text.as_deref(),
            content_attributes: EmptyObject,
            message_type: m.message_type,
            content_type: "text",
            sender_type: m.sender_type,
            sender_id: opt_id(m.sender_id),
            source_id: (m.sender_type == "contact").then(|| format!("src.{}", m.id)),
            is_internal: m.is_internal,
            delivered_at: opt_stamp(m.delivered_at),
            read_at: opt_stamp(m.read_at),
            failed_at: opt_stamp(m.failed_at),
            failure_reason: m.failed_at.map(|_| "The channel rejected the message"),
            attachments,
            user,
        }
    }

    /// A conversation as `conversations.list` / `conversations.get` return it; `messages` holds
    /// the latest message (any type in the list, incoming or outgoing in `get`).
    pub(super) fn conv_json<'a>(&'a self, c: &'a Conv, detail: bool) -> ConversationJson<'a> {
        let contact_inboxes = c
            .contact_inboxes
            .iter()
            .filter_map(|ci| {
                let inbox = self.inboxes.get(ci.inbox)?;
                Some(ContactInboxJson {
                    id: id(ci.id),
                    contact_id: id(c.contact.id),
                    inbox_id: id(inbox.id),
                    channel: inbox.channel,
                    inbox: Self::inbox_json(inbox),
                })
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
        ConversationJson {
            id: id(c.id),
            created_at: stamp(c.created_at),
            updated_at: stamp(c.updated_at),
            bot_enabled: c.bot_enabled,
            bot_resume_at: Null,
            archived_at: opt_stamp(c.archived_at),
            additional_attributes: EmptyObject,
            contact_last_read_at: opt_stamp(c.contact_last_read_at),
            agent_last_read_at: opt_stamp(c.agent_last_read_at),
            last_activity_at: stamp(c.last_activity_at),
            followed: c.followed,
            workspace_id: WORKSPACE_ID,
            contact_id: id(c.contact.id),
            admin_replied_at: opt_stamp(c.admin_replied_at),
            contact_replied_at: opt_stamp(c.contact_replied_at),
            contact_inboxes,
            inbox: inbox.map(Self::inbox_json),
            messages: latest
                .map(|m| self.message_json(c.id, m, false))
                .into_iter()
                .collect(),
            contact: Self::contact_json(&c.contact),
            assigned_user: c
                .assigned_user
                .and_then(|u| self.user(u))
                .map(Self::user_json),
            assigned_inbox_team: c
                .assigned_team
                .and_then(|t| self.teams.iter().find(|team| team.id == t))
                .map(Self::team_json),
            ai_context_last_message_id: Null,
            assigned_user_id: opt_id(c.assigned_user),
            assigned_inbox_team_id: opt_id(c.assigned_team),
        }
    }
}

// ── Errors: the oRPC envelope ────────────────────────────────────────────────────────────

pub(super) fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body =
        json!({"defined": true, "code": code, "status": status.as_u16(), "message": message});
    (status, Json(body)).into_response()
}

pub(super) fn invalid(field: &str, message: &str) -> Response {
    let body = json!({
        "defined": true, "code": "invalidRequestData", "status": 422, "message": "Input validation failed",
        "data": {"issues": [{"code": "custom", "message": message, "path": [field]}]},
    });
    (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
}

pub(super) fn not_found(what: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "notFound",
        &format!("{what} not found"),
    )
}

/// Standard base64 with padding, like Node's `Buffer.toString("base64")`.
pub(super) fn base64_encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Node's lenient decoder: standard or URL-safe alphabet, padded or not.
const LENIENT: base64::engine::GeneralPurposeConfig = base64::engine::GeneralPurposeConfig::new()
    .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent);

/// Decodes standard or URL-safe base64, padded or not (Node's decoder is as lenient).
pub(super) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::engine::GeneralPurpose;
    let standard = GeneralPurpose::new(&base64::alphabet::STANDARD, LENIENT);
    let url_safe = GeneralPurpose::new(&base64::alphabet::URL_SAFE, LENIENT);
    standard.decode(s).or_else(|_| url_safe.decode(s)).ok()
}
