//! The Octopush connection: the `Provider` implementation.

use std::sync::Arc;

use async_trait::async_trait;
use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_core::{
    Agent, Assignment, Conversation, Error, ErrorKind, ListQuery, Message, MessageQuery,
    NewMessage, Operation, Origin, Page, PassthroughAnswer, PassthroughRequest, Provider,
    ProviderInfo, Result, Status, UpstreamPage, codes, tolerant,
};
use switchboard_upstream::{
    Adapter, Call, Edge, Response, Shared, Vendor, native_id, next_page_number, page_number,
};

use crate::config::Config;
use crate::{mapping, wire};
use switchboard_core::inbox::SortWindow;

/// The largest conversation page requested: the documented default `per_page`, treated as the cap
/// (a larger request could be silently cut, and a short page would then end the list early).
pub(crate) const MAX_PAGE_SIZE: u32 = 100;
/// The largest message page requested: the documented default `per_page` of the messages list,
/// for the same reason.
pub(crate) const MAX_MESSAGE_PAGE_SIZE: u32 = 50;

/// Octopush has no endpoint for one conversation: it is looked up in the conversation list, at
/// most this many pages of [`MAX_PAGE_SIZE`] deep, i.e. among the 1,000 most recently active
/// conversations. An older one is `not_found` (it still shows in the list and its messages).
pub const MAX_LOOKUP_PAGES: u32 = 10;

/// The longest SMS text Octopush sends (DOC: 1 to 1,224 characters).
const MAX_TEXT_CHARS: usize = 1224;

/// What every reply is sent as: a premium (sender-named) transactional SMS that can be answered.
const SMS_TYPE: &str = "sms_premium";
const SMS_PURPOSE: &str = "alert";

/// An Octopush connection.
#[derive(Debug)]
pub struct Octopush {
    edge: Edge,
    sender: String,
}

/// The page after `page` when this one was full (the list is a bare array: a short page ends it).
fn next_page(page: u32, per_page: u32, len: usize) -> Option<UpstreamPage> {
    next_page_number(page, len, per_page, None)
}

fn header(value: &str, what: &str) -> Result<HeaderValue> {
    let mut v = HeaderValue::from_str(value).map_err(|_| {
        Error::new(
            ErrorKind::Config,
            format!("the {what} contains characters not allowed in a header"),
        )
    })?;
    v.set_sensitive(true);
    Ok(v)
}

impl Adapter for Octopush {
    type Config = Config;
    const VENDOR: &'static Vendor = &crate::VENDOR;

    fn connect(connection: &str, config: &Config, shared: &Shared) -> Result<Octopush> {
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static("api-login"),
            header(&config.api_login, "api_login")?,
        );
        headers.insert(
            HeaderName::from_static("api-key"),
            config.api_key.header_value("", "api_key")?,
        );
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let mut edge = Edge::new(
            Self::VENDOR,
            connection,
            &config.connection,
            shared,
            headers,
        )?;
        edge.info.sort_window = Arc::new(SortWindow::new(config.sort_window_pages));
        let sender = config.sender.clone();
        Ok(Octopush { edge, sender })
    }
}

