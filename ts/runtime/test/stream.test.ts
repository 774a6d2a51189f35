/** Server streams: flow control, back-pressure, early break, errors. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApplicationError, type Client, RpcError } from '../src/index.js';
import type { WspServer } from '../src/node/index.js';
import { connectClient, rawConnect, sleep, startServer, until, within } from './helpers.js';

const T = { timeout: 15_000 };

describe('server streams', () => {
  let server: WspServer;
  let url: string;
  let client: Client;
  let produced = 0;
  let finallyRan = false;
  let streamSignal: AbortSignal | undefined;

  before(async () => {
    ({ server, url } = await startServer());
    server.addService('s.S', {
      count: {
        kind: 'stream',
        handler: async function* (args) {
          for (let i = 0; i < Number(args[0]); i++) yield i;
        },
      },
      endless: {
        kind: 'stream',
        handler: async function* (_args, ctx) {
          streamSignal = ctx.signal;
          produced = 0;
          finallyRan = false;
          try {
            for (;;) {
              produced++;
              yield produced;
            }
          } finally {
            finallyRan = true;
          }
        },
      },
      failing: {
        kind: 'stream',
        handler: async function* () {
          yield 1;
          throw new ApplicationError({ $type: 'Broken', at: 1 });
        },
      },
      fromArray: { kind: 'stream', handler: () => ['a', 'b', 'c'] },
    });
    client = await connectClient(url);
  });

  after(async () => {
    await client.close();
    await server.close();
  });

  test('items arrive in order, then END', T, async () => {
    const got: unknown[] = [];
    for await (const v of client.stream('s.S/count', [100])) got.push(v);
    assert.deepEqual(got, Array.from({ length: 100 }, (_, i) => i));
    const arr: unknown[] = [];
    for await (const v of client.stream('s.S/fromArray', [])) arr.push(v);
    assert.deepEqual(arr, ['a', 'b', 'c']);
  });

  test('a slow consumer holds the producer within the window (back-pressure)', T, async () => {
    const window = 8;
    const s = client.stream<number>('s.S/endless', [], { window });
    let consumed = 0;
    for (let i = 0; i < 40; i++) {
      const r = await within(s.next(), 3000);
      assert.equal(r.value, i + 1);
      consumed++;
      await sleep(2);
      // the producer may have pulled at most the granted credit, plus the item it is yielding
      assert.ok(produced <= consumed + window + 1, `produced ${produced} vs consumed ${consumed}`);
    }
    await sleep(100);
    assert.ok(produced <= consumed + window + 1, `after a pause: produced ${produced} vs consumed ${consumed}`);
    s.cancel();
    await until(() => finallyRan, 3000, 'generator finally');
  });

  test('an early break cancels the stream on the server', T, async () => {
    let n = 0;
    for await (const v of client.stream<number>('s.S/endless', [])) {
      n = v;
      if (v === 5) break;
    }
    assert.equal(n, 5);
    await until(() => streamSignal?.aborted === true, 3000, 'handler signal aborted');
    await until(() => finallyRan, 3000, 'generator finally');
    await until(() => server.stats().incomingInFlight === 0);
    assert.equal(client.stats().callsInFlight, 0);
  });

  test('an error after items is delivered after them', T, async () => {
    const got: unknown[] = [];
    await assert.rejects(
      (async () => {
        for await (const v of client.stream('s.S/failing', [])) got.push(v);
      })(),
      (e: unknown) => e instanceof ApplicationError && e.variant === 'Broken',
    );
    assert.deepEqual(got, [1]);
  });

  test('AbortSignal and deadline end a stream', T, async () => {
    const ac = new AbortController();
    const s = client.stream('s.S/endless', [], { signal: ac.signal });
    await s.next();
    ac.abort();
    // buffered items may still come out, then the cancellation error
    await assert.rejects(
      (async () => {
        for (;;) if ((await s.next()).done === true) return;
      })(),
      (e: unknown) => e instanceof RpcError && e.code === 'CANCELLED',
    );
    const d = client.stream('s.S/endless', [], { timeoutMs: 100, window: 2 });
    await d.next();
    await assert.rejects(
      (async () => {
        for (;;) {
          if ((await d.next()).done === true) return;
          await sleep(30);
        }
      })(),
      (e: unknown) => e instanceof RpcError && e.code === 'DEADLINE_EXCEEDED',
    );
  });

  test('a caller receiving more ITEMs than granted closes with 1002', T, async () => {
    // a raw "server" is hard to fake through WspServer, so a raw client plays callee instead:
    // the server calls a stream on it and the raw side floods ITEMs.
    const raw = await rawConnect(url);
    await raw.next(1);
    raw.sendFrame([0, 1, { flood: '' }]);
    const peer = [...server.connections].find((p) => p.remoteServices?.['flood'] !== undefined);
    await until(() => [...server.connections].some((p) => p.remoteServices?.['flood'] !== undefined));
    const target = peer ?? [...server.connections].find((p) => p.remoteServices?.['flood'] !== undefined)!;
    const s = target.stream('flood/x', [], { window: 2 });
    const frame = (await raw.next(2)) as unknown[];
    assert.equal(frame[0], 2);
    assert.equal(frame[4], 2);
    const id = frame[1];
    for (let i = 0; i < 3; i++) raw.sendFrame([6, id, i]);
    const closed = await within(raw.closed, 3000);
    assert.equal(closed.code, 1002);
    await assert.rejects(
      (async () => {
        for (;;) if ((await s.next()).done === true) return;
      })(),
      (e: unknown) => e instanceof RpcError && e.code === 'DISCONNECTED',
    );
  });
});
