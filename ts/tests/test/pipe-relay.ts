/**
 * A relay of PROTOCOL.md §11 written for the tests (not a test file), which sees and can change
 * what it copies: it registers spares (checking their proofs), joins a caller to the newest idle
 * spare of the key `route` names (the target itself unless the test makes it lie), and copies the
 * messages of each joined pair both ways through `tap`, which records them and may change or drop
 * one. Close frames pass through as they are (4204 for a connection lost without one). What the
 * Rust relay (wsp-relay) cannot be made to do: route a caller to an impostor, alter a message, or
 * show the ciphertext of an end-to-end encrypted connection (§12).
 */
import type { AddressInfo } from 'node:net';
import { type WebSocket, WebSocketServer } from 'ws';
import {
  type Codec,
  PublicKey,
  RELAY_VERSION,
  type RelayFrame,
  codecForSubprotocol,
  createCodec,
  decodeRelayFrame,
  encodeRelayFrame,
  proofText,
} from '@wsp/runtime';

/** `up`: caller → host; `down`: host → caller. */
export type Direction = 'up' | 'down';

export interface Tap {
  /**
   * Each data message copied after the hand-over, numbered per route and direction from 0 (the
   * caller's handshake is `up` #0 of an encrypted route); returns what to send on, or null to drop it.
   */
  (route: number, direction: Direction, index: number, data: Buffer, isBinary: boolean): Buffer | null;
}

export interface PipeRelayOptions {
  /** The key a caller asking for `target` is joined to (default: `target`). */
  route?: (target: PublicKey) => PublicKey;
  tap?: Tap;
}

interface Spare {
  readonly ws: WebSocket;
  readonly key: string;
  readonly protocol: string;
}

export class PipeRelay {
  /** Close frames seen, per route: who sent which code and reason. */
  readonly closes: Array<{ route: number; from: 'caller' | 'host'; code: number; reason: string }> = [];
  /** Routes joined so far. */
  routes = 0;
  private readonly spares: Spare[] = [];

  private constructor(
    private readonly wss: WebSocketServer,
    readonly url: string,
    private readonly options: PipeRelayOptions,
  ) {}

  static async start(options: PipeRelayOptions = {}): Promise<PipeRelay> {
    const wss = new WebSocketServer({
      port: 0,
      host: '127.0.0.1',
      maxPayload: 16 * 1024 * 1024,
      handleProtocols: (offered) => [...offered].find((p) => codecForSubprotocol(p) !== undefined) ?? false,
    });
    await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
    const { port } = wss.address() as AddressInfo;
    const relay = new PipeRelay(wss, `ws://127.0.0.1:${port}/`, options);
    wss.on('connection', (ws) => relay.accept(ws, `127.0.0.1:${port}`));
    return relay;
  }

  /** Idle spares registered under `key` now. */
  idle(key: PublicKey | string): number {
    const k = key.toString();
    return this.spares.filter((s) => s.key === k && s.ws.readyState === s.ws.OPEN).length;
  }

  async close(): Promise<void> {
    for (const c of this.wss.clients) c.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  private accept(ws: WebSocket, name: string): void {
    ws.on('error', () => undefined);
    const codec = createCodec(codecForSubprotocol(ws.protocol) ?? 'msgpack');
    const nonce = crypto.getRandomValues(new Uint8Array(32));
    const encoder = new TextEncoder();
    const onFirst = (data: Buffer, isBinary: boolean): void => {
      ws.off('message', onFirst);
      let frame: RelayFrame;
      try {
        frame = decodeRelayFrame(isBinary ? new Uint8Array(data) : data.toString('utf8'), codec);
      } catch {
        return ws.close(1002, 'relay frame');
      }
      if (frame.type === 33) {
        if (!frame.key.verify(encoder.encode(proofText('register', name, nonce)), frame.signature)) return ws.close(4200, 'relay: registration proof refused');
        const spare: Spare = { ws, key: frame.key.toString(), protocol: ws.protocol };
        this.spares.push(spare);
        ws.once('close', () => this.spares.splice(this.spares.indexOf(spare) >>> 0, 1));
        ws.send(encodeRelayFrame({ type: 34, pingIntervalMs: 20_000 }, codec));
        return;
      }
      if (frame.type === 35) return this.connect(ws, codec, frame);
      ws.close(1002, 'expected REGISTER or CONNECT');
    };
    ws.on('message', onFirst);
    ws.send(encodeRelayFrame({ type: 32, version: RELAY_VERSION, nonce }, codec));
  }

  private connect(caller: WebSocket, codec: Codec, frame: Extract<RelayFrame, { type: 35 }>): void {
    const key = (this.options.route?.(frame.target) ?? frame.target).toString();
    const at = this.spares.map((s) => s.key === key && s.protocol === caller.protocol && s.ws.readyState === s.ws.OPEN).lastIndexOf(true);
    if (at < 0) return caller.close(4201, 'relay: unknown key');
    const spare = this.spares.splice(at, 1)[0]!;
    const host = spare.ws;
    const route = this.routes++;
    host.once('message', () => {
      // READY (not checked further): join the two, CONNECTED first.
      caller.send(encodeRelayFrame({ type: 38 }, codec));
      this.pipe(route, caller, host);
    });
    host.send(encodeRelayFrame({ type: 36, caller: frame.caller === null ? null : new PublicKey(frame.caller.key.bytes) }, codec));
  }

  private pipe(route: number, caller: WebSocket, host: WebSocket): void {
    const tap = this.options.tap;
    const copy = (from: WebSocket, to: WebSocket, direction: Direction): void => {
      let index = 0;
      from.on('message', (data: Buffer, isBinary: boolean) => {
        const out = tap === undefined ? data : tap(route, direction, index, data, isBinary);
        index++;
        if (out !== null && to.readyState === to.OPEN) to.send(out, { binary: isBinary });
      });
      from.once('close', (code: number, reason: Buffer) => {
        const text = reason.toString('utf8');
        this.closes.push({ route, from: direction === 'up' ? 'caller' : 'host', code, reason: text });
        if (to.readyState !== to.OPEN) return;
        if (code === 1005 || code === 1006) to.close(4204, 'relay: the other end was lost');
        else to.close(code, text);
      });
    };
    copy(caller, host, 'up');
    copy(host, caller, 'down');
  }
}
