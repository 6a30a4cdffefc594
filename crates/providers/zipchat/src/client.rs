//! The Zipchat connection: the `Provider` implementation.

use async_trait::async_trait;
use chrono::SecondsFormat;
use reqwest::Method;
use serde_json::{Value, json};
use switchboard_core::{
    Agent, Assignment, Conversation, Error, ErrorKind, ListQuery, Message, MessageQuery,
    NewMessage, Operation, Origin, Page, PassthroughAnswer, PassthroughRequest, Provider,
    ProviderInfo, Result, Status, UpstreamPage, codes, tolerant,
};
use switchboard_upstream::{
    Adapter, Call, Edge, Shared, Vendor, invalid_assignee, invalid_sender, native_id,
    next_page_number, page_number,
};

use crate::config::Config;
use crate::{mapping, wire};

/// Largest `per_page` for conversations and users.
pub(crate) const MAX_PAGE_SIZE: u32 = 100;
/// Largest `message_per_page`.
pub(crate) const MAX_MESSAGE_PAGE_SIZE: u32 = 200;
/// Without page metadata, message pages are read oldest first up to this many pages to find the
/// newest ones.
const MAX_MESSAGE_PAGES_WITHOUT_METADATA: u32 = 10;

/// A Zipchat connection.
#[derive(Debug)]
pub struct Zipchat {
    edge: Edge,
    chat_id: String,
}

impl Adapter for Zipchat {
    type Config = Config;
    const VENDOR: &'static Vendor = &crate::VENDOR;

    fn connect(connection: &str, config: &Config, shared: &Shared) -> Result<Zipchat> {
        let auth = config.api_key.bearer("api_key")?;
        let edge = Edge::new(Self::VENDOR, connection, &config.connection, shared, auth)?;
        let chat_id = config.chat_id.clone();
        Ok(Zipchat { edge, chat_id })
    }
}

/// The page after `page`, from the list's metadata when present, else while pages come full.
fn next_page(
    page: u32,
    per_page: u32,
    len: usize,
    pagination: Option<&wire::Pagination>,
) -> Option<UpstreamPage> {
    next_page_number(page, len, per_page, pagination.and_then(|p| *p.total_pages))
}

impl Zipchat {
    fn origin(&self) -> Origin<'_> {
        self.edge.info.origin()
    }

    fn call(&self, op: Operation, method: Method, rest: &[&str]) -> Call {
        let mut path = vec!["chats".to_owned(), self.chat_id.clone()];
        path.extend(rest.iter().map(|s| (*s).to_owned()));
        Call::new(op, method, path)
    }

    async fn show(
        &self,
        op: Operation,
        id: &str,
        message_page: u32,
        per_page: u32,
        query: Option<&MessageQuery>,
        keep_raw: bool,
    ) -> Result<(wire::Conversation, Option<Value>)> {
        let mut call = self
            .call(op, Method::GET, &["conversations", native_id(id)?])
            .query("message_page", message_page)
            .query("message_per_page", per_page);
        if let Some(since) = query.and_then(|q| q.since) {
            call = call.query(
                "message_created_at_since",
                since.to_rfc3339_opts(SecondsFormat::Secs, true),
            );
        }
        let (envelope, raw) = self
            .edge
            .upstream
            .send(&call)
            .await?
            .json_keeping_raw::<wire::ConversationEnvelope>(keep_raw)?;
        Ok((envelope.into_inner(), raw))
    }

    fn messages_page(
        &self,
        id: &str,
        conversation: wire::Conversation,
        include_raw: bool,
        next: Option<UpstreamPage>,
    ) -> Page<Message> {
        let fallback = conversation
            .last_message_at
            .or(*conversation.created_at)
            .unwrap_or_default();
        let at = self.origin().in_conversation(id, fallback);
        let mut items: Vec<Message> = tolerant::items_with_raw::<wire::Message>(
            conversation.messages.into_inner(),
            include_raw,
        )
        .into_iter()
        .map(|(m, raw)| mapping::message(&at, m, raw))
        .collect();
        items.reverse();
        Page { items, next }
    }
}

#[async_trait]
impl Provider for Zipchat {
    fn info(&self) -> &ProviderInfo {
        &self.edge.info
    }

    fn health(&self) -> switchboard_core::ConnectionHealth {
        self.edge.upstream.health()
    }

    async fn list_conversations(
        &self,
        query: &ListQuery<'_>,
        page: &UpstreamPage,
    ) -> Result<Page<Conversation>> {
        let page = page_number(page)?;
        let per_page = query.page_size.clamp(1, MAX_PAGE_SIZE);
        let mut call = self
            .call(
                Operation::ListConversations,
                Method::GET,
                &["conversations"],
            )
            .query("page", page)
            .query("per_page", per_page);
        if let Some(since) = query.filter.updated_since {
            call = call.query(
                "last_message_at_since",
                since.to_rfc3339_opts(SecondsFormat::Secs, true),
            );
        }
        let response = self.edge.upstream.send(&call).await?;
        let (sent, pagination, items) = if query.include_raw {
            let list: wire::ConversationList = response.json()?;
            let sent = list.conversations.len();
            let items = tolerant::items_with_raw(list.conversations, true);
            (sent, list.pagination, items)
        } else {
            let list: wire::ConversationList<tolerant::Item<_>> = response.json()?;
            let sent = list.conversations.len();
            (
                sent,
                list.pagination,
                tolerant::without_raw(list.conversations),
            )
        };
        let next = next_page(page, per_page, sent, pagination.as_ref());
        let items = items
            .into_iter()
            .map(|(c, raw)| mapping::conversation(&self.origin(), c, raw))
            .collect();
        Ok(Page { items, next })
    }

