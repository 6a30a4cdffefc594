//! A gateway built in-process over a memory store, served on loopback port 0, whose event log
//! the test appends to; clients with and without the `admin` scope, one of them limited to one
//! connection; a reader of Server-Sent Events; a webhook receiver that answers as told.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use serde_json::{Value, json};
use switchboard_feed::Event;
use switchboard_server::{AppState, Config};
use switchboard_store::{MemoryStore, Store};

/// `read`, `write` and `admin`, every connection.
pub const OPS: &str = "ops-token";
/// `read` only, every connection.
pub const READER: &str = "reader-token";
/// `read` and `admin`, only the connection `elsewhere`.
pub const OUTSIDER: &str = "outsider-token";

/// A signing secret in the Standard Webhooks format.
pub const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// Clients and two connections (`shop`, `elsewhere`) whose vendor is never called.
pub fn config_text(extra: &str) -> String {
    let sha = |t: &str| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(t.as_bytes()));
    format!(
        "[[clients]]\nname = \"ops\"\ntoken_sha256 = \"{}\"\nscopes = [\"read\", \"write\", \"admin\"]\nrate_limit = {{ requests = 100000, per_seconds = 1 }}\n\n\
         [[clients]]\nname = \"reader\"\ntoken_sha256 = \"{}\"\nscopes = [\"read\"]\nrate_limit = {{ requests = 100000, per_seconds = 1 }}\n\n\
         [[clients]]\nname = \"outsider\"\ntoken_sha256 = \"{}\"\nscopes = [\"read\", \"admin\"]\nconnections = [\"elsewhere\"]\nrate_limit = {{ requests = 100000, per_seconds = 1 }}\n\n\
         [[connections]]\nid = \"shop\"\nprovider = \"zipchat\"\nchat_id = \"1\"\napi_key = \"k\"\nbase_url = \"http://127.0.0.1:9/zipchat\"\n\n\
         [[connections]]\nid = \"elsewhere\"\nprovider = \"zipchat\"\nchat_id = \"2\"\napi_key = \"k\"\nbase_url = \"http://127.0.0.1:9/zipchat\"\n\n{extra}",
        sha(OPS),
        sha(READER),
        sha(OUTSIDER),
    )
}

/// An event of `kind` on `connection` about conversation `n` (its id is assigned on append).
pub fn event(kind: &str, connection: &str, n: u32) -> Event {
    serde_json::from_value(json!({
        "id": "",
        "type": kind,
        "occurred_at": "2026-01-01T00:00:00Z",
        "connection": connection,
        "provider": "zipchat",
        "conversation_id": format!("{connection}:{n}"),
        "data": {},
    }))
    .expect("a valid event")
}

