/**
 * End-to-end encryption of relayed connections (PROTOCOL.md §12) in the TypeScript ends:
 * SecureSocket's transport messages on an in-memory socket pair (splitting and joining, the size
 * limit, every way a message can be broken), and the handshake of `Client.viaRelay` and
 * `RelayHost` against a relay scripted by the test (relay-fake.ts) that lies: it routes a caller
 * to an impostor, changes a message, passes on a handshake that names another key, or never
 * answers. The Rust ends are checked against the same rules in ts/tests (relay.test.ts).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  Client,
  CloseCode,
  CloseError,
  Identity,
  Peer,
  type PublicKey,
  type RelayPeer,
  RelayError,
  RelayHost,
  ReadyState,
  type Signer,
  type WebSocketLike,
} from '../src/index.js';
import { WebSocket as NodeWebSocket } from '../src/node/index.js';
import { CipherState, HandshakeState, x25519KeyPair } from '../src/relay/noise.js';
import { E2E_CHUNK, E2E_PROLOGUE, SecureSocket, initiate, respond } from '../src/relay/secure.js';
import { FakeRelay, type FakeConn } from './relay-fake.js';
import { WS, quietLog, sleep, until, within } from './helpers.js';

const T = { timeout: 20_000 };
const MAX = 16 * 1024 * 1024;

/** One end of an in-memory WebSocket pair: what it sends is recorded, and delivered by the test. */
class MemorySocket implements WebSocketLike {
  readyState: number = ReadyState.OPEN;
  binaryType = 'arraybuffer';
  bufferedAmount = 0;
  readonly sent: Array<Uint8Array | string> = [];
  closedWith: { code: number | undefined; reason: string | undefined } | undefined;
  /** The other end, for automatic delivery (after a microtask, as a network would). */
  other: MemorySocket | undefined;
  /** Changes (or drops, with undefined) a message this end sends, by its index. */
  tamper: ((data: Uint8Array | string, index: number) => Uint8Array | string | undefined) | undefined;
  private readonly listeners = new Map<string, Set<(e: unknown) => void>>();

  constructor(readonly protocol = 'wsp.v1.msgpack') {}

  send(data: Uint8Array | string): void {
    const copy = typeof data === 'string' ? data : Uint8Array.from(data);
    const index = this.sent.length;
    this.sent.push(copy);
    const other = this.other;
    if (other === undefined) return;
    const out = this.tamper === undefined ? copy : this.tamper(copy, index);
    if (out !== undefined) queueMicrotask(() => other.receive(out));
  }

  close(code?: number, reason?: string): void {
    if (this.readyState === ReadyState.CLOSED) return;
    this.closedWith = { code, reason };
    this.readyState = ReadyState.CLOSED;
    const event = { code: code ?? 1005, reason: reason ?? '' };
    queueMicrotask(() => this.emit('close', event));
    const other = this.other;
    if (other !== undefined && other.readyState !== ReadyState.CLOSED) {
      other.readyState = ReadyState.CLOSED;
      queueMicrotask(() => other.emit('close', event));
    }
  }

  /** Delivers a message to this end. */
  receive(data: Uint8Array | string): void {
    if (this.readyState !== ReadyState.OPEN) return;
    this.emit('message', { data: typeof data === 'string' ? data : data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) });
  }

  addEventListener(type: string, listener: (e: unknown) => void): void {
    let set = this.listeners.get(type);
    if (set === undefined) this.listeners.set(type, (set = new Set()));
    set.add(listener);
  }

  removeEventListener(type: string, listener: (e: unknown) => void): void {
    this.listeners.get(type)?.delete(listener);
  }

  private emit(type: string, event: unknown): void {
    for (const l of [...(this.listeners.get(type) ?? [])]) l(event);
  }
}

