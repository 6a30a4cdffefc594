//! What an adapter hands the client and gets back: a [`Call`] to send and the vendor's
//! successful [`Response`].

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
}

impl Response {
    /// Parses the body as JSON; an unreadable body is `upstream_unavailable`, never a panic.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        switchboard_core::tolerant::from_slice(&self.body).map_err(unreadable)
    }

    /// Parses the body as `T` and, with `keep_raw` (a caller's `include=raw`), keeps the vendor's
    /// JSON too. Without it `T` is read straight from the bytes; with it the tree is built once
    /// and `T` read from it, never from a copy.
    pub fn json_keeping_raw<T: serde::de::DeserializeOwned>(
        &self,
        keep_raw: bool,
    ) -> Result<(T, Option<serde_json::Value>)> {
        if !keep_raw {
            return self.json().map(|parsed| (parsed, None));
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
        let response = Response {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: Bytes::from_static(b"{\"id\": "),
        };
        let error = response.json::<serde_json::Value>().expect_err("refused");
        assert_eq!(error.kind(), ErrorKind::UpstreamUnavailable);
    }
}
