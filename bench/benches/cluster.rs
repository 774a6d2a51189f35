//! A cluster's cost. First the relay cluster: the generated `add(a, b)` through two relay nodes sharing their
//! routing through a real NATS server (the caller at one node, the host at the other: every
//! frame crosses NATS twice) against the same call through one node (caller and host at the
//! same node), sequentially and with 256 calls in flight, in the same run. Plain relayed
//! connections (no end-to-end encryption), to show the tunnel's own cost.
//!
//! Then the server cluster: a broadcast to 1,000 clients, all on one server, and spread over
//! two server nodes (500 each, the broadcast made at one of them): the time from the call to
//! the last client's receipt.
//!
//! Needs `nats-server` (Debian's package; `$NATS_SERVER` names another binary). Run with
//! `cargo bench -p wsp-bench --bench cluster` (`WSP_BENCH_SECS` seconds per case and round,
//! default 2; `WSP_BENCH_ROUNDS` rounds, default 5; the median round is reported). The results
//! are also written to `target/bench-results/cluster.json`.

mod report;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use wsp_bench::Adder;
use wsp_bench::bench::{BenchClient, BenchServer};
use wsp_runtime::relay::{Identity, RelayOptions};

use tokio::sync::Notify;
use wsp_runtime::{Client, FnService, Server};

