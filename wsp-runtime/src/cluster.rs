//! Several servers as one, through NATS (the `cluster` feature; PROTOCOL.md §13): a broadcast
//! reaches the clients of every node, and a call or notification reaches one client by its
//! [`ClientAddress`] or by an application key, from whichever node makes it.
//!
//! - Each node subscribes to `wsp.server.node.<node>` (calls and notifications for its
//!   connections, by connection id) and `wsp.server.broadcast`.
//! - [`ServerCluster::bind_key`] queue-subscribes a connection to `wsp.server.key.<hex key>`
//!   until it closes.
//! - A call is a NATS request carrying the method and the MessagePack argument array; the node
//!   holding the connection makes the call on it untyped and replies with the MessagePack
//!   result or the error. *No responders* (no such node, or no connection holds the key) is
//!   [`CallError::NotConnected`] at once.
//!
//! Only unary calls and notifications cross nodes; a stream on a remote client's [`Caller`]
//! fails with [`CallError::Unavailable`].

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_nats::{Client as Nats, Message, Request, RequestErrorKind, Subject};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::call::{Caller, Remote};
use crate::error::CallError;
use crate::peer::Peer;
use crate::server::{Server, ServerInner};
use crate::untyped::Untyped;
use crate::wire::codec::{Codec, Payload};
use crate::{CallOptions, Value};

const BROADCAST: &str = "wsp.server.broadcast";
/// The queue group of key subscriptions: one connection holding a key answers.
const QUEUE: &str = "wsp-server";
/// Nesting accepted in results and error details coming from another node.
const MAX_DEPTH: usize = 64;
/// How long a call to a remote client may take when it has no deadline of its own.
const NO_DEADLINE: Duration = Duration::from_secs(24 * 60 * 60);
/// Broadcasts waiting for NATS, at most.
const BROADCAST_QUEUE: usize = 1024;

// Request kinds.
const CALL: u8 = 0;
const NOTIFY: u8 = 1;
// Reply statuses.
const OK: u8 = 0;
const ERROR: u8 = 1;
const UNKNOWN: u8 = 2;
const DISCONNECTED: u8 = 3;

/// Where one client is connected in a cluster: the node and the connection's id there.
/// Written `<node as 16 hex digits>-<connection id>`, so it can be stored and passed around.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientAddress {
    /// The server node (random per process).
    pub node: u64,
    /// The connection's id at that node ([`Peer::id`]).
    pub connection: u64,
}

impl fmt::Display for ClientAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}-{}", self.node, self.connection)
    }
}

impl FromStr for ClientAddress {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (node, connection) = s
            .split_once('-')
            .ok_or("a client address is <node>-<connection>")?;
        Ok(ClientAddress {
            node: u64::from_str_radix(node, 16).map_err(|_| "the node is 16 hex digits")?,
            connection: connection
                .parse()
                .map_err(|_| "the connection id is a number")?,
        })
    }
}

/// A server's membership of a cluster (see [`ServerBuilder::cluster`](crate::ServerBuilder::cluster)).
#[derive(Clone)]
pub struct ServerCluster {
    shared: Arc<Shared>,
}

struct Shared {
    nats: Nats,
    node: u64,
    /// Broadcasts on their way to NATS, in order (one publisher task).
    broadcasts: tokio::sync::mpsc::Sender<Bytes>,
    /// The deadline of calls made through a remote client's caller without one.
    default_deadline: Option<Duration>,
}

impl fmt::Debug for ServerCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServerCluster(node {:016x})", self.shared.node)
    }
}

