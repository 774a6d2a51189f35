//! [`Server`]: accepts WebSocket connections and serves its services on each of them.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use futures_util::{Sink, Stream};
use serde::Serialize;
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::authenticate::{self, AuthHook};
use crate::close::{CloseInfo, code};
use crate::config::Config;
use crate::connection::guarded_io::{GuardedIo, MessageClock};
use crate::connection::{self, ConnInner, ConnSetup};
use crate::context::ConnData;
use crate::error::CallError;
use crate::origin::OriginPolicy;
use crate::peer::Peer;
use crate::service::{Observer, Registry, Service, Services};
use crate::stats::{Counters, StatsSnapshot};
use crate::tls::{MaybeTls, ServerTls};
use crate::wire;
use crate::wire::codec::Codec;

/// The HTTP upgrade request of a connection, as seen by the accept hook.
pub type AcceptRequest = Request;

/// A refusal of a connection by the accept hook: the HTTP status and body sent instead of the
/// upgrade.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reject {
    /// HTTP status code (e.g. 401, 403).
    pub status: u16,
    /// Response body.
    pub reason: String,
}

impl Reject {
    /// A refusal with a status and a reason.
    pub fn new(status: u16, reason: impl Into<String>) -> Self {
        Reject {
            status,
            reason: reason.into(),
        }
    }
}

/// Decides whether to accept a connection from its upgrade request (path, headers) and may
/// attach per-connection data for the handlers.
pub type AcceptHook = Arc<dyn Fn(&AcceptRequest) -> Result<Option<ConnData>, Reject> + Send + Sync>;
/// Called when a connection opened.
pub type OpenHook = Arc<dyn Fn(&Peer) + Send + Sync>;
/// Called when a connection closed, with how it closed.
pub type CloseHook = Arc<dyn Fn(&Peer, &CloseInfo) + Send + Sync>;

/// Default of [`ServerBuilder::max_connections`].
const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// Most refusals of connections over a limit answered at once; past that a refused TCP
/// connection is dropped without an answer (a flood must not turn into a pile of tasks).
const MAX_REFUSALS_IN_FLIGHT: usize = 64;

/// Pause of the accept loop after a failed accept (EMFILE and the like), so that it does not
/// spin while the condition lasts.
const ACCEPT_ERROR_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

/// Builds a [`Server`].
pub struct ServerBuilder {
    config: Config,
    max_connections: usize,
    max_connections_per_ip: Option<usize>,
    services: Vec<Arc<dyn Service>>,
    accept: Option<AcceptHook>,
    on_open: Option<OpenHook>,
    on_close: Option<CloseHook>,
    observer: Option<Observer>,
    tls: Option<ServerTls>,
    origins: OriginPolicy,
    require_origin: bool,
    authenticate: Option<AuthHook>,
    #[cfg(feature = "cluster")]
    nats: Option<String>,
}

impl Default for ServerBuilder {
    fn default() -> Self {
        ServerBuilder {
            config: Config::default(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: None,
            services: Vec::new(),
            accept: None,
            on_open: None,
            on_close: None,
            observer: None,
            tls: None,
            origins: OriginPolicy::SameOrigin,
            require_origin: false,
            authenticate: None,
            #[cfg(feature = "cluster")]
            nats: None,
        }
    }
}

impl std::fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ServerBuilder {
    /// Limits and timing of every connection.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Most connections at once, counted from TCP accept (so handshakes in progress count) to
    /// close (default 10,000). Past it a new connection is answered with HTTP 503 and closed.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n;
        self
    }

    /// Most connections at once from one IP address (default: no limit of its own, since many
    /// clients can share an address behind NAT). Past it: HTTP 503, as for
    /// [`max_connections`](Self::max_connections).
    pub fn max_connections_per_ip(mut self, n: Option<usize>) -> Self {
        self.max_connections_per_ip = n;
        self
    }

    /// A service offered on every connection.
    pub fn service(mut self, svc: Arc<dyn Service>) -> Self {
        self.services.push(svc);
        self
    }

    /// The accept hook.
    pub fn on_accept<F>(mut self, f: F) -> Self
    where
        F: Fn(&AcceptRequest) -> Result<Option<ConnData>, Reject> + Send + Sync + 'static,
    {
        self.accept = Some(Arc::new(f));
        self
    }

