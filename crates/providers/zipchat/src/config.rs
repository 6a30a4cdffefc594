//! The `[[connections]]` section of a Zipchat connection.

use serde::Deserialize;
use switchboard_core::tolerant;
use switchboard_upstream::{ConnectionSettings, RateLimit, Secret};

/// Zipchat's production API.
pub const DEFAULT_BASE_URL: &str = "https://app.zipchat.ai/api/integrations/backend_api/v1";

/// Zipchat's documented quota: 120 requests per 60 s per integration.
pub const DEFAULT_RATE_LIMIT: RateLimit = RateLimit {
    requests: 120,
    per_seconds: 60,
};

/// A Zipchat connection's settings (`provider = "zipchat"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The chat the integration belongs to (from the integration card).
    #[serde(deserialize_with = "tolerant::id")]
    pub chat_id: String,
    /// The Backend API key (`zc-…`).
    pub api_key: Secret,
    /// `base_url`, `rate_limit`, `timeout_secs`, `connect_timeout_secs`.
    #[serde(flatten)]
    pub connection: ConnectionSettings,
}
