//! `/v1/events`: the change feed, paged (`GET /v1/events`) or followed live as Server-Sent
//! Events (`GET /v1/events/stream`). Both honour the caller's connections: a caller never sees
//! an event of a connection it may not see.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use super::json::Json;
use axum::extract::{Extension, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::Stream;
use serde::{Deserialize, Serialize};
use switchboard_core::{Error, ErrorKind, Event, EventType, codes};
use switchboard_feed::{EventLog, LogId};
use utoipa::{IntoParams, IntoResponses, ToSchema};

use crate::ShuttingDown;
use crate::api::extract::JsonBody;
use crate::auth::{Authenticated, Caller};
use crate::config::Scope;
use crate::params::QueryPairs;
use crate::problem::{ApiError, Problem, TooManyRequests};
use crate::state::AppState;
use crate::tickets::{self, Subscriber};

/// The cursor of the log's beginning: `after=0-0` reads every event kept.
pub const START: &str = "0-0";
/// Events per page unless `limit` says otherwise.
pub const DEFAULT_LIMIT: usize = 100;
/// The most events per page.
pub const MAX_LIMIT: usize = 500;
/// How often an idle stream sends a keep-alive comment.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Events a stream reads from the log at a time.
const STREAM_BATCH: usize = 100;

/// The errors every route reading the event log shares, listed in its OpenAPI entry.
#[derive(Debug, IntoResponses)]
#[allow(dead_code)] // documents responses; the errors themselves are `ApiError`s
pub enum FeedProblems {
    /// Malformed cursor (`invalid_cursor`).
    #[response(status = 400, content_type = "application/problem+json")]
    BadCursor(Problem),
    /// Missing or invalid token.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthenticated(Problem),
    /// The token lacks the scope.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
    /// The cursor is older than the log's retention (`cursor_expired`): resync with
    /// `GET /v1/conversations?updated_since=`, then read from `after=0-0`.
    #[response(status = 410, content_type = "application/problem+json")]
    Expired(Problem),
    /// Invalid or unknown query parameter.
    #[response(status = 422, content_type = "application/problem+json")]
    InvalidParameter(Problem),
    /// The store does not answer (`store_unavailable`).
    #[response(status = 503, content_type = "application/problem+json")]
    StoreUnavailable(Problem),
}

/// A page of events, oldest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventList {
    /// The events after the cursor that you may see and that pass the filters, oldest first.
    pub data: Vec<Event>,
    /// Where to read from next (`after=`): never null. With an empty `data` it is the position
    /// to poll from later; `0-0` is the log's beginning.
    #[schema(example = "1767225600000-3")]
    pub next_cursor: String,
}

/// Query parameters of `GET /v1/events`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the parameters; they are read by `EventQuery::parse`
pub struct ListEventsParams {
    /// Read the events after this cursor (an event `id` or a `next_cursor`; `0-0` or omitted:
    /// from the oldest event kept). Older than the retention: `410 cursor_expired`.
    #[param(pattern = r"^[0-9]{1,20}-[0-9]{1,20}$", example = "1767225600000-0")]
    after: Option<String>,
    /// Events per page (1-500, default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// Only these event types (repeat or comma-separate).
    #[param(rename = "type", style = Form, explode = true)]
    r#type: Option<Vec<EventType>>,
    /// Only these connections (repeat or comma-separate); each must be one you can see.
    #[param(style = Form, explode = true, pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$")]
    connection: Option<Vec<String>>,
}

/// Query parameters of `GET /v1/events/stream`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the parameters; they are read by `EventQuery::parse`
pub struct StreamEventsParams {
    /// Replay the events after this cursor first (`Last-Event-ID` wins when both are sent;
    /// omitted: only new events).
    #[param(pattern = r"^[0-9]{1,20}-[0-9]{1,20}$", example = "1767225600000-0")]
    after: Option<String>,
    /// Only these event types (repeat or comma-separate).
    #[param(rename = "type", style = Form, explode = true)]
    r#type: Option<Vec<EventType>>,
    /// Only these connections (repeat or comma-separate); each must be one you can see.
    #[param(style = Form, explode = true, pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$")]
    connection: Option<Vec<String>>,
}

