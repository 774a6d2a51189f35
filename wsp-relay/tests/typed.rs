//! Generated typed clients and servers through the relay: every method kind, both directions,
//! the caller's verified key, close codes end to end.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use wsp_examples::chat::ChatClient;
use wsp_examples::math::{MathClient, MathError};
use wsp_runtime::RpcError;
use wsp_runtime::relay::{Identity, RelayOptions, RelayPeer};
use wsp_runtime::{Client, ReconnectPolicy, Server};

#[tokio::test]
async fn every_method_kind_both_ways_through_the_relay() {
    let relay = relay().await;
    let url = relay.url();
    let host = host(&url, Identity::generate(), 2).await;
    let client = caller(&url, &host);
    within("connect", client.connect()).await.unwrap();
    let math = MathClient::from_caller(client.caller()).with_timeout(Duration::from_secs(5));
    let chat = ChatClient::from_caller(client.caller()).with_timeout(Duration::from_secs(5));

    assert_eq!(within("add", math.add(vec![1, 2, 3])).await.unwrap(), 6);
    match within("divide", math.divide(1.0, 0.0)).await {
        Err(RpcError::App(MathError::DivisionByZero)) => {}
        other => panic!("expected DivisionByZero, got {other:?}"),
    }
    within("reset", math.reset()).await.unwrap();
    within("log", math.log("through the relay")).await.unwrap();
    // A stream with credit: 40 items, more than the default window of 32, so CREDIT frames
    // must pass the relay too; checked in order.
    let items: Vec<u32> = within("count", math.count(1, 40).map(|r| r.unwrap()).collect()).await;
    assert_eq!(items, (1..=40).collect::<Vec<_>>());
    // Server → client through the relay: join asks the caller a question first (a call the
    // host makes on the caller, whose answer decides the join), then post broadcasts to it.
    let history = within("join", chat.join("ada")).await.unwrap();
    assert!(history.is_empty());
    let mut follow = chat.follow();
    within("post", chat.post("hello through the relay"))
        .await
        .unwrap();
    let first = within("followed message", follow.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.text, "hello through the relay");

    assert_eq!(host.handovers(), 1);
    // The spare handed over is replaced.
    let mut spares = host.watch_spares();
    within("spare replaced", spares.wait_for(|n| *n == 2))
        .await
        .unwrap();
    let stats = relay.stats();
    assert_eq!(stats.handovers, 1);
    assert_eq!(stats.keys_registered, 1);
    assert!(stats.frames_relayed > 10, "{stats:?}");
    client.close(1000, "done").await.unwrap();
    host.close().await;
    relay.close().await;
}

#[tokio::test]
async fn the_host_learns_the_callers_verified_key_or_anonymity() {
    let relay = relay().await;
    let url = relay.url();
    let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let record = seen.clone();
    let host = Server::builder()
        .on_open(move |peer| {
            let caller = peer
                .data::<RelayPeer>()
                .expect("relayed connections carry RelayPeer");
            record
                .lock()
                .unwrap()
                .push(caller.key.map(|k| k.to_string()));
        })
        .bind_relay(RelayOptions::new(&url, Identity::generate()))
        .await
        .unwrap();
    let me = Identity::generate();
    let proven = Client::via_relay(&url, host.public_key())
        .identity(me.clone())
        .reconnect(ReconnectPolicy::disabled())
        .build();
    within("connect proven", proven.connect()).await.unwrap();
    let anonymous = Client::via_relay(&url, host.public_key())
        .reconnect(ReconnectPolicy::disabled())
        .build();
    within("connect anonymous", anonymous.connect())
        .await
        .unwrap();
    within("both open", async {
        while seen.lock().unwrap().len() < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.contains(&Some(me.public_key().to_string())),
        "{seen:?}"
    );
    assert!(seen.contains(&None), "{seen:?}");
    host.close().await;
    relay.close().await;
}

#[tokio::test]
async fn close_code_and_reason_arrive_unchanged_both_ways() {
    let relay = relay().await;
    let url = relay.url();
    let host = host(&url, Identity::generate(), 2).await;

    // Caller closes: the host's end of the route sees the caller's code and reason.
    let client = caller(&url, &host);
    within("connect", client.connect()).await.unwrap();
    let at_host = within("host side open", host_side(&host)).await;
    let _ = client.close(4321, "bye from the caller").await;
    let info = within("host sees the close", at_host.closed())
        .await
        .unwrap_err();
    assert_eq!(
        (info.code, info.reason.as_str()),
        (4321, "bye from the caller")
    );

    // Host closes: the caller sees the host's code and reason.
    let client = caller(&url, &host);
    within("connect", client.connect()).await.unwrap();
    let at_host = within("host side open", host_side(&host)).await;
    let _ = at_host.close(4322, "bye from the host").await;
    let info = within("caller sees the close", client.closed())
        .await
        .unwrap_err();
    assert_eq!(
        (info.code, info.reason.as_str()),
        (4322, "bye from the host")
    );
    assert!(relay.stats().closes_by_code.contains_key(&4322));
    host.close().await;
    relay.close().await;
}

#[tokio::test]
async fn the_relay_serves_wss_to_hosts_and_callers() {
    use wsp_runtime::tls::{ClientTls, ServerTls};
    let (ca, chain, key) = test_pki();
    let relay = wsp_relay::Relay::builder()
        .tls(ServerTls::from_pem(chain.as_bytes(), key.as_bytes()).unwrap())
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let url = relay.url();
    assert!(url.starts_with("wss://"), "{url}");
    let trust = ClientTls::empty().add_root_pem(ca.as_bytes()).unwrap();
    let host = Server::builder()
        .service(wsp_examples::math::MathServer::new(wsp_examples::Calculator).into_service())
        .bind_relay(RelayOptions::new(&url, Identity::generate()).tls(trust.clone()))
        .await
        .unwrap();
    let client = Client::via_relay(&url, host.public_key())
        .tls(trust)
        .reconnect(ReconnectPolicy::disabled())
        .build();
    within("connect", client.connect()).await.unwrap();
    let math = MathClient::from_caller(client.caller()).with_timeout(Duration::from_secs(5));
    assert_eq!(within("add", math.add(vec![2, 2])).await.unwrap(), 4);
    // A host that does not trust the relay's certificate cannot register.
    let untrusting = Server::builder()
        .bind_relay(RelayOptions::new(&url, Identity::generate()))
        .await;
    assert!(
        matches!(untrusting, Err(wsp_runtime::ConnectError::Tls(_))),
        "{untrusting:?}"
    );
    client.close(1000, "done").await.unwrap();
    host.close().await;
    relay.close().await;
}

/// The host's end of the route a caller just opened, once the host has it.
async fn host_side(host: &wsp_runtime::relay::RelayHost) -> wsp_runtime::Peer {
    loop {
        if let Some(p) = host.connections().into_iter().next() {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
