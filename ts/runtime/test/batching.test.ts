/**
 * The Node WebSocket (`@wsp/runtime/node`) sends the frames of one tick in one socket write (at
 * most 64 frames per write), on the client and on the server's connections, and still writes a
 * lone call at once.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Client } from '../src/index.js';
import { WebSocket, type WspServer } from '../src/node/index.js';
import { quietLog, startServer, within } from './helpers.js';

const T = { timeout: 10_000 };
const BURST = 50;

/** Counts the system-level writes of a socket: each flush of its stream calls _write or _writev once. */
function countWrites(socket: Socket): { readonly count: number } {
  const counter = { count: 0 };
  const s = socket as unknown as Record<'_write' | '_writev', (...args: unknown[]) => unknown>;
  for (const name of ['_write', '_writev'] as const) {
    const original = s[name].bind(socket);
    s[name] = (...args: unknown[]) => {
      counter.count++;
      return original(...args);
    };
  }
  return counter;
}

describe('frames sent in one tick share one write', () => {
  let server: WspServer;
  let client: Client;
  let clientSocket: Socket | undefined;
  let serverSocket: Socket | undefined;

  before(async () => {
    let url: string;
    ({ server, url } = await startServer({
      onConnection: (_peer, request: IncomingMessage) => {
        serverSocket = request.socket as Socket;
      },
    }));
    server.addService('math.Math', { add: async (args) => (args as number[]).reduce((a, b) => a + b, 0) });
    client = new Client(url, {
      log: quietLog().log,
      createWebSocket: (u, protocols) => {
        const ws = new WebSocket(u, protocols);
        ws.once('upgrade', (response: IncomingMessage) => {
          clientSocket = response.socket as Socket;
        });
        return ws;
      },
    });
    await within(client.connect(), 3000, 'connect');
    assert.ok(clientSocket !== undefined && serverSocket !== undefined);
  });

  after(async () => {
    await client.close();
    await server.close();
  });

  test('a burst of calls leaves in one write and its replies come back in one', T, async () => {
    const sent = countWrites(clientSocket!);
    const replied = countWrites(serverSocket!);
    const calls = Array.from({ length: BURST }, (_, i) => client.call('math.Math/add', [i, 1]));
    // Held until the tick ends, not written one by one.
    assert.equal(clientSocket!.writableCorked, 1);
    assert.ok(clientSocket!.writableLength > 0);
    assert.equal(sent.count, 0);
    const results = await within(Promise.all(calls), 3000, 'burst');
    assert.deepEqual(
      results,
      Array.from({ length: BURST }, (_, i) => i + 1),
    );
    assert.equal(sent.count, 1, `${BURST} CALL frames took ${sent.count} writes`);
    assert.equal(replied.count, 1, `${BURST} REPLY frames took ${replied.count} writes`);
    assert.equal(clientSocket!.writableCorked, 0);
  });

  test('a tick that sends more than 64 frames writes every 64 as it goes', T, async () => {
    const sent = countWrites(clientSocket!);
    const calls = Array.from({ length: 200 }, (_, i) => client.call('math.Math/add', [i, 2]));
    // 3 × 64 written already, within the tick; the last 8 wait for its end.
    assert.equal(sent.count, 3, `200 CALL frames took ${sent.count} writes within their tick`);
    assert.equal(clientSocket!.writableCorked, 1);
    const results = await within(Promise.all(calls), 3000, 'long burst');
    assert.deepEqual(
      results,
      Array.from({ length: 200 }, (_, i) => i + 2),
    );
    assert.equal(sent.count, 4, `200 CALL frames took ${sent.count} writes`);
  });

  test('a lone call is written when its tick ends', T, async () => {
    const sent = countWrites(clientSocket!);
    const call = client.call('math.Math/add', [2, 3]);
    assert.equal(sent.count, 0);
    // Written before the event loop moves on: no timer is involved.
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.equal(sent.count, 1);
    assert.equal(clientSocket!.writableLength, 0);
    assert.equal(await within(call, 3000, 'call'), 5);
  });
});