/// The filters of an events request, checked against the caller.
struct EventFilter {
    caller: Arc<Caller>,
    types: Vec<EventType>,
    connections: Vec<String>,
}

impl EventFilter {
    fn parse(
        q: &QueryPairs,
        caller: &Authenticated,
        state: &AppState,
    ) -> Result<EventFilter, Error> {
        let types = q.parsed_list(
            "type",
            "conversation.created, conversation.updated or message.created",
            EventType::parse,
        )?;
        let connections = q.list("connection").into_iter().map(str::to_owned);
        EventFilter::new(caller, types, connections.collect(), state)
    }

    /// The filters for `caller`; each connection named must be one it can see.
    fn new(
        caller: &Authenticated,
        types: Vec<EventType>,
        connections: Vec<String>,
        state: &AppState,
    ) -> Result<EventFilter, Error> {
        for c in &connections {
            state.connection(caller, c).map_err(|_| {
                Error::invalid_parameter(
                    "connection",
                    format!("`connection` names `{c}`, which is not a connection you can see"),
                )
            })?;
        }
        Ok(EventFilter {
            caller: caller.0.clone(),
            types,
            connections,
        })
    }

    fn keeps(&self, event: &Event) -> bool {
        self.caller.can_see(&event.connection)
            && (self.types.is_empty() || self.types.contains(&event.kind))
            && (self.connections.is_empty() || self.connections.contains(&event.connection))
    }
}

/// A cursor from `after=` or `Last-Event-ID`: `None` is the log's beginning.
pub(crate) fn parse_cursor(value: &str, name: &'static str) -> Result<Option<LogId>, Error> {
    if value == START {
        return Ok(None);
    }
    value.parse::<LogId>().map(Some).map_err(|_| {
        Error::new(
            ErrorKind::InvalidRequest,
            format!("`{name}` must be an event id or a `next_cursor` such as `1767225600000-0`"),
        )
        .with_code(codes::INVALID_CURSOR)
        .with_parameter(name)
    })
}

pub(crate) fn cursor_text(cursor: Option<LogId>) -> String {
    cursor.map_or_else(|| START.to_owned(), |c| c.to_string())
}

/// Read the change feed: events after a cursor, oldest first.
#[utoipa::path(
    get,
    path = "/v1/events",
    operation_id = "listEvents",
    tag = "events",
    params(ListEventsParams),
    responses(
        (status = 200, description = "The next events; poll again with `after=next_cursor`", body = EventList),
        FeedProblems,
        TooManyRequests,
    )
)]
pub async fn list_events(
    State(state): State<Arc<AppState>>,
    caller: Authenticated,
    RawQuery(raw): RawQuery,
) -> Result<Json<EventList>, ApiError> {
    caller.require(Scope::Read)?;
    let q = QueryPairs::parse(raw.as_deref());
    q.only(&["after", "limit", "type", "connection"])?;
    let after = q
        .single("after")?
        .map(|v| parse_cursor(v, "after"))
        .transpose()?
        .flatten();
    let limit = q.limit("limit", 1, MAX_LIMIT, DEFAULT_LIMIT)?;
    let filter = EventFilter::parse(&q, &caller, &state)?;
    let page = state
        .feed
        .page(after, limit, &|e: &Event| filter.keeps(e))
        .await?;
    Ok(Json(EventList {
        data: page.events,
        next_cursor: cursor_text(page.next.or(after)),
    }))
}

