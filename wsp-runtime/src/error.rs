//! Errors of calls (caller side), of handlers (callee side) and of connecting.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use crate::wire::codec::ErrorDetails;
use crate::wire::codec::{DecodeError, EncodeError, Payload};

/// Error codes of ERROR frames (PROTOCOL §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ErrorCode {
    /// No such service or method, or wrong call kind.
    UnknownMethod = 1,
    /// The arguments do not decode into the method's parameters.
    InvalidArguments = 2,
    /// The deadline passed before the handler finished.
    DeadlineExceeded = 3,
    /// The callee cancelled the call.
    Cancelled = 4,
    /// Too many calls in flight on this connection.
    Overloaded = 5,
    /// The handler failed unexpectedly.
    Internal = 6,
    /// The callee is shutting down or the service was removed.
    Unavailable = 7,
    /// A typed error declared by the method's `throws`.
    Application = 8,
}

impl ErrorCode {
    /// The code's name as PROTOCOL.md §4 writes it (`UNKNOWN_METHOD`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::UnknownMethod => "UNKNOWN_METHOD",
            ErrorCode::InvalidArguments => "INVALID_ARGUMENTS",
            ErrorCode::DeadlineExceeded => "DEADLINE_EXCEEDED",
            ErrorCode::Cancelled => "CANCELLED",
            ErrorCode::Overloaded => "OVERLOADED",
            ErrorCode::Internal => "INTERNAL",
            ErrorCode::Unavailable => "UNAVAILABLE",
            ErrorCode::Application => "APPLICATION",
        }
    }

    /// The code in words, as errors are displayed (`unknown method`, …).
    pub fn description(self) -> &'static str {
        match self {
            ErrorCode::UnknownMethod => "unknown method",
            ErrorCode::InvalidArguments => "invalid arguments",
            ErrorCode::DeadlineExceeded => "deadline exceeded",
            ErrorCode::Cancelled => "cancelled",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::Internal => "internal error",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Application => "application error",
        }
    }

    /// The code for a number; unknown numbers are treated as `Internal` (PROTOCOL §4).
    pub fn from_u32(code: u32) -> ErrorCode {
        match code {
            1 => ErrorCode::UnknownMethod,
            2 => ErrorCode::InvalidArguments,
            3 => ErrorCode::DeadlineExceeded,
            4 => ErrorCode::Cancelled,
            5 => ErrorCode::Overloaded,
            7 => ErrorCode::Unavailable,
            8 => ErrorCode::Application,
            _ => ErrorCode::Internal,
        }
    }
}

/// `unknown method`, `invalid arguments`, … ([`description`](ErrorCode::description)).
impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

