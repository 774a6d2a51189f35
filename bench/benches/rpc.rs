//! Round-trip benchmark, one process, one connection per system on loopback, sequential and
//! with 256 calls in flight:
//!
//! - raw tokio-tungstenite binary echo of a 64-byte payload with tungstenite's defaults, reader
//!   and writer split into tasks on both ends like the runtime (the baseline); for reference the
//!   same echo with the client writing and reading on the calling task, with a 16 KiB read
//!   buffer (what wsp configured before its read-ahead) and with batched writes;
//! - wsp untyped call echoing the same payload as an `rmpv::Value`;
//! - wsp generated typed `add(a, b)`, and the same called by the server on the client;
//! - jsonrpsee 0.26 WebSocket server and client doing the same `add(a, b)`;
//! - a 1 MiB binary payload echoed, raw and by wsp (untyped, and the generated
//!   `echo(data: bytes)`), one call at a time;
//! - the typed `add(a, b)` and the 1 MiB `echo` through a relay (`wsp-relay`, in this
//!   process) to a host serving through it, plain and encrypted end to end, against the same
//!   calls direct; and the time from a new client's connect to its first reply, direct and
//!   through the relay (encrypted).
//!
//! Run with `cargo bench -p wsp-bench`. `WSP_BENCH_SECS` (or a number after `--`) sets the
//! seconds each case runs in each round (default 2), `WSP_BENCH_ROUNDS` the number of rounds
//! (default 7). For profiling, `WSP_BENCH_ONLY` keeps only the systems whose name contains it
//! (or, written `=name`, the one of exactly that name) and `WSP_BENCH_SHAPE` (`sequential` or
//! `pipelined`) only that shape.
//! Each system is one [`Bench`] implementation, listed in `main`. Besides the tables, the
//! results are written to `target/bench-results/rpc.json` (see `report/mod.rs`).

mod jsonrpsee_add;
mod report;

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::FuturesUnordered;
use futures_util::{SinkExt, StreamExt};
use jsonrpsee_core::client::ClientT;
use jsonrpsee_core::rpc_params;
use jsonrpsee_server::ServerHandle;
use jsonrpsee_ws_client::{WsClient, WsClientBuilder};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use wsp_bench::Adder;
use wsp_bench::bench::{BenchClient, BenchServer};
use wsp_runtime::relay::{Identity, RelayHost, RelayOptions};
use wsp_runtime::{Caller, Client, FnService, Server, Value};

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

const PAYLOAD: usize = 64;
/// The large-message case: one 1 MiB binary value echoed.
const LARGE: usize = 1 << 20;
const DEPTH: usize = 256;

// Names of the systems the ratios are taken between.
const RAW: &str = "raw echo";
const RAW_ONE_TASK: &str = "raw echo, client on one task";
const RAW_BATCHED: &str = "raw echo, batched writes";
const UNTYPED: &str = "wsp untyped echo (rmpv::Value)";
const TYPED: &str = "wsp typed add(a, b)";
const TYPED_REVERSE: &str = "wsp typed add(a, b), server calls client";
const RAW_LARGE: &str = "raw echo, 1 MiB";
const UNTYPED_LARGE: &str = "wsp untyped echo, 1 MiB";
const TYPED_LARGE: &str = "wsp typed echo(bytes), 1 MiB";
const JSONRPSEE: &str = "jsonrpsee 0.26 add(a, b)";
const TYPED_RELAY: &str = "wsp typed add(a, b), through a relay";
const TYPED_RELAY_E2E: &str = "wsp typed add(a, b), through a relay, encrypted";
const TYPED_LARGE_RELAY: &str = "wsp typed echo(bytes), 1 MiB, through a relay";
const TYPED_LARGE_RELAY_E2E: &str = "wsp typed echo(bytes), 1 MiB, through a relay, encrypted";

/// The targets (of the runtime-core, relay and end-to-end encryption issues): system, with
/// calls in flight, the system of the same shape whose calls/s it is divided by, and the least
/// ratio.
const TARGETS: [(&str, bool, &str, f64); 7] = [
    (TYPED, false, JSONRPSEE, 1.0),
    (TYPED, true, RAW_BATCHED, 0.7),
    (TYPED_REVERSE, false, TYPED, 0.95),
    (TYPED_REVERSE, true, TYPED, 0.95),
    (TYPED_LARGE, false, RAW_LARGE, 0.9),
    (TYPED_RELAY, true, TYPED, 0.5),
    (TYPED_RELAY_E2E, true, TYPED_RELAY, 0.8),
];

