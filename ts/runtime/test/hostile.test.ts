/**
 * Hostile peers (PROTOCOL.md §8 limits): each case ends in the defined close code, error or
 * back-pressure, a bystander client on the same server keeps getting answers, and what the server
 * holds for the attacker stays bounded by a limit, not by the size of the attack.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { describe, test } from 'node:test';
import { encode } from '@msgpack/msgpack';
import { WebSocket } from 'ws';
import { Client, CloseError, type Peer, RpcError, type WebSocketLike, codegen, convert, peerText, sanitizeMethodName } from '../src/index.js';
import type { ServerOptions, WspServer } from '../src/node/index.js';
import { clientFrame, connectClient, quietLog, rawConnect, rawTcpConnect, sleep, startServer, until, within } from './helpers.js';

const T = { timeout: 20_000 };

/** A server with a `m/ping` method, a connected bystander client, and cleanup. */
async function withServer(
  options: ServerOptions,
  body: (s: { server: WspServer; url: string; port: number; bystander: Client; peers: Peer[]; sockets: Socket[] }) => Promise<void>,
): Promise<void> {
  const peers: Peer[] = [];
  const sockets: Socket[] = [];
  const { server, url, port } = await startServer({
    ...options,
    onConnection: (peer, req) => {
      peers.push(peer);
      sockets.push(req.socket as Socket);
    },
  });
  server.addService('m', { ping: () => 'pong' });
  const bystander = await connectClient(url, { reconnect: false });
  try {
    await body({ server, url, port, bystander, peers, sockets });
    // whatever happened to the attacker, everybody else is still served
    assert.equal(await within(bystander.call('m/ping', []), 3000, 'bystander call'), 'pong');
  } finally {
    await bystander.close();
    await server.close();
  }
}

/** The server-side peer that is not the bystander's (the attacker's). */
async function attackerPeer(peers: Peer[]): Promise<Peer> {
  await until(() => peers.length >= 2, 3000, 'attacker connected');
  return peers[peers.length - 1]!;
}

async function closeErrorOf(p: Promise<unknown>, ms = 5000): Promise<CloseError> {
  const e = await within(
    p.then(
      () => undefined,
      (x: unknown) => x,
    ),
    ms,
    'close',
  );
  assert.ok(e instanceof CloseError, `expected a CloseError, got ${String(e)}`);
  return e;
}

describe('HELLO limits', () => {
  test('a HELLO larger than maxHelloSize → 1009 "HELLO too large"', T, async () => {
    await withServer({}, async ({ url }) => {
      const raw = await rawConnect(url);
      raw.sendFrame([0, 1, { big: 'x'.repeat(70 * 1024) }]); // over 64 KiB, far under maxMessageSize
      assert.deepEqual(await within(raw.closed, 3000), { code: 1009, reason: 'HELLO too large' });
    });
  });

  test('a HELLO listing more than maxHelloServices → 1009; exactly the limit is accepted', T, async () => {
    await withServer({}, async ({ url }) => {
      const services = (n: number): Record<string, string> => Object.fromEntries(Array.from({ length: n }, (_, i) => [`s${i}`, '']));
      const ok = await rawConnect(url);
      ok.sendFrame([0, 1, services(1024)]);
      ok.sendFrame([1, 1, 'm/ping', null, []]);
      assert.deepEqual(await ok.next(2), [4, 1, 'pong']);
      ok.ws.close();
      const raw = await rawConnect(url);
      raw.sendFrame([0, 1, services(1025)]);
      assert.deepEqual(await within(raw.closed, 3000), { code: 1009, reason: 'HELLO too large' });
    });
  });
});

