//! What the relay refuses, and how: bad proofs, unknown keys, too many callers at once, a
//! target that dies mid-call, a relay that restarts.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_util::StreamExt;
use wsp_examples::math::MathClient;
use wsp_runtime::close_code as code;
use wsp_runtime::relay::{Identity, Purpose, RelayFrame, proof_text};
use wsp_runtime::{CallError, Client, ConnectError, ReconnectPolicy};

async fn register_with(
    url: &str,
    frame: impl FnOnce([u8; 32]) -> RelayFrame,
) -> Result<RelayFrame, (u16, String)> {
    let (mut ws, nonce) = raw(url).await;
    send(&mut ws, frame(nonce)).await;
    next_frame(&mut ws).await
}

#[tokio::test]
async fn bad_proofs_are_refused_with_a_defined_code() {
    let relay = relay().await;
    let url = relay.url();
    let name = name_of(&url);
    let id = Identity::generate();
    let key = id.public_key();

    // The right proof is taken (so the refusals below are about the proof alone).
    let ok = register_with(&url, |nonce| RelayFrame::Register {
        key,
        signature: id.sign(&proof_text(Purpose::Register, &name, &nonce, None)),
    })
    .await;
    assert!(matches!(ok, Ok(RelayFrame::Registered { .. })), "{ok:?}");

    let refused = |r: Result<RelayFrame, (u16, String)>| match r {
        Err((c, _)) => assert_eq!(c, code::RELAY_PROOF_REFUSED),
        Ok(f) => panic!("expected a refusal, got {f:?}"),
    };
    // Wrong proof: signed by another key.
    let other = Identity::generate();
    refused(
        register_with(&url, |nonce| RelayFrame::Register {
            key,
            signature: other.sign(&proof_text(Purpose::Register, &name, &nonce, None)),
        })
        .await,
    );
    // Replayed proof: a valid proof from one connection, sent on another.
    let (mut first, first_nonce) = raw(&url).await;
    let replayed = id.sign(&proof_text(Purpose::Register, &name, &first_nonce, None));
    refused(
        register_with(&url, |_| RelayFrame::Register {
            key,
            signature: replayed,
        })
        .await,
    );
    // ...while it is still good on the connection it was made for.
    send(
        &mut first,
        RelayFrame::Register {
            key,
            signature: replayed,
        },
    )
    .await;
    assert!(matches!(
        next_frame(&mut first).await,
        Ok(RelayFrame::Registered { .. })
    ));
    // Reflected challenge: the relay's own nonce sent back as the proof.
    refused(
        register_with(&url, |nonce| {
            let mut signature = [0u8; 64];
            signature[..32].copy_from_slice(&nonce);
            signature[32..].copy_from_slice(&nonce);
            RelayFrame::Register { key, signature }
        })
        .await,
    );
    // A proof made for another relay (a relay that passed its challenge on).
    refused(
        register_with(&url, |nonce| RelayFrame::Register {
            key,
            signature: id.sign(&proof_text(Purpose::Register, "evil.example", &nonce, None)),
        })
        .await,
    );
    // A caller's proof presented as a registration.
    refused(
        register_with(&url, |nonce| RelayFrame::Register {
            key,
            signature: id.sign(&proof_text(Purpose::Connect, &name, &nonce, Some(&key))),
        })
        .await,
    );
    // A caller claiming a key it does not hold.
    refused(
        register_with(&url, |nonce| RelayFrame::Connect {
            target: key,
            caller: Some((
                key,
                other.sign(&proof_text(Purpose::Connect, &name, &nonce, Some(&key))),
            )),
        })
        .await,
    );
    assert_eq!(relay.stats().refused_proofs, 6);
    relay.close().await;
}

