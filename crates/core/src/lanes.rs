//! Lane sources over the `Provider` trait: a connection's conversation list, a conversation's
//! message list.

use async_trait::async_trait;

use crate::error::Result;
use crate::merge::LaneSource;
use crate::model::{Conversation, Message};
use crate::provider::{ConversationFilter, ListQuery, MessageQuery, Page, Provider, UpstreamPage};

/// A connection's conversations, with the filters its vendor applies natively.
///
/// A vendor whose list is not sorted by activity is read in chunks of `chunk_pages` upstream
/// pages that the engine sorts as one: the order is exact within a chunk, and across chunks only
/// as good as the vendor's. For a sorted vendor `chunk_pages` is 1.
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
        let mut chunk = self.provider.list_conversations(&query, page).await?;
        for _ in 1..self.chunk_pages {
            let Some(next) = chunk.next.take() else { break };
            let more = self.provider.list_conversations(&query, &next).await?;
            chunk.items.extend(more.items);
            chunk.next = more.next;
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
