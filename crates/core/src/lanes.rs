//! Lane sources over the `Provider` trait: a connection's conversation list, a conversation's
//! message list.

use async_trait::async_trait;

use crate::error::Result;
use crate::merge::LaneSource;
use crate::model::{Conversation, Message};
use crate::provider::{ConversationFilter, ListQuery, MessageQuery, Page, Provider, UpstreamPage};

/// A connection's conversations, with the filters its vendor applies natively.
#[derive(Debug)]
pub struct ConversationLane<'a> {
    /// The connection.
    pub provider: &'a dyn Provider,
    /// The filters, in this connection's native ids.
    pub filter: ConversationFilter,
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
        };
        self.provider.list_conversations(&query, page).await
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
        };
        self.provider
            .list_messages(self.conversation, &query, page)
            .await
    }
}
