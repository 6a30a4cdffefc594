//! The behaviour cases: each takes the adapter type and its simulator, starts its own harness,
//! and checks one operation the way its `Capabilities` say it behaves. An operation the adapter
//! lacks is refused before any vendor call.

use std::collections::HashSet;
use std::future::Future;

use switchboard_core::{
    Agent, Assignment, Capabilities, Conversation, ConversationFilter, Direction, ErrorKind,
    ListQuery, Message, MessageQuery, NewMessage, Operation, Result, Status, UpstreamPage,
};
use switchboard_sim::SimVendor;
use switchboard_upstream::Adapter;

use crate::{Harness, all_conversations, all_messages, assert_once_newest_first};

fn capabilities<A: Adapter>() -> Capabilities {
    (A::VENDOR.capabilities)()
}

/// `call` is refused as `op` by the capability check, naming the connection, and the vendor
/// never hears of it.
async fn refused<A: Adapter, T: std::fmt::Debug>(
    h: &Harness<A>,
    op: Operation,
    call: impl Future<Output = Result<T>>,
) {
    let before = h.requests();
    let error = call
        .await
        .expect_err("an operation the capabilities lack is refused");
    assert_eq!(
        (error.kind(), error.operation(), error.connection()),
        (
            ErrorKind::Unsupported,
            Some(op),
            Some(h.connection.as_str())
        ),
        "{error}"
    );
    assert_eq!(
        h.requests(),
        before,
        "{op:?}: refused before any vendor call"
    );
}

/// Every conversation of the list, `page_size` at a time, through the capability check.
async fn traverse<A: Adapter>(
    h: &Harness<A>,
    page_size: u32,
    include_raw: bool,
) -> Vec<Conversation> {
    let filter = ConversationFilter::default();
    let query = ListQuery {
        include_raw,
        ..ListQuery::new(&filter, page_size)
    };
    all_conversations(h.checked.as_ref(), &query).await
}

/// The listed conversation with the most messages (one to read, reply in and change).
async fn busiest<A: Adapter>(h: &Harness<A>) -> Conversation {
    let list = traverse(h, capabilities::<A>().max_page_size, false).await;
    let simulated = h.simulated();
    list.into_iter()
        .max_by_key(|c| (simulated.message_count(&c.native_id), c.id.clone()))
        .expect("the simulator lists conversations")
}

/// The listed conversation with the latest activity (a customer who wrote recently can be
/// answered on every channel).
async fn newest<A: Adapter>(h: &Harness<A>) -> Conversation {
    let list = traverse(h, capabilities::<A>().max_page_size, false).await;
    list.into_iter()
        .max_by_key(|c| (c.last_activity_at, c.id.clone()))
        .expect("the simulator lists conversations")
}

/// Every message of `conversation`, newest first, `page_size` at a time.
async fn messages<A: Adapter>(
    h: &Harness<A>,
    conversation: &str,
    page_size: u32,
    include_raw: bool,
) -> Vec<Message> {
    let query = MessageQuery {
        include_raw,
        ..MessageQuery::new(page_size)
    };
    all_messages(h.checked.as_ref(), conversation, &query).await
}

/// The first assignable agent.
async fn first_agent<A: Adapter>(h: &Harness<A>) -> Agent {
    let agents = h
        .checked
        .list_agents(&UpstreamPage::First)
        .await
        .expect("agents");
    agents.items.into_iter().next().expect("an agent")
}

