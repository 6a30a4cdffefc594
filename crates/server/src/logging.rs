//! Logging: where log lines go and how they look, and values made safe to log.

use std::fmt;
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::HeaderValue;
use tower_http::request_id::{MakeRequestId, RequestId};

/// Shows a string with its control characters escaped (`\r`, `\n`, `\u{1b}`…), so a value from
/// a request can never start a forged log line or colour the terminal.
#[derive(Debug, Clone, Copy)]
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A request's path and id are on every request's log line, and seldom hold a control
        // character (C0, DEL, or C1, whose UTF-8 starts with 0xC2): most are written whole.
        if !self.0.bytes().any(|b| b < 0x20 || b == 0x7f || b == 0xc2) {
            return f.write_str(self.0);
        }
        let mut rest = self.0;
        while let Some(at) = rest.find(char::is_control) {
            f.write_str(&rest[..at])?;
            let c = rest[at..].chars().next().unwrap_or_default();
            write!(f, "{}", c.escape_default())?;
            rest = &rest[at + c.len_utf8()..];
        }
        f.write_str(rest)
    }
}

/// Ids for requests that come without an `x-request-id`: a random prefix drawn once per process
/// and a counter, so ids stay unique across replicas and restarts without asking the kernel for
/// randomness on every request (as a random UUID does).
#[derive(Debug, Clone)]
pub struct RequestIds {
    prefix: Arc<str>,
    next: Arc<AtomicU64>,
}

impl RequestIds {
    /// A new sequence with a fresh random prefix.
    pub fn new() -> RequestIds {
        let mut prefix = [0u8; 8];
        if getrandom::fill(&mut prefix).is_err() {
            // No random source: the process id and the time still tell processes apart.
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u32);
            prefix[..4].copy_from_slice(&std::process::id().to_be_bytes());
            prefix[4..].copy_from_slice(&nanos.to_be_bytes());
        }
        RequestIds {
            prefix: hex::encode(prefix).into(),
            next: Arc::default(),
        }
    }
}

impl Default for RequestIds {
    fn default() -> RequestIds {
        RequestIds::new()
    }
}

impl MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&format!("{}-{n:x}", self.prefix))
            .ok()
            .map(RequestId::new)
    }
}

/// The log format: `text` (the default) or `json` (one object per line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Human-readable lines; coloured only when stderr is a terminal.
    Text,
    /// One JSON object per line, with the request span's fields (request id, method, path).
    Json,
}

impl Format {
    /// From `SWITCHBOARD_LOG_FORMAT` (`text` or `json`); an unknown value is an error naming it.
    pub fn from_env() -> Result<Format, String> {
        match std::env::var("SWITCHBOARD_LOG_FORMAT") {
            Err(_) => Ok(Format::Text),
            Ok(v) if v.eq_ignore_ascii_case("text") || v.is_empty() => Ok(Format::Text),
            Ok(v) if v.eq_ignore_ascii_case("json") => Ok(Format::Json),
            Ok(v) => Err(format!(
                "SWITCHBOARD_LOG_FORMAT is `{}`; use `text` or `json`",
                Escaped(&v)
            )),
        }
    }
}

/// Installs the process's logger: to stderr, at `SWITCHBOARD_LOG` (default `info`), in `format`.
pub fn init(format: Format) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SWITCHBOARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr);
    let installed = match format {
        Format::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        Format::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    // Already installed (tests): keep the first.
    let _ = installed;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_control_characters() {
        assert_eq!(
            Escaped("a\r\nINFO forged\u{1b}[31m").to_string(),
            "a\\r\\nINFO forged\\u{1b}[31m"
        );
        assert_eq!(Escaped("plain / ü").to_string(), "plain / ü");
        assert_eq!(Escaped("\u{85}ü\u{7f}").to_string(), "\\u{85}ü\\u{7f}");
        assert_eq!(Escaped("").to_string(), "");
        assert_eq!(Escaped("£5").to_string(), "£5", "U+00A3 is no control");
    }
}
