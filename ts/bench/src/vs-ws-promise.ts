/**
 * The wsp TypeScript client against the npm `ws-promise` 2.0.5 client, each calling `add(a, b)`
 * on its own Node server (`npm run bench` in ts/bench; see BENCHMARKS.md):
 *
 * - wsp: the generated client of `bench.Bench/add` (`ts/generated/bench/bench.ts`) on an
 *   `@wsp/runtime` `Client` over the Node `WebSocket` of `@wsp/runtime/node` (msgpack), against a
 *   `WspServer` serving the generated `serveBench` (`src/wsp-server.ts`);
 * - ws-promise: its `Client` (the proxy: `client.add(a, b)`) over the `ws` it depends on (7.x;
 *   its client cannot use ws 8, which refuses the `null` subprotocols it passes), against its
 *   `Server` with an `onAdd` handler (`src/ws-promise-server.ts`).
 *
 * Reference, not a target: a raw `ws` client sending 64-byte binary messages to a `ws` server that
 * echoes them (`src/echo-server.ts`), the bare WebSocket round trip both systems are built on.
 *
 * Each server runs in a worker thread (its own event loop); the clients share this one. Both
 * sequentially (one call in flight) and with 256 in flight (a new call starts as one finishes),
 * in interleaved rounds: every round runs every case once, so drift of the shared machine hits
 * all alike. calls/s is the median round; p50/p99 are over all calls of the case. Every result is
 * checked: a wrong sum fails the run.
 *
 * BENCH_SECONDS (default 2) is the length of a round of one case, BENCH_ROUNDS (default 5) the
 * number of rounds. For profiling, BENCH_ONLY=<part of a name> keeps only the matching systems
 * and BENCH_SHAPE=sequential|256 only one shape; `node --cpu-prof dist/bench/src/vs-ws-promise.js`
 * writes a profile of this thread and one of each server's. Besides the table, the results go to
 * `target/bench-results/ts-ws-promise.json` of the repository (WSP_BENCH_OUT names another
 * directory), the file `scripts/bench-chart` reads.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { Client } from '@wsp/runtime';
import { WebSocket as NodeWebSocket } from '@wsp/runtime/node';
import { WebSocket } from 'ws';
import WsPromiseClient from 'ws-promise/Client.mjs';
import * as bench from '../../generated/bench/bench.js';

const SECONDS = positive('BENCH_SECONDS', 2);
const ROUNDS = Math.round(positive('BENCH_ROUNDS', 5));
const WARMUP_MS = Math.min(500, SECONDS * 1000);
const ONLY = process.env['BENCH_ONLY'] ?? '';
const IN_FLIGHT = 256;
const SHAPES = [1, IN_FLIGHT].filter((n) => {
  const only = process.env['BENCH_SHAPE'] ?? '';
  return only === '' || (n === 1 ? only === 'sequential' : only === String(n));
});
const TARGET = 3.0;

function positive(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!(n > 0)) throw new Error(`${name}=${text}: expected a positive number`);
  return n;
}

/** One run of a case: how many calls in how long, and each call's latency in µs. */
interface Run {
  calls: number;
  seconds: number;
  latencies: Float64Array;
}

/**
 * Runs `call` with `inFlight` calls outstanding (a new one starts when one finishes) for `ms`,
 * recording each call's latency in µs.
 */
async function drive(call: () => Promise<void>, inFlight: number, ms: number): Promise<Run> {
  let latencies = new Float64Array(1 << 16);
  let n = 0;
  const start = performance.now();
  const end = start + ms;
  const lane = async (): Promise<void> => {
    while (performance.now() < end) {
      const t = performance.now();
      await call();
      const us = (performance.now() - t) * 1000;
      if (n === latencies.length) {
        const grown = new Float64Array(n * 2);
        grown.set(latencies);
        latencies = grown;
      }
      latencies[n++] = us;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
  const seconds = (performance.now() - start) / 1000;
  return { calls: n, seconds, latencies: latencies.slice(0, n) };
}

/** A server in a worker thread (`file` in this directory); resolves once it posted its port. */
async function startWorker(file: string): Promise<{ port: number; stop: () => Promise<void> }> {
  const worker = new Worker(new URL(file, import.meta.url));
  const port = await new Promise<number>((resolve, reject) => {
    worker.once('message', (p: number) => resolve(p));
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`${file} exited (${code}) before listening`)));
  });
  const stop = async (): Promise<void> => {
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.postMessage('stop');
    const timer = setTimeout(() => void worker.terminate(), 3000);
    await exited;
    clearTimeout(timer);
  };
  return { port, stop };
}

