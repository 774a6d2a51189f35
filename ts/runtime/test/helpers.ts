/** Test helpers: servers on 127.0.0.1:0, clients over the `ws` package, raw sockets, bounded waits. */
import { randomBytes } from 'node:crypto';
import { type Socket, connect } from 'node:net';
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

/**
 * A WebSocket frame as a client sends it (masked, RFC 6455 §5.2), for speaking WebSocket by hand
 * over a raw TCP socket.
 */
export function clientFrame(opcode: number, payload: Uint8Array = new Uint8Array(0), fin = true): Buffer {
  const len = payload.length;
  const head = len < 126 ? Buffer.alloc(2) : len < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
  head[0] = (fin ? 0x80 : 0) | opcode;
  if (len < 126) head[1] = 0x80 | len;
  else if (len < 65536) {
    head[1] = 0x80 | 126;
    head.writeUInt16BE(len, 2);
  } else {
    head[1] = 0x80 | 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  const mask = randomBytes(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] = (body[i] ?? 0) ^ (mask[i % 4] ?? 0);
  return Buffer.concat([head, mask, body]);
}

/** A WebSocket connection made by hand over TCP: nothing between the test and the bytes. */
export interface RawTcpConn {
  socket: Socket;
  /** Frames the server sent so far (servers do not mask). */
  frames: Array<{ opcode: number; fin: boolean; payload: Buffer }>;
  /** Resolves when the TCP connection has closed. */
  ended: Promise<void>;
  /** The code and reason of the server's close frame (bounded wait). */
  closeFrame(ms?: number): Promise<{ code: number; reason: string }>;
}

/**
 * Opens a TCP connection and does the WebSocket handshake by hand (subprotocol wsp.v1.msgpack).
 * `withRequest` is written in the same write as the upgrade request, so the server receives it
 * with the request (the `head` of Node's upgrade event).
 */
export async function rawTcpConnect(port: number, withRequest: Buffer = Buffer.alloc(0)): Promise<RawTcpConn> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const frames: RawTcpConn['frames'] = [];
  let buffer = Buffer.alloc(0);
  let upgraded = false;
  const upgrade = new Promise<void>((resolve, reject) => {
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      if (!upgraded) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end < 0) return;
        const response = buffer.subarray(0, end).toString('latin1');
        if (!response.startsWith('HTTP/1.1 101')) return reject(new Error(`upgrade refused: ${response}`));
        upgraded = true;
        buffer = buffer.subarray(end + 4);
        resolve();
      }
      for (;;) {
        if (buffer.length < 2) return;
        const len7 = (buffer[1] ?? 0) & 0x7f;
        const headLen = len7 === 126 ? 4 : len7 === 127 ? 10 : 2;
        if (buffer.length < headLen) return;
        const len = len7 === 126 ? buffer.readUInt16BE(2) : len7 === 127 ? Number(buffer.readBigUInt64BE(2)) : len7;
        if (buffer.length < headLen + len) return;
        const b0 = buffer[0] ?? 0;
        frames.push({ opcode: b0 & 0x0f, fin: (b0 & 0x80) !== 0, payload: Buffer.from(buffer.subarray(headLen, headLen + len)) });
        buffer = buffer.subarray(headLen + len);
      }
    });
    ended.then(() => reject(new Error('connection closed during the handshake')), () => undefined);
  });
  await within(new Promise((resolve) => socket.once('connect', resolve)), 3000, 'TCP connect');
  socket.write(
    Buffer.concat([
      Buffer.from(
        'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n` +
          'Sec-WebSocket-Protocol: wsp.v1.msgpack\r\n\r\n',
        'latin1',
      ),
      withRequest,
    ]),
  );
  await within(upgrade, 3000, 'WebSocket handshake');
  return {
    socket,
    frames,
    ended,
    async closeFrame(ms = 3000) {
      await until(() => frames.some((f) => f.opcode === 8), ms, 'close frame');
      const f = frames.find((x) => x.opcode === 8)!;
      return { code: f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1005, reason: f.payload.subarray(2).toString('utf8') };
    },
  };
}
