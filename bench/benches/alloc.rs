//! Heap allocations per call (issue 10: "the per-frame path allocates, locks and copies no more
//! than it must"). One process, a wsp server and a client connected to it on loopback; after a
//! warm-up, a counting global allocator is read before and after `WSP_ALLOC_CALLS` calls
//! (default 20,000) and the difference is divided by the number of calls:
//!
//! - the generated typed `add(a, b)`, one call at a time and with 256 calls in flight (256
//!   tasks, each calling one after the other);
//! - the untyped `call_value` echo of a 64-byte binary value, both ways;
//! - the typed `add(a, b)` called by the server on the client (server → client), both ways;
//! - for reference, a raw tokio-tungstenite echo of 64 bytes (the client writes and reads on
//!   its task, the server has a reader and a writer task joined by a channel).
//!
//! The count is process-wide: client, server and the bench loop. The loop's own share is
//! measured by running the same loop with a call that does nothing (but build the arguments,
//! where the case builds them per call) and is subtracted: `wsp = total − loop`. Each case runs
//! on a current-thread runtime (deterministic: client and server on one thread) and on a
//! 2-worker runtime as in `rpc.rs` (`WSP_ALLOC_RUNTIME=current` or `multi` keeps one).
//!
//! Run with `cargo bench -p wsp-bench --bench alloc`. For profiling, `WSP_ALLOC_ONLY` keeps the
//! cases whose name contains it (or, written `=name`, the one of exactly that name, e.g.
//! `WSP_ALLOC_ONLY='=wsp typed add(a, b)'`), `WSP_ALLOC_SHAPE=sequential` or `256` one shape,
//! and `WSP_ALLOC_CALLS` sets the number of calls. Besides the table, the results are written to
//! `target/bench-results/alloc.json` (see `report/mod.rs`). `docs/per-frame-path.md` explains
//! the figures allocation by allocation.

mod report;

use std::alloc::System;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use stats_alloc::{INSTRUMENTED_SYSTEM, Stats, StatsAlloc};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use wsp_bench::Adder;
use wsp_bench::bench::{BenchClient, BenchServer};
use wsp_runtime::{Caller, Client, FnService, Server, Value};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const PAYLOAD: usize = 64;
const DEPTH: usize = 256;

/// Heap operations per call.
#[derive(Clone, Copy, Default)]
struct PerCall {
    allocs: f64,
    frees: f64,
    reallocs: f64,
    /// Bytes asked for by allocations and by growing reallocations.
    bytes: f64,
}

impl PerCall {
    fn of(s: Stats, calls: usize) -> PerCall {
        let n = calls as f64;
        PerCall {
            allocs: s.allocations as f64 / n,
            frees: s.deallocations as f64 / n,
            reallocs: s.reallocations as f64 / n,
            bytes: (s.bytes_allocated as f64 + s.bytes_reallocated.max(0) as f64) / n,
        }
    }

    fn minus(self, o: PerCall) -> PerCall {
        PerCall {
            allocs: self.allocs - o.allocs,
            frees: self.frees - o.frees,
            reallocs: self.reallocs - o.reallocs,
            bytes: self.bytes - o.bytes,
        }
    }
}

/// Runs `f` and returns the heap operations it caused (process-wide) per call.
async fn counted<Fut: Future<Output = ()>>(calls: usize, f: Fut) -> PerCall {
    let before = GLOBAL.stats();
    f.await;
    let after = GLOBAL.stats();
    PerCall::of(after - before, calls)
}

/// `n` calls, one after the other.
async fn sequential<F, Fut>(n: usize, mut call: F)
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = ()>,
{
    for i in 0..n {
        call(i as u32).await;
    }
}

