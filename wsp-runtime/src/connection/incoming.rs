//! The callee side of a connection: dispatching incoming calls to services, running handlers
//! (inline when they finish at once, else as tasks bounded by the deadline), streams with
//! credit, and cancellation.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::{FutureExt, StreamExt};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tracing::Instrument;

use std::sync::atomic::Ordering;

use std::sync::Weak;

use super::input::{Input, InputEntry};
use super::{CancelCall, ConnInner, Handler, IncomingCall, Started, lock};
use crate::close::code;
use crate::error::{ErrorCode, ServiceError};
use crate::wire::codec::Payload;
use crate::wire::{self, CallKind, Encoded, FrameError};

tokio::task_local! {
    /// The deadline of the incoming call whose handler is being polled (`None`: it has none),
    /// set around every poll of a unary or stream handler — its first poll on the reader task
    /// and the task it runs as afterwards. Calls the handler makes read it
    /// ([`serving_deadline`]) and end by it at the latest. A task the handler spawns is not
    /// inside it.
    static SERVING: Option<Instant>;
}

/// The deadline of the call whose handler is running on this task, if any: calls made here
/// inherit it (`call.rs`). One thread-local read.
#[inline]
pub(crate) fn serving_deadline() -> Option<Instant> {
    SERVING.try_with(|d| *d).ok().flatten()
}

/// A CALL, STREAM or NOTIFY as read from the wire.
pub(super) struct CallFrame<'a> {
    pub(super) kind: CallKind,
    /// 0 for NOTIFY.
    pub(super) id: u32,
    pub(super) method: &'a str,
    /// Milliseconds the caller gave it (PROTOCOL §2.4).
    pub(super) deadline: Option<u32>,
    /// ITEMs the caller grants at once (STREAM only).
    pub(super) credit: u32,
    pub(super) args: Bytes,
}

/// A call from the peer whose handler is running.
pub(super) struct IncomingEntry {
    abort: tokio::task::AbortHandle,
    cancel: Weak<dyn CancelCall>,
    credit: Option<Arc<Semaphore>>,
    /// The caller's items, for UPLOAD and DUPLEX (`input.rs`).
    pub(super) input: Option<InputEntry>,
}

impl ConnInner {
    pub(super) fn error_frame(&self, id: u32, e: &ServiceError) -> Vec<u8> {
        let details = e.details.as_deref();
        wire::error(self.codec, id, e.code as u32, &e.message, details).unwrap_or_else(|err| {
            tracing::warn!(error = %err, "could not encode error details");
            self.error_frame(id, &ServiceError::internal("internal error"))
        })
    }

    pub(super) async fn send_error(&self, id: u32, e: ServiceError) {
        self.stats.add(|c| &c.errors_sent, 1);
        let _ = self.send(self.error_frame(id, &e)).await;
    }

    /// Handlers running for the peer's calls (a relaxed counter, no lock).
    pub(super) fn incoming_len(&self) -> usize {
        self.stats.own.incoming_in_flight.load(Ordering::Relaxed) as usize
    }

