//! A gateway in front of the simulators, both on loopback port 0, driven over HTTP.
#![allow(dead_code)]

pub mod feed;
pub mod process;

use std::net::SocketAddr;

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::Arc;

use switchboard_demo::{self as registry, DemoVendor, VENDORS};
use switchboard_server::Config;
use switchboard_sim::{Sim, SimOptions, Simulated};

/// Tokens of the test clients.
pub const ADMIN: &str = "admin-token";
pub const READER: &str = "reader-token";
pub const OUTSIDER: &str = "outsider-token";

pub struct Env {
    pub gateway: String,
    pub sim_url: String,
    pub sim: Sim,
    pub http: reqwest::Client,
}

/// The SHA-256 of `token`, hex, as a client's `token_sha256` holds it.
pub fn sha(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub async fn start_gateway(config_text: &str) -> String {
    start_gateway_with_state(config_text).await.0
}

/// Like `start_gateway`, also giving the gateway's state (its store, event log, pollers).
pub async fn start_gateway_with_state(
    config_text: &str,
) -> (String, std::sync::Arc<switchboard_server::AppState>) {
    let config = Config::parse(config_text).expect("test config parses");
    let state =
        switchboard_server::state_from_config(&config, b"test-secret").expect("state builds");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("addr");
    tokio::spawn(switchboard_server::serve_with(
        listener,
        switchboard_server::app(state.clone()),
        switchboard_server::ServerLimits::from_config(&config.server),
        std::future::pending(),
    ));
    (format!("http://{addr}"), state)
}

/// Three clients: admin (read+write, all connections), reader (read only), outsider (sees only
/// `elsewhere`, a second Zipchat integration on the simulator's other chat).
pub fn clients_toml(sim_url: &str) -> String {
    format!(
        "[[clients]]\nname = \"admin\"\ntoken_sha256 = \"{}\"\nscopes = [\"read\", \"write\"]\nrate_limit = {{ requests = 100000, per_seconds = 1 }}\n\n\
         [[clients]]\nname = \"reader\"\ntoken_sha256 = \"{}\"\nscopes = [\"read\"]\n\n\
         [[clients]]\nname = \"outsider\"\ntoken_sha256 = \"{}\"\nscopes = [\"read\", \"write\"]\nconnections = [\"elsewhere\"]\n\n\
         [[connections]]\nid = \"elsewhere\"\nprovider = \"zipchat\"\nchat_id = \"2\"\napi_key = \"{}\"\nbase_url = \"{sim_url}{}\"\n\n",
        sha(ADMIN),
        sha(READER),
        sha(OUTSIDER),
        switchboard_sim::zipchat::OTHER_API_KEY,
        switchboard_sim::zipchat::PREFIX,
    )
}

impl Env {
    pub async fn start(conversations: usize) -> Env {
        Env::start_with(conversations, |config| config).await
    }

    /// Like `start`, with the gateway config text passed through `edit` first.
    pub async fn start_with(conversations: usize, edit: impl FnOnce(String) -> String) -> Env {
        let mut env = Env::simulators(7, conversations).await;
        let config = format!(
            "{}{}",
            clients_toml(&env.sim_url),
            registry::demo_config(&env.sim_url)
        );
        env.gateway = start_gateway(&edit(config)).await;
        env
    }

    /// The simulators in-process on a loopback port, generated from `seed`, and no gateway yet:
    /// `gateway` is filled in once one runs.
    pub async fn simulators(seed: u64, conversations: usize) -> Env {
        let sim = registry::simulators(&SimOptions {
            seed,
            conversations,
        });
        let sim_addr = sim
            .clone()
            .spawn("127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("sim starts");
        Env {
            gateway: String::new(),
            sim_url: format!("http://{sim_addr}"),
            sim,
            http: reqwest::Client::new(),
        }
    }

    /// The simulator behind demo connection `connection`, and its vendor.
    pub fn simulated(&self, connection: &str) -> (&'static DemoVendor, &Arc<dyn Simulated>) {
        let entry = VENDORS
            .iter()
            .find(|v| v.demo_connection == connection)
            .unwrap_or_else(|| panic!("{connection} is a demo connection"));
        let simulated = self
            .sim
            .vendor(entry.simulator.name)
            .unwrap_or_else(|| panic!("{} is simulated", entry.simulator.name));
        (entry, simulated)
    }

    /// Requests each simulated vendor received so far.
    pub async fn sim_requests(&self) -> std::collections::BTreeMap<String, u64> {
        sim_requests_at(&self.http, &self.sim_url).await
    }

    /// Sets a vendor's faults on the simulator (`{}` clears them).
    pub async fn faults(&self, vendor: &str, faults: Value) {
        let r = self
            .http
            .put(format!("{}/_control/faults/{vendor}", self.sim_url))
            .json(&faults)
            .send()
            .await
            .expect("control answers");
        assert!(r.status().is_success(), "faults for {vendor}");
    }

    pub async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.gateway))
            .bearer_auth(token)
            .send()
            .await
            .expect("gateway answers");
        read(r).await
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        token: &str,
        path: &str,
        body: Value,
    ) -> (u16, Value) {
        let r = self
            .http
            .request(method, format!("{}{path}", self.gateway))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("gateway answers");
        read(r).await
    }

    /// The newest conversation of `connection`, ready for a reply: one the bot answers is taken
    /// over first (Zipchat refuses replies in AI mode).
    pub async fn reply_target(&self, connection: &str) -> String {
        let (_, page) = self
            .get(
                ADMIN,
                &format!("/v1/conversations?connection={connection}&limit=1"),
            )
            .await;
        let id = page["data"][0]["id"]
            .as_str()
            .expect("a conversation")
            .to_owned();
        let can_assign = self.simulated(connection).0.capabilities().assign;
        if page["data"][0]["mode"] == "ai" && can_assign {
            let (_, agents) = self
                .get(ADMIN, &format!("/v1/connections/{connection}/agents"))
                .await;
            let (status, body) = self
                .send(
                    reqwest::Method::PUT,
                    ADMIN,
                    &format!("/v1/conversations/{id}/assignment"),
                    serde_json::json!({"assignee_id": agents["data"][0]["id"]}),
                )
                .await;
            assert_eq!(status, 200, "{body}");
        }
        id
    }

    /// Pages `path` (which has a `?`) to the end; returns every item.
    pub async fn page_all(&self, token: &str, path: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..10_000 {
            let url = match &cursor {
                Some(c) => format!("{path}&cursor={}", urlencode(c)),
                None => path.to_owned(),
            };
            let (status, body) = self.get(token, &url).await;
            assert_eq!(status, 200, "{url}: {body}");
            items.extend(body["data"].as_array().cloned().unwrap_or_default());
            match body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return items,
            }
        }
        panic!("paging {path} never ended");
    }
}