impl ServerCluster {
    /// Connects to NATS and serves the node's subjects for `server`.
    pub(crate) async fn join(server: &Arc<ServerInner>, url: &str) -> std::io::Result<Self> {
        let io = |e: &dyn fmt::Display| {
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, format!("NATS: {e}"))
        };
        let nats = async_nats::ConnectOptions::new()
            .name("wsp-server")
            .connection_timeout(Duration::from_secs(5))
            .reconnect_delay_callback(|n| Duration::from_millis(100 * n.min(20) as u64))
            // Broadcasts from other nodes waiting to be delivered here; beyond it NATS drops
            // them (a slow consumer), like a client whose send queue is full misses one.
            .subscription_capacity(1024)
            .connect(url)
            .await
            .map_err(|e| io(&e))?;
        let node = random_u64();
        let direct = nats
            .subscribe(node_subject(node))
            .await
            .map_err(|e| io(&e))?;
        let broadcasts = nats.subscribe(BROADCAST).await.map_err(|e| io(&e))?;
        settle(&nats).await.map_err(|e| io(&e))?;
        let (tx, mut queued) = tokio::sync::mpsc::channel::<Bytes>(BROADCAST_QUEUE);
        let publisher = nats.clone();
        tokio::spawn(async move {
            while let Some(body) = queued.recv().await {
                let _ = publisher.publish(BROADCAST, body).await;
            }
        });
        let cluster = ServerCluster {
            shared: Arc::new(Shared {
                nats,
                node,
                broadcasts: tx,
                default_deadline: server.config.default_deadline,
            }),
        };
        let closed = server.closed.subscribe();
        tokio::spawn(serve_direct(
            cluster.clone(),
            Arc::downgrade(server),
            direct,
            closed.clone(),
        ));
        tokio::spawn(serve_broadcasts(
            node,
            Arc::downgrade(server),
            broadcasts,
            closed,
        ));
        Ok(cluster)
    }

    /// Leaves the cluster (the server closed): its subscriptions end, and with them its tasks;
    /// messages already published are sent first.
    pub(crate) async fn leave(&self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.shared.nats.drain()).await;
    }

    /// This node's id.
    pub fn node(&self) -> u64 {
        self.shared.node
    }

    /// Where `peer` (a connection of this node) is, for callers at any node.
    pub fn address(&self, peer: &Peer) -> ClientAddress {
        ClientAddress {
            node: self.shared.node,
            connection: peer.id(),
        }
    }

    /// Makes `peer` (a connection of this node) reachable by `key` (e.g. a user id) from every
    /// node, until it closes; returns once the NATS server has the subscription. When several
    /// connections hold a key, each call or notification goes to one of them.
    pub async fn bind_key(&self, peer: &Peer, key: &str) -> Result<(), CallError> {
        let nats = &self.shared.nats;
        let mut sub = nats
            .queue_subscribe(key_subject(key), QUEUE.into())
            .await
            .map_err(|e| CallError::Unavailable(format!("NATS: {e}")))?;
        settle(nats)
            .await
            .map_err(|e| CallError::Unavailable(format!("NATS: {e}")))?;
        let (peer, cluster) = (peer.clone(), self.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    m = sub.next() => match m {
                        Some(m) => { tokio::spawn(answer(cluster.clone(), Some(peer.clone()), m)); }
                        None => return,
                    },
                    _ = peer.closed() => break,
                }
            }
            // Requests already on their way here are answered "no such client" (unanswered,
            // they would wait for their deadline).
            let _ = sub.drain().await;
            while let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(1), sub.next()).await {
                tokio::spawn(answer(cluster.clone(), None, m));
            }
        });
        Ok(())
    }

    /// Calls and notifies the client at `address`, whichever node it is at: unary calls and
    /// notifications only (streams fail with [`CallError::Unavailable`]). A client that is
    /// not connected (any more) fails with [`CallError::NotConnected`] at once.
    pub fn caller(&self, address: ClientAddress) -> Caller {
        self.remote(node_subject(address.node), address.connection)
    }

    /// Calls and notifies a client holding `key` ([`bind_key`](Self::bind_key)) at any node.
    pub fn caller_for_key(&self, key: &str) -> Caller {
        self.remote(key_subject(key), 0)
    }

    /// A caller whose requests go to `subject`, for `connection` there (0 on a key's subject).
    fn remote(&self, subject: Subject, connection: u64) -> Caller {
        Caller::for_remote(Arc::new(RemoteClient {
            nats: self.shared.nats.clone(),
            subject,
            connection,
            default_deadline: self.shared.default_deadline,
        }))
    }

    /// Sends a broadcast to the clients of the other nodes, in order; with more than
    /// [`BROADCAST_QUEUE`] waiting for NATS (e.g. while it is away) it is dropped, like a
    /// broadcast to a client whose send queue is full.
    pub(crate) fn broadcast(&self, method: &str, args: Bytes) {
        let mut body = BytesMut::with_capacity(8 + 2 + method.len() + args.len());
        body.put_u64(self.shared.node);
        put_str(&mut body, method);
        body.put_slice(&args);
        let _ = self.shared.broadcasts.try_send(body.freeze());
    }
}

/// Returns once the NATS server has processed everything `nats` sent before (a subscription
/// in particular): a message to itself comes back only after it. `flush` alone only empties
/// the client's buffer into the socket.
async fn settle(nats: &Nats) -> Result<(), String> {
    let inbox = nats.new_inbox();
    let mut echo = nats
        .subscribe(inbox.clone())
        .await
        .map_err(|e| e.to_string())?;
    nats.publish(inbox, Bytes::new())
        .await
        .map_err(|e| e.to_string())?;
    match tokio::time::timeout(Duration::from_secs(2), echo.next()).await {
        Ok(Some(_)) => Ok(()),
        _ => Err("no answer from the NATS server".into()),
    }
}

