//! The gateway's operations over its connections: the merged inbox, one conversation, its
//! messages, agents, and the writes routed to the vendor that owns the conversation.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchboard_core::cursor::Binding;
use switchboard_core::inbox::{InboxRequest, inbox_page};
use switchboard_core::lanes::MessageLane;
use switchboard_core::merge::{KeptPages, Lane, MergeRequest, MergeState, merge_page};
use switchboard_core::{
    Agent, Assignment, Channel, Conversation, ConversationFilter, Direction, Error, ErrorKind,
    Message, MessageQuery, Mode, NewMessage, Provider, ProviderKind, Status, UpstreamPage, ids,
};
use utoipa::ToSchema;

use switchboard_feed::GatewayWrite;

use crate::auth::Caller;
use crate::idempotency::{self, Begin, Earlier};
use crate::params::QueryPairs;
use crate::registry;
use crate::state::AppState;
use crate::traversal::{InboxCursor, TraversalPages, new_traversal_id};

/// Upstream calls one connection may make for one page before the page stops short (only
/// reached when gateway-side filters discard whole upstream pages).
const MAX_CALLS_PER_LANE: u32 = 4;

/// How long after the page deadline the merge stops waiting on a lane whose upstream call has
/// not ended by itself (every upstream call ends at the deadline; this is the safety net).
const PAGE_DEADLINE_GRACE: std::time::Duration = std::time::Duration::from_millis(250);

/// The longest reply, in characters (the spec's `maxLength`).
pub const MAX_REPLY_CHARS: usize = 10_000;

/// A reply's text: 1 to [`MAX_REPLY_CHARS`] characters, not only whitespace, and no control
/// characters but newline and tab.
fn check_reply_text(text: &str) -> Result<(), Error> {
    let length = text.chars().count();
    if text.trim().is_empty() {
        return Err(Error::invalid_parameter("text", "`text` must not be empty"));
    }
    if length > MAX_REPLY_CHARS {
        return Err(Error::invalid_parameter(
            "text",
            format!("`text` holds at most {MAX_REPLY_CHARS} characters (this one has {length})"),
        ));
    }
    // Bidi embeddings, overrides and isolates can make a message read other than it is
    // (Trojan Source, CVE-2021-42574): refused. Line and paragraph separators (U+2028/9) are
    // line breaks and are sent as they are.
    if let Some(c) = text.chars().find(|c| is_bidi_control(*c)) {
        return Err(Error::invalid_parameter(
            "text",
            format!(
                "`text` must not hold bidirectional embedding, override or isolate controls (found U+{:04X})",
                u32::from(c)
            ),
        ));
    }
    if let Some(c) = text
        .chars()
        .find(|c| c.is_control() && *c != '\n' && *c != '\t')
    {
        return Err(Error::invalid_parameter(
            "text",
            format!(
                "`text` must not hold control characters other than newline and tab (found U+{:04X})",
                u32::from(c)
            ),
        ));
    }
    Ok(())
}

/// U+202A–U+202E (embeddings, overrides) and U+2066–U+2069 (isolates).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// A connection that could not answer; the page holds what the others gave.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PartialFailure {
    /// The connection.
    pub connection: String,
    /// The stable error code (e.g. `upstream_timeout`).
    pub code: String,
    /// What happened.
    pub message: String,
}

/// A page of the merged inbox.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConversationPage {
    /// Conversations, latest activity first.
    pub data: Vec<Conversation>,
    /// Pass as `cursor` for the next page; null at the end.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
    /// Connections that failed for this page (retried on the next one).
    pub partial: Vec<PartialFailure>,
}

/// A page of a conversation's messages.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MessagePage {
    /// Messages, newest first.
    pub data: Vec<Message>,
    /// Pass as `cursor` for the next page; null at the end.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
    /// Always empty here (one connection); present so every list has the same shape.
    pub partial: Vec<PartialFailure>,
}