/// Every listed conversation exactly once, at any page size; newest first where the vendor
/// sorts its list; each on this connection; no vendor JSON unless asked.
pub async fn lists_every_conversation_once<A: Adapter>(vendor: SimVendor) {
    let h = Harness::<A>::start(vendor).await;
    let capabilities = capabilities::<A>();
    if !capabilities.list_conversations {
        let filter = ConversationFilter::default();
        let query = ListQuery::new(&filter, 10);
        let list = h.checked.list_conversations(&query, &UpstreamPage::First);
        return refused(&h, Operation::ListConversations, list).await;
    }
    let expected = h.listed();
    assert!(!expected.is_empty(), "the simulator lists conversations");
    for page_size in [capabilities.max_page_size, 13] {
        let all = traverse(&h, page_size, false).await;
        let ids: Vec<&str> = all.iter().map(|c| c.id.as_str()).collect();
        let unique: HashSet<String> = ids.iter().map(|id| (*id).to_owned()).collect();
        assert_eq!(
            ids.len(),
            unique.len(),
            "a conversation came twice ({page_size})"
        );
        assert_eq!(unique, expected, "every listed conversation ({page_size})");
        for c in &all {
            assert_eq!(c.connection, h.connection);
            assert_eq!(c.id, format!("{}:{}", h.connection, c.native_id));
            assert_eq!(c.provider, A::VENDOR.kind);
            assert!(c.raw.is_none(), "no vendor JSON unless asked");
        }
        if capabilities.sorted_by_activity {
            assert!(
                all.windows(2)
                    .all(|w| w[0].last_activity_at >= w[1].last_activity_at),
                "newest first ({page_size})"
            );
        }
    }
}

/// `include_raw` attaches each item's vendor JSON, to conversations and messages alike.
pub async fn includes_raw_only_when_asked<A: Adapter>(vendor: SimVendor) {
    let h = Harness::<A>::start(vendor).await;
    let capabilities = capabilities::<A>();
    let filter = ConversationFilter::default();
    let query = ListQuery {
        include_raw: true,
        ..ListQuery::new(&filter, 5)
    };
    let page = h
        .checked
        .list_conversations(&query, &UpstreamPage::First)
        .await
        .expect("a page");
    assert!(!page.items.is_empty());
    assert!(
        page.items
            .iter()
            .all(|c| c.raw.as_ref().is_some_and(|r| r.is_object())),
        "every conversation carries its vendor JSON"
    );
    if capabilities.list_messages {
        let target = busiest(&h).await;
        let with_raw = messages(&h, &target.native_id, 3, true).await;
        assert!(
            with_raw
                .iter()
                .all(|m| m.raw.as_ref().is_some_and(|r| r.is_object())),
            "every message carries its vendor JSON"
        );
        let without = messages(&h, &target.native_id, 3, false).await;
        assert!(without.iter().all(|m| m.raw.is_none()));
    }
}

/// One conversation by its native id: the one the list shows; the vendor's JSON of it only when
/// asked (`include=raw`), and then the same conversation.
pub async fn get_conversation<A: Adapter>(vendor: SimVendor) {
    let h = Harness::<A>::start(vendor).await;
    let target = newest(&h).await;
    if !capabilities::<A>().get_conversation {
        let get = h.checked.get_conversation(&target.native_id, false);
        return refused(&h, Operation::GetConversation, get).await;
    }
    let one = h
        .checked
        .get_conversation(&target.native_id, false)
        .await
        .expect("the conversation");
    assert_eq!(
        (&one.id, &one.native_id, &one.connection),
        (&target.id, &target.native_id, &target.connection)
    );
    assert!(one.raw.is_none(), "no vendor JSON unless asked");
    let with_raw = h
        .checked
        .get_conversation(&target.native_id, true)
        .await
        .expect("the conversation with its vendor JSON");
    assert!(
        with_raw
            .raw
            .as_ref()
            .is_some_and(serde_json::Value::is_object),
        "include=raw keeps the vendor's JSON object: {:?}",
        with_raw.raw
    );
    let without = Conversation {
        raw: None,
        ..with_raw
    };
    assert_eq!(
        serde_json::to_value(&without).ok(),
        serde_json::to_value(&one).ok(),
        "the same conversation with or without its JSON"
    );
}

/// A conversation the vendor does not have is `not_found`, never a vendor error.
pub async fn an_unknown_conversation_is_not_found<A: Adapter>(vendor: SimVendor) {
    let h = Harness::<A>::start(vendor).await;
    let error = h
        .checked
        .get_conversation("999999999", false)
        .await
        .expect_err("no such conversation");
    assert_eq!(
        (error.kind(), error.code()),
        (ErrorKind::NotFound, "not_found"),
        "{error}"
    );
}

