//! End-to-end encryption through the relay (PROTOCOL.md §12): the relay copies only
//! ciphertext, no ciphertext repeats, the target must hold its key, and a relay that changes,
//! repeats, reorders or cuts a message ends the connection with 4211 before a handler sees it.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::proxy::{Attack, Proxy};
use common::*;
use tokio_tungstenite::tungstenite::Message;
use wsp_relay::Relay;
use wsp_runtime::Codec;
use wsp_runtime::close_code as code;
use wsp_runtime::relay::{Identity, RelayHost, RelayOptions};
use wsp_runtime::{CallError, Client, ConnectError, FnService, ReconnectPolicy, Server, Value};

const MARKER: &str = "PLAINTEXT-MARKER-4f1c";

/// A relay, with the host's connections through `host_proxy` (seeing what the relay sends the
/// host) and the caller's through `caller_proxy`.
struct Setup {
    relay: Relay,
    host_proxy: Proxy,
    caller_proxy: Proxy,
    host: RelayHost,
    /// Calls of `t.T/echo` that reached the handler.
    handled: Arc<AtomicUsize>,
}

async fn setup(encrypt: bool, attack: Attack) -> Setup {
    let mut host_proxy = Proxy::bind(attack).await;
    let mut caller_proxy = Proxy::bind(Attack::None).await;
    let relay = Relay::builder()
        .name(&host_proxy.authority)
        .name(&caller_proxy.authority)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    host_proxy.forward_to(relay.local_addr());
    caller_proxy.forward_to(relay.local_addr());
    let handled = Arc::new(AtomicUsize::new(0));
    let count = handled.clone();
    let svc = FnService::new("t.T")
        .unary("echo", move |_, args| {
            count.fetch_add(1, Ordering::SeqCst);
            async move { Ok(args.into_iter().next().unwrap_or(Value::Nil)) }
        })
        .notify("note", |_, _| {});
    let host = Server::builder()
        .service(Arc::new(svc))
        .bind_relay(
            RelayOptions::new(&host_proxy.url, Identity::generate())
                .spares(1)
                .encrypt(encrypt),
        )
        .await
        .unwrap();
    Setup {
        relay,
        host_proxy,
        caller_proxy,
        host,
        handled,
    }
}

fn client(url: &str, s: &Setup, encrypt: bool) -> Client {
    Client::via_relay(url, s.host.public_key())
        .encrypt(encrypt)
        .reconnect(ReconnectPolicy::disabled())
        .build()
}

fn contains(haystack: &[Vec<u8>], needle: &[u8]) -> bool {
    haystack
        .iter()
        .any(|m| m.windows(needle.len()).any(|w| w == needle))
}

#[tokio::test]
async fn the_relay_copies_no_plaintext_when_encrypted_and_does_when_not() {
    for encrypt in [true, false] {
        let s = setup(encrypt, Attack::None).await;
        let c = client(&s.caller_proxy.url, &s, encrypt);
        within("connect", c.connect()).await.unwrap();
        let echoed = within(
            "echo",
            c.caller()
                .call_value("t.T/echo", vec![Value::from(MARKER.repeat(4))]),
        )
        .await
        .unwrap();
        assert_eq!(echoed.as_str(), Some(MARKER.repeat(4).as_str()));
        let to_host = s.host_proxy.all();
        let to_caller = s.caller_proxy.all();
        // The marker went to the host in the call and back to the caller in the reply.
        assert_eq!(
            contains(&to_host, MARKER.as_bytes()),
            !encrypt,
            "encrypt: {encrypt}"
        );
        assert_eq!(
            contains(&to_caller, MARKER.as_bytes()),
            !encrypt,
            "encrypt: {encrypt}"
        );
        c.close(1000, "done").await.unwrap();
        s.host.close().await;
        s.relay.close().await;
    }
}

