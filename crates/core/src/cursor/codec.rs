//! The cursor's codec: base64url(JSON envelope) "." base64url(HMAC-SHA256).
//!
//! The envelope binds the state to the caller and the filters it was made for, so a cursor cannot
//! be forged, nor replayed by another caller or with other filters.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::codes::INVALID_CURSOR;
use crate::error::{Error, ErrorKind, Result};

/// The cursor format version; bumped when the state layout changes incompatibly.
pub const VERSION: u8 = 1;

/// The longest cursor accepted (a guard against abuse, far above any real cursor).
pub const MAX_CURSOR_LEN: usize = 16 * 1024;

type HmacSha256 = Hmac<Sha256>;

/// Signs and verifies cursors with the server's secret.
#[derive(Clone)]
pub struct CursorCodec {
    key: Vec<u8>,
}

impl std::fmt::Debug for CursorCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorCodec { key: <redacted> }")
    }
}

#[derive(Deserialize)]
struct Envelope<T> {
    v: u8,
    b: String,
    s: T,
}

#[derive(Serialize)]
struct EnvelopeRef<'a, T> {
    v: u8,
    b: &'a str,
    s: &'a T,
}

/// What a cursor is bound to: a hash of the caller, the listing it pages and its filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding(String);

impl Binding {
    /// Binds to `caller`, the listing `scope` (e.g. `"conversations"`) and the serialized `filters`.
    pub fn new(caller: &str, scope: &str, filters: &impl Serialize) -> Binding {
        let mut h = Sha256::new();
        for part in [caller.as_bytes(), scope.as_bytes()] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        h.update(serde_json::to_vec(filters).unwrap_or_default());
        Binding(hex::encode(&h.finalize()[..16]))
    }
}

fn invalid(message: &str) -> Error {
    Error::new(ErrorKind::InvalidRequest, message)
        .with_code(INVALID_CURSOR)
        .with_parameter("cursor")
}

impl CursorCodec {
    /// A codec keyed with `secret`.
    pub fn new(secret: &[u8]) -> CursorCodec {
        CursorCodec {
            key: secret.to_vec(),
        }
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length; this cannot fail.
        HmacSha256::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
    }

    /// Encodes and signs `state` for `binding`.
    pub fn encode<T: Serialize>(&self, binding: &Binding, state: &T) -> String {
        let body = serde_json::to_vec(&EnvelopeRef {
            v: VERSION,
            b: binding.0.as_str(),
            s: state,
        })
        .unwrap_or_default();
        let mut mac = self.mac();
        mac.update(&body);
        let tag = mac.finalize().into_bytes();
        let mut out = B64.encode(&body);
        out.push('.');
        out.push_str(&B64.encode(tag));
        out
    }

    /// Verifies and decodes a cursor made for `binding`; any mismatch is 400 `invalid_cursor`.
    pub fn decode<T: DeserializeOwned>(&self, binding: &Binding, cursor: &str) -> Result<T> {
        if cursor.len() > MAX_CURSOR_LEN {
            return Err(invalid("the cursor is too long"));
        }
        let (body, tag) = cursor
            .split_once('.')
            .ok_or_else(|| invalid("the cursor is malformed"))?;
        let body = B64
            .decode(body)
            .map_err(|_| invalid("the cursor is malformed"))?;
        let tag = B64
            .decode(tag)
            .map_err(|_| invalid("the cursor is malformed"))?;
        let mut mac = self.mac();
        mac.update(&body);
        mac.verify_slice(&tag).map_err(|_| {
            invalid(
                "the cursor's signature does not match; it was altered or made by another server",
            )
        })?;
        let envelope: Envelope<T> = serde_json::from_slice(&body)
            .map_err(|_| invalid("the cursor's version is not supported"))?;
        if envelope.v != VERSION {
            return Err(invalid("the cursor's version is not supported"));
        }
        if envelope.b != binding.0 {
            return Err(invalid(
                "the cursor was made for other filters or another caller; start again without a cursor",
            ));
        }
        Ok(envelope.s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec() -> CursorCodec {
        CursorCodec::new(b"test-secret")
    }

    #[test]
    fn round_trips_and_rejects_tampering() {
        let b = Binding::new("caller", "conversations", &("open", 3));
        let c = codec().encode(&b, &vec![1u32, 2, 3]);
        assert_eq!(codec().decode::<Vec<u32>>(&b, &c).ok(), Some(vec![1, 2, 3]));

        let mut tampered = c.clone().into_bytes();
        tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap_or_default();
        assert_eq!(
            codec()
                .decode::<Vec<u32>>(&b, &tampered)
                .err()
                .map(|e| e.code()),
            Some(INVALID_CURSOR)
        );
        assert!(codec().decode::<Vec<u32>>(&b, &c[..c.len() - 2]).is_err());
        assert!(codec().decode::<Vec<u32>>(&b, "garbage").is_err());
    }

    #[test]
    fn rejects_other_callers_filters_and_secrets() {
        let b = Binding::new("caller", "conversations", &"open");
        let c = codec().encode(&b, &1u8);
        let other_caller = Binding::new("intruder", "conversations", &"open");
        let other_filter = Binding::new("caller", "conversations", &"closed");
        assert!(codec().decode::<u8>(&other_caller, &c).is_err());
        assert!(codec().decode::<u8>(&other_filter, &c).is_err());
        assert!(CursorCodec::new(b"other").decode::<u8>(&b, &c).is_err());
    }
}
