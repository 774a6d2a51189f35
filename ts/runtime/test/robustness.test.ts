/** Hostile or broken peers: every case ends in the defined close code, never a crash. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Client, RpcError } from '../src/index.js';
import type { WspServer } from '../src/node/index.js';
import { connectClient, rawConnect, startServer, until, within } from './helpers.js';

const T = { timeout: 10_000 };

describe('malformed input', () => {
  let server: WspServer;
  let url: string;
  let bystander: Client;

  before(async () => {
    ({ server, url } = await startServer({ limits: { maxMessageSize: 64 * 1024, maxDepth: 16, maxIncomingCalls: 4, handshakeTimeoutMs: 300 } }));
    server.addService('m', {
      ping: () => 'pong',
      hang: (_a, ctx) => new Promise((resolve) => ctx.signal.addEventListener('abort', () => resolve(null))),
      // A client stream whose handler never takes an item, so it never grants more (§2.7).
      take: { kind: 'upload', handler: (_a, _items, ctx) => new Promise((resolve) => ctx.signal.addEventListener('abort', () => resolve(null))) },
      // Answers what became of each item: its value, or the code of the error it was delivered as.
      first: {
        kind: 'upload',
        handler: async (_a, items) => {
          const it = items[Symbol.asyncIterator]();
          const seen: unknown[] = [];
          for (let i = 0; i < 2; i++) seen.push(await it.next().then((r) => r.value, (e: unknown) => (e instanceof RpcError ? e.code : String(e))));
          return seen;
        },
      },
    });
    bystander = await connectClient(url);
  });

  after(async () => {
    await bystander.close();
    await server.close();
  });

  async function expectClose(frames: unknown[], code: number, hello = true): Promise<void> {
    const raw = await rawConnect(url);
    if (hello) raw.sendFrame([0, 1, {}]);
    for (const f of frames) {
      if (f instanceof Uint8Array || typeof f === 'string') raw.ws.send(f);
      else raw.sendFrame(f);
    }
    const closed = await within(raw.closed, 3000, 'close');
    assert.equal(closed.code, code, `close reason: ${closed.reason}`);
    // the server still serves everybody else
    assert.equal(await bystander.call('m/ping', []), 'pong');
  }

  test('garbage bytes → 1007, other clients keep working', T, async () => {
    await expectClose([new Uint8Array([0xc1, 0xff, 0x00])], 1007);
    await expectClose([new Uint8Array([0x93, 0x01])], 1007); // truncated array
  });

  test('text frame on a MessagePack connection → 1003', T, async () => {
    await expectClose(['[1,1,"m/ping",null,[]]'], 1003);
  });

  test('malformed envelopes → 1002', T, async () => {
    await expectClose([[42, 1]], 1002); // unknown frame type
    await expectClose([{ not: 'an array' }], 1002);
    await expectClose([[1, 'id?', 'm/ping', null, []]], 1002);
    await expectClose([[1, 1]], 1002); // too short
    await expectClose([[1, 2 ** 32, 'm/ping', null, []]], 1002); // id beyond 32 bits
  });

  test('a caller breaking the rules of its items → 1002 (PUSH past the grant, after PUSH_END, for a plain call)', T, async () => {
    const push = (id: number): unknown[] => [12, id, 1];
    await expectClose([[10, 1, 'm/take', null, []], ...Array.from({ length: 17 }, () => push(1))], 1002);
    await expectClose([[10, 1, 'm/take', null, []], [13, 1], push(1)], 1002);
    await expectClose([[10, 1, 'm/take', null, []], [13, 1], [13, 1]], 1002);
    await expectClose([[1, 1, 'm/hang', null, []], push(1)], 1002);
    // An item nested deeper than the limit is delivered as INVALID_ARGUMENTS; the next one still comes.
    const deep = (n: number): unknown => (n === 0 ? 1 : [deep(n - 1)]);
    const deepRaw = await rawConnect(url);
    deepRaw.sendFrame([0, 1, {}]);
    deepRaw.sendFrame([10, 3, 'm/first', null, []]);
    deepRaw.sendFrame([12, 3, deep(20)]);
    deepRaw.sendFrame([12, 3, 'fine']);
    await until(() => deepRaw.frames.some((f) => Array.isArray(f) && f[0] === 4 && f[1] === 3), 3000);
    const reply = deepRaw.frames.find((f) => Array.isArray(f) && f[0] === 4 && f[1] === 3) as unknown[];
    assert.deepEqual(reply[2], ['INVALID_ARGUMENTS', 'fine']);
    deepRaw.ws.close();
    // Within the grant, and for an id that is not running: fine, the connection stays.
    const raw = await rawConnect(url);
    raw.sendFrame([0, 1, {}]);
    raw.sendFrame([10, 1, 'm/take', null, []]);
    for (let i = 0; i < 16; i++) raw.sendFrame(push(1));
    raw.sendFrame(push(99));
    raw.sendFrame([1, 2, 'm/ping', null, []]);
    await until(() => raw.frames.some((f) => Array.isArray(f) && f[0] === 4 && f[1] === 2), 3000);
    raw.ws.close();
  });

  test('handshake violations: no HELLO first → 1002, second HELLO → 1002, bad version → 4000, silence → 4001', T, async () => {
    await expectClose([[1, 1, 'm/ping', null, []]], 1002, false);
    await expectClose([[0, 1, {}]], 1002);
    await expectClose([[0, 2, {}]], 4000, false);
    const raw = await rawConnect(url);
    const closed = await within(raw.closed, 3000);
    assert.equal(closed.code, 4001);
  });

  test('message larger than the limit → 1009', T, async () => {
    await expectClose([[1, 1, 'm/ping', null, ['x'.repeat(100 * 1024)]]], 1009);
  });

  test('too deeply nested arguments → INVALID_ARGUMENTS; non-array args too', T, async () => {
    let deep: unknown = 1;
    for (let i = 0; i < 40; i++) deep = [deep];
    await assert.rejects(bystander.call('m/ping', [deep]), (e: unknown) => e instanceof RpcError && e.code === 'INVALID_ARGUMENTS');
    const raw = await rawConnect(url);
    raw.sendFrame([0, 1, {}]);
    raw.sendFrame([1, 1, 'm/ping', null, 'not-an-array']);
    assert.deepEqual((await raw.next(2)) as unknown[], [5, 1, 2, 'arguments are not an array', null]);
    raw.ws.close();
  });

  test('too many calls in flight → OVERLOADED', T, async () => {
    const hanging = Array.from({ length: 4 }, () => bystander.call('m/hang', [], { timeoutMs: 2000 }).catch((e: unknown) => e));
    await assert.rejects(bystander.call('m/ping', []), (e: unknown) => e instanceof RpcError && e.code === 'OVERLOADED');
    const results = await Promise.all(hanging);
    assert.ok(results.every((e) => e instanceof RpcError && e.code === 'DEADLINE_EXCEEDED'));
    assert.equal(await bystander.call('m/ping', []), 'pong');
  });

  test('replies for unknown ids and CANCEL/CREDIT for unknown ids are ignored', T, async () => {
    const raw = await rawConnect(url);
    raw.sendFrame([0, 1, {}]);
    raw.sendFrame([4, 999, 'late']);
    raw.sendFrame([5, 998, 6, 'x', null]);
    raw.sendFrame([8, 997]);
    raw.sendFrame([9, 996, 10]);
    raw.sendFrame([1, 1, 'm/ping', null, []]);
    assert.deepEqual(await raw.next(2), [4, 1, 'pong']);
    raw.ws.close();
  });
});

describe('keep-alive and peer errors', () => {
  test('a peer that stops answering pings is closed with 4002', T, async () => {
    const { server, url } = await startServer({ limits: { keepAliveIntervalMs: 50, deadPeerTimeoutMs: 200 } });
    const { WebSocket } = await import('ws');
    const ws = new WebSocket(url, 'wsp.v1.msgpack', { autoPong: false });
    const closed = new Promise<number>((resolve) => ws.on('close', (code: number) => resolve(code)));
    ws.on('error', () => undefined);
    try {
      assert.equal(await within(closed, 3000), 4002);
    } finally {
      await server.close();
    }
  });

  test('a live client is kept open by pongs', T, async () => {
    const { server, url } = await startServer({ limits: { keepAliveIntervalMs: 30, deadPeerTimeoutMs: 120 } });
    server.addService('k', { ok: () => true });
    const client = await connectClient(url);
    try {
      await new Promise((r) => setTimeout(r, 400));
      assert.equal(client.state, 'connected');
      assert.equal(await client.call('k/ok', []), true);
    } finally {
      await client.close();
      await server.close();
    }
  });

  test('an unknown error code from a peer is an INTERNAL-like RpcError keeping the number', T, async () => {
    const { server, url } = await startServer();
    const raw = await rawConnect(url);
    try {
      await raw.next(1);
      raw.sendFrame([0, 1, { odd: '' }]);
      await until(() => [...server.connections].some((p) => p.remoteServices !== undefined));
      const peer = [...server.connections][0]!;
      const p = peer.call('odd/x', []);
      const call = (await raw.next(2)) as unknown[];
      raw.sendFrame([5, call[1], 99, 'from the future', { why: 1 }]);
      await assert.rejects(p, (e: unknown) => {
        assert.ok(e instanceof RpcError);
        assert.equal(e.code, 'INTERNAL');
        assert.equal(e.wireCode, 99);
        assert.equal(e.message, 'from the future');
        assert.deepEqual(e.details, { why: 1 });
        return true;
      });
    } finally {
      raw.ws.close();
      await server.close();
    }
  });
});

describe('client-side handshake', () => {
  test('a server that never sends HELLO: the client closes with 4001', T, async () => {
    const { WebSocketServer } = await import('ws');
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: (p) => [...p][0] ?? false });
    await new Promise((resolve) => wss.once('listening', resolve));
    const port = (wss.address() as { port: number }).port;
    const { Client } = await import('../src/index.js');
    const { WS } = await import('./helpers.js');
    const client = new Client(`ws://127.0.0.1:${port}`, { WebSocket: WS, reconnect: false, limits: { handshakeTimeoutMs: 200 } });
    const changes: Array<number | undefined> = [];
    client.onStateChange((c) => changes.push(c.close?.code));
    try {
      await assert.rejects(within(client.connect(), 3000), (e: unknown) => e instanceof RpcError && e.code === 'NOT_CONNECTED');
      assert.equal(client.state, 'disconnected');
      assert.ok(changes.includes(4001), `state changes: ${JSON.stringify(changes)}`);
    } finally {
      await client.close();
      for (const c of wss.clients) c.terminate();
      await new Promise((resolve) => wss.close(resolve));
    }
  });
});
