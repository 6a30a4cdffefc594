//! The edge every adapter shares: the settings every connection has, who a vendor is, the one
//! constructor of a connection's HTTP client and `ProviderInfo`, the status skeleton of vendor
//! errors, and the helpers adapters would otherwise each write again.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use switchboard_core::{
    Capabilities, Error, ErrorKind, Message, MessageQuery, PassthroughAnswer, PassthroughRequest,
    Provider, ProviderInfo, ProviderKind, Result, UpstreamPage, codes,
};
use url::Url;

use crate::budget::RateLimit;
use crate::call::ErrorParser;
use crate::client::Upstream;
use crate::options::{Shared, UpstreamOptions};
use crate::window::retry_after_from_headers;

/// The keys every `[[connections]]` section has, whatever its vendor; each vendor's config
/// flattens them in (`#[serde(flatten)]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ConnectionSettings {
    /// Overrides the API's base URL (a self-hosted vendor, the simulator).
    pub base_url: Option<Url>,
    /// Overrides the quota (default: the vendor's documented one, if it has one).
    pub rate_limit: Option<RateLimit>,
    /// Overrides the per-request deadline, retries included, in seconds (default 15).
    pub timeout_secs: Option<u64>,
    /// Overrides the time to connect to the vendor, in seconds (default 5).
    pub connect_timeout_secs: Option<u64>,
}

impl ConnectionSettings {
    /// The upstream options of a connection to `vendor` with these settings.
    pub fn options(&self, vendor: &Vendor, shared: &Shared) -> Result<UpstreamOptions> {
        let base = match &self.base_url {
            Some(url) => url.clone(),
            None => Url::parse(vendor.base_url)
                .map_err(|e| Error::new(ErrorKind::Config, "invalid base_url").with_source(e))?,
        };
        let mut options = UpstreamOptions::new(base, shared.clone());
        options.rate_limit = self.rate_limit.or(vendor.rate_limit);
        if let Some(secs) = self.timeout_secs {
            options.deadline = Duration::from_secs(secs.max(1));
        }
        if let Some(secs) = self.connect_timeout_secs {
            options.connect_timeout = Duration::from_secs(secs.max(1));
        }
        Ok(options)
    }
}

/// What an error status means when the vendor's body says nothing more, in the vendor's words.
#[derive(Debug, Clone, Copy)]
pub struct StatusMessages {
    /// 401: the vendor rejected the connection's credential.
    pub unauthorized: &'static str,
    /// 403: the vendor refused the credential this call.
    pub forbidden: &'static str,
    /// 404.
    pub not_found: &'static str,
    /// 429: the vendor's quota is used up.
    pub rate_limited: &'static str,
}

/// Who a vendor is, as everything but its adapter's own calls needs it.
#[derive(Debug)]
pub struct Vendor {
    /// Its name in `provider = "..."` and in the API.
    pub kind: ProviderKind,
    /// How people write its name (`ChatbotX`).
    pub name: &'static str,
    /// Its production API.
    pub base_url: &'static str,
    /// Its documented quota, if it has one.
    pub rate_limit: Option<RateLimit>,
    /// What it can do.
    pub capabilities: fn() -> Capabilities,
    /// Its `error.rs`: a non-2xx answer -> gateway error.
    pub parse_error: ErrorParser,
    /// What its error statuses mean when its body says nothing more.
    pub statuses: StatusMessages,
    /// What a connection's passthrough reaches, for people (`switchboard capabilities`).
    pub passthrough: &'static str,
}

impl Vendor {
    /// Maps a non-2xx answer: the vendor's own reading of its body (`own`) when it has one,
    /// else the status skeleton (401/403, 404, 429, 5xx, anything else "rejected"). A 429 carries
    /// the wait the vendor's headers ask for.
    pub fn classify(&self, status: StatusCode, headers: &HeaderMap, own: Option<Error>) -> Error {
        let messages = &self.statuses;
        let error = own.unwrap_or_else(|| match status.as_u16() {
            401 => Error::new(ErrorKind::UpstreamAuth, messages.unauthorized),
            403 => Error::new(ErrorKind::UpstreamAuth, messages.forbidden),
            404 => Error::not_found(messages.not_found),
            429 => Error::new(ErrorKind::RateLimited, messages.rate_limited),
            s if s >= 500 => Error::new(
                ErrorKind::UpstreamUnavailable,
                format!("{} failed to answer", self.name),
            ),
            _ => Error::new(
                ErrorKind::UpstreamUnavailable,
                format!("{} rejected the request", self.name),
            )
            .with_code(codes::UPSTREAM_REJECTED)
            .set_temporary(false),
        });
        match retry_after_from_headers(headers) {
            Some(after) if status == StatusCode::TOO_MANY_REQUESTS => error.with_retry_after(after),
            _ => error,
        }
    }

    /// The vendor refused a request as invalid for a reason the gateway does not map further.
    pub fn rejected_as_invalid(&self) -> Error {
        Error::new(
            ErrorKind::Unprocessable,
            format!("{} rejected the request as invalid", self.name),
        )
        .with_code(codes::UPSTREAM_REJECTED)
    }

