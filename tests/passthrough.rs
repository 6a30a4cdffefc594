//! Passthrough to each connection's own vendor API, against the simulators: the connection's
//! credential arrives and nothing of the caller's does, query and body arrive intact, the
//! vendor's answer comes back as it was, no path escapes the base URL, only the `passthrough`
//! scope opens it, and the connection's quota, breaker and body cap hold for it as for every call.

mod support;

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{Value, json};
use support::{ADMIN, Env, sha};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PASS: &str = "passthrough-token";
const PASS_ELSEWHERE: &str = "passthrough-elsewhere-token";

/// Every demo connection and its simulator's name.
const CONNECTIONS: [(&str, &str); 4] = [
    ("shop-zipchat", "zipchat"),
    ("support-chatbotx", "chatbotx"),
    ("helpdesk-pingback", "pingback"),
    ("sms", "octopush"),
];

fn passthrough_clients() -> String {
    format!(
        "[[clients]]\nname = \"integrator\"\ntoken_sha256 = \"{}\"\nscopes = [\"passthrough\"]\nrate_limit = {{ requests = 100000, per_seconds = 1 }}\n\n\
         [[clients]]\nname = \"integrator-elsewhere\"\ntoken_sha256 = \"{}\"\nscopes = [\"passthrough\", \"read\"]\nconnections = [\"elsewhere\"]\n\n",
        sha(PASS),
        sha(PASS_ELSEWHERE),
    )
}

async fn env_with(edit: impl FnOnce(String) -> String) -> Env {
    Env::start_with(3, |config| {
        edit(format!("{}{config}", passthrough_clients()))
    })
    .await
}

fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn url(env: &Env, connection: &str, path: &str) -> String {
    format!(
        "{}/v1/connections/{connection}/passthrough/{path}",
        env.gateway
    )
}

/// A passthrough request without a body, as the integrator client.
async fn pass(env: &Env, method: Method, connection: &str, path: &str) -> reqwest::Response {
    env.http
        .request(method, url(env, connection, path))
        .bearer_auth(PASS)
        .send()
        .await
        .expect("gateway answers")
}

async fn vendor_requests(env: &Env, vendor: &str) -> u64 {
    env.sim_requests().await.get(vendor).copied().unwrap_or(0)
}