    /// Handles one incoming CALL, STREAM or NOTIFY. Fails only for a call id that is already
    /// in flight (PROTOCOL §2.3), which closes the connection.
    pub(super) async fn dispatch(
        self: &Arc<Self>,
        call: CallFrame<'_>,
        received_at: Instant,
    ) -> Result<(), FrameError> {
        let CallFrame {
            kind,
            id,
            method,
            deadline,
            credit,
            args,
        } = call;
        let answer = kind != CallKind::Notify;
        // Only handlers that did not finish at once are in the table; while none runs (the
        // common case) there is nothing to look up.
        if answer && self.incoming_len() > 0 && lock(&self.incoming).contains_key(&id) {
            return Err(FrameError {
                close_code: code::PROTOCOL_ERROR,
                reason: format!("call id {id} already in flight"),
            });
        }
        let payload = Payload::new(self.codec, args, self.config.max_depth);
        let observe = || self.dispatch.observe(self, kind, method, &payload);
        if std::panic::catch_unwind(AssertUnwindSafe(observe)).is_err() {
            tracing::error!(conn = self.id, "an observer hook panicked");
        }
        if answer && self.incoming_len() >= self.config.max_incoming_calls {
            self.send_error(
                id,
                ServiceError::new(ErrorCode::Overloaded, "too many calls in flight"),
            )
            .await;
            return Ok(());
        }
        // Counted from the frame's arrival (PROTOCOL §2.4).
        let deadline = if answer {
            deadline.map(|ms| received_at + Duration::from_millis(ms.into()))
        } else {
            None
        };
        if deadline == Some(received_at) {
            self.send_error(
                id,
                ServiceError::new(ErrorCode::DeadlineExceeded, "deadline exceeded"),
            )
            .await;
            return Ok(());
        }
        let split = (method.len() <= self.config.max_method_len)
            .then(|| method.rsplit_once('/'))
            .flatten();
        // The caller's items go to the handler through `input`, and the reader feeds them
        // through `input_entry` once the handler is in the table of running calls.
        let (input, mut input_entry) = if kind.has_input() {
            let (input, entry) = Input::new(self.clone(), id);
            (Some(input), Some(entry))
        } else {
            (None, None)
        };
        let started = split.and_then(|(service, name)| {
            let call = IncomingCall {
                kind,
                id,
                service,
                method: name,
                deadline,
                args: payload,
                input,
            };
            let start = || self.dispatch.start(self, call);
            std::panic::catch_unwind(AssertUnwindSafe(start)).unwrap_or_else(|_| {
                tracing::error!(method, "a service panicked while starting a call");
                Some(Started {
                    handler: Handler::Error(ServiceError::internal("internal error")),
                    cancel: Weak::<Unstarted>::new(),
                })
            })
        });
        let Some(Started { handler, cancel }) = started else {
            if answer {
                self.send_error(id, ServiceError::unknown_method(method))
                    .await;
            } else {
                self.stats.add(|c| &c.invalid_frames, 1);
            }
            return Ok(());
        };
        match (handler, kind) {
            (Handler::Upload(fut), CallKind::Upload) => {
                // Always a task: the handler reads PUSHes that arrive after this frame.
                let span = handle_span(self.id, id, method);
                let meter = Meter::new(method, received_at);
                let work = Work::Unary(fut);
                self.spawn_handler(id, deadline, cancel, work, span, meter, input_entry.take());
            }
            (Handler::Duplex(s), CallKind::Duplex) => {
                let span = handle_span(self.id, id, method);
                let meter = Meter::new(method, received_at);
                let work = Work::Stream(s, credit);
                self.spawn_handler(id, deadline, cancel, work, span, meter, input_entry.take());
            }
            (Handler::Unary(mut fut), CallKind::Unary) => {
                let span = handle_span(self.id, id, method);
                // Fast path: a handler that is done at its first poll is answered without a task
                // (and without a deadline timer), inside its span all the same.
                let first = std::future::poll_fn(|cx| {
                    let _in = span.enter();
                    Poll::Ready(std::panic::catch_unwind(AssertUnwindSafe(|| {
                        SERVING.sync_scope(deadline, || fut.as_mut().poll(cx))
                    })))
                })
                .await;
                let r = match first {
                    Ok(Poll::Pending) => {
                        let meter = Meter::new(method, received_at);
                        let work = Work::Unary(fut);
                        self.spawn_handler(id, deadline, cancel, work, span, meter, None);
                        return Ok(());
                    }
                    Ok(Poll::Ready(r)) => Ok(r),
                    Err(_) => Err(()),
                };
                let outcome = outcome_of(&r);
                span.record("outcome", outcome);
                #[cfg(feature = "metrics")]
                crate::metering::call_done(method, outcome, received_at);
                let (frame, is_error) = self.unary_outcome(id, r);
                self.count_outcome(is_error);
                if let Some(frame) = self.feed_direct(frame).await {
                    let _ = self.send(frame).await;
                }
            }
            (Handler::Stream(s), CallKind::Stream) => {
                let span = handle_span(self.id, id, method);
                let meter = Meter::new(method, received_at);
                self.spawn_handler(
                    id,
                    deadline,
                    cancel,
                    Work::Stream(s, credit),
                    span,
                    meter,
                    None,
                )
            }
            (Handler::Notify(Some(f)), CallKind::Notify) => self.run_notify(f, method).await,
            (Handler::Notify(None), CallKind::Notify) => {}
            (_, CallKind::Notify) => self.stats.add(|c| &c.invalid_frames, 1),
            (Handler::Error(e), _) => self.send_error(id, e).await,
            _ => {
                self.send_error(id, ServiceError::unknown_method(method))
                    .await
            }
        }
        Ok(())
    }

