//! `switchboard`: the gateway (`serve`), the embedded demo (`demo`), the vendor simulators
//! (`sim`), a container health check (`healthcheck`), and the OpenAPI document (`openapi`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use sha2::{Digest, Sha256};
use switchboard_demo as demo;
use switchboard_server::Config;
use switchboard_server::config::{StoreConfig, StoreKind};
use switchboard_server::registry;
use switchboard_sim::SimOptions;

/// jemalloc for every allocation of the process. glibc's malloc and free were about a fifth of a
/// single read's instructions; with jemalloc (and the release profile's LTO) a read takes 185 000
/// instructions instead of 225 000, at glibc's peak memory (`bench/README.md`, "Allocator and
/// release profile").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Debug, Parser)]
#[command(
    name = "switchboard",
    version,
    about = "One API in front of your customer-messaging vendors"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway from a config file.
    Serve {
        /// The TOML config.
        #[arg(long, default_value = "switchboard.toml")]
        config: PathBuf,
        /// Overrides `[server] bind`.
        #[arg(long)]
        bind: Option<SocketAddr>,
    },
    /// Run the simulated vendors in-process and the gateway in front of them: no vendor account needed.
    Demo {
        /// Where the gateway listens.
        #[arg(long, default_value = "127.0.0.1:8080")]
        bind: SocketAddr,
        /// The bearer token callers use.
        #[arg(long, default_value = "demo-token")]
        token: String,
        /// Seed of the simulated data.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Conversations per simulated vendor.
        #[arg(long, default_value_t = 300)]
        conversations: usize,
        /// Keep the simulated world still (by default customers write, bots answer and agents
        /// close conversations every `--live-every-ms`).
        #[arg(long)]
        still: bool,
        /// How often the live world changes, in milliseconds.
        #[arg(long, default_value_t = DEFAULT_LIVE_EVERY_MS)]
        live_every_ms: u64,
        /// A browser origin whose pages may call the demo (CORS), e.g. `http://localhost:5173`;
        /// repeat for more.
        #[arg(long = "allow-origin", value_name = "ORIGIN")]
        allow_origins: Vec<String>,
    },
    /// Run the vendor simulators alone.
    Sim {
        /// Where the simulators listen.
        #[arg(long, default_value = "127.0.0.1:9100")]
        bind: SocketAddr,
        /// Seed of the simulated data.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Conversations per simulated vendor.
        #[arg(long, default_value_t = 300)]
        conversations: usize,
        /// Print a gateway config pointing at this simulator (token `demo-token`) and exit.
        #[arg(long)]
        print_config: bool,
        /// The simulator's URL as the gateway reaches it, for `--print-config` (default
        /// `http://<bind>`), e.g. `http://sim:9100` when both run in containers.
        #[arg(long)]
        public_url: Option<String>,
        /// Lift the simulated vendors' own request quotas (Zipchat, ChatbotX), for benchmarks
        /// that measure the gateway rather than the vendors' windows.
        #[arg(long)]
        no_rate_limits: bool,
        /// Make the world move: every `--live-every-ms` customers write, bots answer and agents
        /// close conversations, each vendor by its rules; `GET /_control/changes?after=<seq>`
        /// lists what changed.
        #[arg(long)]
        live: bool,
        /// How often the live world changes, in milliseconds.
        #[arg(long, default_value_t = DEFAULT_LIVE_EVERY_MS)]
        live_every_ms: u64,
    },
    /// Exit 0 when `url` answers 2xx within the timeout, 1 otherwise (a container's HEALTHCHECK:
    /// the image needs no curl).
    Healthcheck {
        /// What to ask.
        #[arg(long, default_value = "http://127.0.0.1:8080/readyz")]
        url: String,
        /// A bearer token to send (the `[server] ops_token`, when `/readyz` needs it).
        #[arg(long, env = "SWITCHBOARD_OPS_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Seconds to wait for the answer.
        #[arg(long, default_value_t = 5)]
        timeout_secs: u64,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// Print what each vendor supports, as a Markdown table.
    Capabilities,
}

/// How often a live simulated world changes, by default.
const DEFAULT_LIVE_EVERY_MS: u64 = 3000;