#[tokio::test]
async fn the_connections_credential_arrives_and_nothing_of_the_callers_does() {
    let env = env_with(|c| c).await;
    for (connection, vendor) in CONNECTIONS {
        let r = env
            .http
            .post(url(
                &env,
                connection,
                "_echo/tags/new?name=VIP%20client&x=1&x=2",
            ))
            .bearer_auth(PASS)
            .header("content-type", "application/json; charset=utf-8")
            .header("accept", "application/json")
            .header("idempotency-key", "key-1")
            .header("cookie", "session=caller-cookie")
            .header("x-caller-secret", "do-not-forward")
            .header("x-forwarded-for", "10.0.0.1")
            .body(r##"{"name": "VIP", "color":"#ff0000"}"##)
            .send()
            .await
            .expect("gateway answers");
        assert_eq!(r.status(), 200, "{connection}");
        assert_eq!(
            header(&r, "switchboard-passthrough").as_deref(),
            Some("vendor")
        );
        assert!(
            header(&r, "content-type").is_some_and(|c| c.starts_with("application/json")),
            "{connection}: the vendor's content type"
        );
        assert!(
            header(&r, "ratelimit-policy").is_some(),
            "{connection}: the caller's quota is stated"
        );
        let echoed: Value = r.json().await.expect("the echo");
        assert_eq!(echoed["method"], "POST", "{connection}");
        assert_eq!(echoed["path"], "/_echo/tags/new", "{connection}");
        assert_eq!(
            echoed["query"], "name=VIP%20client&x=1&x=2",
            "{connection}: the query as sent"
        );
        assert_eq!(
            echoed["body"], r##"{"name": "VIP", "color":"#ff0000"}"##,
            "{connection}: the body byte for byte"
        );
        let headers: BTreeMap<String, String> =
            serde_json::from_value(echoed["headers"].clone()).expect("headers");
        assert_eq!(
            headers.get("content-type").map(String::as_str),
            Some("application/json; charset=utf-8")
        );
        assert_eq!(
            headers.get("accept").map(String::as_str),
            Some("application/json")
        );
        assert_eq!(
            headers.get("idempotency-key").map(String::as_str),
            Some("key-1")
        );
        for (name, value) in &headers {
            assert!(
                !value.contains(PASS),
                "{connection}: the caller's token reached the vendor in {name}"
            );
            assert!(!value.contains("caller-cookie"), "{connection}: {name}");
        }
        for absent in ["cookie", "x-caller-secret", "x-forwarded-for"] {
            assert!(
                !headers.contains_key(absent),
                "{connection}: {absent} reached the vendor"
            );
        }
        let authorization = headers.get("authorization").cloned().unwrap_or_default();
        match vendor {
            "zipchat" => assert_eq!(
                authorization,
                format!("Bearer {}", switchboard_sim::zipchat::API_KEY)
            ),
            "chatbotx" => assert_eq!(
                authorization,
                format!("Bearer {}", switchboard_sim::chatbotx::TOKEN)
            ),
            "pingback" => assert!(
                authorization.starts_with("Bearer ") && authorization.len() > 10,
                "the logged-in token: {authorization}"
            ),
            _ => {
                assert_eq!(
                    headers.get("api-key").map(String::as_str),
                    Some(switchboard_sim::octopush::API_KEY)
                );
                assert_eq!(
                    headers.get("api-login").map(String::as_str),
                    Some(switchboard_sim::octopush::API_LOGIN)
                );
            }
        }
    }
}

#[tokio::test]
async fn the_vendors_errors_and_own_endpoints_come_through_as_they_are() {
    let env = env_with(|c| c).await;
    for (connection, _) in CONNECTIONS {
        // A vendor error with a body: status, body and content type as the vendor sent them.
        let r = pass(&env, Method::DELETE, connection, "_echo/thing/7?status=422").await;
        assert_eq!(r.status(), 422, "{connection}");
        assert_eq!(
            header(&r, "switchboard-passthrough").as_deref(),
            Some("vendor")
        );
        assert!(
            header(&r, "content-type").is_some_and(|c| c.starts_with("application/json")),
            "{connection}: not turned into problem+json"
        );
        let echoed: Value = r.json().await.expect("the vendor's body");
        assert_eq!(echoed["method"], "DELETE");
        // A path the vendor does not know: its own 404, whatever its body.
        let r = pass(&env, Method::GET, connection, "no/such/endpoint").await;
        assert_eq!(r.status(), 404, "{connection}");
        assert_eq!(
            header(&r, "switchboard-passthrough").as_deref(),
            Some("vendor")
        );
        assert_ne!(
            header(&r, "content-type").as_deref(),
            Some("application/problem+json"),
            "{connection}: the vendor's 404 is not the gateway's"
        );
    }
    // An endpoint the normalized model leaves out: ChatbotX's inboxes.
    let r = pass(&env, Method::GET, "support-chatbotx", "v1/inboxes").await;
    assert_eq!(r.status(), 200);
    assert!(r.json::<Value>().await.is_ok());
}

/// The first string `key` anywhere in `value`.
fn find_str<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    match value {
        Value::Object(map) => map
            .get(key)
            .and_then(Value::as_str)
            .or_else(|| map.values().find_map(|v| find_str(v, key))),
        Value::Array(items) => items.iter().find_map(|v| find_str(v, key)),
        _ => None,
    }
}

#[tokio::test]
async fn what_the_model_leaves_out_is_reachable_a_pingback_conversation_created() {
    let env = env_with(|c| c).await;
    let r = pass(
        &env,
        Method::GET,
        "helpdesk-pingback",
        "api/v1/conversations/?limit=1",
    )
    .await;
    assert_eq!(r.status(), 200);
    let listed: Value = r.json().await.expect("PingBack's list");
    let business = find_str(&listed, "business_id").expect("a business id");
    let r = env
        .http
        .post(url(&env, "helpdesk-pingback", "api/v1/conversations/"))
        .bearer_auth(PASS)
        .json(&json!({"business_id": business, "initial_message": "Opened through passthrough"}))
        .send()
        .await
        .expect("gateway answers");
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(
        header(&r, "switchboard-passthrough").as_deref(),
        Some("vendor")
    );
    let created: Value = r.json().await.expect("the conversation");
    assert!(find_str(&created, "id").is_some(), "{created}");
    // A revoked token: logged in again once, as every PingBack call does, and sent again.
    let world = env
        .sim
        .world::<switchboard_sim::pingback::World>()
        .expect("PingBack runs");
    let logins = |world: &std::sync::Arc<std::sync::Mutex<switchboard_sim::pingback::World>>| {
        world.lock().expect("the world").logins()
    };
    assert_eq!(logins(&world), 1);
    world.lock().expect("the world").revoke_tokens();
    let r = pass(&env, Method::GET, "helpdesk-pingback", "_echo").await;
    assert_eq!(r.status(), 200, "the new token is used");
    assert_eq!(logins(&world), 2);
}

