//! One relayed connection between two relay nodes, carried over NATS (PROTOCOL.md §11.8).
//!
//! Each node's end is a [`Tunnel`]: to `pipe.rs` it looks like the WebSocket it replaces (a
//! stream of messages and a sink for them), so a route whose ends sit on two nodes is copied
//! exactly like one on a single node. Underneath, a task per end speaks the tunnel framing
//! over two NATS subjects, one per direction:
//!
//! - every NATS message starts with a kind byte and a sequence number, counted per direction
//!   from 0: core NATS delivers at most once, so a missing number (a message dropped, e.g. by a
//!   slow-consumer cut) is detected and closes the route with `RELAY_LINK_BROKEN`;
//! - a WebSocket message is sent as chunks of at most [`CHUNK`] bytes (NATS limits a message's
//!   size), the last one marked;
//! - credit: an end sends data only while the bytes it sent stay below what the other end
//!   granted ([`WINDOW`] to begin with, then a `CREDIT` with the new total each time a quarter
//!   of the window was taken by the pipe), so a receiver holds at most a window and a chunk
//!   per tunnel and a fast sender is slowed, back to its WebSocket's TCP window;
//! - a close travels as a `CLOSE` and is answered like a WebSocket close;
//! - the other node's liveness is its node heartbeat (`Cluster::alive`); a node silent for
//!   [`super::NODE_SILENCE`] ends the route with `RELAY_PEER_LOST`.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;

use async_nats::{Subject, Subscriber};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::{Sink, Stream, StreamExt};
use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use tokio_util::sync::PollSender;
use wsp_runtime::close_code as code;

use super::Cluster;

/// Largest chunk of a WebSocket message in one NATS message (NATS's default limit is 1 MB).
pub(crate) const CHUNK: usize = 256 << 10;
/// Bytes an end may send beyond what the other end has taken.
pub(crate) const WINDOW: u64 = 4 << 20;

// Kinds (first byte of a tunnel message); data kinds carry a chunk.
const BINARY: u8 = 1;
const TEXT: u8 = 2;
/// Flag on a data kind: more chunks of the same message follow.
const MORE: u8 = 0x80;
const CREDIT: u8 = 3;
const CLOSE: u8 = 4;

/// How often an end checks that the other node is alive.
const CHECK: Duration = Duration::from_millis(100);

/// This node's end of a tunnel: a stream of the messages the other node's WebSocket sent and a
/// sink for the messages to deliver there.
pub(crate) struct Tunnel {
    rx: mpsc::UnboundedReceiver<Message>,
    tx: PollSender<Message>,
    taken: Arc<Taken>,
    task: tokio::task::JoinHandle<()>,
}

/// Bytes the pipe has taken from the tunnel, for the credit the task grants.
#[derive(Default)]
struct Taken {
    bytes: AtomicU64,
    notify: Notify,
}

impl Tunnel {
    /// Starts this end: `sub` receives what the other end (on node `peer`) publishes, `to` is
    /// where this end publishes.
    pub(crate) fn start(cluster: Arc<Cluster>, sub: Subscriber, to: Subject, peer: u64) -> Tunnel {
        let (in_tx, rx) = mpsc::unbounded_channel();
        let (tx, out_rx) = mpsc::channel(8);
        let taken = Arc::new(Taken::default());
        let task = tokio::spawn(
            Link {
                cluster,
                to,
                peer,
                seq_out: 0,
                seq_in: 0,
                sent: 0,
                allowed: WINDOW,
                received: 0,
                granted: WINDOW,
                partial: None,
                taken: taken.clone(),
            }
            .run(sub, in_tx, out_rx),
        );
        Tunnel {
            rx,
            tx: PollSender::new(tx),
            taken,
            task,
        }
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Stream for Tunnel {
    type Item = Result<Message, WsError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let m = std::task::ready!(self.rx.poll_recv(cx));
        if let Some(m) = &m {
            if !m.is_close() {
                self.taken.bytes.fetch_add(m.len() as u64, Relaxed);
                self.taken.notify.notify_one();
            }
        }
        Poll::Ready(m.map(Ok))
    }
}

impl Sink<Message> for Tunnel {
    type Error = WsError;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        self.tx
            .poll_reserve(cx)
            .map_err(|_| WsError::ConnectionClosed)
    }

