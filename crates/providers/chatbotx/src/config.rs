//! The `[[connections]]` section of a ChatbotX connection.

use serde::Deserialize;
use switchboard_upstream::{ConnectionSettings, RateLimit, Secret};

/// ChatbotX's cloud API (self-hosted: `https://{YOUR_DOMAIN}/api`); paths are `/v1/...`.
pub const DEFAULT_BASE_URL: &str = "https://app.chatbotx.io/api";

/// ChatbotX's quota in its server code: 120 requests per 10 s per workspace. (Its API overview
/// page says 30 requests per hour; set `rate_limit` lower if the cloud enforces that.)
pub const DEFAULT_RATE_LIMIT: RateLimit = RateLimit {
    requests: 120,
    per_seconds: 10,
};

/// A ChatbotX connection's settings (`provider = "chatbotx"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The workspace API token (Settings > Integrations > ChatbotX API Access Token), with the
    /// `inbox` scope and write access.
    pub token: Secret,
    /// `base_url` (self-hosted ChatbotX, the simulator), `rate_limit`, `timeout_secs`,
    /// `connect_timeout_secs`.
    #[serde(flatten)]
    pub connection: ConnectionSettings,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_unknown_keys_and_hides_the_token() {
        let config: Config = serde_json::from_str(
            r#"{"token": "cbx-secret-token", "rate_limit": {"requests": 30, "per_seconds": 3600}}"#,
        )
        .expect("valid config");
        assert_eq!(config.token.expose(), "cbx-secret-token");
        assert!(!format!("{config:?}").contains("cbx-secret-token"));
        assert_eq!(
            config.connection.rate_limit.map(|r| r.per_seconds),
            Some(3600)
        );

        let unknown = serde_json::from_str::<Config>(r#"{"token": "t", "api_key": "x"}"#);
        assert!(unknown.is_err());
    }
}
