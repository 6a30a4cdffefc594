//! Benchmark of the event log's ceiling: the events per second it carries to 100 Server-Sent
//! Events subscribers (the change-feed issue's "events/s the log sustains to 100 SSE
//! subscribers").
//!
//! For each store `serve` can use (the embedded redb file, its default, and Redis; memory for
//! reference), it builds a gateway in-process over that store, serves it on loopback, opens
//! `SUBSCRIBERS` streams on `GET /v1/events/stream`, then appends `EVENTS` `message.created`
//! events (about 550 bytes of JSON each) through the log as fast as the store takes them, in
//! batches of `BATCH` (1: a gateway write each; larger: a poll pass's finds). It reports:
//!
//! - the append rate (events/s the store took, while the subscribers read it; `SUBSCRIBERS=0`
//!   gives it alone);
//! - the sustained rate: `EVENTS` divided by the time until the last subscriber received the
//!   last event (every subscriber gets every event, counted by its `id:` lines);
//! - the deliveries per second over all streams (the sustained rate times the subscribers);
//! - the CPU time per delivery (an event to one subscriber) of this process (gateway and
//!   subscribers) and of the redis-server it started: steadier than rates on a shared machine.
//!
//! The subscribers are in the same process (and on the same cores) as the gateway, like a
//! consumer on the gateway's host. Redis: `REDIS_URL`, else a `redis-server` started on a free
//! port (it must be on the PATH), else skipped.
//!
//! Run: `cargo run --release --example feedlog` (knobs `SUBSCRIBERS`, `EVENTS`, `BATCH`,
//! `STORES=embedded,redis,memory`). Results and the machine are in bench/README.md.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use switchboard_feed::Event;
use switchboard_server::Config;
use switchboard_store::{EmbeddedStore, MemoryStore, RedisStore, Store};

const TOKEN: &str = "bench-token";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn config() -> anyhow::Result<Config> {
    let sha = hex::encode(Sha256::digest(TOKEN.as_bytes()));
    Config::parse(&format!(
        "[[clients]]\nname = \"bench\"\ntoken_sha256 = \"{sha}\"\nscopes = [\"read\"]\n\
         rate_limit = {{ requests = 1000000, per_seconds = 1 }}\n\n\
         [[connections]]\nid = \"shop\"\nprovider = \"zipchat\"\nchat_id = \"1\"\napi_key = \"k\"\n\
         base_url = \"http://127.0.0.1:9/zipchat\"\n"
    ))
    .map_err(|e| anyhow::anyhow!("{e}"))
}

/// A `message.created` event of the size the pollers append (a customer's message).
fn event(n: usize) -> anyhow::Result<Event> {
    Ok(serde_json::from_value(serde_json::json!({
        "id": "",
        "type": "message.created",
        "occurred_at": "2026-12-01T00:00:00Z",
        "connection": "shop",
        "provider": "zipchat",
        "conversation_id": format!("shop:{}", 12_000 + n % 300),
        "data": {"message": {
            "id": format!("shop:{}:{n}", 12_000 + n % 300),
            "conversation_id": format!("shop:{}", 12_000 + n % 300),
            "connection": "shop",
            "provider": "zipchat",
            "native_id": n.to_string(),
            "author": "contact",
            "sender": null,
            "text": "Hello, my order #48213 has not arrived yet; the tracking page shows nothing since Monday. Can you check?",
            "html": null,
            "attachments": [],
            "created_at": "2026-12-01T00:00:00Z",
            "direction": "inbound",
            "delivery_status": null,
        }},
    }))?)
}

struct Run {
    append_secs: f64,
    last_secs: f64,
    median_secs: f64,
}

