//! Every vector of `tests/vectors/values.json` through the generated Rust types and the runtime's
//! codecs: the MessagePack bytes and the JSON text decode to equal values, and encoding gives
//! exactly those bytes and that text back. Alternates (accepted non-canonical forms) decode to the
//! value of the vector they name. The TypeScript side runs the same file (ts/tests).

use std::fmt::Debug;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use wsp_runtime::{JsonCodec, MsgPackCodec, PayloadCodec};
use wsp_vectors_tests::{chat, common, geometry, kitchen::sink, math};

#[derive(Deserialize)]
struct File {
    vectors: Vec<Vector>,
    alternates: Vec<Alternate>,
}

#[derive(Deserialize)]
struct Vector {
    name: String,
    #[serde(rename = "type")]
    ty: String,
    json: String,
    msgpack: String,
}

#[derive(Deserialize)]
struct Alternate {
    name: String,
    #[serde(rename = "type")]
    ty: String,
    json: Option<String>,
    msgpack: Option<String>,
    same_as: String,
}

/// `i64` on its own, with the PROTOCOL §5 encoding (a decimal string in JSON).
#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct I64(#[serde(with = "wsp_runtime::codegen::As::<wsp_runtime::codegen::Int64>")] i64);

/// `u64` on its own.
#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct U64(#[serde(with = "wsp_runtime::codegen::As::<wsp_runtime::codegen::Int64>")] u64);

/// `f32` on its own (non-finite values are strings in JSON).
#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct F32(#[serde(with = "wsp_runtime::codegen::As::<wsp_runtime::codegen::Float>")] f32);

/// `f64` on its own.
#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct F64(#[serde(with = "wsp_runtime::codegen::As::<wsp_runtime::codegen::Float>")] f64);

/// `bytes` on its own (bin; base64 in JSON).
#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Bin(#[serde(with = "wsp_runtime::codegen::As::<wsp_runtime::codegen::Bin>")] Vec<u8>);

const DEPTH: usize = 64;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

fn from_msgpack<T: DeserializeOwned>(hex_text: &str) -> Result<T, String> {
    let bytes = unhex(hex_text);
    MsgPackCodec
        .decode::<T>(&bytes, DEPTH)
        .map_err(|e| e.to_string())
}

fn from_json<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    JsonCodec
        .decode::<T>(text.as_bytes(), DEPTH)
        .map_err(|e| e.to_string())
}

/// The failures of one vector (empty when it passes).
fn check<T: Serialize + DeserializeOwned + PartialEq + Debug>(v: &Vector) -> Vec<String> {
    let mut errors = Vec::new();
    let (mp, js) = match (from_msgpack::<T>(&v.msgpack), from_json::<T>(&v.json)) {
        (Ok(mp), Ok(js)) => (mp, js),
        (mp, js) => {
            return vec![format!(
                "does not decode: msgpack {:?}, json {:?}",
                mp.err(),
                js.err()
            )];
        }
    };
    if mp != js {
        errors.push(format!("msgpack and json differ: {mp:?} != {js:?}"));
    }
    let mut bytes = Vec::new();
    MsgPackCodec.encode(&mut bytes, &mp).expect("encodes");
    if hex(&bytes) != v.msgpack {
        errors.push(format!(
            "msgpack: wrote {}, expected {}",
            hex(&bytes),
            v.msgpack
        ));
    }
    let mut text = Vec::new();
    JsonCodec.encode(&mut text, &js).expect("encodes");
    let text = String::from_utf8(text).expect("utf-8");
    if text != v.json {
        errors.push(format!("json: wrote {text}, expected {}", v.json));
    }
    errors
}