fn node_subject(node: u64) -> Subject {
    format!("wsp.server.node.{node:016x}").into()
}

/// A key's subject: its bytes in hex, so that no key can name a subject hierarchy or wildcard.
fn key_subject(key: &str) -> Subject {
    format!("wsp.server.key.{}", hex::encode(key)).into()
}

/// Answers the calls and notifications for this node's connections.
async fn serve_direct(
    cluster: ServerCluster,
    server: Weak<ServerInner>,
    mut sub: async_nats::Subscriber,
    mut closed: watch::Receiver<bool>,
) {
    // Ends when the server closes or is dropped (the watch's sender goes with it).
    while let Some(m) = next_unless_closed(&mut sub, &mut closed).await {
        let Some(server) = server.upgrade() else {
            return;
        };
        let peer =
            request_connection(&m.payload).and_then(|id| Server::from_inner(server).connection(id));
        tokio::spawn(answer(cluster.clone(), peer, m));
    }
}

/// Delivers the broadcasts of the other nodes to this node's clients.
async fn serve_broadcasts(
    node: u64,
    server: Weak<ServerInner>,
    mut sub: async_nats::Subscriber,
    mut closed: watch::Receiver<bool>,
) {
    while let Some(m) = next_unless_closed(&mut sub, &mut closed).await {
        let Some(server) = server.upgrade() else {
            return;
        };
        let mut p = &m.payload[..];
        if p.len() < 10 || p.get_u64() == node {
            continue;
        }
        let Some(method) = get_str(&mut p) else {
            continue;
        };
        let Ok(Value::Array(args)) = rmpv::decode::read_value(&mut p) else {
            continue;
        };
        let _ = Server::from_inner(server).notify_local(method, &Untyped(args.as_slice()));
    }
}

/// The next message, or `None` once the server closed or went away.
async fn next_unless_closed(
    sub: &mut async_nats::Subscriber,
    closed: &mut watch::Receiver<bool>,
) -> Option<Message> {
    tokio::select! {
        m = sub.next() => m,
        _ = closed.wait_for(|c| *c) => None,
    }
}

/// The connection id of a request (kind, connection, deadline, method, arguments).
fn request_connection(p: &[u8]) -> Option<u64> {
    p.get(1..9)
        .map(|b| u64::from_be_bytes(b.try_into().expect("8 bytes")))
}

/// Runs one request on `peer` (`None`: no such connection here) and replies.
async fn answer(cluster: ServerCluster, peer: Option<Peer>, m: Message) {
    let Some(reply) = m.reply else { return };
    let mut p = &m.payload[..];
    let body = match (peer, parse(&mut p)) {
        (Some(peer), Some((kind, timeout, method))) => match rmpv::decode::read_value(&mut p) {
            Ok(Value::Array(args)) => {
                let caller = peer.caller();
                let outcome = if kind == NOTIFY {
                    caller.notify_value(method, args).await.map(|_| Value::Nil)
                } else {
                    let opts = CallOptions::new().timeout(timeout);
                    caller.call_value_with(method, args, opts).await
                };
                encode_outcome(outcome)
            }
            _ => encode_outcome(Err(CallError::InvalidArguments(
                "the argument array from another node is unreadable".into(),
            ))),
        },
        (None, Some(_)) => Bytes::from_static(&[UNKNOWN]),
        (_, None) => return,
    };
    let _ = cluster.shared.nats.publish(reply, body).await;
}

/// Reads a request's kind, timeout and method (the connection id is skipped).
fn parse<'a>(p: &mut &'a [u8]) -> Option<(u8, Duration, &'a str)> {
    if p.len() < 17 {
        return None;
    }
    let kind = p.get_u8();
    let _connection = p.get_u64();
    let timeout = Duration::from_millis(p.get_u64());
    Some((kind, timeout, get_str(p)?))
}

