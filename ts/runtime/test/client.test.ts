/** The client: lazy connect, reconnect, calls while disconnected, close semantics, states. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Client, CloseError, type ConnectionState, Peer, RpcError, shortenCloseReason } from '../src/index.js';
import { WspServer } from '../src/node/index.js';
import { WS, quietLog, sleep, startServer, until, within } from './helpers.js';

const T = { timeout: 15_000 };

function serveEcho(server: WspServer): void {
  server.addService('e', {
    echo: (args) => args[0],
    slow: (_a, ctx) => new Promise((resolve) => ctx.signal.addEventListener('abort', () => resolve(null))),
  });
}

describe('client', () => {
  test('construction does not connect; connect() does; close() is idempotent', T, async () => {
    const { server, url } = await startServer();
    serveEcho(server);
    let connections = 0;
    server.addService('n', {});
    const states: ConnectionState[] = [];
    const client = new Client(url, { WebSocket: WS, onStateChange: (c) => states.push(c.state) });
    try {
      await sleep(50);
      assert.equal(client.state, 'idle');
      assert.equal(server.connections.size, connections);
      await assert.rejects(client.call('e/echo', [1]), (e: unknown) => e instanceof RpcError && e.code === 'NOT_CONNECTED');
      await within(client.connect(), 3000);
      connections = server.connections.size;
      assert.equal(connections, 1);
      assert.equal(await client.call('e/echo', [1]), 1);
    } finally {
      await client.close();
      await client.close();
      await server.close();
    }
    assert.deepEqual(states, ['connecting', 'connected', 'closed']);
    await assert.rejects(client.call('e/echo', [1]), (e: unknown) => e instanceof RpcError && e.code === 'CLOSED');
    assert.throws(() => client.notify('e/echo', [1]), (e: unknown) => e instanceof RpcError && e.code === 'CLOSED');
  });

  test('reconnects after the server restarts on the same port; in-flight calls fail with DISCONNECTED; waiting calls go through', T, async () => {
    const first = await startServer();
    serveEcho(first.server);
    const states: ConnectionState[] = [];
    const client = new Client(first.url, {
      WebSocket: WS,
      log: quietLog().log,
      reconnect: { initialDelayMs: 20, maxDelayMs: 100 },
      onStateChange: (c) => states.push(c.state),
    });
    client.addService('c', { hi: () => 'client here' });
    let second: WspServer | undefined;
    try {
      await within(client.connect(), 3000);
      const inFlight = client.call('e/slow', [], { timeoutMs: 5000 });
      inFlight.catch(() => undefined); // observed below, after the server is gone
      await until(() => first.server.stats().incomingInFlight === 1);
      await first.server.close();
      await assert.rejects(within(inFlight, 2000), (e: unknown) => e instanceof RpcError && e.code === 'DISCONNECTED');
      assert.equal(client.state, 'reconnecting');
      // a call made while the link is down waits for it
      const waiting = client.call('e/echo', ['after restart'], { timeoutMs: 5000 });
      await sleep(100);
      second = new WspServer({ port: first.port, log: quietLog().log });
      serveEcho(second);
      await second.listen();
      assert.equal(await within(waiting, 5000), 'after restart');
      assert.equal(client.stats().reconnects, 1);
      assert.ok(states.includes('reconnecting'));
      // client-side services survived the reconnect
      const [peer] = [...second.connections];
      assert.equal(await peer!.call('c/hi', []), 'client here');
    } finally {
      await client.close();
      await second?.close();
    }
  });

  test('calls while disconnected: wait up to their deadline, or fail fast', T, async () => {
    const { server, url } = await startServer();
    serveEcho(server);
    const waiting = new Client(url, { WebSocket: WS, log: quietLog().log, reconnect: { initialDelayMs: 50, maxDelayMs: 50 } });
    const failing = new Client(url, { WebSocket: WS, log: quietLog().log, whenDisconnected: 'fail', reconnect: { initialDelayMs: 50 } });
    try {
      await within(Promise.all([waiting.connect(), failing.connect()]), 3000);
      await server.close();
      await until(() => waiting.state === 'reconnecting' && failing.state === 'reconnecting');
      const t0 = Date.now();
      await assert.rejects(waiting.call('e/echo', [1], { timeoutMs: 200 }), (e: unknown) => e instanceof RpcError && e.code === 'DEADLINE_EXCEEDED');
      assert.ok(Date.now() - t0 >= 180);
      // a stream requested while down waits the same way
      const s = waiting.stream('e/echo', [], { timeoutMs: 150 });
      await assert.rejects(s.next(), (e: unknown) => e instanceof RpcError && e.code === 'DEADLINE_EXCEEDED');
      await assert.rejects(failing.call('e/echo', [1]), (e: unknown) => e instanceof RpcError && e.code === 'NOT_CONNECTED');
      assert.throws(() => failing.notify('e/echo', [1]), (e: unknown) => e instanceof RpcError && e.code === 'NOT_CONNECTED');
      const ac = new AbortController();
      const cancelled = waiting.call('e/echo', [1], { signal: ac.signal });
      ac.abort();
      await assert.rejects(cancelled, (e: unknown) => e instanceof RpcError && e.code === 'CANCELLED');
    } finally {
      await waiting.close();
      await failing.close();
    }
  });

  test('reconnect off: link loss leaves the client disconnected', T, async () => {
    const { server, url } = await startServer();
    const client = new Client(url, { WebSocket: WS, log: quietLog().log, reconnect: false });
    await within(client.connect(), 3000);
    const link = client.currentPeer!;
    await server.close();
    // graceful server shutdown closes with 1001, which `closed` reports as an error with the code
    await assert.rejects(link.closed, (e: unknown) => e instanceof CloseError && e.code === 1001 && e.reason === 'server shutting down');
    await until(() => client.state === 'disconnected');
    await assert.rejects(client.call('e/echo', [1]), (e: unknown) => e instanceof RpcError && e.code === 'NOT_CONNECTED');
    await client.close();
  });

  test('closed promise: 1000 resolves, any other code rejects with code and reason', T, async () => {
    const { server, url } = await startServer();
    try {
      const a = new Client(url, { WebSocket: WS, reconnect: false });
      await within(a.connect(), 3000);
      const peerA = a.currentPeer!;
      await a.close(1000, 'bye');
      assert.deepEqual(await within(peerA.closed, 3000), { code: 1000, reason: 'bye' });

      const b = new Client(url, { WebSocket: WS, reconnect: false, log: quietLog().log });
      await within(b.connect(), 3000);
      const peerB = b.currentPeer!;
      const serverSide = [...server.connections].find((p) => p.id !== peerA.id && p.isOpen)!;
      const serverClosed = serverSide.closed;
      void serverSide.close(4321, 'go away');
      await assert.rejects(within(peerB.closed, 3000), (e: unknown) => e instanceof CloseError && e.code === 4321 && e.reason === 'go away');
      await assert.rejects(serverClosed, (e: unknown) => e instanceof CloseError && e.code === 4321);
      await b.close();
    } finally {
      await server.close();
    }
  });

  test('close reason is shortened to 123 bytes on a character boundary', T, async () => {
    // 40 × "€" (3 bytes each) = 120 bytes, then "ü" (2 bytes) would make 122, then "😀" (4) would make 126
    const reason = '€'.repeat(40) + 'ü' + '😀' + 'tail';
    const short = shortenCloseReason(reason);
    assert.equal(short, '€'.repeat(40) + 'ü');
    assert.equal(new TextEncoder().encode(short).length, 122);
    assert.equal(shortenCloseReason('a'.repeat(200)).length, 123);
    assert.equal(shortenCloseReason('ok'), 'ok');

    const { server, url } = await startServer();
    try {
      const client = new Client(url, { WebSocket: WS, reconnect: false });
      await within(client.connect(), 3000);
      const serverSide = [...server.connections][0]!;
      const peer = client.currentPeer!;
      await client.close(1000, reason);
      assert.deepEqual(await within(serverSide.closed, 3000), { code: 1000, reason: short });
      assert.deepEqual(await peer.closed, { code: 1000, reason: short });
    } finally {
      await server.close();
    }
  });

  test('attach a Peer to an already-open WebSocket (transport-agnostic)', T, async () => {
    const { server, url } = await startServer();
    serveEcho(server);
    const { WebSocket } = await import('ws');
    const ws = new WebSocket(url, 'wsp.v1.json');
    // Attach in the 'open' callback itself: messages that arrive before a listener exists are lost.
    const peer = await within(
      new Promise<Peer>((resolve) => ws.once('open', () => resolve(new Peer(ws)))),
      3000,
    );
    try {
      assert.equal(peer.codec, 'json');
      assert.equal(await peer.call('e/echo', ['raw']), 'raw');
    } finally {
      await peer.close();
      await server.close();
    }
  });

  test('server broadcast reaches every client without waiting for any', T, async () => {
    const { server, url } = await startServer();
    const got: string[] = [];
    const clients = await Promise.all(
      [0, 1, 2].map(async (i) => {
        const c = new Client(url, { WebSocket: WS });
        c.addService('news', { post: { kind: 'notify', handler: (args) => void got.push(`${i}:${String(args[0])}`) } });
        await within(c.connect(), 3000);
        return c;
      }),
    );
    try {
      assert.equal(server.broadcast('news/post', ['hi']), 3);
      await until(() => got.length === 3);
      assert.deepEqual(got.sort(), ['0:hi', '1:hi', '2:hi']);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
      await server.close();
    }
  });
});
