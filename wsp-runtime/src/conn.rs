//! One connection: shared state, the reader task (parses and dispatches frames) and the writer
//! task (drains the send queue, batching frames into one flush).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::ControlFlow;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{FutureExt, Sink, SinkExt, Stream, StreamExt};
use tokio::sync::{Notify, Semaphore, mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::close::{CloseInfo, code};
use crate::config::Config;
use crate::context::{Canceller, ConnData};
use crate::error::{CallError, ServiceError};
use crate::guarded_io::{MessageClock, Stall};
use crate::service::{CallKind, Observer, Registry, Service};
use crate::stats::{Counters, StatsHandle};
use crate::wire::codec::{Codec, Payload};
use crate::wire::{self, Frame, FrameError};

mod dispatch;
mod send_queue;

use send_queue::{SendQueue, TrySendError};

/// Most frames fed to the socket before one flush.
const MAX_BATCH: usize = 256;

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

/// An event for a stream this side consumes.
pub(crate) enum StreamEvent {
    Item(Bytes),
    End,
    Error(CallError),
}

/// A call this side made, waiting for its outcome.
pub(crate) enum Pending {
    Unary(oneshot::Sender<Result<Payload, CallError>>),
    /// `credit`: ITEMs the peer may still send (PROTOCOL §2.6).
    Stream {
        tx: mpsc::UnboundedSender<StreamEvent>,
        credit: u32,
    },
}

#[derive(Default)]
struct PendingMap {
    map: IdMap<Pending>,
    /// Set once the connection finished: no more calls are accepted.
    closed: Option<CallError>,
}

/// A call from the peer whose handler is running.
struct IncomingEntry {
    abort: tokio::task::AbortHandle,
    ctx: Canceller,
    credit: Option<Arc<Semaphore>>,
}

/// Called once when a connection has closed.
pub(crate) type OnClose = Box<dyn FnOnce(&Arc<ConnInner>, &CloseInfo) + Send>;

/// Everything a new connection is set up with.
pub(crate) struct ConnSetup {
    pub(crate) id: u64,
    pub(crate) codec: Codec,
    pub(crate) config: Arc<Config>,
    pub(crate) shared_services: Option<Arc<Registry>>,
    pub(crate) stats_parent: Option<Arc<Counters>>,
    pub(crate) data: Option<ConnData>,
    pub(crate) observer: Option<Observer>,
    pub(crate) on_close: Option<OnClose>,
    /// Present when the runtime opened the byte stream itself ([`GuardedIo`]).
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
    pub(crate) app_closed: AtomicBool,
    pending: Mutex<PendingMap>,
    incoming: Mutex<IdMap<IncomingEntry>>,
    /// Notification handlers from the peer that may still start (PROTOCOL §8).
    notify_permits: Semaphore,
    next_id: AtomicU32,
    pub(crate) local: Registry,
    shared: Option<Arc<Registry>>,
    pub(crate) stats: StatsHandle,
    pub(crate) data: Option<ConnData>,
    observer: Option<Observer>,
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
        notify_permits,
        next_id: AtomicU32::new(1),
        local: Registry::default(),
        shared: setup.shared_services,
        stats: StatsHandle::new(setup.stats_parent),
        data: setup.data,
        observer: setup.observer,
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
    tokio::spawn(writer(conn.clone(), writer_close, stop_rx));
    let c = conn.clone();
    tokio::spawn(async move {
        let read = AssertUnwindSafe(reader(c.clone(), stream, reader_close, stop_tx));
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
        let mut services = self.local.fingerprints();
        if let Some(shared) = &self.shared {
            for (k, v) in shared.fingerprints() {
                if !services.iter().any(|(n, _)| *n == k) {
                    services.push((k, v));
                }
            }
        }
        services.sort();
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

    /// Closes with 4004 if a message has been arriving for longer than the message timeout
    /// (PROTOCOL §8). Like a protocol error, the reader then waits for the peer's close frame.
    fn check_message_clock(&self) {
        let overdue = self
            .message_clock
            .as_ref()
            .is_some_and(|c| c.overdue(self.config.message_timeout));
        if overdue && !self.is_closing() {
            self.stats.add(|c| &c.invalid_frames, 1);
            self.initiate_close(code::MESSAGE_TIMEOUT, Stall::Message.reason());
        }
    }

    /// A write failed: if it stalled (the peer does not read), the connection closes with 4003.
    /// Other failures (a reset link) are the reader's to notice.
    fn on_write_error(&self, e: &WsError) {
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

    #[inline]
    pub(crate) fn next_id(&self) -> u32 {
        loop {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            if id != 0 {
                return id;
            }
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
                    return sink.send(msg).await.map_err(|e| {
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
        match sink.feed(msg).await {
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
                    if let Err(e) = sink.flush().await {
                        self.on_write_error(&e);
                    }
                }
            }
        }
    }

    /// Queues a frame without waiting; returns `false` when the queue is full or closed.
    pub(crate) fn try_send_message(&self, msg: Message) -> bool {
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

    /// Registers a call in flight; returns whether it is the only one.
    pub(crate) fn insert_pending(&self, id: u32, p: Pending) -> Result<bool, CallError> {
        let mut map = lock(&self.pending);
        if let Some(e) = &map.closed {
            return Err(e.clone());
        }
        let alone = map.map.is_empty();
        map.map.insert(id, p);
        drop(map);
        self.stats.add(|c| &c.calls_in_flight, 1);
        Ok(alone)
    }

    pub(crate) fn take_pending(&self, id: u32) -> Option<Pending> {
        let p = lock(&self.pending).map.remove(&id);
        if p.is_some() {
            self.stats.sub(|c| &c.calls_in_flight, 1);
        }
        p
    }

    /// Grants the peer `n` more ITEMs for stream `id` and tells it with CREDIT.
    pub(crate) fn grant_credit(self: &Arc<Self>, id: u32, n: u32) {
        {
            let mut map = lock(&self.pending);
            match map.map.get_mut(&id) {
                Some(Pending::Stream { credit, .. }) => *credit = credit.saturating_add(n),
                _ => return,
            }
        }
        self.send_soon(wire::credit(self.codec, id, n));
    }

    fn lookup(&self, service: &str) -> Option<Arc<dyn Service>> {
        self.local
            .get(service)
            .or_else(|| self.shared.as_ref()?.get(service))
    }

    fn error_frame(&self, id: u32, e: &ServiceError) -> Vec<u8> {
        let details = e.details.as_deref();
        wire::error(self.codec, id, e.code as u32, &e.message, details).unwrap_or_else(|err| {
            tracing::warn!(error = %err, "could not encode error details");
            self.error_frame(id, &ServiceError::internal("internal error"))
        })
    }

    async fn send_error(&self, id: u32, e: ServiceError) {
        self.stats.add(|c| &c.errors_sent, 1);
        let _ = self.send(self.error_frame(id, &e)).await;
    }

    /// Handlers running for the peer's calls (a relaxed counter, no lock).
    fn incoming_len(&self) -> usize {
        self.stats.own.incoming_in_flight.load(Ordering::Relaxed) as usize
    }

    /// A REPLY (`Ok`) or ERROR (`Err`) for call `id`. A REPLY for a stream is a protocol
    /// error (PROTOCOL §2.3); the stream fails with the connection.
    fn complete(&self, id: u32, result: Result<Payload, CallError>) -> Result<(), FrameError> {
        let mut map = lock(&self.pending);
        let is_reply_to_stream =
            result.is_ok() && matches!(map.map.get(&id), Some(Pending::Stream { .. }));
        if is_reply_to_stream {
            return Err(wrong_answer("REPLY for a stream"));
        }
        let entry = map.map.remove(&id);
        drop(map);
        match entry {
            Some(Pending::Unary(tx)) => {
                self.stats.sub(|c| &c.calls_in_flight, 1);
                let _ = tx.send(result);
            }
            Some(Pending::Stream { tx, .. }) => {
                self.stats.sub(|c| &c.calls_in_flight, 1);
                if let Err(e) = result {
                    let _ = tx.send(StreamEvent::Error(e));
                }
            }
            None => {}
        }
        Ok(())
    }

    fn stream_item(&self, id: u32, item: Bytes) -> Result<(), FrameError> {
        let mut map = lock(&self.pending);
        match map.map.get_mut(&id) {
            Some(Pending::Stream { tx, credit }) => {
                if *credit == 0 {
                    return Err(FrameError {
                        close_code: code::PROTOCOL_ERROR,
                        reason: "more ITEMs than granted".into(),
                    });
                }
                *credit -= 1;
                let _ = tx.send(StreamEvent::Item(item));
                Ok(())
            }
            Some(Pending::Unary(_)) => Err(wrong_answer("ITEM for a unary call")),
            None => Ok(()),
        }
    }

    fn stream_end(&self, id: u32) -> Result<(), FrameError> {
        let mut map = lock(&self.pending);
        if let Some(Pending::Unary(_)) = map.map.get(&id) {
            return Err(wrong_answer("END for a unary call"));
        }
        let entry = map.map.remove(&id);
        drop(map);
        if let Some(Pending::Stream { tx, .. }) = entry {
            self.stats.sub(|c| &c.calls_in_flight, 1);
            let _ = tx.send(StreamEvent::End);
        }
        Ok(())
    }

    /// Handles one received wsp frame.
    async fn handle(self: &Arc<Self>, hello: &mut bool, msg: Bytes) -> Result<(), FrameError> {
        if !*hello && msg.len() > self.config.max_hello_size {
            // Refused before decoding: a huge services map must cost nothing (PROTOCOL §8).
            return Err(FrameError {
                close_code: code::MESSAGE_TOO_BIG,
                reason: "HELLO too large".into(),
            });
        }
        let frame = wire::parse(self.codec, &msg)?;
        if !*hello {
            return match frame {
                Frame::Hello { version, services } => {
                    if version != wire::VERSION {
                        return Err(FrameError {
                            close_code: code::UNSUPPORTED_VERSION,
                            reason: format!("unsupported protocol version {version}"),
                        });
                    }
                    let services = wire::parse_services(
                        self.codec,
                        &services,
                        self.config.max_hello_services,
                    )?;
                    *hello = true;
                    let _ = self.peer_services.set(services.into_iter().collect());
                    Ok(())
                }
                _ => Err(FrameError {
                    close_code: code::PROTOCOL_ERROR,
                    reason: "first frame is not HELLO".into(),
                }),
            };
        }
        let stats = &self.stats;
        match frame {
            Frame::Hello { .. } => {
                return Err(FrameError {
                    close_code: code::PROTOCOL_ERROR,
                    reason: "second HELLO".into(),
                });
            }
            Frame::Call {
                id,
                method,
                deadline,
                args,
            } => {
                stats.add(|c| &c.calls_received, 1);
                self.dispatch(CallKind::Unary, id, &method, deadline, 0, args)
                    .await?;
            }
            Frame::Stream {
                id,
                method,
                deadline,
                credit,
                args,
            } => {
                stats.add(|c| &c.calls_received, 1);
                self.dispatch(CallKind::Stream, id, &method, deadline, credit, args)
                    .await?;
            }
            Frame::Notify { method, args } => {
                stats.add(|c| &c.notifications_received, 1);
                self.dispatch(CallKind::Notify, 0, &method, None, 0, args)
                    .await?;
            }
            Frame::Reply { id, result } => {
                stats.add(|c| &c.replies_received, 1);
                self.complete(
                    id,
                    Ok(Payload::new(self.codec, result, self.config.max_depth)),
                )?;
            }
            Frame::Error {
                id,
                code,
                message,
                details,
            } => {
                stats.add(|c| &c.errors_received, 1);
                let details = Payload::new(self.codec, details, self.config.max_depth);
                self.complete(id, Err(CallError::from_wire(code, message, details)))?;
            }
            Frame::Item { id, item } => {
                stats.add(|c| &c.replies_received, 1);
                self.stream_item(id, item)?;
            }
            Frame::End { id } => {
                stats.add(|c| &c.replies_received, 1);
                self.stream_end(id)?;
            }
            Frame::Cancel { id } => self.cancel_incoming(id),
            Frame::Credit { id, n } => self.add_credit(id, n),
        }
        Ok(())
    }

    /// Fails everything in flight and records the outcome; runs once, when the reader ends.
    fn finish(self: &Arc<Self>, info: CloseInfo) {
        if self.closed.borrow().is_some() {
            return;
        }
        self.closing.store(true, Ordering::Release);
        self.queue.close();
        let err = self.closed_error();
        let pending = {
            let mut p = lock(&self.pending);
            p.closed = Some(err.clone());
            std::mem::take(&mut p.map)
        };
        self.stats.sub(|c| &c.calls_in_flight, pending.len() as u64);
        for (_, p) in pending {
            match p {
                Pending::Unary(tx) => {
                    let _ = tx.send(Err(err.clone()));
                }
                Pending::Stream { tx, .. } => {
                    let _ = tx.send(StreamEvent::Error(err.clone()));
                }
            }
        }
        let incoming = std::mem::take(&mut *lock(&self.incoming));
        self.stats
            .sub(|c| &c.incoming_in_flight, incoming.len() as u64);
        for e in incoming.values() {
            e.ctx.cancel();
            e.abort.abort();
        }
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

/// An answer of the wrong kind for its call (PROTOCOL §2.3).
fn wrong_answer(what: &str) -> FrameError {
    FrameError {
        close_code: code::PROTOCOL_ERROR,
        reason: what.into(),
    }
}

fn message_len(m: &Message) -> usize {
    match m {
        Message::Binary(b) | Message::Ping(b) | Message::Pong(b) => b.len(),
        Message::Text(t) => t.len(),
        Message::Close(_) | Message::Frame(_) => 0,
    }
}

type BoxSink = Pin<Box<dyn Sink<Message, Error = WsError> + Send>>;

async fn writer(
    conn: Arc<ConnInner>,
    mut close_rx: watch::Receiver<Option<CloseInfo>>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut ping = conn
        .config
        .keepalive_interval
        .map(|d| tokio::time::interval_at(Instant::now() + d, d));
    let failed: Option<WsError> = loop {
        tokio::select! {
            biased;
            _ = &mut stop => {
                conn.queue.close();
                return;
            }
            _ = close_rx.changed() => {
                let info = close_rx.borrow().clone();
                if let Some(info) = info {
                    let frame = CloseFrame { code: info.code.into(), reason: info.reason.into() };
                    let mut guard = conn.sink.lock().await;
                    let Some(sink) = guard.as_mut() else { break None };
                    let _ = sink.send(Message::Close(Some(frame))).await;
                    conn.stats.add(|c| &c.frames_sent, 1);
                }
                conn.close_sent.notify_one();
                break None;
            }
            _ = async { ping.as_mut().expect("guarded by is_some").tick().await }, if ping.is_some() => {
                let mut guard = conn.sink.lock().await;
                let Some(sink) = guard.as_mut() else { break None };
                if let Err(e) = sink.send(Message::Ping(Bytes::new())).await {
                    break Some(e);
                }
                conn.stats.add(|c| &c.frames_sent, 1);
            }
            m = conn.queue.recv() => {
                let Some(m) = m else { break None };
                let mut guard = conn.sink.lock().await;
                let Some(sink) = guard.as_mut() else { break None };
                let (mut frames, mut bytes) = (1u64, message_len(&m) as u64);
                let mut fed = sink.feed(m).await;
                while fed.is_ok() && (frames as usize) < MAX_BATCH {
                    let Some(m) = conn.queue.try_recv() else { break };
                    frames += 1;
                    bytes += message_len(&m) as u64;
                    fed = sink.feed(m).await;
                }
                // Lowered under the socket lock, after feeding: see `ConnInner::queued`.
                conn.queued.fetch_sub(frames as usize, Ordering::AcqRel);
                conn.stats.add(|c| &c.frames_sent, frames);
                conn.stats.add(|c| &c.bytes_sent, bytes);
                conn.unflushed.store(false, Ordering::Release);
                if let Err(e) = fed {
                    break Some(e);
                }
                if let Err(e) = sink.flush().await {
                    break Some(e);
                }
            }
        }
    };
    // Frames still queued can no longer be written: closing the queue fails every sender
    // waiting for room in it (a handler's reply, the reader's error frame) at once.
    conn.queue.close();
    if let Some(e) = &failed {
        conn.on_write_error(e);
    }
    // Keep the write half open until the reader is done (the socket closes when both are gone).
    let _ = stop.await;
}

async fn reader<R>(
    conn: Arc<ConnInner>,
    mut stream: R,
    mut close_rx: watch::Receiver<Option<CloseInfo>>,
    stop: oneshot::Sender<()>,
) where
    R: Stream<Item = Result<Message, WsError>> + Unpin,
{
    let cfg = conn.config.clone();
    let keepalive = cfg.keepalive_interval.is_some();
    let timer = tokio::time::sleep_until(Instant::now() + cfg.handshake_timeout);
    tokio::pin!(timer);
    let mut hello = false;
    // `true` once the timer watches the dead-peer timeout instead of the handshake timeout.
    let mut watching_peer = false;
    let mut last_rx = Instant::now();
    // `true` once this side asked to close: frames are no longer processed, the timer bounds
    // the wait for the peer's close frame.
    let mut closing = false;
    let mut received: Option<CloseInfo> = None;
    // Messages taken without waiting since the last full select (bounds how long timers and
    // close requests can be starved by a flood of frames).
    let mut eager = 0u32;
    loop {
        // Take a message that is already there without the select; when none is, first flush
        // replies the reader wrote directly (see `ConnInner::feed_direct`).
        if eager < 64 && !closing && !conn.is_closing() {
            let ready = std::future::poll_fn(|cx| {
                Poll::Ready(match stream.poll_next_unpin(cx) {
                    Poll::Ready(item) => Some(item),
                    Poll::Pending => None,
                })
            })
            .await;
            if let Some(item) = ready {
                eager += 1;
                if let ControlFlow::Break(()) = conn
                    .on_item(item, &mut hello, &mut closing, &mut received, &mut last_rx)
                    .await
                {
                    break;
                }
                if hello && !watching_peer {
                    watching_peer = true;
                    timer.as_mut().reset(first_watch(&cfg, last_rx));
                }
                continue;
            }
        }
        eager = 0;
        conn.flush_direct().await;
        let item = tokio::select! {
            biased;
            _ = close_rx.changed(), if !closing => {
                closing = true;
                timer.as_mut().reset(Instant::now() + cfg.close_timeout);
                continue;
            }
            item = stream.next() => item,
            () = &mut timer => {
                if closing {
                    break;
                }
                if !hello {
                    conn.initiate_close(code::HANDSHAKE_TIMEOUT, "no HELLO within the handshake timeout");
                    continue;
                }
                conn.check_message_clock();
                // The next check: the dead-peer deadline, and no later than one message
                // timeout from now (a message trickling in completes no frame to check on).
                let now = Instant::now();
                let next = if !keepalive {
                    now + Duration::from_secs(86_400)
                } else if last_rx + cfg.dead_peer_timeout > now {
                    last_rx + cfg.dead_peer_timeout
                } else {
                    conn.initiate_close(code::KEEPALIVE_TIMEOUT, "keep-alive timeout");
                    continue;
                };
                timer.as_mut().reset(next.min(now + cfg.message_timeout));
                continue;
            }
        };
        if let ControlFlow::Break(()) = conn
            .on_item(item, &mut hello, &mut closing, &mut received, &mut last_rx)
            .await
        {
            break;
        }
        if hello && !watching_peer {
            watching_peer = true;
            timer.as_mut().reset(first_watch(&cfg, last_rx));
        }
    }
    let requested = conn.close_req.borrow().clone();
    let info = requested
        .or(received)
        .unwrap_or_else(|| CloseInfo::new(code::ABNORMAL, "connection lost"));
    let _ = stop.send(());
    // Drop the write half so the socket closes (a direct writer stuck on a dead socket is not
    // waited for longer than the close timeout).
    if let Ok(mut sink) = tokio::time::timeout(cfg.close_timeout, conn.sink.lock()).await {
        sink.take();
    }
    conn.finish(info);
}

/// When the reader's timer first fires once HELLO arrived: at the dead-peer deadline, and no
/// later than one message timeout from now (see the timer branch of [`reader`]).
fn first_watch(cfg: &Config, last_rx: Instant) -> Instant {
    let dead_peer = if cfg.keepalive_interval.is_some() {
        last_rx + cfg.dead_peer_timeout
    } else {
        last_rx + Duration::from_secs(86_400)
    };
    dead_peer.min(Instant::now() + cfg.message_timeout)
}

impl ConnInner {
    /// Handles one item read from the socket; `Break` ends the reader.
    async fn on_item(
        self: &Arc<Self>,
        item: Option<Result<Message, WsError>>,
        hello: &mut bool,
        closing: &mut bool,
        received: &mut Option<CloseInfo>,
        last_rx: &mut Instant,
    ) -> ControlFlow<()> {
        let msg = match item {
            None => return ControlFlow::Break(()),
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                let fatal = match e {
                    WsError::Capacity(_) => Some((code::MESSAGE_TOO_BIG, "message too big")),
                    WsError::Utf8(_) => Some((code::INVALID_PAYLOAD, "text frame is not UTF-8")),
                    WsError::Io(ref io) => Stall::of(io).map(|s| (s.close_code(), s.reason())),
                    WsError::Protocol(ref p) if !*closing && !matches!(p, tokio_tungstenite::tungstenite::error::ProtocolError::ResetWithoutClosingHandshake) => {
                        Some((code::PROTOCOL_ERROR, "websocket protocol error"))
                    }
                    _ => None,
                };
                if let Some((c, reason)) = fatal {
                    self.stats.add(|c| &c.invalid_frames, 1);
                    self.initiate_close(c, reason);
                    let _ =
                        tokio::time::timeout(self.config.close_timeout, self.close_sent.notified())
                            .await;
                }
                return ControlFlow::Break(());
            }
        };
        *last_rx = Instant::now();
        let len = message_len(&msg) as u64;
        self.stats.add(|c| &c.frames_received, 1);
        self.stats.add(|c| &c.bytes_received, len);
        let data = match msg {
            Message::Binary(b) if self.codec == Codec::MsgPack => b,
            Message::Text(t) if self.codec == Codec::Json => Bytes::from(t),
            Message::Binary(_) | Message::Text(_) => {
                if !*closing {
                    self.stats.add(|c| &c.invalid_frames, 1);
                    self.initiate_close(
                        code::UNSUPPORTED_DATA,
                        "wrong frame kind for the negotiated codec",
                    );
                }
                return ControlFlow::Continue(());
            }
            Message::Close(f) => {
                // The peer is leaving: calls made from now on must not be queued here (a
                // reconnecting client routes them to its next connection instead).
                self.closing.store(true, Ordering::Release);
                *received = Some(match f {
                    Some(f) => CloseInfo::new(f.code.into(), &f.reason),
                    None => CloseInfo::new(1005, ""),
                });
                return ControlFlow::Continue(());
            }
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {
                // Pings and pongs are how a peer keeps an unfinished message alive.
                self.check_message_clock();
                return ControlFlow::Continue(());
            }
        };
        // Frames after this side asked to close are not processed.
        if self.is_closing() {
            return ControlFlow::Continue(());
        }
        if let Err(e) = self.handle(hello, data).await {
            self.stats.add(|c| &c.invalid_frames, 1);
            tracing::debug!(conn = self.id, code = e.close_code, reason = %e.reason, "closing on an invalid frame");
            self.initiate_close(e.close_code, &e.reason);
            return ControlFlow::Continue(());
        }
        ControlFlow::Continue(())
    }
}
