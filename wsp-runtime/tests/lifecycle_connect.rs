//! The first connect: retried under the reconnect policy while the failure is one retrying can
//! fix (nothing listening yet), failed at once when it is an answer (HTTP 401), and given up
//! with the last error once the policy's attempts are spent.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use wsp_runtime::{Client, ConnectError, ConnectionState, ReconnectPolicy, Reject, Server, Value};

/// A loopback address and port of this test's own that nothing listens on (bound, then
/// released): in 127.0.0.0/8 away from 127.0.0.1, where other processes' ephemeral ports are.
fn free_own_address(test: u8) -> std::net::SocketAddr {
    let ip = format!("127.48.{}.{}", std::process::id() % 250 + 1, test);
    let l = std::net::TcpListener::bind(format!("{ip}:0")).expect("binds");
    l.local_addr().unwrap()
}

fn quick_retries() -> ReconnectPolicy {
    ReconnectPolicy::default()
        .initial_delay(Duration::from_millis(50))
        .jitter(0.0)
}

fn io_refused(e: &ConnectError) -> bool {
    matches!(
        e,
        ConnectError::WebSocket(tokio_tungstenite::tungstenite::Error::Io(_))
    )
}

#[tokio::test]
async fn first_connect_waits_for_a_server_that_starts_later() {
    let addr = free_own_address(1);
    let client = Client::builder(format!("ws://{addr}/"))
        .reconnect(quick_retries())
        .build();
    let connecting = tokio::spawn({
        let c = client.clone();
        async move { c.connect().await }
    });
    // Let a few attempts fail (connection refused) before the server is there.
    let mut state = client.watch_state();
    within(5, state.wait_for(|s| *s == ConnectionState::Connecting))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!connecting.is_finished(), "the first failure was returned");
    let server = Server::builder()
        .config(test_config())
        .service(math())
        .bind(addr)
        .await
        .expect("binds the port the client tries");
    within(5, connecting)
        .await
        .unwrap()
        .expect("connects once the server is up");
    assert_eq!(client.state(), ConnectionState::Connected);
    let sum = within(
        5,
        client.call_value("math.Math/add", vec![1.into(), 2.into()]),
    )
    .await
    .unwrap();
    assert_eq!(sum, Value::from(3));
    assert_eq!(server.connections().len(), 1);
}

#[tokio::test]
async fn a_refused_first_connect_fails_at_once() {
    let attempts = Arc::new(AtomicUsize::new(0));
    let seen = attempts.clone();
    let server = server_with(Server::builder().on_accept(move |_| {
        seen.fetch_add(1, Ordering::SeqCst);
        Err(Reject::new(401, "who are you?"))
    }))
    .await;
    // Retries are on, and the first would come after a second: it must not come at all.
    let client = Client::builder(server.url())
        .reconnect(ReconnectPolicy::default().initial_delay(Duration::from_secs(1)))
        .build();
    let started = Instant::now();
    match within(5, client.connect()).await {
        Err(ConnectError::WebSocket(tokio_tungstenite::tungstenite::Error::Http(resp))) => {
            assert_eq!(resp.status(), 401)
        }
        other => panic!("{other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
    assert_eq!(client.state(), ConnectionState::Disconnected);
}

#[tokio::test]
async fn exhausted_retries_return_the_last_error() {
    let addr = free_own_address(2);
    let policy = quick_retries()
        .initial_delay(Duration::from_millis(20))
        .factor(1.0)
        .max_attempts(Some(3));
    let client = Client::builder(format!("ws://{addr}/"))
        .reconnect(policy)
        .build();
    let started = Instant::now();
    let err = within(5, client.connect()).await.unwrap_err();
    // The first attempt and three retries, 20 ms apart.
    assert!(
        started.elapsed() >= Duration::from_millis(60),
        "{:?}",
        started.elapsed()
    );
    assert!(io_refused(&err), "{err:?}");
    assert_eq!(client.state(), ConnectionState::Disconnected);
}

#[tokio::test]
async fn without_first_connect_retries_the_first_failure_is_returned() {
    let addr = free_own_address(3);
    let client = Client::builder(format!("ws://{addr}/"))
        .reconnect(ReconnectPolicy::default().initial_delay(Duration::from_secs(1)))
        .retry_first_connect(false)
        .build();
    let started = Instant::now();
    let err = within(5, client.connect()).await.unwrap_err();
    assert!(io_refused(&err), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    // Reconnecting disabled means no retries either.
    let off = Client::builder(format!("ws://{addr}/"))
        .reconnect(ReconnectPolicy::disabled().initial_delay(Duration::from_secs(1)))
        .build();
    let started = Instant::now();
    assert!(io_refused(&within(5, off.connect()).await.unwrap_err()));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn close_and_disconnect_end_a_retrying_connect() {
    let addr = free_own_address(4);
    for close in [true, false] {
        let client = Client::builder(format!("ws://{addr}/"))
            .reconnect(quick_retries())
            .build();
        let connecting = tokio::spawn({
            let c = client.clone();
            async move { c.connect().await }
        });
        let mut state = client.watch_state();
        within(5, state.wait_for(|s| *s == ConnectionState::Connecting))
            .await
            .unwrap();
        if close {
            within(5, client.close(1000, "bye")).await.unwrap();
        } else {
            within(5, client.disconnect()).await;
        }
        let r = within(5, connecting).await.unwrap();
        assert!(matches!(r, Err(ConnectError::Closed)), "{r:?}");
        let expected = if close {
            ConnectionState::Closed
        } else {
            ConnectionState::Disconnected
        };
        assert_eq!(client.state(), expected);
    }
}

#[tokio::test]
async fn a_dropped_connect_leaves_the_client_disconnected() {
    let addr = free_own_address(5);
    let client = Client::builder(format!("ws://{addr}/"))
        .reconnect(quick_retries())
        .fail_fast(true)
        .build();
    let r = tokio::time::timeout(Duration::from_millis(200), client.connect()).await;
    assert!(
        r.is_err(),
        "nothing listens, so it was still retrying: {r:?}"
    );
    assert_eq!(client.state(), ConnectionState::Disconnected);
}
