//! Octopush's routes: the `api-login` / `api-key` check, the two lists and the SMS send.

use super::*;
use crate::json::ok_json;

pub(super) fn lock(world: &Shared) -> Result<std::sync::MutexGuard<'_, World>, Response> {
    world
        .lock()
        .map_err(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "Internal error"))
}

/// Checks `api-login` + `api-key`; the restricted sub-account may not view conversations.
pub(super) async fn auth(request: Request, next: Next) -> Response {
    let (login, key) = {
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .unwrap_or_default()
                .to_owned()
        };
        (header("api-login"), header("api-key"))
    };
    if login.eq_ignore_ascii_case(API_LOGIN) && key == API_KEY {
        return next.run(request).await;
    }
    if login.eq_ignore_ascii_case(RESTRICTED_LOGIN) && key == RESTRICTED_API_KEY {
        if request.uri().path().contains("/conversations") {
            return error(
                StatusCode::FORBIDDEN,
                "Forbidden: this account may not view conversations",
            );
        }
        return next.run(request).await;
    }
    error(
        StatusCode::UNAUTHORIZED,
        "Unauthorized: invalid api-login or api-key",
    )
}

/// The Octopush routes, to be nested under [`PREFIX`].
pub fn router(world: Shared) -> Router {
    Router::new()
        .route("/conversations/list", get(list_conversations))
        .route("/conversations/messages/list", get(list_messages))
        .route("/sms-campaign/send", post(send_sms))
        .merge(crate::echo::routes())
        .layer(axum::middleware::from_fn(auth))
        .with_state(world)
}

pub(super) type Params = Vec<(String, String)>;

pub(super) fn param<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A positive count, cast leniently like the real API: `"20"`, `"20.0"`, `" 20 "` are 20;
/// anything unreadable or below 1 is the default; above `max` is `max`.
pub(super) fn count(params: &Params, name: &str, default: usize, max: usize) -> usize {
    param(params, name)
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|n| n.is_finite() && *n >= 1.0)
        .map_or(default, |n| (n.floor() as usize).min(max))
}

pub(super) async fn list_conversations(
    State(world): State<Shared>,
    Query(params): Query<Params>,
) -> Response {
    let page = count(&params, "page", 1, usize::MAX);
    let per_page = count(
        &params,
        "per_page",
        CONVERSATIONS_DEFAULT_PER_PAGE,
        MAX_PER_PAGE,
    );
    let w = match lock(&world) {
        Ok(w) => w,
        Err(e) => return e,
    };
    let items: Vec<ConversationJson> = paginate(&w.sorted(), page, per_page)
        .into_iter()
        .map(World::conv_json)
        .collect();
    ok_json(&items)
}

