//! `/_control`: what each simulated vendor received, and the faults to inject into it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// Faults injected into one vendor's responses.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Added latency per request, in milliseconds.
    pub latency_ms: u64,
    /// Fraction (0..=1) of requests answered with `error_status` instead.
    pub error_rate: f64,
    /// The status of injected errors (default 500).
    pub error_status: Option<u16>,
    /// Fraction of requests answered 429 with `Retry-After: 1`.
    pub rate_limit_rate: f64,
    /// Fraction of requests answered 200 with a body that is not JSON.
    pub malformed_rate: f64,
    /// Fraction of requests whose connection is dropped mid-body.
    pub drop_rate: f64,
    /// The `Retry-After` of injected 429s, in seconds (default 1).
    pub retry_after_secs: Option<u64>,
    /// Answer every request 200 with a JSON body of this many bytes, streamed in chunks (0: off).
    pub oversized_body_bytes: u64,
    /// Send that oversized body without a `Content-Length` (chunked), so only reading it tells
    /// its size.
    pub oversized_without_length: bool,
    /// Of the injected errors, malformed answers and dropped connections, the fraction that
    /// strike after the vendor handled the request: it acted, and only its answer is lost.
    pub acted_rate: f64,
    /// Fraction of requests held `hang_ms` before the vendor handles them (a client that gave
    /// up meanwhile may have its request handled anyway, or dropped).
    pub hang_rate: f64,
    /// How long a hung request is held, in milliseconds (default 30 000).
    pub hang_ms: Option<u64>,
}

/// Request counters and faults, per vendor.
#[derive(Debug)]
pub struct Control {
    counters: BTreeMap<&'static str, AtomicU64>,
    oversized_bytes_sent: Arc<AtomicU64>,
    injected: Mutex<BTreeMap<&'static str, u64>>,
    faults: Mutex<BTreeMap<String, Faults>>,
    rng: Mutex<Option<fastrand::Rng>>,
}

/// What `GET /_control` reports.
#[derive(Debug, Serialize, Deserialize)]
pub struct Report {
    /// Requests received per vendor since start (or the last reset).
    pub requests: BTreeMap<String, u64>,
    /// Faults in force per vendor.
    pub faults: BTreeMap<String, Faults>,
    /// Bytes of oversized bodies actually written to clients (a client that stops reading
    /// stops the stream).
    #[serde(default)]
    pub oversized_bytes_sent: u64,
    /// Faults injected so far, by kind (`error`, `error_after_acting`, `dropped`, `hang`, ...).
    #[serde(default)]
    pub injected: BTreeMap<String, u64>,
}

impl Control {
    /// Counters at zero for each of `vendors`, no faults.
    pub fn new(vendors: impl IntoIterator<Item = &'static str>) -> Control {
        Control {
            counters: vendors
                .into_iter()
                .map(|v| (v, AtomicU64::new(0)))
                .collect(),
            oversized_bytes_sent: Arc::default(),
            injected: Mutex::default(),
            faults: Mutex::new(BTreeMap::new()),
            rng: Mutex::new(Some(fastrand::Rng::with_seed(7))),
        }
    }

    /// Counts one request to `vendor`.
    pub fn count(&self, vendor: &str) {
        if let Some(c) = self.counters.get(vendor) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The current report.
    pub fn report(&self) -> Report {
        Report {
            requests: self
                .counters
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.load(Ordering::Relaxed)))
                .collect(),
            faults: self.faults.lock().map(|f| f.clone()).unwrap_or_default(),
            oversized_bytes_sent: self.oversized_bytes_sent.load(Ordering::Relaxed),
            injected: self
                .injected
                .lock()
                .map(|i| i.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect())
                .unwrap_or_default(),
        }
    }

    /// Counts one injected fault of `kind`.
    fn injected(&self, kind: &'static str) {
        if let Ok(mut injected) = self.injected.lock() {
            *injected.entry(kind).or_default() += 1;
        }
    }

    /// Sets the faults of `vendor` (default faults clear them).
    pub fn set_faults(&self, vendor: &str, faults: Faults) {
        if let Ok(mut all) = self.faults.lock() {
            if faults == Faults::default() {
                all.remove(vendor);
            } else {
                all.insert(vendor.to_owned(), faults);
            }
        }
    }

    /// Zeroes the counters and clears every fault.
    pub fn reset(&self) {
        for c in self.counters.values() {
            c.store(0, Ordering::Relaxed);
        }
        self.oversized_bytes_sent.store(0, Ordering::Relaxed);
        if let Ok(mut all) = self.faults.lock() {
            all.clear();
        }
    }

    fn faults_for(&self, vendor: &str) -> Option<Faults> {
        self.faults.lock().ok()?.get(vendor).cloned()
    }

    fn roll(&self) -> f64 {
        self.rng
            .lock()
            .ok()
            .and_then(|mut r| r.as_mut().map(fastrand::Rng::f64))
            .unwrap_or(1.0)
    }
}

