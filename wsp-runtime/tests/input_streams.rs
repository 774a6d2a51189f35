//! Client streams (UPLOAD) and bidirectional streams (DUPLEX), PROTOCOL §2.7: the caller's
//! items, credit both ways, cancellation from either side, deadlines, errors after items, and a
//! caller that breaks the rules.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use tokio::sync::{Notify, oneshot};
use wsp_runtime::{
    CallError, CallOptions, Client, Codec, ErrorCode, FnService, Server, ServiceError, Value,
};

/// `up.Up`: `sum` adds the items (client stream), `double` answers each item twice its value
/// (bidirectional), `fail_after` answers `n` items then fails (bidirectional).
fn up_service() -> FnService {
    FnService::new("up.Up")
        .upload("sum", |_, args, mut items| async move {
            let mut total = args.first().and_then(Value::as_u64).unwrap_or(0);
            while let Some(item) = items.next().await {
                total += item?.as_u64().unwrap_or(0);
            }
            Ok(Value::from(total))
        })
        .duplex("double", |_, _, items| {
            items.map(|item| {
                let v = item?;
                Ok(Value::from(v.as_u64().unwrap_or(0) * 2))
            })
        })
        .duplex("fail_after", |_, args, items| {
            let n = args.first().and_then(Value::as_u64).unwrap_or(0) as usize;
            items
                .take(n)
                .map(|item| {
                    let v = item?;
                    Ok(Value::from(v.as_u64().unwrap_or(0) + 1))
                })
                .chain(futures_util::stream::once(async {
                    Err(ServiceError::new(ErrorCode::Unavailable, "no more"))
                }))
        })
}

fn numbers(n: u64) -> impl futures_util::Stream<Item = u64> + Send + 'static {
    futures_util::stream::iter(0..n)
}

#[tokio::test]
async fn an_upload_sends_every_item_and_gets_one_result_in_both_codecs() {
    let server = server_with(Server::builder().service(up_service().into_service())).await;
    for codec in [Codec::MsgPack, Codec::Json] {
        let client = client_of(&server, codec).await;
        let total: u64 = within(
            5,
            client.upload("up.Up/sum", &(1000,), numbers(200), CallOptions::new()),
        )
        .await
        .unwrap();
        assert_eq!(total, 1000 + (0..200).sum::<u64>());
        // No items at all: PUSH_END right after the call.
        let total: u64 = within(
            5,
            client.upload("up.Up/sum", &(7,), numbers(0), CallOptions::new()),
        )
        .await
        .unwrap();
        assert_eq!(total, 7);
        assert_eq!(client.stats().calls_in_flight, 0);
        within(5, client.close(1000, "done")).await.unwrap();
    }
}

#[tokio::test]
async fn a_duplex_answers_items_while_they_are_sent_in_both_codecs() {
    let server = server_with(Server::builder().service(up_service().into_service())).await;
    for codec in [Codec::MsgPack, Codec::Json] {
        let client = client_of(&server, codec).await;
        let out: Vec<u64> = within(
            5,
            client
                .duplex::<_, _, _, u64>("up.Up/double", &(), numbers(300), CallOptions::new())
                .map(Result::unwrap)
                .collect::<Vec<_>>(),
        )
        .await;
        assert_eq!(out, (0..300).map(|i| i * 2).collect::<Vec<_>>());

        // Interleaved: each answer arrives before the next item is made.
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
        let input = tokio_stream_of(rx);
        let mut answers =
            client.duplex::<_, _, _, u64>("up.Up/double", &(), input, CallOptions::new());
        for i in 0..5 {
            tx.send(i).unwrap();
            assert_eq!(within(5, answers.next()).await.unwrap().unwrap(), i * 2);
        }
        drop(tx);
        assert!(within(5, answers.next()).await.is_none());
        within(5, client.close(1000, "done")).await.unwrap();
    }
}

fn tokio_stream_of<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<T>,
) -> impl futures_util::Stream<Item = T> + Send + 'static {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// A producer that counts the items taken from it.
fn counted(n: u64, made: Arc<AtomicU64>) -> impl futures_util::Stream<Item = u64> + Send + 'static {
    futures_util::stream::iter(0..n).inspect(move |_| {
        made.fetch_add(1, Ordering::SeqCst);
    })
}

