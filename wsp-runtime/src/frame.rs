//! wsp frames (PROTOCOL §2): hand-written envelope parsing and encoding for both codecs.
//!
//! Parsing reads only the fixed header; the payload (always the last element) is handed on as
//! a [`Bytes`] slice of the received message, without copying or decoding it.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use rmp::Marker;
use serde::Serialize;
use serde::de::{self, Deserializer as _, IgnoredAny, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::close::code;
use crate::codec::{Codec, EncodeError};

pub(crate) const HELLO: u8 = 0;
pub(crate) const CALL: u8 = 1;
pub(crate) const STREAM: u8 = 2;
pub(crate) const NOTIFY: u8 = 3;
pub(crate) const REPLY: u8 = 4;
pub(crate) const ERROR: u8 = 5;
pub(crate) const ITEM: u8 = 6;
pub(crate) const END: u8 = 7;
pub(crate) const CANCEL: u8 = 8;
pub(crate) const CREDIT: u8 = 9;

/// The protocol version of this implementation.
pub(crate) const VERSION: u64 = 1;

/// One parsed frame; strings borrow from the message, payloads are slices of it.
#[derive(Debug)]
pub(crate) enum Frame<'a> {
    /// `services` is the raw map, decoded by [`parse_services`] only for the first HELLO and
    /// only once its size was checked.
    Hello {
        version: u64,
        services: Bytes,
    },
    Call {
        id: u32,
        method: Cow<'a, str>,
        deadline: Option<u32>,
        args: Bytes,
    },
    Stream {
        id: u32,
        method: Cow<'a, str>,
        deadline: Option<u32>,
        credit: u32,
        args: Bytes,
    },
    Notify {
        method: Cow<'a, str>,
        args: Bytes,
    },
    Reply {
        id: u32,
        result: Bytes,
    },
    Error {
        id: u32,
        code: u32,
        message: String,
        details: Bytes,
    },
    Item {
        id: u32,
        item: Bytes,
    },
    End {
        id: u32,
    },
    Cancel {
        id: u32,
    },
    Credit {
        id: u32,
        n: u32,
    },
}

/// Why a frame could not be parsed, with the close code it leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FrameError {
    pub(crate) close_code: u16,
    pub(crate) reason: String,
}

impl FrameError {
    fn malformed(reason: impl fmt::Display) -> Self {
        FrameError {
            close_code: code::PROTOCOL_ERROR,
            reason: format!("malformed frame: {reason}"),
        }
    }

    fn invalid(reason: impl fmt::Display) -> Self {
        FrameError {
            close_code: code::INVALID_PAYLOAD,
            reason: format!("invalid frame bytes: {reason}"),
        }
    }
}

/// Number of elements each frame type has in this version.
fn arity(ty: u64) -> Option<u32> {
    Some(match ty {
        0 => 3,
        1 => 5,
        2 => 6,
        3 => 3,
        4 => 3,
        5 => 5,
        6 => 3,
        7 | 8 => 2,
        9 => 3,
        _ => return None,
    })
}

/// Parses one frame from a whole WebSocket message.
pub(crate) fn parse(codec: Codec, msg: &Bytes) -> Result<Frame<'_>, FrameError> {
    match codec {
        Codec::MsgPack => parse_msgpack(msg),
        Codec::Json => parse_json(msg),
    }
}

// ---------------------------------------------------------------- MessagePack

type Rd<'a> = &'a [u8];

fn mp_err(e: rmp::decode::ValueReadError) -> FrameError {
    use rmp::decode::ValueReadError as V;
    match e {
        V::TypeMismatch(Marker::Reserved) => FrameError::invalid("reserved marker 0xc1"),
        V::TypeMismatch(m) => FrameError::malformed(format_args!("unexpected {m:?}")),
        other => FrameError::invalid(other),
    }
}

fn mp_uint(rd: &mut Rd<'_>) -> Result<u64, FrameError> {
    use rmp::decode::NumValueReadError as N;
    rmp::decode::read_int::<u64, _>(rd).map_err(|e| match e {
        N::TypeMismatch(Marker::Reserved) => FrameError::invalid("reserved marker 0xc1"),
        N::TypeMismatch(m) => {
            FrameError::malformed(format_args!("expected an unsigned integer, got {m:?}"))
        }
        N::OutOfRange => FrameError::malformed("integer out of range"),
        other => FrameError::invalid(other),
    })
}

