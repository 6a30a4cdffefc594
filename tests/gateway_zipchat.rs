//! Zipchat end to end: a caller talks to the gateway over HTTP, the gateway to the Zipchat
//! simulator.

mod support;

use std::collections::HashSet;

use reqwest::Method;
use serde_json::{Value, json};
use support::{ADMIN, Env, OUTSIDER, READER};
use switchboard_demo as registry;
use switchboard_sim::zipchat;

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|c| c["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn pages_through_the_whole_inbox_exactly_once_in_order() {
    let env = Env::start(130).await;
    let expected: HashSet<String> = {
        let world = env.sim.world::<zipchat::World>().expect("zipchat runs");
        let world = world.lock().expect("sim");
        let shop = world
            .conversation_ids(1)
            .into_iter()
            .map(|id| format!("shop-zipchat:{id}"));
        let outlet = world
            .conversation_ids(2)
            .into_iter()
            .map(|id| format!("elsewhere:{id}"));
        shop.chain(outlet).collect()
    };
    for limit in [1, 7, 50, 100] {
        if limit == 1 {
            // Page size 1 over 130 items is slow but real; check only the first few pages.
            let (status, body) = env
                .get(ADMIN, "/v1/conversations?provider=zipchat&limit=1")
                .await;
            assert_eq!(status, 200);
            assert_eq!(body["data"].as_array().map(Vec::len), Some(1));
            continue;
        }
        let items = env
            .page_all(
                ADMIN,
                &format!("/v1/conversations?provider=zipchat&limit={limit}"),
            )
            .await;
        let got = ids(&items);
        let unique: HashSet<String> = got.iter().cloned().collect();
        assert_eq!(got.len(), unique.len(), "duplicates at limit {limit}");
        assert_eq!(unique, expected, "limit {limit}");
        let times: Vec<&str> = items
            .iter()
            .map(|c| c["last_activity_at"].as_str().unwrap_or_default())
            .collect();
        assert!(
            times.windows(2).all(|w| w[0] >= w[1]),
            "not newest first at limit {limit}"
        );
    }
}

