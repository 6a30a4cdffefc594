//! Benchmark of the merged inbox (`GET /v1/conversations`, DESIGN.md §4).
//!
//! Starts the vendor simulators (on a runtime of their own) and three gateways in-process on
//! loopback (port 0): one with the
//! upstream page cache off (`cache_ttl_ms = 0`: every page shows its real upstream cost, as for
//! a caller who pages more slowly than the cache's TTL), the same without the pages a traversal
//! reached kept for it (`traversal_ttl_secs = 0`, section 1 only), and one with the default
//! cache. Every quota is raised out of the way (simulator and gateway budget).
//! One sequential client drives the gateways over HTTP; the upstream requests of each page are
//! read from the simulator's `GET /_control` counters before and after it. It measures:
//!
//! 1. a full traversal at `limit=50`, no injected latency: pages, upstream requests, correctness;
//! 2. page latency at fixed positions (page 1, 50, 200), repeated, each time right after the
//!    page before it, against the upstream floor (the same vendor requests sent straight to the
//!    simulator);
//! 3. the fan-out: the same positions with latency injected into every vendor
//!    (`PUT /_control/faults/{vendor}`), against one vendor call (measured: the
//!    slowest of page 1's vendor requests sent alone) and against the sum;
//! 4. a full traversal with 50 ms injected: how many upstream round trips each page waited for.
//!
//! Run: `cargo run --release --example inbox`. Results and the machine are in bench/README.md.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};
use switchboard_demo::{self as registry, VENDORS};
use switchboard_server::Config;
use switchboard_sim::{DirectRequest, SimOptions};

/// Conversations per simulated vendor: page 200 at limit 50 needs more than 10 000 in all.
const CONVERSATIONS: usize = 3000;
/// Page size of the inbox requests.
const LIMIT: usize = 50;
/// The positions measured (1-based page numbers of a traversal).
const POSITIONS: [usize; 3] = [1, 50, 200];
/// Sequential requests per position with no injected latency.
const OVERHEAD_REPS: usize = 200;
/// Sequential requests per single-connection page.
const SINGLE_REPS: usize = 100;
/// The caller's bearer token.
const TOKEN: &str = "bench-token";
/// Injected latencies of section 3's uneven scenario, per vendor in the registry's order (cycled).
const UNEVEN_MS: [u64; 4] = [50, 100, 200, 150];

/// Gateway connection id -> simulator vendor (the `/_control` counter name), one per vendor of
/// the registry's table.
fn connections() -> Vec<(&'static str, &'static str)> {
    VENDORS
        .iter()
        .map(|v| (v.demo_connection, v.simulator.name))
        .collect()
}

/// The same latency for every vendor.
fn every(ms: u64) -> Vec<u64> {
    vec![ms; VENDORS.len()]
}

type Counts = BTreeMap<String, u64>;

/// One page as the client saw it.
struct Page {
    elapsed: Duration,
    ids: Vec<String>,
    times: Vec<String>,
    next_cursor: Option<String>,
    partial: usize,
    /// The `code` of each connection in `partial`.
    partial_codes: Vec<String>,
    /// Upstream requests per vendor caused by this page.
    calls: Counts,
}

impl Page {
    fn total_calls(&self) -> u64 {
        self.calls.values().sum()
    }
}

/// One gateway in front of the simulators.
struct Gateway {
    url: String,
    /// Its page cache's time to live (0: off).
    cache_ttl: Duration,
    label: String,
}

struct Bench {
    http: reqwest::Client,
    sim_url: String,
    /// Page 1's vendor requests, by vendor, with their credentials (the floor).
    floor: Vec<(&'static str, DirectRequest)>,
    /// Page cache off: each page pays its upstream calls (the pages a traversal reached are
    /// kept for it, as by default).
    cold: Gateway,
    /// Page cache off and no pages kept for a traversal (`traversal_ttl_secs = 0`): every page
    /// re-reads each connection's current upstream page.
    stateless: Gateway,
    /// Page cache at its default.
    cached: Gateway,
}

impl Bench {
    async fn counters(&self) -> Counts {
        let report: Value = self
            .http
            .get(format!("{}/_control", self.sim_url))
            .send()
            .await
            .expect("simulator answers GET /_control")
            .json()
            .await
            .expect("GET /_control is JSON");
        report["requests"]
            .as_object()
            .expect("GET /_control has `requests`")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
            .collect()
    }

