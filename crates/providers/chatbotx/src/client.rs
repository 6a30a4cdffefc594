//! The ChatbotX connection: the `Provider` implementation.

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_core::{
    Agent, Assignment, Conversation, ConversationFilter, Error, ErrorKind, ListQuery, Message,
    MessageQuery, Mode, NewMessage, Operation, Origin, Page, PassthroughAnswer, PassthroughRequest,
    Provider, ProviderInfo, Result, Status, UpstreamPage, codes, tolerant,
};
use switchboard_upstream::{
    Adapter, Call, Edge, Shared, Vendor, invalid_assignee, invalid_cursor, native_id,
    next_page_number, page_number,
};

use crate::config::Config;
use crate::{mapping, wire};

/// Largest conversation page asked for (ChatbotX sets no cap; the gateway's own limit is 100).
pub(crate) const MAX_PAGE_SIZE: u32 = 100;
/// Largest message page ChatbotX serves (`PUBLIC_LIST_MAX_PER_PAGE`).
pub(crate) const MAX_MESSAGE_PAGE_SIZE: u32 = 50;
/// Members per page (`PUBLIC_LIST_MAX_PER_PAGE`).
const MEMBERS_PER_PAGE: u32 = 50;
/// Longest reply ChatbotX accepts, in characters (after trimming).
const MAX_TEXT_CHARS: usize = 1000;
/// Longest `Idempotency-Key` ChatbotX accepts.
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// A ChatbotX connection.
#[derive(Debug)]
pub struct Chatbotx {
    edge: Edge,
}

fn is_numeric(id: &str) -> bool {
    !id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit())
}

/// The vendor cursor to continue from (`None`: the first page).
fn cursor(page: &UpstreamPage) -> Result<Option<&str>> {
    match page {
        UpstreamPage::First => Ok(None),
        UpstreamPage::Cursor(c) if !c.is_empty() => Ok(Some(c)),
        _ => Err(invalid_cursor()),
    }
}

/// Which of ChatbotX's two conversation lists a filter needs: the default one hides archived
/// conversations, and `tags=["archived"]` shows only them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lists {
    None,
    Open,
    Archived,
    Both,
}

fn lists_for(filter: &ConversationFilter) -> Lists {
    let wants = |s: Status| filter.status.is_empty() || filter.status.contains(&s);
    match (wants(Status::Open), wants(Status::Closed)) {
        (true, true) => Lists::Both,
        (true, false) => Lists::Open,
        (false, true) => Lists::Archived,
        (false, false) => Lists::None,
    }
}

impl Adapter for Chatbotx {
    type Config = Config;
    const VENDOR: &'static Vendor = &crate::VENDOR;

    fn connect(connection: &str, config: &Config, shared: &Shared) -> Result<Chatbotx> {
        let auth = config.token.bearer("token")?;
        let edge = Edge::new(Self::VENDOR, connection, &config.connection, shared, auth)?;
        Ok(Chatbotx { edge })
    }
}

