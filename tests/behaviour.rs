//! One behaviour suite, run against every vendor adapter through its simulator, over HTTP through
//! the gateway. Each case runs where the connection's capabilities allow it; where they do not,
//! the suite asserts the clear 501 naming the operation. The vendors are the registry's table: a
//! new vendor gets the whole suite without a line here.

mod support;

use std::collections::HashSet;

use reqwest::Method;
use serde_json::{Value, json};
use support::{ADMIN, Env};
use switchboard_demo::VENDORS;

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_default()
}

async fn capabilities(env: &Env, connection: &str) -> Value {
    let (status, list) = env.get(ADMIN, "/v1/connections").await;
    assert_eq!(status, 200);
    list["data"]
        .as_array()
        .and_then(|l| l.iter().find(|c| c["id"] == connection))
        .map(|c| c["capabilities"].clone())
        .unwrap_or_else(|| panic!("connection {connection} is listed"))
}

fn expect_unsupported(status: u16, problem: &Value, operation: &str) {
    assert_eq!(status, 501, "{operation}: {problem}");
    assert_eq!(problem["code"], "unsupported_operation");
    assert_eq!(problem["operation"], operation);
}

/// Runs every case for `connection`, whose simulator holds exactly `expected` conversations.
async fn behaviour_suite(env: &Env, connection: &str, expected: HashSet<String>) {
    let caps = capabilities(env, connection).await;

    // Page through everything: each conversation exactly once, newest first.
    let items = env
        .page_all(
            ADMIN,
            &format!("/v1/conversations?connection={connection}&limit=13"),
        )
        .await;
    let ids: Vec<&str> = items.iter().map(|c| str_of(c, "id")).collect();
    let unique: HashSet<String> = ids.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(
        ids.len(),
        unique.len(),
        "{connection}: a conversation came twice"
    );
    assert_eq!(
        unique, expected,
        "{connection}: not every conversation came"
    );
    let times: Vec<&str> = items
        .iter()
        .map(|c| str_of(c, "last_activity_at"))
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "{connection}: not newest first"
    );
    for c in &items {
        assert_eq!(c["connection"], connection);
        assert!(str_of(c, "id").starts_with(&format!("{connection}:")));
    }

    // The vendor's own JSON only when asked for.
    assert!(items.iter().all(|c| c.get("raw").is_none()));
    let (_, with_raw) = env
        .get(
            ADMIN,
            &format!("/v1/conversations?connection={connection}&limit=5&include=raw"),
        )
        .await;
    let with_raw = with_raw["data"].as_array().cloned().unwrap_or_default();
    assert!(
        !with_raw.is_empty() && with_raw.iter().all(|c| c["raw"].is_object()),
        "{connection}: include=raw"
    );

    // Read one.
    let target = items[0].clone();
    let id = str_of(&target, "id").to_owned();
    let (status, one) = env.get(ADMIN, &format!("/v1/conversations/{id}")).await;
    assert_eq!(status, 200, "{connection}: {one}");
    assert_eq!(one["id"], id.as_str());
    assert_eq!(one["native_id"], target["native_id"]);

    // Messages, newest first, across pages.
    let messages = env
        .page_all(ADMIN, &format!("/v1/conversations/{id}/messages?limit=3"))
        .await;
    assert!(!messages.is_empty(), "{connection}: no messages");
    let times: Vec<&str> = messages.iter().map(|m| str_of(m, "created_at")).collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "{connection}: messages not newest first"
    );
    assert!(messages.iter().all(|m| m["conversation_id"] == id.as_str()));
    let message_ids: HashSet<&str> = messages.iter().map(|m| str_of(m, "id")).collect();
    assert_eq!(
        message_ids.len(),
        messages.len(),
        "{connection}: a message came twice"
    );

    let (_, raw_messages) = env
        .get(
            ADMIN,
            &format!("/v1/conversations/{id}/messages?limit=3&include=raw"),
        )
        .await;
    let raw_messages = raw_messages["data"].as_array().cloned().unwrap_or_default();
    assert!(
        raw_messages.iter().all(|m| m["raw"].is_object()),
        "{connection}: messages include=raw"
    );

    // Agents.
    let (status, agents) = env
        .get(ADMIN, &format!("/v1/connections/{connection}/agents"))
        .await;
    let agent = if caps["list_agents"] == true {
        assert_eq!(status, 200, "{connection}: {agents}");
        let first = agents["data"][0]["id"].as_str().map(str::to_owned);
        assert!(first.is_some(), "{connection}: no agents");
        first
    } else {
        expect_unsupported(status, &agents, "list_agents");
        None
    };

    // Take over.
    let assignment = format!("/v1/conversations/{id}/assignment");
    let assignee = agent.clone().unwrap_or_else(|| format!("{connection}:1"));
    let (status, taken) = env
        .send(
            Method::PUT,
            ADMIN,
            &assignment,
            json!({"assignee_id": assignee}),
        )
        .await;
    if caps["assign"] == true {
        assert_eq!(status, 200, "{connection}: {taken}");
        assert_eq!(taken["assignee"]["id"], assignee.as_str());
        if !taken["mode"].is_null() {
            assert_eq!(taken["mode"], "human");
        }
    } else {
        expect_unsupported(status, &taken, "assign");
    }

    // Reply, and read the reply back.
    let text = format!("Behaviour suite reply on {connection} — ça marche ✓");
    let (status, sent) = env
        .send(
            Method::POST,
            ADMIN,
            &format!("/v1/conversations/{id}/messages"),
            json!({"text": text}),
        )
        .await;
    if caps["send_message"] == true {
        assert_eq!(status, 201, "{connection}: {sent}");
        assert_eq!(sent["text"], text.as_str());
        assert_eq!(sent["direction"], "outbound");
        let (_, newest) = env
            .get(ADMIN, &format!("/v1/conversations/{id}/messages?limit=5"))
            .await;
        let newest = newest["data"].as_array().cloned().unwrap_or_default();
        assert!(
            newest
                .iter()
                .any(|m| m["id"] == sent["id"] && m["text"] == text.as_str()),
            "{connection}: the reply is not among the newest messages"
        );
    } else {
        expect_unsupported(status, &sent, "send_message");
    }

    // Hand back.
    let (status, back) = env
        .send(
            Method::PUT,
            ADMIN,
            &assignment,
            json!({"assignee_id": null}),
        )
        .await;
    if caps["unassign"] == true {
        assert_eq!(status, 200, "{connection}: {back}");
        assert!(back["assignee"].is_null());
        if !back["mode"].is_null() {
            assert_eq!(back["mode"], "ai");
        }
    } else {
        expect_unsupported(status, &back, "unassign");
    }

    // Resolve.
    let (status, resolved) = env
        .send(
            Method::PUT,
            ADMIN,
            &format!("/v1/conversations/{id}/status"),
            json!({"status": "resolved"}),
        )
        .await;
    let can_resolve = caps["set_status"]
        .as_array()
        .is_some_and(|s| s.contains(&json!("resolved")));
    if can_resolve {
        assert_eq!(status, 200, "{connection}: {resolved}");
        assert_eq!(resolved["status"], "resolved");
        let (_, again) = env.get(ADMIN, &format!("/v1/conversations/{id}")).await;
        assert_eq!(again["status"], "resolved");
    } else {
        expect_unsupported(status, &resolved, "set_status");
    }

    // An unknown conversation is a 404, not a vendor error.
    let (status, problem) = env
        .get(ADMIN, &format!("/v1/conversations/{connection}:999999999"))
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (404, Some("not_found")),
        "{connection}"
    );
}

fn prefixed(connection: &str, ids: impl IntoIterator<Item = impl ToString>) -> HashSet<String> {
    ids.into_iter()
        .map(|id| format!("{connection}:{}", id.to_string()))
        .collect()
}

/// Every vendor of the registry's table, through its demo connection to its simulator, whose
/// account lists exactly the conversations the simulator says (e.g. ChatbotX hides those of
/// blocked contacts).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_vendor_behaves_as_its_capabilities_say() {
    let env = Env::start(60).await;
    let suites = VENDORS.iter().map(|vendor| {
        let connection = vendor.demo_connection;
        let (_, simulated) = env.simulated(connection);
        let expected = prefixed(connection, simulated.listed_conversations());
        behaviour_suite(&env, connection, expected)
    });
    futures::future::join_all(suites).await;
}