fn mp_u32(rd: &mut Rd<'_>) -> Result<u32, FrameError> {
    u32::try_from(mp_uint(rd)?)
        .map_err(|_| FrameError::malformed("integer does not fit in 32 bits"))
}

fn mp_opt_u32(rd: &mut Rd<'_>) -> Result<Option<u32>, FrameError> {
    if rd.first() == Some(&0xc0) {
        *rd = &rd[1..];
        Ok(None)
    } else {
        mp_u32(rd).map(Some)
    }
}

fn mp_str<'a>(rd: &mut Rd<'a>) -> Result<&'a str, FrameError> {
    use rmp::decode::DecodeStringError as D;
    let (s, rest) = rmp::decode::read_str_from_slice(*rd).map_err(|e| match e {
        D::TypeMismatch(Marker::Reserved) => FrameError::invalid("reserved marker 0xc1"),
        D::TypeMismatch(m) => FrameError::malformed(format_args!("expected a string, got {m:?}")),
        D::InvalidUtf8(..) => FrameError::invalid("string is not UTF-8"),
        other => FrameError::invalid(other),
    })?;
    *rd = rest;
    Ok(s)
}

/// Skips one MessagePack value without recursion; returns its length in bytes.
fn mp_skip(buf: &[u8]) -> Result<usize, FrameError> {
    let mut rd: Rd<'_> = buf;
    let mut todo: u64 = 1;
    while todo > 0 {
        todo -= 1;
        let marker = rmp::decode::read_marker(&mut rd)
            .map_err(|_| FrameError::invalid("truncated value"))?;
        let skip = |rd: &mut Rd<'_>, n: usize| -> Result<(), FrameError> {
            if rd.len() < n {
                return Err(FrameError::invalid("truncated value"));
            }
            *rd = &rd[n..];
            Ok(())
        };
        let be = |rd: &mut Rd<'_>, n: usize| -> Result<u64, FrameError> {
            if rd.len() < n {
                return Err(FrameError::invalid("truncated value"));
            }
            let v = rd[..n]
                .iter()
                .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
            *rd = &rd[n..];
            Ok(v)
        };
        match marker {
            Marker::FixPos(_) | Marker::FixNeg(_) | Marker::Null | Marker::True | Marker::False => {
            }
            Marker::U8 | Marker::I8 => skip(&mut rd, 1)?,
            Marker::U16 | Marker::I16 => skip(&mut rd, 2)?,
            Marker::U32 | Marker::I32 | Marker::F32 => skip(&mut rd, 4)?,
            Marker::U64 | Marker::I64 | Marker::F64 => skip(&mut rd, 8)?,
            Marker::FixStr(n) => skip(&mut rd, n as usize)?,
            Marker::Str8 | Marker::Bin8 => {
                let n = be(&mut rd, 1)?;
                skip(&mut rd, n as usize)?
            }
            Marker::Str16 | Marker::Bin16 => {
                let n = be(&mut rd, 2)?;
                skip(&mut rd, n as usize)?
            }
            Marker::Str32 | Marker::Bin32 => {
                let n = be(&mut rd, 4)?;
                skip(&mut rd, n as usize)?
            }
            Marker::FixArray(n) => todo += u64::from(n),
            Marker::Array16 => todo += be(&mut rd, 2)?,
            Marker::Array32 => todo += be(&mut rd, 4)?,
            Marker::FixMap(n) => todo += 2 * u64::from(n),
            Marker::Map16 => todo += 2 * be(&mut rd, 2)?,
            Marker::Map32 => todo += 2 * be(&mut rd, 4)?,
            Marker::FixExt1 => skip(&mut rd, 2)?,
            Marker::FixExt2 => skip(&mut rd, 3)?,
            Marker::FixExt4 => skip(&mut rd, 5)?,
            Marker::FixExt8 => skip(&mut rd, 9)?,
            Marker::FixExt16 => skip(&mut rd, 17)?,
            Marker::Ext8 => {
                let n = be(&mut rd, 1)?;
                skip(&mut rd, n as usize + 1)?
            }
            Marker::Ext16 => {
                let n = be(&mut rd, 2)?;
                skip(&mut rd, n as usize + 1)?
            }
            Marker::Ext32 => {
                let n = be(&mut rd, 4)?;
                skip(&mut rd, n as usize + 1)?
            }
            Marker::Reserved => return Err(FrameError::invalid("reserved marker 0xc1")),
        }
    }
    Ok(buf.len() - rd.len())
}

