//! Pins the Rust column of `docs/behaviour.md`, row by row in the table's order (the TypeScript
//! column is pinned by `ts/runtime/test/behaviour.test.ts`).

mod common;

use std::time::Duration;

use common::*;
use tokio::time::Instant;
use wsp_runtime::{
    CallError, CallOptions, Client, Config, ConnectionState, FnService, Server, Value,
};

/// An address of this test's own that nothing listens on (see `lifecycle_connect.rs`).
fn free_own_address(test: u8) -> std::net::SocketAddr {
    let ip = format!("127.49.{}.{}", std::process::id() % 250 + 1, test);
    let l = std::net::TcpListener::bind(format!("{ip}:0")).expect("binds");
    l.local_addr().unwrap()
}

#[tokio::test]
async fn a_call_made_before_connect_fails_at_once_with_not_connected() {
    let server = math_server().await;
    let client = Client::builder(server.url()).build();
    let r = within(
        5,
        client.call_value("math.Math/add", vec![2.into(), 3.into()]),
    )
    .await;
    assert!(matches!(r, Err(CallError::NotConnected)), "{r:?}");
}

#[tokio::test]
async fn a_call_made_while_connect_runs_waits_for_the_link() {
    let server = math_server().await;
    let client = Client::builder(server.url()).build();
    let connect = tokio::spawn({
        let c = client.clone();
        async move { c.connect().await }
    });
    // Once the state says connecting, a call waits for the link and goes out on it.
    let mut states = client.watch_state();
    while *states.borrow_and_update() == ConnectionState::Disconnected {
        within(5, states.changed()).await.unwrap();
    }
    let r = within(
        5,
        client.call_value("math.Math/add", vec![2.into(), 3.into()]),
    )
    .await;
    assert_eq!(r.unwrap(), Value::from(5));
    within(5, connect).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_notification_without_a_link_fails_at_once() {
    let server = math_server().await;
    let client = Client::builder(server.url()).build();
    // Never connected: NotConnected at once, without waiting for the default deadline.
    let r = within(1, client.notify_value("math.Math/log", vec![])).await;
    assert!(matches!(r, Err(CallError::NotConnected)), "{r:?}");
    // Closed for good: Closed at once.
    let _ = within(5, client.close(1000, "done")).await;
    let r = within(1, client.notify_value("math.Math/log", vec![])).await;
    assert!(matches!(r, Err(CallError::Closed)), "{r:?}");
}

#[tokio::test]
#[allow(clippy::result_large_err)] // the handshake callback's error type is tungstenite's
async fn a_client_offers_only_its_codec_msgpack_by_default() {
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let offered = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut offered = None;
        let cb = |req: &Request, mut resp: Response| {
            offered = req
                .headers()
                .get("sec-websocket-protocol")
                .map(|v| v.to_str().unwrap().to_owned());
            resp.headers_mut()
                .insert("sec-websocket-protocol", "wsp.v1.msgpack".parse().unwrap());
            Ok(resp)
        };
        let _ws = tokio_tungstenite::accept_hdr_async(tcp, cb).await.unwrap();
        offered
    });
    let client = Client::builder(url).retry_first_connect(false).build();
    let _ = within(5, client.connect()).await;
    let offered = within(5, offered).await.unwrap();
    assert_eq!(offered.as_deref(), Some("wsp.v1.msgpack"));
}

#[tokio::test]
async fn the_default_nesting_depth_limit_is_128() {
    assert_eq!(Config::default().get_max_depth(), 128);
}

#[tokio::test]
async fn the_first_connect_retries_by_default() {
    let addr = free_own_address(1);
    let client = Client::builder(format!("ws://{addr}/")).build();
    // Nothing listens: still retrying, not failed, after half a second.
    let r = tokio::time::timeout(Duration::from_millis(500), client.connect()).await;
    assert!(r.is_err(), "connect returned: {r:?}");
}

#[tokio::test]
async fn a_handlers_outgoing_calls_inherit_its_deadline() {
    // The client answers how many milliseconds its handler's deadline leaves; the server's
    // handler asks it with default options (30 s of its own).
    let left = FnService::new("c.C").unary("left", |ctx, _| async move {
        let ms = ctx
            .deadline()
            .map(|d| (d - Instant::now()).as_millis() as u64);
        Ok(ms.map_or(Value::Nil, Value::from))
    });
    let ask = FnService::new("a.A").unary("ask", |ctx, _| async move {
        Ok(ctx.caller().call_value("c.C/left", vec![]).await?)
    });
    let server = server_with(Server::builder().service(ask.into_service())).await;
    let client = Client::builder(server.url())
        .service(left.into_service())
        .build();
    within(5, client.connect()).await.unwrap();
    let opts = CallOptions::new().timeout(Duration::from_millis(500));
    let ms = within(5, client.call_value_with("a.A/ask", vec![], opts))
        .await
        .unwrap();
    assert!(ms.as_u64().is_some_and(|ms| ms <= 500), "{ms:?}");
}
