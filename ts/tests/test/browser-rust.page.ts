/**
 * The page script of browser-rust.test.ts, bundled with esbuild for the browser (IIFE, global
 * `wspPage`): the generated TypeScript of `math` and `geometry` plus the runtime core, connecting
 * with the browser's own `WebSocket` to the Rust server of tests/interop. Not a test file itself.
 */
import { Client, RpcError } from '@wsp/runtime';
import * as geometry from '../../generated/geometry.js';
import * as math from '../../generated/math.js';

/** What one codec's run saw (bigints as decimal strings, so the result is plain JSON). */
export interface CodecOutcome {
  codec: string;
  sum: string;
  overflow: string;
  /** The client stream `sum`, and the bidirectional `running`'s totals. */
  streamedSum: string;
  totals: string[];
  /** Items the page's producer made while the Rust `sum` took none (its window), and how the cancelled call ended. */
  pausedAt: number;
  cancelled: string;
  area: number;
  refused: string;
  questions: string[];
  progress: number[];
  hasNodeProcess: boolean;
}

const BIG = 2n ** 62n + 1n;

async function waitUntil(ready: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!ready()) {
    if (Date.now() > end) throw new Error(`${what} did not happen within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Runs the calls in both directions over one codec and closes the connection. */
export async function run(url: string, codec: 'msgpack' | 'json'): Promise<CodecOutcome> {
  // No `WebSocket` option: the client uses the browser's own global `WebSocket`.
  const client = new Client(url, { codecs: [codec] });
  const questions: string[] = [];
  const progress: number[] = [];
  // The server-to-client calls (`client { }` of geometry.Geometry), answered by the page.
  geometry.registerGeometryCallbacks(client, {
    confirm: (question) => {
      questions.push(question);
      return question !== 'radius 0?';
    },
    progress: (percent) => void progress.push(percent),
  });
  try {
    await client.connect();
    const m = new math.MathClient(client);
    const g = new geometry.GeometryClient(client);
    const sum = await m.add([1n, 2n, BIG]);
    const overflow = await m.add([2n ** 63n - 1n, 1n]).catch((e: unknown) => e);
    const streamedSum = await m.sum([1n, 2n, BIG]);
    const totals: string[] = [];
    for await (const total of m.running(BIG, [1n, 2n])) totals.push(String(total));
    // The Rust `sum` takes nothing after a first 42: the producer stops at its window.
    let made = 0;
    const endless = function* (): Generator<bigint> {
      for (let i = 42n; ; i++) {
        made++;
        yield i;
      }
    };
    const ac = new AbortController();
    const paused = m.sum(endless(), { signal: ac.signal }).catch((e: unknown) => e);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const pausedAt = made;
    ac.abort();
    const cancelledError = await paused;
    const circle = (radius: number): geometry.Shape => ({ $type: 'Circle', center: { x: 1, y: 2 }, radius });
    // The Rust handler calls `confirm` on this page before it answers, then notifies `progress`.
    const area = await g.area(circle(2));
    const refused = await g.area(circle(0)).catch((e: unknown) => e);
    await waitUntil(() => progress.length > 0, 3000, 'the progress notification');
    return {
      codec: client.codec ?? 'none',
      sum: String(sum),
      overflow: math.isMathError(overflow) ? overflow.details.$type : `unexpected: ${String(overflow)}`,
      streamedSum: String(streamedSum),
      totals,
      pausedAt,
      cancelled: cancelledError instanceof RpcError ? cancelledError.code : `unexpected: ${String(cancelledError)}`,
      area,
      refused: geometry.isGeometryError(refused) && refused.details.$type === 'Degenerate' ? refused.details.reason : `unexpected: ${String(refused)}`,
      questions,
      progress,
      hasNodeProcess: typeof (globalThis as { process?: unknown }).process !== 'undefined',
    };
  } finally {
    await client.close();
  }
}