pub(super) async fn list_messages(
    State(world): State<Shared>,
    Query(params): Query<Params>,
) -> Response {
    let page = count(&params, "page", 1, usize::MAX);
    let per_page = count(&params, "per_page", MESSAGES_DEFAULT_PER_PAGE, MAX_PER_PAGE);
    let w = match lock(&world) {
        Ok(w) => w,
        Err(e) => return e,
    };
    let given = |name: &str| {
        param(&params, name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let selected: Vec<&Conv> = if let Some(cid) = given("conversation_id") {
        match w.find(cid) {
            Some(c) => vec![c],
            None => return error(StatusCode::NOT_FOUND, "Conversation not found"),
        }
    } else {
        let phone = given("phone_number").map(normalize_phone);
        let email = given("email").map(str::to_ascii_lowercase);
        let contact = given("contact").map(str::to_owned);
        let facebook = given("facebook_id");
        w.conversations
            .iter()
            .filter(|c| {
                phone
                    .as_ref()
                    .is_none_or(|p| normalize_phone(&c.phone) == *p)
            })
            .filter(|c| {
                email.as_ref().is_none_or(|e| {
                    c.email
                        .as_ref()
                        .is_some_and(|ce| ce.to_ascii_lowercase() == *e)
                })
            })
            .filter(|c| {
                contact.as_ref().is_none_or(|k| {
                    (!normalize_phone(k).is_empty()
                        && normalize_phone(k) == normalize_phone(&c.phone))
                        || c.email.as_ref().is_some_and(|e| e.eq_ignore_ascii_case(k))
                })
            })
            // No Facebook conversations on this account.
            .filter(|_| facebook.is_none())
            .collect()
    };
    let mut messages: Vec<(&Conv, &Msg)> = selected
        .iter()
        .flat_map(|c| c.messages.iter().map(move |m| (*c, m)))
        .collect();
    messages.sort_by(|(_, a), (_, b)| b.at.cmp(&a.at).then_with(|| b.id.cmp(&a.id)));
    let items: Vec<MessageJson> = paginate(&messages, page, per_page)
        .into_iter()
        .map(|(c, m)| World::message_json(c, m))
        .collect();
    ok_json(&items)
}

/// A value cast to a string leniently: strings as they are, numbers and booleans printed.
pub(super) fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(super) fn as_bool(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => {
            matches!(s.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes")
        }
        _ => false,
    }
}

pub(super) struct Campaign {
    text: String,
    phones: Vec<String>,
    price: f64,
    with_replies: bool,
    simulation: bool,
    request_id: Option<String>,
}

pub(super) fn read_campaign(body: &serde_json::Map<String, Value>) -> Result<Campaign, Response> {
    let bad = |m: &str| error(StatusCode::BAD_REQUEST, m);
    let text = body.get("text").and_then(as_text).unwrap_or_default();
    if text.trim().is_empty() {
        return Err(bad("text is required"));
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(bad("text is too long (1224 characters at most)"));
    }
    let recipients = match body.get("recipients") {
        Some(Value::Array(r)) if !r.is_empty() => r,
        _ => return Err(bad("recipients is required")),
    };
    if recipients.len() > MAX_RECIPIENTS {
        return Err(bad("recipients: 500 at most per request"));
    }
    let mut phones = Vec::with_capacity(recipients.len());
    for r in recipients {
        match r.get("phone_number").and_then(as_text) {
            Some(p) if is_phone(&p) => phones.push(p.trim().to_owned()),
            _ => return Err(bad("recipients: invalid phone_number")),
        }
    }
    let price = match body.get("type").and_then(as_text).as_deref().map(str::trim) {
        None | Some("sms_premium") => PRICE_PREMIUM,
        Some("sms_low_cost") => PRICE_LOW_COST,
        Some(_) => return Err(bad("type must be sms_premium or sms_low_cost")),
    };
    match body.get("sender").and_then(as_text) {
        Some(s) if (3..=11).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()) => {}
        _ => return Err(bad("sender must be 3 to 11 alphanumeric characters")),
    }
    match body
        .get("purpose")
        .and_then(as_text)
        .as_deref()
        .map(str::trim)
    {
        None | Some("alert") | Some("wholesale") => {}
        Some(_) => return Err(bad("purpose must be alert or wholesale")),
    }
    if let Some(send_at) = body.get("send_at").filter(|v| !v.is_null()) {
        let readable =
            as_text(send_at).is_some_and(|s| DateTime::parse_from_rfc3339(s.trim()).is_ok());
        if !readable {
            return Err(bad("send_at must be an ISO 8601 date"));
        }
    }
    Ok(Campaign {
        text,
        phones,
        price,
        with_replies: as_bool(body.get("with_replies")),
        simulation: as_bool(body.get("simulation_mode")),
        request_id: body
            .get("request_id")
            .and_then(as_text)
            .filter(|s| !s.trim().is_empty()),
    })
}

pub(super) async fn send_sms(
    State(world): State<Shared>,
    _headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let body = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(map)) => map,
        _ => return error(StatusCode::BAD_REQUEST, "the body must be a JSON object"),
    };
    let campaign = match read_campaign(&body) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let mut w = match lock(&world) {
        Ok(w) => w,
        Err(e) => return e,
    };
    let now = second(Utc::now());
    let window = Duration::hours(REQUEST_ID_WINDOW_HOURS);
    w.requests.retain(|_, (at, _)| now - *at < window);
    if let Some(previous) = campaign
        .request_id
        .as_ref()
        .and_then(|id| w.requests.get(id))
    {
        // The same request_id within 24 h: not sent or billed again, same answer.
        return Json(previous.1.clone()).into_response();
    }
    let parts = sms_parts(&campaign.text);
    let needed = parts * campaign.phones.len();
    let cost = (needed as f64 * campaign.price * 10_000.0).round() / 10_000.0;
    if cost > w.credit + 1e-9 {
        return error(
            StatusCode::BAD_REQUEST,
            "Not enough credit to send this campaign",
        );
    }
    let ticket = w.ticket(now);
    let residual = if campaign.simulation {
        w.credit
    } else {
        w.credit - cost
    };
    let response = json!({
        "sms_ticket": ticket,
        "number_of_contacts": campaign.phones.len(),
        "total_cost": cost,
        "number_of_sms_needed": needed,
        "residual_credit": (residual * 10_000.0).round() / 10_000.0,
    });
    if campaign.simulation {
        return Json(response).into_response();
    }
    w.credit = residual;
    let single = campaign.phones.len() == 1;
    for (i, phone) in campaign.phones.iter().enumerate() {
        let id = if single {
            ticket.clone()
        } else {
            format!("{ticket}_{}", i + 1)
        };
        let wanted = normalize_phone(phone);
        let index = w
            .conversations
            .iter()
            .position(|c| normalize_phone(&c.phone) == wanted);
        let index = match index {
            Some(i) => i,
            None if campaign.with_replies => {
                // A two-way SMS to a new number opens a conversation.
                let mut uuid_source =
                    Gen::new(w.tickets ^ u64::from(now.timestamp_subsec_nanos()), now);
                w.conversations.push(Conv {
                    uuid: uuid_source.uuid(),
                    last_user_channel: "sms",
                    phone: phone.clone(),
                    name: None,
                    email: None,
                    from: SHORT_CODES[0].to_owned(),
                    purpose: "alert",
                    color: 0,
                    agent: None,
                    messages: Vec::new(),
                });
                w.conversations.len() - 1
            }
            None => continue,
        };
        let conv = &mut w.conversations[index];
        let at = conv.messages.last().map_or(now, |m| m.at.max(now));
        conv.messages.push(Msg {
            id,
            text: campaign.text.clone(),
            inbound: false,
            delivery_status: Some("sent"),
            channel: "sms",
            at,
        });
    }
    if let Some(request_id) = campaign.request_id {
        w.requests.insert(request_id, (now, response.clone()));
    }
    Json(response).into_response()
}
