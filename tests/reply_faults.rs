//! A reply retried with its `Idempotency-Key` is delivered exactly once, whatever failed on the
//! way: on every vendor, a failure before the vendor acted, the vendor's answer lost after it
//! acted (a 5xx, a dropped connection, an unreadable body), a 429, a timeout, and a gateway
//! killed mid-send. Deliveries are counted by the simulator's own record.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::process::Gateway;
use support::{ADMIN, Env};
use switchboard_demo::{self as registry, VENDORS};
use switchboard_testkit::{TempDir, free_port};

/// A reply's answer: status, body, `Idempotency-Replayed`, `Retry-After` (seconds).
#[derive(Debug)]
struct Answer {
    status: u16,
    body: Value,
    replayed: bool,
    retry_after: Option<u64>,
}

async fn post_reply(
    http: &reqwest::Client,
    gateway: &str,
    id: &str,
    key: &str,
    text: &str,
) -> Answer {
    let r = http
        .post(format!("{gateway}/v1/conversations/{id}/messages"))
        .bearer_auth(ADMIN)
        .header("Idempotency-Key", key)
        .json(&json!({ "text": text }))
        .send()
        .await
        .expect("the gateway answers");
    let replayed = support::replayed(&r);
    let retry_after = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let status = r.status().as_u16();
    let body = r.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        body,
        replayed,
        retry_after,
    }
}

/// Retries as a client following docs/upstream.md does: same key, waiting `Retry-After` when told,
/// until the reply is accepted; the answers on the way.
async fn retry_until_accepted(
    http: &reqwest::Client,
    gateway: &str,
    id: &str,
    key: &str,
    text: &str,
) -> Vec<Answer> {
    let mut answers = Vec::new();
    for _ in 0..20 {
        let answer = post_reply(http, gateway, id, key, text).await;
        let status = answer.status;
        let wait = answer.retry_after.unwrap_or(1);
        answers.push(answer);
        match status {
            201 => return answers,
            409 | 502 | 503 | 504 => tokio::time::sleep(Duration::from_secs(wait)).await,
            _ => panic!("{text}: a retry was refused for good: {answers:?}"),
        }
    }
    panic!("{text}: never accepted: {answers:?}");
}

fn delivered(env: &Env, vendor: &str, text: &str) -> usize {
    env.sim
        .messages_with_text(text)
        .get(vendor)
        .copied()
        .unwrap_or_default()
}

/// Every vendor, every fault: the first attempt fails, the fault clears, the client retries
/// with its key until accepted; the vendor then holds the reply exactly once, and one more
/// retry replays it without a vendor call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_retried_with_its_key_is_delivered_once_whatever_failed() {
    let env = Env::start_with(10, |config| {
        config.replace("provider = \"", "timeout_secs = 1\nprovider = \"")
    })
    .await;
    let faults = [
        ("a 500 before the vendor acted", json!({"error_rate": 1.0})),
        (
            "a 500 after the vendor acted",
            json!({"error_rate": 1.0, "acted_rate": 1.0}),
        ),
        (
            "a connection dropped after the vendor acted",
            json!({"drop_rate": 1.0, "acted_rate": 1.0}),
        ),
        (
            "an unreadable answer after the vendor acted",
            json!({"malformed_rate": 1.0, "acted_rate": 1.0}),
        ),
        (
            "a 429",
            json!({"rate_limit_rate": 1.0, "retry_after_secs": 1}),
        ),
        (
            "a vendor slower than the deadline",
            json!({"latency_ms": 1500}),
        ),
    ];
    for entry in VENDORS {
        let connection = entry.demo_connection;
        let vendor = entry.simulator.name;
        let id = env.reply_target(connection).await;
        for (n, (fault, injected)) in faults.iter().enumerate() {
            let text = format!("{connection}: reply {n} through {fault}");
            let key = format!("{connection}-{n}");
            env.faults(vendor, injected.clone()).await;
            let first = post_reply(&env.http, &env.gateway, &id, &key, &text).await;
            assert!(
                matches!(first.status, 502..=504),
                "{text}: the first attempt fails: {first:?}"
            );
            env.faults(vendor, json!({})).await;
            let answers = retry_until_accepted(&env.http, &env.gateway, &id, &key, &text).await;
            for a in &answers {
                if a.status == 409 {
                    assert_eq!(a.body["code"], "idempotency_in_progress", "{text}: {a:?}");
                }
            }
            assert_eq!(
                delivered(&env, vendor, &text),
                1,
                "{text}: the vendor holds the reply once; answers {answers:?}"
            );
            let Some(accepted) = answers.last() else {
                unreachable!("retry_until_accepted returns at least one answer")
            };
            let before = env.sim_requests().await;
            let again = post_reply(&env.http, &env.gateway, &id, &key, &text).await;
            assert_eq!(again.status, 201, "{text}: {again:?}");
            assert!(again.replayed, "{text}: a later retry is a replay");
            assert_eq!(again.body["id"], accepted.body["id"], "{text}");
            assert_eq!(
                env.sim_requests().await,
                before,
                "{text}: a replay sends nothing"
            );
            assert_eq!(delivered(&env, vendor, &text), 1, "{text}");
        }
    }
}

