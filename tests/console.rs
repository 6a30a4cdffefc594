//! The console and the browser path, in headless Chromium over WebDriver (Debian's `chromium`
//! and `chromium-driver`; `scripts/test.sh` installs them). A gateway in front of the
//! simulators, reached through a loopback proxy the test can cut (a forced disconnect), and two
//! plain pages on other origins: one the gateway allows (CORS), one it does not.

mod support;

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use support::{ADMIN, Env, urlencode};
use switchboard_testkit::{TempDir, free_port};
use tokio::task::AbortHandle;

/// How long any one thing may take to show up in the page.
const PATIENCE: Duration = Duration::from_secs(15);

/// `chromedriver` on a free loopback port; killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    async fn start() -> Driver {
        let port = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver runs (scripts/test.sh installs Debian's chromium-driver)");
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::new();
        eventually("chromedriver answers", || async {
            let r = http
                .get(format!("{}/status", driver.url))
                .send()
                .await
                .ok()?;
            r.status().is_success().then_some(())
        })
        .await;
        driver
    }

    /// A fresh headless Chromium with its own profile.
    async fn browser(&self, profile: &TempDir) -> Client {
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1400,900",
        ]
        .iter()
        .map(|a| (*a).to_owned())
        .chain([format!("--user-data-dir={}", profile.path().display())])
        .collect::<Vec<_>>();
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": "/usr/bin/chromium", "args": args }),
        );
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a Chromium session starts")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP proxy to the gateway whose open connections [`Proxy::cut`] drops at once.
struct Proxy {
    url: String,
    open: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Proxy {
    async fn start(gateway: &str) -> Proxy {
        let target = gateway.trim_start_matches("http://").to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let open: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let tracked = open.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tracked.lock().expect("lock").push(task.abort_handle());
            }
        });
        Proxy { url, open }
    }

    /// Drops every open connection, as a network failure would.
    fn cut(&self) {
        for task in self.open.lock().expect("lock").drain(..) {
            task.abort();
        }
    }
}

/// A blank page served on its own loopback origin.
async fn blank_page() -> (String, tokio::net::TcpListener) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let origin = format!("http://{}", listener.local_addr().expect("addr"));
    (origin, listener)
}

fn serve_blank(listener: tokio::net::TcpListener) {
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(|| async {
            axum::response::Html("<!doctype html><title>a frontend</title><p>a frontend</p>")
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
}

/// Polls `check` until it gives a value; fails after [`PATIENCE`].
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn js(client: &Client, script: &str) -> Value {
    client
        .execute(script, vec![])
        .await
        .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
}

async fn js_strings(client: &Client, script: &str) -> Vec<String> {
    serde_json::from_value(js(client, script).await).expect("a list of strings")
}

/// Clicks the inbox row of conversation `id`.
async fn click_row(client: &Client, id: &str) {
    client
        .execute(
            "document.querySelector(`#conversation-rows [data-conversation-id=\"${arguments[0]}\"]`).click()",
            vec![json!(id)],
        )
        .await
        .unwrap_or_else(|e| panic!("no row for {id}: {e}"));
}

const INBOX_IDS: &str = "return [...document.querySelectorAll('#conversation-rows li')].map(li => li.dataset.conversationId)";

/// The ids of the conversations `path` lists, one page.
async fn page_ids(env: &Env, path: &str) -> (Vec<String>, Option<String>) {
    let (status, body) = env.get(ADMIN, path).await;
    assert_eq!(status, 200, "{path}: {body}");
    let ids = body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|c| c["id"].as_str().expect("id").to_owned())
        .collect();
    (ids, body["next_cursor"].as_str().map(str::to_owned))
}

async fn reply(env: &Env, conversation: &str, text: &str) -> Value {
    let r = env
        .http
        .post(format!(
            "{}/v1/conversations/{}/messages",
            env.gateway,
            urlencode(conversation)
        ))
        .bearer_auth(ADMIN)
        .header("Idempotency-Key", format!("test-{}", fastrand_key()))
        .json(&json!({ "text": text }))
        .send()
        .await
        .expect("gateway answers");
    let status = r.status();
    let body: Value = r.json().await.expect("JSON");
    assert!(status.is_success(), "reply to {conversation}: {body}");
    body
}

fn fastrand_key() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The ids of every event after `after`, as `GET /v1/events` gives them.
async fn event_ids_after(env: &Env, after: &str) -> Vec<String> {
    let (status, body) = env
        .get(ADMIN, &format!("/v1/events?after={after}&limit=500"))
        .await;
    assert_eq!(status, 200, "{body}");
    body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|e| e["id"].as_str().expect("id").to_owned())
        .collect()
}

