//! Connection life cycle: losing the server, reconnecting, calls while disconnected, closing
//! with codes and reasons, accept hook, broadcast, graceful shutdown.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use wsp_runtime::{
    CallError, CallOptions, Client, CloseInfo, Codec, ConnectError, ConnectionState, FnService,
    ReconnectPolicy, Reject, Server, Value,
};

/// A loopback address of the test's own (in 127.0.0.0/8, port 0) for a server that is restarted
/// on the same port: other processes' ephemeral ports are on 127.0.0.1, so none of them can take
/// this address and port between the stop and the restart.
fn own_address(test: u8) -> String {
    format!("127.47.{}.{}:0", std::process::id() % 250 + 1, test)
}

/// A server in its own runtime on its own thread, killed abruptly (no close frames) by
/// dropping the runtime.
struct ServerThread {
    addr: SocketAddr,
    kill: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ServerThread {
    fn start(addr: &str) -> ServerThread {
        let addr = addr.to_owned();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (kill, kill_rx) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let server = Server::builder()
                    .service(math())
                    .bind(addr)
                    .await
                    .expect("binds");
                addr_tx.send(server.local_addr()).unwrap();
                let _ = kill_rx.await;
            });
            // Waits until every task (listener and connections) is dropped.
            rt.shutdown_timeout(Duration::from_secs(2));
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("server started");
        ServerThread {
            addr,
            kill: Some(kill),
            thread: Some(thread),
        }
    }

    fn kill(&mut self) {
        if let Some(k) = self.kill.take() {
            let _ = k.send(());
        }
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn wait_state(client: &Client, state: ConnectionState) {
    let mut rx = client.watch_state();
    within(5, rx.wait_for(|s| *s == state))
        .await
        .expect("state watch open");
}

#[tokio::test]
async fn killed_server_fails_calls_in_flight_with_disconnected() {
    let mut server = ServerThread::start("127.0.0.1:0");
    let client = Client::builder(format!("ws://{}/", server.addr))
        .reconnect(ReconnectPolicy::disabled())
        .build();
    within(5, client.connect()).await.unwrap();
    let call = tokio::spawn({
        let c = client.clone();
        async move { c.call_value("math.Math/sleep", vec![10_000.into()]).await }
    });
    // The call is sent and waiting for its reply when the server dies.
    eventually(5, "the call is in flight", || {
        client.stats().calls_in_flight > 0
    })
    .await;
    let start = tokio::time::Instant::now();
    server.kill();
    let r = within(5, call).await.unwrap();
    assert!(matches!(r, Err(CallError::Disconnected)), "{r:?}");
    assert!(start.elapsed() < Duration::from_secs(2));
    wait_state(&client, ConnectionState::Disconnected).await;
    assert_eq!(within(5, client.closed()).await.unwrap_err().code, 1006);
}

#[tokio::test]
async fn client_reconnects_to_a_restarted_server() {
    let mut first = ServerThread::start(&own_address(2));
    let addr = first.addr;
    let client = Client::builder(format!("ws://{addr}/"))
        .reconnect(
            ReconnectPolicy::default()
                .initial_delay(Duration::from_millis(50))
                .max_delay(Duration::from_millis(200)),
        )
        .build();
    within(5, client.connect()).await.unwrap();
    assert_eq!(
        within(5, client.call_value("math.Math/add", vec![1.into()]))
            .await
            .unwrap(),
        Value::from(1)
    );
    first.kill();
    wait_state(&client, ConnectionState::Reconnecting).await;
    let _second = ServerThread::start(&addr.to_string());
    wait_state(&client, ConnectionState::Connected).await;
    assert_eq!(
        within(5, client.call_value("math.Math/add", vec![2.into()]))
            .await
            .unwrap(),
        Value::from(2)
    );
    assert_eq!(client.stats().reconnects, 1);
    assert_eq!(client.stats().connections_opened, 2);
}

#[tokio::test]
async fn calls_while_disconnected_wait_for_the_link_or_fail_fast() {
    let server = math_server().await;
    // A call made before connect() fails at once (docs/behaviour.md).
    let client = Client::builder(server.url()).build();
    assert_eq!(client.state(), ConnectionState::Disconnected);
    let r = within(5, client.call_value("math.Math/add", vec![5.into()])).await;
    assert!(matches!(r, Err(CallError::NotConnected)), "{r:?}");
    // A call made while connect() runs completes once connected.
    let connect = tokio::spawn({
        let c = client.clone();
        async move { c.connect().await }
    });
    let mut states = client.watch_state();
    while *states.borrow_and_update() == ConnectionState::Disconnected {
        within(5, states.changed()).await.unwrap();
    }
    let early = within(5, client.call_value("math.Math/add", vec![5.into()])).await;
    assert_eq!(early.unwrap(), Value::from(5));
    within(5, connect).await.unwrap().unwrap();
    // …and fails with DeadlineExceeded when the link does not come in time: this listener
    // takes the TCP connection but never answers the WebSocket handshake.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let idle = Client::builder(format!("ws://{}/", silent.local_addr().unwrap())).build();
    let connecting = tokio::spawn({
        let c = idle.clone();
        async move { c.connect().await }
    });
    let mut states = idle.watch_state();
    while *states.borrow_and_update() == ConnectionState::Disconnected {
        within(5, states.changed()).await.unwrap();
    }
    let r = within(
        5,
        idle.caller().call::<_, Value>(
            "math.Math/add",
            &[1],
            CallOptions::new().timeout(Duration::from_millis(100)),
        ),
    )
    .await;
    assert!(matches!(r, Err(CallError::DeadlineExceeded)), "{r:?}");
    within(5, idle.disconnect()).await;
    let r = within(5, connecting).await.unwrap();
    assert!(matches!(r, Err(ConnectError::Closed)), "{r:?}");
    drop(silent);
    // Fail-fast policy.
    let fast = Client::builder(server.url()).fail_fast(true).build();
    let r = within(5, fast.call_value("math.Math/add", vec![])).await;
    assert!(matches!(r, Err(CallError::NotConnected)), "{r:?}");
    // After close(): Closed; close and disconnect are idempotent.
    within(5, client.disconnect()).await;
    within(5, client.disconnect()).await;
    within(5, client.close(1000, "bye")).await.unwrap();
    within(5, client.close(1000, "bye")).await.unwrap();
    assert_eq!(client.state(), ConnectionState::Closed);
    assert!(matches!(
        within(5, client.call_value("math.Math/add", vec![])).await,
        Err(CallError::Closed)
    ));
    assert!(matches!(
        within(5, client.connect()).await,
        Err(ConnectError::Closed)
    ));
}

#[tokio::test]
async fn close_code_and_shortened_reason_are_seen_by_both_sides() {
    let closed: Arc<Mutex<Vec<CloseInfo>>> = Arc::default();
    let c2 = closed.clone();
    let server = server_with(
        Server::builder()
            .config(test_config())
            .service(math())
            .on_close(move |_, info| c2.lock().unwrap().push(info.clone())),
    )
    .await;
    // A long multibyte reason with a non-normal code.
    let client = client_of(&server, Codec::MsgPack).await;
    let reason = format!("a{}", "€".repeat(60)); // 181 bytes; 1 + 40·3 = 121 fit
    let err = within(5, client.close(4100, &reason)).await.unwrap_err();
    let expected = format!("a{}", "€".repeat(40));
    assert_eq!((err.code, err.reason.as_str()), (4100, expected.as_str()));
    within(5, async {
        while closed.lock().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert_eq!(
        closed.lock().unwrap()[0],
        CloseInfo {
            code: 4100,
            reason: expected
        }
    );

    // A normal close is Ok on both sides.
    let client = client_of(&server, Codec::Json).await;
    let server_side = server.connections().pop().unwrap();
    let info = within(5, client.close(1000, "bye")).await.unwrap();
    assert_eq!((info.code, info.reason.as_str()), (1000, "bye"));
    let info = within(5, server_side.closed()).await.unwrap();
    assert_eq!((info.code, info.reason.as_str()), (1000, "bye"));

    // The server closing one connection: the client sees the code and does not hang.
    let client = Client::builder(server.url())
        .reconnect(ReconnectPolicy::disabled())
        .build();
    within(5, client.connect()).await.unwrap();
    let conn = within(5, async {
        loop {
            if let Some(c) = server.connections().into_iter().find(|c| !c.is_closed()) {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let err = within(5, conn.close(4200, "kicked")).await.unwrap_err();
    assert_eq!(err.code, 4200);
    let err = within(5, client.closed()).await.unwrap_err();
    assert_eq!((err.code, err.reason.as_str()), (4200, "kicked"));
}

#[tokio::test]
async fn accept_hook_rejects_and_attaches_per_connection_data() {
    let whoami = FnService::new("auth.Auth").unary("whoami", |ctx, _| async move {
        Ok(Value::from(
            ctx.data::<String>().cloned().unwrap_or_default(),
        ))
    });
    let opened = Arc::new(AtomicUsize::new(0));
    let o2 = opened.clone();
    let server = server_with(
        Server::builder()
            .service(whoami.into_service())
            .on_accept(|req| {
                let user = req
                    .headers()
                    .get("x-user")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                match (req.uri().path(), user) {
                    ("/rpc", Some(user)) => Ok(Some(Arc::new(user) as wsp_runtime::ConnData)),
                    ("/rpc", None) => Err(Reject::new(401, "who are you?")),
                    _ => Err(Reject::new(404, "no such endpoint")),
                }
            })
            .on_open(move |_| {
                o2.fetch_add(1, Ordering::SeqCst);
            }),
    )
    .await;
    let base = format!("ws://{}", server.local_addr());
    let denied = Client::builder(format!("{base}/rpc")).build();
    match within(5, denied.connect()).await {
        Err(ConnectError::WebSocket(tokio_tungstenite::tungstenite::Error::Http(resp))) => {
            assert_eq!(resp.status(), 401)
        }
        other => panic!("{other:?}"),
    }
    let wrong_path = Client::builder(format!("{base}/other"))
        .header("x-user", "alice")
        .build();
    assert!(within(5, wrong_path.connect()).await.is_err());
    let alice = Client::builder(format!("{base}/rpc"))
        .header("x-user", "alice")
        .build();
    within(5, alice.connect()).await.unwrap();
    assert_eq!(
        within(5, alice.call_value("auth.Auth/whoami", vec![]))
            .await
            .unwrap(),
        Value::from("alice")
    );
    assert_eq!(
        server.connections()[0].data::<String>().map(String::as_str),
        Some("alice")
    );
    assert_eq!(opened.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn broadcast_does_not_stall_on_a_stalled_client() {
    let config = test_config().send_queue(16);
    let server = server_with(Server::builder().config(config).service(math())).await;
    let received = Arc::new(AtomicUsize::new(0));
    let r2 = received.clone();
    let sink = FnService::new("feed.Feed.client").notify("tick", move |_, _| {
        r2.fetch_add(1, Ordering::SeqCst);
    });
    let healthy = Client::builder(server.url())
        .service(sink.into_service())
        .build();
    within(5, healthy.connect()).await.unwrap();
    // A client that says HELLO and then never reads.
    let mut stalled = raw_connect(&server.url(), Some("wsp.v1.msgpack")).await;
    stalled
        .send(Message::Binary(hello_bytes().into()))
        .await
        .unwrap();
    within(5, async {
        while server.connections().len() < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;

    // `notify_all` is not async: it cannot wait for a client, stalled or not. What this shows
    // is that it drops (and counts) what a stalled client's full queue cannot take.
    let payload = Value::Binary(vec![7; 16 * 1024]);
    let mut dropped = 0;
    for round in 0..1000 {
        let report = server
            .notify_all("feed.Feed.client/tick", &[&payload])
            .unwrap();
        dropped += report.dropped;
        if round % 8 == 7 {
            tokio::task::yield_now().await;
        }
    }
    assert!(dropped > 0, "the stalled client's queue filled up");
    // The healthy client keeps receiving.
    eventually(5, "the healthy client receives", || {
        received.load(Ordering::SeqCst) > 0
    })
    .await;
    let before = received.load(Ordering::SeqCst);
    dropped += server
        .notify_all("feed.Feed.client/tick", &[1])
        .unwrap()
        .dropped;
    within(5, async {
        while received.load(Ordering::SeqCst) <= before {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let total_dropped: u64 = server
        .connections()
        .iter()
        .map(|c| c.stats().dropped_frames)
        .sum();
    assert_eq!(total_dropped as usize, dropped);
    drop(stalled);
}

#[tokio::test]
async fn graceful_server_close_sends_1001_and_waits() {
    let closed = Arc::new(AtomicUsize::new(0));
    let c2 = closed.clone();
    let server = server_with(
        Server::builder()
            .config(test_config())
            .service(math())
            .on_close(move |_, info| {
                assert_eq!(info.code, 1001);
                c2.fetch_add(1, Ordering::SeqCst);
            }),
    )
    .await;
    let a = Client::builder(server.url())
        .reconnect(ReconnectPolicy::disabled())
        .build();
    let b = Client::builder(server.url())
        .codec(Codec::Json)
        .reconnect(ReconnectPolicy::disabled())
        .build();
    within(5, a.connect()).await.unwrap();
    within(5, b.connect()).await.unwrap();
    within(5, server.close()).await;
    assert_eq!(closed.load(Ordering::SeqCst), 2);
    assert!(server.connections().is_empty());
    for c in [a, b] {
        let err = within(5, c.closed()).await.unwrap_err();
        assert_eq!(err.code, 1001);
    }
    // Nothing accepts connections any more (the first connect is not retried here).
    let late = Client::builder(server.url())
        .retry_first_connect(false)
        .build();
    assert!(within(5, late.connect()).await.is_err());
}

#[tokio::test]
async fn client_services_survive_reconnects() {
    let mut first = ServerThread::start(&own_address(1));
    let addr = first.addr;
    let svc = FnService::new("c.Client").unary("ping", |_, _| async { Ok(Value::from("pong")) });
    let client = Client::builder(format!("ws://{addr}/"))
        .service(svc.into_service())
        .reconnect(
            ReconnectPolicy::default()
                .initial_delay(Duration::from_millis(50))
                .jitter(0.0),
        )
        .build();
    within(5, client.connect()).await.unwrap();
    first.kill();
    wait_state(&client, ConnectionState::Reconnecting).await;
    // Restart as an in-process server so the test can call the client from it.
    let server = Server::builder().service(math()).bind(addr).await.unwrap();
    wait_state(&client, ConnectionState::Connected).await;
    let conn = within(5, async {
        loop {
            if let Some(c) = server.connections().pop() {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert_eq!(
        within(5, conn.call_value("c.Client/ping", vec![]))
            .await
            .unwrap(),
        Value::from("pong")
    );
    let _ = futures_util::stream::iter(Vec::<u8>::new()).next().await;
}

#[tokio::test]
async fn a_call_right_after_a_graceful_server_close_waits_for_the_reconnect() {
    let builder = Server::builder().config(test_config()).service(math());
    let server = builder.bind(own_address(3)).await.expect("binds");
    let addr = server.local_addr();
    let client = client_of(&server, Codec::MsgPack).await;
    within(5, server.close()).await;
    // The close handshake is complete, so the client has seen the close frame: a call polled
    // right now must not be queued on the dying connection (it would fail with `Disconnected`)
    // but wait for the next one.
    let args = [Value::from(40), Value::from(2)];
    let call = client.call::<_, Value>(
        "math.Math/add",
        &args,
        CallOptions::new().timeout(Duration::from_secs(5)),
    );
    let restart = async {
        Server::builder()
            .config(test_config())
            .service(math())
            .bind(addr)
            .await
            .expect("rebinds the same port")
    };
    let (sum, _again) = within(10, async { tokio::join!(call, restart) }).await;
    assert_eq!(sum.unwrap(), Value::from(42));
    assert_eq!(client.stats().reconnects, 1);
}

#[tokio::test]
async fn a_notification_sent_just_before_close_arrives() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let got = Arc::new(AtomicUsize::new(0));
    let count = got.clone();
    let svc = wsp_runtime::FnService::new("n.N").notify("note", move |_, _| {
        count.fetch_add(1, Ordering::SeqCst);
    });
    let server = Server::builder()
        .service(Arc::new(svc))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    for _ in 0..20 {
        let client = Client::builder(server.url()).build();
        client.connect().await.unwrap();
        client
            .caller()
            .notify_value("n.N/note", vec![])
            .await
            .unwrap();
        client.close(1000, "bye").await.unwrap();
    }
    tokio::time::timeout(Duration::from_secs(10), async {
        while got.load(Ordering::SeqCst) < 20 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{} of 20 notifications arrived", got.load(Ordering::SeqCst)));
    server.close().await;
}
