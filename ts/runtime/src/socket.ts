/**
 * The WebSocket surface the runtime needs: the WHATWG WebSocket API, which browsers, Node ≥ 22
 * (`globalThis.WebSocket`) and the `ws` package all implement. Nothing Node-specific here.
 */

export const ReadyState = { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 } as const;

export interface MessageEventLike {
  readonly data: unknown;
}

export interface CloseEventLike {
  readonly code: number;
  readonly reason: string;
}

/** A WebSocket as the runtime uses it (structural; DOM WebSocket and ws.WebSocket both fit). */
export interface WebSocketLike {
  readonly readyState: number;
  /** The negotiated subprotocol ('' when none). */
  readonly protocol: string;
  binaryType: string;
  readonly bufferedAmount: number;
  send(data: Uint8Array | string): void;
  close(code?: number, reason?: string): void;
  // Listeners take `unknown` so that both the DOM's and ws's overloads accept them; the runtime
  // checks the event shapes it reads.
  addEventListener(type: 'open' | 'message' | 'close' | 'error', listener: (event: unknown) => void): void;
  removeEventListener(type: 'open' | 'message' | 'close' | 'error', listener: (event: unknown) => void): void;
}

/** A WebSocket constructor (e.g. `globalThis.WebSocket`, or `WebSocket` from the `ws` package). */
export type WebSocketConstructorLike = new (url: string, protocols?: string | string[]) => WebSocketLike;

/**
 * Optional Node-only capabilities (the `ws` package): WebSocket ping frames for keep-alive (§8).
 * Browsers answer pings but cannot send them or see pongs, so there keep-alive is driven by the server.
 */
export interface PingCapable {
  ping(): void;
  on(event: 'pong', listener: () => void): unknown;
  off(event: 'pong', listener: () => void): unknown;
}

export function pingCapable(socket: WebSocketLike): PingCapable | undefined {
  const s = socket as unknown as Partial<Record<'ping' | 'on' | 'off', unknown>>;
  return typeof s.ping === 'function' && typeof s.on === 'function' && typeof s.off === 'function'
    ? (socket as unknown as PingCapable)
    : undefined;
}

/**
 * Optional Node-only capability (`ws`): stop and restart reading from the network. Used for
 * back-pressure on the peer's notifications (§8); a browser WebSocket always reads.
 */
export interface Pausable {
  pause(): void;
  resume(): void;
}

export function pausable(socket: WebSocketLike): Pausable | undefined {
  const s = socket as unknown as Partial<Record<'pause' | 'resume', unknown>>;
  return typeof s.pause === 'function' && typeof s.resume === 'function' ? (socket as unknown as Pausable) : undefined;
}

/**
 * Optional Node-only capability (`ws`): drop the connection without a close handshake, for a peer
 * that does not read (it would never see our close frame, and close() would wait for its answer).
 */
export function terminator(socket: WebSocketLike): (() => void) | undefined {
  const s = socket as unknown as { terminate?: unknown };
  return typeof s.terminate === 'function' ? () => (socket as unknown as { terminate(): void }).terminate() : undefined;
}

/**
 * Optional: a socket that sends more bytes than the frames it is given (an end-to-end encrypted
 * one adds a tag and a flag byte per message) counts what it handed on, which is what its
 * `bufferedAmount` is made of; the write watch compares the two.
 */
export function wireBytesSent(socket: WebSocketLike): (() => number) | undefined {
  const s = socket as unknown as { wireBytesSent?: unknown };
  return typeof s.wireBytesSent === 'number' ? () => (socket as unknown as { wireBytesSent: number }).wireBytesSent : undefined;
}

/** The bytes or text of a message event, whatever binaryType the implementation used. */
export function messageData(data: unknown): Uint8Array | string | undefined {
  if (typeof data === 'string') return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  // ws with binaryType 'fragments' gives an array of Buffers; we never set it, but be total.
  if (Array.isArray(data) && data.every((d) => d instanceof Uint8Array)) {
    const parts = data as Uint8Array[];
    const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.byteLength;
    }
    return out;
  }
  return undefined;
}
