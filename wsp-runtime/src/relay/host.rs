//! The host: serves its services through a relay on spare connections it keeps registered
//! there. Each spare is one task: dial, register, wait for a hand-over, hand the connection to
//! the server, and start again at once (so a spare is replaced after each hand-over); after a
//! failure it waits per the reconnect policy first (so a host re-registers by itself when the
//! relay comes back).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::SinkExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use crate::client::{DialedWs, dial};
use crate::close::code;
use crate::config::{Config, ReconnectPolicy};
use crate::connection::guarded_io::MessageClock;
use crate::connection::secure_io::SecureIo;
use crate::error::ConnectError;
use crate::peer::Peer;
use crate::relay::secure::respond;
use crate::relay::{Identity, PublicKey, RelayFrame, await_handover, register, relay_name};
use crate::server::{Server, ServerBuilder};
use crate::service::Service;
use crate::stats::StatsSnapshot;
use crate::tls::ClientTls;
use crate::wire::codec::Codec;

/// Default number of spare connections a host keeps registered.
const DEFAULT_SPARES: usize = 2;

/// Where and how a host serves through a relay; given to
/// [`ServerBuilder::bind_relay`].
#[derive(Clone, Debug)]
pub struct RelayOptions {
    url: String,
    /// Other nodes of the same relay cluster, tried in turn after `url`.
    also: Vec<String>,
    identity: Identity,
    spares: usize,
    codec: Codec,
    reconnect: ReconnectPolicy,
    headers: Vec<(String, String)>,
    encrypt: bool,
    tls: ClientTls,
}

impl RelayOptions {
    /// Serve under `identity`'s public key through the relay at `url` (e.g.
    /// `ws://relay.example:8787/`).
    pub fn new(url: impl Into<String>, identity: Identity) -> RelayOptions {
        RelayOptions {
            url: url.into(),
            also: Vec::new(),
            identity,
            spares: DEFAULT_SPARES,
            codec: Codec::MsgPack,
            reconnect: ReconnectPolicy::default(),
            headers: Vec::new(),
            encrypt: true,
            tls: ClientTls::default(),
        }
    }

    /// Another node of the same relay cluster (`wsp_relay::RelayBuilder::cluster`), where
    /// spares register when the current node cannot be reached or refuses them; repeatable,
    /// tried in the order given after the first URL, and round again. Callers reach the host
    /// through any node of the cluster, whichever node its spares are at.
    pub fn also(mut self, url: impl Into<String>) -> Self {
        self.also.push(url.into());
        self
    }

    /// End-to-end encryption of every relayed connection (default on, PROTOCOL.md §12):
    /// callers must encrypt too. Off, the relay can read the frames it copies.
    pub fn encrypt(mut self, on: bool) -> Self {
        self.encrypt = on;
        self
    }

    /// How many spare connections to keep registered (default 2, at least 1). More spares
    /// serve more callers arriving at the same moment without their waiting for a new one.
    pub fn spares(mut self, n: usize) -> Self {
        self.spares = n.max(1);
        self
    }

    /// The codec of the spares (default MessagePack); callers must use the same one.
    pub fn codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }

    /// When a spare is re-opened after a failure (the relay gone, a refused registration);
    /// after a hand-over the replacement is opened at once.
    pub fn reconnect(mut self, policy: ReconnectPolicy) -> Self {
        self.reconnect = policy;
        self
    }

    /// Whom to trust when the relay's URL is `wss://` (default: the Mozilla roots).
    pub fn tls(mut self, tls: ClientTls) -> Self {
        self.tls = tls;
        self
    }

    /// An extra HTTP header on each spare's WebSocket upgrade (e.g. a token for the relay).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// Who is at the other end of a relayed connection, as its handlers see it through
/// [`CallContext::data`](crate::CallContext::data) (and [`Peer::data`]): on a host, the caller;
/// on a caller, the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayPeer {
    /// The other end's public key: on an encrypted connection as the end-to-end handshake
    /// proved it; on a plain one as the relay verified it (a host's target is the key the
    /// caller asked for). `None` for an anonymous caller.
    pub key: Option<PublicKey>,
    /// Whether the connection is end-to-end encrypted (PROTOCOL.md §12).
    pub encrypted: bool,
}

