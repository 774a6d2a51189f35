//! Round-trip benchmark: raw tokio-tungstenite echo vs wsp calls, one connection on loopback,
//! sequential and with 256 calls in flight. Run with
//! `cargo bench -p wsp-runtime --bench rpc` (optionally `-- <seconds per case>`).
//!
//! Each system is one [`Bench`] implementation; add a case (typed wsp calls, jsonrpsee) by
//! implementing the trait and listing it in `main`.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::FuturesUnordered;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};
use tokio_tungstenite::tungstenite::Message;
use wsp_runtime::{Caller, Client, FnService, Server, Value};

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

const PAYLOAD: usize = 64;
const DEPTH: usize = 256;

/// Latencies of the calls completed during one case.
#[derive(Default)]
struct Samples {
    elapsed: Duration,
    nanos: Vec<u64>,
    /// Calls per second of each round.
    rounds: Vec<f64>,
}

impl Samples {
    fn add(&mut self, other: Samples) {
        self.rounds
            .push(other.nanos.len() as f64 / other.elapsed.as_secs_f64());
        self.elapsed += other.elapsed;
        self.nanos.extend(other.nanos);
    }
}

/// One system under test.
trait Bench: Send + Sync + 'static {
    fn name(&self) -> String;
    /// One call at a time for `dur`.
    fn sequential(&self, dur: Duration) -> BoxFut<'_, Samples>;
    /// `depth` calls in flight for `dur`.
    fn pipelined(&self, depth: usize, dur: Duration) -> BoxFut<'_, Samples>;
}

// ------------------------------------------------------------------ raw echo