/// A conversation's messages, newest first across pages, each once, each of it.
pub async fn list_messages<A: Adapter>(vendor: SimVendor) {
    let h = Harness::<A>::start(vendor).await;
    let target = busiest(&h).await;
    if !capabilities::<A>().list_messages {
        let query = MessageQuery::new(3);
        let list = h
            .checked
            .list_messages(&target.native_id, &query, &UpstreamPage::First);
        return refused(&h, Operation::ListMessages, list).await;
    }
    let all = messages(&h, &target.native_id, 3, false).await;
    assert!(!all.is_empty(), "the busiest conversation has messages");
    assert_once_newest_first(&all);
    assert!(all.iter().all(|m| m.conversation_id == target.id));
}

/// The agents a conversation can be assigned to, as ids of this connection.
pub async fn list_agents<A: Adapter>(vendor: SimVendor) {
    let h = Harness::<A>::start(vendor).await;
    if !capabilities::<A>().list_agents {
        let list = h.checked.list_agents(&UpstreamPage::First);
        return refused(&h, Operation::ListAgents, list).await;
    }
    let agent = first_agent(&h).await;
    assert_eq!(agent.connection, h.connection);
    assert_eq!(agent.id, format!("{}:{}", h.connection, agent.native_id));
}

/// A person takes the conversation over: it is theirs, and no longer the bot's.
pub async fn assign<A: Adapter>(vendor: SimVendor) {
    let h = Harness::<A>::start(vendor).await;
    let target = newest(&h).await;
    let capabilities = capabilities::<A>();
    if !capabilities.assign {
        let assign = h
            .checked
            .set_assignment(&target.native_id, Assignment::Agent("1".to_owned()));
        return refused(&h, Operation::Assign, assign).await;
    }
    let agent = first_agent(&h).await;
    let taken = h
        .checked
        .set_assignment(
            &target.native_id,
            Assignment::Agent(agent.native_id.clone()),
        )
        .await
        .expect("taken over");
    assert_eq!(taken.assignee.map(|a| a.id), Some(agent.id));
    assert!(
        taken
            .mode
            .is_none_or(|m| m == switchboard_core::Mode::Human)
    );
}

/// The conversation is handed back: nobody's, and the bot's again where there is one.
pub async fn unassign<A: Adapter>(vendor: SimVendor) {
    let h = Harness::<A>::start(vendor).await;
    let target = newest(&h).await;
    let capabilities = capabilities::<A>();
    if !capabilities.unassign {
        let back = h
            .checked
            .set_assignment(&target.native_id, Assignment::Unassigned);
        return refused(&h, Operation::Unassign, back).await;
    }
    if capabilities.assign {
        let agent = first_agent(&h).await;
        h.checked
            .set_assignment(&target.native_id, Assignment::Agent(agent.native_id))
            .await
            .expect("taken over");
    }
    let back = h
        .checked
        .set_assignment(&target.native_id, Assignment::Unassigned)
        .await
        .expect("handed back");
    assert!(back.assignee.is_none());
    assert!(back.mode.is_none_or(|m| m == switchboard_core::Mode::Ai));
}

/// A reply is sent, outbound, and is among the conversation's newest messages.
pub async fn send_message<A: Adapter>(vendor: SimVendor) {
    let h = Harness::<A>::start(vendor).await;
    let target = newest(&h).await;
    let capabilities = capabilities::<A>();
    let text = format!("Behaviour case reply on {} — ça marche ✓", h.connection);
    let reply = NewMessage {
        text: text.clone(),
        sender: None,
        idempotency_key: None,
    };
    if !capabilities.send_message {
        let send = h.checked.send_message(&target.native_id, reply);
        return refused(&h, Operation::SendMessage, send).await;
    }
    // A conversation the bot answers is taken over first (some vendors refuse replies in AI mode).
    if target.mode == Some(switchboard_core::Mode::Ai) && capabilities.assign {
        let agent = first_agent(&h).await;
        h.checked
            .set_assignment(&target.native_id, Assignment::Agent(agent.native_id))
            .await
            .expect("taken over");
    }
    let sent = h
        .checked
        .send_message(&target.native_id, reply)
        .await
        .expect("sent");
    assert_eq!(sent.text, text);
    assert_eq!(sent.direction, Direction::Outbound);
    assert_eq!(sent.conversation_id, target.id);
    if capabilities.list_messages {
        let query = MessageQuery::new(5);
        let newest = h
            .checked
            .list_messages(&target.native_id, &query, &UpstreamPage::First)
            .await
            .expect("the newest messages");
        assert!(
            newest
                .items
                .iter()
                .any(|m| m.id == sent.id && m.text == text),
            "the reply is among the newest messages"
        );
    }
}

