/**
 * The TypeScript relay ends against the Rust relay (`wsp-relay`, PROTOCOL.md §11), over real
 * sockets on 127.0.0.1, encrypted end to end (§12, the default of both runtimes): a Node host
 * serving the generated `math.Math` handlers, called by the generated TypeScript client and by
 * the generated Rust client (tests/interop `relay-call`); a Rust host (`relay-host`) called by the
 * TypeScript client, calls going both ways; frames larger than one transport message both ways
 * (`relay-echo`); the plain mode (`encrypt: false`, `--plain`) in each direction, and one end
 * plain against an encrypting one; the relay's refusals (unknown key, wrong proofs) as defined
 * errors; close codes and reasons passing through; reconnecting through the relay, also after the
 * relay itself restarted. Then, through a relay written for the tests (pipe-relay.ts) that looks at
 * and tampers with what it copies: no ciphertext repeats, an impostor fails the handshake, and a
 * changed message ends the connection with 4211 before any handler runs — Node and Rust ends
 * each way.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  Client,
  CloseError,
  Identity,
  type Peer,
  RelayError,
  type RelayPeer,
  RelayHost,
  type RelayHostOptions,
  type Signer,
} from '@wsp/runtime';
import { WebSocket } from '@wsp/runtime/node';
import * as geometry from '../../generated/geometry.js';
import * as sink from '../../generated/kitchen.sink.js';
import * as math from '../../generated/math.js';
import { quiet, sleep, within } from './helpers.js';
import { PipeRelay } from './pipe-relay.js';
import { type Seen, newSeen, relayMath } from './relay-math.js';
import { type RelayProcess, RustProcess, interopBinary, relayBinary, startRelay } from './rust-process.js';

const T = { timeout: 30_000 };
const BIG = 2n ** 62n + 1n;
const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

let interop = '';
let relayBin = '';

// Built (or found) before the tests, outside their time limits: a first cargo build is slow.
before(() => {
  interop = interopBinary();
  relayBin = relayBinary();
});

/**
 * A Node host serving the generated math handlers through the relay at `url`, all spares
 * registered; `KitchenSink/echo` too (the other KitchenSink methods are not called here).
 */
async function startHost(url: string, options: RelayHostOptions & { identity?: Signer } = {}): Promise<{ host: RelayHost; seen: Seen }> {
  const seen = newSeen();
  const { identity = Identity.generate(), ...rest } = options;
  const host = new RelayHost(url, identity, { WebSocket, log: quiet, ...rest });
  math.serveMath(host, relayMath(seen));
  const unused = (): never => {
    throw new Error('not used by the relay tests');
  };
  sink.serveKitchenSink(host, { echo: (value) => value, touch: unused, search: unused, list: unused, watch: unused, ping: unused, old_echo: unused, eval: unused });
  await within(host.start(), 5000, 'the first spare registered');
  await within(host.waitForSpares(), 5000, 'all spares registered');
  return { host, seen };
}

/** A `kitchen.sink.Primitives` like the Rust `relay-echo` sends: `size` bytes and about size / 2 bytes of text. */
function bigPrimitives(size: number): sink.Primitives {
  const some_bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) some_bytes[i] = (i * 31 + 7) & 0xff;
  return {
    a_bool: true,
    an_i8: -128,
    an_i16: -32768,
    an_i32: -(2 ** 31),
    an_i64: -(2n ** 63n),
    a_u8: 255,
    a_u16: 65535,
    a_u32: 2 ** 32 - 1,
    a_u64: 2n ** 64n - 1n,
    an_f32: 1.5,
    an_f64: 2,
    a_string: 'é€😀'.repeat(Math.floor(size / 18)),
    some_bytes,
    maybe_bytes: new Uint8Array(0),
  };
}

function callerOf(url: string, target: RelayHost | string, options: Parameters<typeof Client.viaRelay>[2] = {}): Client {
  return Client.viaRelay(url, typeof target === 'string' ? target : target.publicKey, { WebSocket, log: quiet, ...options });
}