describe('method names', () => {
  test('sanitizeMethodName: 64 characters at most, control characters replaced, … when cut', () => {
    assert.equal(sanitizeMethodName('geometry.Geometry/area'), 'geometry.Geometry/area');
    assert.equal(sanitizeMethodName('a\u0000b\u001fc\u007fd\u0085e\u009ff\u00a0g'), 'a?b?c?d?e?f\u00a0g');
    assert.equal(sanitizeMethodName('x'.repeat(64)), 'x'.repeat(64));
    assert.equal(sanitizeMethodName('x'.repeat(65)), `${'x'.repeat(64)}…`);
    // characters, not UTF-16 units: a surrogate pair is never cut in half
    assert.equal(sanitizeMethodName('😀'.repeat(70)), `${'😀'.repeat(64)}…`);
    assert.equal(sanitizeMethodName('\n'.repeat(1 << 20)), `${'?'.repeat(64)}…`);
    assert.equal(peerText('x'.repeat(1000), 4), 'xxxx…');
    assert.equal(peerText('a\nb\u007f', 64), 'a?b?');
  });

  test('a 1 MiB method name → UNKNOWN_METHOD with a short message; a NOTIFY of one is dropped', T, async () => {
    await withServer({}, async ({ url, server }) => {
      const raw = await rawConnect(url);
      raw.sendFrame([0, 1, {}]);
      const huge = `m/${'\u001b'.repeat(1 << 20)}`;
      raw.sendFrame([1, 1, huge, null, []]);
      raw.sendFrame([2, 2, huge, null, 8, []]);
      const call = (await raw.next(2)) as unknown[];
      const stream = (await raw.next(3)) as unknown[];
      for (const [frame, id] of [[call, 1], [stream, 2]] as const) {
        assert.equal(frame[0], 5);
        assert.equal(frame[1], id);
        assert.equal(frame[2], 1, 'UNKNOWN_METHOD');
        const message = frame[3] as string;
        assert.ok(Buffer.byteLength(message) <= 100, `message of ${Buffer.byteLength(message)} bytes`);
        assert.equal(message, `unknown method m/${'?'.repeat(62)}…`);
      }
      const before = server.stats().invalidFrames;
      raw.sendFrame([3, huge, []]);
      raw.sendFrame([1, 3, 'm/ping', null, []]);
      assert.deepEqual(await raw.next(4), [4, 3, 'pong']);
      assert.equal(server.stats().invalidFrames, before + 1);
      raw.ws.close();
    });
  });

  test('a name over maxMethodLength is not looked up, even if such a method exists', T, async () => {
    await withServer({ limits: { maxMethodLength: 64 } }, async ({ url, server }) => {
      const long = 'l'.repeat(70);
      let notified = 0;
      server.addService('svc', { [long]: () => 'reached', short: () => 'ok', [`n${long}`]: { kind: 'notify', handler: () => void notified++ } });
      const client = await connectClient(url, { reconnect: false });
      try {
        assert.equal(await client.call('svc/short', []), 'ok');
        await assert.rejects(client.call(`svc/${long}`, []), (e: unknown) => {
          assert.ok(e instanceof Error && 'code' in e && e.code === 'UNKNOWN_METHOD', String(e));
          assert.equal(e.message, `unknown method ${sanitizeMethodName(`svc/${long}`)}`);
          return true;
        });
        const before = server.stats().invalidFrames;
        client.notify(`svc/n${long}`, []);
        await until(() => server.stats().invalidFrames === before + 1, 3000, 'NOTIFY dropped');
        assert.equal(notified, 0);
      } finally {
        await client.close();
      }
    });
  });
});

describe('decoding errors', () => {
  test('an INVALID_ARGUMENTS message quotes at most 200 characters of the peer\'s value', T, async () => {
    await withServer({}, async ({ url, server }) => {
      // a generated-style handler: map<i32, i32> argument, decoded with the runtime's converters
      server.addService('d', {
        keys: (args) => codegen.decodeArgs(() => convert.toMap(args[0], convert.intKey, convert.toNumber)).size,
      });
      const client = await connectClient(url, { reconnect: false });
      try {
        assert.equal(await client.call('d/keys', [{ 1: 1, 2: 2 }]), 2);
        const key = `k\u0000${'k'.repeat(1 << 20)}`;
        await assert.rejects(client.call('d/keys', [{ [key]: 1 }]), (e: unknown) => {
          assert.ok(e instanceof RpcError && e.code === 'INVALID_ARGUMENTS', String(e));
          assert.equal(e.message, `invalid arguments: ${peerText(`expected an integer map key, got ${JSON.stringify(key)}`, 200)}`);
          assert.ok(e.message.length < 240, `message of ${e.message.length} characters`);
          return true;
        });
      } finally {
        await client.close();
      }
    });
  });
});