interface System {
  name: string;
  /** One `add` call, its result checked. */
  add: () => Promise<void>;
  /** Called before each run of a case (and its warm-up). */
  beforeRun?: () => Promise<void>;
  close: () => Promise<void>;
}

async function wspSystem(port: number): Promise<System> {
  const client = new Client(`ws://127.0.0.1:${port}/`, { WebSocket: NodeWebSocket, codecs: ['msgpack'] });
  await client.connect();
  const b = new bench.BenchClient(client);
  let i = 0;
  return {
    name: 'wsp TS add',
    add: async () => {
      const a = i++ & 0xffff;
      const sum = await b.add(a, 2);
      if (sum !== a + 2) throw new Error(`wsp: add(${a}, 2) returned ${String(sum)}`);
    },
    close: () => client.close(),
  };
}

async function wsPromiseSystem(port: number): Promise<System> {
  // The `ws` ws-promise itself depends on (7.x), as the engine its README asks a Node client for.
  const requireFromWsPromise = createRequire(createRequire(import.meta.url).resolve('ws-promise/package.json'));
  const ws7: unknown = requireFromWsPromise('ws');
  const client = (await new WsPromiseClient(`ws://127.0.0.1:${port}/`, { engine: ws7 }).open()) as WsPromiseClient & {
    add(a: number, b: number): Promise<unknown>;
  };
  let i = 0;
  return {
    name: 'ws-promise add',
    // Each call leaves a listener behind in the client (its acknowledgement of the reply, SYN_ACK,
    // waits for an answer that never comes), so a connection's heap grows with every call. A new
    // connection before each run drops them, so that no run pays for the calls of earlier ones.
    beforeRun: async () => {
      await client.open();
    },
    add: async () => {
      const a = i++ & 0xffff;
      const sum = await client.add(a, 2);
      if (sum !== a + 2) throw new Error(`ws-promise: add(${a}, 2) returned ${String(sum)}`);
    },
    close: async () => {
      await client.close();
    },
  };
}

/** The reference: each call sends 64 bytes and resolves with the next echoed message. */
async function rawEchoSystem(port: number): Promise<System> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const payload = Buffer.alloc(64, 7);
  // Echoes come back in order: the oldest waiter gets the next message.
  let waiting: Array<(data: Buffer) => void> = [];
  let head = 0;
  ws.on('message', (data: Buffer) => {
    const resolve = waiting[head++];
    if (head > 4096 && head * 2 > waiting.length) {
      waiting = waiting.slice(head);
      head = 0;
    }
    resolve?.(data);
  });
  return {
    name: 'raw ws echo, 64 B (reference)',
    add: async () => {
      const data = await new Promise<Buffer>((resolve) => {
        waiting.push(resolve);
        ws.send(payload, { binary: true });
      });
      if (data.length !== payload.length) throw new Error(`raw echo: ${data.length} bytes came back`);
    },
    close: async () => {
      const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
      ws.close();
      await closed;
    },
  };
}

interface Case {
  system: System;
  inFlight: number;
  rates: number[];
  latencies: Float64Array[];
}

function shapeName(inFlight: number): string {
  return inFlight === 1 ? 'sequential' : `${inFlight} in flight`;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] ?? NaN) : ((s[mid - 1] ?? NaN) + (s[mid] ?? NaN)) / 2;
}

/** p50, p99 (µs) over all calls of a case. */
function percentiles(runs: readonly Float64Array[]): { p50: number; p99: number } {
  const all = new Float64Array(runs.reduce((n, r) => n + r.length, 0));
  let at = 0;
  for (const r of runs) {
    all.set(r, at);
    at += r.length;
  }
  all.sort();
  const pick = (p: number): number => (all.length === 0 ? NaN : (all[Math.min(all.length - 1, Math.floor(p * all.length))] ?? NaN));
  return { p50: pick(0.5), p99: pick(0.99) };
}

const fmtInt = (x: number): string => Math.round(x).toLocaleString('en-US');

function machine(): string {
  const model = (os.cpus()[0]?.model ?? os.arch()).split(/\s+/).filter((w) => w !== '').join(' ');
  return `${model} ×${os.availableParallelism()} cores, Node ${process.versions.node}`;
}

function command(): string {
  const vars = ['BENCH_SECONDS', 'BENCH_ROUNDS', 'BENCH_ONLY', 'BENCH_SHAPE']
    .filter((k) => (process.env[k] ?? '') !== '')
    .map((k) => `${k}=${process.env[k] ?? ''}`);
  return ['cd ts/bench &&', ...vars, 'npm run bench'].join(' ');
}

/** `target/bench-results` of the repository (this file is ts/bench/dist/bench/src/…), or WSP_BENCH_OUT. */
function outDir(): string {
  const dir = process.env['WSP_BENCH_OUT'];
  if (dir !== undefined && dir !== '') return dir;
  return fileURLToPath(new URL('../../../../../target/bench-results/', import.meta.url));
}

