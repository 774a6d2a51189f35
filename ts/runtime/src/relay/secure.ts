/**
 * End-to-end encryption of a relayed connection (PROTOCOL.md §12). Right after the hand-over,
 * before wsp's HELLO, the caller and the host run Noise `IK` (the caller proves its key) or `NK`
 * (an anonymous caller), keyed by the X25519 forms of their Ed25519 identities:
 *
 *     caller → host   [1, pattern] ‖ Noise message 1     (1 = IK, 2 = NK; one binary message)
 *     host   → caller Noise message 2                    (one binary message, empty payload)
 *
 * The relay passes both on like any other message. After them every data message is a Noise
 * transport message, and {@link SecureSocket} — a WebSocket to the Peer above, the relayed
 * socket below — seals and opens them, so the Peer runs unchanged.
 *
 * Like the relay link (link.ts), everything runs inside the socket's events: the side that
 * finishes the handshake attaches its Peer in the very event that finished it, so the other
 * end's HELLO, which may arrive in the same read, is not lost.
 */
import { CloseCode, closeSocket, normalizeCloseCode, shortenCloseReason } from '../close.js';
import { RelayError } from '../errors.js';
import { type CloseEventLike, type MessageEventLike, ReadyState, type WebSocketLike, messageData } from '../socket.js';
import { PublicKey, type Signer } from './identity.js';
import { CipherState, type DhKeyPair, HandshakeState, NOISE_MAX_MESSAGE, type NoisePattern, TAG_LENGTH } from './noise.js';

/** The prologue both ends mix in: a handshake made for anything else does not complete. */
export const E2E_PROLOGUE = new TextEncoder().encode('wsp-e2e/1');
/** First byte of the caller's handshake message. */
const VERSION = 1;
/** Second byte: which pattern follows. */
const PATTERN_BYTE: Readonly<Record<NoisePattern, number>> = { IK: 1, NK: 2 };
/** Most frame bytes per transport message: 65,535 − 16 for the tag − 1 for the flags. */
export const E2E_CHUNK = NOISE_MAX_MESSAGE - TAG_LENGTH - 1;
/** Flag bits, in the last byte of every transport message's plaintext. */
const FINAL = 1;
const TEXT = 2;

const EMPTY = new Uint8Array(0);
const encoder = new TextEncoder();
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Largest delay setTimeout honours (larger values fire at once). */
const MAX_TIMER = 0x7fff_ffff;

/** A step on a socket that its owner may have to close before it ends by itself. */
export interface Closable {
  close(code: number, reason: string): void;
}

export interface HandshakeOptions {
  /** The handshake must end within this (ms; 0 or Infinity: no limit); then 4001. */
  readonly timeoutMs: number;
  /** The largest frame the {@link SecureSocket} joins (the Peer's maxMessageSize); larger: 1009. */
  readonly maxMessageSize: number;
  /**
   * The handshake failed: this side found it (it closed with 4210, or 4001 on the timeout), or
   * the other end or the relay closed the connection first (its code and reason).
   */
  failed(error: RelayError): void;
}

/** The static key pair of `signer` as Noise uses it; undefined when it cannot do X25519. */
function staticKey(signer: Signer): DhKeyPair | undefined {
  const publicKey = signer.publicKey.toX25519();
  if (publicKey === undefined || signer.dh === undefined) return undefined;
  return { publicKey, dh: (theirs) => (signer.dh as (p: Uint8Array) => Uint8Array).call(signer, theirs) };
}

/** Why `signer` cannot serve or prove its key on an encrypted connection; undefined if it can. */
export function cannotEncrypt(signer: Signer): string | undefined {
  if (signer.dh === undefined) return 'its signer has no dh() (X25519), which end-to-end encryption needs';
  if (signer.publicKey.toX25519() === undefined) return 'its public key is not a valid Ed25519 key';
  return undefined;
}

/**
 * Caller side: sends the first handshake message on `socket` (open, just joined to the target)
 * now, and calls `done` with the encrypted socket once the target proved it holds `target`'s
 * secret key. Proves `identity` (IK) when given, else anonymous (NK).
 */
