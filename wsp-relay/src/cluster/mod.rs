//! Several relay nodes sharing their routing through NATS (PROTOCOL.md §11.8): a caller at one
//! node reaches a host registered at another.
//!
//! - **Presence is NATS interest.** A node answers claims for a key while it holds the key
//!   (a spare idle or lingering, `Directory::known`): it queue-subscribes to the key's subject,
//!   and unsubscribes once the key is no longer known there. A node that dies loses its
//!   subscriptions with its NATS connection, so nothing stale remains.
//! - **A claim is a NATS request** to the key's subject, made when the caller's own node does
//!   not know the key. "No responders" means no node holds it: the caller is refused at once,
//!   not after a timeout. The node that answers runs the ordinary hand-over with one of its
//!   spares and replies; from then on the route is a [`Tunnel`] between the two nodes.
//! - **Liveness:** every node publishes a heartbeat, its own included; a tunnel whose other
//!   node has not been heard for [`NODE_SILENCE`] (neither its heartbeat nor the tunnel) ends
//!   its route with `RELAY_PEER_LOST` — unless this node's own heartbeat is late too, which
//!   means this node was stalled, not the other one (see [`Cluster::lost`]).
//!
//! Nodes trust each other: whoever may publish on the NATS subjects `wsp.relay.>` is part of
//! the relay. Secure the NATS server accordingly (its own authentication and TLS).

mod tunnel;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::{Client, Message, Request, RequestErrorKind, Subject};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::sync::watch;
use tokio::time::Instant;
use wsp_runtime::Codec;
use wsp_runtime::close_code as code;
use wsp_runtime::relay::PublicKey;

use crate::hand_over::{self, Caller, Link};
use crate::{RelayInner, lock};
pub(crate) use tunnel::Tunnel;

/// How often a node says it is alive.
const NODE_HEARTBEAT: Duration = Duration::from_millis(250);
/// A node not heard for this long is taken for dead: its tunnels end.
pub(crate) const NODE_SILENCE: Duration = Duration::from_secs(1);
/// A node that has not heard its own heartbeat for this long is cut off from NATS: its tunnels
/// end.
const NATS_SILENCE: Duration = Duration::from_secs(5);
/// How often a node checks whether it still holds the keys it answers for.
const HOLD_CHECK: Duration = Duration::from_millis(500);
/// Longest a spare's registration waits for its key's subscription.
const HOLD_WAIT: Duration = Duration::from_secs(2);
/// The queue group key subscriptions join: one node answers each claim.
const QUEUE: &str = "wsp-relay";
const ALIVE: &str = "wsp.relay.alive";

/// Version byte of claim requests and replies.
const VERSION: u8 = 1;
// Reply statuses.
const OK: u8 = 0;
const REFUSED: u8 = 1;
/// The answering node does not hold the key (any more): ask again.
const GONE: u8 = 2;

/// This node's membership of a relay cluster.
pub(crate) struct Cluster {
    pub(crate) nats: Client,
    /// This node's id, random per process.
    node: u64,
    /// When each other node was last heard.
    seen: Mutex<HashMap<u64, Instant>>,
    /// The keys this node answers claims for, each with whether its subscription is in place.
    held: Mutex<HashMap<(PublicKey, Codec), watch::Receiver<bool>>>,
}

