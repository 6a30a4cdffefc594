//! Octopush `/v1/public` simulator (SMS / RCS two-way inbox), as described by
//! https://octopush-api.readme.io/reference/get_public_apiconversationsget_conversations,
//! https://octopush-api.readme.io/reference/get_public_apiconversations_messagesget_messages and
//! https://octopush.com/en/sms-gateway-api-documentation/send-sms/ :
//! `api-login` + `api-key` headers, lenient input (unknown parameters ignored, wrong types cast),
//! bare-array lists paged by `page` / `per_page`, timestamps with a Paris offset (`+02:00` in
//! summer), and `POST /sms-campaign/send` with credit, SMS-part counting and `request_id`
//! de-duplication for 24 hours. A reply sent to a conversation's phone number is threaded into it.
//!
//! Choices where the docs are silent (each INFERRED): conversation ids are listed as
//! `cid_{uuid}` and the messages filter takes them with or without the prefix; the conversation
//! list is sorted by `last_message_at` desc and the messages list newest first; a message's time
//! is `sent_at`; error bodies are `{"code": <status>, "message": "…"}`; `per_page` is capped
//! at 100 on both lists. Octopush documents no rate limit, so none is simulated (the `/_control`
//! faults inject 429s).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{
    DateTime, Datelike, Duration, FixedOffset, NaiveDate, Offset, SecondsFormat, Timelike, Utc,
};
use serde_json::{Value, json};

use crate::world::{Gen, paginate};

/// Where the API lives under the simulator.
pub const PREFIX: &str = "/octopush/v1/public";
/// The simulated account's login (`api-login`).
pub const API_LOGIN: &str = "ops@myshop.example.com";
/// The simulated account's API key (`api-key`).
pub const API_KEY: &str = "octo-sim-5f0c2a9e71b34d86";
/// The sender name the gateway config uses for replies.
pub const SENDER: &str = "MyShop";
/// A sub-account that may send SMS but is forbidden to view conversations (403).
pub const RESTRICTED_LOGIN: &str = "billing@myshop.example.com";
/// The sub-account's API key.
pub const RESTRICTED_API_KEY: &str = "octo-sim-billing-0000";
/// The largest `per_page` served on the lists.
pub const MAX_PER_PAGE: usize = 100;
/// The account's starting credit, in euros.
pub const INITIAL_CREDIT: f64 = 250.0;

const CONVERSATIONS_DEFAULT_PER_PAGE: usize = 100;
const MESSAGES_DEFAULT_PER_PAGE: usize = 50;
const MAX_TEXT_CHARS: usize = 1224;
const MAX_RECIPIENTS: usize = 500;
const PRICE_PREMIUM: f64 = 0.0333;
const PRICE_LOW_COST: f64 = 0.0245;
const REQUEST_ID_WINDOW_HOURS: i64 = 24;

const SHORT_CODES: &[&str] = &["38100", "36173", "12345"];
const AGENT_LOGINS: &[&str] = &[
    "lea.martin@myshop.example.com",
    "sam.okafor@myshop.example.com",
    "hana.kim@myshop.example.com",
    "tomas.diaz@myshop.example.com",
];
const ALERT_LINES: &[&str] = &[
    "MyShop : votre commande #48213 a été expédiée. Suivi : https://suivi.example.com/48213",
    "Reminder: your appointment is tomorrow at 10:30. Reply YES to confirm or NO to cancel.",
    "Your parcel will be delivered today between 14:00 and 16:00. Reply to reschedule.",
    "Code de retrait : 4821. Valable 48 h en magasin.",
    "Ihre Bestellung ist unterwegs und kommt morgen an.",
    "Your order is ready for pick-up at MyShop Lyon Part-Dieu.",
];
const PROMO_LINES: &[&str] = &[
    "Soldes ☀️ -20% sur la collection été ce week-end ! STOP au 36173",
    "Flash sale: free delivery on all orders until Sunday. STOP 36173",
];

#[derive(Debug, Clone)]
struct Msg {
    id: String,
    text: String,
    inbound: bool,
    delivery_status: Option<&'static str>,
    channel: &'static str,
    at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
struct Conv {
    uuid: String,
    last_user_channel: &'static str,
    phone: String,
    name: Option<String>,
    email: Option<String>,
    from: String,
    purpose: &'static str,
    color: u8,
    agent: Option<&'static str>,
    messages: Vec<Msg>,
}

impl Conv {
    fn conversation_id(&self) -> String {
        format!("cid_{}", self.uuid)
    }

