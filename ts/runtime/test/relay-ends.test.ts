/**
 * The relay ends of the runtime — `Client.viaRelay` and `RelayHost` — against a relay scripted by
 * the test (relay-fake.ts): the exact frame sequences of PROTOCOL.md §11.4–11.5, proofs that the
 * relay can verify, refusals, a HELLO that arrives in the same read as CONNECTED (plain) or as
 * the end-to-end handshake's answer (encrypted, the default), reconnects, and a relay that goes
 * silent. The test plays the other end with the runtime's own handshake (src/relay/secure.ts);
 * relay-secure.test.ts has the attacks on the encryption.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { describe, test } from 'node:test';
import {
  Client,
  CloseError,
  type ConnectionState,
  Identity,
  Peer,
  type PublicKey,
  type RelayPeer,
  RelayError,
  RelayHost,
  ServiceRegistry,
  type Signer,
  type StateChange,
} from '../src/index.js';
import { WebSocket as NodeWebSocket } from '../src/node/index.js';
import { initiate, respond } from '../src/relay/secure.js';
import { FakeRelay, type FakeConn } from './relay-fake.js';
import { WS, quietLog, sleep, until, within } from './helpers.js';

const T = { timeout: 15_000 };

function echoServices(): ServiceRegistry {
  const services = new ServiceRegistry();
  services.add('e', { echo: (args) => args[0] });
  return services;
}

/**
 * Joins a caller's connection to a wsp "host" played by a Peer on the relay's own socket: plain
 * (`host` null, the Peer's HELLO right after CONNECTED), or answering the caller's end-to-end
 * handshake as `host` first. `sameWrite`: the host's HELLO leaves in one TCP write with what
 * precedes it (CONNECTED, or the handshake's answer), so the client reads both in one event.
 */
async function joinToPeer(
  conn: FakeConn,
  services: ServiceRegistry,
  host: Identity | null,
  sameWrite = false,
): Promise<{ peer: Peer; caller: PublicKey | null }> {
  const tcp = (conn.ws as unknown as { _socket: Socket })._socket;
  const cork = (): void => {
    if (!sameWrite) return;
    tcp.cork();
    process.nextTick(() => tcp.uncork());
  };
  if (host === null) {
    cork();
    conn.send({ type: 38 });
    return { peer: new Peer(conn.takeOver(), { services, log: quietLog().log }), caller: conn.frames[0]?.type === 35 ? (conn.frames[0].caller?.key ?? null) : null };
  }
  conn.send({ type: 38 });
  const ws = conn.takeOver();
  // Registered before the handshake's listener: corks before the answer and the HELLO are written.
  ws.on('message', cork);
  return within(
    new Promise((resolve, reject) => {
      respond(ws, host, {
        timeoutMs: 3000,
        maxMessageSize: 16 * 1024 * 1024,
        done: (secure, caller) => {
          const peer = new Peer(secure, { services, log: quietLog().log });
          secure.onFault = (code, reason) => peer.abort(code, reason);
          ws.off('message', cork);
          resolve({ peer, caller });
        },
        failed: reject,
      });
    }),
    5000,
    "the caller's end-to-end handshake",
  );
}

