//! One connection, between the wire below and the handles above (`Caller`, `Peer`, `Client`,
//! `Server`); its state is changed only here. A frame's path through it:
//!
//! - `guarded_io.rs`: the bytes under the WebSocket, watched for stalls, read ahead;
//! - `secure_io.rs`: on an end-to-end encrypted (relayed) connection, the messages under the
//!   reader and writer, sealed and opened;
//! - `reader.rs`: the reader task takes each message, parses its frame and hands it on;
//! - `incoming.rs`: a CALL, STREAM, UPLOAD, DUPLEX or NOTIFY from the peer runs its handler, whose answer
//!   comes back through the send paths below;
//! - `outgoing.rs`: the calls this side makes, and the REPLY, ERROR, ITEM and END that
//!   complete them;
//! - `input.rs`: the items a caller sends in a client or bidirectional stream (PUSH, PUSH_END,
//!   PULL), on both sides;
//! - this file: the shared state, the start, the send paths (direct writes, and the queue of
//!   `send_queue.rs`), closing and finishing;
//! - `writer.rs`: the writer task drains the queue into the socket.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll};

use futures_util::{FutureExt, Sink, Stream, StreamExt};
use tokio::sync::{Notify, Semaphore, oneshot, watch};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::close::{CloseInfo, code};
use crate::config::Config;
use crate::connection::guarded_io::{MessageClock, Stall};
use crate::error::CallError;
use crate::stats::{Counters, StatsHandle};
use crate::wire::codec::Codec;
use crate::wire::{self};

mod dispatch;
pub(crate) mod guarded_io;
mod incoming;
mod input;
mod outgoing;
mod reader;
pub(crate) mod secure_io;
mod send_queue;
mod writer;

pub(crate) use dispatch::{CancelCall, Dispatch, IncomingCall, Started};
pub use dispatch::{ConnData, Handler};
use incoming::IncomingEntry;
pub(crate) use incoming::serving_deadline;
pub use input::Input;
pub(crate) use outgoing::ActiveStream;
use outgoing::PendingMap;

use send_queue::{SendQueue, TrySendError};

