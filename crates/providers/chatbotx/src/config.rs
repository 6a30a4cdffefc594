//! The `[[connections]]` section of a ChatbotX connection.

use serde::Deserialize;
use switchboard_upstream::{ConnectionSettings, Secret};

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
