//! The catch-all variant of generated enums and errors: a variant this version of the schema does
//! not know, kept whole so that it can be sent on unchanged (PROTOCOL §5).

use std::hash::{Hash, Hasher};

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A variant of an enum or error sent by a peer built from a newer schema: its name and the whole
/// value as received (`$type` and the variant's fields), written back exactly so when re-encoded
/// with the same codec. Generated enums hold it in their catch-all variant:
///
/// ```
/// # use wsp_runtime::UnknownVariant;
/// let v: UnknownVariant = serde_json::from_str(r#"{"$type":"Hexagon","side":2.5}"#).unwrap();
/// assert_eq!(v.name(), "Hexagon");
/// assert_eq!(serde_json::to_string(&v).unwrap(), r#"{"$type":"Hexagon","side":2.5}"#);
/// ```
#[derive(Clone, PartialEq)]
pub struct UnknownVariant {
    name: String,
    value: rmpv::Value,
}

impl UnknownVariant {
    /// The variant's name as sent (the `$type` value).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The whole value as received: a map with `$type` and the variant's fields.
    pub fn value(&self) -> &rmpv::Value {
        &self.value
    }

    /// Deserializes a variant whose name is none of `known`, the declared variants. serde tries
    /// an enum's catch-all when its declared variant fails too, so without this a declared
    /// variant with a malformed field would pass as an unknown one instead of failing.
    pub fn deserialize_except<'de, D: Deserializer<'de>>(
        deserializer: D,
        known: &[&str],
    ) -> Result<Self, D::Error> {
        let unknown = Self::deserialize(deserializer)?;
        if known.contains(&unknown.name()) {
            return Err(D::Error::custom(format_args!(
                "invalid fields for variant `{}`",
                unknown.name()
            )));
        }
        Ok(unknown)
    }
}

/// `UnknownVariant("Hexagon": {"$type": "Hexagon", "side": 2.5})`.
impl std::fmt::Debug for UnknownVariant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UnknownVariant({:?}: {})", self.name, self.value)
    }
}

impl Serialize for UnknownVariant {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for UnknownVariant {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = rmpv::Value::deserialize(deserializer)?;
        let name = value
            .as_map()
            .and_then(|entries| entries.iter().find(|(k, _)| k.as_str() == Some("$type")))
            .and_then(|(_, v)| v.as_str())
            .ok_or_else(|| D::Error::custom("expected a map with a `$type` string"))?
            .to_owned();
        Ok(UnknownVariant { name, value })
    }
}

/// Equal values are equal as values; NaN inside one makes it unequal to itself, as for `f64`.
impl Eq for UnknownVariant {}

/// Hashes the name and the value's MessagePack encoding, so that equal values hash alike.
impl Hash for UnknownVariant {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        let mut bytes = Vec::new();
        // Writing a `Value` to a `Vec` cannot fail.
        let _ = rmpv::encode::write_value(&mut bytes, &self.value);
        bytes.hash(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::codec::Codec;

    #[test]
    fn an_unknown_variant_goes_back_as_it_came_in_both_codecs() {
        let json = br#"{"$type":"Hexagon","side":2.5,"id":"18446744073709551615","tags":["a"]}"#;
        let v: UnknownVariant = Codec::Json.decode(json, 64).unwrap();
        assert_eq!(v.name(), "Hexagon");
        let mut out = Vec::new();
        Codec::Json.encode(&mut out, &v).unwrap();
        assert_eq!(out, json);

        let mut packed = Vec::new();
        Codec::MsgPack.encode(&mut packed, &v).unwrap();
        let back: UnknownVariant = Codec::MsgPack.decode(&packed, 64).unwrap();
        assert_eq!(back, v);
        let mut again = Vec::new();
        Codec::MsgPack.encode(&mut again, &back).unwrap();
        assert_eq!(again, packed);
    }

    #[test]
    fn a_value_without_a_type_name_is_refused() {
        assert!(
            Codec::Json
                .decode::<UnknownVariant>(br#"{"side":1}"#, 64)
                .is_err()
        );
        assert!(
            Codec::Json
                .decode::<UnknownVariant>(br#"{"$type":3}"#, 64)
                .is_err()
        );
        assert!(Codec::Json.decode::<UnknownVariant>(br#"[1]"#, 64).is_err());
    }
}
