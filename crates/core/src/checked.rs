//! The capability check every connection goes through: an operation its `Capabilities` do not
//! list (an unsupported status value, or unassigning where the vendor cannot, included) is refused
//! with `Error::unsupported(op)` before the adapter is called, so the vendor never sees it. The
//! registry wraps every provider in it; handlers and the inbox need no checks of their own.

use std::sync::Arc;

use async_trait::async_trait;

use crate::capabilities::Operation;
use crate::error::{Error, Result};
use crate::model::{Agent, ConnectionHealth, Conversation, Message, Status};
use crate::provider::{
    Assignment, ListQuery, MessageQuery, NewMessage, Page, PassthroughAnswer, PassthroughRequest,
    Provider, ProviderInfo, UpstreamPage,
};

/// A provider whose every operation is checked against its capabilities first.
#[derive(Debug)]
pub struct Checked {
    inner: Arc<dyn Provider>,
}

impl Checked {
    /// Wraps `provider`.
    pub fn wrap(provider: Arc<dyn Provider>) -> Arc<dyn Provider> {
        Arc::new(Checked { inner: provider })
    }

    fn ensure(&self, op: Operation, supported: bool) -> Result<()> {
        if supported {
            Ok(())
        } else {
            Err(Error::unsupported(op).with_connection(&self.inner.info().connection))
        }
    }

    fn supports(&self, op: Operation) -> Result<()> {
        self.ensure(op, self.inner.info().capabilities.supports(op))
    }
}

#[async_trait]
impl Provider for Checked {
    fn info(&self) -> &ProviderInfo {
        self.inner.info()
    }

    fn health(&self) -> ConnectionHealth {
        self.inner.health()
    }

    async fn list_conversations(
        &self,
        query: &ListQuery<'_>,
        page: &UpstreamPage,
    ) -> Result<Page<Conversation>> {
        self.supports(Operation::ListConversations)?;
        self.inner.list_conversations(query, page).await
    }

    async fn get_conversation(&self, id: &str, include_raw: bool) -> Result<Conversation> {
        self.supports(Operation::GetConversation)?;
        self.inner.get_conversation(id, include_raw).await
    }

    async fn list_messages(
        &self,
        conversation: &str,
        query: &MessageQuery,
        page: &UpstreamPage,
    ) -> Result<Page<Message>> {
        self.supports(Operation::ListMessages)?;
        self.inner.list_messages(conversation, query, page).await
    }

    async fn list_agents(&self, page: &UpstreamPage) -> Result<Page<Agent>> {
        self.supports(Operation::ListAgents)?;
        self.inner.list_agents(page).await
    }

    async fn set_assignment(
        &self,
        conversation: &str,
        assignment: Assignment,
    ) -> Result<Conversation> {
        self.supports(assignment.operation())?;
        self.inner.set_assignment(conversation, assignment).await
    }

    async fn send_message(&self, conversation: &str, message: NewMessage) -> Result<Message> {
        self.supports(Operation::SendMessage)?;
        self.inner.send_message(conversation, message).await
    }

    async fn set_status(&self, conversation: &str, status: Status) -> Result<Conversation> {
        let supported = self.inner.info().capabilities.set_status.contains(&status);
        self.ensure(Operation::SetStatus, supported)?;
        self.inner.set_status(conversation, status).await
    }

    /// Not a normalized operation: the vendor's own API decides what it supports.
    async fn passthrough(&self, request: PassthroughRequest) -> Result<PassthroughAnswer> {
        self.inner.passthrough(request).await
    }
}