/// Latencies of the calls completed during one case.
#[derive(Default)]
struct Samples {
    elapsed: Duration,
    nanos: Vec<u64>,
    /// Calls per second of each round.
    rounds: Vec<f64>,
    /// CPU time the process (both ends) spent during the rounds.
    cpu: Duration,
}

impl Samples {
    fn of(elapsed: Duration, nanos: Vec<u64>) -> Samples {
        Samples {
            elapsed,
            nanos,
            rounds: Vec::new(),
            cpu: Duration::ZERO,
        }
    }

    fn add(&mut self, other: Samples) {
        self.rounds
            .push(other.nanos.len() as f64 / other.elapsed.as_secs_f64());
        self.elapsed += other.elapsed;
        self.cpu += other.cpu;
        self.nanos.extend(other.nanos);
    }
}

/// What a case sends: the raw echo of the same shape is its baseline.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// A 64-byte binary payload, echoed.
    Echo,
    /// A 1 MiB binary payload, echoed.
    Large,
    /// `add(a, b)` with two small integers.
    Add,
}

/// One system under test.
trait Bench: Send + Sync + 'static {
    fn name(&self) -> String;
    fn shape(&self) -> Shape;
    /// Whether the system has a case with calls in flight.
    fn pipelines(&self) -> bool {
        true
    }
    /// One call at a time for `dur`.
    fn sequential(&self, dur: Duration) -> BoxFut<'_, Samples>;
    /// `depth` calls in flight for `dur`.
    fn pipelined(&self, depth: usize, dur: Duration) -> BoxFut<'_, Samples>;
}

/// Makes calls one at a time for `dur`.
async fn sequential_calls<F, Fut>(dur: Duration, mut call: F) -> Samples
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut nanos = Vec::new();
    let start = Instant::now();
    let mut i = 0u32;
    while start.elapsed() < dur {
        let t = Instant::now();
        call(i).await;
        nanos.push(t.elapsed().as_nanos() as u64);
        i = i.wrapping_add(1);
    }
    Samples::of(start.elapsed(), nanos)
}

/// Keeps `depth` calls in flight for `dur`, then lets them finish.
async fn pipelined_calls<F, Fut>(depth: usize, dur: Duration, mut call: F) -> Samples
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut nanos = Vec::new();
    let mut inflight = FuturesUnordered::new();
    let mut i = 0u32;
    let mut timed = |i: u32| {
        let t = Instant::now();
        let fut = call(i);
        async move {
            fut.await;
            t.elapsed().as_nanos() as u64
        }
    };
    let start = Instant::now();
    for _ in 0..depth {
        inflight.push(timed(i));
        i = i.wrapping_add(1);
    }
    while let Some(n) = inflight.next().await {
        nanos.push(n);
        if start.elapsed() < dur {
            inflight.push(timed(i));
            i = i.wrapping_add(1);
        }
    }
    Samples::of(start.elapsed(), nanos)
}

// ------------------------------------------------------------------ raw echo

/// tungstenite's configuration with `read_buffer` bytes per read (`None`: its default).
fn ws_config(read_buffer: Option<usize>) -> Option<WebSocketConfig> {
    read_buffer.map(|n| WebSocketConfig::default().read_buffer_size(n))
}

