//! Tolerant parsing shared by every adapter's wire types: ids as strings or numbers, timestamps in
//! every format vendors use, and fields that may be missing or null.
//!
//! A wire type declares how each field is read by its type: [`Id`], [`Text`], [`Time`], [`Flag`],
//! [`Count`], [`Object`], [`ObjectOrId`] or [`List`]. Each holds an `Option` (a list, a `Vec`),
//! which is `None` (empty) when the vendor left the field out, sent null, or sent something that
//! does not read as one: an odd field never fails a response.

use std::borrow::Cow;
use std::cell::Cell;
use std::ops::Deref;

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

/// An id given as a string or a number, as a string.
pub fn id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Loose::deserialize(d)? {
        Loose::Str(s) => Ok(s.into_owned()),
        Loose::Int(i) => Ok(i.to_string()),
        Loose::UInt(u) => Ok(u.to_string()),
        Loose::Float(f) => Ok(f.to_string()),
        Loose::Bool(b) => Ok(b.to_string()),
        Loose::Nothing => Err(serde::de::Error::custom(
            "an id must be a string or a number",
        )),
    }
}

/// A JSON value as the optional readers below see it: a scalar, or nothing they can use
/// (null, an object, an array), which is skipped without being built. A string is borrowed from
/// the body where it can be, so a reader that only parses it (a time, a flag) copies nothing.
enum Loose<'de> {
    Str(Cow<'de, str>),
    Int(i64),
    UInt(u64),
    Float(f64),
    Bool(bool),
    Nothing,
}

impl Loose<'_> {
    /// A number as JSON writes it.
    fn number(&self) -> Option<String> {
        match self {
            Loose::Int(i) => Some(i.to_string()),
            Loose::UInt(u) => Some(u.to_string()),
            Loose::Float(f) => serde_json::Number::from_f64(*f).map(|n| n.to_string()),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Loose<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Loose<'de>, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Loose<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Loose<'de>, E> {
                Ok(Loose::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Loose<'de>, E> {
                Ok(Loose::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Loose<'de>, E> {
                Ok(Loose::Str(Cow::Owned(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Loose<'de>, E> {
                Ok(Loose::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Loose<'de>, E> {
                Ok(Loose::UInt(v))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Loose<'de>, E> {
                Ok(Loose::Float(v))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Loose<'de>, E> {
                Ok(Loose::Bool(v))
            }
            fn visit_unit<E>(self) -> Result<Loose<'de>, E> {
                Ok(Loose::Nothing)
            }
            fn visit_none<E>(self) -> Result<Loose<'de>, E> {
                Ok(Loose::Nothing)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Loose<'de>, D::Error> {
                Loose::deserialize(d)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Loose<'de>, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Loose::Nothing)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Loose<'de>, A::Error> {
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Loose::Nothing)
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// An optional id given as a string, a number or null.
fn opt_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Loose::deserialize(d)? {
        Loose::Str(s) if !s.is_empty() => Some(s.into_owned()),
        n => n.number(),
    })
}

/// An optional string; a number is stringified and anything else (object, array) is `None`.
fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Loose::deserialize(d)? {
        Loose::Str(s) => Some(s.into_owned()),
        Loose::Bool(b) => Some(b.to_string()),
        n => n.number(),
    })
}

/// An optional timestamp in any format [`parse_timestamp`] reads, or Unix seconds; unreadable
/// values become `None` rather than failing the whole response.
fn opt_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    let secs = match Loose::deserialize(d)? {
        Loose::Str(s) => return Ok(parse_timestamp(&s)),
        Loose::Int(i) => i,
        Loose::UInt(u) => match i64::try_from(u) {
            Ok(i) => i,
            Err(_) => return Ok(None),
        },
        _ => return Ok(None),
    };
    // Milliseconds are told apart from seconds by magnitude (year 2286 in seconds).
    Ok(if secs > 9_999_999_999 {
        DateTime::from_timestamp_millis(secs)
    } else {
        DateTime::from_timestamp(secs, 0)
    })
}

/// An optional boolean given as a bool, `0`/`1`, or `"true"`/`"false"`.
fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(match Loose::deserialize(d)? {
        Loose::Bool(b) => Some(b),
        Loose::Int(i) => Some(i != 0),
        Loose::UInt(u) => Some(u != 0),
        Loose::Str(s) => match s.as_ref() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    })
}

/// An optional unsigned count given as a number or a numeric string.
fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(match Loose::deserialize(d)? {
        Loose::UInt(u) => Some(u),
        Loose::Int(i) => u64::try_from(i).ok(),
        Loose::Str(s) => s.trim().parse().ok(),
        _ => None,
    })
}

/// An optional object read as `T`; anything else (null, a string, a number, an array) is `None`.
/// `T` must read any object: every field optional and read by this module's readers.
fn opt_object<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    d.deserialize_any(ObjectVisitor { from_id: None })
}

