//! What the HTTP server owes its callers whatever they send: bounded connections, problem+json
//! for every refusal (even those made before a handler runs), throttled token guessing, guarded
//! ops endpoints, and a process that stops when told.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use support::process::{sigterm, wait_exit};
use support::{ADMIN, Env};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A bound on waits that must end on their own: failing here beats hanging CI.
const SAFETY: Duration = Duration::from_secs(60);

/// Reads until the server closes the connection; `true` when it did (within [`SAFETY`]).
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    let read_to_end = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(SAFETY, read_to_end).await.is_ok()
}

fn host_of(gateway: &str) -> &str {
    gateway.trim_start_matches("http://")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_connections_are_closed_and_the_gateway_keeps_serving() {
    let env = Env::start_with(5, |config| {
        format!("[server]\nheader_timeout_secs = 1\nmax_connections = 4\n\n{config}")
    })
    .await;
    let addr = host_of(&env.gateway).to_owned();
    // Slowloris: every connection slot taken by a request whose headers never end.
    let mut slow = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(&addr).await.expect("connects");
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n")
            .await
            .expect("writes");
        slow.push(s);
    }
    // The gateway still answers: the slow ones are closed after the header timeout, freeing
    // their slots.
    let r = tokio::time::timeout(
        SAFETY,
        env.http.get(format!("{}/healthz", env.gateway)).send(),
    )
    .await
    .expect("healthz answered while the slots were taken")
    .expect("healthz answers");
    assert_eq!(r.status(), 200);
    for s in &mut slow {
        assert!(
            closed_by_server(s).await,
            "a slowloris connection stayed open"
        );
    }
    // An idle keep-alive connection is closed too.
    let mut idle = TcpStream::connect(&addr).await.expect("connects");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("writes");
    let mut head = [0u8; 12];
    idle.read_exact(&mut head).await.expect("a response");
    assert_eq!(&head, b"HTTP/1.1 200");
    assert!(
        closed_by_server(&mut idle).await,
        "an idle connection stayed open"
    );
}

/// Connections that send nothing, or a request head that never ends, or only an HTTP/2 preface,
/// cannot lock other clients out: with every slot taken by them (and a header timeout of an
/// hour), a new client is served at once, the oldest of them giving up its slot; and a silent
/// connection is closed at the header timeout like a slow one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_cannot_lock_clients_out() {
    let env = Env::start_with(5, |config| {
        format!("[server]\nheader_timeout_secs = 3600\nmax_connections = 8\n\n{config}")
    })
    .await;
    let addr = host_of(&env.gateway).to_owned();
    let mut held = Vec::new();
    for n in 0..60 {
        let mut s = TcpStream::connect(&addr).await.expect("connects");
        match n % 3 {
            0 => {}
            1 => s
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                .await
                .expect("writes"),
            _ => s
                .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
                .await
                .expect("writes"),
        }
        held.push(s);
    }
    for _ in 0..3 {
        let r = tokio::time::timeout(
            SAFETY,
            env.http.get(format!("{}/healthz", env.gateway)).send(),
        )
        .await
        .expect("a new client is served while silent connections hold every slot")
        .expect("healthz answers");
        assert_eq!(r.status(), 200);
    }
    // A client that keeps its connection (it sent a request) is never closed for a newcomer.
    let kept = reqwest::Client::new();
    let r = kept
        .get(format!("{}/healthz", env.gateway))
        .send()
        .await
        .expect("answers");
    assert_eq!(r.status(), 200);
    drop(held);

    let env = Env::start_with(5, |config| {
        format!("[server]\nheader_timeout_secs = 1\n\n{config}")
    })
    .await;
    let mut silent = TcpStream::connect(host_of(&env.gateway))
        .await
        .expect("connects");
    assert!(
        closed_by_server(&mut silent).await,
        "a connection that sends nothing stayed open past the header timeout"
    );
}

