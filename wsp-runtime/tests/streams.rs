//! Server streams: order, back-pressure with credit, cancellation, deadlines.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use tokio::sync::oneshot;
use wsp_runtime::{
    CallError, CallOptions, Client, Codec, FnService, ReconnectPolicy, Server, Value,
};

#[tokio::test]
async fn stream_items_arrive_in_order_then_end() {
    let server = math_server().await;
    let client = client_of(&server, Codec::MsgPack).await;
    let items: Vec<u64> = within(
        5,
        client
            .stream::<_, u64>("math.Math/count", &(200,), CallOptions::new())
            .collect::<Vec<_>>(),
    )
    .await
    .into_iter()
    .map(Result::unwrap)
    .collect();
    assert_eq!(items, (0..200).collect::<Vec<_>>());
    assert_eq!(client.stats().calls_in_flight, 0);
}

/// A producer counting how many items it made.
fn counter_service(
    produced: Arc<AtomicU64>,
    dropped: Arc<Mutex<Option<oneshot::Sender<()>>>>,
) -> FnService {
    FnService::new("gen.Gen").stream("numbers", move |_, args| {
        let limit = args.first().and_then(Value::as_u64).unwrap_or(u64::MAX);
        let produced = produced.clone();
        let guard = DropGuard(dropped.lock().unwrap().take());
        futures_util::stream::unfold((0u64, guard), move |(i, guard)| {
            let produced = produced.clone();
            async move {
                if i >= limit {
                    return None;
                }
                produced.fetch_add(1, Ordering::SeqCst);
                Some((Ok(Value::from(i)), (i + 1, guard)))
            }
        })
    })
}

#[tokio::test]
async fn a_slow_consumer_holds_the_producer_to_the_window() {
    let produced = Arc::new(AtomicU64::new(0));
    let svc = counter_service(produced.clone(), Arc::default());
    let server = server_with(Server::builder().service(svc.into_service())).await;
    let window = 8;
    let client = Client::builder(server.url())
        .config(test_config().stream_window(window))
        .build();
    within(5, client.connect()).await.unwrap();
    let mut s = client.stream::<_, u64>("gen.Gen/numbers", &(100,), CallOptions::new());
    for expected in 0..3 {
        assert_eq!(within(5, s.next()).await.unwrap().unwrap(), expected);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ahead = produced.load(Ordering::SeqCst);
    // Credit is granted per half window taken: 3 taken → no credit yet, so at most the window.
    assert!(
        ahead <= u64::from(window),
        "producer ran {ahead} items ahead of a window of {window}"
    );
    assert!(ahead >= 3);
    let rest: Vec<u64> = within(5, s.map(Result::unwrap).collect::<Vec<_>>()).await;
    assert_eq!(rest, (3..100).collect::<Vec<_>>());
    assert_eq!(produced.load(Ordering::SeqCst), 100);
}

#[tokio::test]
async fn dropping_a_stream_cancels_the_producer() {
    let (tx, rx) = oneshot::channel();
    let svc = counter_service(Arc::new(AtomicU64::new(0)), Arc::new(Mutex::new(Some(tx))));
    let server = server_with(Server::builder().service(svc.into_service())).await;
    let client = client_of(&server, Codec::MsgPack).await;
    let mut s = client.stream::<_, u64>("gen.Gen/numbers", &Vec::<u64>::new(), CallOptions::new());
    for expected in 0..5 {
        assert_eq!(within(5, s.next()).await.unwrap().unwrap(), expected);
    }
    drop(s);
    within(2, rx).await.expect("producer dropped after CANCEL");
    within(2, async {
        while server.stats().incoming_in_flight != 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn stream_deadline_and_server_loss_end_the_stream_with_an_error() {
    let svc = FnService::new("gen.Gen").stream("forever", |_, _| futures_util::stream::pending());
    let server = server_with(
        Server::builder()
            .config(test_config())
            .service(svc.into_service()),
    )
    .await;
    let client = Client::builder(server.url())
        .reconnect(ReconnectPolicy::disabled())
        .build();
    within(5, client.connect()).await.unwrap();
    let mut s = client.stream::<_, Value>(
        "gen.Gen/forever",
        &[0; 0],
        CallOptions::new().timeout(Duration::from_millis(100)),
    );
    assert!(matches!(
        within(5, s.next()).await,
        Some(Err(CallError::DeadlineExceeded))
    ));
    assert!(within(5, s.next()).await.is_none());

    let mut s = client.stream::<_, Value>("gen.Gen/forever", &[0; 0], CallOptions::new());
    tokio::time::sleep(Duration::from_millis(50)).await;
    server.close().await;
    assert!(matches!(
        within(5, s.next()).await,
        Some(Err(CallError::Disconnected))
    ));
}

/// A producer of one item every 5 ms, for ever.
fn ticking_service() -> FnService {
    FnService::new("gen.Gen").stream("ticks", |_, _| {
        futures_util::stream::unfold(0u64, |i| async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            Some((Ok(Value::from(i)), i + 1))
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_stream_losing_its_server_fails_with_disconnected() {
    let server = server_with(
        Server::builder()
            .config(test_config())
            .service(ticking_service().into_service()),
    )
    .await;
    let client = Client::builder(server.url())
        .config(test_config())
        .reconnect(ReconnectPolicy::disabled())
        .build();
    within(5, client.connect()).await.unwrap();
    let mut s = client.stream::<_, u64>("gen.Gen/ticks", &[0; 0], CallOptions::new());
    // Items are flowing: the stream is open at both ends.
    for expected in 0..3 {
        assert_eq!(within(5, s.next()).await.unwrap().unwrap(), expected);
    }
    assert_eq!(server.stats().incoming_in_flight, 1);
    server.close().await;
    // Items already received may still come; then the loss, then the end.
    let outcome = within(5, async {
        loop {
            match s.next().await {
                Some(Ok(_)) => continue,
                other => return other,
            }
        }
    })
    .await;
    assert!(
        matches!(outcome, Some(Err(CallError::Disconnected))),
        "{outcome:?}"
    );
    assert!(within(5, s.next()).await.is_none());
    assert_eq!(client.stats().calls_in_flight, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_stream_whose_peer_vanishes_fails_with_disconnected() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    // A raw peer that answers the stream with two items, then drops the TCP connection
    // without a close frame.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let peer = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = accept_raw_hello(tcp).await;
        while let Some(Ok(m)) = ws.next().await {
            let frame = match &m {
                Message::Binary(_) => decode(&m),
                _ => continue,
            };
            let f = frame.as_array().unwrap().clone();
            if f[0].as_u64() == Some(2) {
                for i in 0..2u64 {
                    let item = arr(vec![6.into(), f[1].clone(), i.into()]);
                    ws.send(Message::Binary(mp(&item).into())).await.unwrap();
                }
                return; // drops the socket
            }
        }
    });
    let client = Client::builder(url)
        .config(test_config())
        .reconnect(ReconnectPolicy::disabled())
        .build();
    within(5, client.connect()).await.unwrap();
    let mut s = client.stream::<_, u64>("gen.Gen/ticks", &[0; 0], CallOptions::new());
    assert_eq!(within(5, s.next()).await.unwrap().unwrap(), 0);
    assert_eq!(within(5, s.next()).await.unwrap().unwrap(), 1);
    assert!(matches!(
        within(5, s.next()).await,
        Some(Err(CallError::Disconnected))
    ));
    assert!(within(5, s.next()).await.is_none());
    peer.await.unwrap();
}
