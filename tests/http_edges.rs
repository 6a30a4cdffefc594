//! What browsers and generated clients meet at the edge: per-caller rate limits, CORS, body
//! limits, unknown fields, and the self-hosted docs page.

mod support;

use reqwest::Method;
use serde_json::json;
use support::{ADMIN, sha};

const UI_TOKEN: &str = "browser-ui-token";

async fn gateway(server: &str) -> String {
    let config = format!(
        "[server]\n{server}\n\n[[clients]]\nname = \"ui\"\ntoken_sha256 = \"{}\"\nscopes = [\"read\"]\nrate_limit = {{ requests = 3, per_seconds = 60 }}\n\n{}",
        sha(UI_TOKEN),
        support::clients_toml("http://127.0.0.1:9"),
    );
    support::start_gateway(&config).await
}

#[tokio::test]
async fn each_caller_has_its_own_quota_and_health_is_exempt() {
    let gw = gateway("").await;
    let http = reqwest::Client::new();
    for _ in 0..3 {
        let r = http
            .get(format!("{gw}/v1/connections"))
            .bearer_auth(UI_TOKEN)
            .send()
            .await
            .expect("answers");
        assert_eq!(r.status(), 200);
    }
    let r = http
        .get(format!("{gw}/v1/connections"))
        .bearer_auth(UI_TOKEN)
        .send()
        .await
        .expect("answers");
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_some());
    assert_eq!(
        r.headers()
            .get("x-ratelimit-limit")
            .and_then(|v| v.to_str().ok()),
        Some("3")
    );
    assert_eq!(
        r.headers()
            .get("x-ratelimit-remaining")
            .and_then(|v| v.to_str().ok()),
        Some("0")
    );
    assert_eq!(
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    let problem: serde_json::Value = r.json().await.expect("problem");
    assert_eq!(
        (problem["status"].as_u64(), problem["code"].as_str()),
        (Some(429), Some("rate_limited"))
    );
    // Another caller is not affected, and health endpoints are never limited.
    let r = http
        .get(format!("{gw}/v1/connections"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("answers");
    assert_eq!(r.status(), 200);
    for path in ["/healthz", "/readyz", "/metrics"] {
        for _ in 0..5 {
            let r = http
                .get(format!("{gw}{path}"))
                .send()
                .await
                .expect("answers");
            assert_eq!(r.status(), 200, "{path}");
        }
    }
}

#[tokio::test]
async fn cors_answers_the_configured_origins_only() {
    let gw = gateway("cors = { allowed_origins = [\"https://app.example.com\"] }").await;
    let http = reqwest::Client::new();
    let preflight = http
        .request(Method::OPTIONS, format!("{gw}/v1/conversations"))
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .expect("answers");
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(
        preflight
            .headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("https://app.example.com")
    );
    let allowed_headers = preflight
        .headers()
        .get("access-control-allow-headers")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(
        allowed_headers.contains("authorization"),
        "{allowed_headers}"
    );

    let r = http
        .get(format!("{gw}/v1/connections"))
        .header("origin", "https://app.example.com")
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("answers");
    assert_eq!(
        r.headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("https://app.example.com")
    );
    // A browser may read where it stands, and tell a vendor's passthrough answer apart.
    let exposed = r
        .headers()
        .get("access-control-expose-headers")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    for name in [
        "ratelimit",
        "ratelimit-policy",
        "retry-after",
        "switchboard-passthrough",
    ] {
        assert!(
            exposed.split(',').any(|n| n.trim() == name),
            "{name} in {exposed}"
        );
    }
    assert!(r.headers().get("ratelimit").is_some());
    let r = http
        .get(format!("{gw}/v1/connections"))
        .header("origin", "https://evil.example.com")
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("answers");
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn without_cors_config_there_are_no_cors_headers() {
    let gw = gateway("").await;
    let r = reqwest::Client::new()
        .get(format!("{gw}/v1/connections"))
        .header("origin", "https://app.example.com")
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("answers");
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn bodies_too_large_or_with_unknown_fields_are_problems() {
    let gw = gateway("").await;
    let http = reqwest::Client::new();
    let big = "x".repeat(switchboard_server::MAX_BODY_BYTES + 1);
    let r = http
        .post(format!("{gw}/v1/conversations/elsewhere:1/messages"))
        .bearer_auth(ADMIN)
        .json(&json!({"text": big}))
        .send()
        .await
        .expect("answers");
    assert_eq!(r.status(), 413);
    let problem: serde_json::Value = r.json().await.expect("problem");
    assert_eq!(problem["code"], "payload_too_large");

    let r = http
        .put(format!("{gw}/v1/conversations/elsewhere:1/assignment"))
        .bearer_auth(ADMIN)
        .json(&json!({"assignee_id": null, "assigne": "x"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(r.status(), 422);
    let problem: serde_json::Value = r.json().await.expect("problem");
    assert_eq!(problem["code"], "invalid_body");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("assigne")),
        "{problem}"
    );
}

#[tokio::test]
async fn the_docs_page_is_served_by_the_gateway_itself() {
    let gw = gateway("").await;
    let http = reqwest::Client::new();
    let page = http
        .get(format!("{gw}/docs/"))
        .send()
        .await
        .expect("answers");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(html.contains("swagger"), "not the Swagger UI page");
    for asset in ["swagger-ui-bundle.js", "swagger-initializer.js"] {
        let r = http
            .get(format!("{gw}/docs/{asset}"))
            .send()
            .await
            .expect("answers");
        assert_eq!(r.status(), 200, "{asset}");
    }
    let init = http
        .get(format!("{gw}/docs/swagger-initializer.js"))
        .send()
        .await
        .expect("answers");
    assert!(init.text().await.expect("js").contains("/openapi.json"));
    let spec = http
        .get(format!("{gw}/openapi.json"))
        .send()
        .await
        .expect("answers");
    assert_eq!(spec.status(), 200);
}
