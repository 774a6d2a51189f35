//! Stream throughput in items per second, each kind in the same run: a server stream (the
//! baseline: ITEMs with CREDIT), a client stream (PUSHes with PULL, one result) and a
//! bidirectional stream (each item sent and echoed), all of small integers over one
//! connection on loopback, MessagePack, two workers.
//!
//! Run with `cargo bench -p wsp-bench --bench streams` (`WSP_STREAM_ITEMS` sets the items per
//! round, default 200,000; `WSP_BENCH_ROUNDS` the rounds, default 5; the median is reported).
//! The results are also written to `target/bench-results/streams.json`.

mod report;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;
use wsp_runtime::{CallOptions, Client, Codec, FnService, Server, Value};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `s.S`: `items(n)` streams `0..n`, `sink` counts the items sent to it, `echo` answers each.
fn service() -> FnService {
    FnService::new("s.S")
        .stream("items", |_, args| {
            let n = args.first().and_then(Value::as_u64).unwrap_or(0);
            futures_util::stream::iter((0..n).map(|i| Ok(Value::from(i))))
        })
        .upload("sink", |_, _, mut items| async move {
            let mut n = 0u64;
            while let Some(item) = items.next().await {
                item?;
                n += 1;
            }
            Ok(Value::from(n))
        })
        .duplex("echo", |_, _, items| items.map(|item| Ok(item?)))
}

async fn server_stream(client: &Client, n: usize) -> Duration {
    let start = Instant::now();
    let got = client
        .stream::<_, u64>("s.S/items", &(n,), CallOptions::new())
        .fold(0usize, |count, item| async move {
            item.expect("an item");
            count + 1
        })
        .await;
    assert_eq!(got, n);
    start.elapsed()
}

async fn client_stream(client: &Client, n: usize) -> Duration {
    let start = Instant::now();
    let items = futures_util::stream::iter(0..n as u64);
    let count: u64 = client
        .upload("s.S/sink", &(), items, CallOptions::new())
        .await
        .expect("the upload");
    assert_eq!(count, n as u64);
    start.elapsed()
}

async fn bidirectional(client: &Client, n: usize) -> Duration {
    let start = Instant::now();
    let items = futures_util::stream::iter(0..n as u64);
    let got = client
        .duplex::<_, _, _, u64>("s.S/echo", &(), items, CallOptions::new())
        .fold(0usize, |count, item| async move {
            item.expect("an item");
            count + 1
        })
        .await;
    assert_eq!(got, n);
    start.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let items = env_or("WSP_STREAM_ITEMS", 200_000);
    let rounds = env_or("WSP_BENCH_ROUNDS", 5).max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let (server_t, client_t, duplex_t) = rt.block_on(async {
        let server = Server::builder()
            .service(service().into_service())
            .bind("127.0.0.1:0")
            .await
            .expect("binds");
        let client = Client::builder(server.url()).codec(Codec::MsgPack).build();
        client.connect().await.expect("connects");
        // One short warm-up of each kind, then the rounds, interleaved so that drift in the
        // machine's speed falls on all three alike.
        server_stream(&client, 1000).await;
        client_stream(&client, 1000).await;
        bidirectional(&client, 1000).await;
        let (mut s, mut c, mut d) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            s.push(server_stream(&client, items).await);
            c.push(client_stream(&client, items).await);
            d.push(bidirectional(&client, items).await);
        }
        client.close(1000, "done").await.expect("closes");
        server.close().await;
        (median(s), median(c), median(d))
    });
    let rate = |t: Duration| items as f64 / t.as_secs_f64();
    let baseline = rate(server_t);
    println!("{items} small items, median of {rounds} rounds, MessagePack, loopback");
    let mut out = report::Report::new("streams", "Stream throughput (Rust)");
    for (name, t) in [
        ("server stream (ITEM)", server_t),
        ("client stream (PUSH)", client_t),
        ("bidirectional (PUSH + ITEM)", duplex_t),
    ] {
        let r = rate(t);
        println!(
            "{name:<30} {:>10.0} items/s   {:>5.2}× the server stream",
            r,
            r / baseline
        );
        out.case([
            ("name", json!(name)),
            ("items", json!(items)),
            ("items_per_s", report::round(r, 0)),
            ("ratio", report::round(r / baseline, 3)),
            ("baseline", json!("server stream (ITEM)")),
        ]);
    }
    out.write();
}