/// A reply holding bidi controls is refused, naming the parameter, and nothing is sent; line and
/// paragraph separators go through as they are. A body announced larger than the cap is refused
/// on every endpoint, one that reads no body included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bidi_controls_are_refused_and_oversized_bodies_everywhere() {
    let env = Env::start(10).await;
    let id = env.reply_target("helpdesk-pingback").await;
    let before = env.sim_requests().await;
    for control in ['\u{202A}', '\u{202E}', '\u{2066}', '\u{2069}'] {
        let (status, problem) = env
            .send(
                reqwest::Method::POST,
                ADMIN,
                &format!("/v1/conversations/{id}/messages"),
                serde_json::json!({"text": format!("pay {control}1234 now")}),
            )
            .await;
        assert_eq!(
            (status, &problem["code"]),
            (422, &serde_json::json!("invalid_text")),
            "{problem}"
        );
    }
    assert_eq!(env.sim_requests().await, before, "nothing was sent");
    let text = "first line\u{2028}second paragraph\u{2029}end";
    let (status, message) = env
        .send(
            reqwest::Method::POST,
            ADMIN,
            &format!("/v1/conversations/{id}/messages"),
            serde_json::json!({"text": text}),
        )
        .await;
    assert_eq!(status, 201, "{message}");
    assert_eq!(message["text"], text);

    // Announced, not sent: the gateway answers from the head and never reads the body (a client
    // still sending would see its connection closed under it).
    let addr = host_of(&env.gateway).to_owned();
    for path in ["/v1/webhooks/crm/replay", "/v1/events/tickets", "/healthz"] {
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\nContent-Type: application/json\r\nContent-Length: 2097152\r\nConnection: close\r\n\r\n"
        );
        let (status, text) = raw_status_and_body(&addr, request.as_bytes()).await;
        assert_eq!(status, 413, "{path}: {text}");
        assert!(
            text.contains("\"code\":\"payload_too_large\""),
            "{path}: {text}"
        );
    }
}

