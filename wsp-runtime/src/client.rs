//! [`Client`]: connects to a server, reconnects with backoff, and keeps its services across
//! reconnects.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use futures_util::future::BoxFuture;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue, Uri};

use crate::call::{Caller, Link};
use crate::close::{CloseError, CloseInfo, code};
use crate::config::{Config, ReconnectPolicy};
use crate::connection::guarded_io::{GuardedIo, MessageClock};
use crate::connection::secure_io::SecureIo;
use crate::connection::{self, ConnInner, ConnSetup};
use crate::error::{CallError, ConnectError};
use crate::peer::Peer;
use crate::relay::{self, Identity, PublicKey, RelayPeer};
use crate::service::{Observer, Registry, Service, Services};
use crate::stats::{Counters, StatsSnapshot};
use crate::tls::{ClientTls, MaybeTls};
use crate::wire::codec::Codec;

/// The state of a client's link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    /// Not connected (never connected, disconnected by the application, or gave up).
    Disconnected,
    /// Connecting for the first time.
    Connecting,
    /// Connected.
    Connected,
    /// The link dropped; retrying with backoff.
    Reconnecting,
    /// Closed by the application for good.
    Closed,
}

/// Builds a [`Client`].
pub struct ClientBuilder {
    url: String,
    config: Config,
    codec: Codec,
    reconnect: ReconnectPolicy,
    retry_first_connect: bool,
    fail_fast: bool,
    services: Vec<Arc<dyn Service>>,
    observer: Option<Observer>,
    headers: Vec<(String, String)>,
    relay: Option<relay::Route>,
    tls: ClientTls,
    headers_from: Option<HeaderFn>,
}

/// Headers computed at each connect (see [`ClientBuilder::headers_from`]).
type HeaderFn = Arc<dyn Fn() -> BoxFuture<'static, Vec<(String, String)>> + Send + Sync>;

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// Limits and timing.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// The codec to ask for (default MessagePack); it is the only subprotocol offered.
    pub fn codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }

    /// The reconnect policy (default: on, 200 ms · 1.15ⁿ up to 30 s, ±20 % jitter); it also
    /// paces the retries of a failed first connect (see
    /// [`retry_first_connect`](Self::retry_first_connect)).
    pub fn reconnect(mut self, policy: ReconnectPolicy) -> Self {
        self.reconnect = policy;
        self
    }

    /// Whether [`Client::connect`] retries a failed first connect under the
    /// [reconnect policy](Self::reconnect) (default `true`, as the TypeScript client does): a
    /// client started before its server, or during a deploy, connects once the server is up.
    /// Only failures that retrying can fix are retried (refused TCP connections, resets, the
    /// handshake timeout, HTTP 5xx, 408 and 429); an answer that would only be repeated fails
    /// at once (another HTTP refusal such as 401 or 403, a TLS certificate failure, an
    /// unsupported subprotocol, a malformed URL or header, a relay's refusal, a failed
    /// end-to-end handshake). With the policy's [`max_attempts`](ReconnectPolicy::max_attempts)
    /// retries spent (or reconnecting [disabled](ReconnectPolicy::disabled)), `connect` returns
    /// the last error. `false`: the first failure is returned at once.
    pub fn retry_first_connect(mut self, on: bool) -> Self {
        self.retry_first_connect = on;
        self
    }

    /// `true`: calls made while disconnected fail at once with
    /// [`CallError::NotConnected`]; `false` (default): while a connect or reconnect is running
    /// they wait for the link up to their deadline (with none running, before the first
    /// [`connect`](Client::connect) or after [`disconnect`](Client::disconnect), they fail at
    /// once with [`CallError::NotConnected`] either way).
    pub fn fail_fast(mut self, on: bool) -> Self {
        self.fail_fast = on;
        self
    }

    /// A service the client offers to the server (server → client calls); kept across
    /// reconnects.
    pub fn service(mut self, svc: Arc<dyn Service>) -> Self {
        self.services.push(svc);
        self
    }

    /// A hook seeing every incoming call and notification.
    pub fn observer(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    /// An extra HTTP header sent with every upgrade request (e.g. a token for the server's
    /// accept hook).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Extra HTTP headers computed anew at every connect and reconnect (a bearer token from a
    /// store that refreshes it), added after those of [`header`](Self::header). The call
    /// counts against the handshake timeout.
    pub fn headers_from<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Vec<(String, String)>> + Send + 'static,
    {
        self.headers_from = Some(Arc::new(move || Box::pin(f())));
        self
    }

    /// Whom to trust on `wss://` URLs (default: the Mozilla roots, [`ClientTls::webpki`]); add
    /// a private CA with [`ClientTls::add_root_pem`].
    pub fn tls(mut self, tls: ClientTls) -> Self {
        self.tls = tls;
        self
    }

    /// Proves this key pair to the relay when connecting through one (see
    /// [`Client::via_relay`]), so the target learns who calls; without it the caller is
    /// anonymous. No effect on a direct connection.
    pub fn identity(mut self, identity: Identity) -> Self {
        if let Some(route) = &mut self.relay {
            route.identity = Some(identity);
        }
        self
    }

    /// End-to-end encryption through the relay (default on, PROTOCOL.md §12): the target must
    /// encrypt too, and proves in the handshake that it holds the key it is called by. No
    /// effect on a direct connection.
    pub fn encrypt(mut self, on: bool) -> Self {
        if let Some(route) = &mut self.relay {
            route.encrypt = on;
        }
        self
    }

    /// The client, not yet connected.
    pub fn build(self) -> Client {
        let registry = Registry::default();
        for s in self.services {
            registry.add(s);
        }
        Client {
            shared: Arc::new(ClientShared {
                url: self.url,
                headers: self.headers,
                relay: self.relay,
                tls: self.tls,
                headers_from: self.headers_from,
                config: Arc::new(self.config),
                codec: self.codec,
                reconnect: self.reconnect,
                retry_first_connect: self.retry_first_connect,
                fail_fast: self.fail_fast,
                registry: Arc::new(registry),
                observer: self.observer,
                current: ArcSwapOption::empty(),
                state: watch::channel(ConnectionState::Disconnected).0,
                stats: Arc::new(Counters::new()),
                stopped: AtomicBool::new(true),
                closed: AtomicBool::new(false),
                supervisor: Mutex::new(None),
                last_close: Mutex::new(None),
                next_conn_id: AtomicU64::new(1),
                connect_lock: tokio::sync::Mutex::new(()),
                stop_epoch: AtomicU64::new(0),
                stop_notify: tokio::sync::Notify::new(),
            }),
        }
    }
}

