//! Calls a handler makes inherit the deadline of the call it serves and end with it.

mod common;

use std::time::Duration;

use common::*;
use tokio::sync::mpsc;
use tokio::time::Instant;
use wsp_runtime::{
    CallError, CallOptions, Client, FnService, ReconnectPolicy, Server, Service, Value,
};

/// Reports `what` when dropped (a handler future dropped by the runtime).
struct OnDrop(mpsc::UnboundedSender<&'static str>, &'static str);

impl Drop for OnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(self.1);
    }
}

type InnerOutcome = (Result<Value, CallError>, Duration);

/// `a.A/relay`: calls `c.C/slow` back on the caller (default options) and reports the inner
/// call's outcome and how long it took.
fn relay(report: mpsc::UnboundedSender<InnerOutcome>) -> std::sync::Arc<dyn Service> {
    FnService::new("a.A")
        .unary("relay", move |ctx, _| {
            let report = report.clone();
            async move {
                let started = Instant::now();
                let r = ctx.caller().call_value("c.C/slow", vec![]).await;
                let failed = r.as_ref().err().cloned();
                let _ = report.send((r, started.elapsed()));
                match failed {
                    Some(e) => Err(e.into()),
                    None => Ok(Value::Nil),
                }
            }
        })
        .into_service()
}

/// `c.C/slow` (served by the client): reports the time left by its deadline when it starts,
/// then `"cancelled"` when its context says so and `"dropped"` when the runtime drops it;
/// sleeps 5 s.
fn slow(
    started: mpsc::UnboundedSender<Option<Duration>>,
    ended: mpsc::UnboundedSender<&'static str>,
) -> std::sync::Arc<dyn Service> {
    FnService::new("c.C")
        .unary("slow", move |ctx, _| {
            let started = started.clone();
            let ended = ended.clone();
            async move {
                let left = ctx.deadline().map(|d| d - Instant::now());
                let _ = started.send(left);
                let watch = ctx.clone();
                let cancelled = ended.clone();
                tokio::spawn(async move {
                    watch.cancelled().await;
                    let _ = cancelled.send("cancelled");
                });
                let _dropped = OnDrop(ended, "dropped");
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok(Value::from("slept"))
            }
        })
        .into_service()
}

struct Setup {
    _server: Server,
    client: Client,
    inner: mpsc::UnboundedReceiver<InnerOutcome>,
    started: mpsc::UnboundedReceiver<Option<Duration>>,
    ended: mpsc::UnboundedReceiver<&'static str>,
}

async fn setup() -> Setup {
    let (inner_tx, inner) = mpsc::unbounded_channel();
    let (started_tx, started) = mpsc::unbounded_channel();
    let (ended_tx, ended) = mpsc::unbounded_channel();
    let server = server_with(
        Server::builder()
            .config(test_config())
            .service(relay(inner_tx)),
    )
    .await;
    let client = Client::builder(server.url())
        .config(test_config())
        .reconnect(ReconnectPolicy::disabled())
        .service(slow(started_tx, ended_tx))
        .build();
    within(5, client.connect()).await.unwrap();
    Setup {
        _server: server,
        client,
        inner,
        started,
        ended,
    }
}

/// Waits for both `"cancelled"` and `"dropped"` from the slow handler.
async fn both_ended(ended: &mut mpsc::UnboundedReceiver<&'static str>) {
    let mut seen = Vec::new();
    while seen.len() < 2 {
        seen.push(within(5, ended.recv()).await.expect("handler reports"));
    }
    seen.sort_unstable();
    assert_eq!(seen, ["cancelled", "dropped"]);
}