async fn run(
    store: Arc<dyn Store>,
    subscribers: usize,
    events: usize,
    batch: usize,
) -> anyhow::Result<Run> {
    let config = config()?;
    let state = switchboard_server::state_over_store(&config, b"bench-secret", store)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr: SocketAddr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(switchboard_server::serve_with(
        listener,
        switchboard_server::app(state.clone()),
        switchboard_server::ServerLimits::from_config(&config.server),
        async {
            let _ = stopped.await;
        },
    ));
    let http = reqwest::Client::new();
    let start_cursor = state
        .feed
        .newest()
        .await?
        .map_or_else(|| "0-0".to_owned(), |id| id.to_string());
    let received: Arc<Vec<AtomicU64>> =
        Arc::new((0..subscribers).map(|_| AtomicU64::new(0)).collect());
    let done_at: Arc<std::sync::Mutex<Vec<Instant>>> = Arc::default();
    let mut streams = Vec::new();
    for i in 0..subscribers {
        let response = http
            .get(format!(
                "http://{addr}/v1/events/stream?after={start_cursor}"
            ))
            .bearer_auth(TOKEN)
            .send()
            .await?;
        anyhow::ensure!(response.status() == 200, "stream: {}", response.status());
        let (received, done_at) = (received.clone(), done_at.clone());
        let mut response = response;
        streams.push(tokio::spawn(async move {
            let mut line_start = true;
            let mut count = 0u64;
            // Counts `id:` at the start of a line, across chunk boundaries.
            let mut partial = Vec::new();
            while let Ok(Some(chunk)) = response.chunk().await {
                for &b in chunk.iter() {
                    if line_start {
                        partial.clear();
                    }
                    if b == b'\n' {
                        line_start = true;
                        continue;
                    }
                    if line_start || partial.len() < 3 {
                        partial.push(b);
                        if partial == b"id:" {
                            count += 1;
                        }
                    }
                    line_start = false;
                }
                received[i].store(count, Ordering::Relaxed);
                if count as usize >= events {
                    done_at.lock().expect("lock").push(Instant::now());
                    return;
                }
            }
        }));
    }
    let batches: Vec<Vec<Event>> = (0..events)
        .map(event)
        .collect::<anyhow::Result<Vec<_>>>()?
        .chunks(batch)
        .map(<[Event]>::to_vec)
        .collect();
    let start = Instant::now();
    for b in batches {
        state.feed.append(b).await?;
    }
    let append_secs = start.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(600);
    while done_at.lock().expect("lock").len() < subscribers {
        anyhow::ensure!(
            Instant::now() < deadline,
            "subscribers still behind after 10 minutes: {:?}",
            received.iter().map(|r| r.load(Ordering::Relaxed)).min()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut done: Vec<f64> = done_at
        .lock()
        .expect("lock")
        .iter()
        .map(|t| (*t - start).as_secs_f64())
        .collect();
    done.sort_by(f64::total_cmp);
    for s in streams {
        s.abort();
    }
    let _ = stop.send(());
    let _ = served.await;
    // No subscriber (`SUBSCRIBERS=0`): the append rate alone.
    Ok(Run {
        append_secs,
        last_secs: done.last().copied().unwrap_or(append_secs),
        median_secs: done.get(done.len() / 2).copied().unwrap_or(append_secs),
    })
}

/// CPU seconds (user + system) process `pid` has used ("self": this one), from `/proc`.
fn cpu_secs(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name (which may hold spaces) start after its ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// `REDIS_URL`, or a `redis-server` started here (stopped when dropped).
struct Redis {
    url: String,
    child: Option<std::process::Child>,
}

impl Redis {
    /// The started redis-server's pid, for its CPU time.
    fn pid(&self) -> Option<String> {
        self.child.as_ref().map(|c| c.id().to_string())
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn redis() -> Option<Redis> {
    if let Ok(url) = std::env::var("REDIS_URL") {
        return Some(Redis { url, child: None });
    }
    let port = free_port().ok()?;
    let child = std::process::Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .ok()?;
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(Redis {
        url: format!("redis://127.0.0.1:{port}"),
        child: Some(child),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let subscribers = env_usize("SUBSCRIBERS", 100);
    let events = env_usize("EVENTS", 20_000);
    let batch = env_usize("BATCH", 1).max(1);
    let stores = std::env::var("STORES").unwrap_or_else(|_| "embedded,redis,memory".to_owned());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "{subscribers} SSE subscribers, {events} events appended in batches of {batch}; load average before: {}\n",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "| store | appended: events/s (while the subscribers read) | sustained to every subscriber: events/s | deliveries/s over all streams | median subscriber done | last subscriber done |"
    );
    println!("|---|---|---|---|---|---|");
    let db = std::env::temp_dir().join(format!("switchboard-feedlog-{}.db", std::process::id()));
    let mut redis_server = None;
    for name in stores.split(',').map(str::trim) {
        let store: Arc<dyn Store> = match name {
            "embedded" => {
                let _ = std::fs::remove_file(&db);
                Arc::new(EmbeddedStore::open(&db)?)
            }
            "memory" => Arc::new(MemoryStore::default()),
            "redis" => {
                if redis_server.is_none() {
                    redis_server = redis();
                }
                let Some(r) = &redis_server else {
                    println!("| redis | skipped: no REDIS_URL and no redis-server | | | | | |");
                    continue;
                };
                let prefix = format!("feedlog-bench-{}:", std::process::id());
                Arc::new(RedisStore::connect(&r.url, &prefix)?)
            }
            other => anyhow::bail!("unknown store `{other}` (embedded, redis, memory)"),
        };
        let redis_pid = (name == "redis")
            .then(|| redis_server.as_ref().and_then(Redis::pid))
            .flatten();
        let (cpu_before, redis_before) = (cpu_secs("self"), redis_pid.as_deref().map(cpu_secs));
        let r = run(store, subscribers, events, batch).await?;
        let deliveries = (events * subscribers.max(1)) as f64;
        let cpu = (cpu_secs("self") - cpu_before) / deliveries * 1e6;
        let redis_cpu = redis_pid
            .as_deref()
            .zip(redis_before)
            .map(|(pid, before)| format!(" + {:.1}", (cpu_secs(pid) - before) / deliveries * 1e6))
            .unwrap_or_default();
        let sustained = events as f64 / r.last_secs;
        println!(
            "| {name} | {:.0} | {:.0} | {:.0} | {:.2} s | {:.2} s | {cpu:.1}{redis_cpu} µs |",
            events as f64 / r.append_secs,
            sustained,
            sustained * subscribers as f64,
            r.median_secs,
            r.last_secs,
        );
    }
    let _ = std::fs::remove_file(&db);
    Ok(())
}
