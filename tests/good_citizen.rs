//! A good citizen upstream: quotas, caching and coalescing, idempotent replies, retries, the
//! circuit breaker, and metrics, through the gateway over HTTP against the simulators.

mod support;

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use support::{ADMIN, Env};
use tokio::task::JoinSet;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_callers_polling_stay_within_every_vendor_quota() {
    // This test is about quotas: a page deadline long enough for a starved 2-core machine keeps
    // slow-but-answering vendors out of `partial` (the deadline has its own tests in faults.rs).
    let env = Env::start_with(80, |config| {
        format!("[server]\npage_deadline_ms = 120000\n\n{config}")
    })
    .await;
    let before = env.sim_requests().await;
    let mut callers = JoinSet::new();
    for i in 0..200 {
        let http = env.http.clone();
        let gateway = env.gateway.clone();
        callers.spawn(async move {
            let path = match i % 4 {
                0 => "/v1/conversations?limit=50",
                1 => "/v1/conversations?limit=20&status=open",
                2 => "/v1/conversations?limit=20&connection=support-chatbotx,shop-zipchat",
                _ => "/v1/connections",
            };
            let mut seen = Vec::new();
            for _ in 0..5 {
                let r = http
                    .get(format!("{gateway}{path}"))
                    .bearer_auth(ADMIN)
                    .send()
                    .await
                    .expect("gateway answers");
                let status = r.status().as_u16();
                let body: Value = r.json().await.unwrap_or(Value::Null);
                seen.push((status, body["partial"].clone()));
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
            seen
        });
    }
    let mut answers = 0;
    while let Some(seen) = callers.join_next().await {
        for (status, partial) in seen.expect("caller finished") {
            answers += 1;
            assert_eq!(status, 200);
            assert!(
                partial.is_null() || partial == json!([]),
                "a connection failed: {partial}"
            );
        }
    }
    assert_eq!(answers, 1000);
    let after = env.sim_requests().await;
    let sent = |vendor: &str| after[vendor] - before[vendor];
    // Two Zipchat integrations (120 / 60 s each) and one ChatbotX workspace (120 / 10 s); the
    // run is far shorter than either window.
    assert!(
        sent("zipchat") <= 240,
        "zipchat received {}",
        sent("zipchat")
    );
    assert!(
        sent("chatbotx") <= 120,
        "chatbotx received {}",
        sent("chatbotx")
    );
    assert!(sent("zipchat") > 0 && sent("chatbotx") > 0);

    // Fresh data within the cache's lifetime: a customer writes on ChatbotX directly, and the
    // conversation comes to the top of the polled inbox.
    let (_, page) = env
        .get(
            ADMIN,
            "/v1/conversations?connection=support-chatbotx&limit=50",
        )
        .await;
    let last = page["data"]
        .as_array()
        .and_then(|d| d.last())
        .cloned()
        .expect("conversations");
    let native = last["native_id"].as_str().expect("native id").to_owned();
    let r = env
        .http
        .post(format!(
            "{}/chatbotx/api/v1/conversations/{native}/messages",
            env.sim_url
        ))
        .bearer_auth(switchboard_sim::chatbotx::TOKEN)
        .json(&json!({"text": "new activity"}))
        .send()
        .await
        .expect("vendor answers");
    assert!(r.status().is_success());
    let mut fresh = false;
    for _ in 0..40 {
        let (_, page) = env
            .get(
                ADMIN,
                "/v1/conversations?connection=support-chatbotx&limit=1",
            )
            .await;
        if page["data"][0]["native_id"] == native.as_str() {
            fresh = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(fresh, "the new activity never showed");
}

fn sim_message_count(env: &Env, connection: &str, native: &str) -> usize {
    env.simulated(connection).1.message_count(native)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_replies_with_one_key_are_sent_once() {
    let env = Env::start(20).await;
    let replying = switchboard_demo::VENDORS
        .iter()
        .filter(|v| v.capabilities().send_message);
    for connection in replying.map(|v| v.demo_connection) {
        let id = env.reply_target(connection).await;
        let native = id
            .split_once(':')
            .map(|(_, n)| n.to_owned())
            .expect("an id");
        let before = sim_message_count(&env, connection, &native);
        let key = format!("retry-{connection}");
        let body = json!({"text": format!("Only once on {connection}")});
        // Five concurrent tries, then five more after the first finished.
        let mut tries = JoinSet::new();
        for _ in 0..5 {
            let http = env.http.clone();
            let url = format!("{}/v1/conversations/{id}/messages", env.gateway);
            let (key, body) = (key.clone(), body.clone());
            tries.spawn(async move {
                let r = http
                    .post(url)
                    .bearer_auth(ADMIN)
                    .header("Idempotency-Key", key)
                    .json(&body)
                    .send()
                    .await
                    .expect("answers");
                let status = r.status().as_u16();
                (status, r.json::<Value>().await.unwrap_or(Value::Null))
            });
        }
        let mut first_id = None;
        while let Some(result) = tries.join_next().await {
            let (status, answer) = result.expect("try finished");
            match status {
                201 => first_id = first_id.or(answer["id"].as_str().map(str::to_owned)),
                409 => assert_eq!(answer["code"], "idempotency_in_progress"),
                other => panic!("{connection}: unexpected {other}: {answer}"),
            }
        }
        for _ in 0..5 {
            let r = env
                .http
                .post(format!("{}/v1/conversations/{id}/messages", env.gateway))
                .bearer_auth(ADMIN)
                .header("Idempotency-Key", &key)
                .json(&body)
                .send()
                .await
                .expect("answers");
            assert_eq!(r.status(), 201, "{connection}");
            assert!(support::replayed(&r));
            let answer: Value = r.json().await.expect("json");
            if let Some(first) = &first_id {
                assert_eq!(
                    answer["id"].as_str(),
                    Some(first.as_str()),
                    "{connection}: the same answer"
                );
            }
        }
        assert_eq!(
            sim_message_count(&env, connection, &native),
            before + 1,
            "{connection}: exactly one message"
        );

        // The same key with another body is refused; another caller's same key is its own.
        let (status, problem) = env
            .send(
                Method::POST,
                ADMIN,
                &format!("/v1/conversations/{id}/messages"),
                json!({"text": "something else"}),
            )
            .await;
        assert_eq!(status, 201, "without a key every request sends: {problem}");
        let r = env
            .http
            .post(format!("{}/v1/conversations/{id}/messages", env.gateway))
            .bearer_auth(ADMIN)
            .header("Idempotency-Key", &key)
            .json(&json!({"text": "a different reply"}))
            .send()
            .await
            .expect("answers");
        assert_eq!(r.status(), 422);
        let problem: Value = r.json().await.expect("json");
        assert_eq!(problem["code"], "idempotency_key_reused");
    }
}

/// Zipchat's connection with a short deadline and a breaker that opens after 3 failures and
/// probes again after 3 s.
fn impatient(config: String) -> String {
    let config = config.replacen(
        "provider = \"zipchat\"\n",
        "provider = \"zipchat\"\ntimeout_secs = 2\n",
        2,
    );
    format!("[server]\nbreaker = {{ failures = 3, cooldown_secs = 3 }}\n\n{config}")
}

async fn breaker_of(env: &Env, connection: &str) -> String {
    let (_, list) = env.get(ADMIN, "/v1/connections").await;
    list["data"]
        .as_array()
        .and_then(|l| l.iter().find(|c| c["id"] == connection))
        .map(|c| {
            c["health"]["breaker"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_vendor_is_retried_then_contained_while_the_others_serve() {
    for faults in [
        json!({"error_rate": 1.0, "error_status": 500}),
        json!({"malformed_rate": 1.0}),
        json!({"drop_rate": 1.0}),
        json!({"latency_ms": 30000}),
    ] {
        let env = Env::start_with(10, impatient).await;
        env.faults("zipchat", faults.clone()).await;
        let before = env.sim_requests().await;
        // The inbox keeps serving the other vendors and names the failing connections.
        let (status, page) = env.get(ADMIN, "/v1/conversations?limit=100").await;
        assert_eq!(status, 200, "{faults}: {page}");
        let partial: Vec<&str> = page["partial"]
            .as_array()
            .expect("partial")
            .iter()
            .filter_map(|p| p["connection"].as_str())
            .collect();
        assert!(partial.contains(&"shop-zipchat"), "{faults}: {page}");
        let codes: Vec<&str> = page["partial"]
            .as_array()
            .expect("partial")
            .iter()
            .filter_map(|p| p["code"].as_str())
            .collect();
        let expected = if faults.get("latency_ms").is_some() {
            "upstream_timeout"
        } else {
            "upstream_unavailable"
        };
        assert!(codes.contains(&expected), "{faults}: {codes:?}");
        let data = page["data"].as_array().expect("data");
        assert!(!data.is_empty() && data.iter().all(|c| c["provider"] != "zipchat"));
        // Reads were retried.
        let after = env.sim_requests().await;
        assert!(
            after["zipchat"] - before["zipchat"] >= 2,
            "{faults}: no retry"
        );

        // After repeated failures the breaker opens: calls fail fast, the inbox still serves.
        for _ in 0..3 {
            env.get(ADMIN, "/v1/conversations?connection=shop-zipchat")
                .await;
        }
        assert_eq!(breaker_of(&env, "shop-zipchat").await, "open", "{faults}");
        let (status, ready) = env.get(ADMIN, "/readyz").await;
        assert_eq!((status, ready["status"].as_str()), (200, Some("degraded")));
        let quiet = env.sim_requests().await;
        let (status, problem) = env
            .get(ADMIN, "/v1/conversations?connection=shop-zipchat")
            .await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (502, Some("upstream_circuit_open")),
            "{problem}"
        );
        assert_eq!(
            env.sim_requests().await["zipchat"],
            quiet["zipchat"],
            "an open breaker sends nothing"
        );

        // The vendor recovers; after the cooldown a probe closes the breaker.
        env.faults("zipchat", json!({})).await;
        let mut closed = false;
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let (status, _) = env
                .get(ADMIN, "/v1/conversations?connection=shop-zipchat")
                .await;
            if status == 200 {
                closed = breaker_of(&env, "shop-zipchat").await == "closed";
                break;
            }
        }
        assert!(closed, "{faults}: the breaker never closed");
    }
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let env = Env::start(5).await;
    env.get(ADMIN, "/v1/conversations?limit=5").await;
    let r = env
        .http
        .get(format!("{}/metrics", env.gateway))
        .send()
        .await
        .expect("answers");
    assert_eq!(r.status(), 200);
    let text = r.text().await.expect("text");
    for name in [
        "switchboard_http_requests_total",
        "switchboard_upstream_requests_total",
        "switchboard_upstream_breaker_state",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics");
    }
    // The page is counted by its route, method and status, and each connection's call by outcome.
    let sample = |series: &str| {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(series)?
                    .strip_prefix(' ')?
                    .parse::<f64>()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no sample of {series} in /metrics:\n{text}"))
    };
    assert!(
        sample(
            r#"switchboard_http_requests_total{route="/v1/conversations",method="GET",status="200"}"#
        ) >= 1.0
    );
    assert!(
        sample(r#"switchboard_upstream_requests_total{connection="shop-zipchat",outcome="ok"}"#)
            >= 1.0
    );
    assert_eq!(
        sample(r#"switchboard_upstream_breaker_state{connection="shop-zipchat"}"#),
        0.0,
        "closed"
    );
    // Every sample line is `name{labels} value`.
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line}"));
        assert!(value.parse::<f64>().is_ok(), "bad value in {line}");
        let name = series.split('{').next().unwrap_or_default();
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad name in {line}"
        );
    }
}
