//! A JSON answer: the value written into one growing buffer, sent as one body. (axum's `Json`
//! writes through a `BytesMut` writer, one small bounds-checked copy per token.) A value that
//! cannot be written is a 500 problem, like every other error.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use switchboard_core::{Error, ErrorKind};

use crate::problem::ApiError;

/// A response body of `T` as `application/json`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        let mut body = Vec::with_capacity(1024);
        match serde_json::to_writer(&mut body, &self.0) {
            Ok(()) => (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                body,
            )
                .into_response(),
            Err(e) => ApiError(
                Error::new(ErrorKind::Unexpected, "the answer could not be written").with_source(e),
            )
            .into_response(),
        }
    }
}
