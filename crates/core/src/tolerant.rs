//! Tolerant parsing shared by every adapter's wire types: ids as strings or numbers, timestamps in
//! every format vendors use, and fields that may be missing or null.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Deserializer};

/// Parses a vendor timestamp: RFC 3339 (`Z` or an offset, `T` or a space), or a naive
/// `Y-m-d H:i:s` / `Y-m-dTH:i:s` taken as UTC. `None` for anything else.
pub fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
    ] {
        if let Ok(t) = DateTime::parse_from_str(s, fmt) {
            return Some(t.with_timezone(&Utc));
        }
    }
    // Naive times (no zone) are taken as UTC: vendors that send them document no zone.
    for fmt in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc());
        }
    }
    None
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Str(String),
    Int(i64),
    UInt(u64),
    Float(f64),
    Bool(bool),
}

impl Scalar {
    fn into_string(self) -> String {
        match self {
            Scalar::Str(s) => s,
            Scalar::Int(i) => i.to_string(),
            Scalar::UInt(u) => u.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }
    }
}

/// An id given as a string or a number, as a string.
pub fn id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Scalar::deserialize(d).map(Scalar::into_string)
}

/// An optional id given as a string, a number or null.
pub fn opt_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    Ok(match v {
        Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

/// An optional string; a number is stringified and anything else (object, array) is `None`.
pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    Ok(match v {
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        Some(serde_json::Value::Bool(b)) => Some(b.to_string()),
        _ => None,
    })
}

/// An optional timestamp in any format [`parse_timestamp`] reads, or Unix seconds; unreadable
/// values become `None` rather than failing the whole response.
pub fn opt_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    Ok(match v {
        Some(serde_json::Value::String(s)) => parse_timestamp(&s),
        Some(serde_json::Value::Number(n)) => n.as_i64().and_then(|secs| {
            // Milliseconds are told apart from seconds by magnitude (year 2286 in seconds).
            if secs > 9_999_999_999 {
                DateTime::from_timestamp_millis(secs)
            } else {
                DateTime::from_timestamp(secs, 0)
            }
        }),
        _ => None,
    })
}

/// An optional boolean given as a bool, `0`/`1`, or `"true"`/`"false"`.
pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    Ok(match v {
        Some(serde_json::Value::Bool(b)) => Some(b),
        Some(serde_json::Value::Number(n)) => n.as_i64().map(|i| i != 0),
        Some(serde_json::Value::String(s)) => match s.as_str() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    })
}

/// An optional unsigned count given as a number or a numeric string.
pub fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    Ok(match v {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

/// A list that may be missing or null (both become empty); items that fail to parse are dropped
/// rather than failing the page.
pub fn lenient_vec<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let v = Option::<Vec<Lenient<T>>>::deserialize(d)?;
    Ok(v.unwrap_or_default()
        .into_iter()
        .filter_map(|item| match item {
            Lenient::Read(item) => Some(item),
            Lenient::Unreadable(_) => None,
        })
        .collect())
}

/// An item read as `T`, or skipped whole when it is not one. serde buffers the item (borrowing
/// its strings from the body where it can) and reads `T` from the buffer: no JSON tree is built.
#[derive(Deserialize)]
#[serde(untagged)]
enum Lenient<T> {
    Read(T),
    Unreadable(serde::de::IgnoredAny),
}

/// Parses each item of a vendor list on its own (an unreadable item is dropped, not the page),
/// keeping the item's JSON when `keep_raw` (for `include=raw`).
pub fn items_with_raw<T: serde::de::DeserializeOwned>(
    items: Vec<serde_json::Value>,
    keep_raw: bool,
) -> Vec<(T, Option<serde_json::Value>)> {
    items
        .into_iter()
        .filter_map(|item| {
            if keep_raw {
                let parsed = T::deserialize(&item).ok()?;
                Some((parsed, Some(item)))
            } else {
                serde_json::from_value(item)
                    .ok()
                    .map(|parsed| (parsed, None))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> String {
        parse_timestamp(s)
            .map(|t| t.to_rfc3339())
            .unwrap_or_default()
    }

    #[test]
    fn parses_every_vendor_format() {
        assert_eq!(t("2026-01-15T10:30:00Z"), "2026-01-15T10:30:00+00:00");
        assert_eq!(t("2024-06-21T05:08:06+02:00"), "2024-06-21T03:08:06+00:00");
        assert_eq!(t("2020-11-04 11:11:45"), "2020-11-04T11:11:45+00:00");
        assert_eq!(
            t("2026-01-15T10:30:00.123Z"),
            "2026-01-15T10:30:00.123+00:00"
        );
        assert_eq!(t("2026-01-15T10:30:00"), "2026-01-15T10:30:00+00:00");
        assert_eq!(t("2026-01-15 10:30:00+0200"), "2026-01-15T08:30:00+00:00");
        assert_eq!(t("yesterday"), "");
    }
}