pub(crate) struct ClientShared {
    url: String,
    headers: Vec<(String, String)>,
    /// The target to ask the relay at `url` for, when connecting through a relay.
    relay: Option<relay::Route>,
    tls: ClientTls,
    headers_from: Option<HeaderFn>,
    pub(crate) config: Arc<Config>,
    pub(crate) codec: Codec,
    reconnect: ReconnectPolicy,
    retry_first_connect: bool,
    fail_fast: bool,
    registry: Arc<Registry>,
    observer: Option<Observer>,
    current: ArcSwapOption<ConnInner>,
    state: watch::Sender<ConnectionState>,
    stats: Arc<Counters>,
    /// `true` while the application does not want a link (before connect, after disconnect).
    stopped: AtomicBool,
    /// `true` once closed for good.
    closed: AtomicBool,
    supervisor: Mutex<Option<JoinHandle<()>>>,
    last_close: Mutex<Option<CloseInfo>>,
    next_conn_id: AtomicU64,
    connect_lock: tokio::sync::Mutex<()>,
    /// Raised (and `stop_notify` notified) by `disconnect` and `close` before they take the
    /// connect lock, so that a `connect` retrying its first connect gives way to them.
    stop_epoch: AtomicU64,
    stop_notify: tokio::sync::Notify,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Link for ClientShared {
    fn codec(&self) -> Codec {
        self.codec
    }

    fn default_deadline(&self) -> Option<Duration> {
        self.config.default_deadline
    }

    fn current(&self) -> Option<Arc<ConnInner>> {
        self.current.load_full().filter(|c| !c.is_closing())
    }

    fn wait(&self, deadline: Option<Instant>) -> BoxFuture<'_, Result<Arc<ConnInner>, CallError>> {
        Box::pin(self.connection(deadline))
    }

    fn unavailable(&self) -> CallError {
        if self.closed.load(Ordering::Acquire) {
            CallError::Closed
        } else {
            CallError::NotConnected
        }
    }
}