/// A raw echo server like the runtime's layout: a reader task and a writer task per
/// connection. `batched`: the writer feeds every queued message and flushes once (what wsp
/// does); otherwise it sends (and flushes) each message.
async fn raw_echo_server(batched: bool, read_buffer: Option<usize>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tcp.set_nodelay(true).unwrap();
            tokio::spawn(async move {
                let ws = tokio_tungstenite::accept_async_with_config(tcp, ws_config(read_buffer))
                    .await
                    .unwrap();
                let (mut sink, mut stream) = ws.split();
                let (tx, mut rx) = mpsc::channel::<Message>(1024);
                tokio::spawn(async move {
                    while let Some(m) = rx.recv().await {
                        if batched {
                            let _ = sink.feed(m).await;
                            while let Ok(m) = rx.try_recv() {
                                let _ = sink.feed(m).await;
                            }
                            if sink.flush().await.is_err() {
                                break;
                            }
                        } else if sink.send(m).await.is_err() {
                            break;
                        }
                    }
                });
                while let Some(Ok(m)) = stream.next().await {
                    if m.is_binary() && tx.send(m).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    format!("ws://{addr}/")
}

/// How the raw echo client drives its connection in the sequential case.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RawClient {
    /// The runtime's layout: a writer task sends (writes and flushes) what the caller hands it,
    /// a reader task hands each echo back to the caller.
    Split,
    /// The calling task writes and reads the socket itself: no task hops at all, a layout a
    /// multiplexing client cannot have (reference only).
    OneTask,
}

struct RawEcho {
    url: String,
    /// Bytes echoed per call.
    payload: usize,
    batched: bool,
    /// Bytes per read on both ends (`None`: tungstenite's default of 128 KiB).
    read_buffer: Option<usize>,
    client: RawClient,
}

impl RawEcho {
    async fn start(batched: bool, read_buffer: Option<usize>, client: RawClient) -> RawEcho {
        Self::with_payload(PAYLOAD, batched, read_buffer, client).await
    }

    async fn with_payload(
        payload: usize,
        batched: bool,
        read_buffer: Option<usize>,
        client: RawClient,
    ) -> RawEcho {
        RawEcho {
            url: raw_echo_server(batched, read_buffer).await,
            payload,
            batched,
            read_buffer,
            client,
        }
    }

    async fn connect(&self) -> WebSocketStream<MaybeTlsStream<TcpStream>> {
        let config = ws_config(self.read_buffer);
        tokio_tungstenite::connect_async_with_config(&self.url, config, true)
            .await
            .unwrap()
            .0
    }

    /// Sequential echoes through a writer task and a reader task.
    async fn sequential_split(&self, dur: Duration) -> Samples {
        let (mut sink, mut stream) = self.connect().await.split();
        let (to_writer, mut writer_rx) = mpsc::channel::<Message>(1024);
        let (reader_tx, mut from_reader) = mpsc::channel::<Message>(1024);
        let writer = tokio::spawn(async move {
            while let Some(m) = writer_rx.recv().await {
                if sink.send(m).await.is_err() {
                    break;
                }
            }
        });
        let reader = tokio::spawn(async move {
            while let Some(Ok(m)) = stream.next().await {
                if m.is_binary() && reader_tx.send(m).await.is_err() {
                    break;
                }
            }
        });
        let payload = bytes::Bytes::from(vec![7u8; self.payload]);
        let mut nanos = Vec::new();
        let start = Instant::now();
        while start.elapsed() < dur {
            let t = Instant::now();
            to_writer
                .send(Message::Binary(payload.clone()))
                .await
                .unwrap();
            from_reader.recv().await.unwrap();
            nanos.push(t.elapsed().as_nanos() as u64);
        }
        let elapsed = start.elapsed();
        // The writer ends with its queue; the socket closes once both halves are gone.
        drop(to_writer);
        writer.await.unwrap();
        reader.abort();
        Samples::of(elapsed, nanos)
    }

    /// Sequential echoes written and read by the calling task itself.
    async fn sequential_one_task(&self, dur: Duration) -> Samples {
        let mut ws = self.connect().await;
        let payload = bytes::Bytes::from(vec![7u8; self.payload]);
        let mut nanos = Vec::new();
        let start = Instant::now();
        while start.elapsed() < dur {
            let t = Instant::now();
            ws.send(Message::Binary(payload.clone())).await.unwrap();
            loop {
                if let Some(Ok(Message::Binary(_))) = ws.next().await {
                    break;
                }
            }
            nanos.push(t.elapsed().as_nanos() as u64);
        }
        Samples::of(start.elapsed(), nanos)
    }
}

impl Bench for RawEcho {
    fn name(&self) -> String {
        if self.payload == LARGE {
            return RAW_LARGE.into();
        }
        match (self.batched, self.read_buffer, self.client) {
            (_, _, RawClient::OneTask) => RAW_ONE_TASK.into(),
            (true, _, _) => RAW_BATCHED.into(),
            (false, Some(n), _) => format!("raw echo, {} KiB read buffer", n >> 10),
            (false, None, _) => RAW.into(),
        }
    }

    fn shape(&self) -> Shape {
        if self.payload == LARGE {
            Shape::Large
        } else {
            Shape::Echo
        }
    }

    fn pipelines(&self) -> bool {
        // With calls in flight the client is split in every variant: the same case as `RAW`.
        // Large messages are measured one at a time.
        self.client == RawClient::Split && self.payload != LARGE
    }

    fn sequential(&self, dur: Duration) -> BoxFut<'_, Samples> {
        Box::pin(async move {
            match self.client {
                RawClient::Split => self.sequential_split(dur).await,
                RawClient::OneTask => self.sequential_one_task(dur).await,
            }
        })
    }

    fn pipelined(&self, depth: usize, dur: Duration) -> BoxFut<'_, Samples> {
        Box::pin(async move {
            let ws = self.connect().await;
            let (mut sink, mut stream) = ws.split();
            let window = Arc::new(Semaphore::new(depth));
            let (sent_tx, mut sent_rx) = mpsc::unbounded_channel::<Instant>();
            let batched = self.batched;
            let size = self.payload;
            let start = Instant::now();
            let w = window.clone();
            let sender = tokio::spawn(async move {
                let payload = bytes::Bytes::from(vec![7u8; size]);
                while start.elapsed() < dur {
                    w.acquire().await.unwrap().forget();
                    let _ = sent_tx.send(Instant::now());
                    if batched {
                        sink.feed(Message::Binary(payload.clone())).await.unwrap();
                        while let Ok(p) = w.try_acquire() {
                            p.forget();
                            let _ = sent_tx.send(Instant::now());
                            sink.feed(Message::Binary(payload.clone())).await.unwrap();
                        }
                        sink.flush().await.unwrap();
                    } else {
                        sink.send(Message::Binary(payload.clone())).await.unwrap();
                    }
                }
                sink
            });
            let mut nanos = Vec::new();
            let mut outstanding: VecDeque<Instant> = VecDeque::new();
            loop {
                while let Ok(t) = sent_rx.try_recv() {
                    outstanding.push_back(t);
                }
                if start.elapsed() >= dur && sender.is_finished() && outstanding.is_empty() {
                    break;
                }
                match tokio::time::timeout(Duration::from_millis(200), stream.next()).await {
                    Ok(Some(Ok(Message::Binary(_)))) => {
                        while outstanding.is_empty() {
                            outstanding.push_back(sent_rx.recv().await.unwrap());
                        }
                        let t = outstanding.pop_front().unwrap();
                        nanos.push(t.elapsed().as_nanos() as u64);
                        window.add_permits(1);
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            let elapsed = start.elapsed();
            let _ = sender.await;
            Samples::of(elapsed, nanos)
        })
    }
}

// ------------------------------------------------------------------ wsp

/// A wsp server serving `service` and a client connected to it.
async fn wsp_pair(service: Arc<dyn wsp_runtime::Service>) -> (Server, Client) {
    let server = Server::builder()
        .service(service)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let client = Client::builder(server.url()).build();
    client.connect().await.unwrap();
    (server, client)
}

struct WspUntyped {
    caller: Caller,
    /// Bytes echoed per call.
    payload: usize,
    _client: Client,
    _server: Server,
}

impl WspUntyped {
    async fn start(payload: usize) -> WspUntyped {
        let svc = FnService::new("bench.Echo").unary("echo", |_, args| async move {
            Ok(args.into_iter().next().unwrap_or(Value::Nil))
        });
        let (server, client) = wsp_pair(svc.into_service()).await;
        WspUntyped {
            caller: client.caller(),
            payload,
            _client: client,
            _server: server,
        }
    }
}

async fn echo_call(caller: &Caller, size: usize) {
    let r = caller
        .call_value("bench.Echo/echo", vec![Value::Binary(vec![7u8; size])])
        .await
        .unwrap();
    debug_assert!(matches!(r, Value::Binary(ref b) if b.len() == size));
}

impl Bench for WspUntyped {
    fn name(&self) -> String {
        if self.payload == LARGE {
            UNTYPED_LARGE.into()
        } else {
            UNTYPED.into()
        }
    }

    fn shape(&self) -> Shape {
        if self.payload == LARGE {
            Shape::Large
        } else {
            Shape::Echo
        }
    }

    fn pipelines(&self) -> bool {
        self.payload != LARGE
    }

    fn sequential(&self, dur: Duration) -> BoxFut<'_, Samples> {
        Box::pin(sequential_calls(dur, |_| {
            echo_call(&self.caller, self.payload)
        }))
    }

    fn pipelined(&self, depth: usize, dur: Duration) -> BoxFut<'_, Samples> {
        let size = self.payload;
        Box::pin(pipelined_calls(depth, dur, move |_| {
            let caller = self.caller.clone();
            async move { echo_call(&caller, size).await }
        }))
    }
}

/// The generated `echo(data: bytes) -> bytes` with a 1 MiB argument, one call at a time.
struct WspTypedLarge {
    bench: BenchClient,
    name: &'static str,
    _keep: Keep,
}

impl WspTypedLarge {
    async fn start() -> WspTypedLarge {
        let (server, client) = wsp_pair(BenchServer::new(Adder).into_service()).await;
        WspTypedLarge {
            bench: BenchClient::from_caller(client.caller()),
            name: TYPED_LARGE,
            _keep: Box::new((server, client)),
        }
    }

    async fn start_relayed(encrypt: bool) -> WspTypedLarge {
        let (bench, keep) = relayed(encrypt).await;
        WspTypedLarge {
            bench,
            name: if encrypt {
                TYPED_LARGE_RELAY_E2E
            } else {
                TYPED_LARGE_RELAY
            },
            _keep: keep,
        }
    }
}

impl Bench for WspTypedLarge {
    fn name(&self) -> String {
        self.name.into()
    }

    fn shape(&self) -> Shape {
        Shape::Large
    }

    fn pipelines(&self) -> bool {
        false
    }

    fn sequential(&self, dur: Duration) -> BoxFut<'_, Samples> {
        // One buffer, shared by every call (a refcount, as the raw echo's).
        let data = wsp_runtime::Bytes::from(vec![7u8; LARGE]);
        Box::pin(sequential_calls(dur, move |_| {
            let data = data.clone();
            async move {
                let back = self.bench.echo(data).await.unwrap();
                debug_assert_eq!(back.len(), LARGE);
            }
        }))
    }

    fn pipelined(&self, _depth: usize, _dur: Duration) -> BoxFut<'_, Samples> {
        unreachable!("large messages are measured one at a time")
    }
}

