//! The gateway's TOML configuration (`--config`, default `switchboard.toml`).
//!
//! Every secret is a literal string or `{ env = "NAME" }`, read at start-up. A broken config stops
//! start-up with a message naming the file, the key and the fix.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use serde::Deserialize;
use switchboard_core::ProviderKind;
use switchboard_core::ids::is_valid_connection_id;
use switchboard_store::RateLimit;
use switchboard_upstream::{BreakerSettings, Secret};

use crate::registry;
pub use crate::webhooks::WebhookConfig;

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[server]`.
    #[serde(default)]
    pub server: ServerConfig,
    /// `[[clients]]`: who may call the gateway.
    #[serde(default)]
    pub clients: Vec<ClientConfig>,
    /// `[[connections]]`: the vendor accounts behind the gateway.
    #[serde(default)]
    pub connections: Vec<ConnectionConfig>,
    /// `[store]`: where quotas, idempotency records and cached pages live. Absent: `serve` uses
    /// the embedded file `switchboard.db`; a gateway built in-process (tests) uses memory.
    pub store: Option<StoreConfig>,
    /// `[[webhooks]]`: where events are delivered, signed.
    #[serde(default)]
    pub webhooks: Vec<WebhookConfig>,
    /// `[feed]`: the change feed's event log.
    #[serde(default)]
    pub feed: FeedSection,
}

/// `[feed]`: how long the change feed keeps its events.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedSection {
    /// Days events are kept (default 7); a consumer's cursor older than that is
    /// `410 cursor_expired`.
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
}

fn default_retention_days() -> u32 {
    7
}

impl Default for FeedSection {
    fn default() -> FeedSection {
        FeedSection {
            retention_days: default_retention_days(),
        }
    }
}

impl FeedSection {
    /// The event log's settings.
    pub fn event_log(&self) -> switchboard_feed::FeedConfig {
        switchboard_feed::FeedConfig {
            retention: std::time::Duration::from_secs(u64::from(self.retention_days) * 86_400),
            ..switchboard_feed::FeedConfig::default()
        }
    }
}

/// Which store implementation holds the gateway's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// In the process; nothing survives it (tests, the demo).
    Memory,
    /// A redb file: one replica, survives restarts and `kill -9`.
    Embedded,
    /// Redis: several replicas share quotas, blocks, idempotency and the page cache.
    Redis,
}

/// `[store]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `memory`, `embedded` or `redis`; omitted: `redis` when `redis_url` is set, else `embedded`.
    pub kind: Option<StoreKind>,
    /// The embedded store's file (default `switchboard.db`, relative to the working directory).
    pub path: Option<PathBuf>,
    /// The Redis URL (`redis://[:password@]host:6379[/db]`), literal or `{ env = "NAME" }`.
    pub redis_url: Option<Secret>,
    /// The prefix of every Redis key (default `switchboard:`), so gateways can share a Redis.
    pub key_prefix: Option<String>,
}

/// The embedded store's file when `[store] path` is not set.
pub const DEFAULT_STORE_PATH: &str = "switchboard.db";
/// The Redis key prefix when `[store] key_prefix` is not set.
pub const DEFAULT_KEY_PREFIX: &str = "switchboard:";

impl StoreConfig {
    /// The store `serve` uses when the config has no `[store]`: the embedded file.
    pub fn embedded_default() -> StoreConfig {
        StoreConfig {
            kind: Some(StoreKind::Embedded),
            ..StoreConfig::default()
        }
    }

    /// The kind, explicit or inferred (`redis_url` set: redis; otherwise embedded).
    pub fn kind(&self) -> StoreKind {
        match (self.kind, &self.redis_url) {
            (Some(kind), _) => kind,
            (None, Some(_)) => StoreKind::Redis,
            (None, None) => StoreKind::Embedded,
        }
    }