    async fn set_latencies(&self, ms: &[u64]) {
        for ((_, vendor), ms) in connections().into_iter().zip(ms) {
            let status = self
                .http
                .put(format!("{}/_control/faults/{vendor}", self.sim_url))
                .json(&serde_json::json!({ "latency_ms": ms }))
                .send()
                .await
                .expect("simulator answers PUT /_control/faults")
                .status();
            assert!(status.is_success(), "setting faults of {vendor}: {status}");
        }
    }

    /// The upstream floor of page 1: the vendor requests the gateway makes for it (each
    /// simulator says which: ChatbotX's open and archived lists, one list page of the others),
    /// sent straight to the simulator, concurrently; timed until the last body is read. Also
    /// gives the body bytes per vendor.
    async fn upstream_floor(&self) -> (Duration, Vec<(&'static str, usize)>) {
        let requests = self.floor.iter().map(|(vendor, direct)| {
            let request = self.direct(direct);
            async move { (*vendor, read_all(request).await) }
        });
        let start = Instant::now();
        let sizes = futures::future::join_all(requests).await;
        let elapsed = start.elapsed();
        let mut by_vendor: Vec<(&'static str, usize)> = Vec::new();
        for (vendor, size) in sizes {
            match by_vendor.iter_mut().find(|(v, _)| *v == vendor) {
                Some((_, total)) => *total += size,
                None => by_vendor.push((vendor, size)),
            }
        }
        (elapsed, by_vendor)
    }

    /// One vendor call, measured: each of page 1's vendor requests sent alone to the simulator,
    /// `reps` times one after another, timed until its body is read; the slowest request's
    /// median, and its vendor. This is what a caller of that one vendor waits for.
    async fn one_call(&self, reps: usize) -> (Duration, &'static str) {
        let mut slowest = (Duration::ZERO, "");
        for (vendor, direct) in &self.floor {
            let mut samples = Vec::with_capacity(reps);
            for _ in 0..reps {
                let start = Instant::now();
                read_all(self.direct(direct)).await;
                samples.push(start.elapsed());
            }
            let median = summary(&samples).median;
            if median > slowest.0 {
                slowest = (median, vendor);
            }
        }
        slowest
    }

    /// A request straight to the simulator, with its credentials.
    fn direct(&self, direct: &DirectRequest) -> reqwest::RequestBuilder {
        let mut request = self.http.get(&direct.url);
        for (name, value) in &direct.headers {
            request = request.header(*name, value);
        }
        request
    }

    /// One inbox page, timed from sending the request to the last byte of the body.
    async fn page(&self, gateway: &Gateway, cursor: Option<&str>) -> Page {
        self.page_of(gateway, cursor, None).await
    }

    /// One inbox page, of one `connection` only when given.
    async fn page_of(
        &self,
        gateway: &Gateway,
        cursor: Option<&str>,
        connection: Option<&str>,
    ) -> Page {
        let before = self.counters().await;
        let mut request = self
            .http
            .get(format!("{}/v1/conversations", gateway.url))
            .bearer_auth(TOKEN)
            .query(&[("limit", LIMIT.to_string())]);
        if let Some(c) = connection {
            request = request.query(&[("connection", c)]);
        }
        if let Some(c) = cursor {
            request = request.query(&[("cursor", c)]);
        }
        let start = Instant::now();
        let response = request.send().await.expect("gateway answers");
        let status = response.status();
        let body = response.bytes().await.expect("gateway sends a body");
        let elapsed = start.elapsed();
        let after = self.counters().await;
        assert!(
            status.is_success(),
            "GET /v1/conversations: {status} {}",
            String::from_utf8_lossy(&body)
        );
        let body: Value = serde_json::from_slice(&body).expect("the page is JSON");
        let data = body["data"].as_array().expect("the page has `data`");
        let field = |c: &Value, k: &str| c[k].as_str().unwrap_or_default().to_owned();
        Page {
            elapsed,
            ids: data.iter().map(|c| field(c, "id")).collect(),
            times: data.iter().map(|c| field(c, "last_activity_at")).collect(),
            next_cursor: body["next_cursor"].as_str().map(str::to_owned),
            partial: body["partial"].as_array().map_or(0, Vec::len),
            partial_codes: body["partial"]
                .as_array()
                .map(|p| p.iter().map(|f| field(f, "code")).collect())
                .unwrap_or_default(),
            calls: after
                .iter()
                .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
                .collect(),
        }
    }

    /// Waits until everything `gateway` cached has expired.
    async fn expire_cache(&self, gateway: &Gateway) {
        if !gateway.cache_ttl.is_zero() {
            tokio::time::sleep(gateway.cache_ttl + Duration::from_millis(250)).await;
        }
    }
}

/// Sends one request straight to the simulator and reads its whole body; returns its length.
async fn read_all(request: reqwest::RequestBuilder) -> usize {
    let response = request.send().await.expect("simulator answers");
    let status = response.status();
    let body = response.bytes().await.expect("simulator sends a body");
    assert!(status.is_success(), "direct simulator request: {status}");
    body.len()
}

fn sha(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The gateway config: one client, one connection per simulated vendor, the client's and the
/// connections' quotas out of the way;
/// `server` is the `[server]` table's body.
fn config(sim_url: &str, server: &str) -> String {
    let quota = "rate_limit = { requests = 1000000, per_seconds = 1 }";
    let connections: Vec<String> = VENDORS
        .iter()
        .map(|v| format!("{}{quota}\n", v.demo_section(sim_url)))
        .collect();
    format!(
        r#"[server]
{server}

[[clients]]
name = "bench"
token_sha256 = "{token}"
scopes = ["read"]
{quota}

{}"#,
        connections.join("\n"),
        token = sha(TOKEN),
    )
}

/// Starts a gateway in-process on 127.0.0.1:0 with `config`.
async fn start_gateway(config: &str, label: &str) -> Gateway {
    let config = Config::parse(config).expect("bench config parses");
    let state = switchboard_server::state_from_config(&config, b"bench-secret")
        .expect("gateway state builds");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("gateway binds 127.0.0.1:0");
    let addr = listener.local_addr().expect("gateway address");
    tokio::spawn(switchboard_server::serve(
        listener,
        switchboard_server::app(state),
    ));
    let cache_ttl = Duration::from_millis(config.server.cache_ttl_ms);
    Gateway {
        url: format!("http://{addr}"),
        cache_ttl,
        label: format!(
            "{label} (`cache_ttl_ms = {}`{})",
            cache_ttl.as_millis(),
            if config.server.traversal_ttl_secs == 0 {
                ", `traversal_ttl_secs = 0`"
            } else {
                ""
            }
        ),
    }
}

/// Serves the simulator from a runtime of its own (two worker threads of its own), as a separate
/// process would: a vendor handler waiting for its world's lock then blocks a simulator thread,
/// never one of the gateway's, and the gateway's work is measured, not the two runtimes' sharing.
fn on_own_runtime(sim: switchboard_sim::Sim) -> SocketAddr {
    let (bound, address) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("simulator")
            .enable_all()
            .build()
            .expect("the simulator's runtime starts");
        runtime.block_on(async move {
            let addr = sim
                .spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
                .await
                .expect("simulator binds 127.0.0.1:0");
            bound
                .send(addr)
                .expect("the benchmark waits for the simulator");
            std::future::pending::<()>().await;
        });
    });
    address
        .recv()
        .expect("the simulator's thread reports its address")
}

async fn start() -> Bench {
    let sim = registry::simulators(&SimOptions {
        seed: 42,
        conversations: CONVERSATIONS,
    });
    let simulated: Vec<_> = VENDORS
        .iter()
        .filter_map(|v| Some((v.simulator.name, sim.vendor(v.simulator.name)?.clone())))
        .collect();
    for (_, s) in &simulated {
        s.lift_quota();
    }
    let sim_addr = on_own_runtime(sim);
    let sim_url = format!("http://{sim_addr}");
    let floor = simulated
        .iter()
        .flat_map(|(name, s)| s.first_page(&sim_url).into_iter().map(|r| (*name, r)))
        .collect();

    let cold = start_gateway(&config(&sim_url, "cache_ttl_ms = 0"), "cache off").await;
    let stateless = start_gateway(
        &config(&sim_url, "cache_ttl_ms = 0\ntraversal_ttl_secs = 0"),
        "cache off, pages not kept",
    )
    .await;
    let cached = start_gateway(&config(&sim_url, ""), "default cache").await;
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("HTTP client builds");
    Bench {
        http,
        sim_url,
        floor,
        cold,
        stateless,
        cached,
    }
}

// ── Statistics ───────────────────────────────────────────────────────────────────────────

/// Nearest-rank percentile of sorted samples.
fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2}")
    } else {
        format!("{ms:.1}")
    }
}