/// What a case's connection needs kept alive (servers, clients, a relay and its host).
type Keep = Box<dyn std::any::Any + Send + Sync>;

/// The generated `add`, called by the client on the server, or served by the client and called
/// by the server on the client's connection (PROTOCOL: both ends are peers), or called through
/// a relay (in this process) on a host serving through it, plain or encrypted end to end.
struct WspTyped {
    bench: BenchClient,
    name: &'static str,
    _keep: Keep,
}

impl WspTyped {
    async fn start() -> WspTyped {
        let (server, client) = wsp_pair(BenchServer::new(Adder).into_service()).await;
        WspTyped {
            bench: BenchClient::from_caller(client.caller()),
            name: TYPED,
            _keep: Box::new((server, client)),
        }
    }

    async fn start_reverse() -> WspTyped {
        let (server, client, peer) = wsp_bench::serving_client().await;
        WspTyped {
            bench: BenchClient::from_caller(peer.caller()),
            name: TYPED_REVERSE,
            _keep: Box::new((server, client)),
        }
    }

    async fn start_relayed(encrypt: bool) -> WspTyped {
        let (bench, keep) = relayed(encrypt).await;
        WspTyped {
            bench,
            name: if encrypt {
                TYPED_RELAY_E2E
            } else {
                TYPED_RELAY
            },
            _keep: keep,
        }
    }
}