impl ClientShared {
    /// The current connection, waiting for one per the disconnected-call policy: a call waits
    /// only while a connect or reconnect is running (or the link is being replaced); with none
    /// running (`connect` never called, disconnected, given up) it fails at once with
    /// [`CallError::NotConnected`], as in the TypeScript runtime (`docs/behaviour.md`).
    pub(crate) async fn connection(
        &self,
        deadline: Option<Instant>,
    ) -> Result<Arc<ConnInner>, CallError> {
        if let Some(c) = self.current.load_full() {
            if !c.is_closing() {
                return Ok(c);
            }
            // The link is going away and no other will follow by itself: waiting could last
            // forever, so the call fails the way calls in flight on that link do.
            if !self.reconnect.enabled {
                return Err(c.closed_error());
            }
        }
        let mut rx = self.state.subscribe();
        loop {
            if let Some(c) = self.current.load_full() {
                if !c.is_closing() {
                    return Ok(c);
                }
            }
            if self.closed.load(Ordering::Acquire) {
                return Err(CallError::Closed);
            }
            if self.fail_fast || *rx.borrow_and_update() == ConnectionState::Disconnected {
                return Err(CallError::NotConnected);
            }
            let changed = rx.changed();
            match deadline {
                Some(d) => match tokio::time::timeout_at(d, changed).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return Err(CallError::Closed),
                    Err(_) => return Err(CallError::DeadlineExceeded),
                },
                None => {
                    if changed.await.is_err() {
                        return Err(CallError::Closed);
                    }
                }
            }
        }
    }

    async fn open(self: &Arc<Self>) -> Result<Arc<ConnInner>, ConnectError> {
        let connect = async {
            let headers = match &self.headers_from {
                Some(f) => {
                    let mut all = self.headers.clone();
                    all.extend(f().await);
                    std::borrow::Cow::Owned(all)
                }
                None => std::borrow::Cow::Borrowed(&self.headers),
            };
            let (mut ws, clock, uri) =
                dial(&self.url, self.codec, &headers, &self.config, &self.tls).await?;
            let mut cipher = None;
            if let Some(route) = &self.relay {
                let name = relay::relay_name(&uri);
                relay::ask_for_target(&mut ws, self.codec, &name, route).await?;
                if route.encrypt {
                    let id = route.identity.as_ref();
                    cipher = Some(relay::secure::initiate(&mut ws, id, &route.target).await?);
                }
            }
            Ok::<_, ConnectError>((ws, clock, cipher))
        };
        let (ws, message_clock, cipher) =
            tokio::time::timeout(self.config.handshake_timeout, connect)
                .await
                .map_err(|_| ConnectError::Timeout)??;
        // On a relayed connection the callbacks this client serves learn who the target is.
        let data: Option<crate::ConnData> = self.relay.as_ref().map(|route| {
            Arc::new(RelayPeer {
                key: Some(route.target),
                encrypted: cipher.is_some(),
            }) as crate::ConnData
        });
        let setup = ConnSetup {
            id: self.next_conn_id.fetch_add(1, Ordering::Relaxed),
            codec: self.codec,
            config: self.config.clone(),
            stats_parent: Some(self.stats.clone()),
            data,
            dispatch: Arc::new(Services::new(
                Some(self.registry.clone()),
                self.observer.clone(),
            )),
            on_close: None,
            message_clock: Some(message_clock),
        };
        Ok(match cipher {
            Some(cipher) => {
                let max = self.config.get_max_message_size();
                connection::start(SecureIo::new(ws, cipher, max), setup)
            }
            None => connection::start(ws, setup),
        })
    }

    fn set_current(&self, conn: Option<Arc<ConnInner>>, state: ConnectionState) {
        self.current.store(conn);
        self.state.send_replace(state);
    }
}

/// A WebSocket this side dialed, under the stall watches of [`GuardedIo`].
pub(crate) type DialedWs = WebSocketStream<GuardedIo<MaybeTls>>;

/// Opens a WebSocket to `url` offering `codec`'s subprotocol only, with the extra `headers`;
/// returns it with its message clock and the URL as parsed. Not bounded in time: the caller
/// bounds it together with whatever handshake follows.
pub(crate) async fn dial(
    url: &str,
    codec: Codec,
    headers: &[(String, String)],
    config: &Config,
    tls: &ClientTls,
) -> Result<(DialedWs, Arc<MessageClock>, Uri), ConnectError> {
    let mut req = url.into_client_request()?;
    for (k, v) in headers {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|e| ConnectError::Header(e.to_string()))?;
        let value = HeaderValue::from_str(v).map_err(|e| ConnectError::Header(e.to_string()))?;
        req.headers_mut().append(name, value);
    }
    req.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static(codec.subprotocol()),
    );
    let uri = req.uri().clone();
    let (io, clock) = connect_tcp(&req, config, tls).await?;
    let (ws, resp) =
        tokio_tungstenite::client_async_with_config(req, io, Some(config.websocket_config()))
            .await?;
    let chosen = resp
        .headers()
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if Codec::from_subprotocol(chosen) != Some(codec) {
        return Err(ConnectError::Subprotocol(chosen.to_owned()));
    }
    Ok((ws, clock, uri))
}