struct Summary {
    min: Duration,
    median: Duration,
    p99: Duration,
    max: Duration,
}

fn summary(samples: &[Duration]) -> Summary {
    let mut s = samples.to_vec();
    s.sort();
    Summary {
        min: s.first().copied().unwrap_or_default(),
        median: pct(&s, 50.0),
        p99: pct(&s, 99.0),
        max: s.last().copied().unwrap_or_default(),
    }
}

fn latencies(pages: &[Page]) -> Summary {
    summary(&pages.iter().map(|p| p.elapsed).collect::<Vec<_>>())
}

fn range(values: impl Iterator<Item = u64>) -> String {
    let values: Vec<u64> = values.collect();
    let lo = values.iter().min().copied().unwrap_or(0);
    let hi = values.iter().max().copied().unwrap_or(0);
    if lo == hi {
        lo.to_string()
    } else {
        format!("{lo}–{hi}")
    }
}

/// Upstream requests per page: `5 (zipchat 1 · chatbotx 2 · …)`; a count that varied between
/// repetitions shows its range.
fn calls(pages: &[Page]) -> String {
    let by_vendor = connections()
        .into_iter()
        .map(|(_, vendor)| {
            let counts = pages
                .iter()
                .map(|p| p.calls.get(vendor).copied().unwrap_or(0));
            format!("{vendor} {}", range(counts))
        })
        .collect::<Vec<_>>()
        .join(" · ");
    format!(
        "{} ({by_vendor})",
        range(pages.iter().map(Page::total_calls))
    )
}