#[tokio::test]
async fn a_caller_that_runs_ahead_is_paused_until_the_callee_takes_items() {
    let started = Arc::new(Notify::new());
    let go = Arc::new(Notify::new());
    let (s, g) = (started.clone(), go.clone());
    let svc = FnService::new("up.Slow").upload("sum", move |_, _, mut items| {
        let (started, go) = (s.clone(), g.clone());
        async move {
            started.notify_one();
            go.notified().await;
            let mut total = 0;
            while let Some(item) = items.next().await {
                total += item?.as_u64().unwrap_or(0);
            }
            Ok(Value::from(total))
        }
    });
    let server = server_with(Server::builder().service(svc.into_service())).await;
    let client = client_of(&server, Codec::MsgPack).await;
    let made = Arc::new(AtomicU64::new(0));
    let call = {
        let client = client.clone();
        let made = made.clone();
        tokio::spawn(async move {
            client
                .upload::<_, _, _, u64>("up.Slow/sum", &(), counted(1000, made), CallOptions::new())
                .await
        })
    };
    within(5, started.notified()).await;
    eventually(5, "the first window is sent", || {
        made.load(Ordering::SeqCst) >= 17
    })
    .await;
    // The handler takes nothing: the caller must not go past the window it was granted (16
    // sent, and the next one taken from the producer, waiting for room).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        made.load(Ordering::SeqCst),
        17,
        "the producer ran past its window"
    );
    go.notify_one();
    let total = within(10, call).await.unwrap().unwrap();
    assert_eq!(total, (0..1000).sum::<u64>());
    assert_eq!(made.load(Ordering::SeqCst), 1000);
}

