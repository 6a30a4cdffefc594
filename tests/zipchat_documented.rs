//! The gateway against a Zipchat-compatible server that is not our simulator: it answers with the
//! JSON exactly as Zipchat documents it (no page metadata, undocumented write responses), and the
//! documented error messages.

mod support;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, patch, post};
use serde_json::{Value, json};
use support::ADMIN;

const KEY: &str = "zc-documented";

fn fixture(name: &str) -> Value {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/crates/providers/zipchat");
    serde_json::from_str(&switchboard_behaviour::fixture(dir, name)).expect("fixture JSON")
}

fn authorized(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {KEY}"))
}

async fn documented_zipchat() -> String {
    let app = Router::new()
        .route(
            "/v1/chats/1/conversations",
            get(|headers: HeaderMap| async move {
                if !authorized(&headers) {
                    return (StatusCode::UNAUTHORIZED, axum::Json(json!({"error": "Unauthorized"}))).into_response();
                }
                axum::Json(fixture("list_conversations.json")).into_response()
            }),
        )
        .route("/v1/chats/1/conversations/12345", get(|| async { axum::Json(fixture("show_conversation.json")) }))
        .route("/v1/chats/1/conversations/{id}", get(|| async { (StatusCode::NOT_FOUND, axum::Json(json!({"error": "Conversation not found"}))) }))
        .route("/v1/chats/1/conversations/12345/assignment", patch(|| async { axum::Json(json!({"success": true})) }))
        .route(
            "/v1/chats/1/conversations/12345/messages",
            post(|| async {
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    axum::Json(json!({"error": "Cannot send: customer last messaged more than 24 hours ago on a Meta channel"})),
                )
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/v1")
}

async fn gateway(base: &str, key: &str) -> String {
    let config = format!(
        "{}[[connections]]\nid = \"shop\"\nprovider = \"zipchat\"\nchat_id = 1\napi_key = \"{key}\"\nbase_url = \"{base}\"\n",
        support::clients_toml(base),
    );
    support::start_gateway(&config).await
}

async fn fetch(gateway: &str, path: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(format!("{gateway}{path}"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("answers");
    (r.status().as_u16(), r.json().await.expect("json"))
}

#[tokio::test]
async fn serves_the_documented_examples() {
    let base = documented_zipchat().await;
    let gw = gateway(&base, KEY).await;
    let (status, page) = fetch(&gw, "/v1/conversations?connection=shop").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(page["data"][0]["id"], "shop:12345");
    assert_eq!(page["data"][0]["contact"]["name"], "John Doe");
    assert!(
        page["next_cursor"].is_null(),
        "a short page without metadata ends the list"
    );

    let (status, conversation) = fetch(&gw, "/v1/conversations/shop:12345").await;
    assert_eq!(status, 200);
    assert_eq!(conversation["mode"], "human");
    assert_eq!(conversation["assignee"]["name"], "Jane Agent");

    let (status, messages) = fetch(&gw, "/v1/conversations/shop:12345/messages").await;
    assert_eq!(status, 200);
    let texts: Vec<&str> = messages["data"]
        .as_array()
        .expect("list")
        .iter()
        .map(|m| m["text"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(texts, ["A human here.", "Hello!", "Hi"]);

    let (status, problem) = fetch(&gw, "/v1/conversations/shop:999").await;
    assert_eq!((status, problem["code"].as_str()), (404, Some("not_found")));
}

#[tokio::test]
async fn undocumented_write_responses_and_documented_errors() {
    let base = documented_zipchat().await;
    let gw = gateway(&base, KEY).await;
    let http = reqwest::Client::new();
    // The assignment answer is not the conversation: the gateway re-reads it.
    let r = http
        .put(format!("{gw}/v1/conversations/shop:12345/assignment"))
        .bearer_auth(ADMIN)
        .json(&json!({"assignee_id": "shop:7"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(r.status(), 200);
    let conversation: Value = r.json().await.expect("json");
    assert_eq!(conversation["id"], "shop:12345");

    let r = http
        .post(format!("{gw}/v1/conversations/shop:12345/messages"))
        .bearer_auth(ADMIN)
        .json(&json!({"text": "hi", "sender_id": "shop:7"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(r.status(), 409);
    let problem: Value = r.json().await.expect("json");
    assert_eq!(problem["code"], "reply_window_closed");
}

#[tokio::test]
async fn a_rejected_api_key_is_a_502_never_a_401() {
    let base = documented_zipchat().await;
    let gw = gateway(&base, "zc-wrong-secret-value").await;
    let r = reqwest::Client::new()
        .get(format!("{gw}/v1/conversations?connection=shop"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("answers");
    assert_eq!(r.status(), 502);
    let body = r.text().await.expect("body");
    assert!(body.contains("upstream_auth_failed"), "{body}");
    assert!(
        !body.contains("zc-wrong-secret-value"),
        "the key never appears in a response"
    );
}
