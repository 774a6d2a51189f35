//! A connection's life at the relay before it carries wsp: the CHALLENGE, then either a
//! host's REGISTER (the connection becomes an idle spare) or a caller's CONNECT (the caller is
//! routed to a spare of its target); and the hand-over that joins the two (HANDOVER, READY,
//! CONNECTED), after which `pipe.rs` copies frames.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use wsp_runtime::Codec;
use wsp_runtime::close_code as code;
use wsp_runtime::relay::{PublicKey, Purpose, RelayFrame, VERSION};

use crate::cluster::{Cluster, Remote};
use crate::directory::{Claim, Offer};
use crate::pipe::pipe;
use crate::{RelayInner, Ws};

/// A caller on its way to a spare of `target`.
pub(crate) struct Caller {
    link: Link,
    codec: Codec,
    target: PublicKey,
    /// The caller's verified key, if it proved one.
    key: Option<PublicKey>,
    /// Until when it may wait for a spare.
    deadline: Instant,
}

/// Where a caller is: connected to this node, or to another node of the cluster that asked
/// this one for a spare.
// A link is made once per caller and moved a few times: not worth a box for the common case.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Link {
    Ws(Ws),
    Node(Remote),
}

impl Caller {
    pub(crate) fn new(
        link: Link,
        codec: Codec,
        target: PublicKey,
        key: Option<PublicKey>,
        deadline: Instant,
    ) -> Caller {
        Caller {
            link,
            codec,
            target,
            key,
            deadline,
        }
    }
}

/// Refuses a caller with `c` and `reason`: its connection is closed with them, here or at its
/// node.
async fn refuse(link: Link, c: u16, reason: &str) {
    match link {
        Link::Ws(ws) => close(ws, c, reason).await,
        Link::Node(remote) => remote.refuse(c, reason).await,
    }
}

/// Runs the relay handshake on a freshly upgraded connection and hands it on; `started` is
/// when its TCP connection was accepted (the handshake timeout counts from there).
pub(crate) async fn handshake(relay: Arc<RelayInner>, mut ws: Ws, codec: Codec, started: Instant) {
    let mut nonce = [0u8; 32];
    if getrandom::fill(&mut nonce).is_err() {
        return close(ws, code::INTERNAL_ERROR, "relay: no randomness").await;
    }
    let challenge = RelayFrame::Challenge {
        version: VERSION,
        nonce,
    };
    let deadline = started + relay.config.handshake_timeout;
    let first = tokio::time::timeout_at(deadline, async {
        ws.send(challenge.encode(codec)).await.ok()?;
        next_data(&mut ws).await
    })
    .await;
    let frame = match first {
        Err(_) => return close(ws, code::HANDSHAKE_TIMEOUT, "relay: handshake timed out").await,
        Ok(None) => return,
        Ok(Some(m)) => RelayFrame::decode(&m, codec),
    };
    match frame {
        Ok(RelayFrame::Register { key, signature }) => {
            if !relay.proof_holds(Purpose::Register, &nonce, None, &key, &signature) {
                relay.stats.count_refused_proof();
                return close(
                    ws,
                    code::RELAY_PROOF_REFUSED,
                    "relay: registration proof refused",
                )
                .await;
            }
            relay.stats.count_registration();
            keep_spare(relay, ws, codec, key).await;
        }
        Ok(RelayFrame::Connect { target, caller }) => {
            let key = match caller {
                None => None,
                Some((key, signature)) => {
                    if !relay.proof_holds(Purpose::Connect, &nonce, Some(&target), &key, &signature)
                    {
                        relay.stats.count_refused_proof();
                        return close(ws, code::RELAY_PROOF_REFUSED, "relay: caller proof refused")
                            .await;
                    }
                    Some(key)
                }
            };
            let deadline = Instant::now() + relay.config.wait_for_spare;
            route(
                relay,
                Caller::new(Link::Ws(ws), codec, target, key, deadline),
            )
            .await;
        }
        Ok(_) => {
            close(
                ws,
                code::PROTOCOL_ERROR,
                "relay: expected REGISTER or CONNECT",
            )
            .await
        }
        Err(_) => close(ws, code::PROTOCOL_ERROR, "relay: bad relay frame").await,
    }
}

