//! The wsp relay (the "communication server"): a peer that cannot accept connections — a
//! browser tab, a device behind NAT — serves its services through it. PROTOCOL.md §11 is the
//! contract; this crate is the relay, `wsp_runtime::relay` the two ends.
//!
//! A *host* keeps spare connections registered under its Ed25519 public key, each proving it
//! holds the secret key. A *caller* names a key; the relay hands one spare over and from then
//! on copies frames both ways, so the two ends speak ordinary wsp (generated clients and
//! servers work unchanged). Reading order:
//!
//! - this file: the relay's settings, its accept loop, and its statistics;
//! - `hand_over.rs`: a connection's relay handshake, idle spares, routing callers to them;
//! - `directory.rs`: the routing table (key → idle spares, waiting callers);
//! - `pipe.rs`: copying a joined pair both ways, and close propagation;
//! - `cluster/`: several relays as one through NATS ([`RelayBuilder::cluster`]): claims for
//!   keys another node holds, and the tunnel a route between two nodes runs over.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! let relay = wsp_relay::Relay::builder().bind("127.0.0.1:8787").await?;
//! println!("relay listening on {}", relay.url());
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use wsp_runtime::relay::{PublicKey, Purpose, proof_text};
use wsp_runtime::tls::{MaybeTls, ServerTls};
use wsp_runtime::{Codec, OriginPolicy};

mod cluster;
mod directory;
mod hand_over;
mod pipe;

use directory::{Directory, Limits};

/// A WebSocket the relay accepted.
pub(crate) type Ws = WebSocketStream<MaybeTls>;

/// Settings of a relay; every limit has a safe default (PROTOCOL.md §11.7).
#[derive(Clone, Debug)]
pub struct RelayBuilder {
    names: Vec<String>,
    max_connections: usize,
    max_keys: usize,
    max_spares_per_key: usize,
    max_waiting_per_key: usize,
    max_message_size: usize,
    config: Timing,
    tls: Option<ServerTls>,
    origins: OriginPolicy,
    nats: Option<String>,
}

/// The relay's timing.
#[derive(Clone, Debug)]
pub(crate) struct Timing {
    pub(crate) handshake_timeout: Duration,
    pub(crate) wait_for_spare: Duration,
    pub(crate) linger: Duration,
    pub(crate) ping_interval: Duration,
    pub(crate) dead_peer_timeout: Duration,
    pub(crate) write_timeout: Duration,
    pub(crate) close_timeout: Duration,
}

impl Default for RelayBuilder {
    fn default() -> Self {
        RelayBuilder {
            names: Vec::new(),
            max_connections: 10_000,
            max_keys: 10_000,
            max_spares_per_key: 8,
            max_waiting_per_key: 64,
            max_message_size: 16 << 20,
            tls: None,
            origins: OriginPolicy::Any,
            nats: None,
            config: Timing {
                handshake_timeout: Duration::from_secs(10),
                wait_for_spare: Duration::from_secs(5),
                linger: Duration::from_secs(10),
                ping_interval: Duration::from_secs(20),
                dead_peer_timeout: Duration::from_secs(60),
                write_timeout: Duration::from_secs(30),
                close_timeout: Duration::from_secs(5),
            },
        }
    }
}