/// Why a call failed; each variant says what to do next.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// No such service or method on the peer, or the wrong call kind: do not retry.
    #[error("unknown method: {0}")]
    UnknownMethod(String),
    /// The peer could not decode the arguments: fix the caller.
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    /// The deadline passed (locally or at the callee); the handler may have had effects.
    #[error("deadline exceeded")]
    DeadlineExceeded,
    /// The callee cancelled the call.
    #[error("cancelled: {0}")]
    Cancelled(String),
    /// The callee has too many calls in flight: retry after a delay.
    #[error("overloaded: {0}")]
    Overloaded(String),
    /// The handler failed unexpectedly (or an unknown error code arrived).
    #[error("internal error: {0}")]
    Internal(String),
    /// The callee is shutting down or the service was removed: retry elsewhere or later.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A typed error declared by the method (`throws`); decode `details` into the schema's error
    /// type with [`CallError::details`].
    #[error("application error: {name}")]
    Application {
        /// The error variant's name (the ERROR frame's message).
        name: String,
        /// The encoded error value.
        details: Payload,
    },
    /// The connection was lost while the call was in flight: it may or may not have run.
    #[error("disconnected: the call may or may not have run")]
    Disconnected,
    /// No connection to use: no connect or reconnect is running (or the client fails calls at
    /// once while disconnected), or a notification found no link.
    #[error("not connected")]
    NotConnected,
    /// The peer or client was closed by the application.
    #[error("closed")]
    Closed,
    /// The arguments could not be encoded.
    #[error("{0}")]
    Encode(#[from] EncodeError),
    /// The result could not be decoded into the expected type.
    #[error("{0}")]
    Decode(#[from] DecodeError),
}

impl CallError {
    pub(crate) fn from_wire(code: u32, message: String, details: Payload) -> CallError {
        match ErrorCode::from_u32(code) {
            ErrorCode::UnknownMethod => CallError::UnknownMethod(message),
            ErrorCode::InvalidArguments => CallError::InvalidArguments(message),
            ErrorCode::DeadlineExceeded => CallError::DeadlineExceeded,
            ErrorCode::Cancelled => CallError::Cancelled(message),
            ErrorCode::Overloaded => CallError::Overloaded(message),
            ErrorCode::Internal => CallError::Internal(message),
            ErrorCode::Unavailable => CallError::Unavailable(message),
            ErrorCode::Application => CallError::Application {
                name: message,
                details,
            },
        }
    }

    /// The wire error code this error came with, if it came from the peer.
    pub fn code(&self) -> Option<ErrorCode> {
        Some(match self {
            CallError::UnknownMethod(_) => ErrorCode::UnknownMethod,
            CallError::InvalidArguments(_) => ErrorCode::InvalidArguments,
            CallError::DeadlineExceeded => ErrorCode::DeadlineExceeded,
            CallError::Cancelled(_) => ErrorCode::Cancelled,
            CallError::Overloaded(_) => ErrorCode::Overloaded,
            CallError::Internal(_) => ErrorCode::Internal,
            CallError::Unavailable(_) => ErrorCode::Unavailable,
            CallError::Application { .. } => ErrorCode::Application,
            _ => return None,
        })
    }

    /// For an [`Application`](CallError::Application) error, its details decoded into `T`.
    pub fn details<T: DeserializeOwned>(&self) -> Option<Result<T, DecodeError>> {
        match self {
            CallError::Application { details, .. } => Some(details.decode()),
            _ => None,
        }
    }

    /// Whether retrying the same call later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            CallError::Overloaded(_)
                | CallError::Unavailable(_)
                | CallError::Disconnected
                | CallError::NotConnected
                | CallError::DeadlineExceeded
        )
    }
}

/// The error a handler returns; it becomes the ERROR frame sent to the caller.
pub struct ServiceError {
    pub(crate) code: ErrorCode,
    pub(crate) message: String,
    pub(crate) details: Option<Box<dyn ErrorDetails>>,
}

impl fmt::Debug for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceError")
            .field("code", &self.code)
            .field("message", &self.message)
            .field("details", &self.details.is_some())
            .finish()
    }
}

/// `unavailable: the database is down`, as [`CallError`] writes the same failure.
impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ServiceError {}

impl ServiceError {
    /// An error with a code and a message for people (no stack traces or paths).
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ServiceError {
            code,
            message: message.into(),
            details: None,
        }
    }

    /// A typed application error (code 8): `name` is the error variant's name, `details` the
    /// error value as the schema encodes it.
    pub fn application<T: Serialize + Send + Sync + 'static>(
        name: impl Into<String>,
        details: T,
    ) -> Self {
        ServiceError {
            code: ErrorCode::Application,
            message: name.into(),
            details: Some(Box::new(details)),
        }
    }

    /// `INVALID_ARGUMENTS` with a message.
    pub fn invalid_arguments(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArguments, message)
    }

    /// `INTERNAL` with a message.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }

    /// `UNAVAILABLE` with a message.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unavailable, message)
    }

    /// `UNKNOWN_METHOD` for a method name (the peer's input: only a short, sanitised prefix of
    /// it is repeated in the message).
    pub fn unknown_method(method: &str) -> Self {
        Self::new(
            ErrorCode::UnknownMethod,
            format!("unknown method {}", peer_text(method, MAX_ECHOED_METHOD)),
        )
    }

    /// The error code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Most characters of a peer's method name repeated in an error message.
const MAX_ECHOED_METHOD: usize = 64;

/// Most characters of a decoding error repeated to the peer (serde quotes the offending
/// value, which the peer chose and may have made huge).
pub(crate) const MAX_ECHOED_DECODE_ERROR: usize = 200;

