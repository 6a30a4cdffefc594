//! Switchboard's HTTP API: the axum router, handlers, caller auth, config, the connection
//! registry and the OpenAPI document. `app(state)` builds the whole service in-process, so tests
//! drive it without a socket.
#![deny(missing_docs)]

pub mod api;
pub mod auth;
pub mod config;
pub mod console;
pub mod idempotency;
pub mod logging;
pub mod metrics;
pub mod params;
pub mod problem;
pub mod quota_headers;
pub mod registry;
pub mod service;
pub mod slots;
pub mod stall;
pub mod state;
pub mod tickets;
pub mod traversal;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, Request, StatusCode, header};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa_swagger_ui::SwaggerUi;

pub use config::Config;
pub use state::AppState;
use switchboard_store::{EmbeddedStore, MemoryStore, RedisStore, Store};
use switchboard_upstream::Shared;

use config::{StoreConfig, StoreKind};

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// The longest a request may take, upstream calls included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole service: API routes, `/openapi.json`, and one middleware stack (outermost first:
/// request id -> trace -> error rendering/logging -> catch panic -> timeout -> body limit).
pub fn app(state: Arc<AppState>) -> Router {
    metrics::install();
    let cors = cors(&state.allowed_origins);
    let (router, _) = api::router().split_for_parts();
    // The docs page's assets are served by the gateway itself (no CDN); it reads /openapi.json.
    let docs = SwaggerUi::new("/docs").config(utoipa_swagger_ui::Config::from("/openapi.json"));
    let console = state.console;
    let mut router = router
        .route_layer(axum::middleware::from_fn(metrics::track))
        .with_state(state)
        .merge(docs);
    if console {
        router = router.merge(console::router());
    }
    router.layer(
        ServiceBuilder::new()
            .layer(SetSensitiveRequestHeadersLayer::new([
                header::AUTHORIZATION,
            ]))
            .layer(SetRequestIdLayer::new(
                REQUEST_ID,
                logging::RequestIds::new(),
            ))
            .layer(
                // The span only: each request is logged once, by `problem::problem_layer`.
                TraceLayer::new_for_http()
                    .make_span_with(|request: &Request<_>| {
                        let request_id = request
                            .headers()
                            .get(&REQUEST_ID)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("-");
                        tracing::info_span!(
                            "request",
                            method = %request.method(),
                            path = %logging::Escaped(request.uri().path()),
                            request_id = %logging::Escaped(request_id),
                        )
                    })
                    .on_request(())
                    .on_response(())
                    .on_body_chunk(())
                    .on_eos(())
                    .on_failure(()),
            )
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            .option_layer(cors)
            .layer(axum::middleware::from_fn(quota_headers::quota_headers))
            .layer(axum::middleware::from_fn(problem::problem_layer))
            .layer(axum::middleware::from_fn(head_limits))
            .layer(CatchPanicLayer::new())
            .layer(TimeoutLayer::with_status_code(
                StatusCode::GATEWAY_TIMEOUT,
                REQUEST_TIMEOUT,
            ))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
    )
}

/// CORS for the configured origins; `None` (no CORS headers at all) when there are none.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
                Method::OPTIONS,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("idempotency-key"),
                // A fetch-based EventSource resuming `/v1/events/stream`.
                HeaderName::from_static("last-event-id"),
                REQUEST_ID,
            ])
            .expose_headers([
                REQUEST_ID,
                header::RETRY_AFTER,
                header::LOCATION,
                HeaderName::from_static("ratelimit"),
                HeaderName::from_static("ratelimit-policy"),
                HeaderName::from_static("x-ratelimit-limit"),
                HeaderName::from_static("x-ratelimit-remaining"),
                HeaderName::from_static("x-ratelimit-reset"),
                HeaderName::from_static("idempotency-replayed"),
                api::passthrough::PASSTHROUGH_HEADER,
            ])
            .max_age(Duration::from_secs(600)),
    )
}

/// Builds the configured store; no `[store]` is the in-memory one. An embedded file that cannot
/// be opened is an error naming its path; a Redis that does not answer is not (the store
/// connects lazily and reconnects by itself; `/readyz` says 503 meanwhile). Must run inside a
/// Tokio runtime.
pub fn build_store(config: Option<&StoreConfig>) -> anyhow::Result<Arc<dyn Store>> {
    let Some(config) = config else {
        return Ok(Arc::new(MemoryStore::default()));
    };
    Ok(match config.kind() {
        StoreKind::Memory => Arc::new(MemoryStore::default()),
        StoreKind::Embedded => Arc::new(EmbeddedStore::open(&config.path())?),
        StoreKind::Redis => {
            let url = config
                .redis_url
                .as_ref()
                .ok_or_else(|| anyhow::anyhow!("[store] kind = \"redis\" needs `redis_url`"))?;
            Arc::new(RedisStore::connect(url.expose(), config.key_prefix())?)
        }
    })
}

