//! Every authenticated answer states where its caller stands: the IETF `RateLimit-Policy` and
//! `RateLimit` header fields for the token's own quota, and for answers that reached a vendor,
//! that connection's quota as a second policy.

mod support;

use support::{ADMIN, Env, sha};

const UI_TOKEN: &str = "browser-ui-token";

fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn call(http: &reqwest::Client, url: &str, token: &str) -> reqwest::Response {
    http.get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("gateway answers")
}

#[tokio::test]
async fn the_callers_own_quota_counts_down_and_is_whole_again_after_its_window() {
    let config = format!(
        "[[clients]]\nname = \"ui\"\ntoken_sha256 = \"{}\"\nscopes = [\"read\"]\nrate_limit = {{ requests = 3, per_seconds = 1 }}\n\n{}",
        sha(UI_TOKEN),
        support::clients_toml("http://127.0.0.1:9"),
    );
    let gw = support::start_gateway(&config).await;
    let http = reqwest::Client::new();
    let url = format!("{gw}/v1/connections");
    for left in [2, 1, 0] {
        let r = call(&http, &url, UI_TOKEN).await;
        assert_eq!(r.status(), 200);
        assert_eq!(
            header(&r, "ratelimit-policy").as_deref(),
            Some("\"client\";q=3;w=1"),
            "no vendor was reached: the caller's policy alone"
        );
        let state = header(&r, "ratelimit").expect("RateLimit");
        assert!(
            state.starts_with(&format!("\"client\";r={left};t=")),
            "{state}"
        );
        let body: serde_json::Value = r.json().await.expect("JSON");
        assert!(body["data"].is_array(), "the connections keep their fields");
    }
    let r = call(&http, &url, UI_TOKEN).await;
    assert_eq!(r.status(), 429);
    assert!(header(&r, "retry-after").is_some());
    assert_eq!(
        header(&r, "ratelimit").as_deref(),
        Some("\"client\";r=0;t=1"),
        "over quota: nothing left, whole again within the window"
    );
    // Wait out the window (a second of real time: the quota runs on the machine's clock).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let r = call(&http, &url, UI_TOKEN).await;
    assert_eq!(r.status(), 200);
    assert!(
        header(&r, "ratelimit")
            .expect("RateLimit")
            .starts_with("\"client\";r=2;"),
        "the quota is whole again"
    );
    // Another caller's quota is its own.
    let r = call(&http, &url, ADMIN).await;
    assert_eq!(
        header(&r, "ratelimit-policy").as_deref(),
        Some("\"client\";q=100000;w=1")
    );
    // No caller, no quota to state.
    let r = call(&http, &url, "not-a-token").await;
    assert_eq!(r.status(), 401);
    assert_eq!(header(&r, "ratelimit"), None);
}

#[tokio::test]
async fn answers_that_reached_a_vendor_state_its_quota_and_others_do_not() {
    // PingBack and Octopush document no quota: give these two connections one.
    let env = Env::start_with(5, |config| {
        ["helpdesk-pingback", "sms"]
            .iter()
            .fold(config, |config, id| {
                config.replace(
                    &format!("id = \"{id}\"\n"),
                    &format!(
                        "id = \"{id}\"\nrate_limit = {{ requests = 1000, per_seconds = 60 }}\n"
                    ),
                )
            })
    })
    .await;
    for connection in [
        "shop-zipchat",
        "support-chatbotx",
        "helpdesk-pingback",
        "sms",
    ] {
        let before = env.sim_requests().await.values().sum::<u64>();
        let r = call(
            &env.http,
            &format!(
                "{}/v1/conversations?connection={connection}&limit=1",
                env.gateway
            ),
            ADMIN,
        )
        .await;
        assert_eq!(r.status(), 200, "{connection}");
        let after = env.sim_requests().await.values().sum::<u64>();
        assert!(after > before, "{connection}: the vendor was reached");
        let policy = header(&r, "ratelimit-policy").expect("RateLimit-Policy");
        let state = header(&r, "ratelimit").expect("RateLimit");
        let policies: Vec<&str> = policy.split(", ").collect();
        let states: Vec<&str> = state.split(", ").collect();
        assert_eq!(policies.len(), 2, "{connection}: {policy}");
        assert_eq!(policies[0], "\"client\";q=100000;w=1");
        let vendor = format!("\"{connection}\";");
        assert!(policies[1].starts_with(&vendor), "{policy}");
        assert!(states[1].starts_with(&vendor), "{state}");
        // Never more left than the quota states.
        let number = |field: &str, key: &str| -> u64 {
            field
                .split(';')
                .find_map(|p| p.strip_prefix(key))
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{key} in {field}"))
        };
        let (q, r) = (number(policies[1], "q="), number(states[1], "r="));
        assert!(r < q, "{connection}: one request taken: {policy} / {state}");
    }
    // Listing connections reaches no vendor: the caller's policy alone.
    let r = call(&env.http, &format!("{}/v1/connections", env.gateway), ADMIN).await;
    assert_eq!(
        header(&r, "ratelimit-policy").as_deref(),
        Some("\"client\";q=100000;w=1")
    );
}
