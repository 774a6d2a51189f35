/**
 * Node client → Rust server, in one run (`npm run bench:interop` in ts/tests; see BENCHMARKS.md):
 *
 * - raw: a Node `ws` client sending 64-byte binary messages to a Node `ws` server that echoes
 *   them (the server in a worker thread, so it has its own event loop, as the Rust server has
 *   its own process);
 * - wsp: the generated TypeScript client (`ts/generated/bench/bench.ts`, msgpack) over the Node
 *   WebSocket of `@wsp/runtime/node` (`ws`, sending the frames of one tick in one write) calling
 *   `bench.Bench/add(a, b)` on the Rust server (`wsp-interop bench-server`, generated Rust).
 *
 * Each sequentially (one in flight) and with 256 in flight, ~2 s per case after a warm-up:
 * calls/s, p50 and p99 latency, and the ratio of calls/s to the raw echo of the same shape.
 * `BENCH_SECONDS` changes the duration of a case. The Rust server is built with `--release`
 * (`WSP_INTEROP_BIN` overrides the binary: give it a release build).
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { Client } from '@wsp/runtime';
import { WebSocket as NodeWebSocket } from '@wsp/runtime/node';
import { WebSocket } from 'ws';
import * as bench from '../../generated/bench/bench.js';
import { RustProcess, interopBinary } from '../test/rust-process.js';

const SECONDS = Number(process.env['BENCH_SECONDS'] ?? '2');
const WARMUP_MS = 300;
const IN_FLIGHT = 256;

interface Result {
  calls: number;
  seconds: number;
  latencies: Float64Array;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/**
 * Runs `call` with `inFlight` calls outstanding (a new one starts when one finishes) for
 * `ms`, recording each call's latency in µs.
 */
async function drive(call: () => Promise<unknown>, inFlight: number, ms: number): Promise<Result> {
  const latencies: number[] = [];
  const start = performance.now();
  const end = start + ms;
  const lane = async (): Promise<void> => {
    while (performance.now() < end) {
      const t = performance.now();
      await call();
      latencies.push((performance.now() - t) * 1000);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
  const seconds = (performance.now() - start) / 1000;
  return { calls: latencies.length, seconds, latencies: Float64Array.from(latencies).sort() };
}

async function measure(call: () => Promise<unknown>, inFlight: number): Promise<Result> {
  await drive(call, inFlight, WARMUP_MS);
  return drive(call, inFlight, SECONDS * 1000);
}

/** A `ws` echo server in a worker thread; resolves with its port. */
async function startEchoWorker(): Promise<{ port: number; worker: Worker }> {
  const source = `
    const { parentPort } = require('node:worker_threads');
    const { WebSocketServer } = require(${JSON.stringify(wsPath())});
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
    wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
    wss.on('listening', () => parentPort.postMessage(wss.address().port));
    parentPort.on('message', () => wss.close(() => process.exit(0)));
  `;
  const worker = new Worker(source, { eval: true });
  const port = await new Promise<number>((resolve, reject) => {
    worker.once('message', (p: number) => resolve(p));
    worker.once('error', reject);
  });
  return { port, worker };
}

function wsPath(): string {
  // The CommonJS entry of `ws`, for the worker (an eval'd worker is CommonJS).
  return createRequire(import.meta.url).resolve('ws');
}

/** A raw `ws` client: each `echo()` sends 64 bytes and resolves with the next echoed message. */
async function rawClient(port: number): Promise<{ echo: () => Promise<unknown>; close: () => void }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const payload = Buffer.alloc(64, 7);
  // Echoes come back in order: the oldest waiter gets the next message.
  const waiting: Array<(v: unknown) => void> = [];
  let head = 0;
  ws.on('message', (data) => {
    const resolve = waiting[head];
    waiting[head++] = () => undefined;
    if (head > 4096 && head * 2 > waiting.length) {
      waiting.splice(0, head);
      head = 0;
    }
    resolve?.(data);
  });
  return {
    echo: () =>
      new Promise((resolve) => {
        waiting.push(resolve);
        ws.send(payload, { binary: true });
      }),
    close: () => ws.close(),
  };
}

interface Row {
  name: string;
  shape: string;
  result: Result;
  raw?: Result;
}

function fmt(rows: Row[]): string {
  const lines = [
    '| case | shape | calls/s | p50 µs | p99 µs | × raw |',
    '|---|---|---:|---:|---:|---:|',
  ];
  for (const { name, shape, result, raw } of rows) {
    const rate = result.calls / result.seconds;
    const ratio = raw === undefined ? '1.00' : (rate / (raw.calls / raw.seconds)).toFixed(2);
    lines.push(
      `| ${name} | ${shape} | ${Math.round(rate).toLocaleString('en-US')} | ${percentile(result.latencies, 50).toFixed(0)} | ${percentile(result.latencies, 99).toFixed(0)} | ${ratio} |`,
    );
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const bin = interopBinary({ release: true });
  const { port: echoPort, worker } = await startEchoWorker();
  const rust = new RustProcess(bin, ['bench-server']);
  let client: Client | undefined;
  let raw: { echo: () => Promise<unknown>; close: () => void } | undefined;
  try {
    const rustPort = await rust.port();
    raw = await rawClient(echoPort);
    client = new Client(`ws://127.0.0.1:${rustPort}/`, { WebSocket: NodeWebSocket, codecs: ['msgpack'] });
    await client.connect();
    const b = new bench.BenchClient(client);
    let i = 0;
    const add = async (): Promise<number> => {
      const a = i++ & 0xffff;
      const sum = await b.add(a, 2);
      if (sum !== a + 2) throw new Error(`add(${a}, 2) returned ${sum}`);
      return sum;
    };

    const rawSeq = await measure(raw.echo, 1);
    const wspSeq = await measure(add, 1);
    const rawPar = await measure(raw.echo, IN_FLIGHT);
    const wspPar = await measure(add, IN_FLIGHT);
    console.log(
      fmt([
        { name: 'raw `ws` echo, 64 B (Node server)', shape: 'sequential', result: rawSeq },
        { name: 'generated TS `add` → Rust server', shape: 'sequential', result: wspSeq, raw: rawSeq },
        { name: 'raw `ws` echo, 64 B (Node server)', shape: `${IN_FLIGHT} in flight`, result: rawPar },
        { name: 'generated TS `add` → Rust server', shape: `${IN_FLIGHT} in flight`, result: wspPar, raw: rawPar },
      ]),
    );
    console.log(`\n${SECONDS} s per case after ${WARMUP_MS} ms warm-up; node ${process.version}`);
  } finally {
    await client?.close();
    raw?.close();
    worker.postMessage('stop');
    await rust.stop();
  }
}

await main();