/** A → B: A's SecureSocket seals onto `wireA`; B's opens what the test delivers to `wireB`. */
function securePair(maxMessageSize = MAX): {
  a: SecureSocket;
  b: SecureSocket;
  wireA: MemorySocket;
  wireB: MemorySocket;
  /** The cipher A seals with (to craft messages a real sender could make). */
  aSend: CipherState;
  delivered: Array<Uint8Array | string>;
  faults: Array<{ code: number; reason: string }>;
} {
  const k1 = crypto.getRandomValues(new Uint8Array(32));
  const k2 = crypto.getRandomValues(new Uint8Array(32));
  const aSend = new CipherState(k1);
  const wireA = new MemorySocket();
  const wireB = new MemorySocket();
  const a = new SecureSocket(wireA, { send: aSend, receive: new CipherState(k2) }, maxMessageSize);
  const b = new SecureSocket(wireB, { send: new CipherState(k2), receive: new CipherState(k1) }, maxMessageSize);
  const delivered: Array<Uint8Array | string> = [];
  const faults: Array<{ code: number; reason: string }> = [];
  b.addEventListener('message', (e) => {
    const d = (e as { data: unknown }).data;
    delivered.push(typeof d === 'string' ? d : Uint8Array.from(d as Uint8Array));
  });
  b.onFault = (code, reason) => faults.push({ code, reason });
  return { a, b, wireA, wireB, aSend, delivered, faults };
}

const pattern = (n: number): Uint8Array => {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + 7) & 0xff;
  return out;
};

