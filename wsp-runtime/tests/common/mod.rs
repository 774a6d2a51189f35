//! Helpers shared by the integration tests: real sockets on 127.0.0.1, port 0.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use wsp_runtime::{
    Client, Codec, Config, FnService, ReconnectPolicy, Server, ServerBuilder, Service,
    ServiceError, Value,
};

pub type RawWs = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Runs `f`, failing the test if it takes longer than `secs`.
pub async fn within<F: Future>(secs: u64, f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .expect("test step timed out")
}

/// Polls `check` every 10 ms until it holds; fails the test after `secs`.
pub async fn eventually(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let wait = async {
        while !check() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(secs), wait)
        .await
        .is_err()
    {
        panic!("timed out waiting for: {what}");
    }
}

/// Sum of all integers in the arguments, flattening lists (`add(1, 2)` and `add([1, 2])`).
fn sum(v: &[Value]) -> i64 {
    v.iter()
        .map(|x| {
            x.as_i64()
                .unwrap_or_else(|| x.as_array().map(|a| sum(a)).unwrap_or(0))
        })
        .sum()
}

/// `math.Math`: add, echo, panic, sleep(ms), count(n) stream, log notification.
pub fn math() -> Arc<dyn Service> {
    FnService::new("math.Math")
        .unary("add", |_, args| async move { Ok(Value::from(sum(&args))) })
        .unary("echo", |_, args| async move {
            Ok(args.into_iter().next().unwrap_or(Value::Nil))
        })
        .unary("panic", |_, _| async move {
            if true {
                panic!("secret detail in /home/user/src/handler.rs:42");
            }
            Ok(Value::Nil)
        })
        .unary("sleep", |_, args| async move {
            let ms = args.first().and_then(Value::as_u64).unwrap_or(10_000);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(Value::from("slept"))
        })
        .unary("fail", |_, _| async move {
            Err(ServiceError::unavailable("try later"))
        })
        .stream("count", |_, args| {
            let n = args.first().and_then(Value::as_u64).unwrap_or(0);
            futures_util::stream::iter((0..n).map(|i| Ok(Value::from(i))))
        })
        .notify("log", |_, _| {})
        .into_service()
}

/// Quick keep-alive and close timing for tests.
pub fn test_config() -> Config {
    Config::default().close_timeout(Duration::from_millis(500))
}

pub async fn server_with(builder: ServerBuilder) -> Server {
    builder.bind("127.0.0.1:0").await.expect("binds")
}

pub async fn math_server() -> Server {
    server_with(Server::builder().config(test_config()).service(math())).await
}

pub async fn client_of(server: &Server, codec: Codec) -> Client {
    let c = Client::builder(server.url())
        .codec(codec)
        .config(test_config())
        .reconnect(ReconnectPolicy::default().initial_delay(Duration::from_millis(50)))
        .build();
    within(5, c.connect()).await.expect("connects");
    c
}

/// A raw tokio-tungstenite client offering `subprotocol` (if any).
pub async fn raw_connect(url: &str, subprotocol: Option<&str>) -> RawWs {
    let mut req = url.into_client_request().expect("valid url");
    if let Some(p) = subprotocol {
        req.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_str(p).expect("valid header"),
        );
    }
    let (ws, _) = within(5, tokio_tungstenite::connect_async(req))
        .await
        .expect("raw connect");
    ws
}

/// Accepts `tcp` as a raw WebSocket server choosing `wsp.v1.msgpack`, and sends HELLO: a peer
/// whose every further step the test writes by hand.
#[allow(clippy::result_large_err)] // the handshake callback's error type is tungstenite's
pub async fn accept_raw_hello(tcp: TcpStream) -> WebSocketStream<TcpStream> {
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
    let cb = |_: &Request, mut resp: Response| {
        resp.headers_mut()
            .insert("sec-websocket-protocol", "wsp.v1.msgpack".parse().unwrap());
        Ok(resp)
    };
    let mut ws = tokio_tungstenite::accept_hdr_async(tcp, cb).await.unwrap();
    ws.send(Message::Binary(hello_bytes().into()))
        .await
        .unwrap();
    ws
}

/// MessagePack encoding of a value.
pub fn mp(v: &Value) -> Vec<u8> {
    let mut buf = Vec::new();
    rmpv::encode::write_value(&mut buf, v).expect("encodes");
    buf
}

pub fn arr(items: Vec<Value>) -> Value {
    Value::Array(items)
}

/// HELLO `[0, 1, {}]` as MessagePack.
pub fn hello_bytes() -> Vec<u8> {
    vec![0x93, 0x00, 0x01, 0x80]
}

pub async fn send_bin(ws: &mut RawWs, bytes: Vec<u8>) {
    ws.send(Message::Binary(bytes.into()))
        .await
        .expect("raw send");
}

/// The next data or close message (pings/pongs skipped).
pub async fn next_msg(ws: &mut RawWs) -> Message {
    loop {
        match within(5, ws.next()).await {
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(m)) => return m,
            other => panic!("connection ended: {other:?}"),
        }
    }
}

/// Reads until a close frame arrives and returns its code.
pub async fn close_code(ws: &mut RawWs) -> u16 {
    loop {
        match within(5, ws.next()).await {
            Some(Ok(Message::Close(Some(f)))) => return f.code.into(),
            Some(Ok(Message::Close(None))) => return 1005,
            Some(Ok(_)) => continue,
            other => panic!("no close frame: {other:?}"),
        }
    }
}

/// Decodes a MessagePack frame into a value.
pub fn decode(m: &Message) -> Value {
    match m {
        Message::Binary(b) => rmpv::decode::read_value(&mut &b[..]).expect("valid msgpack"),
        other => panic!("expected a binary frame, got {other:?}"),
    }
}

/// Sets a flag when dropped (to observe that a handler was aborted).
pub struct DropGuard(pub Option<tokio::sync::oneshot::Sender<()>>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}
