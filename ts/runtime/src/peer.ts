/**
 * One wsp connection (PROTOCOL.md §2): symmetric, so the same class serves the client's link and
 * each connection a server accepts. It owns the handshake, the frame dispatch, the caller's call
 * table and the callee's running handlers, and it never lets a peer's bytes throw out of an event
 * handler: every malformed input ends in a close code (§7).
 */
import type { CallOptions, Caller, InputOptions, Items, StreamOptions, WspStream } from './caller.js';
import { CloseCode, browserCloseCode, normalizeCloseCode, shortenCloseReason } from './close.js';
import { type Codec, type CodecKind, DecodeFailure, codecForSubprotocol, createCodec, depthWithin } from './codec.js';
import { CloseError, RpcError, type WspError } from './errors.js';
import { type Frame, FrameType, MalformedFrame, PROTOCOL_VERSION, parseFrame } from './frames.js';
import { type IncomingCall, IncomingCalls, signalOf } from './incoming.js';
import { methodTooLong, unknownMethodMessage } from './peer-text.js';
import { InheritingCaller } from './inherit.js';
import { IncomingNotifications } from './notifications.js';
import { ReadGate } from './read-gate.js';
import { type CallContext, type NotifyHandler, ServiceRegistry, type ServiceHandlers } from './services.js';
import { type Stats, StatsCounter, utf8Length } from './stats.js';
import { OutgoingCalls, unencodable } from './outgoing.js';
import {
  type CloseEventLike,
  type MessageEventLike,
  ReadyState,
  type WebSocketLike,
  messageData,
  pausable,
  pingCapable,
  terminator,
  wireBytesSent,
} from './socket.js';
import { WriteWatch } from './write-watch.js';

export interface PeerLimits {
  /** Largest message accepted, in bytes; larger closes with 1009. Default 16 MiB. */
  maxMessageSize: number;
  /** Deepest nesting accepted in a payload value; deeper args fail with INVALID_ARGUMENTS. Default 128, as in the Rust runtime. */
  maxDepth: number;
  /** Incoming calls and streams running at once on this connection; more get OVERLOADED. Default 1024. */
  maxIncomingCalls: number;
  /** Time allowed for the peer's HELLO after the socket opened; 4001 after. Default 10 s. */
  handshakeTimeoutMs: number;
  /** WebSocket ping interval where the socket can ping (Node `ws`); 0 disables. Default 20 s. */
  keepAliveIntervalMs: number;
  /** Close with 4002 when nothing was received for this long (needs ping support); 0 disables. Default 60 s. */
  deadPeerTimeoutMs: number;
  /** Largest HELLO accepted from the peer (the whole message, in bytes); larger closes with 1009. Default 64 KiB. */
  maxHelloSize: number;
  /** Most services the peer's HELLO may list; more closes with 1009. Default 1024. */
  maxHelloServices: number;
  /**
   * Longest method name looked up, in UTF-8 bytes; a longer CALL/STREAM gets UNKNOWN_METHOD, a
   * longer NOTIFY is dropped (counted in invalidFrames). Default 256.
   */
  maxMethodLength: number;
  /**
   * The peer's notification handlers that may be running (not settled) at once. Beyond it a
   * socket that can pause reading (`ws`) stops reading until one settles (nothing is lost); any
   * other (a browser's) drops the notification and counts it in droppedNotifications. Default 256.
   */
  maxIncomingNotifications: number;
  /**
   * Close with 4003 when data queued for sending makes no progress for this long (the peer does
   * not read); the socket is dropped without a close handshake where it can be (`ws`). 0 disables.
   * Default 30 s.
   */
  writeTimeoutMs: number;
  /** Close with 4003, like writeTimeoutMs, when more than this many bytes are queued for sending; 0 disables. Default 64 MiB. */
  maxBufferedBytes: number;
  /**
   * Close with 4004 when a WebSocket message is not complete within this long of its first byte
   * (a fragmented message left unfinished, a frame trickled in). Enforced by WspServer, which sees
   * the raw frames; a Peer on another socket cannot. 0 disables. Default 60 s.
   */
  messageTimeoutMs: number;
}