describe('SecureSocket: transport messages (§12.2)', () => {
  test('a frame of n bytes takes max(1, ⌈n / 65,518⌉) messages of at most 65,535 bytes, and is joined again', () => {
    for (const n of [0, 1, E2E_CHUNK - 1, E2E_CHUNK, E2E_CHUNK + 1, 2 * E2E_CHUNK, 300_000]) {
      const { a, wireA, wireB, delivered, faults } = securePair();
      const frame = pattern(n);
      a.send(frame);
      const count = Math.max(1, Math.ceil(n / E2E_CHUNK));
      assert.equal(wireA.sent.length, count, `${n} bytes`);
      let total = 0;
      for (const m of wireA.sent) {
        assert.ok(m instanceof Uint8Array && m.length <= 65_535, `${n}: a binary message of at most 65,535 bytes`);
        total += m.length;
      }
      assert.equal(total, n + count * 17, `${n}: each message adds the tag and the flag byte`);
      assert.equal(a.wireBytesSent, total);
      for (const m of wireA.sent) wireB.receive(m);
      assert.deepEqual(faults, []);
      assert.equal(delivered.length, 1, `${n}: one frame delivered`);
      assert.deepEqual(delivered[0], frame);
    }
  });

  test('a text frame arrives as text, its characters whole across chunk boundaries; still binary messages', () => {
    const { a, wireA, wireB, delivered, faults } = securePair();
    // 3-byte and 4-byte characters: chunk boundaries fall inside them.
    const text = '€'.repeat(50_000) + '😀'.repeat(20_000) + 'end';
    a.send(text);
    assert.equal(wireA.sent.length, Math.ceil((150_000 + 80_000 + 3) / E2E_CHUNK));
    assert.ok(wireA.sent.every((m) => m instanceof Uint8Array));
    for (const m of wireA.sent) wireB.receive(m);
    assert.deepEqual(faults, []);
    assert.deepEqual(delivered, [text]);
    // An empty text frame too.
    a.send('');
    wireB.receive(wireA.sent[wireA.sent.length - 1]!);
    assert.deepEqual(delivered, [text, '']);
  });

  test('the same frame twice never gives the same ciphertext', () => {
    const { a, wireA } = securePair();
    for (let i = 0; i < 1000; i++) a.send(new Uint8Array([1, 2, 3]));
    const seen = new Set(wireA.sent.map((m) => Buffer.from(m as Uint8Array).toString('hex')));
    assert.equal(seen.size, 1000);
  });

  test('the joined frame counts against the largest message: 1009 before anything is delivered', () => {
    const { a, wireA, wireB, delivered, faults } = securePair(100_000);
    a.send(pattern(90_000));
    a.send(pattern(150_000));
    a.send(pattern(10));
    for (const m of wireA.sent) wireB.receive(m);
    assert.equal(delivered.length, 1, 'the frame under the limit only');
    assert.deepEqual(faults, [{ code: CloseCode.MESSAGE_TOO_BIG, reason: 'message too big' }]);
  });

  /** Each attack: what reaches B instead of A's messages #0 (one chunk), #1–#2 (one frame of two chunks), #3. */
  const attacks: Array<{ name: string; deliver(m: Array<Uint8Array>, p: ReturnType<typeof securePair>): void; before: number }> = [
    { name: 'a changed byte', before: 1, deliver: (m, p) => [m[0]!, m[1]!, flip(m[2]!, 5), m[3]!].forEach((x) => p.wireB.receive(x)) },
    { name: 'a changed tag', before: 0, deliver: (m, p) => [flip(m[0]!, m[0]!.length - 1)].forEach((x) => p.wireB.receive(x)) },
    { name: 'a repeated message', before: 1, deliver: (m, p) => [m[0]!, m[0]!, m[1]!].forEach((x) => p.wireB.receive(x)) },
    { name: 'reordered messages', before: 1, deliver: (m, p) => [m[0]!, m[2]!, m[1]!, m[3]!].forEach((x) => p.wireB.receive(x)) },
    { name: 'a dropped message', before: 1, deliver: (m, p) => [m[0]!, m[1]!, m[3]!].forEach((x) => p.wireB.receive(x)) },
    { name: 'a cut message', before: 1, deliver: (m, p) => [m[0]!, m[1]!, m[2]!.subarray(0, m[2]!.length - 1)].forEach((x) => p.wireB.receive(x)) },
    { name: 'a message shorter than a tag and a flag', before: 0, deliver: (_m, p) => p.wireB.receive(new Uint8Array(16)) },
    { name: 'a message longer than 65,535 bytes', before: 0, deliver: (_m, p) => p.wireB.receive(new Uint8Array(65_536)) },
    {
      name: 'a text WebSocket message',
      before: 1,
      deliver: (m, p) => {
        p.wireB.receive(m[0]!);
        p.wireB.receive('[1]');
      },
    },
  ];
  for (const attack of attacks) {
    test(`${attack.name}: 4211, and nothing of it (or of its frame) is delivered`, () => {
      const p = securePair();
      p.a.send(new Uint8Array([0x90]));
      p.a.send(pattern(E2E_CHUNK + 5));
      p.a.send(new Uint8Array([0x91]));
      assert.equal(p.wireA.sent.length, 4);
      attack.deliver(p.wireA.sent as Uint8Array[], p);
      assert.equal(p.faults.length, 1, attack.name);
      assert.equal(p.faults[0]!.code, CloseCode.E2E_BAD_FRAME);
      assert.match(p.faults[0]!.reason, /^e2e: /);
      assert.equal(p.delivered.length, attack.before, attack.name);
      // Nothing more after the fault, not even valid messages.
      p.a.send(new Uint8Array([0x92]));
      p.wireB.receive(p.wireA.sent[p.wireA.sent.length - 1] as Uint8Array);
      assert.equal(p.delivered.length, attack.before);
      assert.equal(p.faults.length, 1);
    });
  }

  test('flag bits other than 0 and 1, and a text frame that is not UTF-8: 4211', () => {
    for (const [plain, what] of [
      [Uint8Array.of(0x90, 0x05), 'flag bit 2'],
      [Uint8Array.of(0x90, 0x81), 'flag bit 7'],
      [Uint8Array.of(0xff, 0xfe, 0x03), 'text that is not UTF-8'],
      [Uint8Array.of(0xe2, 0x82, 0x03), 'a text frame that ends inside a character'],
    ] as const) {
      const p = securePair();
      // Sealed with A's own cipher: authentic, only the plaintext is wrong.
      p.wireB.receive(p.aSend.encryptWithAd(new Uint8Array(0), plain));
      assert.deepEqual(p.faults.map((f) => f.code), [CloseCode.E2E_BAD_FRAME], what);
      assert.equal(p.delivered.length, 0, what);
    }
  });

  test("what the socket below can do beyond the WHATWG API (ws: ping, pong events, pause, terminate) it does here too, and only then", () => {
    const plain = securePair();
    for (const name of ['ping', 'on', 'off', 'pause', 'resume', 'terminate']) {
      assert.equal(typeof (plain.b as unknown as Record<string, unknown>)[name], 'undefined', `${name} on a browser-like socket`);
    }
    const calls: string[] = [];
    const wsLike = Object.assign(new MemorySocket(), {
      ping: () => calls.push('ping'),
      on: (event: string) => calls.push(`on ${event}`),
      off: (event: string) => calls.push(`off ${event}`),
      pause: () => calls.push('pause'),
      resume: () => calls.push('resume'),
      terminate: () => calls.push('terminate'),
    });
    const secure = new SecureSocket(wsLike, { send: new CipherState(new Uint8Array(32)), receive: new CipherState(new Uint8Array(32)) }, MAX);
    secure.ping?.();
    secure.on?.('pong', () => undefined);
    secure.off?.('pong', () => undefined);
    secure.pause?.();
    secure.resume?.();
    secure.terminate?.();
    assert.deepEqual(calls, ['ping', 'on pong', 'off pong', 'pause', 'resume', 'terminate']);
  });

  test('without an owner to tell, the socket itself is closed with 4211', () => {
    const p = securePair();
    p.b.onFault = undefined;
    p.wireB.receive(new Uint8Array(20));
    assert.deepEqual(p.wireB.closedWith, { code: 4211, reason: 'e2e: a message failed authentication' });
  });
});

