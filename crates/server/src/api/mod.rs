//! The HTTP API: every route registered together with its OpenAPI entry, so the spec cannot drift
//! from the router.

pub mod connections;
pub mod conversations;
pub mod events;
pub mod extract;
pub mod json;
pub mod passthrough;
pub mod system;
pub mod webhooks;

use std::sync::Arc;

use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::registry;
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Switchboard",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    servers((url = "/", description = "The gateway serving this document")),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "conversations", description = "The merged inbox, messages, and writes"),
        (name = "connections", description = "Connections, capabilities and agents"),
        (name = "events", description = "The change feed: every change across the connections you can see, as a resumable log and as Server-Sent Events; webhooks receive the same `Event`"),
        (name = "webhooks", description = "Webhook endpoints (configured in `[[webhooks]]`): delivery state and replays; needs the `admin` scope"),
        (name = "passthrough", description = "A connection's own vendor API, for what the normalized model leaves out: the connection's credentials, quota, vendor window and breaker; needs the `passthrough` scope"),
        (name = "system", description = "Health"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A client token from the gateway's `[[clients]]` config",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "ticket",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "ticket",
                "A single-use stream ticket from `POST /v1/events/tickets` (for `EventSource`, which cannot send headers)",
            ))),
        );
    }
}

/// The API routes with their OpenAPI entries.
pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(connections::list_connections))
        .routes(routes!(connections::list_agents))
        .routes(routes!(conversations::list_conversations))
        .routes(routes!(conversations::get_conversation))
        .routes(routes!(
            conversations::list_messages,
            conversations::reply_to_conversation
        ))
        .routes(routes!(conversations::set_assignment))
        .routes(routes!(conversations::set_status))
        .routes(routes!(events::list_events))
        .routes(routes!(events::stream_events))
        .routes(routes!(events::create_ticket))
        .routes(routes!(
            passthrough::passthrough_get,
            passthrough::passthrough_post,
            passthrough::passthrough_put,
            passthrough::passthrough_patch,
            passthrough::passthrough_delete
        ))
        .routes(routes!(webhooks::list_webhooks))
        .routes(routes!(webhooks::replay_webhook))
        .routes(routes!(system::healthz))
        .routes(routes!(system::readyz))
        .routes(routes!(system::metrics))
        .routes(routes!(system::openapi))
}

/// The API's description, naming the vendors of the registry's table.
fn description() -> String {
    format!(
        "One normalized, paginated API in front of {}: one inbox merged across every \
connection, and writes (take over, hand back, reply, resolve) routed to the vendors that support \
them. Errors are RFC 9457 problem+json with a stable `code`.",
        registry::names(", ", " and ")
    )
}

/// The OpenAPI document, as served at `/openapi.json` and committed in `openapi/openapi.json`.
pub fn openapi_json() -> serde_json::Value {
    let (_, mut api) = router().split_for_parts();
    api.info.description = Some(description());
    let mut spec = serde_json::to_value(&api).unwrap_or_default();
    // The vendors this build knows, from the registry's table.
    if let Some(kind) = spec.pointer_mut("/components/schemas/ProviderKind") {
        let kinds: Vec<&str> = registry::VENDORS
            .iter()
            .map(|v| v.kind().as_str())
            .collect();
        kind["enum"] = serde_json::json!(kinds);
    }
    // Every stable error code, so generated clients can switch on them.
    if let Some(code) = spec.pointer_mut("/components/schemas/Problem/properties/code") {
        code["enum"] = serde_json::json!(switchboard_core::codes::all());
    }
    if let Some(message) = spec.pointer_mut("/components/schemas/EventStreamMessage") {
        *message = event_stream_message(message);
    }
    // The router's wildcard `{*path}` is the spec's `{path}`.
    if let Some(paths) = spec["paths"].as_object_mut()
        && let Some(item) = paths.remove("/v1/connections/{connection}/passthrough/{*path}")
    {
        paths.insert(
            "/v1/connections/{connection}/passthrough/{path}".to_owned(),
            item,
        );
    }
    spec["webhooks"] = webhook_delivery();
    document_quota_headers(&mut spec);
    spec
}

