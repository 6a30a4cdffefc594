//! The ChatbotX adapter against the ChatbotX simulator on a loopback port: every `Provider`
//! method, the writes read back, and the errors a user would see.

use std::collections::HashSet;

use switchboard_behaviour::{
    Harness, all_conversations, all_messages, assert_not_found, assert_once_newest_first,
};
use switchboard_chatbotx::Chatbotx;
use switchboard_core::{
    Assignment, Author, Conversation, ConversationFilter, Direction, ErrorKind, ListQuery,
    MessageQuery, Mode, NewMessage, Provider, Status, UpstreamPage,
};
use switchboard_sim::SimOptions;
use switchboard_sim::chatbotx::{READ_ONLY_TOKEN, Shared, TOKEN, VENDOR, World};

const CONVERSATIONS: usize = 150;

/// The simulator with room for every call the tests make (connection `support-chatbotx`).
async fn sim() -> (Harness<Chatbotx>, Shared) {
    let options = SimOptions {
        seed: 42,
        conversations: CONVERSATIONS,
    };
    let harness = Harness::start_with(VENDOR, &options, "support-chatbotx").await;
    let shared = harness.world::<World>();
    (harness, shared)
}

/// A connection with `token` and a deadline of `timeout_secs`.
fn adapter(harness: &Harness<Chatbotx>, token: &str, timeout_secs: u64) -> Chatbotx {
    harness
        .connect(|settings| {
            settings.insert("token".into(), token.into());
            settings.insert("timeout_secs".into(), (timeout_secs as i64).into());
        })
        .expect("adapter builds")
}

fn world(shared: &Shared) -> std::sync::MutexGuard<'_, World> {
    shared.lock().expect("world lock")
}

/// Every conversation the list shows under `filter`, `page_size` at a time.
async fn traverse(
    provider: &Chatbotx,
    filter: &ConversationFilter,
    page_size: u32,
) -> Vec<Conversation> {
    all_conversations(provider, &ListQuery::new(filter, page_size)).await
}

/// Whether the list shows conversation `id` (native) under `filter`.
async fn lists(provider: &Chatbotx, filter: &ConversationFilter, id: &str) -> bool {
    let listed = traverse(provider, filter, 50).await;
    listed.iter().any(|c| c.native_id == id)
}

fn assert_newest_first(list: &[Conversation]) {
    for pair in list.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(
            (a.last_activity_at, a.id.as_str()) > (b.last_activity_at, b.id.as_str()),
            "{} ({}) before {} ({})",
            a.id,
            a.last_activity_at,
            b.id,
            b.last_activity_at
        );
    }
}

