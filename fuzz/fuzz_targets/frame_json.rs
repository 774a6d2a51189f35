//! Arbitrary bytes as a JSON wsp frame (envelope, HELLO services, payload value); must never
//! panic, hang or overflow the stack. Run with `scripts/fuzz` (stable toolchain).
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsp_runtime::Codec;

fuzz_target!(|data: &[u8]| {
    wsp_runtime::fuzzing::frame(Codec::Json, data);
});