/// A hasher for call ids (already well spread; one multiply keeps the high bits useful).
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8 | u64::from(*b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type IdMap<V> = HashMap<u32, V, BuildHasherDefault<IdHasher>>;

/// Called once when a connection has closed.
pub(crate) type OnClose = Box<dyn FnOnce(&Arc<ConnInner>, &CloseInfo) + Send>;

/// Everything a new connection is set up with.
pub(crate) struct ConnSetup {
    pub(crate) id: u64,
    pub(crate) codec: Codec,
    pub(crate) config: Arc<Config>,
    pub(crate) dispatch: Arc<dyn Dispatch>,
    pub(crate) stats_parent: Option<Arc<Counters>>,
    pub(crate) data: Option<ConnData>,
    pub(crate) on_close: Option<OnClose>,
    /// Present when the runtime opened the byte stream itself ([`GuardedIo`](guarded_io::GuardedIo)).
    pub(crate) message_clock: Option<Arc<MessageClock>>,
}

/// The state of one connection, shared by its tasks and all handles to it.
pub(crate) struct ConnInner {
    pub(crate) id: u64,
    pub(crate) codec: Codec,
    pub(crate) config: Arc<Config>,
    queue: SendQueue,
    /// Frames handed to the writer task and not yet fed into the socket: raised before a frame
    /// enters the queue, lowered by the writer under the socket lock once it fed them. A direct
    /// write (which skips the queue) happens only while this is 0, checked under the same lock,
    /// so it never overtakes a frame queued before it (HELLO above all).
    queued: AtomicUsize,
    /// The write half, used by the writer task for batches and by a lone call for a direct
    /// write (see [`ConnInner::send_direct`]).
    /// `None` once the connection finished (dropping it closes the socket).
    sink: tokio::sync::Mutex<Option<BoxSink>>,
    /// `true` while frames fed by the reader may wait in the write buffer unflushed.
    unflushed: AtomicBool,
    /// The close this side asked for; `Some` once closing started. Only the first request wins.
    close_req: watch::Sender<Option<CloseInfo>>,
    /// Notified by the writer once it sent the requested close frame.
    close_sent: Notify,
    /// The final outcome; `Some` once the connection is finished.
    closed: watch::Sender<Option<CloseInfo>>,
    /// `true` once closing started or finished: new calls fail at once.
    closing: AtomicBool,
    /// `true` when the application closed this side (calls fail with `Closed`, not `Disconnected`).
    app_closed: AtomicBool,
    pending: Mutex<PendingMap>,
    incoming: Mutex<IdMap<IncomingEntry>>,
    /// The PUSH credit of each call of this side that sends input (`input.rs`).
    pumps: Mutex<IdMap<Arc<Semaphore>>>,
    /// Notification handlers from the peer that may still start (PROTOCOL §8).
    notify_permits: Semaphore,
    next_id: AtomicU32,
    /// The services calls from the peer go to.
    pub(crate) dispatch: Arc<dyn Dispatch>,
    pub(crate) stats: StatsHandle,
    pub(crate) data: Option<ConnData>,
    pub(crate) peer_services: OnceLock<HashMap<String, String>>,
    on_close: Mutex<Option<OnClose>>,
    message_clock: Option<Arc<MessageClock>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Starts the reader and writer tasks of a connection over an open WebSocket and sends HELLO.
pub(crate) fn start<S>(ws: S, setup: ConnSetup) -> Arc<ConnInner>
where
    S: Stream<Item = Result<Message, WsError>>
        + Sink<Message, Error = WsError>
        + Send
        + Unpin
        + 'static,
{
    let queue = SendQueue::new(setup.config.send_queue);
    let notify_permits = Semaphore::new(setup.config.max_incoming_notifications);
    let (sink, stream) = ws.split();
    let conn = Arc::new(ConnInner {
        sink: tokio::sync::Mutex::new(Some(Box::pin(sink))),
        unflushed: AtomicBool::new(false),
        id: setup.id,
        codec: setup.codec,
        config: setup.config,
        queue,
        queued: AtomicUsize::new(0),
        close_req: watch::channel(None).0,
        close_sent: Notify::new(),
        closed: watch::channel(None).0,
        closing: AtomicBool::new(false),
        app_closed: AtomicBool::new(false),
        pending: Mutex::default(),
        incoming: Mutex::default(),
        pumps: Mutex::default(),
        notify_permits,
        next_id: AtomicU32::new(1),
        dispatch: setup.dispatch,
        stats: StatsHandle::new(setup.stats_parent),
        data: setup.data,
        peer_services: OnceLock::new(),
        on_close: Mutex::new(setup.on_close),
        message_clock: setup.message_clock,
    });
    conn.stats.add(|c| &c.connections_opened, 1);
    conn.stats.add(|c| &c.connections_open, 1);
    let hello = conn.hello_frame();
    assert!(
        conn.try_send_message(wire::message(conn.codec, hello)),
        "a fresh queue has room for HELLO"
    );
    let (stop_tx, stop_rx) = oneshot::channel();
    // Subscribed before the connection is handed out, so no close request can be missed.
    let (writer_close, reader_close) = (conn.close_req.subscribe(), conn.close_req.subscribe());
    tokio::spawn(writer::writer(conn.clone(), writer_close, stop_rx));
    let c = conn.clone();
    tokio::spawn(async move {
        let read = AssertUnwindSafe(reader::reader(c.clone(), stream, reader_close, stop_tx));
        if read.catch_unwind().await.is_err() {
            // A bug, or a hook of the application that panicked: the connection must still
            // finish (fail its calls, run its close hooks, let a client reconnect).
            tracing::error!(conn = c.id, "the connection's reader panicked");
            if let Ok(mut sink) = c.sink.try_lock() {
                sink.take();
            }
            c.finish(CloseInfo::new(code::INTERNAL_ERROR, "internal error"));
        }
    });
    conn
}

impl ConnInner {
    fn hello_frame(&self) -> Vec<u8> {
        let services = self.dispatch.fingerprints();
        wire::hello(
            self.codec,
            services.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        )
    }

    /// Whether new calls fail at once because the connection is closing or closed.
    #[inline]
    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// The error calls get on this connection once it is closing.
    pub(crate) fn closed_error(&self) -> CallError {
        if self.app_closed.load(Ordering::Acquire) {
            CallError::Closed
        } else {
            CallError::Disconnected
        }
    }

    /// The application closes this side: calls fail with `Closed` rather than `Disconnected`.
    pub(crate) fn close_by_application(&self, code: u16, reason: &str) {
        self.app_closed.store(true, Ordering::Release);
        self.initiate_close(code, reason);
    }

    /// Counts a reconnect of the client this connection belongs to.
    pub(crate) fn count_reconnect(&self) {
        self.stats.own.reconnects.fetch_add(1, Ordering::Relaxed);
    }

    /// Queues a broadcast notification without waiting; a full queue drops it, and counts it
    /// (PROTOCOL: a stalled client never blocks a broadcast). Returns whether it was queued.
    pub(crate) fn broadcast(&self, msg: Message) -> bool {
        let queued = self.try_send_message(msg);
        if queued {
            self.stats.add(|c| &c.notifications_sent, 1);
        } else {
            self.stats.add(|c| &c.dropped_frames, 1);
        }
        queued
    }

    /// Asks to close with `code` and `reason` (shortened to 123 bytes); the first request wins.
    pub(crate) fn initiate_close(&self, code: u16, reason: &str) {
        self.closing.store(true, Ordering::Release);
        self.close_req.send_if_modified(|v| {
            if v.is_none() {
                *v = Some(CloseInfo::new(code, reason));
                true
            } else {
                false
            }
        });
    }

    /// A write failed: if it stalled (the peer does not read), the connection closes with 4003.
    /// Other failures (a reset link) are the reader's to notice.
    pub(super) fn on_write_error(&self, e: &WsError) {
        if let WsError::Io(io) = e {
            if let Some(stall) = Stall::of(io) {
                tracing::debug!(conn = self.id, %stall, "closing: the peer does not read");
                self.initiate_close(stall.close_code(), stall.reason());
            }
        }
    }

    /// The final close outcome, once the connection is finished.
    pub(crate) fn close_info(&self) -> Option<CloseInfo> {
        self.closed.borrow().clone()
    }

    /// Waits until the connection is finished.
    pub(crate) async fn wait_closed(&self) -> CloseInfo {
        let mut rx = self.closed.subscribe();
        let r = rx.wait_for(|v| v.is_some()).await.map(|v| v.clone());
        match r {
            Ok(Some(info)) => info,
            _ => CloseInfo::new(code::ABNORMAL, "connection lost"),
        }
    }

    /// Queues a frame, waiting for room in the send queue.
    #[inline]
    pub(crate) async fn send(&self, frame: Vec<u8>) -> Result<(), CallError> {
        self.queued.fetch_add(1, Ordering::AcqRel);
        let sent = self.queue.send(wire::message(self.codec, frame)).await;
        sent.map_err(|_| {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            self.closed_error()
        })
    }

    /// Whether every frame handed to the writer has been fed into the socket. Only meaningful
    /// while holding the socket lock (the writer lowers the count under it).
    fn nothing_queued(&self) -> bool {
        self.queued.load(Ordering::Acquire) == 0
    }

    /// Sends a frame on the caller's task, skipping the hop to the writer task, when nothing is
    /// queued and the socket is free; otherwise queues it. Used by a call that is the only one
    /// in flight (with more in flight, queueing batches frames into fewer writes).
    pub(crate) async fn send_direct(&self, frame: Vec<u8>) -> Result<(), CallError> {
        if self.nothing_queued() {
            if let Ok(mut guard) = self.sink.try_lock() {
                // Nothing queued while we hold the socket: every earlier frame has been written.
                if let (true, Some(sink)) = (self.nothing_queued(), guard.as_mut()) {
                    let msg = wire::message(self.codec, frame);
                    self.stats.add(|c| &c.frames_sent, 1);
                    self.stats.add(|c| &c.bytes_sent, message_len(&msg) as u64);
                    let sent = async {
                        feed_quietly(sink, msg).await?;
                        quietly(|cx| sink.as_mut().poll_flush(cx)).await
                    };
                    return sent.await.map_err(|e| {
                        self.on_write_error(&e);
                        self.closed_error()
                    });
                }
            }
        }
        self.send(frame).await
    }

    /// Feeds a frame into the socket's write buffer without flushing, from the reader task, when
    /// nothing is queued and the socket is free; returns the frame back otherwise. The reader
    /// flushes once no more input is ready ([`flush_direct`](Self::flush_direct)), so replies to
    /// a burst of calls leave in one write and a lone call's reply skips the writer task.
    pub(crate) async fn feed_direct(&self, frame: Vec<u8>) -> Option<Vec<u8>> {
        if !self.nothing_queued() {
            return Some(frame);
        }
        let Ok(mut guard) = self.sink.try_lock() else {
            return Some(frame);
        };
        if !self.nothing_queued() {
            return Some(frame);
        }
        // A finished connection drops the frame.
        let sink = guard.as_mut()?;
        let msg = wire::message(self.codec, frame);
        self.stats.add(|c| &c.frames_sent, 1);
        self.stats.add(|c| &c.bytes_sent, message_len(&msg) as u64);
        match feed_quietly(sink, msg).await {
            Ok(()) => self.unflushed.store(true, Ordering::Release),
            Err(e) => self.on_write_error(&e),
        }
        None
    }

    /// Flushes what [`feed_direct`](Self::feed_direct) left in the write buffer. If the writer
    /// task holds the socket, its own flush covers it.
    pub(crate) async fn flush_direct(&self) {
        if self.unflushed.load(Ordering::Acquire) {
            if let Ok(mut guard) = self.sink.try_lock() {
                self.unflushed.store(false, Ordering::Release);
                if let Some(sink) = guard.as_mut() {
                    if let Err(e) = quietly(|cx| sink.as_mut().poll_flush(cx)).await {
                        self.on_write_error(&e);
                    }
                }
            }
        }
    }

    /// Queues a frame without waiting; returns `false` when the queue is full or closed.
    fn try_send_message(&self, msg: Message) -> bool {
        self.queued.fetch_add(1, Ordering::AcqRel);
        let sent = self.queue.try_send(msg).is_ok();
        if !sent {
            self.queued.fetch_sub(1, Ordering::AcqRel);
        }
        sent
    }

    /// Queues a small control frame from a synchronous context (drop, poll), spawning a send if
    /// the queue is full.
    pub(crate) fn send_soon(self: &Arc<Self>, frame: Vec<u8>) {
        self.queued.fetch_add(1, Ordering::AcqRel);
        match self.queue.try_send(wire::message(self.codec, frame)) {
            Ok(()) => {}
            Err(TrySendError::Closed) => {
                self.queued.fetch_sub(1, Ordering::AcqRel);
            }
            Err(TrySendError::Full(msg)) => match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    let conn = Arc::clone(self);
                    rt.spawn(async move {
                        if conn.queue.send(msg).await.is_err() {
                            conn.queued.fetch_sub(1, Ordering::AcqRel);
                        }
                    });
                }
                Err(_) => {
                    self.queued.fetch_sub(1, Ordering::AcqRel);
                }
            },
        }
    }

    /// Fails everything in flight and records the outcome; runs once, when the reader ends.
    pub(super) fn finish(self: &Arc<Self>, info: CloseInfo) {
        if self.closed.borrow().is_some() {
            return;
        }
        self.closing.store(true, Ordering::Release);
        self.queue.close();
        self.fail_outgoing(self.closed_error());
        self.abort_incoming();
        self.stats.sub(|c| &c.connections_open, 1);
        tracing::debug!(conn = self.id, code = info.code, reason = %info.reason, "connection closed");
        self.closed.send_replace(Some(info.clone()));
        let cb = lock(&self.on_close).take();
        if let Some(cb) = cb {
            if std::panic::catch_unwind(AssertUnwindSafe(|| cb(self, &info))).is_err() {
                tracing::error!(conn = self.id, "a close hook panicked");
            }
        }
    }
}

