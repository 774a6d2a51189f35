//! The context a handler receives with each call.

use std::any::Any;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use serde::Serialize;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::call::Caller;
use crate::connection::{CancelCall, ConnInner};
use crate::error::ServiceError;
use crate::wire;
use crate::wire::codec::Codec;

pub use crate::connection::ConnData;

/// What a handler knows about its call: the connection, the deadline, per-connection data, a
/// caller back to the peer, and whether the call was cancelled. Cheap to clone.
#[derive(Clone)]
pub struct CallContext {
    inner: Arc<CtxInner>,
}

struct CtxInner {
    conn: Arc<ConnInner>,
    id: u32,
    deadline: Option<Instant>,
    cancelled: AtomicBool,
    notify: Notify,
}

impl fmt::Debug for CallContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallContext")
            .field("connection_id", &self.connection_id())
            .field("call_id", &self.inner.id)
            .field("deadline", &self.inner.deadline)
            .finish()
    }
}

impl CallContext {
    pub(crate) fn new(conn: Arc<ConnInner>, id: u32, deadline: Option<Instant>) -> Self {
        CallContext {
            inner: Arc::new(CtxInner {
                conn,
                id,
                deadline,
                cancelled: AtomicBool::new(false),
                notify: Notify::new(),
            }),
        }
    }

    /// The connection the call arrived on.
    pub(crate) fn conn(&self) -> &Arc<ConnInner> {
        &self.inner.conn
    }

    /// The numeric id of the connection the call arrived on.
    pub fn connection_id(&self) -> u64 {
        self.inner.conn.id
    }

    /// The call's id in the caller's id space (0 for notifications).
    pub fn call_id(&self) -> u32 {
        self.inner.id
    }

    /// When the call's deadline passes (the runtime aborts the handler then), if it has one.
    pub fn deadline(&self) -> Option<Instant> {
        self.inner.deadline
    }

    /// The codec of the connection.
    pub fn codec(&self) -> Codec {
        self.inner.conn.codec
    }

    /// The per-connection data attached by the server's accept hook, if it is a `T`.
    pub fn data<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.inner.conn.data.as_ref()?.downcast_ref()
    }

    /// The per-connection data as attached.
    pub fn data_any(&self) -> Option<&ConnData> {
        self.inner.conn.data.as_ref()
    }

    /// A caller to call back into the connected peer (server → client calls). Calls made with
    /// it from the handler inherit this call's deadline and end with it (see
    /// [`Caller`](crate::Caller#calls-made-by-a-handler)).
    pub fn caller(&self) -> Caller {
        Caller::for_conn(self.inner.conn.clone())
    }

    /// Whether the call was cancelled: by the caller, by its deadline passing, or by its
    /// connection closing (the handler future is also dropped then; this is for work the
    /// handler spawned).
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::Acquire)
    }

    /// Resolves once the caller cancelled the call, its deadline passed or its connection
    /// closed.
    pub async fn cancelled(&self) {
        loop {
            let notified = self.inner.notify.notified();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }

    /// A handle that can cancel the call without keeping the context (and its connection)
    /// alive, so a connection's table of running calls holds no reference cycle.
    pub(crate) fn canceller(&self) -> Weak<dyn CancelCall> {
        let weak: Weak<dyn CancelCall> = Arc::downgrade(&self.inner) as Weak<CtxInner>;
        weak
    }

    /// Encodes a unary result straight into a REPLY frame for this call.
    pub fn encode_reply<T: Serialize + ?Sized>(&self, value: &T) -> Result<Encoded, ServiceError> {
        Ok(Encoded(wire::reply(self.codec(), self.inner.id, value)?))
    }

    /// Encodes one stream item straight into an ITEM frame for this call.
    pub fn encode_item<T: Serialize + ?Sized>(&self, value: &T) -> Result<Encoded, ServiceError> {
        Ok(Encoded(wire::item(self.codec(), self.inner.id, value)?))
    }
}

use crate::wire::Encoded;

impl CancelCall for CtxInner {
    fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }
}