impl Cluster {
    /// Connects to the NATS server at `url` (a comma-separated list for a NATS cluster) and
    /// starts the heartbeat; both stop when `shutdown` turns true.
    pub(crate) async fn join(
        url: &str,
        mut shutdown: watch::Receiver<bool>,
    ) -> std::io::Result<Arc<Cluster>> {
        let io = |e: &dyn std::fmt::Display| {
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, format!("NATS: {e}"))
        };
        let nats = async_nats::ConnectOptions::new()
            .name("wsp-relay")
            .connection_timeout(Duration::from_secs(5))
            // Back within a fraction of a second when the NATS server restarts.
            .reconnect_delay_callback(|n| Duration::from_millis(100 * n.min(20) as u64))
            .subscription_capacity(8192)
            .connect(url)
            .await
            .map_err(|e| io(&e))?;
        let mut alive = nats.subscribe(ALIVE).await.map_err(|e| io(&e))?;
        let node = random_u64();
        let cluster = Arc::new(Cluster {
            nats,
            node,
            // Its own heartbeat counts from the start.
            seen: Mutex::new(HashMap::from([(node, Instant::now())])),
            held: Mutex::default(),
        });
        let me = cluster.clone();
        tokio::spawn(async move {
            let mut beat = tokio::time::interval(NODE_HEARTBEAT);
            let id = Bytes::copy_from_slice(&me.node.to_be_bytes());
            loop {
                tokio::select! {
                    _ = beat.tick() => {
                        let _ = me.nats.publish(ALIVE, id.clone()).await;
                    }
                    m = alive.next() => match m {
                        Some(m) => if let Ok(id) = <[u8; 8]>::try_from(&m.payload[..]) {
                            me.heard(u64::from_be_bytes(id));
                        },
                        None => return,
                    },
                    _ = crate::stopping(&mut shutdown) => return,
                }
            }
        });
        Ok(cluster)
    }

    fn heard(&self, node: u64) {
        let mut seen = lock(&self.seen);
        if !seen.contains_key(&node) {
            // A new node: forget those gone for long (the map holds live nodes, not history).
            seen.retain(|n, t| *n == self.node || t.elapsed() < NATS_SILENCE);
        }
        seen.insert(node, Instant::now());
    }

    /// Whether `node` is to be taken for dead by a tunnel that last heard from it at
    /// `tunnel_heard`: neither its heartbeat nor the tunnel came for [`NODE_SILENCE`] while
    /// this node's own heartbeat did come back (so it is not this node that was stalled, its
    /// tasks starved or its messages queued), or this node's own heartbeat stayed away for
    /// [`NATS_SILENCE`] (NATS is away: nothing crosses).
    pub(crate) fn lost(&self, node: u64, tunnel_heard: Instant) -> bool {
        let seen = lock(&self.seen);
        let since = |n: u64| seen.get(&n).map_or(Duration::MAX, |t| t.elapsed());
        let own = since(self.node);
        let other = since(node).min(tunnel_heard.elapsed());
        (other >= NODE_SILENCE && own < NODE_SILENCE / 2) || own >= NATS_SILENCE
    }

    /// Makes this node answer claims for `key` while it holds it (called when a spare of the
    /// key registers here); returns once the NATS server has the subscription, so that a
    /// spare's REGISTERED means it is reachable from every node (or after [`HOLD_WAIT`] if
    /// NATS is away: the spare still serves callers at this node).
    pub(crate) async fn hold(
        self: &Arc<Self>,
        relay: &Arc<RelayInner>,
        key: PublicKey,
        codec: Codec,
    ) {
        let mut ready = {
            let mut held = lock(&self.held);
            match held.get(&(key, codec)) {
                Some(ready) => ready.clone(),
                None => {
                    let (tx, rx) = watch::channel(false);
                    held.insert((key, codec), rx.clone());
                    tokio::spawn(answer_for(self.clone(), relay.clone(), key, codec, tx));
                    rx
                }
            }
        };
        let _ = tokio::time::timeout(HOLD_WAIT, ready.wait_for(|r| *r)).await;
    }

    /// Asks the other nodes for a spare of `key`, on behalf of a caller at this node.
    pub(crate) async fn claim(
        self: &Arc<Self>,
        key: PublicKey,
        codec: Codec,
        caller: Option<PublicKey>,
        wait: Duration,
        handshake: Duration,
    ) -> Result<Tunnel, (u16, String)> {
        let subject = key_subject(key, codec);
        // A node that just stopped holding the key answers GONE: ask again, up to three times.
        for attempt in 0..4 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let tunnel = format!("{:016x}{:016x}", random_u64(), random_u64());
            let inbox = self
                .nats
                .subscribe(tunnel_subject(&tunnel, 'c'))
                .await
                .map_err(|_| unreachable_cluster())?;
            let mut body = BytesMut::with_capacity(1 + 8 + 32 + 8 + 33);
            body.put_u8(VERSION);
            body.put_u64(self.node);
            body.put_slice(tunnel.as_bytes());
            body.put_u64(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX));
            match caller {
                Some(k) => {
                    body.put_u8(1);
                    body.put_slice(k.as_bytes());
                }
                None => body.put_u8(0),
            }
            let request = Request::new()
                .payload(body.freeze())
                .timeout(Some(wait + handshake));
            let reply = match self.nats.send_request(subject.clone(), request).await {
                Ok(reply) => reply.payload,
                Err(e) => {
                    return Err(match e.kind() {
                        RequestErrorKind::NoResponders => {
                            (code::RELAY_UNKNOWN_KEY, "relay: unknown key".into())
                        }
                        RequestErrorKind::TimedOut => (
                            code::RELAY_UNAVAILABLE,
                            "relay: no spare of the target became free".into(),
                        ),
                        RequestErrorKind::Other => unreachable_cluster(),
                    });
                }
            };
            match reply.first() {
                Some(&OK) if reply.len() == 9 => {
                    let node = u64::from_be_bytes(reply[1..9].try_into().expect("8 bytes"));
                    // Its reply shows it alive, whether or not its heartbeat came yet.
                    self.heard(node);
                    let to = Subject::from(tunnel_subject(&tunnel, 'h'));
                    return Ok(Tunnel::start(self.clone(), inbox, to, node));
                }
                Some(&REFUSED) if reply.len() >= 3 => {
                    let c = u16::from_be_bytes([reply[1], reply[2]]);
                    return Err((c, String::from_utf8_lossy(&reply[3..]).into_owned()));
                }
                Some(&GONE) => continue,
                _ => return Err(unreachable_cluster()),
            }
        }
        // Nodes keep answering that they hold the key no more: another may hold it soon.
        Err((
            code::RELAY_UNAVAILABLE,
            "relay: no spare of the target became free".into(),
        ))
    }
}

