//! Composable serde adapters for generated code, built on [`serde_with::As`].
//!
//! A field whose schema type holds a 64-bit integer, a float or `bytes` anywhere inside it (say
//! `list<map<string, bytes?>>`) needs the PROTOCOL §5 encoding at exactly those places. Generated
//! code spells the field's shape with adapters and lets `serde_with` walk the containers:
//!
//! ```
//! use std::collections::BTreeMap;
//! use serde::{Deserialize, Serialize};
//! use wsp_runtime::codegen::{As, Bin, Int64, Same};
//!
//! #[derive(Serialize, Deserialize, PartialEq, Debug)]
//! struct Row {
//!     #[serde(with = "As::<Vec<BTreeMap<Same, Option<Bin>>>>")]
//!     blobs: Vec<BTreeMap<String, Option<Vec<u8>>>>,
//!     #[serde(with = "As::<Int64>")]
//!     total: u64,
//! }
//!
//! let row = Row { blobs: vec![BTreeMap::from([("a".into(), Some(vec![1, 2]))])], total: u64::MAX };
//! let json = serde_json::to_string(&row).unwrap();
//! assert_eq!(json, r#"{"blobs":[{"a":"AQI="}],"total":"18446744073709551615"}"#);
//! assert_eq!(serde_json::from_str::<Row>(&json).unwrap(), row);
//! ```

use serde::{Deserializer, Serializer};
use serde_with::{DeserializeAs, SerializeAs};

use crate::with::{bytes, int64};

/// Adapter for `i64`/`u64`: a MessagePack int, a decimal string in JSON (numbers accepted).
#[derive(Debug, Clone, Copy)]
pub struct Int64;

impl<T: int64::Int64> SerializeAs<T> for Int64 {
    fn serialize_as<S: Serializer>(source: &T, serializer: S) -> Result<S::Ok, S::Error> {
        int64::serialize(source, serializer)
    }
}

impl<'de, T: int64::Int64> DeserializeAs<'de, T> for Int64 {
    fn deserialize_as<D: Deserializer<'de>>(deserializer: D) -> Result<T, D::Error> {
        int64::deserialize(deserializer)
    }
}

/// Adapter for `f32`/`f64`: a MessagePack float; in JSON a number, or for the values JSON has no
/// number for the strings `"NaN"`, `"Infinity"` and `"-Infinity"` (PROTOCOL §5). Without it
/// serde_json writes them as `null`, which no reader can tell from an absent value.
///
/// ```
/// use wsp_runtime::codegen::{Float, Wire};
///
/// let json = serde_json::to_string(&(Wire::<f64, Float>::new(f64::NEG_INFINITY), Wire::<f32, Float>::new(1.5))).unwrap();
/// assert_eq!(json, r#"["-Infinity",1.5]"#);
/// let back: Wire<f64, Float> = serde_json::from_str(r#""NaN""#).unwrap();
/// assert!(back.0.is_nan());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Float;

/// `f32` or `f64`, for [`Float`].
pub trait FloatValue: Copy + serde::Serialize + for<'de> serde::Deserialize<'de> {
    /// Widens to `f64`.
    fn to_f64(self) -> f64;
    /// Narrows from `f64` (as `as` does).
    fn from_f64(v: f64) -> Self;
}

impl FloatValue for f32 {
    fn to_f64(self) -> f64 {
        self.into()
    }
    fn from_f64(v: f64) -> Self {
        v as f32
    }
}

impl FloatValue for f64 {
    fn to_f64(self) -> f64 {
        self
    }
    fn from_f64(v: f64) -> Self {
        v
    }
}

/// How JSON writes a float it has no number for: `"NaN"`, `"Infinity"` or `"-Infinity"`
/// (PROTOCOL §5). For a non-finite `v` only.
pub(crate) fn non_finite_text(v: f64) -> &'static str {
    if v.is_nan() {
        "NaN"
    } else if v > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    }
}