    /// A 2xx answer whose body does not read as what the vendor documents.
    pub fn unreadable(&self) -> Error {
        Error::new(
            ErrorKind::UpstreamUnavailable,
            format!(
                "{} answered with a body the gateway could not read",
                self.name
            ),
        )
    }
}

/// A vendor adapter, as the registry and the behaviour cases build it.
pub trait Adapter: Provider + Sized + 'static {
    /// Its `[[connections]]` section: the vendor's own keys, [`ConnectionSettings`] flattened in.
    type Config: DeserializeOwned;
    /// The vendor.
    const VENDOR: &'static Vendor;
    /// Connection `connection` from its section. Nothing is sent to the vendor yet.
    fn connect(connection: &str, config: &Self::Config, shared: &Shared) -> Result<Self>;
}

/// A connection's edge: who it is and its HTTP client to its vendor.
#[derive(Debug)]
pub struct Edge {
    /// Kind, connection id, capabilities.
    pub info: ProviderInfo,
    /// The HTTP client.
    pub upstream: Upstream,
    vendor: &'static Vendor,
}

impl Edge {
    /// Connection `connection` to `vendor` with `settings`, sending `headers` (mark secrets
    /// sensitive) on every call.
    pub fn new(
        vendor: &'static Vendor,
        connection: &str,
        settings: &ConnectionSettings,
        shared: &Shared,
        headers: HeaderMap,
    ) -> Result<Edge> {
        let options = settings.options(vendor, shared)?;
        Ok(Edge {
            info: ProviderInfo {
                kind: vendor.kind.clone(),
                connection: connection.to_owned(),
                capabilities: (vendor.capabilities)(),
                sort_window: std::sync::Arc::default(),
            },
            upstream: Upstream::new(connection, options, headers, vendor.parse_error)?,
            vendor,
        })
    }

    /// The connection id.
    pub fn connection(&self) -> &str {
        &self.info.connection
    }

    /// The vendor.
    pub fn vendor(&self) -> &'static Vendor {
        self.vendor
    }

    /// Sends a caller's own request (`passthrough`) to the vendor with the connection's fixed
    /// credentials (the headers the edge was built with); see [`Upstream::passthrough`].
    pub async fn passthrough(&self, request: &PassthroughRequest) -> Result<PassthroughAnswer> {
        self.upstream.passthrough(request, HeaderMap::new()).await
    }

    /// A 2xx answer of this connection's vendor that does not read as documented.
    pub fn unreadable(&self) -> Error {
        self.vendor.unreadable().with_connection(self.connection())
    }

    /// The reply was sent, but the vendor's answer was not the message: finds it among the
    /// conversation's newest messages with `is_reply`.
    pub async fn find_sent_reply<P: Provider + ?Sized>(
        &self,
        provider: &P,
        conversation: &str,
        is_reply: impl Fn(&Message) -> bool,
    ) -> Result<Message> {
        let query = MessageQuery {
            since: None,
            page_size: 20,
            include_raw: false,
        };
        let newest = provider
            .list_messages(conversation, &query, &UpstreamPage::First)
            .await?;
        newest.items.into_iter().find(is_reply).ok_or_else(|| {
            Error::new(
                ErrorKind::UpstreamUnavailable,
                format!(
                    "the reply was sent, but {}'s answer could not be read",
                    self.vendor.name
                ),
            )
            .set_temporary(false)
        })
    }
}

/// A cursor that cannot be this connection's (another vendor's, or forged).
pub fn invalid_cursor() -> Error {
    Error::new(
        ErrorKind::InvalidRequest,
        "the cursor does not fit this connection",
    )
    .with_code(codes::INVALID_CURSOR)
}

/// An assignee that cannot be an agent of this connection.
pub fn invalid_assignee() -> Error {
    Error::new(
        ErrorKind::Unprocessable,
        "the agent cannot be assigned on this connection",
    )
    .with_code(codes::INVALID_ASSIGNEE)
    .with_parameter("assignee_id")
}

/// A sender that cannot be an agent of this connection.
pub fn invalid_sender() -> Error {
    Error::new(
        ErrorKind::Unprocessable,
        "the sender is not an agent of this connection",
    )
    .with_code(codes::INVALID_SENDER)
    .with_parameter("sender_id")
}

/// The 1-based page number of a page-numbered list.
pub fn page_number(page: &UpstreamPage) -> Result<u32> {
    match page {
        UpstreamPage::First => Ok(1),
        UpstreamPage::Number(n) if *n >= 1 => Ok(*n),
        _ => Err(invalid_cursor()),
    }
}