fn encode_outcome(outcome: Result<Value, CallError>) -> Bytes {
    let mut body = BytesMut::new();
    match outcome {
        Ok(v) => {
            body.put_u8(OK);
            let mut w = (&mut body).writer();
            let _ = rmpv::encode::write_value(&mut w, &v);
        }
        // The call may or may not have run: the connection went while it was made.
        Err(CallError::Disconnected | CallError::Closed) => body.put_u8(DISCONNECTED),
        Err(CallError::NotConnected) => body.put_u8(UNKNOWN),
        Err(e) => {
            body.put_u8(ERROR);
            let code = e.code().map_or(crate::ErrorCode::Internal, |c| c);
            body.put_u32(code as u32);
            let message = match &e {
                CallError::Application { name, .. } => name.clone(),
                CallError::UnknownMethod(m)
                | CallError::InvalidArguments(m)
                | CallError::Cancelled(m)
                | CallError::Overloaded(m)
                | CallError::Internal(m)
                | CallError::Unavailable(m) => m.clone(),
                other => other.to_string(),
            };
            put_str(&mut body, &message);
            let details = match &e {
                CallError::Application { details, .. } => details.to_value().unwrap_or(Value::Nil),
                _ => Value::Nil,
            };
            let mut w = (&mut body).writer();
            let _ = rmpv::encode::write_value(&mut w, &details);
        }
    }
    body.freeze()
}

fn put_str(b: &mut BytesMut, s: &str) {
    b.put_u16(u16::try_from(s.len()).unwrap_or(u16::MAX));
    b.put_slice(&s.as_bytes()[..s.len().min(u16::MAX as usize)]);
}

fn get_str<'a>(p: &mut &'a [u8]) -> Option<&'a str> {
    if p.len() < 2 {
        return None;
    }
    let n = p.get_u16() as usize;
    let s = std::str::from_utf8(p.get(..n)?).ok()?;
    p.advance(n);
    Some(s)
}

/// A client at some node, reached through NATS (the [`Caller`] of
/// [`ServerCluster::caller`] and [`ServerCluster::caller_for_key`]).
struct RemoteClient {
    nats: Nats,
    subject: Subject,
    connection: u64,
    default_deadline: Option<Duration>,
}

impl RemoteClient {
    async fn request(
        &self,
        kind: u8,
        method: &str,
        args: Vec<u8>,
        deadline: Option<Instant>,
    ) -> Result<Bytes, CallError> {
        let timeout = deadline.map_or(NO_DEADLINE, |d| d.saturating_duration_since(Instant::now()));
        if timeout.is_zero() {
            return Err(CallError::DeadlineExceeded);
        }
        let mut body = BytesMut::with_capacity(17 + 2 + method.len() + args.len());
        body.put_u8(kind);
        body.put_u64(self.connection);
        body.put_u64(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX));
        put_str(&mut body, method);
        body.put_slice(&args);
        let request = Request::new().payload(body.freeze()).timeout(Some(timeout));
        match self.nats.send_request(self.subject.clone(), request).await {
            Ok(m) => Ok(m.payload),
            Err(e) => Err(match e.kind() {
                RequestErrorKind::NoResponders => CallError::NotConnected,
                RequestErrorKind::TimedOut => CallError::DeadlineExceeded,
                RequestErrorKind::Other => CallError::Unavailable(format!("NATS: {e}")),
            }),
        }
    }
}

fn decode_outcome(reply: Bytes) -> Result<Payload, CallError> {
    let bad = || CallError::Internal("an unreadable answer from another server node".into());
    match reply.first() {
        Some(&OK) => Ok(Payload::new(Codec::MsgPack, reply.slice(1..), MAX_DEPTH)),
        Some(&UNKNOWN) => Err(CallError::NotConnected),
        Some(&DISCONNECTED) => Err(CallError::Disconnected),
        Some(&ERROR) => {
            let mut p = &reply[1..];
            if p.len() < 4 {
                return Err(bad());
            }
            let code = p.get_u32();
            let message = get_str(&mut p).ok_or_else(bad)?.to_owned();
            let at = reply.len() - p.len();
            let details = Payload::new(Codec::MsgPack, reply.slice(at..), MAX_DEPTH);
            Err(CallError::from_wire(code, message, details))
        }
        _ => Err(bad()),
    }
}

impl Remote for RemoteClient {
    fn default_deadline(&self) -> Option<Duration> {
        self.default_deadline
    }

    fn call<'a>(
        &'a self,
        method: &'a str,
        args: Vec<u8>,
        deadline: Option<Instant>,
    ) -> BoxFuture<'a, Result<Payload, CallError>> {
        Box::pin(async move { decode_outcome(self.request(CALL, method, args, deadline).await?) })
    }

    fn notify<'a>(
        &'a self,
        method: &'a str,
        args: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), CallError>> {
        Box::pin(async move {
            let deadline = Some(Instant::now() + Duration::from_secs(30));
            decode_outcome(self.request(NOTIFY, method, args, deadline).await?).map(|_| ())
        })
    }
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("the system's randomness source");
    u64::from_ne_bytes(b)
}
