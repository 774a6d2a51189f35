//! The round-trip benchmark of wsp (`cargo bench -p wsp-bench`, see `BENCHMARKS.md`).
//!
//! This library holds the code generated from `bench.wsp` (two lines in `build.rs`, one macro
//! here, as in any application) and the [`Adder`] service the benchmark serves; the benchmark
//! itself is `benches/rpc.rs`.

use wsp_runtime::{CallContext, ServiceError};

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

    async fn echo(&self, _ctx: CallContext, data: Vec<u8>) -> Result<Vec<u8>, ServiceError> {
        Ok(data)
    }
}