export function initiate(
  socket: WebSocketLike,
  target: PublicKey,
  identity: Signer | undefined,
  options: HandshakeOptions & { done(secure: SecureSocket): void },
): Closable {
  const exchange = new Exchange(socket, options);
  const rs = target.toX25519();
  const s = identity === undefined ? undefined : staticKey(identity);
  if (rs === undefined || (identity !== undefined && s === undefined)) {
    exchange.fail(CloseCode.E2E_HANDSHAKE_FAILED, rs === undefined ? 'e2e: the target key is not a valid key' : 'e2e: the caller key cannot encrypt');
    return exchange;
  }
  const pattern: NoisePattern = s === undefined ? 'NK' : 'IK';
  let hs: HandshakeState;
  let first: Uint8Array;
  try {
    hs = new HandshakeState({ pattern, initiator: true, prologue: E2E_PROLOGUE, rs, ...(s === undefined ? {} : { s }) });
    first = hs.writeMessage(identity === undefined ? EMPTY : identity.publicKey.bytes);
  } catch {
    exchange.fail(CloseCode.E2E_HANDSHAKE_FAILED, 'e2e: the handshake could not be made');
    return exchange;
  }
  const message = new Uint8Array(first.length + 2);
  message[0] = VERSION;
  message[1] = PATTERN_BYTE[pattern];
  message.set(first, 2);
  exchange.start((data) => {
    try {
      hs.readMessage(data);
    } catch {
      // Only the holder of the target's secret key can answer: this is not the target.
      return exchange.fail(CloseCode.E2E_HANDSHAKE_FAILED, 'e2e: the target did not prove its key');
    }
    exchange.finish();
    const secure = new SecureSocket(socket, hs.transport!, options.maxMessageSize);
    options.done(secure);
  });
  try {
    socket.send(message);
  } catch {
    // The socket is closing: its close event reports it.
  }
  return exchange;
}

/**
 * Host side: answers the caller's handshake on the handed-over `socket` as `identity`, and calls
 * `done` with the encrypted socket and the caller's key as the handshake proved it (null: an
 * anonymous caller). A handshake that fails closes the connection with 4210.
 */
export function respond(
  socket: WebSocketLike,
  identity: Signer,
  options: HandshakeOptions & { done(secure: SecureSocket, caller: PublicKey | null): void },
): Closable {
  const exchange = new Exchange(socket, options);
  const s = staticKey(identity);
  if (s === undefined) {
    exchange.fail(CloseCode.E2E_HANDSHAKE_FAILED, 'e2e: the host key cannot encrypt');
    return exchange;
  }
  exchange.start((data) => {
    const answered = answer(data, s);
    if (typeof answered === 'string') return exchange.fail(CloseCode.E2E_HANDSHAKE_FAILED, answered);
    const { hs, caller } = answered;
    let second: Uint8Array;
    try {
      second = hs.writeMessage(EMPTY);
    } catch {
      return exchange.fail(CloseCode.E2E_HANDSHAKE_FAILED, 'e2e: the handshake could not be answered');
    }
    exchange.finish();
    try {
      socket.send(second);
    } catch {
      // closing; the Peer below sees the close event
    }
    // The Peer's HELLO, the host's first transport message, follows in this same event.
    options.done(new SecureSocket(socket, hs.transport!, options.maxMessageSize), caller);
  });
  return exchange;
}

