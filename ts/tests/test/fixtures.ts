/**
 * Values shared by the TS ↔ TS and the Node ↔ Rust tests. `primitives` matches
 * `tests/interop/src/values.rs` on the Rust side: every primitive at its extremes.
 */
import type * as sink from '../../generated/kitchen.sink.js';

export const primitives: sink.Primitives = {
  a_bool: true,
  an_i8: -128,
  an_i16: -32768,
  an_i32: -(2 ** 31),
  an_i64: -(2n ** 63n),
  a_u8: 255,
  a_u16: 65535,
  a_u32: 2 ** 32 - 1,
  a_u64: 2n ** 64n - 1n,
  an_f32: 1.5,
  an_f64: 2,
  a_string: 'héllo ✓',
  some_bytes: new Uint8Array([0, 1, 2, 255]),
  maybe_i64: 2n ** 53n + 1n,
  maybe_bytes: new Uint8Array([]),
};