    fn last_at(&self) -> DateTime<Utc> {
        self.messages
            .last()
            .map_or(DateTime::<Utc>::UNIX_EPOCH, |m| m.at)
    }
}

/// The simulated Octopush account.
#[derive(Debug)]
pub struct World {
    conversations: Vec<Conv>,
    rcs_agent: String,
    credit: f64,
    /// `request_id` -> (when, the response given).
    requests: BTreeMap<String, (DateTime<Utc>, Value)>,
    tickets: u64,
    message_ids: fastrand::Rng,
}

/// Whole seconds: the API shows seconds, so the simulator orders by what it shows.
fn second(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_nanosecond(0).unwrap_or(t)
}

fn last_sunday_1am_utc(year: i32, month: u32) -> Option<DateTime<Utc>> {
    let last_day = NaiveDate::from_ymd_opt(year, month, 31)?;
    let sunday = last_day - Duration::days(i64::from(last_day.weekday().num_days_from_sunday()));
    Some(sunday.and_hms_opt(1, 0, 0)?.and_utc())
}

/// Europe/Paris: +02:00 from the last Sunday of March to the last Sunday of October (01:00 UTC),
/// +01:00 otherwise.
fn paris_offset(t: DateTime<Utc>) -> FixedOffset {
    let summer = match (
        last_sunday_1am_utc(t.year(), 3),
        last_sunday_1am_utc(t.year(), 10),
    ) {
        (Some(start), Some(end)) => t >= start && t < end,
        _ => false,
    };
    FixedOffset::east_opt(if summer { 7200 } else { 3600 }).unwrap_or_else(|| Utc.fix())
}

/// A timestamp as Octopush shows it: ISO 8601 with the Paris offset, e.g. `2024-06-21T05:08:06+02:00`.
fn ts(t: DateTime<Utc>) -> String {
    t.with_timezone(&paris_offset(t))
        .to_rfc3339_opts(SecondsFormat::Secs, false)
}

/// Digits of a phone number with its leading `+`, spaces and dots dropped.
fn normalize_phone(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

fn is_phone(s: &str) -> bool {
    let trimmed = s.trim();
    let digits = trimmed.strip_prefix('+').unwrap_or(trimmed);
    (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

/// GSM 03.38 characters outside ASCII that still fit a 160-character SMS.
const GSM_EXTRA: &str = "£¥èéùìòÇØøÅåΔΦΓΛΩΠΨΣΘΞÆæßÉÄÖÑÜ§¿äöñüà¡";
/// GSM characters that take two slots.
const GSM_DOUBLE: &str = "€^{}[]~\\|";

/// How many SMS parts `text` needs: 160 / 153 GSM characters, or 70 / 67 in Unicode.
fn sms_parts(text: &str) -> usize {
    let gsm = text.chars().all(|c| {
        (c.is_ascii() && (!c.is_ascii_control() || c == '\n' || c == '\r'))
            || GSM_EXTRA.contains(c)
            || c == '€'
    });
    let (single, part, length) = if gsm {
        let length: usize = text
            .chars()
            .map(|c| if GSM_DOUBLE.contains(c) { 2 } else { 1 })
            .sum();
        (160, 153, length)
    } else {
        (70, 67, text.encode_utf16().count())
    };
    if length <= single {
        1
    } else {
        length.div_ceil(part)
    }
}

impl World {
    /// A world of `conversations` two-way SMS / RCS conversations from `seed`, times before `now`.
    pub fn generate(seed: u64, conversations: usize, now: DateTime<Utc>) -> World {
        let mut g = Gen::for_vendor(seed, "octopush", second(now));
        let rcs_agent = format!("myshop_{:06x}_agent@rcs.goog", g.u64() & 0xff_ffff);
        let mut world = World {
            conversations: Vec::with_capacity(conversations),
            rcs_agent,
            credit: INITIAL_CREDIT,
            requests: BTreeMap::new(),
            tickets: 0,
            message_ids: fastrand::Rng::with_seed(seed ^ 0x0c70_9055),
        };
        let mut phones = std::collections::BTreeSet::new();
        for _ in 0..conversations {
            let mut phone = g.phone();
            while !phones.insert(phone.clone()) {
                phone = g.phone();
            }
            let conv = world.generate_conversation(&mut g, phone);
            world.conversations.push(conv);
        }
        world
    }

    fn generate_conversation(&mut self, g: &mut Gen, phone: String) -> Conv {
        let channel = *g.pick(&["sms", "sms", "sms", "rcs"]);
        let name = (!g.chance(0.2)).then(|| {
            let (first, last) = g.person();
            format!("{first} {last}")
        });
        let email = g
            .chance(0.15)
            .then(|| g.email_for(name.as_deref().unwrap_or("customer")));
        let from = if channel == "rcs" {
            self.rcs_agent.clone()
        } else {
            (*g.pick(SHORT_CODES)).to_owned()
        };
        let purpose = if g.chance(0.85) { "alert" } else { "wholesale" };
        let agent = g.chance(0.3).then(|| *g.pick(AGENT_LOGINS));
        let mut t = second(g.time_within(Duration::days(45)));
        let mut messages = Vec::new();
        let customer_first = g.chance(0.3);
        if !customer_first {
            let text = if purpose == "alert" {
                g.pick(ALERT_LINES)
            } else {
                g.pick(PROMO_LINES)
            };
            messages.push(self.outbound(g, (*text).to_owned(), channel, t));
        }
        let turns = 1 + g.below(4);
        for turn in 0..turns {
            t = g.time_after(t, Duration::hours(3));
            let text = g.customer_text();
            messages.push(self.inbound(text, channel, t));
            let answered = turn + 1 < turns || g.chance(0.5);
            if answered {
                t = g.time_after(t, Duration::minutes(40));
                let text = g.agent_text();
                messages.push(self.outbound(g, text, "sms", t));
            }
        }
        Conv {
            uuid: g.uuid(),
            last_user_channel: channel,
            phone,
            name,
            email,
            from,
            purpose,
            color: g.below(6) as u8,
            agent,
            messages,
        }
    }

    fn inbound(&mut self, text: String, channel: &'static str, at: DateTime<Utc>) -> Msg {
        Msg {
            id: format!("mo_{:016x}", self.message_ids.u64(..)),
            text,
            inbound: true,
            delivery_status: None,
            channel,
            at: second(at),
        }
    }

    fn outbound(
        &mut self,
        g: &mut Gen,
        text: String,
        channel: &'static str,
        at: DateTime<Utc>,
    ) -> Msg {
        let status = *g.pick(&[
            "delivered",
            "delivered",
            "delivered",
            "delivered",
            "delivered",
            "delivered",
            "sent",
            "not_delivered",
        ]);
        Msg {
            id: self.ticket(at),
            text,
            inbound: false,
            delivery_status: Some(status),
            channel,
            at: second(at),
        }
    }

    /// A campaign ticket like `sms_5fec89fe97109` (seconds in hex, then a counter).
    fn ticket(&mut self, at: DateTime<Utc>) -> String {
        self.tickets += 1;
        format!(
            "sms_{:08x}{:05x}",
            at.timestamp().max(0),
            self.tickets & 0xf_ffff
        )
    }

    fn conv_json(c: &Conv) -> Value {
        let mut v = json!({
            "conversation_id": c.conversation_id(),
            "last_user_channel": c.last_user_channel,
            "recipient_details": { "phone_number": c.phone, "name": c.name },
            "from": c.from,
            "first_message_at": c.messages.first().map(|m| ts(m.at)),
            "last_message_at": c.messages.last().map(|m| ts(m.at)),
            "last_message": c.messages.last().map(|m| m.text.clone()),
            "purpose": c.purpose,
            "color": c.color,
            "number_of_messages": c.messages.len(),
        });
        // Present only when an agent is assigned (as in the documented example).
        if let Some(agent) = c.agent {
            v["agent_assigned_to"] = json!(agent);
        }
        v
    }

    fn message_json(c: &Conv, m: &Msg) -> Value {
        json!({
            "message_id": m.id,
            "text": m.text,
            "direction": if m.inbound { "inbound" } else { "outbound" },
            "delivery_status": m.delivery_status,
            "channel": m.channel,
            "user_identifier": c.phone,
            "user_identifiers": { "phone_number": c.phone, "email": c.email, "facebook_page_id": null },
            "agent_assigned_to": c.agent,
            "sent_at": ts(m.at),
        })
    }

    fn sorted(&self) -> Vec<&Conv> {
        let mut list: Vec<&Conv> = self.conversations.iter().collect();
        list.sort_by(|a, b| {
            b.last_at()
                .cmp(&a.last_at())
                // Same order as the listed `cid_{uuid}` ids, without building them.
                .then_with(|| b.uuid.cmp(&a.uuid))
        });
        list
    }

    fn find(&self, conversation_id: &str) -> Option<&Conv> {
        let wanted = conversation_id.trim();
        let wanted = wanted.strip_prefix("cid_").unwrap_or(wanted);
        self.conversations
            .iter()
            .find(|c| c.uuid.eq_ignore_ascii_case(wanted))
    }

    /// Every conversation id as the list shows it (`cid_{uuid}`), newest activity first.
    pub fn conversation_ids(&self) -> Vec<String> {
        self.sorted().iter().map(|c| c.conversation_id()).collect()
    }

    /// How many messages a conversation holds (`cid_` prefix optional); 0 when unknown.
    pub fn message_count(&self, conversation_id: &str) -> usize {
        self.find(conversation_id).map_or(0, |c| c.messages.len())
    }

    /// The account's credit left, in euros.
    pub fn credit(&self) -> f64 {
        self.credit
    }

    /// Sets the account's credit (tests of the "not enough credit" answer).
    pub fn set_credit(&mut self, credit: f64) {
        self.credit = credit;
    }
}

/// The Octopush simulator's state.
pub type Shared = Arc<Mutex<World>>;

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"code": status.as_u16(), "message": message})),
    )
        .into_response()
}

