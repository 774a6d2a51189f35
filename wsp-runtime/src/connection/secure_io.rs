//! The messages under an end-to-end encrypted connection (PROTOCOL.md §12): each wsp frame
//! leaves as one or more Noise transport messages, one per binary WebSocket message, and is
//! joined again on arrival. Below the reader and writer, above the WebSocket, like
//! `guarded_io.rs` is above TCP; the handshake that yields the cipher states is in
//! `relay/secure.rs`.
//!
//! Every transport message's plaintext ends with one flag byte: bit 0 = the frame's last
//! chunk, bit 1 = the frame is text (a JSON connection). At the end, so a chunk is opened
//! straight into place. Noise's own nonce counter orders the
//! messages: a tampered, replayed, reordered or truncated message fails authentication, which
//! ends the connection (close 4211) before anything of it reaches a handler. Pings, pongs and
//! closes pass in the clear: the relay needs the close code to pass it on.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures_util::{Sink, Stream};
use snow::TransportState;
use tokio_tungstenite::tungstenite::protocol::frame::Utf8Bytes;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::close::code;

/// Largest Noise message (the Noise specification's limit).
pub(crate) const NOISE_MAX: usize = 65_535;
/// The AEAD tag of each transport message.
const TAG: usize = 16;
/// Most frame bytes per transport message (one byte goes to the flags).
const CHUNK: usize = NOISE_MAX - TAG - 1;
const FINAL: u8 = 1;
const TEXT: u8 = 2;

/// Why an encrypted connection ends; carried to the reader inside an `io::Error` (as
/// [`Stall`](super::guarded_io::Stall) is) so the close gets its own code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// A message failed authentication or broke the framing.
    BadFrame,
    /// The joined frame grew past the maximum message size.
    TooBig,
}

impl Fault {
    pub(crate) fn close_code(self) -> u16 {
        match self {
            Fault::BadFrame => code::E2E_BAD_FRAME,
            Fault::TooBig => code::MESSAGE_TOO_BIG,
        }
    }

    pub(crate) fn reason(self) -> &'static str {
        match self {
            Fault::BadFrame => "e2e: a message failed authentication",
            Fault::TooBig => "message too big",
        }
    }

    /// The fault inside `e`, if it carries one.
    pub(crate) fn of(e: &io::Error) -> Option<Fault> {
        e.get_ref()?.downcast_ref::<Fault>().copied()
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for Fault {}

/// A WebSocket whose data messages are encrypted with `cipher`.
pub(crate) struct SecureIo<S> {
    inner: S,
    cipher: Box<TransportState>,
    max_message: usize,
    /// Encrypted chunks of a frame not yet taken by `inner`.
    outbox: VecDeque<Message>,
    /// Flags and chunk of the message being encrypted (reused).
    plain: Vec<u8>,
    /// A frame being joined from its chunks.
    joining: Vec<u8>,
    /// Set after a fault: the stream then ends.
    failed: bool,
}

impl<S> SecureIo<S> {
    pub(crate) fn new(inner: S, cipher: TransportState, max_message: usize) -> SecureIo<S> {
        SecureIo {
            inner,
            cipher: Box::new(cipher),
            max_message,
            outbox: VecDeque::new(),
            plain: Vec::new(),
            joining: Vec::new(),
            failed: false,
        }
    }

    /// The frame `data` as encrypted transport messages (the first returned, the rest queued).
    fn seal(&mut self, data: &[u8], text: bool) -> Result<Message, WsError> {
        let mut chunks = data.chunks(CHUNK).peekable();
        let mut first = None;
        // An empty frame is still one message.
        let empty: &[u8] = &[];
        let mut next = chunks.next().unwrap_or(empty);
        loop {
            let last = chunks.peek().is_none();
            self.plain.clear();
            self.plain.extend_from_slice(next);
            self.plain
                .push(if last { FINAL } else { 0 } | if text { TEXT } else { 0 });
            let mut sealed = vec![0u8; self.plain.len() + TAG];
            let n = self
                .cipher
                .write_message(&self.plain, &mut sealed)
                .map_err(|e| WsError::Io(io::Error::other(e.to_string())))?;
            sealed.truncate(n);
            let m = Message::Binary(Bytes::from(sealed));
            match first {
                None => first = Some(m),
                Some(_) => self.outbox.push_back(m),
            }
            match chunks.next() {
                Some(c) => next = c,
                None => break,
            }
        }
        Ok(first.expect("at least one chunk"))
    }

    fn fail(&mut self, fault: Fault) -> Poll<Option<Result<Message, WsError>>> {
        self.failed = true;
        self.joining = Vec::new();
        Poll::Ready(Some(Err(WsError::Io(io::Error::other(fault)))))
    }
}

impl<S> SecureIo<S>
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    /// Hands queued chunks to `inner`; ready once none is left.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        while !self.outbox.is_empty() {
            ready!(Pin::new(&mut self.inner).poll_ready(cx))?;
            let m = self.outbox.pop_front().expect("not empty");
            Pin::new(&mut self.inner).start_send(m)?;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S> Sink<Message> for SecureIo<S>
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    type Error = WsError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        let this = self.get_mut();
        ready!(this.drain(cx))?;
        Pin::new(&mut this.inner).poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), WsError> {
        let this = self.get_mut();
        let m = match item {
            Message::Binary(b) => this.seal(&b, false)?,
            Message::Text(t) => this.seal(t.as_bytes(), true)?,
            other => other,
        };
        // `poll_ready` made `inner` ready for one message; further chunks wait in the outbox.
        Pin::new(&mut this.inner).start_send(m)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        let this = self.get_mut();
        ready!(this.drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        let this = self.get_mut();
        ready!(this.drain(cx))?;
        Pin::new(&mut this.inner).poll_close(cx)
    }
}

impl<S> Stream for SecureIo<S>
where
    S: Stream<Item = Result<Message, WsError>> + Unpin,
{
    type Item = Result<Message, WsError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.failed {
                return Poll::Ready(None);
            }
            let sealed = match ready!(Pin::new(&mut this.inner).poll_next(cx)) {
                Some(Ok(Message::Binary(b))) => b,
                // Only binary messages carry encrypted frames.
                Some(Ok(Message::Text(_))) => return this.fail(Fault::BadFrame),
                other => return Poll::Ready(other),
            };
            if sealed.len() > NOISE_MAX || sealed.len() < TAG + 1 {
                return this.fail(Fault::BadFrame);
            }
            // Opened straight into the frame being joined (or a frame of its own): the flag
            // byte is the plaintext's last, so the chunk needs no moving.
            let start = this.joining.len();
            this.joining.resize(start + sealed.len(), 0);
            let n = match this
                .cipher
                .read_message(&sealed, &mut this.joining[start..])
            {
                Ok(n) if n >= 1 => n,
                _ => return this.fail(Fault::BadFrame),
            };
            let flags = this.joining[start + n - 1];
            this.joining.truncate(start + n - 1);
            if flags & !(FINAL | TEXT) != 0 {
                return this.fail(Fault::BadFrame);
            }
            if this.joining.len() > this.max_message {
                return this.fail(Fault::TooBig);
            }
            if flags & FINAL == 0 {
                continue;
            }
            let frame = Bytes::from(std::mem::take(&mut this.joining));
            if flags & TEXT == 0 {
                return Poll::Ready(Some(Ok(Message::Binary(frame))));
            }
            return match Utf8Bytes::try_from(frame) {
                Ok(t) => Poll::Ready(Some(Ok(Message::Text(t)))),
                Err(_) => this.fail(Fault::BadFrame),
            };
        }
    }
}
