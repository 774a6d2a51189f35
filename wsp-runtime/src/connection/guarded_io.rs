//! The byte stream under a WebSocket connection, watched for two stalls that tungstenite cannot
//! see (PROTOCOL §8):
//!
//! - **writes that make no progress**: a peer that never reads fills the socket's send buffer,
//!   and every write would wait forever, holding the connection and what is queued for it. A
//!   write or flush that stays pending for the write timeout fails instead;
//! - **messages that never finish**: tungstenite keeps the fragments of an unfinished message
//!   (up to the maximum message size) for as long as the peer keeps the link alive, with pings
//!   or pongs, which it may interleave. A small frame-header tracker follows the frames going
//!   by and records in a [`MessageClock`] when the message in progress started; the
//!   connection's reader checks that clock and closes with 4004 like on a protocol error, so
//!   the stream itself goes on working and can still read the peer's close frame.
//!
//! A write stall is an `io::Error` carrying [`Stall::Write`], which the connection turns into
//! close code 4003.
//!
//! It also reads ahead: the socket is read into a per-thread scratch buffer, and only what the
//! caller's buffer cannot take is kept, until taken. tungstenite's own read buffer, which every
//! connection holds for its whole life, can then be small (`Config::read_buffer_size`) without
//! costing large messages a system call per buffer-full.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::close::code;

/// Which stall ended the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stall {
    /// Writing made no progress within the write timeout.
    Write,
    /// A message was not complete within the message timeout of its first byte (found by the
    /// connection's reader through the [`MessageClock`]).
    Message,
}

impl Stall {
    /// The close code the connection ends with (PROTOCOL §7).
    pub(crate) fn close_code(self) -> u16 {
        match self {
            Stall::Write => code::WRITE_TIMEOUT,
            Stall::Message => code::MESSAGE_TIMEOUT,
        }
    }

    /// The close reason.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Stall::Write => "write timeout",
            Stall::Message => "message assembly timeout",
        }
    }
}

impl fmt::Display for Stall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for Stall {}

impl Stall {
    fn error(self) -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, self)
    }

    /// The stall behind an I/O error, if it is one of ours.
    pub(crate) fn of(e: &io::Error) -> Option<Stall> {
        e.get_ref()?.downcast_ref::<Stall>().copied()
    }
}

/// A byte stream (TCP, or later TLS over TCP) with the two stall watches.
pub(crate) struct GuardedIo<S> {
    inner: S,
    write_timeout: Duration,
    /// Armed when a write first returns pending; reset (not reallocated) at the next stall.
    write_timer: Option<Pin<Box<Sleep>>>,
    /// `true` while the armed timer belongs to the current stall.
    write_stalled: bool,
    /// Set once writing stalled: every later write fails at once.
    write_failed: bool,
    frames: FrameTracker,
    clock: Arc<MessageClock>,
    /// Bytes read from the socket beyond what the caller's buffer took: the buffer they were
    /// read into, held only while some are left (so an idle connection holds no read buffer
    /// here), and the range `rest_at..rest_end` of them not yet handed on.
    rest: Option<Box<[u8]>>,
    rest_at: usize,
    rest_end: usize,
}

/// When the message being received started, if one is in progress: written by [`GuardedIo`]
/// as bytes arrive, read by the connection's reader.
#[derive(Debug)]
pub(crate) struct MessageClock {
    base: Instant,
    /// Milliseconds from `base` to the start of the message in progress, plus one; 0: none.
    started: AtomicU64,
}

impl MessageClock {
    fn new() -> Self {
        MessageClock {
            base: Instant::now(),
            started: AtomicU64::new(0),
        }
    }

    fn set(&self, started: Option<Instant>) {
        let v = started.map_or(0, |t| t.duration_since(self.base).as_millis() as u64 + 1);
        self.started.store(v, Ordering::Relaxed);
    }

    /// Whether the message in progress has taken longer than `timeout`.
    pub(crate) fn overdue(&self, timeout: Duration) -> bool {
        match self.started.load(Ordering::Relaxed) {
            0 => false,
            v => self.base + Duration::from_millis(v - 1) + timeout < Instant::now(),
        }
    }
}

impl<S> GuardedIo<S> {
    /// Wraps `inner`; the clock tells the connection when the message in progress started.
    pub(crate) fn new(inner: S, write_timeout: Duration) -> (Self, Arc<MessageClock>) {
        let clock = Arc::new(MessageClock::new());
        let io = GuardedIo {
            inner,
            write_timeout,
            write_timer: None,
            write_stalled: false,
            write_failed: false,
            frames: FrameTracker::default(),
            clock: clock.clone(),
            rest: None,
            rest_at: 0,
            rest_end: 0,
        };
        (io, clock)
    }