describe('notification flood', () => {
  test('ws: beyond maxIncomingNotifications reading pauses (handlers bounded, nothing read ahead, nothing lost)', { timeout: 60_000 }, async () => {
    const limit = 16;
    const total = 200_000;
    let running = 0;
    let maxRunning = 0;
    let entered = 0;
    let hold = true;
    const waiting: Array<() => void> = [];
    await withServer({ limits: { maxIncomingNotifications: limit } }, async ({ url, server, sockets }) => {
      server.addService('n', {
        note: {
          kind: 'notify',
          handler: async () => {
            entered++;
            running++;
            maxRunning = Math.max(maxRunning, running);
            try {
              if (hold) await new Promise<void>((resolve) => waiting.push(resolve)); // never resolves on its own
              else await new Promise((resolve) => setImmediate(resolve));
            } finally {
              running--;
            }
          },
        },
      });
      const raw = await rawConnect(url);
      raw.sendFrame([0, 1, {}]);
      const padding = 'x'.repeat(64);
      for (let i = 0; i < total; i++) raw.sendFrame([3, 'n/note', [i, padding]]);
      const flood = total * 80; // bytes, roughly
      await until(() => entered >= limit, 5000, 'handlers entered');
      await sleep(300);
      const attacker = sockets[sockets.length - 1]!;
      assert.equal(entered, limit, 'no handler beyond the limit started');
      assert.equal(maxRunning, limit);
      // The server stopped reading: what it took from the socket is a few reads, not the flood.
      assert.ok(attacker.bytesRead < 2 * 1024 * 1024, `server read ${attacker.bytesRead} of ~${flood} bytes`);
      assert.ok(server.stats().notificationsReceived <= limit + 1);
      // the attacker's own connection stays open and is served again once handlers settle
      hold = false;
      for (const resolve of waiting.splice(0)) resolve();
      await until(() => entered === total, 40_000, 'every notification handled');
      assert.ok(maxRunning <= limit, `at most ${limit} ran at once, saw ${maxRunning}`);
      raw.sendFrame([1, 1, 'm/ping', null, []]);
      assert.deepEqual(await raw.next(2, 5000), [4, 1, 'pong']);
      assert.equal(server.stats().droppedNotifications, 0);
      raw.ws.close();
    });
  });

  test('handlers that never settle: the pause lasts at most the dead-peer timeout → 4002', T, async () => {
    const limits = { maxIncomingNotifications: 2, keepAliveIntervalMs: 50, deadPeerTimeoutMs: 400 };
    await withServer({ limits }, async ({ url, server, peers }) => {
      server.addService('n', { stuck: { kind: 'notify', handler: () => new Promise(() => undefined) } });
      const raw = await rawConnect(url);
      raw.sendFrame([0, 1, {}]);
      const peer = await attackerPeer(peers);
      for (let i = 0; i < 10; i++) raw.sendFrame([3, 'n/stuck', [i]]);
      // the client answers every ping, but the server reads nothing while paused
      const e = await closeErrorOf(peer.closed);
      assert.equal(e.code, 4002);
      raw.ws.terminate();
    });
  });

  test('a socket that cannot pause (browser): notifications beyond the limit are dropped and counted', T, async () => {
    await withServer({}, async ({ url, peers }) => {
      let running = 0;
      let entered = 0;
      const signals: AbortSignal[] = [];
      // A ws socket without pause()/resume()/terminate(), as a browser's WebSocket is.
      const browserLike = (u: string, protocols: string[]): WebSocketLike => {
        const ws = new WebSocket(u, protocols);
        return new Proxy(ws, {
          get: (target, p) => {
            if (p === 'pause' || p === 'resume' || p === 'terminate') return undefined;
            const v: unknown = Reflect.get(target, p, target);
            return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
          },
          set: (target, p, v) => Reflect.set(target, p, v, target),
        }) as unknown as WebSocketLike;
      };
      const client = new Client(url, { createWebSocket: browserLike, reconnect: false, log: quietLog().log, limits: { maxIncomingNotifications: 4 } });
      client.addService('c', {
        note: {
          kind: 'notify',
          handler: (_args, ctx) => {
            entered++;
            running++;
            signals.push(ctx.signal);
            return new Promise(() => undefined); // never settles
          },
        },
      });
      try {
        await client.connect();
        const peer = await attackerPeer(peers);
        for (let i = 0; i < 100; i++) peer.notify('c/note', [i]);
        await until(() => client.stats().notificationsReceived === 100, 3000, 'notifications arrived');
        assert.equal(entered, 4);
        assert.equal(running, 4);
        assert.equal(client.stats().droppedNotifications, 96);
        // the connection keeps working both ways
        assert.equal(await client.call('m/ping', []), 'pong');
      } finally {
        await client.close();
      }
      // the handlers still running are told that their connection is gone
      assert.equal(signals.length, 4);
      assert.ok(signals.every((s) => s.aborted));
    });
  });
});

