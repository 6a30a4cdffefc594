//! One error type for the whole gateway: a kind, a stable code, and what it takes to act on it.

use std::fmt;
use std::time::Duration;

use crate::capabilities::Operation;

/// What went wrong, coarsely; each kind maps to one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request is malformed (bad id, bad cursor, bad JSON): 400.
    InvalidRequest,
    /// The request is well-formed but a value is not acceptable: 422.
    Unprocessable,
    /// The request body is too large: 413.
    TooLarge,
    /// The caller did not authenticate: 401.
    Unauthenticated,
    /// The caller may not do this: 403.
    Forbidden,
    /// No such resource (or one the caller may not see): 404.
    NotFound,
    /// The resource's state forbids the operation: 409.
    Conflict,
    /// What the request points at is gone for good (an event cursor past the retention): 410.
    Gone,
    /// The vendor behind the connection cannot do this: 501.
    Unsupported,
    /// The caller exceeded its own request quota at the gateway: 429.
    TooManyRequests,
    /// The vendor's quota is exhausted and the gateway could not absorb it: 503.
    RateLimited,
    /// The vendor rejected the gateway's stored credential: 502.
    UpstreamAuth,
    /// The vendor did not answer in time: 504.
    UpstreamTimeout,
    /// The vendor failed or answered something unusable: 502.
    UpstreamUnavailable,
    /// The gateway's own state store (embedded file or Redis) cannot be reached: 503.
    StoreUnavailable,
    /// The configuration is wrong.
    Config,
    /// A bug or an unexpected state: 500.
    Unexpected,
}

impl ErrorKind {
    /// The HTTP status for this kind.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::InvalidRequest => 400,
            ErrorKind::Unprocessable => 422,
            ErrorKind::TooLarge => 413,
            ErrorKind::Unauthenticated => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::Conflict => 409,
            ErrorKind::Gone => 410,
            ErrorKind::Unsupported => 501,
            ErrorKind::TooManyRequests => 429,
            ErrorKind::RateLimited => 503,
            ErrorKind::UpstreamAuth => 502,
            ErrorKind::UpstreamTimeout => 504,
            ErrorKind::UpstreamUnavailable => 502,
            ErrorKind::StoreUnavailable => 503,
            ErrorKind::Config | ErrorKind::Unexpected => 500,
        }
    }

    /// The default stable machine code for this kind.
    pub fn default_code(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::Unprocessable => "invalid_parameter",
            ErrorKind::TooLarge => "payload_too_large",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Gone => crate::codes::CURSOR_EXPIRED,
            ErrorKind::Unsupported => "unsupported_operation",
            ErrorKind::TooManyRequests => "rate_limited",
            ErrorKind::RateLimited => "upstream_rate_limited",
            ErrorKind::UpstreamAuth => "upstream_auth_failed",
            ErrorKind::UpstreamTimeout => "upstream_timeout",
            ErrorKind::UpstreamUnavailable => "upstream_unavailable",
            ErrorKind::StoreUnavailable => "store_unavailable",
            ErrorKind::Config => "config_error",
            ErrorKind::Unexpected => "internal_error",
        }
    }

    /// Whether retrying the same call later may succeed.
    pub fn is_temporary(self) -> bool {
        matches!(
            self,
            ErrorKind::RateLimited
                | ErrorKind::UpstreamTimeout
                | ErrorKind::UpstreamUnavailable
                | ErrorKind::StoreUnavailable
        )
    }
}