/// Every status the capabilities list is set and read back; every other one is refused
/// before any vendor call.
pub async fn set_status<A: Adapter>(vendor: SimVendor) {
    let h = Harness::<A>::start(vendor).await;
    let target = newest(&h).await;
    let capabilities = capabilities::<A>();
    for status in Status::ALL {
        if !capabilities.set_status.contains(&status) {
            let set = h.checked.set_status(&target.native_id, status);
            refused(&h, Operation::SetStatus, set).await;
            continue;
        }
        let changed = h
            .checked
            .set_status(&target.native_id, status)
            .await
            .unwrap_or_else(|e| panic!("{status:?}: {e}"));
        assert_eq!(changed.status, status);
        if capabilities.get_conversation {
            let again = h
                .checked
                .get_conversation(&target.native_id, false)
                .await
                .expect("the conversation");
            assert_eq!(again.status, status, "read back");
        }
    }
}

/// Without the capability check, the adapter itself refuses what its capabilities lack, and
/// sends nothing for it: the flags and the code agree.
pub async fn the_bare_adapter_agrees_with_its_capabilities<A: Adapter>(vendor: SimVendor) {
    let h = Harness::<A>::start(vendor).await;
    let capabilities = capabilities::<A>();
    let bare = h.adapter.as_ref();
    let before = h.requests();
    let id = "999999999";
    let unsupported = |result: Result<()>, op: Operation| {
        let error = result.expect_err("refused");
        assert_eq!(
            (error.kind(), error.operation()),
            (ErrorKind::Unsupported, Some(op)),
            "{error}"
        );
    };
    let filter = ConversationFilter::default();
    if !capabilities.list_conversations {
        let query = ListQuery::new(&filter, 10);
        let list = bare.list_conversations(&query, &UpstreamPage::First).await;
        unsupported(list.map(drop), Operation::ListConversations);
    }
    if !capabilities.get_conversation {
        let get = bare.get_conversation(id, false).await;
        unsupported(get.map(drop), Operation::GetConversation);
    }
    if !capabilities.list_agents {
        let list = bare.list_agents(&UpstreamPage::First).await;
        unsupported(list.map(drop), Operation::ListAgents);
    }
    if !capabilities.assign {
        let assign = bare.set_assignment(id, Assignment::Agent("1".into())).await;
        unsupported(assign.map(drop), Operation::Assign);
    }
    if !capabilities.unassign {
        let back = bare.set_assignment(id, Assignment::Unassigned).await;
        unsupported(back.map(drop), Operation::Unassign);
    }
    if !capabilities.send_message {
        let reply = NewMessage {
            text: "hello".into(),
            sender: None,
            idempotency_key: None,
        };
        let send = bare.send_message(id, reply).await;
        unsupported(send.map(drop), Operation::SendMessage);
    }
    for status in Status::ALL {
        if capabilities.set_status.contains(&status) {
            continue;
        }
        let set = bare.set_status(id, status).await.map(drop);
        if capabilities.set_status.is_empty() {
            unsupported(set, Operation::SetStatus);
        } else {
            // A status the vendor cannot set: the error may say why (`invalid_status`).
            assert!(set.is_err(), "{status:?}");
        }
    }
    assert_eq!(
        h.requests(),
        before,
        "nothing was sent for what the vendor cannot do"
    );
}