/// Text that came from the peer, made fit to repeat to it or to log: at most `max` characters,
/// control characters replaced by `?`, and `…` where it was cut (PROTOCOL §8).
///
/// ```
/// # use wsp_runtime::peer_text;
/// assert_eq!(peer_text("math.Math/add", 64), "math.Math/add");
/// assert_eq!(peer_text("a\nb\u{7f}", 64), "a?b?");
/// assert_eq!(peer_text(&"x".repeat(1000), 4), "xxxx…");
/// ```
pub fn peer_text(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .take(max)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if s.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

impl From<DecodeError> for ServiceError {
    fn from(e: DecodeError) -> Self {
        ServiceError::invalid_arguments(peer_text(&e.0, MAX_ECHOED_DECODE_ERROR))
    }
}

impl From<EncodeError> for ServiceError {
    fn from(e: EncodeError) -> Self {
        tracing::warn!(error = %e, "could not encode a result");
        ServiceError::internal("internal error")
    }
}

/// A call error as a handler's failure: what a handler made with
/// [`RpcError::unavailable`](crate::RpcError::unavailable) and its siblings, or a failed call of
/// its own passed on with `?` (for example a call back into the client).
///
/// - `DEADLINE_EXCEEDED`, `CANCELLED`, `OVERLOADED`, `UNAVAILABLE`, `INTERNAL` and
///   `INVALID_ARGUMENTS` keep their code and message;
/// - a link that is lost, absent or closed becomes `UNAVAILABLE`;
/// - anything else (an unknown method or a foreign typed error of the inner call, a value that
///   does not encode or decode) is the handler's own bug: `INTERNAL` with the message
///   `internal error`, the cause logged at debug level.
impl From<CallError> for ServiceError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::DeadlineExceeded => {
                ServiceError::new(ErrorCode::DeadlineExceeded, "deadline exceeded")
            }
            CallError::Cancelled(m) => ServiceError::new(ErrorCode::Cancelled, m),
            CallError::Overloaded(m) => ServiceError::new(ErrorCode::Overloaded, m),
            CallError::Unavailable(m) => ServiceError::unavailable(m),
            CallError::Internal(m) => ServiceError::internal(m),
            CallError::InvalidArguments(m) => ServiceError::invalid_arguments(m),
            e @ (CallError::Disconnected | CallError::NotConnected | CallError::Closed) => {
                ServiceError::unavailable(e.to_string())
            }
            other => {
                tracing::debug!(error = %other, "a call made by a handler failed");
                ServiceError::internal("internal error")
            }
        }
    }
}

/// Opening a connection failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The WebSocket handshake or the TCP connection failed.
    #[error("websocket: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    /// The TLS handshake of a `wss://` URL failed (an untrusted certificate, a name that does
    /// not match it, no TLS at the other end).
    #[error("tls: {0}")]
    Tls(String),
    /// The handshake took longer than the handshake timeout.
    #[error("handshake timed out")]
    Timeout,
    /// The server chose no or an unknown subprotocol.
    #[error("the server chose an unsupported subprotocol: {0}")]
    Subprotocol(String),
    /// An extra header of the client is not a valid HTTP header.
    #[error("invalid header: {0}")]
    Header(String),
    /// The client was closed by the application.
    #[error("closed")]
    Closed,
    /// The relay closed the connection before wsp started: it refused the proof, does not
    /// know the target, is overloaded, or no spare of the target became free (the codes are
    /// in [`close_code`](crate::close_code), PROTOCOL.md §11.6).
    #[error("the relay closed the connection: {code} {reason}")]
    Relay {
        /// The close code.
        code: u16,
        /// The close reason.
        reason: String,
    },
    /// The relay (or the host behind it) broke the relay protocol (PROTOCOL.md §11).
    #[error("relay protocol: {0}")]
    RelayProtocol(String),
    /// The end-to-end handshake through the relay failed (PROTOCOL.md §12): the target does
    /// not hold the key it was called by, or one end does not encrypt.
    #[error("end-to-end handshake: {0}")]
    EndToEnd(String),
}
