//! Vendor ids on their way back to the vendor.

use switchboard_core::{Error, Result};

/// The longest native id sent upstream; no vendor's ids come near it.
pub const MAX_NATIVE_ID_BYTES: usize = 512;

/// A native id to put in a vendor path or query, where [`crate::Call`] percent-encodes it: every
/// id a vendor gave out is addressable whatever its characters. Only what cannot be an id at all
/// (empty, `.`/`..`, absurdly long) is 404 without a vendor call.
pub fn native_id(id: &str) -> Result<&str> {
    if id.is_empty() || id == "." || id == ".." || id.len() > MAX_NATIVE_ID_BYTES {
        Err(Error::not_found("no such conversation on this connection"))
    } else {
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_any_characters_and_refuses_what_cannot_be_an_id() {
        for ok in ["42", "cid_3f2a9c1e", "***", "a b/c?d#e", "é", "..."] {
            assert_eq!(native_id(ok).ok(), Some(ok));
        }
        for bad in ["", ".", "..", &"a".repeat(513)] {
            assert!(native_id(bad).is_err(), "{bad}");
        }
    }
}