const DEPTH: usize = 256;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A `nats-server` on a port the system picks, killed when dropped.
struct Nats(Child, u16);

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn nats() -> Nats {
    let binary = std::env::var("NATS_SERVER").unwrap_or_else(|_| {
        ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
            .into_iter()
            .find(|p| std::path::Path::new(p).is_file())
            .unwrap_or("nats-server")
            .to_owned()
    });
    let mut child = Command::new(&binary)
        .args(["-a", "127.0.0.1", "-p", "-1"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{binary}: {e} (apt-get install nats-server)"));
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut port = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.split("Listening for client connections on ").nth(1) {
            port = rest.rsplit(':').next().and_then(|p| p.trim().parse().ok());
        }
        if line.contains("Server is ready") {
            break;
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
    Nats(child, port.expect("nats-server logged its port"))
}

async fn sequential(bench: &BenchClient, dur: Duration) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < dur {
        let a = (n & 0xffff) as i32;
        assert_eq!(bench.add(a, 2).await.unwrap(), a + 2);
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

async fn pipelined(bench: &BenchClient, dur: Duration) -> f64 {
    let start = Instant::now();
    let mut inflight = FuturesUnordered::new();
    let mut n = 0u64;
    let call = |i: u64| {
        let bench = bench.clone();
        async move {
            let a = (i & 0xffff) as i32;
            assert_eq!(bench.add(a, 2).await.unwrap(), a + 2);
        }
    };
    for i in 0..DEPTH as u64 {
        inflight.push(call(i));
    }
    let mut started = DEPTH as u64;
    while inflight.next().await.is_some() {
        n += 1;
        if start.elapsed() < dur {
            inflight.push(call(started));
            started += 1;
        }
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// The engine's own round trip, for reference: one NATS client publishes, another answers on
/// a second subject (two connections, as between two nodes), one message at a time.
async fn nats_round_trips(url: &str, dur: Duration) -> f64 {
    let a = async_nats::connect(url).await.expect("NATS");
    let b = async_nats::connect(url).await.expect("NATS");
    let mut back = a.subscribe("bench.back").await.unwrap();
    let mut there = b.subscribe("bench.there").await.unwrap();
    let answer = tokio::spawn(async move {
        while let Some(m) = there.next().await {
            let _ = b.publish("bench.back", m.payload).await;
        }
    });
    a.flush().await.unwrap();
    // Until the answering side's subscription is surely in place.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < dur {
        a.publish("bench.there", "ping".into()).await.unwrap();
        back.next().await.unwrap();
        n += 1;
    }
    answer.abort();
    n as f64 / start.elapsed().as_secs_f64()
}

/// `n` clients of `server` that count the `t.T.client/tick` notifications they receive.
async fn listeners(
    server: &Server,
    n: usize,
    seen: &Arc<AtomicUsize>,
    all: &Arc<Notify>,
    total: usize,
) -> Vec<Client> {
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        let (seen, all) = (seen.clone(), all.clone());
        let tick = FnService::new("t.T.client").notify("tick", move |_, _| {
            if seen.fetch_add(1, Ordering::SeqCst) + 1 == total {
                all.notify_one();
            }
        });
        let client = Client::builder(server.url())
            .service(tick.into_service())
            .build();
        client.connect().await.expect("connects");
        clients.push(client);
    }
    clients
}

/// Median time (µs) from `notify_all` at `from` until every listener has the tick.
async fn fan_out(from: &Server, seen: &AtomicUsize, all: &Notify, rounds: usize) -> f64 {
    let mut times = Vec::new();
    for _ in 0..rounds.max(3) {
        seen.store(0, Ordering::SeqCst);
        let start = Instant::now();
        from.notify_all("t.T.client/tick", &(1u32,))
            .expect("broadcast");
        tokio::time::timeout(Duration::from_secs(20), all.notified())
            .await
            .expect("every client got the broadcast");
        times.push(start.elapsed().as_secs_f64() * 1e6);
        // The next round starts from quiet.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    median(times)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let secs: f64 = env_or("WSP_BENCH_SECS", 2.0);
    let rounds: usize = env_or("WSP_BENCH_ROUNDS", 5usize).max(1);
    let dur = Duration::from_secs_f64(secs);
    let nats = nats();
    let url = format!("nats://127.0.0.1:{}", nats.1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let results = rt.block_on(async {
        let node = || async {
            wsp_relay::Relay::builder()
                .cluster(url.clone())
                .bind("127.0.0.1:0")
                .await
                .expect("a relay node joins")
        };
        let (a, b) = (node().await, node().await);
        let host = Server::builder()
            .service(BenchServer::new(Adder).into_service())
            .bind_relay(
                RelayOptions::new(a.url(), Identity::generate())
                    .encrypt(false)
                    .spares(2),
            )
            .await
            .expect("host registers");
        let mut systems = Vec::new();
        for (name, relay) in [("same node", &a), ("across two nodes", &b)] {
            let client = Client::via_relay(relay.url(), host.public_key())
                .encrypt(false)
                .build();
            client.connect().await.expect("connects");
            systems.push((name, BenchClient::from_caller(client.caller()), client));
        }
        // Rounds interleave the systems, so drift of the machine hits both alike.
        let mut rates = vec![(Vec::new(), Vec::new()); systems.len()];
        let mut raw = Vec::new();
        for _ in 0..rounds {
            for (i, (_, bench, _)) in systems.iter().enumerate() {
                rates[i].0.push(sequential(bench, dur).await);
                rates[i].1.push(pipelined(bench, dur).await);
            }
            raw.push(nats_round_trips(&url, dur).await);
        }
        let raw = median(raw);
        let out: Vec<(&str, f64, f64)> = systems
            .iter()
            .zip(rates)
            .map(|((name, _, _), (seq, pipe))| (*name, median(seq), median(pipe)))
            .collect();
        for (_, _, client) in systems {
            let _ = client.close(1000, "measured").await;
        }
        host.close().await;
        a.close().await;
        b.close().await;

        // Broadcast fan-out: 1,000 clients on one server, then 500 on each of two nodes.
        const CLIENTS: usize = 1000;
        let (seen, all) = (Arc::new(AtomicUsize::new(0)), Arc::new(Notify::new()));
        let single = Server::builder().bind("127.0.0.1:0").await.expect("binds");
        let clients = listeners(&single, CLIENTS, &seen, &all, CLIENTS).await;
        let one = fan_out(&single, &seen, &all, rounds).await;
        for c in clients {
            let _ = c.close(1000, "measured").await;
        }
        single.close().await;
        let node = || async {
            Server::builder()
                .cluster(url.clone())
                .bind("127.0.0.1:0")
                .await
                .expect("a server node joins")
        };
        let (n1, n2) = (node().await, node().await);
        let mut clients = listeners(&n1, CLIENTS / 2, &seen, &all, CLIENTS).await;
        clients.extend(listeners(&n2, CLIENTS / 2, &seen, &all, CLIENTS).await);
        let two = fan_out(&n1, &seen, &all, rounds).await;
        for c in clients {
            let _ = c.close(1000, "measured").await;
        }
        n1.close().await;
        n2.close().await;
        (out, raw, (one, two))
    });
    let (results, raw, (fan_one, fan_two)) = results;
    drop(nats);

    println!(
        "| typed add(a, b) through a relay ({rounds} rounds × {secs} s) | sequential calls/s | × same node | {DEPTH} in flight calls/s | × same node |"
    );
    println!("|---|---:|---:|---:|---:|");
    let (base_seq, base_pipe) = (results[0].1, results[0].2);
    let mut report = report::Report::new("cluster", "Relay cluster on NATS (Rust)");
    for (name, seq, pipe) in &results {
        println!(
            "| {name} | {seq:.0} | {:.2} | {pipe:.0} | {:.2} |",
            seq / base_seq,
            pipe / base_pipe
        );
        for (shape, rate, base) in [
            ("sequential", seq, base_seq),
            ("pipelined", pipe, base_pipe),
        ] {
            report.case([
                ("name", json!(format!("typed add, {name}"))),
                ("shape", json!(shape)),
                ("calls_per_s", report::round(*rate, 0)),
                ("ratio", report::round(rate / base, 3)),
                ("baseline", json!("typed add, same node")),
            ]);
        }
    }
    println!(
        "| NATS round trip (reference: publish, answer on another subject) | {raw:.0} | {:.2} | | |",
        raw / base_seq
    );
    report.case([
        ("name", json!("NATS round trip")),
        ("shape", json!("sequential")),
        ("calls_per_s", report::round(raw, 0)),
        ("ratio", report::round(raw / base_seq, 3)),
        ("baseline", json!("typed add, same node")),
    ]);
    println!();
    println!(
        "| broadcast to 1,000 clients | time to the last receipt µs (median) | × one server |"
    );
    println!("|---|---:|---:|");
    println!("| one server | {fan_one:.0} | 1.00 |");
    println!(
        "| two server nodes, 500 clients each | {fan_two:.0} | {:.2} |",
        fan_two / fan_one
    );
    for (name, t) in [
        ("broadcast to 1,000 clients, one server", fan_one),
        ("broadcast to 1,000 clients, two nodes", fan_two),
    ] {
        report.case([
            ("name", json!(name)),
            ("shape", json!("fan-out")),
            ("micros", report::round(t, 0)),
            ("ratio", report::round(t / fan_one, 3)),
            ("baseline", json!("broadcast to 1,000 clients, one server")),
        ]);
    }
    report.write();
}
