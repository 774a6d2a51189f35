//! Encoding frames: one constructor per frame type (PROTOCOL §2), each writing its elements in
//! the order the table gives, straight into the buffer that is sent. No other file encodes a
//! frame.

use bytes::Bytes;
use serde::Serialize;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::codec::{Codec, EncodeError, ErrorDetails};
use super::{
    CALL, CANCEL, CREDIT, DUPLEX, END, ERROR, HELLO, ITEM, NOTIFY, PULL, PUSH, PUSH_END, REPLY,
    STREAM, UPLOAD, VERSION, arity,
};

/// `[0, version, services]`: this side's services (name, fingerprint), sorted.
pub(crate) fn hello<'a>(
    codec: Codec,
    services: impl ExactSizeIterator<Item = (&'a str, &'a str)>,
) -> Vec<u8> {
    let mut w = FrameWriter::new(codec, HELLO, 64);
    w.uint(VERSION).services(services);
    w.finish()
}

/// `[1, id, method, deadline, args]`.
pub(crate) fn call<A: Serialize + ?Sized>(
    codec: Codec,
    id: u32,
    method: &str,
    deadline: Option<u32>,
    args: &A,
) -> Result<Vec<u8>, EncodeError> {
    let mut w = FrameWriter::new(codec, CALL, 64 + method.len());
    w.uint(id.into())
        .str(method)
        .opt_uint(deadline)
        .value(args)?;
    Ok(w.finish())
}

/// `[2, id, method, deadline, credit, args]`, with the arguments already encoded (a stream
/// encodes them when it is made, and sends them once it is polled).
pub(crate) fn stream(
    codec: Codec,
    id: u32,
    method: &str,
    deadline: Option<u32>,
    credit: u32,
    args: &[u8],
) -> Vec<u8> {
    let mut w = FrameWriter::new(codec, STREAM, 32 + method.len() + args.len());
    w.uint(id.into())
        .str(method)
        .opt_uint(deadline)
        .uint(credit.into())
        .raw(args);
    w.finish()
}

/// `[3, method, args]`.
pub(crate) fn notify<A: Serialize + ?Sized>(
    codec: Codec,
    method: &str,
    args: &A,
) -> Result<Vec<u8>, EncodeError> {
    let mut w = FrameWriter::new(codec, NOTIFY, 32 + method.len());
    w.str(method).value(args)?;
    Ok(w.finish())
}

/// `[4, id, result]`.
pub(crate) fn reply<T: Serialize + ?Sized>(
    codec: Codec,
    id: u32,
    result: &T,
) -> Result<Vec<u8>, EncodeError> {
    let mut w = FrameWriter::new(codec, REPLY, 64);
    w.uint(id.into()).value(result)?;
    Ok(w.finish())
}

/// `[5, id, code, message, details]` (`details` nil when absent).
pub(crate) fn error(
    codec: Codec,
    id: u32,
    code: u32,
    message: &str,
    details: Option<&dyn ErrorDetails>,
) -> Result<Vec<u8>, EncodeError> {
    let mut w = FrameWriter::new(codec, ERROR, 32 + message.len());
    w.uint(id.into()).uint(code.into()).str(message);
    match details {
        None => {
            w.nil();
        }
        Some(d) => {
            w.details(d)?;
        }
    }
    Ok(w.finish())
}

/// `[6, id, item]`.
pub(crate) fn item<T: Serialize + ?Sized>(
    codec: Codec,
    id: u32,
    item: &T,
) -> Result<Vec<u8>, EncodeError> {
    let mut w = FrameWriter::new(codec, ITEM, 64);
    w.uint(id.into()).value(item)?;
    Ok(w.finish())
}

/// `[7, id]`.
pub(crate) fn end(codec: Codec, id: u32) -> Vec<u8> {
    let mut w = FrameWriter::new(codec, END, 8);
    w.uint(id.into());
    w.finish()
}

/// `[8, id]`.
pub(crate) fn cancel(codec: Codec, id: u32) -> Vec<u8> {
    let mut w = FrameWriter::new(codec, CANCEL, 8);
    w.uint(id.into());
    w.finish()
}

