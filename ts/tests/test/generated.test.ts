/**
 * TS ↔ TS through the generated modules (ts/generated), over real sockets on 127.0.0.1:0:
 * calls in both directions, typed errors and their guards, streams as AsyncIterable,
 * cancellation, deadlines, 64-bit values above 2^53, both codecs, schema evolution.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApplicationError, INPUT_WINDOW, RpcError, type Client, type CodecKind } from '@wsp/runtime';
import type { WspServer } from '@wsp/runtime/node';
import * as math from '../../generated/math.js';
import * as geometry from '../../generated/geometry.js';
import * as chat from '../../generated/chat.js';
import * as sink from '../../generated/kitchen.sink.js';
import * as v1 from '../../generated/evolution/v1/evolution.js';
import * as v2 from '../../generated/evolution/v2/evolution.js';
import { primitives } from './fixtures.js';
import { aborted, collect, newClient, sleep, startServer, within } from './helpers.js';

const BIG = 2n ** 62n + 1n; // far above 2^53: a double cannot hold it

/** What the math handler saw, for assertions. */
const seen = { logs: [] as string[], cancelled: 0, resets: 0, sumWaiting: 0 };

const mathImpl: math.MathHandler = {
  add(values) {
    let sum = 0n;
    for (const v of values) sum += v;
    if (sum > 2n ** 63n - 1n) throw new ApplicationError<math.MathError>({ $type: 'Overflow', operation: 'add' });
    return sum;
  },
  async divide(a, b, ctx) {
    if (b === 0) throw new ApplicationError<math.MathError>({ $type: 'DivisionByZero' });
    if (a === 42) {
      // Slow on purpose: waits until the caller cancels or the deadline passes.
      await aborted(ctx.signal);
      seen.cancelled++;
      throw new Error('aborted');
    }
    return a / b;
  },
  async *count(from, to, ctx) {
    for (let i = from; i <= to && !ctx.signal.aborted; i++) yield i;
  },
  async sum(values, ctx) {
    let total = 0n;
    for await (const v of values) {
      if (v === 42n) {
        // Takes nothing more: the caller must stop at its window; waits for cancel or deadline.
        seen.sumWaiting++;
        await aborted(ctx.signal);
        seen.cancelled++;
        throw new Error('aborted');
      }
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
  reset() {
    seen.resets++;
  },
  log(line) {
    seen.logs.push(line);
  },
};

const geometryImpl: geometry.GeometryHandler = {
  async area(shape, ctx) {
    switch (shape.$type) {
      case 'Circle':
        // A call back into the client in the middle of a call (client { } block).
        if (!(await ctx.peer.confirm(`radius ${shape.radius}?`))) {
          throw new ApplicationError<geometry.GeometryError>({ $type: 'Degenerate', reason: 'not confirmed' });
        }
        ctx.peer.progress(0.5);
        return Math.PI * shape.radius * shape.radius;
      case 'Polygon':
        if (shape.points.length < 3) throw new ApplicationError<geometry.GeometryError>({ $type: 'Degenerate', reason: 'too few points' });
        return 1;
      case 'Empty':
        return 0;
      case '$unknown':
        throw new ApplicationError<geometry.GeometryError>({ $type: 'TooLarge' });
    }
  },
  measure(shape) {
    if (shape.$type === 'Empty') throw new ApplicationError<geometry.GeometryError>({ $type: 'TooLarge' });
    return { area: 2, at: { millis: BIG } };
  },
  log() {},
  *walk(shape, steps) {
    for (let i = 0; i < steps; i++) yield { x: i, y: i + 0.5, ...(shape.$type === 'Empty' ? {} : { label: `p${i}` }) };
  },
};

function serveAll(server: WspServer): void {
  math.serveMath(server, mathImpl);
  geometry.serveGeometry(server, geometryImpl);
}

for (const codec of ['msgpack', 'json'] as const satisfies readonly CodecKind[]) {
  describe(`generated clients and handlers (${codec})`, () => {
    let server: WspServer;
    let client: Client;
    let m: math.MathClient;
    let g: geometry.GeometryClient;
    const progress: number[] = [];

    before(async () => {
      const started = await startServer();
      server = started.server;
      serveAll(server);
      client = newClient(started.url, { codecs: [codec] });
      geometry.registerGeometryCallbacks(client, {
        confirm: (question) => question !== 'radius 0?',
        progress: (percent) => void progress.push(percent),
      });
      await within(client.connect(), 3000, 'connect');
      assert.equal(client.codec, codec);
      m = new math.MathClient(client);
      g = new geometry.GeometryClient(client);
    });

    after(async () => {
      await client.close();
      await server.close();
    });

    test('unary calls with 64-bit values above 2^53 round-trip exactly', async () => {
      assert.equal(await m.add([1n, 2n, 3n]), 6n);
      assert.equal(await m.add([BIG, 1n]), BIG + 1n);
      assert.equal(await m.add([-(2n ** 63n)]), -(2n ** 63n));
      assert.equal(await m.divide(1, 4), 0.25);
      assert.equal(await m.divide(3, 1), 3);
      await m.reset();
    });

    test('typed errors: ApplicationError with decoded details and a type guard', async () => {
      const e = await m.divide(1, 0).then(
        () => assert.fail('expected an error'),
        (e: unknown) => e,
      );
      assert.ok(math.isMathError(e));
      assert.ok(!geometry.isGeometryError(e));
      assert.deepEqual(e.details, { $type: 'DivisionByZero' });
      assert.equal(e.message, 'DivisionByZero');
      const overflow = await m.add([2n ** 63n - 1n, 1n]).catch((x: unknown) => x);
      assert.ok(math.isMathError(overflow) && overflow.details.$type === 'Overflow');
      assert.equal(overflow.details.$type === 'Overflow' && overflow.details.operation, 'add');
      // An error from another package (`throws common.CommonError`) is not declared here:
      const other = await g.measure({ $type: 'Empty' }).catch((x: unknown) => x);
      assert.ok(other instanceof ApplicationError && !geometry.isGeometryError(other));
    });

    test('transport errors are RpcError, not ApplicationError', async () => {
      const e = await client.call('math.Math/nope', []).catch((x: unknown) => x);
      assert.ok(e instanceof RpcError && e.code === 'UNKNOWN_METHOD');
      assert.ok(!math.isMathError(e));
      const bad = await client.call('math.Math/add', ['not a list']).catch((x: unknown) => x);
      assert.ok(bad instanceof RpcError && bad.code === 'INVALID_ARGUMENTS', String(bad));
      const missing = await client.call('math.Math/divide', [1]).catch((x: unknown) => x);
      assert.ok(missing instanceof RpcError && missing.code === 'INVALID_ARGUMENTS', String(missing));
      const wrongType = await client.call('math.Math/divide', ['1', 2]).catch((x: unknown) => x);
      assert.ok(wrongType instanceof RpcError && wrongType.code === 'INVALID_ARGUMENTS', String(wrongType));
      const badField = await client
        .call('geometry.Geometry/area', [{ $type: 'Circle', center: { x: 0, y: 'zero' }, radius: 1 }])
        .catch((x: unknown) => x);
      assert.ok(badField instanceof RpcError && badField.code === 'INVALID_ARGUMENTS', String(badField));
    });

    test('server streams are AsyncIterables; break cancels', async () => {
      assert.deepEqual(await collect(m.count(1, 5)), [1, 2, 3, 4, 5]);
      const got: number[] = [];
      for await (const n of m.count(1, 1_000_000, { window: 4 })) {
        got.push(n);
        if (n === 3) break;
      }
      assert.deepEqual(got, [1, 2, 3]);
      const points = await collect(g.walk({ $type: 'Circle', center: { x: 0, y: 0 }, radius: 1 }, 3));
      assert.deepEqual(points, [
        { x: 0, y: 0.5, label: 'p0' },
        { x: 1, y: 1.5, label: 'p1' },
        { x: 2, y: 2.5, label: 'p2' },
      ]);
      assert.deepEqual(await collect(g.walk({ $type: 'Empty' }, 1)), [{ x: 0, y: 0.5 }]);
    });

    test('AbortSignal cancels a call; the handler sees its signal abort', async () => {
      const before = seen.cancelled;
      const ac = new AbortController();
      const call = m.divide(42, 1, { signal: ac.signal });
      await sleep(20);
      ac.abort();
      const e = await call.catch((x: unknown) => x);
      assert.ok(e instanceof RpcError && e.code === 'CANCELLED', String(e));
      await within(
        (async () => {
          while (seen.cancelled === before) await sleep(5);
        })(),
        2000,
        'handler abort',
      );
    });

    test('timeoutMs: DEADLINE_EXCEEDED', async () => {
      const started = Date.now();
      const e = await m.divide(42, 1, { timeoutMs: 50 }).catch((x: unknown) => x);
      assert.ok(e instanceof RpcError && e.code === 'DEADLINE_EXCEEDED', String(e));
      assert.ok(Date.now() - started < 2000);
    });

    test('notifications and calls from the server back to the client', async () => {
      m.log('hello');
      const area = await g.area({ $type: 'Circle', center: { x: 1, y: 2 }, radius: 2 });
      assert.equal(area, Math.PI * 4);
      const refused = await g.area({ $type: 'Circle', center: { x: 1, y: 2 }, radius: 0 }).catch((x: unknown) => x);
      assert.ok(geometry.isGeometryError(refused));
      assert.deepEqual(refused.details, { $type: 'Degenerate', reason: 'not confirmed' });
      await within(
        (async () => {
          while (progress.length === 0 || !seen.logs.includes('hello')) await sleep(5);
        })(),
        2000,
        'notifications',
      );
      assert.equal(progress[0], 0.5);
    });

    test('client and bidirectional streams: items in, one result or items out, errors after items', async () => {
      assert.equal(await m.sum([BIG, 1n, 2n]), BIG + 3n);
      assert.equal(await m.sum([]), 0n);
      const overflow = await m.sum([2n ** 63n - 1n, 1n]).catch((x: unknown) => x);
      assert.ok(math.isMathError(overflow) && overflow.details.$type === 'Overflow', String(overflow));
      assert.deepEqual(await collect(m.running(BIG, [1n, 2n, 3n])), [BIG + 1n, BIG + 3n, BIG + 6n]);
      const got: bigint[] = [];
      const failed = await (async () => {
        for await (const total of m.running(0n, [1n, 2n ** 63n - 1n, 7n])) got.push(total);
      })().catch((x: unknown) => x);
      assert.deepEqual(got, [1n]);
      assert.ok(math.isMathError(failed) && failed.details.$type === 'Overflow', String(failed));
      // Interleaved: each total arrives before the next value is made.
      const queue: bigint[] = [];
      let wake: (() => void) | undefined;
      const values = (async function* () {
        for (let i = 0; i < 3; i++) {
          while (queue.length === 0) await new Promise<void>((r) => (wake = r));
          yield queue.shift() as bigint;
        }
      })();
      const totals = m.running(10n, values);
      for (const [v, expected] of [
        [1n, 11n],
        [2n, 13n],
        [3n, 16n],
      ] as const) {
        queue.push(v);
        wake?.();
        assert.deepEqual(await within(totals.next(), 2000, 'a total'), { done: false, value: expected });
      }
      assert.equal((await within(totals.next(), 2000, 'the end')).done, true);
    });

    test('a client stream pauses a producer that runs ahead; cancel and deadlines stop it on both sides', async () => {
      let made = 0;
      const endless = function* (): Generator<bigint> {
        for (let i = 42n; ; i++) {
          made++;
          yield i;
        }
      };
      const waiting = seen.sumWaiting;
      const cancelled = seen.cancelled;
      const ac = new AbortController();
      const call = m.sum(endless(), { signal: ac.signal });
      await within(
        (async () => {
          while (seen.sumWaiting === waiting) await sleep(5);
        })(),
        2000,
        'the handler',
      );
      await sleep(100);
      // The window was sent; one more item was taken and waits for room.
      assert.equal(made, INPUT_WINDOW + 1, 'the producer ran past its window');
      ac.abort();
      const e = await call.catch((x: unknown) => x);
      assert.ok(e instanceof RpcError && e.code === 'CANCELLED', String(e));
      const late = await m.sum(endless(), { timeoutMs: 100 }).catch((x: unknown) => x);
      assert.ok(late instanceof RpcError && late.code === 'DEADLINE_EXCEEDED', String(late));
      await within(
        (async () => {
          while (seen.cancelled < cancelled + 2) await sleep(5);
        })(),
        2000,
        'both handlers stopped',
      );
    });

    test('items that fail on the caller\'s side fail the call and stop the callee', async () => {
      let ended: unknown = 'running';
      server.addService('src.Src', {
        take: {
          kind: 'upload',
          handler: async (_args, items) => {
            try {
              for await (const item of items) void item;
              ended = 'all taken';
            } catch (e) {
              ended = e;
            }
            return null;
          },
        },
      });
      const broken = (function* () {
        yield 1;
        throw new Error('the source broke');
      })();
      const e = await client.upload('src.Src/take', [], broken).catch((x: unknown) => x);
      assert.ok(e instanceof RpcError && e.code === 'CANCELLED' && e.message.includes('the source broke'), String(e));
      await within(
        (async () => {
          while (ended === 'running') await sleep(5);
        })(),
        2000,
        'the handler',
      );
      assert.ok(ended instanceof RpcError && ended.code === 'CANCELLED', String(ended));
      const cyclic: unknown[] = [];
      cyclic.push(cyclic);
      const unencodable = await client.upload('src.Src/take', [], [cyclic]).catch((x: unknown) => x);
      assert.ok(unencodable instanceof RpcError && unencodable.code === 'INVALID_ARGUMENTS', String(unencodable));
      server.removeService('src.Src');
    });

    test('a bidirectional callee that runs ahead is paused by the caller\'s window', async () => {
      let produced = 0;
      server.addService('pace.Pace', {
        numbers: {
          kind: 'duplex',
          handler: function* () {
            for (let i = 0; i < 1000; i++) {
              produced++;
              yield i;
            }
          },
        },
      });
      const items = client.duplex<number>('pace.Pace/numbers', [], [], { window: 8 });
      assert.deepEqual(await items.next(), { done: false, value: 0 });
      await sleep(100);
      assert.ok(produced <= 8, `the callee ran ${produced} items ahead of a window of 8`);
      let n = 1;
      for await (const v of items) assert.equal(v, n++);
      assert.equal(n, 1000);
      server.removeService('pace.Pace');
    });

    test('a struct from another package, with a u64 above 2^53', async () => {
      const measured = await g.measure({ $type: 'Polygon', points: [] });
      assert.deepEqual(measured, { area: 2, at: { millis: BIG } });
    });
  });
}

describe('kitchen sink: every type through a real connection', () => {
  let server: WspServer;
  const clients: Client[] = [];

  const containers: sink.Containers = {
    numbers: [1, -2, 3],
    matrix: [[1, 2.5], []],
    by_name: new Map([['p', primitives]]),
    by_id: new Map([
      [2n ** 64n - 1n, 'max'],
      [0n, 'zero'],
    ]),
    by_small_id: new Map([
      [-1, ['a', undefined]],
      [2, []],
    ]),
    by_u32: new Map([[7, new Map([['x', [BIG]]])]]),
    list_of_maybe: [undefined, primitives],
    maybe_map: new Map([[-5, true]]),
    deep: [new Map([['k', [new Map([[1, new Uint8Array([9])], [2, undefined]])]]])],
  };

  before(async () => {
    ({ server } = await startServer());
    sink.serveKitchenSink(server, {
      echo: (value) => value,
      touch() {},
      search(query, limit, cursor) {
        if (query === 'fail') throw new ApplicationError<sink.SinkError>({ $type: 'Broken', part: String(cursor), code: limit });
        return [containers];
      },
      list: (prefix, limit) => Array.from({ length: limit }, (_, i) => `${prefix ?? 'item'}${i}`),
      *watch(root) {
        yield { value: BIG, next: { value: BIG + 1n } };
        if (root.label === 'fail') throw new ApplicationError<sink.SinkError>({ $type: 'Unknown' });
      },
      ping() {},
      old_echo: (value) => value,
      eval(expr, a, mode) {
        return new Map<string, sink.Expr>([
          ['expr', expr],
          ['mode', { $type: 'Literal', value: mode === undefined ? -1 : mode.$type === 'Careful' ? mode.retries : 0 }],
          ['a', { $type: a.b.a === undefined ? 'Nothing' : 'Literal', value: 1 } as sink.Expr],
        ]);
      },
    });
  });

  after(async () => {
    for (const c of clients) await c.close();
    await server.close();
  });

  for (const codec of ['msgpack', 'json'] as const) {
    test(`values of every type round-trip (${codec})`, async () => {
      const client = newClient(`ws://127.0.0.1:${server.port}/`, { codecs: [codec] });
      clients.push(client);
      await within(client.connect(), 3000, 'connect');
      const k = new sink.KitchenSinkClient(client);
      assert.deepEqual(await k.echo(primitives), primitives);
      assert.deepEqual(await k.search('q'), [containers]);
      // An optional parameter before a required one is passed explicitly, `undefined` included.
      assert.deepEqual(await k.list(undefined, 2), ['item0', 'item1']);
      assert.deepEqual(await k.list('p', 1), ['p0']);
      await k.touch();
      const e = await k.search('fail', 3, 'c').catch((x: unknown) => x);
      assert.ok(sink.isSinkError(e));
      assert.deepEqual(e.details, { $type: 'Broken', part: 'c', code: 3 });
      const missing = await k.search('fail').catch((x: unknown) => x);
      assert.ok(sink.isSinkError(missing));
      assert.deepEqual(missing.details, { $type: 'Broken', part: 'undefined' });
      const tree: sink.Tree = { label: 'fail', children: [{ label: 'c', children: [], by_key: new Map() }], by_key: new Map() };
      const items: sink.Node[] = [];
      const err = await (async () => {
        for await (const n of k.watch(tree)) items.push(n);
      })().catch((x: unknown) => x);
      assert.deepEqual(items, [{ value: BIG, next: { value: BIG + 1n } }]);
      assert.ok(sink.isSinkError(err) && err.details.$type === 'Unknown');
      const expr: sink.Expr = {
        $type: 'Add',
        left: { $type: 'Literal', value: 1 },
        right: { $type: 'Sum', terms: [{ $type: 'Negate', inner: { $type: 'Nothing' } }] },
      };
      const result = await k.eval(expr, { b: { a: { b: {} } } }, { $type: 'Careful', retries: 3 });
      assert.deepEqual(result.get('expr'), expr);
      assert.deepEqual(result.get('mode'), { $type: 'Literal', value: 3 });
      assert.deepEqual(result.get('a'), { $type: 'Literal', value: 1 });
      const noMode = await k.eval({ $type: 'Nothing' }, { b: {} });
      assert.deepEqual(noMode.get('mode'), { $type: 'Literal', value: -1 });
      assert.deepEqual(noMode.get('a'), { $type: 'Nothing' });
    });
  }
});

describe('chat: streams in both directions', () => {
  test('the server streams from the client while the client streams from the server', async () => {
    const { server, url } = await startServer();
    const posted: chat.Message[] = [];
    chat.serveChat(server, {
      async join(name, ctx) {
        if (name === 'taken') throw new ApplicationError<chat.ChatError>({ $type: 'NameTaken', name });
        const answer = await ctx.peer.ask('colour?', ['red', 'blue']);
        const typing = await collect(ctx.peer.typing('room'));
        // A client stream and a bidirectional stream, server to client.
        const kept = await ctx.peer.review(['a', ' ', 'b']);
        const shouted = await collect(ctx.peer.shout(['hi', 'there']));
        return [{ author: name, text: `${answer} ${typing.join(',')} ${kept} ${shouted.join(',')}`, sent_at: BIG }];
      },
      post(text) {
        posted.push({ author: 'x', text, sent_at: 1n });
      },
      async *follow(ctx) {
        for (const m of posted) yield m;
        ctx.peer.broadcast({ author: 'server', text: 'bye', sent_at: 2n ** 64n - 1n });
      },
      leave() {},
    });
    const client = newClient(url);
    const broadcasts: chat.Message[] = [];
    chat.registerChatCallbacks(client, {
      ask: (_question, choices) => choices[1] ?? '',
      *typing() {
        yield true;
        yield false;
      },
      async review(draft) {
        let kept = 0;
        for await (const line of draft) if (line.trim() !== '') kept++;
        return kept;
      },
      async *shout(lines) {
        for await (const line of lines) yield line.toUpperCase();
      },
      broadcast: (message) => void broadcasts.push(message),
    });
    try {
      await within(client.connect(), 3000, 'connect');
      const c = new chat.ChatClient(client);
      assert.deepEqual(await c.join('ann'), [{ author: 'ann', text: 'blue true,false 2 HI,THERE', sent_at: BIG }]);
      const taken = await c.join('taken').catch((x: unknown) => x);
      assert.ok(chat.isChatError(taken));
      assert.deepEqual(taken.details, { $type: 'NameTaken', name: 'taken' });
      await c.post('one');
      await c.post('two');
      assert.deepEqual(
        (await collect(c.follow())).map((m) => m.text),
        ['one', 'two'],
      );
      await within(
        (async () => {
          while (broadcasts.length === 0) await sleep(5);
        })(),
        2000,
        'broadcast',
      );
      assert.deepEqual(broadcasts, [{ author: 'server', text: 'bye', sent_at: 2n ** 64n - 1n }]);
      // To every connected client at once, through WspServer.broadcast.
      const everyone = new chat.ChatBroadcast(server);
      assert.equal(everyone.broadcast({ author: 'all', text: 'hi', sent_at: 0n }), 1);
      assert.equal(everyone.broadcast({ author: 'none', text: '', sent_at: 0n }, () => false), 0);
      await within(
        (async () => {
          while (broadcasts.length < 2) await sleep(5);
        })(),
        2000,
        'server-wide broadcast',
      );
      assert.deepEqual(broadcasts[1], { author: 'all', text: 'hi', sent_at: 0n });
      c.leave();
    } finally {
      await client.close();
      await server.close();
    }
  });
});

describe('schema evolution (v1 ↔ v2)', () => {
  test('a v2 client talks to a v1 server: unknown variants, extra parameters, new methods', async () => {
    const { server, url } = await startServer();
    const statuses: v1.Status[] = [];
    v1.serveAccounts(server, {
      get: (id) => ({ name: `user ${id}`, nickname: 'nick' }),
      set_status(_id, status) {
        statuses.push(status);
      },
      delete_account() {},
    });
    const client = newClient(url);
    try {
      await within(client.connect(), 3000, 'connect');
      const accounts = new v2.AccountsClient(client);
      // v1 sends `nickname`, which v2 no longer knows: ignored.
      assert.deepEqual(await accounts.get(BIG), { name: `user ${BIG}` });
      await accounts.set_status(1n, { $type: 'Away', since: BIG }, 'lunch');
      await accounts.set_status(1n, { $type: 'Online' });
      assert.deepEqual(statuses, [
        { $type: '$unknown', variant: 'Away', value: { $type: 'Away', since: BIG } },
        { $type: 'Online' },
      ]);
      const e = await collect(accounts.list()).catch((x: unknown) => x);
      assert.ok(e instanceof RpcError && e.code === 'UNKNOWN_METHOD');
      // The service added in v2 is unknown to the v1 server.
      const award = await new v2.BadgesClient(client).award(1n, 'gold').catch((x: unknown) => x);
      assert.ok(award instanceof RpcError && award.code === 'UNKNOWN_METHOD', String(award));
    } finally {
      await client.close();
      await server.close();
    }
  });

  test('a v1 client talks to a v2 server: removed variants and methods, renamed parameters', async () => {
    const { server, url } = await startServer();
    const seen: string[] = [];
    v2.serveAccounts(server, {
      // `account` was `id` in v1: the argument arrives in its position.
      get: (account) => ({ name: `user ${account}`, email: 'u@example.com' }),
      set_status(id, status, note) {
        const name = status.$type === '$unknown' ? `unknown ${status.variant}` : status.$type;
        seen.push(`${id} ${name} ${String(note)}`);
      },
      list: async function* () {},
    });
    const client = newClient(url);
    try {
      await within(client.connect(), 3000, 'connect');
      const accounts = new v1.AccountsClient(client);
      // v2 sends `email`, which v1 does not know: ignored.
      assert.deepEqual(await accounts.get(BIG), { name: `user ${BIG}` });
      // `Invisible` was removed (and reserved) in v2: it arrives as the unknown variant.
      await accounts.set_status(4n, { $type: 'Invisible' });
      assert.deepEqual(seen, ['4 unknown Invisible undefined']);
      // `delete_account` was removed (and reserved) in v2.
      const e = await accounts.delete_account(4n).catch((x: unknown) => x);
      assert.ok(e instanceof RpcError && e.code === 'UNKNOWN_METHOD', String(e));
      // The client-side notification added in v2: the v1 client drops it and counts it.
      assert.equal(new v2.AccountsBroadcast(server).changed(4n), 1);
      await within(
        (async () => {
          while (client.stats().invalidFrames === 0) await sleep(5);
        })(),
        2000,
        'the dropped notification',
      );
      assert.deepEqual(await accounts.get(5n), { name: 'user 5' });
    } finally {
      await client.close();
      await server.close();
    }
  });

  test('an unknown variant received is sent on unchanged', async () => {
    const { server, url } = await startServer();
    // A v1 relay: stores whatever status it gets and hands it back through a v2-shaped call.
    let stored: v1.Status | undefined;
    v1.serveAccounts(server, {
      get: () => ({ name: 'n' }),
      set_status(_id, status) {
        stored = status;
      },
      delete_account() {},
    });
    const client = newClient(url);
    try {
      await within(client.connect(), 3000, 'connect');
      await new v2.AccountsClient(client).set_status(1n, { $type: 'Away', since: 5n });
      assert.ok(stored !== undefined);
      // Encoding the unknown variant writes the value as it was received.
      assert.deepEqual(v1.encodeStatus(stored), { $type: 'Away', since: 5 });
    } finally {
      await client.close();
      await server.close();
    }
  });
});