/// Sends `caller` to an idle spare of its target, waiting for one up to its deadline; closes
/// it with a defined code when there is none. A caller at this node whose target this node
/// does not know is routed through the cluster, if there is one.
pub(crate) async fn route(relay: Arc<RelayInner>, mut caller: Caller) {
    let mut shutdown = relay.shutdown.subscribe();
    loop {
        let ticket = match relay.directory.claim(caller.target, caller.codec) {
            Claim::Spare(ticket) => ticket,
            Claim::Unknown => {
                if let (Link::Ws(_), Some(cluster)) = (&caller.link, relay.cluster.clone()) {
                    return through_cluster(relay, &cluster, caller).await;
                }
                let ws = match caller.link {
                    // The asking node tries another one.
                    Link::Node(remote) => return remote.gone().await,
                    Link::Ws(ws) => ws,
                };
                relay.stats.count_unknown_key();
                let reason = if relay
                    .directory
                    .known_in_other_codec(caller.target, caller.codec)
                {
                    "relay: the target is registered for the other codec only"
                } else {
                    "relay: unknown key"
                };
                return close(ws, code::RELAY_UNKNOWN_KEY, reason).await;
            }
            Claim::Overloaded => {
                relay.stats.count_overloaded();
                return refuse(
                    caller.link,
                    code::RELAY_OVERLOADED,
                    "relay: too many callers wait",
                )
                .await;
            }
            Claim::Wait(rx) => {
                tokio::select! {
                    r = tokio::time::timeout_at(caller.deadline, rx) => match r {
                        Ok(Ok(ticket)) => ticket,
                        // The key's entry went away while waiting: ask again.
                        Ok(Err(_)) => continue,
                        Err(_) => {
                            relay.stats.count_unavailable();
                            return refuse(caller.link, code::RELAY_UNAVAILABLE, "relay: no spare of the target became free").await;
                        }
                    },
                    _ = crate::stopping(&mut shutdown) => {
                        return refuse(caller.link, code::GOING_AWAY, "relay shutting down").await;
                    }
                }
            }
        };
        match ticket.send(caller) {
            Ok(()) => return,
            // That spare went away just now: try the next.
            Err(back) => caller = back,
        }
    }
}

/// Routes a caller at this node to a spare at another node of the cluster.
async fn through_cluster(relay: Arc<RelayInner>, cluster: &Arc<Cluster>, caller: Caller) {
    let Link::Ws(mut ws) = caller.link else {
        unreachable!("only callers at this node are routed through the cluster")
    };
    let wait = caller.deadline.saturating_duration_since(Instant::now());
    let claim = cluster.claim(
        caller.target,
        caller.codec,
        caller.key,
        wait,
        relay.config.handshake_timeout,
    );
    let mut shutdown = relay.shutdown.subscribe();
    let tunnel = tokio::select! {
        r = claim => r,
        _ = crate::stopping(&mut shutdown) => Err((code::GOING_AWAY, "relay shutting down".into())),
    };
    match tunnel {
        Ok(tunnel) => {
            if ws
                .send(RelayFrame::Connected.encode(caller.codec))
                .await
                .is_ok()
            {
                pipe(&relay, ws, tunnel).await;
            }
        }
        Err((c, reason)) => {
            match c {
                code::RELAY_UNKNOWN_KEY => relay.stats.count_unknown_key(),
                code::RELAY_UNAVAILABLE => relay.stats.count_unavailable(),
                code::RELAY_OVERLOADED => relay.stats.count_overloaded(),
                _ => {}
            }
            close(ws, c, &reason).await
        }
    }
}