#[tokio::test]
async fn pages_through_every_conversation_once_newest_first() {
    let (harness, shared) = sim().await;
    let provider = adapter(&harness, TOKEN, 10);
    let expected: HashSet<String> = world(&shared)
        .listed_conversation_ids()
        .into_iter()
        .map(|id| format!("support-chatbotx:{id}"))
        .collect();
    assert!(expected.len() > 100);

    for page_size in [20, 13, 100] {
        let all = traverse(&provider, &ConversationFilter::default(), page_size).await;
        let ids: HashSet<String> = all.iter().map(|c| c.id.clone()).collect();
        assert_eq!(
            ids.len(),
            all.len(),
            "no duplicates at page size {page_size}"
        );
        assert_eq!(
            ids, expected,
            "every listed conversation at page size {page_size}"
        );
        assert_newest_first(&all);
        assert!(all.iter().any(|c| c.status == Status::Closed));
        assert!(all.iter().any(|c| c.mode == Some(Mode::Human)));
        assert!(
            all.iter()
                .all(|c| c.native_id.len() == 17 && c.connection == "support-chatbotx")
        );
    }

    // Open and closed lists are the two halves of the whole.
    let only = |s: Status| ConversationFilter {
        status: vec![s],
        ..ConversationFilter::default()
    };
    let open = traverse(&provider, &only(Status::Open), 25).await;
    let closed = traverse(&provider, &only(Status::Closed), 25).await;
    assert!(open.iter().all(|c| c.status == Status::Open));
    assert!(closed.iter().all(|c| c.status == Status::Closed));
    assert_newest_first(&open);
    assert_eq!(open.len() + closed.len(), expected.len());
    assert!(
        traverse(&provider, &only(Status::Resolved), 25)
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn applies_native_filters_and_reads_one_conversation() {
    let (harness, _shared) = sim().await;
    let provider = adapter(&harness, TOKEN, 10);
    let all = traverse(&provider, &ConversationFilter::default(), 100).await;

    let human = ConversationFilter {
        mode: Some(Mode::Human),
        ..ConversationFilter::default()
    };
    let humans = traverse(&provider, &human, 30).await;
    assert_eq!(
        humans.len(),
        all.iter().filter(|c| c.mode == Some(Mode::Human)).count()
    );
    assert!(humans.iter().all(|c| c.mode == Some(Mode::Human)));

    let assigned = all
        .iter()
        .find_map(|c| c.assignee.clone())
        .expect("some conversation is assigned");
    let mine = ConversationFilter {
        assignee: Some(assigned.native_id.clone()),
        ..ConversationFilter::default()
    };
    let theirs = traverse(&provider, &mine, 30).await;
    assert!(!theirs.is_empty());
    assert!(
        theirs
            .iter()
            .all(|c| c.assignee.as_ref().map(|a| &a.native_id) == Some(&assigned.native_id))
    );

    let channel = all[0].channel;
    let by_channel = ConversationFilter {
        channel: vec![channel],
        ..ConversationFilter::default()
    };
    let listed = traverse(&provider, &by_channel, 30).await;
    assert!(listed.iter().any(|c| c.channel == channel));

    let listed = &all[0];
    let one = provider
        .get_conversation(&listed.native_id, true)
        .await
        .expect("get one");
    assert_eq!(one.id, listed.id);
    assert_eq!(one.status, listed.status);
    assert_eq!(one.mode, listed.mode);
    assert_eq!(one.channel, listed.channel);
    assert_eq!(one.last_activity_at, listed.last_activity_at);
    assert_eq!(one.contact, listed.contact);
    assert!(one.raw.is_some());
}

#[tokio::test]
async fn lists_messages_newest_first_across_pages() {
    let (harness, shared) = sim().await;
    let provider = adapter(&harness, TOKEN, 10);
    let (id, total) = {
        let w = world(&shared);
        w.conversation_ids()
            .into_iter()
            .map(|id| {
                let visible = w.message_count(&id) - w.internal_note_count(&id);
                (id, visible)
            })
            .max_by_key(|(_, n)| *n)
            .expect("conversations")
    };
    assert!(total > 50, "a conversation longer than one page");

    // 100 is more than ChatbotX serves per page: the adapter asks for 50.
    let first = provider
        .list_messages(&id, &MessageQuery::new(100), &UpstreamPage::First)
        .await
        .expect("a message page");
    assert!(first.items.len() <= 50 && first.next.is_some());
    let all = all_messages(&provider, &id, &MessageQuery::new(50)).await;
    assert_eq!(all.len(), total);
    assert_once_newest_first(&all);
    assert!(
        all.iter()
            .all(|m| m.conversation_id == format!("support-chatbotx:{id}"))
    );
    assert!(
        all.iter()
            .any(|m| m.author == Author::Contact && m.direction == Direction::Inbound)
    );
    assert!(all.iter().any(|m| m.direction == Direction::Outbound));

    // `since` ends the list at the first older message.
    let since = all[10].created_at;
    let recent = MessageQuery {
        since: Some(since),
        ..MessageQuery::new(50)
    };
    let recent = provider
        .list_messages(&id, &recent, &UpstreamPage::First)
        .await
        .expect("recent messages");
    assert!(recent.next.is_none());
    assert!(recent.items.iter().all(|m| m.created_at >= since));
    assert!(recent.items.len() >= 11);
}

#[tokio::test]
async fn lists_members_as_agents_by_user_id() {
    let (harness, shared) = sim().await;
    let provider = adapter(&harness, TOKEN, 10);
    let page = provider
        .list_agents(&UpstreamPage::First)
        .await
        .expect("agents");
    assert!(page.next.is_none());
    let ids: Vec<String> = page.items.iter().map(|a| a.native_id.clone()).collect();
    assert_eq!(ids, world(&shared).member_user_ids());
    assert!(
        page.items
            .iter()
            .all(|a| a.name.is_some() && a.id.starts_with("support-chatbotx:"))
    );
}

#[tokio::test]
async fn takes_over_hands_back_replies_and_archives() {
    let (harness, shared) = sim().await;
    let provider = adapter(&harness, TOKEN, 10);
    let all = traverse(&provider, &ConversationFilter::default(), 100).await;
    let target = all
        .iter()
        .find(|c| c.mode == Some(Mode::Ai) && c.status == Status::Open && c.assignee.is_none())
        .expect("an open bot conversation")
        .native_id
        .clone();
    let agents = provider
        .list_agents(&UpstreamPage::First)
        .await
        .expect("agents")
        .items;
    let agent = agents[2].native_id.clone();

    // Take over: assigned to a person, bot off; a later read agrees.
    let taken = provider
        .set_assignment(&target, Assignment::Agent(agent.clone()))
        .await
        .expect("take over");
    assert_eq!(taken.mode, Some(Mode::Human));
    assert_eq!(
        taken.assignee.as_ref().map(|a| a.native_id.as_str()),
        Some(agent.as_str())
    );
    assert_eq!(
        taken.assignee.as_ref().and_then(|a| a.name.clone()),
        agents[2].name
    );
    let read = provider
        .get_conversation(&target, false)
        .await
        .expect("read back");
    assert_eq!(
        (read.mode, read.assignee.map(|a| a.native_id)),
        (Some(Mode::Human), Some(agent.clone()))
    );
    let mine = ConversationFilter {
        assignee: Some(agent.clone()),
        mode: Some(Mode::Human),
        ..ConversationFilter::default()
    };
    assert!(lists(&provider, &mine, &target).await);

    for bad in ["11590944070999999", "not-a-user"] {
        let e = provider
            .set_assignment(&target, Assignment::Agent(bad.to_owned()))
            .await
            .expect_err("not an agent");
        assert_eq!(
            (e.kind(), e.code()),
            (ErrorKind::Unprocessable, "invalid_assignee"),
            "{bad}"
        );
    }

    // Reply, with an idempotency key: a retry returns the same message and sends nothing.
    let before = world(&shared).message_count(&target);
    let reply = NewMessage {
        text: "Hi Zoë, I'm looking into your order now 👀".to_owned(),
        sender: Some(agent.clone()),
        idempotency_key: Some("reply-1".to_owned()),
    };
    let sent = provider
        .send_message(&target, reply.clone())
        .await
        .expect("reply");
    assert_eq!(
        (sent.author, sent.direction),
        (Author::Agent, Direction::Outbound)
    );
    assert_eq!(sent.text, reply.text);
    let again = provider
        .send_message(&target, reply.clone())
        .await
        .expect("replayed reply");
    assert_eq!(again.id, sent.id);
    assert_eq!(world(&shared).message_count(&target), before + 1);
    let newest = provider
        .list_messages(&target, &MessageQuery::new(5), &UpstreamPage::First)
        .await
        .expect("messages");
    assert_eq!(newest.items[0].id, sent.id);
    let everything = ConversationFilter::default();
    let first = provider
        .list_conversations(&ListQuery::new(&everything, 5), &UpstreamPage::First)
        .await
        .expect("list");
    assert_eq!(
        first.items[0].native_id, target,
        "the reply is the newest activity"
    );

    let reused = NewMessage {
        text: "something else".to_owned(),
        ..reply.clone()
    };
    let e = provider
        .send_message(&target, reused)
        .await
        .expect_err("key reused");
    assert_eq!(e.code(), "invalid_idempotency_key");
    for text in [String::new(), "   ".to_owned(), "x".repeat(1001)] {
        let e = provider
            .send_message(
                &target,
                NewMessage {
                    text,
                    sender: None,
                    idempotency_key: None,
                },
            )
            .await
            .expect_err("bad text");
        assert_eq!(e.code(), "invalid_text");
    }
    assert_eq!(world(&shared).message_count(&target), before + 1);

    // Hand back: the bot answers again, nobody is assigned.
    let back = provider
        .set_assignment(&target, Assignment::Unassigned)
        .await
        .expect("hand back");
    assert_eq!((back.mode, back.assignee), (Some(Mode::Ai), None));

    // Close (archive) and reopen.
    let closed = provider
        .set_status(&target, Status::Closed)
        .await
        .expect("close");
    assert_eq!(closed.status, Status::Closed);
    let closed_only = ConversationFilter {
        status: vec![Status::Closed],
        ..ConversationFilter::default()
    };
    assert!(lists(&provider, &closed_only, &target).await);
    let open = provider
        .set_status(&target, Status::Open)
        .await
        .expect("reopen");
    assert_eq!(open.status, Status::Open);
    for status in [Status::Resolved, Status::Pending] {
        let e = provider
            .set_status(&target, status)
            .await
            .expect_err("not a ChatbotX status");
        assert_eq!(
            (e.kind(), e.code()),
            (ErrorKind::Unprocessable, "invalid_status")
        );
    }
}

#[tokio::test]
async fn reports_bad_credentials_unknown_ids_and_cursors() {
    let (harness, _shared) = sim().await;
    let wrong = adapter(&harness, "cbx-not-the-token", 10);
    let filter = ConversationFilter::default();
    let query = ListQuery::new(&filter, 10);
    let e = wrong
        .list_conversations(&query, &UpstreamPage::First)
        .await
        .expect_err("wrong token");
    assert_eq!(e.kind(), ErrorKind::UpstreamAuth);
    assert_eq!(e.connection(), Some("support-chatbotx"));

    let provider = adapter(&harness, TOKEN, 10);
    let some = provider
        .list_conversations(&query, &UpstreamPage::First)
        .await
        .expect("list");
    let id = some.items[0].native_id.clone();

    // A read-only token reads, but cannot write.
    let read_only = adapter(&harness, READ_ONLY_TOKEN, 10);
    assert!(read_only.get_conversation(&id, false).await.is_ok());
    let e = read_only
        .set_status(&id, Status::Closed)
        .await
        .expect_err("read-only");
    assert_eq!(e.kind(), ErrorKind::UpstreamAuth);

    for unknown in ["11590944070999999", "abc", "../members", "1 OR 1=1"] {
        assert_not_found(&provider, unknown).await;
    }
    let closed = provider
        .set_status("11590944070999999", Status::Closed)
        .await;
    assert_eq!(closed.err().map(|e| e.kind()), Some(ErrorKind::NotFound));

    let e = provider
        .list_conversations(&query, &UpstreamPage::Cursor("bm90IGEgY3Vyc29y".to_owned()))
        .await
        .expect_err("garbage cursor");
    assert_eq!(
        (e.kind(), e.code()),
        (ErrorKind::InvalidRequest, "invalid_cursor")
    );
    let e = provider
        .list_conversations(&query, &UpstreamPage::Number(2))
        .await
        .expect_err("page numbers are not ChatbotX cursors");
    assert_eq!(e.code(), "invalid_cursor");
}

#[tokio::test]
async fn reports_the_quota_with_retry_after() {
    let (harness, shared) = sim().await;
    world(&shared).set_quota(0);
    // A 1 s deadline: the wait the vendor asks for does not fit, so the error comes back.
    let provider = adapter(&harness, TOKEN, 1);
    let e = provider
        .list_agents(&UpstreamPage::First)
        .await
        .expect_err("over quota");
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert!(e.is_temporary());
    assert!(
        e.retry_after()
            .is_some_and(|d| d.as_secs() >= 1 && d.as_secs() <= 10)
    );
}