    /// Runs a notification handler: at once if it finishes at its first poll, else as a task
    /// once one of the connection's notification permits is free. Waiting for a permit stops
    /// the reader, so a flood of notifications slows the peer down (TCP back-pressure) instead
    /// of growing memory. The task ends with the connection, like a call's handler.
    async fn run_notify(self: &Arc<Self>, mut fut: BoxFuture<'static, ()>, method: &str) {
        let first = std::future::poll_fn(|cx| {
            Poll::Ready(std::panic::catch_unwind(AssertUnwindSafe(|| {
                fut.as_mut().poll(cx)
            })))
        })
        .await;
        if !matches!(first, Ok(Poll::Pending)) {
            if first.is_err() {
                tracing::error!(method, "a notification handler panicked");
            }
            return;
        }
        // The wait gives way to a close (the application's, or a protocol error's) and lasts
        // at most the dead-peer timeout: while it lasts nothing is read, not even the peer's
        // going away.
        let mut close_req = self.close_req.subscribe();
        let permit = tokio::select! {
            p = self.notify_permits.acquire() => p,
            _ = close_req.wait_for(Option::is_some) => return,
            () = tokio::time::sleep(self.config.dead_peer_timeout) => {
                self.initiate_close(
                    code::KEEPALIVE_TIMEOUT,
                    "notification handlers did not finish within the dead-peer timeout",
                );
                return;
            }
        };
        let Ok(permit) = permit else { return };
        permit.forget();
        let conn = self.clone();
        let span = tracing::debug_span!("wsp.notify", conn = self.id, method);
        tokio::spawn(
            async move {
                let _permit = NotifyPermit(&conn);
                let run = AssertUnwindSafe(fut).catch_unwind();
                tokio::select! {
                    r = run => if r.is_err() {
                        tracing::error!("a notification handler panicked");
                    },
                    _ = conn.wait_closed() => {}
                }
            }
            .instrument(span),
        );
    }

    #[allow(clippy::too_many_arguments)] // one call site per kind of work; a struct would only rename them
    fn spawn_handler(
        self: &Arc<Self>,
        id: u32,
        deadline: Option<Instant>,
        cancel: Weak<dyn CancelCall>,
        work: Work,
        span: tracing::Span,
        meter: Meter,
        input: Option<InputEntry>,
    ) {
        let conn = self.clone();
        let credit = match &work {
            Work::Stream(_, c) => Some(Arc::new(Semaphore::new(*c as usize))),
            Work::Unary(_) => None,
        };
        let stream_credit = credit.clone();
        let outcome_span = span.clone();
        let task = async move {
            let body = async {
                match work {
                    Work::Unary(fut) => {
                        let r = AssertUnwindSafe(fut).catch_unwind().await.map_err(|_| ());
                        let outcome = outcome_of(&r);
                        outcome_span.record("outcome", outcome);
                        meter.done(outcome);
                        conn.unary_outcome(id, r)
                    }
                    Work::Stream(s, _) => {
                        let credit = stream_credit.expect("streams have credit");
                        let (frame, is_error) = conn.run_stream(id, s, credit).await;
                        let outcome = if is_error { "error" } else { "ok" };
                        outcome_span.record("outcome", outcome);
                        meter.done(outcome);
                        (frame, is_error)
                    }
                }
            };
            let mut timed_out = false;
            let (frame, is_error) = match deadline {
                Some(d) => match tokio::time::timeout_at(d, body).await {
                    Ok(r) => r,
                    Err(_) => {
                        timed_out = true;
                        outcome_span.record("outcome", ErrorCode::DeadlineExceeded.as_str());
                        meter.done(ErrorCode::DeadlineExceeded.as_str());
                        let e = ServiceError::new(ErrorCode::DeadlineExceeded, "deadline exceeded");
                        (conn.error_frame(id, &e), true)
                    }
                },
                None => body.await,
            };
            let entry = lock(&conn.incoming).remove(&id);
            if let Some(entry) = entry {
                if timed_out {
                    // Work the handler spawned learns of it through its context.
                    if let Some(c) = entry.cancel.upgrade() {
                        c.cancel();
                    }
                }
                drop(entry);
                conn.stats.sub(|c| &c.incoming_in_flight, 1);
                conn.count_outcome(is_error);
                let _ = conn.send(frame).await;
            }
        }
        .instrument(span);
        let task = SERVING.scope(deadline, task);
        let mut incoming = lock(&self.incoming);
        let handle = tokio::spawn(task);
        // `dispatch` refused a duplicate id, so nothing is displaced here.
        incoming.insert(
            id,
            IncomingEntry {
                abort: handle.abort_handle(),
                cancel,
                credit,
                input,
            },
        );
        // Counted under the lock, so the task's own decrement cannot come first.
        self.stats.add(|c| &c.incoming_in_flight, 1);
        drop(incoming);
    }

    /// The frame answering a unary call, and whether it is an ERROR.
    fn unary_outcome(
        &self,
        id: u32,
        r: Result<Result<Encoded, ServiceError>, ()>,
    ) -> (Vec<u8>, bool) {
        match r {
            Ok(Ok(Encoded(frame))) => (frame, false),
            Ok(Err(e)) => (self.error_frame(id, &e), true),
            Err(()) => {
                tracing::error!("a handler panicked");
                (
                    self.error_frame(id, &ServiceError::internal("internal error")),
                    true,
                )
            }
        }
    }