fn connection_of(id: &str) -> &str {
    id.split_once(':').map_or(id, |(c, _)| c)
}

// ── Phases ───────────────────────────────────────────────────────────────────────────────

struct Traversal {
    pages: Vec<Page>,
    /// The cursor that requests page `n` (index `n - 1`; page 1 has none).
    cursors: Vec<Option<String>>,
    wall: Duration,
}

impl Traversal {
    fn calls_by_vendor(&self) -> Counts {
        let mut per_vendor = Counts::new();
        for p in &self.pages {
            for (k, v) in &p.calls {
                *per_vendor.entry(k.clone()).or_default() += v;
            }
        }
        per_vendor
    }

    fn total_calls(&self) -> u64 {
        self.pages.iter().map(Page::total_calls).sum()
    }
}

async fn traverse(bench: &Bench, gateway: &Gateway) -> Traversal {
    let mut pages = Vec::new();
    let mut cursors = vec![None];
    let start = Instant::now();
    loop {
        let cursor = cursors.last().cloned().flatten();
        let page = bench.page(gateway, cursor.as_deref()).await;
        assert_eq!(
            page.partial,
            0,
            "page {} has partial failures",
            pages.len() + 1
        );
        let next = page.next_cursor.clone();
        pages.push(page);
        match next {
            Some(c) => cursors.push(Some(c)),
            None => break,
        }
        assert!(pages.len() < 10_000, "the traversal never ends");
    }
    Traversal {
        pages,
        cursors,
        wall: start.elapsed(),
    }
}

async fn repeat(bench: &Bench, gateway: &Gateway, cursor: Option<&str>, reps: usize) -> Vec<Page> {
    let mut pages = Vec::with_capacity(reps);
    for _ in 0..reps {
        pages.push(bench.page(gateway, cursor).await);
    }
    pages
}

