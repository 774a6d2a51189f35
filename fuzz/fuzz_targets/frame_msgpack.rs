//! Arbitrary bytes as a MessagePack wsp frame (envelope, HELLO services, payload value), and
//! as the byte stream under a connection (the frame-header tracker); must never panic, hang or
//! overflow the stack. Run with `scripts/fuzz` (stable toolchain) from the repository root.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsp_runtime::Codec;

fuzz_target!(|data: &[u8]| {
    wsp_runtime::fuzzing::frame(Codec::MsgPack, data);
    let cut = data.first().map_or(0, |b| usize::from(*b));
    wsp_runtime::fuzzing::byte_stream(data, cut);
});