describe('caller through a relay', () => {
  for (const encrypt of [true, false]) {
    test(`CHALLENGE → CONNECT with a proof → CONNECTED${encrypt ? ' → the end-to-end handshake' : ''}; a HELLO in the same read is not lost${encrypt ? '' : ' (plain)'}`, T, async () => {
      const target = Identity.generate();
      const me = Identity.generate();
      const connects: Array<{ conn: FakeConn; proofHolds: boolean; joined: Promise<{ peer: Peer; caller: PublicKey | null }> }> = [];
      const relay = await FakeRelay.start(async (conn) => {
        const f = await conn.frame(1);
        connects.push({ conn, proofHolds: conn.proofHolds(f, relay.name), joined: joinToPeer(conn, echoServices(), encrypt ? target : null, true) });
      });
      const targets: unknown[] = [];
      const client = Client.viaRelay(relay.url, target.publicKey, { identity: me, encrypt, WebSocket: WS, log: quietLog().log, limits: { handshakeTimeoutMs: 3000 } });
      client.addService('c', { data: (_args, ctx) => targets.push(ctx.data) });
      try {
        await within(client.connect(), 5000, 'connect through the relay');
        assert.equal(await client.call('e/echo', ['hi']), 'hi');
        assert.equal(connects.length, 1);
        const f = connects[0]!.conn.frames[0]!;
        assert.equal(f.type, 35);
        assert.ok(f.type === 35 && f.target.equals(target.publicKey) && f.caller?.key.equals(me.publicKey));
        assert.ok(connects[0]!.proofHolds, "the caller's proof verifies for this relay name and nonce");
        assert.ok(f.type === 35 && f.caller !== null && !f.caller.key.verify(new TextEncoder().encode('x'), f.caller.signature));
        const joined = await connects[0]!.joined;
        assert.ok(joined.caller?.equals(me.publicKey), 'the host learnt who calls');
        // The client's own handlers see the target (RelayPeer), and whether the link is encrypted.
        await joined.peer.call('c/data', []);
        assert.equal(targets.length, 1);
        const seen = targets[0] as RelayPeer;
        assert.ok(seen.key?.equals(target.publicKey));
        assert.equal(seen.encrypted, encrypt);
      } finally {
        await client.close();
        await relay.close();
      }
    });
  }

  test('an anonymous caller sends a nil caller and runs NK; the JSON codec carries the relay frames as text', T, async () => {
    const host = Identity.generate();
    const target = host.publicKey.toString();
    let caller: Promise<PublicKey | null> | undefined;
    const binary: boolean[] = [];
    const relay = await FakeRelay.start(async (conn) => {
      await conn.frame(1);
      const joined = joinToPeer(conn, echoServices(), host);
      conn.ws.on('message', (_d: Buffer, isBinary: boolean) => binary.push(isBinary));
      caller = joined.then((j) => j.caller);
    });
    const client = Client.viaRelay(relay.url, target, { WebSocket: WS, codecs: ['json'], log: quietLog().log });
    try {
      await within(client.connect(), 5000, 'connect');
      assert.equal(client.codec, 'json');
      assert.equal(await client.call('e/echo', [7]), 7);
      const f = relay.conns[0]!.frames[0]!;
      assert.ok(f.type === 35 && f.caller === null && f.target.equals(target));
      assert.equal(await caller, null, 'anonymous end to end too');
      // The handshake and the JSON frames after it: all binary messages (§12.2).
      assert.ok(binary.length >= 3 && binary.every((b) => b), String(binary));
    } finally {
      await client.close();
      await relay.close();
    }
  });

  test('a refusal on the first connect rejects at once with a RelayError, reconnect on or not', T, async () => {
    const relay = await FakeRelay.start(async (conn) => {
      await conn.frame(1);
      conn.ws.close(4201, 'relay: unknown key');
    });
    const states: ConnectionState[] = [];
    const client = Client.viaRelay(relay.url, Identity.generate().publicKey, {
      WebSocket: WS,
      log: quietLog().log,
      onStateChange: (c) => states.push(c.state),
    });
    try {
      const started = Date.now();
      const error = await within(client.connect().then(() => undefined, (e: unknown) => e), 3000, 'connect');
      assert.ok(error instanceof RelayError, String(error));
      assert.equal(error.closeCode, 4201);
      assert.equal(error.reason, 'relay: unknown key');
      assert.equal(error.code, 'NOT_CONNECTED');
      assert.ok(error.refused);
      assert.ok(Date.now() - started < 2000, 'no retry with backoff first');
      assert.equal(client.state, 'disconnected');
      assert.deepEqual(states, ['connecting', 'disconnected']);
      await assert.rejects(client.closed, (e: unknown) => e instanceof CloseError && e.code === 4201 && e.reason === 'relay: unknown key');
      await sleep(300);
      assert.equal(relay.conns.length, 1, 'no second attempt');
    } finally {
      await client.close();
      await relay.close();
    }
  });

  test('once connected, refusals while reconnecting are retried like a lost link', T, async () => {
    const host = Identity.generate();
    let n = 0;
    const relay = await FakeRelay.start(async (conn) => {
      await conn.frame(1);
      n++;
      if (n === 2 || n === 3) return conn.ws.close(4201, 'relay: unknown key'); // the host re-registering
      const { peer } = await joinToPeer(conn, echoServices(), host);
      if (n === 1) {
        await peer.ready;
        await peer.close(4321, 'host restarts').catch(() => undefined);
      }
    });
    const changes: StateChange[] = [];
    const client = Client.viaRelay(relay.url, host.publicKey, {
      WebSocket: WS,
      log: quietLog().log,
      reconnect: { initialDelayMs: 20, jitter: 0 },
      onStateChange: (c) => changes.push(c),
    });
    try {
      await within(client.connect(), 5000, 'connect');
      await until(() => n >= 4 && client.state === 'connected', 5000, 'reconnected through the relay');
      assert.equal(await client.call('e/echo', ['again']), 'again');
      assert.equal(client.stats().reconnects, 1);
      assert.equal(n, 4, 'two refusals, each retried');
      // The state stays 'reconnecting' through the refused attempts (no change to report).
      const closes = changes.filter((c) => c.state === 'reconnecting').map((c) => c.close?.code);
      assert.deepEqual(closes, [4321]);
    } finally {
      await client.close();
      await relay.close();
    }
  });

  test('a relay frame that cannot be read, or an unexpected one, closes with 1002', T, async () => {
    for (const bad of ['[38, "x"', '[36, null]'] as const) {
      const relay = await FakeRelay.start(async (conn) => {
        await conn.frame(1);
        conn.ws.send(bad);
      });
      const client = Client.viaRelay(relay.url, Identity.generate().publicKey, { WebSocket: WS, codecs: ['json'], reconnect: false, log: quietLog().log });
      try {
        const error = await within(client.connect().then(() => undefined, (e: unknown) => e), 3000, 'connect');
        assert.ok(error instanceof RelayError && error.closeCode === 1002 && !error.refused, `${bad}: ${String(error)}`);
        const seen = await within(relay.conns[0]!.closed, 3000, 'the close at the relay');
        assert.equal(seen.code, 1002, bad);
      } finally {
        await client.close();
        await relay.close();
      }
    }
  });

  test('no CONNECTED within the handshake timeout: 4001', T, async () => {
    const relay = await FakeRelay.start();
    const client = Client.viaRelay(relay.url, Identity.generate().publicKey, {
      WebSocket: WS,
      reconnect: false,
      log: quietLog().log,
      limits: { handshakeTimeoutMs: 200 },
    });
    try {
      const error = await within(client.connect().then(() => undefined, (e: unknown) => e), 3000, 'connect');
      assert.ok(error instanceof RelayError && error.closeCode === 4001, String(error));
      assert.equal((await within(relay.conns[0]!.closed, 3000, 'close')).code, 4001);
    } finally {
      await client.close();
      await relay.close();
    }
  });

  test('close() while the relay is asked closes that connection', T, async () => {
    const relay = await FakeRelay.start();
    const client = Client.viaRelay(relay.url, Identity.generate().publicKey, { WebSocket: WS, log: quietLog().log });
    const connecting = client.connect().then(() => undefined, (e: unknown) => e);
    await until(() => relay.conns.length === 1 && relay.conns[0]!.frames.length === 1, 3000, 'CONNECT');
    await client.close(1000, 'changed my mind');
    const error = await connecting;
    assert.ok(error instanceof Error && (error as { code?: string }).code === 'CLOSED', String(error));
    assert.deepEqual(await within(relay.conns[0]!.closed, 3000, 'close'), { code: 1000, reason: 'changed my mind' });
    await relay.close();
  });

  test('a malformed target key is refused at construction', () => {
    assert.throws(() => Client.viaRelay('ws://127.0.0.1:1/', 'not a key', { WebSocket: WS }), TypeError);
  });
});

