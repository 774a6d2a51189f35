/**
 * Pins the TypeScript column of docs/behaviour.md: one test per row, in the table's order (the
 * Rust column is pinned by wsp-runtime/tests/lifecycle_behaviour.rs).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { WebSocketServer } from 'ws';
import { Client, DEFAULT_LIMITS, RpcError } from '../src/index.js';
import { WS, quietLog, startServer, within } from './helpers.js';

const T = { timeout: 15_000 };

const isCode = (code: string) => (e: unknown) => e instanceof RpcError && e.code === code;

/** Arguments nested `depth` deep, the arguments array itself counted as the outermost level. */
function nestedArgs(depth: number): unknown[] {
  let v: unknown[] = [];
  for (let i = 1; i < depth; i++) v = [v];
  return v;
}

describe('docs/behaviour.md, TypeScript column', () => {
  test('a call made before connect() rejects at once with NOT_CONNECTED; one made while connect runs waits', T, async () => {
    const { server, url } = await startServer();
    server.addService('e', { echo: (args) => args[0] });
    const client = new Client(url, { WebSocket: WS, log: quietLog().log });
    try {
      assert.equal(client.state, 'idle');
      const t0 = Date.now();
      await assert.rejects(client.call('e/echo', [1]), isCode('NOT_CONNECTED'));
      assert.ok(Date.now() - t0 < 1000, 'at once, not after the default deadline');
      const connecting = client.connect();
      assert.equal(client.state, 'connecting');
      assert.equal(await within(client.call('e/echo', [5]), 3000), 5);
      await within(connecting, 3000);
    } finally {
      await client.close();
      await server.close();
    }
  });

  test('notify() without a link throws at once: NOT_CONNECTED when idle, CLOSED after close()', T, async () => {
    const client = new Client('ws://127.0.0.1:9/', { WebSocket: WS, log: quietLog().log });
    assert.equal(client.state, 'idle');
    assert.throws(() => client.notify('e/note', []), isCode('NOT_CONNECTED'));
    await client.close();
    assert.throws(() => client.notify('e/note', []), isCode('CLOSED'));
  });

  test('a client offers only MessagePack by default, and what `codecs` lists in its order', T, async () => {
    const offered: string[][] = [];
    const wss = new WebSocketServer({
      host: '127.0.0.1',
      port: 0,
      handleProtocols: (protocols) => {
        offered.push([...protocols]);
        return false;
      },
    });
    await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
    const { port } = wss.address() as { port: number };
    const client = new Client(`ws://127.0.0.1:${port}/`, { WebSocket: WS, log: quietLog().log, reconnect: false });
    try {
      await within(
        client.connect().catch(() => undefined),
        5000,
      );
      assert.deepEqual(offered[0], ['wsp.v1.msgpack']);
      const both = new Client(`ws://127.0.0.1:${port}/`, { WebSocket: WS, log: quietLog().log, reconnect: false, codecs: ['json', 'msgpack'] });
      await within(
        both.connect().catch(() => undefined),
        5000,
      );
      await both.close();
      assert.deepEqual(offered[1], ['wsp.v1.json', 'wsp.v1.msgpack']);
    } finally {
      await client.close();
      for (const ws of wss.clients) ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    }
  });

  test('the default nesting depth limit is 128, on both codecs', T, async () => {
    assert.equal(DEFAULT_LIMITS.maxDepth, 128);
    const { server, url } = await startServer();
    server.addService('e', { echo: (args) => args[0] });
    for (const codec of ['msgpack', 'json'] as const) {
      const client = new Client(url, { WebSocket: WS, log: quietLog().log, codecs: [codec] });
      try {
        await within(client.connect(), 3000);
        const ok = nestedArgs(128);
        assert.deepEqual(await within(client.call('e/echo', ok), 3000), ok[0], `${codec}: 128 accepted`);
        await assert.rejects(within(client.call('e/echo', nestedArgs(129)), 3000), isCode('INVALID_ARGUMENTS'), `${codec}: 129 refused`);
      } finally {
        await client.close();
      }
    }
    await server.close();
  });
});
