//! Pieces the simulators' typed JSON answers share. The answers are `#[derive(Serialize)]`
//! structs borrowing from the world, serialized straight to bytes: building `serde_json::Value`
//! trees cost more than the rest of a list request together.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Datelike, FixedOffset, SecondsFormat, Timelike, Utc};
use serde::{Serialize, Serializer};

/// How a vendor writes its times: RFC 3339, as chrono's `to_rfc3339_opts` writes them, in UTC
/// (`Z`) or at an offset of the vendor's.
#[derive(Clone, Copy)]
pub(crate) struct TimeFormat {
    /// The fraction of a second written.
    pub fraction: Fraction,
    /// The offset a time is shown at; `None` for UTC, written `Z`.
    pub offset: Option<OffsetAt>,
}

/// The offset a vendor shows a time at.
pub(crate) type OffsetAt = fn(DateTime<Utc>) -> FixedOffset;

/// The fraction of a second a [`TimeFormat`] writes.
#[derive(Clone, Copy)]
pub(crate) enum Fraction {
    /// None (`SecondsFormat::Secs`).
    None,
    /// Always three digits (`SecondsFormat::Millis`).
    Millis,
    /// None, 3, 6 or 9 digits, as few as hold it (`SecondsFormat::AutoSi`).
    Auto,
}

impl TimeFormat {
    /// `t` as the vendor writes it.
    pub(crate) fn text(self, t: DateTime<Utc>) -> String {
        self.with_text(t, str::to_owned)
    }

    /// `f` of `t` as the vendor writes it: written on the stack where it can be, by chrono
    /// where only chrono writes it.
    fn with_text<R>(self, t: DateTime<Utc>, f: impl FnOnce(&str) -> R) -> R {
        match self.write(t) {
            Some(text) => f(text.as_str()),
            None => f(&self.by_chrono(t)),
        }
    }

    fn by_chrono(self, t: DateTime<Utc>) -> String {
        let seconds = match self.fraction {
            Fraction::None => SecondsFormat::Secs,
            Fraction::Millis => SecondsFormat::Millis,
            Fraction::Auto => SecondsFormat::AutoSi,
        };
        match self.offset {
            None => t.to_rfc3339_opts(seconds, true),
            Some(offset) => t.with_timezone(&offset(t)).to_rfc3339_opts(seconds, false),
        }
    }

    /// `t` written on the stack, without `fmt`: a list answer writes thousands of times, and
    /// chrono's writing was a fifth of the simulator's work on one. `None` where only chrono
    /// writes it (years outside 0–9999, leap seconds).
    fn write(self, t: DateTime<Utc>) -> Option<TimeText> {
        let offset = self.offset.map(|offset| offset(t).local_minus_utc());
        let local = t.naive_utc() + chrono::TimeDelta::seconds(i64::from(offset.unwrap_or(0)));
        let year = u32::try_from(local.year()).ok().filter(|y| *y <= 9999)?;
        let nanos = local.nanosecond();
        if nanos >= 1_000_000_000 || offset.is_some_and(|o| o % 60 != 0) {
            return None;
        }
        let mut text = TimeText::new();
        // Each field, zero-padded to its width, then what follows it.
        let fields = [
            (year, 4, Some(b'-')),
            (local.month(), 2, Some(b'-')),
            (local.day(), 2, Some(b'T')),
            (local.hour(), 2, Some(b':')),
            (local.minute(), 2, Some(b':')),
            (local.second(), 2, None),
        ];
        for (value, width, then) in fields {
            text.number(value, width);
            text.extend(then);
        }
        let digits = match self.fraction {
            Fraction::None => 0,
            Fraction::Millis => 3,
            Fraction::Auto if nanos == 0 => 0,
            Fraction::Auto if nanos.is_multiple_of(1_000_000) => 3,
            Fraction::Auto if nanos.is_multiple_of(1_000) => 6,
            Fraction::Auto => 9,
        };
        if digits > 0 {
            text.push(b'.');
            text.number(nanos / 10u32.pow(9 - digits), digits as usize);
        }
        match offset {
            None => text.push(b'Z'),
            Some(seconds) => {
                text.push(if seconds < 0 { b'-' } else { b'+' });
                let minutes = seconds.unsigned_abs() / 60;
                text.number(minutes / 60, 2);
                text.push(b':');
                text.number(minutes % 60, 2);
            }
        }
        Some(text)
    }
}

