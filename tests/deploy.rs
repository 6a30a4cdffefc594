//! The deployment files run as docker-compose.yml would run them: the committed gateway config
//! (`deploy/gateway.toml`) serves on a shared Redis with its secrets from the environment, and the
//! image's health check (`switchboard healthcheck`) follows `/readyz`.

mod support;

use std::process::Output;

use support::process::Gateway;
use switchboard_demo as registry;
use switchboard_testkit::{RedisServer, TempDir, free_port};

const CLIENT_TOKEN: &str = "client-token-from-the-env-file";
const OPS_TOKEN: &str = "ops-token-from-the-env-file";

/// `switchboard <args>` with `env`, as a container's HEALTHCHECK runs it.
async fn switchboard(args: &[&str], env: &[(&str, &str)]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .env_remove("SWITCHBOARD_OPS_TOKEN")
        .envs(env.iter().copied())
        .output()
        .await
        .expect("the binary runs")
}

async fn healthcheck(url: &str, env: &[(&str, &str)]) -> (bool, String) {
    let out = switchboard(&["healthcheck", "--url", url], env).await;
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compose_gateway_config_serves_on_redis_and_the_health_check_follows_readyz() {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/gateway.toml");
    let committed = std::fs::read_to_string(config).expect("deploy/gateway.toml");
    assert!(
        committed.contains(&registry::demo_config("http://sim:9100")),
        "deploy/gateway.toml's connections must be the output of `switchboard sim --print-config --public-url http://sim:9100` (docs/vendors.md, \"Adding a vendor\", has the command that regenerates them)"
    );

    let dir = TempDir::new();
    let mut redis = RedisServer::start();
    let redis_url = redis.url();
    let env = [
        ("SWITCHBOARD_CURSOR_SECRET", "a-secret-every-replica-shares"),
        ("SWITCHBOARD_REDIS_URL", redis_url.as_str()),
        ("SWITCHBOARD_CLIENT_TOKEN", CLIENT_TOKEN),
        ("SWITCHBOARD_OPS_TOKEN", OPS_TOKEN),
    ];
    // The file binds 0.0.0.0:8080 (a container's port); here a free loopback port.
    let gateway = Gateway::start_with_env(config.as_ref(), free_port(), dir.path(), &env).await;
    let readyz = format!("{}/readyz", gateway.url);

    let (ok, err) = healthcheck(&readyz, &[("SWITCHBOARD_OPS_TOKEN", OPS_TOKEN)]).await;
    assert!(ok, "ready with the ops token from the environment: {err}");
    let (ok, err) = healthcheck(&readyz, &[]).await;
    assert!(
        !ok && err.contains("401"),
        "/readyz needs the ops token: {err}"
    );

    let connections: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/v1/connections", gateway.url))
        .bearer_auth(CLIENT_TOKEN)
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("json");
    assert_eq!(
        connections["data"].as_array().map(Vec::len),
        Some(4),
        "{connections}"
    );

    redis.stop();
    let (ok, err) = healthcheck(&readyz, &[("SWITCHBOARD_OPS_TOKEN", OPS_TOKEN)]).await;
    assert!(
        !ok && err.contains("503") && err.contains("redis"),
        "unhealthy while its Redis is gone: {err}"
    );

    let closed = format!("http://127.0.0.1:{}/readyz", free_port());
    let (ok, err) = healthcheck(&closed, &[]).await;
    assert!(!ok && err.contains("did not answer"), "{err}");
}

#[tokio::test]
async fn sim_prints_a_gateway_config_for_the_url_gateways_reach_it_at() {
    let out = switchboard(
        &[
            "sim",
            "--bind",
            "0.0.0.0:9100",
            "--print-config",
            "--public-url",
            "http://sim:9100/",
        ],
        &[],
    )
    .await;
    assert!(out.status.success());
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains(&registry::demo_config("http://sim:9100")),
        "{printed}"
    );
    let out = switchboard(&["sim", "--bind", "127.0.0.1:9555", "--print-config"], &[]).await;
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains(&registry::demo_config("http://127.0.0.1:9555")),
        "{printed}"
    );
}
