//! Faults contained in milliseconds: an open breaker and a closed vendor window fail fast, a slow
//! vendor costs an inbox page its deadline and no more, a breaker can never be stuck half-open,
//! vendor answers are capped.
//!
//! No test asserts a time. Each makes the wrong behaviour impossible to finish instead: breakers
//! cool down for ten minutes, vendors hang for an hour, and connections wait an hour for their
//! vendor, so a call that waited on any of them would hang the test.

mod support;

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use support::{ADMIN, Env};

/// Zipchat's connection waits an hour for its vendor, and breakers open after `failures` and
/// cool down for ten minutes; inbox pages wait 1 s for a slow connection.
fn patient_vendor_impatient_breaker(failures: u32) -> impl FnOnce(String) -> String {
    move |config: String| {
        let config = config.replacen(
            "provider = \"zipchat\"\n",
            "provider = \"zipchat\"\ntimeout_secs = 3600\n",
            1,
        );
        format!(
            "[server]\nbreaker = {{ failures = {failures}, cooldown_secs = 600 }}\npage_deadline_ms = 1000\n\n{config}"
        )
    }
}

async fn first_zipchat_id(env: &Env) -> String {
    let (status, page) = env
        .get(ADMIN, "/v1/conversations?connection=shop-zipchat&limit=1")
        .await;
    assert_eq!(status, 200, "{page}");
    page["data"][0]["id"]
        .as_str()
        .expect("a zipchat conversation")
        .to_owned()
}

/// Reads conversation `id`, expecting `status` with problem `code`; returns its `Retry-After`.
async fn answered_at_once(env: &Env, id: &str, status: u16, code: &str) -> u64 {
    let r = env
        .http
        .get(format!("{}/v1/conversations/{id}", env.gateway))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("gateway answers");
    assert_eq!(r.status(), status);
    let retry_after = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    let problem: Value = r.json().await.expect("problem");
    assert_eq!(problem["code"], code, "{problem}");
    retry_after
}