/// The payload at the reader position: the rest of the message when it is the last element,
/// otherwise exactly one value (later elements are ignored, PROTOCOL §2).
fn mp_payload(msg: &Bytes, rd: Rd<'_>, last: bool) -> Result<Bytes, FrameError> {
    if rd.is_empty() {
        return Err(FrameError::invalid("missing payload"));
    }
    let start = msg.len() - rd.len();
    if last {
        Ok(msg.slice(start..))
    } else {
        let len = mp_skip(rd)?;
        Ok(msg.slice(start..start + len))
    }
}

/// `err`, unless the message is not even valid MessagePack (truncated, say): bytes come before
/// shape (1007 before 1002, PROTOCOL §7). Only on the error path: it reads the whole message.
fn not_msgpack_or(msg: &[u8], err: FrameError) -> FrameError {
    match mp_skip(msg) {
        Err(e) => e,
        Ok(n) if n < msg.len() => FrameError::invalid("bytes after the frame"),
        Ok(_) => err,
    }
}

fn parse_msgpack(msg: &Bytes) -> Result<Frame<'_>, FrameError> {
    let mut rd: Rd<'_> = msg;
    let len = rmp::decode::read_array_len(&mut rd).map_err(mp_err)?;
    if len == 0 {
        return Err(FrameError::malformed("empty frame"));
    }
    let ty = mp_uint(&mut rd)?;
    let need = arity(ty).ok_or_else(|| {
        not_msgpack_or(
            msg,
            FrameError::malformed(format_args!("unknown frame type {ty}")),
        )
    })?;
    if len < need {
        return Err(not_msgpack_or(
            msg,
            FrameError::malformed(format_args!(
                "frame type {ty} has {len} elements, needs {need}"
            )),
        ));
    }
    let last = len == need;
    let frame = match ty as u8 {
        HELLO => {
            let version = mp_uint(&mut rd)?;
            Frame::Hello {
                version,
                services: mp_payload(msg, rd, last)?,
            }
        }
        CALL => {
            let id = mp_u32(&mut rd)?;
            let method = Cow::Borrowed(mp_str(&mut rd)?);
            let deadline = mp_opt_u32(&mut rd)?;
            Frame::Call {
                id,
                method,
                deadline,
                args: mp_payload(msg, rd, last)?,
            }
        }
        STREAM => {
            let id = mp_u32(&mut rd)?;
            let method = Cow::Borrowed(mp_str(&mut rd)?);
            let deadline = mp_opt_u32(&mut rd)?;
            let credit = mp_u32(&mut rd)?;
            Frame::Stream {
                id,
                method,
                deadline,
                credit,
                args: mp_payload(msg, rd, last)?,
            }
        }
        NOTIFY => {
            let method = Cow::Borrowed(mp_str(&mut rd)?);
            Frame::Notify {
                method,
                args: mp_payload(msg, rd, last)?,
            }
        }
        REPLY => {
            let id = mp_u32(&mut rd)?;
            Frame::Reply {
                id,
                result: mp_payload(msg, rd, last)?,
            }
        }
        ERROR => {
            let id = mp_u32(&mut rd)?;
            let code = mp_u32(&mut rd)?;
            let message = mp_str(&mut rd)?.to_owned();
            Frame::Error {
                id,
                code,
                message,
                details: mp_payload(msg, rd, last)?,
            }
        }
        ITEM => {
            let id = mp_u32(&mut rd)?;
            Frame::Item {
                id,
                item: mp_payload(msg, rd, last)?,
            }
        }
        END => Frame::End {
            id: mp_u32(&mut rd)?,
        },
        CANCEL => Frame::Cancel {
            id: mp_u32(&mut rd)?,
        },
        _ => {
            let id = mp_u32(&mut rd)?;
            Frame::Credit {
                id,
                n: mp_u32(&mut rd)?,
            }
        }
    };
    Ok(frame)
}