    fn start_send(mut self: Pin<&mut Self>, m: Message) -> Result<(), WsError> {
        self.tx.send_item(m).map_err(|_| WsError::ConnectionClosed)
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        // The task publishes as soon as credit allows; NATS flushes its own buffer.
        Poll::Ready(Ok(()))
    }

    fn poll_close(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        self.tx.close();
        Poll::Ready(Ok(()))
    }
}

/// The task behind a [`Tunnel`]: framing, sequence numbers, credit, liveness.
struct Link {
    cluster: Arc<Cluster>,
    to: Subject,
    peer: u64,
    seq_out: u64,
    seq_in: u64,
    /// Data bytes sent, and the total the other end allows.
    sent: u64,
    allowed: u64,
    /// Data bytes received, and the total this end allowed.
    received: u64,
    granted: u64,
    /// The message being received: its kind and the chunks so far.
    partial: Option<(u8, BytesMut)>,
    taken: Arc<Taken>,
}

/// How a tunnel's task ended.
enum End {
    /// This end's pipe is gone (nothing more to deliver).
    Dropped,
    /// The route ended with this close, delivered to the pipe.
    Closed,
}

impl Link {
    async fn run(
        mut self,
        mut sub: Subscriber,
        inbound: mpsc::UnboundedSender<Message>,
        mut outbound: mpsc::Receiver<Message>,
    ) {
        let mut check = tokio::time::interval(CHECK);
        // Chunks of the message being sent, waiting for credit.
        let mut sending: Option<(u8, Bytes)> = None;
        let mut close_sent = false;
        let end = loop {
            if let Some((kind, rest)) = sending.take() {
                sending = self.send_chunks(kind, rest).await;
            }
            tokio::select! {
                m = sub.next() => match m {
                    Some(m) => match self.receive(m.payload) {
                        Ok(Some(message)) => {
                            let close = message.is_close();
                            if close && !close_sent {
                                // Answered like a WebSocket close.
                                let frame = match &message { Message::Close(f) => f.clone(), _ => None };
                                self.send_close(frame).await;
                            }
                            if inbound.send(message).is_err() && !close {
                                break End::Dropped;
                            }
                            if close {
                                break End::Closed;
                            }
                        }
                        Ok(None) => {}
                        Err(why) => {
                            let _ = inbound.send(close(code::RELAY_LINK_BROKEN, why));
                            self.send_close(close_frame(code::RELAY_LINK_BROKEN, why)).await;
                            break End::Closed;
                        }
                    },
                    None => {
                        let _ = inbound.send(close(code::RELAY_PEER_LOST, "relay: the link to the other relay node was lost"));
                        break End::Closed;
                    }
                },
                _ = self.taken.notify.notified() => self.grant().await,
                m = outbound.recv(), if sending.is_none() && !close_sent => match m {
                    Some(Message::Binary(b)) => sending = Some((BINARY, b)),
                    Some(Message::Text(t)) => sending = Some((TEXT, Bytes::from(t))),
                    Some(Message::Close(f)) => {
                        self.send_close(f).await;
                        close_sent = true;
                    }
                    // Each hop keeps its own keep-alive; the nodes' heartbeats cover this one.
                    Some(_) => {}
                    None => break End::Dropped,
                },
                _ = check.tick() => {
                    if !self.cluster.alive(self.peer) {
                        let _ = inbound.send(close(code::RELAY_PEER_LOST, "relay: the other relay node stopped answering"));
                        break End::Closed;
                    }
                }
            }
        };
        if matches!(end, End::Dropped) && !close_sent {
            self.send_close(close_frame(
                code::RELAY_PEER_LOST,
                "relay: the other end's connection was lost",
            ))
            .await;
        }
        let _ = sub.unsubscribe().await;
    }

