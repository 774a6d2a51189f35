//! Memory per idle connection of a wsp server: a server process (this binary, started again
//! as a child) serving the bench service with the default `Config`, and this process opening
//! 10,000 connections to it, each upgraded, HELLO exchanged, then left idle. Reported per
//! connection: the growth of the server's resident set (`VmRSS`) and of its live heap bytes
//! (a counting allocator), each between before the first and after the last connection.
//!
//! Run with `cargo bench -p wsp-bench --bench idle` (`WSP_IDLE_CONNECTIONS` sets the count,
//! `WSP_IDLE_READ_BUFFER` the server's `Config::read_buffer_size`).
//! The clients are raw sockets doing the upgrade by hand, so that they cost the measured
//! process nothing and need nothing of wsp. Besides the printed figures, the results are
//! written to `target/bench-results/idle.json`.

mod report;

use std::alloc::System;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wsp_bench::Adder;
use wsp_bench::bench::BenchServer;
use wsp_runtime::Server;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const CHILD_ENV: &str = "WSP_IDLE_SERVER";

fn main() {
    if std::env::var_os(CHILD_ENV).is_some() {
        serve();
    } else {
        measure();
    }
}

/// Resident set size of this process in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib * 1024
}

fn live_heap() -> i64 {
    let s = GLOBAL.stats();
    s.bytes_allocated as i64 - s.bytes_deallocated as i64
}

/// Two workers, as in the round-trip benchmark.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// The child: serves, prints its port, then answers each line on stdin with
/// `<rss> <live heap> <connections open>`; exits when stdin closes.
fn serve() {
    let rt = runtime();
    rt.block_on(async {
        let mut config = wsp_runtime::Config::default();
        if let Some(n) = std::env::var("WSP_IDLE_READ_BUFFER")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            config = config.read_buffer_size(n);
        }
        let server = Server::builder()
            .config(config)
            .max_connections(usize::MAX)
            .service(BenchServer::new(Adder).into_service())
            .bind("127.0.0.1:0")
            .await
            .expect("binds");
        println!("{}", server.local_addr().port());
        let lines = tokio::task::spawn_blocking(move || {
            let stdin = std::io::stdin();
            for line in stdin.lock().lines() {
                if line.is_err() {
                    break;
                }
                let open = server.stats().connections_open;
                println!("{} {} {open}", rss(), live_heap());
            }
        });
        let _ = lines.await;
    });
}

/// Opens one connection by hand: upgrade, HELLO, and the server's HELLO read back.
async fn open(port: u16) -> TcpStream {
    let mut tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let request = format!(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: wsp.v1.msgpack\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.expect("upgrade");
    // The 101 response first (a client sends nothing more before it, RFC 6455 §4.1), then the
    // server's HELLO frame.
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    let mut hello_sent = false;
    loop {
        let n = tcp.read(&mut buf).await.expect("read");
        assert!(n > 0, "the server closed the connection");
        got.extend_from_slice(&buf[..n]);
        let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        assert!(got.starts_with(b"HTTP/1.1 101"), "upgrade refused");
        if !hello_sent {
            // HELLO [0, 1, {}], masked with a zero key.
            tcp.write_all(&[0x82, 0x84, 0, 0, 0, 0, 0x93, 0x00, 0x01, 0x80])
                .await
                .expect("hello");
            hello_sent = true;
        }
        let frames = &got[end + 4..];
        if frames.len() >= 2 && frames.len() >= 2 + usize::from(frames[1] & 0x7f) {
            return tcp;
        }
    }
}

fn measure() {
    let count: usize = std::env::var("WSP_IDLE_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .env(CHILD_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("server process");
    let mut to_child = child.stdin.take().expect("stdin");
    let mut from_child = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    from_child.read_line(&mut line).expect("port");
    let port: u16 = line.trim().parse().expect("a port");
    let mut sample = move || -> (u64, i64, u64) {
        writeln!(to_child, "sample").expect("ask");
        let mut line = String::new();
        from_child.read_line(&mut line).expect("answer");
        let v: Vec<&str> = line.split_whitespace().collect();
        (
            v[0].parse().unwrap(),
            v[1].parse().unwrap(),
            v[2].parse().unwrap(),
        )
    };

    let rt = runtime();
    rt.block_on(async {
        // One connection first, so that what every server allocates once is not counted.
        let warm = open(port).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (rss0, heap0, _) = sample();
        let started = Instant::now();
        let mut conns = Vec::with_capacity(count);
        for _ in 0..count {
            conns.push(open(port).await);
        }
        let took = started.elapsed();
        // Let the server settle (its HELLO handling and any lazy allocation).
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (rss1, heap1, open) = sample();
        assert_eq!(open as usize, count + 1, "every connection is open");
        let per = |d: f64| d / count as f64 / 1024.0;
        println!(
            "idle connections to one wsp server (default Config), {count} opened in {took:.1?}"
        );
        println!(
            "  per connection: {:.2} KiB resident (VmRSS), {:.2} KiB live heap",
            per((rss1 - rss0) as f64),
            per((heap1 - heap0) as f64),
        );
        let mut out = report::Report::new("idle", "Memory per idle connection (Rust server)");
        let bytes = |d: f64| report::round(d / count as f64, 0);
        out.case([
            ("name", json!("wsp server")),
            ("shape", json!("idle")),
            ("connections", json!(count)),
            ("connect_s", report::round(took.as_secs_f64(), 2)),
            ("bytes_per_connection", bytes((rss1 - rss0) as f64)),
            ("heap_bytes_per_connection", bytes((heap1 - heap0) as f64)),
            // The goal: at most 8 KiB resident per connection (Node's `ws` holds 3–6 KiB).
            ("max_bytes_per_connection", json!(8192)),
            ("baseline", json!(null)),
            ("ratio", json!(null)),
            ("target", json!(null)),
        ]);
        out.write();
        drop(conns);
        drop(warm);
    });
    let _ = child.kill();
    let _ = child.wait();
}