/// An optional object read as `T`, or only its id (a non-empty string or an integer) made a `T`
/// with `From<String>`; anything else is `None`. `T` must read any object, as for
/// [`opt_object`].
fn opt_object_or_id<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + From<String>,
{
    d.deserialize_any(ObjectVisitor {
        from_id: Some(T::from),
    })
}

/// The reader of [`opt_object`] and [`opt_object_or_id`]: an object as `T`, an id as `from_id`
/// makes it (when given), anything else skipped whole as `None`.
struct ObjectVisitor<T> {
    from_id: Option<fn(String) -> T>,
}

impl<T> ObjectVisitor<T> {
    fn id(self, id: String) -> Option<T> {
        self.from_id.map(|from_id| from_id(id))
    }
}

impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for ObjectVisitor<T> {
    type Value = Option<T>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Option<T>, A::Error> {
        T::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Some)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Option<T>, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_none<E>(self) -> Result<Option<T>, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Option<T>, E> {
        Ok(None)
    }
    fn visit_str<E>(self, id: &str) -> Result<Option<T>, E> {
        Ok(if id.is_empty() {
            None
        } else {
            self.id(id.to_owned())
        })
    }
    fn visit_i64<E>(self, id: i64) -> Result<Option<T>, E> {
        Ok(self.id(id.to_string()))
    }
    fn visit_u64<E>(self, id: u64) -> Result<Option<T>, E> {
        Ok(self.id(id.to_string()))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Option<T>, E> {
        Ok(None)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Option<T>, E> {
        Ok(None)
    }
}

/// How [`lenient_vec`] reads its items on this thread (see [`from_slice`]).
#[derive(Clone, Copy, PartialEq)]
enum Lists {
    /// Each item on its own, dropping those it cannot read.
    Lenient,
    /// Each item straight as its type.
    Strict,
    /// A strict list failed: the body must be read again leniently.
    StrictFailed,
}

thread_local! {
    static LISTS: Cell<Lists> = const { Cell::new(Lists::Lenient) };
}

/// Reads a vendor body as `T`. Lists read as a [`List`] drop the items they cannot read,
/// which costs serde a buffer per item; since a body seldom holds such an item, it is first read
/// with every item parsed straight as its type, and read again item by item when any list
/// failed that way (even if the body as a whole was read, as an untagged enum may have fallen
/// back to another variant). The result is the same either way.
pub fn from_slice<T: serde::de::DeserializeOwned>(body: &[u8]) -> serde_json::Result<T> {
    /// Back to lenient lists when the strict attempt ends, even by a panic.
    struct Lenient;
    impl Drop for Lenient {
        fn drop(&mut self) {
            LISTS.with(|l| l.set(Lists::Lenient));
        }
    }
    // A body checked as UTF-8 once is read as text, so serde_json need not check each of its
    // strings on its own (about 15 000 instructions for a 3 KB answer); bytes that are not
    // UTF-8 are read as bytes, and fail as they would have.
    let text = std::str::from_utf8(body).ok();
    let parse = || match text {
        Some(text) => serde_json::from_str(text),
        None => serde_json::from_slice(body),
    };
    let strict = {
        let _lenient = Lenient;
        LISTS.with(|l| l.set(Lists::Strict));
        let strict = parse();
        (LISTS.with(Cell::get) == Lists::Strict).then_some(strict)
    };
    match strict {
        Some(Ok(parsed)) => Ok(parsed),
        _ => parse(),
    }
}

/// A list that may be missing or null (both become empty); items that fail to parse are dropped
/// rather than failing the page.
fn lenient_vec<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let items = Option::<Vec<Item<T>>>::deserialize(d)?;
    Ok(items
        .unwrap_or_default()
        .into_iter()
        .filter_map(Item::read)
        .collect())
}

/// An item of a vendor list: read as `T`, or `None` when it is not one (the item is skipped
/// whole, not the list). A list of them still counts the items the vendor sent, which paging by
/// page size needs.
#[derive(Debug)]
pub struct Item<T>(Option<T>);

impl<T> Item<T> {
    /// The item, if it could be read.
    pub fn read(self) -> Option<T> {
        self.0
    }
}

impl<'de, T: serde::de::DeserializeOwned> Deserialize<'de> for Item<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Item<T>, D::Error> {
        if LISTS.with(Cell::get) != Lists::Lenient {
            // The strict attempt of [`from_slice`]: straight as `T`; a failure fails it.
            return T::deserialize(d).map(|t| Item(Some(t))).inspect_err(|_| {
                LISTS.with(|l| l.set(Lists::StrictFailed));
            });
        }
        Ok(match Buffered::<T>::deserialize(d)? {
            Buffered::Read(t) => Item(Some(t)),
            Buffered::Unreadable(_) => Item(None),
        })
    }
}

