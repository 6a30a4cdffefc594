//! Switchboard's HTTP API: the axum router, handlers, caller auth, config, the connection
//! registry and the OpenAPI document. `app(state)` builds the whole service in-process, so tests
//! drive it without a socket.
#![deny(missing_docs)]

pub mod api;
pub mod auth;
pub mod config;
pub mod idempotency;
pub mod inbox;
pub mod metrics;
pub mod params;
pub mod problem;
pub mod registry;
pub mod state;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, Request, StatusCode, header};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa_swagger_ui::SwaggerUi;

pub use config::Config;
pub use state::AppState;
use switchboard_upstream::{EmbeddedStore, MemoryStore, RedisStore, Shared, Store};

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
    let router = router
        .route_layer(axum::middleware::from_fn(metrics::track))
        .with_state(state)
        .merge(docs);
    router.layer(
        ServiceBuilder::new()
            .layer(SetSensitiveRequestHeadersLayer::new([
                header::AUTHORIZATION,
            ]))
            .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
            .layer(
                TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                    let request_id = request
                        .headers()
                        .get(&REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!(
                        "request",
                        method = %request.method(),
                        path = %request.uri().path(),
                        request_id = %request_id,
                    )
                }),
            )
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            .option_layer(cors)
            .layer(axum::middleware::from_fn(problem::problem_layer))
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
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::OPTIONS])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("idempotency-key"),
                REQUEST_ID,
            ])
            .expose_headers([
                REQUEST_ID,
                header::RETRY_AFTER,
                HeaderName::from_static("x-ratelimit-limit"),
                HeaderName::from_static("x-ratelimit-remaining"),
                HeaderName::from_static("x-ratelimit-reset"),
                HeaderName::from_static("idempotency-replayed"),
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
    metrics::install();
    let store = build_store(config.store.as_ref())?;
    let shared = Shared {
        store: store.clone(),
        cache_ttl: Duration::from_millis(config.server.cache_ttl_ms),
        breaker: config.server.breaker,
    };
    let registry = registry::Registry::from_config(&config.connections, &shared)?;
    let clients = auth::Clients::from_config(&config.clients);
    let secret = config
        .server
        .cursor_secret
        .as_ref()
        .map_or(fallback_secret, |s| s.expose().as_bytes());
    let mut state = AppState::new(registry, clients, secret, store);
    state.allowed_origins = config.server.cors.allowed_origins.clone();
    Ok(Arc::new(state))
}

/// Serves `app` on `listener` until Ctrl-C / SIGTERM.
pub async fn serve(listener: tokio::net::TcpListener, app: Router) -> std::io::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
}

async fn shutdown_signal() {
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
    tracing::info!("shutting down");
}
