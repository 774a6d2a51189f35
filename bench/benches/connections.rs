//! Many connections at once: 1,024 clients, each making 10 calls one after the other, all
//! clients at the same time, against one server: the generated wsp `add(a, b)` and jsonrpsee
//! 0.26's `add` (issue 10's target: wsp ≥ 1.5× jsonrpsee). The connections are opened first and
//! timed apart; the figure is calls per second over the call phase, the median of the rounds.
//!
//! Run with `cargo bench -p wsp-bench --bench connections` (`WSP_BENCH_ROUNDS`, default 5).
//! Besides the table, the results are written to `target/bench-results/connections.json`.

mod jsonrpsee_add;
mod report;

use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonrpsee_core::client::ClientT;
use jsonrpsee_core::rpc_params;
use jsonrpsee_ws_client::{WsClient, WsClientBuilder};
use serde_json::json;
use wsp_bench::Adder;
use wsp_bench::bench::{BenchClient, BenchServer};
use wsp_runtime::{Client, Server};

const CONNECTIONS: usize = 1024;
const CALLS: u32 = 10;

/// What one round measured.
struct Round {
    connect: Duration,
    calls: Duration,
}

/// Runs `call(client, i)` `CALLS` times in a row on every client, all clients at once.
async fn call_phase<C, F, Fut>(clients: &[C], call: F) -> Duration
where
    C: Clone + Send + 'static,
    F: Fn(C, u32) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let start = Instant::now();
    let tasks: Vec<_> = clients
        .iter()
        .cloned()
        .map(|c| {
            let call = call.clone();
            tokio::spawn(async move {
                for i in 0..CALLS {
                    call(c.clone(), i).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("a client's calls");
    }
    start.elapsed()
}

async fn wsp_round() -> Round {
    let server = Server::builder()
        .service(BenchServer::new(Adder).into_service())
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let start = Instant::now();
    let opened = (0..CONNECTIONS).map(|_| {
        let url = server.url();
        tokio::spawn(async move {
            let client = Client::builder(url).build();
            client.connect().await.unwrap();
            client
        })
    });
    let mut clients = Vec::with_capacity(CONNECTIONS);
    for c in opened.collect::<Vec<_>>() {
        clients.push(c.await.unwrap());
    }
    let connect = start.elapsed();
    let typed: Vec<BenchClient> = clients
        .iter()
        .map(|c| BenchClient::from_caller(c.caller()))
        .collect();
    let calls = call_phase(&typed, |b: BenchClient, i| async move {
        let a = i as i32;
        assert_eq!(b.add(a, 2).await.unwrap(), a + 2);
    })
    .await;
    for c in &clients {
        let _ = c.close(1000, "done").await;
    }
    server.close().await;
    Round { connect, calls }
}

async fn jsonrpsee_round() -> Round {
    let (addr, handle) = jsonrpsee_add::serve(2 * CONNECTIONS as u32).await;
    let start = Instant::now();
    let opened = (0..CONNECTIONS).map(|_| {
        let url = format!("ws://{addr}");
        tokio::spawn(async move { Arc::new(WsClientBuilder::default().build(url).await.unwrap()) })
    });
    let mut clients = Vec::with_capacity(CONNECTIONS);
    for c in opened.collect::<Vec<_>>() {
        clients.push(c.await.unwrap());
    }
    let connect = start.elapsed();
    let calls = call_phase(&clients, |c: Arc<WsClient>, i| async move {
        let a = i as i32;
        let sum: i32 = c.request("add", rpc_params![a, 2]).await.unwrap();
        assert_eq!(sum, a + 2);
    })
    .await;
    drop(clients);
    let _ = handle.stop();
    Round { connect, calls }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let rounds: usize = std::env::var("WSP_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
        .max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (mut wsp, mut jrpc) = (Vec::new(), Vec::new());
    rt.block_on(async {
        // Interleaved rounds, so drift of a shared machine hits both alike.
        for _ in 0..rounds {
            wsp.push(wsp_round().await);
            jrpc.push(jsonrpsee_round().await);
        }
    });
    let total = (CONNECTIONS as f64) * f64::from(CALLS);
    let report = |name: &str, rs: &[Round]| {
        let calls = median(rs.iter().map(|r| r.calls).collect());
        let connect = median(rs.iter().map(|r| r.connect).collect());
        let rate = total / calls.as_secs_f64();
        println!(
            "| {name} | {} ms | {} ms | {rate:.0} |",
            connect.as_millis(),
            calls.as_millis()
        );
        (rate, connect, calls)
    };
    println!(
        "| {CONNECTIONS} connections × {CALLS} calls, {rounds} rounds | connect all (median) | all calls (median) | calls/s |"
    );
    println!("|---|---:|---:|---:|");
    let (wsp_name, jrpc_name) = ("wsp typed add(a, b)", "jsonrpsee 0.26 add(a, b)");
    let w = report(wsp_name, &wsp);
    let j = report(jrpc_name, &jrpc);
    let verdict = if w.0 / j.0 >= 1.5 { "met" } else { "MISSED" };
    println!();
    println!(
        "wsp / jsonrpsee: {:.2} (target ≥ 1.5: {verdict})",
        w.0 / j.0
    );

    let mut out = report::Report::new("connections", "Many connections at once (Rust)");
    let shape = format!("{CONNECTIONS} connections × {CALLS} calls");
    for (name, (rate, connect, calls), baseline) in
        [(wsp_name, w, Some(jrpc_name)), (jrpc_name, j, None)]
    {
        out.case([
            ("name", json!(name)),
            ("shape", json!(shape)),
            ("calls_per_s", report::round(rate, 0)),
            ("p50_us", json!(null)),
            ("p99_us", json!(null)),
            ("connect_ms", json!(connect.as_millis() as u64)),
            ("calls_ms", json!(calls.as_millis() as u64)),
            ("baseline", json!(baseline)),
            (
                "ratio",
                json!(baseline.map(|_| report::round(rate / j.0, 3))),
            ),
            ("target", json!(baseline.map(|_| 1.5))),
        ]);
    }
    out.write();
}
