//! The round-trip benchmark of wsp (`cargo bench -p wsp-bench`, see `BENCHMARKS.md`).
//!
//! This library holds the code generated from `bench.wsp` (two lines in `build.rs`, one macro
//! here, as in any application) and the [`Adder`] service the benchmark serves; the benchmark
//! itself is `benches/rpc.rs`.

use std::time::Duration;

use wsp_runtime::{Bytes, CallContext, Client, Peer, Server, ServiceError};

/// Generated from `bench.wsp`.
#[allow(missing_docs)]
pub mod bench {
    wsp_runtime::include_schema!("bench");
}

/// The `bench.Bench` service: `add(a, b)` is `a + b` (wrapping), `echo(data)` is `data`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Adder;

impl bench::Bench for Adder {
    async fn add(&self, _ctx: CallContext, a: i32, b: i32) -> Result<i32, ServiceError> {
        Ok(a.wrapping_add(b))
    }

    async fn echo(&self, _ctx: CallContext, data: Bytes) -> Result<Bytes, ServiceError> {
        Ok(data)
    }
}

/// A server on a loopback port and a connected client that serves `bench.Bench` to it, with the
/// server's handle to that connection: the setup of calls in the server → client direction.
pub async fn serving_client() -> (Server, Client, Peer) {
    let server = Server::builder().bind("127.0.0.1:0").await.expect("binds");
    let client = Client::builder(server.url())
        .service(bench::BenchServer::new(Adder).into_service())
        .build();
    client.connect().await.expect("connects");
    let peer = loop {
        // The server lists the connection once it attached it.
        if let Some(p) = server.connections().pop() {
            break p;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    (server, client, peer)
}
