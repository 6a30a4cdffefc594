//! Each adapter, through the gateway, against a server that is not our simulator and answers with
//! the vendor's documented JSON examples verbatim, placeholders (`…`) and masked values (`***`)
//! included. The gateway must serve them sensibly: no 5xx, no panic, nothing invented.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::Query;
use axum::routing::{get, post};
use serde_json::{Value, json};
use support::ADMIN;

fn fixture(vendor: &str, name: &str) -> Value {
    let dir = format!("{}/crates/providers/{vendor}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&switchboard_behaviour::fixture(&dir, name)).expect("fixture JSON")
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

async fn gateway(connection: &str) -> String {
    support::start_gateway(&format!(
        "{}{connection}",
        support::clients_toml("http://127.0.0.1:9")
    ))
    .await
}

async fn fetch(gateway: &str, path: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(format!("{gateway}{path}"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("answers");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn chatbotx_documented_examples() {
    let app = Router::new()
        .route(
            "/api/v1/conversations",
            get(|Query(q): Query<HashMap<String, String>>| async move {
                // The documented page once (its `nextCursor` is a placeholder), then the end.
                let archived = q.get("tags").is_some_and(|t| t.contains("archived"));
                if q.contains_key("cursor") || archived {
                    axum::Json(json!({"data": [], "nextCursor": null, "prevCursor": null}))
                } else {
                    axum::Json(fixture("chatbotx", "list_conversations.json"))
                }
            }),
        )
        .route(
            "/api/v1/members",
            get(|| async { axum::Json(fixture("chatbotx", "list_members.json")) }),
        );
    let base = serve(app).await;
    let gw = gateway(&format!(
        "[[connections]]\nid = \"bot\"\nprovider = \"chatbotx\"\ntoken = \"cbx-doc\"\nbase_url = \"{base}/api\"\n"
    ))
    .await;
    let (status, page) = fetch(&gw, "/v1/conversations?connection=bot").await;
    assert_eq!(status, 200, "{page}");
    let data = page["data"].as_array().expect("data");
    assert_eq!(data.len(), 1, "{page}");
    assert_eq!(data[0]["mode"], "ai");
    assert_eq!(data[0]["channel"], "whatsapp");
    assert_eq!(data[0]["status"], "open");
    let (status, agents) = fetch(&gw, "/v1/connections/bot/agents").await;
    assert_eq!(status, 200, "{agents}");
    assert_eq!(agents["data"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn octopush_documented_examples() {
    let sends = Arc::new(AtomicUsize::new(0));
    let counter = sends.clone();
    let app = Router::new()
        .route(
            "/v1/public/conversations/list",
            get(|Query(q): Query<HashMap<String, String>>| async move {
                if q.get("page").is_some_and(|p| p != "1") {
                    axum::Json(json!([]))
                } else {
                    axum::Json(fixture("octopush", "list_conversations.json"))
                }
            }),
        )
        .route(
            "/v1/public/conversations/messages/list",
            get(|| async { axum::Json(fixture("octopush", "list_messages.json")) }),
        )
        .route(
            "/v1/public/sms-campaign/send",
            post(move || async move {
                counter.fetch_add(1, Ordering::SeqCst);
                axum::Json(fixture("octopush", "sms_campaign_send.json"))
            }),
        );
    let base = serve(app).await;
    let gw = gateway(&format!(
        "[[connections]]\nid = \"sms\"\nprovider = \"octopush\"\napi_login = \"ops@example.com\"\napi_key = \"doc-key\"\nsender = \"MyShop\"\nbase_url = \"{base}/v1/public\"\n"
    ))
    .await;
    let (status, page) = fetch(&gw, "/v1/conversations?connection=sms").await;
    assert_eq!(status, 200, "{page}");
    let data = page["data"].as_array().expect("data");
    assert_eq!(data.len(), 2, "{page}");
    // Newest first, the documented `+02:00` offsets as UTC.
    assert_eq!(data[0]["last_activity_at"], "2024-06-21T03:08:06Z");
    assert_eq!(data[0]["channel"], "rcs");
    assert_eq!(data[1]["channel"], "sms");
    assert_eq!(data[1]["message_count"], 4);
    assert!(
        data.iter()
            .all(|c| c["mode"].is_null() && c["status"] == "open")
    );
    // Every listed id is addressable, masked ones (`***`) included: read it, its messages,
    // reply with an Idempotency-Key, and replay that reply without a second send.
    let masked = data[1]["id"].as_str().expect("id");
    assert_eq!(masked, "sms:***");
    let path = format!("/v1/conversations/{}", support::urlencode(masked));
    let (status, conversation) = fetch(&gw, &path).await;
    assert_eq!(status, 200, "{conversation}");
    assert_eq!(conversation["id"], masked);
    let (status, messages) = fetch(&gw, &format!("{path}/messages")).await;
    assert_eq!(status, 200, "{messages}");
    let reply = || {
        reqwest::Client::new()
            .post(format!("{gw}{path}/messages"))
            .bearer_auth(ADMIN)
            .header("idempotency-key", "masked-1")
            .json(&json!({"text": "Your order shipped"}))
            .send()
    };
    let first = reply().await.expect("answers");
    assert_eq!(first.status(), 201);
    let again = reply().await.expect("answers");
    assert_eq!(again.status(), 201);
    assert!(support::replayed(&again));
    assert_eq!(sends.load(Ordering::SeqCst), 1, "the replay sent nothing");
}

#[tokio::test]
async fn pingback_documented_examples() {
    let app = Router::new()
        .route(
            "/api/v1/auth/login",
            post(|| async { axum::Json(fixture("pingback", "login.json")) }),
        )
        .route(
            "/api/v1/auth/me",
            get(|| async { axum::Json(fixture("pingback", "me.json")) }),
        )
        .route(
            "/api/v1/conversations/",
            get(|Query(q): Query<HashMap<String, String>>| async move {
                if q.get("page").is_some_and(|p| p != "1") {
                    axum::Json(json!([]))
                } else {
                    axum::Json(fixture("pingback", "list_conversations.json"))
                }
            }),
        )
        .route(
            "/api/v1/conversations/{id}",
            get(|| async { axum::Json(fixture("pingback", "get_conversation.json")) }),
        )
        .route(
            "/api/v1/team/members",
            get(|| async { axum::Json(fixture("pingback", "team_members.json")) }),
        );
    let base = serve(app).await;
    let gw = gateway(&format!(
        "[[connections]]\nid = \"desk\"\nprovider = \"pingback\"\nemail = \"ops@example.com\"\npassword = \"doc-password\"\nbase_url = \"{base}\"\n"
    ))
    .await;
    let (status, page) = fetch(&gw, "/v1/conversations?connection=desk").await;
    assert_eq!(status, 200, "{page}");
    let data = page["data"].as_array().expect("data");
    assert_eq!(data.len(), 1, "{page}");
    assert_eq!(data[0]["id"], "desk:c3d4e5f6-a7b8-9012-cdef-123456789012");
    assert_eq!(data[0]["status"], "open");
    assert_eq!(data[0]["channel"], "web");
    assert!(data[0]["mode"].is_null());
    // The docs' own odd values: `customer.id` is the integer 42 while `customer_id` is a UUID;
    // the conversation's `customer_id` wins and the integer does not break parsing.
    assert_eq!(
        data[0]["contact"]["native_id"],
        "d4e5f6a7-b8c9-0123-defa-234567890123"
    );
    assert_eq!(data[0]["contact"]["name"], "Alex Johnson");

    let id = "desk:c3d4e5f6-a7b8-9012-cdef-123456789012";
    let (status, messages) = fetch(&gw, &format!("/v1/conversations/{id}/messages")).await;
    assert_eq!(status, 200, "{messages}");
    assert!(!messages["data"].as_array().expect("data").is_empty());
    let (status, agents) = fetch(&gw, "/v1/connections/desk/agents").await;
    assert_eq!(status, 200, "{agents}");
    assert_eq!(
        agents["data"][0]["id"], "desk:f0e1d2c3-b4a5-9687-fedc-ba9876543210",
        "agents are assignable by user_id"
    );
}
