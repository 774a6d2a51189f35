//! Hostile peers: each way a peer written from PROTOCOL.md alone could exhaust a server, with
//! the defined close code or error it gets, bounded server memory (live heap bytes and tasks),
//! and a bystander connection that keeps getting answers (PROTOCOL §2.3, §7, §8).
//!
//! The tests run one at a time (they measure the process's heap and tasks), each loop bounded
//! in count and time.

mod common;

use std::alloc::System;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use wsp_runtime::codegen::{CallContext, Handler, Request, Service};
use wsp_runtime::{
    CallOptions, Client, CloseInfo, Codec, Config, FnService, Server, ServerBuilder, Value,
};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    SERIAL.lock().await
}

/// Bytes allocated on the heap and not freed, by the whole process.
fn live_heap() -> i64 {
    let s = GLOBAL.stats();
    s.bytes_allocated as i64 - s.bytes_deallocated as i64
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

const MIB: i64 = 1 << 20;

/// Counts handlers that are running: +1 when created, -1 when dropped (finished or aborted).
#[derive(Clone, Default)]
struct Running(Arc<AtomicUsize>);

struct RunningGuard(Arc<AtomicUsize>);

impl Running {
    fn enter(&self) -> RunningGuard {
        self.0.fetch_add(1, Ordering::SeqCst);
        RunningGuard(self.0.clone())
    }
    fn now(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `h.H`: handlers that never finish (counted in `running`) and a call back into the caller.
fn hostile_service(running: Running) -> Arc<dyn Service> {
    let (r1, r2) = (running.clone(), running);
    FnService::new("h.H")
        .unary("hang", move |_, _| {
            let guard = r1.enter();
            async move {
                std::future::pending::<()>().await;
                drop(guard);
                Ok(Value::Nil)
            }
        })
        .stream("hang_stream", move |_, _| {
            let guard = r2.enter();
            futures_util::stream::once(async move {
                std::future::pending::<()>().await;
                drop(guard);
                Ok(Value::Nil)
            })
        })
        .unary("callback", |ctx, args| async move {
            // Calls back the caller's `c.C/u` (unary) or `c.C/s` (stream).
            let caller = ctx.caller();
            if args.first().and_then(Value::as_str) == Some("stream") {
                let mut s = caller.stream_value("c.C/s", vec![], CallOptions::new());
                while let Some(item) = s.next().await {
                    item?;
                }
            } else {
                caller.call_value("c.C/u", vec![]).await?;
            }
            Ok(Value::Nil)
        })
        .into_service()
}

/// A notification service: `n.N/wait` never finishes (counted in `running`), `n.N/tick` sleeps
/// a millisecond and counts.
fn notify_service(running: Running, ticks: Arc<AtomicUsize>) -> Arc<dyn Service> {
    struct Notifications(Running, Arc<AtomicUsize>);
    impl Service for Notifications {
        fn name(&self) -> &str {
            "n.N"
        }
        fn call(&self, req: Request<'_>) -> Handler {
            match req.method {
                "wait" => {
                    let guard = self.0.enter();
                    Handler::notify(async move {
                        std::future::pending::<()>().await;
                        drop(guard);
                    })
                }
                "tick" => {
                    let ticks = self.1.clone();
                    Handler::notify(async move {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        ticks.fetch_add(1, Ordering::SeqCst);
                    })
                }
                _ => Handler::UnknownMethod,
            }
        }
    }
    Arc::new(Notifications(running, ticks))
}

/// `t.T/typed(n: u32)`: decodes its arguments as a generated service does.
fn typed_service() -> Arc<dyn Service> {
    struct Typed;
    impl Service for Typed {
        fn name(&self) -> &str {
            "t.T"
        }
        fn call(&self, req: Request<'_>) -> Handler {
            let ctx: CallContext = req.ctx.clone();
            match req.args.decode::<(u32,)>() {
                Ok((n,)) => {
                    Handler::unary(ctx, async move { Ok::<_, wsp_runtime::ServiceError>(n) })
                }
                Err(e) => Handler::Error(e.into()),
            }
        }
    }
    Arc::new(Typed)
}

struct Fixture {
    server: Server,
    bystander: Client,
    running: Running,
    ticks: Arc<AtomicUsize>,
    closes: mpsc::UnboundedReceiver<CloseInfo>,
}

impl Fixture {
    async fn new(config: Config) -> Fixture {
        Self::with(config, |b| b).await
    }

    async fn with(config: Config, more: impl FnOnce(ServerBuilder) -> ServerBuilder) -> Fixture {
        let running = Running::default();
        let ticks = Arc::new(AtomicUsize::new(0));
        let (tx, closes) = mpsc::unbounded_channel();
        let builder = Server::builder()
            .config(config)
            .service(math())
            .service(hostile_service(running.clone()))
            .service(notify_service(running.clone(), ticks.clone()))
            .service(typed_service())
            .on_close(move |_, info| {
                let _ = tx.send(info.clone());
            });
        let server = server_with(more(builder)).await;
        let bystander = client_of(&server, Codec::MsgPack).await;
        Fixture {
            server,
            bystander,
            running,
            ticks,
            closes,
        }
    }

    /// The bystander's connection still gets answers.
    async fn bystander_is_served(&self) {
        let sum = within(
            5,
            self.bystander
                .call_value("math.Math/add", vec![20.into(), 22.into()]),
        )
        .await
        .expect("the bystander is answered");
        assert_eq!(sum, Value::from(42));
        assert_eq!(
            self.bystander.stats().reconnects,
            0,
            "the bystander kept its link"
        );
    }

    /// The next connection close the server reports (other than the bystander's).
    async fn next_close(&mut self) -> CloseInfo {
        within(10, self.closes.recv()).await.expect("a close")
    }

    async fn raw(&self) -> RawWs {
        let mut ws = raw_connect(&self.server.url(), Some("wsp.v1.msgpack")).await;
        send_bin(&mut ws, hello_bytes()).await;
        assert!(
            matches!(next_msg(&mut ws).await, Message::Binary(_)),
            "HELLO"
        );
        ws
    }

    async fn shutdown(self) {
        let _ = self.bystander.close(1000, "done").await;
        self.server.close().await;
    }
}

fn call(id: u32, method: &str, args: Vec<Value>) -> Vec<u8> {
    mp(&arr(vec![
        1.into(),
        id.into(),
        method.into(),
        Value::Nil,
        arr(args),
    ]))
}

fn stream(id: u32, method: &str, credit: u32, args: Vec<Value>) -> Vec<u8> {
    mp(&arr(vec![
        2.into(),
        id.into(),
        method.into(),
        Value::Nil,
        credit.into(),
        arr(args),
    ]))
}

fn notify(method: &str) -> Vec<u8> {
    mp(&arr(vec![3.into(), method.into(), arr(vec![])]))
}

/// Sends frames until the connection refuses more (ignoring errors: the server may close first).
async fn send_all(ws: &mut RawWs, frames: impl IntoIterator<Item = Vec<u8>>) {
    for f in frames {
        if ws.feed(Message::Binary(f.into())).await.is_err() {
            return;
        }
    }
    let _ = ws.flush().await;
}

// ------------------------------------------------------------------------ 1. duplicate ids

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_id_already_in_flight_closes_1002_and_its_handler_ends() {
    let _serial = serial().await;
    let mut fx = Fixture::new(test_config()).await;

    // CALL: the first runs, the second with the same id closes the connection.
    let mut ws = fx.raw().await;
    send_bin(&mut ws, call(7, "h.H/hang", vec![])).await;
    eventually(5, "the handler runs", || fx.running.now() == 1).await;
    send_bin(&mut ws, call(7, "h.H/hang", vec![])).await;
    assert_eq!(close_code(&mut ws).await, 1002);
    assert_eq!(fx.next_close().await.code, 1002);
    eventually(5, "the handler is aborted", || fx.running.now() == 0).await;

    // STREAM with credit 0 (its producer waits for credit), then the same id again.
    let mut ws = fx.raw().await;
    send_bin(&mut ws, stream(9, "h.H/hang_stream", 0, vec![])).await;
    send_bin(&mut ws, stream(9, "h.H/hang_stream", 0, vec![])).await;
    assert_eq!(close_code(&mut ws).await, 1002);
    assert_eq!(fx.next_close().await.code, 1002);
    fx.bystander_is_served().await;

    // The attack as measured: 40 connections × 1,024 same-id calls to a handler that does not
    // finish. Every connection closes at its second call; nothing is left running.
    eventually(5, "connections settled", || {
        fx.server.stats().incoming_in_flight == 0
    })
    .await;
    let (tasks, heap) = (alive_tasks(), live_heap());
    for _ in 0..40 {
        let mut ws = fx.raw().await;
        send_all(&mut ws, (0..1024).map(|_| call(7, "h.H/hang", vec![]))).await;
        assert_eq!(close_code(&mut ws).await, 1002);
    }
    eventually(5, "every handler ended", || {
        fx.running.now() == 0 && fx.server.stats().incoming_in_flight == 0
    })
    .await;
    eventually(5, "tasks back to where they were", || {
        alive_tasks() <= tasks
    })
    .await;
    let grown = live_heap() - heap;
    assert!(grown < 2 * MIB, "heap grew by {grown} bytes");
    assert_eq!(fx.server.stats().connections_open, 1, "only the bystander");
    fx.bystander_is_served().await;
    fx.shutdown().await;
}

// ------------------------------------------------------------------------ 2. wrong answers

/// A raw client that calls `h.H/callback`, then answers the server's call back with `answer`
/// (built from the server's call id); the server must close with 1002.
async fn answer_callback_with(fx: &mut Fixture, kind: &str, answer: impl Fn(u64) -> Value) {
    let mut ws = fx.raw().await;
    send_bin(&mut ws, call(1, "h.H/callback", vec![kind.into()])).await;
    let incoming = decode(&next_msg(&mut ws).await);
    let f = incoming.as_array().expect("a frame");
    let expected = if kind == "stream" { 2 } else { 1 };
    assert_eq!(
        f[0].as_u64(),
        Some(expected),
        "the server calls back: {incoming}"
    );
    let id = f[1].as_u64().expect("an id");
    send_bin(&mut ws, mp(&answer(id))).await;
    assert_eq!(close_code(&mut ws).await, 1002);
    assert_eq!(fx.next_close().await.code, 1002);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_of_the_wrong_kind_close_1002() {
    let _serial = serial().await;
    let mut fx = Fixture::new(test_config()).await;
    // ITEM and END for a unary call.
    answer_callback_with(&mut fx, "unary", |id| {
        arr(vec![6.into(), id.into(), 1.into()])
    })
    .await;
    answer_callback_with(&mut fx, "unary", |id| arr(vec![7.into(), id.into()])).await;
    // REPLY for a stream.
    answer_callback_with(&mut fx, "stream", |id| {
        arr(vec![4.into(), id.into(), 1.into()])
    })
    .await;
    fx.bystander_is_served().await;
    fx.shutdown().await;
}

// ------------------------------------------------------------------------ 3. HELLO limits

fn hello_with(services: Vec<(Value, Value)>) -> Vec<u8> {
    mp(&arr(vec![0.into(), 1.into(), Value::Map(services)]))
}

async fn hello_closes(fx: &mut Fixture, hello: Message) -> u16 {
    let mut ws = raw_connect(&fx.server.url(), Some(hello_subprotocol(&hello))).await;
    if ws.send(hello).await.is_err() {
        // The server may close while a huge HELLO is still being written.
        return fx.next_close().await.code;
    }
    let code = close_code(&mut ws).await;
    assert_eq!(fx.next_close().await.code, code);
    code
}

fn hello_subprotocol(m: &Message) -> &'static str {
    match m {
        Message::Text(_) => "wsp.v1.json",
        _ => "wsp.v1.msgpack",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hello_over_its_limits_closes_1009_before_it_costs_memory() {
    let _serial = serial().await;
    let mut fx = Fixture::new(test_config()).await;

    // Larger than 64 KiB.
    let big = hello_with(vec![("a.A".into(), "x".repeat(70 << 10).into())]);
    assert_eq!(
        hello_closes(&mut fx, Message::Binary(big.into())).await,
        1009
    );
    // 1,025 services, in a few KiB.
    let many: Vec<_> = (0..1025)
        .map(|i| (Value::from(format!("s{i}")), Value::from("")))
        .collect();
    let hello = hello_with(many.clone());
    assert!(hello.len() < 16 << 10);
    assert_eq!(
        hello_closes(&mut fx, Message::Binary(hello.into())).await,
        1009
    );
    // The same in JSON.
    let json: Vec<String> = (0..1025).map(|i| format!("\"s{i}\":\"\"")).collect();
    let text = format!("[0,1,{{{}}}]", json.join(","));
    assert_eq!(hello_closes(&mut fx, Message::text(text)).await, 1009);
    // 1,024 services are accepted.
    let mut ws = raw_connect(&fx.server.url(), Some("wsp.v1.msgpack")).await;
    send_bin(&mut ws, hello_with(many[..1024].to_vec())).await;
    send_bin(&mut ws, call(1, "math.Math/add", vec![1.into(), 2.into()])).await;
    next_msg(&mut ws).await; // the server's HELLO
    assert_eq!(
        decode(&next_msg(&mut ws).await),
        arr(vec![4.into(), 1.into(), 3.into()])
    );
    drop(ws);
    assert_eq!(fx.next_close().await.code, 1006);

    // The attack as measured: four connections, each with a 15 MiB HELLO. Nothing of them is
    // kept (it cost about 290 MiB per connection when the map was decoded).
    let heap = live_heap();
    let huge: Vec<_> = (0..4)
        .map(|c| {
            (
                Value::from(format!("c{c}")),
                Value::from("y".repeat(15 << 20)),
            )
        })
        .collect();
    for entry in huge {
        let hello = hello_with(vec![entry]);
        assert_eq!(
            hello_closes(&mut fx, Message::Binary(hello.into())).await,
            1009
        );
    }
    // (The last buffer goes when its connection's tasks end, just after the close hook.)
    eventually(5, "nothing of the HELLOs is kept", || {
        live_heap() - heap < 4 * MIB
    })
    .await;
    fx.bystander_is_served().await;
    fx.shutdown().await;
}

// ------------------------------------------------------------------------ 4. notification floods

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_flood_is_slowed_not_buffered() {
    let _serial = serial().await;
    // While the reader waits for a permit it reads nothing, not even the peer's going away:
    // that wait is bounded by the dead-peer timeout.
    let config = test_config()
        .max_incoming_notifications(16)
        .keepalive(Some(Duration::from_secs(1)), Duration::from_secs(5));
    let mut fx = Fixture::new(config).await;
    let (tasks, heap) = (alive_tasks(), live_heap());

    // 50,000 notifications of 1 KiB (more than the socket buffers hold) to a handler that
    // never finishes: the connection stops reading at 16 running handlers, so the flood stalls.
    let mut ws = fx.raw().await;
    let one = Message::Binary(
        mp(&arr(vec![
            3.into(),
            "n.N/wait".into(),
            arr(vec!["z".repeat(1000).into()]),
        ]))
        .into(),
    );
    let flood = async {
        for _ in 0..50 {
            for _ in 0..1000 {
                if ws.feed(one.clone()).await.is_err() {
                    return;
                }
            }
            let _ = ws.flush().await;
        }
    };
    let finished = tokio::time::timeout(Duration::from_millis(1500), flood).await;
    assert!(finished.is_err(), "the server kept reading the whole flood");
    // 16 running, and the one the reader holds while it waits for a permit.
    assert_eq!(fx.running.now(), 17, "at most 16 notification handlers run");
    assert!(alive_tasks() <= tasks + 16 + 2, "tasks: {}", alive_tasks());
    let grown = live_heap() - heap;
    assert!(grown < 8 * MIB, "heap grew by {grown} bytes");
    fx.bystander_is_served().await;

    // The stalled connection ends at the dead-peer timeout, and its handlers with it.
    drop(ws);
    assert_eq!(fx.next_close().await.code, 4002);
    eventually(5, "handlers end with the connection", || {
        fx.running.now() == 0
    })
    .await;
    eventually(5, "tasks back to where they were", || {
        alive_tasks() <= tasks
    })
    .await;

    // Back-pressure loses nothing: 3,000 short handlers behind a limit of 16 all run.
    let mut ws = fx.raw().await;
    send_all(&mut ws, (0..3000).map(|_| notify("n.N/tick"))).await;
    eventually(10, "every notification handled", || {
        fx.ticks.load(Ordering::SeqCst) == 3000
    })
    .await;
    drop(ws);
    fx.shutdown().await;
}

// ------------------------------------------------------------------------ 5. write timeout

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_reads_is_closed_with_4003() {
    let _serial = serial().await;
    let config = test_config().write_timeout(Duration::from_millis(300));
    let mut fx = Fixture::new(config).await;
    let heap = live_heap();

    // Calls with 256 KiB arguments whose echoes are never read: the server's writes stall.
    let mut ws = fx.raw().await;
    let payload = Value::Binary(vec![0x42; 256 << 10]);
    let flood = async {
        for id in 1..=400u32 {
            let frame = call(id, "math.Math/echo", vec![payload.clone()]);
            if ws.send(Message::Binary(frame.into())).await.is_err() {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), flood).await;
    let info = fx.next_close().await;
    assert_eq!((info.code, info.reason.as_str()), (4003, "write timeout"));
    drop(ws);
    // The replies queued for it are gone with it.
    eventually(5, "the queued replies are freed", || {
        live_heap() - heap < 4 * MIB
    })
    .await;
    fx.bystander_is_served().await;
    fx.shutdown().await;
}

// ------------------------------------------------------------------------ 6. message timeout

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfinished_message_kept_alive_with_pongs_closes_4004() {
    let _serial = serial().await;
    let config = test_config().message_timeout(Duration::from_millis(400));
    let mut fx = Fixture::new(config).await;
    let heap = live_heap();

    // The first 1 MiB fragment of a message that never ends, then a pong every 50 ms.
    let mut ws = fx.raw().await;
    let first = Frame::message(vec![0x55u8; 1 << 20], OpCode::Data(Data::Binary), false);
    ws.send(Message::Frame(first))
        .await
        .expect("first fragment");
    let code = within(5, async {
        loop {
            tokio::select! {
                m = ws.next() => match m {
                    Some(Ok(Message::Close(Some(f)))) => return u16::from(f.code),
                    Some(Ok(_)) => {}
                    other => panic!("no close frame: {other:?}"),
                },
                _ = tokio::time::sleep(Duration::from_millis(50)) => {
                    let _ = ws.send(Message::Pong(Default::default())).await;
                }
            }
        }
    })
    .await;
    assert_eq!(code, 4004);
    assert_eq!(fx.next_close().await.code, 4004);
    drop(ws);
    eventually(5, "the fragment's buffer is freed", || {
        live_heap() - heap < MIB
    })
    .await;

    // One frame trickled in a byte at a time.
    let (mut tcp, _) = handshake_by_hand(&fx.server.url(), None).await;
    tcp.write_all(&client_frame(2, &hello_bytes()))
        .await
        .unwrap();
    let header = &client_frame(2, &[0; 200])[..8];
    tcp.write_all(header).await.unwrap();
    let trickle = async {
        loop {
            if tcp.write_all(&[0]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(3), trickle).await;
    assert_eq!(fx.next_close().await.code, 4004);
    fx.bystander_is_served().await;
    fx.shutdown().await;
}

/// Opens a TCP connection (from `from`, an address on this machine, if given) and performs the
/// WebSocket upgrade by hand, offering MessagePack.
async fn handshake_by_hand(url: &str, from: Option<&str>) -> (TcpStream, Vec<u8>) {
    let addr: std::net::SocketAddr = url
        .trim_start_matches("ws://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let socket = TcpSocket::new_v4().unwrap();
    if let Some(ip) = from {
        socket.bind(format!("{ip}:0").parse().unwrap()).unwrap();
    }
    let mut tcp = within(5, socket.connect(addr)).await.expect("tcp connect");
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: wsp.v1.msgpack\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let mut byte = [0u8; 1];
    while !response.ends_with(b"\r\n\r\n") {
        if within(5, tcp.read(&mut byte)).await.unwrap() == 0 {
            break;
        }
        response.push(byte[0]);
    }
    (tcp, response)
}

/// A final client frame (masked with a zero key, so the payload reads as written).
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x80 | opcode];
    match payload.len() {
        n @ 0..=125 => f.push(0x80 | n as u8),
        n @ 126..=0xffff => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&[0, 0, 0, 0]);
    f.extend_from_slice(payload);
    f
}

// ------------------------------------------------------------------------ 7. echoed input

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_input_is_never_echoed_at_length() {
    let _serial = serial().await;
    let fx = Fixture::new(test_config()).await;
    let mut ws = fx.raw().await;
    let error_message = |m: Message| {
        let v = decode(&m);
        let f = v.as_array().unwrap().clone();
        assert_eq!(f[0].as_u64(), Some(5), "an ERROR: {v}");
        (f[2].as_u64().unwrap(), f[3].as_str().unwrap().to_owned())
    };

    // A 1 MiB method name: UNKNOWN_METHOD with a short message.
    let long = format!("h.H/{}", "m".repeat(1 << 20));
    send_bin(&mut ws, call(1, &long, vec![])).await;
    let (code, message) = error_message(next_msg(&mut ws).await);
    assert_eq!(code, 1);
    assert!(message.len() < 100, "{} bytes", message.len());
    assert!(message.ends_with('…'));
    // Control characters are not repeated.
    send_bin(&mut ws, call(2, "x.Y/\u{1b}[2J\nz", vec![])).await;
    let (_, message) = error_message(next_msg(&mut ws).await);
    assert_eq!(message, "unknown method x.Y/?[2J?z");
    // A name over the limit is not looked up even when it would exist.
    let padded = format!("h.H/hang{}", " ".repeat(300));
    send_bin(&mut ws, call(3, &padded, vec![])).await;
    assert_eq!(error_message(next_msg(&mut ws).await).0, 1);
    // A 1 MiB string where a u32 is expected: INVALID_ARGUMENTS, message cut.
    let huge = "q".repeat(1 << 20);
    send_bin(&mut ws, call(4, "t.T/typed", vec![huge.into()])).await;
    let (code, message) = error_message(next_msg(&mut ws).await);
    assert_eq!(code, 2);
    assert!(message.len() < 300, "{} bytes", message.len());
    // A NOTIFY with a 1 MiB name is dropped and counted.
    let invalid = fx.server.stats().invalid_frames;
    send_bin(&mut ws, notify(&long)).await;
    send_bin(&mut ws, call(5, "t.T/typed", vec![5.into()])).await;
    assert_eq!(
        decode(&next_msg(&mut ws).await),
        arr(vec![4.into(), 5.into(), 5.into()])
    );
    assert_eq!(fx.server.stats().invalid_frames, invalid + 1);
    fx.bystander_is_served().await;
    drop(ws);
    fx.shutdown().await;
}

// ------------------------------------------------------------------------ 8. connection caps

/// The HTTP status of an upgrade attempt (101 when accepted).
async fn upgrade_status(url: &str, from: Option<&str>) -> (u16, TcpStream) {
    let (tcp, response) = handshake_by_hand(url, from).await;
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, tcp)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_limits_get_503() {
    let _serial = serial().await;
    // Three connections in all (the bystander is one).
    let fx = Fixture::with(test_config(), |b| b.max_connections(3)).await;
    let url = fx.server.url();
    // A TCP connection whose upgrade has not even started holds a place too.
    let idle = TcpStream::connect(fx.server.local_addr()).await.unwrap();
    let (status, open) = upgrade_status(&url, None).await;
    assert_eq!(status, 101);
    let (status, _) = upgrade_status(&url, None).await;
    assert_eq!(status, 503);
    assert_eq!(fx.server.stats().connections_refused, 1);
    // A place frees when a connection goes.
    drop(idle);
    drop(open);
    eventually(5, "a place is free again", || {
        fx.server.stats().connections_open == 1
    })
    .await;
    let mut accepted = false;
    for _ in 0..50 {
        if upgrade_status(&url, None).await.0 == 101 {
            accepted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(accepted, "a connection is accepted once places are free");
    fx.bystander_is_served().await;
    fx.shutdown().await;

    // Two per address: a third from 127.0.0.1 is refused, one from 127.0.0.2 is not.
    let fx = Fixture::with(test_config(), |b| b.max_connections_per_ip(Some(2))).await;
    let url = fx.server.url();
    let (status, _second) = upgrade_status(&url, None).await;
    assert_eq!(status, 101);
    assert_eq!(upgrade_status(&url, None).await.0, 503);
    assert_eq!(upgrade_status(&url, Some("127.0.0.2")).await.0, 101);
    fx.bystander_is_served().await;
    fx.shutdown().await;
}

// ------------------------------------------------------------------------ 9. panicking hooks

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_hooks_do_not_take_connections_down() {
    let _serial = serial().await;
    let observer: wsp_runtime::Observer = Arc::new(|seen| {
        if seen.method.ends_with("/echo") || seen.method.ends_with("/ping") {
            panic!("observer bug");
        }
    });
    let fx = Fixture::with(test_config(), |b| {
        b.observer(observer.clone())
            .on_open(|_| panic!("open hook bug"))
    })
    .await;

    // The server's observer panics on echo: the call is still answered, the link stays.
    let echoed = within(
        5,
        fx.bystander.call_value("math.Math/echo", vec!["hi".into()]),
    )
    .await
    .unwrap();
    assert_eq!(echoed, Value::from("hi"));

    // A client whose observer panics on the server's call back still answers it.
    let client = Client::builder(fx.server.url())
        .config(test_config())
        .observer(observer)
        .service(
            FnService::new("c.C")
                .unary("ping", |_, _| async { Ok(Value::from("pong")) })
                .into_service(),
        )
        .build();
    within(5, client.connect()).await.unwrap();
    // The server lists a connection once it has attached it, which may be after the client's
    // connect returned.
    eventually(5, "the server lists the new connection", || {
        fx.server.connections().len() == 2
    })
    .await;
    let peer = fx
        .server
        .connections()
        .into_iter()
        .max_by_key(|p| p.id())
        .unwrap();
    let pong = within(5, peer.caller().call_value("c.C/ping", vec![]))
        .await
        .unwrap();
    assert_eq!(pong, Value::from("pong"));
    let sum = within(
        5,
        client.call_value("math.Math/add", vec![1.into(), 1.into()]),
    )
    .await
    .unwrap();
    assert_eq!(sum, Value::from(2));
    assert_eq!(client.stats().reconnects, 0);
    client.close(1000, "done").await.unwrap();
    fx.bystander_is_served().await;
    fx.shutdown().await;

    // A close hook that panics: the server still forgets the connection.
    let server = server_with(
        Server::builder()
            .config(test_config())
            .service(math())
            .on_close(|_, _| panic!("close hook bug")),
    )
    .await;
    let client = client_of(&server, Codec::MsgPack).await;
    client.close(1000, "done").await.unwrap();
    eventually(5, "the connection is forgotten", || {
        server.connections().is_empty()
    })
    .await;
    let again = client_of(&server, Codec::MsgPack).await;
    let sum = again
        .call_value("math.Math/add", vec![1.into(), 2.into()])
        .await
        .unwrap();
    assert_eq!(sum, Value::from(3));
    again.close(1000, "done").await.unwrap();
    server.close().await;
}

// ------------------------------------------------------------------------ 10. deep stream items

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_item_nested_too_deep_fails_the_stream_and_sends_cancel() {
    let _serial = serial().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let (frames_tx, mut frames) = mpsc::unbounded_channel();
    // A raw server: answers the stream with an item nested 200 deep (the default limit is
    // 128), then with a good item, and reports every frame it receives.
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = accept_raw_hello(tcp).await;
        while let Some(Ok(m)) = ws.next().await {
            if !matches!(m, Message::Binary(_)) {
                continue;
            }
            let frame = decode(&m);
            let f = frame.as_array().unwrap().clone();
            if f[0].as_u64() == Some(2) {
                let mut deep = Value::from(1);
                for _ in 0..200 {
                    deep = arr(vec![deep]);
                }
                let item =
                    |v: Value| Message::Binary(mp(&arr(vec![6.into(), f[1].clone(), v])).into());
                ws.send(item(deep)).await.unwrap();
                ws.send(item(2.into())).await.unwrap();
            }
            if frames_tx.send(frame).is_err() {
                break;
            }
        }
    });
    let client = Client::builder(url).config(test_config()).build();
    within(5, client.connect()).await.unwrap();
    let mut s = client
        .caller()
        .stream_value("s.S/items", vec![], CallOptions::new());
    let first = within(5, s.next()).await.expect("an outcome");
    assert!(first.is_err(), "the deep item fails the stream: {first:?}");
    assert!(
        within(5, s.next()).await.is_none(),
        "nothing after the failure"
    );
    // The callee is told to stop.
    let mut types = Vec::new();
    while types.last() != Some(&8) {
        let frame = within(5, frames.recv()).await.expect("a frame");
        types.push(frame.as_array().unwrap()[0].as_u64().unwrap());
    }
    assert_eq!(types, vec![0, 2, 8], "HELLO, STREAM, CANCEL");
    client.close(1000, "done").await.unwrap();
    server.abort();
}

// ------------------------------------------------------------------------ what PROTOCOL.md promised

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_promised_outcome_of_bad_input_leaves_the_server_serving() {
    let _serial = serial().await;
    let config = test_config()
        .max_message_size(64 << 10)
        .handshake_timeout(Duration::from_millis(300))
        .max_incoming_calls(4)
        .max_depth(16);
    let mut fx = Fixture::new(config).await;
    let (tasks, heap) = (alive_tasks(), live_heap());
    let hello = || Message::Binary(hello_bytes().into());
    let bin = |v: Value| Message::Binary(mp(&v).into());
    let big = vec![0u8; 100 << 10];
    let closes: Vec<(&str, Vec<Message>, u16)> = vec![
        (
            "reserved byte",
            vec![hello(), Message::Binary(vec![0xc1, 0xff].into())],
            1007,
        ),
        (
            "truncated array",
            vec![hello(), Message::Binary(vec![0x93, 0x01].into())],
            1007,
        ),
        (
            "text on MessagePack",
            vec![hello(), Message::text("[3,\"a/b\",[]]")],
            1003,
        ),
        (
            "unknown frame type",
            vec![hello(), bin(arr(vec![42.into(), 1.into()]))],
            1002,
        ),
        ("not an array", vec![hello(), bin(Value::Map(vec![]))], 1002),
        (
            "id not an integer",
            vec![
                hello(),
                bin(arr(vec![
                    1.into(),
                    "x".into(),
                    "m/a".into(),
                    Value::Nil,
                    arr(vec![]),
                ])),
            ],
            1002,
        ),
        (
            "too few elements",
            vec![hello(), bin(arr(vec![1.into(), 1.into()]))],
            1002,
        ),
        (
            "id beyond 32 bits",
            vec![
                hello(),
                bin(arr(vec![
                    1.into(),
                    (1u64 << 32).into(),
                    "m/a".into(),
                    Value::Nil,
                    arr(vec![]),
                ])),
            ],
            1002,
        ),
        (
            "no HELLO first",
            vec![bin(arr(vec![8.into(), 1.into()]))],
            1002,
        ),
        ("second HELLO", vec![hello(), hello()], 1002),
        (
            "unsupported version",
            vec![bin(arr(vec![0.into(), 2.into(), Value::Map(vec![])]))],
            4000,
        ),
        (
            "message too big",
            vec![hello(), Message::Binary(big.into())],
            1009,
        ),
        ("silence", vec![], 4001),
    ];
    for (what, frames, code) in closes {
        let mut ws = raw_connect(&fx.server.url(), Some("wsp.v1.msgpack")).await;
        for m in frames {
            let _ = ws.send(m).await;
        }
        assert_eq!(close_code(&mut ws).await, code, "{what}");
        assert_eq!(fx.next_close().await.code, code, "{what}");
        fx.bystander_is_served().await;
    }

    // More ITEMs than the credit granted (the server streams from the client here).
    let mut ws = fx.raw().await;
    send_bin(&mut ws, call(1, "h.H/callback", vec!["stream".into()])).await;
    let f = decode(&next_msg(&mut ws).await);
    let f = f.as_array().unwrap();
    let (id, credit) = (f[1].as_u64().unwrap(), f[4].as_u64().unwrap());
    send_all(
        &mut ws,
        (0..=credit).map(|i| mp(&arr(vec![6.into(), id.into(), i.into()]))),
    )
    .await;
    assert_eq!(close_code(&mut ws).await, 1002, "too many ITEMs");
    assert_eq!(fx.next_close().await.code, 1002);

    // Errors, not closes: the connection goes on.
    let mut ws = fx.raw().await;
    let mut deep = Value::from(1);
    for _ in 0..40 {
        deep = arr(vec![deep]);
    }
    let error_code = |m: Message| {
        let v = decode(&m);
        let f = v.as_array().unwrap().clone();
        assert_eq!(f[0].as_u64(), Some(5), "an ERROR: {v}");
        f[2].as_u64().unwrap()
    };
    send_bin(&mut ws, call(1, "math.Math/echo", vec![deep])).await;
    assert_eq!(error_code(next_msg(&mut ws).await), 2, "nested too deep");
    let not_array = mp(&arr(vec![
        1.into(),
        2.into(),
        "math.Math/add".into(),
        Value::Nil,
        5.into(),
    ]));
    send_bin(&mut ws, not_array).await;
    assert_eq!(
        error_code(next_msg(&mut ws).await),
        2,
        "arguments not an array"
    );
    let expired = mp(&arr(vec![
        1.into(),
        3.into(),
        "math.Math/add".into(),
        0.into(),
        arr(vec![]),
    ]));
    send_bin(&mut ws, expired).await;
    assert_eq!(error_code(next_msg(&mut ws).await), 3, "deadline 0");
    send_bin(&mut ws, call(4, "math.Math/count", vec![])).await;
    assert_eq!(
        error_code(next_msg(&mut ws).await),
        1,
        "CALL of a stream method"
    );
    send_bin(&mut ws, stream(5, "math.Math/add", 1, vec![])).await;
    assert_eq!(
        error_code(next_msg(&mut ws).await),
        1,
        "STREAM of a unary method"
    );
    for id in 10..14 {
        send_bin(&mut ws, call(id, "h.H/hang", vec![])).await;
    }
    send_bin(&mut ws, call(20, "math.Math/add", vec![])).await;
    assert_eq!(
        error_code(next_msg(&mut ws).await),
        5,
        "over max_incoming_calls"
    );
    drop(ws);
    assert_eq!(fx.next_close().await.code, 1006);

    fx.bystander_is_served().await;
    eventually(5, "handlers ended", || fx.running.now() == 0).await;
    eventually(5, "tasks back to where they were", || {
        alive_tasks() <= tasks
    })
    .await;
    eventually(5, "memory back to where it was", || {
        live_heap() - heap < MIB
    })
    .await;
    fx.shutdown().await;
}
