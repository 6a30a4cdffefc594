//! A slow traversal of the inbox reads each upstream page once: the pages a traversal reached are
//! kept for it in the store (`[server] traversal_ttl_secs`), so paging more slowly than the page
//! cache's TTL no longer re-reads every connection's current page on every page.
//!
//! The gateways run with their page cache off (`cache_ttl_ms = 0`), which is what a caller who
//! pages more slowly than the cache's 2 s gets: no test waits on a clock. The number of upstream
//! pages a traversal needs is measured by the same traversal through a gateway whose cache keeps
//! every page for an hour (each upstream page read exactly once). Requests are counted by the
//! simulators (`GET /_control`).

mod support;

use std::collections::{BTreeMap, BTreeSet};

use reqwest::Method;
use serde_json::{Value, json};
use support::{ADMIN, clients_toml, sim_requests_at, start_gateway, urlencode};
use switchboard_demo as registry;
use switchboard_sim::SimOptions;
use switchboard_testkit::{RedisServer, TempDir};

/// Conversations per simulated vendor: several upstream pages each.
const CONVERSATIONS: usize = 450;

/// The simulators, quotas lifted (a cache-off traversal must not be throttled by them).
struct Sims {
    url: String,
    http: reqwest::Client,
}

impl Sims {
    async fn start() -> Sims {
        let sim = registry::simulators(&SimOptions {
            seed: 11,
            conversations: CONVERSATIONS,
        });
        sim.lift_rate_limits();
        let addr = sim
            .spawn("127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("sim starts");
        Sims {
            url: format!("http://{addr}"),
            http: reqwest::Client::new(),
        }
    }

    /// Requests all simulated vendors received so far.
    async fn requests(&self) -> u64 {
        self.by_vendor().await.values().sum()
    }

    async fn by_vendor(&self) -> BTreeMap<String, u64> {
        sim_requests_at(&self.http, &self.url).await
    }

    /// A gateway config over every demo connection: `[server]` gets `server`, `[store]` `store`.
    fn config(&self, server: &str, store: &str) -> String {
        format!(
            "[server]\ncursor_secret = \"shared-secret\"\n{server}\n\n{store}\n\n{}{}",
            clients_toml(&self.url),
            registry::demo_config(&self.url)
        )
    }
}

/// One page of `GET /v1/conversations` from `gateway`.
async fn page(http: &reqwest::Client, gateway: &str, query: &str, cursor: Option<&str>) -> Value {
    let mut url = format!("{gateway}/v1/conversations?limit=50{query}");
    if let Some(c) = cursor {
        url.push_str(&format!("&cursor={}", urlencode(c)));
    }
    let response = http
        .get(&url)
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("gateway answers");
    assert_eq!(response.status(), 200, "{url}");
    let body: Value = response.json().await.expect("JSON page");
    assert_eq!(body["partial"], json!([]), "{url}: {body}");
    body
}

/// Pages the whole inbox, each page from the next gateway of `gateways` in turn (replicas behind
/// a round-robin balancer); returns the ids in order and the upstream requests it cost.
async fn traverse(sims: &Sims, gateways: &[String]) -> (Vec<String>, u64) {
    let before = sims.requests().await;
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    for n in 0..1000 {
        let gateway = &gateways[n % gateways.len()];
        let body = page(&sims.http, gateway, "", cursor.as_deref()).await;
        for c in body["data"].as_array().expect("data") {
            ids.push(c["id"].as_str().expect("id").to_owned());
        }
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return (ids, sims.requests().await - before),
        }
    }
    panic!("the traversal never ended");
}