/// The gateway's error: safe to show to a caller (its message never holds a vendor body or a secret).
pub struct Error {
    kind: ErrorKind,
    code: &'static str,
    message: String,
    temporary: bool,
    retry_after: Option<Duration>,
    operation: Option<Operation>,
    connection: Option<String>,
    parameter: Option<&'static str>,
    unsent: bool,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` with a caller-safe message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            code: kind.default_code(),
            message: message.into(),
            temporary: kind.is_temporary(),
            retry_after: None,
            operation: None,
            connection: None,
            parameter: None,
            unsent: false,
            source: None,
        }
    }

    /// The vendor cannot perform `op`.
    pub fn unsupported(op: Operation) -> Error {
        Error::new(
            ErrorKind::Unsupported,
            format!(
                "this connection's provider does not support `{}`",
                op.as_str()
            ),
        )
        .with_operation(op)
    }

    /// A malformed or unacceptable request parameter, named by `parameter`; code `invalid_{parameter}`.
    pub fn invalid_parameter(parameter: &'static str, message: impl Into<String>) -> Error {
        let mut e = Error::new(ErrorKind::Unprocessable, message);
        e.code = crate::codes::invalid_code(parameter);
        e.parameter = Some(parameter);
        e
    }

    /// An event cursor older than the log's retention: 410 `cursor_expired`; the consumer must
    /// resync (e.g. with `updated_since`) and start again from the log's beginning.
    pub fn cursor_expired(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Gone, message).with_code(crate::codes::CURSOR_EXPIRED)
    }

    /// A resource that does not exist, or that the caller may not see.
    pub fn not_found(what: impl Into<String>) -> Error {
        Error::new(ErrorKind::NotFound, what)
    }

    /// Replaces the stable machine code (for vendor business rules like `conversation_in_ai_mode`).
    pub fn with_code(mut self, code: &'static str) -> Error {
        self.code = code;
        self
    }

    /// Names the request parameter at fault.
    pub fn with_parameter(mut self, parameter: &'static str) -> Error {
        self.parameter = Some(parameter);
        self
    }

    /// Records the operation that failed.
    pub fn with_operation(mut self, op: Operation) -> Error {
        self.operation = Some(op);
        self
    }

    /// Records the connection that failed (kept if already set).
    pub fn with_connection(mut self, connection: impl Into<String>) -> Error {
        if self.connection.is_none() {
            self.connection = Some(connection.into());
        }
        self
    }

    /// When the call may be retried.
    pub fn with_retry_after(mut self, after: Duration) -> Error {
        self.retry_after = Some(after);
        self
    }

    /// Marks the request as never sent to the vendor (the breaker, the quota, the store or the
    /// deadline stopped it, or no connection could be made): whatever it asked was not done, so
    /// a write may be sent again without checking first.
    pub fn unsent(mut self) -> Error {
        self.unsent = true;
        self
    }

    /// Whether the request is known never to have reached the vendor (see [`Error::unsent`]).
    pub fn is_unsent(&self) -> bool {
        self.unsent
    }

    /// Overrides whether the error is temporary.
    pub fn set_temporary(mut self, temporary: bool) -> Error {
        self.temporary = temporary;
        self
    }

    /// Attaches the underlying cause (logged, never shown to callers).
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Error {
        self.source = Some(Box::new(source));
        self
    }

    /// A copy for another waiter on the same call: everything but the source, whose text is kept.
    pub fn duplicate(&self) -> Error {
        Error {
            kind: self.kind,
            code: self.code,
            message: self.message.clone(),
            temporary: self.temporary,
            retry_after: self.retry_after,
            operation: self.operation,
            connection: self.connection.clone(),
            parameter: self.parameter,
            unsent: self.unsent,
            source: self.source.as_ref().map(|s| {
                Box::new(SourceText(s.to_string())) as Box<dyn std::error::Error + Send + Sync>
            }),
        }
    }

    /// The kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The stable machine code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The caller-safe message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether a retry may succeed.
    pub fn is_temporary(&self) -> bool {
        self.temporary
    }

    /// How long to wait before retrying, if known.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The operation that failed, if recorded.
    pub fn operation(&self) -> Option<Operation> {
        self.operation
    }

    /// The connection that failed, if recorded.
    pub fn connection(&self) -> Option<&str> {
        self.connection.as_deref()
    }

    /// The request parameter at fault, if any.
    pub fn parameter(&self) -> Option<&'static str> {
        self.parameter
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind)
            .field("code", &self.code)
            .field("message", &self.message);
        if let Some(op) = self.operation {
            d.field("operation", &op.as_str());
        }
        if let Some(c) = &self.connection {
            d.field("connection", c);
        }
        if let Some(s) = &self.source {
            d.field("source", &s.to_string());
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)?;
        if let Some(c) = &self.connection {
            write!(f, " on connection `{c}`")?;
        }
        if let Some(s) = &self.source {
            write!(f, ": {s}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

/// The text of an error's source, kept when the error is duplicated.
#[derive(Debug)]
struct SourceText(String);

impl fmt::Display for SourceText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SourceText {}
