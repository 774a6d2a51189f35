//! `schemas/math.wsp` end to end over real sockets, in both codecs: unary calls with 64-bit
//! values, typed errors, streams, notifications, deadlines and cancellation.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{DropSignal, connect, serve, within};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use wsp_codegen_compile_tests::math::{self, MathClient, MathError, MathServer};
use wsp_runtime::RpcError;
use wsp_runtime::codegen::{CallOptions, Stream};
use wsp_runtime::{CallContext, CallError, Codec, Items, ServiceError};

struct MathImpl {
    logs: mpsc::UnboundedSender<String>,
    events: mpsc::UnboundedSender<&'static str>,
}

impl math::Math for MathImpl {
    async fn add(&self, _ctx: CallContext, values: Vec<i64>) -> Result<i64, RpcError<MathError>> {
        values
            .iter()
            .try_fold(0i64, |sum, v| sum.checked_add(*v))
            .ok_or_else(|| {
                MathError::Overflow {
                    operation: "add".into(),
                }
                .into()
            })
    }

    async fn divide(&self, ctx: CallContext, a: f64, b: f64) -> Result<f64, RpcError<MathError>> {
        if a == 42.0 {
            // A slow call: it only ends by being dropped (deadline or cancellation).
            let _ = self.events.send(if ctx.deadline().is_some() {
                "deadline set"
            } else {
                "no deadline"
            });
            let _guard = DropSignal(self.events.clone(), "handler dropped");
            std::future::pending::<()>().await;
        }
        // Runtime errors beside the declared one: what a handler says when its database is
        // down, a safe message for a bug, and a failed call of its own passed on with `?`.
        if a == 503.0 {
            return Err(RpcError::unavailable("the database is down"));
        }
        if a == 500.0 {
            return Err(RpcError::internal("the ledger could not be read"));
        }
        if a == 400.0 {
            let _: f64 = ctx
                .caller()
                .call("nowhere.Nothing/at_all", &[(); 0], CallOptions::new())
                .await?;
        }
        if b == 0.0 {
            return Err(MathError::DivisionByZero.into());
        }
        Ok(a / b)
    }

    fn count(
        self: Arc<Self>,
        _ctx: CallContext,
        from: u32,
        to: u32,
    ) -> impl Stream<Item = Result<u32, ServiceError>> + Send + 'static {
        futures_util::stream::iter((from..=to).map(Ok))
    }

    async fn sum(
        &self,
        _ctx: CallContext,
        mut values: Items<i64>,
    ) -> Result<i64, RpcError<MathError>> {
        let mut total = 0i64;
        while let Some(value) = values.next().await {
            total = total.checked_add(value?).ok_or(MathError::Overflow {
                operation: "sum".into(),
            })?;
        }
        Ok(total)
    }

    fn running(
        self: Arc<Self>,
        _ctx: CallContext,
        start: i64,
        values: Items<i64>,
    ) -> impl Stream<Item = Result<i64, RpcError<MathError>>> + Send + 'static {
        futures_util::stream::unfold(Some((values, start)), |state| async move {
            let (mut values, total) = state?;
            let value = match values.next().await? {
                Ok(value) => value,
                Err(e) => return Some((Err(e.into()), None)),
            };
            Some(match total.checked_add(value) {
                Some(total) => (Ok(total), Some((values, total))),
                None => {
                    let overflow = MathError::Overflow {
                        operation: "running".into(),
                    };
                    (Err(overflow.into()), None)
                }
            })
        })
    }

    async fn reset(&self, _ctx: CallContext) -> Result<(), ServiceError> {
        Ok(())
    }

    async fn log(&self, _ctx: CallContext, line: String) {
        let _ = self.logs.send(line);
    }
}

struct Setup {
    server: wsp_runtime::Server,
    client: wsp_runtime::Client,
    math: MathClient,
    logs: mpsc::UnboundedReceiver<String>,
    events: mpsc::UnboundedReceiver<&'static str>,
}

async fn setup(codec: Codec) -> Setup {
    let (log_tx, logs) = mpsc::unbounded_channel();
    let (event_tx, events) = mpsc::unbounded_channel();
    let service = MathServer::new(MathImpl {
        logs: log_tx,
        events: event_tx,
    });
    assert_eq!(MathServer::<MathImpl>::NAME, "math.Math");
    let server = serve(vec![service.into_service()]).await;
    let client = connect(&server, codec, vec![]).await;
    let math = MathClient::from_caller(client.caller());
    Setup {
        server,
        client,
        math,
        logs,
        events,
    }
}

