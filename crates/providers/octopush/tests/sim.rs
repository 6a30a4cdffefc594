//! The Octopush adapter against the Octopush simulator on a loopback port.

use std::collections::BTreeSet;

use chrono::Utc;
use switchboard_behaviour::{
    Harness, all_conversations, all_messages, assert_not_found, assert_once_newest_first,
};
use switchboard_core::{
    Author, Channel, ConversationFilter, Direction, ErrorKind, ListQuery, Message, MessageQuery,
    NewMessage, Provider, Status, UpstreamPage,
};
use switchboard_octopush::Octopush;
use switchboard_sim::SimOptions;
use switchboard_sim::octopush::{self as sim, World};

const CONVERSATIONS: usize = 230;

/// The adapter (connection `sms`) against its simulator, with the world the tests read.
async fn setup() -> (Harness<Octopush>, sim::Shared) {
    let options = SimOptions {
        seed: 11,
        conversations: CONVERSATIONS,
    };
    let harness = Harness::start_with(sim::VENDOR, &options, "sms").await;
    let world = harness.world::<World>();
    (harness, world)
}

fn world_ids(world: &sim::Shared) -> Vec<String> {
    world.lock().expect("world").conversation_ids()
}

fn message_count(world: &sim::Shared, id: &str) -> usize {
    world.lock().expect("world").message_count(id)
}

/// Every message of conversation `id` since `since`, newest first, `page_size` at a time.
async fn messages_since(
    provider: &Octopush,
    id: &str,
    page_size: u32,
    since: Option<chrono::DateTime<Utc>>,
) -> Vec<Message> {
    let query = MessageQuery {
        since,
        ..MessageQuery::new(page_size)
    };
    all_messages(provider, id, &query).await
}

#[tokio::test]
async fn pages_through_every_conversation_exactly_once_newest_first() {
    let (harness, world) = setup().await;
    let provider = harness.adapter.as_ref();
    let filter = ConversationFilter::default();
    // Asking for more than the cap still pages by 100.
    let before = harness.requests();
    let all = all_conversations(provider, &ListQuery::new(&filter, 500)).await;
    assert_eq!(
        harness.requests() - before,
        3,
        "230 conversations are 3 pages of 100"
    );
    assert_eq!(all.len(), CONVERSATIONS);
    let ids: BTreeSet<&str> = all.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids.len(), CONVERSATIONS, "no duplicates");
    let expected: BTreeSet<String> = world_ids(&world)
        .into_iter()
        .map(|id| format!("sms:{id}"))
        .collect();
    assert_eq!(ids, expected.iter().map(String::as_str).collect());
    assert!(
        all.windows(2)
            .all(|w| w[0].last_activity_at >= w[1].last_activity_at),
        "newest first"
    );
    let channels: BTreeSet<&str> = all.iter().map(|c| c.channel.as_str()).collect();
    assert_eq!(
        channels,
        BTreeSet::from([Channel::Rcs.as_str(), Channel::Sms.as_str()])
    );
    for c in &all {
        assert_eq!((c.status, c.mode), (Status::Open, None));
        assert!(c.native_id.starts_with("cid_"));
        let contact = c
            .contact
            .as_ref()
            .expect("every conversation has a phone number");
        assert!(contact.phone.as_deref().is_some_and(|p| p.starts_with('+')));
        assert_eq!(contact.id, None);
        assert_eq!(
            c.message_count,
            Some(message_count(&world, &c.native_id) as u64)
        );
        let last = c.last_message.as_ref().expect("last message");
        assert_eq!(last.created_at, Some(c.last_activity_at));
        assert!(c.created_at.is_some_and(|t| t <= c.last_activity_at));
    }
    assert!(all.iter().any(|c| c.assignee.is_some()) && all.iter().any(|c| c.assignee.is_none()));
    assert!(
        all.iter()
            .any(|c| c.contact.as_ref().is_some_and(|k| k.name.is_none()))
    );
}