impl ServerBuilder {
    /// Serves this builder's services through a relay instead of a listening socket: keeps
    /// `relay`'s spare connections registered under its key pair and serves each caller the
    /// relay hands one to. Returns once the first spare is registered; a relay that cannot be
    /// reached or refuses the registration is an error here (later failures are retried per
    /// the reconnect policy).
    pub async fn bind_relay(self, relay: RelayOptions) -> Result<RelayHost, ConnectError> {
        let config = self.connection_config().clone();
        let server = self.detached();
        let shared = Arc::new(HostShared {
            key: relay.identity.public_key(),
            options: relay,
            config,
            server,
            registered: watch::channel(0).0,
            stop: watch::channel(false).0,
            handovers: AtomicU64::new(0),
            tasks: Mutex::new(Vec::new()),
            node: AtomicUsize::new(0),
        });
        let first = tokio::time::timeout(shared.config.handshake_timeout, shared.open_spare())
            .await
            .map_err(|_| ConnectError::Timeout)??;
        let mut first = Some(first);
        let tasks = (0..shared.options.spares)
            .map(|_| tokio::spawn(keep_spare(shared.clone(), first.take())))
            .collect();
        *lock(&shared.tasks) = tasks;
        Ok(RelayHost { shared })
    }
}

struct HostShared {
    options: RelayOptions,
    key: PublicKey,
    config: Config,
    server: Server,
    /// Spares registered and idle right now.
    registered: watch::Sender<usize>,
    stop: watch::Sender<bool>,
    handovers: AtomicU64,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Which of the relay's URLs spares register at now (an index into `url` and `also`).
    node: AtomicUsize,
}

/// A registered spare: its socket, the socket's message clock, the relay's ping interval.
type Spare = (DialedWs, Arc<MessageClock>, std::time::Duration);

impl HostShared {
    /// Registers a spare at the current node; when that fails, the next spare tries the next
    /// node (if there are several).
    async fn open_spare(&self) -> Result<Spare, ConnectError> {
        let o = &self.options;
        let at = self.node.load(Ordering::Relaxed);
        let url = if at == 0 { &o.url } else { &o.also[at - 1] };
        let opened = async {
            let (mut ws, clock, uri) = dial(url, o.codec, &o.headers, &self.config, &o.tls).await?;
            let ping = register(&mut ws, o.codec, &relay_name(&uri), &o.identity).await?;
            Ok((ws, clock, ping))
        }
        .await;
        if opened.is_err() {
            // Only the first spare to fail here moves on, not every spare failing at once.
            let next = (at + 1) % (o.also.len() + 1);
            let _ = self
                .node
                .compare_exchange(at, next, Ordering::Relaxed, Ordering::Relaxed);
        }
        opened
    }
}

/// One spare's life, over and over: registered, handed over, replaced.
async fn keep_spare(shared: Arc<HostShared>, mut first: Option<Spare>) {
    let mut stop = shared.stop.subscribe();
    let codec = shared.options.codec;
    let mut attempt = 0u32;
    loop {
        if *stop.borrow_and_update() {
            return;
        }
        let spare = match first.take() {
            Some(spare) => Ok(spare),
            None => tokio::time::timeout(shared.config.handshake_timeout, shared.open_spare())
                .await
                .unwrap_or(Err(ConnectError::Timeout)),
        };
        let (mut ws, clock, ping) = match spare {
            Ok(spare) => spare,
            Err(e) => {
                tracing::debug!(error = %e, attempt, "relay spare: registration failed");
                if !retry(&shared.options.reconnect, &mut attempt, &mut stop).await {
                    return;
                }
                continue;
            }
        };
        attempt = 0;
        shared.registered.send_modify(|n| *n += 1);
        // Three missed pings mean the relay is gone.
        let handed = tokio::select! {
            r = await_handover(&mut ws, codec, ping * 3) => r,
            _ = stopped(&mut stop) => {
                shared.registered.send_modify(|n| *n -= 1);
                let frame = CloseFrame { code: code::GOING_AWAY.into(), reason: "host closed".into() };
                let _ = tokio::time::timeout(
                    shared.config.close_timeout,
                    ws.close(Some(frame)),
                ).await;
                return;
            }
        };
        shared.registered.send_modify(|n| *n -= 1);
        match handed {
            Ok(caller) => {
                if let Err(e) = ws.send(RelayFrame::Ready.encode(codec)).await {
                    tracing::debug!(error = %e, "relay spare: lost at hand-over");
                    continue;
                }
                shared.handovers.fetch_add(1, Ordering::Relaxed);
                if !shared.options.encrypt {
                    let data = Arc::new(RelayPeer {
                        key: caller,
                        encrypted: false,
                    });
                    shared.server.attach_dialed(ws, codec, Some(data), clock);
                    continue;
                }
                // The handshake runs on its own task: the replacement spare need not wait.
                let shared = shared.clone();
                tokio::spawn(async move {
                    let identity = &shared.options.identity;
                    let handshake = respond(&mut ws, identity);
                    match tokio::time::timeout(shared.config.handshake_timeout, handshake).await {
                        Ok(Ok((cipher, caller))) => {
                            let data = Arc::new(RelayPeer {
                                key: caller,
                                encrypted: true,
                            });
                            let max = shared.config.get_max_message_size();
                            let ws = SecureIo::new(ws, cipher, max);
                            shared.server.attach_dialed(ws, codec, Some(data), clock);
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, "relay spare: e2e handshake failed")
                        }
                        Err(_) => {
                            tracing::debug!("relay spare: e2e handshake timed out");
                            let frame = CloseFrame {
                                code: code::HANDSHAKE_TIMEOUT.into(),
                                reason: "e2e: no handshake within the handshake timeout".into(),
                            };
                            let _ = tokio::time::timeout(
                                shared.config.close_timeout,
                                ws.send(Message::Close(Some(frame))),
                            )
                            .await;
                        }
                    }
                });
            }
            Err(e) => {
                tracing::debug!(error = %e, "relay spare: lost while waiting");
                if !retry(&shared.options.reconnect, &mut attempt, &mut stop).await {
                    return;
                }
            }
        }
    }
}

