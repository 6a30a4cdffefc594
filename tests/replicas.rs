//! What docker-compose.yml runs, as plain processes: one Redis (the test's own), the simulators,
//! and three replicas of the real binary (`switchboard serve`) sharing that Redis and one cursor
//! secret, with callers spread over the replicas as a round-robin load balancer would.
//!
//! Nothing here waits on a clock to pass or fail: quotas are spaced far beyond the test's length
//! and the vendor's window is closed for an hour, so "it did not happen" cannot be a matter of
//! timing.

mod support;

use std::sync::Arc;

use serde_json::{Value, json};
use support::Env;
use support::process::Gateway;
use switchboard_demo as registry;
use switchboard_sim::{Sim, SimOptions};
use switchboard_testkit::{RedisServer, TempDir, free_port};

const TOKEN: &str = "replicas-token";

/// Redis, the simulators (in-process, so the test reads their worlds directly) and the replicas.
struct Topology {
    env: Env,
    replicas: Vec<Gateway>,
    _redis: RedisServer,
    _dir: TempDir,
}

impl Topology {
    /// Starts `replicas` gateways on one config: `[server]` gets `server` (after the shared
    /// cursor secret), the connections are `connections(sim_url)`.
    async fn start(
        replicas: usize,
        sim: Sim,
        server: &str,
        connections: impl FnOnce(&str) -> String,
    ) -> Topology {
        let dir = TempDir::new();
        let redis = RedisServer::start();
        let addr = sim
            .clone()
            .spawn("127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("sim starts");
        let sim_url = format!("http://{addr}");
        let config = format!(
            "[server]\ncursor_secret = \"one-secret-for-every-replica\"\n{server}\n\n\
             [store]\nredis_url = \"{}\"\nkey_prefix = \"replicas:\"\n\n\
             [[clients]]\nname = \"app\"\ntoken = \"{TOKEN}\"\nscopes = [\"read\", \"write\"]\n\
             rate_limit = {{ requests = 1000000, per_seconds = 1 }}\n\n{}",
            redis.url(),
            connections(&sim_url)
        );
        let config_path = dir.path().join("switchboard.toml");
        std::fs::write(&config_path, config).expect("config written");
        let mut started = Vec::new();
        for _ in 0..replicas {
            started.push(Gateway::start(&config_path, free_port(), dir.path()).await);
        }
        Topology {
            env: Env {
                gateway: started[0].url.clone(),
                sim_url,
                sim,
                http: reqwest::Client::new(),
            },
            replicas: started,
            _redis: redis,
            _dir: dir,
        }
    }

    /// The replica a round-robin balancer would pick for the `n`th request.
    fn replica(&self, n: usize) -> &str {
        &self.replicas[n % self.replicas.len()].url
    }

    async fn get(&self, replica: usize, path: &str) -> Answer {
        let r = self
            .env
            .http
            .get(format!("{}{path}", self.replica(replica)))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("the replica answers");
        Answer::read(r).await
    }

    /// The id (and native id) of a connection's newest conversation.
    async fn first_conversation(&self, connection: &str) -> (String, String) {
        let page = self
            .get(
                0,
                &format!("/v1/conversations?connection={connection}&limit=1"),
            )
            .await;
        assert_eq!(page.status, 200, "{}", page.body);
        let id = page.body["data"][0]["id"]
            .as_str()
            .expect("a conversation")
            .to_owned();
        let native = id.split_once(':').map(|(_, n)| n.to_owned()).expect("id");
        (id, native)
    }
}

/// What a caller saw.
struct Answer {
    status: u16,
    retry_after: Option<u64>,
    replayed: bool,
    body: Value,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let body = self.body.to_string();
        write!(
            f,
            "{} (Retry-After {:?}, replayed {}) {}",
            self.status,
            self.retry_after,
            self.replayed,
            body.chars().take(300).collect::<String>()
        )
    }
}