    /// The embedded store's file.
    pub fn path(&self) -> PathBuf {
        self.path
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STORE_PATH))
    }

    /// The Redis key prefix.
    pub fn key_prefix(&self) -> &str {
        self.key_prefix.as_deref().unwrap_or(DEFAULT_KEY_PREFIX)
    }

    fn validate(&self, server: &ServerConfig) -> anyhow::Result<()> {
        let kind = self.kind();
        if kind == StoreKind::Redis && self.redis_url.is_none() {
            bail!(
                "[store] kind = \"redis\" needs `redis_url` (e.g. redis_url = {{ env = \"SWITCHBOARD_REDIS_URL\" }})"
            );
        }
        if kind != StoreKind::Redis && self.redis_url.is_some() {
            bail!("[store] `redis_url` is set but kind is not \"redis\"; remove one of them");
        }
        if kind != StoreKind::Embedded && self.path.is_some() {
            bail!(
                "[store] `path` is for the embedded store only; remove it or set kind = \"embedded\""
            );
        }
        if self.key_prefix.as_deref() == Some("") {
            bail!("[store] `key_prefix` is empty; use e.g. \"switchboard:\" (or omit it)");
        }
        if kind == StoreKind::Redis && server.cursor_secret.is_none() {
            bail!(
                "[store] is Redis, so several replicas may serve the same callers, but [server] has no `cursor_secret`: every replica must share one cursor secret, or a cursor from one replica fails on another. Set [server] cursor_secret = {{ env = \"SWITCHBOARD_CURSOR_SECRET\" }} on every replica"
            );
        }
        Ok(())
    }
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    #[serde(default = "default_bind")]
    pub bind: SocketAddr,
    /// Key that signs cursors; without it a random key is made at start-up (cursors then do not
    /// survive a restart nor work across replicas).
    pub cursor_secret: Option<Secret>,
    /// How long upstream pages stay cached, in milliseconds; 0 disables the cache and the
    /// coalescing of identical reads.
    #[serde(default = "default_cache_ttl_ms")]
    pub cache_ttl_ms: u64,
    /// How long the upstream pages an inbox traversal reached are kept for its next page, in
    /// seconds, so that each is read from its vendor once however slowly the caller pages; 0
    /// reads each connection's current page again on every page.
    #[serde(default = "default_traversal_ttl_secs")]
    pub traversal_ttl_secs: u64,
    /// How many conversations of kept traversal pages a replica holds in its memory, the least
    /// recently used page first out (about 1 KB each). A traversal whose page was pushed out
    /// reads it from its vendor again.
    #[serde(default = "default_traversal_kept_conversations")]
    pub traversal_kept_conversations: u64,
    /// When a connection's circuit breaker opens.
    #[serde(default)]
    pub breaker: BreakerSettings,
    /// Browser access from other origins.
    #[serde(default)]
    pub cors: CorsConfig,
    /// How long a multi-connection page (the merged inbox) waits for a slow connection before
    /// it is served without it (listed in `partial` as `upstream_timeout`), in milliseconds.
    #[serde(default = "default_page_deadline_ms")]
    pub page_deadline_ms: u64,
    /// The largest vendor answer the gateway reads; a larger one is
    /// `502 upstream_response_too_large` and is never cached.
    #[serde(default = "default_max_upstream_body_bytes")]
    pub max_upstream_body_bytes: usize,
    /// Seconds a client has to send a request's headers, and that an idle keep-alive connection
    /// stays open.
    #[serde(default = "default_header_timeout_secs")]
    pub header_timeout_secs: u64,
    /// Connections served at once; more wait to be accepted.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Seconds in-flight requests get to finish after SIGTERM / Ctrl-C before their connections
    /// are closed.
    #[serde(default = "default_shutdown_timeout_secs")]
    pub shutdown_timeout_secs: u64,
    /// Seconds a write to a client may make no progress (the client reads nothing) before its
    /// connection is closed; bounds what a stalled event-stream subscriber holds.
    #[serde(default = "default_write_timeout_secs")]
    pub write_timeout_secs: u64,
    /// A bearer token `/readyz` and `/metrics` require (omitted: open to anyone who can reach
    /// the port). `/healthz` stays open.
    pub ops_token: Option<Secret>,
    /// Requests without a valid token, per client IP; past it, `429 rate_limited`.
    #[serde(default = "default_unauthenticated_rate_limit")]
    pub unauthenticated_rate_limit: RateLimit,
    /// Whether webhooks may go to loopback, private and link-local addresses (default false;
    /// each `[[webhooks]]` may override it).
    #[serde(default)]
    pub allow_private_targets: bool,
    /// Whether the gateway serves its console at `/console` (default true).
    #[serde(default = "default_console")]
    pub console: bool,
    /// How long a stream ticket (`POST /v1/events/tickets`) stays valid, in milliseconds
    /// (default 30000; at most 60000).
    #[serde(default = "default_stream_ticket_ttl_ms")]
    pub stream_ticket_ttl_ms: u64,
}