/// Opens the TCP connection to a `ws://` or `wss://` URL (TLS with `tls`'s roots), with the
/// stall watches of [`GuardedIo`].
async fn connect_tcp(
    req: &tokio_tungstenite::tungstenite::handshake::client::Request,
    config: &Config,
    tls: &ClientTls,
) -> Result<(GuardedIo<MaybeTls>, Arc<MessageClock>), ConnectError> {
    use tokio_tungstenite::tungstenite::error::UrlError;
    let uri = req.uri();
    let secure = match uri.scheme_str() {
        Some("ws") => false,
        Some("wss") => true,
        _ => return Err(WsError::Url(UrlError::UnsupportedUrlScheme).into()),
    };
    let host = uri.host().ok_or(WsError::Url(UrlError::NoHostName))?;
    // An IPv6 literal comes in brackets.
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
    let tcp = TcpStream::connect((host, port))
        .await
        .map_err(WsError::from)?;
    tcp.set_nodelay(true).map_err(WsError::from)?;
    let io = if secure {
        tls.connect(host, tcp)
            .await
            .map_err(|e| ConnectError::Tls(format!("{host}: {e}")))?
    } else {
        MaybeTls::Plain(tcp)
    };
    Ok(GuardedIo::new(io, config.write_timeout))
}

/// Set while [`Client::connect`] runs: if its future is dropped first, the client goes back to
/// disconnected.
struct Unfinished<'a>(Option<&'a Arc<ClientShared>>);

impl Drop for Unfinished<'_> {
    fn drop(&mut self) {
        if let Some(s) = self.0.take() {
            s.stopped.store(true, Ordering::Release);
            if !s.closed.load(Ordering::Acquire) {
                s.state.send_replace(ConnectionState::Disconnected);
            }
        }
    }
}

/// Whether a failed first connect may succeed when tried again (see
/// [`ClientBuilder::retry_first_connect`]): a transport failure may pass; an answer from the
/// server, the relay or the certificate check would only be repeated.
fn worth_retrying(e: &ConnectError) -> bool {
    match e {
        ConnectError::WebSocket(ws) => match ws {
            WsError::Io(_)
            | WsError::ConnectionClosed
            | WsError::AlreadyClosed
            | WsError::Protocol(_) => true,
            WsError::Http(resp) => {
                let status = resp.status().as_u16();
                status >= 500 || status == 408 || status == 429
            }
            _ => false,
        },
        ConnectError::Timeout => true,
        // A TLS failure (an untrusted or mismatched certificate), an unsupported subprotocol,
        // a malformed header, the application's close, a relay's refusal or broken protocol,
        // a failed end-to-end handshake, and whatever else may be added.
        _ => false,
    }
}

/// Keeps the link up: waits for the connection to close, then reconnects with backoff unless
/// the application stopped it.
async fn supervise(shared: Arc<ClientShared>, mut conn: Arc<ConnInner>) {
    loop {
        let info = conn.wait_closed().await;
        *lock(&shared.last_close) = Some(info);
        if shared.stopped.load(Ordering::Acquire) {
            return;
        }
        if !shared.reconnect.enabled {
            shared.set_current(None, ConnectionState::Disconnected);
            return;
        }
        shared.set_current(None, ConnectionState::Reconnecting);
        let mut attempt = 0u32;
        conn = loop {
            tokio::time::sleep(shared.reconnect.delay(attempt)).await;
            attempt += 1;
            if shared.stopped.load(Ordering::Acquire) {
                return;
            }
            match shared.open().await {
                Ok(c) => break c,
                Err(e) => {
                    tracing::debug!(error = %e, attempt, "reconnect failed");
                    if shared
                        .reconnect
                        .max_attempts
                        .is_some_and(|max| attempt >= max)
                    {
                        shared.set_current(None, ConnectionState::Disconnected);
                        return;
                    }
                }
            }
        };
        if shared.stopped.load(Ordering::Acquire) {
            conn.initiate_close(code::NORMAL, "client disconnected");
            return;
        }
        shared.stats.reconnects.fetch_add(1, Ordering::Relaxed);
        conn.count_reconnect();
        shared.set_current(Some(conn.clone()), ConnectionState::Connected);
    }
}