/// A page of a connection's agents.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AgentPage {
    /// Agents that can be assigned.
    pub data: Vec<Agent>,
    /// Pass as `cursor` for the next page; null at the end.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
    /// Always empty here (one connection); present so every list has the same shape.
    pub partial: Vec<PartialFailure>,
}

/// The query parameters of `GET /v1/conversations`.
pub const CONVERSATION_PARAMS: &[&str] = &[
    "connection",
    "provider",
    "status",
    "mode",
    "channel",
    "assignee_id",
    "updated_since",
    "limit",
    "cursor",
    "include",
];

/// `GET /v1/conversations`, parsed.
#[derive(Debug)]
pub struct ConversationQuery {
    connections: Vec<String>,
    providers: Vec<ProviderKind>,
    statuses: Vec<Status>,
    mode: Option<Mode>,
    channels: Vec<Channel>,
    assignee: Option<String>,
    updated_since: Option<DateTime<Utc>>,
    limit: usize,
    cursor: Option<String>,
    include_raw: bool,
}

/// What a conversation cursor is bound to (besides the caller).
#[derive(Serialize)]
struct ConversationScope<'a> {
    connections: Vec<&'a str>,
    providers: Vec<ProviderKind>,
    filter: &'a ConversationFilter,
    assignee: Option<&'a str>,
}

impl ConversationQuery {
    /// Parses and validates the query string.
    pub fn parse(q: &QueryPairs) -> Result<ConversationQuery, Error> {
        q.only(CONVERSATION_PARAMS)?;
        let mut connections: Vec<String> = q
            .list("connection")
            .into_iter()
            .map(str::to_owned)
            .collect();
        connections.sort();
        connections.dedup();
        let mut providers =
            q.parsed_list("provider", &registry::kinds(", ", " or "), registry::kind)?;
        providers.sort_by_key(registry::position);
        providers.dedup();
        let mut statuses =
            q.parsed_list("status", "open, pending, resolved or closed", Status::parse)?;
        statuses.sort_by_key(|s| s.as_str());
        statuses.dedup();
        let mode = q
            .single("mode")?
            .map(|m| {
                Mode::parse(m).ok_or_else(|| {
                    Error::invalid_parameter(
                        "mode",
                        format!("`mode` has an unknown value `{m}`; expected ai or human"),
                    )
                })
            })
            .transpose()?;
        let mut channels = q.parsed_list(
            "channel",
            "web, email, whatsapp, instagram, messenger, sms, rcs, telegram, zalo, tiktok or other",
            Channel::parse,
        )?;
        channels.sort_by_key(|c| c.as_str());
        channels.dedup();
        let assignee = q.single("assignee_id")?.map(str::to_owned);
        if assignee.as_deref().is_some_and(|a| ids::split(a).is_none()) {
            return Err(Error::invalid_parameter(
                "assignee_id",
                "`assignee_id` must be an agent id like `connection:native_id`",
            ));
        }
        let cursor = q.single("cursor")?.map(str::to_owned);
        Ok(ConversationQuery {
            connections,
            providers,
            statuses,
            mode,
            channels,
            assignee,
            updated_since: q.timestamp("updated_since")?,
            limit: q.limit("limit", 1, 100, 50)?,
            cursor,
            include_raw: q.include_raw()?,
        })
    }
}

fn strip_raw<T>(items: &mut [T], raw: impl Fn(&mut T) -> &mut Option<serde_json::Value>) {
    for item in items {
        *raw(item) = None;
    }
}

fn partials(failures: Vec<switchboard_core::merge::LaneFailure>) -> Vec<PartialFailure> {
    failures
        .into_iter()
        .map(|f| PartialFailure {
            message: if f.given_up {
                format!(
                    "{} (given up for the rest of this traversal)",
                    f.error.message()
                )
            } else {
                f.error.message().to_owned()
            },
            code: f.error.code().to_owned(),
            connection: f.connection,
        })
        .collect()
}