describe('Peers over SecureSockets', () => {
  /** Two Peers joined by a handshake over an in-memory pair; `tamper` changes what the caller sends. */
  async function joined(tamper?: MemorySocket['tamper']): Promise<{ caller: Peer; host: Peer; runs: string[]; callerKey: PublicKey | null }> {
    const wireC = new MemorySocket();
    const wireH = new MemorySocket();
    wireC.other = wireH;
    wireH.other = wireC;
    wireC.tamper = tamper;
    const hostId = Identity.generate();
    const me = Identity.generate();
    const runs: string[] = [];
    const host = new Promise<{ peer: Peer; key: PublicKey | null }>((resolve, reject) => {
      respond(wireH, hostId, {
        timeoutMs: 2000,
        maxMessageSize: MAX,
        done: (secure, key) => {
          const peer = new Peer(secure, { log: quietLog().log, data: { key, encrypted: true } satisfies RelayPeer });
          peer.addService('h', { run: (args) => runs.push(String(args[0])), echo: (args) => args[0] });
          secure.onFault = (code, reason) => peer.abort(code, reason);
          resolve({ peer, key });
        },
        failed: reject,
      });
    });
    const caller = new Promise<Peer>((resolve, reject) => {
      initiate(wireC, hostId.publicKey, me, {
        timeoutMs: 2000,
        maxMessageSize: MAX,
        done: (secure) => {
          const peer = new Peer(secure, { log: quietLog().log });
          secure.onFault = (code, reason) => peer.abort(code, reason);
          resolve(peer);
        },
        failed: reject,
      });
    });
    const h = await within(host, 3000, 'host handshake');
    const c = await within(caller, 3000, 'caller handshake');
    await within(Promise.all([c.ready, h.peer.ready]), 3000, 'HELLOs');
    assert.ok(h.key?.equals(me.publicKey));
    return { caller: c, host: h.peer, runs, callerKey: h.key };
  }

  test('calls both ways and a 300 kB argument, echoed', T, async () => {
    const { caller, host, runs } = await joined();
    const big = pattern(300_000);
    assert.deepEqual(await within(caller.call('h/echo', [big]), 3000, 'echo'), big);
    await caller.call('h/run', ['x']);
    assert.deepEqual(runs, ['x']);
    await caller.close();
    await host.closed;
  });

  test("a changed CALL: the host closes with 4211, its handler never runs, the caller's call fails", T, async () => {
    // The caller's messages: #0 the handshake, #1 HELLO, #2 the first CALL.
    const { caller, host, runs } = await joined((data, index) => (index === 2 && data instanceof Uint8Array ? flip(data, 3) : data));
    const call = caller.call('h/run', ['never']).catch((e: unknown) => e);
    await assert.rejects(within(host.closed, 3000, 'host closed'), (e: unknown) => e instanceof CloseError && e.code === 4211);
    const error = await within(call, 3000, 'call');
    assert.equal((error as { code?: string }).code, 'DISCONNECTED');
    await assert.rejects(within(caller.closed, 3000, 'caller closed'), (e: unknown) => e instanceof CloseError && e.code === 4211);
    assert.deepEqual(runs, []);
    assert.equal(host.stats().callsReceived, 0);
  });
});

