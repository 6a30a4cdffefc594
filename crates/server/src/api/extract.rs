//! Extractors whose rejections are problem+json naming the parameter, like every other error.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use switchboard_core::{Error, ErrorKind};

use crate::problem::ApiError;

/// A JSON request body; a malformed or invalid body is 400/422 `invalid_body` saying why.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(JsonBody(v)),
            Err(rejection) if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                Err(
                    Error::new(ErrorKind::TooLarge, "the request body is too large")
                        .with_code("payload_too_large")
                        .into(),
                )
            }
            Err(rejection) => {
                let (kind, detail) = match &rejection {
                    JsonRejection::JsonDataError(e) => (ErrorKind::Unprocessable, e.body_text()),
                    JsonRejection::JsonSyntaxError(_) => (
                        ErrorKind::InvalidRequest,
                        "the body is not valid JSON".to_owned(),
                    ),
                    JsonRejection::MissingJsonContentType(_) => (
                        ErrorKind::InvalidRequest,
                        "send the body with `Content-Type: application/json`".to_owned(),
                    ),
                    _ => (
                        ErrorKind::InvalidRequest,
                        "the body could not be read".to_owned(),
                    ),
                };
                let detail = detail
                    .strip_prefix("Failed to deserialize the JSON body into the target type: ")
                    .map(str::to_owned)
                    .unwrap_or(detail);
                Err(Error::new(kind, detail)
                    .with_code("invalid_body")
                    .with_parameter("body")
                    .into())
            }
        }
    }
}

/// A resource id from the path (`"{connection}:{native_id}"`).
#[derive(Debug)]
pub struct PathId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(id)| PathId(id))
            .map_err(|_| {
                Error::new(
                    ErrorKind::InvalidRequest,
                    "the id in the path could not be read",
                )
                .with_code("invalid_id")
                .with_parameter("id")
                .into()
            })
    }
}

/// The optional `Idempotency-Key` header: 1-255 visible ASCII characters.
#[derive(Debug)]
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get("idempotency-key") else {
            return Ok(IdempotencyKey(None));
        };
        value
            .to_str()
            .ok()
            .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()))
            .map(|k| IdempotencyKey(Some(k.to_owned())))
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidRequest,
                    "`Idempotency-Key` must be 1 to 255 visible ASCII characters",
                )
                .with_code("invalid_idempotency_key")
                .with_parameter("idempotency_key")
                .into()
            })
    }
}