/// A written time: at most `9999-12-31T23:59:59.999999999+14:00`.
struct TimeText {
    bytes: [u8; 36],
    len: usize,
}

impl TimeText {
    fn new() -> TimeText {
        TimeText {
            bytes: [0; 36],
            len: 0,
        }
    }

    fn push(&mut self, byte: u8) {
        self.bytes[self.len] = byte;
        self.len += 1;
    }

    fn extend(&mut self, bytes: impl IntoIterator<Item = u8>) {
        for byte in bytes {
            self.push(byte);
        }
    }

    /// `n`'s last `width` decimal digits, zero-padded.
    fn number(&mut self, mut n: u32, width: usize) {
        for slot in self.bytes[self.len..self.len + width].iter_mut().rev() {
            *slot = b'0' + (n % 10) as u8;
            n /= 10;
        }
        self.len += width;
    }

    fn as_str(&self) -> &str {
        // Only ASCII digits and punctuation were written.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

/// A time written in its vendor's format when serialized.
#[derive(Clone, Copy)]
pub(crate) struct Stamp(pub DateTime<Utc>, pub TimeFormat);

impl Serialize for Stamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.1
            .with_text(self.0, |text| serializer.serialize_str(text))
    }
}

/// A number written as a JSON string (ChatbotX's bigint ids).
#[derive(Clone, Copy)]
pub(crate) struct NumericString(pub u64);

impl Serialize for NumericString {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

/// `null`, for a field a vendor always sends empty.
pub(crate) struct Null;

impl Serialize for Null {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_none()
    }
}

/// `{}`, for an object a vendor always sends empty.
pub(crate) struct EmptyObject;

impl Serialize for EmptyObject {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        serializer.serialize_map(Some(0))?.end()
    }
}

/// `[]`, for a list a vendor always sends empty.
pub(crate) struct EmptyArray;

impl Serialize for EmptyArray {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        serializer.serialize_seq(Some(0))?.end()
    }
}

/// A 200 `application/json` answer of `body`, serialized into one `Vec` (axum's `Json` writes
/// through `BytesMut` piece by piece, which costs as much again on a large list).
pub(crate) fn ok_json<T: Serialize>(body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Central European time, as Octopush shows it: +01:00, +02:00 in summer (here: from April
    /// to September, which is enough to write both).
    fn paris(t: DateTime<Utc>) -> FixedOffset {
        let hours = if (4..=9).contains(&t.month()) { 2 } else { 1 };
        FixedOffset::east_opt(hours * 3600).unwrap_or_else(|| unreachable!())
    }

    fn west(_: DateTime<Utc>) -> FixedOffset {
        FixedOffset::west_opt(3 * 3600 + 30 * 60).unwrap_or_else(|| unreachable!())
    }

    #[test]
    fn times_are_written_as_chrono_writes_them() {
        let offsets: [Option<OffsetAt>; 3] = [None, Some(paris), Some(west)];
        let fractions = [Fraction::None, Fraction::Millis, Fraction::Auto];
        let nanos = [0, 7_000_000, 120_000, 5, 999_999_999, 1_000];
        let mut written = 0;
        for secs in (0..40).map(|k: i64| k * 7_919_993_311 % 253_402_300_799) {
            for n in nanos {
                let Some(t) = DateTime::from_timestamp(secs, n) else {
                    continue;
                };
                for offset in offsets {
                    for fraction in fractions {
                        let format = TimeFormat { fraction, offset };
                        assert_eq!(format.text(t), format.by_chrono(t), "{t:?}");
                        let json = serde_json::to_string(&Stamp(t, format)).unwrap_or_default();
                        assert_eq!(json, format!("\"{}\"", format.by_chrono(t)));
                        written += 1;
                    }
                }
            }
        }
        assert!(written > 2000, "{written} times written");
    }
}
