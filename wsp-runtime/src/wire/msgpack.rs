//! The MessagePack envelope reader (PROTOCOL §2): the fixed header by hand with `rmp`, the
//! payload as a slice of the message.

use std::borrow::Cow;

use bytes::Bytes;
use rmp::Marker;

use super::{
    CALL, CANCEL, CREDIT, CallKind, DUPLEX, END, ERROR, Frame, FrameError, HELLO, ITEM, NOTIFY,
    PULL, PUSH, PUSH_END, REPLY, STREAM, UPLOAD, arity, too_many_services,
};

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
pub(crate) fn mp_skip(buf: &[u8]) -> Result<usize, FrameError> {
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

pub(super) fn parse(msg: &Bytes) -> Result<Frame<'_>, FrameError> {
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
        CALL | STREAM | UPLOAD | DUPLEX => {
            let kind = match ty as u8 {
                CALL => CallKind::Unary,
                STREAM => CallKind::Stream,
                UPLOAD => CallKind::Upload,
                _ => CallKind::Duplex,
            };
            let id = mp_u32(&mut rd)?;
            let method = Cow::Borrowed(mp_str(&mut rd)?);
            let deadline = mp_opt_u32(&mut rd)?;
            // Only the calls answered with a stream carry an initial window.
            let credit = match kind {
                CallKind::Stream | CallKind::Duplex => mp_u32(&mut rd)?,
                _ => 0,
            };
            Frame::Call {
                kind,
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
        ITEM | PUSH => {
            let id = mp_u32(&mut rd)?;
            let item = mp_payload(msg, rd, last)?;
            if ty as u8 == ITEM {
                Frame::Item { id, item }
            } else {
                Frame::Push { id, item }
            }
        }
        END => Frame::End {
            id: mp_u32(&mut rd)?,
        },
        PUSH_END => Frame::PushEnd {
            id: mp_u32(&mut rd)?,
        },
        CANCEL => Frame::Cancel {
            id: mp_u32(&mut rd)?,
        },
        CREDIT | PULL => {
            let id = mp_u32(&mut rd)?;
            let n = mp_u32(&mut rd)?;
            if ty as u8 == CREDIT {
                Frame::Credit { id, n }
            } else {
                Frame::Pull { id, n }
            }
        }
        _ => unreachable!("arity() knows only these frame types"),
    };
    Ok(frame)
}

/// The HELLO services map (see [`super::parse_services`]).
pub(super) fn services(raw: &[u8], max: usize) -> Result<Vec<(String, String)>, FrameError> {
    let mut rd: Rd<'_> = raw;
    let n = rmp::decode::read_map_len(&mut rd).map_err(mp_err)? as usize;
    if n > max {
        return Err(too_many_services(max));
    }
    let mut services = Vec::with_capacity(n);
    for _ in 0..n {
        let k = mp_str(&mut rd)?.to_owned();
        let v = mp_str(&mut rd)?.to_owned();
        services.push((k, v));
    }
    Ok(services)
}