fn default_console() -> bool {
    true
}

fn default_stream_ticket_ttl_ms() -> u64 {
    crate::tickets::DEFAULT_TICKET_TTL.as_millis() as u64
}

fn default_page_deadline_ms() -> u64 {
    2500
}

fn default_max_upstream_body_bytes() -> usize {
    switchboard_upstream::DEFAULT_MAX_BODY_BYTES
}

fn default_header_timeout_secs() -> u64 {
    10
}

fn default_max_connections() -> usize {
    512
}

fn default_shutdown_timeout_secs() -> u64 {
    10
}

fn default_write_timeout_secs() -> u64 {
    30
}

/// The default limit on requests without a valid token: 30 a minute per IP.
pub fn default_unauthenticated_rate_limit() -> RateLimit {
    RateLimit {
        requests: 30,
        per_seconds: 60,
    }
}

/// `[server.cors]`: the origins whose browser apps may call the gateway.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsConfig {
    /// Exact origins, e.g. `https://app.example.com`; empty: no CORS headers at all.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
}

fn default_cache_ttl_ms() -> u64 {
    2000
}

fn default_traversal_ttl_secs() -> u64 {
    300
}

fn default_traversal_kept_conversations() -> u64 {
    crate::traversal::LOCAL_CONVERSATIONS
}

fn default_bind() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            bind: default_bind(),
            cursor_secret: None,
            cache_ttl_ms: default_cache_ttl_ms(),
            traversal_ttl_secs: default_traversal_ttl_secs(),
            traversal_kept_conversations: default_traversal_kept_conversations(),
            breaker: BreakerSettings::default(),
            cors: CorsConfig::default(),
            page_deadline_ms: default_page_deadline_ms(),
            max_upstream_body_bytes: default_max_upstream_body_bytes(),
            header_timeout_secs: default_header_timeout_secs(),
            max_connections: default_max_connections(),
            shutdown_timeout_secs: default_shutdown_timeout_secs(),
            write_timeout_secs: default_write_timeout_secs(),
            ops_token: None,
            unauthenticated_rate_limit: default_unauthenticated_rate_limit(),
            allow_private_targets: false,
            console: default_console(),
            stream_ticket_ttl_ms: default_stream_ticket_ttl_ms(),
        }
    }
}

/// What a client may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Read conversations, messages, agents, connections.
    Read,
    /// Assign, reply, change status.
    Write,
    /// See the webhook endpoints and replay them (`/v1/webhooks`).
    Admin,
    /// Send requests through to a connection's own vendor API
    /// (`/v1/connections/{id}/passthrough/{path}`); no other scope implies it.
    Passthrough,
}

impl Scope {
    /// The scope's name in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
            Scope::Passthrough => "passthrough",
        }
    }
}

/// `[[clients]]`: one caller of the gateway.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// A name for logs and for binding cursors.
    pub name: String,
    /// Hex SHA-256 of the bearer token.
    pub token_sha256: Option<String>,
    /// The bearer token itself (usually `{ env = "..." }`).
    pub token: Option<Secret>,
    /// What the client may do.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<Scope>,
    /// The connections the client may see (omitted: all).
    pub connections: Option<Vec<String>>,
    /// How many requests the client may make (default 600 per 60 s).
    #[serde(default = "default_client_rate_limit")]
    pub rate_limit: RateLimit,
}

/// The default inbound quota of a client.
pub fn default_client_rate_limit() -> RateLimit {
    RateLimit {
        requests: 600,
        per_seconds: 60,
    }
}

fn default_scopes() -> Vec<Scope> {
    vec![Scope::Read]
}

