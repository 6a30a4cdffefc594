//! The Zipchat connection: the `Provider` implementation.

use async_trait::async_trait;
use chrono::SecondsFormat;
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, HeaderMap};
use serde_json::{Value, json};
use switchboard_core::{
    Agent, Assignment, Conversation, Error, ErrorKind, ListQuery, Message, MessageQuery,
    NewMessage, Operation, Page, Provider, ProviderInfo, ProviderKind, Result, Status,
    UpstreamPage, codes, tolerant,
};
use switchboard_upstream::{Call, Shared, Timeouts, Upstream, native_id, options};

use crate::config::{Config, DEFAULT_BASE_URL, DEFAULT_RATE_LIMIT};
use crate::{capabilities, error, mapping, wire};

/// Largest `per_page` for conversations and users.
const MAX_PER_PAGE: u32 = 100;
/// Largest `message_per_page`.
const MAX_MESSAGE_PER_PAGE: u32 = 200;
/// Without page metadata, message pages are read oldest first up to this many pages to find the
/// newest ones.
const MAX_MESSAGE_PAGES_WITHOUT_METADATA: u32 = 10;

/// A Zipchat connection.
#[derive(Debug)]
pub struct Zipchat {
    info: ProviderInfo,
    chat_id: String,
    upstream: Upstream,
}

fn page_number(page: &UpstreamPage) -> Result<u32> {
    match page {
        UpstreamPage::First => Ok(1),
        UpstreamPage::Number(n) if *n >= 1 => Ok(*n),
        _ => Err(Error::new(
            ErrorKind::InvalidRequest,
            "the cursor does not fit this connection",
        )
        .with_code(codes::INVALID_CURSOR)),
    }
}

/// The next page after `page`, from metadata when present, else from a full page.
fn next_page(
    page: u32,
    per_page: u32,
    len: usize,
    pagination: Option<&wire::Pagination>,
) -> Option<UpstreamPage> {
    let more = match pagination.and_then(|p| p.total_pages) {
        Some(total) => u64::from(page) < total,
        None => len >= per_page as usize,
    };
    more.then_some(UpstreamPage::Number(page + 1))
}

impl Zipchat {
    /// A connection with id `connection` from its config section.
    pub fn new(connection: &str, config: &Config, shared: &Shared) -> Result<Zipchat> {
        let options = options(
            config.base_url.as_ref(),
            DEFAULT_BASE_URL,
            config.rate_limit,
            Some(DEFAULT_RATE_LIMIT),
            Timeouts {
                total_secs: config.timeout_secs,
                connect_secs: config.connect_timeout_secs,
            },
            shared,
        )
        .map_err(|e| Error::new(ErrorKind::Config, "invalid base_url").with_source(e))?;
        let auth = config.api_key.header_value("Bearer ", "api_key")?;
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, auth);
        Ok(Zipchat {
            info: ProviderInfo {
                kind: ProviderKind::Zipchat,
                connection: connection.to_owned(),
                capabilities: capabilities(),
            },
            chat_id: config.chat_id.clone(),
            upstream: Upstream::new(connection, options, headers, error::parse_error)?,
        })
    }

    fn connection(&self) -> &str {
        &self.info.connection
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
    ) -> Result<(wire::Conversation, Value)> {
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
        let response = self.upstream.send(&call).await?;
        let raw: Value = response.json()?;
        let conversation = serde_json::from_value::<wire::ConversationEnvelope>(raw.clone())
            .map_err(|e| unreadable(e, self.connection()))?
            .into_inner();
        Ok((conversation, raw))
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
            .or(conversation.created_at)
            .unwrap_or_default();
        let mut items: Vec<Message> =
            tolerant::items_with_raw::<wire::Message>(conversation.messages, include_raw)
                .into_iter()
                .map(|(m, raw)| mapping::message(self.connection(), id, m, fallback, raw))
                .collect();
        items.reverse();
        Page { items, next }
    }
}

fn unreadable(e: serde_json::Error, connection: &str) -> Error {
    Error::new(
        ErrorKind::UpstreamUnavailable,
        "Zipchat answered with a body the gateway could not read",
    )
    .with_connection(connection)
    .with_source(e)
}