describe('a peer that does not read', () => {
  test('no progress for writeTimeoutMs → 4003 "write timeout", socket dropped', T, async () => {
    await withServer({ limits: { writeTimeoutMs: 300, maxBufferedBytes: 0 } }, async ({ url, server, peers, sockets }) => {
      server.addService('w', {
        flood: {
          kind: 'stream',
          handler: async function* (_args, ctx) {
            const item = new Uint8Array(64 * 1024);
            while (!ctx.signal.aborted) {
              yield item;
              await sleep(2);
            }
          },
        },
      });
      const raw = await rawConnect(url);
      raw.sendFrame([0, 1, {}]);
      raw.ws.pause(); // never read again
      raw.sendFrame([2, 1, 'w/flood', null, 0xffff_ffff, []]);
      const peer = await attackerPeer(peers);
      const e = await closeErrorOf(peer.closed, 15_000);
      assert.equal(e.code, 4003);
      assert.equal(e.reason, 'write timeout');
      // dropped without a close handshake (the attacker, not reading, sees nothing of it)
      const attacker = sockets[sockets.length - 1]!;
      await until(() => attacker.destroyed, 3000, 'attacker socket dropped');
      raw.ws.terminate();
    });
  });

  test('more than maxBufferedBytes queued → 4003 at once', T, async () => {
    await withServer({ limits: { writeTimeoutMs: 0, maxBufferedBytes: 1024 * 1024 } }, async ({ url, server, peers }) => {
      // each reply in a turn of the event loop of its own, so that the kernel takes what it can
      const payload = new Uint8Array(512 * 1024);
      server.addService('w', { big: () => new Promise((resolve) => setImmediate(() => resolve(payload))) });
      const raw = await rawConnect(url);
      raw.sendFrame([0, 1, {}]);
      raw.ws.pause();
      for (let i = 1; i <= 200; i++) raw.sendFrame([1, i, 'w/big', null, []]);
      const peer = await attackerPeer(peers);
      const e = await closeErrorOf(peer.closed);
      assert.equal(e.code, 4003);
      assert.equal(e.reason, 'send buffer full');
      // Nothing more was queued once over the limit: what left is the limit, what the kernel's
      // socket buffers took, and one reply, far from all 100 MiB of replies.
      const sent = peer.stats().bytesSent;
      assert.ok(sent < 40 * 1024 * 1024, `sent ${sent} bytes`);
      raw.ws.terminate();
    });
  });
});