async fn unary_stream_notify_and_errors(codec: Codec) {
    let mut s = setup(codec).await;
    assert_eq!(within(s.math.add(vec![1, 2, 3])).await.unwrap(), 6);
    assert_eq!(
        within(s.math.add(vec![i64::MAX, -1])).await.unwrap(),
        i64::MAX - 1
    );
    match within(s.math.add(vec![i64::MAX, 1])).await {
        Err(RpcError::App(MathError::Overflow { operation })) => assert_eq!(operation, "add"),
        other => panic!("expected Overflow, got {other:?}"),
    }
    assert_eq!(within(s.math.divide(1.0, 4.0)).await.unwrap(), 0.25);
    let err = within(s.math.divide(1.0, 0.0)).await.unwrap_err();
    assert_eq!(err.app(), Some(&MathError::DivisionByZero));
    // Errors display as sentences, not as their Debug form.
    assert_eq!(err.to_string(), "division by zero");
    match within(s.math.divide(503.0, 1.0)).await {
        Err(RpcError::Call(CallError::Unavailable(m))) => assert_eq!(m, "the database is down"),
        other => panic!("expected UNAVAILABLE, got {other:?}"),
    }
    let err = within(s.math.divide(503.0, 1.0)).await.unwrap_err();
    assert_eq!(err.to_string(), "unavailable: the database is down");
    assert_eq!(err.code(), Some(wsp_runtime::ErrorCode::Unavailable));
    match within(s.math.divide(500.0, 1.0)).await {
        Err(RpcError::Call(CallError::Internal(m))) => {
            assert_eq!(m, "the ledger could not be read")
        }
        other => panic!("expected INTERNAL, got {other:?}"),
    }
    // The handler's own call failed (no such method at the client): the caller learns only
    // that the handler failed.
    match within(s.math.divide(400.0, 1.0)).await {
        Err(RpcError::Call(CallError::Internal(m))) => assert_eq!(m, "internal error"),
        other => panic!("expected INTERNAL, got {other:?}"),
    }
    within(s.math.reset()).await.unwrap();
    // The adapter announced its schema fingerprint in HELLO.
    let peer = s.client.peer().expect("connected");
    let services = peer.peer_services().expect("HELLO received");
    assert_eq!(
        services.get("math.Math").map(String::as_str),
        Some(MathServer::<MathImpl>::FINGERPRINT)
    );

    let items: Vec<u32> = within(s.math.count(3, 7).map(Result::unwrap).collect()).await;
    assert_eq!(items, [3, 4, 5, 6, 7]);
    let empty: Vec<_> = within(s.math.count(2, 1).collect::<Vec<_>>()).await;
    assert!(empty.is_empty());

    within(s.math.log("hello")).await.unwrap();
    assert_eq!(within(s.logs.recv()).await.as_deref(), Some("hello"));

    // Concurrent calls through `&self` on clones.
    let clone = s.math.clone();
    let (a, b) = within(async { tokio::join!(s.math.add(vec![1]), clone.add(vec![2])) }).await;
    assert_eq!((a.unwrap(), b.unwrap()), (1, 2));

    within(s.client.close(1000, "done")).await.unwrap();
    within(s.server.close()).await;
}

#[tokio::test]
async fn msgpack_unary_stream_notify_and_errors() {
    unary_stream_notify_and_errors(Codec::MsgPack).await;
}

#[tokio::test]
async fn json_unary_stream_notify_and_errors() {
    unary_stream_notify_and_errors(Codec::Json).await;
}

#[tokio::test]
async fn deadline_fails_the_call_and_aborts_the_handler() {
    let mut s = setup(Codec::MsgPack).await;
    let err = within(
        s.math
            .with_timeout(Duration::from_millis(100))
            .divide(42.0, 1.0),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, RpcError::Call(CallError::DeadlineExceeded)),
        "{err:?}"
    );
    assert_eq!(within(s.events.recv()).await, Some("deadline set"));
    assert_eq!(within(s.events.recv()).await, Some("handler dropped"));
    within(s.server.close()).await;
}

#[tokio::test]
async fn dropping_the_call_cancels_the_handler() {
    let mut s = setup(Codec::MsgPack).await;
    let slow = s.math.with_options(CallOptions::new().no_deadline());
    let call = slow.divide(42.0, 1.0);
    assert!(
        tokio::time::timeout(Duration::from_millis(100), call)
            .await
            .is_err()
    );
    assert_eq!(within(s.events.recv()).await, Some("no deadline"));
    assert_eq!(within(s.events.recv()).await, Some("handler dropped"));
    // The connection is still fine.
    assert_eq!(within(s.math.add(vec![2, 2])).await.unwrap(), 4);
    within(s.server.close()).await;
}