    async fn get_conversation(&self, id: &str, include_raw: bool) -> Result<Conversation> {
        let (conversation, raw) = self
            .show(Operation::GetConversation, id, 1, 1, None, include_raw)
            .await?;
        Ok(mapping::conversation(&self.origin(), conversation, raw))
    }

    async fn list_messages(
        &self,
        id: &str,
        query: &MessageQuery,
        page: &UpstreamPage,
    ) -> Result<Page<Message>> {
        let per_page = query.page_size.clamp(1, MAX_MESSAGE_PAGE_SIZE);
        let op = Operation::ListMessages;
        // Zipchat pages messages oldest first; the gateway serves them newest first, so a
        // traversal starts at the last page and walks back.
        if let UpstreamPage::Number(n) = page {
            let (conversation, _) = self.show(op, id, *n, per_page, Some(query), false).await?;
            let next = (*n > 1).then(|| UpstreamPage::Number(n - 1));
            return Ok(self.messages_page(id, conversation, query.include_raw, next));
        }
        let (first, _) = self.show(op, id, 1, per_page, Some(query), false).await?;
        match first
            .message_pagination
            .as_ref()
            .and_then(|p| *p.total_pages)
        {
            Some(total) if total > 1 => {
                let last = u32::try_from(total).unwrap_or(u32::MAX);
                let (conversation, _) = self
                    .show(op, id, last, per_page, Some(query), false)
                    .await?;
                Ok(self.messages_page(
                    id,
                    conversation,
                    query.include_raw,
                    Some(UpstreamPage::Number(last - 1)),
                ))
            }
            Some(_) => Ok(self.messages_page(id, first, query.include_raw, None)),
            None => {
                // No metadata: read forward (bounded) and serve everything as one page.
                let mut all = first;
                let mut n = 1;
                let mut len = all.messages.len();
                while len >= per_page as usize && n < MAX_MESSAGE_PAGES_WITHOUT_METADATA {
                    n += 1;
                    let (more, _) = self.show(op, id, n, per_page, Some(query), false).await?;
                    len = more.messages.len();
                    all.messages.extend(more.messages);
                }
                Ok(self.messages_page(id, all, query.include_raw, None))
            }
        }
    }

    async fn list_agents(&self, page: &UpstreamPage) -> Result<Page<Agent>> {
        let page = page_number(page)?;
        let call = self
            .call(Operation::ListAgents, Method::GET, &["users"])
            .query("page", page)
            .query("per_page", MAX_PAGE_SIZE);
        let list: wire::UserList = self.edge.upstream.send(&call).await?.json()?;
        let next = next_page(
            page,
            MAX_PAGE_SIZE,
            list.users.len(),
            list.pagination.as_ref(),
        );
        let items = list
            .users
            .into_iter()
            .filter_map(|u| mapping::agent(&self.origin(), u))
            .collect();
        Ok(Page { items, next })
    }

    async fn set_assignment(&self, id: &str, assignment: Assignment) -> Result<Conversation> {
        let (op, assignee) = match &assignment {
            Assignment::Agent(agent) => {
                let agent: u64 = agent.parse().map_err(|_| invalid_assignee())?;
                (Operation::Assign, json!(agent))
            }
            Assignment::Unassigned => (Operation::Unassign, Value::Null),
        };
        let call = self
            .call(
                op,
                Method::PATCH,
                &["conversations", native_id(id)?, "assignment"],
            )
            .json(json!({ "assignee_id": assignee }));
        let response = self.edge.upstream.send(&call).await?;
        // The response body is not documented: use it when it is the conversation, else re-read.
        match response
            .json::<wire::ConversationEnvelope>()
            .map(wire::ConversationEnvelope::into_inner)
        {
            Ok(c) if c.id == id && c.manual_reply_mode.is_some() => {
                Ok(mapping::conversation(&self.origin(), c, None))
            }
            _ => self.get_conversation(id, false).await,
        }
    }

    async fn send_message(&self, id: &str, message: NewMessage) -> Result<Message> {
        let id = native_id(id)?;
        // Zipchat needs a sender: default to the agent the conversation is assigned to.
        let sender = match message.sender {
            Some(s) => s,
            None => {
                let conversation = self.get_conversation(id, false).await?;
                match conversation.assignee {
                    Some(agent) => agent.native_id,
                    None => {
                        return Err(Error::new(
                            ErrorKind::Conflict,
                            "the conversation is answered by the AI; take it over (assign it to an agent) before replying",
                        )
                        .with_code(codes::CONVERSATION_IN_AI_MODE));
                    }
                }
            }
        };
        let sender_id: u64 = sender.parse().map_err(|_| invalid_sender())?;
        let call = self
            .call(
                Operation::SendMessage,
                Method::POST,
                &["conversations", id, "messages"],
            )
            .json(json!({ "message": message.text, "sender_id": sender_id }));
        let response = self.edge.upstream.send(&call).await?;
        if let Ok(sent) = response.json::<wire::MessageEnvelope>() {
            let at = self.origin().in_conversation(id, chrono::Utc::now());
            return Ok(mapping::message(&at, sent.into_inner(), None));
        }
        // The response body is not documented: find the reply among the newest messages.
        self.edge
            .find_sent_reply(self, id, |m| {
                m.text == message.text && m.sender.as_ref().is_some_and(|s| s.native_id == sender)
            })
            .await
    }

    async fn set_status(&self, _id: &str, _status: Status) -> Result<Conversation> {
        Err(Error::unsupported(Operation::SetStatus))
    }

    async fn passthrough(&self, request: PassthroughRequest) -> Result<PassthroughAnswer> {
        self.edge.passthrough(&request).await
    }
}