#[tokio::test]
async fn an_unknown_key_fails_at_once() {
    let relay = relay().await;
    let client = Client::via_relay(relay.url(), Identity::generate().public_key())
        .reconnect(ReconnectPolicy::disabled())
        .build();
    let started = Instant::now();
    match within("connect", client.connect()).await {
        Err(ConnectError::Relay { code: c, reason }) => {
            assert_eq!(c, code::RELAY_UNKNOWN_KEY, "{reason}");
        }
        other => panic!("expected RELAY_UNKNOWN_KEY, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(relay.stats().unknown_key, 1);
    relay.close().await;
}

#[tokio::test]
async fn fifty_callers_against_two_spares_all_get_an_outcome() {
    let relay = relay().await;
    let url = relay.url();
    let host = host(&url, Identity::generate(), 2).await;
    let mut tasks = Vec::new();
    for i in 0..50i64 {
        let client = caller(&url, &host);
        tasks.push(tokio::spawn(async move {
            let outcome = match client.connect().await {
                Ok(()) => {
                    let math = MathClient::from_caller(client.caller())
                        .with_timeout(Duration::from_secs(10));
                    let sum = math
                        .add(vec![i, 1])
                        .await
                        .expect("a connected caller's call succeeds");
                    assert_eq!(sum, i + 1);
                    None
                }
                Err(ConnectError::Relay { code: c, .. }) => Some(c),
                Err(e) => panic!("caller {i}: {e}"),
            };
            client.close(1000, "done").await.ok();
            outcome
        }));
    }
    let mut served = 0;
    for t in tasks {
        match within("a caller's outcome", t).await.unwrap() {
            None => served += 1,
            Some(c) => assert!(
                c == code::RELAY_OVERLOADED || c == code::RELAY_UNAVAILABLE,
                "refused with {c}"
            ),
        }
    }
    // Spares replenish after each hand-over, so (almost) every caller is served.
    assert!(served >= 40, "only {served} of 50 served");
    assert_eq!(host.handovers(), served);
    host.close().await;
    relay.close().await;
}

#[tokio::test]
async fn a_target_killed_mid_call_fails_the_callers_calls_within_two_seconds() {
    let relay = relay().await;
    let url = relay.url();
    // The host runs on a runtime of its own; shutting that runtime down drops its sockets
    // without a close frame, as a killed process would.
    let host_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let host_url = url.clone();
    let host = host_rt
        .spawn(async move { host(&host_url, Identity::generate(), 1).await })
        .await
        .unwrap();
    let client = caller(&url, &host);
    within("connect", client.connect()).await.unwrap();
    let math = MathClient::from_caller(client.caller()).with_timeout(Duration::from_secs(30));
    // count(1, 1000) yields one item per 20 ms: still running when the host dies.
    let mut items = math.count(1, 1000);
    assert_eq!(
        within("first item", items.next()).await.unwrap().unwrap(),
        1
    );
    let killed = Instant::now();
    // Dropping a runtime drops every task on it, and with them the host's sockets.
    // The test's handle goes too, as all of a killed process's memory would.
    std::thread::spawn(move || {
        drop(host);
        drop(host_rt);
    })
    .join()
    .unwrap();
    let error = within("stream fails", first_error(&mut items)).await;
    assert!(
        killed.elapsed() < Duration::from_secs(2),
        "{:?}",
        killed.elapsed()
    );
    assert!(matches!(error, CallError::Disconnected), "{error:?}");
    let info = client.last_close().expect("closed");
    assert_eq!(info.code, code::RELAY_PEER_LOST, "{info:?}");
    relay.close().await;
}

#[tokio::test]
async fn the_host_re_registers_when_the_relay_comes_back() {
    let relay = relay().await;
    let addr = relay.local_addr();
    let url = relay.url();
    let host = host(&url, Identity::generate(), 2).await;
    relay.close().await;
    let mut spares = host.watch_spares();
    within("spares lost", spares.wait_for(|n| *n == 0))
        .await
        .unwrap();
    let relay = wsp_relay::Relay::builder()
        .bind(addr)
        .await
        .expect("the relay's port is free again");
    within("spares back", spares.wait_for(|n| *n == 2))
        .await
        .unwrap();
    let client = caller(&url, &host);
    within("connect", client.connect()).await.unwrap();
    let math = MathClient::from_caller(client.caller()).with_timeout(Duration::from_secs(5));
    assert_eq!(within("add", math.add(vec![40, 2])).await.unwrap(), 42);
    client.close(1000, "done").await.unwrap();
    host.close().await;
    relay.close().await;
}

#[tokio::test]
async fn a_relay_that_goes_away_fails_in_flight_calls_on_both_sides_promptly() {
    let relay = relay().await;
    let url = relay.url();
    let host = host(&url, Identity::generate(), 1).await;
    let client = caller(&url, &host);
    within("connect", client.connect()).await.unwrap();
    let math = MathClient::from_caller(client.caller()).with_timeout(Duration::from_secs(30));
    let mut items = math.count(1, 1000);
    assert_eq!(
        within("first item", items.next()).await.unwrap().unwrap(),
        1
    );
    let at_host = host
        .connections()
        .pop()
        .expect("the host's end of the route");
    let gone = Instant::now();
    relay.close().await;
    let error = within("stream fails", first_error(&mut items)).await;
    assert!(matches!(error, CallError::Disconnected), "{error:?}");
    let at_host = within("host end closes", at_host.closed())
        .await
        .unwrap_err();
    assert!(
        gone.elapsed() < Duration::from_secs(2),
        "{:?}",
        gone.elapsed()
    );
    assert_eq!(at_host.code, code::GOING_AWAY, "{at_host:?}");
    assert_eq!(client.last_close().expect("closed").code, code::GOING_AWAY);
    host.close().await;
}

#[tokio::test]
async fn spares_serve_callers_of_their_own_codec_only() {
    let relay = relay().await;
    let url = relay.url();
    let identity = Identity::generate();
    let host = wsp_runtime::Server::builder()
        .service(wsp_examples::math::MathServer::new(wsp_examples::Calculator).into_service())
        .bind_relay(
            wsp_runtime::relay::RelayOptions::new(&url, identity).codec(wsp_runtime::Codec::Json),
        )
        .await
        .unwrap();
    // A JSON caller gets through (the relay frames and wsp in JSON text frames).
    let json = Client::via_relay(&url, host.public_key())
        .codec(wsp_runtime::Codec::Json)
        .reconnect(ReconnectPolicy::disabled())
        .build();
    within("json connect", json.connect()).await.unwrap();
    let math = MathClient::from_caller(json.caller()).with_timeout(Duration::from_secs(5));
    assert_eq!(within("add", math.add(vec![2, 3])).await.unwrap(), 5);
    // A MessagePack caller is told why it is not found.
    let msgpack = Client::via_relay(&url, host.public_key())
        .reconnect(ReconnectPolicy::disabled())
        .build();
    match within("msgpack connect", msgpack.connect()).await {
        Err(ConnectError::Relay { code: c, reason }) => {
            assert_eq!(c, code::RELAY_UNKNOWN_KEY);
            assert!(reason.contains("other codec"), "{reason}");
        }
        other => panic!("expected RELAY_UNKNOWN_KEY, got {other:?}"),
    }
    json.close(1000, "done").await.unwrap();
    host.close().await;
    relay.close().await;
}

#[tokio::test]
async fn idle_spares_answering_pings_stay_registered() {
    // Pings every 100 ms: a host that took three intervals of waiting for a hand-over for a
    // dead relay would re-register its spares several times within a second.
    let relay = wsp_relay::Relay::builder()
        .ping_interval(Duration::from_millis(100))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let host = host(&relay.url(), Identity::generate(), 2).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stats = relay.stats();
    assert_eq!(stats.registrations, 2, "{stats:?}");
    assert_eq!(stats.spares_idle, 2, "{stats:?}");
    host.close().await;
    relay.close().await;
}

#[tokio::test]
async fn the_relay_limits_spares_per_key_and_keys() {
    let relay = wsp_relay::Relay::builder()
        .max_spares_per_key(1)
        .max_keys(1)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let url = relay.url();
    // One spare of key A is taken; a second spare of A and a spare of key B are refused.
    let a = Identity::generate();
    let mut first = raw_register(&a, &url).await;
    assert!(matches!(
        next_frame(&mut first).await,
        Ok(RelayFrame::Registered { .. })
    ));
    for id in [a.clone(), Identity::generate()] {
        let mut ws = raw_register(&id, &url).await;
        match next_frame(&mut ws).await {
            Err((c, _)) => assert_eq!(c, code::RELAY_OVERLOADED),
            other => panic!("expected RELAY_OVERLOADED, got {other:?}"),
        }
    }
    let stats = relay.stats();
    assert_eq!(
        (stats.keys_registered, stats.spares_idle, stats.overloaded),
        (1, 1, 2),
        "{stats:?}"
    );
    relay.close().await;
}

/// The error that ends a stream, skipping the items before it.
async fn first_error<T>(
    items: &mut (impl futures_util::Stream<Item = Result<T, CallError>> + Unpin),
) -> CallError {
    loop {
        match items.next().await {
            Some(Ok(_)) => continue,
            Some(Err(e)) => return e,
            None => panic!("the stream ended without an error"),
        }
    }
}