async fn raw_status_and_body(addr: &str, request: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.expect("connects");
    s.write_all(request).await.expect("writes");
    let mut response = Vec::new();
    let _ = tokio::time::timeout(SAFETY, s.read_to_end(&mut response)).await;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_is_problem_json_and_nothing_is_sent() {
    let env = Env::start(10).await;
    let (_, page) = env
        .get(
            ADMIN,
            "/v1/conversations?connection=support-chatbotx&limit=1",
        )
        .await;
    let id = page["data"][0]["id"]
        .as_str()
        .expect("a conversation")
        .to_owned();
    let before = env.sim_requests().await;
    let reply = format!("/v1/conversations/{id}/messages");
    let bad_bodies = [
        (json!({"text": "x".repeat(10_001)}), "invalid_text"),
        (json!({"text": "a\u{0}b"}), "invalid_text"),
        (json!({"text": "line\r\nforged"}), "invalid_text"),
        (json!({"text": " \n\t "}), "invalid_text"),
        (
            json!({"text": "hi", "sender_id": "Not An Id"}),
            "invalid_sender_id",
        ),
        (
            json!({"text": "hi", "sender_id": "support-chatbotx:\u{7}"}),
            "invalid_sender_id",
        ),
    ];
    for (body, code) in bad_bodies {
        let (status, problem) = env.send(Method::POST, ADMIN, &reply, body.clone()).await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (422, Some(code)),
            "{body}"
        );
        let parameter = if code == "invalid_text" {
            "text"
        } else {
            "sender_id"
        };
        assert_eq!(problem["parameter"], parameter);
    }
    // The longest reply the spec allows is accepted as far as validation goes (10 000
    // characters, not bytes).
    assert_eq!(
        env.sim_requests().await,
        before,
        "nothing was sent to a vendor"
    );

    // Refusals made before any handler runs.
    let long_uri = format!("/v1/conversations?cursor={}", "a".repeat(10_000));
    let (status, problem) = env.get(ADMIN, &long_uri).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (414, Some("uri_too_long"))
    );
    let mut many = env
        .http
        .get(format!("{}/v1/connections", env.gateway))
        .bearer_auth(ADMIN);
    for i in 0..150 {
        many = many.header(format!("x-filler-{i}"), "1");
    }
    let r = many.send().await.expect("answers");
    assert_eq!(r.status(), 431);
    assert_eq!(
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    let problem: Value = r.json().await.expect("problem");
    assert_eq!(problem["code"], "headers_too_large");
    let big = env
        .http
        .get(format!("{}/v1/connections", env.gateway))
        .bearer_auth(ADMIN)
        .header("x-big", "b".repeat(40 * 1024))
        .send()
        .await
        .expect("answers");
    assert_eq!(big.status(), 431);

    // An id that is not UTF-8 once decoded, and a broken percent-encoding.
    let addr = host_of(&env.gateway).to_owned();
    for path in [
        "/v1/conversations/shop-zipchat:%FF%FE",
        "/v1/conversations/shop-zipchat:%ZZ",
    ] {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\nConnection: close\r\n\r\n"
        );
        let (status, text) = raw_status_and_body(&addr, request.as_bytes()).await;
        assert!((400..500).contains(&status), "{path}: {text}");
        assert!(text.contains("application/problem+json"), "{path}: {text}");
        assert!(text.contains("\"code\""), "{path}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_guessing_is_throttled_and_ops_endpoints_need_the_ops_token() {
    let env = Env::start_with(5, |config| {
        format!(
            "[server]\nops_token = \"ops-secret\"\nunauthenticated_rate_limit = {{ requests = 3, per_seconds = 3600 }}\n\n{config}"
        )
    })
    .await;
    for _ in 0..3 {
        let (status, problem) = env.get("guess", "/v1/connections").await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (401, Some("unauthenticated"))
        );
    }
    let r = env
        .http
        .get(format!("{}/v1/connections", env.gateway))
        .bearer_auth("guess")
        .send()
        .await
        .expect("answers");
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let problem: Value = r.json().await.expect("problem");
    assert_eq!(problem["code"], "rate_limited");
    // A valid token is not held back by the guessing from the same address.
    let (status, _) = env.get(ADMIN, "/v1/connections").await;
    assert_eq!(status, 200);
    // /healthz is open to all; /metrics and /readyz need the ops token.
    let open = env
        .http
        .get(format!("{}/healthz", env.gateway))
        .send()
        .await
        .expect("answers");
    assert_eq!(open.status(), 200);
    for path in ["/metrics", "/readyz"] {
        let (status, _) = env.get(ADMIN, path).await;
        assert_eq!(
            status, 429,
            "{path}: a client token is not the ops token, and this address is throttled"
        );
        let (status, _) = env.get("ops-secret", path).await;
        assert_eq!(status, 200, "{path}");
    }
}