/// `[[connections]]`: one vendor account. Its vendor-specific keys stay in `settings` and are read
/// by the vendor's adapter.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// The operator-chosen id (`[a-z0-9][a-z0-9_-]{0,62}`).
    pub id: String,
    /// The vendor.
    pub provider: ProviderKind,
    /// How the change feed polls the connection.
    pub poll: PollConfig,
    /// The remaining keys, for the adapter.
    pub settings: toml::Table,
}

/// A connection's `poll_interval_secs` and `poll_quota_share`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PollConfig {
    /// Seconds between polls of the inbox for the change feed; `None` (the default in `serve`):
    /// not polled.
    pub interval_secs: Option<u64>,
    /// The largest share of the connection's quota the poller spends, in (0, 1] (default 0.5):
    /// its `rate_limit`, else its vendor's documented quota, else the feed's assumed one.
    pub quota_share: f64,
}

/// The quota share a poller spends when `poll_quota_share` is not set.
pub const DEFAULT_POLL_QUOTA_SHARE: f64 = 0.5;

impl Default for PollConfig {
    fn default() -> PollConfig {
        PollConfig {
            interval_secs: None,
            quota_share: DEFAULT_POLL_QUOTA_SHARE,
        }
    }
}

impl PollConfig {
    /// The poller's settings, when polling is on.
    pub fn settings(&self) -> Option<switchboard_feed::PollSettings> {
        self.interval_secs.map(|secs| {
            switchboard_feed::PollSettings::new(
                std::time::Duration::from_secs(secs),
                self.quota_share,
            )
        })
    }

    /// Takes the poll keys out of a connection's table (the adapters deny unknown keys).
    fn take(table: &mut toml::Table, id: &str) -> Result<PollConfig, String> {
        let mut poll = PollConfig::default();
        match table.remove("poll_interval_secs") {
            None => {}
            Some(toml::Value::Integer(secs)) if secs >= 1 => {
                poll.interval_secs = u64::try_from(secs).ok();
            }
            Some(_) => {
                return Err(format!(
                    "connection `{id}`: `poll_interval_secs` must be a whole number of seconds, at least 1 (e.g. poll_interval_secs = 10)"
                ));
            }
        }
        match table.remove("poll_quota_share") {
            None => {}
            Some(value) => {
                let share = match value {
                    toml::Value::Float(f) => f,
                    toml::Value::Integer(i) => i as f64,
                    _ => f64::NAN,
                };
                if !(share > 0.0 && share <= 1.0) {
                    return Err(format!(
                        "connection `{id}`: `poll_quota_share` must be above 0 and at most 1 (e.g. poll_quota_share = 0.5)"
                    ));
                }
                poll.quota_share = share;
            }
        }
        Ok(poll)
    }
}

impl<'de> Deserialize<'de> for ConnectionConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ConnectionConfig, D::Error> {
        use serde::de::Error as _;
        let mut table = toml::Table::deserialize(d)?;
        let id = match table.remove("id") {
            Some(toml::Value::String(s)) => s,
            Some(_) => return Err(D::Error::custom("`id` must be a string")),
            None => {
                return Err(D::Error::custom(
                    "missing `id` (e.g. id = \"shop-zipchat\")",
                ));
            }
        };
        if !is_valid_connection_id(&id) {
            return Err(D::Error::custom(format!(
                "connection id `{id}` is invalid: use 1-63 of a-z, 0-9, `_`, `-`, starting with a letter or digit"
            )));
        }
        let provider = match table.remove("provider") {
            Some(toml::Value::String(s)) => registry::kind(&s).ok_or_else(|| {
                D::Error::custom(format!(
                    "connection `{id}`: unknown provider `{s}` (expected one of {})",
                    registry::kinds(", ", ", ")
                ))
            })?,
            _ => {
                return Err(D::Error::custom(format!(
                    "connection `{id}`: missing `provider` ({})",
                    registry::kinds(", ", " or ")
                )));
            }
        };
        let poll = PollConfig::take(&mut table, &id).map_err(D::Error::custom)?;
        Ok(ConnectionConfig {
            id,
            provider,
            poll,
            settings: table,
        })
    }
}

