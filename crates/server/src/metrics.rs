//! Prometheus metrics: the recorder, `/metrics`, and the per-request counter.
//!
//! Names: `switchboard_http_requests_total{route,method,status}`,
//! `switchboard_http_request_duration_seconds{route}`, and from the upstream client
//! `switchboard_upstream_requests_total{connection,outcome}`, `…_retries_total`,
//! `…_coalesced_total`, `…_cache_hits_total`, `…_quota_waits_total`,
//! `switchboard_upstream_breaker_state{connection}` (0 closed, 1 half-open, 2 open), and from
//! passthrough `switchboard_passthrough_requests_total{connection,method,status}`, and from
//! the change feed `switchboard_event_streams` (open SSE streams) and
//! `switchboard_webhook_attempts_total{webhook,outcome}` (`delivered`, `failed`, `gone`), and
//! from the inbox `switchboard_inbox_pages_out_of_order_total{connection}` (pages of a list of
//! undocumented order that came out of order: the connection now reads windows of pages).

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Buckets of every duration histogram, in seconds.
const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process's Prometheus recorder (once) and returns its handle; `None` if another
/// recorder was installed first.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            // Histograms (not summaries), so durations aggregate across replicas.
            let builder = PrometheusBuilder::new();
            let builder = builder
                .set_buckets(DURATION_BUCKETS)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            drain_histograms(handle.clone());
            Some(handle)
        })
        .as_ref()
}

/// How often recorded durations are folded into their histograms' buckets.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Folds recorded durations into their buckets every [`UPKEEP_EVERY`], on a thread of its own
/// (the recorder may be installed before any runtime). The recorder keeps every sample until
/// then: without it a gateway nobody scrapes grows by about 40 bytes a request.
fn drain_histograms(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                handle.run_upkeep();
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "could not start the metrics upkeep; histograms drain only when /metrics is read");
    }
}

/// The metrics in Prometheus text format.
pub fn render() -> String {
    install().map(PrometheusHandle::render).unwrap_or_default()
}

/// Counts every request by matched route, method and status, and times it.
pub async fn track(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().cloned();
    let method = request.method().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let mut routes = ROUTES.lock().unwrap_or_else(|p| p.into_inner());
    if !routes.contains_key(route) {
        routes.insert(route.to_owned(), RouteMeters::new(route));
    }
    if let Some(meters) = routes.get_mut(route) {
        meters.duration.record(started.elapsed().as_secs_f64());
        meters.request(route, method, response.status().as_u16());
    }
    response
}

/// `track`'s metric handles, by matched route, each registered once: a `metrics` macro looks
/// its name and labels up again on every request.
static ROUTES: LazyLock<Mutex<HashMap<String, RouteMeters>>> = LazyLock::new(Mutex::default);

/// One route's handles: its duration, and its request count by method and status.
struct RouteMeters {
    duration: Histogram,
    requests: Vec<(Method, u16, Counter)>,
}

impl RouteMeters {
    fn new(route: &str) -> RouteMeters {
        RouteMeters {
            duration: metrics::histogram!("switchboard_http_request_duration_seconds", "route" => route.to_owned()),
            requests: Vec::new(),
        }
    }

    /// Counts one request, registering its counter when the method and status are new.
    fn request(&mut self, route: &str, method: Method, status: u16) {
        if let Some((_, _, counter)) = self
            .requests
            .iter()
            .find(|(m, s, _)| *m == method && *s == status)
        {
            counter.increment(1);
            return;
        }
        let counter = metrics::counter!("switchboard_http_requests_total", "route" => route.to_owned(), "method" => method.as_str().to_owned(), "status" => status.to_string());
        counter.increment(1);
        self.requests.push((method, status, counter));
    }
}

/// Counts one passthrough request to `connection` (its route is counted by [`track`] too).
pub fn passthrough(connection: &str, method: &Method, status: u16) {
    metrics::counter!(
        "switchboard_passthrough_requests_total",
        "connection" => connection.to_owned(),
        "method" => method.as_str().to_owned(),
        "status" => status.to_string(),
    )
    .increment(1);
}
