/**
 * Rust ↔ Node through the generated code of both languages, over real sockets on 127.0.0.1:
 * a Node client (generated TypeScript) against a Rust server (generated Rust, tests/interop) with
 * every method kind in both directions, typed errors, streams, cancellation, deadlines, 64-bit
 * values above 2^53, all value types, in both codecs, and a reconnect after the Rust server
 * restarts; then a Rust client against a Node server written with the generated handlers.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApplicationError, RpcError, type Client } from '@wsp/runtime';
import * as math from '../../generated/math.js';
import * as geometry from '../../generated/geometry.js';
import * as sink from '../../generated/kitchen.sink.js';
import { aborted, collect, newClient, sleep, startServer, within } from './helpers.js';
import { primitives } from './fixtures.js';
import { RustProcess, interopBinary } from './rust-process.js';

const BIG = 2n ** 62n + 1n;
const T = { timeout: 30_000 };

// The same values as tests/interop/src/values.rs (`primitives` comes from ./fixtures.js).
const containers: sink.Containers = {
  numbers: [1, -2, 3],
  matrix: [[1, 2.5], []],
  by_name: new Map(),
  by_id: new Map([
    [2n ** 64n - 1n, 'max'],
    [0n, 'zero'],
  ]),
  by_small_id: new Map([
    [-1, ['a', undefined]],
    [2, []],
  ]),
  by_u32: new Map([[7, new Map([['x', [BIG]]])]]),
  list_of_maybe: [undefined],
  maybe_map: new Map([[-5, true]]),
  deep: [new Map([['k', [new Map([[1, new Uint8Array([9])], [2, undefined]])]]])],
};

const expr: sink.Expr = {
  $type: 'Add',
  left: { $type: 'Literal', value: 1 },
  right: { $type: 'Sum', terms: [{ $type: 'Negate', inner: { $type: 'Nothing' } }] },
};

let bin = '';

before(() => {
  bin = interopBinary();
});

describe('Node client ↔ Rust server', () => {
  let rust: RustProcess;
  let port = 0;

  before(async () => {
    rust = new RustProcess(bin, ['server']);
    port = await rust.port();
  });

  after(async () => {
    await rust.stop();
  });

  for (const codec of ['msgpack', 'json'] as const) {
    describe(codec, () => {
      let client: Client;
      const progress: number[] = [];

      before(async () => {
        client = newClient(`ws://127.0.0.1:${port}/`, { codecs: [codec] });
        geometry.registerGeometryCallbacks(client, {
          confirm: (question) => question !== 'radius 0?',
          progress: (percent) => void progress.push(percent),
        });
        await within(client.connect(), 5000, 'connect');
        assert.equal(client.codec, codec);
      });

      after(async () => {
        await client.close();
      });

      test('math: unary, 64-bit values, typed errors, streams, notifications', T, async () => {
        const m = new math.MathClient(client);
        assert.equal(await m.add([1n, 2n, 3n]), 6n);
        assert.equal(await m.add([BIG, 1n]), BIG + 1n);
        assert.equal(await m.add([-(2n ** 63n)]), -(2n ** 63n));
        const overflow = await m.add([2n ** 63n - 1n, 1n]).catch((e: unknown) => e);
        assert.ok(math.isMathError(overflow), String(overflow));
        assert.deepEqual(overflow.details, { $type: 'Overflow', operation: 'add' });
        assert.equal(await m.divide(1, 4), 0.25);
        assert.equal(await m.divide(3, 1), 3);
        const div = await m.divide(1, 0).catch((e: unknown) => e);
        assert.ok(math.isMathError(div) && div.details.$type === 'DivisionByZero');
        assert.deepEqual(await collect(m.count(1, 5)), [1, 2, 3, 4, 5]);
        const first: number[] = [];
        for await (const n of m.count(1, 1_000_000, { window: 4 })) {
          first.push(n);
          if (first.length === 3) break;
        }
        assert.deepEqual(first, [1, 2, 3]);
        await m.reset();
        m.log(`hello ${codec}`);
        await rust.waitFor(`event log hello ${codec}`);
        const unknown = await client.call('math.Math/nope', []).catch((e: unknown) => e);
        assert.ok(unknown instanceof RpcError && unknown.code === 'UNKNOWN_METHOD');
        const bad = await client.call('math.Math/divide', [1]).catch((e: unknown) => e);
        assert.ok(bad instanceof RpcError && bad.code === 'INVALID_ARGUMENTS', String(bad));
      });

      test('cancellation with an AbortSignal and deadlines reach the Rust handler', T, async () => {
        const m = new math.MathClient(client);
        const started = rust.count('event divide started');
        const dropped = rust.count('event divide dropped');
        const ac = new AbortController();
        const call = m.divide(42, 1, { signal: ac.signal });
        await rust.waitFor('event divide started', started + 1);
        ac.abort();
        const cancelled = await call.catch((e: unknown) => e);
        assert.ok(cancelled instanceof RpcError && cancelled.code === 'CANCELLED', String(cancelled));
        await rust.waitFor('event divide dropped', dropped + 1);
        const late = await m.divide(42, 1, { timeoutMs: 100 }).catch((e: unknown) => e);
        assert.ok(late instanceof RpcError && late.code === 'DEADLINE_EXCEEDED', String(late));
        await rust.waitFor('event divide dropped', dropped + 2);
      });

      test('math: client and bidirectional streams to the Rust server', T, async () => {
        const m = new math.MathClient(client);
        assert.equal(await m.sum([BIG, 1n, 2n]), BIG + 3n);
        // An async generator too, and no items at all.
        assert.equal(await m.sum((async function* () {})()), 0n);
        const overflow = await m.sum([2n ** 63n - 1n, 1n]).catch((e: unknown) => e);
        assert.ok(math.isMathError(overflow), String(overflow));
        assert.deepEqual(overflow.details, { $type: 'Overflow', operation: 'sum' });
        assert.deepEqual(await collect(m.running(BIG, [1n, 2n, 3n])), [BIG + 1n, BIG + 3n, BIG + 6n]);
        // Items, then the declared error.
        const got: bigint[] = [];
        const failed = await (async () => {
          for await (const total of m.running(0n, [1n, 2n ** 63n - 1n, 7n])) got.push(total);
        })().catch((e: unknown) => e);
        assert.deepEqual(got, [1n]);
        assert.ok(math.isMathError(failed) && failed.details.$type === 'Overflow', String(failed));
      });

      test('a client stream: the producer is paused by the Rust callee, and cancel and deadline stop it', T, async () => {
        const m = new math.MathClient(client);
        const waiting = rust.count('event sum waiting');
        const dropped = rust.count('event sum dropped');
        let made = 0;
        // The Rust `sum` takes nothing after a first 42: the producer must stop at its window.
        const endless = function* (): Generator<bigint> {
          for (let i = 42n; ; i++) {
            made++;
            yield i;
          }
        };
        const ac = new AbortController();
        const call = m.sum(endless(), { signal: ac.signal });
        await rust.waitFor('event sum waiting', waiting + 1);
        await sleep(200);
        // The window of 16 was sent; one more item was taken and waits for room.
        assert.equal(made, 17, 'the producer ran past its window');
        ac.abort();
        const cancelled = await call.catch((e: unknown) => e);
        assert.ok(cancelled instanceof RpcError && cancelled.code === 'CANCELLED', String(cancelled));
        await rust.waitFor('event sum dropped', dropped + 1);
        // A deadline in the middle of the stream fails it on both sides.
        const late = await m.sum(endless(), { timeoutMs: 200 }).catch((e: unknown) => e);
        assert.ok(late instanceof RpcError && late.code === 'DEADLINE_EXCEEDED', String(late));
        await rust.waitFor('event sum dropped', dropped + 2);
      });

      test('geometry: the Rust server calls back into the Node client', T, async () => {
        const g = new geometry.GeometryClient(client);
        const circle = (radius: number): geometry.Shape => ({ $type: 'Circle', center: { x: 1, y: 2 }, radius });
        assert.equal(await g.area(circle(2)), Math.PI * 4);
        await within(
          (async () => {
            while (progress.length === 0) await sleep(5);
          })(),
          3000,
          'progress notification',
        );
        assert.equal(progress[0], 0.5);
        const refused = await g.area(circle(0)).catch((e: unknown) => e);
        assert.ok(geometry.isGeometryError(refused));
        assert.deepEqual(refused.details, { $type: 'Degenerate', reason: 'not confirmed' });
        // A variant from a newer schema reaches Rust with its name.
        const newer = await g.area({ $type: '$unknown', variant: 'Hexagon', value: { $type: 'Hexagon', side: 2 } }).catch((e: unknown) => e);
        assert.ok(geometry.isGeometryError(newer));
        assert.deepEqual(newer.details, { $type: 'Degenerate', reason: 'unknown shape Hexagon' });
        assert.deepEqual(await g.measure({ $type: 'Polygon', points: [] }), { area: 2, at: { millis: BIG } });
        const notFound = await g.measure({ $type: 'Empty' }).catch((e: unknown) => e);
        assert.ok(notFound instanceof ApplicationError && notFound.errorType === 'common.CommonError');
        assert.deepEqual(notFound.details, { $type: 'NotFound', what: 'shape' });
        assert.deepEqual(await collect(g.walk(circle(1), 2)), [
          { x: 0, y: 0.5, label: 'p0' },
          { x: 1, y: 1.5, label: 'p1' },
        ]);
      });

      test('kitchen sink: every value type round-trips through Rust', T, async () => {
        const k = new sink.KitchenSinkClient(client);
        assert.deepEqual(await k.echo(primitives), primitives);
        // Non-finite floats reach Rust and come back (strings in JSON, PROTOCOL §5).
        const unbounded = { ...primitives, an_f32: -Infinity, an_f64: NaN };
        assert.deepStrictEqual(await k.echo(unbounded), unbounded);
        assert.deepEqual(await k.search('q'), [containers]);
        // An optional parameter before a required one, absent and present.
        assert.deepEqual(await k.list(undefined, 2), ['item0', 'item1']);
        assert.deepEqual(await k.list('p', 1), ['p0']);
        const broken = await k.search('fail', 3, 'c').catch((e: unknown) => e);
        assert.ok(sink.isSinkError(broken));
        assert.deepEqual(broken.details, { $type: 'Broken', part: 'c', code: 3 });
        const items: sink.Node[] = [];
        const streamError = await (async () => {
          for await (const n of k.watch({ label: 'fail', children: [], by_key: new Map() })) items.push(n);
        })().catch((e: unknown) => e);
        assert.deepEqual(items, [{ value: BIG, next: { value: BIG + 1n } }]);
        assert.ok(sink.isSinkError(streamError) && streamError.details.$type === 'Unknown');
        const result = await k.eval(expr, { b: { a: { b: {} } } }, { $type: 'Careful', retries: 3 });
        assert.deepEqual(result.get('expr'), expr);
        assert.deepEqual(result.get('mode'), { $type: 'Literal', value: 3 });
        assert.deepEqual(result.get('a'), { $type: 'Literal', value: 1 });
        k.ping(2n ** 64n - 1n);
        await rust.waitFor(`event ping ${2n ** 64n - 1n}`, 1);
      });
    });
  }

  test('the Node client reconnects after the Rust server restarts', T, async () => {
    const client = newClient(`ws://127.0.0.1:${port}/`, { reconnect: { initialDelayMs: 50, maxDelayMs: 200 } });
    const states: string[] = [];
    client.onStateChange((c) => states.push(c.state));
    try {
      await within(client.connect(), 5000, 'connect');
      const m = new math.MathClient(client);
      assert.equal(await m.add([BIG]), BIG);
      await rust.kill();
      await within(
        (async () => {
          while (client.state !== 'reconnecting') await sleep(5);
        })(),
        3000,
        'reconnecting',
      );
      const during = m.add([1n, 1n], { timeoutMs: 10_000 }); // waits for the link
      rust = new RustProcess(bin, ['server', String(port)]);
      await rust.port();
      assert.equal(await within(during, 10_000, 'call after the restart'), 2n);
      assert.equal(client.state, 'connected');
      assert.ok(client.stats().reconnects >= 1);
      assert.ok(states.includes('reconnecting'), states.join(','));
    } finally {
      await client.close();
    }
  });
});

describe('Rust client ↔ Node server', () => {
  for (const codec of ['msgpack', 'json'] as const) {
    test(`every method kind (${codec})`, T, async () => {
      const closes: string[] = [];
      const { server, url } = await startServer({
        onConnection: (peer) =>
          void peer.closed.then(
            (c) => closes.push(`${c.code} ${c.reason}`),
            (e: unknown) => closes.push(String(e)),
          ),
      });
      const seen = { logs: [] as string[], aborted: 0 };
      math.serveMath(server, {
        add(values) {
          let sum = 0n;
          for (const v of values) sum += v;
          if (sum > 2n ** 63n - 1n) throw new ApplicationError<math.MathError>({ $type: 'Overflow', operation: 'add' });
          return sum;
        },
        async divide(a, b, ctx) {
          if (a === 42) {
            await aborted(ctx.signal);
            seen.aborted++;
            throw new Error('aborted');
          }
          if (b === 0) throw new ApplicationError<math.MathError>({ $type: 'DivisionByZero' });
          return a / b;
        },
        async *count(from, to, ctx) {
          for (let i = from; i <= to && !ctx.signal.aborted; i++) yield i;
        },
        async sum(values, ctx) {
          let total = 0n;
          let first = true;
          for await (const v of values) {
            if (first && v === 42n) {
              // Takes nothing more: the Rust producer must stop at its window.
              await aborted(ctx.signal);
              seen.aborted++;
              throw new Error('aborted');
            }
            first = false;
            total += v;
            if (total > 2n ** 63n - 1n) throw new ApplicationError<math.MathError>({ $type: 'Overflow', operation: 'sum' });
          }
          return total;
        },
        async *running(start, values) {
          let total = start;
          for await (const v of values) {
            total += v;
            if (total > 2n ** 63n - 1n) throw new ApplicationError<math.MathError>({ $type: 'Overflow', operation: 'running' });
            yield total;
          }
        },
        reset() {},
        log(line) {
          seen.logs.push(line);
        },
      });
      geometry.serveGeometry(server, {
        async area(shape, ctx) {
          if (shape.$type !== 'Circle') return 0;
          if (!(await ctx.peer.confirm(`radius ${shape.radius}?`))) {
            throw new ApplicationError<geometry.GeometryError>({ $type: 'Degenerate', reason: 'not confirmed' });
          }
          ctx.peer.progress(0.5);
          return Math.PI * shape.radius * shape.radius;
        },
        measure: () => ({ area: 2, at: { millis: BIG } }),
        log() {},
        *walk(shape, steps) {
          for (let i = 0; i < steps; i++) yield { x: i, y: i + 0.5, ...(shape.$type === 'Empty' ? {} : { label: `p${i}` }) };
        },
      });
      sink.serveKitchenSink(server, {
        echo: (value) => value,
        touch() {},
        search(query, limit, cursor) {
          if (query === 'fail') throw new ApplicationError<sink.SinkError>({ $type: 'Broken', part: cursor ?? '', ...(limit === undefined ? {} : { code: limit }) });
          return [containers];
        },
        list: (prefix, limit) => Array.from({ length: limit }, (_, i) => `${prefix ?? 'item'}${i}`),
        *watch() {},
        ping() {},
        old_echo: (value) => value,
        eval(e, a, mode) {
          return new Map<string, sink.Expr>([
            ['expr', e],
            ['mode', { $type: 'Literal', value: mode === undefined ? -1 : mode.$type === 'Careful' ? mode.retries : 0 }],
            ['a', a.b.a === undefined ? { $type: 'Nothing' } : { $type: 'Literal', value: 1 }],
          ]);
        },
      });
      const rustClient = new RustProcess(bin, ['client', url, codec]);
      try {
        const code = await within(rustClient.exited, 20_000, 'the Rust client');
        assert.equal(code, 0, `${rustClient.output}\nconnections closed: ${closes.join('; ')}`);
        assert.ok(rustClient.lines.includes('ok'), rustClient.output);
        assert.ok(rustClient.lines.includes('event progress 0.5'), rustClient.output);
        assert.deepEqual(seen.logs, ['from rust']);
        // One call ended by its deadline, one dropped (CANCEL), one client stream dropped: each
        // handler saw its signal.
        assert.equal(seen.aborted, 3);
      } finally {
        await rustClient.stop();
        await server.close();
      }
    });
  }
});
