//! ChatbotX's message endpoints: a conversation's messages, one message, and a reply (with
//! its `Idempotency-Key`).

use super::routes::*;
use super::*;
use crate::json::ok_json;

pub(super) async fn list_messages(
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
        let page = PageJson {
            data: list.iter().map(|m| w.message_json(c.id, m, true)).collect(),
            next_cursor,
            prev_cursor: None,
        };
        Ok(ok_json(&page))
    };
    run().unwrap_or_else(|e| e)
}

pub(super) async fn get_message(
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
        Ok(ok_json(&w.message_json(c.id, m, true)))
    };
    run().unwrap_or_else(|e| e)
}

pub(super) async fn send_message(
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
        let json = serde_json::to_value(w.message_json(id, &message, true)).map_err(|_| {
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_SERVER_ERROR",
                "An unexpected error occurred",
            )
        })?;
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
