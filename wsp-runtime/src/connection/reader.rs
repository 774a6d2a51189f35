//! The reader task: takes each message from the socket, parses its frame and acts on it (a
//! call goes to `incoming.rs`, an answer to `outgoing.rs`), watches the handshake, keep-alive
//! and message timeouts, and finishes the connection when the socket ends.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::guarded_io::Stall;
use super::incoming::CallFrame;
use super::secure_io::Fault;
use super::{ConnInner, message_len};
use crate::close::{CloseInfo, code};
use crate::config::Config;
use crate::error::CallError;
use crate::wire::CallKind;
use crate::wire::codec::{Codec, Payload};
use crate::wire::{self, Frame, FrameError};

pub(super) async fn reader<R>(
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
        let ready = if eager < 64 && !closing && !conn.is_closing() {
            std::future::poll_fn(|cx| {
                Poll::Ready(match stream.poll_next_unpin(cx) {
                    Poll::Ready(item) => Some(item),
                    Poll::Pending => None,
                })
            })
            .await
        } else {
            None
        };
        let item = match ready {
            // Taken without waiting. Only every 16th of a run reads the clock: the others
            // follow within moments, and `last_rx` (the dead-peer watch, the start of an
            // incoming call's deadline) only needs to be that close.
            Some(item) => {
                if eager % 16 == 0 {
                    last_rx = Instant::now();
                }
                eager += 1;
                item
            }
            None => {
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
                        if keepalive && last_rx + cfg.dead_peer_timeout <= Instant::now() {
                            conn.initiate_close(code::KEEPALIVE_TIMEOUT, "keep-alive timeout");
                            continue;
                        }
                        timer.as_mut().reset(next_watch(&cfg, last_rx));
                        continue;
                    }
                };
                last_rx = Instant::now();
                eager = 1;
                item
            }
        };
        if let ControlFlow::Break(()) = conn
            .on_item(item, &mut hello, &mut closing, &mut received, last_rx)
            .await
        {
            break;
        }
        if hello && !watching_peer {
            watching_peer = true;
            timer.as_mut().reset(next_watch(&cfg, last_rx));
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

/// When the reader's timer fires next once HELLO arrived: at the dead-peer deadline (in a day
/// without keep-alive), and no later than one message timeout from now, since a message
/// trickling in completes no frame to check the message clock on.
fn next_watch(cfg: &Config, last_rx: Instant) -> Instant {
    let now = Instant::now();
    let dead_peer = if cfg.keepalive_interval.is_some() {
        last_rx + cfg.dead_peer_timeout
    } else {
        now + Duration::from_secs(86_400)
    };
    dead_peer.min(now + cfg.message_timeout)
}

impl ConnInner {
    /// Handles one item read from the socket; `Break` ends the reader.
    async fn on_item(
        self: &Arc<Self>,
        item: Option<Result<Message, WsError>>,
        hello: &mut bool,
        closing: &mut bool,
        received: &mut Option<CloseInfo>,
        received_at: Instant,
    ) -> ControlFlow<()> {
        let msg = match item {
            None => return ControlFlow::Break(()),
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                let fatal = match e {
                    WsError::Capacity(_) => Some((code::MESSAGE_TOO_BIG, "message too big")),
                    WsError::Utf8(_) => Some((code::INVALID_PAYLOAD, "text frame is not UTF-8")),
                    WsError::Io(ref io) => Stall::of(io)
                        .map(|s| (s.close_code(), s.reason()))
                        .or_else(|| Fault::of(io).map(|f| (f.close_code(), f.reason()))),
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
        if let Err(e) = self.handle(hello, data, received_at).await {
            self.stats.add(|c| &c.invalid_frames, 1);
            tracing::debug!(conn = self.id, code = e.close_code, reason = %e.reason, "closing on an invalid frame");
            self.initiate_close(e.close_code, &e.reason);
            return ControlFlow::Continue(());
        }
        ControlFlow::Continue(())
    }
}

impl ConnInner {
    /// Closes with 4004 if a message has been arriving for longer than the message timeout
    /// (PROTOCOL §8). Like a protocol error, the reader then waits for the peer's close frame.
    pub(super) fn check_message_clock(&self) {
        let overdue = self
            .message_clock
            .as_ref()
            .is_some_and(|c| c.overdue(self.config.message_timeout));
        if overdue && !self.is_closing() {
            self.stats.add(|c| &c.invalid_frames, 1);
            self.initiate_close(code::MESSAGE_TIMEOUT, Stall::Message.reason());
        }
    }

    /// Handles one received wsp frame.
    pub(super) async fn handle(
        self: &Arc<Self>,
        hello: &mut bool,
        msg: Bytes,
        received_at: Instant,
    ) -> Result<(), FrameError> {
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
                kind,
                id,
                method,
                deadline,
                credit,
                args,
            } => {
                stats.add(|c| &c.calls_received, 1);
                let call = CallFrame {
                    kind,
                    id,
                    method: &method,
                    deadline,
                    credit,
                    args,
                };
                self.dispatch(call, received_at).await?;
            }
            Frame::Notify { method, args } => {
                stats.add(|c| &c.notifications_received, 1);
                self.dispatch(
                    CallFrame {
                        kind: CallKind::Notify,
                        id: 0,
                        method: &method,
                        deadline: None,
                        credit: 0,
                        args,
                    },
                    received_at,
                )
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
            Frame::Push { id, item } => self.push_received(id, item)?,
            Frame::PushEnd { id } => self.push_end_received(id)?,
            Frame::Pull { id, n } => self.pull_received(id, n),
        }
        Ok(())
    }
}