/// Opens an `EventSource` on the gateway from the current page with tickets, the way a page
/// should: on error, close, mint a new ticket, reopen with `?after=<last id>`. Ids received go
/// to `window.received`, reopenings to `window.reopened`.
const FOLLOW: &str = r#"
const [base, token, after, done] = arguments;
window.received = []; window.reopened = 0; window.failures = [];
async function ticket() {
  const r = await fetch(base + "/v1/events/tickets", {
    method: "POST",
    headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" },
    body: "{}",
  });
  window.requestId = r.headers.get("X-Request-Id");
  return (await r.json()).ticket;
}
async function open(from) {
  const url = new URL(base + "/v1/events/stream");
  url.searchParams.set("ticket", await ticket());
  url.searchParams.set("after", from);
  const source = new EventSource(url);
  let last = from;
  for (const type of ["conversation.created", "conversation.updated", "message.created"]) {
    source.addEventListener(type, (m) => { last = m.lastEventId; window.received.push(m.lastEventId); });
  }
  source.onerror = () => { source.close(); window.reopened += 1; open(last).catch((e) => window.failures.push(String(e))); };
  return source;
}
open(after).then((source) => { source.onopen = () => done("open"); }, (e) => done("failed: " + e));
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_and_a_page_on_another_origin_in_chromium() {
    let (allowed_origin, allowed_listener) = blank_page().await;
    let (other_origin, other_listener) = blank_page().await;
    serve_blank(allowed_listener);
    serve_blank(other_listener);
    let cors = format!("[server]\ncors = {{ allowed_origins = [\"{allowed_origin}\"] }}\n\n");
    let env = Env::start_with(40, |config| format!("{cors}{config}")).await;
    let proxy = Proxy::start(&env.gateway).await;
    let base = proxy.url.clone();
    let driver = Driver::start().await;
    let profile = TempDir::new();
    let browser = driver.browser(&profile).await;

    // Sign in.
    browser
        .goto(&format!("{base}/console"))
        .await
        .expect("console");
    let token = browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css("input[name=token]"))
        .await
        .expect("the sign-in form");
    token.send_keys(ADMIN).await.expect("type the token");
    browser
        .find(Locator::Css("#sign-in button[type=submit]"))
        .await
        .expect("sign-in button")
        .click()
        .await
        .expect("sign in");

    // The four connections, as the API lists them.
    let (_, connections) = env.get(ADMIN, "/v1/connections").await;
    let expected: Vec<String> = connections["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|c| c["id"].as_str().expect("id").to_owned())
        .collect();
    let shown = eventually("the connections panel", || async {
        let ids = js_strings(&browser, "return [...document.querySelectorAll('[data-connection-id]')].map(e => e.dataset.connectionId)").await;
        (ids.len() == expected.len()).then_some(ids)
    })
    .await;
    assert_eq!(shown, expected);
    assert!(
        expected.len() >= 4,
        "the four demo connections: {expected:?}"
    );
    let breaker = js(
        &browser,
        "return document.querySelector('[data-connection-id] [data-field=breaker]').textContent",
    )
    .await;
    assert_eq!(breaker, "closed");

    // The inbox in the API's order, then "More".
    let (first_page, cursor) = page_ids(&env, "/v1/conversations").await;
    let rows = eventually("the inbox rows", || async {
        let ids = js_strings(&browser, INBOX_IDS).await;
        (!ids.is_empty()).then_some(ids)
    })
    .await;
    assert_eq!(rows, first_page, "the inbox shows the API's order");
    let cursor = cursor.expect("a second page");
    let (second_page, _) = page_ids(
        &env,
        &format!("/v1/conversations?cursor={}", urlencode(&cursor)),
    )
    .await;
    browser
        .find(Locator::Id("more"))
        .await
        .expect("More")
        .click()
        .await
        .expect("click More");
    let rows = eventually("the second page", || async {
        let ids = js_strings(&browser, INBOX_IDS).await;
        (ids.len() > first_page.len()).then_some(ids)
    })
    .await;
    let both: Vec<String> = first_page.iter().chain(&second_page).cloned().collect();
    assert_eq!(rows, both, "More appends the next page in order");

    // Open a conversation a person handles and reply from the console.
    let (human, _) = page_ids(
        &env,
        "/v1/conversations?connection=shop-zipchat&mode=human&status=open&limit=5",
    )
    .await;
    assert!(
        human.len() >= 2,
        "zipchat has open conversations in human mode"
    );
    let opened = &human[0];
    let present = js(
        &browser,
        &format!("return document.querySelector('[data-conversation-id=\"{opened}\"]') !== null"),
    )
    .await;
    if present != json!(true) {
        // Not among the first pages: filter the inbox to it.
        browser
            .execute(
                "const f = document.getElementById('filters'); f.connection.value = 'shop-zipchat'; f.mode.value = 'human'; f.status.value = 'open'; f.requestSubmit();",
                vec![],
            )
            .await
            .expect("filter");
        eventually("the filtered row", || async {
            let ids = js_strings(&browser, INBOX_IDS).await;
            ids.contains(opened).then_some(())
        })
        .await;
    }
    click_row(&browser, opened).await;
    let textarea = browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css("#reply textarea:not([hidden])"))
        .await
        .expect("the reply box");
    eventually("the reply form", || async {
        (js(&browser, "return document.getElementById('reply').hidden").await == json!(false))
            .then_some(())
    })
    .await;
    textarea
        .send_keys("Looking into it now.")
        .await
        .expect("type a reply");
    browser
        .find(Locator::Css("#reply button[type=submit]"))
        .await
        .expect("send")
        .click()
        .await
        .expect("send the reply");
    eventually("the reply in the conversation", || async {
        let error = js(&browser, "return document.getElementById('conversation-error').textContent").await;
        assert_eq!(error, json!(""), "the console shows an error");
        let texts = js_strings(&browser, "return [...document.querySelectorAll('#messages li')].map(li => li.lastChild.textContent)").await;
        texts.iter().any(|t| t == "Looking into it now.").then_some(())
    })
    .await;

    // A reply made elsewhere (through the API) arrives live, its conversation at the top.
    let elsewhere = &human[1];
    reply(&env, elsewhere, "Answered from another tab.").await;
    eventually(
        "the conversation replied to elsewhere at the top",
        || async {
            let ids = js_strings(&browser, INBOX_IDS).await;
            (ids.first() == Some(elsewhere)).then_some(())
        },
    )
    .await;
    let top_text = js(
        &browser,
        "return document.querySelector('#conversation-rows li .text').textContent",
    )
    .await;
    assert_eq!(top_text, "Answered from another tab.");

    // Vendor text that looks like HTML is shown as text and runs nothing (the SMS vendor keeps
    // a message's text verbatim).
    let (sms, _) = page_ids(&env, "/v1/conversations?connection=sms&limit=1").await;
    let hostile =
        "<img src=x onerror=\"document.title='pwned'\"> <script>document.title='pwned'</script>";
    reply(&env, &sms[0], hostile).await;
    eventually("the hostile message at the top", || async {
        let ids = js_strings(&browser, INBOX_IDS).await;
        (ids.first() == Some(&sms[0])).then_some(())
    })
    .await;
    click_row(&browser, &sms[0]).await;
    eventually("the hostile message in the conversation", || async {
        let texts = js_strings(&browser, "return [...document.querySelectorAll('#messages li')].map(li => li.lastChild.textContent)").await;
        texts.iter().any(|t| t == hostile).then_some(())
    })
    .await;
    let top_text = js(
        &browser,
        "return document.querySelector('#conversation-rows li .text').textContent",
    )
    .await;
    assert_eq!(top_text, hostile, "shown as text");
    let injected = js(
        &browser,
        "return document.querySelectorAll('main img, main script').length",
    )
    .await;
    assert_eq!(injected, json!(0), "no element was made from vendor text");
    assert_eq!(
        js(&browser, "return document.title").await,
        "Switchboard console"
    );

    // The screenshot the README and docs/console.md show: the reply conversation open.
    click_row(&browser, opened).await;
    eventually("the conversation again", || async {
        let texts = js_strings(&browser, "return [...document.querySelectorAll('#messages li')].map(li => li.lastChild.textContent)").await;
        texts.iter().any(|t| t == "Looking into it now.").then_some(())
    })
    .await;
    eventually("the agents to assign to", || async {
        let agents = js(
            &browser,
            "return document.querySelectorAll('#assignee option').length",
        )
        .await;
        (agents.as_u64() > Some(0)).then_some(())
    })
    .await;
    assert_eq!(
        js(
            &browser,
            "return document.getElementById('conversation-error').textContent"
        )
        .await,
        json!(""),
        "the conversation panel shows no error"
    );
    let png = browser.screenshot().await.expect("screenshot");
    // docs/console.png (the README's screenshot) when asked (SWITCHBOARD_UPDATE_SCREENSHOT=1), so a test run
    // leaves the work tree as it was; target/tmp/console.png otherwise.
    let path = if std::env::var_os("SWITCHBOARD_UPDATE_SCREENSHOT").is_some() {
        concat!(env!("CARGO_MANIFEST_DIR"), "/docs/console.png")
    } else {
        concat!(env!("CARGO_TARGET_TMPDIR"), "/console.png")
    };
    std::fs::write(path, png).expect("the screenshot is written");

    // A connection that fails is shown as such, not hidden.
    env.faults("pingback", json!({"error_rate": 1.0, "error_status": 500}))
        .await;
    browser
        .execute(
            "const f = document.getElementById('filters'); f.connection.value = ''; f.mode.value = ''; f.status.value = 'open'; f.requestSubmit();",
            vec![],
        )
        .await
        .expect("filter");
    eventually("the failing connection named as partial", || async {
        let partial = js_strings(&browser, "return [...document.querySelectorAll('#partial:not([hidden]) [data-partial-connection]')].map(e => e.dataset.partialConnection)").await;
        (partial == ["helpdesk-pingback"]).then_some(())
    })
    .await;
    env.faults("pingback", json!({})).await;

    // A page on an allowed origin follows the stream with tickets, across a forced disconnect.
    let start = env.get(ADMIN, "/v1/events?after=0-0&limit=500").await.1["next_cursor"]
        .as_str()
        .expect("next_cursor")
        .to_owned();
    browser
        .goto(&format!("{allowed_origin}/"))
        .await
        .expect("allowed page");
    let opened_stream = browser
        .execute_async(FOLLOW, vec![json!(base), json!(ADMIN), json!(start)])
        .await
        .expect("the stream opens");
    assert_eq!(opened_stream, "open");
    assert!(
        js(&browser, "return window.requestId").await.is_string(),
        "X-Request-Id is exposed to the page"
    );
    for (i, conversation) in human.iter().take(2).enumerate() {
        reply(&env, conversation, &format!("before the cut {i}")).await;
    }
    let before = event_ids_after(&env, &start).await;
    eventually("the events before the cut", || async {
        let received = js_strings(&browser, "return window.received").await;
        (received.len() >= before.len()).then_some(())
    })
    .await;
    proxy.cut();
    eventually("the page reopening", || async {
        (js(&browser, "return window.reopened").await.as_u64() >= Some(1)).then_some(())
    })
    .await;
    for (i, conversation) in human.iter().take(2).enumerate() {
        reply(&env, conversation, &format!("after the cut {i}")).await;
    }
    let all = event_ids_after(&env, &start).await;
    let received = eventually("every event after the cut", || async {
        let received = js_strings(&browser, "return window.received").await;
        (received.len() >= all.len()).then_some(received)
    })
    .await;
    assert_eq!(
        received, all,
        "no gap and no duplicate across the disconnect"
    );
    assert_eq!(js(&browser, "return window.failures").await, json!([]));

    // A page on another origin is refused: no fetch, no stream.
    let (_, minted) = env
        .send(
            reqwest::Method::POST,
            ADMIN,
            "/v1/events/tickets",
            json!({}),
        )
        .await;
    let ticket = minted["ticket"].as_str().expect("ticket").to_owned();
    browser
        .goto(&format!("{other_origin}/"))
        .await
        .expect("other page");
    let refused = browser
        .execute_async(
            r#"
const [base, token, ticket, done] = arguments;
fetch(base + "/v1/connections", { headers: { Authorization: "Bearer " + token } })
  .then(() => "read", () => "refused")
  .then((fetched) => {
const source = new EventSource(base + "/v1/events/stream?after=0-0&ticket=" + encodeURIComponent(ticket));
let events = 0;
source.addEventListener("message.created", () => { events += 1; });
source.onerror = () => { source.close(); done([fetched, "stream refused", events]); };
source.onopen = () => { source.close(); done([fetched, "stream opened", events]); };
  });
"#,
            vec![json!(base), json!(ADMIN), json!(ticket)],
        )
        .await
        .expect("the other page runs");
    assert_eq!(refused, json!(["refused", "stream refused", 0]));

    browser.close().await.expect("close");
}

