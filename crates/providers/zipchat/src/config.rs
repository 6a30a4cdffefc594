//! The `[[connections]]` section of a Zipchat connection.

use serde::Deserialize;
use switchboard_core::tolerant;
use switchboard_upstream::{RateLimit, Secret, Url};

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
    /// Overrides the API's base URL.
    pub base_url: Option<Url>,
    /// Overrides the quota.
    pub rate_limit: Option<RateLimit>,
    /// Overrides the per-request deadline, in seconds.
    pub timeout_secs: Option<u64>,
    /// Overrides the time to connect to the vendor, in seconds.
    pub connect_timeout_secs: Option<u64>,
}