#[tokio::test]
async fn no_ciphertext_repeats_over_ten_thousand_frames_each_way() {
    let s = setup(true, Attack::None).await;
    let c = client(&s.caller_proxy.url, &s, true);
    within("connect", c.connect()).await.unwrap();
    // The same call 10,000 times: the same plaintext each way, up to the call id.
    let caller = c.caller();
    within("10,000 calls", async {
        for _ in 0..10_000 {
            caller
                .call_value("t.T/echo", vec![Value::from("same")])
                .await
                .unwrap();
        }
    })
    .await;
    // The relay's own frames come first on each connection: CHALLENGE, REGISTERED and
    // HANDOVER on the host's first spare, CHALLENGE and CONNECTED on the caller's connection.
    // Then the handshake message and wsp, sealed.
    for (way, seen) in [
        ("to the host", s.host_proxy.on(0)[3..].to_vec()),
        ("to the caller", s.caller_proxy.on(0)[2..].to_vec()),
    ] {
        assert!(seen.len() > 10_000, "{way}: {}", seen.len());
        let distinct: std::collections::HashSet<&Vec<u8>> = seen.iter().collect();
        assert_eq!(distinct.len(), seen.len(), "{way}: a ciphertext repeated");
    }
    c.close(1000, "done").await.unwrap();
    s.host.close().await;
    s.relay.close().await;
}

// The upgrade callback's error type is imposed by tungstenite.
#[allow(clippy::result_large_err)]
#[tokio::test]
async fn a_relay_that_routes_to_another_host_fails_the_handshake() {
    // The lying relay, played by hand: it takes a caller for key A and answers as an impostor
    // holding another key (a fresh X25519 key pair).
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
    use wsp_runtime::relay::{NOISE_IK, PROLOGUE, RelayFrame};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let impostor = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let pick = |_: &Request, mut resp: Response| {
            resp.headers_mut()
                .insert("sec-websocket-protocol", "wsp.v1.msgpack".parse().unwrap());
            Ok(resp)
        };
        let mut ws = tokio_tungstenite::accept_hdr_async(tcp, pick)
            .await
            .unwrap();
        let challenge = RelayFrame::Challenge {
            version: 1,
            nonce: [7; 32],
        };
        ws.send(challenge.encode(Codec::MsgPack)).await.unwrap();
        let _connect = ws.next().await.unwrap().unwrap();
        ws.send(RelayFrame::Connected.encode(Codec::MsgPack))
            .await
            .unwrap();
        let first = match ws.next().await.unwrap().unwrap() {
            Message::Binary(b) => b,
            other => panic!("expected the caller's handshake, got {other:?}"),
        };
        let builder = snow::Builder::new(NOISE_IK.parse().unwrap());
        let keys = builder.generate_keypair().unwrap();
        let mut hs = snow::Builder::new(NOISE_IK.parse().unwrap())
            .prologue(PROLOGUE)
            .unwrap()
            .local_private_key(&keys.private)
            .unwrap()
            .build_responder()
            .unwrap();
        let mut out = vec![0u8; 1024];
        let opened = hs.read_message(&first[2..], &mut out).is_ok();
        // It cannot read the caller's message; it answers with bytes of the right length.
        ws.send(Message::binary(vec![0x42u8; 48])).await.unwrap();
        let close = loop {
            match ws.next().await {
                Some(Ok(Message::Close(f))) => break f,
                Some(Ok(_)) => continue,
                other => panic!("expected the caller's close, got {other:?}"),
            }
        };
        (opened, close)
    });
    let target = Identity::generate();
    let c = Client::via_relay(&url, target.public_key())
        .identity(Identity::generate())
        .reconnect(ReconnectPolicy::disabled())
        .build();
    match within("connect", c.connect()).await {
        Err(ConnectError::EndToEnd(why)) => assert!(why.contains("did not prove"), "{why}"),
        other => panic!("expected an end-to-end handshake failure, got {other:?}"),
    }
    let (opened, close) = within("impostor", impostor).await.unwrap();
    assert!(
        !opened,
        "the impostor read a handshake made for another key"
    );
    assert_eq!(
        close.map(|f| u16::from(f.code)),
        Some(code::E2E_HANDSHAKE_FAILED)
    );
}

