//! The callee side of a connection: dispatching incoming calls to services, running handlers
//! (inline when they finish at once, else as tasks bounded by the deadline), streams with
//! credit, and cancellation.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{FutureExt, StreamExt};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tracing::Instrument;

use super::{ConnInner, IncomingEntry, lock};
use crate::codec::Payload;
use crate::context::CallContext;
use crate::error::{ErrorCode, ServiceError};
use crate::frame;
use crate::service::{CallKind, Encoded, Handler, Observed, Request};

impl ConnInner {
    /// Handles one incoming CALL, STREAM or NOTIFY.
    pub(super) async fn dispatch(
        self: &Arc<Self>,
        kind: CallKind,
        id: u32,
        method: &str,
        deadline: Option<u32>,
        credit: u32,
        args: Bytes,
    ) {
        let payload = Payload::new(self.codec, args, self.config.max_depth);
        if let Some(obs) = &self.observer {
            obs(&Observed {
                connection_id: self.id,
                kind,
                method,
                args: &payload,
            });
        }
        let answer = kind != CallKind::Notify;
        if answer && self.incoming_len() >= self.config.max_incoming_calls {
            self.send_error(
                id,
                ServiceError::new(ErrorCode::Overloaded, "too many calls in flight"),
            )
            .await;
            return;
        }
        let now = Instant::now();
        let deadline = if answer {
            deadline.map(|ms| now + Duration::from_millis(ms.into()))
        } else {
            None
        };
        if deadline == Some(now) {
            self.send_error(
                id,
                ServiceError::new(ErrorCode::DeadlineExceeded, "deadline exceeded"),
            )
            .await;
            return;
        }
        let found = method
            .rsplit_once('/')
            .and_then(|(s, m)| Some((self.lookup(s)?, m)));
        let Some((svc, name)) = found else {
            if answer {
                self.send_error(id, ServiceError::unknown_method(method))
                    .await;
            } else {
                self.stats.add(|c| &c.invalid_frames, 1);
            }
            return;
        };
        let ctx = CallContext::new(self.clone(), id, deadline);
        let req = Request {
            method: name,
            kind,
            ctx: ctx.clone(),
            args: payload,
        };
        let handler =
            std::panic::catch_unwind(AssertUnwindSafe(|| svc.call(req))).unwrap_or_else(|_| {
                tracing::error!(method, "a service panicked while starting a call");
                Handler::Error(ServiceError::internal("internal error"))
            });
        match (handler, kind) {
            (Handler::Unary(mut fut), CallKind::Unary) => {
                // Fast path: a handler that is done at its first poll is answered without a task
                // (and without a deadline timer).
                let first = std::future::poll_fn(|cx| {
                    Poll::Ready(std::panic::catch_unwind(AssertUnwindSafe(|| {
                        fut.as_mut().poll(cx)
                    })))
                })
                .await;
                let r = match first {
                    Ok(Poll::Pending) => {
                        return self.spawn_handler(id, ctx, Work::Unary(fut), method);
                    }
                    Ok(Poll::Ready(r)) => Ok(r),
                    Err(_) => Err(()),
                };
                let (frame, is_error) = self.unary_outcome(id, r);
                self.count_outcome(is_error);
                if let Some(frame) = self.feed_direct(frame).await {
                    let _ = self.send(frame).await;
                }
            }
            (Handler::Stream(s), CallKind::Stream) => {
                self.spawn_handler(id, ctx, Work::Stream(s, credit), method)
            }
            (Handler::Notify(f), CallKind::Notify) => {
                if let Some(f) = f {
                    let span = tracing::debug_span!("wsp.notify", conn = self.id, method);
                    tokio::spawn(
                        AssertUnwindSafe(f)
                            .catch_unwind()
                            .map(|_| ())
                            .instrument(span),
                    );
                }
            }
            (_, CallKind::Notify) => self.stats.add(|c| &c.invalid_frames, 1),
            (Handler::Error(e), _) => self.send_error(id, e).await,
            _ => {
                self.send_error(id, ServiceError::unknown_method(method))
                    .await
            }
        }
    }

    fn spawn_handler(self: &Arc<Self>, id: u32, ctx: CallContext, work: Work, method: &str) {
        let conn = self.clone();
        let deadline = ctx.deadline();
        let credit = match &work {
            Work::Stream(_, c) => Some(Arc::new(Semaphore::new(*c as usize))),
            Work::Unary(_) => None,
        };
        let stream_credit = credit.clone();
        let span = tracing::debug_span!("wsp.handle", conn = self.id, id, method);
        let task = async move {
            let body = async {
                match work {
                    Work::Unary(fut) => {
                        let r = AssertUnwindSafe(fut).catch_unwind().await.map_err(|_| ());
                        conn.unary_outcome(id, r)
                    }
                    Work::Stream(s, _) => {
                        let credit = stream_credit.expect("streams have credit");
                        conn.run_stream(id, s, credit).await
                    }
                }
            };
            let (frame, is_error) = match deadline {
                Some(d) => match tokio::time::timeout_at(d, body).await {
                    Ok(r) => r,
                    Err(_) => {
                        let e = ServiceError::new(ErrorCode::DeadlineExceeded, "deadline exceeded");
                        (conn.error_frame(id, &e), true)
                    }
                },
                None => body.await,
            };
            let entry = lock(&conn.incoming).remove(&id);
            if let Some(entry) = entry {
                drop(entry);
                conn.stats.sub(|c| &c.incoming_in_flight, 1);
                conn.count_outcome(is_error);
                let _ = conn.send(frame).await;
            }
        }
        .instrument(span);
        let mut incoming = lock(&self.incoming);
        let handle = tokio::spawn(task);
        incoming.insert(
            id,
            IncomingEntry {
                abort: handle.abort_handle(),
                ctx: ctx.canceller(),
                credit,
            },
        );
        drop(incoming);
        self.stats.add(|c| &c.incoming_in_flight, 1);
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
                Err(_) => return (frame::end(self.codec, id), false),
            }
            match AssertUnwindSafe(s.next()).catch_unwind().await {
                Ok(Some(Ok(Encoded(item)))) => {
                    self.stats.add(|c| &c.replies_sent, 1);
                    if self.send(item).await.is_err() {
                        return (frame::end(self.codec, id), false);
                    }
                }
                Ok(Some(Err(e))) => return (self.error_frame(id, &e), true),
                Ok(None) => return (frame::end(self.codec, id), false),
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

    pub(super) fn cancel_incoming(&self, id: u32) {
        let entry = lock(&self.incoming).remove(&id);
        if let Some(e) = entry {
            e.ctx.cancel();
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

enum Work {
    Unary(futures_util::future::BoxFuture<'static, Result<Encoded, ServiceError>>),
    Stream(BoxStream<'static, Result<Encoded, ServiceError>>, u32),
}