/// Builds the state from a config; `cursor_secret` is used when the config has none.
pub fn state_from_config(config: &Config, fallback_secret: &[u8]) -> anyhow::Result<Arc<AppState>> {
    let store = build_store(config.store.as_ref())?;
    state_over_store(config, fallback_secret, store)
}

/// Builds the state from a config over `store` (a restart over the same store, in tests).
/// Webhook workers are not started yet: call `state.webhooks.start(&state.feed)`.
pub fn state_over_store(
    config: &Config,
    fallback_secret: &[u8],
    store: Arc<dyn Store>,
) -> anyhow::Result<Arc<AppState>> {
    metrics::install();
    let shared = Shared {
        store: store.clone(),
        cache_ttl: Duration::from_millis(config.server.cache_ttl_ms),
        breaker: config.server.breaker,
        max_body_bytes: config.server.max_upstream_body_bytes,
        http: switchboard_upstream::HttpClients::default(),
        recent: switchboard_upstream::RecentPages::default(),
    };
    let registry = registry::Registry::from_config(&config.connections, &shared)?;
    let clients = auth::Clients::from_config(&config.clients);
    let secret = config
        .server
        .cursor_secret
        .as_ref()
        .map_or(fallback_secret, |s| s.expose().as_bytes());
    let mut state = AppState::new(registry, clients, secret, store.clone());
    state.feed = switchboard_feed::EventLog::new(store, config.feed.event_log());
    state.allowed_origins = config.server.cors.allowed_origins.clone();
    state.page_deadline = Duration::from_millis(config.server.page_deadline_ms);
    state.traversal_pages = traversal::LocalPages::new(
        Duration::from_secs(config.server.traversal_ttl_secs),
        config.server.traversal_kept_conversations,
    );
    state.ops_token = config
        .server
        .ops_token
        .as_ref()
        .map(|t| auth::sha256(t.expose().as_bytes()));
    state.unauthenticated = auth::Unauthenticated::new(config.server.unauthenticated_rate_limit);
    state.ticket_ttl = Duration::from_millis(config.server.stream_ticket_ttl_ms);
    state.console = config.server.console;
    state.webhooks =
        webhooks::Webhooks::from_config(&config.webhooks, config.server.allow_private_targets)?;
    state.pollers = start_pollers(config, &state)?;
    Ok(Arc::new(state))
}

/// Starts a change-feed poller for every connection with `poll_interval_secs`, as one replica
/// with a random id (so several replicas share the leases).
fn start_pollers(config: &Config, state: &AppState) -> anyhow::Result<state::Pollers> {
    let polled: Vec<_> = config
        .connections
        .iter()
        .filter_map(|c| Some((state.registry.get(&c.id)?, c.poll.settings()?)))
        .collect();
    if polled.is_empty() {
        return Ok(state::Pollers::default());
    }
    if tokio::runtime::Handle::try_current().is_err() {
        anyhow::bail!("the change feed's pollers need a Tokio runtime");
    }
    let mut id = [0u8; 8];
    getrandom::fill(&mut id)
        .map_err(|e| anyhow::anyhow!("cannot read the system's random source: {e}"))?;
    let replica = hex::encode(id);
    Ok(state::Pollers::new(
        polled
            .into_iter()
            .map(|(provider, settings)| {
                switchboard_feed::spawn_poller(
                    provider.clone(),
                    state.feed.clone(),
                    settings,
                    &replica,
                )
            })
            .collect(),
    ))
}

/// How the HTTP server bounds its connections.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// Time to send a request's headers; also how long an idle keep-alive connection stays.
    pub header_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// Time in-flight requests get after the shutdown signal before their connections close.
    pub shutdown_timeout: Duration,
    /// How long a write to a client may make no progress before its connection is closed.
    pub write_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> ServerLimits {
        ServerLimits::from_config(&config::ServerConfig::default())
    }
}

impl ServerLimits {
    /// The limits of a `[server]` section.
    pub fn from_config(server: &config::ServerConfig) -> ServerLimits {
        ServerLimits {
            header_timeout: Duration::from_secs(server.header_timeout_secs),
            max_connections: server.max_connections,
            shutdown_timeout: Duration::from_secs(server.shutdown_timeout_secs),
            write_timeout: Duration::from_secs(server.write_timeout_secs),
        }
    }
}

/// Serves `app` on `listener` with the default limits until Ctrl-C / SIGTERM.
pub async fn serve(listener: tokio::net::TcpListener, app: Router) -> std::io::Result<()> {
    serve_with(listener, app, ServerLimits::default(), shutdown_signal()).await
}

/// Whether the server is shutting down: in every request's extensions when served by
/// [`serve_with`], so that endless answers (event streams) end when it does.
#[derive(Debug, Clone)]
pub struct ShuttingDown(tokio::sync::watch::Receiver<bool>);