/// Runs a socket operation of a direct write: polls it once with a waker that does nothing and,
/// only if it is not done at once (the socket is full), awaits it with the task's own waker.
///
/// tokio-tungstenite shares its wakers between reading and writing (a read may have to write a
/// pong, a write may have to read): whenever the socket becomes readable it wakes the task that
/// last wrote as well as the reader. A caller that wrote its CALL directly would be woken by
/// its own reply's arrival — before the reader has even read it: a wasted poll, often on the
/// other worker thread, which then stays awake and takes the I/O driver (measured: every
/// sequential call then crossed threads). A write that completes at once registers nothing.
async fn quietly<T>(mut op: impl FnMut(&mut Context<'_>) -> Poll<T>) -> T {
    let first = op(&mut Context::from_waker(
        futures_util::task::noop_waker_ref(),
    ));
    match first {
        Poll::Ready(r) => r,
        Poll::Pending => std::future::poll_fn(op).await,
    }
}

/// Feeds `msg` into the socket's write buffer (no flush), [`quietly`].
async fn feed_quietly(sink: &mut BoxSink, msg: Message) -> Result<(), WsError> {
    quietly(|cx| sink.as_mut().poll_ready(cx)).await?;
    sink.as_mut().start_send(msg)
}

pub(super) fn message_len(m: &Message) -> usize {
    match m {
        Message::Binary(b) | Message::Ping(b) | Message::Pong(b) => b.len(),
        Message::Text(t) => t.len(),
        Message::Close(_) | Message::Frame(_) => 0,
    }
}

type BoxSink = Pin<Box<dyn Sink<Message, Error = WsError> + Send>>;