/// `[9, id, n]`.
pub(crate) fn credit(codec: Codec, id: u32, n: u32) -> Vec<u8> {
    let mut w = FrameWriter::new(codec, CREDIT, 12);
    w.uint(id.into()).uint(n.into());
    w.finish()
}

/// `[10, id, method, deadline, args]` (UPLOAD) or `[11, id, method, deadline, credit, args]`
/// (DUPLEX, `credit` given): a call whose caller sends items too, with the arguments already
/// encoded.
pub(crate) fn open(
    codec: Codec,
    id: u32,
    method: &str,
    deadline: Option<u32>,
    credit: Option<u32>,
    args: &[u8],
) -> Vec<u8> {
    let ty = if credit.is_some() { DUPLEX } else { UPLOAD };
    let mut w = FrameWriter::new(codec, ty, 32 + method.len() + args.len());
    w.uint(id.into()).str(method).opt_uint(deadline);
    if let Some(credit) = credit {
        w.uint(credit.into());
    }
    w.raw(args);
    w.finish()
}

/// `[12, id, item]`: an item from the caller.
pub(crate) fn push<T: Serialize + ?Sized>(
    codec: Codec,
    id: u32,
    item: &T,
) -> Result<Vec<u8>, EncodeError> {
    let mut w = FrameWriter::new(codec, PUSH, 64);
    w.uint(id.into()).value(item)?;
    Ok(w.finish())
}

/// `[13, id]`: the caller sent its last item.
pub(crate) fn push_end(codec: Codec, id: u32) -> Vec<u8> {
    let mut w = FrameWriter::new(codec, PUSH_END, 8);
    w.uint(id.into());
    w.finish()
}

/// `[14, id, n]`: the callee takes `n` more items.
pub(crate) fn pull(codec: Codec, id: u32, n: u32) -> Vec<u8> {
    let mut w = FrameWriter::new(codec, PULL, 12);
    w.uint(id.into()).uint(n.into());
    w.finish()
}

/// A whole encoded frame as the WebSocket message that carries it (binary for MessagePack,
/// text for JSON).
///
/// A frame of up to [`REUSED`] bytes is copied into an allocation of its exact size and its
/// buffer kept for the next frame this thread writes: one allocation per frame instead of two
/// (the buffer, and the header `Bytes` adds to a vector whose length is not its capacity) and
/// no regrowth. A larger frame is handed over as it is, without a copy.
pub(crate) fn message(codec: Codec, mut frame: Vec<u8>) -> Message {
    let bytes = if frame.len() <= REUSED && frame.capacity() <= 4 * REUSED {
        let bytes = Bytes::copy_from_slice(&frame);
        frame.clear();
        SPARE.set(frame);
        bytes
    } else {
        Bytes::from(frame)
    };
    match codec {
        Codec::MsgPack => Message::Binary(bytes),
        Codec::Json => {
            Message::Text(Utf8Bytes::try_from(bytes).expect("the JSON writer only writes UTF-8"))
        }
    }
}

/// The largest frame [`message`] copies out of a buffer it keeps for the next one.
const REUSED: usize = 16 << 10;