/// A wsp client. Building it does not connect; [`connect`](Self::connect) does. After the first
/// successful connect it reconnects by itself (per its [`ReconnectPolicy`]) whenever the link
/// drops, until [`disconnect`](Self::disconnect) or [`close`](Self::close). Its services survive
/// reconnects. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    shared: Arc<ClientShared>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.shared.url)
            .field("state", &self.state())
            .finish()
    }
}

impl Client {
    /// A builder for a client of `url` (e.g. `ws://127.0.0.1:8080/`).
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            url: url.into(),
            config: Config::default(),
            codec: Codec::MsgPack,
            reconnect: ReconnectPolicy::default(),
            retry_first_connect: true,
            fail_fast: false,
            services: Vec::new(),
            observer: None,
            headers: Vec::new(),
            relay: None,
            tls: ClientTls::default(),
            headers_from: None,
        }
    }

    /// A builder for a client that reaches the host named by `target` through the relay at
    /// `relay_url` (PROTOCOL.md §11). Once connected it is an ordinary client: generated
    /// clients wrap it, calls go both ways, and it reconnects (through the relay) by itself.
    /// A relay that does not know `target` fails [`connect`](Self::connect) at once with
    /// [`ConnectError::Relay`] and code [`close_code::RELAY_UNKNOWN_KEY`](crate::close_code).
    pub fn via_relay(relay_url: impl Into<String>, target: PublicKey) -> ClientBuilder {
        let mut builder = Client::builder(relay_url);
        builder.relay = Some(relay::Route {
            target,
            identity: None,
            encrypt: true,
        });
        builder
    }

    /// Connects (once; returns at once if already connected). A failed first connect is retried
    /// with backoff under the client's [`ReconnectPolicy`] while the failure is one retrying can
    /// fix, and the last error is returned once the policy's attempts are spent (see
    /// [`ClientBuilder::retry_first_connect`]); [`disconnect`](Self::disconnect) or
    /// [`close`](Self::close) meanwhile make it return [`ConnectError::Closed`]. While it
    /// retries the state is [`ConnectionState::Connecting`].
    pub async fn connect(&self) -> Result<(), ConnectError> {
        let s = &self.shared;
        let epoch = s.stop_epoch.load(Ordering::Acquire);
        let _guard = s.connect_lock.lock().await;
        if s.closed.load(Ordering::Acquire) {
            return Err(ConnectError::Closed);
        }
        if s.current.load().as_ref().is_some_and(|c| !c.is_closing()) {
            return Ok(());
        }
        if let Some(t) = lock(&s.supervisor).take() {
            t.abort();
        }
        s.stopped.store(false, Ordering::Release);
        s.state.send_replace(ConnectionState::Connecting);
        // A connect dropped before it is done leaves the client disconnected, not connecting.
        let mut unfinished = Unfinished(Some(s));
        let mut retries = 0u32;
        let outcome = loop {
            // Created before the epoch is checked, so no stop in between is missed.
            let stop = s.stop_notify.notified();
            if s.stop_epoch.load(Ordering::Acquire) != epoch {
                break Err(ConnectError::Closed);
            }
            let e = tokio::select! {
                r = s.open() => match r {
                    Ok(conn) => break Ok(conn),
                    Err(e) => e,
                },
                () = stop => break Err(ConnectError::Closed),
            };
            let policy = &s.reconnect;
            let give_up = !s.retry_first_connect
                || !policy.enabled
                || !worth_retrying(&e)
                || policy.max_attempts.is_some_and(|max| retries >= max);
            if give_up {
                break Err(e);
            }
            tracing::debug!(error = %e, attempt = retries, "first connect failed; retrying");
            let stop = s.stop_notify.notified();
            if s.stop_epoch.load(Ordering::Acquire) != epoch {
                break Err(ConnectError::Closed);
            }
            tokio::select! {
                () = tokio::time::sleep(policy.delay(retries)) => {}
                () = stop => break Err(ConnectError::Closed),
            }
            retries += 1;
        };
        unfinished.0 = None;
        match outcome {
            Ok(conn) => {
                s.set_current(Some(conn.clone()), ConnectionState::Connected);
                *lock(&s.supervisor) = Some(tokio::spawn(supervise(s.clone(), conn)));
                Ok(())
            }
            Err(e) => {
                s.stopped.store(true, Ordering::Release);
                if !s.closed.load(Ordering::Acquire) {
                    s.state.send_replace(ConnectionState::Disconnected);
                }
                Err(e)
            }
        }
    }

    /// Makes a `connect` that is retrying its first connect give up (it holds the connect
    /// lock meanwhile).
    fn interrupt_connect(&self) {
        self.shared.stop_epoch.fetch_add(1, Ordering::AcqRel);
        self.shared.stop_notify.notify_waiters();
    }

    async fn stop(
        &self,
        code: u16,
        reason: &str,
        final_state: ConnectionState,
    ) -> Option<CloseInfo> {
        let s = &self.shared;
        s.stopped.store(true, Ordering::Release);
        if let Some(t) = lock(&s.supervisor).take() {
            t.abort();
        }
        let conn = s.current.swap(None);
        let info = match conn {
            Some(c) => {
                c.close_by_application(code, reason);
                let info = c.wait_closed().await;
                *lock(&s.last_close) = Some(info.clone());
                Some(info)
            }
            None => None,
        };
        s.state.send_replace(final_state);
        info
    }

    /// Closes the link with 1000 and stops reconnecting; [`connect`](Self::connect) may be
    /// called again later. Idempotent.
    pub async fn disconnect(&self) {
        self.interrupt_connect();
        let _guard = self.shared.connect_lock.lock().await;
        if self.shared.closed.load(Ordering::Acquire) {
            return;
        }
        self.stop(
            code::NORMAL,
            "client disconnected",
            ConnectionState::Disconnected,
        )
        .await;
    }

    /// Closes the client for good with `code` and `reason` (shortened to 123 bytes): calls fail
    /// with [`CallError::Closed`] afterwards. Returns how the connection closed (`Ok` for
    /// 1000). Idempotent: later calls return the first outcome.
    pub async fn close(&self, code: u16, reason: &str) -> Result<CloseInfo, CloseError> {
        self.interrupt_connect();
        let _guard = self.shared.connect_lock.lock().await;
        if !self.shared.closed.swap(true, Ordering::AcqRel) {
            self.stop(code, reason, ConnectionState::Closed).await;
        }
        self.last_close()
            .unwrap_or_else(|| CloseInfo::new(code, reason))
            .into_result()
    }

    /// Resolves once the client is closed for good or stopped (disconnected by the
    /// application, reconnect off or given up), with the last connection's close outcome.
    pub async fn closed(&self) -> Result<CloseInfo, CloseError> {
        let mut rx = self.shared.state.subscribe();
        let _ = rx
            .wait_for(|s| {
                matches!(s, ConnectionState::Closed)
                    || (matches!(s, ConnectionState::Disconnected)
                        && self.shared.current.load().is_none())
            })
            .await;
        self.last_close()
            .unwrap_or_else(|| CloseInfo::new(code::ABNORMAL, "not connected"))
            .into_result()
    }

    /// The close outcome of the most recent connection, if one closed.
    pub fn last_close(&self) -> Option<CloseInfo> {
        lock(&self.shared.last_close).clone()
    }

    /// The current link state.
    pub fn state(&self) -> ConnectionState {
        *self.shared.state.borrow()
    }

    /// A receiver of link state changes.
    pub fn watch_state(&self) -> watch::Receiver<ConnectionState> {
        self.shared.state.subscribe()
    }

    /// A cloneable caller that uses whatever connection is current at each call.
    pub fn caller(&self) -> Caller {
        Caller::for_link(self.shared.clone())
    }

    /// The current connection, if connected.
    pub fn peer(&self) -> Option<Peer> {
        self.shared.current.load_full().map(Peer::from_inner)
    }

    crate::call::caller_surface!();

    /// Adds (or replaces) a service offered to the server; applies to the current and future
    /// connections.
    pub fn add_service(&self, svc: Arc<dyn Service>) {
        self.shared.registry.add(svc);
    }

    /// Removes a service; `true` if it was there.
    pub fn remove_service(&self, name: &str) -> bool {
        self.shared.registry.remove(name)
    }

    /// Removes all services.
    pub fn clear_services(&self) {
        self.shared.registry.clear();
    }

    /// Sets the client's statistics as `wsp_client_<field>` metrics (the `metrics` feature).
    #[cfg(feature = "metrics")]
    pub fn export_metrics(&self) {
        crate::metering::export("client", &self.stats());
    }

    /// Counters summed over all connections of this client (reconnects included).
    pub fn stats(&self) -> StatsSnapshot {
        self.shared.stats.snapshot()
    }
}