/// Sends `GET {path}` as written, byte for byte (an HTTP client would normalize it), and
/// returns the answer's status.
async fn raw_get(gateway: &str, path: &str, token: &str) -> u16 {
    let addr = gateway.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("writes");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"))
}

#[tokio::test]
async fn no_path_escapes_the_base_url_and_nothing_is_sent() {
    let env = env_with(|c| c).await;
    let escapes = [
        "..",
        "../../chatbotx/api/v1/inboxes",
        "_echo/../../x",
        "%2e%2e/x",
        "%2E%2E/%2e%2e/x",
        ".%2e/x",
        "_echo%2f..%2f..%2fx",
        "%252e%252e/x",
        "./_echo",
        "..;/x",
        "/evil.example/x",
        "//evil.example/x",
        "_echo//x",
        "http://evil.example/x",
        "http:%2f%2fevil.example/x",
        "https:evil.example",
        "_echo%5c..%5cx",
        "_echo\\..\\x",
        "_echo%00x",
        "_echo%0d%0aX-Injected:%201",
    ];
    for (connection, _) in CONNECTIONS {
        let before = env.sim_requests().await;
        for escape in escapes {
            let path = format!("/v1/connections/{connection}/passthrough/{escape}");
            let status = raw_get(&env.gateway, &path, PASS).await;
            assert_eq!(status, 400, "{connection}: {escape}");
        }
        assert_eq!(
            env.sim_requests().await,
            before,
            "{connection}: no escape reached any vendor"
        );
    }
    // The refusal is the gateway's, with its code.
    let r = pass(&env, Method::GET, "shop-zipchat", "_echo%5c..%5cx").await;
    assert_eq!(r.status(), 400);
    assert_eq!(header(&r, "switchboard-passthrough"), None);
    let problem: Value = r.json().await.expect("problem");
    assert_eq!(problem["code"], "invalid_passthrough_path");
}

#[tokio::test]
async fn only_the_passthrough_scope_opens_it_and_a_restriction_holds() {
    let env = env_with(|c| c).await;
    let before = env.sim_requests().await;
    for token in [ADMIN, support::READER] {
        let (status, problem) = env
            .get(token, "/v1/connections/shop-zipchat/passthrough/_echo")
            .await;
        assert_eq!(status, 403, "read and write do not imply passthrough");
        assert_eq!(problem["code"], "forbidden");
    }
    let (status, problem) = env
        .get(
            PASS_ELSEWHERE,
            "/v1/connections/shop-zipchat/passthrough/_echo",
        )
        .await;
    assert_eq!(status, 404, "a connection the token may not see: {problem}");
    let (status, _) = env
        .get(PASS, "/v1/connections/nowhere/passthrough/_echo")
        .await;
    assert_eq!(status, 404);
    let (status, _) = env
        .get(
            "no-such-token",
            "/v1/connections/shop-zipchat/passthrough/_echo",
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(env.sim_requests().await, before, "nothing was sent");
    let (status, echoed) = env
        .get(
            PASS_ELSEWHERE,
            "/v1/connections/elsewhere/passthrough/_echo",
        )
        .await;
    assert_eq!(status, 200, "its own connection: {echoed}");
    assert_eq!(
        echoed["headers"]["authorization"],
        format!("Bearer {}", switchboard_sim::zipchat::OTHER_API_KEY)
    );
    // Counted per connection, and on the passthrough route.
    let metrics = support::metrics_text(&env.http, &env.gateway).await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("switchboard_passthrough_requests_total")
                && l.contains("connection=\"elsewhere\"")
                && l.contains("status=\"200\"")),
        "{metrics}"
    );
    assert!(metrics.contains("route=\"/v1/connections/{connection}/passthrough/{*path}\""));
}