/// An idle spare: offered to callers, pinged, and dropped when it stops answering.
async fn keep_spare(relay: Arc<RelayInner>, mut ws: Ws, codec: Codec, key: PublicKey) {
    let config = &relay.config;
    // Into the directory first: a spare over a limit gets its refusal instead of REGISTERED.
    // One given at once to a waiting caller finds it in the inbox after REGISTERED.
    let (ticket, mut inbox) = oneshot::channel::<Caller>();
    let id = match relay.directory.offer(key, codec, ticket) {
        Offer::Idle(id) => Some(id),
        Offer::Taken => None,
        Offer::Full(why) => {
            relay.stats.count_overloaded();
            tracing::debug!(%key, why, "relay: spare refused");
            return close(ws, code::RELAY_OVERLOADED, "relay: too many keys or spares").await;
        }
    };
    if let Some(cluster) = &relay.cluster {
        cluster.hold(&relay, key, codec).await;
    }
    let registered = RelayFrame::Registered {
        ping_interval_ms: u64::try_from(config.ping_interval.as_millis()).unwrap_or(u64::MAX),
    };
    let sent = ws.send(registered.encode(codec)).await.is_ok();
    let mut shutdown = relay.shutdown.subscribe();
    let mut ping = tokio::time::interval(config.ping_interval);
    ping.tick().await;
    let mut heard = Instant::now();
    let why: (u16, &str) = loop {
        if !sent {
            break (0, "");
        }
        tokio::select! {
            caller = &mut inbox => match caller {
                Ok(caller) => return hand_over(relay, ws, caller).await,
                Err(_) => return,
            },
            m = ws.next() => match m {
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => heard = Instant::now(),
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break (0, ""),
                Some(Ok(_)) => break (code::PROTOCOL_ERROR, "relay: a frame on an idle spare"),
            },
            _ = ping.tick() => {
                if heard.elapsed() > config.ping_interval * 2 {
                    break (code::KEEPALIVE_TIMEOUT, "relay: the spare stopped answering pings");
                }
                if ws.send(Message::Ping(Default::default())).await.is_err() {
                    break (0, "");
                }
            }
            _ = crate::stopping(&mut shutdown) => break (code::GOING_AWAY, "relay shutting down"),
        }
    };
    if let Some(id) = id {
        relay.directory.withdraw(key, codec, id);
    }
    // A caller sent here just before the spare went away is routed again, not dropped.
    inbox.close();
    if let Ok(caller) = inbox.try_recv() {
        tokio::spawn(route(relay.clone(), caller));
    }
    if why.0 != 0 {
        close(ws, why.0, why.1).await;
    }
}

/// Joins `caller` to the spare `host`: HANDOVER, wait for READY, CONNECTED, then copy.
async fn hand_over(relay: Arc<RelayInner>, mut host: Ws, caller: Caller) {
    let codec = caller.codec;
    let handover = RelayFrame::Handover { caller: caller.key };
    let ready = tokio::time::timeout(relay.config.handshake_timeout, async {
        host.send(handover.encode(codec)).await.ok()?;
        let m = next_data(&mut host).await?;
        (RelayFrame::decode(&m, codec).ok()? == RelayFrame::Ready).then_some(())
    })
    .await;
    if !matches!(ready, Ok(Some(()))) {
        // This spare failed; the caller goes to another one.
        tokio::spawn(route(relay.clone(), caller));
        return close(host, code::PROTOCOL_ERROR, "relay: no READY after HANDOVER").await;
    }
    let lost = |host| {
        close(
            host,
            code::RELAY_PEER_LOST,
            "relay: the other end's connection was lost",
        )
    };
    match caller.link {
        Link::Ws(mut ws) => {
            if ws.send(RelayFrame::Connected.encode(codec)).await.is_err() {
                return lost(host).await;
            }
            relay.stats.count_handover();
            pipe(&relay, ws, host).await;
        }
        Link::Node(remote) => {
            let Some(tunnel) = remote.accept().await else {
                return lost(host).await;
            };
            relay.stats.count_handover();
            pipe(&relay, tunnel, host).await;
        }
    }
}

/// The next data message (pings and pongs are answered by the WebSocket layer); `None` when
/// the connection closed or failed.
async fn next_data(ws: &mut Ws) -> Option<Message> {
    loop {
        match ws.next().await? {
            Ok(m @ (Message::Binary(_) | Message::Text(_))) => return Some(m),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// Closes with `code` and `reason`, waiting briefly for the answer.
pub(crate) async fn close(mut ws: Ws, c: u16, reason: &str) {
    let frame = CloseFrame {
        code: c.into(),
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        ws.send(Message::Close(Some(frame))).await.ok()?;
        while let Some(Ok(m)) = ws.next().await {
            if m.is_close() {
                break;
            }
        }
        Some(())
    })
    .await;
}
