//! Deadlines of outgoing calls, enforced by the caller itself: against a peer that never
//! answers, with deadlines that arrive out of order, and without disturbing calls that were
//! answered in time.

mod common;

use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use wsp_runtime::{CallError, CallOptions, Client, Codec, Config, ReconnectPolicy, Value};

use common::*;

/// A peer that completes the handshake, says HELLO and never answers; it reports every frame it
/// receives as a decoded value.
async fn silent_peer() -> (String, mpsc::UnboundedReceiver<Value>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = accept_raw_hello(tcp).await;
        while let Some(Ok(m)) = ws.next().await {
            if matches!(m, Message::Binary(_)) && tx.send(decode(&m)).is_err() {
                break;
            }
        }
    });
    (format!("ws://{addr}/"), rx)
}

/// `[type, id, ...]` → `(type, id)`.
fn type_and_id(frame: &Value) -> (u64, u64) {
    let a = frame.as_array().expect("a frame is an array");
    (
        a[0].as_u64().expect("type"),
        a.get(1).and_then(Value::as_u64).unwrap_or(0),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_to_a_silent_peer_fail_at_their_own_deadlines_in_any_order() {
    let (url, mut frames) = silent_peer().await;
    let client = Client::builder(url)
        .config(Config::default().default_deadline(Some(Duration::from_secs(20))))
        .reconnect(ReconnectPolicy::disabled())
        .build();
    within(5, client.connect()).await.unwrap();
    let start = Instant::now();
    let call = |ms: u64| {
        let caller = client.caller();
        tokio::spawn(async move {
            let r = caller
                .call::<_, Value>(
                    "math.Math/add",
                    &(1, 2),
                    CallOptions::new().timeout(Duration::from_millis(ms)),
                )
                .await;
            (r, start.elapsed())
        })
    };
    // The longest deadline first: each call ends at its own deadline, not at the earliest or
    // latest one of the calls around it.
    let long = call(1500);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let short = call(150);
    let middle = call(500);
    let default = client.caller();
    let default = tokio::spawn(async move {
        tokio::time::timeout(
            Duration::from_millis(2500),
            default.call_value("math.Math/add", vec![]),
        )
        .await
    });

    // Each call ends no earlier than its own deadline and before the next longer one (not at
    // the earliest or the latest deadline around it), whatever the machine's load adds.
    let (r, short_t) = within(5, short).await.unwrap();
    assert!(matches!(r, Err(CallError::DeadlineExceeded)), "{r:?}");
    let (r, middle_t) = within(5, middle).await.unwrap();
    assert!(matches!(r, Err(CallError::DeadlineExceeded)), "{r:?}");
    let (r, long_t) = within(5, long).await.unwrap();
    assert!(matches!(r, Err(CallError::DeadlineExceeded)), "{r:?}");
    let ms = Duration::from_millis;
    assert!(
        short_t >= ms(150) && short_t < ms(500),
        "short call ended after {short_t:?}"
    );
    assert!(
        middle_t >= ms(500) && middle_t < ms(1500),
        "middle call ended after {middle_t:?}"
    );
    assert!(long_t >= ms(1500), "long call ended after {long_t:?}");
    // The call with the 20 s default deadline is still waiting.
    assert!(within(5, default).await.unwrap().is_err());

    // Each expired call was cancelled at the peer.
    let mut calls = Vec::new();
    let mut cancels = Vec::new();
    while cancels.len() < 4 {
        let (ty, id) = type_and_id(&within(5, frames.recv()).await.expect("frame"));
        match ty {
            1 => calls.push(id),
            8 => cancels.push(id),
            _ => {}
        }
    }
    calls.sort_unstable();
    cancels.sort_unstable();
    assert_eq!(calls.len(), 4);
    assert_eq!(cancels, calls, "every call was cancelled once");
    assert_eq!(client.stats().calls_in_flight, 0);
}

#[tokio::test]
async fn calls_answered_in_time_are_not_cancelled_afterwards() {
    let server = math_server().await;
    let client = client_of(&server, Codec::MsgPack).await;
    let opts = CallOptions::new().timeout(Duration::from_millis(200));
    for i in 0..100i64 {
        let sum: i64 = within(5, client.caller().call("math.Math/add", &(i, 1), opts))
            .await
            .unwrap();
        assert_eq!(sum, i + 1);
    }
    // Past every deadline: nothing more is sent for the answered calls.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let after_calls = client.stats();
    assert_eq!(after_calls.calls_in_flight, 0);
    // HELLO and the 100 CALLs; a CANCEL for an answered call would be one more.
    assert_eq!(after_calls.frames_sent, 101);
    // Deadlines still work afterwards: a slow call fails at its deadline.
    let start = Instant::now();
    let r = within(
        5,
        client.caller().call::<_, Value>(
            "math.Math/sleep",
            &(5_000,),
            CallOptions::new().timeout(Duration::from_millis(150)),
        ),
    )
    .await;
    assert!(matches!(r, Err(CallError::DeadlineExceeded)), "{r:?}");
    assert!(start.elapsed() < Duration::from_secs(1));
}