fn partial_of(page: &Value, connection: &str) -> Option<String> {
    page["partial"]
        .as_array()?
        .iter()
        .find(|p| p["connection"] == connection)
        .and_then(|p| p["code"].as_str())
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_breaker_answers_at_once_without_a_vendor_request() {
    let env = Env::start_with(10, patient_vendor_impatient_breaker(1)).await;
    let id = first_zipchat_id(&env).await;
    env.faults("zipchat", json!({"error_rate": 1.0, "error_status": 500}))
        .await;
    // The failure that opens the breaker.
    let (status, problem) = env.get(ADMIN, &format!("/v1/conversations/{id}")).await;
    assert_eq!(status, 502, "{problem}");

    let before = env.sim_requests().await["zipchat"];
    for _ in 0..10 {
        let retry_after = answered_at_once(&env, &id, 502, "upstream_circuit_open").await;
        assert!(
            retry_after > 60,
            "the cooldown is ten minutes: {retry_after}"
        );
    }
    // A write fails fast too, and is not sent.
    let (status, problem) = env
        .send(
            Method::POST,
            ADMIN,
            &format!("/v1/conversations/{id}/messages"),
            json!({"text": "hello"}),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (502, Some("upstream_circuit_open"))
    );
    assert_eq!(
        env.sim_requests().await["zipchat"],
        before,
        "an open breaker sends the vendor nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_vendor_failing_hanging_or_rate_limited_leaves_the_inbox_usable() {
    let cases = [
        (
            json!({"error_rate": 1.0, "error_status": 503}),
            ["upstream_unavailable", "upstream_circuit_open"],
        ),
        (
            json!({"latency_ms": 3_600_000}),
            ["upstream_timeout", "upstream_circuit_open"],
        ),
        (
            json!({"rate_limit_rate": 1.0, "retry_after_secs": 3600}),
            ["upstream_rate_limited", "upstream_rate_limited"],
        ),
    ];
    for (faults, [first_code, later_code]) in cases {
        let env = Env::start_with(30, patient_vendor_impatient_breaker(2)).await;
        env.faults("zipchat", faults.clone()).await;
        let mut codes = Vec::new();
        // Pages an inbox shows on each refresh, then a traversal two pages deep.
        for _ in 0..6 {
            let (status, page) = env.get(ADMIN, "/v1/conversations?limit=20").await;
            assert_eq!(status, 200, "{faults}: {page}");
            let data = page["data"].as_array().expect("data");
            assert!(!data.is_empty(), "{faults}: the healthy vendors are served");
            assert!(data.iter().all(|c| c["provider"] != "zipchat"));
            codes.push(partial_of(&page, "shop-zipchat").expect("zipchat named in partial"));
        }
        let (_, page) = env.get(ADMIN, "/v1/conversations?limit=20").await;
        let cursor = page["next_cursor"].as_str().expect("more pages").to_owned();
        let (status, next) = env
            .get(
                ADMIN,
                &format!(
                    "/v1/conversations?limit=20&cursor={}",
                    support::urlencode(&cursor)
                ),
            )
            .await;
        assert_eq!(status, 200, "{faults}: {next}");
        codes.push(partial_of(&next, "shop-zipchat").expect("zipchat named on page 2"));
        assert_eq!(codes[0], first_code, "{faults}: {codes:?}");
        assert_eq!(
            codes.last().map(String::as_str),
            Some(later_code),
            "{faults}: {codes:?}"
        );
        if faults.get("rate_limit_rate").is_some() {
            // The window is known to be closed: the vendor heard one request per Zipchat
            // connection (the admin sees two), not one a page.
            assert_eq!(env.sim_requests().await["zipchat"], 2, "{faults}");
        }
    }
}

async fn breaker_of(env: &Env, connection: &str) -> String {
    let (_, list) = env.get(ADMIN, "/v1/connections").await;
    list["data"]
        .as_array()
        .and_then(|l| l.iter().find(|c| c["id"] == connection))
        .and_then(|c| c["health"]["breaker"].as_str())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_cut_by_its_caller_does_not_leave_the_breaker_half_open() {
    let env = Env::start_with(10, |config| {
        let config = config.replacen(
            "provider = \"zipchat\"\n",
            "provider = \"zipchat\"\ntimeout_secs = 3600\n",
            1,
        );
        format!("[server]\nbreaker = {{ failures = 1, cooldown_secs = 1 }}\n\n{config}")
    })
    .await;
    let id = first_zipchat_id(&env).await;
    env.faults("zipchat", json!({"error_rate": 1.0})).await;
    let (status, _) = env.get(ADMIN, &format!("/v1/conversations/{id}")).await;
    assert_eq!(status, 502);
    // The vendor now hangs; once the cooldown is over, the next call is the probe, and its
    // caller gives up on it (`curl -m`).
    env.faults("zipchat", json!({"latency_ms": 3_600_000}))
        .await;
    let mut half_open = false;
    for _ in 0..100 {
        if breaker_of(&env, "shop-zipchat").await == "half_open" {
            half_open = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(half_open, "the cooldown never ended");
    let cut = env
        .http
        .get(format!("{}/v1/conversations/{id}", env.gateway))
        .bearer_auth(ADMIN)
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(cut.is_err(), "the probe was cut by its caller");
    // The vendor recovers: a later call probes again and closes the breaker.
    env.faults("zipchat", json!({})).await;
    let mut served = false;
    for _ in 0..50 {
        let (status, _) = env.get(ADMIN, &format!("/v1/conversations/{id}")).await;
        if status == 200 {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served, "the breaker stayed stuck after a cancelled probe");
    assert_eq!(breaker_of(&env, "shop-zipchat").await, "closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vendor_answer_over_the_cap_is_refused_unread_and_never_cached() {
    let env = Env::start(10).await;
    let id = first_zipchat_id(&env).await;
    for without_length in [false, true] {
        env.faults(
            "zipchat",
            json!({"oversized_body_bytes": 200_000_000u64, "oversized_without_length": without_length}),
        )
        .await;
        let (status, problem) = env.get(ADMIN, &format!("/v1/conversations/{id}")).await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (502, Some("upstream_response_too_large")),
            "{problem}"
        );
        // (`updated_since` makes it another upstream page than the one read before the fault.)
        let (status, page) = env
            .get(
                ADMIN,
                "/v1/conversations?connection=shop-zipchat,sms&limit=5&updated_since=2001-01-01T00:00:00Z",
            )
            .await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(
            partial_of(&page, "shop-zipchat").as_deref(),
            Some("upstream_response_too_large")
        );
    }
    let report = support::sim_report(&env.http, &env.sim_url).await;
    let sent = report["oversized_bytes_sent"].as_u64().expect("counter");
    // Four 200 MB answers were started; the gateway stopped reading each at its 8 MiB cap.
    assert!(
        sent < 4 * 24 * 1024 * 1024,
        "the gateway read {sent} bytes of oversized answers"
    );
    // Nothing was cached: the healthy answer comes from the vendor.
    env.faults("zipchat", json!({})).await;
    let before = env.sim_requests().await["zipchat"];
    let (status, conversation) = env.get(ADMIN, &format!("/v1/conversations/{id}")).await;
    assert_eq!(status, 200, "{conversation}");
    assert!(env.sim_requests().await["zipchat"] > before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_vendor_window_answers_every_caller_at_once() {
    let env = Env::start_with(10, patient_vendor_impatient_breaker(5)).await;
    let id = first_zipchat_id(&env).await;
    env.faults(
        "zipchat",
        json!({"rate_limit_rate": 1.0, "retry_after_secs": 3600}),
    )
    .await;
    let before = env.sim_requests().await["zipchat"];
    for _ in 0..10 {
        let retry_after = answered_at_once(&env, &id, 503, "upstream_rate_limited").await;
        assert!(
            retry_after > 60,
            "the vendor asked for an hour: {retry_after}"
        );
    }
    assert_eq!(
        env.sim_requests().await["zipchat"] - before,
        1,
        "one 429, then nothing until the window reopens"
    );
}
