//! Pieces the simulators' typed JSON answers share. The answers are `#[derive(Serialize)]`
//! structs borrowing from the world, serialized straight to bytes: building `serde_json::Value`
//! trees cost more than the rest of a list request together.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};

/// A time written by its vendor's format function (`ts`) when serialized.
#[derive(Clone, Copy)]
pub(crate) struct Stamp(pub DateTime<Utc>, pub fn(DateTime<Utc>) -> String);

impl Serialize for Stamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&(self.1)(self.0))
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