impl<T: FloatValue> SerializeAs<T> for Float {
    fn serialize_as<S: Serializer>(source: &T, serializer: S) -> Result<S::Ok, S::Error> {
        let v = source.to_f64();
        if v.is_finite() || !serializer.is_human_readable() {
            return source.serialize(serializer);
        }
        serializer.serialize_str(non_finite_text(v))
    }
}

impl<'de, T: FloatValue> DeserializeAs<'de, T> for Float {
    fn deserialize_as<D: Deserializer<'de>>(deserializer: D) -> Result<T, D::Error> {
        if !deserializer.is_human_readable() {
            return T::deserialize(deserializer);
        }
        deserializer.deserialize_any(FloatVisitor).map(T::from_f64)
    }
}

/// A JSON float: a number, or one of the three strings for the non-finite values.
struct FloatVisitor;

impl serde::de::Visitor<'_> for FloatVisitor {
    type Value = f64;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(r#"a number, "NaN", "Infinity" or "-Infinity""#)
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<f64, E> {
        match v {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            _ => Err(E::invalid_value(serde::de::Unexpected::Str(v), &self)),
        }
    }
}

/// Adapter for byte buffers (`bytes::Bytes`, the type of schema `bytes`, or `Vec<u8>`):
/// MessagePack `bin`, a standard base64 string in JSON. A `Bytes` received by the runtime in
/// MessagePack that is 4 KiB or more and at least half of its payload shares the message it
/// arrived in instead of copying it.
#[derive(Debug, Clone, Copy)]
pub struct Bin;

impl SerializeAs<Vec<u8>> for Bin {
    fn serialize_as<S: Serializer>(source: &Vec<u8>, serializer: S) -> Result<S::Ok, S::Error> {
        bytes::serialize(source, serializer)
    }
}

impl<'de> DeserializeAs<'de, Vec<u8>> for Bin {
    fn deserialize_as<D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        bytes::deserialize(deserializer)
    }
}

impl SerializeAs<::bytes::Bytes> for Bin {
    fn serialize_as<S: Serializer>(
        source: &::bytes::Bytes,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        bytes::serialize(source, serializer)
    }
}

impl<'de> DeserializeAs<'de, ::bytes::Bytes> for Bin {
    fn deserialize_as<D: Deserializer<'de>>(deserializer: D) -> Result<::bytes::Bytes, D::Error> {
        bytes::deserialize_shared(deserializer)
    }
}

/// A parameter or result of type `T` as it goes over the wire, written by the adapter `A`
/// (`Wire<u64, Int64>`, `Wire<Vec<Bytes>, Vec<Bin>>`).
///
/// Generated clients and services wrap the arguments and results that hold a 64-bit integer,
/// a float or `bytes` in it, so that the PROTOCOL §5 encoding applies to them as it does to fields;
/// the value itself is `.0`.
///
/// ```
/// use wsp_runtime::codegen::{Int64, Wire};
///
/// let json = serde_json::to_string(&(Wire::<u64, Int64>::new(u64::MAX),)).unwrap();
/// assert_eq!(json, r#"["18446744073709551615"]"#);
/// let back: Wire<u64, Int64> = serde_json::from_str(r#""7""#).unwrap();
/// assert_eq!(back.0, 7);
/// ```
pub struct Wire<T, A>(pub T, std::marker::PhantomData<fn() -> A>);

impl<T, A> Wire<T, A> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Wire(value, std::marker::PhantomData)
    }
}

/// The default value (`None` for an optional parameter the caller left out).
impl<T: Default, A> Default for Wire<T, A> {
    fn default() -> Self {
        Wire::new(T::default())
    }
}

impl<T, A: SerializeAs<T>> serde::Serialize for Wire<T, A> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        A::serialize_as(&self.0, serializer)
    }
}

impl<'de, T, A: DeserializeAs<'de, T>> serde::Deserialize<'de> for Wire<T, A> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        A::deserialize_as(deserializer).map(Wire::new)
    }
}
