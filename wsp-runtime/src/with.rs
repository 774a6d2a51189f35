//! serde helpers for the value encodings of PROTOCOL §5, for `#[serde(with = "...")]`.
//!
//! - [`bytes`]: MessagePack `bin`; in JSON (any human-readable format) a standard base64 string
//!   with padding. Without it, serde encodes `Vec<u8>` as an array of integers.
//! - [`int64`]: `i64`/`u64` as integers in MessagePack; in JSON decimal strings (numbers are
//!   accepted too).
//!
//! Each has `option` and `vec` submodules for `Option<T>` and `Vec<T>` fields.
//!
//! # Examples
//!
//! ```
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize, PartialEq, Debug)]
//! struct Blob {
//!     #[serde(with = "wsp_runtime::with::bytes")]
//!     data: Vec<u8>,
//!     #[serde(with = "wsp_runtime::with::int64")]
//!     size: u64,
//!     #[serde(with = "wsp_runtime::with::int64::option", default, skip_serializing_if = "Option::is_none")]
//!     offset: Option<i64>,
//! }
//!
//! let blob = Blob { data: vec![1, 2, 3], size: u64::MAX, offset: None };
//! let json = serde_json::to_string(&blob).unwrap();
//! assert_eq!(json, r#"{"data":"AQID","size":"18446744073709551615"}"#);
//! assert_eq!(serde_json::from_str::<Blob>(&json).unwrap(), blob);
//! ```

/// Byte buffers: MessagePack `bin`, JSON base64 string.
pub mod bytes {
    use std::fmt;

    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::de::{self, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};

    /// Serializes bytes as bin (binary formats) or base64 (human-readable formats).
    pub fn serialize<T: AsRef<[u8]> + ?Sized, S: Serializer>(
        v: &T,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&STANDARD.encode(v.as_ref()))
        } else {
            s.serialize_bytes(v.as_ref())
        }
    }

    /// Reads bytes into `T`; `.0` is whether the format is human-readable, `.1` makes a `T`
    /// of a slice (a copy, or a shared slice of the message for `Bytes`).
    struct BytesVisitor<T>(bool, fn(&[u8]) -> T);

    impl<'de, T: From<Vec<u8>>> Visitor<'de> for BytesVisitor<T> {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("bytes (bin or base64 string)")
        }

        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<T, E> {
            Ok((self.1)(v))
        }

        fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<T, E> {
            Ok(T::from(v))
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            if self.0 {
                STANDARD
                    .decode(v)
                    .map(T::from)
                    .map_err(|e| E::custom(format_args!("invalid base64: {e}")))
            } else {
                Ok(T::from(v.as_bytes().to_vec()))
            }
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<T, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
            while let Some(b) = seq.next_element::<u8>()? {
                out.push(b);
            }
            Ok(T::from(out))
        }
    }

    /// Deserializes bytes from bin, a base64 string (human-readable formats) or an array of
    /// integers, into any `T: From<Vec<u8>>` (`Vec<u8>`, `bytes::Bytes`, …).
    pub fn deserialize<'de, T: From<Vec<u8>>, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        read(d, |v| T::from(v.to_vec()))
    }

    /// Deserializes bytes like [`deserialize`] into [`bytes::Bytes`](::bytes::Bytes), sharing
    /// the received message instead of copying where `wire::shared` allows it (the adapter of
    /// generated code; [`deserialize`] itself always copies).
    pub(crate) fn deserialize_shared<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<::bytes::Bytes, D::Error> {
        read(d, crate::wire::shared::bytes_of)
    }

    fn read<'de, T: From<Vec<u8>>, D: Deserializer<'de>>(
        d: D,
        from_slice: fn(&[u8]) -> T,
    ) -> Result<T, D::Error> {
        if d.is_human_readable() {
            d.deserialize_str(BytesVisitor(true, from_slice))
        } else {
            d.deserialize_any(BytesVisitor(false, from_slice))
        }
    }

    struct Wrap<T>(T);

    impl<T: AsRef<[u8]>> serde::Serialize for Wrap<&T> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            super::bytes::serialize(self.0, s)
        }
    }

    impl<'de, T: From<Vec<u8>>> serde::Deserialize<'de> for Wrap<T> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            super::bytes::deserialize(d).map(Wrap)
        }
    }

    /// `Option` of bytes.
    pub mod option {
        use super::Wrap;
        use serde::{Deserialize, Deserializer, Serializer};

        /// Serializes `Some` as bytes, `None` as nil/null.
        pub fn serialize<T: AsRef<[u8]>, S: Serializer>(
            v: &Option<T>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match v {
                Some(v) => s.serialize_some(&Wrap(v)),
                None => s.serialize_none(),
            }
        }

        /// Deserializes nil/null as `None`.
        pub fn deserialize<'de, T: From<Vec<u8>>, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<T>, D::Error> {
            Ok(Option::<Wrap<T>>::deserialize(d)?.map(|w| w.0))
        }
    }

    /// `Vec` of bytes.
    pub mod vec {
        use super::Wrap;
        use serde::{Deserialize, Deserializer, Serializer};

        /// Serializes each element as bytes.
        pub fn serialize<T: AsRef<[u8]>, S: Serializer>(v: &[T], s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(v.iter().map(Wrap))
        }

        /// Deserializes a list of bytes.
        pub fn deserialize<'de, T: From<Vec<u8>>, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Vec<T>, D::Error> {
            Ok(Vec::<Wrap<T>>::deserialize(d)?
                .into_iter()
                .map(|w| w.0)
                .collect())
        }
    }
}