fn lock(world: &Shared) -> Result<std::sync::MutexGuard<'_, World>, Response> {
    world
        .lock()
        .map_err(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "Internal error"))
}

/// Checks `api-login` + `api-key`; the restricted sub-account may not view conversations.
async fn auth(request: Request, next: Next) -> Response {
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
        .layer(axum::middleware::from_fn(auth))
        .with_state(world)
}

/// The `[[connections]]` block of a gateway pointing at this simulator on `base`.
pub fn config_snippet(base: &str) -> String {
    format!(
        r#"[[connections]]
id = "sms"
provider = "octopush"
base_url = "{base}{PREFIX}"
api_login = "{API_LOGIN}"
api_key = "{API_KEY}"
sender = "{SENDER}"
"#
    )
}

type Params = Vec<(String, String)>;

fn param<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A positive count, cast leniently like the real API: `"20"`, `"20.0"`, `" 20 "` are 20;
/// anything unreadable or below 1 is the default; above `max` is `max`.
fn count(params: &Params, name: &str, default: usize, max: usize) -> usize {
    param(params, name)
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|n| n.is_finite() && *n >= 1.0)
        .map_or(default, |n| (n.floor() as usize).min(max))
}

async fn list_conversations(State(world): State<Shared>, Query(params): Query<Params>) -> Response {
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
    let items: Vec<Value> = paginate(&w.sorted(), page, per_page)
        .into_iter()
        .map(World::conv_json)
        .collect();
    Json(Value::Array(items)).into_response()
}

