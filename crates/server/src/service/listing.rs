//! Reads: the merged inbox (every visible connection, newest first, one signed cursor), one
//! conversation, its messages, and a connection's agents.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchboard_core::cursor::Binding;
use switchboard_core::inbox::{InboxRequest, inbox_page};
use switchboard_core::lanes::MessageLane;
use switchboard_core::merge::{KeptPages, Lane, MergeRequest, MergeState, merge_page};
use switchboard_core::{
    Agent, Channel, Conversation, ConversationFilter, Error, Message, Mode, Provider, ProviderKind,
    Status, UpstreamPage, ids,
};
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::params::QueryPairs;
use crate::registry;
use crate::state::AppState;
use crate::traversal::{TraversalPages, new_traversal_id};
use switchboard_core::cursor::InboxCursor;

/// Upstream calls one connection may make for one page before the page stops short (only
/// reached when gateway-side filters discard whole upstream pages).
const MAX_CALLS_PER_LANE: u32 = 4;

/// How long after the page deadline the merge stops waiting on a lane whose upstream call has
/// not ended by itself (every upstream call ends at the deadline; this is the safety net).
const PAGE_DEADLINE_GRACE: std::time::Duration = std::time::Duration::from_millis(250);

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
            // Capabilities say how the conversation list pages, not the message list.
            any_size: false,
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