/// `GET /v1/conversations`: every visible connection, merged newest first.
pub async fn list_conversations(
    state: &AppState,
    caller: &Caller,
    query: ConversationQuery,
) -> Result<ConversationPage, Error> {
    for c in &query.connections {
        state.connection(caller, c).map_err(|_| {
            Error::invalid_parameter(
                "connection",
                format!("`connection` names `{c}`, which is not a connection you can see"),
            )
        })?;
    }
    let assignee = query.assignee.as_deref().and_then(ids::split);
    let filter = ConversationFilter {
        status: query.statuses.clone(),
        mode: query.mode,
        channel: query.channels.clone(),
        assignee: assignee.map(|(_, native)| native.to_owned()),
        updated_since: query.updated_since,
    };
    let scope = ConversationScope {
        connections: query.connections.iter().map(String::as_str).collect(),
        providers: query.providers.clone(),
        filter: &filter,
        assignee: query.assignee.as_deref(),
    };
    let binding = Binding::new(&caller.name, "conversations", &scope);
    let cursor_in: Option<InboxCursor> = query
        .cursor
        .as_deref()
        .map(|c| state.cursors.decode(&binding, c))
        .transpose()?;
    let (state_in, traversal) = match cursor_in {
        Some(InboxCursor {
            merge,
            traversal: Some(traversal),
        }) => (Some(merge), traversal),
        Some(InboxCursor { merge, .. }) => (Some(merge), new_traversal_id()?),
        None => (None, new_traversal_id()?),
    };

    let connections: Vec<Arc<dyn Provider>> = state
        .visible(caller)
        .filter(|p| {
            let info = p.info();
            (query.connections.is_empty() || query.connections.contains(&info.connection))
                && (query.providers.is_empty() || query.providers.contains(&info.kind))
                && assignee.is_none_or(|(conn, _)| conn == info.connection)
        })
        .cloned()
        .collect();
    let kept = if state.traversal_pages.ttl().is_zero() {
        None
    } else {
        Some(
            TraversalPages::new(
                state.store.as_ref(),
                &state.traversal_pages,
                &traversal,
                connections.iter().map(|p| p.info().connection.as_str()),
            )
            .await,
        )
    };
    // Every upstream call of the page ends by the deadline (and is counted against its vendor's
    // breaker when it does not answer in time); the merge stops waiting a moment later.
    let deadline = tokio::time::Instant::now() + state.page_deadline;
    let out = switchboard_upstream::deadline::within(
        deadline,
        inbox_page(InboxRequest {
            connections: connections.clone(),
            filter: &filter,
            state: state_in,
            limit: query.limit,
            include_raw: query.include_raw,
            max_calls_per_lane: MAX_CALLS_PER_LANE,
            deadline: Some(deadline + PAGE_DEADLINE_GRACE),
            kept: kept.as_ref().map(|k| k as &dyn KeptPages<Conversation>),
        }),
    )
    .await
    .map_err(|failed| failed.error)?;
    let mut data = out.items;
    if !query.include_raw {
        strip_raw(&mut data, |c| &mut c.raw);
    }
    Ok(ConversationPage {
        data,
        next_cursor: out.next.map(|merge| {
            let cursor = InboxCursor {
                merge,
                traversal: Some(traversal),
            };
            state.cursors.encode(&binding, &cursor)
        }),
        partial: partials(out.failures),
    })
}

/// `GET /v1/conversations/{id}`.
pub async fn get_conversation(
    state: &AppState,
    caller: &Caller,
    id: &str,
    include_raw: bool,
) -> Result<Conversation, Error> {
    let (provider, native) = state.resolve(caller, id, "conversation")?;
    provider.get_conversation(native, include_raw).await
}

/// The query parameters of `GET /v1/conversations/{id}/messages`.
pub const MESSAGE_PARAMS: &[&str] = &["limit", "cursor", "since", "include"];

