//! The relay's own frames (PROTOCOL.md §11.2): exchanged before a connection carries wsp, in
//! the connection's codec, as arrays whose first element is a type from 32 up (so a relay
//! frame is never mistaken for a wsp frame). Keys, nonces and signatures travel as lowercase
//! hex strings, the same in both codecs. Not on the per-frame path: a connection sends at most
//! three of them.

use rmpv::Value;
use tokio_tungstenite::tungstenite::Message;

use crate::relay::identity::PublicKey;
use crate::wire::codec::Codec;

/// The relay protocol's version, sent in CHALLENGE.
pub const VERSION: u64 = 1;

/// Largest relay frame a peer accepts, in bytes (the largest, CONNECT with a proof, is about
/// 300 bytes in JSON).
pub const MAX_FRAME: usize = 1024;

/// A relay frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RelayFrame {
    /// `[32, version, nonce]`: the relay's first frame on every connection.
    Challenge {
        /// The relay protocol version ([`VERSION`]).
        version: u64,
        /// 32 random bytes, fresh for this connection.
        nonce: [u8; 32],
    },
    /// `[33, key, signature]`: a host registers this connection as a spare under `key`.
    Register {
        /// The host's public key.
        key: PublicKey,
        /// The key's signature of the register proof text.
        signature: [u8; 64],
    },
    /// `[34, ping_interval_ms]`: the relay took the spare; it pings it this often.
    Registered {
        /// How often the relay pings an idle spare, in milliseconds.
        ping_interval_ms: u64,
    },
    /// `[35, target, caller]`: a caller asks for `target`; `caller` is nil (anonymous) or
    /// `[key, signature]`.
    Connect {
        /// The key of the host to reach.
        target: PublicKey,
        /// The caller's own key and its signature of the connect proof text, if it proves one.
        caller: Option<(PublicKey, [u8; 64])>,
    },
    /// `[36, caller]`: the relay hands this spare to a caller whose key it verified (or nil
    /// for an anonymous caller).
    Handover {
        /// The caller's verified key, if it proved one.
        caller: Option<PublicKey>,
    },
    /// `[37]`: the host is ready to speak wsp on the handed-over spare.
    Ready,
    /// `[38]`: the caller's route is wired; wsp starts.
    Connected,
}

