/** Browser close-code substitutes (PROTOCOL.md §7) and the Client's `closed` promise. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { encode } from '@msgpack/msgpack';
import { Client, CloseError, browserCloseCode, normalizeCloseCode, type WebSocketLike } from '../src/index.js';
import { WS, quietLog, rawConnect, startServer, until, within } from './helpers.js';

const T = { timeout: 10_000 };

describe('41xx substitutes for 10xx codes', () => {
  test('the mapping', () => {
    assert.deepEqual([1002, 1003, 1007, 1009, 1011].map(browserCloseCode), [4102, 4103, 4107, 4109, 4111]);
    assert.equal(browserCloseCode(1000), undefined);
    assert.equal(browserCloseCode(4001), undefined);
    assert.deepEqual([4102, 4103, 4107, 4109, 4111].map(normalizeCloseCode), [1002, 1003, 1007, 1009, 1011]);
    for (const c of [1000, 1001, 1006, 4000, 4001, 4002, 4100, 4101, 4104, 4110, 4112, 3000]) assert.equal(normalizeCloseCode(c), c);
  });

  test('a peer that cannot send 1002 sends 4102 instead', T, async () => {
    // A raw server that breaks the protocol (a second HELLO) so the client must close with 1002.
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: (p) => [...p][0] ?? false });
    await new Promise((resolve) => wss.once('listening', resolve));
    const port = (wss.address() as { port: number }).port;
    const received = new Promise<number>((resolve) =>
      wss.on('connection', (ws) => {
        ws.on('close', (code) => resolve(code));
        ws.send(encode([0, 1, {}]));
        ws.send(encode([0, 1, {}]));
      }),
    );
    // A browser-like socket: close() only accepts 1000 and 3000–4999.
    const client = new Client(`ws://127.0.0.1:${port}`, {
      reconnect: false,
      log: quietLog().log,
      createWebSocket: (url, protocols) => {
        const ws = new WebSocket(url, protocols);
        const close = ws.close.bind(ws);
        ws.close = (code?: number, reason?: string | Buffer) => {
          if (code !== undefined && code !== 1000 && (code < 3000 || code > 4999)) throw new DOMException('InvalidAccessError');
          close(code, reason);
        };
        return ws as unknown as WebSocketLike;
      },
    });
    try {
      await client.connect().catch(() => undefined);
      assert.equal(await within(received, 3000, 'close at the server'), 4102);
      // Locally the code is reported as the one it stands for.
      const e = await client.closed.catch((x: unknown) => x);
      assert.ok(e instanceof CloseError && e.code === 1002, String(e));
    } finally {
      await client.close();
      for (const c of wss.clients) c.terminate();
      await new Promise((resolve) => wss.close(resolve));
    }
  });

  test('a received 41xx is treated like the 10xx it stands for', T, async () => {
    const { server, url } = await startServer();
    try {
      const raw = await rawConnect(url);
      raw.sendFrame([0, 1, {}]);
      await until(() => server.connections.size === 1);
      const [peer] = [...server.connections];
      assert.ok(peer !== undefined);
      raw.ws.close(4107, 'bad bytes');
      const e = await within(peer.closed.catch((x: unknown) => x), 3000, 'server-side close');
      assert.ok(e instanceof CloseError && e.code === 1007 && e.reason === 'bad bytes', String(e));
    } finally {
      await server.close();
    }
  });
});

describe('Client.closed', () => {
  test('resolves with what close() sent', T, async () => {
    const { server, url } = await startServer();
    try {
      const client = new Client(url, { WebSocket: WS, log: quietLog().log });
      await client.connect();
      await client.close(1000, 'done');
      assert.deepEqual(await within(client.closed, 3000), { code: 1000, reason: 'done' });
    } finally {
      await server.close();
    }
  });

  test('rejects with a CloseError when the link is lost for good', T, async () => {
    const { server, url } = await startServer();
    const client = new Client(url, { WebSocket: WS, reconnect: false, log: quietLog().log });
    try {
      await client.connect();
      await server.close('maintenance');
      const e = await within(client.closed.catch((x: unknown) => x), 3000);
      assert.ok(e instanceof CloseError && e.code === 1001 && e.reason === 'maintenance', String(e));
      assert.equal(client.state, 'disconnected');
    } finally {
      await client.close();
    }
  });
});
