//! The PingBack connection: the login and its cached token, and the `Provider` implementation.

use async_trait::async_trait;
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use switchboard_core::{
    Agent, Assignment, Conversation, Error, ErrorKind, ListQuery, Message, MessageQuery,
    NewMessage, Operation, Origin, Page, PassthroughAnswer, PassthroughRequest, Provider,
    ProviderInfo, Result, Status, UpstreamPage, codes, tolerant,
};
use switchboard_upstream::{
    Adapter, Call, Edge, Response, Secret, Shared, Vendor, invalid_assignee, invalid_cursor,
    native_id, next_page_number, page_number,
};
use tokio::sync::{OnceCell, RwLock};

use crate::config::Config;
use crate::wire::MessageText;
use crate::{mapping, wire};

/// The largest conversation page the adapter asks for (PingBack documents no maximum `limit`).
pub(crate) const MAX_PAGE_SIZE: u32 = 100;
/// The largest message page served: PingBack returns the whole history at once, which the
/// adapter serves newest first in pages of at most this size.
pub(crate) const MAX_MESSAGE_PAGE_SIZE: u32 = 100;

/// The cached login: the `Authorization` value (marked sensitive, so it never prints) and a
/// generation that tells a stale token from one another call already renewed.
#[derive(Debug, Default)]
struct Session {
    authorization: Option<HeaderValue>,
    generation: u64,
}

/// A PingBack connection.
#[derive(Debug)]
pub struct Pingback {
    edge: Edge,
    email: String,
    password: Secret,
    session: RwLock<Session>,
    /// The logged-in user's id (the sender of every reply), read once from `/auth/me`.
    user_id: OnceCell<String>,
}

/// Whether `id` can be a PingBack id: a UUID (32 alphanumerics, hyphenated 8-4-4-4-12 or not;
/// the docs' own examples use letters beyond hex) or, as some of the docs' examples show, an
/// integer.
fn is_pingback_id(id: &str) -> bool {
    let alnum = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric());
    let integer = !id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit());
    let groups: Vec<usize> = id.split('-').map(str::len).collect();
    let uuid = (groups == [8, 4, 4, 4, 12] || groups == [32]) && id.split('-').all(alnum);
    integer || uuid
}

/// A call to `/api/v1/{rest}`; a trailing `""` segment gives a collection's trailing slash.
fn call(op: Operation, method: Method, rest: &[&str]) -> Call {
    Call::new(op, method, ["api", "v1"].iter().chain(rest).copied())
}