/// The upstream pages a traversal of the inbox needs: the same traversal through a gateway that
/// caches every upstream page for an hour reads each one once.
async fn pages_needed(sims: &Sims) -> (Vec<String>, u64) {
    let gateway =
        start_gateway(&sims.config("cache_ttl_ms = 3600000\ntraversal_ttl_secs = 0", "")).await;
    let (ids, needed) = traverse(sims, &[gateway]).await;
    let distinct: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "a conversation came twice");
    assert!(ids.len() > 1000, "only {} conversations", ids.len());
    (ids, needed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_traversal_reads_each_upstream_page_about_once_with_every_store() {
    let sims = Sims::start().await;
    let (expected, needed) = pages_needed(&sims).await;

    // Without kept pages every page re-reads each connection's current upstream page.
    let stateless =
        start_gateway(&sims.config("cache_ttl_ms = 0\ntraversal_ttl_secs = 0", "")).await;
    let (ids, requests) = traverse(&sims, &[stateless]).await;
    eprintln!("{needed} upstream pages needed; without kept pages: {requests} requests");
    assert_eq!(ids, expected);
    assert!(
        requests * 10 > needed * 25,
        "a stateless cursor re-reads: {requests} requests for {needed} pages"
    );

    let dir = TempDir::new();
    let redis = RedisServer::start();
    let embedded = format!(
        "[store]\nkind = \"embedded\"\npath = \"{}\"",
        dir.path().join("store.redb").display()
    );
    let shared = format!(
        "[store]\nredis_url = \"{}\"\nkey_prefix = \"traversal:\"",
        redis.url()
    );
    let cache_off = "cache_ttl_ms = 0";
    let memory = vec![start_gateway(&sims.config(cache_off, "")).await];
    let embedded = vec![start_gateway(&sims.config(cache_off, &embedded)).await];
    // Two replicas over one Redis, taking pages in turn.
    let replicas = vec![
        start_gateway(&sims.config(cache_off, &shared)).await,
        start_gateway(&sims.config(cache_off, &shared)).await,
    ];
    for (store, gateways) in [
        ("memory", memory),
        ("embedded", embedded),
        ("redis, two replicas", replicas),
    ] {
        let (ids, requests) = traverse(&sims, &gateways).await;
        eprintln!("{store}: {requests} requests");
        assert_eq!(ids, expected, "{store}: every conversation once, in order");
        assert!(
            requests * 10 <= needed * 12,
            "{store}: {requests} upstream requests for a traversal that needs {needed} pages"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_through_the_gateway_is_read_by_its_writer_on_the_next_page() {
    let sims = Sims::start().await;
    let gateway = start_gateway(&sims.config("cache_ttl_ms = 0", "")).await;
    let http = &sims.http;
    let only = "&connection=shop-zipchat";
    let zipchat = || async { sims.by_vendor().await.get("zipchat").copied().unwrap_or(0) };

    // Zipchat pages 100 at a time: page 2 of 50 is the rest of the upstream page page 1 read,
    // so it costs no request.
    let first = page(http, &gateway, only, None).await;
    let before = zipchat().await;
    let second = page(http, &gateway, only, first["next_cursor"].as_str()).await;
    assert_eq!(zipchat().await, before, "page 2 came from the kept page");
    let cursor = second["next_cursor"].as_str().expect("more pages");
    assert!(!cursor.is_empty());

    // A new traversal up to the same point, then a write to a conversation its page 2 holds.
    let first = page(http, &gateway, only, None).await;
    let target = second["data"][10]["id"].as_str().expect("an id").to_owned();
    let (_, agents) = get(http, &gateway, "/v1/connections/shop-zipchat/agents").await;
    let agent = agents["data"][1]["id"].as_str().expect("agent").to_owned();
    let response = http
        .request(
            Method::PUT,
            format!("{gateway}/v1/conversations/{target}/assignment"),
        )
        .bearer_auth(ADMIN)
        .json(&json!({"assignee_id": agent}))
        .send()
        .await
        .expect("gateway answers");
    assert_eq!(response.status(), 200);
    let before = zipchat().await;
    let second = page(http, &gateway, only, first["next_cursor"].as_str()).await;
    assert!(
        zipchat().await > before,
        "after a write the connection's current page is read again"
    );
    if let Some(written) = second["data"]
        .as_array()
        .and_then(|d| d.iter().find(|c| c["id"] == target.as_str()))
    {
        assert_eq!(
            written["assignee"]["id"],
            agent.as_str(),
            "the writer reads its write"
        );
    }
}

async fn get(http: &reqwest::Client, gateway: &str, path: &str) -> (u16, Value) {
    let response = http
        .get(format!("{gateway}{path}"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("gateway answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_page_gets_the_same_conversations() {
    let sims = Sims::start().await;
    let gateway = start_gateway(&sims.config("cache_ttl_ms = 0", "")).await;
    let http = &sims.http;
    let ids = |body: &Value| -> Vec<String> {
        body["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|c| c["id"].as_str().expect("id").to_owned())
            .collect()
    };
    let mut cursor: Option<String> = None;
    for n in 1..=12 {
        let first = page(http, &gateway, "", cursor.as_deref()).await;
        let next = first["next_cursor"]
            .as_str()
            .expect("more pages")
            .to_owned();
        // The page after it is served, then the first answer is retried (as a client whose
        // connection dropped would, on another tab or after a timeout).
        page(http, &gateway, "", Some(&next)).await;
        let again = page(http, &gateway, "", cursor.as_deref()).await;
        assert_eq!(ids(&again), ids(&first), "page {n} retried");
        if n > 1 {
            // Page 1 starts a new traversal each time; a later page continues its own.
            assert_eq!(
                again["next_cursor"], first["next_cursor"],
                "page {n} retried"
            );
        }
        cursor = Some(next);
    }
}
