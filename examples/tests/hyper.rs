//! wsp on a plain hyper server (no axum router): the application's hyper service answers the
//! upgrade request with `wsp_runtime::axum::upgrade`, and typed calls go through it.

use std::convert::Infallible;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use wsp_examples::Calculator;
use wsp_examples::math::{MathClient, MathServer};
use wsp_runtime::{Client, ReconnectPolicy, Server};

#[tokio::test]
async fn typed_calls_through_a_plain_hyper_server() {
    let wsp = Server::builder()
        .service(MathServer::new(Calculator).into_service())
        .build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = wsp.clone();
    let accept = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let server = server.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let server = server.clone();
                    async move { Ok::<_, Infallible>(wsp_runtime::axum::upgrade(&server, req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .with_upgrades()
                    .await;
            });
        }
    });

    let client = Client::builder(format!("ws://{addr}/"))
        .reconnect(ReconnectPolicy::disabled())
        .build();
    tokio::time::timeout(Duration::from_secs(10), client.connect())
        .await
        .expect("connects in time")
        .expect("connects");
    let math = MathClient::from_caller(client.caller()).with_timeout(Duration::from_secs(5));
    assert_eq!(math.add(vec![1, 2, 3]).await.unwrap(), 6);
    assert_eq!(wsp.connections().len(), 1);
    client.close(1000, "done").await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), wsp.close())
        .await
        .expect("closes in time");
    accept.abort();
}