/// An item read as `T`, or skipped whole when it is not one. serde buffers the item (borrowing
/// its strings from the body where it can) and reads `T` from the buffer: no JSON tree is built.
#[derive(Deserialize)]
#[serde(untagged)]
enum Buffered<T> {
    Read(T),
    Unreadable(serde::de::IgnoredAny),
}

/// A list that may be missing or null (both become empty), every item kept: the items of a
/// vendor list, as JSON or as [`Item`]s.
pub fn nullable_vec<'de, D, I>(d: D) -> Result<Vec<I>, D::Error>
where
    D: Deserializer<'de>,
    I: Deserialize<'de>,
{
    Ok(Option::<Vec<I>>::deserialize(d)?.unwrap_or_default())
}

/// Declares the field types: each wraps what `$read` makes of the value a vendor sent (null
/// included), derefs to it and converts into it.
macro_rules! fields {
    ($(
        $(#[$doc:meta])*
        $name:ident$(<$t:ident>)?($inner:ty) $(where { $($bound:tt)* })? read by $read:ident;
    )*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name$(<$t>)?($inner);

        impl<'de $(, $t)?> Deserialize<'de> for $name$(<$t>)? $(where $($bound)*)? {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                /// The value the vendor sent.
                struct Sent$(<$t>)?($inner);
                impl<'de $(, $t)?> Deserialize<'de> for Sent$(<$t>)? $(where $($bound)*)? {
                    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                        $read(d).map(Sent)
                    }
                }
                // Read as an option: serde asks a field the vendor left out for one, and it is
                // then the default (no value, no items), as null is.
                let sent = Option::<Sent$(<$t>)?>::deserialize(d)?;
                Ok($name(sent.map_or_else(Default::default, |sent| sent.0)))
            }
        }

        impl$(<$t>)? Default for $name$(<$t>)? {
            fn default() -> Self {
                $name(Default::default())
            }
        }

        impl$(<$t>)? $name$(<$t>)? {
            /// What the vendor sent, as far as it could be read.
            pub fn into_inner(self) -> $inner {
                self.0
            }
        }

        impl$(<$t>)? Deref for $name$(<$t>)? {
            type Target = $inner;
            fn deref(&self) -> &$inner {
                &self.0
            }
        }

        impl$(<$t>)? From<$name$(<$t>)?> for $inner {
            fn from(field: $name$(<$t>)?) -> $inner {
                field.0
            }
        }

        impl$(<$t>)? From<$inner> for $name$(<$t>)? {
            fn from(value: $inner) -> Self {
                $name(value)
            }
        }
    )*};
}

fields! {
    /// An id, given as a string or a number (an empty string is no id).
    Id(Option<String>) read by opt_id;
    /// Text, given as a string; a number or a bool is written out as text.
    Text(Option<String>) read by opt_string;
    /// A timestamp in any format [`parse_timestamp`] reads, or Unix seconds or milliseconds.
    Time(Option<DateTime<Utc>>) read by opt_time;
    /// A flag, given as a bool, `0`/`1` or `"true"`/`"false"`.
    Flag(Option<bool>) read by opt_bool;
    /// A count, given as a number or a numeric string.
    Count(Option<u64>) read by opt_u64;
    /// A nested object read as `T`; anything else (a string, a number, an array) is `None`. `T`
    /// must read any object: every field optional and tolerant.
    Object<T>(Option<T>) where { T: Deserialize<'de> } read by opt_object;
    /// A nested object read as `T`, or its id alone (a non-empty string or an integer) made a `T`
    /// with `From<String>`; anything else is `None`. `T` must read any object, as for [`Object`].
    ObjectOrId<T>(Option<T>) where { T: Deserialize<'de> + From<String> } read by opt_object_or_id;
    /// A list whose items that do not read as `T` are dropped, not the response.
    List<T>(Vec<T>) where { T: serde::de::DeserializeOwned } read by lenient_vec;
}

impl<T> Extend<T> for List<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, items: I) {
        self.0.extend(items);
    }
}

impl<T> IntoIterator for List<T> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;
    fn into_iter(self) -> std::vec::IntoIter<T> {
        self.0.into_iter()
    }
}

/// Items read as their type, as [`items_with_raw`] gives them without `keep_raw`.
pub fn without_raw<T>(items: Vec<Item<T>>) -> Vec<(T, Option<serde_json::Value>)> {
    // Sized up front: `filter_map` gives no lower bound, and growing a vector of large items
    // one doubling at a time copies them again and again.
    let mut read = Vec::with_capacity(items.len());
    read.extend(
        items
            .into_iter()
            .filter_map(Item::read)
            .map(|item| (item, None)),
    );
    read
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
mod tests;
