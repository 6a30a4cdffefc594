//! The `[[connections]]` section of a Zipchat connection.

use serde::Deserialize;
use switchboard_core::tolerant;
use switchboard_upstream::{ConnectionSettings, Secret};

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
