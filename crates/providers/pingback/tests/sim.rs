//! The adapter against the PingBack simulator on a loopback port: every `Provider` method,
//! the login and its renewal, and the vendor's errors.

use std::collections::HashSet;

use serde_json::{Value, json};
use switchboard_behaviour::{
    Harness, all_conversations, all_messages, assert_not_found, assert_once_newest_first,
};
use switchboard_core::{
    Assignment, Author, ConversationFilter, ErrorKind, ListQuery, MessageQuery, NewMessage,
    Operation, Provider, Status, UpstreamPage,
};
use switchboard_pingback::{Config, Pingback, capabilities};
use switchboard_sim::SimOptions;
use switchboard_sim::pingback::{
    self, AGENT_EMAIL, AGENT_PASSWORD, EMAIL, PASSWORD, PREFIX, Shared, VENDOR, World,
};

const CONVERSATIONS: usize = 137;

/// The simulator (connection `helpdesk`), and the world the tests read.
struct Sim {
    harness: Harness<Pingback>,
    base: String,
    world: Shared,
}

impl Sim {
    async fn start() -> Sim {
        let options = SimOptions {
            seed: 42,
            conversations: CONVERSATIONS,
        };
        let harness = Harness::start_with(VENDOR, &options, "helpdesk").await;
        Sim {
            base: harness.base.clone(),
            world: harness.world::<World>(),
            harness,
        }
    }

    fn connect_as(&self, email: &str, password: &str) -> Pingback {
        self.harness
            .connect(|settings| {
                settings.insert("email".into(), email.into());
                settings.insert("password".into(), password.into());
            })
            .expect("a connection")
    }

    fn connect(&self) -> Pingback {
        self.connect_as(EMAIL, PASSWORD)
    }

    /// The world, locked: never hold it across an `.await` (the simulator needs it to answer).
    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().expect("the world")
    }
}

/// Every conversation the list shows under `filter`, `page_size` at a time.
async fn conversations(
    p: &Pingback,
    filter: &ConversationFilter,
    page_size: u32,
) -> Vec<switchboard_core::Conversation> {
    all_conversations(p, &ListQuery::new(filter, page_size)).await
}

/// Every message of conversation `id`, newest first, `page_size` at a time.
async fn messages(p: &Pingback, id: &str, page_size: u32) -> Vec<switchboard_core::Message> {
    all_messages(p, id, &MessageQuery::new(page_size)).await
}

/// A reply saying `text`, as `sender` when named.
fn reply(text: &str, sender: Option<&str>) -> NewMessage {
    NewMessage {
        text: text.to_owned(),
        sender: sender.map(str::to_owned),
        idempotency_key: None,
    }
}

#[tokio::test]
async fn pages_through_every_conversation_once_newest_first() {
    let sim = Sim::start().await;
    let p = sim.connect();
    let all = conversations(&p, &ConversationFilter::default(), 50).await;
    let expected: HashSet<String> = sim.world().conversation_ids().into_iter().collect();
    let ids: HashSet<String> = all.iter().map(|c| c.native_id.clone()).collect();
    assert_eq!(all.len(), CONVERSATIONS);
    assert_eq!(
        ids, expected,
        "each of the business's conversations exactly once"
    );
    assert!(
        all.windows(2)
            .all(|w| w[0].last_activity_at >= w[1].last_activity_at),
        "newest first"
    );
    assert!(
        all.iter()
            .all(|c| c.mode.is_none() && c.id == format!("helpdesk:{}", c.native_id))
    );
    assert!(all.iter().any(|c| c.contact.is_none()) && all.iter().any(|c| c.assignee.is_some()));
    // One login serves the whole traversal.
    assert_eq!(sim.world().logins(), 1);
    // A page size above the vendor's cap is clamped, not refused.
    assert_eq!(
        conversations(&p, &ConversationFilter::default(), 500)
            .await
            .len(),
        CONVERSATIONS
    );
}