/// A relay of its own, a host serving through it and a client of that host.
async fn relayed(encrypt: bool) -> (BenchClient, Keep) {
    let relay = wsp_relay::Relay::builder()
        .bind("127.0.0.1:0")
        .await
        .expect("relay binds");
    let (host, client) = relayed_pair(&relay, encrypt).await;
    (
        BenchClient::from_caller(client.caller()),
        Box::new((relay, host, client)),
    )
}

/// A host serving `bench.Bench` through `relay`, and a client connected to it there.
async fn relayed_pair(relay: &wsp_relay::Relay, encrypt: bool) -> (RelayHost, Client) {
    let host = Server::builder()
        .service(BenchServer::new(Adder).into_service())
        .bind_relay(RelayOptions::new(relay.url(), Identity::generate()).encrypt(encrypt))
        .await
        .expect("host registers");
    let client = Client::via_relay(relay.url(), host.public_key())
        .encrypt(encrypt)
        .build();
    client.connect().await.expect("connects through the relay");
    (host, client)
}

/// Time from a new client's connect to its first reply, direct and through a relay
/// (`n` clients each, one after another): (median, p99) in µs.
async fn first_reply_times(n: usize) -> [(&'static str, u64, u64); 2] {
    let server = Server::builder()
        .service(BenchServer::new(Adder).into_service())
        .bind("127.0.0.1:0")
        .await
        .expect("binds");
    let relay = wsp_relay::Relay::builder()
        .bind("127.0.0.1:0")
        .await
        .expect("relay binds");
    let (host, _first) = relayed_pair(&relay, true).await;
    let mut direct = Vec::with_capacity(n);
    let mut relayed = Vec::with_capacity(n);
    for _ in 0..n {
        for (relay_it, into) in [(false, &mut direct), (true, &mut relayed)] {
            let client = if relay_it {
                Client::via_relay(relay.url(), host.public_key()).build()
            } else {
                Client::builder(server.url()).build()
            };
            let t = Instant::now();
            client.connect().await.expect("connects");
            typed_add(&BenchClient::from_caller(client.caller()), 1).await;
            into.push(t.elapsed().as_micros() as u64);
            client.close(1000, "measured").await.expect("closes");
        }
        // The relayed caller's spare is replaced before the next one comes.
        let _ = host.watch_spares().wait_for(|s| *s == 2).await;
    }
    let stat = |v: &mut Vec<u64>| {
        v.sort_unstable();
        (v[v.len() / 2], v[(v.len() * 99 / 100).min(v.len() - 1)])
    };
    let (d50, d99) = stat(&mut direct);
    let (r50, r99) = stat(&mut relayed);
    host.close().await;
    relay.close().await;
    server.close().await;
    [("direct", d50, d99), ("through a relay", r50, r99)]
}

async fn typed_add(bench: &BenchClient, i: u32) {
    let a = (i & 0xffff) as i32;
    let sum = bench.add(a, 2).await.unwrap();
    assert_eq!(sum, a + 2);
}

impl Bench for WspTyped {
    fn name(&self) -> String {
        self.name.into()
    }

    fn shape(&self) -> Shape {
        Shape::Add
    }

    fn sequential(&self, dur: Duration) -> BoxFut<'_, Samples> {
        Box::pin(sequential_calls(dur, |i| typed_add(&self.bench, i)))
    }

    fn pipelined(&self, depth: usize, dur: Duration) -> BoxFut<'_, Samples> {
        Box::pin(pipelined_calls(depth, dur, |i| {
            let bench = self.bench.clone();
            async move { typed_add(&bench, i).await }
        }))
    }
}

