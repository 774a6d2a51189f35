/** Test helpers: servers on 127.0.0.1:0, clients over the `ws` package, raw sockets, bounded waits. */
import { WebSocket } from 'ws';
import { decode, encode } from '@msgpack/msgpack';
import { Client, type ClientOptions } from '../src/index.js';
import { WspServer, type ServerOptions } from '../src/node/index.js';

/** ws's class fits `ClientOptions.WebSocket` as it is (no cast): checked by the type checker here. */
export const WS: NonNullable<ClientOptions['WebSocket']> = WebSocket;

/** Collects log output instead of printing it (handler crashes are expected in some tests). */
export function quietLog(): { log: (e: unknown, what: string) => void; entries: Array<{ error: unknown; what: string }> } {
  const entries: Array<{ error: unknown; what: string }> = [];
  return { log: (error, what) => entries.push({ error, what }), entries };
}

export async function startServer(options: ServerOptions = {}): Promise<{ server: WspServer; url: string; port: number }> {
  const server = new WspServer({ log: quietLog().log, ...options });
  const address = await server.listen();
  return { server, url: `ws://127.0.0.1:${address.port}/`, port: address.port };
}

export async function connectClient(url: string, options: ClientOptions = {}): Promise<Client> {
  const client = new Client(url, { WebSocket: WS, log: quietLog().log, ...options });
  await client.connect();
  return client;
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

/** Polls `cond` until true (bounded). */
export async function until(cond: () => boolean, ms = 3000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`${what} not reached within ${ms} ms`);
    await sleep(5);
  }
}

/** A raw ws connection for speaking (or breaking) the protocol by hand. */
export interface RawConn {
  ws: WebSocket;
  /** Decoded frames received so far (msgpack binary or JSON text). */
  frames: unknown[];
  closed: Promise<{ code: number; reason: string }>;
  sendFrame(frame: unknown): void;
  next(count?: number, ms?: number): Promise<unknown>;
}

export async function rawConnect(url: string, protocol: string | null = 'wsp.v1.msgpack'): Promise<RawConn> {
  const ws = protocol === null ? new WebSocket(url) : new WebSocket(url, protocol);
  const frames: unknown[] = [];
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    frames.push(isBinary ? decode(data, { useBigInt64: true }) : JSON.parse(data.toString('utf8')));
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString('utf8') })),
  );
  ws.on('error', () => undefined);
  await within(
    new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    }),
    3000,
    'raw connect',
  );
  return {
    ws,
    frames,
    closed,
    sendFrame(frame) {
      if (ws.protocol === 'wsp.v1.json') ws.send(JSON.stringify(frame));
      else ws.send(encode(frame, { useBigInt64: true }));
    },
    async next(count = frames.length + 1, ms = 3000) {
      await until(() => frames.length >= count, ms, `frame #${count}`);
      return frames[count - 1];
    },
  };
}