#[tokio::test]
async fn preflights_are_cached_and_every_needed_header_is_exposed() {
    let allowed = "http://frontend.example";
    let cors = format!("[server]\ncors = {{ allowed_origins = [\"{allowed}\"] }}\n\n");
    let env = Env::start_with(3, |config| format!("{cors}{config}")).await;
    let preflight = |origin: &'static str| {
        env.http
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/v1/events/tickets", env.gateway),
            )
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "authorization,content-type,idempotency-key",
            )
            .send()
    };
    let r = preflight(allowed).await.expect("preflight");
    assert!(r.status().is_success());
    assert_eq!(r.headers()["access-control-allow-origin"], allowed);
    assert!(r.headers().contains_key("access-control-max-age"));
    let r = preflight("http://elsewhere.example")
        .await
        .expect("preflight");
    assert!(!r.headers().contains_key("access-control-allow-origin"));

    let r = env
        .http
        .get(format!("{}/v1/connections", env.gateway))
        .header("Origin", allowed)
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("gateway answers");
    let exposed = r.headers()["access-control-expose-headers"]
        .to_str()
        .expect("ascii")
        .to_ascii_lowercase();
    for header in [
        "retry-after",
        "idempotency-replayed",
        "x-request-id",
        "ratelimit",
        "ratelimit-policy",
        "location",
    ] {
        assert!(
            exposed.split(',').any(|h| h.trim() == header),
            "{header} is exposed: {exposed}"
        );
    }
}

