//! Lane sources over the `Provider` trait: a connection's conversation list, a conversation's
//! message list.

use std::sync::Arc;

use async_trait::async_trait;
use futures::future::join_all;

use crate::capabilities::PagingStyle;
use crate::deadline;
use crate::error::{Error, ErrorKind, Result};
use crate::merge::LaneSource;
use crate::model::{Conversation, Message};
use crate::provider::{ConversationFilter, ListQuery, MessageQuery, Page, Provider, UpstreamPage};

/// A connection's conversations, with the filters its vendor applies natively.
///
/// Each upstream page is read on a task of its own, so the lanes of a page (and the pages of a
/// chunk) read their vendors' answers on every core at once rather than one after another on
/// the page's task; the task carries the page's deadline and ends when the page stops waiting.
///
/// A vendor whose list is not sorted by activity is read in chunks of upstream pages that the
/// engine sorts as one, as many as the connection's [`SortWindow`] says: one while the list has
/// come in order, its window once it has not. The order is exact within a chunk, and across
/// chunks as good as the vendor's. A chunk of a list paged by page number is read at once (its
/// page numbers are known before any answer), so it waits for one vendor round trip, not one
/// per page; a chunk that starts near the list's end reads the page numbers past it for nothing.
///
/// [`SortWindow`]: crate::inbox::SortWindow
#[derive(Debug)]
pub struct ConversationLane {
    /// The connection.
    pub provider: Arc<dyn Provider>,
    /// The filters, in this connection's native ids.
    pub filter: ConversationFilter,
    /// Attach each item's vendor JSON.
    pub include_raw: bool,
}

#[async_trait]
impl LaneSource<Conversation> for ConversationLane {
    fn connection(&self) -> &str {
        &self.provider.info().connection
    }

    fn window(&self) -> Option<u32> {
        self.provider.info().sort_window.pages()
    }

    fn out_of_order(&self) {
        let info = self.provider.info();
        metrics::counter!(
            "switchboard_inbox_pages_out_of_order_total",
            "connection" => info.connection.clone()
        )
        .increment(1);
        if info.sort_window.saw_out_of_order() {
            tracing::warn!(
                connection = %info.connection,
                window_pages = info.sort_window.configured(),
                "the vendor listed conversations out of activity order; the inbox now reads and \
                 sorts this connection's list a window of pages at a time"
            );
        }
    }

    async fn fetch(
        &self,
        page: &UpstreamPage,
        page_size: u32,
        window: u32,
    ) -> Result<Page<Conversation>> {
        let paged_by_number = self.provider.info().capabilities.paging == PagingStyle::PageNumber;
        let first_number = match page {
            UpstreamPage::First => Some(1),
            UpstreamPage::Number(n) => Some(*n),
            UpstreamPage::Cursor(_) => None,
        };
        let (mut chunk, mut read) = match first_number {
            Some(first) if paged_by_number && window > 1 => {
                // Every page of the chunk at once; stitched below along the vendor's own `next`.
                let ahead = (1..window).map(|k| UpstreamPage::Number(first + k));
                let (chunk, ahead) = futures::join!(
                    self.list(page.clone(), page_size),
                    join_all(ahead.map(|p| async move {
                        let read = self.list(p.clone(), page_size).await;
                        (p, read)
                    })),
                );
                let mut chunk = chunk?;
                let mut read = 1;
                // The stitched pages, sized once: a chunk grown page by page held up to twice
                // its items while it grew (16 chunks of 1000 conversations on a page of 64
                // connections).
                let stitched = ahead
                    .iter()
                    .map(|(_, more)| more.as_ref().map_or(0, |m| m.items.len()));
                chunk.items.reserve_exact(stitched.sum());
                for (position, more) in ahead {
                    if chunk.next.as_ref() != Some(&position) {
                        // The list ended (the pages read past it are dropped), or the vendor
                        // pages otherwise than by number: the rest is read one after another.
                        break;
                    }
                    let more = more?;
                    chunk.items.extend(more.items);
                    chunk.next = more.next;
                    read += 1;
                }
                chunk.items.shrink_to_fit();
                (chunk, read)
            }
            _ => (self.list(page.clone(), page_size).await?, 1),
        };
        while read < window {
            let Some(next) = chunk.next.take() else { break };
            let more = self.list(next, page_size).await?;
            chunk.items.extend(more.items);
            chunk.next = more.next;
            read += 1;
        }
        Ok(chunk)
    }
}

impl ConversationLane {
    /// One upstream page, read on a task of its own (see the type's docs).
    async fn list(&self, page: UpstreamPage, page_size: u32) -> Result<Page<Conversation>> {
        let provider = Arc::clone(&self.provider);
        let filter = self.filter.clone();
        let include_raw = self.include_raw;
        let read = deadline::carry(deadline::ambient(), async move {
            let query = ListQuery {
                filter: &filter,
                page_size,
                include_raw,
            };
            provider.list_conversations(&query, &page).await
        });
        let read = crate::quota_state::Ledger::carry(crate::quota_state::Ledger::current(), read);
        let mut task = AbortOnDrop(tokio::spawn(read));
        match (&mut task.0).await {
            Ok(read) => read,
            Err(e) => Err(Error::new(
                ErrorKind::Unexpected,
                format!("reading an upstream page failed: {e}"),
            )),
        }
    }
}

/// A spawned task that is stopped when its handle is dropped (a page that stops waiting for a
/// lane stops its read).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One conversation's messages, newest first.
#[derive(Debug)]
pub struct MessageLane<'a> {
    /// The connection.
    pub provider: &'a dyn Provider,
    /// The conversation's native id.
    pub conversation: &'a str,
    /// Only messages at or after this time.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Attach each message's vendor JSON.
    pub include_raw: bool,
}

#[async_trait]
impl LaneSource<Message> for MessageLane<'_> {
    fn connection(&self) -> &str {
        &self.provider.info().connection
    }

    async fn fetch(&self, page: &UpstreamPage, page_size: u32, _: u32) -> Result<Page<Message>> {
        let query = MessageQuery {
            since: self.since,
            page_size,
            include_raw: self.include_raw,
        };
        self.provider
            .list_messages(self.conversation, &query, page)
            .await
    }
}