/// Follow the change feed live, as Server-Sent Events.
///
/// Each event is one SSE message: `id:` the event's cursor, `event:` its type, `data:` the event
/// as JSON (the `Event` schema). Reconnect with `Last-Event-ID` (browsers do so by themselves)
/// to get every event missed and none twice.
///
/// A browser's `EventSource` cannot send the `Authorization` header: it opens `?ticket=` with a
/// ticket from `POST /v1/events/tickets` instead (the ticket carries the filters). A ticket
/// opens one stream: when the `EventSource` errors, mint a new ticket and reopen with
/// `?after=<id of the last event received>`. Comments (`:`) keep an idle stream alive every
/// 15 s. A stream whose cursor falls behind the retention gets one `event: error` whose data is
/// a `cursor_expired` problem, and ends. The stream ends when the gateway shuts down.
#[utoipa::path(
    get,
    path = "/v1/events/stream",
    operation_id = "streamEvents",
    tag = "events",
    security(("bearer" = []), ("ticket" = [])),
    params(
        StreamEventsParams,
        ("Last-Event-ID" = Option<String>, Header, nullable = false, pattern = r"^[0-9]{1,20}-[0-9]{1,20}$",
            description = "The `id` of the last event received: the stream replays every event after it, then follows the log"),
    ),
    responses(
        (status = 200, description = "An endless `text/event-stream`; each message's `data` is an `Event`", content_type = "text/event-stream", body = EventStreamMessage),
        FeedProblems,
        TooManyRequests,
    )
)]
pub async fn stream_events(
    State(state): State<Arc<AppState>>,
    subscriber: Subscriber,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    shutting_down: Option<Extension<ShuttingDown>>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let caller = subscriber.caller;
    caller.require(Scope::Read)?;
    let q = QueryPairs::parse(raw.as_deref());
    q.only(&["after", "type", "connection", "ticket"])?;
    let last_event_id = match headers.get("last-event-id") {
        Some(value) => Some(parse_cursor(
            value.to_str().unwrap_or_default(),
            "Last-Event-ID",
        )?),
        None => None,
    };
    let after = match (last_event_id, q.single("after")?) {
        (Some(cursor), _) => cursor,
        (None, Some(after)) => parse_cursor(after, "after")?,
        // Only what comes next: start after the newest event there is.
        (None, None) => state.newest_event().await?,
    };
    let filter = match subscriber.grant {
        Some(grant) => {
            if !q.list("type").is_empty() || !q.list("connection").is_empty() {
                return Err(Error::invalid_parameter(
                    "ticket",
                    "a ticket carries its filters: mint it with `type` and `connection` instead",
                )
                .into());
            }
            EventFilter::new(&caller, grant.types, grant.connections, &state)?
        }
        None => EventFilter::parse(&q, &caller, &state)?,
    };
    // The first page now, so that a bad cursor is an HTTP error rather than a broken stream.
    let first = state
        .feed
        .page(after, STREAM_BATCH, &|e: &Event| filter.keeps(e))
        .await?;
    let follower = Follower {
        log: state.feed.clone(),
        feed: state.feed.subscribe(),
        after: first.next.or(after),
        buffer: first.events.into(),
        filter,
        shutting_down: shutting_down.map(|Extension(s)| s),
        ended: false,
        _open: OpenStream::new(),
    };
    let stream = futures::stream::unfold(follower, |mut follower| async move {
        let message = follower.next().await?;
        Some((Ok(message), follower))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

/// One message of `GET /v1/events/stream`, as an SSE parser reads it: an event (`id`, `event`
/// its type, `data` the `Event` as JSON), or at the end of a stream whose cursor fell behind
/// the retention, `event: error` whose `data` is a `cursor_expired` problem.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // documents the stream; messages are written by `message`
pub struct EventStreamMessage {
    /// The event's cursor (resume after it with `Last-Event-ID` or `after=`).
    #[schema(example = "1767225600000-0")]
    id: Option<String>,
    /// The event's type (`conversation.created`, `conversation.updated`, `message.created`),
    /// or `error`.
    #[schema(example = "conversation.updated")]
    event: String,
    /// The `Event` (or, for `error`, the `Problem`) as JSON.
    data: String,
}

/// The body of `POST /v1/events/tickets`: the filters of the stream the ticket opens.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketRequest {
    /// Only these event types (empty or omitted: every type).
    #[serde(default, rename = "type")]
    #[schema(rename = "type")]
    pub r#type: Vec<EventType>,
    /// Only these connections (empty or omitted: every connection you can see).
    #[serde(default)]
    #[schema(pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$")]
    pub connection: Vec<String>,
}

/// A stream ticket.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StreamTicket {
    /// Open `GET /v1/events/stream?ticket=<ticket>` with it, once, before it expires.
    #[schema(example = "sbt_2b4Jf0Yq3xW1mYbq7cR9tXo4kZLhN5sVgA8eUuDpQiE")]
    pub ticket: String,
    /// When the ticket stops being valid (within a minute).
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// Mint a single-use ticket that opens one event stream, for a browser's `EventSource`.
///
/// The ticket stands for your token and the filters given here for one `GET
/// /v1/events/stream?ticket=<ticket>`: it works once (a second use is 401), expires within a
/// minute, is accepted by every replica and by no other endpoint, and is never logged.
#[utoipa::path(
    post,
    path = "/v1/events/tickets",
    operation_id = "createStreamTicket",
    tag = "events",
    request_body = TicketRequest,
    responses(
        (status = 201, description = "The ticket; open the stream with it before `expires_at`", body = StreamTicket),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the `read` scope", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid body: an unknown event type, or a connection you cannot see", body = Problem, content_type = "application/problem+json"),
        TooManyRequests,
        (status = 503, description = "The store does not answer (`store_unavailable`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_ticket(
    State(state): State<Arc<AppState>>,
    caller: Authenticated,
    JsonBody(body): JsonBody<TicketRequest>,
) -> Result<(StatusCode, Json<StreamTicket>), ApiError> {
    caller.require(Scope::Read)?;
    let filter = EventFilter::new(&caller, body.r#type, body.connection, &state)?;
    let minted = tickets::mint(&state, &caller.name, filter.types, filter.connections).await?;
    Ok((
        StatusCode::CREATED,
        Json(StreamTicket {
            ticket: minted.ticket,
            expires_at: minted.expires_at,
        }),
    ))
}

/// One subscriber's position in the log: it reads the next batch only when the previous one
/// has been sent, so nothing piles up for a slow subscriber (the log is the buffer).
struct Follower {
    log: EventLog,
    feed: tokio::sync::watch::Receiver<Option<LogId>>,
    after: Option<LogId>,
    buffer: VecDeque<Event>,
    filter: EventFilter,
    shutting_down: Option<ShuttingDown>,
    ended: bool,
    _open: OpenStream,
}

/// Counts a stream in `switchboard_event_streams` while it is open.
struct OpenStream;

impl OpenStream {
    fn new() -> OpenStream {
        metrics::gauge!("switchboard_event_streams").increment(1.0);
        OpenStream
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        metrics::gauge!("switchboard_event_streams").decrement(1.0);
    }
}

impl Follower {
    /// The next message, or `None` when the stream ends.
    async fn next(&mut self) -> Option<SseEvent> {
        if self.ended {
            return None;
        }
        loop {
            if let Some(event) = self.buffer.pop_front() {
                return Some(message(&event));
            }
            self.feed.borrow_and_update();
            let keep = |e: &Event| self.filter.keeps(e);
            match self.log.page(self.after, STREAM_BATCH, &keep).await {
                Ok(page) => {
                    self.after = page.next.or(self.after);
                    if !page.events.is_empty() {
                        self.buffer = page.events.into();
                        continue;
                    }
                }
                Err(e) if e.kind() == ErrorKind::Gone => {
                    self.ended = true;
                    return Some(error_message(&e));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "an event stream could not read the log; retrying");
                    let retry = tokio::time::sleep(Duration::from_secs(1));
                    if !unless_shutting_down(&mut self.shutting_down, retry).await {
                        return None;
                    }
                    continue;
                }
            }
            let feed = &mut self.feed;
            let grown = async {
                // A closed feed (the log is gone) leaves only the shutdown to end the wait.
                if feed.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            };
            if !unless_shutting_down(&mut self.shutting_down, grown).await {
                return None;
            }
        }
    }
}

/// Waits for `until`; false when the server starts shutting down first.
async fn unless_shutting_down(
    shutting_down: &mut Option<ShuttingDown>,
    until: impl std::future::Future<Output = ()>,
) -> bool {
    let shutdown = async {
        match shutting_down {
            Some(s) => s.wait().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = until => true,
        () = shutdown => false,
    }
}

fn message(event: &Event) -> SseEvent {
    let data = serde_json::to_string(event).unwrap_or_default();
    SseEvent::default()
        .id(event.id.clone())
        .event(event.kind.as_str())
        .data(data)
}

fn error_message(error: &Error) -> SseEvent {
    let problem = serde_json::json!({
        "type": format!("https://switchboard.dev/problems/{}", error.code()),
        "title": "Gone",
        "status": 410,
        "detail": error.message(),
        "code": error.code(),
    });
    SseEvent::default().event("error").data(problem.to_string())
}
