//! Payload codecs (MessagePack, JSON) and the raw payload of a frame.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Encoding of a value failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("encode error: {0}")]
pub struct EncodeError(pub String);

/// Decoding of a value failed (wrong type, missing field, too deep, not valid bytes).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("decode error: {0}")]
pub struct DecodeError(pub String);

/// A payload encoding: turns serde values into bytes and back.
pub trait PayloadCodec {
    /// Appends the encoding of `value` to `buf`.
    fn encode<T: Serialize + ?Sized>(
        &self,
        buf: &mut Vec<u8>,
        value: &T,
    ) -> Result<(), EncodeError>;
    /// Decodes one value from `bytes`, refusing nesting deeper than `max_depth`.
    fn decode<'de, T: Deserialize<'de>>(
        &self,
        bytes: &'de [u8],
        max_depth: usize,
    ) -> Result<T, DecodeError>;
}

/// MessagePack via rmp-serde; structs are encoded as maps, byte buffers (through
/// [`with::bytes`](crate::with::bytes)) as bin.
#[derive(Clone, Copy, Debug, Default)]
pub struct MsgPackCodec;

/// JSON via serde_json.
#[derive(Clone, Copy, Debug, Default)]
pub struct JsonCodec;

impl PayloadCodec for MsgPackCodec {
    fn encode<T: Serialize + ?Sized>(
        &self,
        buf: &mut Vec<u8>,
        value: &T,
    ) -> Result<(), EncodeError> {
        value
            .serialize(&mut rmp_serde::Serializer::new(buf).with_struct_map())
            .map_err(|e| EncodeError(e.to_string()))
    }

    fn decode<'de, T: Deserialize<'de>>(
        &self,
        bytes: &'de [u8],
        max_depth: usize,
    ) -> Result<T, DecodeError> {
        let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
        de.set_max_depth(max_depth);
        T::deserialize(&mut de).map_err(|e| DecodeError(e.to_string()))
    }
}

/// serde_json's own recursion limit, which cannot be raised without a feature.
const SERDE_JSON_DEPTH: usize = 128;

impl PayloadCodec for JsonCodec {
    fn encode<T: Serialize + ?Sized>(
        &self,
        buf: &mut Vec<u8>,
        value: &T,
    ) -> Result<(), EncodeError> {
        serde_json::to_writer(buf, value).map_err(|e| EncodeError(e.to_string()))
    }

    fn decode<'de, T: Deserialize<'de>>(
        &self,
        bytes: &'de [u8],
        max_depth: usize,
    ) -> Result<T, DecodeError> {
        if max_depth < SERDE_JSON_DEPTH && json_too_deep(bytes, max_depth) {
            return Err(DecodeError(format!("value nested deeper than {max_depth}")));
        }
        serde_json::from_slice(bytes).map_err(|e| DecodeError(e.to_string()))
    }
}