#[async_trait]
impl Provider for Zipchat {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }

    fn health(&self) -> switchboard_core::ConnectionHealth {
        self.upstream.health()
    }

    async fn list_conversations(
        &self,
        query: &ListQuery<'_>,
        page: &UpstreamPage,
    ) -> Result<Page<Conversation>> {
        let page = page_number(page)?;
        let per_page = query.page_size.clamp(1, MAX_PER_PAGE);
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
        let list: wire::ConversationList = self.upstream.send(&call).await?.json()?;
        let next = next_page(
            page,
            per_page,
            list.conversations.len(),
            list.pagination.as_ref(),
        );
        let items =
            tolerant::items_with_raw::<wire::Conversation>(list.conversations, query.include_raw)
                .into_iter()
                .map(|(c, raw)| mapping::conversation(self.connection(), c, raw))
                .collect();
        Ok(Page { items, next })
    }

    async fn get_conversation(&self, id: &str) -> Result<Conversation> {
        let (conversation, raw) = self
            .show(Operation::GetConversation, id, 1, 1, None)
            .await?;
        Ok(mapping::conversation(
            self.connection(),
            conversation,
            Some(raw),
        ))
    }

    async fn list_messages(
        &self,
        id: &str,
        query: &MessageQuery,
        page: &UpstreamPage,
    ) -> Result<Page<Message>> {
        let per_page = query.page_size.clamp(1, MAX_MESSAGE_PER_PAGE);
        let op = Operation::ListMessages;
        // Zipchat pages messages oldest first; the gateway serves them newest first, so a
        // traversal starts at the last page and walks back.
        if let UpstreamPage::Number(n) = page {
            let (conversation, _) = self.show(op, id, *n, per_page, Some(query)).await?;
            let next = (*n > 1).then(|| UpstreamPage::Number(n - 1));
            return Ok(self.messages_page(id, conversation, query.include_raw, next));
        }
        let (first, _) = self.show(op, id, 1, per_page, Some(query)).await?;
        match first
            .message_pagination
            .as_ref()
            .and_then(|p| p.total_pages)
        {
            Some(total) if total > 1 => {
                let last = u32::try_from(total).unwrap_or(u32::MAX);
                let (conversation, _) = self.show(op, id, last, per_page, Some(query)).await?;
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
                    let (more, _) = self.show(op, id, n, per_page, Some(query)).await?;
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
            .query("per_page", MAX_PER_PAGE);
        let list: wire::UserList = self.upstream.send(&call).await?.json()?;
        let next = next_page(
            page,
            MAX_PER_PAGE,
            list.users.len(),
            list.pagination.as_ref(),
        );
        let items = list
            .users
            .iter()
            .map(|u| mapping::agent(self.connection(), u))
            .collect();
        Ok(Page { items, next })
    }

    async fn set_assignment(&self, id: &str, assignment: Assignment) -> Result<Conversation> {
        let (op, assignee) = match &assignment {
            Assignment::Agent(agent) => {
                let agent: u64 = agent.parse().map_err(|_| {
                    Error::new(
                        ErrorKind::Unprocessable,
                        "the agent cannot be assigned on this connection",
                    )
                    .with_code(codes::INVALID_ASSIGNEE)
                    .with_parameter("assignee_id")
                })?;
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
        let response = self.upstream.send(&call).await?;
        // The response body is not documented: use it when it is the conversation, else re-read.
        match response
            .json::<wire::ConversationEnvelope>()
            .map(wire::ConversationEnvelope::into_inner)
        {
            Ok(c) if c.id == id && c.manual_reply_mode.is_some() => {
                Ok(mapping::conversation(self.connection(), c, None))
            }
            _ => self.get_conversation(id).await,
        }
    }

    async fn send_message(&self, id: &str, message: NewMessage) -> Result<Message> {
        let id = native_id(id)?;
        // Zipchat needs a sender: default to the agent the conversation is assigned to.
        let sender = match message.sender {
            Some(s) => s,
            None => {
                let conversation = self.get_conversation(id).await?;
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
        let sender_id: u64 = sender.parse().map_err(|_| {
            Error::new(
                ErrorKind::Unprocessable,
                "the sender is not an agent of this connection",
            )
            .with_code(codes::INVALID_SENDER)
            .with_parameter("sender_id")
        })?;
        let call = self
            .call(
                Operation::SendMessage,
                Method::POST,
                &["conversations", id, "messages"],
            )
            .json(json!({ "message": message.text, "sender_id": sender_id }));
        let response = self.upstream.send(&call).await?;
        let now = chrono::Utc::now();
        if let Ok(sent) = response.json::<wire::MessageEnvelope>() {
            return Ok(mapping::message(
                self.connection(),
                id,
                sent.into_inner(),
                now,
                None,
            ));
        }
        // The response body is not documented: find the reply among the newest messages.
        let query = MessageQuery {
            since: None,
            page_size: 20,
            include_raw: false,
        };
        let newest = self.list_messages(id, &query, &UpstreamPage::First).await?;
        newest
            .items
            .into_iter()
            .find(|m| {
                m.text == message.text && m.sender.as_ref().is_some_and(|s| s.native_id == sender)
            })
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::UpstreamUnavailable,
                    "the reply was sent, but Zipchat's answer could not be read",
                )
                .set_temporary(false)
            })
    }

    async fn set_status(&self, _id: &str, _status: Status) -> Result<Conversation> {
        Err(Error::unsupported(Operation::SetStatus))
    }
}