/// Page `position` of the traversal whose cursors are `cursors`, `reps` times, each time as
/// that traversal's next page: page `position - 1` is requested first (untimed, its upstream
/// requests not counted), so each measured page starts from the upstream pages its traversal
/// kept, as in a real traversal (the page before it), not from what an earlier repetition
/// left.
async fn repeat_at(
    bench: &Bench,
    gateway: &Gateway,
    cursors: &[Option<String>],
    position: usize,
    reps: usize,
) -> Vec<Page> {
    let mut pages = Vec::with_capacity(reps);
    for _ in 0..reps {
        if position > 1 {
            let before = bench.page(gateway, cursors[position - 2].as_deref()).await;
            assert_eq!(
                before.partial,
                0,
                "page {} has partial failures",
                position - 1
            );
            if std::env::var_os("SWITCHBOARD_BENCH_VERBOSE").is_some() {
                eprintln!(
                    "page {} before page {position}: {:?}",
                    position - 1,
                    before.calls
                );
            }
        }
        let page = bench.page(gateway, cursors[position - 1].as_deref()).await;
        assert_eq!(page.partial, 0, "page {position} has partial failures");
        if std::env::var_os("SWITCHBOARD_BENCH_VERBOSE").is_some() {
            eprintln!("page {position}: {:?}", page.calls);
        }
        pages.push(page);
    }
    pages
}

/// The 1-, 5- and 15-minute load averages (other work on the machine skews the numbers).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".to_owned())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Section 1: full traversals with no injected latency; returns the cache-off one (its cursors
/// give the fixed positions).
async fn full_traversals(bench: &Bench) -> Traversal {
    println!("## 1. Full traversal, no injected latency\n");
    println!(
        "| gateway | pages | items | distinct | newest first | upstream requests (by vendor) | per page: min / mean / max | wall time | page median / p99 / max (ms) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut cold = None;
    for gateway in [&bench.cold, &bench.stateless, &bench.cached] {
        bench.expire_cache(gateway).await;
        let t = traverse(bench, gateway).await;
        let items: usize = t.pages.iter().map(|p| p.ids.len()).sum();
        let distinct: BTreeSet<&String> = t.pages.iter().flat_map(|p| &p.ids).collect();
        let times: Vec<chrono::DateTime<chrono::FixedOffset>> = t
            .pages
            .iter()
            .flat_map(|p| &p.times)
            .map(|s| chrono::DateTime::parse_from_rfc3339(s).expect("last_activity_at is RFC 3339"))
            .collect();
        let ordered = times.windows(2).all(|w| w[0] >= w[1]);
        let s = latencies(&t.pages);
        println!(
            "| {} | {} | {items} | {} | {} | {} ({}) | {} / {:.2} / {} | {:.2} s | {} / {} / {} |",
            gateway.label,
            t.pages.len(),
            distinct.len(),
            if ordered { "yes" } else { "NO" },
            t.total_calls(),
            t.calls_by_vendor()
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", "),
            t.pages.iter().map(Page::total_calls).min().unwrap_or(0),
            t.total_calls() as f64 / t.pages.len() as f64,
            t.pages.iter().map(Page::total_calls).max().unwrap_or(0),
            t.wall.as_secs_f64(),
            ms(s.median),
            ms(s.p99),
            ms(s.max),
        );
        if std::ptr::eq(gateway, &bench.cold) {
            cold = Some(t);
        }
    }
    let t = cold.expect("the cache-off traversal ran");
    assert!(
        t.pages.len() >= 200,
        "only {} pages: page 200 does not exist",
        t.pages.len()
    );

    let mut by_connection: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (i, p) in t.pages.iter().enumerate() {
        for id in &p.ids {
            let e = by_connection.entry(connection_of(id)).or_default();
            e.0 += 1;
            e.1 = i + 1;
        }
    }
    println!("\nItems by connection (cache off), and the last page holding one:\n");
    println!("| connection | items | last page |");
    println!("|---|---|---|");
    for (connection, (n, last)) in &by_connection {
        println!("| {connection} | {n} | {last} |");
    }

    println!("\nPage latency by depth (cache-off traversal):\n");
    println!("| pages | median (ms) | max (ms) | upstream requests per page (mean) |");
    println!("|---|---|---|---|");
    for (i, chunk) in t.pages.chunks(50).enumerate() {
        let s = latencies(chunk);
        let calls: u64 = chunk.iter().map(Page::total_calls).sum();
        println!(
            "| {}–{} | {} | {} | {:.2} |",
            i * 50 + 1,
            i * 50 + chunk.len(),
            ms(s.median),
            ms(s.max),
            calls as f64 / chunk.len() as f64
        );
    }
    println!();
    t
}