/// The failures of one alternate form.
fn check_alternate<T: DeserializeOwned + PartialEq + Debug>(
    a: &Alternate,
    canonical: &Vector,
) -> Vec<String> {
    let expected = match from_json::<T>(&canonical.json) {
        Ok(v) => v,
        Err(e) => return vec![format!("the canonical vector does not decode: {e}")],
    };
    let got = match (&a.msgpack, &a.json) {
        (Some(m), _) => from_msgpack::<T>(m),
        (None, Some(j)) => from_json::<T>(j),
        (None, None) => return vec!["neither msgpack nor json".to_owned()],
    };
    match got {
        Ok(v) if v == expected => Vec::new(),
        Ok(v) => vec![format!("decodes to {v:?}, expected {expected:?}")],
        Err(e) => vec![format!("does not decode: {e}")],
    }
}

/// Calls `$f::<T>(args)` with the Rust type of a vector's type string.
macro_rules! dispatch {
    ($ty:expr, $f:ident ( $($arg:expr),* )) => {
        match $ty {
            "bool" => $f::<bool>($($arg),*),
            "i8" => $f::<i8>($($arg),*),
            "i16" => $f::<i16>($($arg),*),
            "i32" => $f::<i32>($($arg),*),
            "u8" => $f::<u8>($($arg),*),
            "u16" => $f::<u16>($($arg),*),
            "u32" => $f::<u32>($($arg),*),
            "i64" => $f::<I64>($($arg),*),
            "u64" => $f::<U64>($($arg),*),
            "f32" => $f::<F32>($($arg),*),
            "f64" => $f::<F64>($($arg),*),
            "string" => $f::<String>($($arg),*),
            "bytes" => $f::<Bin>($($arg),*),
            "common.Timestamp" => $f::<common::Timestamp>($($arg),*),
            "geometry.Point" => $f::<geometry::Point>($($arg),*),
            "geometry.Shape" => $f::<geometry::Shape>($($arg),*),
            "geometry.GeometryError" => $f::<geometry::GeometryError>($($arg),*),
            "geometry.Measurement" => $f::<geometry::Measurement>($($arg),*),
            "kitchen.sink.Primitives" => $f::<sink::Primitives>($($arg),*),
            "kitchen.sink.Containers" => $f::<sink::Containers>($($arg),*),
            "kitchen.sink.Node" => $f::<sink::Node>($($arg),*),
            "kitchen.sink.Tree" => $f::<sink::Tree>($($arg),*),
            "kitchen.sink.A" => $f::<sink::A>($($arg),*),
            "kitchen.sink.Expr" => $f::<sink::Expr>($($arg),*),
            "kitchen.sink.Mode" => $f::<sink::Mode>($($arg),*),
            "kitchen.sink.SinkError" => $f::<sink::SinkError>($($arg),*),
            "chat.Message" => $f::<chat::Message>($($arg),*),
            "math.MathError" => $f::<math::MathError>($($arg),*),
            other => vec![format!("no Rust type for `{other}` in this test: add it to dispatch!")],
        }
    };
}

fn load() -> File {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../vectors/values.json");
    let text = std::fs::read_to_string(path).expect("tests/vectors/values.json");
    serde_json::from_str(&text).expect("the vector file parses")
}

#[test]
fn vectors() {
    let file = load();
    assert!(file.vectors.len() > 40, "the vector file lost its vectors");
    let failures: Vec<String> = file
        .vectors
        .iter()
        .flat_map(|v| {
            dispatch!(v.ty.as_str(), check(v))
                .into_iter()
                .map(move |e| format!("{} ({}): {e}", v.name, v.ty))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn alternates() {
    let file = load();
    let failures: Vec<String> = file
        .alternates
        .iter()
        .flat_map(|a| {
            let errors = match file.vectors.iter().find(|v| v.name == a.same_as) {
                Some(canonical) => dispatch!(a.ty.as_str(), check_alternate(a, canonical)),
                None => vec![format!("no vector named `{}`", a.same_as)],
            };
            errors
                .into_iter()
                .map(move |e| format!("{} ({}): {e}", a.name, a.ty))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