impl ShuttingDown {
    /// Completes once the server starts shutting down.
    pub async fn wait(&mut self) {
        // A dropped sender means the server is gone: that is a shutdown too.
        let _ = self.0.wait_for(|down| *down).await;
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then lets in-flight requests finish
/// for at most `limits.shutdown_timeout` before closing their connections (event streams end at
/// once: each request carries a [`ShuttingDown`]).
///
/// Every connection is bounded: its first request must arrive within `header_timeout` (a
/// connection that sends nothing is closed then), later request headers too, an idle keep-alive
/// connection is closed after it, a write that makes no progress for `write_timeout` closes it,
/// and at most `max_connections` are served at once, the oldest connection that has sent no
/// request giving its slot to a new one when all are taken ([`slots`]). Each request carries
/// its peer address (`ConnectInfo<SocketAddr>`).
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: ServerLimits,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto;
    use hyper_util::service::TowerToHyperService;
    use tower::ServiceExt;

    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        // Above the gateway's own limits (`head_limits`), so it answers those with problem+json.
        .max_headers(4 * MAX_HEADERS);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.header_timeout)
        .keep_alive_timeout(limits.header_timeout);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let (going_down, shutting_down) = tokio::sync::watch::channel(false);
    let slots = Arc::new(slots::Slots::new(
        limits.max_connections,
        limits.header_timeout,
    ));
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was accepted.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let slot = tokio::select! {
            biased;
            () = &mut shutdown => break,
            slot = slots.admit() => slot,
        };
        let standing = slots.track();
        let _ = stream.set_nodelay(true);
        let shutting_down = ShuttingDown(shutting_down.clone());
        let proven = standing.clone();
        let service =
            app.clone()
                .map_request(move |mut request: Request<hyper::body::Incoming>| {
                    proven.prove();
                    let extensions = request.extensions_mut();
                    extensions.insert(axum::extract::ConnectInfo(peer));
                    extensions.insert(shutting_down.clone());
                    request
                });
        let stream = stall::WriteStallTimeout::new(stream, limits.write_timeout);
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service))
            .into_owned();
        let connection = graceful.watch(connection);
        let slots = slots.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = connection => {}
                () = slots.expired(&standing) => {}
            }
            standing.prove();
            drop(slot);
        });
    }
    drop(listener);
    tracing::info!("shutting down: no new connections; in-flight requests may finish");
    let _ = going_down.send(true);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(limits.shutdown_timeout) => {
            tracing::warn!("shutdown deadline passed; closing the remaining connections");
        }
    }
    Ok(())
}

/// The longest request target accepted (`414 uri_too_long` past it).
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// The most request header bytes accepted (`431 headers_too_large` past it).
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// The most request headers accepted (`431 headers_too_large` past it).
pub const MAX_HEADERS: usize = 100;

/// Refuses oversized request heads, and bodies announced larger than [`MAX_BODY_BYTES`] (on
/// every endpoint, those that read no body included), with problem+json, before anything else
/// reads them.
async fn head_limits(
    request: Request<axum::body::Body>,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use switchboard_core::{Error, ErrorKind};
    let uri_len = target_len(request.uri());
    if uri_len > MAX_URI_BYTES {
        let error = Error::new(
            ErrorKind::InvalidRequest,
            format!("the request target is {uri_len} bytes; at most {MAX_URI_BYTES} are accepted"),
        )
        .with_code("uri_too_long");
        return problem::with_status(StatusCode::URI_TOO_LONG, error);
    }
    let headers = request.headers();
    let header_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if headers.len() > MAX_HEADERS || header_bytes > MAX_HEADER_BYTES {
        let error = Error::new(
            ErrorKind::InvalidRequest,
            format!(
                "the request headers are too large ({} headers, {header_bytes} bytes; at most {MAX_HEADERS} and {MAX_HEADER_BYTES})",
                headers.len()
            ),
        )
        .with_code("headers_too_large");
        return problem::with_status(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, error);
    }
    let announced = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        let error = Error::new(
            ErrorKind::TooLarge,
            format!("the request body is too large; at most {MAX_BODY_BYTES} bytes are accepted"),
        )
        .with_code("payload_too_large");
        return problem::with_status(StatusCode::PAYLOAD_TOO_LARGE, error);
    }
    next.run(request).await
}

/// The length of the request target as it came: the path and query, after the scheme and
/// authority of an absolute-form target. Counted, not written out.
fn target_len(uri: &axum::http::Uri) -> usize {
    let scheme = uri.scheme_str().map_or(0, |s| s.len() + "://".len());
    let authority = uri.authority().map_or(0, |a| a.as_str().len());
    let path = uri.path_and_query().map_or(0, |p| p.as_str().len());
    scheme + authority + path
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received");
}

#[cfg(test)]
mod tests {
    use super::target_len;

    #[test]
    fn a_targets_length_is_counted_as_it_is_written() {
        for target in [
            "/",
            "/v1/conversations/helpdesk-pingback:f716bb6d?include=raw&x=%20y",
            "http://gateway.example.com:8080/v1/conversations?limit=5",
            "http://gateway.example.com",
            "gateway.example.com:443",
            "*",
        ] {
            let uri: axum::http::Uri = target.parse().expect("a valid target");
            assert_eq!(target_len(&uri), uri.to_string().len(), "{target}");
        }
    }
}