describe('handshakes through a lying relay', () => {
  test('routed to another host: that host cannot read the handshake and refuses it (4210); connect() fails at once', T, async () => {
    const target = Identity.generate();
    const other = Identity.generate();
    const otherFailed: RelayError[] = [];
    const relay = await FakeRelay.start(async (conn) => {
      await conn.frame(1);
      conn.send({ type: 38 });
      respond(conn.takeOver(), other, {
        timeoutMs: 3000,
        maxMessageSize: MAX,
        done: () => assert.fail('another host must not finish the handshake'),
        failed: (e) => otherFailed.push(e),
      });
    });
    for (const identity of [Identity.generate(), undefined]) {
      const client = Client.viaRelay(relay.url, target.publicKey, { ...(identity === undefined ? {} : { identity }), WebSocket: WS, log: quietLog().log });
      try {
        const error = await within(client.connect().then(() => undefined, (e: unknown) => e), 5000, 'connect');
        assert.ok(error instanceof RelayError, String(error));
        assert.equal(error.closeCode, CloseCode.E2E_HANDSHAKE_FAILED);
        assert.equal(error.reason, "e2e: the caller's handshake failed");
        assert.ok(error.refused, 'final on the first connect');
        assert.match(error.message, /end-to-end handshake/);
        assert.equal(client.state, 'disconnected');
      } finally {
        await client.close();
      }
    }
    assert.deepEqual(otherFailed.map((e) => e.closeCode), [4210, 4210]);
    await sleep(200);
    assert.equal(relay.conns.length, 2, 'no retry');
    await relay.close();
  });

  test('an impostor that answers anyway: the caller finds that the target did not prove its key (4210) and closes', T, async () => {
    const relay = await FakeRelay.start(async (conn) => {
      await conn.frame(1);
      conn.send({ type: 38 });
      const ws = conn.takeOver();
      // A made-up answer: an ephemeral key of its own and a tag it cannot compute.
      ws.once('message', () => ws.send(Buffer.concat([x25519KeyPair(crypto.getRandomValues(new Uint8Array(32))).publicKey, crypto.getRandomValues(new Uint8Array(16))])));
    });
    const client = Client.viaRelay(relay.url, Identity.generate().publicKey, { identity: Identity.generate(), WebSocket: WS, log: quietLog().log });
    try {
      const started = Date.now();
      const error = await within(client.connect().then(() => undefined, (e: unknown) => e), 5000, 'connect');
      assert.ok(error instanceof RelayError, String(error));
      assert.equal(error.closeCode, CloseCode.E2E_HANDSHAKE_FAILED);
      assert.equal(error.reason, 'e2e: the target did not prove its key');
      assert.ok(error.refused && Date.now() - started < 2000, 'at once');
      assert.deepEqual(await within(relay.conns[0]!.closed, 3000, 'close at the relay'), { code: 4210, reason: 'e2e: the target did not prove its key' });
      await sleep(200);
      assert.equal(relay.conns.length, 1, 'no retry');
    } finally {
      await client.close();
      await relay.close();
    }
  });

  test('an encrypting caller and a plain host: 4210 at the caller, whichever codec', T, async () => {
    for (const codec of ['msgpack', 'json'] as const) {
      const relay = await FakeRelay.start(async (conn) => {
        await conn.frame(1);
        conn.send({ type: 38 });
        new Peer(conn.takeOver(), { log: quietLog().log }); // sends HELLO at once, in the clear
      });
      const client = Client.viaRelay(relay.url, Identity.generate().publicKey, { WebSocket: WS, codecs: [codec], log: quietLog().log });
      try {
        const error = await within(client.connect().then(() => undefined, (e: unknown) => e), 5000, 'connect');
        assert.ok(error instanceof RelayError && error.closeCode === 4210, `${codec}: ${String(error)}`);
        assert.match(error.reason, codec === 'json' ? /expected a handshake message/ : /did not prove its key/);
      } finally {
        await client.close();
        await relay.close();
      }
    }
  });

  test('a plain caller of a host that closes with 4210 before HELLO: connect() fails at once, like a refusal', T, async () => {
    const relay = await FakeRelay.start(async (conn) => {
      await conn.frame(1);
      conn.send({ type: 38 });
      const ws = conn.takeOver();
      ws.once('message', () => ws.close(4210, 'e2e: expected the caller’s handshake (version 1)'));
    });
    const client = Client.viaRelay(relay.url, Identity.generate().publicKey, { encrypt: false, WebSocket: WS, log: quietLog().log });
    try {
      const error = await within(client.connect().then(() => undefined, (e: unknown) => e), 5000, 'connect');
      assert.ok(error instanceof RelayError && error.closeCode === 4210 && error.refused, String(error));
      await sleep(200);
      assert.equal(relay.conns.length, 1, 'no retry');
    } finally {
      await client.close();
      await relay.close();
    }
  });

  test('close() during the end-to-end handshake closes that connection with its code', T, async () => {
    const relay = await FakeRelay.start(async (conn) => {
      await conn.frame(1);
      conn.send({ type: 38 });
      conn.takeOver(); // reads the handshake, never answers
    });
    const client = Client.viaRelay(relay.url, Identity.generate().publicKey, { WebSocket: WS, log: quietLog().log });
    const connecting = client.connect().then(() => undefined, (e: unknown) => e);
    await sleep(300);
    await client.close(1000, 'changed my mind');
    const error = await within(connecting, 3000, 'connect');
    assert.equal((error as { code?: string }).code, 'CLOSED', String(error));
    assert.deepEqual(await within(relay.conns[0]!.closed, 3000, 'close'), { code: 1000, reason: 'changed my mind' });
    await relay.close();
  });

  test('no answer to the handshake within the handshake timeout: 4001 from the caller', T, async () => {
    const relay = await FakeRelay.start(async (conn) => {
      await conn.frame(1);
      conn.send({ type: 38 });
      conn.takeOver();
    });
    const client = Client.viaRelay(relay.url, Identity.generate().publicKey, { WebSocket: WS, reconnect: false, log: quietLog().log, limits: { handshakeTimeoutMs: 300 } });
    try {
      const error = await within(client.connect().then(() => undefined, (e: unknown) => e), 3000, 'connect');
      assert.ok(error instanceof RelayError && error.closeCode === 4001, String(error));
      assert.equal((await within(relay.conns[0]!.closed, 3000, 'close')).code, 4001);
    } finally {
      await client.close();
      await relay.close();
    }
  });

  describe('the host refuses a broken handshake with 4210; nothing reaches a handler', () => {
    async function hostAt(relay: FakeRelay, limits = {}): Promise<{ host: RelayHost; id: Identity; calls: unknown[] }> {
      const id = Identity.generate();
      const calls: unknown[] = [];
      const host = new RelayHost(relay.url, id, { WebSocket: NodeWebSocket, spares: 1, log: quietLog().log, limits, onConnection: (p) => calls.push(p) });
      host.addService('h', { run: (args) => calls.push(args) });
      await within(host.start(), 5000, 'start');
      return { host, id, calls };
    }

    async function registering(): Promise<FakeRelay> {
      const relay: FakeRelay = await FakeRelay.start(async (conn) => {
        const f = await conn.frame(1).catch(() => undefined);
        if (f?.type === 33) conn.send({ type: 34, pingIntervalMs: 20_000 });
      });
      return relay;
    }

    /** Hands the host's spare over and sends `first` after READY; resolves with the host's close. */
    async function handOverWith(spare: FakeConn, first: Uint8Array | string | undefined): Promise<{ code: number; reason: string }> {
      const ws = spare.takeOver();
      ws.once('message', () => {
        if (first !== undefined) ws.send(first);
      });
      spare.send({ type: 36, caller: null });
      return within(spare.closed, 3000, "the host's close");
    }

    const msg1 = (pattern: 'IK' | 'NK', s: ReturnType<typeof x25519KeyPair> | undefined, rs: Uint8Array, payload: Uint8Array, head = [1, pattern === 'IK' ? 1 : 2]): Uint8Array => {
      const hs = new HandshakeState({ pattern, initiator: true, prologue: E2E_PROLOGUE, rs, ...(s === undefined ? {} : { s }) });
      const m = hs.writeMessage(payload);
      return Uint8Array.from([...head, ...m]);
    };

    test('a handshake naming another key than it proves; of another version or pattern; a text message; garbage', T, async () => {
      const relay = await registering();
      const { host, id, calls } = await hostAt(relay);
      const rs = id.publicKey.toX25519()!;
      const someone = Identity.generate();
      const cases: Array<[string, Uint8Array | string, RegExp]> = [
        ['IK naming another key', msg1('IK', x25519KeyPair(crypto.getRandomValues(new Uint8Array(32))), rs, someone.publicKey.bytes), /does not match/],
        ['IK naming no key', msg1('IK', x25519KeyPair(crypto.getRandomValues(new Uint8Array(32))), rs, new Uint8Array(31)), /names no key/],
        ['version 2', msg1('NK', undefined, rs, new Uint8Array(0), [2, 2]), /version 1/],
        ['pattern 3', msg1('NK', undefined, rs, new Uint8Array(0), [1, 3]), /unknown handshake pattern/],
        ['NK sent as IK', msg1('NK', undefined, rs, new Uint8Array(0), [1, 1]), /handshake failed/],
        ['for another host', msg1('NK', undefined, Identity.generate().publicKey.toX25519()!, new Uint8Array(0)), /handshake failed/],
        ['a text message', '[0, 1, {}]', /expected a handshake message/],
        ['garbage', crypto.getRandomValues(new Uint8Array(80)), /version 1|pattern|failed/],
      ];
      try {
        for (const [what, first, reason] of cases) {
          await within(host.waitForSpares(1), 5000, 'a spare');
          const spare = relay.conns.filter((c) => c.ws.readyState === c.ws.OPEN && c.frames.length === 1 && !used.has(c))[0]!;
          used.add(spare);
          const closed = await handOverWith(spare, first);
          assert.equal(closed.code, 4210, what);
          assert.match(closed.reason, reason, what);
        }
        assert.deepEqual(calls, [], 'no connection, no handler');
        assert.equal(host.connections.size, 0);
      } finally {
        await host.close();
        await relay.close();
      }
    });

    test("close() while a caller's handshake is awaited closes that connection with 1001", T, async () => {
      const relay = await registering();
      const { host, calls } = await hostAt(relay);
      const spare = relay.conns[0]!;
      spare.takeOver();
      spare.send({ type: 36, caller: null });
      await until(() => host.handovers === 1, 3000, 'the hand-over');
      await host.close('bye');
      assert.deepEqual(await within(spare.closed, 3000, "the host's close"), { code: 1001, reason: 'bye' });
      assert.deepEqual(calls, []);
      await relay.close();
    });

    test('no handshake within the handshake timeout: 4001 from the host', T, async () => {
      const relay = await registering();
      const { host, calls } = await hostAt(relay, { handshakeTimeoutMs: 300 });
      try {
        const closed = await handOverWith(relay.conns[0]!, undefined);
        assert.equal(closed.code, 4001);
        assert.deepEqual(calls, []);
      } finally {
        await host.close();
        await relay.close();
      }
    });

    test('a changed transport message: 4211 from the host, and the handler never runs', T, async () => {
      const relay = await registering();
      const { host, id, calls } = await hostAt(relay);
      try {
        const spare = relay.conns[0]!;
        const ws = spare.takeOver();
        let sent = 0;
        // The caller's messages: #0 the handshake, #1 HELLO, #2 the CALL, changed on the way.
        const original = ws.send.bind(ws);
        (ws as unknown as { send: (d: Uint8Array) => void }).send = (d: Uint8Array) => original(sent++ === 2 ? flip(d, 20) : d);
        const peer = new Promise<Peer>((resolve, reject) => {
          ws.once('message', () =>
            initiate(ws, id.publicKey, Identity.generate(), {
              timeoutMs: 3000,
              maxMessageSize: MAX,
              done: (secure) => resolve(new Peer(secure, { log: quietLog().log })),
              failed: reject,
            }),
          );
        });
        spare.send({ type: 36, caller: null });
        const caller = await within(peer, 3000, 'handshake');
        await within(caller.ready, 3000, 'HELLO');
        const call = caller.call('h/run', ['never']).catch((e: unknown) => e);
        assert.equal((await within(spare.closed, 3000, "the host's close")).code, 4211);
        assert.equal(((await call) as { code?: string }).code, 'DISCONNECTED');
        assert.equal(calls.length, 1, 'the connection, but no call');
        assert.equal(host.stats().callsReceived, 0);
      } finally {
        await host.close();
        await relay.close();
      }
    });
  });

  const used = new WeakSet<FakeConn>();
});