    /// Makes `bytes` (read from the socket by someone else, e.g. the upgrade request an
    /// asynchronous accept check read first) the next bytes read.
    pub(crate) fn unread(&mut self, bytes: Vec<u8>) {
        debug_assert!(self.rest.is_none());
        if !bytes.is_empty() {
            self.rest_end = bytes.len();
            self.rest = Some(bytes.into_boxed_slice());
            self.rest_at = 0;
        }
    }

    /// Called when a write operation is pending: waits on the write timer as well.
    fn poll_stall(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let deadline = Instant::now() + self.write_timeout;
        if !self.write_stalled {
            self.write_stalled = true;
            match &mut self.write_timer {
                Some(t) => t.as_mut().reset(deadline),
                None => self.write_timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
        }
        let timer = self.write_timer.as_mut().expect("armed above");
        ready!(timer.as_mut().poll(cx));
        self.write_failed = true;
        Poll::Ready(Stall::Write.error())
    }

    /// Applies `op`'s outcome to the write watch.
    fn watch_write<T>(
        &mut self,
        cx: &mut Context<'_>,
        op: impl FnOnce(Pin<&mut S>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>>
    where
        S: Unpin,
    {
        if self.write_failed {
            return Poll::Ready(Err(Stall::Write.error()));
        }
        match op(Pin::new(&mut self.inner), cx) {
            Poll::Ready(r) => {
                self.write_stalled = false;
                Poll::Ready(r)
            }
            Poll::Pending => self.poll_stall(cx).map(Err),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for GuardedIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // What an earlier read brought beyond the caller's buffer comes first.
        if let Some(rest) = &this.rest {
            let n = (this.rest_end - this.rest_at).min(buf.remaining());
            buf.put_slice(&rest[this.rest_at..this.rest_at + n]);
            this.rest_at += n;
            if this.rest_at == this.rest_end {
                this.rest_at = 0;
                if let Some(done) = this.rest.take() {
                    give_back(done);
                }
            }
            return Poll::Ready(Ok(()));
        }
        if buf.remaining() >= SCRATCH_LEN {
            let before = buf.filled().len();
            ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
            this.observe(&buf.filled()[before..]);
            return Poll::Ready(Ok(()));
        }
        // Read as much as the socket has into this thread's scratch buffer, hand the caller
        // what fits and keep the rest: one system call for many frames, or for 64 KiB of a
        // large one, whatever the caller's (small) buffer. A large rest (part of a large
        // message) is kept by keeping the buffer itself, the thread reading into another one
        // next, rather than by copying it; a small one is copied into a buffer of its size,
        // so a connection that stops reading holds only what it was sent.
        let mut scratch = take_buffer();
        let mut into = ReadBuf::new(&mut scratch);
        let read = Pin::new(&mut this.inner).poll_read(cx, &mut into);
        let got = into.filled().len();
        if !matches!(read, Poll::Ready(Ok(()))) || got == 0 {
            give_back(scratch);
            return read;
        }
        this.observe(&scratch[..got]);
        let n = got.min(buf.remaining());
        buf.put_slice(&scratch[..n]);
        if got - n >= KEEP_BUFFER_AT {
            (this.rest, this.rest_at, this.rest_end) = (Some(scratch), n, got);
            return Poll::Ready(Ok(()));
        }
        if n < got {
            (this.rest, this.rest_at, this.rest_end) = (Some(scratch[n..got].into()), 0, got - n);
        }
        give_back(scratch);
        Poll::Ready(Ok(()))
    }
}

/// Size of the per-thread buffers sockets are read into.
const SCRATCH_LEN: usize = 64 << 10;

/// The least read-ahead kept in the buffer it was read into rather than copied out of it.
const KEEP_BUFFER_AT: usize = 16 << 10;

/// How many buffers a thread keeps for reading sockets into: every connection polled on the
/// thread reads into one of them (a read only uses it within one call), and a connection that
/// keeps one for the bytes its caller could not take yet gives it back once it handed them on,
/// to whichever thread it is polled on then.
const POOLED: usize = 2;

thread_local! {
    static BUFFERS: std::cell::RefCell<Vec<Box<[u8]>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A read buffer of this thread's, or a new one.
fn take_buffer() -> Box<[u8]> {
    BUFFERS
        .with_borrow_mut(Vec::pop)
        .unwrap_or_else(|| vec![0; SCRATCH_LEN].into_boxed_slice())
}

/// Gives a read buffer back to the thread, if it is one of these buffers (not the bytes of
/// [`GuardedIo::unread`] or a copied rest) and the thread has room for it.
fn give_back(buffer: Box<[u8]>) {
    if buffer.len() == SCRATCH_LEN {
        BUFFERS.with_borrow_mut(|b| {
            if b.len() < POOLED {
                b.push(buffer);
            }
        });
    }
}

impl<S> GuardedIo<S> {
    /// Follows the bytes read for the message clock.
    fn observe(&mut self, bytes: &[u8]) {
        let was_in_progress = self.frames.in_progress();
        let finished = self.frames.feed(bytes);
        if !self.frames.in_progress() {
            if was_in_progress {
                self.clock.set(None);
            }
        } else if finished || !was_in_progress {
            // A new message started in these bytes.
            self.clock.set(Some(Instant::now()));
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for GuardedIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .watch_write(cx, |s, cx| s.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .watch_write(cx, |s, cx| s.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().watch_write(cx, |s, cx| s.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().watch_write(cx, |s, cx| s.poll_shutdown(cx))
    }
}

/// Follows the WebSocket frames in the bytes read (RFC 6455 §5.2), after the HTTP handshake,
/// only as far as needed to know whether a message is in progress. Validation is tungstenite's.
#[derive(Debug, Default)]
pub(crate) struct FrameTracker {
    phase: Phase,
    /// Header bytes gathered so far (a header is at most 14 bytes).
    header: [u8; 14],
    /// `true` while a data message has begun and its final frame has not been read.
    data_open: bool,
    /// The current frame is a data frame (text, binary or continuation) and final.
    frame_data: bool,
    frame_fin: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The HTTP upgrade request or response: how many bytes of its final `\r\n\r\n` were seen.
    Http(u8),
    /// A frame header: how many bytes of it were gathered.
    Header(u8),
    /// A frame's payload: how many bytes are left.
    Payload(u64),
}

impl Default for Phase {
    fn default() -> Self {
        Phase::Http(0)
    }
}

impl FrameTracker {
    /// Whether a frame or a data message is partly received.
    pub(crate) fn in_progress(&self) -> bool {
        self.data_open || !matches!(self.phase, Phase::Header(0) | Phase::Http(_))
    }

    /// Follows `bytes`; returns whether a message finished in them (a data message's final
    /// frame, or a control frame outside a data message).
    pub(crate) fn feed(&mut self, mut bytes: &[u8]) -> bool {
        let mut finished = false;
        while !bytes.is_empty() {
            match self.phase {
                Phase::Http(mut seen) => {
                    let mut used = 0;
                    for &b in bytes {
                        used += 1;
                        seen = match (seen, b) {
                            (0 | 2, b'\r') => seen + 1,
                            (1 | 3, b'\n') => seen + 1,
                            (_, b'\r') => 1,
                            _ => 0,
                        };
                        if seen == 4 {
                            break;
                        }
                    }
                    bytes = &bytes[used..];
                    self.phase = if seen == 4 {
                        Phase::Header(0)
                    } else {
                        Phase::Http(seen)
                    };
                }
                Phase::Header(have) => {
                    let have = usize::from(have);
                    let need = if have < 2 {
                        2
                    } else {
                        header_len(self.header[1])
                    };
                    let take = (need - have).min(bytes.len());
                    self.header[have..have + take].copy_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    let have = have + take;
                    if have < need {
                        self.phase = Phase::Header(have as u8);
                    } else if have == 2 && header_len(self.header[1]) > 2 {
                        self.phase = Phase::Header(2);
                    } else {
                        self.frame_fin = self.header[0] & 0x80 != 0;
                        self.frame_data = self.header[0] & 0x08 == 0;
                        let len = payload_len(&self.header);
                        self.phase = Phase::Payload(len);
                        if len == 0 {
                            finished |= self.end_frame();
                        }
                    }
                }
                Phase::Payload(left) => {
                    let take = left.min(bytes.len() as u64);
                    bytes = &bytes[take as usize..];
                    self.phase = Phase::Payload(left - take);
                    if take == left {
                        finished |= self.end_frame();
                    }
                }
            }
        }
        finished
    }

    fn end_frame(&mut self) -> bool {
        self.phase = Phase::Header(0);
        if self.frame_data {
            self.data_open = !self.frame_fin;
            self.frame_fin
        } else {
            // A control frame ends a message only when no data message is open around it.
            !self.data_open
        }
    }
}

/// The whole header length implied by its second byte (mask bit and 7-bit length).
fn header_len(second: u8) -> usize {
    let ext = match second & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    2 + ext + if second & 0x80 != 0 { 4 } else { 0 }
}

fn payload_len(h: &[u8; 14]) -> u64 {
    match h[1] & 0x7f {
        126 => u64::from(u16::from_be_bytes([h[2], h[3]])),
        127 => u64::from_be_bytes([h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9]]),
        n => u64::from(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One read of at most `n` bytes through `io`, as tungstenite makes them.
    async fn read_some<S: AsyncRead + Unpin>(io: &mut GuardedIo<S>, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        let k = {
            let mut rb = ReadBuf::new(&mut buf);
            std::future::poll_fn(|cx| Pin::new(&mut *io).poll_read(cx, &mut rb))
                .await
                .expect("reads");
            rb.filled().len()
        };
        buf.truncate(k);
        buf
    }

    /// What the read-ahead keeps beyond a small read comes back in order; a large rest stays
    /// in the buffer it was read into, a small one is copied into a buffer of its size, and
    /// the end of the stream is passed on.
    #[tokio::test]
    async fn read_ahead_keeps_large_rests_in_place_and_copies_small_ones() {
        use tokio::io::AsyncWriteExt;
        let (mut tx, rx) = tokio::io::duplex(1 << 20);
        let (mut io, _clock) = GuardedIo::new(rx, Duration::from_secs(5));
        let sent: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        tx.write_all(&sent).await.unwrap();
        let mut got = read_some(&mut io, 1024).await;
        assert_eq!(got.len(), 1024);
        assert_eq!(
            io.rest.as_ref().map(|r| r.len()),
            Some(SCRATCH_LEN),
            "kept, not copied"
        );
        assert_eq!(io.rest_end - io.rest_at, SCRATCH_LEN - 1024);
        while got.len() < sent.len() {
            got.extend(read_some(&mut io, 1024).await);
        }
        assert!(got == sent, "every byte, in order");
        assert!(io.rest.is_none());

        tx.write_all(&sent[..2000]).await.unwrap();
        let first = read_some(&mut io, 1024).await;
        assert_eq!(
            io.rest.as_ref().map(|r| r.len()),
            Some(2000 - 1024),
            "copied"
        );
        let second = read_some(&mut io, 1024).await;
        assert_eq!([first, second].concat(), sent[..2000]);
        assert!(io.rest.is_none());

        drop(tx);
        assert!(read_some(&mut io, 1024).await.is_empty(), "end of stream");
        assert!(BUFFERS.with_borrow(|b| !b.is_empty()), "the buffer is back");
    }

    fn frame(fin: bool, opcode: u8, masked: bool, len: usize) -> Vec<u8> {
        let mut f = vec![if fin { 0x80 } else { 0 } | opcode];
        let m = if masked { 0x80 } else { 0 };
        match len {
            0..=125 => f.push(m | len as u8),
            126..=0xffff => {
                f.push(m | 126);
                f.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                f.push(m | 127);
                f.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        if masked {
            f.extend_from_slice(&[1, 2, 3, 4]);
        }
        f.extend(std::iter::repeat_n(0x55, len));
        f
    }

    fn tracker_after_http() -> FrameTracker {
        let mut t = FrameTracker::default();
        assert!(!t.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert_eq!(t.phase, Phase::Header(0));
        t
    }

    #[test]
    fn whole_messages_in_any_split() {
        let mut bytes = b"HTTP/1.1 101 Switching\r\nA: b\r\n\r\n".to_vec();
        for (len, masked) in [(0, true), (5, false), (300, true), (70_000, false)] {
            bytes.extend(frame(true, 2, masked, len));
        }
        for chunk in [1, 2, 3, 7, 64, 1000, bytes.len()] {
            let mut t = FrameTracker::default();
            let mut finished = 0;
            for c in bytes.chunks(chunk) {
                finished += usize::from(t.feed(c));
            }
            assert!(!t.in_progress(), "chunk {chunk}");
            assert!(finished >= 1, "chunk {chunk}");
        }
    }

    #[test]
    fn a_fragmented_message_stays_in_progress_across_control_frames() {
        let mut t = tracker_after_http();
        assert!(!t.feed(&frame(false, 2, true, 10)));
        assert!(t.in_progress());
        // Pongs and pings inside the message do not finish it.
        for _ in 0..3 {
            assert!(!t.feed(&frame(true, 0xA, true, 4)));
            assert!(!t.feed(&frame(true, 0x9, true, 0)));
            assert!(t.in_progress());
        }
        assert!(!t.feed(&frame(false, 0, true, 10)));
        assert!(t.in_progress());
        assert!(t.feed(&frame(true, 0, true, 10)));
        assert!(!t.in_progress());
        // A control frame on its own finishes a message.
        assert!(t.feed(&frame(true, 0xA, true, 0)));
    }

    #[test]
    fn a_partial_frame_is_in_progress() {
        let mut t = tracker_after_http();
        let f = frame(true, 2, true, 200);
        assert!(!t.feed(&f[..1]));
        assert!(t.in_progress());
        assert!(!t.feed(&f[1..150]));
        assert!(t.in_progress());
        assert!(t.feed(&f[150..]));
        assert!(!t.in_progress());
    }
}
