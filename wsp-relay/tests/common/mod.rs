//! What the relay tests share: a relay, a host serving math and chat through it, a caller, and
//! a raw relay client that speaks the relay protocol by hand (PROTOCOL.md §11).
#![allow(dead_code, unreachable_pub)]

pub mod nats;
pub mod process;
pub mod proxy;

#[allow(unused_imports)]
pub use process::RelayProcess;

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Message, protocol::CloseFrame};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use wsp_examples::chat::{ChatCallbacksServer, ChatServer};
use wsp_examples::math::MathServer;
use wsp_examples::{Calculator, Room, Terminal};
use wsp_relay::Relay;
use wsp_runtime::relay::{Identity, RelayFrame, RelayHost, RelayOptions};
use wsp_runtime::{Client, Codec, ReconnectPolicy, Server};

/// Bounds every wait of a test.
pub const LIMIT: Duration = Duration::from_secs(20);

pub async fn within<F: std::future::Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(LIMIT, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: no outcome within {LIMIT:?}"))
}

pub async fn relay() -> Relay {
    Relay::builder()
        .bind("127.0.0.1:0")
        .await
        .expect("relay binds")
}

/// A host serving math.Math and chat.Chat through `relay_url` with `spares` spares; returns
/// once all spares are registered.
pub async fn host(relay_url: &str, identity: Identity, spares: usize) -> RelayHost {
    let host = Server::builder()
        .service(MathServer::new(Calculator).into_service())
        .service(ChatServer::from_arc(Arc::new(Room::default())).into_service())
        .bind_relay(
            RelayOptions::new(relay_url, identity)
                .spares(spares)
                .reconnect(ReconnectPolicy::default().initial_delay(Duration::from_millis(50))),
        )
        .await
        .expect("host registers");
    let mut spares_now = host.watch_spares();
    within("spares registered", spares_now.wait_for(|n| *n == spares))
        .await
        .unwrap();
    host
}

/// A caller of `host` through `relay_url`, serving chat's callbacks; not reconnecting.
pub fn caller(relay_url: &str, host: &RelayHost) -> Client {
    Client::via_relay(relay_url, host.public_key())
        .reconnect(ReconnectPolicy::disabled())
        .service(
            ChatCallbacksServer::new(Terminal {
                name: "ada".into(),
                answer: "yes".into(),
            })
            .into_service(),
        )
        .build()
}

pub type Raw = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A WebSocket to the relay offering MessagePack, and the CHALLENGE's nonce.
pub async fn raw(relay_url: &str) -> (Raw, [u8; 32]) {
    let mut req = relay_url.into_client_request().unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("wsp.v1.msgpack"),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    match next_frame(&mut ws).await {
        Ok(RelayFrame::Challenge { nonce, .. }) => (ws, nonce),
        other => panic!("expected CHALLENGE, got {other:?}"),
    }
}

pub async fn send(ws: &mut Raw, frame: RelayFrame) {
    ws.send(frame.encode(Codec::MsgPack)).await.unwrap();
}

/// The next relay frame, or the close (code, reason) that came instead.
pub async fn next_frame(ws: &mut Raw) -> Result<RelayFrame, (u16, String)> {
    loop {
        match within("a relay frame", ws.next()).await {
            Some(Ok(Message::Close(Some(CloseFrame { code, reason })))) => {
                return Err((code.into(), reason.to_string()));
            }
            Some(Ok(m @ Message::Binary(_))) => {
                return Ok(RelayFrame::decode(&m, Codec::MsgPack).unwrap());
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// The relay's name for its loopback URL (what proofs state).
pub fn name_of(relay_url: &str) -> String {
    let uri: tokio_tungstenite::tungstenite::http::Uri = relay_url.parse().unwrap();
    wsp_runtime::relay::relay_name(&uri)
}

/// A CA and a certificate for `localhost` and 127.0.0.1 signed by it: (CA PEM, chain PEM, key PEM).
pub fn test_pki() -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    (ca.pem(), leaf.pem(), key.serialize_pem())
}

/// A raw connection to `relay_url` that sent a valid REGISTER for `host`; the relay's answer is
/// the caller's to read.
pub async fn raw_register(host: &Identity, relay_url: &str) -> Raw {
    use wsp_runtime::relay::{Purpose, proof_text};
    let (mut ws, nonce) = raw(relay_url).await;
    let signature = host.sign(&proof_text(
        Purpose::Register,
        &name_of(relay_url),
        &nonce,
        None,
    ));
    send(
        &mut ws,
        RelayFrame::Register {
            key: host.public_key(),
            signature,
        },
    )
    .await;
    ws
}

/// A route joined by hand between a spare of `host` registered at `spare_url` and a caller at
/// `caller_url` (the same relay, or another node of its cluster): (spare, caller), both after
/// the hand-over.
pub async fn raw_route(host: &Identity, spare_url: &str, caller_url: &str) -> (Raw, Raw) {
    let mut spare = raw_register(host, spare_url).await;
    assert!(matches!(
        next_frame(&mut spare).await,
        Ok(RelayFrame::Registered { .. })
    ));
    let (mut caller, _) = raw(caller_url).await;
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
    (spare, caller)
}

/// The byte every flooded message is made of.
pub const FLOOD_BYTE: u8 = 0x5a;

/// Sends 64 KiB messages until one makes no progress for a second (or 512 MiB went): the
/// bytes sent.
pub async fn flood(caller: &mut Raw) -> usize {
    let chunk = vec![FLOOD_BYTE; 64 << 10];
    let mut sent = 0usize;
    while sent < 512 << 20 {
        let send = caller.send(Message::binary(chunk.clone()));
        match tokio::time::timeout(Duration::from_secs(1), send).await {
            Ok(r) => r.unwrap(),
            Err(_) => break,
        }
        sent += chunk.len();
    }
    sent
}

/// Reads until `sent` flooded bytes arrived, each intact.
pub async fn read_flood(spare: &mut Raw, sent: usize) {
    let mut received = 0usize;
    while received < sent {
        match within("relayed data", spare.next()).await {
            Some(Ok(Message::Binary(b))) => {
                assert!(b.iter().all(|&x| x == FLOOD_BYTE));
                received += b.len();
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("unexpected {other:?} after {received} of {sent} bytes"),
        }
    }
}