    /// Publishes chunks of `rest` while credit lasts; returns what is left.
    async fn send_chunks(&mut self, kind: u8, mut rest: Bytes) -> Option<(u8, Bytes)> {
        loop {
            if self.sent >= self.allowed {
                return Some((kind, rest));
            }
            let n = rest.len().min(CHUNK);
            let chunk = rest.split_to(n);
            let more = !rest.is_empty();
            self.sent += n as u64;
            self.publish(if more { kind | MORE } else { kind }, &chunk)
                .await;
            if !more {
                return None;
            }
        }
    }

    /// Grants more credit once the pipe took a quarter of the window since the last grant.
    async fn grant(&mut self) {
        let taken = self.taken.bytes.load(Relaxed);
        if taken + WINDOW >= self.granted + WINDOW / 4 {
            self.granted = taken + WINDOW;
            let total = self.granted.to_be_bytes();
            self.publish(CREDIT, &total).await;
        }
    }

    async fn send_close(&mut self, frame: Option<CloseFrame>) {
        let mut body = Vec::new();
        if let Some(f) = frame {
            body.extend_from_slice(&u16::from(f.code).to_be_bytes());
            body.extend_from_slice(f.reason.as_bytes());
        }
        self.publish(CLOSE, &body).await;
    }

    async fn publish(&mut self, kind: u8, body: &[u8]) {
        let mut m = BytesMut::with_capacity(9 + body.len());
        m.put_u8(kind);
        m.put_u64(self.seq_out);
        m.put_slice(body);
        self.seq_out += 1;
        // A publish fails only when the client is closed: the node check then ends the route.
        let _ = self.cluster.nats.publish(self.to.clone(), m.freeze()).await;
    }

    /// Takes one tunnel message: a whole WebSocket message when it completes one.
    fn receive(&mut self, mut m: Bytes) -> Result<Option<Message>, &'static str> {
        if m.len() < 9 {
            return Err("relay: a malformed message between relay nodes");
        }
        let kind = m[0];
        let seq = u64::from_be_bytes(m[1..9].try_into().expect("8 bytes"));
        if seq != self.seq_in {
            return Err("relay: messages between relay nodes were lost");
        }
        self.seq_in += 1;
        let body = m.split_off(9);
        match kind & !MORE {
            BINARY | TEXT => {
                self.received += body.len() as u64;
                if self.received > self.granted + CHUNK as u64 {
                    return Err("relay: the other relay node sent beyond its credit");
                }
                let done = kind & MORE == 0;
                let whole = match self.partial.take() {
                    None if done => body,
                    None => {
                        self.partial = Some((kind & !MORE, BytesMut::from(&body[..])));
                        return Ok(None);
                    }
                    Some((k, mut buf)) => {
                        if k != kind & !MORE {
                            return Err("relay: a malformed message between relay nodes");
                        }
                        buf.extend_from_slice(&body);
                        if !done {
                            self.partial = Some((k, buf));
                            return Ok(None);
                        }
                        buf.freeze()
                    }
                };
                if kind & !MORE == BINARY {
                    Ok(Some(Message::Binary(whole)))
                } else {
                    match Utf8Bytes::try_from(whole) {
                        Ok(text) => Ok(Some(Message::Text(text))),
                        Err(_) => Err("relay: a malformed message between relay nodes"),
                    }
                }
            }
            CREDIT => {
                let total: [u8; 8] = body[..]
                    .try_into()
                    .map_err(|_| "relay: a malformed message between relay nodes")?;
                self.allowed = self.allowed.max(u64::from_be_bytes(total));
                Ok(None)
            }
            CLOSE => {
                if body.is_empty() {
                    return Ok(Some(Message::Close(None)));
                }
                if body.len() < 2 {
                    return Err("relay: a malformed message between relay nodes");
                }
                let c = u16::from_be_bytes([body[0], body[1]]);
                let reason = String::from_utf8_lossy(&body[2..]).into_owned();
                Ok(Some(Message::Close(Some(CloseFrame {
                    code: c.into(),
                    reason: reason.into(),
                }))))
            }
            _ => Err("relay: a malformed message between relay nodes"),
        }
    }
}

fn close_frame(c: u16, reason: &'static str) -> Option<CloseFrame> {
    Some(CloseFrame {
        code: c.into(),
        reason: reason.into(),
    })
}

fn close(c: u16, reason: &'static str) -> Message {
    Message::Close(close_frame(c, reason))
}