// ---------------------------------------------------------------- JSON

/// A string that borrows from the input when it has no escapes.
struct JsonStr<'a>(Cow<'a, str>);

impl<'de> de::Deserialize<'de> for JsonStr<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = JsonStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(JsonStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(JsonStr(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

/// A JSON frame before its payload slices are turned into `Bytes`.
enum JsonFrame<'a> {
    Hello(u64, &'a RawValue),
    Call(u32, Cow<'a, str>, Option<u32>, &'a RawValue),
    Stream(u32, Cow<'a, str>, Option<u32>, u32, &'a RawValue),
    Notify(Cow<'a, str>, &'a RawValue),
    Reply(u32, &'a RawValue),
    Error(u32, u32, String, &'a RawValue),
    Item(u32, &'a RawValue),
    End(u32),
    Cancel(u32),
    Credit(u32, u32),
}

struct FrameVisitor;

fn next<'de, A: SeqAccess<'de>, T: de::Deserialize<'de>>(seq: &mut A) -> Result<T, A::Error> {
    seq.next_element()?
        .ok_or_else(|| de::Error::custom("too few elements"))
}

impl<'de> Visitor<'de> for FrameVisitor {
    type Value = JsonFrame<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a wsp frame array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let ty: u64 = next(&mut seq)?;
        let s = &mut seq;
        let frame = match ty {
            0 => JsonFrame::Hello(next(s)?, next(s)?),
            1 => JsonFrame::Call(next(s)?, next::<_, JsonStr<'de>>(s)?.0, next(s)?, next(s)?),
            2 => JsonFrame::Stream(
                next(s)?,
                next::<_, JsonStr<'de>>(s)?.0,
                next(s)?,
                next(s)?,
                next(s)?,
            ),
            3 => JsonFrame::Notify(next::<_, JsonStr<'de>>(s)?.0, next(s)?),
            4 => JsonFrame::Reply(next(s)?, next(s)?),
            5 => JsonFrame::Error(next(s)?, next(s)?, next(s)?, next(s)?),
            6 => JsonFrame::Item(next(s)?, next(s)?),
            7 => JsonFrame::End(next(s)?),
            8 => JsonFrame::Cancel(next(s)?),
            9 => JsonFrame::Credit(next(s)?, next(s)?),
            other => {
                return Err(de::Error::custom(format_args!(
                    "unknown frame type {other}"
                )));
            }
        };
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(frame)
    }
}

fn parse_json(msg: &Bytes) -> Result<Frame<'_>, FrameError> {
    let mut de = serde_json::Deserializer::from_slice(msg);
    let jf = de
        .deserialize_seq(FrameVisitor)
        .and_then(|f| de.end().map(|()| f))
        .map_err(|e| {
            use serde_json::error::Category;
            match e.classify() {
                Category::Data => FrameError::malformed(e),
                _ => FrameError::invalid(e),
            }
        })?;
    let p = |raw: &RawValue| msg.slice_ref(raw.get().as_bytes());
    Ok(match jf {
        JsonFrame::Hello(version, services) => Frame::Hello {
            version,
            services: p(services),
        },
        JsonFrame::Call(id, method, deadline, a) => Frame::Call {
            id,
            method,
            deadline,
            args: p(a),
        },
        JsonFrame::Stream(id, method, deadline, credit, a) => Frame::Stream {
            id,
            method,
            deadline,
            credit,
            args: p(a),
        },
        JsonFrame::Notify(method, a) => Frame::Notify { method, args: p(a) },
        JsonFrame::Reply(id, r) => Frame::Reply { id, result: p(r) },
        JsonFrame::Error(id, code, message, d) => Frame::Error {
            id,
            code,
            message,
            details: p(d),
        },
        JsonFrame::Item(id, i) => Frame::Item { id, item: p(i) },
        JsonFrame::End(id) => Frame::End { id },
        JsonFrame::Cancel(id) => Frame::Cancel { id },
        JsonFrame::Credit(id, n) => Frame::Credit { id, n },
    })
}

// ---------------------------------------------------------------- HELLO services

/// Decodes a HELLO's services map (name → fingerprint), refusing more than `max` entries before
/// allocating for them.
pub(crate) fn parse_services(
    codec: Codec,
    raw: &[u8],
    max: usize,
) -> Result<Vec<(String, String)>, FrameError> {
    let too_many = || FrameError {
        close_code: code::MESSAGE_TOO_BIG,
        reason: format!("HELLO lists more than {max} services"),
    };
    match codec {
        Codec::MsgPack => {
            let mut rd: Rd<'_> = raw;
            let n = rmp::decode::read_map_len(&mut rd).map_err(mp_err)? as usize;
            if n > max {
                return Err(too_many());
            }
            let mut services = Vec::with_capacity(n);
            for _ in 0..n {
                let k = mp_str(&mut rd)?.to_owned();
                let v = mp_str(&mut rd)?.to_owned();
                services.push((k, v));
            }
            Ok(services)
        }
        Codec::Json => {
            /// The limit, and whether it was hit (to tell that error from a malformed map).
            struct Services<'c>(usize, &'c std::cell::Cell<bool>);
            impl<'de> Visitor<'de> for Services<'_> {
                type Value = Vec<(String, String)>;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a map of service names to fingerprints")
                }
                fn visit_map<A: de::MapAccess<'de>>(
                    self,
                    mut map: A,
                ) -> Result<Self::Value, A::Error> {
                    let mut services = Vec::new();
                    while let Some(entry) = map.next_entry::<String, String>()? {
                        if services.len() == self.0 {
                            self.1.set(true);
                            return Err(de::Error::custom("too many services"));
                        }
                        services.push(entry);
                    }
                    Ok(services)
                }
            }
            let over = std::cell::Cell::new(false);
            let mut de = serde_json::Deserializer::from_slice(raw);
            de.deserialize_map(Services(max, &over)).map_err(|e| {
                use serde_json::error::Category;
                match e.classify() {
                    _ if over.get() => too_many(),
                    Category::Data => FrameError::malformed(e),
                    _ => FrameError::invalid(e),
                }
            })
        }
    }
}

// ---------------------------------------------------------------- encoding

/// Writes one frame's elements in either codec.
pub(crate) struct FrameWriter {
    codec: Codec,
    buf: Vec<u8>,
    first: bool,
}

impl FrameWriter {
    /// Starts a frame of type `ty` with `len` elements in total.
    pub(crate) fn new(codec: Codec, ty: u8, len: u32, capacity: usize) -> Self {
        let mut w = FrameWriter {
            codec,
            buf: Vec::with_capacity(capacity),
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

    pub(crate) fn uint(&mut self, v: u64) -> &mut Self {
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

    pub(crate) fn opt_uint(&mut self, v: Option<u32>) -> &mut Self {
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

    pub(crate) fn str(&mut self, s: &str) -> &mut Self {
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

    pub(crate) fn value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<&mut Self, EncodeError> {
        self.sep();
        self.codec.encode(&mut self.buf, v)?;
        Ok(self)
    }

    /// Appends an already encoded value.
    pub(crate) fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.sep();
        self.buf.extend_from_slice(bytes);
        self
    }

    pub(crate) fn nil(&mut self) -> &mut Self {
        self.opt_uint(None)
    }

    pub(crate) fn services<'a>(
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
    pub(crate) fn details(
        &mut self,
        d: &dyn crate::error::ErrorDetails,
    ) -> Result<&mut Self, EncodeError> {
        self.sep();
        d.encode_details(self.codec, &mut self.buf)?;
        Ok(self)
    }

    /// Finishes the frame.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        if self.codec == Codec::Json {
            self.buf.push(b']');
        }
        self.buf
    }
}

/// A whole encoded frame, ready to be sent.
pub(crate) fn message(codec: Codec, frame: Vec<u8>) -> tokio_tungstenite::tungstenite::Message {
    use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
    match codec {
        Codec::MsgPack => Message::Binary(Bytes::from(frame)),
        Codec::Json => {
            Message::Text(Utf8Bytes::try_from(frame).expect("the JSON writer only writes UTF-8"))
        }
    }
}

pub(crate) fn end(codec: Codec, id: u32) -> Vec<u8> {
    let mut w = FrameWriter::new(codec, END, 2, 8);
    w.uint(id.into());
    w.finish()
}

pub(crate) fn cancel(codec: Codec, id: u32) -> Vec<u8> {
    let mut w = FrameWriter::new(codec, CANCEL, 2, 8);
    w.uint(id.into());
    w.finish()
}

pub(crate) fn credit(codec: Codec, id: u32, n: u32) -> Vec<u8> {
    let mut w = FrameWriter::new(codec, CREDIT, 3, 12);
    w.uint(id.into()).uint(n.into());
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(codec: Codec, bytes: Vec<u8>) -> String {
        let b = Bytes::from(bytes);
        format!("{:?}", parse(codec, &b).expect("parses"))
    }

    #[test]
    fn call_frames_roundtrip_in_both_codecs() {
        for codec in [Codec::MsgPack, Codec::Json] {
            let mut w = FrameWriter::new(codec, CALL, 5, 64);
            w.uint(7).str("math.Math/add").opt_uint(Some(30_000));
            w.value(&((1, 2, 3),)).expect("encodes");
            let s = roundtrip(codec, w.finish());
            assert!(
                s.contains("id: 7") && s.contains("math.Math/add") && s.contains("30000"),
                "{s}"
            );
        }
    }

    #[test]
    fn example_from_protocol_section_10() {
        // [1, 1, "math.Math/add", 30000, [[1, 2, 3]]]
        let mut bytes = vec![0x95, 0x01, 0x01, 0xad];
        bytes.extend_from_slice(b"math.Math/add");
        bytes.extend_from_slice(&[0xcd, 0x75, 0x30, 0x91, 0x93, 0x01, 0x02, 0x03]);
        let msg = Bytes::from(bytes);
        match parse(Codec::MsgPack, &msg).expect("parses") {
            Frame::Call {
                id: 1,
                method,
                deadline: Some(30_000),
                args,
            } => {
                assert_eq!(method, "math.Math/add");
                assert_eq!(&args[..], &[0x91, 0x93, 0x01, 0x02, 0x03]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn extra_trailing_elements_are_ignored() {
        // [4, 9, [1, {"a": 2}], "extra"]
        let msg = Bytes::from_static(&[
            0x94, 0x04, 0x09, 0x92, 0x01, 0x81, 0xa1, b'a', 0x02, 0xa1, b'x',
        ]);
        match parse(Codec::MsgPack, &msg).expect("parses") {
            Frame::Reply { id: 9, result } => assert_eq!(result.len(), 6),
            other => panic!("{other:?}"),
        }
        let msg = Bytes::from_static(br#"[4, 9, [1, {"a": 2}], "extra", {"y": [1]}]"#);
        match parse(Codec::Json, &msg).expect("parses") {
            Frame::Reply { id: 9, result } => assert_eq!(&result[..], br#"[1, {"a": 2}]"#),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_are_classified() {
        let garbage = Bytes::from_static(&[0xc1, 0xff, 0x00]);
        assert_eq!(
            parse(Codec::MsgPack, &garbage).unwrap_err().close_code,
            code::INVALID_PAYLOAD
        );
        let not_array = Bytes::from_static(&[0x01]);
        assert_eq!(
            parse(Codec::MsgPack, &not_array).unwrap_err().close_code,
            code::PROTOCOL_ERROR
        );
        let unknown = Bytes::from_static(&[0x92, 0x63, 0x01]);
        assert_eq!(
            parse(Codec::MsgPack, &unknown).unwrap_err().close_code,
            code::PROTOCOL_ERROR
        );
        let truncated = Bytes::from_static(&[0x93, 0x04, 0x01]);
        assert_eq!(
            parse(Codec::MsgPack, &truncated).unwrap_err().close_code,
            code::INVALID_PAYLOAD
        );
        let bad_json = Bytes::from_static(b"[1, 2");
        assert_eq!(
            parse(Codec::Json, &bad_json).unwrap_err().close_code,
            code::INVALID_PAYLOAD
        );
        let wrong_shape = Bytes::from_static(br#"{"a": 1}"#);
        assert_eq!(
            parse(Codec::Json, &wrong_shape).unwrap_err().close_code,
            code::PROTOCOL_ERROR
        );
    }

    #[test]
    fn skipping_deep_values_does_not_recurse() {
        let mut v = vec![0x91u8; 100_000];
        v.push(0xc0);
        assert_eq!(mp_skip(&v).expect("skips"), v.len());
    }
}