impl RelayBuilder {
    /// Adds a name peers reach this relay by: the host of the URL they dial, with `:port` when
    /// the URL names a port that is not its scheme's default (e.g. `relay.example.com`,
    /// `10.0.0.5:8787`). Proofs must state one of these names, so a proof made for another
    /// relay is refused here. A relay on a loopback address knows its loopback names by
    /// itself; one on any other address needs at least one name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.names.push(name.into().to_ascii_lowercase());
        self
    }

    /// Most connections open at once, spares and callers together (default 10,000); more are
    /// answered with HTTP 503.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n;
        self
    }

    /// Most keys registered at once (default 10,000); a spare of a further key is closed with
    /// `RELAY_OVERLOADED`.
    pub fn max_keys(mut self, n: usize) -> Self {
        self.max_keys = n;
        self
    }

    /// Most idle spares per key (default 8); a further one is closed with `RELAY_OVERLOADED`.
    pub fn max_spares_per_key(mut self, n: usize) -> Self {
        self.max_spares_per_key = n;
        self
    }

    /// Most callers waiting for a spare of one key (default 64); a further one is closed with
    /// `RELAY_OVERLOADED`.
    pub fn max_waiting_per_key(mut self, n: usize) -> Self {
        self.max_waiting_per_key = n;
        self
    }

    /// Largest message relayed, in bytes (default 16 MiB); a larger one closes the route with
    /// 1009 at both ends.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Time from TCP accept to a connection's REGISTER or CONNECT, and from HANDOVER to READY
    /// (default 10 s); then close 4001.
    pub fn handshake_timeout(mut self, t: Duration) -> Self {
        self.config.handshake_timeout = t;
        self
    }

    /// How long a caller waits for a spare of a registered key (default 5 s); then close
    /// `RELAY_UNAVAILABLE`.
    pub fn wait_for_spare(mut self, t: Duration) -> Self {
        self.config.wait_for_spare = t;
        self
    }

    /// How long a key stays known after its last spare was registered or handed over, while
    /// its host opens new ones (default 10 s); after it, callers get `RELAY_UNKNOWN_KEY` at once.
    pub fn linger(mut self, t: Duration) -> Self {
        self.config.linger = t;
        self
    }

    /// How often idle spares and quiet relayed connections are pinged (default 20 s). A
    /// spare silent for two intervals is dropped; an end of a route silent for the dead-peer
    /// timeout is taken for lost.
    pub fn ping_interval(mut self, t: Duration) -> Self {
        self.config.ping_interval = t;
        self
    }

    /// How long an end of a route may stay silent before it is taken for lost (default 60 s).
    pub fn dead_peer_timeout(mut self, t: Duration) -> Self {
        self.config.dead_peer_timeout = t;
        self
    }

    /// How long writing one message to an end may make no progress (default 30 s); then the
    /// route closes with 4003 at both ends.
    pub fn write_timeout(mut self, t: Duration) -> Self {
        self.config.write_timeout = t;
        self
    }

    /// Which web pages may connect (default [`OriginPolicy::Any`]: a relay's peers prove their
    /// keys, so a page gains nothing from the user's browser). Others get HTTP 403.
    pub fn origins(mut self, policy: OriginPolicy) -> Self {
        self.origins = policy;
        self
    }

    /// Serves TLS (`wss://`) with this certificate and key; the TLS handshake counts against
    /// the handshake timeout.
    pub fn tls(mut self, tls: ServerTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Makes this relay a node of a cluster whose nodes share their routing through the NATS
    /// server at `url` (e.g. `nats://10.0.0.2:4222`; a comma-separated list for a NATS
    /// cluster): a caller at any node reaches a host registered at any other (PROTOCOL.md
    /// §11.8). Without it the relay stands alone and needs no NATS. Every node's NATS
    /// connection is trusted with all routes: secure the NATS server accordingly.
    pub fn cluster(mut self, url: impl Into<String>) -> Self {
        self.nats = Some(url.into());
        self
    }

    /// Binds `addr` (port 0 picks a free port) and starts relaying; with a
    /// [`cluster`](Self::cluster) URL, connects to NATS first (an error if it cannot).
    pub async fn bind<A: ToSocketAddrs>(mut self, addr: A) -> std::io::Result<Relay> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        if local_addr.ip().is_loopback() {
            let port = local_addr.port();
            self.names
                .push(format!("{}", SocketAddr::new(local_addr.ip(), port)));
            self.names.push(format!("localhost:{port}"));
        } else if self.names.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a relay on a non-loopback address needs the name peers dial it by (--name)",
            ));
        }
        let shutdown = watch::channel(false).0;
        let cluster = match &self.nats {
            Some(url) => Some(cluster::Cluster::join(url, shutdown.subscribe()).await?),
            None => None,
        };
        let ws_config = WebSocketConfig::default()
            .max_message_size(Some(self.max_message_size))
            .max_frame_size(Some(self.max_message_size));
        let inner = Arc::new(RelayInner {
            directory: Directory::new(Limits {
                max_keys: self.max_keys,
                max_spares_per_key: self.max_spares_per_key,
                max_waiting_per_key: self.max_waiting_per_key,
                linger: self.config.linger,
            }),
            names: self.names,
            config: self.config,
            ws_config,
            local_addr,
            tls: self.tls,
            origins: self.origins,
            slots: Arc::new(Semaphore::new(self.max_connections)),
            max_connections: self.max_connections,
            shutdown,
            stats: Counters::default(),
            cluster,
        });
        tokio::spawn(accept_loop(inner.clone(), listener));
        Ok(Relay { inner })
    }
}

pub(crate) struct RelayInner {
    pub(crate) directory: Directory,
    names: Vec<String>,
    pub(crate) config: Timing,
    ws_config: WebSocketConfig,
    local_addr: SocketAddr,
    tls: Option<ServerTls>,
    origins: OriginPolicy,
    slots: Arc<Semaphore>,
    max_connections: usize,
    pub(crate) shutdown: watch::Sender<bool>,
    pub(crate) stats: Counters,
    /// This node's cluster membership, if it is one.
    pub(crate) cluster: Option<Arc<cluster::Cluster>>,
}

