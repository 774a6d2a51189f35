//! [`Peer`]: one end of a wsp connection, the same type on both sides.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::{Sink, Stream};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::call::Caller;
use crate::close::{CloseError, CloseInfo};
use crate::config::Config;
use crate::connection::{self, ConnInner, ConnSetup};
use crate::context::{CallContext, ConnData};
use crate::service::{Observer, Service, Services};
use crate::stats::StatsSnapshot;
use crate::wire::codec::Codec;

/// Ids of connections not opened by a server or client.
static NEXT_PEER_ID: AtomicU64 = AtomicU64::new(1);

/// One end of a wsp connection. Both ends are peers: either side registers services and calls
/// the other, with many calls in flight at once. Cheap to clone; the connection lives until it
/// is closed (dropping every `Peer` does not close it).
#[derive(Clone)]
pub struct Peer {
    conn: Arc<ConnInner>,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("id", &self.conn.id)
            .field("codec", &self.conn.codec)
            .finish()
    }
}

/// Options of [`Peer::from_stream`].
#[derive(Default)]
pub struct PeerOptions {
    config: Config,
    services: Vec<Arc<dyn Service>>,
    observer: Option<Observer>,
    data: Option<ConnData>,
}

impl std::fmt::Debug for PeerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerOptions")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl PeerOptions {
    /// Default options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Limits and timing.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// A service offered from the start (announced in HELLO).
    pub fn service(mut self, svc: Arc<dyn Service>) -> Self {
        self.services.push(svc);
        self
    }

    /// A hook seeing every incoming call and notification.
    pub fn observer(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Per-connection data for handlers ([`CallContext::data`](crate::CallContext::data)).
    pub fn data(mut self, data: ConnData) -> Self {
        self.data = Some(data);
        self
    }
}

impl Peer {
    pub(crate) fn from_inner(conn: Arc<ConnInner>) -> Self {
        Peer { conn }
    }

    pub(crate) fn inner(&self) -> &Arc<ConnInner> {
        &self.conn
    }

    /// Runs wsp over an already open WebSocket (any `Stream + Sink` of tungstenite messages,
    /// e.g. a `WebSocketStream` from an existing HTTP server's upgrade) whose subprotocol was
    /// negotiated as `codec`. Must be called inside a tokio runtime.
    pub fn from_stream<S>(ws: S, codec: Codec, options: PeerOptions) -> Peer
    where
        S: Stream<Item = Result<Message, WsError>>
            + Sink<Message, Error = WsError>
            + Send
            + Unpin
            + 'static,
    {
        let registry = crate::service::Registry::default();
        for s in options.services {
            registry.add(s);
        }
        let setup = ConnSetup {
            id: NEXT_PEER_ID.fetch_add(1, Ordering::Relaxed),
            codec,
            config: Arc::new(options.config),
            stats_parent: None,
            data: options.data,
            dispatch: Arc::new(Services::new(Some(Arc::new(registry)), options.observer)),
            on_close: None,
            message_clock: None,
        };
        Peer {
            conn: connection::start(ws, setup),
        }
    }

    /// The connection's numeric id (unique within its server, client or process).
    pub fn id(&self) -> u64 {
        self.conn.id
    }

    /// The negotiated codec.
    pub fn codec(&self) -> Codec {
        self.conn.codec
    }

    /// A cloneable caller for this connection.
    pub fn caller(&self) -> Caller {
        Caller::for_conn(self.conn.clone())
    }

    crate::call::caller_surface!();

    /// Offers a service on this connection only (in addition to those of its server or client).
    /// Takes effect for frames arriving after it returns.
    pub fn add_service(&self, svc: Arc<dyn Service>) {
        Services::of(&self.conn).local.add(svc);
    }

    /// Withdraws a service added with [`add_service`](Self::add_service); `true` if it was there.
    pub fn remove_service(&self, name: &str) -> bool {
        Services::of(&self.conn).local.remove(name)
    }

    /// Withdraws all services added with [`add_service`](Self::add_service).
    pub fn clear_services(&self) {
        Services::of(&self.conn).local.clear();
    }

    /// The services the peer announced in its HELLO (name → schema fingerprint), once received.
    pub fn peer_services(&self) -> Option<&HashMap<String, String>> {
        self.conn.peer_services.get()
    }

    /// The per-connection data attached by the accept hook, if it is a `T`.
    pub fn data<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.conn.data.as_ref()?.downcast_ref()
    }

    /// The connection's counters.
    pub fn stats(&self) -> StatsSnapshot {
        self.conn.stats.own.snapshot()
    }

    /// Whether the connection is closing or closed.
    pub fn is_closed(&self) -> bool {
        self.conn.is_closing()
    }

    /// Closes the connection with `code` and `reason` (shortened to 123 bytes on a character
    /// boundary) and waits until it is closed. Calls in flight fail with
    /// [`CallError::Closed`](crate::CallError::Closed). Idempotent: a later call returns the first outcome.
    pub async fn close(&self, code: u16, reason: &str) -> Result<CloseInfo, CloseError> {
        self.conn.close_by_application(code, reason);
        self.closed().await
    }

    /// Resolves when the connection is closed: `Ok` for a normal close (1000), `Err` with the
    /// code and reason otherwise (1006 when the link was lost without a close frame).
    pub async fn closed(&self) -> Result<CloseInfo, CloseError> {
        self.conn.wait_closed().await.into_result()
    }

    /// The close outcome, if the connection is closed.
    pub fn close_info(&self) -> Option<CloseInfo> {
        self.conn.close_info()
    }
}

// A context's connection as a peer: defined here rather than in `context.rs`, so that the
// handles' imports point one way (peer → context).
impl CallContext {
    /// The connection as a [`Peer`].
    pub fn peer(&self) -> Peer {
        Peer::from_inner(self.conn().clone())
    }
}
