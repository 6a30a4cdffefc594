//! Lane sources over the `Provider` trait: a connection's conversation list, a conversation's
//! message list.

use async_trait::async_trait;
use futures::future::join_all;

use crate::capabilities::PagingStyle;
use crate::error::Result;
use crate::merge::LaneSource;
use crate::model::{Conversation, Message};
use crate::provider::{ConversationFilter, ListQuery, MessageQuery, Page, Provider, UpstreamPage};

/// A connection's conversations, with the filters its vendor applies natively.
///
/// A vendor whose list is not sorted by activity is read in chunks of `chunk_pages` upstream
/// pages that the engine sorts as one: the order is exact within a chunk, and across chunks only
/// as good as the vendor's. For a sorted vendor `chunk_pages` is 1. A chunk of a list paged by
/// page number is read at once (its page numbers are known before any answer), so it waits for
/// one vendor round trip, not one per page; a chunk that starts near the list's end reads the
/// page numbers past it for nothing.
#[derive(Debug)]
pub struct ConversationLane<'a> {
    /// The connection.
    pub provider: &'a dyn Provider,
    /// The filters, in this connection's native ids.
    pub filter: ConversationFilter,
    /// Upstream pages read (and sorted together) per lane page.
    pub chunk_pages: u32,
    /// Attach each item's vendor JSON.
    pub include_raw: bool,
}

#[async_trait]
impl LaneSource<Conversation> for ConversationLane<'_> {
    fn connection(&self) -> &str {
        &self.provider.info().connection
    }

    async fn fetch(&self, page: &UpstreamPage, page_size: u32) -> Result<Page<Conversation>> {
        let query = ListQuery {
            filter: &self.filter,
            page_size,
            include_raw: self.include_raw,
        };
        let paged_by_number = self.provider.info().capabilities.paging == PagingStyle::PageNumber;
        let first_number = match page {
            UpstreamPage::First => Some(1),
            UpstreamPage::Number(n) => Some(*n),
            UpstreamPage::Cursor(_) => None,
        };
        let (mut chunk, mut read) = match first_number {
            Some(first) if paged_by_number && self.chunk_pages > 1 => {
                // Every page of the chunk at once; stitched below along the vendor's own `next`.
                let query = &query;
                let ahead = (1..self.chunk_pages).map(|k| UpstreamPage::Number(first + k));
                let (chunk, ahead) = futures::join!(
                    self.provider.list_conversations(query, page),
                    join_all(ahead.map(|p| async move {
                        let read = self.provider.list_conversations(query, &p).await;
                        (p, read)
                    })),
                );
                let mut chunk = chunk?;
                let mut read = 1;
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
                (chunk, read)
            }
            _ => (self.provider.list_conversations(&query, page).await?, 1),
        };
        while read < self.chunk_pages {
            let Some(next) = chunk.next.take() else { break };
            let more = self.provider.list_conversations(&query, &next).await?;
            chunk.items.extend(more.items);
            chunk.next = more.next;
            read += 1;
        }
        Ok(chunk)
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

    async fn fetch(&self, page: &UpstreamPage, page_size: u32) -> Result<Page<Message>> {
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
