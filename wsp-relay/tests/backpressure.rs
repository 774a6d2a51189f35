//! A sender flooding a receiver that does not read is slowed by TCP back-pressure; the relay
//! (a real `wsp-relay` process) holds a bounded amount meanwhile, and nothing is lost.

mod common;

use common::*;
use wsp_runtime::relay::Identity;

#[tokio::test]
async fn a_flood_into_a_reader_that_does_not_read_stays_bounded_in_the_relay() {
    let (relay, url) = RelayProcess::start();
    // The host's spare, joined by hand, then not reading.
    let (mut spare, mut caller) = raw_route(&Identity::generate(), &url, &url).await;

    let before = relay.rss();
    let sent = flood(&mut caller).await;
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
    read_flood(&mut spare, sent).await;
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
