//! `/metrics` of the axum example scraped and parsed: the calls just made, by method and
//! outcome, their latency, and the server's statistics. One test per process: the recorder is
//! global.

use std::collections::HashMap;
use std::time::Duration;

use wsp_examples::math::{MathClient, MathError, MathServer};
use wsp_examples::{Calculator, axum_app};
use wsp_runtime::RpcError;
use wsp_runtime::{Client, ReconnectPolicy, Server};

/// `GET path`: the body.
async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response.split("\r\n\r\n").nth(1).unwrap_or("").to_owned()
}

/// Prometheus text format: `name{labels} value` lines (comments skipped).
fn parse(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            Some((key.to_owned(), value.parse().ok()?))
        })
        .collect()
}

#[tokio::test]
async fn metrics_count_the_calls_just_made() {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .unwrap();
    let wsp = Server::builder()
        .service(MathServer::new(Calculator).into_service())
        .build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, axum_app(wsp, Some(handle))).await });

    let client = Client::builder(format!("ws://{addr}/wsp"))
        .reconnect(ReconnectPolicy::disabled())
        .build();
    tokio::time::timeout(Duration::from_secs(10), client.connect())
        .await
        .unwrap()
        .unwrap();
    let math = MathClient::from_caller(client.caller()).with_timeout(Duration::from_secs(5));
    for i in 0..3 {
        assert_eq!(math.add(vec![i, 1]).await.unwrap(), i + 1);
    }
    assert!(matches!(
        math.divide(1.0, 0.0).await,
        Err(RpcError::App(MathError::DivisionByZero))
    ));
    client.close(1000, "done").await.unwrap();

    let metrics = parse(&get(addr, "/metrics").await);
    let at = |k: &str| {
        *metrics
            .get(k)
            .unwrap_or_else(|| panic!("no {k} in {metrics:#?}"))
    };
    assert_eq!(
        at(r#"wsp_calls_total{method="math.Math/add",outcome="ok"}"#),
        3.0
    );
    assert_eq!(
        at(r#"wsp_calls_total{method="math.Math/divide",outcome="APPLICATION"}"#),
        1.0
    );
    assert_eq!(at(r#"wsp_call_seconds_count{method="math.Math/add"}"#), 3.0);
    assert!(at(r#"wsp_call_seconds_sum{method="math.Math/add"}"#) > 0.0);
    assert_eq!(at("wsp_server_calls_received"), 4.0);
    assert_eq!(at("wsp_server_connections_opened"), 1.0);

    // The relay's statistics, through the same recorder.
    let relay = wsp_relay::Relay::builder()
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let host = Server::builder()
        .service(MathServer::new(Calculator).into_service())
        .bind_relay(wsp_runtime::relay::RelayOptions::new(
            relay.url(),
            wsp_runtime::relay::Identity::generate(),
        ))
        .await
        .unwrap();
    let caller = Client::via_relay(relay.url(), host.public_key())
        .reconnect(ReconnectPolicy::disabled())
        .build();
    caller.connect().await.unwrap();
    let math = MathClient::from_caller(caller.caller()).with_timeout(Duration::from_secs(5));
    assert_eq!(math.add(vec![2, 2]).await.unwrap(), 4);
    caller.close(1000, "done").await.unwrap();
    relay.export_metrics();
    let metrics = parse(&get(addr, "/metrics").await);
    assert_eq!(
        metrics.get("wsp_relay_handovers"),
        Some(&1.0),
        "{metrics:#?}"
    );
    assert!(
        metrics
            .get("wsp_relay_frames_relayed")
            .is_some_and(|n| *n > 3.0)
    );
    host.close().await;
    relay.close().await;
}