impl Chatbotx {
    fn origin(&self) -> Origin<'_> {
        self.edge.info.origin()
    }

    fn call(op: Operation, method: Method, rest: &[&str]) -> Call {
        let mut path = vec!["v1".to_owned()];
        path.extend(rest.iter().map(|s| (*s).to_owned()));
        Call::new(op, method, path)
    }

    /// One page of one conversation list, with the filters ChatbotX applies itself.
    fn list_call(
        filter: &ConversationFilter,
        archived: bool,
        cursor: Option<&str>,
        per_page: u32,
    ) -> Call {
        let mut call = Self::call(
            Operation::ListConversations,
            Method::GET,
            &["conversations"],
        )
        .query("perPage", per_page);
        if let Some(c) = cursor {
            call = call.query("cursor", c);
        }
        if archived {
            call = call.query("tags", r#"["archived"]"#);
        }
        if let Some(mode) = filter.mode {
            call = call.query("botEnabled", mode == Mode::Ai);
        }
        // ChatbotX filters one channel; for several, the gateway filters.
        if let [one] = filter.channel.as_slice()
            && let Some(native) = mapping::native_channel(*one)
        {
            call = call.query("channel", native);
        }
        if let Some(assignee) = filter.assignee.as_deref().filter(|a| is_numeric(a)) {
            // The list's assignee filter names users as `u_{userId}` (teams `t_{id}`).
            call = call.query("assignedId", format!("u_{assignee}"));
        }
        call
    }

    async fn fetch_list(
        &self,
        call: Call,
        include_raw: bool,
    ) -> Result<(Vec<(wire::Conversation, Option<Value>)>, Option<String>)> {
        let response = self.edge.upstream.send(&call).await?;
        if include_raw {
            let list: wire::ConversationList = response.json()?;
            Ok((
                tolerant::items_with_raw(list.data, true),
                list.next_cursor.into(),
            ))
        } else {
            let list: wire::ConversationList<tolerant::Item<_>> = response.json()?;
            Ok((tolerant::without_raw(list.data), list.next_cursor.into()))
        }
    }

    fn map_page(
        &self,
        items: Vec<(wire::Conversation, Option<Value>)>,
        next: Option<String>,
    ) -> Page<Conversation> {
        let items = items
            .into_iter()
            .map(|(c, raw)| mapping::conversation(&self.origin(), c, raw))
            .collect();
        Page {
            items,
            next: next.map(UpstreamPage::Cursor),
        }
    }

    /// Open and archived conversations together: both lists from the same position, merged in
    /// ChatbotX's order; the next page continues both lists after the last item served.
    async fn list_both(
        &self,
        filter: &ConversationFilter,
        cursor: Option<&str>,
        per_page: u32,
        include_raw: bool,
    ) -> Result<Page<Conversation>> {
        let (open, archived) = tokio::join!(
            self.fetch_list(
                Self::list_call(filter, false, cursor, per_page),
                include_raw
            ),
            self.fetch_list(Self::list_call(filter, true, cursor, per_page), include_raw),
        );
        let (open, open_next) = open?;
        let (archived, archived_next) = archived?;
        let mut seen = HashSet::new();
        // Each conversation's list time is read once, not at every comparison of the sort.
        let mut listed: Vec<_> = open
            .into_iter()
            .chain(archived)
            .filter(|(c, _)| seen.insert(c.id.clone()))
            .map(|item| (mapping::listed_at(&item.0), item))
            .collect();
        listed.sort_by(|(at_a, a), (at_b, b)| {
            mapping::list_order((*at_a, &a.0.id), (*at_b, &b.0.id))
        });
        let more =
            listed.len() > per_page as usize || open_next.is_some() || archived_next.is_some();
        listed.truncate(per_page as usize);
        let items: Vec<(wire::Conversation, Option<Value>)> =
            listed.into_iter().map(|(_, item)| item).collect();
        let next = items
            .last()
            .filter(|_| more)
            .map(|(last, _)| wire::conversation_cursor(last.last_activity_at.as_deref(), &last.id));
        Ok(self.map_page(items, next))
    }

    /// `GET /v1/conversations/{id}`; the item's JSON kept as `raw` when `keep_raw`.
    async fn fetch_conversation(
        &self,
        op: Operation,
        id: &str,
        keep_raw: bool,
    ) -> Result<Conversation> {
        let call = Self::call(op, Method::GET, &["conversations", native_id(id)?]);
        let response = self.edge.upstream.send(&call).await?;
        let (conversation, raw) = if keep_raw {
            let raw = response.json::<wire::Envelope>()?.into_inner();
            let conversation = wire::Conversation::deserialize(&raw)
                .map_err(|e| self.edge.unreadable().with_operation(op).with_source(e))?;
            (conversation, Some(raw))
        } else {
            let envelope = response.json::<wire::Envelope<wire::Conversation>>()?;
            (envelope.into_inner(), None)
        };
        Ok(mapping::conversation(&self.origin(), conversation, raw))
    }

    /// `POST /v1/conversations/{id}/{action}` (`assign`, `disable-bot`, `archive`, …).
    async fn conversation_action(
        &self,
        op: Operation,
        id: &str,
        action: &str,
        body: Option<Value>,
    ) -> Result<()> {
        let mut call = Self::call(op, Method::POST, &["conversations", id, action]);
        if let Some(body) = body {
            call = call.json(body);
        }
        self.edge.upstream.send(&call).await.map(drop)
    }

    fn map_messages(&self, id: &str, items: Vec<Value>, include_raw: bool) -> Vec<Message> {
        let at = self
            .origin()
            .in_conversation(id, DateTime::<Utc>::UNIX_EPOCH);
        let mut messages: Vec<Message> =
            tolerant::items_with_raw::<wire::Message>(items, include_raw)
                .into_iter()
                .filter(|(m, _)| !mapping::is_internal(m))
                .map(|(m, raw)| mapping::message(&at, m, raw))
                .collect();
        messages.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| mapping::compare_ids(&b.native_id, &a.native_id))
        });
        messages
    }
}