/// A gateway in-process over `store`, served on a loopback port until dropped or shut down.
pub struct Gateway {
    pub url: String,
    pub state: Arc<AppState>,
    pub http: reqwest::Client,
    /// The same app, called in-process (tower's `oneshot`) by `get` and `post`: the requests
    /// that need no connection of their own.
    app: axum::Router,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    pub served: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Gateway {
    /// Over a new memory store, with `extra` config (e.g. `[[webhooks]]`).
    pub async fn start(extra: &str) -> Gateway {
        Gateway::over(Arc::new(MemoryStore::default()), extra).await
    }

    /// Over `store` (shared with an earlier gateway: a restart).
    pub async fn over(store: Arc<dyn Store>, extra: &str) -> Gateway {
        let config = Config::parse(&config_text(extra)).expect("the test config parses");
        let state = switchboard_server::state_over_store(&config, b"test-secret", store)
            .expect("state builds");
        state.webhooks.start(&state.feed).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(switchboard_server::serve_with(
            listener,
            switchboard_server::app(state.clone()),
            switchboard_server::ServerLimits::from_config(&config.server),
            async {
                let _ = rx.await;
            },
        ));
        Gateway {
            url: format!("http://{addr}"),
            app: switchboard_server::app(state.clone()),
            state,
            http: reqwest::Client::new(),
            shutdown: Some(tx),
            served: Some(served),
        }
    }

    /// Appends events to the log; returns them with their ids.
    pub async fn append(&self, events: Vec<Event>) -> Vec<Event> {
        self.state.feed.append(events).await.expect("appended")
    }

    /// Starts the server's shutdown (what SIGTERM does).
    pub fn begin_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// Stops the webhook workers and the server: the process stopping.
    pub async fn stop(mut self) {
        self.begin_shutdown();
        self.state.webhooks.stop().await;
        if let Some(served) = self.served.take() {
            let _ = served.await;
        }
    }

    pub async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, token, path).await
    }

    pub async fn post(&self, token: &str, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::POST, token, path).await
    }

    /// One request, in-process: the router called with tower's `oneshot`, no socket.
    async fn call(&self, method: reqwest::Method, token: &str, path: &str) -> (u16, Value) {
        use tower::ServiceExt;
        let request = axum::http::Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {token}"))
            .extension(axum::extract::ConnectInfo(SocketAddr::from((
                [127, 0, 0, 1],
                40000,
            ))))
            .body(axum::body::Body::empty())
            .expect("a request");
        let response = self
            .app
            .clone()
            .oneshot(request)
            .await
            .expect("the router answers");
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("a body");
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// Opens `GET /v1/events/stream{query}` with `Last-Event-ID` if given.
    pub async fn stream(&self, token: &str, query: &str, last_event_id: Option<&str>) -> SseReader {
        let mut request = self
            .http
            .get(format!("{}/v1/events/stream{query}", self.url))
            .bearer_auth(token);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.expect("the stream opens");
        assert_eq!(response.status(), 200, "the stream answers 200");
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        SseReader {
            response,
            pending: String::new(),
        }
    }

    /// The endpoint `id` of `GET /v1/webhooks`.
    pub async fn webhook(&self, id: &str) -> Value {
        let (status, body) = self.get(OPS, "/v1/webhooks").await;
        assert_eq!(status, 200, "{body}");
        body["data"]
            .as_array()
            .and_then(|a| a.iter().find(|w| w["id"] == id).cloned())
            .unwrap_or_else(|| panic!("no webhook {id} in {body}"))
    }

    /// Waits until `done` holds for the endpoint `id` (or fails after a minute).
    pub async fn webhook_until(&self, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..1200 {
            let endpoint = self.webhook(id).await;
            if done(&endpoint) {
                return endpoint;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("webhook {id} never got there: {}", self.webhook(id).await);
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.begin_shutdown();
    }
}

/// One Server-Sent Events message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SseMessage {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

/// Reads messages off an event stream (comments, i.e. keep-alives, skipped).
pub struct SseReader {
    response: reqwest::Response,
    pending: String,
}

impl SseReader {
    /// Reads the stream `response` answered with.
    pub fn new(response: reqwest::Response) -> SseReader {
        SseReader {
            response,
            pending: String::new(),
        }
    }

    /// The next message; `None` when the stream ended.
    pub async fn next(&mut self) -> Option<SseMessage> {
        loop {
            if let Some(end) = self.pending.find("\n\n") {
                let block: String = self.pending.drain(..end + 2).collect();
                let mut message = SseMessage::default();
                let mut data = Vec::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        message.id = Some(v.trim_start().to_owned());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        message.event = Some(v.trim_start().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push(v.strip_prefix(' ').unwrap_or(v).to_owned());
                    }
                }
                if message.id.is_none() && message.event.is_none() && data.is_empty() {
                    continue; // a comment: keep-alive
                }
                message.data = data.join("\n");
                return Some(message);
            }
            match self.response.chunk().await {
                Ok(Some(chunk)) => self.pending.push_str(&String::from_utf8_lossy(&chunk)),
                _ => return None,
            }
        }
    }

    /// The next `n` messages, each within 20 s.
    pub async fn take(&mut self, n: usize) -> Vec<SseMessage> {
        let mut out = Vec::new();
        for _ in 0..n {
            let message = tokio::time::timeout(Duration::from_secs(20), self.next())
                .await
                .expect("a message within 20 s")
                .expect("the stream goes on");
            out.push(message);
        }
        out
    }
}

/// What a test receiver does with one delivery.
#[derive(Debug, Clone)]
pub enum Answer {
    Status(u16),
    StatusWithRetryAfter(u16, u64),
    /// Answers 200 only after this long (past the webhook's timeout: a timeout).
    Hang(Duration),
}

/// One delivery as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Delivery {
    pub fn webhook_id(&self) -> String {
        self.headers
            .get("webhook-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    /// Verifies the signature with the `standardwebhooks` crate (not the gateway's code).
    pub fn verify(&self, secret: &str) -> bool {
        standardwebhooks::Webhook::new(secret)
            .expect("the secret")
            .verify(&self.body, &self.headers)
            .is_ok()
    }

    pub fn event(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
}

/// An HTTP receiver on loopback port 0: answers each delivery with the next scripted answer
/// (200 once the script is spent) and records it.
#[derive(Clone)]
pub struct HookReceiver {
    pub url: String,
    script: Arc<Mutex<VecDeque<Answer>>>,
    seen: Arc<Mutex<Vec<Delivery>>>,
    arrived: Arc<tokio::sync::Notify>,
}

impl HookReceiver {
    pub async fn start(script: Vec<Answer>) -> HookReceiver {
        let receiver = HookReceiver {
            url: String::new(),
            script: Arc::new(Mutex::new(script.into())),
            seen: Arc::new(Mutex::new(Vec::new())),
            arrived: Arc::new(tokio::sync::Notify::new()),
        };
        let handler_state = receiver.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let r = handler_state.clone();
                async move {
                    let answer = r.script.lock().expect("lock").pop_front();
                    r.seen
                        .lock()
                        .expect("lock")
                        .push(Delivery { headers, body });
                    r.arrived.notify_waiters();
                    let status = |s: u16| StatusCode::from_u16(s).expect("a status");
                    match answer {
                        None => (StatusCode::OK, HeaderMap::new()),
                        Some(Answer::Status(s)) => (status(s), HeaderMap::new()),
                        Some(Answer::StatusWithRetryAfter(s, secs)) => {
                            let mut h = HeaderMap::new();
                            h.insert("retry-after", secs.into());
                            (status(s), h)
                        }
                        Some(Answer::Hang(d)) => {
                            tokio::time::sleep(d).await;
                            (StatusCode::OK, HeaderMap::new())
                        }
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        HookReceiver {
            url: format!("http://{addr}/hook"),
            ..receiver
        }
    }

    /// Replaces what the receiver answers next.
    pub fn answer_next(&self, script: Vec<Answer>) {
        *self.script.lock().expect("lock") = script.into();
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.seen.lock().expect("lock").clone()
    }

    /// The `webhook-id` of every delivery so far, once at least `n` arrived.
    pub async fn ids(&self, n: usize) -> Vec<String> {
        self.wait_for(n)
            .await
            .iter()
            .map(Delivery::webhook_id)
            .collect()
    }

    /// Waits until `n` deliveries arrived (or fails after a minute).
    pub async fn wait_for(&self, n: usize) -> Vec<Delivery> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let notified = self.arrived.notified();
            let seen = self.deliveries();
            if seen.len() >= n {
                return seen;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "{n} deliveries expected, {} arrived",
                    self.deliveries().len()
                );
            }
        }
    }
}

/// A `[[webhooks]]` entry for `url`, allowed to reach loopback, with `extra` keys.
pub fn webhook_toml(id: &str, url: &str, extra: &str) -> String {
    format!(
        "[[webhooks]]\nid = \"{id}\"\nurl = \"{url}\"\nsecret = \"{SECRET}\"\nallow_private_targets = true\n{extra}\n"
    )
}