/// The page after `page` of a page-numbered list: from the vendor's page count when it gives
/// one, else while pages come full (`served` of `per_page`).
pub fn next_page_number(
    page: u32,
    served: usize,
    per_page: u32,
    total_pages: Option<u64>,
) -> Option<UpstreamPage> {
    let more = match total_pages {
        Some(total) => u64::from(page) < total,
        None => served >= per_page as usize,
    };
    more.then(|| page.checked_add(1))
        .flatten()
        .map(UpstreamPage::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    static VENDOR: Vendor = Vendor {
        kind: ProviderKind::new("acme"),
        name: "Acme",
        base_url: "https://api.acme.example/v1",
        rate_limit: Some(RateLimit {
            requests: 10,
            per_seconds: 1,
        }),
        capabilities: || Capabilities {
            list_conversations: true,
            get_conversation: true,
            list_messages: true,
            list_agents: false,
            assign: false,
            unassign: false,
            send_message: false,
            set_status: Vec::new(),
            idempotent_replies: false,
            native_filters: Default::default(),
            paging: switchboard_core::PagingStyle::PageNumber,
            max_page_size: 50,
            max_message_page_size: 50,
            sorted_by_activity: true,
        },
        parse_error: |status, headers, _| VENDOR.classify(status, headers, None),
        statuses: StatusMessages {
            unauthorized: "Acme rejected the key",
            forbidden: "Acme refused the key",
            not_found: "no such thing",
            rate_limited: "Acme's quota is used up",
        },
        passthrough: "the whole API",
    };

    fn classify(status: u16, headers: &HeaderMap) -> Error {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::IM_A_TEAPOT);
        VENDOR.classify(status, headers, None)
    }

    #[test]
    fn the_status_skeleton_speaks_in_the_vendors_words() {
        let none = HeaderMap::new();
        let table: &[(u16, u16, &str, &str)] = &[
            (401, 502, "upstream_auth_failed", "Acme rejected the key"),
            (403, 502, "upstream_auth_failed", "Acme refused the key"),
            (404, 404, "not_found", "no such thing"),
            (429, 503, "upstream_rate_limited", "Acme's quota is used up"),
            (500, 502, "upstream_unavailable", "Acme failed to answer"),
            (503, 502, "upstream_unavailable", "Acme failed to answer"),
            (400, 502, "upstream_rejected", "Acme rejected the request"),
            (418, 502, "upstream_rejected", "Acme rejected the request"),
        ];
        for (status, http, code, message) in table {
            let e = classify(*status, &none);
            assert_eq!(
                (e.kind().http_status(), e.code(), e.message()),
                (*http, *code, *message),
                "{status}"
            );
        }
        assert!(classify(503, &none).is_temporary());
        assert!(!classify(400, &none).is_temporary());
    }

    #[test]
    fn a_429_waits_as_the_headers_say_and_the_vendors_own_reading_wins() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", 7.into());
        assert_eq!(
            classify(429, &headers).retry_after(),
            Some(Duration::from_secs(7))
        );
        assert_eq!(classify(429, &HeaderMap::new()).retry_after(), None);
        assert_eq!(classify(500, &headers).retry_after(), None);
        let own =
            Error::new(ErrorKind::RateLimited, "monthly").with_code(codes::UPSTREAM_PLAN_LIMIT);
        let e = VENDOR.classify(StatusCode::TOO_MANY_REQUESTS, &headers, Some(own));
        assert_eq!(
            (e.code(), e.retry_after()),
            ("upstream_plan_limit", Some(Duration::from_secs(7)))
        );
    }

    #[test]
    fn settings_override_the_vendors_defaults() {
        let shared = Shared::default();
        let defaults = ConnectionSettings::default()
            .options(&VENDOR, &shared)
            .expect("options");
        assert_eq!(defaults.base_url.as_str(), "https://api.acme.example/v1");
        assert_eq!(defaults.rate_limit, VENDOR.rate_limit);
        assert_eq!(defaults.deadline, Duration::from_secs(15));
        let settings: ConnectionSettings = serde_json::from_value(serde_json::json!({
            "base_url": "http://127.0.0.1:9/acme",
            "rate_limit": {"requests": 1, "per_seconds": 60},
            "timeout_secs": 0,
            "connect_timeout_secs": 2,
        }))
        .expect("settings");
        let options = settings.options(&VENDOR, &shared).expect("options");
        assert_eq!(options.base_url.as_str(), "http://127.0.0.1:9/acme");
        assert_eq!(options.rate_limit.map(|r| r.per_seconds), Some(60));
        assert_eq!(
            options.deadline,
            Duration::from_secs(1),
            "at least a second"
        );
        assert_eq!(options.connect_timeout, Duration::from_secs(2));
    }

    #[test]
    fn page_numbers_continue_while_pages_are_full_or_the_count_says_so() {
        assert_eq!(page_number(&UpstreamPage::First).ok(), Some(1));
        assert_eq!(page_number(&UpstreamPage::Number(3)).ok(), Some(3));
        for bad in [UpstreamPage::Number(0), UpstreamPage::Cursor("x".into())] {
            assert_eq!(
                page_number(&bad).err().map(|e| e.code()),
                Some("invalid_cursor")
            );
        }
        assert_eq!(
            next_page_number(1, 100, 100, None),
            Some(UpstreamPage::Number(2))
        );
        assert_eq!(next_page_number(3, 99, 100, None), None);
        assert_eq!(next_page_number(u32::MAX, 1, 1, None), None);
        assert_eq!(
            next_page_number(1, 3, 100, Some(2)),
            Some(UpstreamPage::Number(2))
        );
        assert_eq!(next_page_number(2, 100, 100, Some(2)), None);
    }
}