// ------------------------------------------------------------------ jsonrpsee

struct Jsonrpsee {
    client: Arc<WsClient>,
    _server: ServerHandle,
}

impl Jsonrpsee {
    async fn start() -> Jsonrpsee {
        // jsonrpsee's default connection limit.
        let (addr, handle) = jsonrpsee_add::serve(100).await;
        let client = WsClientBuilder::default()
            .max_concurrent_requests(4 * DEPTH)
            .build(format!("ws://{addr}"))
            .await
            .unwrap();
        Jsonrpsee {
            client: Arc::new(client),
            _server: handle,
        }
    }
}

async fn jsonrpsee_add(client: &WsClient, i: u32) {
    let a = (i & 0xffff) as i32;
    let sum: i32 = client.request("add", rpc_params![a, 2]).await.unwrap();
    assert_eq!(sum, a + 2);
}

impl Bench for Jsonrpsee {
    fn name(&self) -> String {
        JSONRPSEE.into()
    }

    fn shape(&self) -> Shape {
        Shape::Add
    }

    fn sequential(&self, dur: Duration) -> BoxFut<'_, Samples> {
        Box::pin(sequential_calls(dur, |i| jsonrpsee_add(&self.client, i)))
    }

    fn pipelined(&self, depth: usize, dur: Duration) -> BoxFut<'_, Samples> {
        Box::pin(pipelined_calls(depth, dur, |i| {
            let client = self.client.clone();
            async move { jsonrpsee_add(&client, i).await }
        }))
    }
}

// ------------------------------------------------------------------ report

struct Row {
    system: String,
    case: String,
    shape: Shape,
    pipelined: bool,
    rate: f64,
    p50: u64,
    p99: u64,
    /// Process CPU time per call (client and server, both in this process), in µs.
    cpu_us: f64,
}