/// Whether the JSON text nests arrays/objects deeper than `max` (a linear scan, no recursion).
fn json_too_deep(bytes: &[u8], max: usize) -> bool {
    let (mut depth, mut in_str, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_str {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_str = false;
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// The codec of a connection, chosen by subprotocol negotiation (PROTOCOL §1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Codec {
    /// MessagePack in binary frames (`wsp.v1.msgpack`), the default.
    #[default]
    MsgPack,
    /// JSON in text frames (`wsp.v1.json`).
    Json,
}

impl Codec {
    /// The WebSocket subprotocol naming this codec.
    pub fn subprotocol(self) -> &'static str {
        match self {
            Codec::MsgPack => "wsp.v1.msgpack",
            Codec::Json => "wsp.v1.json",
        }
    }

    /// The codec named by a subprotocol, if supported.
    pub fn from_subprotocol(name: &str) -> Option<Codec> {
        match name {
            "wsp.v1.msgpack" => Some(Codec::MsgPack),
            "wsp.v1.json" => Some(Codec::Json),
            _ => None,
        }
    }

    /// Appends the encoding of `value` to `buf`.
    #[inline]
    pub fn encode<T: Serialize + ?Sized>(
        self,
        buf: &mut Vec<u8>,
        value: &T,
    ) -> Result<(), EncodeError> {
        match self {
            Codec::MsgPack => MsgPackCodec.encode(buf, value),
            Codec::Json => JsonCodec.encode(buf, value),
        }
    }

    /// Decodes one value, refusing nesting deeper than `max_depth`.
    #[inline]
    pub fn decode<'de, T: Deserialize<'de>>(
        self,
        bytes: &'de [u8],
        max_depth: usize,
    ) -> Result<T, DecodeError> {
        match self {
            Codec::MsgPack => MsgPackCodec.decode(bytes, max_depth),
            Codec::Json => JsonCodec.decode(bytes, max_depth),
        }
    }

    /// Decodes one value into a generic [`rmpv::Value`], refusing nesting deeper than `max_depth`.
    pub fn decode_value(self, bytes: &[u8], max_depth: usize) -> Result<rmpv::Value, DecodeError> {
        match self {
            Codec::MsgPack => {
                let mut rd = bytes;
                rmpv::decode::read_value_with_max_depth(&mut rd, max_depth)
                    .map_err(|e| DecodeError(e.to_string()))
            }
            Codec::Json => JsonCodec.decode(bytes, max_depth),
        }
    }
}

/// The raw bytes of one payload value (arguments, result, item or error details) as received,
/// sliced from the frame without copying, with the codec and depth limit to decode it.
#[derive(Clone, Debug)]
pub struct Payload {
    codec: Codec,
    bytes: Bytes,
    max_depth: usize,
}

impl Payload {
    /// Wraps raw payload bytes.
    pub fn new(codec: Codec, bytes: Bytes, max_depth: usize) -> Self {
        Payload {
            codec,
            bytes,
            max_depth,
        }
    }

    /// Decodes the payload into `T` (which may borrow from the payload). In MessagePack, a
    /// `bytes` value decoded as [`Bytes`] that is 4 KiB or more and at least half of the payload
    /// shares the received message instead of copying it.
    #[inline]
    pub fn decode<'de, T: Deserialize<'de>>(&'de self) -> Result<T, DecodeError> {
        super::shared::decoding(&self.bytes, || {
            self.codec.decode(&self.bytes, self.max_depth)
        })
    }

    /// Decodes the payload into a generic MessagePack value.
    pub fn to_value(&self) -> Result<rmpv::Value, DecodeError> {
        self.codec.decode_value(&self.bytes, self.max_depth)
    }

    /// The codec of the payload.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// The encoded bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }
}

/// Error details that can be encoded in either codec (any `Serialize` value).
pub trait ErrorDetails: Send + Sync + 'static {
    /// Appends the encoded details to `buf`.
    fn encode_details(&self, codec: Codec, buf: &mut Vec<u8>) -> Result<(), EncodeError>;
}

impl<T: Serialize + Send + Sync + 'static> ErrorDetails for T {
    fn encode_details(&self, codec: Codec, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
        codec.encode(buf, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_depth_scan() {
        assert!(!json_too_deep(br#"[[1],{"a":[2]}]"#, 3));
        assert!(json_too_deep(br#"[[[[1]]]]"#, 3));
        assert!(!json_too_deep(br#"["[[[[[["]"#, 2));
        assert!(!json_too_deep(br#"["\"[[[[[["]"#, 2));
    }

    /// A large `bytes` argument decoded for a handler is a slice of the received message, in
    /// either position of an argument list; a small one, or one from JSON, is a copy.
    #[test]
    fn large_bytes_share_the_message() {
        use crate::adapt::{Bin, Wire};
        type Arg = Wire<Bytes, Bin>;
        let big = Bytes::from(vec![5u8; 64 << 10]);
        let small = Bytes::from_static(b"tiny");
        for large_last in [true, false] {
            let args = if large_last {
                (Arg::new(small.clone()), Arg::new(big.clone()))
            } else {
                (Arg::new(big.clone()), Arg::new(small.clone()))
            };
            let mut buf = Vec::new();
            Codec::MsgPack.encode(&mut buf, &args).unwrap();
            let frame = Bytes::from(buf);
            let payload = Payload::new(Codec::MsgPack, frame.slice(..), 16);
            let (a, b): (Arg, Arg) = payload.decode().unwrap();
            let (small_got, big_got) = if large_last { (a.0, b.0) } else { (b.0, a.0) };
            assert_eq!((&small_got, &big_got), (&small, &big));
            let inside = |v: &Bytes| {
                let (at, start) = (v.as_ptr() as usize, frame.as_ptr() as usize);
                at >= start && at + v.len() <= start + frame.len()
            };
            assert!(inside(&big_got), "the large value shares the frame");
            assert!(!inside(&small_got), "the small value is copied");

            let mut json = Vec::new();
            Codec::Json.encode(&mut json, &args).unwrap();
            let (a, b): (Arg, Arg) = Payload::new(Codec::Json, Bytes::from(json), 16)
                .decode()
                .unwrap();
            let big_got = if large_last { b.0 } else { a.0 };
            assert_eq!(big_got, big, "base64 in JSON");
        }
    }

    #[test]
    fn deep_msgpack_is_refused() {
        let mut bytes = vec![0x91u8; 10_000];
        bytes.push(0xc0);
        assert!(Codec::MsgPack.decode_value(&bytes, 128).is_err());
        assert!(Codec::MsgPack.decode::<rmpv::Value>(&bytes, 128).is_err());
        let json = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(Codec::Json.decode_value(json.as_bytes(), 128).is_err());
        assert!(Codec::Json.decode_value(json.as_bytes(), 64).is_err());
    }
}