thread_local! {
    /// The buffer the next frame written on this thread starts in (empty, with capacity).
    static SPARE: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Writes one frame's elements in either codec.
struct FrameWriter {
    codec: Codec,
    buf: Vec<u8>,
    first: bool,
}

impl FrameWriter {
    /// Starts a frame of type `ty`, with as many elements as this version gives that type.
    fn new(codec: Codec, ty: u8, capacity: usize) -> Self {
        let len = arity(ty.into()).expect("a frame type of this version");
        let mut buf = SPARE.take();
        buf.reserve(capacity);
        let mut w = FrameWriter {
            codec,
            buf,
            first: true,
        };
        match codec {
            Codec::MsgPack => {
                rmp::encode::write_array_len(&mut w.buf, len)
                    .expect("writing to a Vec cannot fail");
            }
            Codec::Json => w.buf.push(b'['),
        }
        w.uint(u64::from(ty));
        w
    }

    fn sep(&mut self) {
        if self.codec == Codec::Json && !std::mem::replace(&mut self.first, false) {
            self.buf.push(b',');
        }
    }

    fn uint(&mut self, v: u64) -> &mut Self {
        self.sep();
        match self.codec {
            Codec::MsgPack => {
                rmp::encode::write_uint(&mut self.buf, v).expect("writing to a Vec cannot fail");
            }
            Codec::Json => {
                use std::io::Write;
                write!(self.buf, "{v}").expect("writing to a Vec cannot fail");
            }
        }
        self
    }

    fn opt_uint(&mut self, v: Option<u32>) -> &mut Self {
        match v {
            Some(v) => self.uint(u64::from(v)),
            None => {
                self.sep();
                match self.codec {
                    Codec::MsgPack => self.buf.push(0xc0),
                    Codec::Json => self.buf.extend_from_slice(b"null"),
                }
                self
            }
        }
    }

    fn str(&mut self, s: &str) -> &mut Self {
        self.sep();
        match self.codec {
            Codec::MsgPack => {
                rmp::encode::write_str(&mut self.buf, s).expect("writing to a Vec cannot fail");
            }
            Codec::Json => {
                serde_json::to_writer(&mut self.buf, s).expect("writing to a Vec cannot fail")
            }
        }
        self
    }

    fn value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<&mut Self, EncodeError> {
        self.sep();
        self.codec.encode(&mut self.buf, v)?;
        Ok(self)
    }

    /// Appends an already encoded value.
    fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.sep();
        self.buf.extend_from_slice(bytes);
        self
    }

    fn nil(&mut self) -> &mut Self {
        self.opt_uint(None)
    }

    fn services<'a>(
        &mut self,
        services: impl ExactSizeIterator<Item = (&'a str, &'a str)>,
    ) -> &mut Self {
        self.sep();
        match self.codec {
            Codec::MsgPack => {
                rmp::encode::write_map_len(&mut self.buf, services.len() as u32)
                    .expect("writing to a Vec cannot fail");
                for (k, v) in services {
                    rmp::encode::write_str(&mut self.buf, k).expect("writing to a Vec cannot fail");
                    rmp::encode::write_str(&mut self.buf, v).expect("writing to a Vec cannot fail");
                }
            }
            Codec::Json => {
                self.buf.push(b'{');
                for (i, (k, v)) in services.enumerate() {
                    if i > 0 {
                        self.buf.push(b',');
                    }
                    serde_json::to_writer(&mut self.buf, k).expect("writing to a Vec cannot fail");
                    self.buf.push(b':');
                    serde_json::to_writer(&mut self.buf, v).expect("writing to a Vec cannot fail");
                }
                self.buf.push(b'}');
            }
        }
        self
    }

    /// Appends encoded error details.
    fn details(&mut self, d: &dyn ErrorDetails) -> Result<&mut Self, EncodeError> {
        self.sep();
        d.encode_details(self.codec, &mut self.buf)?;
        Ok(self)
    }

    /// Finishes the frame.
    fn finish(mut self) -> Vec<u8> {
        if self.codec == Codec::Json {
            self.buf.push(b']');
        }
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binary(m: Message) -> Bytes {
        match m {
            Message::Binary(b) => b,
            other => panic!("not binary: {other:?}"),
        }
    }

    /// Small frames are copied out of one reused buffer: each message keeps its own bytes, and
    /// the buffer is there for the next frame.
    #[test]
    fn small_frames_reuse_a_buffer_and_keep_their_bytes() {
        let first = binary(message(Codec::MsgPack, end(Codec::MsgPack, 1)));
        let spare = SPARE.take();
        assert!(
            spare.is_empty() && spare.capacity() >= 8,
            "the buffer is kept"
        );
        let at = spare.as_ptr();
        SPARE.set(spare);
        let frame = end(Codec::MsgPack, 2);
        assert_eq!(frame.as_ptr(), at, "the next frame is written into it");
        let second = binary(message(Codec::MsgPack, frame));
        assert_eq!(&first[..], &[0x92, 7, 1]);
        assert_eq!(&second[..], &[0x92, 7, 2]);
    }

    /// A frame above the threshold is handed over in the buffer it was written into, not
    /// copied like a small one.
    #[test]
    fn large_frames_are_not_copied() {
        let frame = call(Codec::MsgPack, 1, "s/m", None, &vec![0u8; 2 * REUSED]).unwrap();
        let at = frame.as_ptr();
        assert_eq!(binary(message(Codec::MsgPack, frame)).as_ptr(), at);
    }
}
