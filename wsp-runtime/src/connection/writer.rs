//! The writer task: drains the send queue into the socket, feeding every queued frame and
//! flushing once per batch; sends the keep-alive pings and this side's close frame.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use futures_util::SinkExt;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::{ConnInner, message_len};
use crate::close::CloseInfo;

/// Most frames fed to the socket before one flush.
const MAX_BATCH: usize = 256;

pub(super) async fn writer(
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
                    // What was queued before the close goes out before it (a notification sent
                    // just before `close()` must not be lost); the queue is bounded, and a
                    // socket that takes nothing fails the feed through its write timeout.
                    let (mut frames, mut bytes) = (0u64, 0u64);
                    let mut fed = Ok(());
                    while fed.is_ok() {
                        let Some(m) = conn.queue.try_recv() else { break };
                        frames += 1;
                        bytes += message_len(&m) as u64;
                        fed = sink.feed(m).await;
                    }
                    conn.queued.fetch_sub(frames as usize, Ordering::AcqRel);
                    conn.stats.add(|c| &c.frames_sent, frames + 1);
                    conn.stats.add(|c| &c.bytes_sent, bytes);
                    if fed.is_ok() {
                        let _ = sink.send(Message::Close(Some(frame))).await;
                    }
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
