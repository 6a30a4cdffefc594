//! Page 1 of the merged inbox as connections grow: each connection costs the upstream calls its
//! vendor needs for its first page and nothing more, however many connections share the page.
//! With 4 connections (one per vendor) page 1 costs Zipchat 1, ChatbotX 2 (open and archived
//! lists), PingBack 1 and Octopush 10 (its unsorted list read as one window of 10 pages); with 8
//! copies of each connection, exactly 8 times that. Counted by the simulators (`GET /_control`),
//! with the page cache off so every page 1 reads its vendors, after a first page 1 has signed in
//! (PingBack's login is not part of a page's cost).

mod support;

use std::collections::BTreeMap;

use serde_json::{Value, json};
use support::{ADMIN, Env, sha, start_gateway};
use switchboard_demo as registry;

/// The upstream calls of page 1 for one connection of each vendor.
fn one_of_each() -> BTreeMap<String, u64> {
    [
        ("chatbotx", 2),
        ("octopush", 10),
        ("pingback", 1),
        ("zipchat", 1),
    ]
    .into_iter()
    .map(|(vendor, calls)| (vendor.to_owned(), calls))
    .collect()
}

/// The demo's connections, `copies` times each (ids suffixed `-1`, `-2`, …).
fn connections(sim_url: &str, copies: usize) -> String {
    let demo = registry::demo_config(sim_url);
    let mut out = String::new();
    for section in demo.split("[[connections]]\n").skip(1) {
        let (id_line, rest) = section
            .split_once('\n')
            .expect("a section starts with its id");
        let id = id_line
            .strip_prefix("id = \"")
            .and_then(|id| id.strip_suffix('"'))
            .expect("the id comes first");
        for k in 1..=copies {
            out.push_str(&format!("[[connections]]\nid = \"{id}-{k}\"\n{rest}\n"));
        }
    }
    out
}

/// A gateway config over `copies` copies of every demo connection, cache off, quotas out of the
/// way.
fn config(sim_url: &str, copies: usize) -> String {
    let token_sha256 = sha(ADMIN);
    format!(
        "[server]\ncache_ttl_ms = 0\n\n\
         [[clients]]\nname = \"admin\"\ntoken_sha256 = \"{token_sha256}\"\nscopes = [\"read\"]\n\
         rate_limit = {{ requests = 100000, per_seconds = 1 }}\n\n{}",
        connections(sim_url, copies)
    )
}

/// Page 1 (`limit=50`) through the gateway: its conversations, and the upstream calls it cost
/// by vendor.
async fn page_one(env: &Env) -> (Vec<Value>, BTreeMap<String, u64>) {
    let before = env.sim_requests().await;
    let (status, page) = env.get(ADMIN, "/v1/conversations?limit=50").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["partial"], json!([]), "{page}");
    let calls = env
        .sim_requests()
        .await
        .into_iter()
        .map(|(vendor, n)| {
            let spent = n - before.get(&vendor).copied().unwrap_or(0);
            (vendor, spent)
        })
        .collect();
    (page["data"].as_array().expect("data").clone(), calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_one_costs_each_connection_its_vendors_first_page_and_nothing_more() {
    let mut env = Env::simulators(23, 300).await;
    env.sim.lift_rate_limits();
    for copies in [1, 8] {
        env.gateway = start_gateway(&config(&env.sim_url, copies)).await;
        page_one(&env).await; // signs in
        let (items, calls) = page_one(&env).await;
        let expected: BTreeMap<String, u64> = one_of_each()
            .into_iter()
            .map(|(vendor, calls)| (vendor, calls * copies as u64))
            .collect();
        assert_eq!(calls, expected, "page 1 over {} connections", 4 * copies);
        assert_eq!(
            items.len(),
            50,
            "a full page over {} connections",
            4 * copies
        );
        let newest_first = items
            .windows(2)
            .all(|w| w[0]["last_activity_at"].as_str() >= w[1]["last_activity_at"].as_str());
        assert!(newest_first, "page 1 is merged newest first");
    }
}
