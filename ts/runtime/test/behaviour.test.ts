/**
 * Pins the TypeScript column of docs/behaviour.md: one test per row, in the table's order (the
 * Rust column is pinned by wsp-runtime/tests/lifecycle_behaviour.rs).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { WebSocketServer } from 'ws';
import { Client, DEFAULT_LIMITS, RpcError } from '../src/index.js';
import { WS, quietLog, startServer, until, within } from './helpers.js';

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

  test('the first connect() retries under the reconnect policy, until maxAttempts retries are spent', T, async () => {
    // The server refuses the first two upgrades (503), as one still starting would.
    let upgrades = 0;
    const { server, url } = await startServer({ accept: () => (++upgrades <= 2 ? { status: 503 } : true) });
    server.addService('e', { echo: (args) => args[0] });
    const reconnect = { initialDelayMs: 20, maxDelayMs: 50, jitter: 0 };
    const client = new Client(url, { WebSocket: WS, log: quietLog().log, reconnect });
    try {
      await within(client.connect(), 5000);
      assert.equal(upgrades, 3, 'two refusals, then the third attempt');
      assert.equal(await within(client.call('e/echo', [7]), 3000), 7);
    } finally {
      await client.close();
    }
    // With one retry allowed, two refusals make connect() fail.
    upgrades = 0;
    const once = new Client(url, { WebSocket: WS, log: quietLog().log, reconnect: { ...reconnect, maxAttempts: 1 } });
    try {
      await assert.rejects(within(once.connect(), 5000));
      assert.equal(upgrades, 2, 'the first attempt and one retry');
    } finally {
      await once.close();
      await server.close();
    }
  });

  /** A server whose `e/outer` calls back the client's `c/hang`, which answers only when cancelled. */
  async function callbackPair(): Promise<{
    client: Client;
    close: () => Promise<void>;
    inner: { started: boolean; deadline: number | undefined; aborted: boolean; outerDeadline: number | undefined; error: unknown };
  }> {
    const inner = { started: false, deadline: undefined as number | undefined, aborted: false, outerDeadline: undefined as number | undefined, error: undefined as unknown };
    const { server, url } = await startServer();
    server.addService('e', {
      outer: async (_args, ctx) => {
        inner.outerDeadline = ctx.deadline;
        try {
          return await ctx.peer.call('c/hang', []);
        } catch (e) {
          inner.error = e;
          throw e;
        }
      },
    });
    const client = new Client(url, { WebSocket: WS, log: quietLog().log });
    client.addService('c', {
      hang: (_args, ctx) => {
        inner.started = true;
        inner.deadline = ctx.deadline;
        return new Promise((_resolve, reject) => {
          ctx.signal.addEventListener('abort', () => {
            inner.aborted = true;
            reject(new RpcError('CANCELLED', 'cancelled'));
          });
        });
      },
    });
    await within(client.connect(), 3000);
    return {
      client,
      inner,
      close: async () => {
        await client.close();
        await server.close();
      },
    };
  }

  test("a handler's call through ctx.peer inherits the served call's deadline", T, async () => {
    const { client, inner, close } = await callbackPair();
    try {
      const t0 = Date.now();
      await assert.rejects(within(client.call('e/outer', [], { timeoutMs: 500 }), 5000), isCode('DEADLINE_EXCEEDED'));
      await until(() => inner.error !== undefined, 3000, 'the inner call to fail');
      // At the served deadline the callee's timer and the outer caller's CANCEL (sent when its own
      // copy of the deadline passes) arrive together: the inner call fails as expired or as
      // cancelled, whichever came first (docs/behaviour.md) — but at that deadline.
      const outcome = isCode('DEADLINE_EXCEEDED')(inner.error) || isCode('CANCELLED')(inner.error);
      assert.ok(outcome, `inner call: ${String(inner.error)}`);
      assert.ok(Date.now() - t0 < 3000, 'at the served deadline, not after the default 30 s');
      assert.ok(inner.deadline !== undefined && inner.outerDeadline !== undefined, 'both calls carry a deadline');
      // The callee's deadline is the served one (give or take the clocks' rounding of one hop).
      assert.ok(inner.deadline <= inner.outerDeadline + 50, `inner ${inner.deadline} > outer ${inner.outerDeadline}`);
      // A signal that gives up on time (`AbortSignal.timeout`) fails a call the same way.
      await assert.rejects(within(client.call('e/outer', [], { signal: AbortSignal.timeout(300) }), 5000), isCode('DEADLINE_EXCEEDED'));
    } finally {
      await close();
    }
  });

  test("a handler's call through ctx.peer is cancelled with the served call", T, async () => {
    const { client, inner, close } = await callbackPair();
    try {
      const abort = new AbortController();
      const outer = client.call('e/outer', [], { signal: abort.signal });
      await until(() => inner.started, 3000, 'the inner call to start');
      abort.abort();
      await assert.rejects(within(outer, 3000), isCode('CANCELLED'));
      await until(() => inner.aborted, 3000, 'the inner handler to see CANCEL');
      await until(() => inner.error !== undefined, 3000, 'the inner call to fail');
      assert.ok(isCode('CANCELLED')(inner.error), `inner call: ${String(inner.error)}`);
    } finally {
      await close();
    }
  });
});