#[tokio::test]
async fn a_callee_that_runs_ahead_in_a_duplex_is_paused_by_the_callers_credit() {
    let produced = Arc::new(AtomicU64::new(0));
    let p = produced.clone();
    let svc = FnService::new("up.Gen").duplex("numbers", move |_, _, _items| {
        let produced = p.clone();
        futures_util::stream::iter(0..1000u64).map(move |i| {
            produced.fetch_add(1, Ordering::SeqCst);
            Ok(Value::from(i))
        })
    });
    let server = server_with(Server::builder().service(svc.into_service())).await;
    let window = 8;
    let client = Client::builder(server.url())
        .config(test_config().stream_window(window))
        .build();
    within(5, client.connect()).await.unwrap();
    let mut s =
        client.duplex::<_, _, _, u64>("up.Gen/numbers", &(), numbers(0), CallOptions::new());
    assert_eq!(within(5, s.next()).await.unwrap().unwrap(), 0);
    eventually(5, "the window is produced", || {
        produced.load(Ordering::SeqCst) >= u64::from(window)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ahead = produced.load(Ordering::SeqCst);
    assert!(
        ahead <= u64::from(window),
        "callee ran {ahead} ahead of {window}"
    );
    let rest: Vec<u64> = within(5, s.map(Result::unwrap).collect::<Vec<_>>()).await;
    assert_eq!(rest, (1..1000).collect::<Vec<_>>());
}

#[tokio::test]
async fn an_error_after_items_ends_the_duplex_and_stops_the_sending() {
    let server = server_with(Server::builder().service(up_service().into_service())).await;
    let client = client_of(&server, Codec::MsgPack).await;
    let made = Arc::new(AtomicU64::new(0));
    let got: Vec<Result<u64, CallError>> = within(
        5,
        client
            .duplex::<_, _, _, u64>(
                "up.Up/fail_after",
                &(3,),
                counted(u64::MAX, made.clone()),
                CallOptions::new(),
            )
            .collect::<Vec<_>>(),
    )
    .await;
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(
        got[..3]
            .iter()
            .map(|r| *r.as_ref().unwrap())
            .collect::<Vec<_>>(),
        [1, 2, 3]
    );
    match &got[3] {
        Err(e) => assert_eq!(e.code(), Some(ErrorCode::Unavailable), "{e}"),
        other => panic!("{other:?}"),
    }
    // The sending stopped with the call: the endless producer is not drained.
    let after = made.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(made.load(Ordering::SeqCst), after);
    assert!(after < 100, "{after} items were made");
}

#[tokio::test]
async fn an_item_that_does_not_decode_fails_the_upload_with_invalid_arguments() {
    let server = server_with(Server::builder().service(up_service().into_service())).await;
    let client = client_of(&server, Codec::MsgPack).await;
    // `sum` decodes each item as a value: one nested deeper than the callee allows (128) does
    // not decode.
    let deep = (0..200).fold(Value::from(1), |v, _| Value::Array(vec![v]));
    let r: Result<u64, CallError> = within(
        5,
        client.upload(
            "up.Up/sum",
            &(),
            futures_util::stream::iter(vec![deep]),
            CallOptions::new(),
        ),
    )
    .await;
    assert!(matches!(r, Err(CallError::InvalidArguments(_))), "{r:?}");
}

#[tokio::test]
async fn dropping_a_duplex_cancels_the_callee_and_stops_the_sending() {
    let (dropped_tx, dropped_rx) = oneshot::channel();
    let dropped = Arc::new(Mutex::new(Some(dropped_tx)));
    let svc = FnService::new("up.Echo").duplex("echo", move |_, _, items| {
        let guard = DropGuard(dropped.lock().unwrap().take());
        items.map(move |item| {
            let _keep = &guard;
            Ok(item?)
        })
    });
    let server = server_with(Server::builder().service(svc.into_service())).await;
    let client = client_of(&server, Codec::MsgPack).await;
    let made = Arc::new(AtomicU64::new(0));
    let mut s = client.duplex::<_, _, _, u64>(
        "up.Echo/echo",
        &(),
        counted(u64::MAX, made.clone()),
        CallOptions::new(),
    );
    assert_eq!(within(5, s.next()).await.unwrap().unwrap(), 0);
    drop(s);
    within(5, dropped_rx)
        .await
        .expect("the handler was dropped");
    let after = made.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(made.load(Ordering::SeqCst), after, "items were still made");
    eventually(5, "no call in flight", || {
        client.stats().calls_in_flight == 0 && server.stats().incoming_in_flight == 0
    })
    .await;
}

#[tokio::test]
async fn a_deadline_mid_upload_fails_the_call_on_both_sides() {
    let (dropped_tx, dropped_rx) = oneshot::channel();
    let dropped = Arc::new(Mutex::new(Some(dropped_tx)));
    let svc = FnService::new("up.Never").upload("sum", move |_, _, mut items| {
        let guard = DropGuard(dropped.lock().unwrap().take());
        async move {
            let _guard = guard;
            // Takes items forever, slowly: the caller's stream never ends.
            while let Some(item) = items.next().await {
                item?;
            }
            Ok(Value::Nil)
        }
    });
    let server = server_with(Server::builder().service(svc.into_service())).await;
    let client = client_of(&server, Codec::MsgPack).await;
    let slow = futures_util::stream::unfold(0u64, |i| async move {
        tokio::time::sleep(Duration::from_millis(10)).await;
        Some((i, i + 1))
    });
    let r: Result<Value, CallError> = within(
        5,
        client.upload(
            "up.Never/sum",
            &(),
            slow,
            CallOptions::new().timeout(Duration::from_millis(300)),
        ),
    )
    .await;
    assert!(matches!(r, Err(CallError::DeadlineExceeded)), "{r:?}");
    within(5, dropped_rx)
        .await
        .expect("the callee stopped at its deadline");
}

#[tokio::test]
async fn the_callee_answering_early_ends_the_upload() {
    let svc = FnService::new("up.First").upload("first", |_, _, mut items| async move {
        let first = items.next().await.transpose()?;
        Ok(first.unwrap_or(Value::Nil))
    });
    let server = server_with(Server::builder().service(svc.into_service())).await;
    let client = client_of(&server, Codec::MsgPack).await;
    let made = Arc::new(AtomicU64::new(0));
    let first: u64 = within(
        5,
        client.upload(
            "up.First/first",
            &(),
            counted(u64::MAX, made.clone()),
            CallOptions::new(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(first, 0);
    let after = made.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(made.load(Ordering::SeqCst), after, "items were still made");
    // Later PUSHes for the finished call are ignored: the connection still serves.
    let total: u64 = within(
        5,
        client.upload("up.First/first", &(), numbers(3), CallOptions::new()),
    )
    .await
    .unwrap();
    assert_eq!(total, 0);
}

#[tokio::test]
async fn the_wrong_kind_of_call_is_an_unknown_method() {
    let server = server_with(Server::builder().service(up_service().into_service())).await;
    let client = client_of(&server, Codec::MsgPack).await;
    let r: Result<u64, CallError> =
        within(5, client.call("up.Up/sum", &(), CallOptions::new())).await;
    assert!(matches!(r, Err(CallError::UnknownMethod(_))), "{r:?}");
    let r: Result<u64, CallError> = within(
        5,
        client.upload("up.Up/double", &(), numbers(1), CallOptions::new()),
    )
    .await;
    assert!(matches!(r, Err(CallError::UnknownMethod(_))), "{r:?}");
}

/// `[10, id, "up.Up/sum", nil, []]`, then `n` PUSHes of `1` for that id, as raw MessagePack.
async fn raw_upload(ws: &mut RawWs, id: u64, pushes: usize) {
    send_bin(ws, hello_bytes()).await;
    let open = arr(vec![
        Value::from(10),
        Value::from(id),
        Value::from("up.Up/sum"),
        Value::Nil,
        arr(vec![]),
    ]);
    send_bin(ws, mp(&open)).await;
    for _ in 0..pushes {
        send_bin(
            ws,
            mp(&arr(vec![Value::from(12), Value::from(id), Value::from(1)])),
        )
        .await;
    }
}

#[tokio::test]
async fn a_caller_pushing_past_its_grant_is_closed_with_1002_and_others_are_served() {
    let started = Arc::new(Notify::new());
    let s = started.clone();
    // Never takes an item, so never grants more than the first window.
    let svc = FnService::new("up.Up").upload("sum", move |_, _, _items| {
        let started = s.clone();
        async move {
            started.notify_one();
            std::future::pending::<()>().await;
            Ok(Value::Nil)
        }
    });
    let server = server_with(
        Server::builder()
            .service(svc.into_service())
            .service(math()),
    )
    .await;
    let mut ws = raw_connect(&server.url(), Some("wsp.v1.msgpack")).await;
    raw_upload(&mut ws, 1, 17).await;
    assert_eq!(close_code(&mut ws).await, 1002);
    // A PUSH after PUSH_END, a second PUSH_END, and a PUSH for a running plain call are
    // protocol errors too.
    let push = mp(&arr(vec![Value::from(12), Value::from(1), Value::from(1)]));
    let push_end = mp(&arr(vec![Value::from(13), Value::from(1)]));
    for after_end in [push.clone(), push_end.clone()] {
        let mut ws = raw_connect(&server.url(), Some("wsp.v1.msgpack")).await;
        raw_upload(&mut ws, 1, 2).await;
        send_bin(&mut ws, push_end.clone()).await;
        send_bin(&mut ws, after_end).await;
        assert_eq!(close_code(&mut ws).await, 1002);
    }
    let mut ws = raw_connect(&server.url(), Some("wsp.v1.msgpack")).await;
    send_bin(&mut ws, hello_bytes()).await;
    let sleeping = arr(vec![
        Value::from(1),
        Value::from(1),
        Value::from("math.Math/sleep"),
        Value::Nil,
        arr(vec![Value::from(10_000)]),
    ]);
    send_bin(&mut ws, mp(&sleeping)).await;
    send_bin(&mut ws, push).await;
    assert_eq!(close_code(&mut ws).await, 1002);
    // A PUSH for an id that is not running is ignored.
    let mut ws = raw_connect(&server.url(), Some("wsp.v1.msgpack")).await;
    send_bin(&mut ws, hello_bytes()).await;
    send_bin(
        &mut ws,
        mp(&arr(vec![Value::from(12), Value::from(99), Value::from(1)])),
    )
    .await;
    let call = arr(vec![
        Value::from(1),
        Value::from(5),
        Value::from("math.Math/add"),
        Value::Nil,
        arr(vec![Value::from(2), Value::from(3)]),
    ]);
    send_bin(&mut ws, mp(&call)).await;
    loop {
        let frame = decode(&next_msg(&mut ws).await);
        if frame[0] == Value::from(4) {
            assert_eq!(frame[1], Value::from(5));
            break;
        }
    }
    // Everyone else is still served.
    let client = client_of(&server, Codec::MsgPack).await;
    let sum: i64 = within(5, client.call("math.Math/add", &(2, 3), CallOptions::new()))
        .await
        .unwrap();
    assert_eq!(sum, 5);
}

/// An item that does not encode.
struct Unencodable;

impl serde::Serialize for Unencodable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("this item has no wire form"))
    }
}

#[tokio::test]
async fn an_item_that_does_not_encode_fails_the_call_and_cancels_the_callee() {
    let (dropped_tx, dropped_rx) = oneshot::channel();
    let dropped = Arc::new(Mutex::new(Some(dropped_tx)));
    let svc = FnService::new("up.Wait").upload("take", move |_, _, mut items| {
        let guard = DropGuard(dropped.lock().unwrap().take());
        async move {
            let _guard = guard;
            while let Some(item) = items.next().await {
                item?;
            }
            Ok(Value::Nil)
        }
    });
    let server = server_with(Server::builder().service(svc.into_service())).await;
    let client = client_of(&server, Codec::MsgPack).await;
    let items = futures_util::stream::iter(vec![Unencodable]);
    let r: Result<Value, CallError> = within(
        5,
        client.upload("up.Wait/take", &(), items, CallOptions::new()),
    )
    .await;
    assert!(matches!(r, Err(CallError::Encode(_))), "{r:?}");
    within(5, dropped_rx)
        .await
        .expect("the callee was cancelled");
}

/// A caller that never cancels: the callee itself ends the upload at its deadline with
/// DEADLINE_EXCEEDED and stops the handler.
#[tokio::test]
async fn the_callee_ends_an_upload_at_its_deadline_without_the_callers_cancel() {
    let (dropped_tx, dropped_rx) = oneshot::channel();
    let dropped = Arc::new(Mutex::new(Some(dropped_tx)));
    let svc = FnService::new("up.Up").upload("sum", move |_, _, mut items| {
        let guard = DropGuard(dropped.lock().unwrap().take());
        async move {
            let _guard = guard;
            while let Some(item) = items.next().await {
                item?;
            }
            std::future::pending::<()>().await;
            Ok(Value::Nil)
        }
    });
    let server = server_with(Server::builder().service(svc.into_service())).await;
    let mut ws = raw_connect(&server.url(), Some("wsp.v1.msgpack")).await;
    send_bin(&mut ws, hello_bytes()).await;
    let open = arr(vec![
        Value::from(10),
        Value::from(7),
        Value::from("up.Up/sum"),
        Value::from(200),
        arr(vec![]),
    ]);
    send_bin(&mut ws, mp(&open)).await;
    send_bin(
        &mut ws,
        mp(&arr(vec![Value::from(12), Value::from(7), Value::from(1)])),
    )
    .await;
    loop {
        let frame = decode(&next_msg(&mut ws).await);
        if frame[0] == Value::from(5) {
            assert_eq!(frame[1], Value::from(7));
            assert_eq!(frame[3], Value::from("deadline exceeded"), "{frame:?}");
            break;
        }
    }
    within(5, dropped_rx)
        .await
        .expect("the handler was stopped");
}

/// A hand-written service that answers every method as unary: an UPLOAD or DUPLEX to it is
/// the wrong kind of call, so UNKNOWN_METHOD, not a REPLY.
struct UnaryOnly;

impl wsp_runtime::Service for UnaryOnly {
    fn name(&self) -> &str {
        "u.U"
    }

    fn call(&self, request: wsp_runtime::Request<'_>) -> wsp_runtime::Handler {
        wsp_runtime::Handler::unary(request.ctx, async { Ok::<_, ServiceError>(1u8) })
    }
}

#[tokio::test]
async fn an_upload_to_a_unary_handler_is_an_unknown_method() {
    let server = server_with(Server::builder().service(Arc::new(UnaryOnly))).await;
    let client = client_of(&server, Codec::MsgPack).await;
    let one: u8 = within(5, client.call("u.U/any", &(), CallOptions::new()))
        .await
        .unwrap();
    assert_eq!(one, 1);
    let r: Result<u8, CallError> = within(
        5,
        client.upload("u.U/any", &(), numbers(3), CallOptions::new()),
    )
    .await;
    assert!(matches!(r, Err(CallError::UnknownMethod(_))), "{r:?}");
    let items: Vec<Result<u8, CallError>> = within(
        5,
        client
            .duplex("u.U/any", &(), numbers(3), CallOptions::new())
            .collect::<Vec<_>>(),
    )
    .await;
    assert!(
        matches!(items.as_slice(), [Err(CallError::UnknownMethod(_))]),
        "{items:?}"
    );
}

/// The untyped calls write non-finite floats in JSON as PROTOCOL §5 says, items included.
#[tokio::test]
async fn untyped_uploads_carry_non_finite_floats_in_json() {
    let svc = FnService::new("f.F").upload("first", |_, _, mut items| async move {
        Ok(items.next().await.transpose()?.unwrap_or(Value::Nil))
    });
    let server = server_with(Server::builder().service(svc.into_service())).await;
    let client = client_of(&server, Codec::Json).await;
    let items = futures_util::stream::iter(vec![Value::F64(f64::NEG_INFINITY)]);
    let first = within(
        5,
        client.upload_value("f.F/first", vec![], items, CallOptions::new()),
    )
    .await
    .unwrap();
    // Not null: the text, as an untyped JSON reader sees it.
    assert_eq!(first, Value::from("-Infinity"));
}
