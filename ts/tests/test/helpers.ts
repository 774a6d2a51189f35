/**
 * Test helpers: a WspServer on 127.0.0.1:0, clients over the Node WebSocket of `@wsp/runtime/node`
 * (`ws`, with the frames of a tick batched into one write), bounded waits.
 */
import { Client, type ClientOptions } from '@wsp/runtime';
import { WebSocket, WspServer, type ServerOptions } from '@wsp/runtime/node';

export const quiet = (): void => undefined;

export async function startServer(options: ServerOptions = {}): Promise<{ server: WspServer; url: string }> {
  const server = new WspServer({ log: quiet, ...options });
  const { port } = await server.listen();
  return { server, url: `ws://127.0.0.1:${port}/` };
}

/** A client that is not connected yet (register callbacks first, then `connect()`). */
export function newClient(url: string, options: ClientOptions = {}): Client {
  return new Client(url, { WebSocket, log: quiet, ...options });
}

/** Rejects after `ms` so a broken test fails instead of hanging. */
export function within<T>(p: Promise<T>, ms: number, what = 'operation'): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resolves when `signal` aborts (or at once if it has). */
export function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}