/// 64-bit integers: MessagePack int, JSON decimal string (numbers accepted).
pub mod int64 {
    use std::fmt;
    use std::marker::PhantomData;

    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    /// `i64` or `u64`.
    pub trait Int64: Copy + fmt::Display + std::str::FromStr + Sized {
        /// Converts, failing when out of range.
        fn from_i128(v: i128) -> Option<Self>;
        /// Serializes as a native integer.
        fn serialize_int<S: Serializer>(self, s: S) -> Result<S::Ok, S::Error>;
    }

    impl Int64 for i64 {
        fn from_i128(v: i128) -> Option<Self> {
            i64::try_from(v).ok()
        }
        fn serialize_int<S: Serializer>(self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_i64(self)
        }
    }

    impl Int64 for u64 {
        fn from_i128(v: i128) -> Option<Self> {
            u64::try_from(v).ok()
        }
        fn serialize_int<S: Serializer>(self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_u64(self)
        }
    }

    /// Serializes as an integer (binary formats) or a decimal string (human-readable formats).
    pub fn serialize<T: Int64, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(v)
        } else {
            v.serialize_int(s)
        }
    }

    struct IntVisitor<T>(PhantomData<T>);

    impl<T: Int64> IntVisitor<T> {
        fn range<E: de::Error>(v: i128) -> Result<T, E> {
            T::from_i128(v).ok_or_else(|| E::custom(format_args!("integer {v} out of range")))
        }
    }

    impl<'de, T: Int64> Visitor<'de> for IntVisitor<T> {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a 64-bit integer or a decimal string")
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
            Self::range(v.into())
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
            Self::range(v.into())
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
            if v.fract() == 0.0 && v.abs() < 9.3e18 {
                Self::range(v as i128)
            } else {
                Err(E::custom("not an integer"))
            }
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            v.trim()
                .parse()
                .map_err(|_| E::custom(format_args!("invalid integer string {v:?}")))
        }
    }

    /// Deserializes from an integer or a decimal string.
    pub fn deserialize<'de, T: Int64, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        d.deserialize_any(IntVisitor(PhantomData))
    }

    struct Wrap<T>(T);

    impl<T: Int64> serde::Serialize for Wrap<T> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            super::int64::serialize(&self.0, s)
        }
    }

    impl<'de, T: Int64> serde::Deserialize<'de> for Wrap<T> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            super::int64::deserialize(d).map(Wrap)
        }
    }

    /// `Option` of a 64-bit integer.
    pub mod option {
        use super::{Int64, Wrap};
        use serde::{Deserialize, Deserializer, Serializer};

        /// Serializes `Some` as a 64-bit integer, `None` as nil/null.
        pub fn serialize<T: Int64, S: Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
            match v {
                Some(v) => s.serialize_some(&Wrap(*v)),
                None => s.serialize_none(),
            }
        }

        /// Deserializes nil/null as `None`.
        pub fn deserialize<'de, T: Int64, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<T>, D::Error> {
            Ok(Option::<Wrap<T>>::deserialize(d)?.map(|w| w.0))
        }
    }

    /// `Vec` of 64-bit integers.
    pub mod vec {
        use super::{Int64, Wrap};
        use serde::{Deserialize, Deserializer, Serializer};

        /// Serializes each element as a 64-bit integer.
        pub fn serialize<T: Int64, S: Serializer>(v: &[T], s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(v.iter().map(|x| Wrap(*x)))
        }

        /// Deserializes a list of 64-bit integers.
        pub fn deserialize<'de, T: Int64, D: Deserializer<'de>>(d: D) -> Result<Vec<T>, D::Error> {
            Ok(Vec::<Wrap<T>>::deserialize(d)?
                .into_iter()
                .map(|w| w.0)
                .collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use crate::Codec;

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct T {
        #[serde(with = "super::bytes")]
        b: Vec<u8>,
        #[serde(with = "super::bytes::option", default)]
        ob: Option<Vec<u8>>,
        #[serde(with = "super::bytes::vec")]
        vb: Vec<Vec<u8>>,
        #[serde(with = "super::int64")]
        i: i64,
        #[serde(with = "super::int64::option", default)]
        oi: Option<u64>,
        #[serde(with = "super::int64::vec")]
        vi: Vec<i64>,
    }

    fn sample() -> T {
        T {
            b: vec![0, 255],
            ob: Some(vec![7]),
            vb: vec![vec![1], vec![]],
            i: i64::MIN,
            oi: Some(u64::MAX),
            vi: vec![-1, 1 << 60],
        }
    }

    #[test]
    fn msgpack_uses_bin_ints_and_maps() {
        let mut buf = Vec::new();
        Codec::MsgPack.encode(&mut buf, &sample()).expect("encodes");
        assert_eq!(buf[0] & 0xf0, 0x80, "a struct is a map");
        let v = rmpv::decode::read_value(&mut &buf[..]).expect("valid");
        let map = v.as_map().expect("map");
        assert!(map[0].1.is_bin());
        assert!(map[3].1.is_i64());
        let back: T = Codec::MsgPack.decode(&buf, 16).expect("decodes");
        assert_eq!(back, sample());
    }

    #[test]
    fn json_uses_base64_and_strings() {
        let mut buf = Vec::new();
        Codec::Json.encode(&mut buf, &sample()).expect("encodes");
        let s = String::from_utf8(buf.clone()).expect("utf8");
        assert!(s.contains(r#""b":"AP8=""#), "{s}");
        assert!(s.contains(r#""i":"-9223372036854775808""#), "{s}");
        assert!(s.contains(r#""oi":"18446744073709551615""#), "{s}");
        let back: T = Codec::Json.decode(&buf, 16).expect("decodes");
        assert_eq!(back, sample());
        let numbers = br#"{"b":"","vb":[],"i":5,"oi":null,"vi":[1,"2"]}"#;
        let t: T = Codec::Json.decode(numbers, 16).expect("numbers accepted");
        assert_eq!((t.i, t.oi, t.vi), (5, None, vec![1, 2]));
    }
}