describe('host through a relay', () => {
  /** A relay that registers every spare whose proof holds (and refuses the others with 4200). */
  async function registeringRelay(pingIntervalMs = 20_000): Promise<FakeRelay> {
    const relay: FakeRelay = await FakeRelay.start(async (conn) => {
      const f = await conn.frame(1).catch(() => undefined);
      if (f === undefined) return;
      if (f.type !== 33 || !conn.proofHolds(f, relay.name)) return conn.ws.close(4200, 'relay: registration proof refused');
      conn.send({ type: 34, pingIntervalMs });
    });
    return relay;
  }

  /** Spares registered and not handed over yet. */
  function idle(relay: FakeRelay): FakeConn[] {
    return relay.conns.filter((c) => c.ws.readyState === c.ws.OPEN && c.frames.length === 1 && !handedOver.has(c));
  }

  test('registers N spares with proofs; HANDOVER → READY, then the end-to-end handshake and wsp; the proven caller key reaches handlers; a replacement opens', T, async () => {
    const relay = await registeringRelay();
    const id = Identity.generate();
    const callers: RelayPeer[] = [];
    const host = new RelayHost(relay.url, id, { WebSocket: NodeWebSocket, spares: 3, log: quietLog().log, onConnection: (_p, c) => callers.push(c) });
    host.addService('who', { key: (_args, ctx) => (ctx.data as RelayPeer).key?.toString() ?? null });
    try {
      await within(host.start(), 5000, 'start');
      await within(host.waitForSpares(), 5000, 'three spares');
      assert.equal(host.idleSpares, 3);
      assert.equal(relay.conns.length, 3);
      for (const c of relay.conns) {
        const f = c.frames[0]!;
        assert.ok(f.type === 33 && f.key.equals(id.publicKey));
      }
      const caller = Identity.generate();
      const handed = handOver(idle(relay)[0]!, caller, { host: id.publicKey });
      const raw = handed.raw;
      const peer = await handed.peer;
      await within(peer.ready, 3000, "the host's HELLO");
      assert.deepEqual(raw[0], [37], 'READY first');
      assert.ok(raw[1] instanceof Uint8Array && raw[1].length === 48, 'then the handshake answer: an ephemeral key and an empty payload’s tag');
      assert.ok(raw.slice(1).every((m) => m instanceof Uint8Array), 'nothing in the clear after READY');
      assert.equal(await within(peer.call('who/key', []), 3000, 'call'), caller.publicKey.toString());
      assert.equal(host.connections.size, 1);
      assert.equal(host.handovers, 1);
      assert.equal(callers.length, 1);
      assert.ok(callers[0]!.key?.equals(caller.publicKey));
      assert.equal(callers[0]!.encrypted, true);
      await within(host.waitForSpares(3), 5000, 'the replacement spare');
      assert.equal(relay.conns.length, 4);
      // An anonymous caller: the handler sees null.
      const peer2 = await handOver(idle(relay)[0]!, null, { host: id.publicKey }).peer;
      await within(peer2.ready, 3000, 'HELLO');
      assert.equal(await within(peer2.call('who/key', []), 3000, 'call'), null);
      // The host believes the handshake, not the relay: a HANDOVER naming someone else changes nothing.
      const someoneElse = Identity.generate().publicKey;
      const peer3 = await handOver(idle(relay)[0]!, caller, { host: id.publicKey, claimed: someoneElse }).peer;
      assert.equal(await within(peer3.call('who/key', []), 3000, 'call'), caller.publicKey.toString());
      const peer4 = await handOver(idle(relay)[0]!, null, { host: id.publicKey, claimed: someoneElse }).peer;
      assert.equal(await within(peer4.call('who/key', []), 3000, 'call'), null);
      for (const p of [peer, peer2, peer3, peer4]) await p.close();
    } finally {
      await host.close();
      await relay.close();
    }
  });

  test('encrypt: false — READY, then HELLO at once; the key the relay verified reaches handlers', T, async () => {
    const relay = await registeringRelay();
    const id = Identity.generate();
    const callers: RelayPeer[] = [];
    const host = new RelayHost(relay.url, id, { WebSocket: NodeWebSocket, spares: 1, encrypt: false, log: quietLog().log, onConnection: (_p, c) => callers.push(c) });
    host.addService('who', { key: (_args, ctx) => (ctx.data as RelayPeer).key?.toString() ?? null });
    try {
      await within(host.start(), 5000, 'start');
      const caller = Identity.generate();
      const handed = handOver(idle(relay)[0]!, caller, { host: null });
      const peer = await handed.peer;
      await within(peer.ready, 3000, "the host's HELLO");
      assert.deepEqual(handed.raw[0], [37], 'READY first');
      assert.equal((handed.raw[1] as unknown[])[0], 0, 'then HELLO: wsp starts right after READY');
      assert.equal(await within(peer.call('who/key', []), 3000, 'call'), caller.publicKey.toString());
      assert.deepEqual(callers.map((c) => [c.key?.toString(), c.encrypted]), [[caller.publicKey.toString(), false]]);
      await peer.close();
    } finally {
      await host.close();
      await relay.close();
    }
  });

  test('start() rejects with 4200 when the relay refuses the proof, and the host is closed', T, async () => {
    const relay = await registeringRelay();
    const real = Identity.generate();
    const other = Identity.generate();
    // A key/secret mismatch: claims `other`'s key, signs with `real`'s secret.
    const liar: Signer = { publicKey: other.publicKey, sign: (m) => real.sign(m), dh: (p) => real.dh(p) };
    const host = new RelayHost(relay.url, liar, { WebSocket: NodeWebSocket, log: quietLog().log });
    const error = await within(host.start().then(() => undefined, (e: unknown) => e), 5000, 'start');
    assert.ok(error instanceof RelayError && error.closeCode === 4200, String(error));
    assert.equal(error.reason, 'relay: registration proof refused');
    await assert.rejects(host.waitForSpares(1), (e: unknown) => (e as { code?: string }).code === 'CLOSED');
    await sleep(200);
    assert.equal(relay.conns.length, 1, 'no further spares');
    await relay.close();
  });

  test('a relay silent for three ping intervals is dropped and the spare re-opened; pings keep it', T, async () => {
    const relay = await registeringRelay(100);
    const host = new RelayHost(relay.url, Identity.generate(), {
      WebSocket: NodeWebSocket,
      spares: 1,
      reconnect: { initialDelayMs: 10, jitter: 0 },
      log: quietLog().log,
    });
    try {
      await within(host.start(), 5000, 'start');
      const first = relay.conns[0]!;
      // ~300 ms without a ping: the host drops the spare (no close handshake) and opens another.
      const closed = await within(first.closed, 3000, 'the silent spare dropped');
      assert.equal(closed.code, 1006, 'dropped, not closed');
      await within(host.waitForSpares(1), 3000, 'a new spare');
      assert.ok(relay.conns.length >= 2);
      // A relay that pings is not taken for gone.
      const pinged = relay.conns[relay.conns.length - 1]!;
      const count = relay.conns.length;
      const pinger = setInterval(() => pinged.ws.ping(), 50);
      await sleep(700);
      clearInterval(pinger);
      assert.equal(relay.conns.length, count, 'no re-open while the relay pings');
      assert.equal(pinged.ws.readyState, pinged.ws.OPEN);
    } finally {
      await host.close();
      await relay.close();
    }
  });

  test('close() closes idle spares with 1001 and rejects waiters', T, async () => {
    const relay = await registeringRelay();
    const host = new RelayHost(relay.url, Identity.generate(), { WebSocket: NodeWebSocket, spares: 2, log: quietLog().log });
    await within(host.start(), 5000, 'start');
    await within(host.waitForSpares(), 5000, 'spares');
    const waiting = host.waitForSpares(5);
    await host.close();
    await assert.rejects(waiting, (e: unknown) => (e as { code?: string }).code === 'CLOSED');
    for (const c of relay.conns) assert.equal((await within(c.closed, 3000, 'closed')).code, 1001);
    assert.equal(host.idleSpares, 0);
    await assert.rejects(host.start(), (e: unknown) => (e as { code?: string }).code === 'CLOSED');
    await relay.close();
  });
});

