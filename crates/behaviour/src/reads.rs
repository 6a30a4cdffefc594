//! Reading a provider as a client does: whole lists, a page at a time, and what every adapter
//! answers alike. The behaviour cases read through these, and so do the adapters' own simulator
//! tests.

use std::collections::HashSet;
use std::future::Future;

use switchboard_core::{
    Conversation, ErrorKind, ListQuery, Message, MessageQuery, Page, Provider, Result, UpstreamPage,
};

/// Every item of a paged list, from the first page until the list ends; no page holds more than
/// `page_size` items.
async fn all_pages<T, F, Fut>(what: &str, page_size: u32, mut fetch: F) -> Vec<T>
where
    F: FnMut(UpstreamPage) -> Fut,
    Fut: Future<Output = Result<Page<T>>>,
{
    let mut page = UpstreamPage::First;
    let mut all = Vec::new();
    for _ in 0..1000 {
        let got = fetch(page)
            .await
            .unwrap_or_else(|e| panic!("a page of {what}: {e}"));
        assert!(
            got.items.len() <= page_size as usize,
            "a page of {what} holds at most {page_size}"
        );
        all.extend(got.items);
        match got.next {
            Some(next) => page = next,
            None => return all,
        }
    }
    panic!("the {what} never ended");
}

/// Every conversation of the list `query` asks for, page after page.
pub async fn all_conversations<P: Provider + ?Sized>(
    provider: &P,
    query: &ListQuery<'_>,
) -> Vec<Conversation> {
    all_pages("conversations", query.page_size, |page| async move {
        provider.list_conversations(query, &page).await
    })
    .await
}

/// Every message of `conversation` that `query` asks for, page after page (newest first).
pub async fn all_messages<P: Provider + ?Sized>(
    provider: &P,
    conversation: &str,
    query: &MessageQuery,
) -> Vec<Message> {
    all_pages("messages", query.page_size, |page| async move {
        provider.list_messages(conversation, query, &page).await
    })
    .await
}

/// Each message comes once, the newest first.
pub fn assert_once_newest_first(messages: &[Message]) {
    let ids: HashSet<&str> = messages.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids.len(), messages.len(), "a message came twice");
    assert!(
        messages
            .windows(2)
            .all(|w| w[0].created_at >= w[1].created_at),
        "newest first"
    );
}

/// `conversation` is `not_found`, to read and to list the messages of: never a vendor error.
pub async fn assert_not_found<P: Provider + ?Sized>(provider: &P, conversation: &str) {
    let not_found = |what: &str, result: Result<()>| {
        let error = result.expect_err(what);
        assert_eq!(
            (error.kind(), error.code()),
            (ErrorKind::NotFound, "not_found"),
            "{what} of {conversation}: {error}"
        );
    };
    let read = provider.get_conversation(conversation, false).await;
    not_found("the conversation", read.map(drop));
    let (query, first) = (MessageQuery::new(10), UpstreamPage::First);
    let messages = provider.list_messages(conversation, &query, &first).await;
    not_found("its messages", messages.map(drop));
}
