//! ChatbotX's JSON: objects as the API shows them, cursors, and the oRPC error envelope.

use base64::Engine as _;

use super::*;

/// Milliseconds are all ChatbotX's timestamps carry (JavaScript `Date`).
pub(super) fn millis(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

pub(super) fn ts(t: DateTime<Utc>) -> Value {
    Value::String(t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

pub(super) fn opt_ts(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, ts)
}

pub(super) fn id(n: u64) -> Value {
    Value::String(n.to_string())
}

pub(super) fn opt_id(n: Option<u64>) -> Value {
    n.map_or(Value::Null, id)
}

impl World {
    pub(super) fn user_json(u: &User) -> Value {
        json!({
            "id": id(u.id), "name": u.name, "email": u.email, "emailVerified": true,
            "image": u.image, "isAnonymous": false, "createdAt": ts(u.created_at), "updatedAt": ts(u.created_at),
        })
    }

    pub(super) fn team_json(t: &Team) -> Value {
        json!({
            "id": id(t.id), "name": t.name, "workspaceId": WORKSPACE_ID,
            "createdAt": ts(t.created_at), "updatedAt": ts(t.created_at),
        })
    }

    pub(super) fn inbox_json(i: &Inbox) -> Value {
        json!({"id": id(i.id), "name": i.name, "channel": i.channel, "workspaceId": WORKSPACE_ID})
    }

    pub(super) fn contact_json(c: &Contact) -> Value {
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

    pub(super) fn message_json(&self, conversation: u64, m: &Msg, relations: bool) -> Value {
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
    pub(super) fn conv_json(&self, c: &Conv, detail: bool) -> Value {
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