impl RelayInner {
    /// Whether `signature` proves `key` for this connection's `nonce` under one of the
    /// relay's names (PROTOCOL.md §11.3).
    pub(crate) fn proof_holds(
        &self,
        purpose: Purpose,
        nonce: &[u8; 32],
        target: Option<&PublicKey>,
        key: &PublicKey,
        signature: &[u8; 64],
    ) -> bool {
        self.names
            .iter()
            .any(|name| key.verify(&proof_text(purpose, name, nonce, target), signature))
    }
}

async fn accept_loop(relay: Arc<RelayInner>, listener: TcpListener) {
    let mut shutdown = relay.shutdown.subscribe();
    loop {
        let tcp = tokio::select! {
            r = listener.accept() => r,
            _ = crate::stopping(&mut shutdown) => return,
        };
        let (tcp, _) = match tcp {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "relay: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = relay.slots.clone().try_acquire_owned() else {
            tokio::spawn(refuse(tcp));
            continue;
        };
        let relay = relay.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            relay.stats.open.fetch_add(1, Relaxed);
            serve(relay.clone(), tcp, started).await;
            relay.stats.open.fetch_sub(1, Relaxed);
            drop(slot);
        });
    }
}

/// Upgrades one TCP connection and runs its relay handshake.
// The callback's error type is imposed by tungstenite.
#[allow(clippy::result_large_err)]
async fn serve(relay: Arc<RelayInner>, tcp: TcpStream, started: Instant) {
    let _ = tcp.set_nodelay(true);
    let mut codec = Codec::MsgPack;
    let callback = |req: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
        if let Err(r) = relay.origins.check(req, false) {
            let mut e = ErrorResponse::new(Some(r.reason));
            *e.status_mut() = StatusCode::FORBIDDEN;
            return Err(e);
        }
        match wsp_runtime::negotiate_codec(req) {
            Ok(chosen) => {
                if let Some(c) = chosen {
                    codec = c;
                    resp.headers_mut().insert(
                        "sec-websocket-protocol",
                        HeaderValue::from_static(c.subprotocol()),
                    );
                }
                Ok(resp)
            }
            Err(_) => {
                let mut r = ErrorResponse::new(Some("no supported subprotocol".into()));
                *r.status_mut() = StatusCode::BAD_REQUEST;
                Err(r)
            }
        }
    };
    let deadline = started + relay.config.handshake_timeout;
    let io = match &relay.tls {
        Some(tls) => match tokio::time::timeout_at(deadline, tls.accept(tcp)).await {
            Ok(Ok(io)) => io,
            _ => return,
        },
        None => MaybeTls::Plain(tcp),
    };
    let accept =
        tokio_tungstenite::accept_hdr_async_with_config(io, callback, Some(relay.ws_config));
    let ws = match tokio::time::timeout_at(deadline, accept).await {
        Ok(Ok(ws)) => ws,
        _ => return,
    };
    hand_over::handshake(relay, ws, codec, started).await;
}

/// Answers a connection over the limit with HTTP 503.
async fn refuse(mut tcp: TcpStream) {
    use tokio::io::AsyncWriteExt;
    let answer =
        b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        tcp.write_all(answer).await?;
        tcp.shutdown().await
    })
    .await;
}

/// A running relay. Dropping it does not stop it; [`close`](Self::close) does.
#[derive(Clone)]
pub struct Relay {
    inner: Arc<RelayInner>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("local_addr", &self.inner.local_addr)
            .finish()
    }
}

