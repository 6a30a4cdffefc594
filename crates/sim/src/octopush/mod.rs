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
use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, Offset, Timelike, Utc};
use serde_json::{Value, json};

use crate::generator::{Gen, paginate};
use crate::{ChangeKind, DirectRequest, SimOptions, SimVendor, SimWorld, Tick};

mod json;
mod routes;
mod world;

use json::*;
pub use routes::router;

/// The Octopush simulator: the account of [`API_LOGIN`] is its account.
pub const VENDOR: SimVendor = SimVendor {
    name: "octopush",
    prefix: PREFIX,
    generate: crate::simulator::<World>,
    settings,
};

/// The keys of a gateway connection to this simulator's account on `base`.
pub fn settings(base: &str) -> String {
    format!(
        "base_url = \"{base}{PREFIX}\"\napi_login = \"{API_LOGIN}\"\napi_key = \"{API_KEY}\"\nsender = \"{SENDER}\"\n"
    )
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
        self.conversation_ids().into_iter().next()
    }

    fn messages_in(&self, id: &str) -> usize {
        self.message_count(id)
    }

    fn messages_with_text(&self, text: &str) -> usize {
        self.conversations
            .iter()
            .flat_map(|c| &c.messages)
            .filter(|m| m.text == text)
            .count()
    }

    /// Octopush documents no request quota, and none is simulated.
    fn lift_quota(&mut self) {}

    fn first_page(&mut self, base: &str) -> Vec<DirectRequest> {
        let headers = vec![
            ("api-login", API_LOGIN.to_owned()),
            ("api-key", API_KEY.to_owned()),
        ];
        vec![DirectRequest {
            url: format!("{base}{PREFIX}/conversations/list?page=1&per_page=100"),
            headers,
        }]
    }

    fn tick(&mut self, g: &mut Gen, now: DateTime<Utc>) -> Option<Tick> {
        self.live_tick(g, now)
    }
}

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

    fn first_at(&self) -> DateTime<Utc> {
        self.messages
            .first()
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
    /// The list order [`World::sorted`] found last, as indices into `conversations`.
    order: std::sync::Mutex<Vec<usize>>,
    /// What the conversations list is ordered by.
    list_order: ListOrder,
}

/// What the simulated conversations list is ordered by. Octopush documents no order
/// (https://octopush-api.readme.io/reference/get_public_apiconversationsget_conversations);
/// newest activity first is what its example shows, and what the simulator lists by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ListOrder {
    /// Newest `last_message_at` first.
    #[default]
    Activity,
    /// Newest `first_message_at` first: a list sorted, but not by activity.
    Started,
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
const TIMES: crate::json::TimeFormat = crate::json::TimeFormat {
    fraction: crate::json::Fraction::None,
    offset: Some(paris_offset),
};

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

/// The Octopush simulator's state.
pub type Shared = Arc<Mutex<World>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_times_with_the_paris_offset() {
        let summer =
            DateTime::parse_from_rfc3339("2024-06-21T03:08:06Z").map(|t| t.with_timezone(&Utc));
        assert_eq!(
            summer.map(|t| TIMES.text(t)).ok().as_deref(),
            Some("2024-06-21T05:08:06+02:00")
        );
        let winter =
            DateTime::parse_from_rfc3339("2024-01-10T10:00:00Z").map(|t| t.with_timezone(&Utc));
        assert_eq!(
            winter.map(|t| TIMES.text(t)).ok().as_deref(),
            Some("2024-01-10T11:00:00+01:00")
        );
        // 2024-03-31 is the last Sunday of March: summer time from 01:00 UTC.
        let switch =
            DateTime::parse_from_rfc3339("2024-03-31T01:00:00Z").map(|t| t.with_timezone(&Utc));
        assert_eq!(
            switch.map(|t| TIMES.text(t)).ok().as_deref(),
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