describe('keys', () => {
  test('a target key that is not a curve point, or a signer without dh(), is refused at construction unless encrypt: false', () => {
    const notAPoint = 'ff'.repeat(32);
    assert.throws(() => Client.viaRelay('ws://127.0.0.1:1/', notAPoint, { WebSocket: WS }), /not a valid Ed25519 public key/);
    assert.doesNotThrow(() => Client.viaRelay('ws://127.0.0.1:1/', notAPoint, { WebSocket: WS, encrypt: false }));
    const real = Identity.generate();
    const signOnly: Signer = { publicKey: real.publicKey, sign: (m) => real.sign(m) };
    const target = Identity.generate().publicKey;
    assert.throws(() => Client.viaRelay('ws://127.0.0.1:1/', target, { WebSocket: WS, identity: signOnly }), /dh\(\)/);
    assert.doesNotThrow(() => Client.viaRelay('ws://127.0.0.1:1/', target, { WebSocket: WS, identity: signOnly, encrypt: false }));
    assert.throws(() => new RelayHost('ws://127.0.0.1:1/', signOnly, { WebSocket: NodeWebSocket }), /dh\(\)/);
    assert.doesNotThrow(() => new RelayHost('ws://127.0.0.1:1/', signOnly, { WebSocket: NodeWebSocket, encrypt: false }));
  });
});

function flip(data: Uint8Array, at: number): Uint8Array {
  const out = Uint8Array.from(data);
  out[at % out.length]! ^= 0x01;
  return out;
}
