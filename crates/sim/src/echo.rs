//! `/_echo/{path}` on every simulated vendor, behind that vendor's own auth (and, for Zipchat,
//! its quota): answers with what it received (method, path, query, headers, body), so a test
//! sees exactly what reached the vendor. `?status=NNN` answers with that status instead of 200,
//! for a vendor error with a body.

use std::collections::BTreeMap;

use axum::Json;
use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::any;

/// The largest body echoed.
const MAX_ECHOED_BYTES: usize = 1024 * 1024;

/// The echo routes, to be merged into a vendor's router inside its auth.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/_echo", any(echo))
        .route("/_echo/{*rest}", any(echo))
}

async fn echo(request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, MAX_ECHOED_BYTES)
        .await
        .unwrap_or_default();
    let status = parts
        .uri
        .query()
        .unwrap_or_default()
        .split('&')
        .find_map(|pair| pair.strip_prefix("status="))
        .and_then(|s| s.parse::<u16>().ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers
            .entry(name.as_str().to_owned())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    let echoed = serde_json::json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    });
    (status, Json(echoed)).into_response()
}
