//! The wire: wsp frames (PROTOCOL §2) and the payload values they carry (PROTOCOL §5).
//!
//! - this file: the frame types, the parsed [`Frame`], and [`parse`], which hands a message to
//!   the reader of its codec;
//! - `msgpack.rs` and `json.rs`: the two envelope readers, written by hand. They read only the
//!   fixed header; the payload (always the last element) is handed on as a [`Bytes`] slice of
//!   the received message, without copying or decoding it;
//! - `write.rs`: one constructor per frame type, the only place frames are encoded;
//! - `codec.rs`: the payload codecs, and [`Payload`](codec::Payload), an undecoded value;
//! - `shared.rs`: large `bytes` values decoded as slices of their message, not copies.
//!
//! Nothing here knows of connections: the connection layer above reads and writes through it.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;

use crate::close::code;

pub(crate) mod codec;
mod json;
mod msgpack;
pub(crate) mod shared;
mod write;

use codec::Codec;
pub(crate) use write::{
    call, cancel, credit, end, error, hello, item, message, notify, open, pull, push, push_end,
    reply, stream,
};

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
pub(crate) const UPLOAD: u8 = 10;
pub(crate) const DUPLEX: u8 = 11;
pub(crate) const PUSH: u8 = 12;
pub(crate) const PUSH_END: u8 = 13;
pub(crate) const PULL: u8 = 14;

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
    /// CALL, STREAM, UPLOAD or DUPLEX (`kind` says which): a call the peer opens. `credit` is
    /// the initial window of a STREAM or DUPLEX, 0 for the others.
    Call {
        kind: CallKind,
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
    /// An item from the caller: laid out like ITEM.
    Push {
        id: u32,
        item: Bytes,
    },
    /// The caller's last item was sent: laid out like END.
    PushEnd {
        id: u32,
    },
    /// The callee grants the caller `n` more PUSHes: laid out like CREDIT.
    Pull {
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
    pub(crate) fn malformed(reason: impl fmt::Display) -> Self {
        FrameError {
            close_code: code::PROTOCOL_ERROR,
            reason: format!("malformed frame: {reason}"),
        }
    }

    pub(crate) fn invalid(reason: impl fmt::Display) -> Self {
        FrameError {
            close_code: code::INVALID_PAYLOAD,
            reason: format!("invalid frame bytes: {reason}"),
        }
    }
}

/// Number of elements each frame type has in this version.
pub(crate) fn arity(ty: u64) -> Option<u32> {
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
        10 => 5,
        11 => 6,
        12 => 3,
        13 => 2,
        14 => 3,
        _ => return None,
    })
}

/// The kind of an incoming call (PROTOCOL §2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallKind {
    /// CALL: exactly one REPLY or ERROR.
    Unary,
    /// STREAM: ITEMs then END or ERROR.
    Stream,
    /// NOTIFY: no answer.
    Notify,
    /// UPLOAD: PUSHes from the caller, then exactly one REPLY or ERROR.
    Upload,
    /// DUPLEX: PUSHes from the caller and ITEMs from the callee, then END or ERROR.
    Duplex,
}

impl CallKind {
    /// Whether the caller sends items (PUSH) in this call.
    pub fn has_input(self) -> bool {
        matches!(self, CallKind::Upload | CallKind::Duplex)
    }
}

/// A complete encoded REPLY or ITEM frame, made by
/// [`CallContext::encode_reply`](crate::CallContext::encode_reply) or
/// [`CallContext::encode_item`](crate::CallContext::encode_item) straight into the outgoing
/// buffer.
#[derive(Debug)]
pub struct Encoded(pub(crate) Vec<u8>);

/// Parses one frame from a whole WebSocket message.
pub(crate) fn parse(codec: Codec, msg: &Bytes) -> Result<Frame<'_>, FrameError> {
    match codec {
        Codec::MsgPack => msgpack::parse(msg),
        Codec::Json => json::parse(msg),
    }
}

/// Decodes a HELLO's services map (name → fingerprint), refusing more than `max` entries before
/// allocating for them.
pub(crate) fn parse_services(
    codec: Codec,
    raw: &[u8],
    max: usize,
) -> Result<Vec<(String, String)>, FrameError> {
    match codec {
        Codec::MsgPack => msgpack::services(raw, max),
        Codec::Json => json::services(raw, max),
    }
}

/// A HELLO listing more than `max` services (PROTOCOL §8).
fn too_many_services(max: usize) -> FrameError {
    FrameError {
        close_code: code::MESSAGE_TOO_BIG,
        reason: format!("HELLO lists more than {max} services"),
    }
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
            let frame = call(codec, 7, "math.Math/add", Some(30_000), &((1, 2, 3),));
            let s = roundtrip(codec, frame.expect("encodes"));
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
                kind: CallKind::Unary,
                id: 1,
                method,
                deadline: Some(30_000),
                credit: 0,
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
        assert_eq!(msgpack::mp_skip(&v).expect("skips"), v.len());
    }

    #[test]
    fn every_constructor_writes_what_the_parser_reads() {
        for codec in [Codec::MsgPack, Codec::Json] {
            // A stream's arguments come already encoded: an empty array.
            let args: &[u8] = if codec == Codec::MsgPack {
                &[0x90]
            } else {
                b"[]"
            };
            let frames = [
                hello(codec, [("a.A", "fp")].into_iter()),
                call(codec, 1, "a.A/m", None, &(1,)).unwrap(),
                stream(codec, 2, "a.A/s", Some(5), 32, args),
                notify(codec, "a.A/n", &("x",)).unwrap(),
                reply(codec, 3, &7).unwrap(),
                error(codec, 4, 8, "Bad", Some(&"details")).unwrap(),
                item(codec, 5, &"i").unwrap(),
                end(codec, 6),
                cancel(codec, 7),
                credit(codec, 8, 16),
                open(codec, 9, "a.A/u", Some(3), None, args),
                open(codec, 10, "a.A/d", None, Some(4), args),
                push(codec, 11, &"p").unwrap(),
                push_end(codec, 12),
                pull(codec, 13, 8),
            ];
            let parsed: Vec<String> = frames.into_iter().map(|f| roundtrip(codec, f)).collect();
            let kinds = [
                "Hello", "Call", "Call", "Notify", "Reply", "Error", "Item", "End", "Cancel",
                "Credit", "Call", "Call", "Push", "PushEnd", "Pull",
            ];
            for (p, kind) in parsed.iter().zip(kinds) {
                assert!(p.starts_with(kind), "{codec:?}: {p}");
            }
            assert!(parsed[1].contains("kind: Unary") && parsed[1].contains("credit: 0"));
            assert!(parsed[2].contains("kind: Stream") && parsed[2].contains("credit: 32"));
            assert!(parsed[2].contains("Some(5)"));
            assert!(parsed[9].contains("id: 8, n: 16"));
            assert!(parsed[10].contains("kind: Upload") && parsed[10].contains("Some(3)"));
            assert!(parsed[11].contains("kind: Duplex") && parsed[11].contains("credit: 4"));
            assert!(parsed[12].contains("id: 11"));
            assert!(parsed[13].contains("id: 12"));
            assert!(parsed[14].contains("id: 13, n: 8"));
        }
    }
}