fn idempotency_header(key: Option<&str>) -> Result<HeaderMap> {
    let mut headers = HeaderMap::new();
    let Some(key) = key else {
        return Ok(headers);
    };
    let invalid = || {
        Error::invalid_parameter(
            "idempotency_key",
            "ChatbotX accepts an Idempotency-Key of 1 to 255 visible ASCII characters",
        )
    };
    let visible = key.bytes().all(|b| b == b' ' || b.is_ascii_graphic());
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY || !visible {
        return Err(invalid());
    }
    let value = HeaderValue::from_str(key).map_err(|_| invalid())?;
    headers.insert(HeaderName::from_static("idempotency-key"), value);
    Ok(headers)
}

#[async_trait]
impl Provider for Chatbotx {
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
        let cursor = cursor(page)?;
        let per_page = query.page_size.clamp(1, MAX_PAGE_SIZE);
        let filter = query.filter;
        if filter.assignee.as_deref().is_some_and(|a| !is_numeric(a)) {
            // No ChatbotX user has a non-numeric id: nothing can match.
            return Ok(Page::last(Vec::new()));
        }
        let archived = match lists_for(filter) {
            Lists::None => return Ok(Page::last(Vec::new())),
            Lists::Both => {
                return self
                    .list_both(filter, cursor, per_page, query.include_raw)
                    .await;
            }
            Lists::Open => false,
            Lists::Archived => true,
        };
        let (items, next) = self
            .fetch_list(
                Self::list_call(filter, archived, cursor, per_page),
                query.include_raw,
            )
            .await?;
        Ok(self.map_page(items, next))
    }

    async fn get_conversation(&self, id: &str, include_raw: bool) -> Result<Conversation> {
        self.fetch_conversation(Operation::GetConversation, id, include_raw)
            .await
    }

    async fn list_messages(
        &self,
        id: &str,
        query: &MessageQuery,
        page: &UpstreamPage,
    ) -> Result<Page<Message>> {
        let id = native_id(id)?;
        let mut call = Self::call(
            Operation::ListMessages,
            Method::GET,
            &["conversations", id, "messages"],
        )
        .query("perPage", query.page_size.clamp(1, MAX_MESSAGE_PAGE_SIZE));
        if let Some(c) = cursor(page)? {
            call = call.query("cursor", c);
        }
        let list: wire::MessageList = self.edge.upstream.send(&call).await?.json()?;
        let mut items = self.map_messages(id, list.data, query.include_raw);
        let mut next = list.next_cursor.into_inner().map(UpstreamPage::Cursor);
        // Newest first: once a message is older than `since`, so is everything after it.
        if let Some(since) = query.since
            && items.iter().any(|m| m.created_at < since)
        {
            items.retain(|m| m.created_at >= since);
            next = None;
        }
        Ok(Page { items, next })
    }

    async fn list_agents(&self, page: &UpstreamPage) -> Result<Page<Agent>> {
        let number = page_number(page)?;
        let call = Self::call(Operation::ListAgents, Method::GET, &["members"])
            .query("page", number)
            .query("perPage", MEMBERS_PER_PAGE)
            .query("keyword", "");
        let list: wire::MemberList = self.edge.upstream.send(&call).await?.json()?;
        let next = next_page_number(number, list.data.len(), MEMBERS_PER_PAGE, *list.page_count);
        let items = list
            .data
            .into_iter()
            .filter_map(|m| mapping::member_agent(&self.origin(), m))
            .collect();
        Ok(Page { items, next })
    }

    async fn set_assignment(&self, id: &str, assignment: Assignment) -> Result<Conversation> {
        let id = native_id(id)?;
        match assignment {
            Assignment::Agent(agent) => {
                let op = Operation::Assign;
                let invalid_assignee = || invalid_assignee().with_operation(op);
                if !is_numeric(&agent) {
                    return Err(invalid_assignee());
                }
                // Taking over: assign the user, then silence the bot.
                self.conversation_action(op, id, "assign", Some(json!({ "assignedId": agent })))
                    .await
                    .map_err(|e| match (e.kind(), e.code()) {
                        (ErrorKind::Unprocessable, codes::UPSTREAM_REJECTED) => invalid_assignee(),
                        _ => e,
                    })?;
                self.conversation_action(op, id, "disable-bot", None)
                    .await?;
                self.fetch_conversation(op, id, false).await
            }
            Assignment::Unassigned => {
                let op = Operation::Unassign;
                // Handing back: the bot answers again, and nobody is assigned.
                self.conversation_action(op, id, "enable-bot", None).await?;
                self.conversation_action(op, id, "assign", Some(json!({ "assignedId": null })))
                    .await?;
                self.fetch_conversation(op, id, false).await
            }
        }
    }

    async fn send_message(&self, id: &str, message: NewMessage) -> Result<Message> {
        let id = native_id(id)?;
        let text = message.text.trim();
        if text.is_empty() {
            return Err(Error::invalid_parameter(
                "text",
                "the reply text is required",
            ));
        }
        if text.chars().count() > MAX_TEXT_CHARS {
            return Err(Error::invalid_parameter(
                "text",
                "ChatbotX accepts a reply of at most 1000 characters",
            ));
        }
        // ChatbotX records API replies as sent by the workspace (`senderType: api`); it has no
        // way to name the agent, so `sender` is not sent.
        let mut call = Self::call(
            Operation::SendMessage,
            Method::POST,
            &["conversations", id, "messages"],
        )
        .json(json!({ "text": text }));
        call.headers = idempotency_header(message.idempotency_key.as_deref())?;
        let response = self.edge.upstream.send(&call).await?;
        // The reply is sent: an empty or unreadable answer is looked up rather than failed.
        let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        if !body.is_null() {
            let raw = match serde_json::from_value::<wire::Envelope>(body) {
                Ok(envelope) => envelope.into_inner(),
                Err(_) => Value::Null,
            };
            if let Ok(sent) = serde_json::from_value::<wire::Message>(raw.clone()) {
                let at = self.origin().in_conversation(id, Utc::now());
                return Ok(mapping::message(&at, sent, Some(raw)));
            }
        }
        // ChatbotX may answer `null`: find the reply among the newest messages.
        self.edge
            .find_sent_reply(self, id, |m| {
                m.text == text && m.author == switchboard_core::Author::Agent
            })
            .await
    }

    async fn set_status(&self, id: &str, status: Status) -> Result<Conversation> {
        let id = native_id(id)?;
        let op = Operation::SetStatus;
        let action = match status {
            Status::Closed => "archive",
            Status::Open => "unarchive",
            // Refused by the capability check before it gets here.
            Status::Pending | Status::Resolved => {
                return Err(Error::invalid_parameter(
                    "status",
                    "a ChatbotX conversation can only be set open or closed (archived)",
                )
                .with_operation(op));
            }
        };
        self.conversation_action(op, id, action, None).await?;
        self.fetch_conversation(op, id, false).await
    }

    async fn passthrough(&self, request: PassthroughRequest) -> Result<PassthroughAnswer> {
        self.edge.passthrough(&request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_core::Channel;

    fn query_of(call: &Call) -> Vec<(&'static str, String)> {
        call.query.clone()
    }

    #[test]
    fn sends_the_native_filters_chatbotx_understands() {
        let filter = ConversationFilter {
            status: vec![Status::Closed],
            mode: Some(Mode::Human),
            channel: vec![Channel::Email],
            assignee: Some("11590944070170002".to_owned()),
            updated_since: None,
        };
        assert_eq!(lists_for(&filter), Lists::Archived);
        let call = Chatbotx::list_call(&filter, true, Some("abc"), 20);
        assert_eq!(call.path, vec!["v1", "conversations"]);
        assert_eq!(
            query_of(&call),
            vec![
                ("perPage", "20".to_owned()),
                ("cursor", "abc".to_owned()),
                ("tags", r#"["archived"]"#.to_owned()),
                ("botEnabled", "false".to_owned()),
                ("channel", "smtp".to_owned()),
                ("assignedId", "u_11590944070170002".to_owned()),
            ]
        );
        let several = ConversationFilter {
            channel: vec![Channel::Web, Channel::Whatsapp],
            status: vec![Status::Resolved],
            ..ConversationFilter::default()
        };
        assert_eq!(lists_for(&several), Lists::None);
        assert_eq!(
            query_of(&Chatbotx::list_call(&several, false, None, 5)),
            vec![("perPage", "5".to_owned())]
        );
        assert_eq!(lists_for(&ConversationFilter::default()), Lists::Both);
    }

    #[test]
    fn rejects_keys_chatbotx_cannot_have() {
        assert!(
            idempotency_header(None)
                .map(|h| h.is_empty())
                .unwrap_or(false)
        );
        assert!(idempotency_header(Some("key-1")).is_ok());
        for bad in ["", "bad\nkey", "clé", &"k".repeat(256)] {
            assert_eq!(
                idempotency_header(Some(bad)).err().map(|e| e.code()),
                Some("invalid_idempotency_key")
            );
        }
        assert_eq!(
            cursor(&UpstreamPage::Number(2)).err().map(|e| e.code()),
            Some("invalid_cursor")
        );
    }
}