describe('write limits on a browser-like socket (bufferedAmount only, no terminate)', () => {
  /** A socket whose queue only drains when the test says so; it records what close() got. */
  function fakeSocket() {
    const listeners = new Map<string, Array<(e: unknown) => void>>();
    const socket = {
      readyState: 1,
      protocol: 'wsp.v1.msgpack',
      binaryType: 'arraybuffer',
      queued: 0,
      closedWith: [] as Array<[number | undefined, string | undefined]>,
      get bufferedAmount(): number {
        return socket.queued;
      },
      send(data: Uint8Array | string): void {
        socket.queued += typeof data === 'string' ? data.length : data.byteLength;
      },
      close(code?: number, reason?: string): void {
        socket.closedWith.push([code, reason]);
      },
      addEventListener(type: string, l: (e: unknown) => void): void {
        listeners.set(type, [...(listeners.get(type) ?? []), l]);
      },
      removeEventListener(type: string, l: (e: unknown) => void): void {
        listeners.set(type, (listeners.get(type) ?? []).filter((x) => x !== l));
      },
      fire(type: string, e: unknown): void {
        for (const l of listeners.get(type) ?? []) l(e);
      },
    };
    return socket;
  }

  test('no progress for writeTimeoutMs → close(4003, "write timeout"); progress keeps it open', T, async () => {
    const { Peer } = await import('../src/index.js');
    const socket = fakeSocket();
    const peer = new Peer(socket, { log: quietLog().log, limits: { writeTimeoutMs: 200, handshakeTimeoutMs: 0 } });
    socket.fire('message', { data: encode([0, 1, {}]) });
    await within(peer.ready, 1000, 'ready');
    peer.notify('x/y', [1]); // stays queued
    // draining a little at a time is progress: no close
    for (let i = 0; i < 8; i++) {
      await sleep(60);
      peer.notify('x/y', [i]);
      socket.queued -= 5;
    }
    assert.deepEqual(socket.closedWith, [], 'still open while the queue drains');
    await until(() => socket.closedWith.length > 0, 2000, 'close after no progress');
    assert.deepEqual(socket.closedWith, [[4003, 'write timeout']]);
    socket.readyState = 3;
    socket.fire('close', { code: 1006, reason: '' });
    const closed = await closeErrorOf(peer.closed);
    assert.equal(closed.code, 4003);
  });

  test('more than maxBufferedBytes queued → close(4003); later sends refused', T, async () => {
    const { Peer } = await import('../src/index.js');
    const socket = fakeSocket();
    const peer = new Peer(socket, { log: quietLog().log, limits: { maxBufferedBytes: 1000, writeTimeoutMs: 0, handshakeTimeoutMs: 0 } });
    socket.fire('message', { data: encode([0, 1, {}]) });
    await within(peer.ready, 1000, 'ready');
    peer.notify('x/y', ['a'.repeat(2000)]);
    const call = peer.call('x/z', []);
    const queued = socket.queued;
    await assert.rejects(call, (e: unknown) => e instanceof Error && 'code' in e && e.code === 'DISCONNECTED');
    assert.equal(socket.queued, queued, 'nothing more was queued');
    assert.deepEqual(socket.closedWith, [[4003, 'send buffer full']]);
    socket.readyState = 3;
    socket.fire('close', { code: 1006, reason: '' });
    assert.equal((await closeErrorOf(peer.closed)).code, 4003);
  });
});

describe('message assembly timeout', () => {
  const hello = clientFrame(2, encode([0, 1, {}]));

  test('a first fragment never finished, kept alive with pings → 4004', T, async () => {
    await withServer({ limits: { messageTimeoutMs: 300 } }, async ({ port, peers }) => {
      const raw = await rawTcpConnect(port);
      raw.socket.write(hello);
      raw.socket.write(clientFrame(2, new Uint8Array([0x94, 0x01]), false)); // FIN = 0
      const pinger = setInterval(() => raw.socket.write(clientFrame(9, Buffer.from('hi'))), 50);
      try {
        const peer = await attackerPeer(peers);
        assert.deepEqual(await raw.closeFrame(), { code: 4004, reason: 'message assembly timeout' });
        // the attacker does not answer the close frame; it drops the connection
        raw.socket.destroy();
        const e = await closeErrorOf(peer.closed);
        assert.equal(e.code, 4004);
        // the pings were answered all along: only the message was late
        assert.ok(raw.frames.some((f) => f.opcode === 10));
      } finally {
        clearInterval(pinger);
        raw.socket.destroy();
      }
    });
  });

  test('a frame trickled in byte by byte → 4004', T, async () => {
    await withServer({ limits: { messageTimeoutMs: 300 } }, async ({ port }) => {
      const raw = await rawTcpConnect(port);
      raw.socket.write(hello);
      const frame = clientFrame(2, encode([1, 1, 'm/ping', null, ['x'.repeat(200)]]));
      let i = 0;
      const trickle = setInterval(() => {
        if (i < frame.length) raw.socket.write(frame.subarray(i, ++i));
      }, 20);
      try {
        assert.deepEqual(await raw.closeFrame(), { code: 4004, reason: 'message assembly timeout' });
        assert.ok(i < frame.length, 'closed before the frame was complete');
      } finally {
        clearInterval(trickle);
        raw.socket.destroy();
      }
    });
  });

  test('a fragment sent together with the upgrade request (the head) is watched too', T, async () => {
    await withServer({ limits: { messageTimeoutMs: 300 } }, async ({ port }) => {
      const raw = await rawTcpConnect(port, Buffer.concat([hello, clientFrame(2, new Uint8Array([0x94]), false)]));
      try {
        assert.deepEqual(await raw.closeFrame(), { code: 4004, reason: 'message assembly timeout' });
      } finally {
        raw.socket.destroy();
      }
    });
  });

  test('fragmented and large messages completed in time are served', T, async () => {
    await withServer({ limits: { messageTimeoutMs: 300 } }, async ({ port, url, server }) => {
      server.addService('e', { echo: (args) => args[0] });
      const raw = await rawTcpConnect(port);
      try {
        raw.socket.write(hello);
        const call = Buffer.from(encode([1, 1, 'm/ping', null, []]));
        raw.socket.write(clientFrame(2, call.subarray(0, 3), false));
        await sleep(100);
        raw.socket.write(clientFrame(9, Buffer.from('p')));
        await sleep(100);
        raw.socket.write(clientFrame(0, call.subarray(3, 6), false));
        await sleep(50);
        raw.socket.write(clientFrame(0, call.subarray(6), true));
        await until(() => raw.frames.some((f) => f.opcode === 2 && f.payload.includes(Buffer.from('pong'))), 3000, 'reply');
        // more time passes between messages than a message may take: no message is in progress
        await sleep(500);
        assert.ok(!raw.frames.some((f) => f.opcode === 8), 'not closed');
      } finally {
        raw.socket.destroy();
      }
      const client = await connectClient(url, { reconnect: false });
      try {
        const big = 'y'.repeat(4 * 1024 * 1024);
        assert.equal(await client.call('e/echo', [big]), big);
      } finally {
        await client.close();
      }
    });
  });
});

