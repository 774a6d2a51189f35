//! Copying a relayed connection's messages both ways, in order per direction: a message is
//! read from one end only while writing to the other makes progress, so a sender that outruns
//! its receiver is slowed by TCP back-pressure and the relay holds about one write buffer per
//! direction, never a queue. The first end to close (or fail) ends the route; the other end
//! gets the same close code and reason.

use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{FutureExt, Sink, SinkExt, Stream, StreamExt};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use wsp_runtime::close_code as code;

use crate::RelayInner;

/// Which end of a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Caller,
    Host,
}

/// Why a route ended, and at which end.
enum Ending {
    /// The end sent a close frame (forwarded as it is).
    Closed(End, Option<CloseFrame>),
    /// The end's connection failed or went silent.
    Lost(End),
    /// The end sent a message over the size limit.
    TooBig,
    /// Writing to the end made no progress within the write timeout.
    Stalled,
    /// The relay is shutting down.
    Shutdown,
}

/// One end of a route: a WebSocket accepted here, or this node's end of a tunnel to another
/// relay node (`cluster/tunnel.rs`), which behaves like one.
pub(crate) trait RouteEnd:
    Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin
{
}

impl<T> RouteEnd for T where
    T: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin
{
}

/// Copies between `caller` and `host` until one end closes, then closes the other alike.
pub(crate) async fn pipe(relay: &RelayInner, caller: impl RouteEnd, host: impl RouteEnd) {
    let (mut caller_tx, mut caller_rx) = caller.split();
    let (mut host_tx, mut host_rx) = host.split();
    let mut shutdown = relay.shutdown.subscribe();
    let ending = tokio::select! {
        e = copy(relay, &mut caller_rx, &mut host_tx, End::Caller) => e,
        e = copy(relay, &mut host_rx, &mut caller_tx, End::Host) => e,
        _ = crate::stopping(&mut shutdown) => Ending::Shutdown,
    };
    let lost = || {
        close(
            code::RELAY_PEER_LOST,
            "relay: the other end's connection was lost",
        )
    };
    // What each end is sent now (None: nothing, its connection is gone or it closed first).
    let (to_caller, to_host) = match ending {
        Ending::Closed(End::Caller, f) => (None, Some(f)),
        Ending::Closed(End::Host, f) => (Some(f), None),
        Ending::Lost(End::Caller) => (None, Some(lost())),
        Ending::Lost(End::Host) => (Some(lost()), None),
        Ending::TooBig => {
            let f = close(code::MESSAGE_TOO_BIG, "relay: message too big");
            (Some(f.clone()), Some(f))
        }
        Ending::Stalled => {
            let f = close(code::WRITE_TIMEOUT, "relay: the other end does not read");
            (Some(f.clone()), Some(f))
        }
        Ending::Shutdown => {
            let f = close(code::GOING_AWAY, "relay shutting down");
            (Some(f.clone()), Some(f))
        }
    };
    for f in [&to_caller, &to_host].into_iter().flatten() {
        relay
            .stats
            .count_close(f.as_ref().map_or(1005, |f| f.code.into()));
    }
    let timeout = relay.config.close_timeout;
    // An end that closed first gets its close answered (queued by the WebSocket layer when
    // it read the close) by the flush in `finish`.
    tokio::join!(
        finish(&mut caller_tx, &mut caller_rx, to_caller, timeout),
        finish(&mut host_tx, &mut host_rx, to_host, timeout),
    );
}

fn close(c: u16, reason: &'static str) -> Option<CloseFrame> {
    Some(CloseFrame {
        code: c.into(),
        reason: reason.into(),
    })
}

/// Sends `frame` (if any), flushes, and reads until the end's close arrives or `timeout`.
async fn finish<S: RouteEnd>(
    tx: &mut SplitSink<S, Message>,
    rx: &mut SplitStream<S>,
    frame: Option<Option<CloseFrame>>,
    timeout: Duration,
) {
    let work = async {
        match frame {
            Some(f) => {
                if tx.send(Message::Close(f)).await.is_err() {
                    return;
                }
            }
            None => {
                let _ = tx.flush().await;
            }
        }
        while let Some(Ok(m)) = rx.next().await {
            if m.is_close() {
                let _ = tx.flush().await;
                break;
            }
        }
    };
    let _ = tokio::time::timeout(timeout, work).await;
}

/// Copies messages from `from` (the end `end`) to the other end's `to`, pinging `to` while
/// idle and taking `from` for lost when nothing at all came from it for the dead-peer timeout.
///
/// Messages that have already arrived are written together and flushed once (one write to the
/// socket for a burst instead of one per message); the WebSocket layer flushes by itself past
/// its write buffer size, and a write that cannot complete stops the reading, so the relay
/// still holds no more than about one buffer per direction.
async fn copy<F: RouteEnd, T: RouteEnd>(
    relay: &RelayInner,
    from: &mut SplitStream<F>,
    to: &mut SplitSink<T, Message>,
    end: End,
) -> Ending {
    let other = match end {
        End::Caller => End::Host,
        End::Host => End::Caller,
    };
    let config = &relay.config;
    let mut ping = tokio::time::interval(config.ping_interval);
    ping.tick().await;
    let mut heard = Instant::now();
    // One timer for the whole route, moved on only when it fires (not per message).
    let silence = tokio::time::sleep_until(heard + config.dead_peer_timeout);
    tokio::pin!(silence);
    loop {
        tokio::select! {
            m = from.next() => {
                heard = Instant::now();
                let mut m = m;
                let mut fed = false;
                // The message just read, then every one already there (without waiting).
                loop {
                    let message = match m {
                        Some(Ok(message)) => message,
                        Some(Err(WsError::Capacity(_))) => return Ending::TooBig,
                        Some(Err(_)) | None => return Ending::Lost(end),
                    };
                    match message {
                        Message::Binary(_) | Message::Text(_) => {
                            let len = message.len();
                            match tokio::time::timeout(config.write_timeout, to.feed(message)).await {
                                Ok(Ok(())) => relay.stats.count_relayed(len),
                                Ok(Err(_)) => return Ending::Lost(other),
                                Err(_) => return Ending::Stalled,
                            }
                            fed = true;
                        }
                        Message::Close(f) => {
                            if fed {
                                // What came before the close goes first.
                                let _ = tokio::time::timeout(config.write_timeout, to.flush()).await;
                            }
                            return Ending::Closed(end, f);
                        }
                        // Answered by the WebSocket layer; each hop keeps its own keep-alive.
                        Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                    }
                    match from.next().now_or_never() {
                        Some(next) => m = next,
                        None => break,
                    }
                }
                if fed {
                    match tokio::time::timeout(config.write_timeout, to.flush()).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => return Ending::Lost(other),
                        Err(_) => return Ending::Stalled,
                    }
                }
            }
            _ = ping.tick() => {
                match tokio::time::timeout(config.write_timeout, to.send(Message::Ping(Default::default()))).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return Ending::Lost(other),
                    Err(_) => return Ending::Stalled,
                }
            }
            _ = &mut silence => {
                if heard.elapsed() >= config.dead_peer_timeout {
                    return Ending::Lost(end);
                }
                silence.as_mut().reset(heard + config.dead_peer_timeout);
            }
        }
    }
}