export const DEFAULT_LIMITS: Readonly<PeerLimits> = {
  maxMessageSize: 16 * 1024 * 1024,
  maxDepth: 128,
  maxIncomingCalls: 1024,
  handshakeTimeoutMs: 10_000,
  keepAliveIntervalMs: 20_000,
  deadPeerTimeoutMs: 60_000,
  maxHelloSize: 64 * 1024,
  maxHelloServices: 1024,
  maxMethodLength: 256,
  maxIncomingNotifications: 256,
  writeTimeoutMs: 30_000,
  maxBufferedBytes: 64 * 1024 * 1024,
  messageTimeoutMs: 60_000,
};

/** An incoming call or notification as the wildcard observer sees it. */
export interface IncomingEvent {
  readonly kind: 'call' | 'stream' | 'notify';
  readonly method: string;
  readonly args: unknown;
  readonly connectionId: number;
  readonly data: unknown;
}

export type Observer = (event: IncomingEvent) => void;

export interface CloseInfo {
  readonly code: number;
  readonly reason: string;
}

export interface PeerOptions {
  /** This peer's own services (default: a new, empty registry). */
  services?: ServiceRegistry;
  /** Services looked up after the peer's own (a server shares its registry with all connections). */
  sharedServices?: ServiceRegistry;
  limits?: Partial<PeerLimits>;
  /** Deadline for unary calls without `timeoutMs`, in ms; Infinity for none. Default 30 s. */
  defaultTimeoutMs?: number;
  /** Default stream window (initial credit). Default 32. */
  streamWindow?: number;
  /** Sees every incoming CALL, STREAM and NOTIFY (also unknown methods). */
  observer?: Observer;
  /** Per-connection data shown to handlers as `ctx.data`. */
  data?: unknown;
  /** Where failures that are not sent to the peer go (handler crashes etc.). Default console.error. */
  log?: (error: unknown, what: string) => void;
  /** Called when the connection has closed (after every call has been failed). */
  onClose?: (info: CloseInfo) => void;
}

let nextConnectionId = 1;

type State = 'connecting' | 'open' | 'closing' | 'closed';

/** Largest delay setTimeout honours (larger values fire at once). */
const MAX_TIMER = 0x7fff_ffff;

/** The kind of method each opening frame calls (§2.3, §2.7). */
const KIND_OF_FRAME = { 1: 'unary', 2: 'stream', 10: 'upload', 11: 'duplex' } as const;

export class Peer implements Caller {
  /** Unique per process; shown to handlers and the observer. */
  readonly id: number = nextConnectionId++;
  /** This peer's services. */
  readonly services: ServiceRegistry;
  /** Resolves `{code, reason}` on a 1000 close; rejects with a {@link CloseError} on any other. */
  readonly closed: Promise<CloseInfo>;
  /** Resolves when the peer's HELLO arrived; rejects if the connection ends first. */
  readonly ready: Promise<void>;
  /** Per-connection data (from the server's accept hook). */
  readonly data: unknown;

  private readonly socket: WebSocketLike;
  private readonly opts: PeerOptions;
  private readonly limits: PeerLimits;
  private codecImpl: Codec | undefined;
  private state: State = 'connecting';
  private remoteHello: Record<string, string> | undefined;
  private readonly outgoing: OutgoingCalls;
  private readonly incoming: IncomingCalls;
  private readonly notifications: IncomingNotifications;
  /** Pauses reading while too many notifications run; undefined where the socket cannot pause. */
  private readonly gate: ReadGate | undefined;
  private readonly writeWatch: WriteWatch;
  private readonly counters = new StatsCounter();
  private handshakeTimer: ReturnType<typeof setTimeout> | undefined;
  private keepAliveTimer: ReturnType<typeof setInterval> | undefined;
  private lastReceived = Date.now();
  /** Set when this side started the close: its code/reason are what `closed` reports. */
  private localClose: { code: number; reason: string; byApplication: boolean } | undefined;
  private resolveClosed!: (info: CloseInfo) => void;
  private rejectClosed!: (error: CloseError) => void;
  private resolveReady!: () => void;
  private rejectReady!: (error: unknown) => void;
  private readonly onPong = (): void => {
    this.lastReceived = Date.now();
  };