/// A relay frame that cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bad relay frame: {0}")]
pub struct FrameError(pub &'static str);

impl RelayFrame {
    /// The frame as one WebSocket message in `codec` (binary MessagePack or JSON text).
    pub fn encode(&self, codec: Codec) -> Message {
        let hex = |bytes: &[u8]| Value::from(hex::encode(bytes));
        let key = |k: &PublicKey| hex(k.as_bytes());
        let items: Vec<Value> = match self {
            RelayFrame::Challenge { version, nonce } => {
                vec![32.into(), (*version).into(), hex(nonce)]
            }
            RelayFrame::Register { key: k, signature } => {
                vec![33.into(), key(k), hex(signature)]
            }
            RelayFrame::Registered { ping_interval_ms } => {
                vec![34.into(), (*ping_interval_ms).into()]
            }
            RelayFrame::Connect { target, caller } => vec![
                35.into(),
                key(target),
                match caller {
                    Some((k, sig)) => Value::Array(vec![key(k), hex(sig)]),
                    None => Value::Nil,
                },
            ],
            RelayFrame::Handover { caller } => {
                vec![36.into(), caller.as_ref().map_or(Value::Nil, key)]
            }
            RelayFrame::Ready => vec![37.into()],
            RelayFrame::Connected => vec![38.into()],
        };
        let value = Value::Array(items);
        match codec {
            Codec::MsgPack => {
                let mut bytes = Vec::with_capacity(128);
                rmpv::encode::write_value(&mut bytes, &value)
                    .expect("writing to a Vec cannot fail");
                Message::binary(bytes)
            }
            Codec::Json => Message::text(
                serde_json::to_string(&value).expect("a relay frame is always valid JSON"),
            ),
        }
    }

    /// Reads a relay frame from a WebSocket data message of `codec`. Elements after the last
    /// known one are ignored (as in wsp frames).
    pub fn decode(message: &Message, codec: Codec) -> Result<RelayFrame, FrameError> {
        let value = match (codec, message) {
            (_, m) if m.len() > MAX_FRAME => return Err(FrameError("too large")),
            (Codec::MsgPack, Message::Binary(b)) => {
                rmpv::decode::read_value(&mut &b[..]).map_err(|_| FrameError("not MessagePack"))?
            }
            (Codec::Json, Message::Text(t)) => {
                serde_json::from_str::<Value>(t).map_err(|_| FrameError("not JSON"))?
            }
            _ => return Err(FrameError("a message of the wrong kind for the codec")),
        };
        let Value::Array(items) = value else {
            return Err(FrameError("not an array"));
        };
        let field = |i: usize| items.get(i).ok_or(FrameError("too few elements"));
        let kind = field(0)?.as_u64().ok_or(FrameError("no frame type"))?;
        Ok(match kind {
            32 => RelayFrame::Challenge {
                version: field(1)?.as_u64().ok_or(FrameError("bad version"))?,
                nonce: hex_field(field(2)?)?,
            },
            33 => RelayFrame::Register {
                key: PublicKey::from_bytes(hex_field(field(1)?)?),
                signature: hex_field(field(2)?)?,
            },
            34 => RelayFrame::Registered {
                ping_interval_ms: field(1)?.as_u64().ok_or(FrameError("bad interval"))?,
            },
            35 => RelayFrame::Connect {
                target: PublicKey::from_bytes(hex_field(field(1)?)?),
                caller: match field(2)? {
                    Value::Nil => None,
                    Value::Array(proof) if proof.len() >= 2 => Some((
                        PublicKey::from_bytes(hex_field(&proof[0])?),
                        hex_field(&proof[1])?,
                    )),
                    _ => return Err(FrameError("bad caller proof")),
                },
            },
            36 => RelayFrame::Handover {
                caller: match field(1)? {
                    Value::Nil => None,
                    v => Some(PublicKey::from_bytes(hex_field(v)?)),
                },
            },
            37 => RelayFrame::Ready,
            38 => RelayFrame::Connected,
            _ => return Err(FrameError("unknown relay frame type")),
        })
    }
}

fn hex_field<const N: usize>(value: &Value) -> Result<[u8; N], FrameError> {
    let s = value.as_str().ok_or(FrameError("expected a hex string"))?;
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).map_err(|_| FrameError("bad hex string"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_frame_round_trips_in_both_codecs() {
        let k = PublicKey::from_bytes([9; 32]);
        let frames = [
            RelayFrame::Challenge {
                version: VERSION,
                nonce: [1; 32],
            },
            RelayFrame::Register {
                key: k,
                signature: [2; 64],
            },
            RelayFrame::Registered {
                ping_interval_ms: 20_000,
            },
            RelayFrame::Connect {
                target: k,
                caller: Some((k, [3; 64])),
            },
            RelayFrame::Connect {
                target: k,
                caller: None,
            },
            RelayFrame::Handover { caller: Some(k) },
            RelayFrame::Handover { caller: None },
            RelayFrame::Ready,
            RelayFrame::Connected,
        ];
        for codec in [Codec::MsgPack, Codec::Json] {
            for f in &frames {
                let m = f.encode(codec);
                assert!(m.len() <= MAX_FRAME);
                assert_eq!(&RelayFrame::decode(&m, codec).unwrap(), f);
            }
        }
        assert_eq!(
            RelayFrame::Ready.encode(Codec::Json),
            Message::text("[37]"),
            "the JSON form is the array PROTOCOL.md shows"
        );
    }

    #[test]
    fn malformed_frames_are_errors() {
        for text in [
            "{}",
            "[]",
            "[99]",
            "[33,\"00\",\"11\"]",
            "[35,1,null]",
            "nonsense",
        ] {
            assert!(RelayFrame::decode(&Message::text(text), Codec::Json).is_err());
        }
        assert!(RelayFrame::decode(&Message::text("[37]"), Codec::MsgPack).is_err());
    }
}
