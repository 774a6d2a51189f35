//! The JSON envelope reader (PROTOCOL §2): the header through serde, the payload as a slice of
//! the message (`RawValue`).

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use serde::de::{self, Deserializer as _, IgnoredAny, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::{CallKind, Frame, FrameError, too_many_services};

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
    /// CALL, STREAM, UPLOAD or DUPLEX; the credit is 0 for CALL and UPLOAD.
    Call(CallKind, u32, Cow<'a, str>, Option<u32>, u32, &'a RawValue),
    Notify(Cow<'a, str>, &'a RawValue),
    Reply(u32, &'a RawValue),
    Error(u32, u32, String, &'a RawValue),
    Item(u32, &'a RawValue),
    End(u32),
    Cancel(u32),
    Credit(u32, u32),
    Push(u32, &'a RawValue),
    PushEnd(u32),
    Pull(u32, u32),
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
            1 | 10 => {
                let kind = if ty == 1 {
                    CallKind::Unary
                } else {
                    CallKind::Upload
                };
                let (id, method, deadline) = (next(s)?, next::<_, JsonStr<'de>>(s)?.0, next(s)?);
                JsonFrame::Call(kind, id, method, deadline, 0, next(s)?)
            }
            2 | 11 => {
                let kind = if ty == 2 {
                    CallKind::Stream
                } else {
                    CallKind::Duplex
                };
                let (id, method, deadline) = (next(s)?, next::<_, JsonStr<'de>>(s)?.0, next(s)?);
                JsonFrame::Call(kind, id, method, deadline, next(s)?, next(s)?)
            }
            3 => JsonFrame::Notify(next::<_, JsonStr<'de>>(s)?.0, next(s)?),
            4 => JsonFrame::Reply(next(s)?, next(s)?),
            5 => JsonFrame::Error(next(s)?, next(s)?, next(s)?, next(s)?),
            6 => JsonFrame::Item(next(s)?, next(s)?),
            7 => JsonFrame::End(next(s)?),
            8 => JsonFrame::Cancel(next(s)?),
            9 => JsonFrame::Credit(next(s)?, next(s)?),
            12 => JsonFrame::Push(next(s)?, next(s)?),
            13 => JsonFrame::PushEnd(next(s)?),
            14 => JsonFrame::Pull(next(s)?, next(s)?),
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

pub(super) fn parse(msg: &Bytes) -> Result<Frame<'_>, FrameError> {
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
        JsonFrame::Call(kind, id, method, deadline, credit, a) => Frame::Call {
            kind,
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
        JsonFrame::Push(id, i) => Frame::Push { id, item: p(i) },
        JsonFrame::PushEnd(id) => Frame::PushEnd { id },
        JsonFrame::Pull(id, n) => Frame::Pull { id, n },
    })
}

/// The HELLO services map (see [`super::parse_services`]).
pub(super) fn services(raw: &[u8], max: usize) -> Result<Vec<(String, String)>, FrameError> {
    /// The limit, and whether it was hit (to tell that error from a malformed map).
    struct Services<'c>(usize, &'c std::cell::Cell<bool>);
    impl<'de> Visitor<'de> for Services<'_> {
        type Value = Vec<(String, String)>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map of service names to fingerprints")
        }
        fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
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
            _ if over.get() => too_many_services(max),
            Category::Data => FrameError::malformed(e),
            _ => FrameError::invalid(e),
        }
    })
}