#[tokio::test]
async fn the_console_is_served_with_a_strict_policy_and_can_be_turned_off() {
    let env = Env::start(3).await;
    let r = env
        .http
        .get(format!("{}/console", env.gateway))
        .send()
        .await
        .expect("console");
    assert_eq!(r.status(), 200);
    let headers = r.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    let csp = headers["content-security-policy"].to_str().expect("ascii");
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    let html = r.text().await.expect("html");
    let slash = env
        .http
        .get(format!("{}/console/", env.gateway))
        .send()
        .await
        .expect("console/");
    assert_eq!(slash.text().await.expect("html"), html);
    assert!(html.contains("name=\"token\""));
    assert!(
        !html.contains("<script>") && !html.contains("style="),
        "nothing inline"
    );

    let js = env
        .http
        .get(format!("{}/console/stream.js", env.gateway))
        .send()
        .await
        .expect("stream.js");
    assert_eq!(
        js.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    let etag = js.headers()["etag"].clone();
    let again = env
        .http
        .get(format!("{}/console/stream.js", env.gateway))
        .header("If-None-Match", etag)
        .send()
        .await
        .expect("stream.js again");
    assert_eq!(again.status(), 304);
    let missing = env
        .http
        .get(format!("{}/console/nope.js", env.gateway))
        .send()
        .await
        .expect("answer");
    assert_eq!(missing.status(), 404);

    let off = Env::start_with(3, |config| format!("[server]\nconsole = false\n\n{config}")).await;
    let r = off
        .http
        .get(format!("{}/console", off.gateway))
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), 404);
}
