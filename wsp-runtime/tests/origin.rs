//! The `Origin` check of the upgrade: a browser page of another origin is refused with HTTP
//! 403 before the upgrade; clients without `Origin` pass unless the server requires one.

mod common;

use common::*;
use tokio_tungstenite::tungstenite::Error as WsError;
use wsp_runtime::{Client, ConnectError, OriginPolicy, ReconnectPolicy, Server, ServerBuilder};

/// The HTTP status a connect with `origin` gets (101 when it connects).
async fn status(server: &Server, origin: Option<&str>) -> u16 {
    let mut b = Client::builder(server.url()).reconnect(ReconnectPolicy::disabled());
    if let Some(o) = origin {
        b = b.header("Origin", o);
    }
    let client = b.build();
    match within(10, client.connect()).await {
        Ok(()) => {
            client.close(1000, "done").await.unwrap();
            101
        }
        Err(ConnectError::WebSocket(WsError::Http(resp))) => resp.status().as_u16(),
        Err(e) => panic!("unexpected {e}"),
    }
}

async fn serve(b: ServerBuilder) -> Server {
    server_with(b.config(test_config()).service(math())).await
}

#[tokio::test]
async fn by_default_only_pages_of_the_servers_own_origin_connect() {
    let server = serve(Server::builder()).await;
    let own = format!("http://{}", server.local_addr());
    assert_eq!(status(&server, None).await, 101, "a non-browser client");
    assert_eq!(status(&server, Some(&own)).await, 101, "same origin");
    assert_eq!(status(&server, Some("https://evil.example")).await, 403);
    assert_eq!(status(&server, Some("null")).await, 403, "an opaque origin");
    // Refusals cost nothing: the server serves on.
    assert_eq!(status(&server, None).await, 101);
    server.close().await;
}

#[tokio::test]
async fn an_allow_list_admits_exactly_its_origins() {
    let server =
        serve(Server::builder().origins(OriginPolicy::allow(["https://app.example"]))).await;
    assert_eq!(status(&server, Some("https://app.example")).await, 101);
    assert_eq!(status(&server, Some("https://APP.example")).await, 101);
    assert_eq!(status(&server, Some("https://app.example.evil")).await, 403);
    assert_eq!(status(&server, None).await, 101);
    server.close().await;

    let strict = serve(
        Server::builder()
            .origins(OriginPolicy::allow(["https://app.example"]))
            .require_origin(true),
    )
    .await;
    assert_eq!(status(&strict, None).await, 403);
    assert_eq!(status(&strict, Some("https://app.example")).await, 101);
    strict.close().await;

    let any = serve(Server::builder().origins(OriginPolicy::Any)).await;
    assert_eq!(status(&any, Some("https://evil.example")).await, 101);
    any.close().await;
}