/**
 * Hands `spare` over to a caller (the test plays the relay and the caller): sends HANDOVER naming
 * `claimed` (default: the caller's key) and, inside the event that delivers READY, starts the
 * caller's end — the end-to-end handshake towards `host` (plain when null), then a Peer. `raw`
 * records every message: READY decoded, what follows as it came (bytes, or decoded when plain).
 */
const handedOver = new WeakSet<FakeConn>();

function handOver(
  spare: FakeConn,
  caller: Identity | null,
  options: { host: PublicKey | null; claimed?: PublicKey | null },
): { peer: Promise<Peer>; raw: unknown[] } {
  handedOver.add(spare);
  const raw: unknown[] = [];
  const ws = spare.takeOver();
  let attached: (peer: Peer) => void = () => undefined;
  let failed: (e: unknown) => void = () => undefined;
  const peer = new Promise<Peer>((resolve, reject) => {
    attached = resolve;
    failed = reject;
  });
  const host = options.host;
  ws.on('message', (d: Buffer, isBinary: boolean) => {
    const first = raw.length === 0;
    raw.push(first || host === null ? spare.codec.decode(isBinary ? new Uint8Array(d) : d.toString('utf8')) : isBinary ? new Uint8Array(d) : d.toString('utf8'));
    if (!first) return;
    if (host === null) return attached(new Peer(ws, { log: quietLog().log }));
    initiate(ws, host, caller ?? undefined, {
      timeoutMs: 3000,
      maxMessageSize: 16 * 1024 * 1024,
      done: (secure) => {
        const p = new Peer(secure, { log: quietLog().log });
        secure.onFault = (code, reason) => p.abort(code, reason);
        attached(p);
      },
      failed,
    });
  });
  spare.send({ type: 36, caller: options.claimed === undefined ? (caller?.publicKey ?? null) : options.claimed });
  return { peer: within(peer, 3000, 'READY and the handshake'), raw };
}
