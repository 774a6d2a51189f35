/** TS ↔ TS calls over real sockets: both directions, errors, deadlines, cancellation, codecs. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApplicationError, Client, type IncomingEvent, RpcError, WspError, convert } from '../src/index.js';
import type { WspServer } from '../src/node/index.js';
import { WS, connectClient, quietLog, rawConnect, sleep, startServer, until, within } from './helpers.js';

const T = { timeout: 10_000 };

describe('calls between a Node server and a client', () => {
  let server: WspServer;
  let url: string;
  let client: Client;
  const observed: IncomingEvent[] = [];
  const logged = quietLog();
  let handlerSignal: AbortSignal | undefined;
  let handlerDeadline: number | undefined;
  let lateStarted = false;
  let releaseLate: () => void = () => undefined;
  let lateSignals: { direct: AbortSignal; spread: AbortSignal | undefined } | undefined;
  const notes: unknown[] = [];

  before(async () => {
    ({ server, url } = await startServer({ observer: (e) => observed.push(e), log: logged.log }));
    server.addService('math.Math', {
      add: (args) => (args as number[]).reduce((a, b) => a + b, 0),
      slowEcho: async (args) => {
        await sleep(Number(args[1]));
        return args[0];
      },
      crash: () => {
        throw new Error('secret /etc/passwd stack');
      },
      divide: (args) => {
        const [a, b] = args as [number, number];
        if (b === 0) throw new ApplicationError({ $type: 'DivisionByZero', dividend: a });
        return a / b;
      },
      wait: async (_args, ctx) => {
        handlerSignal = ctx.signal;
        handlerDeadline = ctx.deadline;
        await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve()));
        return 'aborted';
      },
      // Reads its signal only when the test lets it go on (the signal is made on first read).
      late: async (_args, ctx) => {
        lateStarted = true;
        await new Promise<void>((resolve) => {
          releaseLate = resolve;
        });
        lateSignals = { direct: ctx.signal, spread: { ...ctx }.signal };
        return null;
      },
      big: (args) => {
        const v = convert.toBigInt(args[0]);
        return [v, v + 1n, -v];
      },
      bytes: (args, ctx) => convert.toBytes(args[0], ctx.codec).reverse(),
      askClient: async (args, ctx) => ctx.peer.call('math.Math.client/confirm', [args[0]]),
      echo: (args) => args,
      note: { kind: 'notify', handler: (args) => void notes.push(args[0]) },
    });
    client = await connectClient(url);
    client.addService('math.Math.client', { confirm: (args) => `confirmed ${String(args[0])}` });
  });

  after(async () => {
    await client.close();
    await server.close();
  });

  test('concurrent calls get their own results', T, async () => {
    const calls = Array.from({ length: 50 }, (_, i) => client.call<string>('math.Math/slowEcho', [`v${i}`, (i * 7) % 20]));
    const results = await within(Promise.all(calls), 5000);
    assert.deepEqual(results, Array.from({ length: 50 }, (_, i) => `v${i}`));
    assert.equal(await client.call('math.Math/add', [1, 2, 3]), 6);
  });

  test('the server calls the client back during a call', T, async () => {
    assert.equal(await client.call('math.Math/askClient', ['order 7']), 'confirmed order 7');
    const [peer] = [...server.connections];
    assert.ok(peer);
    assert.equal(await peer.call('math.Math.client/confirm', [42]), 'confirmed 42');
  });

  test('notify reaches the handler and is never answered', T, async () => {
    client.notify('math.Math/note', ['hello']);
    await until(() => notes.includes('hello'));
    const before = client.stats().framesReceived;
    client.notify('math.Math/nope', [1]); // unknown: dropped and counted by the server
    await sleep(50);
    assert.equal(client.stats().framesReceived, before);
  });

  test('unknown method, wrong kind → UNKNOWN_METHOD', T, async () => {
    await assert.rejects(client.call('math.Math/nope', []), (e: unknown) => e instanceof RpcError && e.code === 'UNKNOWN_METHOD');
    await assert.rejects(client.call('no.Such/add', []), (e: unknown) => e instanceof RpcError && e.code === 'UNKNOWN_METHOD');
    // a notification called as a unary method
    await assert.rejects(client.call('math.Math/note', []), (e: unknown) => e instanceof RpcError && e.code === 'UNKNOWN_METHOD');
    // a unary method called as a stream
    const s = client.stream('math.Math/add', [1]);
    await assert.rejects(s.next(), (e: unknown) => e instanceof RpcError && e.code === 'UNKNOWN_METHOD');
  });

  test('a throwing handler gives INTERNAL with a generic message, and the server keeps serving', T, async () => {
    await assert.rejects(client.call('math.Math/crash', []), (e: unknown) => {
      assert.ok(e instanceof RpcError);
      assert.equal(e.code, 'INTERNAL');
      assert.equal(e.wireCode, 6);
      assert.equal(e.message, 'internal error');
      assert.equal(e.details, undefined);
      return true;
    });
    assert.ok(logged.entries.some((l) => l.error instanceof Error && l.error.message.includes('secret')), 'logged locally');
    assert.equal(await client.call('math.Math/add', [2, 2]), 4);
  });

  test('an application error carries typed details', T, async () => {
    await assert.rejects(
      client.call('math.Math/divide', [1, 0], { decodeError: (d) => ({ ...(d as object), converted: true }) }),
      (e: unknown) => {
        assert.ok(e instanceof ApplicationError);
        assert.ok(e instanceof WspError);
        assert.equal(e.code, 'APPLICATION');
        assert.equal(e.message, 'DivisionByZero');
        assert.equal(e.variant, 'DivisionByZero');
        assert.deepEqual(e.details, { $type: 'DivisionByZero', dividend: 1, converted: true });
        return true;
      },
    );
    assert.equal(await client.call('math.Math/divide', [6, 3]), 2);
  });

  test('deadline exceeded: caller fails in time, the handler sees the deadline and is aborted', T, async () => {
    const t0 = Date.now();
    await assert.rejects(
      client.call('math.Math/wait', [], { timeoutMs: 150 }),
      (e: unknown) => e instanceof RpcError && e.code === 'DEADLINE_EXCEEDED',
    );
    assert.ok(Date.now() - t0 < 1000);
    assert.ok(handlerDeadline !== undefined && Math.abs(handlerDeadline - (t0 + 150)) < 200);
    await until(() => handlerSignal?.aborted === true);
    // a deadline of 0 has already expired
    await assert.rejects(client.call('math.Math/add', [1], { timeoutMs: 0 }), (e: unknown) => (e as RpcError).code === 'DEADLINE_EXCEEDED');
  });

  test('AbortSignal cancels the call and reaches the handler', T, async () => {
    handlerSignal = undefined;
    const ac = new AbortController();
    const p = client.call('math.Math/wait', [], { signal: ac.signal, timeoutMs: 5000 });
    await until(() => handlerSignal !== undefined);
    ac.abort();
    await assert.rejects(p, (e: unknown) => e instanceof RpcError && e.code === 'CANCELLED');
    await until(() => handlerSignal?.aborted === true);
    assert.equal(server.stats().incomingInFlight, 0);
  });

  test('a signal first read after the call was cancelled is already aborted, and spreading the context copies it', T, async () => {
    const ac = new AbortController();
    const p = client.call('math.Math/late', [], { signal: ac.signal, timeoutMs: 5000 });
    await until(() => lateStarted);
    ac.abort();
    await assert.rejects(p, (e: unknown) => e instanceof RpcError && e.code === 'CANCELLED');
    await until(() => server.stats().incomingInFlight === 0);
    releaseLate();
    await until(() => lateSignals !== undefined);
    assert.ok(lateSignals !== undefined);
    assert.equal(lateSignals.direct.aborted, true);
    assert.ok(lateSignals.direct.reason instanceof RpcError && lateSignals.direct.reason.code === 'CANCELLED');
    assert.equal(lateSignals.spread, lateSignals.direct);
  });

  test('64-bit integers above 2^53 round-trip exactly as bigint', T, async () => {
    const v = 2n ** 60n + 12345n;
    assert.deepEqual(await client.call('math.Math/big', [v]), [v, v + 1n, -v]);
    const extremes = [2n ** 64n - 1n, -(2n ** 63n), 2n ** 53n + 1n, 5n];
    // bigints that fit in 32 bits travel as small ints and come back as numbers (generated code converts per type)
    assert.deepEqual(await client.call('math.Math/echo', [extremes]), [[2n ** 64n - 1n, -(2n ** 63n), 2n ** 53n + 1n, 5]]);
    // a number that is a safe integer beyond 32 bits travels as an int, not a float
    assert.deepEqual(await client.call('math.Math/echo', [2 ** 40]), [2n ** 40n]);
  });

  test('bytes travel as bin', T, async () => {
    assert.deepEqual(await client.call('math.Math/bytes', [new Uint8Array([1, 2, 3])]), new Uint8Array([3, 2, 1]));
  });

  test('the wildcard observer sees every incoming call with connection id', T, async () => {
    observed.length = 0;
    await client.call('math.Math/add', [5]);
    client.notify('math.Math/note', ['x']);
    await until(() => observed.length >= 2);
    assert.deepEqual(
      observed.map((e) => [e.kind, e.method, e.args]),
      [
        ['call', 'math.Math/add', [5]],
        ['notify', 'math.Math/note', ['x']],
      ],
    );
    const [peer] = [...server.connections];
    assert.equal(observed[0]?.connectionId, peer?.id);
  });

  test('dynamic services: add, remove, clear', T, async () => {
    server.addService('dyn', { hi: () => 'hi' });
    assert.equal(await client.call('dyn/hi', []), 'hi');
    server.removeService('dyn');
    await assert.rejects(client.call('dyn/hi', []), (e: unknown) => (e as RpcError).code === 'UNKNOWN_METHOD');
    const [peer] = [...server.connections];
    peer?.addService('perconn', { x: () => 1 });
    assert.equal(await client.call('perconn/x', []), 1);
    peer?.clearServices();
    await assert.rejects(client.call('perconn/x', []), (e: unknown) => (e as RpcError).code === 'UNKNOWN_METHOD');
  });

  test('statistics count frames, bytes and calls', T, async () => {
    const s = client.stats();
    assert.ok(s.callsSent > 50 && s.repliesReceived > 50 && s.errorsReceived > 3);
    assert.ok(s.bytesSent > 0 && s.bytesReceived > 0 && s.framesSent > s.callsSent);
    assert.ok(s.openTimeMs >= 0 && s.openedAt !== undefined);
    assert.equal(s.callsInFlight, 0);
    assert.ok(server.stats().invalidFrames >= 1, 'the dropped notification counted as invalid');
  });
});

describe('wire details', () => {
  test('handshake: the first frame is [0, 1, services]', T, async () => {
    const { server, url } = await startServer();
    server.addService('math.Math', { add: () => 0 }, 'fp-1');
    const raw = await rawConnect(url);
    try {
      assert.deepEqual(await raw.next(1), [0, 1, { 'math.Math': 'fp-1' }]);
      // the §10 example, by hand
      raw.sendFrame([0, 1, { 'math.Math.client': '' }]);
      server.addService('math.Math', { add: (args) => (args[0] as number[]).reduce((a, b) => a + b, 0) });
      raw.sendFrame([1, 1, 'math.Math/add', 30000, [[1, 2, 3]]]);
      assert.deepEqual(await raw.next(2), [4, 1, 6]);
      // unknown trailing elements are ignored (§2)
      raw.sendFrame([1, 2, 'math.Math/add', null, [[1]], 'future', 'fields']);
      assert.deepEqual(await raw.next(3), [4, 2, 1]);
      // a client that offers no subprotocol gets MessagePack (§1)
      const plain = await rawConnect(url, null);
      assert.equal(plain.ws.protocol, '');
      assert.deepEqual(await plain.next(1), [0, 1, { 'math.Math': '' }]);
      plain.ws.close();
      // the peer's services map is exposed
      const [peer] = [...server.connections];
      assert.deepEqual(peer?.remoteServices, { 'math.Math.client': '' });
    } finally {
      raw.ws.close();
      await server.close();
    }
  });

  test('HELLO services maps are exposed on both sides', T, async () => {
    const { server, url } = await startServer();
    server.addService('s', { f: () => 0 }, 'fp-s');
    const client = new Client(url, { WebSocket: WS, log: quietLog().log });
    client.addService('s.client', { y: () => 0 }, 'fp-c');
    try {
      await within(client.connect(), 3000);
      assert.deepEqual(client.remoteServices, { s: 'fp-s' });
      const [peer] = [...server.connections];
      await within(peer!.ready, 3000);
      assert.deepEqual(peer?.remoteServices, { 's.client': 'fp-c' });
    } finally {
      await client.close();
      await server.close();
    }
  });

  test('JSON codec end to end: i64 as strings, bytes as base64', T, async () => {
    const { server, url } = await startServer();
    server.addService('j', {
      big: (args, ctx) => {
        assert.equal(ctx.codec, 'json');
        assert.equal(typeof args[0], 'string'); // i64 arrives as a decimal string
        return convert.toBigInt(args[0]) * 2n;
      },
      bytes: (args, ctx) => convert.toBytes(args[0], ctx.codec),
    });
    const client = await connectClient(url, { codecs: ['json'] });
    try {
      assert.equal(client.codec, 'json');
      const v = 2n ** 62n + 1n;
      const r = await client.call('j/big', [v], { decode: (x) => convert.toBigInt(x) });
      assert.equal(r, v * 2n);
      const b = await client.call('j/bytes', [new Uint8Array([0, 255, 7])], { decode: (x, codec) => convert.toBytes(x, codec) });
      assert.deepEqual(b, new Uint8Array([0, 255, 7]));
      // raw check: JSON text frames
      const raw = await rawConnect(url, 'wsp.v1.json');
      assert.deepEqual(await raw.next(1), [0, 1, { j: '' }]);
      raw.sendFrame([0, 1, {}]);
      raw.sendFrame([1, 9, 'j/big', 1000, ['9007199254740993']]);
      assert.deepEqual(await raw.next(2), [4, 9, '18014398509481986']);
      raw.ws.close();
    } finally {
      await client.close();
      await server.close();
    }
  });

  test('accept hook: reject by path/header, attach per-connection data', T, async () => {
    const { server, url, port } = await startServer({
      accept: (req) => {
        if (req.url !== '/rpc') return { status: 404 };
        if (req.headers['x-token'] !== undefined && req.headers['x-token'] !== 'good') return false;
        return { data: { user: 'alice' } };
      },
    });
    server.addService('who', { ami: (_a, ctx) => ctx.data });
    try {
      const { WebSocket } = await import('ws');
      const bad = new WebSocket(`ws://127.0.0.1:${port}/rpc`, 'wsp.v1.msgpack', { headers: { 'x-token': 'bad' } });
      const status = await within(
        new Promise<number>((resolve) => bad.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))),
        3000,
      );
      assert.equal(status, 403);
      const wrongPath = connectClient(url, { reconnect: false });
      await assert.rejects(wrongPath, (e: unknown) => e instanceof RpcError && e.code === 'NOT_CONNECTED');
      const client = await connectClient(`ws://127.0.0.1:${port}/rpc`);
      assert.deepEqual(await client.call('who/ami', []), { user: 'alice' });
      await client.close();
      // unsupported subprotocols only → HTTP 400
      const nope = new WebSocket(`ws://127.0.0.1:${port}/rpc`, 'other.v9');
      const s400 = await within(
        new Promise<number>((resolve) => nope.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))),
        3000,
      );
      assert.equal(s400, 400);
    } finally {
      await server.close();
    }
  });
});
