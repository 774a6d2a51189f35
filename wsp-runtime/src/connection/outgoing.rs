//! Calls this side makes: the table of calls waiting for their outcome, and what REPLY, ERROR,
//! ITEM and END from the peer do to it (PROTOCOL §2.3–2.6).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, Sleep};

use super::input::Pump;
use super::{ConnInner, IdMap, lock};
use crate::close::code;
use crate::error::CallError;
use crate::wire::codec::Payload;
use crate::wire::{self, FrameError};

/// An event for a stream this side consumes.
pub(super) enum StreamEvent {
    Item(Bytes),
    End,
    Error(CallError),
}

/// A call this side made, waiting for its outcome.
pub(super) enum Pending {
    Unary(oneshot::Sender<Result<Payload, CallError>>),
    /// `credit`: ITEMs the peer may still send (PROTOCOL §2.6).
    Stream {
        tx: mpsc::UnboundedSender<StreamEvent>,
        credit: u32,
        /// This side sends items too (a DUPLEX): its pump stops when the call ends, whether or
        /// not the application polls the call.
        sends: bool,
    },
}

#[derive(Default)]
pub(super) struct PendingMap {
    pub(super) map: IdMap<Pending>,
    /// Set once the connection finished: no more calls are accepted.
    pub(super) closed: Option<CallError>,
}

/// An answer of the wrong kind for its call (PROTOCOL §2.3).
fn wrong_answer(what: &str) -> FrameError {
    FrameError {
        close_code: code::PROTOCOL_ERROR,
        reason: what.into(),
    }
}

