//! Copying a relayed connection's messages both ways, one message at a time per direction: the
//! next message is read from one end only once the previous one is written to the other, so
//! a sender that outruns its receiver is slowed by TCP back-pressure and the relay holds at
//! most one message per direction. The first end to close (or fail) ends the route; the other
//! end gets the same close code and reason.

use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use wsp_runtime::close_code as code;

use crate::{RelayInner, Ws};

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

/// Copies between `caller` and `host` until one end closes, then closes the other alike.
pub(crate) async fn pipe(relay: &RelayInner, caller: Ws, host: Ws) {
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
async fn finish(
    tx: &mut SplitSink<Ws, Message>,
    rx: &mut SplitStream<Ws>,
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
async fn copy(
    relay: &RelayInner,
    from: &mut SplitStream<Ws>,
    to: &mut SplitSink<Ws, Message>,
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
    loop {
        let silence = tokio::time::sleep_until(heard + config.dead_peer_timeout);
        tokio::select! {
            m = from.next() => {
                heard = Instant::now();
                let m = match m {
                    Some(Ok(m)) => m,
                    Some(Err(WsError::Capacity(_))) => return Ending::TooBig,
                    Some(Err(_)) | None => return Ending::Lost(end),
                };
                match m {
                    Message::Binary(_) | Message::Text(_) => {
                        let len = m.len();
                        match tokio::time::timeout(config.write_timeout, to.send(m)).await {
                            Ok(Ok(())) => relay.stats.count_relayed(len),
                            Ok(Err(_)) => return Ending::Lost(other),
                            Err(_) => return Ending::Stalled,
                        }
                    }
                    Message::Close(f) => return Ending::Closed(end, f),
                    // Answered by the WebSocket layer; each hop keeps its own keep-alive.
                    Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                }
            }
            _ = ping.tick() => {
                match tokio::time::timeout(config.write_timeout, to.send(Message::Ping(Default::default()))).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return Ending::Lost(other),
                    Err(_) => return Ending::Stalled,
                }
            }
            _ = silence => return Ending::Lost(end),
        }
    }
}