#[tokio::test]
async fn normalized_and_passthrough_calls_share_the_connections_quota() {
    // Three a minute: one at once, then one every 20 s (longer than the connection's deadline).
    // No page cache: every normalized read asks the vendor.
    let env = env_with(|config| {
        format!("[server]\ncache_ttl_ms = 0\n\n{config}").replace(
            "id = \"shop-zipchat\"\n",
            "id = \"shop-zipchat\"\nrate_limit = { requests = 3, per_seconds = 60 }\n",
        )
    })
    .await;
    let before = vendor_requests(&env, "zipchat").await;
    let mut refused = Vec::new();
    for i in 0..4 {
        let (status, body) = env
            .get(
                ADMIN,
                &format!("/v1/conversations?connection=shop-zipchat&limit={}", i + 1),
            )
            .await;
        // A page whose one connection is out of quota names it in `partial`.
        let partial = &body["partial"][0]["code"];
        if status != 200 {
            refused.push(("normalized", status, body["code"].clone()));
        } else if !partial.is_null() {
            refused.push(("normalized", status, partial.clone()));
        }
        let r = pass(
            &env,
            Method::GET,
            "shop-zipchat",
            &format!("_echo?call={i}"),
        )
        .await;
        if r.status() != 200 {
            assert!(r.headers().get("retry-after").is_some());
            assert_eq!(header(&r, "switchboard-passthrough"), None);
            let status = r.status().as_u16();
            let problem: Value = r.json().await.expect("problem");
            refused.push(("passthrough", status, problem["code"].clone()));
        }
    }
    let sent = vendor_requests(&env, "zipchat").await - before;
    assert!(sent <= 3, "the vendor saw {sent} requests in a minute");
    assert!(
        refused
            .iter()
            .any(|(door, status, code)| *door == "passthrough"
                && *status == 503
                && code == "upstream_rate_limited"),
        "{refused:?}"
    );
    assert!(
        refused.iter().any(|(door, _, _)| *door == "normalized"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_vendors_429_closes_the_window_for_both_doors() {
    let env = env_with(|c| c).await;
    let r = pass(&env, Method::GET, "shop-zipchat", "_echo?status=429").await;
    assert_eq!(r.status(), 429, "the vendor's own 429");
    assert!(r.headers().get("retry-after").is_some());
    let before = vendor_requests(&env, "zipchat").await;
    let (status, problem) = env
        .get(ADMIN, "/v1/conversations?connection=shop-zipchat&limit=7")
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (503, Some("upstream_rate_limited"))
    );
    assert_eq!(vendor_requests(&env, "zipchat").await, before);
}

#[tokio::test]
async fn the_breaker_opens_on_passthrough_failures_then_fails_fast() {
    let env = env_with(|c| c).await;
    env.faults("chatbotx", json!({"error_rate": 1.0})).await;
    for _ in 0..5 {
        let r = pass(&env, Method::POST, "support-chatbotx", "_echo").await;
        assert_eq!(
            r.status(),
            500,
            "the vendor's failure, as it was, once: never retried"
        );
        assert_eq!(
            header(&r, "switchboard-passthrough").as_deref(),
            Some("vendor")
        );
    }
    let before = vendor_requests(&env, "chatbotx").await;
    let r = pass(&env, Method::GET, "support-chatbotx", "_echo").await;
    assert_eq!(r.status(), 502);
    assert!(r.headers().get("retry-after").is_some());
    assert_eq!(header(&r, "switchboard-passthrough"), None);
    let problem: Value = r.json().await.expect("problem");
    assert_eq!(problem["code"], "upstream_circuit_open");
    assert_eq!(
        vendor_requests(&env, "chatbotx").await,
        before,
        "failed fast, unsent"
    );
    // The normalized API meets the same open breaker.
    let (status, problem) = env
        .get(ADMIN, "/v1/conversations?connection=support-chatbotx")
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (502, Some("upstream_circuit_open"))
    );
}

#[tokio::test]
async fn an_oversized_vendor_answer_is_cut_at_the_cap() {
    let env =
        env_with(|config| format!("[server]\nmax_upstream_body_bytes = 65536\n\n{config}")).await;
    env.faults(
        "octopush",
        json!({"oversized_body_bytes": 200_000_000, "oversized_without_length": true}),
    )
    .await;
    let r = pass(&env, Method::GET, "sms", "_echo").await;
    assert_eq!(r.status(), 502);
    assert_eq!(header(&r, "switchboard-passthrough"), None);
    let problem: Value = r.json().await.expect("problem");
    assert_eq!(problem["code"], "upstream_response_too_large");
    let report = support::sim_report(&env.http, &env.sim_url).await;
    let sent = report["oversized_bytes_sent"].as_u64().unwrap_or(0);
    // A 200 MB answer was started; the gateway stopped reading it at its 64 KiB cap.
    assert!(
        sent < 24 * 1024 * 1024,
        "the answer was not read whole: {sent} bytes sent"
    );
}