#[tokio::test]
async fn reads_one_conversation_its_messages_and_agents() {
    let env = Env::start(20).await;
    let (_, page) = env
        .get(ADMIN, "/v1/conversations?provider=zipchat&limit=1")
        .await;
    let id = page["data"][0]["id"].as_str().expect("an id").to_owned();
    let (status, conversation) = env.get(ADMIN, &format!("/v1/conversations/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(conversation["id"], id.as_str());
    assert_eq!(conversation["provider"], "zipchat");
    assert!(conversation.get("raw").is_none());
    let (_, with_raw) = env
        .get(ADMIN, &format!("/v1/conversations/{id}?include=raw"))
        .await;
    assert!(with_raw["raw"]["conversation"].is_object());

    let messages = env
        .page_all(ADMIN, &format!("/v1/conversations/{id}/messages?limit=2"))
        .await;
    assert!(!messages.is_empty());
    let times: Vec<&str> = messages
        .iter()
        .map(|m| m["created_at"].as_str().unwrap_or_default())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "messages not newest first: {times:?}"
    );
    assert!(messages.iter().all(|m| m["conversation_id"] == id.as_str()));

    let (status, agents) = env.get(ADMIN, "/v1/connections/shop-zipchat/agents").await;
    assert_eq!(status, 200);
    assert_eq!(agents["data"].as_array().map(Vec::len), Some(4));
    assert!(
        agents["data"][0]["id"]
            .as_str()
            .is_some_and(|a| a.starts_with("shop-zipchat:"))
    );
}

#[tokio::test]
async fn takes_over_replies_reads_back_hands_back() {
    let env = Env::start(40).await;
    // The newest web conversation in AI mode: replies there are not blocked by the 24-hour rule.
    let items = env
        .page_all(
            ADMIN,
            "/v1/conversations?provider=zipchat&limit=100&mode=ai&channel=web",
        )
        .await;
    assert!(!items.is_empty());
    assert!(
        items
            .iter()
            .all(|c| c["mode"] == "ai" && c["channel"] == "web")
    );
    let id = items[0]["id"].as_str().expect("id").to_owned();

    // In AI mode a reply is a clear 409.
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
        (409, Some("conversation_in_ai_mode")),
        "{problem}"
    );

    let (_, agents) = env.get(ADMIN, "/v1/connections/shop-zipchat/agents").await;
    let agent = agents["data"][1]["id"].as_str().expect("agent").to_owned();
    let (status, taken) = env
        .send(
            Method::PUT,
            ADMIN,
            &format!("/v1/conversations/{id}/assignment"),
            json!({"assignee_id": agent}),
        )
        .await;
    assert_eq!(status, 200, "{taken}");
    assert_eq!(taken["mode"], "human");
    assert_eq!(taken["assignee"]["id"], agent.as_str());

    let text = "Bonjour ! Un humain vous répond 👋";
    let (status, sent) = env
        .send(
            Method::POST,
            ADMIN,
            &format!("/v1/conversations/{id}/messages"),
            json!({"text": text}),
        )
        .await;
    assert_eq!(status, 201, "{sent}");
    assert_eq!(sent["text"], text);
    assert_eq!(sent["author"], "agent");
    assert_eq!(sent["sender"]["id"], agent.as_str());

    let (_, messages) = env
        .get(ADMIN, &format!("/v1/conversations/{id}/messages?limit=5"))
        .await;
    assert_eq!(
        messages["data"][0]["id"], sent["id"],
        "the reply is the newest message"
    );
    assert_eq!(messages["data"][0]["text"], text);

    let (status, back) = env
        .send(
            Method::PUT,
            ADMIN,
            &format!("/v1/conversations/{id}/assignment"),
            json!({"assignee_id": null}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(back["mode"], "ai");
    assert!(back["assignee"].is_null());
    let (status, problem) = env
        .send(
            Method::POST,
            ADMIN,
            &format!("/v1/conversations/{id}/messages"),
            json!({"text": "again"}),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("conversation_in_ai_mode"))
    );

    // The inbox shows the reply's activity: the conversation is now first.
    let (_, page) = env
        .get(ADMIN, "/v1/conversations?provider=zipchat&limit=1")
        .await;
    assert_eq!(page["data"][0]["id"], id.as_str());
}

#[tokio::test]
async fn rejects_bad_callers_with_problems() {
    let env = Env::start(5).await;
    let r = env
        .http
        .get(format!("{}/v1/conversations", env.gateway))
        .send()
        .await
        .expect("answers");
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("www-authenticate").is_some());
    let (status, problem) = env.get("wrong-token", "/v1/conversations").await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (401, Some("unauthenticated"))
    );

    let (_, page) = env
        .get(ADMIN, "/v1/conversations?provider=zipchat&limit=1")
        .await;
    let id = page["data"][0]["id"].as_str().expect("id").to_owned();
    let (status, problem) = env
        .send(
            Method::PUT,
            READER,
            &format!("/v1/conversations/{id}/assignment"),
            json!({"assignee_id": null}),
        )
        .await;
    assert_eq!((status, problem["code"].as_str()), (403, Some("forbidden")));

    // A conversation on a connection the caller may not see is 404, exactly like a missing one.
    let (status, hidden) = env.get(OUTSIDER, &format!("/v1/conversations/{id}")).await;
    let (status_missing, missing) = env.get(OUTSIDER, "/v1/conversations/nope:1").await;
    assert_eq!((status, status_missing), (404, 404));
    assert_eq!(hidden["code"], missing["code"]);
    let (status, _) = env
        .get(OUTSIDER, "/v1/connections/shop-zipchat/agents")
        .await;
    assert_eq!(status, 404);
    let (_, connections) = env.get(OUTSIDER, "/v1/connections").await;
    assert_eq!(
        ids(connections["data"].as_array().expect("list")),
        ["elsewhere"]
    );
}

#[tokio::test]
async fn rejects_bad_input_naming_the_parameter() {
    let env = Env::start(30).await;
    let cases = [
        (
            "/v1/conversations?updated_since=yesterday",
            422,
            "invalid_updated_since",
        ),
        ("/v1/conversations?limit=0", 422, "invalid_limit"),
        ("/v1/conversations?status=", 422, "invalid_status"),
        (
            "/v1/conversations?provider=zipchat,",
            422,
            "invalid_provider",
        ),
        ("/v1/conversations?limit=101", 422, "invalid_limit"),
        ("/v1/conversations?status=stuck", 422, "invalid_status"),
        ("/v1/conversations?mode=robot", 422, "invalid_mode"),
        (
            "/v1/conversations?connection=ghost",
            422,
            "invalid_connection",
        ),
        ("/v1/conversations?stauts=open", 422, "invalid_parameter"),
        ("/v1/conversations?cursor=garbage", 400, "invalid_cursor"),
        ("/v1/conversations/no-colon", 400, "invalid_id"),
        ("/v1/conversations/shop-zipchat:999999999", 404, "not_found"),
        ("/v1/conversations/shop-zipchat:abc", 404, "not_found"),
        ("/v1/conversations/ghost:1", 404, "not_found"),
        ("/v1/nothing-here", 404, "not_found"),
    ];
    for (path, status, code) in cases {
        let (got, problem) = env.get(ADMIN, path).await;
        assert_eq!(
            (got, problem["code"].as_str()),
            (status, Some(code)),
            "{path}: {problem}"
        );
        assert_eq!(problem["status"], status);
    }
    let (_, problem) = env
        .get(ADMIN, "/v1/conversations?updated_since=yesterday")
        .await;
    assert_eq!(problem["parameter"], "updated_since");

    let (_, page) = env
        .get(ADMIN, "/v1/conversations?provider=zipchat&limit=1")
        .await;
    let id = page["data"][0]["id"].as_str().expect("id").to_owned();
    let (status, problem) = env
        .send(
            Method::PUT,
            ADMIN,
            &format!("/v1/conversations/{id}/status"),
            json!({"status": "resolved"}),
        )
        .await;
    assert_eq!(
        (status, problem["operation"].as_str()),
        (501, Some("set_status")),
        "{problem}"
    );
    let writes = [
        (
            Method::PUT,
            "assignment",
            json!({"assignee": null}),
            "invalid_body",
        ),
        (
            Method::PUT,
            "assignment",
            json!({"assignee_id": "shop-zipchat:424242"}),
            "invalid_assignee",
        ),
        (
            Method::POST,
            "messages",
            json!({"text": "  "}),
            "invalid_text",
        ),
    ];
    for (method, route, body, code) in writes {
        let path = format!("/v1/conversations/{id}/{route}");
        let (status, problem) = env.send(method, ADMIN, &path, body).await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (422, Some(code)),
            "{path}: {problem}"
        );
    }
}

