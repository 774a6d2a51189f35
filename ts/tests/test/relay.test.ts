/**
 * The TypeScript relay ends against the Rust relay (`wsp-relay`, PROTOCOL.md §11), over real
 * sockets on 127.0.0.1: a Node host serving the generated `math.Math` handlers, called by the
 * generated TypeScript client and by the generated Rust client (tests/interop `relay-call`); a
 * Rust host (`relay-host`) called by the TypeScript client, calls going both ways; the relay's
 * refusals (unknown key, wrong proofs) as defined errors; close codes and reasons passing through;
 * and reconnecting through the relay, also after the relay itself restarted.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  Client,
  CloseError,
  Identity,
  type Peer,
  RelayError,
  RelayHost,
  type RelayHostOptions,
  type Signer,
} from '@wsp/runtime';
import { WebSocket } from '@wsp/runtime/node';
import * as geometry from '../../generated/geometry.js';
import * as math from '../../generated/math.js';
import { quiet, sleep, within } from './helpers.js';
import { type Seen, relayMath } from './relay-math.js';
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

/** A Node host serving the generated math handlers through the relay at `url`, all spares registered. */
async function startHost(url: string, options: RelayHostOptions & { identity?: Signer } = {}): Promise<{ host: RelayHost; seen: Seen }> {
  const seen: Seen = { callers: [], logs: [] };
  const { identity = Identity.generate(), ...rest } = options;
  const host = new RelayHost(url, identity, { WebSocket, log: quiet, ...rest });
  math.serveMath(host, relayMath(seen));
  await within(host.start(), 5000, 'the first spare registered');
  await within(host.waitForSpares(), 5000, 'all spares registered');
  return { host, seen };
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
    test(`Node host ← Node client, generated code, ${codec}: typed calls, errors, streams, who called`, T, async () => {
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
        assert.deepEqual(seen, { callers: [me.publicKey.toString(), null], logs: ['from node'] });
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

    test(`Node host ← Rust caller (generated Rust client through the relay), ${codec}`, T, async () => {
      const { host, seen } = await startHost(relay.url, { codec });
      const caller = Identity.generate();
      const rust = new RustProcess(interop, ['relay-call', relay.url, host.publicKey.toString(), codec, hex(caller.secret)]);
      try {
        const status = await within(rust.exited, 20_000, 'the Rust caller');
        assert.equal(status, 0, rust.output);
        assert.deepEqual(rust.lines, [
          `caller ${caller.publicKey.toString()}`,
          `add ${BIG + 3n}`,
          'overflow add',
          'divide DivisionByZero',
          'count [1, 2, 3, 4, 5]',
          'ok',
        ]);
        await waitUntil(() => seen.logs.length === 1, 'the log notification');
        assert.deepEqual(seen, { callers: [caller.publicKey.toString()], logs: ['through the relay'] });
      } finally {
        await rust.kill();
        await host.close();
      }
    });
  }

  test('Rust host ← Node client: calls both ways (geometry calls back into the caller), who called', T, async () => {
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
      await rust.waitFor(`event reset ${me.publicKey.toString()}`);
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
    const liar: Signer = { publicKey: claimed.publicKey, sign: (m) => real.sign(m) };
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

async function waitUntil(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`${what} did not happen within ${ms} ms`);
    await sleep(10);
  }
}