    /// An asynchronous check of each upgrade request (look a bearer token up in a store): its
    /// `T` becomes the connection's data, which handlers read with
    /// [`CallContext::data::<T>()`](crate::CallContext::data); a [`Reject`] is answered with
    /// its HTTP status and reason instead of the upgrade. It runs after the origin and
    /// subprotocol checks, within the handshake timeout; the sync [`on_accept`](Self::on_accept)
    /// hook, if also set, runs after it and its data (if any) wins.
    pub fn authenticate<F, Fut, T>(mut self, f: F) -> Self
    where
        F: Fn(AcceptRequest) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<T, Reject>> + Send + 'static,
        T: Send + Sync + 'static,
    {
        self.authenticate = Some(crate::authenticate::hook(f));
        self
    }

    /// Called for each connection once it is open.
    pub fn on_open<F: Fn(&Peer) + Send + Sync + 'static>(mut self, f: F) -> Self {
        self.on_open = Some(Arc::new(f));
        self
    }

    /// Called for each connection once it is closed.
    pub fn on_close<F: Fn(&Peer, &CloseInfo) + Send + Sync + 'static>(mut self, f: F) -> Self {
        self.on_close = Some(Arc::new(f));
        self
    }

    /// A hook seeing every incoming call and notification on every connection.
    pub fn observer(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Which web pages may connect (default [`OriginPolicy::SameOrigin`]); a browser request
    /// from another origin is refused with HTTP 403 before the upgrade, and before the accept
    /// hook runs.
    pub fn origins(mut self, policy: OriginPolicy) -> Self {
        self.origins = policy;
        self
    }

    /// Refuses requests without an `Origin` header (HTTP 403), i.e. every non-browser client
    /// (default: they are let through, the origin check being about browsers).
    pub fn require_origin(mut self, on: bool) -> Self {
        self.require_origin = on;
        self
    }

    /// Serves TLS (`wss://`) with this certificate and key ([`ServerTls::from_pem_files`]);
    /// the TLS handshake counts against the handshake timeout.
    pub fn tls(mut self, tls: ServerTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Binds `addr` (port 0 picks a free port) and starts accepting; returns once listening.
    pub async fn bind<A: ToSocketAddrs>(self, addr: A) -> std::io::Result<Server> {
        let listener = TcpListener::bind(addr).await?;
        #[cfg(feature = "cluster")]
        let nats = self.nats.clone();
        let server = self.build_at(listener.local_addr()?);
        let inner = &server.inner;
        #[cfg(feature = "cluster")]
        if let Some(url) = nats {
            let cluster = crate::cluster::ServerCluster::join(inner, &url).await?;
            let _ = inner.cluster.set(cluster);
        }
        let task = tokio::spawn(accept_loop(Arc::downgrade(inner), listener));
        *inner.accept_task.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
        Ok(server)
    }

    /// Makes this server one node of a cluster whose nodes share, through the NATS server at
    /// `url` (e.g. `nats://10.0.0.2:4222`): broadcasts ([`Server::notify_all`], the generated
    /// `…Broadcast`) reach the clients of every node, and [`Server::cluster`] calls one client
    /// by its address or an application key from any node (PROTOCOL.md §13). Takes effect in
    /// [`bind`](Self::bind), which connects to NATS first (an error if it cannot). Without it
    /// the server stands alone and needs no NATS.
    #[cfg(feature = "cluster")]
    pub fn cluster(mut self, url: impl Into<String>) -> Self {
        self.nats = Some(url.into());
        self
    }

    /// The limits and timing every connection gets (for the relay host, which dials its own).
    pub(crate) fn connection_config(&self) -> &Config {
        &self.config
    }

    /// A server that listens on no socket of its own: its connections come from elsewhere —
    /// an HTTP framework's route ([`Server::admit`] and [`Server::attach`], or the `axum`
    /// feature's `wsp_runtime::axum::route`), or a relay's spares. Its
    /// [`local_addr`](Server::local_addr) is the unspecified address, port 0.
    pub fn build(self) -> Server {
        self.detached()
    }

    /// See [`build`](Self::build).
    pub(crate) fn detached(self) -> Server {
        self.build_at(SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    fn build_at(self, local_addr: SocketAddr) -> Server {
        let registry = Registry::default();
        for s in self.services {
            registry.add(s);
        }
        let inner = Arc::new(ServerInner {
            local_addr,
            config: Arc::new(self.config),
            registry: Arc::new(registry),
            conns: Mutex::new(HashMap::new()),
            count: watch::channel(0).0,
            next_id: AtomicU64::new(1),
            stats: Arc::new(Counters::new()),
            accept: self.accept,
            on_open: self.on_open,
            on_close: self.on_close,
            observer: self.observer,
            tls: self.tls,
            origins: self.origins,
            require_origin: self.require_origin,
            authenticate: self.authenticate,
            shutting_down: AtomicBool::new(false),
            closed: watch::channel(false).0,
            accept_task: Mutex::new(None),
            slots: Mutex::default(),
            max_connections: self.max_connections,
            max_connections_per_ip: self.max_connections_per_ip,
            refusals: AtomicUsize::new(0),
            #[cfg(feature = "cluster")]
            cluster: std::sync::OnceLock::new(),
        });
        Server { inner }
    }
}

pub(crate) struct ServerInner {
    local_addr: SocketAddr,
    pub(crate) config: Arc<Config>,
    registry: Arc<Registry>,
    conns: Mutex<HashMap<u64, Arc<ConnInner>>>,
    /// Number of open connections, for waiting in `close`.
    count: watch::Sender<usize>,
    next_id: AtomicU64,
    stats: Arc<Counters>,
    accept: Option<AcceptHook>,
    on_open: Option<OpenHook>,
    on_close: Option<CloseHook>,
    observer: Option<Observer>,
    tls: Option<ServerTls>,
    origins: OriginPolicy,
    require_origin: bool,
    authenticate: Option<AuthHook>,
    shutting_down: AtomicBool,
    /// `true` once [`Server::close`] finished.
    pub(crate) closed: watch::Sender<bool>,
    accept_task: Mutex<Option<JoinHandle<()>>>,
    /// Connections held, in all and per address.
    slots: Mutex<Slots>,
    max_connections: usize,
    max_connections_per_ip: Option<usize>,
    /// This node's cluster membership, if it is one.
    #[cfg(feature = "cluster")]
    cluster: std::sync::OnceLock<crate::cluster::ServerCluster>,
    /// Refusals being answered right now.
    refusals: AtomicUsize,
}

#[derive(Default)]
struct Slots {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// One connection's place under the server's limits, from TCP accept until the connection is
/// finished; given back when dropped.
struct Slot {
    server: Weak<ServerInner>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(server) = self.server.upgrade() {
            let mut slots = lock(&server.slots);
            slots.total -= 1;
            if let Some(n) = slots.per_ip.get_mut(&self.ip) {
                *n -= 1;
                if *n == 0 {
                    slots.per_ip.remove(&self.ip);
                }
            }
        }
    }
}

impl ServerInner {
    /// Takes a place for a connection from `ip`, or says which limit is reached.
    fn take_slot(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, &'static str> {
        let mut slots = lock(&self.slots);
        if slots.total >= self.max_connections {
            return Err("too many connections");
        }
        let of_ip = slots.per_ip.get(&ip).copied().unwrap_or(0);
        if self.max_connections_per_ip.is_some_and(|max| of_ip >= max) {
            return Err("too many connections from this address");
        }
        slots.total += 1;
        *slots.per_ip.entry(ip).or_insert(0) += 1;
        Ok(Slot {
            server: Arc::downgrade(self),
            ip,
        })
    }

    /// Answers a connection over a limit with HTTP 503 (after reading its request, so the
    /// answer is not lost to a reset) and closes it; all within one second.
    fn refuse(self: &Arc<Self>, mut tcp: TcpStream, why: &'static str) {
        self.stats
            .connections_refused
            .fetch_add(1, Ordering::Relaxed);
        if self.refusals.fetch_add(1, Ordering::AcqRel) >= MAX_REFUSALS_IN_FLIGHT {
            self.refusals.fetch_sub(1, Ordering::AcqRel);
            return;
        }
        let server = self.clone();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let answer = async {
                // Read the request (up to 4 KiB) before answering.
                let mut request = Vec::with_capacity(512);
                let mut buf = [0u8; 512];
                while request.len() < 4096 && !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = tcp.read(&mut buf).await?;
                    if n == 0 {
                        break;
                    }
                    request.extend_from_slice(&buf[..n]);
                }
                let response = format!(
                    "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\
                     Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n{why}",
                    why.len()
                );
                tcp.write_all(response.as_bytes()).await?;
                tcp.shutdown().await
            };
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), answer).await;
            server.refusals.fetch_sub(1, Ordering::AcqRel);
        });
    }
}