/// Section 2: fixed positions, no injected latency.
async fn fixed_positions(bench: &Bench, cursors: &[Option<String>]) {
    println!(
        "## 2. Fixed positions, no injected latency ({OVERHEAD_REPS} sequential requests each)\n"
    );
    let mut floor = Vec::with_capacity(OVERHEAD_REPS);
    let mut bytes = Vec::new();
    for _ in 0..OVERHEAD_REPS {
        let (elapsed, sizes) = bench.upstream_floor().await;
        floor.push(elapsed);
        bytes = sizes;
    }
    let floor = summary(&floor);
    let n = bench.floor.len();
    println!(
        "| gateway | page | median (ms) | p99 (ms) | min (ms) | max (ms) | median − floor median (ms) | upstream requests per page |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    println!(
        "| none: page 1's {n} vendor requests sent straight to the simulator, concurrently (the floor) | 1 | {} | {} | {} | {} | – | {n} |",
        ms(floor.median),
        ms(floor.p99),
        ms(floor.min),
        ms(floor.max),
    );
    for gateway in [&bench.cold, &bench.cached] {
        for n in POSITIONS {
            let pages = repeat_at(bench, gateway, cursors, n, OVERHEAD_REPS).await;
            let s = latencies(&pages);
            println!(
                "| {} | {n} | {} | {} | {} | {} | {} | {} |",
                gateway.label,
                ms(s.median),
                ms(s.p99),
                ms(s.min),
                ms(s.max),
                ms(s.median.saturating_sub(floor.median)),
                calls(&pages),
            );
        }
    }

    println!(
        "\nOne connection at a time (`connection=`), page 1, {SINGLE_REPS} sequential requests each:\n"
    );
    println!(
        "| connection | upstream body bytes of its page 1 | gateway | median (ms) | p99 (ms) | upstream requests per page |"
    );
    println!("|---|---|---|---|---|---|");
    for (connection, vendor) in connections() {
        let size = bytes
            .iter()
            .find(|(v, _)| *v == vendor)
            .map_or(0, |(_, n)| *n);
        for gateway in [&bench.cold, &bench.cached] {
            let mut pages = Vec::with_capacity(SINGLE_REPS);
            for _ in 0..SINGLE_REPS {
                pages.push(bench.page_of(gateway, None, Some(connection)).await);
            }
            let s = latencies(&pages);
            println!(
                "| {connection} | {size} | {} | {} | {} | {} |",
                gateway.label,
                ms(s.median),
                ms(s.p99),
                calls(&pages),
            );
        }
    }
    println!();
}

