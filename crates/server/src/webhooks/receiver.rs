//! One endpoint's HTTP side: a bounded client (per-attempt timeout, no redirects, no proxy,
//! the receiver's answer read to at most [`MAX_ANSWER_BYTES`], names resolved through the
//! [`GuardedResolver`]) that POSTs one signed event and says what came of it.

use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use reqwest::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER, USER_AGENT};
use url::Url;

use super::config::WebhookConfig;
use super::policy::{Outcome, classify};
use super::signing::WebhookSecret;
use super::target::GuardedResolver;

/// The most of a receiver's answer that is read (it is never shown anywhere; reading a little
/// lets the connection be reused).
pub const MAX_ANSWER_BYTES: usize = 4 * 1024;

/// Where one endpoint's deliveries go, and how they are signed.
#[derive(Debug, Clone)]
pub struct Receiver {
    url: Url,
    secret: WebhookSecret,
    timeout: Duration,
    client: reqwest::Client,
}

impl Receiver {
    /// The receiver of a validated `[[webhooks]]` entry.
    pub fn new(config: &WebhookConfig, allow_private_default: bool) -> anyhow::Result<Receiver> {
        let timeout = config.timeout();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(GuardedResolver {
                allow_private: config.allows_private_targets(allow_private_default),
            })
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(1)
            .build()?;
        Ok(Receiver {
            url: config.url.clone(),
            secret: config.signing_secret()?,
            timeout,
            client,
        })
    }

    /// How long one attempt may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// POSTs `body` (the event's JSON) as event `id`, signed, and classifies the answer.
    pub async fn deliver(&self, id: &str, body: Bytes) -> Outcome {
        let timestamp = Utc::now().timestamp();
        let signature = self.secret.sign(id, timestamp, &body);
        let request = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(
                USER_AGENT,
                HeaderValue::from_static(concat!(
                    "Switchboard-Webhooks/",
                    env!("CARGO_PKG_VERSION")
                )),
            )
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp)
            .header("webhook-signature", signature)
            .body(body);
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(e) => return self.failed(&e),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // Read a little of the answer, never more (a timeout here does not undo the status).
        let mut read = 0;
        while read < MAX_ANSWER_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => read += chunk.len(),
                _ => break,
            }
        }
        classify(status, retry_after.as_deref(), Utc::now())
    }

    fn failed(&self, e: &reqwest::Error) -> Outcome {
        let error = if e.is_timeout() {
            format!("no answer within {} s", self.timeout.as_secs_f64())
        } else if e.is_connect() {
            format!("could not connect: {}", innermost(e))
        } else {
            format!("the request failed: {}", innermost(e))
        };
        Outcome::Failed {
            error,
            retry_after: None,
        }
    }
}

/// The innermost cause of `e` (the resolver's refusal, "connection refused", ...), which names
/// no URL.
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut current = e;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str, allow_private: Option<bool>) -> WebhookConfig {
        WebhookConfig {
            id: "t".into(),
            url: Url::parse(url).expect("a URL"),
            secret: switchboard_upstream::Secret::literal("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"),
            events: None,
            connections: None,
            allow_private_targets: allow_private,
            timeout_secs: Some(5.0),
            retry_schedule_secs: None,
        }
    }

    #[tokio::test]
    async fn a_name_of_a_loopback_address_is_refused_when_connecting() {
        // A receiver that would accept, on loopback.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let app = axum::Router::new().route("/in", axum::routing::post(|| async { "ok" }));
        tokio::spawn(async move { axum::serve(listener, app).await });
        // Config-time checks are bypassed here: the name goes through the resolver.
        let url = format!("http://localhost:{port}/in");
        let refused = Receiver::new(&config(&url, None), false).expect("a client");
        let Outcome::Failed { error, .. } = refused.deliver("1-0", Bytes::from_static(b"{}")).await
        else {
            panic!("a loopback name must not be reached");
        };
        assert!(error.contains("allow_private_targets"), "{error}");
        let allowed = Receiver::new(&config(&url, Some(true)), false).expect("a client");
        assert_eq!(
            allowed.deliver("1-0", Bytes::from_static(b"{}")).await,
            Outcome::Delivered
        );
    }
}