/// A retry while the first attempt is still at work gets 409 with the `Retry-After` of its
/// lease; retried then, it succeeds (the lease is renewed while the attempt works, so a slow
/// vendor never lets a retry in beside it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_beside_a_request_at_work_is_told_when_to_come_back() {
    let env = Env::start(10).await;
    let id = env.reply_target("helpdesk-pingback").await;
    env.faults("pingback", json!({"latency_ms": 4000})).await;
    let text = "slow but sure";
    let first = {
        let (http, gateway, id) = (env.http.clone(), env.gateway.clone(), id.clone());
        tokio::spawn(async move { post_reply(&http, &gateway, &id, "slow-1", text).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let beside = post_reply(&env.http, &env.gateway, &id, "slow-1", text).await;
    assert_eq!(beside.status, 409, "{beside:?}");
    assert_eq!(beside.body["code"], "idempotency_in_progress");
    let wait = beside.retry_after.expect("Retry-After");
    assert!((1..=10).contains(&wait), "within the lease: {wait}");
    let first = first.await.expect("the first request ends");
    assert_eq!(first.status, 201, "{first:?}");
    assert!(!first.replayed);
    env.faults("pingback", json!({})).await;
    let after = post_reply(&env.http, &env.gateway, &id, "slow-1", text).await;
    assert_eq!((after.status, after.replayed), (201, true), "{after:?}");
    assert_eq!(delivered(&env, "pingback", text), 1);
}

/// A gateway killed (SIGKILL) while its reply is at the vendor: the retry on the restarted
/// gateway is told to come back when the dead claim's lease ends, and then delivers the reply
/// exactly once, whether or not the vendor got the first send.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_whose_gateway_crashed_mid_send_is_delivered_once() {
    let mut env = Env::simulators(7, 10).await;
    let sim_url = env.sim_url.clone();
    let dir = TempDir::new();
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\ncursor_secret = \"s\"\n\n[store]\npath = \"{}\"\n\n{}{}",
            dir.path().join("state.db").display(),
            support::clients_toml(&sim_url),
            registry::demo_config(&sim_url)
        ),
    )
    .expect("config written");
    let mut gateway = Gateway::start(&config, free_port(), dir.path()).await;
    env.gateway = gateway.url.clone();
    for (n, (connection, vendor)) in [
        ("helpdesk-pingback", "pingback"),
        ("support-chatbotx", "chatbotx"),
    ]
    .into_iter()
    .enumerate()
    {
        let id = env.reply_target(connection).await;
        let text = format!("sent as the gateway died ({connection})");
        let key = format!("crash-{n}");
        env.faults(vendor, json!({"latency_ms": 1500})).await;
        let in_flight = {
            let (http, url, id, key, text) = (
                env.http.clone(),
                gateway.url.clone(),
                id.clone(),
                key.clone(),
                text.clone(),
            );
            tokio::spawn(async move {
                http.post(format!("{url}/v1/conversations/{id}/messages"))
                    .bearer_auth(ADMIN)
                    .header("Idempotency-Key", key)
                    .json(&json!({ "text": text }))
                    .send()
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
        gateway.kill_9();
        assert!(
            in_flight.await.expect("joins").is_err(),
            "the caller lost its answer"
        );
        gateway.start_again().await;
        env.gateway = gateway.url.clone();
        tokio::time::sleep(Duration::from_secs(2)).await;
        env.faults(vendor, json!({})).await;
        let retry = post_reply(&env.http, &env.gateway, &id, &key, &text).await;
        assert_eq!(
            retry.status, 409,
            "the dead claim still holds the key: {retry:?}"
        );
        let wait = retry.retry_after.expect("Retry-After");
        assert!((1..=10).contains(&wait), "at most the lease: {wait}");
        tokio::time::sleep(Duration::from_secs(wait)).await;
        let answers = retry_until_accepted(&env.http, &env.gateway, &id, &key, &text).await;
        assert_eq!(
            answers.len(),
            1,
            "Retry-After said when a retry succeeds: {answers:?}"
        );
        assert_eq!(
            delivered(&env, vendor, &text),
            1,
            "{connection}: {answers:?}"
        );
    }
}