/// `GET /v1/conversations/{id}/messages`: newest first.
pub async fn list_messages(
    state: &AppState,
    caller: &Caller,
    id: &str,
    q: &QueryPairs,
) -> Result<MessagePage, Error> {
    q.only(MESSAGE_PARAMS)?;
    let limit = q.limit("limit", 1, 100, 50)?;
    let since = q.timestamp("since")?;
    let include_raw = q.include_raw()?;
    let cursor = q.single("cursor")?;
    let (provider, native) = state.resolve(caller, id, "conversation")?;
    let binding = Binding::new(&caller.name, "messages", &(id, since));
    let state_in: Option<MergeState> = cursor
        .map(|c| state.cursors.decode(&binding, c))
        .transpose()?;
    let source = MessageLane {
        provider: provider.as_ref(),
        conversation: native,
        since,
        include_raw,
    };
    let matches = |m: &Message| since.is_none_or(|s| m.created_at >= s);
    let out = merge_page(MergeRequest {
        lanes: vec![Lane {
            source: &source,
            page_size: provider.info().capabilities.max_message_page_size,
            stop_before: since,
            sorted: true,
        }],
        state: state_in,
        limit,
        filter: &matches,
        max_calls_per_lane: MAX_CALLS_PER_LANE,
        deadline: None,
        kept: None,
    })
    .await;
    if let Some(failure) = out.failures.into_iter().next() {
        return Err(failure.error);
    }
    let mut data = out.items;
    if !include_raw {
        strip_raw(&mut data, |m| &mut m.raw);
    }
    Ok(MessagePage {
        data,
        next_cursor: out.next.map(|s| state.cursors.encode(&binding, &s)),
        partial: Vec::new(),
    })
}

/// `GET /v1/connections/{connection}/agents`.
pub async fn list_agents(
    state: &AppState,
    caller: &Caller,
    connection: &str,
    q: &QueryPairs,
) -> Result<AgentPage, Error> {
    q.only(&["cursor"])?;
    let provider = state.connection(caller, connection)?;
    let binding = Binding::new(&caller.name, "agents", &connection);
    let page: UpstreamPage = q
        .single("cursor")?
        .map(|c| state.cursors.decode(&binding, c))
        .transpose()?
        .unwrap_or(UpstreamPage::First);
    let out = provider.list_agents(&page).await?;
    Ok(AgentPage {
        data: out.items,
        next_cursor: out.next.map(|next| state.cursors.encode(&binding, &next)),
        partial: Vec::new(),
    })
}

/// `PUT /v1/conversations/{id}/assignment`: an agent takes over, or null hands back.
pub async fn set_assignment(
    state: &AppState,
    caller: &Caller,
    id: &str,
    assignee_id: Option<&str>,
) -> Result<Conversation, Error> {
    let (provider, native) = state.resolve(caller, id, "conversation")?;
    let assignment = match assignee_id {
        None => Assignment::Unassigned,
        Some(agent) => {
            let (connection, agent_native) = ids::split(agent).ok_or_else(|| {
                Error::invalid_parameter(
                    "assignee_id",
                    "`assignee_id` must be an agent id like `connection:native_id`, or null",
                )
            })?;
            if connection != provider.info().connection {
                return Err(Error::new(
                    ErrorKind::Unprocessable,
                    "the agent belongs to another connection than the conversation",
                )
                .with_code(switchboard_core::codes::INVALID_ASSIGNEE)
                .with_parameter("assignee_id"));
            }
            Assignment::Agent(agent_native.to_owned())
        }
    };
    let mut conversation = provider.set_assignment(native, assignment).await?;
    conversation.raw = None;
    record_write(state, caller, GatewayWrite::Assignment(&conversation)).await;
    Ok(conversation)
}