#[tokio::test]
async fn filters_by_one_status_and_by_assignee_upstream() {
    let sim = Sim::start().await;
    let p = sim.connect();
    let everything = conversations(&p, &ConversationFilter::default(), 100).await;
    let resolved = ConversationFilter {
        status: vec![Status::Resolved],
        ..ConversationFilter::default()
    };
    let got = conversations(&p, &resolved, 20).await;
    assert!(!got.is_empty() && got.iter().all(|c| c.status == Status::Resolved));
    assert_eq!(
        got.len(),
        everything
            .iter()
            .filter(|c| c.status == Status::Resolved)
            .count()
    );

    let agent = everything
        .iter()
        .find_map(|c| c.assignee.clone())
        .expect("an assigned conversation")
        .native_id;
    let mine = ConversationFilter {
        assignee: Some(agent.clone()),
        ..ConversationFilter::default()
    };
    let got = conversations(&p, &mine, 20).await;
    assert!(
        got.iter()
            .all(|c| c.assignee.as_ref().is_some_and(|a| a.native_id == agent))
    );
    assert_eq!(
        got.len(),
        everything
            .iter()
            .filter(|c| c.assignee.as_ref().is_some_and(|a| a.native_id == agent))
            .count()
    );
    let nobody = ConversationFilter {
        assignee: Some("not an id".to_owned()),
        ..ConversationFilter::default()
    };
    assert!(conversations(&p, &nobody, 20).await.is_empty());
}

#[tokio::test]
async fn gets_one_conversation_and_pages_its_messages_newest_first() {
    let sim = Sim::start().await;
    let p = sim.connect();
    let ids = sim.world().conversation_ids();
    let (id, count) = ids
        .iter()
        .map(|id| {
            (
                id.clone(),
                sim.world().conversation_state(id).map_or(0, |s| s.2),
            )
        })
        .max_by_key(|(_, n)| *n)
        .expect("conversations");
    assert!(count >= 4, "a conversation with a long history");

    let c = p
        .get_conversation(&id, true)
        .await
        .expect("the conversation");
    assert_eq!(c.native_id, id);
    assert_eq!(c.message_count, Some(count as u64));
    assert!(c.raw.is_some());
    assert!(c.last_message.is_some());

    let messages = messages(&p, &id, 3).await;
    assert_eq!(messages.len(), count);
    assert_once_newest_first(&messages);
    assert!(messages.iter().all(|m| m.conversation_id == c.id));
    assert!(messages.iter().any(|m| m.author == Author::Contact));
    assert_eq!(
        c.last_message.map(|m| m.text),
        messages.first().map(|m| m.text.clone()),
        "the last message is the newest"
    );

    let since = MessageQuery {
        since: Some(messages[1].created_at),
        ..MessageQuery::new(50)
    };
    let recent = p
        .list_messages(&id, &since, &UpstreamPage::First)
        .await
        .expect("recent messages");
    assert!(recent.next.is_none() && recent.items.len() >= 2 && recent.items.len() < count);
}

#[tokio::test]
async fn unknown_malformed_and_foreign_ids_are_not_found() {
    let sim = Sim::start().await;
    let p = sim.connect();
    let foreign = sim.world().foreign_conversation_ids()[0].clone();
    for id in [
        "00000000-0000-4000-8000-000000000000",
        "../team/members",
        "12345",
        foreign.as_str(),
    ] {
        assert_not_found(&p, id).await;
    }
    let resolved = p.set_status("not-a-uuid", Status::Resolved).await;
    assert_eq!(resolved.err().map(|e| e.kind()), Some(ErrorKind::NotFound));
}