fn unreachable_cluster() -> (u16, String) {
    (
        code::RELAY_UNAVAILABLE,
        "relay: the relay cluster cannot be reached".into(),
    )
}

/// Answers the claims other nodes make for `key`, while this node holds it; `ready` turns
/// true once the subscription is in place.
async fn answer_for(
    cluster: Arc<Cluster>,
    relay: Arc<RelayInner>,
    key: PublicKey,
    codec: Codec,
    ready: watch::Sender<bool>,
) {
    let release = || {
        lock(&cluster.held).remove(&(key, codec));
    };
    let mut sub = match cluster
        .nats
        .queue_subscribe(key_subject(key, codec), QUEUE.into())
        .await
    {
        Ok(sub) => sub,
        Err(e) => {
            tracing::warn!(error = %e, "relay cluster: cannot subscribe");
            ready.send_replace(true);
            return release();
        }
    };
    // In place at the server before the spare's REGISTERED goes out.
    let _ = settle(&cluster.nats).await;
    ready.send_replace(true);
    let mut shutdown = relay.shutdown.subscribe();
    let mut check = tokio::time::interval(HOLD_CHECK);
    loop {
        tokio::select! {
            m = sub.next() => match m {
                Some(m) => { tokio::spawn(answer(cluster.clone(), relay.clone(), key, codec, m)); }
                None => break release(),
            },
            _ = check.tick() => {
                // Under the lock `hold` takes: a spare registering now either finds the key
                // still held here, or starts a new subscription after this one ended.
                let mut held = lock(&cluster.held);
                if !relay.directory.known(key, codec) {
                    held.remove(&(key, codec));
                    break;
                }
            }
            _ = crate::stopping(&mut shutdown) => break release(),
        }
    }
    // Claims already on their way here are told to ask again.
    let _ = sub.drain().await;
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(1), sub.next()).await {
        if let Some(reply) = m.reply {
            let _ = cluster
                .nats
                .publish(reply, Bytes::from_static(&[GONE]))
                .await;
        }
    }
}

