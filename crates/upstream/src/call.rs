//! What an adapter hands the client and gets back: a [`Call`] to send and the vendor's
//! successful [`Response`].

use std::any::Any;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use switchboard_core::{Error, ErrorKind, Operation, Result};

/// Parses a vendor's non-2xx response into a gateway error. Pure; each adapter has one.
pub type ErrorParser = fn(StatusCode, &HeaderMap, &[u8]) -> Error;

/// One request to send: method, path segments under the base URL, query, JSON body, headers.
#[derive(Debug, Clone)]
pub struct Call {
    /// What the gateway was doing (for errors and logs).
    pub operation: Operation,
    /// HTTP method.
    pub method: Method,
    /// Path segments appended to the base URL, each percent-encoded.
    pub path: Vec<String>,
    /// Query parameters.
    pub query: Vec<(&'static str, String)>,
    /// JSON body.
    pub body: Option<serde_json::Value>,
    /// Extra headers (auth for vendors whose token changes, idempotency keys).
    pub headers: HeaderMap,
}

impl Call {
    /// A call of `method` to `path` for `operation`.
    pub fn new<S: Into<String>>(
        operation: Operation,
        method: Method,
        path: impl IntoIterator<Item = S>,
    ) -> Call {
        Call {
            operation,
            method,
            path: path.into_iter().map(Into::into).collect(),
            query: Vec::new(),
            body: None,
            headers: HeaderMap::new(),
        }
    }

    /// Adds a query parameter.
    pub fn query(mut self, name: &'static str, value: impl ToString) -> Call {
        self.query.push((name, value.to_string()));
        self
    }

    /// Sets the JSON body.
    pub fn json(mut self, body: serde_json::Value) -> Call {
        self.body = Some(body);
        self
    }

    /// Whether the call only reads (and so may be retried).
    pub fn is_read(&self) -> bool {
        self.method == Method::GET || self.method == Method::HEAD
    }
}

/// A successful (2xx) vendor response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
    /// What an adapter read from the body, kept with a page this process may serve again from
    /// the page cache ([`crate::cache`]); `None` for an answer served once. Clones share it.
    reading: Option<Arc<OnceLock<Reading>>>,
}

/// A body as an adapter read it.
type Reading = Box<dyn Any + Send + Sync>;

impl Response {
    /// An answer as it came from the vendor.
    pub(crate) fn new(status: StatusCode, headers: HeaderMap, body: Bytes) -> Response {
        Response {
            status,
            headers,
            body,
            reading: None,
        }
    }

    /// The same answer, keeping what the first adapter to read it reads.
    pub(crate) fn keeping_its_reading(mut self) -> Response {
        self.reading.get_or_insert_with(Arc::default);
        self
    }

    /// Parses the body as `T`, once for a page the cache serves again: a copy of the first
    /// reading then, which costs a fraction of parsing (a PingBack conversation of 2.8 KB: about
    /// 43 000 instructions to parse, a few thousand to copy).
    pub fn json_kept<T>(&self) -> Result<T>
    where
        T: serde::de::DeserializeOwned + Clone + Send + Sync + 'static,
    {
        let Some(reading) = &self.reading else {
            return self.json();
        };
        if let Some(read) = reading.get().and_then(|r| r.downcast_ref::<T>()) {
            return Ok(read.clone());
        }
        let read: T = self.json()?;
        // Another reader may have been first; both read the same bytes.
        let _ = reading.set(Box::new(read.clone()));
        Ok(read)
    }

    /// Parses the body as JSON; an unreadable body is `upstream_unavailable`, never a panic.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        switchboard_core::tolerant::from_slice(&self.body).map_err(unreadable)
    }

    /// Parses the body as `T` and, with `keep_raw` (a caller's `include=raw`), keeps the vendor's
    /// JSON too. Without it `T` is read straight from the bytes (once for a cached page,
    /// [`Response::json_kept`]); with it the tree is built once and `T` read from it, never from
    /// a copy.
    pub fn json_keeping_raw<T>(&self, keep_raw: bool) -> Result<(T, Option<serde_json::Value>)>
    where
        T: serde::de::DeserializeOwned + Clone + Send + Sync + 'static,
    {
        if !keep_raw {
            return self.json_kept().map(|parsed| (parsed, None));
        }
        let raw: serde_json::Value = self.json()?;
        let parsed = T::deserialize(&raw).map_err(unreadable)?;
        Ok((parsed, Some(raw)))
    }
}

fn unreadable(e: serde_json::Error) -> Error {
    Error::new(
        ErrorKind::UpstreamUnavailable,
        "the vendor answered with a body the gateway could not read",
    )
    .with_source(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_get_and_head_are_reads() {
        let call = |method| Call::new(Operation::ListConversations, method, ["conversations"]);
        assert!(call(Method::GET).is_read());
        assert!(call(Method::HEAD).is_read());
        assert!(!call(Method::POST).is_read());
        assert!(!call(Method::PATCH).is_read());
    }

    #[test]
    fn an_unreadable_body_is_upstream_unavailable() {
        let response = Response::new(
            StatusCode::OK,
            HeaderMap::new(),
            Bytes::from_static(b"{\"id\": "),
        );
        let error = response.json::<serde_json::Value>().expect_err("refused");
        assert_eq!(error.kind(), ErrorKind::UpstreamUnavailable);
    }
}