/// `POST /v1/conversations/{id}/messages`: a reply.
pub async fn send_message(
    state: &AppState,
    caller: &Caller,
    id: &str,
    text: String,
    sender_id: Option<&str>,
    idempotency_key: Option<String>,
) -> Result<Message, Error> {
    check_reply_text(&text)?;
    if sender_id.is_some_and(|s| ids::split(s).is_none()) {
        return Err(Error::invalid_parameter(
            "sender_id",
            "`sender_id` must be an agent id like `connection:native_id`",
        ));
    }
    let (provider, native) = state.resolve(caller, id, "conversation")?;
    let sender = sender_id
        .map(|s| {
            ids::split(s)
                .filter(|(connection, _)| *connection == provider.info().connection)
                .map(|(_, native)| native.to_owned())
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::Unprocessable,
                        "`sender_id` must be an agent id of the conversation's connection",
                    )
                    .with_code(switchboard_core::codes::INVALID_SENDER)
                    .with_parameter("sender_id")
                })
        })
        .transpose()?;
    let mut message = provider
        .send_message(
            native,
            NewMessage {
                text,
                sender,
                idempotency_key,
            },
        )
        .await?;
    message.raw = None;
    record_write(state, caller, GatewayWrite::Reply(&message)).await;
    Ok(message)
}

/// `PUT /v1/conversations/{id}/status`.
pub async fn set_status(
    state: &AppState,
    caller: &Caller,
    id: &str,
    status: Status,
) -> Result<Conversation, Error> {
    let (provider, native) = state.resolve(caller, id, "conversation")?;
    let mut conversation = provider.set_status(native, status).await?;
    conversation.raw = None;
    record_write(state, caller, GatewayWrite::Status(&conversation)).await;
    Ok(conversation)
}

/// Appends a write the vendor accepted to the change feed, stamped with the caller; a failure is
/// logged and never fails the write (the poller then reports the change, without `performed_by`).
async fn record_write(state: &AppState, caller: &Caller, write: GatewayWrite<'_>) {
    if let Err(e) = state.feed.record_write(&caller.name, write).await {
        tracing::warn!(error = %e, "the change feed could not record a gateway write");
    }
}

/// What a reply came to: the message as stored, and whether an earlier request with the same
/// `Idempotency-Key` sent it (this one sent nothing).
#[derive(Debug)]
pub struct Reply {
    /// The message.
    pub message: Message,
    /// Whether it is the answer of an earlier request with the same key.
    pub replayed: bool,
}

/// A reply that failed, and whether the failure is the one an earlier request with the same
/// `Idempotency-Key` met (its outcome unknown, this one sent nothing).
#[derive(Debug)]
pub struct ReplyError {
    /// What went wrong.
    pub error: Error,
    /// Whether it is the answer of an earlier request with the same key.
    pub replayed: bool,
}

impl From<Error> for ReplyError {
    fn from(error: Error) -> ReplyError {
        ReplyError {
            error,
            replayed: false,
        }
    }
}

/// How far a vendor's clock may lag the gateway's: an earlier attempt's message is looked for
/// from this long before the attempt began.
const CLOCK_SLACK: Duration = Duration::from_secs(120);