/// The median round's rate (robust against a round disturbed by other load) and pooled
/// latency percentiles.
fn row(b: &dyn Bench, pipelined: bool, mut s: Samples) -> Row {
    s.nanos.sort_unstable();
    s.rounds.sort_by(f64::total_cmp);
    let median = s.rounds.get(s.rounds.len() / 2).copied().unwrap_or(0.0);
    let pct = |p: f64| {
        s.nanos
            .get(((s.nanos.len() as f64 * p) as usize).min(s.nanos.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    let case = if pipelined {
        format!("{}, {DEPTH} in flight", b.name())
    } else {
        format!("{}, sequential", b.name())
    };
    Row {
        system: b.name(),
        case,
        shape: b.shape(),
        pipelined,
        rate: median,
        p50: pct(0.50) / 1000,
        p99: pct(0.99) / 1000,
        cpu_us: s.cpu.as_secs_f64() * 1e6 / s.nanos.len().max(1) as f64,
    }
}

/// Runs a case in a task on a runtime worker, as application code would (not on the
/// `block_on` thread, where every wake-up crosses threads).
async fn on_worker(
    b: &Arc<dyn Bench>,
    f: impl FnOnce(&dyn Bench) -> BoxFut<'_, Samples> + Send + 'static,
) -> Samples {
    let b = b.clone();
    let before = cpu_time();
    let mut s = tokio::spawn(async move { f(&*b).await })
        .await
        .expect("bench task");
    s.cpu = cpu_time().saturating_sub(before);
    s
}

/// CPU time (user and system) of this process so far, from `/proc/self/stat`. Its unit is a
/// clock tick (10 ms on Linux), fine enough over rounds of seconds. Calls/s on this 2-vCPU VM
/// move with how the two threads happen to wake each other; CPU per call moves much less, so
/// it is the figure to compare builds by.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // After the command name (in parentheses), fields 3, 4, …: utime is field 14, stime 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; a number among the arguments is the seconds per round.
    let secs: f64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or_else(|| env_or("WSP_BENCH_SECS", 2.0));
    // Each case runs in `rounds` rounds interleaved with the other systems, so drift of a
    // shared machine hits all systems alike.
    let rounds: u32 = env_or("WSP_BENCH_ROUNDS", 7u32).max(1);
    let round = Duration::from_secs_f64(secs);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    eprintln!("load average at start: {}", load_average());
    rt.block_on(async {
        let mut benches: Vec<Arc<dyn Bench>> = vec![
            Arc::new(RawEcho::start(false, None, RawClient::Split).await),
            Arc::new(RawEcho::start(false, None, RawClient::OneTask).await),
            Arc::new(RawEcho::start(false, Some(16 << 10), RawClient::Split).await),
            Arc::new(RawEcho::start(true, None, RawClient::Split).await),
            Arc::new(WspUntyped::start(PAYLOAD).await),
            Arc::new(WspTyped::start().await),
            Arc::new(WspTyped::start_reverse().await),
            Arc::new(WspTyped::start_relayed(false).await),
            Arc::new(WspTyped::start_relayed(true).await),
            Arc::new(RawEcho::with_payload(LARGE, false, None, RawClient::Split).await),
            Arc::new(WspUntyped::start(LARGE).await),
            Arc::new(WspTypedLarge::start().await),
            Arc::new(WspTypedLarge::start_relayed(false).await),
            Arc::new(WspTypedLarge::start_relayed(true).await),
            Arc::new(Jsonrpsee::start().await),
        ];
        if let Ok(only) = std::env::var("WSP_BENCH_ONLY") {
            // `=name` keeps only the system of exactly that name.
            match only.strip_prefix('=') {
                Some(exact) => benches.retain(|b| b.name() == exact),
                None => benches.retain(|b| b.name().contains(&only)),
            }
        }
        let shapes = std::env::var("WSP_BENCH_SHAPE").unwrap_or_default();
        let (run_seq, run_pipe) = (shapes != "pipelined", shapes != "sequential");
        let pipelines = |b: &Arc<dyn Bench>| run_pipe && b.pipelines();
        for b in &benches {
            if run_seq {
                let _ = on_worker(b, |b| b.sequential(Duration::from_millis(200))).await;
            }
            if pipelines(b) {
                let _ = on_worker(b, |b| b.pipelined(DEPTH, Duration::from_millis(200))).await;
            }
        }
        let mut seq: Vec<Samples> = benches.iter().map(|_| Samples::default()).collect();
        let mut pipe: Vec<Samples> = benches.iter().map(|_| Samples::default()).collect();
        for r in 0..rounds {
            for (i, b) in benches.iter().enumerate().filter(|_| run_seq) {
                seq[i].add(on_worker(b, move |b| b.sequential(round)).await);
            }
            for (i, b) in benches.iter().enumerate().filter(|(_, b)| pipelines(b)) {
                pipe[i].add(on_worker(b, move |b| b.pipelined(DEPTH, round)).await);
            }
            eprintln!(
                "round {}/{rounds} done, load average {}",
                r + 1,
                load_average()
            );
        }
        let mut rows = Vec::new();
        for (b, s) in benches.iter().zip(seq).filter(|_| run_seq) {
            rows.push(row(&**b, false, s));
        }
        for (b, s) in benches.iter().zip(pipe).filter(|(b, _)| pipelines(b)) {
            rows.push(row(&**b, true, s));
        }
        let first_replies = if std::env::var_os("WSP_BENCH_ONLY").is_none() {
            first_reply_times(100).await.to_vec()
        } else {
            Vec::new()
        };
        report(&rows, secs, rounds, &first_replies);
    });
}

fn report(rows: &[Row], secs: f64, rounds: u32, first_replies: &[(&str, u64, u64)]) {
    // Rates by system name (exact) and concurrency.
    let rate = |system: &str, pipelined: bool| {
        rows.iter()
            .find(|r| r.pipelined == pipelined && r.system == system)
            .map_or(f64::NAN, |r| r.rate)
    };
    // The baseline of each row: the raw echo (defaults, unbatched) of the same concurrency
    // and message size.
    let raw = |r: &Row| match r.shape {
        Shape::Large => RAW_LARGE,
        _ => RAW,
    };
    let shape = |s: Shape| match s {
        Shape::Echo => "64-byte echo",
        Shape::Large => "1 MiB echo",
        Shape::Add => "add(a, b)",
    };
    println!(
        "| case ({secs} s per round, {rounds} rounds) | payload | calls/s (median round) | p50 µs | p99 µs | CPU µs/call | × raw echo |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {:.0} | {} | {} | {:.2} | {:.2} |",
            r.case,
            shape(r.shape),
            r.rate,
            r.p50,
            r.p99,
            r.cpu_us,
            r.rate / rate(raw(r), r.pipelined)
        );
    }
    println!();
    let raw16 = "raw echo, 16 KiB read buffer";
    let ratio = |a: &str, b: &str, pipelined: bool| rate(a, pipelined) / rate(b, pipelined);
    // Issue 10's targets first, then reference ratios without a target.
    let shape_name = |pipelined: bool| {
        if pipelined {
            "256 in flight"
        } else {
            "sequential"
        }
    };
    let mut targets: Vec<(String, f64, f64)> = TARGETS
        .iter()
        .map(|&(a, pipelined, b, want)| {
            (
                format!("{a} / {b}, {}", shape_name(pipelined)),
                ratio(a, b, pipelined),
                want,
            )
        })
        .collect();
    for (a, b, pipelined) in [
        (TYPED, RAW, false),
        (TYPED, RAW, true),
        (UNTYPED, RAW, false),
        (UNTYPED, RAW, true),
        (TYPED, JSONRPSEE, true),
        (UNTYPED_LARGE, RAW_LARGE, false),
        (TYPED, RAW_ONE_TASK, false),
        (TYPED, raw16, false),
        (TYPED_RELAY, TYPED, false),
        (TYPED_RELAY_E2E, TYPED_RELAY, false),
        (TYPED_LARGE_RELAY, TYPED_LARGE, false),
        (TYPED_LARGE_RELAY_E2E, TYPED_LARGE_RELAY, false),
    ] {
        targets.push((
            format!("{a} / {b}, {}", shape_name(pipelined)),
            ratio(a, b, pipelined),
            f64::NAN,
        ));
    }
    println!("| ratio | measured | target |");
    println!("|---|---:|---|");
    for (what, got, want) in targets {
        let target = if want.is_nan() {
            "—".to_string()
        } else if got >= want {
            format!("≥ {want}: met")
        } else {
            format!("≥ {want}: MISSED")
        };
        println!("| {what} | {got:.2} | {target} |");
    }
    if !first_replies.is_empty() {
        println!();
        println!("| new client: connect to first reply | p50 µs | p99 µs |");
        println!("|---|---:|---:|");
        for (how, p50, p99) in first_replies {
            println!("| {how} | {p50} | {p99} |");
        }
    }

    // The same figures for scripts: each case divided by the baseline of its issue 10 target
    // if it has one, else by the raw echo as in the first table.
    let mut out = report::Report::new("rpc", "Round trips on one connection (Rust)");
    for r in rows {
        let (baseline, target) = TARGETS
            .iter()
            .find(|t| t.0 == r.system && t.1 == r.pipelined)
            .map_or((raw(r), None), |t| (t.2, Some(t.3)));
        let baseline = (baseline != r.system).then_some(baseline);
        let concurrency = if r.pipelined {
            format!("{DEPTH} in flight")
        } else {
            "sequential".into()
        };
        out.case([
            ("name", json!(r.system)),
            ("shape", json!(concurrency)),
            ("payload", json!(shape(r.shape))),
            ("calls_per_s", report::round(r.rate, 0)),
            ("p50_us", json!(r.p50)),
            ("p99_us", json!(r.p99)),
            ("cpu_us_per_call", report::round(r.cpu_us, 2)),
            ("baseline", json!(baseline)),
            (
                "ratio",
                json!(baseline.map(|b| report::round(r.rate / rate(b, r.pipelined), 3))),
            ),
            ("target", json!(target)),
        ]);
    }
    out.write();
}