async fn list_messages(State(world): State<Shared>, Query(params): Query<Params>) -> Response {
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
    let items: Vec<Value> = paginate(&messages, page, per_page)
        .into_iter()
        .map(|(c, m)| World::message_json(c, m))
        .collect();
    Json(Value::Array(items)).into_response()
}

/// A value cast to a string leniently: strings as they are, numbers and booleans printed.
fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn as_bool(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => {
            matches!(s.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes")
        }
        _ => false,
    }
}

struct Campaign {
    text: String,
    phones: Vec<String>,
    price: f64,
    with_replies: bool,
    simulation: bool,
    request_id: Option<String>,
}

fn read_campaign(body: &serde_json::Map<String, Value>) -> Result<Campaign, Response> {
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

async fn send_sms(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_times_with_the_paris_offset() {
        let summer =
            DateTime::parse_from_rfc3339("2024-06-21T03:08:06Z").map(|t| t.with_timezone(&Utc));
        assert_eq!(
            summer.map(ts).ok().as_deref(),
            Some("2024-06-21T05:08:06+02:00")
        );
        let winter =
            DateTime::parse_from_rfc3339("2024-01-10T10:00:00Z").map(|t| t.with_timezone(&Utc));
        assert_eq!(
            winter.map(ts).ok().as_deref(),
            Some("2024-01-10T11:00:00+01:00")
        );
        // 2024-03-31 is the last Sunday of March: summer time from 01:00 UTC.
        let switch =
            DateTime::parse_from_rfc3339("2024-03-31T01:00:00Z").map(|t| t.with_timezone(&Utc));
        assert_eq!(
            switch.map(ts).ok().as_deref(),
            Some("2024-03-31T03:00:00+02:00")
        );
    }

    #[test]
    fn counts_sms_parts() {
        assert_eq!(sms_parts("Hello"), 1);
        assert_eq!(sms_parts(&"a".repeat(160)), 1);
        assert_eq!(sms_parts(&"a".repeat(161)), 2);
        assert_eq!(sms_parts("Ça va ? 😀"), 1);
        assert_eq!(sms_parts(&"é".repeat(160)), 1);
        assert_eq!(sms_parts(&"注".repeat(71)), 2);
    }

    #[test]
    fn generates_the_same_world_from_the_same_seed() {
        let now = Utc::now();
        let a = World::generate(7, 40, now);
        let b = World::generate(7, 40, now);
        assert_eq!(a.conversation_ids(), b.conversation_ids());
        assert_eq!(a.conversation_ids().len(), 40);
        let channels: std::collections::BTreeSet<&str> = a
            .conversations
            .iter()
            .map(|c| c.last_user_channel)
            .collect();
        assert!(channels.contains("sms") && channels.contains("rcs"));
        assert!(
            a.conversations
                .iter()
                .all(|c| c.messages.iter().any(|m| m.inbound))
        );
        assert!(
            a.conversations
                .iter()
                .all(|c| c.messages.windows(2).all(|w| w[0].at <= w[1].at))
        );
    }
}