impl Octopush {
    fn origin(&self) -> Origin<'_> {
        self.edge.info.origin()
    }

    /// One page of `GET /conversations/list`.
    async fn list_page(&self, op: Operation, page: u32, per_page: u32) -> Result<Response> {
        let call = Call::new(op, Method::GET, ["conversations", "list"])
            .query("page", page)
            .query("per_page", per_page);
        self.edge.upstream.send(&call).await
    }

    /// One raw page of `GET /conversations/list`.
    async fn conversations_page(
        &self,
        op: Operation,
        page: u32,
        per_page: u32,
    ) -> Result<Vec<Value>> {
        let body: Value = self.list_page(op, page, per_page).await?.json()?;
        wire::list_items(body).ok_or_else(|| self.edge.unreadable())
    }

    /// A page's conversations and how many items the vendor sent; each with its JSON when
    /// `keep_raw`. The documented bare array is read straight into conversations; the other
    /// shapes tolerated go through JSON.
    async fn conversations(
        &self,
        op: Operation,
        page: u32,
        per_page: u32,
        keep_raw: bool,
    ) -> Result<(usize, Vec<(wire::Conversation, Option<Value>)>)> {
        let response = self.list_page(op, page, per_page).await?;
        if !keep_raw && response.body.trim_ascii_start().starts_with(b"[") {
            let items: Vec<tolerant::Item<wire::Conversation>> = response.json()?;
            return Ok((items.len(), tolerant::without_raw(items)));
        }
        let body: Value = response.json()?;
        let raw = wire::list_items(body).ok_or_else(|| self.edge.unreadable())?;
        Ok((raw.len(), tolerant::items_with_raw(raw, keep_raw)))
    }

    /// Finds conversation `id` (with or without its `cid_` prefix) in the first
    /// [`MAX_LOOKUP_PAGES`] pages of the list; returns it and its JSON.
    async fn find(&self, op: Operation, id: &str) -> Result<(wire::Conversation, Value)> {
        let id = native_id(id)?;
        for page in 1..=MAX_LOOKUP_PAGES {
            let items = self.conversations_page(op, page, MAX_PAGE_SIZE).await?;
            let full = items.len() >= MAX_PAGE_SIZE as usize;
            for raw in items {
                let Ok(c) = wire::Conversation::deserialize(&raw) else {
                    continue;
                };
                if c.conversation_id
                    .as_deref()
                    .is_some_and(|cid| mapping::same_conversation(cid, id))
                {
                    return Ok((c, raw));
                }
            }
            if !full {
                break;
            }
        }
        Err(Error::not_found(
            "no such conversation among this connection's 1,000 most recently active conversations",
        ))
    }
}

