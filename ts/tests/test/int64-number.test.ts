/**
 * Generated code with 64-bit integers as `number` (ts/generated/int64-number, wsp-codegen's
 * `Int64::Number`): safe values round-trip; values beyond 2^53 fail loudly in both directions
 * instead of losing precision.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { RpcError, type Client } from '@wsp/runtime';
import type { WspServer } from '@wsp/runtime/node';
import * as exact from '../../generated/kitchen.sink.js';
import * as num from '../../generated/int64-number/kitchen.sink.js';
import * as numMath from '../../generated/int64-number/math.js';
import { newClient, startServer, within } from './helpers.js';

const SAFE = Number.MAX_SAFE_INTEGER;

const primitives: num.Primitives = {
  a_bool: false,
  an_i8: 1,
  an_i16: 2,
  an_i32: 3,
  an_i64: -SAFE,
  a_u8: 4,
  a_u16: 5,
  a_u32: 6,
  a_u64: SAFE,
  an_f32: 0.5,
  an_f64: 0.25,
  a_string: '',
  some_bytes: new Uint8Array([1]),
  maybe_u64: 0,
};

describe('64-bit integers as number', () => {
  let server: WspServer;
  let client: Client;

  before(async () => {
    let url: string;
    ({ server, url } = await startServer());
    // The server is generated with bigint (exact); the client with number.
    exact.serveKitchenSink(server, {
      echo: (value) => value,
      touch() {},
      search: () => [],
      list: () => [],
      *watch() {},
      ping() {},
      old_echo: (value) => value,
      eval: () => new Map(),
    });
    numMath.serveMath(server, {
      add: (values) => values.reduce((a, b) => a + b, 0),
      divide: (a, b) => a / b,
      *count() {},
      async sum(values) {
        let total = 0;
        for await (const v of values) total += v;
        return total;
      },
      async *running(start, values) {
        let total = start;
        for await (const v of values) yield (total += v);
      },
      reset() {},
      log() {},
    });
    client = newClient(url);
    await within(client.connect(), 3000, 'connect');
  });

  after(async () => {
    await client.close();
    await server.close();
  });

  test('safe values round-trip as numbers', async () => {
    const k = new num.KitchenSinkClient(client);
    assert.deepEqual(await k.echo(primitives), primitives);
    assert.equal(await new numMath.MathClient(client).add([SAFE - 1, 1]), SAFE);
  });

  test('sending an unsafe number rejects instead of rounding', async () => {
    const k = new num.KitchenSinkClient(client);
    await assert.rejects(k.echo({ ...primitives, a_u64: 2 ** 60 }), RangeError);
    await assert.rejects(new numMath.MathClient(client).add([0.5]), RangeError);
  });

  test('receiving a value beyond 2^53 fails the call (result) or INVALID_ARGUMENTS (arguments)', async () => {
    // A bigint client sends 2^64 − 1 to a number handler: its arguments do not decode.
    const add = await client.call('math.Math/add', [[2n ** 64n - 1n]]).catch((e: unknown) => e);
    assert.ok(add instanceof RpcError && add.code === 'INVALID_ARGUMENTS', String(add));
    // A number client receives 2^64 − 1 from the exact server: the result does not decode.
    const big = await client
      .call('kitchen.sink.KitchenSink/echo', [exact.encodePrimitives({ ...primitives, an_i64: 0n, a_u64: 2n ** 64n - 1n, maybe_i64: undefined, maybe_u64: 0n })], {
        decode: num.decodePrimitives,
      })
      .catch((e: unknown) => e);
    assert.ok(big instanceof RpcError && big.code === 'INTERNAL' && /does not fit/.test(big.message), String(big));
  });
});