/// The JSON of each message of a conversation's detail, by id (for `include=raw`).
fn raw_messages(conversation: Option<&Value>) -> std::collections::HashMap<String, Value> {
    conversation
        .and_then(|c| c.get("messages"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| {
            let id = match m.get("id")? {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return None,
            };
            Some((id, m.clone()))
        })
        .collect()
}

impl Adapter for Pingback {
    type Config = Config;
    const VENDOR: &'static Vendor = &crate::VENDOR;

    /// Nothing is sent until the first call: the login happens then.
    fn connect(connection: &str, config: &Config, shared: &Shared) -> Result<Pingback> {
        if config.email.trim().is_empty() {
            return Err(Error::new(
                ErrorKind::Config,
                "the email of a PingBack connection is empty",
            ));
        }
        // No credential header: the token comes from the login.
        let none = HeaderMap::new();
        let edge = Edge::new(Self::VENDOR, connection, &config.connection, shared, none)?;
        Ok(Pingback {
            edge,
            email: config.email.trim().to_owned(),
            password: config.password.clone(),
            session: RwLock::new(Session::default()),
            user_id: OnceCell::new(),
        })
    }
}

impl Pingback {
    fn connection(&self) -> &str {
        self.edge.connection()
    }

    fn origin(&self) -> Origin<'_> {
        self.edge.info.origin()
    }

    /// `POST /api/v1/auth/login` for a fresh token.
    async fn login(&self, op: Operation) -> Result<HeaderValue> {
        let login = call(op, Method::POST, &["auth", "login"])
            .json(json!({ "email": self.email, "password": self.password.expose() }));
        let response = self.edge.upstream.send(&login).await.map_err(|e| {
            if e.kind() == ErrorKind::NotFound {
                Error::new(
                    ErrorKind::UpstreamUnavailable,
                    "PingBack's login endpoint was not found; check the connection's base_url",
                )
                .with_connection(self.connection())
                .set_temporary(false)
            } else {
                e
            }
        })?;
        let token = response
            .json::<wire::Login>()?
            .access_token
            .into_inner()
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::UpstreamAuth,
                    "PingBack's login answer held no token",
                )
                .with_connection(self.connection())
            })?;
        let mut authorization = HeaderValue::from_str(&format!("Bearer {}", token.trim()))
            .map_err(|_| {
                Error::new(
                    ErrorKind::UpstreamUnavailable,
                    "PingBack issued a token that cannot be sent in a header",
                )
                .with_connection(self.connection())
            })?;
        authorization.set_sensitive(true);
        tracing::debug!(connection = %self.connection(), "logged in to PingBack");
        Ok(authorization)
    }

    /// The cached token, logging in first when there is none.
    async fn authorization(&self, op: Operation) -> Result<(HeaderValue, u64)> {
        {
            let session = self.session.read().await;
            if let Some(authorization) = &session.authorization {
                return Ok((authorization.clone(), session.generation));
            }
        }
        self.renew(op, None).await
    }

    /// Logs in again, unless another call already replaced the token of generation `stale`
    /// (or, with `stale` = `None`, already logged in). One login at a time.
    async fn renew(&self, op: Operation, stale: Option<u64>) -> Result<(HeaderValue, u64)> {
        let mut session = self.session.write().await;
        if let Some(authorization) = &session.authorization
            && stale != Some(session.generation)
        {
            return Ok((authorization.clone(), session.generation));
        }
        session.authorization = None;
        let authorization = self.login(op).await?;
        session.generation += 1;
        session.authorization = Some(authorization.clone());
        Ok((authorization, session.generation))
    }

    /// Sends `call` with the token; on an auth failure logs in again once and retries once (a
    /// rejected call did nothing, so a write may be repeated). A 403 is retried too: a new token
    /// carries the user's current role.
    async fn send(&self, call: Call) -> Result<Response> {
        let (authorization, generation) = self.authorization(call.operation).await?;
        match self.send_as(&call, authorization).await {
            Err(e) if e.kind() == ErrorKind::UpstreamAuth => {
                tracing::debug!(connection = %self.connection(), "PingBack refused the token; logging in again");
                let (authorization, _) = self.renew(call.operation, Some(generation)).await?;
                self.send_as(&call, authorization).await
            }
            other => other,
        }
    }

    async fn send_as(&self, call: &Call, authorization: HeaderValue) -> Result<Response> {
        let mut call = call.clone();
        call.headers.insert(AUTHORIZATION, authorization);
        self.edge.upstream.send(&call).await
    }

    /// Sends a passthrough request with `authorization`.
    async fn passthrough_as(
        &self,
        request: &PassthroughRequest,
        authorization: HeaderValue,
    ) -> Result<PassthroughAnswer> {
        let mut credentials = HeaderMap::new();
        credentials.insert(AUTHORIZATION, authorization);
        self.edge.upstream.passthrough(request, credentials).await
    }

    /// `GET /api/v1/conversations/{id}`: the conversation with its full history, and its JSON.
    /// `GET /api/v1/conversations/{id}`, and its JSON when `keep_raw`.
    async fn show<M: DeserializeOwned + Clone + Send + Sync + 'static>(
        &self,
        op: Operation,
        id: &str,
        keep_raw: bool,
    ) -> Result<(wire::Conversation<M>, Option<Value>)> {
        self.send(call(op, Method::GET, &["conversations", native_id(id)?]))
            .await?
            .json_keeping_raw(keep_raw)
    }

    /// The logged-in user's id, from `GET /api/v1/auth/me` (read once).
    async fn user_id(&self) -> Result<&str> {
        let id = self
            .user_id
            .get_or_try_init(|| async {
                let me: wire::Me = self
                    .send(call(Operation::SendMessage, Method::GET, &["auth", "me"]))
                    .await?
                    .json()?;
                me.user.and_then(|u| u.id.into_inner()).ok_or_else(|| {
                    Error::new(
                        ErrorKind::UpstreamUnavailable,
                        "PingBack did not say who this connection's user is",
                    )
                    .with_connection(self.connection())
                })
            })
            .await?;
        Ok(id.as_str())
    }
}

