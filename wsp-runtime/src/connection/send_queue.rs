//! The connection's outgoing queue: frames handed to the writer task, bounded in count, in
//! order. Unlike tokio's bounded channel, whose first 32-slot block (1.8 KiB of messages) is
//! allocated with the channel, it holds memory only while frames wait, so an idle connection
//! costs nothing here (PROTOCOL §8, memory per idle connection).

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use tokio::sync::{Notify, Semaphore};
use tokio_tungstenite::tungstenite::Message;

/// Capacity (in frames) an empty queue may keep; a larger one is freed once drained.
const KEEP_WHEN_EMPTY: usize = 8;

pub(crate) struct SendQueue {
    frames: Mutex<VecDeque<Message>>,
    /// Free places; closed when the queue is.
    room: Semaphore,
    /// Wakes the writer when a frame arrives (or the queue closes).
    ready: Notify,
}

/// Why a frame could not be queued without waiting (a full queue gives it back).
pub(crate) enum TrySendError {
    Full(Message),
    Closed,
}

impl SendQueue {
    pub(crate) fn new(capacity: usize) -> Self {
        SendQueue {
            frames: Mutex::new(VecDeque::new()),
            room: Semaphore::new(capacity),
            ready: Notify::new(),
        }
    }

    fn frames(&self) -> MutexGuard<'_, VecDeque<Message>> {
        self.frames.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, m: Message) {
        self.frames().push_back(m);
        self.ready.notify_one();
    }

    /// Queues `m`, waiting for room; gives it back if the queue is closed.
    pub(crate) async fn send(&self, m: Message) -> Result<(), Message> {
        match self.room.acquire().await {
            Ok(permit) => {
                permit.forget();
                self.push(m);
                Ok(())
            }
            Err(_) => Err(m),
        }
    }

    /// Queues `m` if there is room now.
    pub(crate) fn try_send(&self, m: Message) -> Result<(), TrySendError> {
        match self.room.try_acquire() {
            Ok(permit) => {
                permit.forget();
                self.push(m);
                Ok(())
            }
            Err(tokio::sync::TryAcquireError::NoPermits) => Err(TrySendError::Full(m)),
            Err(tokio::sync::TryAcquireError::Closed) => Err(TrySendError::Closed),
        }
    }

    /// The next frame, if one is queued.
    pub(crate) fn try_recv(&self) -> Option<Message> {
        let mut frames = self.frames();
        let m = frames.pop_front()?;
        if frames.is_empty() && frames.capacity() > KEEP_WHEN_EMPTY {
            *frames = VecDeque::new();
        }
        drop(frames);
        self.room.add_permits(1);
        Some(m)
    }

    /// The next frame, waiting for one; `None` once the queue is closed.
    pub(crate) async fn recv(&self) -> Option<Message> {
        loop {
            if let Some(m) = self.try_recv() {
                return Some(m);
            }
            if self.room.is_closed() {
                return None;
            }
            // A frame pushed since `try_recv` left its wake-up behind (`notify_one` stores one).
            self.ready.notified().await;
        }
    }

    /// Closes the queue: frames still in it are dropped, senders waiting for room fail.
    pub(crate) fn close(&self) {
        self.room.close();
        *self.frames() = VecDeque::new();
        self.ready.notify_one();
    }
}