describe('connection caps', () => {
  /** The HTTP status of an upgrade attempt: 101 when accepted (the socket is kept open). */
  async function attempt(url: string, opened: WebSocket[], localAddress?: string): Promise<number> {
    const ws = new WebSocket(url, 'wsp.v1.msgpack', localAddress === undefined ? {} : { localAddress });
    ws.on('error', () => undefined);
    return within(
      new Promise<number>((resolve) => {
        ws.once('upgrade', () => {
          opened.push(ws);
          resolve(101);
        });
        ws.once('unexpected-response', (_req, res) => {
          resolve(res.statusCode ?? 0);
          res.resume();
          ws.terminate();
        });
      }),
      3000,
      'upgrade attempt',
    );
  }

  test('maxConnections: the next upgrade gets HTTP 503 (pending handshakes count); after a close one is accepted', T, async () => {
    let releaseSlow: () => void = () => undefined;
    const slow = new Promise<void>((resolve) => (releaseSlow = resolve));
    const opened: WebSocket[] = [];
    await withServer(
      { maxConnections: 3, accept: async (req) => { if (req.url === '/slow') await slow; return true; } },
      async ({ url }) => {
        // the bystander holds one place; a handshake held in the accept hook holds another
        const pending = attempt(`${url}slow`, opened);
        await sleep(100);
        assert.equal(await attempt(url, opened), 101);
        assert.equal(await attempt(url, opened), 503);
        releaseSlow();
        assert.equal(await pending, 101);
        assert.equal(await attempt(url, opened), 503);
        const first = opened.shift()!;
        first.close();
        // the place is free once the server saw the socket close
        let status = 0;
        for (let i = 0; i < 50 && status !== 101; i++) {
          status = await attempt(url, opened);
          if (status !== 101) await sleep(20);
        }
        assert.equal(status, 101);
      },
    ).finally(() => opened.forEach((w) => w.terminate()));
  });

  test('maxConnectionsPerAddress: HTTP 503 for that address only', T, async () => {
    const opened: WebSocket[] = [];
    await withServer({ maxConnectionsPerAddress: 2 }, async ({ url }) => {
      // the bystander is one of 127.0.0.1's two
      assert.equal(await attempt(url, opened), 101);
      assert.equal(await attempt(url, opened), 503);
      // another client address (all of 127/8 is loopback on Linux) has its own count
      assert.equal(await attempt(url, opened, '127.0.0.2'), 101);
      assert.equal(await attempt(url, opened, '127.0.0.2'), 101);
      assert.equal(await attempt(url, opened, '127.0.0.2'), 503);
      opened.shift()!.close();
      let status = 0;
      for (let i = 0; i < 50 && status !== 101; i++) {
        status = await attempt(url, opened);
        if (status !== 101) await sleep(20);
      }
      assert.equal(status, 101);
    }).finally(() => opened.forEach((w) => w.terminate()));
  });
});