impl Answer {
    async fn read(r: reqwest::Response) -> Answer {
        let header = |name: &str| {
            r.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let retry_after = header("retry-after").and_then(|v| v.parse().ok());
        let replayed = header("idempotency-replayed").as_deref() == Some("true");
        let status = r.status().as_u16();
        let body = r.json().await.unwrap_or(Value::Null);
        Answer {
            status,
            retry_after,
            replayed,
            body,
        }
    }

    fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or_default()
    }
}

fn sim(conversations: usize) -> Sim {
    registry::simulators(&SimOptions {
        seed: 7,
        conversations,
    })
}

/// The quota the quota test gives both vendors, on the connections and on the simulators.
const QUOTA: u32 = 40;
/// Its window: a day, so the budget's spacing (a day / (QUOTA - BURST) = 48 min) never lets one
/// more request through while the test runs.
const WINDOW_SECS: u32 = 86_400;
/// What one budget allows at once: a quarter of the quota (docs/upstream.md).
/// Three replicas with a budget each would send three times this.
const BURST: u64 = QUOTA as u64 / 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn callers_spread_over_three_replicas_never_exceed_a_vendor_quota() {
    let sim = sim(20);
    sim.world::<switchboard_sim::zipchat::World>()
        .expect("zipchat")
        .lock()
        .expect("sim")
        .set_quota(QUOTA);
    sim.world::<switchboard_sim::chatbotx::World>()
        .expect("chatbotx")
        .lock()
        .expect("sim")
        .set_quota(QUOTA);
    let quota = format!("rate_limit = {{ requests = {QUOTA}, per_seconds = {WINDOW_SECS} }}\n");
    let topology = Topology::start(3, sim, "cache_ttl_ms = 0", |sim_url| {
        format!(
            "[[connections]]\nid = \"shop-zipchat\"\nprovider = \"zipchat\"\nbase_url = \"{sim_url}{}\"\nchat_id = \"{}\"\napi_key = \"{}\"\n{quota}\n{}{quota}",
            switchboard_sim::zipchat::PREFIX,
            switchboard_sim::zipchat::CHAT_ID,
            switchboard_sim::zipchat::API_KEY,
            registry::VENDORS.iter().find(|v| v.kind().as_str() == "chatbotx").expect("chatbotx").demo_section(sim_url),
        )
    })
    .await;
    let topology = Arc::new(topology);

    // 200 callers, each polling the inbox 5 times, each time through the next replica.
    let callers: Vec<_> = (0..200)
        .map(|caller| {
            let topology = topology.clone();
            tokio::spawn(async move {
                let mut answers = Vec::new();
                for poll in 0..5 {
                    answers.push(
                        topology
                            .get(caller + poll, "/v1/conversations?limit=10")
                            .await,
                    );
                }
                answers
            })
        })
        .collect();
    let mut answers = Vec::new();
    for caller in callers {
        answers.extend(caller.await.expect("a caller finished"));
    }

    for a in &answers {
        assert!(
            a.status == 200 || (a.status == 503 && a.retry_after.is_some_and(|s| s > 0)),
            "every caller gets 200 or 503 with Retry-After, not {a:?}"
        );
    }
    let served = answers.iter().filter(|a| a.status == 200).count();
    let refused = answers.len() - served;
    assert!(served > 0, "the quota served some pages");
    assert!(refused > 0, "the load went past the quota: {served} served");
    let sent = topology.env.sim_requests().await;
    for vendor in ["zipchat", "chatbotx"] {
        assert!(sent[vendor] > 0, "{vendor} was asked: {sent:?}");
        assert!(
            sent[vendor] <= BURST,
            "{vendor}: {} requests from three replicas, more than the one shared budget allows at once ({BURST}; the quota is {QUOTA} per {WINDOW_SECS} s)",
            sent[vendor]
        );
    }
}