/// `POST /v1/conversations/{id}/messages` with its `Idempotency-Key`: the reply is delivered
/// once per key, whatever fails on the way (see [`idempotency`]); a repeat gets the first
/// outcome. The keyed work runs to its end even if the caller goes away, so its outcome is
/// always recorded.
pub async fn reply(
    state: &Arc<AppState>,
    caller: &Arc<Caller>,
    id: &str,
    text: String,
    sender_id: Option<String>,
    idempotency_key: Option<String>,
) -> Result<Reply, ReplyError> {
    let Some(key) = idempotency_key else {
        let message = send_message(state, caller, id, text, sender_id.as_deref(), None).await?;
        return Ok(Reply {
            message,
            replayed: false,
        });
    };
    // A request refused before it reaches the vendor (bad text, unknown conversation) does not
    // use its key.
    check_reply_text(&text)?;
    state.resolve(caller, id, "conversation")?;
    let fingerprint = idempotency::fingerprint(&[id, &text, sender_id.as_deref().unwrap_or("")]);
    let claim =
        match idempotency::begin(state.store.as_ref(), &caller.name, &key, fingerprint).await? {
            Begin::Replay(first) => {
                return (*first)
                    .map(|message| Reply {
                        message,
                        replayed: true,
                    })
                    .map_err(|error| ReplyError {
                        error,
                        replayed: true,
                    });
            }
            Begin::Fresh(claim) => claim,
        };
    // Vendors that dedupe see a key scoped to the caller, so two callers' keys never collide.
    let vendor_key = idempotency::fingerprint(&[&caller.name, &key]);
    let (state, caller, id) = (state.clone(), caller.clone(), id.to_owned());
    let work = tokio::spawn(async move {
        let store = state.store.as_ref();
        let earlier = claim.earlier();
        let delivered = claim
            .hold(
                store,
                deliver(&state, &caller, &id, text, sender_id, vendor_key, earlier),
            )
            .await;
        let replayed = matches!(delivered, Ok(Delivered { earlier: true, .. }));
        let result = idempotency::finish(store, claim, delivered.map(|d| d.message)).await;
        (result, replayed)
    });
    let (result, replayed) = work
        .await
        .map_err(|e| Error::new(ErrorKind::Unexpected, "the reply's work failed").with_source(e))?;
    result
        .map(|message| Reply { message, replayed })
        .map_err(|error| ReplyError { error, replayed })
}

/// A keyed reply as delivered: its message, and whether an earlier attempt had sent it.
struct Delivered {
    message: Message,
    earlier: bool,
}

/// Sends a keyed reply, after finding out whether an `earlier` attempt whose outcome is
/// unknown sent it already: a vendor that deduplicates replies by key is simply sent the same
/// key again; for the others the conversation's newest messages are searched for it.
async fn deliver(
    state: &AppState,
    caller: &Caller,
    id: &str,
    text: String,
    sender_id: Option<String>,
    vendor_key: String,
    earlier: Option<Earlier>,
) -> Result<Delivered, Error> {
    let (provider, native) = state.resolve(caller, id, "conversation")?;
    let sender = sender_id.as_deref();
    if let Some(earlier) = earlier
        && !provider.info().capabilities.idempotent_replies
    {
        let sender_native = sender.and_then(ids::split).map(|(_, native)| native);
        if let Some(mut message) =
            find_earlier_reply(provider.as_ref(), native, &text, sender_native, earlier).await?
        {
            message.raw = None;
            record_write(state, caller, GatewayWrite::Reply(&message)).await;
            return Ok(Delivered {
                message,
                earlier: true,
            });
        }
    }
    let message = send_message(state, caller, id, text, sender, Some(vendor_key)).await?;
    Ok(Delivered {
        message,
        earlier: false,
    })
}

/// The reply an earlier attempt sent, if the conversation holds it: the newest outbound message
/// with the same text (and sender, when one was named) since the attempt began. Listing fails
/// as `unsent`: this request has sent nothing.
async fn find_earlier_reply(
    provider: &dyn Provider,
    conversation: &str,
    text: &str,
    sender: Option<&str>,
    earlier: Earlier,
) -> Result<Option<Message>, Error> {
    let since = earlier
        .began_at
        .map(|t| t - chrono::Duration::from_std(CLOCK_SLACK).unwrap_or_default());
    let query = MessageQuery {
        since,
        page_size: provider.info().capabilities.max_message_page_size.min(50),
        include_raw: false,
    };
    let newest = provider
        .list_messages(conversation, &query, &UpstreamPage::First)
        .await
        .map_err(Error::unsent)?;
    let text = text.trim();
    Ok(newest.items.into_iter().find(|m| {
        m.direction == Direction::Outbound
            && m.text.trim() == text
            && since.is_none_or(|t| m.created_at >= t)
            && sender.is_none_or(|s| m.sender.as_ref().is_some_and(|a| a.native_id == s))
    }))
}