/// Whether a reply's answer is the replay of an earlier one (`Idempotency-Replayed: true`).
pub fn replayed(r: &reqwest::Response) -> bool {
    r.headers()
        .get("idempotency-replayed")
        .is_some_and(|v| v == "true")
}

pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn read(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = r.text().await.expect("body");
    if status >= 400 {
        assert_eq!(
            content_type, "application/problem+json",
            "error without problem+json: {status} {text}"
        );
    }
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The simulator's own report, `GET /_control` (request counters by vendor, bytes sent, …).
pub async fn sim_report(http: &reqwest::Client, sim_url: &str) -> Value {
    http.get(format!("{sim_url}/_control"))
        .send()
        .await
        .expect("control answers")
        .json()
        .await
        .expect("control JSON")
}

/// Requests each simulated vendor at `sim_url` received so far.
pub async fn sim_requests_at(
    http: &reqwest::Client,
    sim_url: &str,
) -> std::collections::BTreeMap<String, u64> {
    let report = sim_report(http, sim_url).await;
    serde_json::from_value(report["requests"].clone()).expect("counters")
}

/// The gateway's `/metrics` text (no ops token configured).
pub async fn metrics_text(http: &reqwest::Client, gateway: &str) -> String {
    http.get(format!("{gateway}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}
