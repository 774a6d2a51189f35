//! wsp on a route of an axum application (`cargo run -p wsp-examples --bin axum-app`): one
//! port serves `GET /health`, `GET /metrics` and the wsp route `/wsp`; a typed client calls
//! `math.Math` there, and the call shows in the metrics.

use std::error::Error;
use std::time::Duration;

use wsp_examples::math::{MathClient, MathServer};
use wsp_examples::{Calculator, axum_app};
use wsp_runtime::{Client, Server};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    // The Prometheus recorder collects what wsp records; /metrics renders it.
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;
    let wsp = Server::builder()
        .service(MathServer::new(Calculator).into_service())
        .build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, axum_app(wsp, Some(metrics))).await });
    println!("axum app on http://{addr}: GET /health, GET /metrics, wsp on ws://{addr}/wsp");

    let health = http_get(addr, "/health").await?;
    println!("GET /health -> {health}");
    let client = Client::builder(format!("ws://{addr}/wsp")).build();
    client.connect().await?;
    let math = MathClient::from_caller(client.caller()).with_timeout(Duration::from_secs(5));
    println!(
        "math.add([1, 2, 3]) over /wsp = {}",
        math.add(vec![1, 2, 3]).await?
    );
    client.close(1000, "done").await?;
    let scraped = http_get(addr, "/metrics").await?;
    for line in scraped.lines().filter(|l| l.starts_with("wsp_calls_total")) {
        println!("GET /metrics: {line}");
    }
    Ok(())
}

/// A minimal HTTP/1.1 GET: the status line and the body.
async fn http_get(addr: std::net::SocketAddr, path: &str) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    tcp.read_to_string(&mut response).await?;
    let status = response.lines().next().unwrap_or("").to_owned();
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    Ok(format!("{status} {body}"))
}
