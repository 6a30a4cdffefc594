//! The real binary (`switchboard serve`) in front of the simulators, with its state in an
//! embedded file or in Redis: killed with SIGKILL and started again, or with Redis stopped and
//! started again under it.

mod support;

use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::process::Gateway;
use support::{ADMIN, Env};
use switchboard_demo as registry;
use switchboard_testkit::{RedisServer, TempDir, free_port};

/// Simulators in-process; the env's gateway URL is filled in once a gateway runs.
async fn simulators() -> Env {
    Env::simulators(7, 10).await
}

fn config(env: &Env, store: &str) -> String {
    format!(
        "[server]\ncursor_secret = \"one-secret-for-every-replica\"\n\n{store}\n\n{}{}",
        support::clients_toml(&env.sim_url),
        registry::demo_config(&env.sim_url)
    )
}

async fn chatbotx_conversation(env: &Env) -> (String, String) {
    let (status, page) = env
        .get(
            ADMIN,
            "/v1/conversations?connection=support-chatbotx&limit=1",
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let id = page["data"][0]["id"]
        .as_str()
        .expect("a conversation")
        .to_owned();
    let native = id.split_once(':').map(|(_, n)| n.to_owned()).expect("id");
    (id, native)
}

fn messages_in_sim(env: &Env, native: &str) -> usize {
    env.sim
        .world::<switchboard_sim::chatbotx::World>()
        .expect("chatbotx")
        .lock()
        .expect("sim")
        .message_count(native)
}

async fn reply(env: &Env, id: &str, key: &str, text: &str) -> reqwest::Response {
    env.http
        .post(format!("{}/v1/conversations/{id}/messages", env.gateway))
        .bearer_auth(ADMIN)
        .header("Idempotency-Key", key)
        .json(&json!({ "text": text }))
        .send()
        .await
        .expect("the gateway answers")
}

/// `/readyz` answers JSON (not problem+json) with 503 too.
async fn readyz(env: &Env) -> (u16, Value) {
    let r = env
        .http
        .get(format!("{}/readyz", env.gateway))
        .send()
        .await
        .expect("the gateway answers");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_store_replays_a_reply_after_kill_9() {
    let dir = TempDir::new();
    let mut env = simulators().await;
    let config_path = dir.path().join("switchboard.toml");
    let db = dir.path().join("state.db");
    std::fs::write(
        &config_path,
        config(
            &env,
            &format!("[store]\npath = {:?}", db.display().to_string()),
        ),
    )
    .expect("config written");
    let port = free_port();
    let mut gateway = Gateway::start(&config_path, port, dir.path()).await;
    env.gateway = gateway.url.clone();

    let (id, native) = chatbotx_conversation(&env).await;
    let before = messages_in_sim(&env, &native);
    let first = reply(&env, &id, "crash-safe-1", "Sent once, even across a crash").await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.expect("json");
    assert_eq!(messages_in_sim(&env, &native), before + 1);

    gateway.kill_9();
    let sent = env.sim_requests().await;
    gateway.start_again().await;
    assert_eq!(env.gateway, gateway.url);

    let again = reply(&env, &id, "crash-safe-1", "Sent once, even across a crash").await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(
        again
            .headers()
            .get("idempotency-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    let again: Value = again.json().await.expect("json");
    assert_eq!(again["id"], first["id"], "the first answer, replayed");
    assert_eq!(
        messages_in_sim(&env, &native),
        before + 1,
        "exactly one message"
    );
    assert_eq!(
        env.sim_requests().await["chatbotx"],
        sent["chatbotx"],
        "the replay sent nothing"
    );
    let other = reply(&env, &id, "crash-safe-1", "Another text").await;
    assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_mid_run_fails_closed_then_recovers_without_a_restart() {
    let dir = TempDir::new();
    let mut redis = RedisServer::start();
    let mut env = simulators().await;
    let config_path = dir.path().join("switchboard.toml");
    std::fs::write(
        &config_path,
        config(
            &env,
            &format!(
                "[store]\nredis_url = \"{}\"\nkey_prefix = \"e2e:\"",
                redis.url()
            ),
        ),
    )
    .expect("config written");
    let gateway = Gateway::start(&config_path, free_port(), dir.path()).await;
    env.gateway = gateway.url.clone();

    let (status, ready) = env.get(ADMIN, "/readyz").await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["store"]["kind"], "redis");
    let (id, native) = chatbotx_conversation(&env).await;
    let first = reply(&env, &id, "redis-1", "Before the outage").await;
    assert_eq!(first.status(), StatusCode::CREATED);

    redis.stop();
    let sent = env.sim_requests().await;
    let messages = messages_in_sim(&env, &native);
    let refused = reply(&env, &id, "redis-2", "During the outage").await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.headers().contains_key("retry-after"));
    let problem: Value = refused.json().await.expect("json");
    assert_eq!(problem["code"], "store_unavailable", "{problem}");
    let (status, problem) = env.get(ADMIN, &format!("/v1/conversations/{id}")).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (503, Some("store_unavailable"))
    );
    // The inbox too: every connection needs the store for its quota check.
    let (status, problem) = env.get(ADMIN, "/v1/conversations?limit=5").await;
    assert_eq!(
        (
            status,
            problem["code"].as_str(),
            problem["retry_after"].as_u64()
        ),
        (503, Some("store_unavailable"), Some(1)),
        "{problem}"
    );
    let (status, ready) = readyz(&env).await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["store"]["status"], "unavailable");
    assert_eq!(messages_in_sim(&env, &native), messages, "nothing was sent");
    assert_eq!(env.sim_requests().await["chatbotx"], sent["chatbotx"]);

    redis.restart();
    let mut ready = false;
    for _ in 0..100 {
        if readyz(&env).await.0 == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "ready again once Redis answers");
    let after = reply(&env, &id, "redis-2", "After the outage").await;
    assert_eq!(after.status(), StatusCode::CREATED);
    assert_eq!(messages_in_sim(&env, &native), messages + 1);
}

#[tokio::test]
async fn serve_refuses_redis_without_a_shared_cursor_secret_and_names_a_bad_store_path() {
    let dir = TempDir::new();
    let run = |text: &str| {
        let path = dir.path().join(format!("c{}.toml", text.len()));
        std::fs::write(&path, text).expect("config written");
        let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["serve", "--config"])
            .arg(&path)
            .args(["--bind", &format!("127.0.0.1:{}", free_port())])
            .output()
            .expect("runs");
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = run("[store]\nredis_url = \"redis://:hunter2@127.0.0.1:1\"\n");
    assert!(
        err.contains("every replica must share one cursor secret"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
    let err = run("[store]\npath = \"/nonexistent-dir/state.db\"\n");
    assert!(err.contains("/nonexistent-dir/state.db"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_started_before_its_redis_is_not_ready_until_redis_answers() {
    let dir = TempDir::new();
    let mut redis = RedisServer::not_started();
    let mut env = simulators().await;
    let config_path = dir.path().join("switchboard.toml");
    std::fs::write(
        &config_path,
        config(&env, &format!("[store]\nredis_url = \"{}\"", redis.url())),
    )
    .expect("config written");
    let gateway = Gateway::start(&config_path, free_port(), dir.path()).await;
    env.gateway = gateway.url.clone();
    let (status, ready) = readyz(&env).await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["store"]["kind"], "redis");

    redis.restart();
    let mut ready = false;
    for _ in 0..100 {
        if readyz(&env).await.0 == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "ready once Redis answers");
    let (id, _) = chatbotx_conversation(&env).await;
    let r = reply(&env, &id, "late-redis", "Hello").await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

/// Redis frozen (SIGSTOP: connections open, nothing answers): every request that needs the
/// store answers `503 store_unavailable`, nothing is sent, and the gateway serves again once
/// Redis thaws. The time each took is printed (the bound is measured, see docs/operations.md, "When Redis is down").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_redis_fails_closed_and_recovers() {
    let dir = TempDir::new();
    let redis = RedisServer::start();
    let mut env = simulators().await;
    let config_path = dir.path().join("switchboard.toml");
    std::fs::write(
        &config_path,
        config(&env, &format!("[store]\nredis_url = \"{}\"", redis.url())),
    )
    .expect("config written");
    let gateway = Gateway::start(&config_path, free_port(), dir.path()).await;
    env.gateway = gateway.url.clone();
    let (id, native) = chatbotx_conversation(&env).await;
    let messages = messages_in_sim(&env, &native);

    redis.pause();
    let sent = env.sim_requests().await;
    let mut timings = Vec::new();
    for path in [
        "/v1/conversations?limit=20".to_owned(),
        format!("/v1/conversations/{id}"),
        format!("/v1/conversations/{id}/messages"),
    ] {
        // Past the fail-fast window: each request meets the frozen Redis afresh.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let started = std::time::Instant::now();
        let (status, problem) = env.get(ADMIN, &path).await;
        timings.push((path.clone(), started.elapsed()));
        assert_eq!(
            (status, problem["code"].as_str()),
            (503, Some("store_unavailable")),
            "{path}: {problem}"
        );
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let started = std::time::Instant::now();
    let refused = reply(&env, &id, "frozen-1", "While Redis is frozen").await;
    timings.push(("reply".to_owned(), started.elapsed()));
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    println!("with Redis paused: {timings:?}");
    assert_eq!(messages_in_sim(&env, &native), messages, "nothing was sent");
    assert_eq!(env.sim_requests().await["chatbotx"], sent["chatbotx"]);

    redis.resume();
    let mut served = false;
    for _ in 0..100 {
        if reply(&env, &id, "frozen-1", "While Redis is frozen")
            .await
            .status()
            == StatusCode::CREATED
        {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(served, "served again once Redis thaws");
    assert_eq!(messages_in_sim(&env, &native), messages + 1, "sent once");
}