#[tokio::test]
async fn replies_assigns_resolves_and_closes_and_reads_them_back() {
    let sim = Sim::start().await;
    let p = sim.connect();
    let all = conversations(&p, &ConversationFilter::default(), 100).await;
    let open = all
        .iter()
        .find(|c| c.status == Status::Open)
        .expect("an open conversation")
        .native_id
        .clone();
    let owner = sim.world().user_id_of(EMAIL).expect("the owner");

    let sent = p
        .send_message(&open, reply("Bien reçu, je regarde ça 👀", None))
        .await
        .expect("a reply");
    assert_eq!(sent.author, Author::Agent);
    assert_eq!(
        sent.sender.as_ref().map(|s| s.native_id.as_str()),
        Some(owner.as_str())
    );
    let newest = messages(&p, &open, 1).await;
    assert_eq!(newest[0].id, sent.id, "the reply is the newest message");
    assert_eq!(newest[0].text, "Bien reçu, je regarde ça 👀");

    // The sender may be named when it is the connection's own user, and no one else.
    p.send_message(&open, reply("Also me", Some(&owner)))
        .await
        .expect("a reply as the connection's user");
    let other = sim.world().user_id_of(AGENT_EMAIL).expect("an agent");
    let e = p
        .send_message(&open, reply("As someone else", Some(&other)))
        .await
        .expect_err("PingBack cannot send as another agent");
    assert_eq!(e.code(), "invalid_sender");

    let assigned = p
        .set_assignment(&open, Assignment::Agent(other.clone()))
        .await
        .expect("assigned");
    assert_eq!(assigned.assignee.map(|a| a.native_id), Some(other.clone()));
    assert_eq!(
        sim.world().conversation_state(&open).and_then(|s| s.1),
        Some(other)
    );

    let resolved = p
        .set_status(&open, Status::Resolved)
        .await
        .expect("resolved");
    assert_eq!(resolved.status, Status::Resolved);
    // "Already resolved" is a success.
    assert_eq!(
        p.set_status(&open, Status::Resolved)
            .await
            .expect("still resolved")
            .status,
        Status::Resolved
    );
    let closed = p.set_status(&open, Status::Closed).await.expect("closed");
    assert_eq!(closed.status, Status::Closed);
    assert!(closed.last_activity_at >= resolved.last_activity_at);
    assert_eq!(
        p.get_conversation(&open, false)
            .await
            .expect("read back")
            .status,
        Status::Closed
    );
    assert_eq!(
        sim.world()
            .conversation_state(&open)
            .map(|s| s.0)
            .as_deref(),
        Some("closed")
    );
    // The write moved the conversation to the top of the inbox.
    let everything = ConversationFilter::default();
    let first = p
        .list_conversations(&ListQuery::new(&everything, 1), &UpstreamPage::First)
        .await
        .expect("a page");
    assert_eq!(first.items[0].native_id, open);
}

#[tokio::test]
async fn lists_the_active_team_as_agents() {
    let sim = Sim::start().await;
    let p = sim.connect();
    let page = p.list_agents(&UpstreamPage::First).await.expect("agents");
    assert!(page.next.is_none());
    let ids: HashSet<String> = page.items.iter().map(|a| a.native_id.clone()).collect();
    let expected: HashSet<String> = sim.world().active_agent_ids().into_iter().collect();
    assert_eq!(ids, expected);
    assert!(
        page.items
            .iter()
            .all(|a| a.name.is_some() && a.email.is_some())
    );
}

#[tokio::test]
async fn what_pingback_lacks_is_unsupported_and_agrees_with_capabilities() {
    let sim = Sim::start().await;
    let p = sim.connect();
    let id = sim.world().conversation_ids()[0].clone();
    let caps = capabilities();

    assert!(!caps.supports(Operation::Unassign));
    let e = p
        .set_assignment(&id, Assignment::Unassigned)
        .await
        .expect_err("no unassign");
    assert_eq!(
        (e.kind(), e.operation()),
        (ErrorKind::Unsupported, Some(Operation::Unassign))
    );

    for status in [Status::Open, Status::Pending] {
        assert!(!caps.set_status.contains(&status));
        let e = p.set_status(&id, status).await.expect_err("no reopen");
        assert_eq!(e.kind(), ErrorKind::Unsupported);
    }
    assert!(
        caps.set_status.contains(&Status::Resolved) && caps.set_status.contains(&Status::Closed)
    );
    assert!(caps.supports(Operation::Assign) && caps.supports(Operation::SendMessage));
}

#[tokio::test]
async fn a_wrong_password_is_an_upstream_auth_failure() {
    let sim = Sim::start().await;
    let p = sim.connect_as(EMAIL, "not the password");
    let id = sim.world().conversation_ids()[0].clone();
    let e = p.get_conversation(&id, false).await.expect_err("refused");
    assert_eq!(e.kind(), ErrorKind::UpstreamAuth);
    assert!(!e.to_string().contains("not the password"));
    assert!(
        !e.message().contains("Incorrect"),
        "the vendor's words stay out: {e}"
    );
}

#[tokio::test]
async fn logs_in_again_once_when_the_token_is_revoked() {
    let sim = Sim::start().await;
    let p = sim.connect();
    let id = sim.world().conversation_ids()[0].clone();
    p.get_conversation(&id, false)
        .await
        .expect("first read logs in");
    assert_eq!(sim.world().logins(), 1);
    sim.world().revoke_tokens();
    // A write too: it was refused, so repeating it is safe.
    p.set_status(&id, Status::Closed)
        .await
        .expect("the call is retried after a new login");
    assert_eq!(sim.world().logins(), 2);
    p.get_conversation(&id, false)
        .await
        .expect("the new token is kept");
    assert_eq!(sim.world().logins(), 2);
}

