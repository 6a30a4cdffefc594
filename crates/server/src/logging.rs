//! Logging: where log lines go and how they look, and values made safe to log.

use std::fmt;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderValue;
use tower_http::request_id::{MakeRequestId, RequestId};
use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

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
/// Lines are written in batches ([`Batched`]); keep the returned [`Flush`] until the process
/// ends, so the last of them are written.
pub fn init(format: Format) -> Flush<std::io::Stderr> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SWITCHBOARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let batched = Batched::new(std::io::stderr());
    let flush = batched.flush_every(BATCH_DELAY);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(batched);
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
    flush
}

/// How long an `info` line may wait in [`Batched`]'s buffer.
pub const BATCH_DELAY: Duration = Duration::from_millis(200);

/// Bytes of lines that are written at once, whatever their age.
const BATCH_BYTES: usize = 32 * 1024;

/// A log writer that writes lines in batches, as nginx's `access_log … buffer= flush=` does:
/// every request's `info` line would otherwise cost a `write` system call of its own (about 4 µs
/// a request of the 11 that logging at `info` added: `bench/README.md`). A line at `warn` or
/// `error` is written at once, with every line before it; others wait until [`BATCH_BYTES`]
/// have gathered or [`Flush`]'s thread comes by, at most [`BATCH_DELAY`] later. Lines stay
/// whole and in order.
pub struct Batched<W: Write + Send + 'static> {
    shared: Arc<Mutex<Buffer<W>>>,
}

impl<W: Write + Send + 'static> fmt::Debug for Batched<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batched").finish_non_exhaustive()
    }
}

impl<W: Write + Send + 'static> Clone for Batched<W> {
    fn clone(&self) -> Batched<W> {
        Batched {
            shared: Arc::clone(&self.shared),
        }
    }
}

struct Buffer<W> {
    pending: Vec<u8>,
    out: W,
}

impl<W: Write> Buffer<W> {
    fn write_pending(&mut self) {
        if !self.pending.is_empty() {
            // Nowhere to report a failed log write: the lines are dropped, the buffer reused.
            let _ = self.out.write_all(&self.pending);
            let _ = self.out.flush();
            self.pending.clear();
        }
    }
}

impl<W: Write + Send + 'static> Batched<W> {
    /// Lines for `out`.
    pub fn new(out: W) -> Batched<W> {
        Batched {
            shared: Arc::new(Mutex::new(Buffer {
                pending: Vec::with_capacity(BATCH_BYTES),
                out,
            })),
        }
    }

    /// Writes what is pending now.
    pub fn flush(&self) {
        lock(&self.shared).write_pending();
    }

    /// Starts a thread that writes pending lines every `every`, and gives the [`Flush`] that
    /// writes the last ones.
    pub fn flush_every(&self, every: Duration) -> Flush<W> {
        let weak = Arc::downgrade(&self.shared);
        let _ = std::thread::Builder::new()
            .name("log-flush".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(every);
                    let Some(shared) = weak.upgrade() else { break };
                    lock(&shared).write_pending();
                }
            });
        Flush(self.clone())
    }
}

fn lock<W>(shared: &Mutex<Buffer<W>>) -> std::sync::MutexGuard<'_, Buffer<W>> {
    // A panic while a line was appended leaves at worst a partial line: keep logging.
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl<'a, W: Write + Send + 'static> MakeWriter<'a> for Batched<W> {
    type Writer = Line<'a, W>;

    fn make_writer(&'a self) -> Line<'a, W> {
        Line {
            shared: &self.shared,
            urgent: true,
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Line<'a, W> {
        Line {
            shared: &self.shared,
            // `tracing` orders levels by verbosity: ERROR < WARN < INFO.
            urgent: *meta.level() <= Level::WARN,
        }
    }
}

/// One log line on its way into [`Batched`]'s buffer.
pub struct Line<'a, W> {
    shared: &'a Mutex<Buffer<W>>,
    urgent: bool,
}

impl<W> fmt::Debug for Line<'_, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Line")
            .field("urgent", &self.urgent)
            .finish_non_exhaustive()
    }
}

impl<W: Write> Write for Line<'_, W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut buffer = lock(self.shared);
        buffer.pending.extend_from_slice(bytes);
        if self.urgent || buffer.pending.len() >= BATCH_BYTES {
            buffer.write_pending();
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes the lines still pending when dropped (at the end of `main`).
#[must_use = "the last log lines are written when this is dropped"]
pub struct Flush<W: Write + Send + 'static>(Batched<W>);

impl<W: Write + Send + 'static> Drop for Flush<W> {
    fn drop(&mut self) {
        self.0.flush();
    }
}

impl<W: Write + Send + 'static> fmt::Debug for Flush<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Flush")
    }
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

    /// A writer whose bytes the test can read.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("sink").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Sink {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().expect("sink").clone()).expect("utf-8")
        }
    }

    fn logging_to(batched: &Batched<Sink>) -> impl tracing::Subscriber + use<> {
        tracing_subscriber::fmt()
            .with_max_level(Level::INFO)
            .with_ansi(false)
            .with_writer(batched.clone())
            .finish()
    }

    #[test]
    fn info_lines_wait_and_a_warning_writes_them_with_it_in_order() {
        let sink = Sink::default();
        let batched = Batched::new(sink.clone());
        tracing::subscriber::with_default(logging_to(&batched), || {
            tracing::info!("first");
            tracing::info!("second");
            assert_eq!(sink.text(), "", "info lines wait for the batch");
            tracing::warn!("third");
        });
        let text = sink.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].ends_with("first") && lines[1].ends_with("second"));
        assert!(lines[2].contains("WARN") && lines[2].ends_with("third"));
    }

    #[test]
    fn a_full_batch_is_written_whatever_its_age() {
        let sink = Sink::default();
        let batched = Batched::new(sink.clone());
        let line = "x".repeat(1000);
        tracing::subscriber::with_default(logging_to(&batched), || {
            for _ in 0..BATCH_BYTES / 1000 + 1 {
                tracing::info!("{line}");
            }
        });
        let written = sink.text();
        assert!(written.len() >= BATCH_BYTES, "{} bytes", written.len());
        assert!(written.ends_with('\n'), "only whole lines are written");
    }

    #[test]
    fn the_flush_thread_writes_waiting_lines_and_dropping_its_handle_the_last() {
        let sink = Sink::default();
        let batched = Batched::new(sink.clone());
        let flush = batched.flush_every(Duration::from_millis(10));
        tracing::subscriber::with_default(logging_to(&batched), || tracing::info!("waiting"));
        // The thread comes by every 10 ms; a minute without it is a failure.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !sink.text().contains("waiting") {
            assert!(std::time::Instant::now() < deadline, "never flushed");
            std::thread::sleep(Duration::from_millis(5));
        }

        let sink = Sink::default();
        let batched = Batched::new(sink.clone());
        let flush_last = batched.flush_every(Duration::from_secs(3600));
        tracing::subscriber::with_default(logging_to(&batched), || tracing::info!("last"));
        assert_eq!(sink.text(), "", "an hour before the thread comes by again");
        drop(flush_last);
        assert!(sink.text().ends_with("last\n"), "{}", sink.text());
        drop(flush);
    }
}