#[async_trait]
impl Provider for Pingback {
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
        let limit = query.page_size.clamp(1, MAX_PAGE_SIZE);
        let mut list = call(
            Operation::ListConversations,
            Method::GET,
            &["conversations", ""],
        )
        .query("page", page)
        .query("limit", limit);
        // PingBack filters one status at a time; for several, the gateway filters.
        if let [status] = query.filter.status.as_slice() {
            list = list.query("status", status.as_str());
        }
        if let Some(assignee) = &query.filter.assignee {
            if !is_pingback_id(assignee) {
                // No conversation is assigned to an agent that cannot exist.
                return Ok(Page::last(Vec::new()));
            }
            list = list.query("assignee_id", assignee);
        }
        let response = self.send(list).await?;
        let (sent, items) = if query.include_raw {
            let list: wire::ConversationList = response.json()?;
            (
                list.0.len(),
                tolerant::items_with_raw::<wire::Conversation<MessageText>>(list.0, true),
            )
        } else {
            let list: wire::ConversationList<tolerant::Item<wire::Conversation<MessageText>>> =
                response.json()?;
            (list.0.len(), tolerant::without_raw(list.0))
        };
        // A bare array without metadata: a short page is the last one.
        let next = next_page_number(page, sent, limit, None);
        let items = items
            .into_iter()
            .map(|(c, raw)| mapping::conversation(&self.origin(), c, false, raw))
            .collect();
        Ok(Page { items, next })
    }

    async fn get_conversation(&self, id: &str, include_raw: bool) -> Result<Conversation> {
        let (conversation, raw) = self
            .show::<MessageText>(Operation::GetConversation, id, include_raw)
            .await?;
        Ok(mapping::conversation(
            &self.origin(),
            conversation,
            true,
            raw,
        ))
    }

    async fn list_messages(
        &self,
        id: &str,
        query: &MessageQuery,
        page: &UpstreamPage,
    ) -> Result<Page<Message>> {
        let after = match page {
            UpstreamPage::First => None,
            UpstreamPage::Cursor(last) => Some(last.as_str()),
            UpstreamPage::Number(_) => return Err(invalid_cursor()),
        };
        let size = query.page_size.clamp(1, MAX_MESSAGE_PAGE_SIZE) as usize;
        // PingBack has no message paging: the conversation holds the whole history, oldest
        // first. It is served newest first, a page at a time, each page after the message the
        // previous one ended with (so messages arriving meanwhile cause no duplicates).
        let (conversation, raw) = self
            .show::<wire::Message>(Operation::ListMessages, id, query.include_raw)
            .await?;
        let mut raw_by_id = raw_messages(raw.as_ref());
        let fallback = conversation
            .updated_at
            .or(*conversation.created_at)
            .unwrap_or_default();
        let mut messages = conversation.messages.into_inner();
        messages.sort_by_key(|m| m.created_at.unwrap_or(fallback));
        messages.reverse();
        if let Some(since) = query.since {
            messages.retain(|m| m.created_at.unwrap_or(fallback) >= since);
        }
        let start = match after {
            None => 0,
            Some(last) => messages
                .iter()
                .position(|m| m.id == last)
                .map(|i| i + 1)
                .ok_or_else(invalid_cursor)?,
        };
        let rest: Vec<wire::Message> = messages.into_iter().skip(start).collect();
        let next = (rest.len() > size).then(|| UpstreamPage::Cursor(rest[size - 1].id.clone()));
        let at = self.origin().in_conversation(id, fallback);
        let items = rest
            .into_iter()
            .take(size)
            .map(|m| {
                let raw = raw_by_id.remove(&m.id);
                mapping::message(&at, m, raw)
            })
            .collect();
        Ok(Page { items, next })
    }

    async fn list_agents(&self, page: &UpstreamPage) -> Result<Page<Agent>> {
        if *page != UpstreamPage::First {
            return Err(invalid_cursor());
        }
        let members: wire::MemberList = self
            .send(call(
                Operation::ListAgents,
                Method::GET,
                &["team", "members"],
            ))
            .await?
            .json()?;
        // The whole team in one answer; deactivated members cannot be assigned.
        let items = members
            .0
            .into_iter()
            .filter(|m| *m.is_active != Some(false))
            .filter_map(|m| mapping::agent(&self.origin(), m))
            .collect();
        Ok(Page::last(items))
    }

    async fn set_assignment(&self, id: &str, assignment: Assignment) -> Result<Conversation> {
        let agent = match &assignment {
            Assignment::Agent(agent) if is_pingback_id(agent) => agent.as_str(),
            Assignment::Agent(_) => return Err(invalid_assignee()),
            // PingBack has no unassign endpoint and no bot to hand back to.
            Assignment::Unassigned => return Err(Error::unsupported(Operation::Unassign)),
        };
        let id = native_id(id)?;
        self.send(call(
            Operation::Assign,
            Method::PUT,
            &["conversations", id, "assign", agent],
        ))
        .await?;
        self.get_conversation(id, false).await
    }

    async fn send_message(&self, id: &str, message: NewMessage) -> Result<Message> {
        let id = native_id(id)?;
        // PingBack sends every reply as the logged-in user; another sender cannot be honoured.
        if let Some(sender) = &message.sender
            && sender.as_str() != self.user_id().await?
        {
            return Err(Error::new(
                ErrorKind::Unprocessable,
                "PingBack sends replies as this connection's user; sender_id must be that agent or omitted",
            )
            .with_code(codes::INVALID_SENDER)
            .with_parameter("sender_id"));
        }
        let reply = call(
            Operation::SendMessage,
            Method::POST,
            &["conversations", id, "messages"],
        )
        .json(json!({ "content": message.text, "attachments": [] }));
        let response = self.send(reply).await?;
        if let Ok(sent) = response.json::<wire::Message>() {
            let at = self.origin().in_conversation(id, chrono::Utc::now());
            return Ok(mapping::message(&at, sent, None));
        }
        // The answer was not a message: find the reply among the newest messages.
        self.edge
            .find_sent_reply(self, id, |m| {
                m.author == switchboard_core::Author::Agent && m.text == message.text
            })
            .await
    }

    async fn set_status(&self, id: &str, status: Status) -> Result<Conversation> {
        let action = match status {
            Status::Resolved => "resolve",
            Status::Closed => "close",
            // Refused by the capability check before it gets here.
            Status::Open | Status::Pending => {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    "PingBack can only resolve or close a conversation through its API, not reopen it",
                )
                .with_operation(Operation::SetStatus));
            }
        };
        let id = native_id(id)?;
        // "Already resolved" / "Already closed" come back as 200: the status is as asked.
        self.send(call(
            Operation::SetStatus,
            Method::PUT,
            &["conversations", id, action],
        ))
        .await?;
        self.get_conversation(id, false).await
    }

    /// With the connection's token, logged in first when there is none; a 401 logs in again
    /// once and sends again (the refused request did nothing), as every PingBack call does.
    async fn passthrough(&self, request: PassthroughRequest) -> Result<PassthroughAnswer> {
        // The login is named as the reading of conversations in its errors.
        let op = Operation::ListConversations;
        let (authorization, generation) = self.authorization(op).await?;
        let answer = self.passthrough_as(&request, authorization).await?;
        if answer.status != 401 {
            return Ok(answer);
        }
        tracing::debug!(connection = %self.connection(), "PingBack refused the token; logging in again");
        let (authorization, _) = self.renew(op, Some(generation)).await?;
        self.passthrough_as(&request, authorization).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_upstream::{Upstream, UpstreamOptions, Url};

    #[test]
    fn collection_paths_keep_their_trailing_slash() {
        for base in [
            "https://api.pingback.live",
            "http://127.0.0.1:9100/pingback",
            "http://127.0.0.1:9100/pingback/",
        ] {
            let url = Url::parse(base).expect("a URL");
            let upstream = Upstream::new(
                "hd",
                UpstreamOptions::new(url, Shared::default()),
                HeaderMap::new(),
                crate::error::parse_error,
            )
            .expect("a client");
            let list = call(
                Operation::ListConversations,
                Method::GET,
                &["conversations", ""],
            );
            let path = upstream.url(&list.path);
            assert!(path.path().ends_with("/api/v1/conversations/"), "{path}");
            assert!(!path.path().contains("//"), "{path}");
            let one = call(
                Operation::GetConversation,
                Method::GET,
                &["conversations", "a/../b?c"],
            );
            assert!(
                upstream
                    .url(&one.path)
                    .path()
                    .ends_with("/conversations/a%2F..%2Fb%3Fc")
            );
        }
    }

    #[test]
    fn tells_pingback_ids_from_others() {
        for ok in [
            "c3d4e5f6-a7b8-9012-cdef-123456789012",
            "g7b8c9d0-e1f2-3456-abcd-567890123456",
            "c3d4e5f6a7b89012cdef123456789012",
            "42",
        ] {
            assert!(is_pingback_id(ok), "{ok}");
        }
        for bad in [
            "",
            "c3d4e5f6-a7b8-9012-cdef",
            "../conversations",
            "42 ",
            "c3d4e5f6-a7b8-9012-cdef-12345678901/",
            "-1",
        ] {
            assert!(!is_pingback_id(bad), "{bad}");
        }
    }

    #[tokio::test]
    async fn never_prints_the_password() {
        let config: Config = serde_json::from_value(json!({
            "email": "ops@example.com",
            "password": "hunter2-very-secret",
        }))
        .expect("a config");
        let pingback = Pingback::connect("hd", &config, &Shared::default()).expect("a connection");
        {
            let mut session = pingback.session.write().await;
            let mut token = HeaderValue::from_static("Bearer eyJ-the-token");
            token.set_sensitive(true);
            session.authorization = Some(token);
        }
        let printed = format!("{pingback:?} {config:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(!printed.contains("eyJ-the-token"), "{printed}");
    }
}
