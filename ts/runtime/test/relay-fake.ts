/**
 * A relay scripted by the test (not a test file): a `ws` server that sends CHALLENGE on every
 * connection, decodes the relay frames it receives and lets the test answer them, so the two
 * relay ends of the runtime can be driven through exact sequences (and broken ones) without the
 * Rust relay. The Rust relay itself is exercised in ts/tests (relay.test.ts).
 */
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import {
  type Codec,
  RELAY_VERSION,
  type RelayFrame,
  codecForSubprotocol,
  createCodec,
  decodeRelayFrame,
  encodeRelayFrame,
  proofText,
} from '../src/index.js';
import { until } from './helpers.js';

export interface FakeConn {
  readonly ws: WebSocket;
  readonly codec: Codec;
  readonly nonce: Uint8Array;
  /** Relay frames received, in order (until the test takes the socket over). */
  readonly frames: RelayFrame[];
  readonly closed: Promise<{ code: number; reason: string }>;
  send(frame: RelayFrame): void;
  /** Waits for relay frame number `n` (1-based). */
  frame(n: number, ms?: number): Promise<RelayFrame>;
  /** Whether `frame` carries a valid proof for this connection (register, or connect with a caller). */
  proofHolds(frame: RelayFrame, name: string): boolean;
  /** Stops decoding relay frames: the test (or a Peer) reads the socket from here on. */
  takeOver(): WebSocket;
}

export class FakeRelay {
  readonly conns: FakeConn[] = [];
  private constructor(
    private readonly wss: WebSocketServer,
    readonly url: string,
    readonly name: string,
  ) {}

  /** `onConnection` runs for each new connection after its CHALLENGE was sent. */
  static async start(onConnection: (conn: FakeConn) => void = () => undefined): Promise<FakeRelay> {
    const wss = new WebSocketServer({
      port: 0,
      host: '127.0.0.1',
      handleProtocols: (offered) => [...offered].find((p) => codecForSubprotocol(p) !== undefined) ?? false,
    });
    await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
    const { port } = wss.address() as AddressInfo;
    const relay = new FakeRelay(wss, `ws://127.0.0.1:${port}/`, `127.0.0.1:${port}`);
    wss.on('connection', (ws) => {
      ws.on('error', () => undefined);
      const codec = createCodec(codecForSubprotocol(ws.protocol) ?? 'msgpack');
      const nonce = crypto.getRandomValues(new Uint8Array(32));
      const frames: RelayFrame[] = [];
      let decoding = true;
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        if (!decoding) return;
        frames.push(decodeRelayFrame(isBinary ? new Uint8Array(data) : data.toString('utf8'), codec));
      });
      const closed = new Promise<{ code: number; reason: string }>((resolve) =>
        ws.on('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString('utf8') })),
      );
      const conn: FakeConn = {
        ws,
        codec,
        nonce,
        frames,
        closed,
        send: (frame) => ws.send(encodeRelayFrame(frame, codec)),
        async frame(n, ms = 3000) {
          await until(() => frames.length >= n, ms, `relay frame #${n}`);
          return frames[n - 1]!;
        },
        proofHolds(frame, name) {
          const encoder = new TextEncoder();
          if (frame.type === 33) return frame.key.verify(encoder.encode(proofText('register', name, nonce)), frame.signature);
          if (frame.type === 35 && frame.caller !== null) {
            return frame.caller.key.verify(encoder.encode(proofText('connect', name, nonce, frame.target)), frame.caller.signature);
          }
          return false;
        },
        takeOver() {
          decoding = false;
          return ws;
        },
      };
      relay.conns.push(conn);
      conn.send({ type: 32, version: RELAY_VERSION, nonce });
      onConnection(conn);
    });
    return relay;
  }

  async close(): Promise<void> {
    for (const c of this.wss.clients) c.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}