#[tokio::test]
async fn an_agent_login_may_not_assign_and_bad_assignees_are_refused() {
    let sim = Sim::start().await;
    let id = sim.world().conversation_ids()[0].clone();
    let agents = sim.world().active_agent_ids();

    let agent = sim.connect_as(AGENT_EMAIL, AGENT_PASSWORD);
    let e = agent
        .set_assignment(&id, Assignment::Agent(agents[0].clone()))
        .await
        .expect_err("agents may not assign");
    assert_eq!(e.kind(), ErrorKind::UpstreamAuth);

    let owner = sim.connect();
    for bad in ["not-an-agent", "00000000-0000-4000-8000-000000000000"] {
        let e = owner
            .set_assignment(&id, Assignment::Agent(bad.to_owned()))
            .await
            .expect_err("no such agent");
        assert_eq!(e.code(), "invalid_assignee", "{bad}");
    }
}

#[tokio::test]
async fn an_exhausted_monthly_quota_stops_replies() {
    let sim = Sim::start().await;
    let p = sim.connect();
    let id = sim.world().conversation_ids()[0].clone();
    let used = sim.world().messages_this_month();
    sim.world().set_message_limit(used);
    let e = p
        .send_message(&id, reply("one too many", None))
        .await
        .expect_err("over quota");
    assert_eq!(
        (e.kind(), e.code()),
        (ErrorKind::RateLimited, "upstream_plan_limit")
    );
    assert!(!e.is_temporary());
    assert_eq!(sim.world().messages_this_month(), used, "nothing was sent");
}

#[tokio::test]
async fn the_simulator_answers_like_fastapi() {
    let sim = Sim::start().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client");
    let api = format!("{}{PREFIX}/api/v1", sim.base);

    let anonymous = answer(http.get(format!("{api}/conversations/"))).await;
    assert_eq!(anonymous, (401, json!({"detail": "Not authenticated"})));

    let credentials = json!({"email": EMAIL, "password": PASSWORD});
    let (_, login) = answer(http.post(format!("{api}/auth/login")).json(&credentials)).await;
    assert_eq!(login["token_type"], "bearer");
    let token = login["access_token"].as_str().expect("a token").to_owned();

    let r = http
        .get(format!("{api}/conversations?limit=5"))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 307);
    assert!(
        r.headers()["location"]
            .to_str()
            .expect("ascii")
            .ends_with("/api/v1/conversations/?limit=5")
    );

    let bad_query = format!("{api}/conversations/?page=abc&limit=500&status=snoozed");
    let (status, body) = answer(http.get(bad_query).bearer_auth(&token)).await;
    assert_eq!(status, 422);
    let fields: Vec<&str> = body["detail"]
        .as_array()
        .expect("a list of problems")
        .iter()
        .filter_map(|p| p["loc"][1].as_str())
        .collect();
    assert_eq!(fields, ["page", "limit", "status"]);

    let unknown = format!("{api}/conversations/00000000-0000-4000-8000-000000000000");
    let not_found = answer(http.get(unknown).bearer_auth(&token)).await;
    assert_eq!(
        not_found,
        (404, json!({"detail": "Conversation not found"}))
    );

    let delete = answer(
        http.delete(format!("{api}/conversations/"))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(delete, (405, json!({"detail": "Method Not Allowed"})));

    let list = http.get(format!("{api}/conversations/?limit=3"));
    let (_, list) = answer(list.bearer_auth(&token)).await;
    assert_eq!(list.as_array().map(Vec::len), Some(3), "a bare array");
}

/// The status of the answer to `request`, and its JSON body.
async fn answer(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("sent");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

#[test]
fn the_settings_are_a_section_of_this_adapter() {
    let settings = pingback::settings("http://127.0.0.1:9100");
    assert!(settings.contains("base_url = \"http://127.0.0.1:9100/pingback\""));
    // The keys are this adapter's config.
    let section: String = settings
        .lines()
        .map(|l| {
            let (key, value) = l.split_once(" = ").expect("key = value");
            format!("\"{key}\": {value}")
        })
        .collect::<Vec<_>>()
        .join(", ");
    let config: Config =
        serde_json::from_str(&format!("{{{section}}}")).expect("the adapter reads it");
    assert_eq!(config.email, EMAIL);
}