#[tokio::test]
async fn a_callback_ends_at_the_deadline_of_the_call_it_serves() {
    let mut s = setup().await;
    let outer = within(
        5,
        s.client.call_value_with(
            "a.A/relay",
            vec![],
            CallOptions::new().timeout(Duration::from_millis(300)),
        ),
    )
    .await;
    assert!(
        matches!(outer, Err(CallError::DeadlineExceeded)),
        "{outer:?}"
    );
    // The callback was sent with what was left of 300 ms, not the default 30 s…
    let left = within(5, s.started.recv())
        .await
        .unwrap()
        .expect("a deadline");
    assert!(left <= Duration::from_millis(300), "{left:?}");
    // …failed in the handler with DeadlineExceeded at about 300 ms…
    let (inner, took) = within(5, s.inner.recv())
        .await
        .expect("the handler saw it end");
    assert!(
        matches!(inner, Err(CallError::DeadlineExceeded)),
        "{inner:?}"
    );
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_secs(2),
        "{took:?}"
    );
    // …and the client-side handler was stopped and told.
    both_ended(&mut s.ended).await;
}

#[tokio::test]
async fn a_callback_is_cancelled_with_the_call_it_serves() {
    let mut s = setup().await;
    let outer = tokio::spawn({
        let c = s.client.clone();
        async move {
            c.call_value_with("a.A/relay", vec![], CallOptions::new().no_deadline())
                .await
        }
    });
    // The callback runs (with the default deadline of its own, the served call having none)…
    let left = within(5, s.started.recv())
        .await
        .unwrap()
        .expect("a deadline");
    assert!(left > Duration::from_secs(20), "{left:?}");
    // …until the client drops the outer call: CANCEL, which ends the relay handler, whose
    // callback is cancelled in turn (CANCEL to the client).
    outer.abort();
    both_ended(&mut s.ended).await;
    assert!(s.inner.try_recv().is_err(), "the relay handler was dropped");
}

#[tokio::test]
async fn calls_through_another_client_inherit_the_deadline() {
    // b.B/left answers how many milliseconds its deadline leaves.
    let left = FnService::new("b.B").unary("left", |ctx, _| async move {
        let ms = ctx
            .deadline()
            .map(|d| (d - Instant::now()).as_millis() as u64);
        Ok(ms.map_or(Value::Nil, Value::from))
    });
    let backend = server_with(Server::builder().service(left.into_service())).await;
    let to_backend = Client::builder(backend.url()).build();
    within(5, to_backend.connect()).await.unwrap();
    let via = FnService::new("a.A")
        .unary("via", move |_, args| {
            let c = to_backend.clone();
            async move {
                let opts = match args.first().and_then(Value::as_u64) {
                    Some(ms) => CallOptions::new().timeout(Duration::from_millis(ms)),
                    None => CallOptions::new(),
                };
                Ok(c.call_value_with("b.B/left", vec![], opts).await?)
            }
        })
        .into_service();
    let front = server_with(Server::builder().service(via)).await;
    let client = Client::builder(front.url()).build();
    within(5, client.connect()).await.unwrap();
    let ms = |v: Value| v.as_u64().expect("a deadline");
    // Served call 1 s, inner default 30 s: 1 s wins.
    let one_second = CallOptions::new().timeout(Duration::from_secs(1));
    let v = within(5, client.call_value_with("a.A/via", vec![], one_second)).await;
    assert!(ms(v.unwrap()) <= 1000);
    // Inner 100 ms is earlier: it stays.
    let v = within(
        5,
        client.call_value_with("a.A/via", vec![100.into()], one_second),
    )
    .await;
    assert!(ms(v.unwrap()) <= 100);
    // Served call without a deadline: the inner call keeps its default.
    let none = CallOptions::new().no_deadline();
    let v = within(5, client.call_value_with("a.A/via", vec![], none)).await;
    assert!(ms(v.unwrap()) > 20_000);
    // Served call with the default 30 s: the inner call gets about as much.
    let v = within(
        5,
        client.call_value_with("a.A/via", vec![], CallOptions::new()),
    )
    .await;
    assert!(ms(v.unwrap()) > 20_000);
}