impl ConnInner {
    /// Registers a call in flight; returns whether it is the only one.
    pub(super) fn insert_pending(&self, id: u32, p: Pending) -> Result<bool, CallError> {
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

    pub(super) fn take_pending(&self, id: u32) -> Option<Pending> {
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

    /// A REPLY (`Ok`) or ERROR (`Err`) for call `id`. A REPLY for a stream is a protocol
    /// error (PROTOCOL §2.3); the stream fails with the connection.
    pub(super) fn complete(
        &self,
        id: u32,
        result: Result<Payload, CallError>,
    ) -> Result<(), FrameError> {
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
            Some(Pending::Stream { tx, sends, .. }) => {
                self.stats.sub(|c| &c.calls_in_flight, 1);
                if sends {
                    self.stop_pump(id);
                }
                if let Err(e) = result {
                    let _ = tx.send(StreamEvent::Error(e));
                }
            }
            None => {}
        }
        Ok(())
    }

    pub(super) fn stream_item(&self, id: u32, item: Bytes) -> Result<(), FrameError> {
        let mut map = lock(&self.pending);
        match map.map.get_mut(&id) {
            Some(Pending::Stream { tx, credit, .. }) => {
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

    pub(super) fn stream_end(&self, id: u32) -> Result<(), FrameError> {
        let mut map = lock(&self.pending);
        if let Some(Pending::Unary(_)) = map.map.get(&id) {
            return Err(wrong_answer("END for a unary call"));
        }
        let entry = map.map.remove(&id);
        drop(map);
        if let Some(Pending::Stream { tx, sends, .. }) = entry {
            self.stats.sub(|c| &c.calls_in_flight, 1);
            if sends {
                self.stop_pump(id);
            }
            let _ = tx.send(StreamEvent::End);
        }
        Ok(())
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

    /// The connection is finished: every call in flight fails with `err`, and no more are taken.
    pub(super) fn fail_outgoing(&self, err: CallError) {
        self.stop_pumps();
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
    }
}

/// Milliseconds left until `deadline`, as sent in the frame (PROTOCOL §2.4).
fn deadline_ms(deadline: Option<Instant>) -> Result<Option<u32>, CallError> {
    match deadline {
        None => Ok(None),
        Some(d) => {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(CallError::DeadlineExceeded);
            }
            Ok(Some(left.as_millis().clamp(1, u128::from(u32::MAX)) as u32))
        }
    }
}

/// Removes a call from the pending map and sends CANCEL if it is dropped before its outcome
/// arrived (PROTOCOL §2.5).
struct CallGuard<'a> {
    conn: &'a Arc<ConnInner>,
    id: u32,
    /// `false` once the outcome arrived (nothing to cancel).
    armed: bool,
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        if self.armed && self.conn.take_pending(self.id).is_some() {
            self.conn.send_soon(wire::cancel(self.conn.codec, self.id));
        }
    }
}

impl ConnInner {
    pub(crate) async fn call_raw<A: Serialize + ?Sized>(
        self: &Arc<Self>,
        method: &str,
        args: &A,
        deadline: Option<Instant>,
    ) -> Result<Payload, CallError> {
        let ms = deadline_ms(deadline)?;
        let id = self.next_id();
        let msg = wire::call(self.codec, id, method, ms, args)?;
        self.await_answer(id, msg, deadline, || ()).await
    }

    /// Sends the opening frame of a call answered by one REPLY or ERROR (CALL, UPLOAD) and waits
    /// for that outcome until the deadline. `after_sent` runs once the frame is on its way, and
    /// what it returns lives as long as the wait (an UPLOAD's pump, stopped with the call).
    async fn await_answer<K>(
        self: &Arc<Self>,
        id: u32,
        msg: Vec<u8>,
        deadline: Option<Instant>,
        after_sent: impl FnOnce() -> K,
    ) -> Result<Payload, CallError> {
        let (tx, rx) = oneshot::channel();
        let alone = self.insert_pending(id, Pending::Unary(tx))?;
        let mut guard = CallGuard {
            conn: self,
            id,
            armed: true,
        };
        self.stats.add(|c| &c.calls_sent, 1);
        let outcome = async {
            if alone {
                self.send_direct(msg).await?;
            } else {
                self.send(msg).await?;
            }
            let _running = after_sent();
            match rx.await {
                Ok(r) => r,
                Err(_) => Err(self.closed_error()),
            }
        };
        let result = match deadline {
            Some(d) => match tokio::time::timeout_at(d, outcome).await {
                Ok(r) => r,
                Err(_) => return Err(CallError::DeadlineExceeded),
            },
            None => outcome.await,
        };
        guard.armed = false;
        result
    }

    pub(crate) async fn notify_raw<A: Serialize + ?Sized>(
        &self,
        method: &str,
        args: &A,
    ) -> Result<(), CallError> {
        if self.is_closing() {
            return Err(self.closed_error());
        }
        let msg = wire::notify(self.codec, method, args)?;
        self.stats.add(|c| &c.notifications_sent, 1);
        self.send(msg).await
    }

    pub(crate) async fn start_stream(
        self: &Arc<Self>,
        method: &str,
        args: &[u8],
        deadline: Option<Instant>,
    ) -> Result<ActiveStream, CallError> {
        let ms = deadline_ms(deadline)?;
        let id = self.next_id();
        let window = self.config.stream_window;
        let msg = wire::stream(self.codec, id, method, ms, window, args);
        self.open_stream(id, msg, window, deadline, false).await
    }

    /// Registers a call answered by ITEMs (STREAM, DUPLEX) with `window` as the callee's first
    /// credit, and sends its opening frame.
    async fn open_stream(
        self: &Arc<Self>,
        id: u32,
        msg: Vec<u8>,
        window: u32,
        deadline: Option<Instant>,
        sends: bool,
    ) -> Result<ActiveStream, CallError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let pending = Pending::Stream {
            tx,
            credit: window,
            sends,
        };
        self.insert_pending(id, pending)?;
        let active = ActiveStream {
            conn: self.clone(),
            id,
            rx,
            window,
            since_credit: 0,
            sleep: deadline.map(|d| Box::pin(tokio::time::sleep_until(d))),
            done: false,
            pump: None,
        };
        self.stats.add(|c| &c.calls_sent, 1);
        self.send(msg).await?;
        Ok(active)
    }

    /// An UPLOAD (PROTOCOL §2.7): sends `items` while the callee takes them, and returns its one
    /// result (which may come before all items were sent: the rest are not sent).
    pub(crate) async fn upload_raw<S, T>(
        self: &Arc<Self>,
        method: &str,
        args: &[u8],
        items: S,
        deadline: Option<Instant>,
    ) -> Result<Payload, CallError>
    where
        S: futures_util::Stream<Item = T> + Send + 'static,
        T: Serialize + Send + 'static,
    {
        let ms = deadline_ms(deadline)?;
        let id = self.next_id();
        let msg = wire::open(self.codec, id, method, ms, None, args);
        // PUSHes are queued after the UPLOAD, so they follow it on the wire.
        self.await_answer(id, msg, deadline, || self.start_pump(id, items))
            .await
    }

    /// A DUPLEX (PROTOCOL §2.7): sends `items` while the callee takes them, and returns the
    /// stream of the callee's items, which owns the sending.
    pub(crate) async fn start_duplex<S, T>(
        self: &Arc<Self>,
        method: &str,
        args: &[u8],
        items: S,
        deadline: Option<Instant>,
    ) -> Result<ActiveStream, CallError>
    where
        S: futures_util::Stream<Item = T> + Send + 'static,
        T: Serialize + Send + 'static,
    {
        let ms = deadline_ms(deadline)?;
        let id = self.next_id();
        let window = self.config.stream_window;
        let msg = wire::open(self.codec, id, method, ms, Some(window), args);
        let mut active = self.open_stream(id, msg, window, deadline, true).await?;
        active.pump = Some(self.start_pump(id, items));
        Ok(active)
    }
}

/// The consuming end of a stream call while items arrive.
pub(crate) struct ActiveStream {
    conn: Arc<ConnInner>,
    id: u32,
    rx: mpsc::UnboundedReceiver<StreamEvent>,
    window: u32,
    /// Items taken since the last CREDIT.
    since_credit: u32,
    sleep: Option<Pin<Box<Sleep>>>,
    /// `true` once END or ERROR arrived (nothing to cancel).
    done: bool,
    /// The sending of this side's items, for a DUPLEX; stopped when the stream ends.
    pump: Option<Pump>,
}

impl Drop for ActiveStream {
    fn drop(&mut self) {
        if !self.done && self.conn.take_pending(self.id).is_some() {
            self.conn.send_soon(wire::cancel(self.conn.codec, self.id));
        }
    }
}

impl ActiveStream {
    /// The next event for the consumer: an item's payload (credit is granted as items are
    /// taken, PROTOCOL §2.6), the end (`None`), or the error that ends the stream (deadline,
    /// ERROR, the connection's loss). Not to be polled again after `None` or an error.
    pub(crate) fn poll_event(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Payload, CallError>>> {
        if let Some(s) = &mut self.sleep {
            if s.as_mut().poll(cx).is_ready() {
                // Not `done`: dropping the stream sends CANCEL. The sending stops now.
                self.pump = None;
                return Poll::Ready(Some(Err(CallError::DeadlineExceeded)));
            }
        }
        let event = match self.rx.poll_recv(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(event) => event,
        };
        Poll::Ready(match event {
            Some(StreamEvent::Item(bytes)) => {
                self.since_credit += 1;
                if self.since_credit >= (self.window / 2).max(1) {
                    self.conn.grant_credit(self.id, self.since_credit);
                    self.since_credit = 0;
                }
                let conn = &self.conn;
                return Poll::Ready(Some(Ok(Payload::new(
                    conn.codec,
                    bytes,
                    conn.config.max_depth,
                ))));
            }
            Some(StreamEvent::End) => {
                self.done = true;
                self.pump = None;
                None
            }
            Some(StreamEvent::Error(e)) => {
                self.done = true;
                self.pump = None;
                Some(Err(e))
            }
            None => {
                self.done = true;
                self.pump = None;
                Some(Err(self.conn.closed_error()))
            }
        })
    }

    /// Ends the stream early, from this side (an item could not be delivered): the callee is
    /// told to stop.
    pub(crate) fn fail(&mut self) {
        if self.conn.take_pending(self.id).is_some() {
            self.conn.send_soon(wire::cancel(self.conn.codec, self.id));
        }
        self.done = true;
    }
}