#[tokio::test]
async fn gets_one_conversation_with_or_without_the_cid_prefix() {
    let (harness, world) = setup().await;
    let provider = harness.adapter.as_ref();
    let ids = world_ids(&world);
    // On the second page of the list: the lookup pages on.
    let id = &ids[150];
    let filter = ConversationFilter::default();
    let listed = provider
        .list_conversations(&ListQuery::new(&filter, 100), &UpstreamPage::Number(2))
        .await
        .expect("page 2")
        .items
        .into_iter()
        .find(|c| &c.native_id == id)
        .expect("on page 2");
    let got = provider.get_conversation(id, true).await.expect("get");
    assert!(
        got.raw.is_some(),
        "get keeps the vendor's JSON for include=raw"
    );
    assert_eq!(without_raw(got), listed);

    let bare = id.strip_prefix("cid_").expect("listed with the prefix");
    let by_bare = provider
        .get_conversation(bare, false)
        .await
        .expect("get by the bare uuid");
    assert_eq!(&by_bare.native_id, id);

    let unknown = provider
        .get_conversation("cid_00000000-0000-4000-8000-000000000000", false)
        .await;
    assert_eq!(unknown.err().map(|e| e.kind()), Some(ErrorKind::NotFound));
    for malformed in ["../conversations/list", "cid_1 OR 1=1", "é"] {
        let e = provider
            .get_conversation(malformed, false)
            .await
            .err()
            .map(|e| e.kind());
        assert_eq!(e, Some(ErrorKind::NotFound), "{malformed}");
    }
}

fn without_raw(mut c: switchboard_core::Conversation) -> switchboard_core::Conversation {
    c.raw = None;
    c
}

#[tokio::test]
async fn lists_messages_newest_first_across_pages() {
    let (harness, world) = setup().await;
    let provider = harness.adapter.as_ref();
    let ids = world_ids(&world);
    let id = ids
        .iter()
        .max_by_key(|id| message_count(&world, id))
        .expect("conversations")
        .clone();
    let count = message_count(&world, &id);
    assert!(count >= 5, "{count}");

    let messages = messages_since(provider, &id, 2, None).await;
    assert_eq!(messages.len(), count);
    assert_once_newest_first(&messages);
    assert!(
        messages
            .iter()
            .all(|m| m.conversation_id == format!("sms:{id}"))
    );
    for m in &messages {
        match m.direction {
            Direction::Inbound => {
                assert_eq!((m.author, m.delivery_status), (Author::Contact, None))
            }
            Direction::Outbound => {
                assert_eq!(m.author, Author::Agent);
                assert!(m.delivery_status.is_some());
            }
        }
        assert!(
            m.created_at > chrono::DateTime::<Utc>::UNIX_EPOCH,
            "the sent_at time is read"
        );
    }
    assert!(messages.iter().any(|m| m.direction == Direction::Inbound));

    // The bare uuid reads the same messages; `since` keeps the newer ones and stops early.
    let bare = id.strip_prefix("cid_").expect("prefix");
    assert_eq!(messages_since(provider, bare, 50, None).await.len(), count);
    let since = messages[2].created_at;
    let recent = messages_since(provider, &id, 1, Some(since)).await;
    assert_eq!(
        recent.len(),
        messages.iter().filter(|m| m.created_at >= since).count()
    );

    assert_not_found(provider, "cid_00000000-0000-4000-8000-000000000000").await;
}