impl Relay {
    /// A builder with safe defaults.
    pub fn builder() -> RelayBuilder {
        RelayBuilder::default()
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// `ws://` (or `wss://`) and the address it listens on.
    pub fn url(&self) -> String {
        let scheme = if self.inner.tls.is_some() {
            "wss"
        } else {
            "ws"
        };
        format!("{scheme}://{}/", self.inner.local_addr)
    }

    /// The names proofs may state (those given and, on a loopback address, its own).
    pub fn names(&self) -> &[String] {
        &self.inner.names
    }

    /// The relay's counters now.
    pub fn stats(&self) -> RelayStats {
        let (keys, spares) = self.inner.directory.counts();
        self.inner.stats.snapshot(keys, spares)
    }

    /// Sets the relay's statistics as `wsp_relay_<field>` metrics (the `metrics` feature; call
    /// it before each scrape): gauges for what is open now, counters for the rest, and
    /// `wsp_relay_closes_total{code}`.
    #[cfg(feature = "metrics")]
    pub fn export_metrics(&self) {
        let s = self.stats();
        for (name, value) in [
            ("connections_open", s.connections_open),
            ("keys_registered", s.keys_registered),
            ("spares_idle", s.spares_idle),
        ] {
            metrics::gauge!(format!("wsp_relay_{name}")).set(value as f64);
        }
        for (name, value) in [
            ("registrations", s.registrations),
            ("handovers", s.handovers),
            ("unknown_key", s.unknown_key),
            ("refused_proofs", s.refused_proofs),
            ("overloaded", s.overloaded),
            ("unavailable", s.unavailable),
            ("frames_relayed", s.frames_relayed),
            ("bytes_relayed", s.bytes_relayed),
        ] {
            metrics::counter!(format!("wsp_relay_{name}")).absolute(value);
        }
        for (code, n) in s.closes_by_code {
            metrics::counter!("wsp_relay_closes_total", "code" => code.to_string()).absolute(n);
        }
    }

    /// Stops accepting and closes every connection with 1001 (both ends of each route);
    /// returns once all are closed or after twice the close timeout.
    pub async fn close(&self) {
        self.inner.shutdown.send_replace(true);
        let all = u32::try_from(self.inner.max_connections).unwrap_or(u32::MAX);
        let wait = self.inner.slots.acquire_many(all);
        let _ = tokio::time::timeout(self.inner.config.close_timeout * 2, wait).await;
    }
}

/// The relay's counters.
#[derive(Default)]
pub(crate) struct Counters {
    open: AtomicU64,
    registrations: AtomicU64,
    handovers: AtomicU64,
    unknown_key: AtomicU64,
    refused_proofs: AtomicU64,
    overloaded: AtomicU64,
    unavailable: AtomicU64,
    frames: AtomicU64,
    bytes: AtomicU64,
    closes: Mutex<BTreeMap<u16, u64>>,
}

impl Counters {
    pub(crate) fn count_registration(&self) {
        self.registrations.fetch_add(1, Relaxed);
    }
    pub(crate) fn count_handover(&self) {
        self.handovers.fetch_add(1, Relaxed);
    }
    pub(crate) fn count_unknown_key(&self) {
        self.unknown_key.fetch_add(1, Relaxed);
    }
    pub(crate) fn count_refused_proof(&self) {
        self.refused_proofs.fetch_add(1, Relaxed);
    }
    pub(crate) fn count_overloaded(&self) {
        self.overloaded.fetch_add(1, Relaxed);
    }
    pub(crate) fn count_unavailable(&self) {
        self.unavailable.fetch_add(1, Relaxed);
    }
    pub(crate) fn count_relayed(&self, bytes: usize) {
        self.frames.fetch_add(1, Relaxed);
        self.bytes.fetch_add(bytes as u64, Relaxed);
    }
    pub(crate) fn count_close(&self, code: u16) {
        *lock(&self.closes).entry(code).or_default() += 1;
    }

    fn snapshot(&self, keys: usize, spares: usize) -> RelayStats {
        RelayStats {
            connections_open: self.open.load(Relaxed),
            keys_registered: keys as u64,
            spares_idle: spares as u64,
            registrations: self.registrations.load(Relaxed),
            handovers: self.handovers.load(Relaxed),
            unknown_key: self.unknown_key.load(Relaxed),
            refused_proofs: self.refused_proofs.load(Relaxed),
            overloaded: self.overloaded.load(Relaxed),
            unavailable: self.unavailable.load(Relaxed),
            frames_relayed: self.frames.load(Relaxed),
            bytes_relayed: self.bytes.load(Relaxed),
            closes_by_code: lock(&self.closes).clone(),
        }
    }
}

/// A copy of the relay's counters at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RelayStats {
    /// Connections open: spares, callers, and both ends of each route.
    pub connections_open: u64,
    /// Keys with a spare idle or lingering (PROTOCOL.md §11.4).
    pub keys_registered: u64,
    /// Idle spares, all keys together.
    pub spares_idle: u64,
    /// Spares registered so far (proofs that held), all keys together.
    pub registrations: u64,
    /// Spares handed over to callers.
    pub handovers: u64,
    /// Callers that named a key no host is registered under.
    pub unknown_key: u64,
    /// Registrations and caller proofs refused.
    pub refused_proofs: u64,
    /// Connections refused because a limit was reached (keys, spares, waiting callers).
    pub overloaded: u64,
    /// Callers that found no free spare in time.
    pub unavailable: u64,
    /// WebSocket data messages copied between the ends of routes.
    pub frames_relayed: u64,
    /// Payload bytes of those messages.
    pub bytes_relayed: u64,
    /// Close codes the relay sent or forwarded to the ends of routes, with their counts.
    pub closes_by_code: BTreeMap<u16, u64>,
}

/// Locks `m`; a panic elsewhere while holding it leaves data that is still consistent here
/// (every critical section is a single insert, remove or count).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Resolves once the relay is shutting down.
pub(crate) async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}