/// A wsp server: accepts connections, serves its services on each (a registry shared by all
/// connections and changeable at run time), and can call or notify each client.
#[derive(Clone)]
pub struct Server {
    inner: Arc<ServerInner>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.inner.local_addr)
            .finish()
    }
}

/// What [`Server::notify_all`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BroadcastReport {
    /// Connections the notification was queued for.
    pub queued: usize,
    /// Connections whose send queue was full: the notification was dropped for them (and
    /// counted in their `dropped_frames`).
    pub dropped: usize,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn accept_loop(server: Weak<ServerInner>, listener: TcpListener) {
    loop {
        let accepted = listener.accept().await;
        let Some(inner) = server.upgrade() else {
            return;
        };
        let (tcp, addr) = match accepted {
            Ok(a) => a,
            Err(e) => {
                inner.stats.accept_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "accepting a connection failed");
                drop(inner);
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        let slot = match inner.take_slot(addr.ip()) {
            Ok(slot) => slot,
            Err(why) => {
                inner.refuse(tcp, why);
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        tokio::spawn(async move {
            if let Err(e) = inner.handshake(tcp, slot).await {
                tracing::debug!(error = %e, "websocket handshake failed");
            }
        });
    }
}

fn error_response(status: u16, body: &str) -> ErrorResponse {
    let mut r = ErrorResponse::new(Some(body.to_owned()));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
    r
}

/// Picks the codec for a WebSocket upgrade request (PROTOCOL.md §1): the first offered
/// subprotocol this runtime supports; `None` when none is offered (the server then uses
/// MessagePack); a [`Reject`] (HTTP 400) when subprotocols are offered but none is supported.
/// For servers that accept upgrades themselves (an HTTP framework, a relay) and then call
/// [`Server::attach`] or [`Peer::from_stream`].
pub fn negotiate_codec(req: &Request) -> Result<Option<Codec>, Reject> {
    let mut offered = false;
    for value in req.headers().get_all("sec-websocket-protocol") {
        for name in value.to_str().unwrap_or("").split(',') {
            offered = true;
            if let Some(c) = Codec::from_subprotocol(name.trim()) {
                return Ok(Some(c));
            }
        }
    }
    if offered {
        Err(Reject::new(400, "no supported subprotocol"))
    } else {
        Ok(None)
    }
}

impl ServerInner {
    // The callback's error type is imposed by tungstenite.
    #[allow(clippy::result_large_err)]
    async fn handshake(self: Arc<Self>, tcp: TcpStream, slot: Slot) -> Result<(), WsError> {
        if self.shutting_down.load(Ordering::Acquire) {
            return Ok(());
        }
        // TLS, the asynchronous check and the upgrade together within the handshake timeout.
        let deadline = tokio::time::Instant::now() + self.config.handshake_timeout;
        let mut io = match &self.tls {
            Some(tls) => match tokio::time::timeout_at(deadline, tls.accept(tcp)).await {
                Ok(Ok(io)) => io,
                // A failed TLS handshake has nobody to answer.
                _ => return Ok(()),
            },
            None => MaybeTls::Plain(tcp),
        };
        let mut checked: Option<ConnData> = None;
        let mut read_ahead = Vec::new();
        if let Some(auth) = &self.authenticate {
            let Ok(Ok(Some((req, bytes)))) =
                tokio::time::timeout_at(deadline, authenticate::read_head(&mut io)).await
            else {
                return Ok(());
            };
            // The cheap checks first: the application's check never sees a request that
            // would be refused anyway.
            let cheap = self
                .origins
                .check(&req, self.require_origin)
                .and_then(|()| negotiate_codec(&req).map(drop));
            let verdict = match cheap {
                Err(r) => Err(r),
                Ok(()) => match tokio::time::timeout_at(deadline, auth(req)).await {
                    Ok(v) => v,
                    Err(_) => return Ok(()),
                },
            };
            match verdict {
                Ok(data) => checked = Some(data),
                Err(r) => {
                    authenticate::refuse(&mut io, &r).await;
                    return Ok(());
                }
            }
            read_ahead = bytes;
        }
        let mut decision: Option<(Codec, Option<ConnData>)> = None;
        let hook = self.accept.clone();
        let callback = |req: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
            self.origins
                .check(req, self.require_origin)
                .map_err(|r| error_response(r.status, &r.reason))?;
            let chosen = negotiate_codec(req).map_err(|r| error_response(r.status, &r.reason))?;
            let data = match &hook {
                Some(h) => h(req).map_err(|r| error_response(r.status, &r.reason))?,
                None => None,
            }
            .or(checked);
            if let Some(c) = chosen {
                resp.headers_mut().insert(
                    "sec-websocket-protocol",
                    HeaderValue::from_static(c.subprotocol()),
                );
            }
            decision = Some((chosen.unwrap_or_default(), data));
            Ok(resp)
        };
        let ws_config = self.config.websocket_config();
        let (mut io, clock) = GuardedIo::new(io, self.config.write_timeout);
        io.unread(read_ahead);
        let accept = tokio_tungstenite::accept_hdr_async_with_config(io, callback, Some(ws_config));
        let ws = match tokio::time::timeout_at(deadline, accept).await {
            Ok(r) => r?,
            Err(_) => return Ok(()),
        };
        let (codec, data) = decision.expect("the callback ran for a completed handshake");
        self.attach(ws, codec, data, Some(slot), Some(clock));
        Ok(())
    }

    fn attach<S>(
        self: &Arc<Self>,
        ws: S,
        codec: Codec,
        data: Option<ConnData>,
        slot: Option<Slot>,
        message_clock: Option<Arc<MessageClock>>,
    ) -> Peer
    where
        S: Stream<Item = Result<Message, WsError>>
            + Sink<Message, Error = WsError>
            + Send
            + Unpin
            + 'static,
    {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let weak = Arc::downgrade(self);
        let on_close: connection::OnClose = Box::new(move |conn, info| {
            // The connection's place under the limits is free once it is finished.
            drop(slot);
            if let Some(server) = weak.upgrade() {
                server.remove(conn.id);
                if let Some(h) = &server.on_close {
                    h(&Peer::from_inner(conn.clone()), info);
                }
            }
        });
        let setup = ConnSetup {
            id,
            codec,
            config: self.config.clone(),
            stats_parent: Some(self.stats.clone()),
            data,
            dispatch: Arc::new(Services::new(
                Some(self.registry.clone()),
                self.observer.clone(),
            )),
            on_close: Some(on_close),
            message_clock,
        };
        let conn = connection::start(ws, setup);
        {
            let mut conns = lock(&self.conns);
            if conn.close_info().is_none() {
                conns.insert(id, conn.clone());
                self.count.send_replace(conns.len());
            }
        }
        let peer = Peer::from_inner(conn);
        if self.shutting_down.load(Ordering::Acquire) {
            peer.inner()
                .initiate_close(code::GOING_AWAY, "server shutting down");
        }
        if let Some(h) = &self.on_open {
            if std::panic::catch_unwind(AssertUnwindSafe(|| h(&peer))).is_err() {
                tracing::error!(conn = id, "an open hook panicked");
            }
        }
        peer
    }

    fn remove(&self, id: u64) {
        let mut conns = lock(&self.conns);
        conns.remove(&id);
        self.count.send_replace(conns.len());
    }
}

impl Server {
    #[cfg(feature = "cluster")]
    pub(crate) fn from_inner(inner: Arc<ServerInner>) -> Server {
        Server { inner }
    }

    /// This node's cluster membership ([`ServerBuilder::cluster`]), if it is one.
    #[cfg(feature = "cluster")]
    pub fn cluster(&self) -> Option<&crate::cluster::ServerCluster> {
        self.inner.cluster.get()
    }

    /// A builder with default settings and no services.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// The address the server listens on (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// `ws://<local_addr>/`, handy for clients and tests.
    pub fn url(&self) -> String {
        let scheme = if self.inner.tls.is_some() {
            "wss"
        } else {
            "ws"
        };
        format!("{scheme}://{}/", self.inner.local_addr)
    }

    /// Decides on an upgrade request accepted elsewhere (an HTTP framework's route), as the
    /// server's own accept path does: the origin check, the subprotocol, the asynchronous
    /// check and the accept hook, bounded by the handshake timeout. The codec and the
    /// connection's data, or the refusal to answer with.
    pub async fn admit(&self, req: AcceptRequest) -> Result<(Codec, Option<ConnData>), Reject> {
        let inner = &self.inner;
        if inner.shutting_down.load(Ordering::Acquire) {
            return Err(Reject::new(503, "server shutting down"));
        }
        inner.origins.check(&req, inner.require_origin)?;
        let codec = negotiate_codec(&req)?.unwrap_or_default();
        let hooked = match &inner.accept {
            Some(h) => h(&req)?,
            None => None,
        };
        let checked = match &inner.authenticate {
            Some(auth) => {
                let check = tokio::time::timeout(inner.config.handshake_timeout, auth(req));
                Some(
                    check
                        .await
                        .map_err(|_| Reject::new(503, "authentication timed out"))??,
                )
            }
            None => None,
        };
        Ok((codec, hooked.or(checked)))
    }

    /// The limits and timing of this server's connections.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Runs a connection that was upgraded elsewhere (e.g. by an existing HTTP server) as one
    /// of this server's connections: same services, hooks, statistics and broadcast.
    pub fn attach<S>(&self, ws: S, codec: Codec, data: Option<ConnData>) -> Peer
    where
        S: Stream<Item = Result<Message, WsError>>
            + Sink<Message, Error = WsError>
            + Send
            + Unpin
            + 'static,
    {
        self.inner.attach(ws, codec, data, None, None)
    }

    /// Serves on a connection this side dialed (a relay spare handed over to a caller), with
    /// the stall watches of its socket.
    pub(crate) fn attach_dialed<S>(
        &self,
        ws: S,
        codec: Codec,
        data: Option<ConnData>,
        clock: Arc<MessageClock>,
    ) -> Peer
    where
        S: Stream<Item = Result<Message, WsError>>
            + Sink<Message, Error = WsError>
            + Send
            + Unpin
            + 'static,
    {
        self.inner.attach(ws, codec, data, None, Some(clock))
    }

    /// Adds (or replaces) a service on all connections, current and future.
    pub fn add_service(&self, svc: Arc<dyn Service>) {
        self.inner.registry.add(svc);
    }

    /// Removes a service; calls to it then get `UNKNOWN_METHOD`. `true` if it was there.
    pub fn remove_service(&self, name: &str) -> bool {
        self.inner.registry.remove(name)
    }

    /// Removes all services.
    pub fn clear_services(&self) {
        self.inner.registry.clear();
    }

    /// The open connection with this id.
    pub fn connection(&self, id: u64) -> Option<Peer> {
        lock(&self.inner.conns)
            .get(&id)
            .cloned()
            .map(Peer::from_inner)
    }

    /// All open connections.
    pub fn connections(&self) -> Vec<Peer> {
        lock(&self.inner.conns)
            .values()
            .cloned()
            .map(Peer::from_inner)
            .collect()
    }

    /// Sends a notification to every connection without waiting: the frame is encoded once per
    /// codec and queued on each connection; a connection whose send queue is full misses it
    /// (counted in its `dropped_frames`), so one stalled client never blocks the others.
    pub fn notify_all<A: Serialize + ?Sized>(
        &self,
        method: &str,
        args: &A,
    ) -> Result<BroadcastReport, CallError> {
        #[cfg(feature = "cluster")]
        if let Some(cluster) = self.inner.cluster.get() {
            let mut args_buf = Vec::new();
            Codec::MsgPack.encode(&mut args_buf, args)?;
            cluster.broadcast(method, args_buf.into());
        }
        self.notify_local(method, args)
    }

    /// [`notify_all`](Self::notify_all) to this node's clients only.
    pub(crate) fn notify_local<A: Serialize + ?Sized>(
        &self,
        method: &str,
        args: &A,
    ) -> Result<BroadcastReport, CallError> {
        let conns: Vec<_> = lock(&self.inner.conns).values().cloned().collect();
        let mut encoded: [Option<Message>; 2] = [None, None];
        let mut report = BroadcastReport::default();
        for conn in conns {
            if conn.is_closing() {
                continue;
            }
            let slot = &mut encoded[conn.codec as usize];
            if slot.is_none() {
                let frame = wire::notify(conn.codec, method, args)?;
                *slot = Some(wire::message(conn.codec, frame));
            }
            let msg = slot.clone().expect("encoded above");
            if conn.broadcast(msg) {
                report.queued += 1;
            } else {
                report.dropped += 1;
            }
        }
        Ok(report)
    }

    /// Server-wide counters (sums over all connections, past and present).
    pub fn stats(&self) -> StatsSnapshot {
        self.inner.stats.snapshot()
    }

    /// Sets the server's statistics as `wsp_server_<field>` metrics (the `metrics` feature;
    /// call it before each scrape).
    #[cfg(feature = "metrics")]
    pub fn export_metrics(&self) {
        crate::metering::export("server", &self.stats());
    }

    /// Graceful close: stops accepting, closes every connection with 1001 and returns once all
    /// are closed (each bounded by the close timeout). Then [`closed`](Self::closed) resolves.
    /// Idempotent.
    pub async fn close(&self) {
        self.inner.shutting_down.store(true, Ordering::Release);
        if let Some(t) = lock(&self.inner.accept_task).take() {
            t.abort();
        }
        for conn in lock(&self.inner.conns).values() {
            conn.close_by_application(code::GOING_AWAY, "server shutting down");
        }
        let mut rx = self.inner.count.subscribe();
        let wait = rx.wait_for(|n| *n == 0);
        let bound = self.inner.config.close_timeout * 2 + std::time::Duration::from_millis(100);
        let _ = tokio::time::timeout(bound, wait).await;
        #[cfg(feature = "cluster")]
        if let Some(cluster) = self.inner.cluster.get() {
            cluster.leave().await;
        }
        self.inner.closed.send_replace(true);
    }

    /// Resolves once the server is closed: a [`close`](Self::close), called from anywhere
    /// (another task, a handler, [`serve_until`](Self::serve_until)), has finished. A server
    /// binary's `main` can await it to serve until then.
    pub async fn closed(&self) {
        let mut rx = self.inner.closed.subscribe();
        // The sender lives in the server, which `self` keeps alive: this cannot fail.
        let _ = rx.wait_for(|closed| *closed).await;
    }

    /// Serves until `signal` resolves, then closes gracefully ([`close`](Self::close):
    /// connections get 1001 and are waited for) and returns; returns as well when the server is
    /// closed from elsewhere first. With `wsp_runtime::shutdown_signal()` a server binary
    /// stops cleanly on Ctrl-C or SIGTERM:
    ///
    /// ```no_run
    /// # async fn run(server: wsp_runtime::Server) {
    /// server.serve_until(tokio::signal::ctrl_c()).await;
    /// # }
    /// ```
    pub async fn serve_until<F: std::future::Future>(&self, signal: F) {
        tokio::select! {
            _ = signal => self.close().await,
            () = self.closed() => {}
        }
    }
}

/// Resolves when the process is asked to stop: Ctrl-C (SIGINT) or, on Unix, SIGTERM (what
/// `docker stop`, Kubernetes and systemd send). For [`Server::serve_until`]. If the signal
/// handlers cannot be installed it logs the error and never resolves (the process still stops
/// the usual way).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C: shutting down"),
        () = terminate => tracing::info!("SIGTERM: shutting down"),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::time::Duration;

    #[tokio::test]
    async fn sigterm_resolves_shutdown_signal() {
        let mut signal = Box::pin(super::shutdown_signal());
        // The first poll installs the handlers; only then may SIGTERM come (else it kills the
        // test process).
        assert!(futures_util::FutureExt::now_or_never(&mut signal).is_none());
        let pid = std::process::id().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("runs kill");
        assert!(sent.success());
        tokio::time::timeout(Duration::from_secs(5), signal)
            .await
            .expect("SIGTERM resolves it");
    }
}
