//! Secrets in the config: a literal string or `{ env = "NAME" }`, read at start-up; never printed.

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};
use switchboard_core::{Error, ErrorKind};

/// A secret value from the config. Its `Debug` never shows the value.
#[derive(Clone)]
pub struct Secret {
    value: SecretString,
    source: SecretSource,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum SecretSource {
    Literal,
    Env(String),
}

impl Secret {
    /// A secret from a literal value (tests, the demo).
    pub fn literal(value: impl Into<String>) -> Secret {
        Secret {
            value: SecretString::from(value.into()),
            source: SecretSource::Literal,
        }
    }

    /// The value, for building a request header.
    pub fn expose(&self) -> &str {
        self.value.expose_secret()
    }

    /// The secret, after `prefix` (e.g. `"Bearer "`), as a header value marked sensitive so it
    /// is never logged; `what` names the config key in the error.
    pub fn header_value(&self, prefix: &str, what: &str) -> Result<HeaderValue, Error> {
        let mut value =
            HeaderValue::from_str(&format!("{prefix}{}", self.expose())).map_err(|_| {
                Error::new(
                    ErrorKind::Config,
                    format!("the {what} contains characters not allowed in a header"),
                )
            })?;
        value.set_sensitive(true);
        Ok(value)
    }

    /// Headers carrying the secret as `Authorization: Bearer <secret>`, marked sensitive; `what`
    /// names the config key in the error.
    pub fn bearer(&self, what: &str) -> Result<HeaderMap, Error> {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, self.header_value("Bearer ", what)?);
        Ok(headers)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.source {
            SecretSource::Literal => f.write_str("Secret(<redacted>)"),
            SecretSource::Env(name) => write!(f, "Secret(env {name}: <redacted>)"),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Raw {
    Literal(String),
    Env { env: String },
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        let raw = Raw::deserialize(d)
            .map_err(|_| serde::de::Error::custom("expected a string or { env = \"VARIABLE\" }"))?;
        match raw {
            Raw::Literal(s) if s.is_empty() => Err(serde::de::Error::custom(
                "the secret is empty; set it or use { env = \"VARIABLE\" }",
            )),
            Raw::Literal(s) => Ok(Secret::literal(s)),
            Raw::Env { env } => match std::env::var(&env) {
                Ok(v) if !v.is_empty() => Ok(Secret {
                    value: SecretString::from(v),
                    source: SecretSource::Env(env),
                }),
                _ => Err(serde::de::Error::custom(format!(
                    "environment variable `{env}` is not set (or empty); export it before starting Switchboard"
                ))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug)]
    struct Holder {
        key: Secret,
    }

    #[test]
    fn reads_literals_and_env_and_never_prints_them() {
        let h: Holder = serde_json::from_str(r#"{"key": "zc-topsecret"}"#).expect("literal");
        assert_eq!(h.key.expose(), "zc-topsecret");
        assert!(!format!("{h:?}").contains("topsecret"));

        let err =
            serde_json::from_str::<Holder>(r#"{"key": {"env": "SWITCHBOARD_SURELY_UNSET_VAR"}}"#)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
        assert!(err.contains("SWITCHBOARD_SURELY_UNSET_VAR"), "{err}");
    }
}