#[async_trait]
impl Provider for Octopush {
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
        let (sent, items) = self
            .conversations(
                Operation::ListConversations,
                page,
                per_page,
                query.include_raw,
            )
            .await?;
        let next = next_page(page, per_page, sent);
        // In the vendor's order, which is undocumented: the capabilities say so, and the gateway
        // sorts.
        let mut mapped = Vec::with_capacity(items.len());
        mapped.extend(
            items
                .into_iter()
                .filter_map(|(c, raw)| mapping::conversation(&self.origin(), c, raw)),
        );
        Ok(Page {
            items: mapped,
            next,
        })
    }

    async fn get_conversation(&self, id: &str, include_raw: bool) -> Result<Conversation> {
        let (conversation, raw) = self.find(Operation::GetConversation, id).await?;
        mapping::conversation(&self.origin(), conversation, include_raw.then_some(raw))
            .ok_or_else(|| Error::not_found("no such conversation on this connection"))
    }

    async fn list_messages(
        &self,
        id: &str,
        query: &MessageQuery,
        page: &UpstreamPage,
    ) -> Result<Page<Message>> {
        let id = native_id(id)?;
        let page = page_number(page)?;
        let per_page = query.page_size.clamp(1, MAX_MESSAGE_PAGE_SIZE);
        // The id goes back exactly as the list gave it (`cid_{uuid}` per the docs).
        let call = Call::new(
            Operation::ListMessages,
            Method::GET,
            ["conversations", "messages", "list"],
        )
        .query("conversation_id", id)
        .query("page", page)
        .query("per_page", per_page);
        let body: Value = self.edge.upstream.send(&call).await?.json()?;
        let raw = wire::list_items(body).ok_or_else(|| self.edge.unreadable())?;
        let raw_len = raw.len();
        let at = self
            .origin()
            .in_conversation(id, chrono::DateTime::UNIX_EPOCH);
        let mut items: Vec<Message> =
            tolerant::items_with_raw::<wire::Message>(raw, query.include_raw)
                .into_iter()
                .filter_map(|(m, raw)| mapping::message(&at, m, raw))
                .collect();
        // The order is undocumented: pages are taken as newest first and each is sorted so.
        items.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| b.id.cmp(&a.id))
        });
        // No native `since`: filter here, and stop at the first page reaching older messages.
        let reached_older = query
            .since
            .is_some_and(|since| items.iter().any(|m| m.created_at < since));
        if let Some(since) = query.since {
            items.retain(|m| m.created_at >= since);
        }
        let next = if reached_older {
            None
        } else {
            next_page(page, per_page, raw_len)
        };
        Ok(Page { items, next })
    }

    async fn list_agents(&self, _page: &UpstreamPage) -> Result<Page<Agent>> {
        Err(Error::unsupported(Operation::ListAgents))
    }

    async fn set_assignment(&self, _id: &str, assignment: Assignment) -> Result<Conversation> {
        Err(Error::unsupported(match assignment {
            Assignment::Agent(_) => Operation::Assign,
            Assignment::Unassigned => Operation::Unassign,
        }))
    }

    async fn send_message(&self, id: &str, message: NewMessage) -> Result<Message> {
        let id = native_id(id)?;
        if message.sender.is_some() {
            return Err(Error::new(
                ErrorKind::Unprocessable,
                "Octopush has no agents: a reply goes out under the connection's SMS sender; omit sender_id",
            )
            .with_code(codes::INVALID_SENDER)
            .with_parameter("sender_id"));
        }
        let length = message.text.chars().count();
        if message.text.trim().is_empty() || length > MAX_TEXT_CHARS {
            return Err(Error::invalid_parameter(
                "text",
                format!(
                    "an SMS reply holds 1 to {MAX_TEXT_CHARS} characters (this one has {length})"
                ),
            ));
        }
        let (conversation, _) = self.find(Operation::SendMessage, id).await?;
        let native_id = conversation
            .conversation_id
            .as_deref()
            .unwrap_or(id)
            .to_owned();
        let phone = mapping::reply_phone(&conversation).ok_or_else(|| {
            Error::new(
                ErrorKind::Conflict,
                "the conversation has no phone number to reply to by SMS",
            )
        })?;
        let mut body = json!({
            "text": message.text,
            "recipients": [{ "phone_number": phone }],
            "type": SMS_TYPE,
            "purpose": SMS_PURPOSE,
            "sender": self.sender,
            "with_replies": true,
        });
        // Octopush drops a second send with the same request_id within 24 h.
        if let Some(key) = &message.idempotency_key {
            body["request_id"] = json!(key);
        }
        let call = Call::new(
            Operation::SendMessage,
            Method::POST,
            ["sms-campaign", "send"],
        )
        .json(body);
        let response = self.edge.upstream.send(&call).await?;
        let sent_but_unreadable = || {
            Error::new(
                ErrorKind::UpstreamUnavailable,
                "Octopush accepted the SMS, but its answer could not be read",
            )
            .with_connection(self.edge.connection())
            .set_temporary(false)
        };
        let sent: wire::SendResponse = response.json().map_err(|_| sent_but_unreadable())?;
        let at = self
            .origin()
            .in_conversation(&native_id, chrono::Utc::now());
        mapping::sent_message(&at, &sent, &message.text).ok_or_else(sent_but_unreadable)
    }

    async fn set_status(&self, _id: &str, _status: Status) -> Result<Conversation> {
        Err(Error::unsupported(Operation::SetStatus))
    }

    async fn passthrough(&self, request: PassthroughRequest) -> Result<PassthroughAnswer> {
        self.edge.passthrough(&request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_page_ends_the_list() {
        assert_eq!(next_page(1, 100, 100), Some(UpstreamPage::Number(2)));
        assert_eq!(next_page(3, 100, 99), None);
        assert_eq!(next_page(u32::MAX, 1, 1), None);
        assert!(page_number(&UpstreamPage::Cursor("x".into())).is_err());
        assert!(page_number(&UpstreamPage::Number(0)).is_err());
    }
}