async function main(): Promise<void> {
  const wspServer = await startWorker('./wsp-server.js');
  const wpServer = await startWorker('./ws-promise-server.js');
  const echoServer = await startWorker('./echo-server.js');
  const systems: System[] = [];
  try {
    systems.push(await wspSystem(wspServer.port), await wsPromiseSystem(wpServer.port), await rawEchoSystem(echoServer.port));
    const measured = systems.filter((s) => s.name.includes(ONLY));
    if (measured.length === 0) throw new Error(`BENCH_ONLY=${ONLY} matches none of: ${systems.map((s) => s.name).join(', ')}`);
    const cases: Case[] = [];
    if (SHAPES.length === 0) throw new Error(`BENCH_SHAPE=${process.env['BENCH_SHAPE'] ?? ''}: expected sequential or ${IN_FLIGHT}`);
    for (const inFlight of SHAPES) {
      for (const system of measured) cases.push({ system, inFlight, rates: [], latencies: [] });
    }

    console.log(
      `${ROUNDS} rounds × ${SECONDS} s per case after a ${WARMUP_MS} ms warm-up of each; ${machine()}, load ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    );
    for (const c of cases) {
      await c.system.beforeRun?.();
      await drive(c.system.add, c.inFlight, WARMUP_MS);
    }
    for (let round = 0; round < ROUNDS; round++) {
      // Every other round in reverse order, so that no case always follows the same one.
      const order = round % 2 === 0 ? cases : [...cases].reverse();
      for (const c of order) {
        await c.system.beforeRun?.();
        const run = await drive(c.system.add, c.inFlight, SECONDS * 1000);
        c.rates.push(run.calls / run.seconds);
        c.latencies.push(run.latencies);
      }
      console.log(
        `round ${round + 1}/${ROUNDS}: ` +
          cases.map((c) => `${c.system.name}, ${shapeName(c.inFlight)}: ${fmtInt(c.rates[round] ?? NaN)}`).join('; '),
      );
    }

    const rows = cases.map((c) => ({ ...c, rate: median(c.rates), ...percentiles(c.latencies) }));
    const baselineOf = (c: Case): (typeof rows)[number] | undefined =>
      c.system.name === 'wsp TS add' ? rows.find((r) => r.inFlight === c.inFlight && r.system.name === 'ws-promise add') : undefined;

    console.log('\n| case | shape | calls/s (median round) | p50 µs | p99 µs | ÷ ws-promise | target |');
    console.log('|---|---|---:|---:|---:|---:|---|');
    for (const r of rows) {
      const base = baselineOf(r);
      const ratio = base === undefined ? undefined : r.rate / base.rate;
      const target = ratio === undefined ? '' : `≥ ${TARGET.toFixed(1)}: ${ratio >= TARGET ? 'met' : 'MISSED'}`;
      console.log(
        `| ${r.system.name} | ${shapeName(r.inFlight)} | ${fmtInt(r.rate)} | ${r.p50.toFixed(0)} | ${r.p99.toFixed(0)} | ${ratio === undefined ? '' : ratio.toFixed(2)} | ${target} |`,
      );
    }
    console.log(`\nper round (calls/s): ${rows.map((r) => `${r.system.name}, ${shapeName(r.inFlight)}: ${r.rates.map(fmtInt).join(' / ')}`).join('; ')}`);

    const doc = {
      bench: 'ts-ws-promise',
      title: 'TypeScript client vs ws-promise 2.0.5 (Node)',
      date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      machine: machine(),
      command: command(),
      cases: rows.map((r) => {
        const base = baselineOf(r);
        return {
          name: r.system.name,
          shape: shapeName(r.inFlight),
          calls_per_s: Math.round(r.rate),
          p50_us: Math.round(r.p50),
          p99_us: Math.round(r.p99),
          baseline: base === undefined ? null : base.system.name,
          ratio: base === undefined ? null : Math.round((r.rate / base.rate) * 1000) / 1000,
          target: base === undefined ? null : TARGET,
        };
      }),
    };
    const dir = outDir();
    const path = join(dir, 'ts-ws-promise.json');
    try {
      mkdirSync(dir, { recursive: true });
      writeFileSync(path, `${JSON.stringify(doc, null, 2)}\n`);
      console.error(`results written to ${path}`);
    } catch (e) {
      console.error(`could not write ${path}: ${String(e)}`);
    }
  } finally {
    for (const s of systems) await s.close();
    await wspServer.stop();
    await wpServer.stop();
    await echoServer.stop();
  }
}

await main();