#[tokio::test]
async fn unknown_method_and_bad_arguments() {
    let s = setup(Codec::MsgPack).await;
    let err = within(s.client.call_value("math.Math/nope", vec![]))
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::UnknownMethod(_)), "{err:?}");
    // A stream method called as unary is the wrong kind.
    let err = within(
        s.client
            .call_value("math.Math/count", vec![1.into(), 2.into()]),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, CallError::UnknownMethod(_)), "{err:?}");
    // A missing required argument and a wrong type.
    let err = within(s.client.call_value("math.Math/divide", vec![1.0.into()]))
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::InvalidArguments(_)), "{err:?}");
    let err = within(s.client.call_value("math.Math/add", vec!["x".into()]))
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::InvalidArguments(_)), "{err:?}");
    // Extra trailing arguments are ignored.
    let sum = within(s.client.call_value(
        "math.Math/add",
        vec![vec![wsp_runtime::Value::from(5)].into(), "extra".into()],
    ))
    .await
    .unwrap();
    assert_eq!(sum, wsp_runtime::Value::from(5));
    within(s.server.close()).await;
}

/// The client stream `sum` and the bidirectional `running`, typed, with 64-bit values (decimal
/// strings in JSON) and the declared error after items.
#[tokio::test]
async fn client_and_bidirectional_streams_in_both_codecs() {
    for codec in [Codec::MsgPack, Codec::Json] {
        let s = setup(codec).await;
        let big = 1i64 << 60;
        let values = futures_util::stream::iter(vec![big, 1, 2, 3]);
        assert_eq!(within(s.math.sum(values)).await.unwrap(), big + 6);
        let none = futures_util::stream::iter(Vec::<i64>::new());
        assert_eq!(within(s.math.sum(none)).await.unwrap(), 0);
        // The declared error, after some items were taken.
        let over = futures_util::stream::iter(vec![1, i64::MAX, 5]);
        match within(s.math.sum(over)).await {
            Err(RpcError::App(MathError::Overflow { operation })) => assert_eq!(operation, "sum"),
            other => panic!("expected Overflow, got {other:?}"),
        }

        let totals: Vec<i64> = within(
            s.math
                .running(big, futures_util::stream::iter(vec![1, 2, 3]))
                .map(Result::unwrap)
                .collect(),
        )
        .await;
        assert_eq!(totals, [big + 1, big + 3, big + 6]);
        // Items, then the declared error: the stream ends with it.
        let got: Vec<_> = within(
            s.math
                .running(0, futures_util::stream::iter(vec![1, i64::MAX, 7]))
                .collect::<Vec<_>>(),
        )
        .await;
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(*got[0].as_ref().unwrap(), 1);
        match &got[1] {
            Err(RpcError::App(MathError::Overflow { operation })) => {
                assert_eq!(operation, "running")
            }
            other => panic!("expected Overflow, got {other:?}"),
        }
        within(s.client.close(1000, "done")).await.unwrap();
        within(s.server.close()).await;
    }
}

/// Untyped values carry non-finite floats as JSON text too (PROTOCOL §5), so a typed peer reads
/// them: `call_value` arguments to a typed server, and an `FnService` result to a typed client.
#[tokio::test]
async fn untyped_non_finite_floats_reach_typed_peers_in_json() {
    use wsp_runtime::{FnService, Value};
    let s = setup(Codec::Json).await;
    let r = within(s.client.call_value(
        "math.Math/divide",
        vec![Value::F64(f64::INFINITY), Value::F64(2.0)],
    ))
    .await
    .unwrap();
    // The typed server got ∞ (not null, which would not decode) and answered ∞, which an
    // untyped reader sees as the text.
    assert_eq!(r, Value::from("Infinity"));
    let r = within(s.client.call_value(
        "math.Math/divide",
        vec![Value::F64(f64::NAN), Value::F32(1.0)],
    ))
    .await
    .unwrap();
    assert_eq!(r, Value::from("NaN"));

    let untyped = FnService::new("math.Math").unary("divide", |_, _| async move {
        Ok(Value::F64(f64::NEG_INFINITY))
    });
    let server = serve(vec![untyped.into_service()]).await;
    let client = connect(&server, Codec::Json, vec![]).await;
    let typed = MathClient::from_caller(client.caller());
    assert_eq!(
        within(typed.divide(1.0, 2.0)).await.unwrap(),
        f64::NEG_INFINITY
    );
    within(client.close(1000, "done")).await.unwrap();
    within(server.close()).await;
}
