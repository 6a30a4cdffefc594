//! Timestamps written as chrono writes them (`2026-01-15T10:45:00Z`, `.123`, `.123456` or
//! `.123456789` when there is a fraction), without going through `fmt`: a conversation carries
//! up to six, and chrono's `Display` costs about 3 000 instructions each.

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::Serializer;

/// Serializes `t` (for `#[serde(serialize_with)]`).
pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    match Text::of(t) {
        Some(text) => s.serialize_str(text.as_str()),
        // Years beyond four digits and leap seconds: chrono's own writing.
        None => serde::Serialize::serialize(t, s),
    }
}

/// Serializes an optional timestamp (for `#[serde(serialize_with)]`).
pub fn serialize_opt<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => serialize(t, s),
        None => s.serialize_none(),
    }
}

/// A timestamp's text, on the stack.
struct Text {
    bytes: [u8; 30],
    len: usize,
}

impl Text {
    /// `t` as chrono writes it, or `None` for what only chrono writes (years outside 0–9999,
    /// leap seconds).
    fn of(t: &DateTime<Utc>) -> Option<Text> {
        let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
        let nanos = t.nanosecond();
        if nanos >= 1_000_000_000 {
            return None;
        }
        let mut text = Text {
            bytes: [0; 30],
            len: 0,
        };
        text.digits(year, 4);
        text.byte(b'-');
        text.digits(t.month(), 2);
        text.byte(b'-');
        text.digits(t.day(), 2);
        text.byte(b'T');
        text.digits(t.hour(), 2);
        text.byte(b':');
        text.digits(t.minute(), 2);
        text.byte(b':');
        text.digits(t.second(), 2);
        match nanos {
            0 => {}
            n if n % 1_000_000 == 0 => text.fraction(n / 1_000_000, 3),
            n if n % 1_000 == 0 => text.fraction(n / 1_000, 6),
            n => text.fraction(n, 9),
        }
        text.byte(b'Z');
        Some(text)
    }

    fn byte(&mut self, b: u8) {
        self.bytes[self.len] = b;
        self.len += 1;
    }

    /// `value` in `width` digits, zero-padded.
    fn digits(&mut self, mut value: u32, width: usize) {
        for i in (0..width).rev() {
            self.bytes[self.len + i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
        self.len += width;
    }

    fn fraction(&mut self, value: u32, width: usize) {
        self.byte(b'.');
        self.digits(value, width);
    }

    fn as_str(&self) -> &str {
        // Only ASCII digits and separators were written.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use proptest::prelude::*;

    use super::*;

    #[derive(serde::Serialize)]
    struct Fast(#[serde(serialize_with = "serialize")] DateTime<Utc>);

    proptest! {
        /// Byte for byte what chrono writes, over every year it can hold and every precision.
        #[test]
        fn writes_what_chrono_writes(
            secs in -70_000_000_000i64..260_000_000_000i64,
            nanos in prop_oneof![
                Just(0u32),
                (0u32..1000).prop_map(|ms| ms * 1_000_000),
                (0u32..1_000_000).prop_map(|us| us * 1_000),
                0u32..1_000_000_000,
                1_000_000_000u32..2_000_000_000,
            ],
        ) {
            let Some(t) = DateTime::from_timestamp(secs, nanos) else { return Ok(()) };
            prop_assert_eq!(
                serde_json::to_string(&Fast(t)).expect("fast"),
                serde_json::to_string(&t).expect("chrono")
            );
        }
    }

    #[test]
    fn examples() {
        let t = Utc
            .with_ymd_and_hms(2026, 1, 15, 10, 45, 0)
            .single()
            .expect("a time");
        assert_eq!(
            serde_json::to_string(&Fast(t)).expect("json"),
            r#""2026-01-15T10:45:00Z""#
        );
        let t = t + chrono::Duration::milliseconds(120);
        assert_eq!(
            serde_json::to_string(&Fast(t)).expect("json"),
            r#""2026-01-15T10:45:00.120Z""#
        );
    }
}