/// A raw echo server like the runtime's layout: a reader task and a writer task per
/// connection. `batched`: the writer feeds every queued message and flushes once (what wsp
/// does); otherwise it sends (and flushes) each message.
async fn raw_echo_server(batched: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tcp.set_nodelay(true).unwrap();
            tokio::spawn(async move {
                let ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
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

struct RawEcho {
    url: String,
    batched: bool,
}

impl Bench for RawEcho {
    fn name(&self) -> String {
        if self.batched {
            "raw echo, batched writes".into()
        } else {
            "raw echo".into()
        }
    }

    fn sequential(&self, dur: Duration) -> BoxFut<'_, Samples> {
        Box::pin(async move {
            let (mut ws, _) = tokio_tungstenite::connect_async_with_config(&self.url, None, true)
                .await
                .unwrap();
            let payload = bytes::Bytes::from(vec![7u8; PAYLOAD]);
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
            Samples {
                elapsed: start.elapsed(),
                nanos,
                rounds: Vec::new(),
            }
        })
    }

    fn pipelined(&self, depth: usize, dur: Duration) -> BoxFut<'_, Samples> {
        Box::pin(async move {
            let (ws, _) = tokio_tungstenite::connect_async_with_config(&self.url, None, true)
                .await
                .unwrap();
            let (mut sink, mut stream) = ws.split();
            let window = Arc::new(Semaphore::new(depth));
            let (sent_tx, mut sent_rx) = mpsc::unbounded_channel::<Instant>();
            let batched = self.batched;
            let start = Instant::now();
            let w = window.clone();
            let sender = tokio::spawn(async move {
                let payload = bytes::Bytes::from(vec![7u8; PAYLOAD]);
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
            Samples {
                elapsed,
                nanos,
                rounds: Vec::new(),
            }
        })
    }
}

// ------------------------------------------------------------------ wsp untyped

struct WspUntyped {
    caller: Caller,
    _client: Client,
    _server: Server,
}

impl WspUntyped {
    async fn start() -> WspUntyped {
        let svc = FnService::new("bench.Bench").unary("echo", |_, args| async move {
            Ok(args.into_iter().next().unwrap_or(Value::Nil))
        });
        let server = Server::builder()
            .service(svc.into_service())
            .bind("127.0.0.1:0")
            .await
            .unwrap();
        let client = Client::builder(server.url()).build();
        client.connect().await.unwrap();
        WspUntyped {
            caller: client.caller(),
            _client: client,
            _server: server,
        }
    }
}

async fn echo_call(caller: &Caller) {
    let r = caller
        .call_value("bench.Bench/echo", vec![Value::Binary(vec![7u8; PAYLOAD])])
        .await
        .unwrap();
    debug_assert!(matches!(r, Value::Binary(ref b) if b.len() == PAYLOAD));
}

impl Bench for WspUntyped {
    fn name(&self) -> String {
        "wsp untyped call (rmpv::Value)".into()
    }

    fn sequential(&self, dur: Duration) -> BoxFut<'_, Samples> {
        Box::pin(async move {
            let mut nanos = Vec::new();
            let start = Instant::now();
            while start.elapsed() < dur {
                let t = Instant::now();
                echo_call(&self.caller).await;
                nanos.push(t.elapsed().as_nanos() as u64);
            }
            Samples {
                elapsed: start.elapsed(),
                nanos,
                rounds: Vec::new(),
            }
        })
    }

    fn pipelined(&self, depth: usize, dur: Duration) -> BoxFut<'_, Samples> {
        Box::pin(async move {
            let mut nanos = Vec::new();
            let mut inflight = FuturesUnordered::new();
            let call = |caller: Caller| async move {
                let t = Instant::now();
                echo_call(&caller).await;
                t.elapsed().as_nanos() as u64
            };
            let start = Instant::now();
            for _ in 0..depth {
                inflight.push(call(self.caller.clone()));
            }
            while let Some(n) = inflight.next().await {
                nanos.push(n);
                if start.elapsed() < dur {
                    inflight.push(call(self.caller.clone()));
                }
            }
            Samples {
                elapsed: start.elapsed(),
                nanos,
                rounds: Vec::new(),
            }
        })
    }
}

// ------------------------------------------------------------------ report

struct Row {
    case: String,
    rate: f64,
    p50: u64,
    p99: u64,
}

/// The median round's rate (robust against a round disturbed by other load) and pooled
/// latency percentiles.
fn row(case: String, mut s: Samples) -> Row {
    s.nanos.sort_unstable();
    s.rounds.sort_by(f64::total_cmp);
    let median = s.rounds.get(s.rounds.len() / 2).copied().unwrap_or(0.0);
    let pct = |p: f64| {
        s.nanos
            .get(((s.nanos.len() as f64 * p) as usize).min(s.nanos.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    Row {
        case,
        rate: median,
        p50: pct(0.50) / 1000,
        p99: pct(0.99) / 1000,
    }
}

/// Runs a case in a task on a runtime worker, as application code would (not on the
/// `block_on` thread, where every wake-up crosses threads).
async fn on_worker(
    b: &Arc<dyn Bench>,
    f: impl FnOnce(&dyn Bench) -> BoxFut<'_, Samples> + Send + 'static,
) -> Samples {
    let b = b.clone();
    tokio::spawn(async move { f(&*b).await })
        .await
        .expect("bench task")
}

fn main() {
    let secs: f64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(2.5);
    // Each case runs in ROUNDS short rounds interleaved with the other systems, so drift of a
    // shared machine hits all systems alike.
    const ROUNDS: u32 = 9;
    let round = Duration::from_secs_f64(secs / f64::from(ROUNDS));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let benches: Vec<Arc<dyn Bench>> = vec![
            Arc::new(RawEcho { url: raw_echo_server(false).await, batched: false }),
            Arc::new(RawEcho { url: raw_echo_server(true).await, batched: true }),
            Arc::new(WspUntyped::start().await),
        ];
        for b in &benches {
            let _ = b.sequential(Duration::from_millis(200)).await;
            let _ = b.pipelined(DEPTH, Duration::from_millis(200)).await;
        }
        let mut seq: Vec<Samples> = benches.iter().map(|_| Samples::default()).collect();
        let mut pipe: Vec<Samples> = benches.iter().map(|_| Samples::default()).collect();
        for _ in 0..ROUNDS {
            for (i, b) in benches.iter().enumerate() {
                seq[i].add(on_worker(b, move |b| b.sequential(round)).await);
            }
            for (i, b) in benches.iter().enumerate() {
                pipe[i].add(on_worker(b, move |b| b.pipelined(DEPTH, round)).await);
            }
        }
        let mut rows = Vec::new();
        for (b, s) in benches.iter().zip(seq) {
            rows.push(row(format!("{}, sequential", b.name()), s));
        }
        for (b, s) in benches.iter().zip(pipe) {
            rows.push(row(format!("{}, {DEPTH} in flight", b.name()), s));
        }
        let n = benches.len();
        let (raw_seq, raw_pipe) = (rows[0].rate, rows[n].rate);
        println!("| case ({PAYLOAD}-byte payload, {secs} s each in {ROUNDS} rounds) | calls/s (median round) | p50 µs | p99 µs | × raw echo |");
        println!("|---|---:|---:|---:|---:|");
        for r in &rows {
            let base = if r.case.ends_with("sequential") { raw_seq } else { raw_pipe };
            println!("| {} | {:.0} | {} | {} | {:.2} |", r.case, r.rate, r.p50, r.p99, r.rate / base);
        }
    });
}