/// Calls `t.T/echo` twice at once through a host whose relay does `attack` to the 6th binary
/// message it sends the host (1 CHALLENGE, 2 REGISTERED, 3 HANDOVER, 4 the caller's
/// handshake, 5 its HELLO, 6 and 7 the two CALLs); returns the calls' outcomes, the caller's
/// close code and how many calls reached the handler.
async fn attacked(attack: Attack) -> (Vec<Result<Value, CallError>>, u16, usize) {
    let s = setup(true, attack).await;
    let c = client(&s.relay.url(), &s, true);
    within("connect", c.connect()).await.unwrap();
    // A second caller on its own route: not affected by the attack on the first.
    let bystander = Client::via_relay(s.relay.url(), s.host.public_key())
        .reconnect(ReconnectPolicy::disabled())
        .build();
    // Its spare comes after the attacked one was handed over.
    let mut spares = s.host.watch_spares();
    within("spare back", spares.wait_for(|n| *n == 1))
        .await
        .unwrap();
    within("bystander connects", bystander.connect())
        .await
        .unwrap();
    let caller = c.caller();
    let (a, b) = within("calls", async {
        tokio::join!(
            caller.call_value("t.T/echo", vec![Value::from("a")]),
            caller.call_value("t.T/echo", vec![Value::from("b")]),
        )
    })
    .await;
    let code = within("caller closed", c.closed())
        .await
        .map_or_else(|e| e.code, |i| i.code);
    let handled = s.handled.load(Ordering::SeqCst);
    let fine = within(
        "bystander call",
        bystander
            .caller()
            .call_value("t.T/echo", vec![Value::from("still here")]),
    )
    .await
    .unwrap();
    assert_eq!(fine.as_str(), Some("still here"));
    bystander.close(1000, "done").await.unwrap();
    s.host.close().await;
    s.relay.close().await;
    (vec![a, b], code, handled)
}

/// Under `attack` the connection closes with 4211, both calls fail as disconnected, and no
/// handler ran.
async fn refused_unhandled(attack: Attack) {
    let (calls, code_seen, handled) = attacked(attack).await;
    assert_eq!(code_seen, code::E2E_BAD_FRAME);
    assert!(
        calls
            .iter()
            .all(|c| matches!(c, Err(CallError::Disconnected))),
        "{calls:?}"
    );
    assert_eq!(handled, 0);
}

#[tokio::test]
async fn a_tampered_message_closes_with_4211_and_reaches_no_handler() {
    refused_unhandled(Attack::Tamper(6)).await;
}

#[tokio::test]
async fn a_truncated_message_closes_with_4211_and_reaches_no_handler() {
    refused_unhandled(Attack::Truncate(6)).await;
}

#[tokio::test]
async fn reordered_messages_close_with_4211_and_reach_no_handler() {
    refused_unhandled(Attack::Reorder(6)).await;
}

#[tokio::test]
async fn a_replayed_message_closes_with_4211_and_is_handled_once() {
    let (_calls, code_seen, handled) = attacked(Attack::Replay(6)).await;
    assert_eq!(code_seen, code::E2E_BAD_FRAME);
    // The original was delivered (and perhaps the second call); the copy never was.
    assert!(handled <= 2, "{handled}");
    assert!(handled >= 1, "{handled}");
}

#[tokio::test]
async fn frames_larger_than_a_noise_message_are_split_and_joined() {
    let s = setup(true, Attack::None).await;
    let c = client(&s.caller_proxy.url, &s, true);
    within("connect", c.connect()).await.unwrap();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let echoed = within(
        "echo 300 kB",
        c.caller()
            .call_value("t.T/echo", vec![Value::Binary(big.clone())]),
    )
    .await
    .unwrap();
    assert_eq!(echoed, Value::Binary(big));
    // The call went as several transport messages, none over the Noise limit.
    let sealed = s.host_proxy.on(0);
    assert!(sealed.iter().all(|m| m.len() <= 65_535));
    assert!(sealed.iter().filter(|m| m.len() > 60_000).count() >= 4);
    c.close(1000, "done").await.unwrap();
    s.host.close().await;
    s.relay.close().await;
}

#[tokio::test]
async fn a_caller_that_does_not_encrypt_is_refused_by_a_host_that_does() {
    let s = setup(true, Attack::None).await;
    let c = client(&s.relay.url(), &s, false);
    // CONNECTED comes before the host sees anything of wsp: the refusal is a close.
    within("connect", c.connect()).await.unwrap();
    let closed = within("refused", c.closed()).await.unwrap_err();
    assert_eq!(closed.code, code::E2E_HANDSHAKE_FAILED, "{closed:?}");
    assert_eq!(s.handled.load(Ordering::SeqCst), 0);
    s.host.close().await;
    s.relay.close().await;
}
