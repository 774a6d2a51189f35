//! Calls whose caller sends items too (UPLOAD and DUPLEX, PROTOCOL §2.7), both ends:
//!
//! - the caller's [`Pump`] sends the application's items as PUSHes while the callee's grant
//!   allows (the implicit first [`INPUT_WINDOW`], then each PULL), then PUSH_END. It polls the
//!   application's stream only when it may send, so a producer that runs ahead is paused;
//! - the callee's [`Input`] is the stream a handler reads the PUSHes from; it PULLs more as the
//!   handler takes them, so a caller cannot fill the callee's memory.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde::Serialize;
use tokio::sync::{Semaphore, mpsc};

use super::{ConnInner, lock};
use crate::close::code;
use crate::error::CallError;
use crate::wire::codec::Payload;
use crate::wire::{self, FrameError};

/// The PUSHes a caller may send before the first PULL (PROTOCOL §2.7).
pub(crate) const INPUT_WINDOW: u32 = 16;

/// What the reader hands a handler's [`Input`].
pub(super) enum InputEvent {
    Item(Bytes),
    End,
}

/// The callee's record of a call's input, in its entry of the running calls.
pub(super) struct InputEntry {
    tx: mpsc::UnboundedSender<InputEvent>,
    /// PUSHes the caller may still send: granted and not yet received.
    allowed: u32,
    /// PUSH_END arrived.
    ended: bool,
}

fn protocol_error(reason: &str) -> FrameError {
    FrameError {
        close_code: code::PROTOCOL_ERROR,
        reason: reason.into(),
    }
}

/// A call's input as its handler reads it: the payloads of the caller's PUSHes, in order, until
/// PUSH_END. Taking items grants the caller more (PULL); the stream ends (`None`) at PUSH_END.
/// If the caller goes away or cancels, the handler is stopped with it; a reader that outlives
/// the call (moved into a task of its own) gets an error instead of a clean end, so that it
/// cannot take a cut-off input for a whole one.
pub struct Input {
    conn: Arc<ConnInner>,
    id: u32,
    rx: mpsc::UnboundedReceiver<InputEvent>,
    /// Items taken since the last PULL.
    taken: u32,
    done: bool,
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Input(call {})", self.id)
    }
}

impl Input {
    /// The input of call `id`, and the entry the reader feeds it through.
    pub(super) fn new(conn: Arc<ConnInner>, id: u32) -> (Input, InputEntry) {
        let (tx, rx) = mpsc::unbounded_channel();
        let entry = InputEntry {
            tx,
            allowed: INPUT_WINDOW,
            ended: false,
        };
        let input = Input {
            conn,
            id,
            rx,
            taken: 0,
            done: false,
        };
        (input, entry)
    }
}

impl Stream for Input {
    type Item = Result<Payload, CallError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match this.rx.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(InputEvent::Item(bytes))) => {
                this.taken += 1;
                if this.taken >= INPUT_WINDOW / 2 {
                    this.conn.grant_pull(this.id, this.taken);
                    this.taken = 0;
                }
                let conn = &this.conn;
                let payload = Payload::new(conn.codec, bytes, conn.config.max_depth);
                Poll::Ready(Some(Ok(payload)))
            }
            Poll::Ready(Some(InputEvent::End)) => {
                this.done = true;
                Poll::Ready(None)
            }
            // The call ended before PUSH_END (its entry, and with it the sender, is gone).
            Poll::Ready(None) => {
                this.done = true;
                Poll::Ready(Some(Err(CallError::Cancelled(
                    "the call ended before the caller's last item".into(),
                ))))
            }
        }
    }
}

/// The caller's sending of a call's input; dropping it stops the sending (the call ended).
pub(crate) struct Pump {
    conn: Arc<ConnInner>,
    id: u32,
    credit: Arc<Semaphore>,
    task: tokio::task::AbortHandle,
}

impl Drop for Pump {
    fn drop(&mut self) {
        self.task.abort();
        // Only this call's entry: once the call ended, its id may be in use again.
        let mut pumps = lock(&self.conn.pumps);
        if pumps
            .get(&self.id)
            .is_some_and(|c| Arc::ptr_eq(c, &self.credit))
        {
            pumps.remove(&self.id);
        }
    }
}