impl ConnectionConfig {
    /// Reads the vendor-specific settings into the adapter's config type.
    pub fn settings<T: serde::de::DeserializeOwned>(&self) -> anyhow::Result<T> {
        toml::Value::Table(self.settings.clone())
            .try_into()
            .map_err(|e: toml::de::Error| {
                anyhow!(
                    "connection `{}` ({}): {}",
                    self.id,
                    self.provider,
                    e.message()
                )
            })
    }
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "cannot read the config file {} (pass another with --config)",
                path.display()
            )
        })?;
        Config::parse(&text).with_context(|| format!("invalid config file {}", path.display()))
    }

    /// Parses and validates config text.
    pub fn parse(text: &str) -> anyhow::Result<Config> {
        let config: Config = toml::from_str(text).map_err(|e| anyhow!("{e}"))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        let server = &self.server;
        let positive = [
            ("page_deadline_ms", server.page_deadline_ms),
            (
                "max_upstream_body_bytes",
                server.max_upstream_body_bytes as u64,
            ),
            ("header_timeout_secs", server.header_timeout_secs),
            ("write_timeout_secs", server.write_timeout_secs),
            ("stream_ticket_ttl_ms", server.stream_ticket_ttl_ms),
            ("max_connections", server.max_connections as u64),
            (
                "unauthenticated_rate_limit.requests",
                u64::from(server.unauthenticated_rate_limit.requests),
            ),
            (
                "unauthenticated_rate_limit.per_seconds",
                u64::from(server.unauthenticated_rate_limit.per_seconds),
            ),
        ];
        for (key, value) in positive {
            if value == 0 {
                bail!("[server] {key} must be above 0");
            }
        }
        let max_ticket_ms = crate::tickets::MAX_TICKET_TTL.as_millis() as u64;
        if server.stream_ticket_ttl_ms > max_ticket_ms {
            bail!("[server] stream_ticket_ttl_ms must be at most {max_ticket_ms}");
        }
        if let Some(store) = &self.store {
            store.validate(&self.server)?;
        }
        if self.feed.retention_days == 0 {
            bail!("[feed] retention_days must be at least 1 (the default is 7)");
        }
        for origin in &self.server.cors.allowed_origins {
            let url = url::Url::parse(origin).ok().filter(|u| {
                matches!(u.scheme(), "http" | "https") && u.path() == "/" && !origin.ends_with('/')
            });
            if url.is_none() {
                bail!(
                    "[server.cors] allowed_origins: `{origin}` is not an origin; write it like https://app.example.com (scheme, host, optional port, no path)"
                );
            }
        }
        let mut ids = BTreeSet::new();
        for c in &self.connections {
            if !ids.insert(c.id.as_str()) {
                bail!(
                    "[[connections]]: the id `{}` is used twice; connection ids must be unique",
                    c.id
                );
            }
        }
        let mut names = BTreeSet::new();
        for client in &self.clients {
            let who = format!("[[clients]] `{}`", client.name);
            if !names.insert(client.name.as_str()) {
                bail!("{who}: the name is used twice; client names must be unique");
            }
            match (&client.token_sha256, &client.token) {
                (Some(_), Some(_)) => {
                    bail!("{who}: set either `token_sha256` or `token`, not both")
                }
                (None, None) => bail!(
                    "{who}: set `token_sha256 = \"<hex sha256 of the token>\"` or `token = {{ env = \"NAME\" }}`"
                ),
                (Some(h), None) if h.len() != 64 || hex::decode(h).is_err() => {
                    bail!(
                        "{who}: `token_sha256` must be 64 hex characters (e.g. `printf %s \"$TOKEN\" | sha256sum`)"
                    )
                }
                _ => {}
            }
            if client.rate_limit.requests == 0 || client.rate_limit.per_seconds == 0 {
                bail!("{who}: `rate_limit` needs requests and per_seconds above 0");
            }
            if client.scopes.is_empty() {
                bail!("{who}: `scopes` is empty; use some of [\"read\", \"write\", \"admin\"]");
            }
            for c in client.connections.iter().flatten() {
                if !ids.contains(c.as_str()) {
                    bail!(
                        "{who}: `connections` names `{c}`, which is not a configured connection id"
                    );
                }
            }
        }
        crate::webhooks::config::validate_all(
            &self.webhooks,
            self.server.allow_private_targets,
            &ids,
            &switchboard_core::EventType::ALL.map(|t| t.as_str()),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