#[tokio::test]
async fn cursors_cannot_be_tampered_with_or_reused_elsewhere() {
    let env = Env::start(30).await;
    let (_, page) = env.get(ADMIN, "/v1/conversations?limit=5").await;
    let cursor = page["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let mut tampered = cursor.clone().into_bytes();
    tampered[10] = if tampered[10] == b'a' { b'b' } else { b'a' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    for (token, query) in [
        (
            ADMIN,
            format!("limit=5&cursor={}", support::urlencode(&tampered)),
        ),
        (
            ADMIN,
            format!("limit=5&status=open&cursor={}", support::urlencode(&cursor)),
        ),
        (
            READER,
            format!("limit=5&cursor={}", support::urlencode(&cursor)),
        ),
    ] {
        let (status, problem) = env.get(token, &format!("/v1/conversations?{query}")).await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (400, Some("invalid_cursor")),
            "{query}"
        );
    }
    let (status, _) = env
        .get(
            ADMIN,
            &format!(
                "/v1/conversations?limit=9&cursor={}",
                support::urlencode(&cursor)
            ),
        )
        .await;
    assert_eq!(status, 200, "the limit may change between pages");
}

#[tokio::test]
async fn a_vendor_failure_is_a_problem_not_a_raw_body() {
    let env = Env::start(5).await;
    let faults = json!({"error_rate": 1.0, "error_status": 500});
    let r = env
        .http
        .put(format!("{}/_control/faults/zipchat", env.sim_url))
        .json(&faults)
        .send()
        .await
        .expect("control");
    assert!(r.status().is_success());
    let (status, problem) = env
        .get(ADMIN, "/v1/conversations?connection=shop-zipchat")
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (502, Some("upstream_unavailable")),
        "{problem}"
    );
    assert!(!problem.to_string().contains("injected"));
    assert_eq!(problem["connection"], "shop-zipchat");
    // Both Zipchat connections fail: one 502 for the page.
    let (status, problem) = env.get(ADMIN, "/v1/conversations?provider=zipchat").await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (502, Some("upstream_unavailable")),
        "{problem}"
    );
}

#[tokio::test]
async fn request_ids_go_in_and_out() {
    let env = Env::start(1).await;
    let r = env
        .http
        .get(format!("{}/healthz", env.gateway))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .expect("answers");
    assert_eq!(
        r.headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("abc-123")
    );
    // A request without one gets a fresh id, never another request's.
    let mut minted = std::collections::HashSet::new();
    for _ in 0..3 {
        let r = env
            .http
            .get(format!("{}/healthz", env.gateway))
            .send()
            .await
            .expect("answers");
        let id = r
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .expect("an id")
            .to_owned();
        assert!(minted.insert(id.clone()), "{id} given twice");
    }
}

#[tokio::test]
async fn a_failing_connection_does_not_fail_the_page() {
    let sim = registry::simulators(&switchboard_sim::SimOptions {
        seed: 3,
        conversations: 12,
    });
    let addr = sim
        .clone()
        .spawn("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("sim");
    // A connection to a closed port next to a working one.
    let config = format!(
        "{}{}[[connections]]\nid = \"dead\"\nprovider = \"zipchat\"\nchat_id = \"1\"\napi_key = \"zc-x\"\nbase_url = \"http://127.0.0.1:9/\"\ntimeout_secs = 2\n",
        support::clients_toml(&format!("http://{addr}")),
        registry::demo_config(&format!("http://{addr}")),
    );
    let gateway = support::start_gateway(&config).await;
    let r = reqwest::Client::new()
        .get(format!(
            "{gateway}/v1/conversations?limit=100&connection=shop-zipchat,dead"
        ))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("answers");
    assert_eq!(r.status(), 200);
    let page: Value = r.json().await.expect("json");
    assert_eq!(page["data"].as_array().map(Vec::len), Some(12));
    assert_eq!(page["partial"][0]["connection"], "dead");
    assert_eq!(page["partial"][0]["code"], "upstream_unavailable");
    assert!(
        page["next_cursor"].is_string(),
        "the next page retries the failed connection"
    );
}
