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
//! - the other node's liveness is its node heartbeat or this tunnel's traffic
//!   (`Cluster::lost`); a node silent for [`super::NODE_SILENCE`] ends the route with
//!   `RELAY_PEER_LOST`.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;

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
/// Several whole small messages, each a kind (1 or 2), a length (u32) and its bytes.
const BATCH: u8 = 5;
/// Largest message sent in a batch rather than on its own.
const BATCH_ITEM: usize = 16 << 10;
/// What each WebSocket message costs in credit beyond its bytes, so that a window bounds the
/// number of NATS messages in flight too (a subscription buffers a number of messages).
pub(crate) const PER_MESSAGE: u64 = 1 << 10;

/// How often an end checks that the other node is alive.
const CHECK: Duration = Duration::from_millis(100);

/// This node's end of a tunnel: a stream of the messages the other node's WebSocket sent and a
/// sink for the messages to deliver there.
pub(crate) struct Tunnel {
    /// Messages from the other end, each with the credit its taking frees.
    rx: mpsc::UnboundedReceiver<(Message, u64)>,
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
        Poll::Ready(m.map(|(m, credit)| {
            if credit > 0 {
                self.taken.bytes.fetch_add(credit, Relaxed);
                self.taken.notify.notify_one();
            }
            Ok(m)
        }))
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
        inbound: mpsc::UnboundedSender<(Message, u64)>,
        mut outbound: mpsc::Receiver<Message>,
    ) {
        let mut check = tokio::time::interval(CHECK);
        // Chunks of the message being sent, waiting for credit.
        let mut sending: Option<(u8, Bytes)> = None;
        let mut close_sent = false;
        // A message taken from the pipe and not yet sent (it did not fit the last batch).
        let mut stash: Option<Message> = None;
        // What one NATS message brought, reused.
        let mut arrived = Vec::new();
        // When the tunnel last brought something: the other node is alive too.
        let mut heard = Instant::now();
        let end = loop {
            if let Some((kind, rest)) = sending.take() {
                sending = self.send_chunks(kind, rest).await;
            }
            if sending.is_none() && !close_sent {
                if let Some(m) = stash.take() {
                    match m {
                        Message::Binary(b) => {
                            (sending, stash) = self.send_data(BINARY, b, &mut outbound).await
                        }
                        Message::Text(t) => {
                            (sending, stash) = self.send_data(TEXT, t.into(), &mut outbound).await
                        }
                        Message::Close(f) => {
                            self.send_close(f).await;
                            close_sent = true;
                        }
                        // Each hop keeps its own keep-alive: a ping is answered here, as the
                        // WebSocket it stands for would (whether the other node lives is
                        // `Cluster::lost`'s to say).
                        Message::Ping(p) => {
                            let _ = inbound.send((Message::Pong(p), 0));
                        }
                        _ => {}
                    }
                    continue;
                }
            }
            tokio::select! {
                m = sub.next() => match m {
                    Some(m) => {
                        heard = Instant::now();
                        let outcome = self.receive(m.payload, &mut arrived);
                        let mut closed = false;
                        for (message, credit) in arrived.drain(..) {
                            let close = message.is_close();
                            if close && !close_sent {
                                // Answered like a WebSocket close.
                                let frame = match &message { Message::Close(f) => f.clone(), _ => None };
                                self.send_close(frame).await;
                            }
                            closed |= close;
                            if inbound.send((message, credit)).is_err() && !close {
                                break;
                            }
                        }
                        if let Err(why) = outcome {
                            let _ = inbound.send((close(code::RELAY_LINK_BROKEN, why), 0));
                            self.send_close(close_frame(code::RELAY_LINK_BROKEN, why)).await;
                            break End::Closed;
                        }
                        if closed {
                            break End::Closed;
                        }
                        if inbound.is_closed() {
                            break End::Dropped;
                        }
                    }
                    None => {
                        let _ = inbound.send((close(code::RELAY_PEER_LOST, "relay: the link to the other relay node was lost"), 0));
                        break End::Closed;
                    }
                },
                _ = self.taken.notify.notified() => self.grant().await,
                m = outbound.recv(), if sending.is_none() && stash.is_none() && !close_sent => match m {
                    Some(m) => stash = Some(m),
                    None => break End::Dropped,
                },
                _ = check.tick() => {
                    if self.cluster.lost(self.peer, heard) {
                        let _ = inbound.send((close(code::RELAY_PEER_LOST, "relay: the other relay node stopped answering"), 0));
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

    /// Sends one data message: a small one together with the small ones queued behind it (one
    /// NATS message for a burst of calls), a large one in chunks. Returns what waits for credit,
    /// and a message taken from the queue that did not fit the batch.
    async fn send_data(
        &mut self,
        kind: u8,
        first: Bytes,
        queue: &mut mpsc::Receiver<Message>,
    ) -> (Option<(u8, Bytes)>, Option<Message>) {
        if first.len() > BATCH_ITEM || self.sent >= self.allowed {
            return (self.send_chunks(kind, first).await, None);
        }
        let mut batch = BytesMut::with_capacity(9 + 5 + first.len());
        batch.put_u8(BATCH);
        batch.put_u64(self.seq_out);
        // Each item: its kind, length and bytes; it costs its bytes and `PER_MESSAGE` in credit.
        fn add(batch: &mut BytesMut, kind: u8, m: &[u8]) -> u64 {
            batch.put_u8(kind);
            batch.put_u32(m.len() as u32);
            batch.put_slice(m);
            m.len() as u64 + PER_MESSAGE
        }
        let mut data = add(&mut batch, kind, &first);
        let mut left = None;
        // A batch stays within a chunk and stops where the credit does, so it overshoots the
        // credit by no more than one item.
        while batch.len() + 5 + BATCH_ITEM <= CHUNK && self.sent + data < self.allowed {
            let Ok(next) = queue.try_recv() else { break };
            match &next {
                Message::Binary(b) if b.len() <= BATCH_ITEM => data += add(&mut batch, BINARY, b),
                Message::Text(t) if t.len() <= BATCH_ITEM => {
                    data += add(&mut batch, TEXT, t.as_bytes())
                }
                _ => {
                    left = Some(next);
                    break;
                }
            }
        }
        self.seq_out += 1;
        self.sent += data;
        let _ = self
            .cluster
            .nats
            .publish(self.to.clone(), batch.freeze())
            .await;
        (None, left)
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
            self.sent += n as u64 + if more { 0 } else { PER_MESSAGE };
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

    /// Takes one tunnel message into `out`: the WebSocket messages it completes.
    fn receive(&mut self, m: Bytes, out: &mut Vec<(Message, u64)>) -> Result<(), &'static str> {
        if m.first() == Some(&BATCH) {
            return self.receive_batch(m, out);
        }
        if let Some(message) = self.receive_one(m)? {
            out.push(message);
        }
        Ok(())
    }

    fn receive_batch(
        &mut self,
        mut m: Bytes,
        out: &mut Vec<(Message, u64)>,
    ) -> Result<(), &'static str> {
        const MALFORMED: &str = "relay: a malformed message between relay nodes";
        self.sequence(&m)?;
        if self.partial.is_some() {
            return Err(MALFORMED);
        }
        let mut body = m.split_off(9);
        while !body.is_empty() {
            if body.len() < 5 {
                return Err(MALFORMED);
            }
            let kind = body[0];
            let len = u32::from_be_bytes(body[1..5].try_into().expect("4 bytes")) as usize;
            if body.len() < 5 + len {
                return Err(MALFORMED);
            }
            let item = body.slice(5..5 + len);
            body = body.split_off(5 + len);
            let credit = len as u64 + PER_MESSAGE;
            self.received += credit;
            let message = match kind {
                BINARY => Message::Binary(item),
                TEXT => Message::Text(Utf8Bytes::try_from(item).map_err(|_| MALFORMED)?),
                _ => return Err(MALFORMED),
            };
            out.push((message, credit));
        }
        self.within_credit()
    }

    /// Checks a message's sequence number, and counts it.
    fn sequence(&mut self, m: &[u8]) -> Result<(), &'static str> {
        if m.len() < 9 {
            return Err("relay: a malformed message between relay nodes");
        }
        let seq = u64::from_be_bytes(m[1..9].try_into().expect("8 bytes"));
        if seq != self.seq_in {
            return Err("relay: messages between relay nodes were lost");
        }
        self.seq_in += 1;
        Ok(())
    }

    fn within_credit(&self) -> Result<(), &'static str> {
        // A sender may start a chunk (or a batch item) while below the allowance.
        if self.received > self.granted + CHUNK as u64 + PER_MESSAGE {
            return Err("relay: the other relay node sent beyond its credit");
        }
        Ok(())
    }

    /// Takes one tunnel message other than a batch: a whole WebSocket message when it
    /// completes one.
    fn receive_one(&mut self, mut m: Bytes) -> Result<Option<(Message, u64)>, &'static str> {
        self.sequence(&m)?;
        let kind = m[0];
        let body = m.split_off(9);
        match kind & !MORE {
            BINARY | TEXT => {
                let done = kind & MORE == 0;
                let chunk = body.len() as u64;
                self.received += chunk + if done { PER_MESSAGE } else { 0 };
                self.within_credit()?;
                // A chunk before the last is credited as it arrives (a message larger than the
                // window must not wait for credit its own first part holds); the last, with the
                // message's own cost, once the pipe takes the message.
                let early = |taken: &Taken| {
                    taken.bytes.fetch_add(chunk, Relaxed);
                    taken.notify.notify_one();
                };
                let whole = match self.partial.take() {
                    None if done => body,
                    None => {
                        self.partial = Some((kind & !MORE, BytesMut::from(&body[..])));
                        early(&self.taken);
                        return Ok(None);
                    }
                    Some((k, mut buf)) => {
                        if k != kind & !MORE {
                            return Err("relay: a malformed message between relay nodes");
                        }
                        buf.extend_from_slice(&body);
                        if !done {
                            self.partial = Some((k, buf));
                            early(&self.taken);
                            return Ok(None);
                        }
                        buf.freeze()
                    }
                };
                let credit = chunk + PER_MESSAGE;
                if kind & !MORE == BINARY {
                    Ok(Some((Message::Binary(whole), credit)))
                } else {
                    match Utf8Bytes::try_from(whole) {
                        Ok(text) => Ok(Some((Message::Text(text), credit))),
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
                    return Ok(Some((Message::Close(None), 0)));
                }
                if body.len() < 2 {
                    return Err("relay: a malformed message between relay nodes");
                }
                let c = u16::from_be_bytes([body[0], body[1]]);
                let reason = String::from_utf8_lossy(&body[2..]).into_owned();
                let frame = CloseFrame {
                    code: c.into(),
                    reason: reason.into(),
                };
                Ok(Some((Message::Close(Some(frame)), 0)))
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