/// Section 3: fixed positions with latency injected into every vendor, cache off.
async fn injected_latency(bench: &Bench, cursors: &[Option<String>]) {
    println!(
        "## 3. Injected upstream latency per vendor request, {}\n",
        bench.cold.label
    );
    let names: Vec<&str> = connections().into_iter().map(|(_, v)| v).collect();
    let n = bench.floor.len();
    println!(
        "| injected ({}) | page | requests | median (ms) | max (ms) | upstream requests per page | one vendor call, measured (ms) | median ÷ one call | sum of the page's calls |",
        names.join(" / ")
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let uneven: Vec<u64> = UNEVEN_MS
        .iter()
        .copied()
        .cycle()
        .take(VENDORS.len())
        .collect();
    for (injected, reps) in [(every(50), 20), (every(200), 10), (uneven, 10)] {
        bench.set_latencies(&injected).await;
        let (one_call, one_vendor) = bench.one_call(reps).await;
        let ratio = |d: Duration| format!("{:.2}x", d.as_secs_f64() / one_call.as_secs_f64());
        println!(
            "| {} ms | one vendor call: the slowest of page 1's requests ({one_vendor}) sent alone | {reps} | {} | – | 1 | {} | – | – |",
            latencies_of(&injected),
            ms(one_call),
            ms(one_call),
        );
        let mut floor = Vec::with_capacity(reps);
        for _ in 0..reps {
            floor.push(bench.upstream_floor().await.0);
        }
        let f = summary(&floor);
        println!(
            "| {} ms | floor: page 1's {n} vendor requests straight to the simulator, concurrently | {reps} | {} | {} | {n} | {} | {} | – |",
            latencies_of(&injected),
            ms(f.median),
            ms(f.max),
            ms(one_call),
            ratio(f.median),
        );
        for position in POSITIONS {
            let pages = repeat_at(bench, &bench.cold, cursors, position, reps).await;
            let s = latencies(&pages);
            // What the page would wait for if it made its upstream calls one after another.
            let sum_ms: u64 = pages
                .first()
                .map(|p| {
                    connections()
                        .into_iter()
                        .zip(&injected)
                        .map(|((_, v), l)| p.calls.get(v).copied().unwrap_or(0) * l)
                        .sum()
                })
                .unwrap_or(0);
            println!(
                "| {} ms | {position} | {reps} | {} | {} | {} | {} | {} | {sum_ms} ms |",
                latencies_of(&injected),
                ms(s.median),
                ms(s.max),
                calls(&pages),
                ms(one_call),
                ratio(s.median),
            );
        }
    }
    bench.set_latencies(&every(0)).await;
    println!();
}

fn latencies_of(injected: &[u64]) -> String {
    let each: Vec<String> = injected.iter().map(u64::to_string).collect();
    each.join(" / ")
}

/// Section 4: full traversals with `l` ms on every vendor: round trips waited for per page.
async fn traversals_with_latency(bench: &Bench, l: u64) {
    println!("## 4. Full traversal with {l} ms on every vendor\n");
    bench.set_latencies(&every(l)).await;
    let mut histograms = Vec::new();
    println!("| gateway | pages | wall time | page median / p99 / max (ms) | upstream requests |");
    println!("|---|---|---|---|---|");
    for gateway in [&bench.cold, &bench.cached] {
        bench.expire_cache(gateway).await;
        let t = traverse(bench, gateway).await;
        let s = latencies(&t.pages);
        println!(
            "| {} | {} | {:.1} s | {} / {} / {} | {} |",
            gateway.label,
            t.pages.len(),
            t.wall.as_secs_f64(),
            ms(s.median),
            ms(s.p99),
            ms(s.max),
            t.total_calls()
        );
        let mut by_rounds: BTreeMap<u128, (usize, u64)> = BTreeMap::new();
        for p in &t.pages {
            let e = by_rounds
                .entry(p.elapsed.as_millis() / u128::from(l))
                .or_default();
            e.0 += 1;
            e.1 += p.total_calls();
        }
        histograms.push((gateway.label.clone(), by_rounds));
    }
    bench.set_latencies(&every(0)).await;
    println!(
        "\nPages by latency, in steps of {l} ms (≈ upstream round trips waited for one after another):\n"
    );
    println!(
        "| gateway | page latency | round trips | pages | upstream requests per page (mean) |"
    );
    println!("|---|---|---|---|---|");
    for (label, by_rounds) in &histograms {
        for (rounds, (pages, calls)) in by_rounds {
            println!(
                "| {label} | {}–{} ms | {rounds} | {pages} | {:.2} |",
                rounds * u128::from(l),
                (rounds + 1) * u128::from(l),
                *calls as f64 / *pages as f64
            );
        }
    }
    println!();
}

/// Pages per scenario of section 5.
const DOWN_REPS: usize = 60;

/// Section 5: page 1 with the first vendor of the table failing, hanging or rate-limited,
/// against all healthy, through a fresh cache-off gateway each (default breaker and page
/// deadline).
async fn one_vendor_down(bench: &Bench) {
    let Some(down) = VENDORS.first() else { return };
    let (name, counter) = (down.entry.vendor.name, down.simulator.name);
    let total = VENDORS.len();
    println!(
        "## 5. One vendor of {total} failing, hanging or rate-limited (page 1, cache off, {DOWN_REPS} sequential pages each)\n"
    );
    println!(
        "Each scenario gets a fresh gateway with the defaults: breaker opens after 5 failures and \
cools down 10 s, page deadline 2500 ms. {name} gets the fault; the other {} stay healthy.\n",
        total - 1
    );
    println!(
        "| {name} | pages 1-5 (ms) | median (ms) | p99 | max | median ÷ healthy | pages with {name} in `partial`, by code |"
    );
    println!("|---|---|---|---|---|---|---|");
    let scenarios = [
        ("healthy", serde_json::json!({})),
        (
            "failing (500)",
            serde_json::json!({"error_rate": 1.0, "error_status": 500}),
        ),
        (
            "hanging (1 h)",
            serde_json::json!({"latency_ms": 3_600_000}),
        ),
        (
            "rate-limited (429, Retry-After 1 h)",
            serde_json::json!({"rate_limit_rate": 1.0, "retry_after_secs": 3600}),
        ),
    ];
    let set_faults = |faults: Value| async move {
        let status = bench
            .http
            .put(format!("{}/_control/faults/{counter}", bench.sim_url))
            .json(&faults)
            .send()
            .await
            .expect("simulator answers PUT /_control/faults")
            .status();
        assert!(status.is_success(), "setting {counter}'s faults: {status}");
    };
    let mut healthy_median = None;
    for (label, faults) in scenarios {
        set_faults(serde_json::json!({})).await;
        let gateway = start_gateway(&config(&bench.sim_url, "cache_ttl_ms = 0"), label).await;
        repeat(bench, &gateway, None, 5).await;
        set_faults(faults).await;
        let pages = repeat(bench, &gateway, None, DOWN_REPS).await;
        let first: Vec<String> = pages.iter().take(5).map(|p| ms(p.elapsed)).collect();
        let stats = latencies(&pages);
        let median = *healthy_median.get_or_insert(stats.median);
        let mut codes = BTreeMap::<&str, usize>::new();
        for code in pages.iter().flat_map(|p| &p.partial_codes) {
            *codes.entry(code).or_default() += 1;
        }
        let partial = if codes.is_empty() {
            "none".to_owned()
        } else {
            codes
                .iter()
                .map(|(code, n)| format!("{n} `{code}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "| {label} | {} | {} | {} | {} | {:.2}x | {partial} |",
            first.join(" / "),
            ms(stats.median),
            ms(stats.p99),
            ms(stats.max),
            stats.median.as_secs_f64() / median.as_secs_f64(),
        );
    }
    set_faults(serde_json::json!({})).await;
    println!();
}

#[tokio::main]
async fn main() {
    let run_start = Instant::now();
    let bench = start().await;
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    println!("# Switchboard inbox benchmark\n");
    println!(
        "- {} connections ({}), {CONVERSATIONS} conversations each, `limit={LIMIT}`, one sequential client",
        VENDORS.len(),
        connections()
            .iter()
            .map(|(id, vendor)| format!("`{id}` → {vendor}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("- machine: {cores} cores, {}", cpu_model());
    println!(
        "- run: {}, load average at start {}",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        load_average()
    );
    println!(
        "- release build: {}\n",
        if cfg!(debug_assertions) {
            "NO (debug build: numbers are not representative)"
        } else {
            "yes"
        }
    );

    // Warm up both hops (client -> gateway -> simulator) and PingBack's login.
    for gateway in [&bench.cold, &bench.stateless, &bench.cached] {
        repeat(&bench, gateway, None, 20).await;
    }

    // `SWITCHBOARD_BENCH_ONLY=down` runs section 5 alone; `=latency` sections 1 and 3.
    let only = std::env::var("SWITCHBOARD_BENCH_ONLY").unwrap_or_default();
    if only != "down" {
        let t = full_traversals(&bench).await;
        if only != "latency" {
            fixed_positions(&bench, &t.cursors).await;
        }
        injected_latency(&bench, &t.cursors).await;
        if only != "latency" {
            traversals_with_latency(&bench, 50).await;
        }
    }
    if only.is_empty() || only == "down" {
        one_vendor_down(&bench).await;
    }
    println!(
        "Total run time: {:.1} s; load average at the end {}",
        run_start.elapsed().as_secs_f64(),
        load_average()
    );
}