impl ConnInner {
    /// A PUSH for call `id` from the peer. Ignored when the call is no longer running; a PUSH
    /// beyond the grant, after PUSH_END or for a call that takes no input closes the
    /// connection with 1002.
    pub(super) fn push_received(&self, id: u32, item: Bytes) -> Result<(), FrameError> {
        let mut incoming = lock(&self.incoming);
        let Some(entry) = incoming.get_mut(&id) else {
            return Ok(());
        };
        match &mut entry.input {
            None => Err(protocol_error("PUSH for a call that takes no items")),
            Some(input) if input.ended => Err(protocol_error("PUSH after PUSH_END")),
            Some(input) if input.allowed == 0 => Err(protocol_error("more PUSHes than granted")),
            Some(input) => {
                input.allowed -= 1;
                let _ = input.tx.send(InputEvent::Item(item));
                Ok(())
            }
        }
    }

    /// PUSH_END for call `id` from the peer.
    pub(super) fn push_end_received(&self, id: u32) -> Result<(), FrameError> {
        let mut incoming = lock(&self.incoming);
        let Some(entry) = incoming.get_mut(&id) else {
            return Ok(());
        };
        match &mut entry.input {
            None => Err(protocol_error("PUSH_END for a call that takes no items")),
            Some(input) if input.ended => Err(protocol_error("a second PUSH_END")),
            Some(input) => {
                input.ended = true;
                let _ = input.tx.send(InputEvent::End);
                Ok(())
            }
        }
    }

    /// Grants the caller of call `id` `n` more PUSHes and tells it with PULL.
    fn grant_pull(self: &Arc<Self>, id: u32, n: u32) {
        {
            let mut incoming = lock(&self.incoming);
            match incoming.get_mut(&id).and_then(|e| e.input.as_mut()) {
                Some(input) if !input.ended => input.allowed = input.allowed.saturating_add(n),
                _ => return,
            }
        }
        self.send_soon(wire::pull(self.codec, id, n));
    }

    /// A PULL for call `id`, one this side makes: its pump may send `n` more items.
    pub(super) fn pull_received(&self, id: u32, n: u32) {
        if let Some(credit) = lock(&self.pumps).get(&id) {
            let room = (u32::MAX as usize).saturating_sub(credit.available_permits());
            credit.add_permits((n as usize).min(room));
        }
    }

    /// Starts sending `items` as the input of call `id`, once the call's opening frame is
    /// queued. An item that does not encode fails the call and cancels it at the callee.
    pub(crate) fn start_pump<S, T>(self: &Arc<Self>, id: u32, items: S) -> Pump
    where
        S: Stream<Item = T> + Send + 'static,
        T: Serialize + Send + 'static,
    {
        let credit = Arc::new(Semaphore::new(INPUT_WINDOW as usize));
        lock(&self.pumps).insert(id, credit.clone());
        let conn = self.clone();
        let grant = credit.clone();
        let task = tokio::spawn(async move {
            let mut items = std::pin::pin!(items);
            loop {
                // The next item is taken before waiting for room: PUSH_END needs no credit
                // (PROTOCOL §2.7), so the end must be seen without it. At most this one item
                // waits beyond the grant.
                let frame = match items.next().await {
                    Some(item) => match wire::push(conn.codec, id, &item) {
                        Ok(frame) => frame,
                        Err(e) => {
                            let _ = conn.complete(id, Err(CallError::from(e)));
                            conn.send_soon(wire::cancel(conn.codec, id));
                            return;
                        }
                    },
                    None => {
                        let _ = conn.send(wire::push_end(conn.codec, id)).await;
                        return;
                    }
                };
                // Closed when the call or the connection ends.
                match grant.acquire().await {
                    Ok(permit) => permit.forget(),
                    Err(_) => return,
                }
                if conn.send(frame).await.is_err() {
                    return;
                }
            }
        });
        Pump {
            conn: self.clone(),
            id,
            credit,
            task: task.abort_handle(),
        }
    }

    /// Call `id` ended (END or ERROR arrived): its pump stops even if nobody polls the call.
    pub(super) fn stop_pump(&self, id: u32) {
        if let Some(credit) = lock(&self.pumps).remove(&id) {
            credit.close();
        }
    }

    /// The connection is finished: every pump stops.
    pub(super) fn stop_pumps(&self) {
        for (_, credit) in lock(&self.pumps).drain() {
            credit.close();
        }
    }
}
