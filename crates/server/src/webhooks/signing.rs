//! Standard Webhooks signatures: `webhook-id`, `webhook-timestamp` and
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, with a secret
//! written `whsec_<base64>`.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The shortest signing key the Standard Webhooks spec accepts, in bytes (192 bits).
pub const MIN_SECRET_BYTES: usize = 24;
/// The longest signing key the Standard Webhooks spec accepts, in bytes (512 bits).
pub const MAX_SECRET_BYTES: usize = 64;

/// An endpoint's signing key. Its `Debug` never shows it.
#[derive(Clone)]
pub struct WebhookSecret {
    key: Vec<u8>,
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

impl WebhookSecret {
    /// Reads `whsec_<base64>` (padded or not) holding 24 to 64 bytes; the error says what is
    /// wrong without showing the secret.
    pub fn parse(text: &str) -> Result<WebhookSecret, String> {
        let encoded = text.strip_prefix("whsec_").ok_or_else(|| {
            "must start with `whsec_` followed by the base64 of 24 to 64 random bytes \
             (e.g. `echo \"whsec_$(openssl rand -base64 32)\"`)"
                .to_owned()
        })?;
        let key = STANDARD
            .decode(encoded)
            .or_else(|_| STANDARD_NO_PAD.decode(encoded))
            .map_err(|_| "is not `whsec_` followed by standard base64".to_owned())?;
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&key.len()) {
            return Err(format!(
                "holds {} bytes; the Standard Webhooks spec wants {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES}",
                key.len()
            ));
        }
        Ok(WebhookSecret { key })
    }

    /// The `webhook-signature` value for one delivery: `v1,<base64 HMAC-SHA256>` of
    /// `{id}.{timestamp}.{body}`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        // Any key length is valid for HMAC; the key was checked at parse time anyway.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Standard Webhooks reference vector (the spec's libraries test against it).
    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const TIMESTAMP: i64 = 1649367553;
    const BODY: &str = r#"{"email":"test@example.com","username":"test_user"}"#;
    const SIGNATURE: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    #[test]
    fn signs_the_reference_vector() {
        let secret = WebhookSecret::parse(SECRET).expect("the reference secret parses");
        assert_eq!(secret.sign(ID, TIMESTAMP, BODY.as_bytes()), SIGNATURE);
    }

    #[test]
    fn the_standardwebhooks_crate_verifies_what_we_sign() {
        let secret = WebhookSecret::parse(SECRET).expect("parses");
        let body = br#"{"id":"1700000000000-0","type":"message.created"}"#;
        let now = chrono::Utc::now().timestamp();
        let signature = secret.sign("1700000000000-0", now, body);
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "webhook-id",
            http::HeaderValue::from_static("1700000000000-0"),
        );
        headers.insert("webhook-timestamp", http::HeaderValue::from(now));
        headers.insert(
            "webhook-signature",
            http::HeaderValue::from_str(&signature).expect("ascii"),
        );
        let verifier = standardwebhooks::Webhook::new(SECRET).expect("the crate reads it");
        verifier
            .verify(body, &headers)
            .expect("an independent implementation accepts the signature");
        let tampered = br#"{"id":"1700000000000-0","type":"message.created "}"#;
        assert!(verifier.verify(tampered, &headers).is_err());
    }

    #[test]
    fn refuses_secrets_outside_the_spec() {
        assert!(WebhookSecret::parse("C2FVsBQIhrscChlQIMV+b5sSYspob7oD").is_err());
        assert!(WebhookSecret::parse("whsec_not base64!").is_err());
        // 12 bytes: too short.
        assert!(WebhookSecret::parse("whsec_dG9vLXNob3J0LWtleQ==").is_err());
        let long = format!("whsec_{}", STANDARD.encode([7u8; 65]));
        assert!(WebhookSecret::parse(&long).is_err());
        let unpadded = format!("whsec_{}", STANDARD_NO_PAD.encode([7u8; 25]));
        assert!(WebhookSecret::parse(&unpadded).is_ok());
        let error = WebhookSecret::parse("whsec_dG9vLXNob3J0LWtleQ==").expect_err("short");
        assert!(!error.contains("dG9v"), "{error}");
    }
}