  /**
   * Attaches a peer to a WebSocket that is open or still connecting (transport-agnostic: any
   * WHATWG-style WebSocket). Sends HELLO as soon as the socket is open.
   */
  constructor(socket: WebSocketLike, options: PeerOptions = {}) {
    this.socket = socket;
    this.opts = options;
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.services = options.services ?? new ServiceRegistry();
    this.data = options.data;
    this.closed = new Promise<CloseInfo>((resolve, reject) => {
      this.resolveClosed = resolve;
      this.rejectClosed = reject;
    });
    this.ready = new Promise<void>((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    // Nobody is obliged to observe these: an unobserved rejection must not crash Node.
    this.closed.catch(() => undefined);
    this.ready.catch(() => undefined);
    this.outgoing = new OutgoingCalls(
      {
        send: (frame) => this.sendFrame(frame),
        unavailable: (method) => this.unavailableError(method),
        codec: () => this.codecKind(),
        log: (e, what) => this.log(e, what),
        countCall: () => this.counters.add('callsSent'),
      },
      { timeoutMs: options.defaultTimeoutMs ?? 30_000, window: options.streamWindow ?? 32, maxDepth: this.limits.maxDepth },
    );
    this.incoming = new IncomingCalls({
      send: (frame) => this.sendFrame(frame),
      log: (e, what) => this.log(e, what),
      countSent: (kind) => this.counters.add(kind === 'reply' ? 'repliesSent' : 'errorsSent'),
    });
    this.notifications = new IncomingNotifications(Math.max(1, this.limits.maxIncomingNotifications), {
      log: (e, what) => this.log(e, what),
      settled: () => this.notificationSettled(),
    });
    const pause = pausable(socket);
    this.gate = pause === undefined ? undefined : new ReadGate(pause);
    this.writeWatch = new WriteWatch(
      socket,
      this.limits,
      wireBytesSent(socket) ?? (() => this.counters.counters.bytesSent),
      // Deferred: the send that breached the limit may be a call's, which is put in the call
      // table only after it was sent; failing every call right now would miss it.
      (reason) => queueMicrotask(() => this.beginClose(CloseCode.WRITE_TIMEOUT, reason, false, true)),
    );

    // §8: the handshake timeout covers the WebSocket upgrade (when attached to a connecting
    // socket) and the peer's HELLO.
    if (this.limits.handshakeTimeoutMs > 0) {
      this.handshakeTimer = setTimeout(() => {
        if (this.remoteHello === undefined) this.beginClose(CloseCode.HANDSHAKE_TIMEOUT, 'no HELLO within the handshake timeout', false);
      }, Math.min(this.limits.handshakeTimeoutMs, MAX_TIMER));
    }
    socket.binaryType = 'arraybuffer';
    socket.addEventListener('message', this.onMessage);
    socket.addEventListener('close', this.onSocketClose);
    socket.addEventListener('error', this.onSocketError);
    if (socket.readyState === ReadyState.OPEN) this.start();
    else if (socket.readyState === ReadyState.CONNECTING) socket.addEventListener('open', this.onOpen);
    else queueMicrotask(() => this.finish({ code: CloseCode.ABNORMAL, reason: 'socket already closed' }));
  }

  /** The negotiated codec (undefined until the socket is open). */
  get codec(): CodecKind | undefined {
    return this.codecImpl?.kind;
  }

  /** The peer's HELLO `services` map (name → fingerprint), once received. */
  get remoteServices(): Readonly<Record<string, string>> | undefined {
    return this.remoteHello;
  }

  /** Whether the connection is open (HELLO sent) and not closing. */
  get isOpen(): boolean {
    return this.state === 'open';
  }

  addService(name: string, handlers: ServiceHandlers, fingerprint = ''): void {
    this.services.add(name, handlers, fingerprint);
  }

  removeService(name: string): boolean {
    return this.services.remove(name);
  }

  clearServices(): void {
    this.services.clear();
  }

  stats(): Stats {
    return this.counters.snapshot(this.outgoing.size, this.incoming.size);
  }

  // ---- calling ---------------------------------------------------------------------------------

  call<T = unknown>(method: string, args: readonly unknown[], options: CallOptions<T> = {}): Promise<T> {
    return this.outgoing.call(method, args, options);
  }

  stream<T = unknown>(method: string, args: readonly unknown[], options: StreamOptions<T> = {}): WspStream<T> {
    return this.outgoing.stream(method, args, options);
  }

  upload<T = unknown>(method: string, args: readonly unknown[], items: Items, options: InputOptions<T> = {}): Promise<T> {
    return this.outgoing.upload(method, args, items, options);
  }

  duplex<T = unknown>(method: string, args: readonly unknown[], items: Items, options: InputOptions<T> = {}): WspStream<T> {
    return this.outgoing.duplex(method, args, items, options);
  }

  notify(method: string, args: readonly unknown[]): void {
    const unavailable = this.unavailableError(method);
    if (unavailable !== undefined) throw unavailable;
    try {
      this.sendFrame([FrameType.NOTIFY, method, args]);
    } catch (e) {
      throw unencodable(method, e);
    }
    this.counters.add('notificationsSent');
  }

  /**
   * Closes the connection (default 1000). Idempotent. Calls in flight fail with CLOSED at once;
   * running handlers are aborted. The reason is shortened to 123 UTF-8 bytes (§7).
   */
  close(code: number = CloseCode.NORMAL, reason = ''): Promise<CloseInfo> {
    this.beginClose(code, reason, true);
    return this.closed;
  }

  /**
   * Ends the connection because of a failure found below wsp by whoever owns the socket (the Node
   * server's message assembly timeout, 4004): sends `code` like close(), but it counts as a lost
   * connection, not an application close (calls fail with DISCONNECTED, `closed` rejects).
   */
  abort(code: number, reason: string): void {
    this.beginClose(code, reason, false);
  }

  // ---- internals: outgoing -------------------------------------------------------------------

  private codecKind(): CodecKind {
    return this.codecImpl?.kind ?? 'msgpack';
  }

  private unavailableError(method: string): WspError | undefined {
    if (this.state === 'open') return undefined;
    if (this.state === 'connecting') return new RpcError('NOT_CONNECTED', 'connection not open yet', { method });
    return this.localClose?.byApplication === true
      ? new RpcError('CLOSED', 'connection closed by the application', { method })
      : new RpcError('DISCONNECTED', 'connection lost', { method });
  }

  // ---- internals: the connection ---------------------------------------------------------------

  private readonly onOpen = (): void => {
    this.socket.removeEventListener('open', this.onOpen);
    try {
      this.start();
    } catch (e) {
      this.internalFailure(e);
    }
  };

  private start(): void {
    if (this.state !== 'connecting') return;
    const kind = codecForSubprotocol(this.socket.protocol);
    this.codecImpl = createCodec(kind ?? 'msgpack');
    this.state = 'open';
    this.counters.openedAt = Date.now();
    this.lastReceived = Date.now();
    if (kind === undefined) {
      this.beginClose(CloseCode.PROTOCOL_ERROR, `unsupported subprotocol ${this.socket.protocol}`, false);
      return;
    }
    // §2.1: HELLO first, without waiting for the peer's.
    this.sendFrame([
      FrameType.HELLO,
      PROTOCOL_VERSION,
      { ...this.opts.sharedServices?.fingerprints(), ...this.services.fingerprints() },
    ]);
    const pinger = pingCapable(this.socket);
    if (pinger !== undefined && this.limits.keepAliveIntervalMs > 0) {
      pinger.on('pong', this.onPong);
      this.keepAliveTimer = setInterval(() => {
        if (this.state !== 'open') return;
        const dead = this.limits.deadPeerTimeoutMs;
        // Also while reading is paused for notifications (nothing is read then, pongs included):
        // that back-pressure lasts at most the dead-peer timeout (§8).
        if (dead > 0 && Date.now() - this.lastReceived > dead) {
          this.beginClose(CloseCode.KEEPALIVE_TIMEOUT, 'keep-alive timeout', false);
          return;
        }
        try {
          pinger.ping();
        } catch {
          // the socket is closing; its close event follows
        }
      }, Math.min(this.limits.keepAliveIntervalMs, MAX_TIMER));
    }
  }

  /** Encodes and sends one frame. Returns false if the link is not open; throws if unencodable. */
  private sendFrame(frame: unknown[]): boolean {
    if (this.state !== 'open' || this.socket.readyState !== ReadyState.OPEN || this.codecImpl === undefined) return false;
    // Past a write limit the connection is as good as gone (its close follows in a microtask):
    // whatever else this tick wants to send must not grow the queue further.
    if (this.writeWatch.stalled) return false;
    const data = this.codecImpl.encode(frame);
    this.socket.send(data);
    this.counters.add('framesSent');
    this.counters.add('bytesSent', typeof data === 'string' ? utf8Length(data) : data.byteLength);
    this.writeWatch.sent();
    return true;
  }

  private readonly onMessage = (event: unknown): void => {
    // Reading is paused, but `ws` still delivers the rest of the chunk it was parsing.
    if (this.gate?.isPaused === true) return this.gate.hold(() => this.onMessage(event));
    try {
      this.handleMessage((event as MessageEventLike).data);
    } catch (e) {
      // A bug of ours, not the peer's: never let it escape into the event loop.
      this.internalFailure(e);
    }
  };

  private readonly onSocketError = (): void => {
    // The close event that follows carries the code; nothing to do, but a listener must exist so
    // that EventEmitter-based sockets do not treat the error as unhandled.
  };

  private readonly onSocketClose = (event: unknown): void => {
    try {
      const e = event as Partial<CloseEventLike>;
      // A browser peer sends 41xx for the 10xx codes it may not send; treat them alike (§7).
      const code = typeof e.code === 'number' ? normalizeCloseCode(e.code) : CloseCode.ABNORMAL;
      this.finish({ code, reason: typeof e.reason === 'string' ? e.reason : '' });
    } catch (e) {
      this.log(e, 'close handling failed');
    }
  };

  private internalFailure(e: unknown): void {
    this.log(e, 'wsp runtime error');
    this.beginClose(CloseCode.INTERNAL_ERROR, 'internal error', false);
  }

  private protocolViolation(code: number, reason: string): void {
    this.counters.add('invalidFrames');
    this.beginClose(code, reason, false);
  }

  private handleMessage(raw: unknown): void {
    if (this.state !== 'open' || this.codecImpl === undefined) return;
    const data = messageData(raw);
    if (data === undefined) return this.protocolViolation(CloseCode.UNSUPPORTED_DATA, 'unsupported message type');
    const size = typeof data === 'string' ? utf8Length(data) : data.byteLength;
    this.counters.add('framesReceived');
    this.counters.add('bytesReceived', size);
    this.lastReceived = Date.now();
    // The first message must be a HELLO; a huge one is refused before its services map is decoded.
    if (this.remoteHello === undefined && size > this.limits.maxHelloSize) {
      return this.protocolViolation(CloseCode.MESSAGE_TOO_BIG, 'HELLO too large');
    }
    if (size > this.limits.maxMessageSize) return this.protocolViolation(CloseCode.MESSAGE_TOO_BIG, 'message too big');
    let frame: Frame;
    try {
      frame = parseFrame(this.codecImpl.decode(data));
    } catch (e) {
      if (e instanceof DecodeFailure) {
        return this.protocolViolation(e.kind === 'kind' ? CloseCode.UNSUPPORTED_DATA : CloseCode.INVALID_PAYLOAD, e.message);
      }
      if (e instanceof MalformedFrame) return this.protocolViolation(CloseCode.PROTOCOL_ERROR, e.message);
      throw e;
    }
    if (this.remoteHello === undefined) {
      if (frame.type !== FrameType.HELLO) return this.protocolViolation(CloseCode.PROTOCOL_ERROR, 'first frame is not HELLO');
      if (frame.version !== PROTOCOL_VERSION) {
        return this.protocolViolation(CloseCode.UNSUPPORTED_VERSION, `unsupported protocol version ${frame.version}`);
      }
      if (Object.keys(frame.services).length > this.limits.maxHelloServices) {
        return this.protocolViolation(CloseCode.MESSAGE_TOO_BIG, 'HELLO too large');
      }
      this.remoteHello = frame.services;
      if (this.handshakeTimer !== undefined) clearTimeout(this.handshakeTimer);
      this.handshakeTimer = undefined;
      this.resolveReady();
      return;
    }
    this.dispatch(frame);
  }

  private dispatch(frame: Frame): void {
    switch (frame.type) {
      case FrameType.HELLO:
        return this.protocolViolation(CloseCode.PROTOCOL_ERROR, 'second HELLO');
      case FrameType.CALL:
      case FrameType.STREAM:
      case FrameType.UPLOAD:
      case FrameType.DUPLEX:
        return this.onCall(frame);
      case FrameType.NOTIFY:
        return this.onNotify(frame);
      case FrameType.REPLY:
      case FrameType.ERROR:
      case FrameType.ITEM:
      case FrameType.END: {
        if (frame.type === FrameType.REPLY) this.counters.add('repliesReceived');
        else if (frame.type === FrameType.ERROR) this.counters.add('errorsReceived');
        const violation = this.outgoing.receive(frame);
        if (violation !== undefined) this.protocolViolation(CloseCode.PROTOCOL_ERROR, violation);
        return;
      }
      case FrameType.CANCEL:
        return this.incoming.cancel(frame.id);
      case FrameType.CREDIT:
        return this.incoming.credit(frame.id, frame.n);
      case FrameType.PUSH:
      case FrameType.PUSH_END: {
        const violation =
          frame.type === FrameType.PUSH
            ? this.incoming.push(frame.id, frame.item, !depthWithin(frame.item, this.limits.maxDepth))
            : this.incoming.pushEnd(frame.id);
        if (violation !== undefined) this.protocolViolation(CloseCode.PROTOCOL_ERROR, violation);
        return;
      }
      case FrameType.PULL:
        return this.outgoing.pull(frame.id, frame.n);
    }
  }

  private onCall(frame: Extract<Frame, { type: 1 | 2 | 10 | 11 }>): void {
    const isStream = frame.type === FrameType.STREAM || frame.type === FrameType.DUPLEX;
    const kind = KIND_OF_FRAME[frame.type];
    this.counters.add('callsReceived');
    this.observe(isStream ? 'stream' : 'call', frame.method, frame.args);
    if (this.incoming.calls.has(frame.id)) {
      return this.protocolViolation(CloseCode.PROTOCOL_ERROR, `call id ${frame.id} already in flight`);
    }
    const def = this.lookup(frame.method);
    const reject = (code: number, message: string): void => {
      if (this.sendFrame([FrameType.ERROR, frame.id, code, message, null])) this.counters.add('errorsSent');
    };
    if (def === undefined || def.kind !== kind) {
      return reject(1, unknownMethodMessage(frame.method));
    }
    if (!Array.isArray(frame.args) || !depthWithin(frame.args, this.limits.maxDepth)) {
      return reject(2, Array.isArray(frame.args) ? 'arguments nested too deeply' : 'arguments are not an array');
    }
    if (this.incoming.size >= this.limits.maxIncomingCalls) return reject(5, 'too many calls in flight');
    if (frame.deadline === 0) return reject(3, 'deadline exceeded');
    const deadline = frame.deadline === null ? undefined : Date.now() + frame.deadline;
    const credit = isStream ? (frame as { credit: number }).credit : 0;
    const call = this.incoming.open(frame.id, deadline, credit, kind === 'upload' || kind === 'duplex');
    const ctx = this.context(frame.method, call, deadline);
    const args = frame.args as unknown[];
    const items = call.input as AsyncIterable<unknown>;
    let run: Promise<void>;
    switch (def.kind) {
      case 'stream':
        run = this.incoming.runStream(call, def.handler, args, ctx);
        break;
      case 'duplex': {
        const handler = def.handler;
        run = this.incoming.runStream(call, (a, c) => handler(a, items, c), args, ctx);
        break;
      }
      case 'upload': {
        const handler = def.handler;
        run = this.incoming.runUnary(call, (a, c) => handler(a, items, c), args, ctx);
        break;
      }
      default:
        run = this.incoming.runUnary(call, def.handler as (a: unknown[], c: CallContext) => unknown, args, ctx);
    }
    run.catch((e: unknown) => this.log(e, `running ${frame.method}`));
  }

  private onNotify(frame: Extract<Frame, { type: 3 }>): void {
    this.counters.add('notificationsReceived');
    this.observe('notify', frame.method, frame.args);
    const def = this.lookup(frame.method);
    // §2.3: a NOTIFY is never answered; unknown (or over-long) methods and bad arguments are
    // dropped and counted.
    if (def === undefined || def.kind !== 'notify' || !Array.isArray(frame.args) || !depthWithin(frame.args, this.limits.maxDepth)) {
      this.counters.add('invalidFrames');
      return;
    }
    this.startNotification(def.handler, frame.method, frame.args as unknown[]);
  }

  /** Runs a notification's handler, unless too many run already (§8). */
  private startNotification(handler: NotifyHandler, method: string, args: unknown[]): void {
    if (this.state !== 'open') return;
    if (this.notifications.full) {
      if (this.gate === undefined) {
        // A socket that always reads: the only bound left is to drop.
        this.counters.add('droppedNotifications');
        return;
      }
      // Back-pressure: read nothing more until a handler settles; this notification goes first then.
      this.gate.pause();
      this.gate.hold(() => this.startNotification(handler, method, args), true);
      return;
    }
    this.notifications.run(handler, args, (signal) => this.context(method, signal, undefined));
  }

  private notificationSettled(): void {
    const gate = this.gate;
    if (gate === undefined || !gate.isPaused || this.state !== 'open' || this.notifications.full) return;
    gate.resume();
  }

  /** The handler of `method`; none for a name over the length limit, which is not even looked up. */
  private lookup(method: string): ReturnType<ServiceRegistry['lookup']> {
    if (methodTooLong(method, this.limits.maxMethodLength)) return undefined;
    return this.services.lookup(method) ?? this.opts.sharedServices?.lookup(method);
  }

  /** The default deadline of calls made without `timeoutMs`. */
  private get defaultTimeoutMs(): number {
    return this.opts.defaultTimeoutMs ?? 30_000;
  }

  /**
   * The context of a handler: of a call (`source` is the call, whose `signal` is made when first
   * read: most handlers never read it, and an AbortController costs more than the rest of a small
   * call's handling) or of a notification (`source` is its signal). `signal` and `peer` are own
   * properties all the same, so that spreading the context copies them.
   */
  private context(method: string, source: IncomingCall | AbortSignal, deadline: number | undefined): CallContext {
    // The getters below have their own `this` (the context).
    const self = this;
    let inheriting: Caller | undefined;
    return {
      method,
      get signal(): AbortSignal {
        return source instanceof AbortSignal ? source : signalOf(source);
      },
      deadline,
      codec: this.codecKind(),
      connectionId: this.id,
      data: this.data,
      // Made when first read, like `signal`: calls through it inherit the served call's deadline
      // and cancellation (inherit.ts).
      get peer(): Caller {
        return (inheriting ??= new InheritingCaller(self, this, self.defaultTimeoutMs));
      },
    };
  }

  private observe(kind: IncomingEvent['kind'], method: string, args: unknown): void {
    const observer = this.opts.observer;
    if (observer === undefined) return;
    try {
      observer({ kind, method, args, connectionId: this.id, data: this.data });
    } catch (e) {
      this.log(e, 'observer failed');
    }
  }

  /**
   * Starts closing: fails calls and aborts handlers now, then closes the socket. With `terminate`
   * (a peer that does not read, which could never complete a close handshake) the socket is
   * dropped where it can be; `code` is then only what this side reports.
   */
  private beginClose(code: number, reason: string, byApplication: boolean, terminate = false): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    const short = shortenCloseReason(reason);
    this.localClose = { code, reason: short, byApplication };
    this.state = 'closing';
    this.failAll();
    this.writeWatch.stop();
    // The peer's close frame must still be read for the close handshake to finish.
    this.gate?.release();
    const drop = terminate ? terminator(this.socket) : undefined;
    if (drop !== undefined) {
      try {
        drop();
        return;
      } catch (e) {
        this.log(e, 'dropping the socket failed');
      }
    }
    try {
      this.socket.close(code, short);
    } catch {
      // Browsers only let applications send 1000 and 3000–4999: send the 41xx substitute of a
      // protocol code (§7), and 1000 (keeping the reason) for anything else.
      try {
        this.socket.close(browserCloseCode(code) ?? CloseCode.NORMAL, short);
      } catch (e) {
        this.log(e, 'closing the socket failed');
      }
    }
  }

  private failAll(): void {
    const byApp = this.localClose?.byApplication === true;
    this.outgoing.failAll((method) =>
      byApp
        ? new RpcError('CLOSED', 'connection closed by the application', { method })
        : new RpcError('DISCONNECTED', 'connection lost', { method }),
    );
    const reason = byApp ? new RpcError('CLOSED', 'connection closed') : new RpcError('DISCONNECTED', 'connection lost');
    this.incoming.abortAll(reason);
    this.notifications.abortAll(reason);
  }

  /** The socket is closed: settle everything exactly once. */
  private finish(event: CloseInfo): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.failAll();
    if (this.handshakeTimer !== undefined) clearTimeout(this.handshakeTimer);
    if (this.keepAliveTimer !== undefined) clearInterval(this.keepAliveTimer);
    this.writeWatch.stop();
    this.gate?.release();
    pingCapable(this.socket)?.off('pong', this.onPong);
    this.socket.removeEventListener('message', this.onMessage);
    this.socket.removeEventListener('open', this.onOpen);
    this.socket.removeEventListener('close', this.onSocketClose);
    // Keep the error listener: an EventEmitter socket may still emit 'error' after close.
    this.counters.closedAt = Date.now();
    // The code this side sent when it started the close; otherwise what the peer sent.
    const info: CloseInfo = this.localClose ?? { code: event.code, reason: event.reason };
    const result: CloseInfo = { code: info.code, reason: info.reason };
    this.rejectReady(new CloseError(result.code, result.reason));
    if (result.code === CloseCode.NORMAL) this.resolveClosed(result);
    else this.rejectClosed(new CloseError(result.code, result.reason));
    try {
      this.opts.onClose?.(result);
    } catch (e) {
      this.log(e, 'onClose callback failed');
    }
  }

  private log(error: unknown, what: string): void {
    const log = this.opts.log;
    if (log !== undefined) {
      try {
        log(error, what);
      } catch {
        // a failing logger must not take the connection down
      }
      return;
    }
    console.error(`wsp: ${what}:`, error);
  }
}
