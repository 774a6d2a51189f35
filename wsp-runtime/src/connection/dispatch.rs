//! What a connection asks of the services above it, which the handles layer provides
//! (`service::Services`): this side's services for HELLO, the observer, and a handler for each
//! call from the peer. The connection knows services only through this, so its arrows point
//! down.

use std::any::Any;
use std::sync::{Arc, Weak};

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use tokio::time::Instant;

use super::ConnInner;
use crate::error::ServiceError;
use crate::wire::codec::Payload;
use crate::wire::{CallKind, Encoded};

/// Per-connection data attached by a server's accept hook, shared by all handlers.
pub type ConnData = Arc<dyn Any + Send + Sync>;

/// The services a connection dispatches to.
pub(crate) trait Dispatch: Send + Sync + 'static {
    /// This side's services (name, fingerprint), for HELLO.
    fn fingerprints(&self) -> Vec<(String, String)>;

    /// Shows an incoming call or notification to the observer, if there is one.
    fn observe(&self, conn: &ConnInner, kind: CallKind, method: &str, args: &Payload);

    /// Starts handling a call; `None` when no such service is there.
    fn start(&self, conn: &Arc<ConnInner>, call: IncomingCall<'_>) -> Option<Started>;

    /// The implementation, for the handles that change it (a peer's own services).
    fn as_any(&self) -> &dyn Any;
}

/// One call from the peer, as handed to [`Dispatch::start`].
pub(crate) struct IncomingCall<'a> {
    pub(crate) kind: CallKind,
    pub(crate) id: u32,
    /// The service name (before the last `/`) and the method name (after it).
    pub(crate) service: &'a str,
    pub(crate) method: &'a str,
    pub(crate) deadline: Option<Instant>,
    pub(crate) args: Payload,
    /// The caller's items, for UPLOAD and DUPLEX.
    pub(crate) input: Option<super::Input>,
}

/// A started call: what to run, and how to cancel it (weak, so that the connection's table of
/// running calls keeps no context, and with it the connection, alive).
pub(crate) struct Started {
    pub(crate) handler: Handler,
    pub(crate) cancel: Weak<dyn CancelCall>,
}

/// Cancels a running call's context (CANCEL from the peer, or the connection closing).
pub(crate) trait CancelCall: Send + Sync {
    fn cancel(&self);
}

/// What a service does with a call.
pub enum Handler {
    /// A unary call's result.
    Unary(BoxFuture<'static, Result<Encoded, ServiceError>>),
    /// A server stream's items.
    Stream(BoxStream<'static, Result<Encoded, ServiceError>>),
    /// A client stream's result (the handler reads the caller's items): answers only an UPLOAD.
    Upload(BoxFuture<'static, Result<Encoded, ServiceError>>),
    /// A bidirectional stream's items (the handler reads the caller's items): answers only a
    /// DUPLEX.
    Duplex(BoxStream<'static, Result<Encoded, ServiceError>>),
    /// A notification was accepted; the optional future is run to completion.
    Notify(Option<BoxFuture<'static, ()>>),
    /// The call fails at once (for example its arguments did not decode).
    Error(ServiceError),
    /// The service has no such method of that kind.
    UnknownMethod,
}
