//! Untyped values ([`rmpv::Value`]) on their way out: in JSON a non-finite float is the string
//! `"NaN"`, `"Infinity"` or `"-Infinity"` (PROTOCOL §5), as the typed `Float` adapter writes it;
//! serde_json alone would write `null`. MessagePack carries such floats as they are.
//!
//! Used wherever the runtime encodes a `Value` it was given: the arguments of `call_value`,
//! `notify_value`, `stream_value`, `upload_value` and `duplex_value` (and the items of the last
//! two), and what an [`FnService`](crate::FnService) answers.

use rmpv::Value;

use crate::adapt::non_finite_text;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

/// A value, encoded with non-finite floats as text in JSON.
pub(crate) struct Untyped<V>(pub(crate) V);

impl Serialize for Untyped<&Value> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let float = match self.0 {
            Value::F32(f) => f64::from(*f),
            Value::F64(f) => *f,
            Value::Array(items) => return Untyped(items.as_slice()).serialize(serializer),
            Value::Map(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(&Untyped(k), &Untyped(v))?;
                }
                return map.end();
            }
            other => return other.serialize(serializer),
        };
        if float.is_finite() || !serializer.is_human_readable() {
            return self.0.serialize(serializer);
        }
        serializer.serialize_str(non_finite_text(float))
    }
}

impl Serialize for Untyped<&[Value]> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for v in self.0 {
            seq.serialize_element(&Untyped(v))?;
        }
        seq.end()
    }
}

impl Serialize for Untyped<Value> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Untyped(&self.0).serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_floats_are_text_in_json_and_floats_in_messagepack() {
        let value = Value::Array(vec![
            Value::F64(f64::NAN),
            Value::Map(vec![(Value::from("x"), Value::F32(f32::NEG_INFINITY))]),
            Value::F64(f64::INFINITY),
            Value::F64(1.5),
        ]);
        let json = serde_json::to_string(&Untyped(&value)).unwrap();
        assert_eq!(json, r#"["NaN",{"x":"-Infinity"},"Infinity",1.5]"#);
        let mp = rmp_serde::to_vec(&Untyped(&value)).unwrap();
        let back: Value = rmpv::decode::read_value(&mut &mp[..]).unwrap();
        assert!(back[0].as_f64().unwrap().is_nan());
        assert_eq!(back[2], Value::F64(f64::INFINITY));
    }
}
