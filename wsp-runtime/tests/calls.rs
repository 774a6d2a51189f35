//! Unary calls, notifications, errors, deadlines, cancellation, observer, stats, JSON.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use wsp_runtime::{
    CallError, CallOptions, Client, Codec, Config, ErrorCode, FnService, Observed, Server,
    ServiceError, Value,
};

/// `order.Order/add(i, n)` answers `i + n`, but only once all 100 calls have arrived, and then
/// in reverse order of arrival: a caller that matched replies to calls by their order, not by
/// id, would mix the results up.
fn reversing_service() -> (FnService, Arc<Mutex<Vec<i64>>>) {
    type Waiting = Vec<(i64, oneshot::Sender<()>)>;
    let waiting: Arc<Mutex<Waiting>> = Arc::default();
    let answered: Arc<Mutex<Vec<i64>>> = Arc::default();
    let order = answered.clone();
    let svc = FnService::new("order.Order").unary("add", move |_, args| {
        let (waiting, answered) = (waiting.clone(), answered.clone());
        async move {
            let i = args[0].as_i64().unwrap_or(0);
            let n = args[1].as_i64().unwrap_or(0);
            let (tx, rx) = oneshot::channel();
            {
                let mut w = waiting.lock().unwrap();
                w.push((i, tx));
                if w.len() == 100 {
                    // The last one in releases everybody, last first.
                    for (j, tx) in w.drain(..).rev() {
                        answered.lock().unwrap().push(j);
                        let _ = tx.send(());
                    }
                }
            }
            let _ = rx.await;
            Ok(Value::from(i + n))
        }
    });
    (svc, order)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_concurrent_calls_answered_out_of_order_get_their_own_results() {
    let (svc, answered) = reversing_service();
    let server = server_with(
        Server::builder()
            .config(test_config())
            .service(svc.into_service()),
    )
    .await;
    let client = client_of(&server, Codec::MsgPack).await;
    let calls = (0..100i64).map(|i| {
        let c = client.clone();
        async move {
            c.call_value("order.Order/add", vec![i.into(), 1000.into()])
                .await
        }
    });
    let results = within(5, futures_util::future::join_all(calls)).await;
    for (i, r) in results.into_iter().enumerate() {
        assert_eq!(r.expect("call succeeds"), Value::from(i as i64 + 1000));
    }
    // The replies really went out in another order than the calls were made in.
    let answered = answered.lock().unwrap().clone();
    assert_eq!(answered.len(), 100);
    assert_ne!(
        answered,
        (0..100).collect::<Vec<_>>(),
        "answered out of order"
    );
}

#[tokio::test]
async fn server_calls_the_client_and_the_client_calls_back() {
    let confirm = FnService::new("app.App.client")
        .unary("confirm", |_, args| async move {
            Ok(Value::from(format!(
                "yes:{}",
                args[0].as_str().unwrap_or("")
            )))
        })
        .into_service();
    let app = FnService::new("app.App")
        .unary("ask", |ctx, args| async move {
            let answer = ctx
                .caller()
                .call_value("app.App.client/confirm", args)
                .await?;
            Ok(answer)
        })
        .into_service();
    let server = server_with(Server::builder().config(test_config()).service(app)).await;
    let client = Client::builder(server.url()).service(confirm).build();
    within(5, client.connect()).await.expect("connects");

    let r = within(5, client.call_value("app.App/ask", vec!["q".into()]))
        .await
        .expect("nested call");
    assert_eq!(r, Value::from("yes:q"));

    // The server's per-connection handle calls the client directly too.
    let conn = server.connections().pop().expect("one connection");
    let r = within(
        5,
        conn.call_value("app.App.client/confirm", vec!["direct".into()]),
    )
    .await
    .expect("call");
    assert_eq!(r, Value::from("yes:direct"));
    assert!(
        conn.peer_services()
            .expect("hello received")
            .contains_key("app.App.client")
    );
}

#[tokio::test]
async fn unknown_methods_and_wrong_kinds_get_unknown_method() {
    let server = math_server().await;
    let client = client_of(&server, Codec::MsgPack).await;
    for method in [
        "nope.Nope/x",
        "math.Math/nope",
        "no-slash",
        "math.Math/count",
        "math.Math/log",
    ] {
        let r = within(5, client.call_value(method, vec![])).await;
        assert!(
            matches!(r, Err(CallError::UnknownMethod(_))),
            "{method}: {r:?}"
        );
    }
    let mut s = client.stream::<_, Value>("math.Math/add", &(1, 2), CallOptions::new());
    let r = within(5, futures_util::StreamExt::next(&mut s)).await;
    assert!(matches!(r, Some(Err(CallError::UnknownMethod(_)))), "{r:?}");
}

#[tokio::test]
async fn handler_panic_gives_a_generic_internal_error_and_the_server_keeps_serving() {
    let server = math_server().await;
    let client = client_of(&server, Codec::MsgPack).await;
    let other = client_of(&server, Codec::MsgPack).await;
    match within(5, client.call_value("math.Math/panic", vec![])).await {
        Err(CallError::Internal(msg)) => {
            assert_eq!(msg, "internal error");
            assert!(!msg.contains("secret") && !msg.contains(".rs"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        within(
            5,
            client.call_value("math.Math/add", vec![2.into(), 3.into()])
        )
        .await
        .unwrap(),
        Value::from(5)
    );
    assert_eq!(
        within(5, other.call_value("math.Math/add", vec![1.into()]))
            .await
            .unwrap(),
        Value::from(1)
    );
}

#[tokio::test]
async fn handler_errors_travel_with_their_code() {
    let server = math_server().await;
    let client = client_of(&server, Codec::MsgPack).await;
    let r = within(5, client.call_value("math.Math/fail", vec![])).await;
    match r {
        Err(e @ CallError::Unavailable(_)) => assert!(e.is_retryable()),
        other => panic!("{other:?}"),
    }
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct NotFound {
    #[serde(rename = "$type")]
    ty: String,
    key: String,
}

#[tokio::test]
async fn application_errors_carry_typed_details() {
    let svc = FnService::new("kv.Kv")
        .unary("get", |_, args| async move {
            let key = args[0].as_str().unwrap_or("").to_owned();
            Err(ServiceError::application(
                "NotFound",
                NotFound {
                    ty: "NotFound".into(),
                    key,
                },
            ))
        })
        .into_service();
    for codec in [Codec::MsgPack, Codec::Json] {
        let server = server_with(Server::builder().service(svc.clone())).await;
        let client = client_of(&server, codec).await;
        let err = within(5, client.call_value("kv.Kv/get", vec!["k1".into()]))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::Application));
        match &err {
            CallError::Application { name, .. } => assert_eq!(name, "NotFound"),
            other => panic!("{other:?}"),
        }
        let details: NotFound = err.details().expect("application error").expect("decodes");
        assert_eq!(
            details,
            NotFound {
                ty: "NotFound".into(),
                key: "k1".into()
            }
        );
    }
}

#[tokio::test]
async fn deadline_expires_at_both_ends() {
    let (seen_tx, seen_rx) = oneshot::channel::<bool>();
    let (dropped_tx, dropped_rx) = oneshot::channel::<()>();
    let seen_tx = Arc::new(Mutex::new(Some(seen_tx)));
    let dropped_tx = Arc::new(Mutex::new(Some(dropped_tx)));
    let svc = FnService::new("slow.Slow")
        .unary("wait", move |ctx, _| {
            let seen = seen_tx.lock().unwrap().take();
            let dropped = dropped_tx.lock().unwrap().take();
            async move {
                let _guard = DropGuard(dropped);
                if let Some(s) = seen {
                    let _ = s.send(ctx.deadline().is_some());
                }
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok(Value::Nil)
            }
        })
        .into_service();
    let server = server_with(Server::builder().config(test_config()).service(svc)).await;
    let client = client_of(&server, Codec::MsgPack).await;
    let start = tokio::time::Instant::now();
    let r = within(
        5,
        client.caller().call::<_, Value>(
            "slow.Slow/wait",
            &(),
            CallOptions::new().timeout(Duration::from_millis(150)),
        ),
    )
    .await;
    assert!(matches!(r, Err(CallError::DeadlineExceeded)), "{r:?}");
    assert!(start.elapsed() < Duration::from_secs(1));
    assert!(
        within(5, seen_rx).await.expect("handler ran"),
        "handler saw the deadline"
    );
    within(2, dropped_rx)
        .await
        .expect("handler aborted at its deadline");
}

#[tokio::test]
async fn dropping_a_call_cancels_the_handler() {
    let (dropped_tx, dropped_rx) = oneshot::channel::<()>();
    let dropped_tx = Arc::new(Mutex::new(Some(dropped_tx)));
    let svc = FnService::new("slow.Slow")
        .unary("wait", move |_, _| {
            let dropped = dropped_tx.lock().unwrap().take();
            async move {
                let _guard = DropGuard(dropped);
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok(Value::Nil)
            }
        })
        .into_service();
    let server = server_with(Server::builder().service(svc)).await;
    let client = client_of(&server, Codec::MsgPack).await;
    let call = client.call_value("slow.Slow/wait", vec![]);
    assert!(
        tokio::time::timeout(Duration::from_millis(100), call)
            .await
            .is_err(),
        "call still running"
    );
    within(2, dropped_rx)
        .await
        .expect("handler dropped after CANCEL");
    within(2, async {
        while server.stats().incoming_in_flight != 0 || client.stats().calls_in_flight != 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn observer_sees_calls_and_notifications() {
    let seen: Arc<Mutex<Vec<(u64, String, Value)>>> = Arc::default();
    let s2 = seen.clone();
    let observer: wsp_runtime::Observer = Arc::new(move |o: &Observed<'_>| {
        s2.lock().unwrap().push((
            o.connection_id,
            o.method.to_owned(),
            o.args.to_value().unwrap(),
        ));
    });
    let server = server_with(Server::builder().service(math()).observer(observer)).await;
    let client = client_of(&server, Codec::MsgPack).await;
    within(5, client.notify_value_helper()).await;
    within(5, client.call_value("math.Math/add", vec![4.into()]))
        .await
        .unwrap();
    let conn_id = server.connections()[0].id();
    within(2, async {
        while seen.lock().unwrap().len() < 3 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen[0],
        (conn_id, "math.Math/log".to_owned(), arr(vec!["hi".into()]))
    );
    assert_eq!(seen[1], (conn_id, "unknown.Svc/x".to_owned(), arr(vec![])));
    assert_eq!(
        seen[2],
        (conn_id, "math.Math/add".to_owned(), arr(vec![4.into()]))
    );
    // The unknown notification was dropped and counted as invalid.
    assert_eq!(server.stats().invalid_frames, 1);
    assert_eq!(server.stats().notifications_received, 2);
}

trait NotifyHelper {
    async fn notify_value_helper(&self);
}

impl NotifyHelper for Client {
    async fn notify_value_helper(&self) {
        self.notify("math.Math/log", &("hi",)).await.unwrap();
        self.caller()
            .notify_value("unknown.Svc/x", vec![])
            .await
            .unwrap();
    }
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Blob {
    name: String,
    #[serde(with = "wsp_runtime::with::bytes")]
    data: Vec<u8>,
    #[serde(with = "wsp_runtime::with::int64")]
    big: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

/// A typed service written the way generated code would: decode args from the payload, encode
/// the result into the frame.
struct BlobService;

impl wsp_runtime::codegen::Service for BlobService {
    fn name(&self) -> &str {
        "blob.Blobs"
    }
    fn fingerprint(&self) -> &str {
        "fp1"
    }
    fn call(&self, req: wsp_runtime::codegen::Request<'_>) -> wsp_runtime::codegen::Handler {
        use wsp_runtime::codegen::{CallKind, Handler};
        match (req.method, req.kind) {
            ("grow", CallKind::Unary) => {
                let (mut blob,): (Blob,) = match req.args.decode() {
                    Ok(a) => a,
                    Err(e) => return Handler::Error(e.into()),
                };
                Handler::unary(req.ctx, async move {
                    blob.data.push(0xff);
                    blob.big += 1;
                    Ok::<_, ServiceError>(blob)
                })
            }
            _ => Handler::UnknownMethod,
        }
    }
}

#[tokio::test]
async fn typed_calls_with_structs_bytes_and_int64_in_both_codecs() {
    let server = server_with(Server::builder().service(Arc::new(BlobService))).await;
    for codec in [Codec::MsgPack, Codec::Json] {
        let client = client_of(&server, codec).await;
        let blob = Blob {
            name: "b".into(),
            data: vec![1, 2],
            big: u64::MAX - 1,
            note: None,
        };
        let r: Blob = within(
            5,
            client.call("blob.Blobs/grow", &(blob.clone(),), CallOptions::new()),
        )
        .await
        .unwrap();
        assert_eq!(
            r,
            Blob {
                data: vec![1, 2, 0xff],
                big: u64::MAX,
                ..blob
            }
        );
        let bad = within(
            5,
            client.call::<_, Blob>("blob.Blobs/grow", &(1,), CallOptions::new()),
        )
        .await;
        assert!(
            matches!(bad, Err(CallError::InvalidArguments(_))),
            "{bad:?}"
        );
        assert_eq!(
            client
                .peer()
                .unwrap()
                .peer_services()
                .unwrap()
                .get("blob.Blobs")
                .map(String::as_str),
            Some("fp1")
        );
    }
}

#[tokio::test]
async fn json_codec_end_to_end() {
    let server = math_server().await;
    let client = client_of(&server, Codec::Json).await;
    assert_eq!(client.peer().unwrap().codec(), Codec::Json);
    let r = within(
        5,
        client.call_value(
            "math.Math/add",
            vec![1.into(), arr(vec![2.into(), 3.into()])],
        ),
    )
    .await;
    assert_eq!(r.unwrap(), Value::from(6));
    let r = within(5, client.call_value("math.Math/echo", vec!["é\"\\".into()])).await;
    assert_eq!(r.unwrap(), Value::from("é\"\\"));
    let items: Vec<u64> = within(
        5,
        futures_util::StreamExt::collect::<Vec<_>>(client.stream::<_, u64>(
            "math.Math/count",
            &(5,),
            CallOptions::new(),
        )),
    )
    .await
    .into_iter()
    .map(Result::unwrap)
    .collect();
    assert_eq!(items, vec![0, 1, 2, 3, 4]);
    assert_eq!(server.connections()[0].codec(), Codec::Json);
}

#[tokio::test]
async fn services_change_at_run_time() {
    let server = math_server().await;
    let client = client_of(&server, Codec::MsgPack).await;
    let extra = FnService::new("extra.Extra")
        .unary("hi", |_, _| async { Ok(Value::from("hi")) })
        .into_service();
    server.add_service(extra);
    assert_eq!(
        within(5, client.call_value("extra.Extra/hi", vec![]))
            .await
            .unwrap(),
        Value::from("hi")
    );
    assert!(server.remove_service("extra.Extra"));
    assert!(matches!(
        within(5, client.call_value("extra.Extra/hi", vec![])).await,
        Err(CallError::UnknownMethod(_))
    ));
    server.clear_services();
    assert!(matches!(
        within(5, client.call_value("math.Math/add", vec![])).await,
        Err(CallError::UnknownMethod(_))
    ));
    // A service on one connection only.
    let conn = server.connections().pop().unwrap();
    conn.add_service(
        FnService::new("mine.Mine")
            .unary("x", |_, _| async { Ok(Value::from(1)) })
            .into_service(),
    );
    assert_eq!(
        within(5, client.call_value("mine.Mine/x", vec![]))
            .await
            .unwrap(),
        Value::from(1)
    );
    assert!(conn.remove_service("mine.Mine"));
}

#[tokio::test]
async fn too_many_calls_in_flight_get_overloaded() {
    let server = server_with(
        Server::builder()
            .config(test_config().max_incoming_calls(2))
            .service(math()),
    )
    .await;
    let client = client_of(&server, Codec::MsgPack).await;
    // Long enough to still run when the third call arrives, short enough not to slow the suite.
    let slow = |c: Client| async move { c.call_value("math.Math/sleep", vec![1000.into()]).await };
    let (a, b, c) = within(5, async {
        let a = tokio::spawn(slow(client.clone()));
        let b = tokio::spawn(slow(client.clone()));
        // Both slow calls are running at the server before the third is made.
        eventually(5, "both slow calls run", || {
            server.stats().incoming_in_flight >= 2
        })
        .await;
        let c = client.call_value("math.Math/add", vec![]).await;
        (a.await.unwrap(), b.await.unwrap(), c)
    })
    .await;
    assert!(a.is_ok() && b.is_ok());
    assert!(matches!(c, Err(CallError::Overloaded(_))), "{c:?}");
}

#[tokio::test]
async fn stats_count_calls_frames_and_bytes() {
    let server = math_server().await;
    let client = client_of(&server, Codec::MsgPack).await;
    for i in 0..10 {
        within(5, client.call_value("math.Math/add", vec![i.into()]))
            .await
            .unwrap();
    }
    let _ = within(5, client.call_value("math.Math/nope", vec![])).await;
    within(5, client.notify("math.Math/log", &()))
        .await
        .unwrap();
    within(5, async {
        while server.stats().notifications_received < 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let c = client.stats();
    assert_eq!(
        (
            c.calls_sent,
            c.replies_received,
            c.errors_received,
            c.notifications_sent
        ),
        (11, 10, 1, 1)
    );
    assert_eq!(c.calls_in_flight, 0);
    assert!(
        c.frames_sent >= 13 && c.bytes_sent > 100 && c.bytes_received > 50,
        "{c:?}"
    );
    let s = server.stats();
    assert_eq!(
        (s.calls_received, s.replies_sent, s.errors_sent),
        (11, 10, 1)
    );
    assert_eq!((s.connections_opened, s.connections_open), (1, 1));
    let p = client.peer().unwrap().stats();
    assert_eq!(p.calls_sent, 11);
    assert!(p.open_for > Duration::ZERO);
}

#[tokio::test]
async fn peers_over_existing_websockets() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accept = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        wsp_runtime::Peer::from_stream(
            ws,
            Codec::MsgPack,
            wsp_runtime::PeerOptions::new().service(math()),
        )
    });
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/"))
        .await
        .unwrap();
    let echo = FnService::new("c.C").unary("who", |ctx, _| async move {
        Ok(Value::from(ctx.connection_id()))
    });
    let client = wsp_runtime::Peer::from_stream(
        ws,
        Codec::MsgPack,
        wsp_runtime::PeerOptions::new()
            .config(Config::default())
            .service(echo.into_service()),
    );
    let server = within(5, accept).await.unwrap();
    assert_eq!(
        within(5, client.call_value("math.Math/add", vec![7.into()]))
            .await
            .unwrap(),
        Value::from(7)
    );
    let id = within(5, server.call_value("c.C/who", vec![]))
        .await
        .unwrap();
    assert_eq!(id, Value::from(client.id()));
    within(5, client.close(1000, "bye")).await.unwrap();
    assert_eq!(within(5, server.closed()).await.unwrap().reason, "bye");
}

#[tokio::test]
async fn client_and_peer_offer_every_call_form_of_caller() {
    use futures_util::StreamExt;
    let server = math_server().await;
    let client = client_of(&server, Codec::Json).await;
    let opts = CallOptions::new().timeout(Duration::from_secs(5));
    let three = Value::from(3);
    assert_eq!(
        client
            .call_value_with("math.Math/add", vec![1.into(), 2.into()], opts)
            .await
            .unwrap(),
        three
    );
    let payload = client
        .call_payload("math.Math/add", &(1, 2), opts)
        .await
        .unwrap();
    assert_eq!(payload.to_value().unwrap(), three);
    client.notify_value("math.Math/log", vec![]).await.unwrap();
    let items: Vec<Value> = client
        .stream_value("math.Math/count", vec![3.into()], opts)
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(items, vec![0.into(), 1.into(), 2.into()]);
    // The same on the client's connection as a peer.
    let peer = client.peer().expect("connected");
    assert_eq!(
        peer.call_value_with("math.Math/add", vec![1.into(), 2.into()], opts)
            .await
            .unwrap(),
        three
    );
    let mut s = peer.stream_value("math.Math/count", vec![1.into()], opts);
    assert_eq!(s.next().await.unwrap().unwrap(), Value::from(0));
    peer.notify_value("math.Math/log", vec![]).await.unwrap();
    eventually(5, "both notifications received", || {
        server.stats().notifications_received >= 2
    })
    .await;
    client.close(1000, "done").await.unwrap();
}