#[tokio::test]
async fn replies_by_sms_once_per_idempotency_key_and_reads_them_back() {
    let (harness, world) = setup().await;
    let provider = harness.adapter.as_ref();
    let id = world_ids(&world)[42].clone();
    let before = provider.get_conversation(&id, false).await.expect("get");
    let count = message_count(&world, &id);
    let credit = world.lock().expect("world").credit();

    let reply = |key: &str| NewMessage {
        text: "Bonjour ! Votre colis part demain matin. Bonne journée 🙂".to_owned(),
        sender: None,
        idempotency_key: Some(key.to_owned()),
    };
    let send = |key: &str| provider.send_message(&id, reply(key));
    let sent = send("reply-1").await.expect("sent");
    assert!(sent.native_id.starts_with("sms_"), "{}", sent.native_id);
    assert_eq!(
        (sent.author, sent.direction),
        (Author::Agent, Direction::Outbound)
    );
    assert_eq!(sent.conversation_id, format!("sms:{id}"));

    let newest = provider
        .list_messages(&id, &MessageQuery::new(5), &UpstreamPage::First)
        .await
        .expect("messages")
        .items;
    assert_eq!(newest[0].id, sent.id, "the reply is the newest message");
    assert_eq!(newest[0].text, sent.text);
    assert_eq!(newest[0].direction, Direction::Outbound);
    let after = provider.get_conversation(&id, false).await.expect("get");
    assert_eq!(after.message_count, before.message_count.map(|n| n + 1));
    assert_eq!(
        after.last_message.as_ref().map(|m| m.text.as_str()),
        Some(sent.text.as_str())
    );
    assert!(after.last_activity_at >= before.last_activity_at);

    // A retry with the same key is neither sent nor billed again.
    let retried = send("reply-1").await.expect("retried");
    assert_eq!(retried.id, sent.id);
    assert_eq!(message_count(&world, &id), count + 1);
    let charged = credit - world.lock().expect("world").credit();
    assert!(charged > 0.0 && charged < 0.1, "{charged}");
    let other = send("reply-2").await.expect("another reply");
    assert_ne!(other.id, sent.id);
    assert_eq!(message_count(&world, &id), count + 2);

    let invalid = [
        (
            NewMessage {
                text: "  ".into(),
                sender: None,
                idempotency_key: None,
            },
            "invalid_text",
        ),
        (
            NewMessage {
                text: "x".repeat(1225),
                sender: None,
                idempotency_key: None,
            },
            "invalid_text",
        ),
        (
            NewMessage {
                text: "hi".into(),
                sender: Some("7".into()),
                idempotency_key: None,
            },
            "invalid_sender",
        ),
    ];
    for (message, code) in invalid {
        let e = provider
            .send_message(&id, message)
            .await
            .err()
            .map(|e| e.code());
        assert_eq!(e, Some(code));
    }
    assert_eq!(
        message_count(&world, &id),
        count + 2,
        "rejected replies are not sent"
    );

    world.lock().expect("world").set_credit(0.0);
    let broke = send("reply-3").await.err();
    assert_eq!(
        broke.map(|e| (e.kind(), e.code())),
        Some((ErrorKind::Conflict, "upstream_plan_limit"))
    );

    let unknown = provider
        .send_message("cid_00000000-0000-4000-8000-000000000000", reply("reply-4"))
        .await;
    assert_eq!(unknown.err().map(|e| e.kind()), Some(ErrorKind::NotFound));
}

#[tokio::test]
async fn rejected_or_restricted_credentials_are_upstream_auth_errors() {
    let (harness, _) = setup().await;
    let filter = ConversationFilter::default();
    let query = ListQuery::new(&filter, 10);
    for credentials in [
        (sim::API_LOGIN, "octo-wrong-key"),
        ("someone@example.com", sim::API_KEY),
        (sim::RESTRICTED_LOGIN, sim::RESTRICTED_API_KEY),
    ] {
        let provider = harness
            .connect(|settings| {
                settings.insert("api_login".into(), credentials.0.into());
                settings.insert("api_key".into(), credentials.1.into());
            })
            .expect("adapter builds");
        let e = provider
            .list_conversations(&query, &UpstreamPage::First)
            .await
            .expect_err("rejected");
        assert_eq!(e.kind(), ErrorKind::UpstreamAuth, "{credentials:?}");
        assert_eq!(e.connection(), Some("sms"));
        assert!(!e.message().contains("Unauthorized") && !e.message().contains("Forbidden"));
    }
}