/// Counts the request and applies the vendor's faults before its handler runs.
pub async fn vendor_middleware(
    State((control, vendor)): State<(Arc<Control>, &'static str)>,
    request: Request,
    next: Next,
) -> Response {
    control.count(vendor);
    let Some(faults) = control.faults_for(vendor) else {
        return next.run(request).await;
    };
    if faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
    }
    if faults.hang_rate > 0.0 && control.roll() < faults.hang_rate {
        control.injected("hang");
        tokio::time::sleep(Duration::from_millis(faults.hang_ms.unwrap_or(30_000))).await;
    }
    if faults.oversized_body_bytes > 0 {
        return oversized(&faults, control.oversized_bytes_sent.clone());
    }
    if faults.rate_limit_rate > 0.0 && control.roll() < faults.rate_limit_rate {
        control.injected("rate_limited");
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(
                header::RETRY_AFTER,
                faults.retry_after_secs.unwrap_or(1).to_string(),
            )],
            Json(serde_json::json!({"error": "Too many requests"})),
        )
            .into_response();
    }
    let lost = if faults.error_rate > 0.0 && control.roll() < faults.error_rate {
        Some(LostAnswer::Error)
    } else if faults.malformed_rate > 0.0 && control.roll() < faults.malformed_rate {
        Some(LostAnswer::Malformed)
    } else if faults.drop_rate > 0.0 && control.roll() < faults.drop_rate {
        Some(LostAnswer::Dropped)
    } else {
        None
    };
    let Some(lost) = lost else {
        return next.run(request).await;
    };
    let acted = faults.acted_rate > 0.0 && control.roll() < faults.acted_rate;
    control.injected(lost.kind(acted));
    if acted {
        drop(next.run(request).await);
    }
    lost.response(&faults)
}

/// An answer that never reaches the client as the vendor meant it.
enum LostAnswer {
    /// `error_status` (default 500).
    Error,
    /// 200 with a body cut short.
    Malformed,
    /// The connection dropped mid-body.
    Dropped,
}

impl LostAnswer {
    fn kind(&self, acted: bool) -> &'static str {
        match (self, acted) {
            (LostAnswer::Error, false) => "error",
            (LostAnswer::Error, true) => "error_after_acting",
            (LostAnswer::Malformed, false) => "malformed",
            (LostAnswer::Malformed, true) => "malformed_after_acting",
            (LostAnswer::Dropped, false) => "dropped",
            (LostAnswer::Dropped, true) => "dropped_after_acting",
        }
    }

    fn response(self, faults: &Faults) -> Response {
        match self {
            LostAnswer::Error => {
                let status = faults
                    .error_status
                    .and_then(|s| StatusCode::from_u16(s).ok())
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                (status, Json(serde_json::json!({"error": "injected fault"}))).into_response()
            }
            LostAnswer::Malformed => (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                "{\"conversations\": [ {\"id\": ",
            )
                .into_response(),
            LostAnswer::Dropped => {
                // Promise a long body, send a little, then fail the stream: the client sees the
                // connection dropped mid-body.
                let chunks: Vec<Result<&'static str, std::io::Error>> = vec![
                    Ok("{\"conversations\": ["),
                    Err(std::io::Error::other("dropped")),
                ];
                Response::builder()
                    .status(StatusCode::OK)
                    .header(header::CONTENT_TYPE, "application/json")
                    .header(header::CONTENT_LENGTH, "100000")
                    .body(Body::from_stream(futures::stream::iter(chunks)))
                    .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
            }
        }
    }
}

/// A valid (empty, blank-padded) JSON array of `faults.oversized_body_bytes` bytes, made and sent 64 KiB at a time, so
/// the simulator never holds it; what was actually written is counted in `sent`.
fn oversized(faults: &Faults, sent: Arc<AtomicU64>) -> Response {
    const CHUNK: usize = 64 * 1024;
    let total = faults.oversized_body_bytes.max(2);
    // `[`, blanks, `]`: valid JSON of exactly `total` bytes.
    let stream = futures::stream::unfold(0u64, move |written| {
        let sent = sent.clone();
        async move {
            if written >= total {
                return None;
            }
            let n = (total - written).min(CHUNK as u64);
            let mut chunk = vec![b' '; n as usize];
            if written == 0 {
                chunk[0] = b'[';
            }
            if written + n == total {
                chunk[n as usize - 1] = b']';
            }
            sent.fetch_add(n, Ordering::Relaxed);
            Some((Ok::<_, std::io::Error>(chunk), written + n))
        }
    });
    let mut response = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json");
    if !faults.oversized_without_length {
        response = response.header(header::CONTENT_LENGTH, total);
    }
    response
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// `GET /_control`.
pub async fn get_report(State(control): State<Arc<Control>>) -> Json<Report> {
    Json(control.report())
}

/// `PUT /_control/faults/{vendor}` with a [`Faults`] body.
pub async fn put_faults(
    State(control): State<Arc<Control>>,
    Path(vendor): Path<String>,
    Json(faults): Json<Faults>,
) -> Response {
    if !control.counters.contains_key(vendor.as_str()) {
        return (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({"error": "unknown vendor"})),
        )
            .into_response();
    }
    control.set_faults(&vendor, faults);
    Json(control.report()).into_response()
}

/// `POST /_control/reset`.
pub async fn reset(State(control): State<Arc<Control>>) -> Json<Report> {
    control.reset();
    Json(control.report())
}