/// How often `demo` polls each simulated vendor for the change feed.
const DEMO_POLL_INTERVAL_SECS: u64 = 5;

fn init_tracing() -> anyhow::Result<switchboard_server::logging::Flush<std::io::Stderr>> {
    let format = switchboard_server::logging::Format::from_env().map_err(anyhow::Error::msg)?;
    Ok(switchboard_server::logging::init(format))
}

/// A cursor secret from the operating system's cryptographic random source.
fn random_secret() -> anyhow::Result<[u8; 32]> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret)
        .map_err(|e| anyhow::anyhow!("cannot read the system's random source: {e}"))?;
    Ok(secret)
}

fn client_section(token: &str) -> String {
    format!(
        "[[clients]]\nname = \"demo\"\ntoken_sha256 = \"{}\"\nscopes = [\"read\", \"write\", \"admin\"]\n",
        hex::encode(Sha256::digest(token.as_bytes()))
    )
}

async fn serve(mut config: Config, bind: SocketAddr) -> anyhow::Result<()> {
    if config.server.cursor_secret.is_none() {
        tracing::warn!(
            "no [server] cursor_secret: using a random one; cursors will not survive a restart"
        );
    }
    let store = config
        .store
        .get_or_insert_with(StoreConfig::embedded_default);
    match store.kind() {
        StoreKind::Memory => {
            tracing::warn!("store: memory; idempotency records and quotas do not survive a restart")
        }
        StoreKind::Embedded => {
            tracing::info!(path = %store.path().display(), "store: embedded file")
        }
        StoreKind::Redis => tracing::info!(key_prefix = store.key_prefix(), "store: Redis"),
    }
    let state = switchboard_server::state_from_config(&config, &random_secret()?)?;
    if let Err(e) = state.store.ping().await {
        // Start anyway: the store reconnects by itself, and /readyz says 503 until it answers.
        tracing::warn!(error = %e, "the store does not answer yet; /readyz answers 503 and requests that need it get 503 store_unavailable until it does");
    }
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on {bind}"))?;
    tracing::info!(address = %listener.local_addr()?, "switchboard listening");
    serve_until_signal(listener, &config, state).await
}

async fn demo(
    bind: SocketAddr,
    token: String,
    seed: u64,
    conversations: usize,
    live_every: Option<Duration>,
    allow_origins: Vec<String>,
) -> anyhow::Result<()> {
    let sim = demo::simulators(&SimOptions {
        seed,
        conversations,
    });
    // An example conversation: the newest of the first vendor's demo connection.
    let newest = demo::VENDORS.first().and_then(|v| {
        let id = sim.vendor(v.simulator.name)?.newest_conversation()?;
        Some(format!("{}:{id}", v.demo_connection))
    });
    let sim_addr = sim
        .clone()
        .spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .context("cannot start the simulators")?;
    if let Some(every) = live_every {
        sim.spawn_live(every);
    }
    let config_text = format!(
        "{}\n{}",
        client_section(&token),
        demo::demo_config(&format!("http://{sim_addr}"))
    );
    let mut config = Config::parse(&config_text).context("the demo config is invalid")?;
    // The demo serves one person on a known token: requests without it are not slowed down
    // (a contract fuzzer sends many on purpose), while `serve` keeps the guard.
    config.server.unauthenticated_rate_limit.requests = 100_000;
    config.server.cors.allowed_origins = allow_origins;
    // The demo polls every connection, so the change feed shows events.
    for connection in &mut config.connections {
        connection
            .poll
            .interval_secs
            .get_or_insert(DEMO_POLL_INTERVAL_SECS);
    }
    let state = switchboard_server::state_from_config(&config, &random_secret()?)?;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on {bind} (pass another with --bind)"))?;
    let addr = listener.local_addr()?;
    let auth = format!("-H 'Authorization: Bearer {token}'");
    println!("Switchboard demo: simulated vendors on http://{sim_addr}, gateway on http://{addr}");
    println!("Token: {token}");
    println!("Store: memory (quotas and idempotency records last as long as this process)\n");
    println!("  curl {auth} http://{addr}/v1/connections");
    println!("  curl {auth} 'http://{addr}/v1/conversations?limit=5'");
    if let Some(id) = newest {
        println!("  curl {auth} http://{addr}/v1/conversations/{id}/messages");
    }
    println!("  curl -N {auth} http://{addr}/v1/events/stream");
    if config.server.console {
        println!("\nConsole (in a browser; sign in with the token): http://{addr}/console");
    }
    if !config.server.cors.allowed_origins.is_empty() {
        println!(
            "Pages on {} may call the gateway (CORS).",
            config.server.cors.allowed_origins.join(", ")
        );
    }
    match live_every {
        Some(every) => println!(
            "\nThe simulated world moves every {} ms (--still keeps it still): http://{sim_addr}/_control/changes",
            every.as_millis()
        ),
        None => println!("\nThe simulated world is still."),
    }
    println!("\nOpenAPI: http://{addr}/openapi.json   Ctrl-C stops.");
    serve_until_signal(listener, &config, state).await
}

