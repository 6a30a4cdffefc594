//! The `[[connections]]` section of an Octopush connection.

use serde::{Deserialize, Deserializer};
use switchboard_upstream::{ConnectionSettings, Secret};

/// An Octopush connection's settings (`provider = "octopush"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The account login (an e-mail), sent as the `api-login` header.
    #[serde(deserialize_with = "api_login")]
    pub api_login: String,
    /// The API key, sent as the `api-key` header.
    pub api_key: Secret,
    /// The SMS sender name replies go out under: 3 to 11 letters or digits.
    #[serde(deserialize_with = "sender")]
    pub sender: String,
    /// How many list pages of 100 the merged inbox reads at once and sorts once the list has
    /// come out of activity order (Octopush does not document its order; until then it is read a
    /// page at a time, and checked): the inbox order is exact within them. 1 to 20, 10 by
    /// default; every first page then reads all of them at once, so fewer cost fewer calls and
    /// less memory.
    #[serde(
        default = "default_sort_window_pages",
        deserialize_with = "sort_window_pages"
    )]
    pub sort_window_pages: u32,
    /// `base_url`, `rate_limit` (none by default), `timeout_secs`, `connect_timeout_secs`.
    #[serde(flatten)]
    pub connection: ConnectionSettings,
}

/// The largest window: its pages are read at once, on every first page of the inbox once the
/// list has come out of order.
const MAX_SORT_WINDOW_PAGES: u32 = 20;

fn default_sort_window_pages() -> u32 {
    switchboard_core::inbox::UNSORTED_CHUNK_PAGES
}

fn sort_window_pages<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let pages = u32::deserialize(d)?;
    if (1..=MAX_SORT_WINDOW_PAGES).contains(&pages) {
        Ok(pages)
    } else {
        Err(serde::de::Error::custom(format!(
            "sort_window_pages must be 1 to {MAX_SORT_WINDOW_PAGES} list pages, not {pages}"
        )))
    }
}

/// Whether `s` is a valid Octopush sender: 3 to 11 ASCII letters or digits.
pub fn is_valid_sender(s: &str) -> bool {
    (3..=11).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn sender<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if is_valid_sender(&s) {
        Ok(s)
    } else {
        Err(serde::de::Error::custom(format!(
            "sender `{s}` is not a valid Octopush sender: use 3 to 11 letters or digits (no spaces), e.g. \"MyShop\""
        )))
    }
}

fn api_login<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    let looks_like_email = s
        .split_once('@')
        .is_some_and(|(user, domain)| !user.is_empty() && !domain.is_empty())
        && !s.chars().any(|c| c.is_whitespace() || c.is_control());
    if looks_like_email {
        Ok(s)
    } else {
        Err(serde::de::Error::custom(
            "api_login must be the Octopush account's login e-mail, e.g. \"ops@example.com\"",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Config, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn reads_a_valid_section_and_never_prints_the_key() {
        let c = parse(r#"{"api_login":"ops@example.com","api_key":"k-secret","sender":"MyShop"}"#)
            .expect("valid");
        assert_eq!(c.api_login, "ops@example.com");
        assert_eq!(c.sender, "MyShop");
        assert_eq!(c.sort_window_pages, 10);
        assert_eq!(c.connection, ConnectionSettings::default());
        let three = r#"{"api_login":"o@example.com","api_key":"k","sender":"MyShop","sort_window_pages":3}"#;
        assert_eq!(parse(three).map(|c| c.sort_window_pages), Ok(3));
        assert!(!format!("{c:?}").contains("k-secret"));
    }

    #[test]
    fn rejects_bad_senders_logins_and_unknown_keys() {
        for (json, needle) in [
            (
                r#"{"api_login":"ops@example.com","api_key":"k","sender":"My Shop"}"#,
                "sender",
            ),
            (
                r#"{"api_login":"ops@example.com","api_key":"k","sender":"AB"}"#,
                "sender",
            ),
            (
                r#"{"api_login":"ops@example.com","api_key":"k","sender":"ABCDEFGHIJKL"}"#,
                "sender",
            ),
            (
                r#"{"api_login":"ops@example.com","api_key":"k","sender":"Boutique-1"}"#,
                "sender",
            ),
            (
                r#"{"api_login":"ops","api_key":"k","sender":"MyShop"}"#,
                "api_login",
            ),
            (
                r#"{"api_login":"ops@example.com","api_key":"k","sender":"MyShop","chat_id":1}"#,
                "chat_id",
            ),
            (
                r#"{"api_login":"ops@example.com","api_key":"","sender":"MyShop"}"#,
                "empty",
            ),
            (
                r#"{"api_login":"ops@example.com","api_key":"k","sender":"MyShop","sort_window_pages":0}"#,
                "sort_window_pages",
            ),
            (
                r#"{"api_login":"ops@example.com","api_key":"k","sender":"MyShop","sort_window_pages":21}"#,
                "sort_window_pages",
            ),
        ] {
            let err = parse(json).err().unwrap_or_default();
            assert!(err.contains(needle), "{json}: {err}");
        }
    }
}