describe('through the Rust relay', () => {
  let relay: RelayProcess;

  before(async () => {
    relay = await startRelay(relayBin);
  });

  after(async () => {
    await relay.process.interrupt();
  });

  for (const codec of ['msgpack', 'json'] as const) {
    test(`Node host ← Node client, generated code, ${codec}, encrypted: typed calls, errors, streams, who called`, T, async () => {
      const { host, seen } = await startHost(relay.url, { codec });
      const me = Identity.generate();
      const client = callerOf(relay.url, host, { identity: me, codecs: [codec] });
      const anonymous = callerOf(relay.url, host, { codecs: [codec] });
      try {
        await within(client.connect(), 5000, 'connect through the relay');
        assert.equal(client.codec, codec);
        const m = new math.MathClient(client);
        assert.equal(await m.add([1n, 2n, BIG]), BIG + 3n);
        const overflow = await m.add([2n ** 63n - 1n, 1n]).catch((e: unknown) => e);
        assert.ok(math.isMathError(overflow) && overflow.details.$type === 'Overflow' && overflow.details.operation === 'add');
        const byZero = await m.divide(1, 0).catch((e: unknown) => e);
        assert.ok(math.isMathError(byZero) && byZero.details.$type === 'DivisionByZero');
        assert.equal(await m.divide(1, 4), 0.25);
        const counted: number[] = [];
        for await (const n of m.count(1, 5)) counted.push(n);
        assert.deepEqual(counted, [1, 2, 3, 4, 5]);
        await m.reset();
        m.log('from node');
        await within(anonymous.connect(), 5000, 'anonymous connect');
        await new math.MathClient(anonymous).reset();
        await waitUntil(() => seen.logs.length === 1, 'the log notification');
        assert.deepEqual(seen, { callers: [me.publicKey.toString(), null], encrypted: [true, true], logs: ['from node'] });
        // The caller's side of the link: the target's key, encrypted.
        const data = client.currentPeer?.data as RelayPeer;
        assert.ok(data.key?.equals(host.publicKey) && data.encrypted);
        assert.equal(host.handovers, 2);
        assert.equal(host.connections.size, 2);
        // A replacement was opened for each spare handed over.
        await within(host.waitForSpares(2), 5000, 'replacement spares');
      } finally {
        await client.close();
        await anonymous.close();
        await host.close();
      }
    });

    test(`Node host ← Rust caller (generated Rust client through the relay), ${codec}, encrypted`, T, async () => {
      const { host, seen } = await startHost(relay.url, { codec });
      const caller = Identity.generate();
      const rust = new RustProcess(interop, ['relay-call', relay.url, host.publicKey.toString(), codec, hex(caller.secret)]);
      try {
        const status = await within(rust.exited, 20_000, 'the Rust caller');
        assert.equal(status, 0, rust.output);
        assert.deepEqual(rust.lines, [
          `caller ${caller.publicKey.toString()}`,
          'connected e2e',
          `add ${BIG + 3n}`,
          'overflow add',
          'divide DivisionByZero',
          'count [1, 2, 3, 4, 5]',
          'ok',
        ]);
        await waitUntil(() => seen.logs.length === 1, 'the log notification');
        assert.deepEqual(seen, { callers: [caller.publicKey.toString()], encrypted: [true], logs: ['through the relay'] });
      } finally {
        await rust.kill();
        await host.close();
      }
    });

    test(`300 kB values, ${codec}, encrypted: a Node client's echo by a Rust host, a Rust caller's echo by a Node host (frames of several transport messages each way)`, T, async () => {
      const size = 300_000;
      const value = bigPrimitives(size);
      const rustHost = new RustProcess(interop, ['relay-host', relay.url, hex(Identity.generate().secret), codec]);
      const { host } = await startHost(relay.url, { codec });
      let client: Client | undefined;
      const rustCaller = new RustProcess(interop, ['relay-echo', relay.url, host.publicKey.toString(), String(size), codec]);
      try {
        client = callerOf(relay.url, await rustHost.lineAfter('registered '), { codecs: [codec] });
        await within(client.connect(), 5000, 'connect');
        const echoed = await within(new sink.KitchenSinkClient(client).echo(value), 10_000, 'the echo');
        assert.deepEqual(echoed, value);
        const stats = client.stats();
        assert.ok(stats.bytesSent > size && stats.bytesReceived > size, JSON.stringify(stats));
        assert.equal(await within(rustCaller.exited, 20_000, 'the Rust caller'), 0, rustCaller.output);
        assert.deepEqual(rustCaller.lines, ['connected e2e', `echo ${size}`, 'ok']);
      } finally {
        await client?.close();
        await rustCaller.kill();
        await rustHost.stop();
        await host.close();
      }
    });
  }

  test('Rust host ← Node client, encrypted: calls both ways (geometry calls back into the caller), who called', T, async () => {
    const secret = Identity.generate().secret;
    const rust = new RustProcess(interop, ['relay-host', relay.url, hex(secret)]);
    const me = Identity.generate();
    let client: Client | undefined;
    try {
      const key = await rust.lineAfter('registered ');
      assert.equal(key, Identity.fromSecret(secret).publicKey.toString(), 'the Rust host registered under the same key as TS derives');
      client = callerOf(relay.url, key, { identity: me });
      const questions: string[] = [];
      geometry.registerGeometryCallbacks(client, {
        confirm: (question) => {
          questions.push(question);
          return question !== 'radius 0?';
        },
        progress: () => undefined,
      });
      await within(client.connect(), 5000, 'connect');
      const m = new math.MathClient(client);
      assert.equal(await m.add([1n, BIG]), BIG + 1n);
      await m.reset();
      await rust.waitFor(`event reset ${me.publicKey.toString()} e2e`);
      const data = client.currentPeer?.data as RelayPeer;
      assert.ok(data.key?.toString() === key && data.encrypted, 'the caller sees the target, encrypted');
      const g = new geometry.GeometryClient(client);
      const circle = (radius: number): geometry.Shape => ({ $type: 'Circle', center: { x: 0, y: 0 }, radius });
      assert.equal(await g.area(circle(2)), Math.PI * 4);
      const refused = await g.area(circle(0)).catch((e: unknown) => e);
      assert.ok(geometry.isGeometryError(refused) && refused.details.$type === 'Degenerate');
      assert.deepEqual(questions, ['radius 2?', 'radius 0?']);
    } finally {
      await client?.close();
      await rust.stop();
    }
  });

  test('plain, each direction (encrypt: false, --plain): Node host ← Rust caller, Rust host ← Node client', T, async () => {
    const { host, seen } = await startHost(relay.url, { encrypt: false });
    const rustCaller = new RustProcess(interop, ['relay-call', relay.url, host.publicKey.toString(), 'msgpack', '--plain']);
    const rustHost = new RustProcess(interop, ['relay-host', '--plain', relay.url, hex(Identity.generate().secret)]);
    const me = Identity.generate();
    let client: Client | undefined;
    try {
      assert.equal(await within(rustCaller.exited, 20_000, 'the Rust caller'), 0, rustCaller.output);
      assert.deepEqual(rustCaller.lines.slice(0, 2), ['caller anonymous', 'connected plain']);
      assert.equal(rustCaller.lines[rustCaller.lines.length - 1], 'ok');
      assert.deepEqual(seen.encrypted, [false]);
      client = callerOf(relay.url, await rustHost.lineAfter('registered '), { identity: me, encrypt: false });
      await within(client.connect(), 5000, 'connect');
      const m = new math.MathClient(client);
      assert.equal(await m.add([2n, BIG]), BIG + 2n);
      await m.reset();
      await rustHost.waitFor(`event reset ${me.publicKey.toString()} plain`);
      assert.equal((client.currentPeer?.data as RelayPeer).encrypted, false);
    } finally {
      await client?.close();
      await rustCaller.kill();
      await rustHost.stop();
      await host.close();
    }
  });

  test('one end plain, the other encrypting: the caller fails connect() at once with RelayError 4210', T, async () => {
    const encrypting = new RustProcess(interop, ['relay-host', relay.url, hex(Identity.generate().secret)]);
    const plain = new RustProcess(interop, ['relay-host', relay.url, hex(Identity.generate().secret), 'msgpack', '--plain']);
    const { host } = await startHost(relay.url);
    try {
      const cases: Array<[string, string, boolean, RegExp]> = [
        // The encrypting host reads the plain caller's HELLO as its handshake and refuses it.
        ['a plain Node caller of an encrypting Rust host', await encrypting.lineAfter('registered '), false, /expected the caller's handshake/],
        ['a plain Node caller of an encrypting Node host', host.publicKey.toString(), false, /expected the caller's handshake/],
        // The plain host's HELLO arrives where the handshake's answer should.
        ['an encrypting Node caller of a plain Rust host', await plain.lineAfter('registered '), true, /did not prove its key/],
      ];
      for (const [what, key, encrypt, reason] of cases) {
        const client = callerOf(relay.url, key, { encrypt }); // reconnect on: still final on the first connect
        try {
          const started = Date.now();
          const error = await within(client.connect().then(() => undefined, (e: unknown) => e), 5000, what);
          assert.ok(error instanceof RelayError && error.closeCode === 4210, `${what}: ${String(error)}`);
          assert.match(error.reason, reason, what);
          assert.ok(Date.now() - started < 2000, `${what}: at once`);
          assert.equal(client.state, 'disconnected', what);
        } finally {
          await client.close();
        }
      }
      assert.equal(host.connections.size, 0);
    } finally {
      await encrypting.stop();
      await plain.stop();
      await host.close();
    }
  });

  test('an unknown key fails connect() at once with RelayError 4201 (Node and Rust callers)', T, async () => {
    const nobody = Identity.generate().publicKey.toString();
    const client = callerOf(relay.url, nobody); // reconnect on: a refusal still ends the first connect
    try {
      const started = Date.now();
      const error = await within(client.connect().then(() => undefined, (e: unknown) => e), 5000, 'connect');
      assert.ok(error instanceof RelayError, String(error));
      assert.equal(error.closeCode, 4201);
      assert.match(error.reason, /unknown key/);
      assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
      assert.equal(client.state, 'disconnected');
      await assert.rejects(client.closed, (e: unknown) => e instanceof CloseError && e.code === 4201);
    } finally {
      await client.close();
    }
    const rust = new RustProcess(interop, ['relay-call', relay.url, nobody]);
    assert.equal(await within(rust.exited, 20_000, 'the Rust caller'), 3, rust.output);
    assert.match(rust.lines.join('\n'), /^relay-refused 4201 /m);
  });

  test('a caller of the other codec than the spares is told so (4201)', T, async () => {
    const { host } = await startHost(relay.url, { codec: 'json' });
    const client = callerOf(relay.url, host, { codecs: ['msgpack'] });
    try {
      const error = await within(client.connect().then(() => undefined, (e: unknown) => e), 5000, 'connect');
      assert.ok(error instanceof RelayError && error.closeCode === 4201, String(error));
      assert.match(error.reason, /other codec/);
      assert.equal(host.handovers, 0);
    } finally {
      await client.close();
      await host.close();
    }
  });

  test('a wrong proof is refused with 4200: a host whose key and secret do not match, and such a caller', T, async () => {
    const real = Identity.generate();
    const claimed = Identity.generate();
    const liar: Signer = { publicKey: claimed.publicKey, sign: (m) => real.sign(m), dh: (p) => real.dh(p) };
    const bad = new RelayHost(relay.url, liar, { WebSocket, log: quiet });
    const refused = await within(bad.start().then(() => undefined, (e: unknown) => e), 5000, 'start');
    assert.ok(refused instanceof RelayError && refused.closeCode === 4200, String(refused));
    assert.match(refused.reason, /proof refused/);

    const { host } = await startHost(relay.url);
    const client = callerOf(relay.url, host, { identity: liar });
    try {
      const error = await within(client.connect().then(() => undefined, (e: unknown) => e), 5000, 'connect');
      assert.ok(error instanceof RelayError && error.closeCode === 4200, String(error));
      assert.equal(host.handovers, 0, 'the host never saw the caller');
    } finally {
      await client.close();
      await host.close();
    }
  });

  test('close codes and reasons pass through the relay unchanged, both ways', T, async () => {
    const hostPeers: Peer[] = [];
    const { host } = await startHost(relay.url, { onConnection: (peer) => hostPeers.push(peer) });
    const a = callerOf(relay.url, host, { reconnect: false });
    const b = callerOf(relay.url, host, { reconnect: false });
    try {
      await within(a.connect(), 5000, 'connect a');
      await within(b.connect(), 5000, 'connect b');
      assert.equal(hostPeers.length, 2);
      // Host → caller.
      const [toA, toB] = hostPeers as [Peer, Peer];
      await toA.close(4321, 'bye from the host').catch(() => undefined);
      await assert.rejects(within(a.closed, 5000, 'a closed'), (e: unknown) => e instanceof CloseError && e.code === 4321 && e.reason === 'bye from the host');
      // Caller → host.
      await b.close(4322, 'bye from the caller');
      await assert.rejects(within(toB.closed, 5000, 'host side closed'), (e: unknown) => e instanceof CloseError && e.code === 4322 && e.reason === 'bye from the caller');
    } finally {
      await a.close();
      await b.close();
      await host.close();
    }
  });

  test('a caller reconnects through the relay after its link ends (a fresh spare each time)', T, async () => {
    const hostPeers: Peer[] = [];
    const { host } = await startHost(relay.url, { onConnection: (peer) => hostPeers.push(peer) });
    const client = callerOf(relay.url, host, { reconnect: { initialDelayMs: 20, jitter: 0 } });
    try {
      await within(client.connect(), 5000, 'connect');
      const m = new math.MathClient(client);
      assert.equal(await m.add([1n]), 1n);
      await hostPeers[0]!.close(1001, 'moving').catch(() => undefined);
      await waitUntil(() => client.stats().reconnects === 1 && client.state === 'connected', 'the reconnect');
      assert.equal(await m.add([2n]), 2n);
      assert.equal(host.handovers, 2);
    } finally {
      await client.close();
      await host.close();
    }
  });
});

test('the host re-registers by itself after the relay restarts, and its caller reconnects', { timeout: 60_000 }, async () => {
  let relay = await startRelay(relayBin);
  const port = new URL(relay.url).port;
  const { host } = await startHost(relay.url, { reconnect: { initialDelayMs: 50, maxDelayMs: 500, jitter: 0 } });
  const client = callerOf(relay.url, host, { reconnect: { initialDelayMs: 50, maxDelayMs: 500, jitter: 0 } });
  try {
    await within(client.connect(), 5000, 'connect');
    const m = new math.MathClient(client);
    assert.equal(await m.add([3n]), 3n);
    await relay.process.kill();
    await waitUntil(() => host.idleSpares === 0 && client.state !== 'connected', 'the relay gone for both ends');
    await sleep(300); // a few failed attempts while it is away
    relay = await startRelay(relayBin, `127.0.0.1:${port}`);
    await within(host.waitForSpares(), 15_000, 'spares registered again');
    await waitUntil(() => client.state === 'connected', 'the caller reconnected', 15_000);
    assert.equal(await m.add([4n]), 4n);
    assert.equal(client.stats().reconnects, 1);
  } finally {
    await client.close();
    await host.close();
    await relay.process.interrupt();
  }
});

describe('through a relay that looks and lies (pipe-relay.ts)', () => {
  test('no ciphertext repeats over 10,000 frames each way (Node client ↔ Rust host), and no plaintext shows', { timeout: 60_000 }, async () => {
    const seen: Record<'up' | 'down', Set<string>> = { up: new Set(), down: new Set() };
    const marker = Buffer.from('plaintext-that-must-not-show');
    let clear = 0;
    const pipe = await PipeRelay.start({
      tap: (_route, direction, _index, data) => {
        seen[direction].add(data.toString('base64'));
        if (data.includes(marker)) clear++;
        return data;
      },
    });
    const rust = new RustProcess(interop, ['relay-host', pipe.url, hex(Identity.generate().secret)]);
    let client: Client | undefined;
    try {
      client = callerOf(pipe.url, await rust.lineAfter('registered '));
      await within(client.connect(), 5000, 'connect');
      const m = new math.MathClient(client);
      // The same frame, over and over (a notification has no call id): a fresh ciphertext each time.
      for (let i = 0; i < 1000; i++) m.log(marker.toString());
      for (let i = 0; i < 10_000; i += 500) {
        const sums = await within(Promise.all(Array.from({ length: 500 }, () => m.add([1n, 2n]))), 20_000, 'calls');
        assert.ok(sums.every((x) => x === 3n));
      }
      await rust.waitFor(`event log ${marker.toString()}`, 1000, 10_000);
      const up = client.stats().framesSent;
      const down = client.stats().framesReceived;
      assert.ok(up >= 11_000 && down >= 10_000, `${up} up, ${down} down`);
      // Every frame here fits one transport message; the handshake's two are among them too.
      assert.equal(seen.up.size, up + 1, 'each message up is new');
      assert.equal(seen.down.size, down + 1, 'each message down is new');
      assert.equal(clear, 0, 'the relay never saw the plaintext');
    } finally {
      await client?.close();
      await rust.stop();
      await pipe.close();
    }
  });

  test('routed to an impostor: a Node caller of a Rust host and a Rust caller of a Node host fail the handshake (4210)', T, async () => {
    const impostorSecret = Identity.generate().secret;
    const impostorKey = Identity.fromSecret(impostorSecret).publicKey;
    const pipe = await PipeRelay.start({ route: () => impostorKey });
    const target = Identity.generate().publicKey.toString();
    try {
      await impostorTest(pipe, impostorSecret, target);
    } finally {
      await pipe.close();
    }
  });

  /** The two halves of the impostor test, the pipe relay closed by the caller. */
  async function impostorTest(pipe: PipeRelay, impostorSecret: Uint8Array, target: string): Promise<void> {
    const rustImpostor = new RustProcess(interop, ['relay-host', pipe.url, hex(impostorSecret)]);
    try {
      await rustImpostor.lineAfter('registered ');
      const client = callerOf(pipe.url, target, { identity: Identity.generate() });
      try {
        const error = await within(client.connect().then(() => undefined, (e: unknown) => e), 5000, 'connect');
        assert.ok(error instanceof RelayError && error.closeCode === 4210, String(error));
        assert.equal(error.reason, "e2e: the caller's handshake failed", 'the Rust host could not read a handshake made for another key');
      } finally {
        await client.close();
      }
      assert.ok(!rustImpostor.lines.some((l) => l.startsWith('event ')), 'nothing ran on the impostor');
    } finally {
      await rustImpostor.stop();
    }
    // The other way: a Node host as the impostor, a Rust caller.
    const { host, seen } = await startHost(pipe.url, { identity: Identity.fromSecret(impostorSecret) });
    const rust = new RustProcess(interop, ['relay-call', pipe.url, target, 'msgpack', hex(Identity.generate().secret)]);
    try {
      assert.equal(await within(rust.exited, 20_000, 'the Rust caller'), 4, rust.output);
      assert.match(rust.lines.join('\n'), /^e2e-refused .*4210/m);
      assert.deepEqual(seen, newSeen());
      assert.equal(host.connections.size, 0);
      assert.ok(pipe.closes.some((c) => c.from === 'host' && c.code === 4210), JSON.stringify(pipe.closes));
    } finally {
      await rust.kill();
      await host.close();
    }
  }

  test('a changed message: the Rust host (Node caller) and the Node host (Rust caller) close with 4211; the handler never runs', T, async () => {
    // Up #0 is the caller's handshake, #1 its HELLO, #2 its first call: changed on the way.
    const pipe = await PipeRelay.start({
      tap: (_route, direction, index, data) => {
        if (direction !== 'up' || index !== 2) return data;
        const out = Buffer.from(data);
        out[out.length - 20]! ^= 0x01;
        return out;
      },
    });
    try {
      const rustHost = new RustProcess(interop, ['relay-host', pipe.url, hex(Identity.generate().secret)]);
      try {
        const client = callerOf(pipe.url, await rustHost.lineAfter('registered '), { reconnect: false });
        try {
          await within(client.connect(), 5000, 'connect');
          const error = await within(new math.MathClient(client).reset().then(() => undefined, (e: unknown) => e), 5000, 'the changed call');
          assert.equal((error as { code?: string }).code, 'DISCONNECTED', String(error));
          await assert.rejects(within(client.closed, 5000, 'closed'), (e: unknown) => e instanceof CloseError && e.code === 4211 && e.reason === 'e2e: a message failed authentication');
        } finally {
          await client.close();
        }
        await sleep(100);
        assert.ok(!rustHost.lines.some((l) => l.startsWith('event reset')), rustHost.output);
        assert.deepEqual(pipe.closes.find((c) => c.from === 'host'), { route: 0, from: 'host', code: 4211, reason: 'e2e: a message failed authentication' });
      } finally {
        await rustHost.stop();
      }
      const calls: string[] = [];
      const { host, seen } = await startHost(pipe.url, { observer: (e) => calls.push(e.method) });
      const rust = new RustProcess(interop, ['relay-call', pipe.url, host.publicKey.toString()]);
      try {
        assert.equal(await within(rust.exited, 20_000, 'the Rust caller'), 5, rust.output);
        assert.deepEqual(rust.lines.slice(0, 2), ['caller anonymous', 'connected e2e']);
        assert.match(rust.lines[2] ?? '', /^call-failed /);
        assert.equal(rust.lines[3], 'closed 4211 e2e: a message failed authentication');
        assert.deepEqual(calls, [], 'no call reached the host');
        assert.deepEqual(seen, newSeen());
      } finally {
        await rust.kill();
        await host.close();
      }
    } finally {
      await pipe.close();
    }
  });
});

async function waitUntil(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`${what} did not happen within ${ms} ms`);
    await sleep(10);
  }
}
