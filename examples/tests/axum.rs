//! wsp mounted on an axum application: one port, `GET /health` beside the wsp route; typed
//! calls through the route; the server's origin check and asynchronous check apply there too.

use std::time::Duration;

use wsp_examples::math::{MathClient, MathServer};
use wsp_examples::{Calculator, axum_app};
use wsp_runtime::tokio_tungstenite::tungstenite::Error as WsError;
use wsp_runtime::{Client, ConnectError, ReconnectPolicy, Reject, Server};

async fn start(wsp: Server) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, axum_app(wsp, None)).await });
    addr
}

async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).await.unwrap();
    response
}

fn status(r: Result<(), ConnectError>) -> u16 {
    match r {
        Ok(()) => 101,
        Err(ConnectError::WebSocket(WsError::Http(resp))) => resp.status().as_u16(),
        Err(e) => panic!("unexpected {e}"),
    }
}

#[tokio::test]
async fn http_routes_and_typed_calls_share_one_port() {
    let wsp = Server::builder()
        .service(MathServer::new(Calculator).into_service())
        .build();
    let addr = tokio::time::timeout(Duration::from_secs(10), start(wsp.clone()))
        .await
        .unwrap();
    let health = get(addr, "/health").await;
    assert!(health.starts_with("HTTP/1.1 200 OK"), "{health}");
    assert!(health.ends_with("ok"), "{health}");
    // A plain GET of the wsp route is not an upgrade.
    assert!(get(addr, "/wsp").await.starts_with("HTTP/1.1 400"));

    let client = Client::builder(format!("ws://{addr}/wsp"))
        .reconnect(ReconnectPolicy::disabled())
        .build();
    tokio::time::timeout(Duration::from_secs(10), client.connect())
        .await
        .unwrap()
        .unwrap();
    let math = MathClient::from_caller(client.caller()).with_timeout(Duration::from_secs(5));
    assert_eq!(math.add(vec![1, 2, 3]).await.unwrap(), 6);
    let counted: Vec<u32> = futures_util::StreamExt::collect::<Vec<_>>(math.count(1, 3))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(counted, [1, 2, 3]);
    assert_eq!(
        wsp.connections().len(),
        1,
        "the route's connection is the server's"
    );
    assert!(wsp.stats().calls_received >= 2);
    client.close(1000, "done").await.unwrap();
}

#[tokio::test]
async fn the_servers_checks_apply_on_the_route() {
    let wsp = Server::builder()
        .service(MathServer::new(Calculator).into_service())
        .authenticate(|req| async move {
            match req.headers().get("authorization") {
                Some(v) if v == "Bearer good" => Ok("ada".to_owned()),
                _ => Err(Reject::new(401, "a bearer token is required")),
            }
        })
        .build();
    let addr = start(wsp).await;
    let url = format!("ws://{addr}/wsp");
    let connect = |b: wsp_runtime::ClientBuilder| async move {
        let c = b.reconnect(ReconnectPolicy::disabled()).build();
        let r = tokio::time::timeout(Duration::from_secs(10), c.connect())
            .await
            .unwrap();
        if r.is_ok() {
            c.close(1000, "done").await.unwrap();
        }
        status(r)
    };
    assert_eq!(connect(Client::builder(&url)).await, 401);
    let good = || Client::builder(&url).header("Authorization", "Bearer good");
    assert_eq!(connect(good()).await, 101);
    // The default origin policy: a page of another origin is refused.
    assert_eq!(
        connect(good().header("Origin", "https://evil.example")).await,
        403
    );
}