/// `healthcheck`: one GET, 2xx or an error that says what came back.
async fn healthcheck(url: &str, token: Option<&str>, timeout: Duration) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .context("cannot set up an HTTP client")?;
    let mut request = client.get(url);
    if let Some(token) = token.filter(|t| !t.is_empty()) {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("{url} did not answer"))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = response.text().await.unwrap_or_default();
    let excerpt: String = body.chars().take(500).collect();
    anyhow::bail!("{url} answered {status}: {excerpt}")
}

async fn serve_until_signal(
    listener: tokio::net::TcpListener,
    config: &Config,
    state: std::sync::Arc<switchboard_server::AppState>,
) -> anyhow::Result<()> {
    state.webhooks.start(&state.feed).await;
    let served = switchboard_server::serve_with(
        listener,
        switchboard_server::app(state.clone()),
        switchboard_server::ServerLimits::from_config(&config.server),
        switchboard_server::shutdown_signal(),
    )
    .await;
    // Each worker finishes its attempt in flight, saves, and gives its lease up.
    state.webhooks.stop().await;
    served?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Openapi => {
            println!(
                "{}",
                serde_json::to_string_pretty(&switchboard_server::api::openapi_json())?
            );
            Ok(())
        }
        Command::Healthcheck {
            url,
            token,
            timeout_secs,
        } => healthcheck(&url, token.as_deref(), Duration::from_secs(timeout_secs)).await,
        Command::Capabilities => {
            print!("{}", registry::capability_table());
            Ok(())
        }
        Command::Serve { config, bind } => {
            let _flush = init_tracing()?;
            let config = Config::load(&config)?;
            let bind = bind.unwrap_or(config.server.bind);
            serve(config, bind).await
        }
        Command::Demo {
            bind,
            token,
            seed,
            conversations,
            still,
            live_every_ms,
            allow_origins,
        } => {
            let _flush = init_tracing()?;
            let live_every = (!still).then(|| Duration::from_millis(live_every_ms.max(1)));
            demo(bind, token, seed, conversations, live_every, allow_origins).await
        }
        Command::Sim {
            bind,
            seed,
            conversations,
            print_config,
            public_url,
            no_rate_limits,
            live,
            live_every_ms,
        } => {
            if print_config {
                let base = public_url.unwrap_or_else(|| format!("http://{bind}"));
                print!(
                    "[server]\nbind = \"127.0.0.1:8080\"\n\n{}\n{}",
                    client_section("demo-token"),
                    demo::demo_config(base.trim_end_matches('/'))
                );
                return Ok(());
            }
            let _flush = init_tracing()?;
            let sim = demo::simulators(&SimOptions {
                seed,
                conversations,
            });
            if no_rate_limits {
                sim.lift_rate_limits();
            }
            if live {
                sim.spawn_live(Duration::from_millis(live_every_ms.max(1)));
            }
            let listener = tokio::net::TcpListener::bind(bind)
                .await
                .with_context(|| format!("cannot listen on {bind}"))?;
            tracing::info!(address = %listener.local_addr()?, "simulators listening; GET /_control for counters");
            sim.serve(listener).await?;
            Ok(())
        }
    }
}