    fn count_outcome(&self, is_error: bool) {
        if is_error {
            self.stats.add(|c| &c.errors_sent, 1);
        } else {
            self.stats.add(|c| &c.replies_sent, 1);
        }
    }

    /// Sends a stream's items as credit allows; returns the final END or ERROR frame.
    async fn run_stream(
        &self,
        id: u32,
        mut s: BoxStream<'static, Result<Encoded, ServiceError>>,
        credit: Arc<Semaphore>,
    ) -> (Vec<u8>, bool) {
        loop {
            match credit.acquire().await {
                Ok(permit) => permit.forget(),
                Err(_) => return (wire::end(self.codec, id), false),
            }
            match AssertUnwindSafe(s.next()).catch_unwind().await {
                Ok(Some(Ok(Encoded(item)))) => {
                    self.stats.add(|c| &c.replies_sent, 1);
                    if self.send(item).await.is_err() {
                        return (wire::end(self.codec, id), false);
                    }
                }
                Ok(Some(Err(e))) => return (self.error_frame(id, &e), true),
                Ok(None) => return (wire::end(self.codec, id), false),
                Err(_) => {
                    tracing::error!("a stream handler panicked");
                    return (
                        self.error_frame(id, &ServiceError::internal("internal error")),
                        true,
                    );
                }
            }
        }
    }

    /// The connection is finished: every running handler is cancelled and aborted.
    pub(super) fn abort_incoming(&self) {
        let incoming = std::mem::take(&mut *lock(&self.incoming));
        self.stats
            .sub(|c| &c.incoming_in_flight, incoming.len() as u64);
        for e in incoming.values() {
            if let Some(c) = e.cancel.upgrade() {
                c.cancel();
            }
            e.abort.abort();
        }
    }

    pub(super) fn cancel_incoming(&self, id: u32) {
        let entry = lock(&self.incoming).remove(&id);
        if let Some(e) = entry {
            if let Some(c) = e.cancel.upgrade() {
                c.cancel();
            }
            e.abort.abort();
            self.stats.sub(|c| &c.incoming_in_flight, 1);
        }
    }

    pub(super) fn add_credit(&self, id: u32, n: u32) {
        let incoming = lock(&self.incoming);
        if let Some(sem) = incoming.get(&id).and_then(|e| e.credit.as_ref()) {
            let room = (u32::MAX as usize).saturating_sub(sem.available_permits());
            sem.add_permits((n as usize).min(room));
        }
    }
}

/// Gives a notification permit back when its handler ends, however it ends.
struct NotifyPermit<'a>(&'a ConnInner);

impl Drop for NotifyPermit<'_> {
    fn drop(&mut self) {
        self.0.notify_permits.add_permits(1);
    }
}

enum Work {
    Unary(futures_util::future::BoxFuture<'static, Result<Encoded, ServiceError>>),
    Stream(BoxStream<'static, Result<Encoded, ServiceError>>, u32),
}

/// The cancel handle of a call whose service panicked before it had a context: nothing to
/// cancel.
struct Unstarted;

impl CancelCall for Unstarted {
    fn cancel(&self) {}
}

/// The span of one incoming call: connection, call id, method, and (once known) its outcome.
fn handle_span(conn: u64, id: u32, method: &str) -> tracing::Span {
    tracing::debug_span!(
        "wsp.handle",
        conn,
        id,
        method,
        outcome = tracing::field::Empty
    )
}

/// A unary handler's outcome as spans and metrics name it: `ok`, the error code
/// (`UNAVAILABLE`, …), or `panic`.
fn outcome_of(r: &Result<Result<Encoded, ServiceError>, ()>) -> &'static str {
    match r {
        Ok(Ok(_)) => "ok",
        Ok(Err(e)) => e.code.as_str(),
        Err(()) => "panic",
    }
}

/// What a handler running as a task needs to be metered when it ends (nothing without the
/// `metrics` feature).
struct Meter {
    #[cfg(feature = "metrics")]
    method: String,
    #[cfg(feature = "metrics")]
    received_at: Instant,
}

impl Meter {
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    fn new(method: &str, received_at: Instant) -> Meter {
        Meter {
            #[cfg(feature = "metrics")]
            method: method.to_owned(),
            #[cfg(feature = "metrics")]
            received_at,
        }
    }

    /// Records the outcome (at most once: the deadline may end a handler that is being
    /// metered, but then the body's own record never runs).
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    fn done(&self, outcome: &'static str) {
        #[cfg(feature = "metrics")]
        crate::metering::call_done(&self.method, outcome, self.received_at);
    }
}
