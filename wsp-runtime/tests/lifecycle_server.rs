//! A server's life: awaiting its close, and serving until a shutdown signal with a graceful
//! close.

mod common;

use std::time::Duration;

use common::*;
use tokio::sync::oneshot;
use wsp_runtime::{Client, Codec, ReconnectPolicy, Server};

fn one_shot_client(server: &Server) -> Client {
    Client::builder(server.url())
        .config(test_config())
        .reconnect(ReconnectPolicy::disabled())
        .build()
}

#[tokio::test]
async fn closed_resolves_once_close_is_called_elsewhere() {
    let server = math_server().await;
    let client = one_shot_client(&server);
    within(5, client.connect()).await.unwrap();
    let waiting = tokio::spawn({
        let s = server.clone();
        async move { s.closed().await }
    });
    // Open, so not closed.
    assert!(
        tokio::time::timeout(Duration::from_millis(100), server.closed())
            .await
            .is_err()
    );
    assert!(!waiting.is_finished());
    let closer = tokio::spawn({
        let s = server.clone();
        async move { s.close().await }
    });
    within(5, waiting).await.unwrap();
    within(5, closer).await.unwrap();
    // By then every connection is closed, and closed() keeps resolving.
    assert!(server.connections().is_empty());
    assert_eq!(within(5, client.closed()).await.unwrap_err().code, 1001);
    within(5, server.closed()).await;
}

#[tokio::test]
async fn serve_until_closes_gracefully_when_the_signal_comes() {
    let server = math_server().await;
    let a = one_shot_client(&server);
    let b = Client::builder(server.url())
        .codec(Codec::Json)
        .reconnect(ReconnectPolicy::disabled())
        .build();
    within(5, a.connect()).await.unwrap();
    within(5, b.connect()).await.unwrap();
    let (stop, signal) = oneshot::channel::<()>();
    let serving = tokio::spawn({
        let s = server.clone();
        async move { s.serve_until(signal).await }
    });
    // Serving: calls are answered.
    within(5, a.call_value("math.Math/add", vec![1.into()]))
        .await
        .unwrap();
    assert!(!serving.is_finished());
    stop.send(()).unwrap();
    within(5, serving).await.unwrap();
    // serve_until returned after the graceful close: clients got 1001, nothing is left open,
    // and nothing is accepted any more.
    for c in [&a, &b] {
        let err = within(5, c.closed()).await.unwrap_err();
        assert_eq!(
            (err.code, err.reason.as_str()),
            (1001, "server shutting down")
        );
    }
    assert!(server.connections().is_empty());
    within(5, server.closed()).await;
    let late = Client::builder(server.url())
        .retry_first_connect(false)
        .build();
    assert!(within(5, late.connect()).await.is_err());
}

#[tokio::test]
async fn serve_until_returns_when_the_server_is_closed_elsewhere() {
    let server = math_server().await;
    let serving = tokio::spawn({
        let s = server.clone();
        async move { s.serve_until(std::future::pending::<()>()).await }
    });
    within(5, server.close()).await;
    within(5, serving).await.unwrap();
}