/// The quota header fields: `RateLimit-Policy` and `RateLimit` on every answer of every
/// authenticated operation (the `/v1/` ones; a 401 has no caller to state), `Retry-After` on
/// every 429 and 503.
fn document_quota_headers(spec: &mut serde_json::Value) {
    let text = |description: &str, example: &str| {
        serde_json::json!({
            "description": description,
            "schema": {"type": "string"},
            "example": example,
        })
    };
    spec["components"]["headers"] = serde_json::json!({
        "RateLimit-Policy": text(
            "The quota policies behind this answer (IETF draft-ietf-httpapi-ratelimit-headers): \
    `\"client\"` is this token's own quota (`q` requests per `w` seconds); an answer that reached a \
    vendor adds one policy per connection it reached, named after the connection, never more than \
    the vendor allows",
            "\"client\";q=600;w=60, \"zipchat-main\";q=120;w=60",
        ),
        "RateLimit": text(
            "What is left of each policy of `RateLimit-Policy`, in the same order: `r` requests \
    remain, and the quota is whole again in `t` seconds",
            "\"client\";r=597;t=1, \"zipchat-main\";r=118;t=1",
        ),
        "Retry-After": {
            "description": "Seconds to wait before retrying",
            "schema": {"type": "integer", "format": "int64", "minimum": 0},
        },
    });
    let reference =
        |name: &str| serde_json::json!({"$ref": format!("#/components/headers/{name}")});
    let Some(paths) = spec["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let authenticated = path.starts_with("/v1/");
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for op in item.values_mut() {
            let Some(responses) = op["responses"].as_object_mut() else {
                continue;
            };
            for (status, response) in responses.iter_mut() {
                let headers = response
                    .as_object_mut()
                    .map(|r| r.entry("headers").or_insert_with(|| serde_json::json!({})));
                let Some(headers) = headers.and_then(|h| h.as_object_mut()) else {
                    continue;
                };
                if authenticated && status != "401" {
                    headers.insert("RateLimit-Policy".to_owned(), reference("RateLimit-Policy"));
                    headers.insert("RateLimit".to_owned(), reference("RateLimit"));
                }
                if (status == "429" || status == "503") && !headers.contains_key("Retry-After") {
                    headers.insert("Retry-After".to_owned(), reference("Retry-After"));
                }
            }
        }
    }
}

/// One SSE message of `GET /v1/events/stream` as SSE parsers and schemathesis read it (in
/// OpenAPI 3.1 a `text/event-stream` schema describes each message): `data` is JSON, an `Event`
/// (`contentMediaType` / `contentSchema`), or for the final `error` message, a `Problem`.
fn event_stream_message(generated: &serde_json::Value) -> serde_json::Value {
    let description = generated["description"].clone();
    let json_of = |schema: &str| {
        serde_json::json!({
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {"$ref": format!("#/components/schemas/{schema}")},
        })
    };
    serde_json::json!({
        "description": description,
        "oneOf": [
            {
                "title": "EventMessage",
                "type": "object",
                "required": ["id", "event", "data"],
                "properties": {
                    "id": {"type": "string", "description": "The event's id: resume after it with `Last-Event-ID` or `after=`", "example": "1767225600000-0"},
                    "event": {"$ref": "#/components/schemas/EventType"},
                    "data": json_of("Event"),
                },
            },
            {
                "title": "ErrorMessage",
                "type": "object",
                "required": ["event", "data"],
                "properties": {
                    "id": {"type": "string"},
                    "event": {"type": "string", "const": "error"},
                    "data": json_of("Problem"),
                },
            },
        ],
    })
}

/// What a `[[webhooks]]` endpoint receives (OpenAPI 3.1 `webhooks`): the `Event`, signed.
fn webhook_delivery() -> serde_json::Value {
    let header = |name: &str, description: &str, example: &str| {
        serde_json::json!({
            "name": name, "in": "header", "required": true, "description": description,
            "schema": {"type": "string"}, "example": example,
        })
    };
    serde_json::json!({
        "event": {
            "post": {
                "operationId": "receiveEvent",
                "tags": ["webhooks"],
                "summary": "One event, delivered to a `[[webhooks]]` endpoint",
                "description": "Each event the endpoint subscribes to is POSTed as JSON, signed per the Standard Webhooks spec: verify `webhook-signature` with any Standard Webhooks library and the endpoint's `whsec_` secret, and drop repeats by `webhook-id` (delivery is at least once, in order per endpoint). Answer 2xx when done; 410 disables the endpoint; anything else (or no answer within the timeout) is retried on the schedule.",
                "security": [],
                "parameters": [
                    header("webhook-id", "The event's id: the same on every attempt", "1767225600000-0"),
                    header("webhook-timestamp", "When this attempt was signed, in Unix seconds", "1767225601"),
                    header("webhook-signature", "`v1,` then the base64 HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}` under the secret's bytes", "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="),
                ],
                "requestBody": {
                    "required": true,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Event"}}},
                },
                "responses": {
                    "200": {"description": "Received (any 2xx)"},
                    "410": {"description": "Gone: the endpoint is disabled until a replay"},
                },
            }
        }
    })
}
