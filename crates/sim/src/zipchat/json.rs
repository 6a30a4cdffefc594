//! Zipchat's JSON: objects as the API shows them, and its error bodies.

use super::*;

pub(super) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub(super) fn opt_ts(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| Value::String(ts(t)))
}

impl World {
    pub(super) fn user_json(u: &User) -> Value {
        json!({"id": u.id, "name": u.name, "email": u.email, "avatar_url": u.avatar_url})
    }

    pub(super) fn conv_json(&self, c: &Conv, detail: bool) -> Value {
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

    pub(super) fn message_json(m: &Msg) -> Value {
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
}

pub(super) fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": message}))).into_response()
}

pub(super) fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "Conversation not found")
}