/// `n` calls, `DEPTH` at a time: `DEPTH` tasks each call one after the other until `n` calls
/// are made (the loop itself allocates only the tasks, not a node per call).
async fn in_flight<F, Fut>(n: usize, call: F)
where
    F: Fn(u32) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..DEPTH)
        .map(|_| {
            let (next, call) = (next.clone(), call.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    call(i as u32).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("a calling task");
    }
}

// ------------------------------------------------------------------ systems

/// A wsp server serving `service` and a client connected to it (default `Config`).
async fn wsp_pair(service: Arc<dyn wsp_runtime::Service>) -> (Server, Client) {
    let server = Server::builder()
        .service(service)
        .bind("127.0.0.1:0")
        .await
        .expect("binds");
    let client = Client::builder(server.url()).build();
    client.connect().await.expect("connects");
    (server, client)
}

async fn typed_add(bench: &BenchClient, i: u32) {
    let a = (i & 0xffff) as i32;
    let sum = bench.add(a, 2).await.expect("add");
    assert_eq!(sum, a + 2);
}

/// The arguments of one untyped echo (built per call, so counted in the loop's share).
fn echo_args() -> Vec<Value> {
    vec![Value::Binary(vec![7u8; PAYLOAD])]
}

async fn untyped_echo(caller: &Caller) {
    let r = caller
        .call_value("bench.Echo/echo", echo_args())
        .await
        .expect("echo");
    assert!(matches!(r, Value::Binary(ref b) if b.len() == PAYLOAD));
}

/// Everything measured on one runtime, kept alive for the whole run.
struct Systems {
    typed: BenchClient,
    untyped: Caller,
    /// Calls the server makes on the client's `bench.Bench`.
    reverse: BenchClient,
    raw_url: String,
    _keep: Vec<(Server, Client)>,
}

impl Systems {
    async fn start() -> Systems {
        let (s1, c1) = wsp_pair(BenchServer::new(Adder).into_service()).await;
        let echo = FnService::new("bench.Echo").unary("echo", |_, args| async move {
            Ok(args.into_iter().next().unwrap_or(Value::Nil))
        });
        let (s2, c2) = wsp_pair(echo.into_service()).await;
        // Server → client: the client serves `bench.Bench`, the server calls it.
        let (s3, c3, peer) = wsp_bench::serving_client().await;
        Systems {
            typed: BenchClient::from_caller(c1.caller()),
            untyped: c2.caller(),
            reverse: BenchClient::from_caller(peer.caller()),
            raw_url: raw_echo_server().await,
            _keep: vec![(s1, c1), (s2, c2), (s3, c3)],
        }
    }
}

/// A raw tokio-tungstenite echo server (defaults): a reader task hands each binary message to
/// a writer task that sends (writes and flushes) it, as `rpc.rs`'s unbatched raw echo.
async fn raw_echo_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let addr = listener.local_addr().expect("an address");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tcp.set_nodelay(true).expect("nodelay");
            tokio::spawn(async move {
                let ws = tokio_tungstenite::accept_async(tcp).await.expect("upgrade");
                let (mut sink, mut stream) = ws.split();
                let (tx, mut rx) = mpsc::channel::<Message>(1024);
                tokio::spawn(async move {
                    while let Some(m) = rx.recv().await {
                        if sink.send(m).await.is_err() {
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

/// One raw echo of `payload`, written and read on this task.
async fn raw_echo_once(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    payload: &bytes::Bytes,
) {
    ws.send(Message::Binary(payload.clone()))
        .await
        .expect("sends");
    loop {
        if let Some(Ok(Message::Binary(_))) = ws.next().await {
            break;
        }
    }
}

/// Sequential raw echoes of `PAYLOAD` bytes: `n` counted after `warm` uncounted ones.
async fn raw_echo(url: &str, warm: usize, n: usize) -> PerCall {
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true)
        .await
        .expect("connects");
    let payload = bytes::Bytes::from(vec![7u8; PAYLOAD]);
    for _ in 0..warm {
        raw_echo_once(&mut ws, &payload).await;
    }
    counted(n, async {
        for _ in 0..n {
            raw_echo_once(&mut ws, &payload).await;
        }
    })
    .await
}

// ------------------------------------------------------------------ cases

/// One measured case.
struct Row {
    name: &'static str,
    shape: &'static str,
    payload: &'static str,
    runtime: &'static str,
    total: PerCall,
    /// The bench loop's own share (subtracted).
    bench_loop: PerCall,
}

impl Row {
    fn wsp(&self) -> PerCall {
        self.total.minus(self.bench_loop)
    }
}

/// The sizes in bytes of a typed `add` call's future and of an untyped `call_value` future.
static FUTURE_SIZES: OnceLock<(usize, usize)> = OnceLock::new();

const SEQ: &str = "sequential";
const PIPE: &str = "256 in flight";

/// Measures `call` (after `warm` uncounted calls) and the same loop around `idle`, sequentially
/// or `DEPTH` at a time.
async fn case<C, CF, I, IF>(
    pipelined: bool,
    warm: usize,
    n: usize,
    call: C,
    idle: I,
) -> (PerCall, PerCall)
where
    C: Fn(u32) -> CF + Clone + Send + 'static,
    CF: Future<Output = ()> + Send + 'static,
    I: Fn(u32) -> IF + Clone + Send + 'static,
    IF: Future<Output = ()> + Send + 'static,
{
    if pipelined {
        in_flight(warm, call.clone()).await;
        let total = counted(n, in_flight(n, call)).await;
        in_flight(warm, idle.clone()).await;
        let bench_loop = counted(n, in_flight(n, idle)).await;
        (total, bench_loop)
    } else {
        sequential(warm, &call).await;
        let total = counted(n, sequential(n, &call)).await;
        sequential(warm, &idle).await;
        let bench_loop = counted(n, sequential(n, &idle)).await;
        (total, bench_loop)
    }
}

/// Whether the case named `name` runs (`WSP_ALLOC_ONLY`: a part of the name, or `=name`).
fn selected(name: &str) -> bool {
    std::env::var("WSP_ALLOC_ONLY").map_or(true, |only| match only.strip_prefix('=') {
        Some(exact) => name == exact,
        None => name.contains(&only),
    })
}

const TYPED: &str = "wsp typed add(a, b)";
const UNTYPED: &str = "wsp untyped echo (rmpv::Value)";
const REVERSE: &str = "wsp typed add(a, b), server calls client";
const RAW: &str = "raw tokio-tungstenite echo (reference)";

async fn measure(runtime: &'static str, warm: usize, n: usize) -> Vec<Row> {
    let sys = Systems::start().await;
    // Built, never polled: what the caller holds (and moves) per call.
    let _ = FUTURE_SIZES.set((
        std::mem::size_of_val(&sys.typed.add(1, 2)),
        std::mem::size_of_val(&sys.untyped.call_value("bench.Echo/echo", Vec::new())),
    ));
    let mut rows = Vec::new();
    let mut row = |name, shape, payload, (total, bench_loop)| {
        rows.push(Row {
            name,
            shape,
            payload,
            runtime,
            total,
            bench_loop,
        })
    };
    let shapes = std::env::var("WSP_ALLOC_SHAPE").unwrap_or_default();
    for pipelined in [false, true] {
        let shape = if pipelined { PIPE } else { SEQ };
        if !shapes.is_empty() && !shape.starts_with(shapes.as_str()) {
            continue;
        }
        if selected(TYPED) {
            let typed = sys.typed.clone();
            let call = move |i| {
                let b = typed.clone();
                async move { typed_add(&b, i).await }
            };
            let counts = case(pipelined, warm, n, call, |_| async {}).await;
            row(TYPED, shape, "add(a, b)", counts);
        }
        if selected(UNTYPED) {
            let caller = sys.untyped.clone();
            let call = move |_| {
                let c = caller.clone();
                async move { untyped_echo(&c).await }
            };
            let idle = |_| async {
                std::hint::black_box(echo_args());
            };
            let counts = case(pipelined, warm, n, call, idle).await;
            row(UNTYPED, shape, "64-byte echo", counts);
        }
        if selected(REVERSE) {
            let reverse = sys.reverse.clone();
            let call = move |i| {
                let b = reverse.clone();
                async move { typed_add(&b, i).await }
            };
            let counts = case(pipelined, warm, n, call, |_| async {}).await;
            row(REVERSE, shape, "add(a, b)", counts);
        }
    }
    if selected(RAW) && !shapes.starts_with('2') {
        let total = raw_echo(&sys.raw_url, warm, n).await;
        let bench_loop = counted(n, sequential(n, |_| async {})).await;
        row(RAW, SEQ, "64-byte echo", (total, bench_loop));
    }
    rows
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let n: usize = env_or("WSP_ALLOC_CALLS", 20_000usize).max(1);
    let warm = (n / 10).max(DEPTH * 2);
    let which = std::env::var("WSP_ALLOC_RUNTIME").unwrap_or_default();
    let mut rows = Vec::new();
    if which.is_empty() || which == "current" {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        // In a task, as on the other runtime (not as the `block_on` future).
        let task = rt.spawn(measure("current-thread", warm, n));
        rows.extend(rt.block_on(task).expect("the measuring task"));
    }
    if which.is_empty() || which == "multi" {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        // On a worker, as application code would run (see `rpc.rs`'s `on_worker`).
        let task = rt.spawn(measure("2 workers", warm, n));
        rows.extend(rt.block_on(task).expect("the measuring task"));
    }
    report(&rows, n);
}

fn report(rows: &[Row], n: usize) {
    println!(
        "heap operations per call, process-wide (client + server), {n} calls after a warm-up; \
         wsp = total − bench loop"
    );
    println!();
    println!(
        "| case | runtime | allocs (total) | allocs (loop) | wsp allocs | wsp frees | wsp reallocs | wsp bytes |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let w = r.wsp();
        println!(
            "| {}, {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} |",
            r.name,
            r.shape,
            r.runtime,
            r.total.allocs,
            r.bench_loop.allocs,
            w.allocs,
            w.frees,
            w.reallocs,
            w.bytes
        );
    }
    if let Some((typed, untyped)) = FUTURE_SIZES.get() {
        println!();
        println!(
            "the future of one call (built, not polled): typed add {typed} bytes, untyped \
             call_value {untyped} bytes"
        );
    }
    let mut out = report::Report::new("alloc", "Heap allocations per call (Rust, process-wide)");
    let r2 = |x: f64| report::round(x, 2);
    for r in rows {
        let w = r.wsp();
        out.case([
            ("name", json!(r.name)),
            ("shape", json!(format!("{}, {}", r.shape, r.runtime))),
            ("payload", json!(r.payload)),
            ("calls", json!(n)),
            ("allocs_per_call", r2(w.allocs)),
            ("frees_per_call", r2(w.frees)),
            ("reallocs_per_call", r2(w.reallocs)),
            ("bytes_per_call", report::round(w.bytes, 0)),
            ("total_allocs_per_call", r2(r.total.allocs)),
            ("loop_allocs_per_call", r2(r.bench_loop.allocs)),
            ("baseline", json!(null)),
            ("ratio", json!(null)),
            ("target", json!(null)),
        ]);
    }
    out.write();
}
