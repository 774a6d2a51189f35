//! The Noise protocols of end-to-end encryption (PROTOCOL.md §12) against the published
//! cacophony test vectors in `tests/vectors/noise.json`: the same file the TypeScript suite
//! checks, so both implementations produce these bytes.

use serde_json::Value;
use snow::{Builder, HandshakeState, TransportState};

fn bytes(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("a hex string")).expect("hex")
}

fn vectors() -> Vec<Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/vectors/noise.json");
    let text = std::fs::read_to_string(path).expect("tests/vectors/noise.json");
    let file: Value = serde_json::from_str(&text).unwrap();
    file["vectors"].as_array().unwrap().clone()
}

fn side(v: &Value, initiator: bool) -> HandshakeState {
    let name = v["protocol_name"].as_str().unwrap();
    let prefix = if initiator { "init" } else { "resp" };
    let prologue = bytes(&v[format!("{prefix}_prologue")]);
    let ephemeral = bytes(&v[format!("{prefix}_ephemeral")]);
    let stat = v.get(format!("{prefix}_static")).map(bytes);
    let remote = v.get(format!("{prefix}_remote_static")).map(bytes);
    let mut b = Builder::new(name.parse().unwrap())
        .prologue(&prologue)
        .unwrap()
        .fixed_ephemeral_key_for_testing_only(&ephemeral);
    if let Some(s) = &stat {
        b = b.local_private_key(s).unwrap();
    }
    if let Some(r) = &remote {
        b = b.remote_public_key(r).unwrap();
    }
    if initiator {
        b.build_initiator().unwrap()
    } else {
        b.build_responder().unwrap()
    }
}

#[test]
fn wsp_noise_protocols_match_the_cacophony_vectors() {
    let vectors = vectors();
    let names: Vec<&str> = vectors
        .iter()
        .map(|v| v["protocol_name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&wsp_runtime::relay::NOISE_IK), "{names:?}");
    assert!(names.contains(&wsp_runtime::relay::NOISE_NK), "{names:?}");
    for v in &vectors {
        let name = v["protocol_name"].as_str().unwrap();
        let mut init = side(v, true);
        let mut resp = side(v, false);
        let messages = v["messages"].as_array().unwrap();
        let mut buf = vec![0u8; 65_535];
        let mut out = vec![0u8; 65_535];
        // Both patterns take two handshake messages; after them, transport messages, the
        // directions still alternating.
        let mut i = 0;
        while !init.is_handshake_finished() {
            let (from, to) = if i % 2 == 0 {
                (&mut init, &mut resp)
            } else {
                (&mut resp, &mut init)
            };
            let m = &messages[i];
            let n = from.write_message(&bytes(&m["payload"]), &mut buf).unwrap();
            assert_eq!(
                hex::encode(&buf[..n]),
                m["ciphertext"].as_str().unwrap(),
                "{name} #{i}"
            );
            let p = to.read_message(&buf[..n], &mut out).unwrap();
            assert_eq!(out[..p], bytes(&m["payload"]), "{name} #{i}");
            i += 1;
        }
        assert_eq!(
            hex::encode(init.get_handshake_hash()),
            v["handshake_hash"].as_str().unwrap(),
            "{name}"
        );
        let mut init: TransportState = init.into_transport_mode().unwrap();
        let mut resp: TransportState = resp.into_transport_mode().unwrap();
        for (i, m) in messages.iter().enumerate().skip(i) {
            let (from, to) = if i % 2 == 0 {
                (&mut init, &mut resp)
            } else {
                (&mut resp, &mut init)
            };
            let n = from.write_message(&bytes(&m["payload"]), &mut buf).unwrap();
            assert_eq!(
                hex::encode(&buf[..n]),
                m["ciphertext"].as_str().unwrap(),
                "{name} #{i}"
            );
            let p = to.read_message(&buf[..n], &mut out).unwrap();
            assert_eq!(out[..p], bytes(&m["payload"]), "{name} #{i}");
        }
    }
}