async fn reply(topology: &Topology, replica: usize, id: &str, key: &str, text: &str) -> Answer {
    let r = topology
        .env
        .http
        .post(format!(
            "{}/v1/conversations/{id}/messages",
            topology.replica(replica)
        ))
        .bearer_auth(TOKEN)
        .header("Idempotency-Key", key)
        .json(&json!({ "text": text }))
        .send()
        .await
        .expect("the replica answers");
    Answer::read(r).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_key_sent_to_every_replica_at_once_sends_one_message_even_after_restarts() {
    let mut topology = Topology::start(3, sim(10), "", registry::demo_config).await;
    let (id, native) = topology.first_conversation("support-chatbotx").await;
    let messages = |t: &Topology| {
        t.env
            .sim
            .world::<switchboard_sim::chatbotx::World>()
            .expect("chatbotx")
            .lock()
            .expect("sim")
            .message_count(&native)
    };
    let before = messages(&topology);

    let text = "One reply, whichever replica hears it first";
    let answers = {
        let topology = &topology;
        let barrier = tokio::sync::Barrier::new(20);
        let barrier = &barrier;
        let (id, text) = (&id, text);
        futures::future::join_all((0..20).map(|n| async move {
            barrier.wait().await;
            reply(topology, n, id, "one-key-20-replicas", text).await
        }))
        .await
    };
    let first: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.status == 201 && !a.replayed)
        .collect();
    assert_eq!(first.len(), 1, "exactly one reply was sent: {answers:?}");
    let message_id = first[0].body["id"].clone();
    for a in &answers {
        let replay = a.status == 201 && a.replayed && a.body["id"] == message_id;
        let in_progress = a.status == 409 && a.code() == "idempotency_in_progress";
        assert!(
            (a.status == 201 && !a.replayed) || replay || in_progress,
            "{a:?}"
        );
    }
    assert_eq!(messages(&topology), before + 1, "one message in the vendor");

    let sent = topology.env.sim_requests().await;
    for replica in &mut topology.replicas {
        replica.kill_9();
        replica.start_again().await;
    }
    for n in 0..topology.replicas.len() {
        let again = reply(&topology, n, &id, "one-key-20-replicas", text).await;
        assert_eq!(
            (again.status, again.replayed, &again.body["id"]),
            (201, true, &message_id),
            "replica {n} after its restart: {again:?}"
        );
    }
    assert_eq!(messages(&topology), before + 1, "still one message");
    assert_eq!(
        topology.env.sim_requests().await,
        sent,
        "the replays sent nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_vendor_429_seen_by_one_replica_closes_the_connection_on_every_replica() {
    // Cache off: every read below needs the vendor (a cached page would be served without it).
    let topology = Topology::start(3, sim(10), "cache_ttl_ms = 0", registry::demo_config).await;
    let (id, _) = topology.first_conversation("shop-zipchat").await;
    topology
        .env
        .faults(
            "zipchat",
            json!({"rate_limit_rate": 1.0, "retry_after_secs": 3600}),
        )
        .await;

    let conversation = format!("/v1/conversations/{id}");
    let first = topology.get(0, &conversation).await;
    assert_eq!(
        (first.status, first.code()),
        (503, "upstream_rate_limited"),
        "{first:?}"
    );
    let sent = topology.env.sim_requests().await;

    let closed = [
        conversation.clone(),
        format!("{conversation}/messages"),
        "/v1/conversations?connection=shop-zipchat".to_owned(),
    ];
    for replica in 0..topology.replicas.len() {
        for path in &closed {
            let a = topology.get(replica, path).await;
            assert_eq!(
                (a.status, a.code()),
                (503, "upstream_rate_limited"),
                "replica {replica}, {path}: {a:?}"
            );
            // The vendor's hour, not the budget's second.
            assert!(
                a.retry_after.is_some_and(|s| s > 60),
                "replica {replica}, {path}: {a:?}"
            );
        }
        // The other connections still serve the inbox; the closed one is named in `partial`.
        let inbox = topology.get(replica, "/v1/conversations?limit=5").await;
        assert_eq!(inbox.status, 200, "{inbox:?}");
        assert!(
            inbox.body["partial"].as_array().is_some_and(|p| {
                p.iter().any(|f| {
                    f["connection"] == "shop-zipchat" && f["code"] == "upstream_rate_limited"
                })
            }),
            "{inbox:?}"
        );
    }
    assert_eq!(
        topology.env.sim_requests().await["zipchat"],
        sent["zipchat"],
        "no replica asked Zipchat again while its window is closed"
    );
}