/// The gateway binary, `serve`d from a temporary directory with `config`, logging JSON to a pipe.
struct Served {
    child: Child,
    addr: String,
    lines: std::sync::mpsc::Receiver<String>,
    _dir: TempDir,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(config: &str, format: &str) -> Served {
    let dir = std::env::temp_dir().join(format!(
        "switchboard-hardening-{}-{}",
        std::process::id(),
        fastrand_suffix()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("switchboard.toml");
    std::fs::write(&path, config).expect("config written");
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["serve", "--config"])
        .arg(&path)
        .current_dir(&dir)
        .env("SWITCHBOARD_LOG_FORMAT", format)
        .env("SWITCHBOARD_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the gateway starts");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut addr = None;
    let mut seen = Vec::new();
    while addr.is_none() {
        let line = lines
            .recv_timeout(SAFETY)
            .unwrap_or_else(|_| panic!("the gateway never said where it listens: {seen:?}"));
        addr = line
            .split_once("address")
            .and_then(|(_, rest)| {
                rest.trim_start_matches(['"', ':', '='])
                    .split(|c: char| c == '"' || c.is_whitespace())
                    .find(|s| !s.is_empty())
                    .map(str::to_owned)
            })
            .filter(|a| a.contains(':'));
        seen.push(line);
    }
    Served {
        child,
        addr: addr.unwrap_or_default(),
        lines,
        _dir: TempDir(dir),
    }
}

/// Every line the stopped gateway wrote: its last ones (written as it stopped) come until the
/// pipe closes.
fn every_line(lines: &std::sync::mpsc::Receiver<String>) -> Vec<String> {
    let mut all = Vec::new();
    while let Ok(line) = lines.recv_timeout(SAFETY) {
        all.push(line);
    }
    all
}

fn fastrand_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

fn client_config(extra_server: &str) -> String {
    format!(
        "[server]\nbind = \"127.0.0.1:0\"\n{extra_server}\n\n[[clients]]\nname = \"ops\"\ntoken = \"client-secret-token\"\nscopes = [\"read\", \"write\"]\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_half_sent_request_stops_within_the_shutdown_deadline() {
    // Requests may take 30 s; the shutdown deadline is 1 s. Waiting 20 s for the exit tells
    // the two apart without timing anything finer.
    let mut served = serve(
        &client_config("shutdown_timeout_secs = 1\nheader_timeout_secs = 3600"),
        "json",
    );
    let mut half = TcpStream::connect(&served.addr).await.expect("connects");
    half.write_all(
        b"POST /v1/conversations/x:1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer client-secret-token\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"text\":",
    )
    .await
    .expect("writes");
    // The request is being read by the handler when the signal comes.
    tokio::time::sleep(Duration::from_millis(200)).await;
    sigterm(&served.child);
    let status = wait_exit(&mut served.child, Duration::from_secs(20))
        .expect("the gateway still ran long after its shutdown deadline");
    assert!(status.success(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_one_json_object_per_line_with_no_secret_and_no_forged_line() {
    let mut served = serve(&client_config(""), "json");
    let http = reqwest::Client::new();
    let base = format!("http://{}", served.addr);
    let requests = [
        ("/v1/connections", "client-secret-token"),
        ("/v1/connections", "guessed-secret-token"),
        (
            "/v1/conversations/x%0D%0A%7B%22level%22%3A%22ERROR%22%7D:1",
            "client-secret-token",
        ),
        (
            "/v1/conversations/x:%0AINFO%20forged",
            "client-secret-token",
        ),
    ];
    for (path, token) in requests {
        let r = http
            .get(format!("{base}{path}"))
            .bearer_auth(token)
            .header("x-request-id", "req-1")
            .send()
            .await
            .expect("answers");
        assert!(r.status().as_u16() < 500, "{path}");
    }
    sigterm(&served.child);
    wait_exit(&mut served.child, SAFETY).expect("the gateway stops");
    let lines = every_line(&served.lines);
    assert!(lines.len() >= 5, "{lines:?}");
    let mut request_lines = 0;
    for line in &lines {
        let record: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {line}"));
        assert!(!line.contains("client-secret-token") && !line.contains("guessed-secret-token"));
        if record.get("status").is_some() {
            request_lines += 1;
            assert_eq!(record["span"]["request_id"], "req-1", "{line}");
        }
    }
    assert_eq!(request_lines, 4, "one line per request: {lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_escape_control_characters_and_have_no_colour_on_a_pipe() {
    let mut served = serve(&client_config(""), "text");
    let r = reqwest::Client::new()
        .get(format!(
            "http://{}/v1/conversations/x:%0D%0AINFO%20forged%20line",
            served.addr
        ))
        .bearer_auth("client-secret-token")
        .send()
        .await
        .expect("answers");
    assert_eq!(
        r.status(),
        400,
        "an id with control characters is malformed"
    );
    sigterm(&served.child);
    wait_exit(&mut served.child, SAFETY).expect("the gateway stops");
    let lines = every_line(&served.lines);
    assert!(
        lines.iter().any(|l| l.contains("\\r\\nINFO forged line")),
        "{lines:?}"
    );
    assert!(
        !lines.iter().any(|l| l.starts_with("INFO forged")),
        "{lines:?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains('\u{1b}')),
        "colour on a pipe: {lines:?}"
    );
}