/// Runs one claim from another node through this node's routing.
async fn answer(
    cluster: Arc<Cluster>,
    relay: Arc<RelayInner>,
    key: PublicKey,
    codec: Codec,
    m: Message,
) {
    let Some(reply) = m.reply else { return };
    let p = &m.payload[..];
    // version, node, tunnel id (32 hex digits), wait in ms, caller key flag and key
    if p.len() < 50 || p[0] != VERSION {
        return;
    }
    let node = u64::from_be_bytes(p[1..9].try_into().expect("8 bytes"));
    let Ok(tunnel) = std::str::from_utf8(&p[9..41]) else {
        return;
    };
    if !tunnel.bytes().all(|b| b.is_ascii_hexdigit()) {
        return;
    }
    let wait = Duration::from_millis(u64::from_be_bytes(p[41..49].try_into().expect("8 bytes")));
    let caller_key = match (p[49], &p[50..]) {
        (0, []) => None,
        (1, k) => match <[u8; 32]>::try_from(k) {
            Ok(k) => Some(PublicKey::from_bytes(k)),
            Err(_) => return,
        },
        _ => return,
    };
    // The asking node gives up after the wait and a hand-over's time from its request;
    // counted here from its arrival, less a margin for the way back.
    let expires = Instant::now() + wait + relay.config.handshake_timeout
        - Duration::from_millis(200).min(relay.config.handshake_timeout);
    let remote = Remote {
        cluster,
        reply,
        tunnel: tunnel.to_owned(),
        node,
        expires,
    };
    let deadline = Instant::now() + wait.min(relay.config.wait_for_spare);
    let caller = Caller::new(Link::Node(remote), codec, key, caller_key, deadline);
    hand_over::route(relay, caller).await;
}

/// A caller at another node, whose claim this node answers.
pub(crate) struct Remote {
    cluster: Arc<Cluster>,
    /// Where the answer to the claim goes.
    reply: Subject,
    tunnel: String,
    node: u64,
    /// When the asking node stops waiting for the answer.
    expires: Instant,
}

impl Remote {
    /// Refuses the claim: the caller's node closes the caller with `c` and `reason`.
    pub(crate) async fn refuse(self, c: u16, reason: &str) {
        let mut body = BytesMut::with_capacity(3 + reason.len());
        body.put_u8(REFUSED);
        body.put_u16(c);
        body.put_slice(reason.as_bytes());
        let _ = self.cluster.nats.publish(self.reply, body.freeze()).await;
    }

    /// Tells the caller's node to ask again: this node does not hold the key.
    pub(crate) async fn gone(self) {
        let _ = self
            .cluster
            .nats
            .publish(self.reply, Bytes::from_static(&[GONE]))
            .await;
    }

    /// Accepts the claim once a spare is ready: this node's end of the tunnel, or `None` if
    /// NATS could not be reached.
    pub(crate) async fn accept(self) -> Option<Tunnel> {
        if Instant::now() >= self.expires {
            // The caller was refused already: the spare must not be piped to no one.
            return None;
        }
        let nats = &self.cluster.nats;
        let inbox = nats
            .subscribe(tunnel_subject(&self.tunnel, 'h'))
            .await
            .ok()?;
        let mut body = BytesMut::with_capacity(9);
        body.put_u8(OK);
        body.put_u64(self.cluster.node);
        nats.publish(self.reply, body.freeze()).await.ok()?;
        let to = Subject::from(tunnel_subject(&self.tunnel, 'c'));
        self.cluster.heard(self.node);
        Some(Tunnel::start(self.cluster.clone(), inbox, to, self.node))
    }
}

/// Returns once the NATS server has processed everything `nats` sent before (a subscription
/// in particular): a message to itself comes back only after it. `flush` alone only empties
/// the client's buffer into the socket.
async fn settle(nats: &Client) -> Result<(), String> {
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

fn key_subject(key: PublicKey, codec: Codec) -> Subject {
    let c = match codec {
        Codec::MsgPack => 'm',
        Codec::Json => 'j',
    };
    Subject::from(format!("wsp.relay.key.{c}.{key}"))
}

fn tunnel_subject(tunnel: &str, side: char) -> String {
    format!("wsp.relay.tunnel.{tunnel}.{side}")
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("the system's randomness source");
    u64::from_ne_bytes(b)
}