/** Reads the caller's first message: the handshake ready to answer and the caller's key, or why not. */
function answer(first: Uint8Array, s: DhKeyPair): { hs: HandshakeState; caller: PublicKey | null } | string {
  if (first.length < 2 || first[0] !== VERSION) return "e2e: expected the caller's handshake (version 1)";
  const pattern: NoisePattern | undefined = first[1] === PATTERN_BYTE.IK ? 'IK' : first[1] === PATTERN_BYTE.NK ? 'NK' : undefined;
  if (pattern === undefined) return 'e2e: unknown handshake pattern';
  const hs = new HandshakeState({ pattern, initiator: false, prologue: E2E_PROLOGUE, s });
  let payload: Uint8Array;
  try {
    payload = hs.readMessage(first.subarray(2));
  } catch {
    return "e2e: the caller's handshake failed";
  }
  if (pattern === 'NK') return { hs, caller: null };
  // IK: the payload names the caller's Ed25519 key; its X25519 form must be the static key the
  // handshake just authenticated.
  if (payload.length !== 32) return "e2e: the caller's handshake names no key";
  const caller = new PublicKey(payload);
  const expected = caller.toX25519();
  const proven = hs.remoteStatic;
  if (expected === undefined || proven === undefined || !sameBytes(expected, proven)) return "e2e: the caller's key does not match its handshake";
  return { hs, caller };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

/** The handshake's hold on a socket: one awaited message, a time limit, the close event. */
class Exchange implements Closable {
  private state: 'waiting' | 'done' = 'waiting';
  private timer: ReturnType<typeof setTimeout> | undefined;
  private onData: ((data: Uint8Array) => void) | undefined;

  constructor(
    private readonly socket: WebSocketLike,
    private readonly options: HandshakeOptions,
  ) {
    socket.addEventListener('message', this.onMessage);
    socket.addEventListener('close', this.onClose);
    const ms = options.timeoutMs;
    if (ms > 0 && Number.isFinite(ms)) {
      this.timer = setTimeout(() => this.fail(CloseCode.HANDSHAKE_TIMEOUT, 'e2e: no handshake within the handshake timeout'), Math.min(ms, MAX_TIMER));
    }
  }

  /** Hands the next message (a binary one of handshake size) to `onData`. */
  start(onData: (data: Uint8Array) => void): void {
    this.onData = onData;
  }

  /** The handshake is through: stop listening; the socket goes on to a SecureSocket. */
  finish(): void {
    this.detach();
  }

  /** Ends the handshake from this side with `code` and reports it. */
  fail(code: number, reason: string): void {
    if (this.state === 'done') return;
    this.detach();
    const short = shortenCloseReason(reason);
    closeSocket(this.socket, code, short);
    // Reported after the current event (the caller of initiate/respond gets the handle first).
    queueMicrotask(() => this.options.failed(new RelayError(code, short)));
  }

  /** Closes without reporting (the owner is closing). */
  close(code: number, reason: string): void {
    if (this.state === 'done') return;
    this.detach();
    closeSocket(this.socket, code, shortenCloseReason(reason));
  }

  private readonly onMessage = (event: unknown): void => {
    if (this.state === 'done') return;
    const data = messageData((event as MessageEventLike).data);
    if (!(data instanceof Uint8Array) || data.length > NOISE_MAX_MESSAGE + 2 || this.onData === undefined) {
      return this.fail(CloseCode.E2E_HANDSHAKE_FAILED, 'e2e: expected a handshake message');
    }
    try {
      this.onData(data);
    } catch {
      // A bug of ours, not the peer's: never let it escape into the event loop.
      this.fail(CloseCode.INTERNAL_ERROR, 'internal error');
    }
  };

  private readonly onClose = (event: unknown): void => {
    if (this.state === 'done') return;
    this.detach();
    const e = event as Partial<CloseEventLike>;
    const code = typeof e.code === 'number' ? normalizeCloseCode(e.code) : CloseCode.ABNORMAL;
    this.options.failed(new RelayError(code, typeof e.reason === 'string' ? e.reason : ''));
  };

  private detach(): void {
    this.state = 'done';
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.socket.removeEventListener('message', this.onMessage);
    this.socket.removeEventListener('close', this.onClose);
  }
}

type EventType = 'open' | 'message' | 'close' | 'error';
type Listener = (event: unknown) => void;

/**
 * A relayed WebSocket whose data messages are Noise transport messages (PROTOCOL.md §12.2), seen
 * by the Peer above as a WebSocket of plain frames. Each frame leaves as one or more binary
 * messages, each sealing up to 65,518 bytes of it followed by one flag byte (bit 0: the frame's
 * last chunk; bit 1: a text frame); arriving chunks are joined, counting against the largest
 * message accepted (1009 beyond it). A message that fails authentication — changed, repeated,
 * reordered, cut — a flag byte with other bits, a text frame that is not UTF-8, or a text
 * WebSocket message ends the connection with 4211 before anything of it is delivered. Pings,
 * pongs and closes pass in the clear: the relay needs the close code to pass it on.
 *
 * What the socket below can do beyond the WHATWG API (`ws`: ping, pong events, pause/resume,
 * terminate) it can do here too, so keep-alive and back-pressure work as on any socket.
 */
export class SecureSocket implements WebSocketLike {
  /** Delivered frames are `Uint8Array` (binary) or `string` (text), whatever this says. */
  binaryType = 'arraybuffer';
  /**
   * A fault found in what arrived (4211, or 1009): the owner ends the connection with it (the
   * Peer's abort). Without one, the socket is closed with the code.
   */
  onFault: ((code: number, reason: string) => void) | undefined;
  // `ws` capabilities, present when the socket below has them (see socket.ts).
  readonly ping?: () => void;
  readonly pause?: () => void;
  readonly resume?: () => void;
  readonly terminate?: () => void;
  readonly on?: (event: string, listener: (...args: unknown[]) => void) => unknown;
  readonly off?: (event: string, listener: (...args: unknown[]) => void) => unknown;

  readonly #inner: WebSocketLike;
  readonly #send: CipherState;
  readonly #receive: CipherState;
  readonly #maxMessageSize: number;
  readonly #listeners: Record<EventType, Set<Listener>> = { open: new Set(), message: new Set(), close: new Set(), error: new Set() };
  /** Chunks of a frame being joined, and their size so far. */
  #joining: Uint8Array[] = [];
  #joined = 0;
  #failed = false;
  #wireBytesSent = 0;

  constructor(inner: WebSocketLike, ciphers: { readonly send: CipherState; readonly receive: CipherState }, maxMessageSize: number) {
    this.#inner = inner;
    this.#send = ciphers.send;
    this.#receive = ciphers.receive;
    this.#maxMessageSize = maxMessageSize;
    const s = inner as unknown as Record<string, unknown>;
    const own = this as unknown as Record<string, unknown>;
    for (const name of ['ping', 'pause', 'resume', 'terminate', 'on', 'off']) {
      const f = s[name];
      if (typeof f === 'function') own[name] = (...args: unknown[]) => (f as (...a: unknown[]) => unknown).apply(inner, args);
    }
    inner.addEventListener('message', this.#onMessage);
    inner.addEventListener('close', this.#onClose);
    // Kept for good, like every socket's error listener here: `ws` may emit 'error' at any time.
    inner.addEventListener('error', this.#onError);
  }

  get readyState(): number {
    return this.#inner.readyState;
  }

  get protocol(): string {
    return this.#inner.protocol;
  }

  /** What the socket below has queued: sealed bytes, tags and flags included. */
  get bufferedAmount(): number {
    return this.#inner.bufferedAmount;
  }

  /** Sealed bytes handed to the socket below so far (what {@link bufferedAmount} counts in). */
  get wireBytesSent(): number {
    return this.#wireBytesSent;
  }

  /** Seals the frame `data` (text for a string) into transport messages and sends them. */
  send(data: Uint8Array | string): void {
    const text = typeof data === 'string';
    const frame = text ? encoder.encode(data) : data;
    const flags = text ? TEXT : 0;
    let at = 0;
    do {
      const n = Math.min(E2E_CHUNK, frame.length - at);
      const last = at + n === frame.length;
      const plain = new Uint8Array(n + 1);
      plain.set(frame.subarray(at, at + n));
      plain[n] = flags | (last ? FINAL : 0);
      const sealed = this.#send.encryptWithAd(EMPTY, plain);
      this.#inner.send(sealed);
      this.#wireBytesSent += sealed.length;
      at += n;
    } while (at < frame.length);
  }

  close(code?: number, reason?: string): void {
    this.#inner.close(code, reason);
  }

  addEventListener(type: EventType, listener: Listener): void {
    this.#listeners[type].add(listener);
  }

  removeEventListener(type: EventType, listener: Listener): void {
    this.#listeners[type].delete(listener);
  }

  #emit(type: EventType, event: unknown): void {
    for (const l of [...this.#listeners[type]]) l(event);
  }

  readonly #onMessage = (event: unknown): void => {
    if (this.#failed) return;
    const data = messageData((event as MessageEventLike).data);
    // Only binary messages carry encrypted frames.
    if (!(data instanceof Uint8Array)) return this.#fault(CloseCode.E2E_BAD_FRAME, 'e2e: a text message on an encrypted connection');
    if (data.length > NOISE_MAX_MESSAGE || data.length < TAG_LENGTH + 1) return this.#fault(CloseCode.E2E_BAD_FRAME, 'e2e: a message failed authentication');
    let plain: Uint8Array;
    try {
      plain = this.#receive.decryptWithAd(EMPTY, data);
    } catch {
      return this.#fault(CloseCode.E2E_BAD_FRAME, 'e2e: a message failed authentication');
    }
    const flags = plain[plain.length - 1] ?? 0;
    if ((flags & ~(FINAL | TEXT)) !== 0) return this.#fault(CloseCode.E2E_BAD_FRAME, 'e2e: a message broke the framing');
    const chunk = plain.subarray(0, plain.length - 1);
    this.#joined += chunk.length;
    if (this.#joined > this.#maxMessageSize) return this.#fault(CloseCode.MESSAGE_TOO_BIG, 'message too big');
    this.#joining.push(chunk);
    if ((flags & FINAL) === 0) return;
    const frame = this.#joining.length === 1 ? chunk : join(this.#joining, this.#joined);
    this.#joining = [];
    this.#joined = 0;
    if ((flags & TEXT) === 0) return this.#emit('message', { data: frame });
    let text: string;
    try {
      text = utf8.decode(frame);
    } catch {
      return this.#fault(CloseCode.E2E_BAD_FRAME, 'e2e: a text frame that is not UTF-8');
    }
    this.#emit('message', { data: text });
  };

  readonly #onClose = (event: unknown): void => {
    this.#joining = [];
    this.#emit('close', event);
  };

  readonly #onError = (event: unknown): void => {
    this.#emit('error', event);
  };

  #fault(code: number, reason: string): void {
    this.#failed = true;
    this.#joining = [];
    this.#joined = 0;
    if (this.onFault !== undefined) return this.onFault(code, reason);
    if (this.#inner.readyState === ReadyState.OPEN || this.#inner.readyState === ReadyState.CONNECTING) closeSocket(this.#inner, code, reason);
  }
}

function join(chunks: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}