/// Waits before the next attempt; `false` when the policy gives up or the host is closing.
async fn retry(
    policy: &ReconnectPolicy,
    attempt: &mut u32,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    if !policy.enabled || policy.max_attempts.is_some_and(|max| *attempt >= max) {
        return false;
    }
    let delay = policy.delay(*attempt);
    *attempt += 1;
    tokio::select! {
        _ = tokio::time::sleep(delay) => true,
        _ = stopped(stop) => false,
    }
}

/// Resolves once the host is closing.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// A host serving through a relay (see [`ServerBuilder::bind_relay`]): its services are
/// called by whoever the relay connects to it, one relayed connection per caller. Cheap to
/// clone.
#[derive(Clone)]
pub struct RelayHost {
    shared: Arc<HostShared>,
}

impl std::fmt::Debug for RelayHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayHost")
            .field("relay", &self.shared.options.url)
            .field("key", &self.shared.key)
            .finish()
    }
}

impl RelayHost {
    /// The public key callers name this host by.
    pub fn public_key(&self) -> PublicKey {
        self.shared.key
    }

    /// The URL of the relay (or the node of a relay cluster) its spares register at now.
    pub fn relay_url(&self) -> &str {
        let o = &self.shared.options;
        match self.shared.node.load(Ordering::Relaxed) {
            0 => &o.url,
            n => &o.also[n - 1],
        }
    }

    /// Spare connections registered at the relay and idle right now, as it changes (to wait
    /// until the host is fully registered, or to watch it re-register after the relay was
    /// away).
    pub fn watch_spares(&self) -> watch::Receiver<usize> {
        self.shared.registered.subscribe()
    }

    /// Spares handed over to callers so far.
    pub fn handovers(&self) -> u64 {
        self.shared.handovers.load(Ordering::Relaxed)
    }

    /// The relayed connections open now, one per caller.
    pub fn connections(&self) -> Vec<Peer> {
        self.shared.server.connections()
    }

    /// Adds (or replaces) a service on all connections, current and future.
    pub fn add_service(&self, svc: Arc<dyn Service>) {
        self.shared.server.add_service(svc);
    }

    /// Removes a service; `true` if it was there.
    pub fn remove_service(&self, name: &str) -> bool {
        self.shared.server.remove_service(name)
    }

    /// Totals over all relayed connections.
    pub fn stats(&self) -> StatsSnapshot {
        self.shared.server.stats()
    }

    /// Stops registering spares (closing the idle ones with 1001), closes every relayed
    /// connection with 1001 and returns once all are closed.
    pub async fn close(&self) {
        self.shared.stop.send_replace(true);
        let tasks = std::mem::take(&mut *lock(&self.shared.tasks));
        for t in tasks {
            let _ = t.await;
        }
        self.shared.server.close().await;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
