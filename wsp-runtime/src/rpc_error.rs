//! `RpcError<E>`: the error of a method that declares `throws E`, on both sides of the call.
//!
//! One type for every package, in the runtime, so that two schemas' clients fail with the same
//! error type and a schema may name its own types `RpcError`. A caller gets it from a generated
//! client; a handler returns it, so that it can fail with the method's declared error *or* with
//! a runtime error (`UNAVAILABLE` while its database is down, `INTERNAL` with a safe message, a
//! failed call of its own passed on with `?`), as tonic's `Status` allows.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{CallError, ErrorCode, ServiceError};

/// A schema's error type (a generated `error` enum): what it is called on the wire.
///
/// Generated code implements it; a handler's `Err(MathError::DivisionByZero.into())` (or `?` on
/// a `Result<_, MathError>`) makes the [`RpcError::App`] that goes out as `APPLICATION`.
pub trait ApplicationError: Serialize + Send + Sync + 'static {
    /// The variant's name, sent as the ERROR frame's message (PROTOCOL §4); for a variant this
    /// version of the schema does not know, the name it was received with.
    fn variant_name(&self) -> &str;
}

/// The error of a call to a method that declares `throws E`: the method's declared error, or a
/// failure of the call itself.
///
/// - A **caller** gets [`App`](Self::App) when the callee answered with the declared error,
///   and [`Call`](Self::Call) for everything else (transport, deadline, unknown method, …; the
///   variants of [`CallError`] say what to do next).
/// - A **handler** returns [`App`](Self::App) for the declared error
///   (`Err(MathError::DivisionByZero.into())`), or a runtime error made with
///   [`unavailable`](Self::unavailable), [`internal`](Self::internal),
///   [`invalid_arguments`](Self::invalid_arguments) or [`overloaded`](Self::overloaded), or the
///   failure of a call it made itself (`?` converts a [`CallError`]; see
///   [`ServiceError`'s conversion](ServiceError#impl-From<CallError>-for-ServiceError) for what
///   reaches the caller).
#[derive(Clone, Debug)]
pub enum RpcError<E> {
    /// The method's declared error (`APPLICATION`).
    App(E),
    /// Any other failure of the call.
    Call(CallError),
}

impl<E> RpcError<E> {
    /// The declared error, if that is what this is.
    pub fn app(&self) -> Option<&E> {
        match self {
            Self::App(e) => Some(e),
            Self::Call(_) => None,
        }
    }

    /// The declared error, if that is what this is, by value.
    pub fn into_app(self) -> Option<E> {
        match self {
            Self::App(e) => Some(e),
            Self::Call(_) => None,
        }
    }

    /// The wire code: `APPLICATION` for the declared error, the call error's otherwise (`None`
    /// for a failure that never reached the peer, such as a lost connection).
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::App(_) => Some(ErrorCode::Application),
            Self::Call(e) => e.code(),
        }
    }

    /// `UNAVAILABLE` with a message for the caller: retry later or elsewhere.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::Call(CallError::Unavailable(message.into()))
    }

    /// `INTERNAL` with a message for the caller (say what failed, not how: no paths or traces).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::Call(CallError::Internal(message.into()))
    }

    /// `INVALID_ARGUMENTS` with a message for the caller.
    pub fn invalid_arguments(message: impl Into<String>) -> Self {
        Self::Call(CallError::InvalidArguments(message.into()))
    }

    /// `OVERLOADED` with a message for the caller: retry after a delay.
    pub fn overloaded(message: impl Into<String>) -> Self {
        Self::Call(CallError::Overloaded(message.into()))
    }
}

impl<E: fmt::Display> fmt::Display for RpcError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::App(e) => fmt::Display::fmt(e, f),
            Self::Call(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for RpcError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::App(e) => Some(e),
            Self::Call(e) => Some(e),
        }
    }
}

/// The declared error of a handler: `Err(MathError::DivisionByZero.into())`, or `?` on a
/// `Result<_, MathError>`.
impl<E: ApplicationError> From<E> for RpcError<E> {
    fn from(error: E) -> Self {
        Self::App(error)
    }
}

/// A failed call: an `APPLICATION` error whose details decode as `E` is the declared error,
/// anything else stays a [`CallError`].
impl<E: DeserializeOwned> From<CallError> for RpcError<E> {
    fn from(error: CallError) -> Self {
        match error.details::<E>() {
            Some(Ok(e)) => Self::App(e),
            _ => Self::Call(error),
        }
    }
}

/// A schema's error as the handler error it is sent as: `APPLICATION`, named by its variant.
impl<E: ApplicationError> From<E> for ServiceError {
    fn from(error: E) -> Self {
        let name = error.variant_name().to_owned();
        ServiceError::application(name, error)
    }
}

/// What a handler's `RpcError` sends to its caller: the declared error as `APPLICATION`, a
/// call error as [`From<CallError>`](ServiceError#impl-From<CallError>-for-ServiceError) says.
impl<E: ApplicationError> From<RpcError<E>> for ServiceError {
    fn from(error: RpcError<E>) -> Self {
        match error {
            RpcError::App(e) => ServiceError::from(e),
            RpcError::Call(e) => ServiceError::from(e),
        }
    }
}
