//! Page 1 of the merged inbox as connections grow: each connection costs the upstream calls its
//! vendor needs for its first page and nothing more, however many connections share the page.
//! With 4 connections (one per vendor) page 1 costs Zipchat 1, ChatbotX 2 (open and archived
//! lists), PingBack 1 and Octopush 1 (its list, of no documented order, read a page at a time
//! while it comes newest first); with 8 copies of each connection, exactly 8 times that. An
//! Octopush list seen out of activity order costs its connection's window from then on. Counted
//! by the simulators (`GET /_control`), with the page cache off so every page 1 reads its
//! vendors, after a first page 1 has signed in (PingBack's login is not part of a page's cost).

mod support;

use std::collections::BTreeMap;

use serde_json::{Value, json};
use support::{ADMIN, Env, metrics_text, sha, start_gateway};
use switchboard_demo as registry;
use switchboard_sim::octopush::{self, ListOrder};

/// The upstream calls of page 1 for one connection of each vendor.
fn one_of_each() -> BTreeMap<String, u64> {
    [
        ("chatbotx", 2),
        ("octopush", 1),
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

/// Whether `items` go newest first, by time (the gateway writes as few fraction digits as a time
/// needs, so the texts do not sort as the times do).
fn newest_first(items: &[Value]) -> bool {
    let at = |c: &Value| {
        c["last_activity_at"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
    };
    items
        .windows(2)
        .all(|w| at(&w[0]).is_some() && at(&w[0]) >= at(&w[1]))
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
        assert!(newest_first(&items), "page 1 is merged newest first");
    }
}

/// An Octopush list in another order than by activity is found out by the first page that reads
/// it, and from then on read in its connection's window and sorted: page 1 then shows the
/// connection's newest conversations, at the window's cost. Those of a list in activity order
/// cost one call a page however often it is read (the first test).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_octopush_list_out_of_activity_order_is_read_in_its_connections_window() {
    let mut env = Env::simulators(29, 300).await;
    env.sim.lift_rate_limits();
    let world = env
        .sim
        .world::<octopush::World>()
        .expect("the simulators run Octopush");
    let newest_activity: Vec<String> = {
        let mut world = world.lock().expect("world");
        let by_activity = world.conversation_ids();
        world.set_list_order(ListOrder::Started);
        assert_ne!(
            world.conversation_ids()[..100],
            by_activity[..100],
            "the first list page is in another order"
        );
        by_activity
    };
    // 300 conversations: a window of 3 pages holds them all, so its order is exact.
    let config = config(&env.sim_url, 1).replace(
        "provider = \"octopush\"\n",
        "provider = \"octopush\"\nsort_window_pages = 3\n",
    );
    assert!(config.contains("sort_window_pages = 3"), "{config}");
    env.gateway = start_gateway(&config).await;

    let (_, first) = page_one(&env).await;
    assert_eq!(
        first["octopush"], 1,
        "the first read is one page: {first:?}"
    );
    let (items, calls) = page_one(&env).await;
    let mut expected = one_of_each();
    expected.insert("octopush".to_owned(), 3);
    assert_eq!(calls, expected, "once out of order, the window");
    assert_eq!(items.len(), 50);
    assert!(newest_first(&items), "page 1 is merged newest first");
    let octopush: Vec<&str> = items
        .iter()
        .filter(|c| c["provider"] == "octopush")
        .filter_map(|c| c["native_id"].as_str())
        .collect();
    assert!(!octopush.is_empty(), "Octopush's newest are on page 1");
    assert_eq!(
        octopush,
        newest_activity[..octopush.len()],
        "the connection's newest conversations, in order"
    );

    // Operators see it: the pages read out of order, by connection.
    let metrics = metrics_text(&env.http, &env.gateway).await;
    let out_of_order: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("switchboard_inbox_pages_out_of_order_total{"))
        .collect();
    let connection = items
        .iter()
        .find(|c| c["provider"] == "octopush")
        .and_then(|c| c["connection"].as_str())
        .expect("an Octopush conversation names its connection");
    assert_eq!(
        out_of_order,
        [format!(
            "switchboard_inbox_pages_out_of_order_total{{connection=\"{connection}\"}} 1"
        )],
        "its one page read out of order, counted for it alone"
    );
}
