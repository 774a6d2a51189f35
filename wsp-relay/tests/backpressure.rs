//! A sender flooding a receiver that does not read is slowed by TCP back-pressure; the relay
//! (a real `wsp-relay` process) holds a bounded amount meanwhile, and nothing is lost.

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use wsp_runtime::relay::{Identity, Purpose, RelayFrame, proof_text};

#[tokio::test]
async fn a_flood_into_a_reader_that_does_not_read_stays_bounded_in_the_relay() {
    let (relay, url) = RelayProcess::start();
    let name = name_of(&url);
    let host = Identity::generate();

    // The host's spare, by hand: register, take the hand-over, then do not read.
    let (mut spare, nonce) = raw(&url).await;
    let signature = host.sign(&proof_text(Purpose::Register, &name, &nonce, None));
    send(
        &mut spare,
        RelayFrame::Register {
            key: host.public_key(),
            signature,
        },
    )
    .await;
    assert!(matches!(
        next_frame(&mut spare).await,
        Ok(RelayFrame::Registered { .. })
    ));

    let (mut caller, _) = raw(&url).await;
    send(
        &mut caller,
        RelayFrame::Connect {
            target: host.public_key(),
            caller: None,
        },
    )
    .await;
    assert_eq!(
        next_frame(&mut spare).await,
        Ok(RelayFrame::Handover { caller: None })
    );
    send(&mut spare, RelayFrame::Ready).await;
    assert_eq!(next_frame(&mut caller).await, Ok(RelayFrame::Connected));

    let before = relay.rss();
    // Flood 64 KiB messages until a send makes no progress for a second (or 512 MiB went).
    let chunk = vec![0x5a_u8; 64 << 10];
    let mut sent = 0usize;
    while sent < 512 << 20 {
        let send = caller.send(Message::binary(chunk.clone()));
        match tokio::time::timeout(Duration::from_secs(1), send).await {
            Ok(r) => r.unwrap(),
            Err(_) => break,
        }
        sent += chunk.len();
    }
    let during = relay.rss();
    assert!(
        sent < 256 << 20,
        "the sender was never slowed: {sent} bytes went"
    );
    assert!(
        during.saturating_sub(before) < 32 << 20,
        "relay memory grew from {before} to {during} bytes while {sent} bytes were sent"
    );

    // The receiver reads at last: every message the sender completed arrives, in full.
    let mut received = 0usize;
    while received < sent {
        match within("relayed data", spare.next()).await {
            Some(Ok(Message::Binary(b))) => {
                assert!(b.iter().all(|&x| x == 0x5a));
                received += b.len();
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("unexpected {other:?} after {received} of {sent} bytes"),
        }
    }
    assert!(received >= sent);
    eprintln!(
        "flood: {} MiB sent before the sender blocked; relay RSS {} → {} MiB",
        sent >> 20,
        before >> 20,
        during >> 20
    );
}

#[tokio::test]
async fn the_relay_binary_serves_wss_with_a_certificate_and_key_from_files() {
    let (ca, chain, key) = test_pki();
    let dir = std::env::temp_dir().join(format!("wsp-relay-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_path, key_path) = (dir.join("chain.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, chain).unwrap();
    std::fs::write(&key_path, key).unwrap();
    let (relay, url) = RelayProcess::start_with(&[
        "--tls-cert",
        cert_path.to_str().unwrap(),
        "--tls-key",
        key_path.to_str().unwrap(),
    ]);
    assert!(url.starts_with("wss://127.0.0.1:"), "{url}");
    let trust = wsp_runtime::tls::ClientTls::empty()
        .add_root_pem(ca.as_bytes())
        .unwrap();
    let host = wsp_runtime::Server::builder()
        .bind_relay(wsp_runtime::relay::RelayOptions::new(&url, Identity::generate()).tls(trust))
        .await;
    assert!(host.is_ok(), "{host:?}");
    host.unwrap().close().await;
    drop(relay);
    let _ = std::fs::remove_dir_all(&dir);
}
