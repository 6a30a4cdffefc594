//! Gateway ids: `"{connection}:{native_id}"`.

/// Whether `s` is a valid connection id: `[a-z0-9][a-z0-9_-]{0,62}`.
pub fn is_valid_connection_id(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_' || *b == b'-')
}

/// Builds the gateway id of a resource.
pub fn join(connection: &str, native_id: &str) -> String {
    let mut id = String::with_capacity(connection.len() + 1 + native_id.len());
    id.push_str(connection);
    id.push(':');
    id.push_str(native_id);
    id
}

/// Splits a gateway id into `(connection, native_id)`; `None` when it is not of that form.
pub fn split(id: &str) -> Option<(&str, &str)> {
    let (connection, native) = id.split_once(':')?;
    (is_valid_connection_id(connection)
        && !native.is_empty()
        && !native.chars().any(char::is_control))
    .then_some((connection, native))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_the_first_colon() {
        assert_eq!(split("shop:123"), Some(("shop", "123")));
        assert_eq!(split("sms:cid_a:b"), Some(("sms", "cid_a:b")));
        assert_eq!(split("Shop:1"), None);
        assert_eq!(split("shop:"), None);
        assert_eq!(split("nocolon"), None);
        assert_eq!(split(":1"), None);
    }

    #[test]
    fn validates_connection_ids() {
        assert!(is_valid_connection_id("shop-zipchat_1"));
        assert!(!is_valid_connection_id("-shop"));
        assert!(!is_valid_connection_id(&"a".repeat(64)));
        assert!(is_valid_connection_id(&"a".repeat(63)));
    }
}
