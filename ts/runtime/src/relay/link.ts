/**
 * A connection to the relay before it carries wsp (PROTOCOL.md §11): reads and sends relay
 * frames in the codec the relay chose, bounds the wait for them, and reports how the connection
 * ended — or hands the socket on, untouched, once wsp may start: to the end-to-end handshake
 * (secure.ts) and then a {@link Peer}, or to a Peer at once when encryption is off.
 *
 * Everything runs inside the socket's events, synchronously. That is what makes the hand-over
 * lossless: `ws` delivers all the messages of one network read one after another without
 * returning to the event loop, so the host's HELLO can arrive in the same read as CONNECTED. The
 * caller's Peer is attached in the very event that delivered CONNECTED and sees the HELLO; a
 * promise continuation would run too late.
 */
import { CloseCode, closeSocket, normalizeCloseCode, shortenCloseReason } from '../close.js';
import { type Codec, codecForSubprotocol, createCodec } from '../codec.js';
import { type CloseEventLike, type MessageEventLike, ReadyState, type WebSocketLike, messageData, terminator } from '../socket.js';
import { type RelayFrame, RelayFrameError, decodeRelayFrame, encodeRelayFrame } from './frames.js';

/** How a link ended before it was handed on. */
export interface LinkEnd {
  readonly code: number;
  readonly reason: string;
  /** This side ended it (a timeout, a frame it could not read); otherwise the relay or the network did. */
  readonly local: boolean;
}

export interface LinkEvents {
  /** A relay frame arrived. */
  frame(frame: RelayFrame): void;
  /** The link ended (never called after {@link RelayLink.release} or {@link RelayLink.close}). */
  ended(end: LinkEnd): void;
}

/** Largest delay setTimeout honours (larger values fire at once). */
const MAX_TIMER = 0x7fff_ffff;

/** Node's `ws` emits the relay's pings as events; a browser WebSocket answers them unseen. */
interface PingEvents {
  on(event: 'ping', listener: () => void): unknown;
  off(event: 'ping', listener: () => void): unknown;
}

function pingEvents(socket: WebSocketLike): PingEvents | undefined {
  const s = socket as unknown as Partial<Record<'on' | 'off', unknown>>;
  return typeof s.on === 'function' && typeof s.off === 'function' ? (socket as unknown as PingEvents) : undefined;
}

export class RelayLink {
  private codecImpl: Codec | undefined;
  private state: 'connecting' | 'open' | 'done' = 'connecting';
  private deadlineTimer: ReturnType<typeof setTimeout> | undefined;
  /** The silence allowed before the relay is taken for gone; re-armed by whatever arrives. */
  private quiet: { ms: number; timer: ReturnType<typeof setTimeout> | undefined } | undefined;
  private readonly pings: PingEvents | undefined;

  constructor(
    private readonly socket: WebSocketLike,
    private readonly events: LinkEvents,
  ) {
    this.pings = pingEvents(socket);
    // Before any message can arrive: a browser would otherwise deliver binary frames as Blobs.
    socket.binaryType = 'arraybuffer';
    socket.addEventListener('message', this.onMessage);
    socket.addEventListener('close', this.onClose);
    // Never removed: an EventEmitter socket (ws) may emit 'error' at any time, and one without a
    // listener would crash the process. The close event that follows carries the code.
    socket.addEventListener('error', ignore);
    this.pings?.on('ping', this.onHeard);
    if (socket.readyState === ReadyState.OPEN) this.onOpen();
    else if (socket.readyState === ReadyState.CONNECTING) socket.addEventListener('open', this.onOpen);
    else queueMicrotask(() => this.end({ code: CloseCode.ABNORMAL, reason: 'socket already closed', local: false }));
  }

  /** Whether the link can tell that the relay went silent (it sees the relay's pings). */
  get hearsPings(): boolean {
    return this.pings !== undefined;
  }

  /** Sends a relay frame; false when the link is not open. */
  send(frame: RelayFrame): boolean {
    if (this.state !== 'open' || this.codecImpl === undefined || this.socket.readyState !== ReadyState.OPEN) return false;
    this.socket.send(encodeRelayFrame(frame, this.codecImpl));
    return true;
  }

  /** Ends the link with `code` unless it is handed on within `ms` (Infinity or 0: no limit). */
  deadline(ms: number, code: number, reason: string): void {
    this.clearDeadline();
    if (ms > 0 && Number.isFinite(ms)) {
      this.deadlineTimer = setTimeout(() => this.fail(code, reason), Math.min(ms, MAX_TIMER));
    }
  }

  clearDeadline(): void {
    if (this.deadlineTimer !== undefined) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = undefined;
  }

  /**
   * Takes the relay for gone when nothing at all (a frame or a ping) arrived for `ms`; the
   * socket is then dropped, not closed: a relay that is gone would never answer a close frame.
   */
  quietLimit(ms: number): void {
    this.stopQuiet();
    if (ms > 0 && Number.isFinite(ms)) {
      this.quiet = { ms, timer: undefined };
      this.onHeard();
    }
  }

  /** Stops listening and returns the socket, to attach a Peer to it in the same event. */
  release(): WebSocketLike {
    this.detach();
    return this.socket;
  }

  /** Ends the link from this side with `code`, and reports it. */
  fail(code: number, reason: string, drop = false): void {
    if (this.state === 'done') return;
    this.detach();
    const short = shortenCloseReason(reason);
    const terminate = drop ? terminator(this.socket) : undefined;
    if (terminate !== undefined) {
      try {
        terminate();
      } catch {
        closeSocket(this.socket, code, short);
      }
    } else closeSocket(this.socket, code, short);
    this.events.ended({ code, reason: short, local: true });
  }

  /** Closes the link without reporting it (its owner is closing). */
  close(code: number, reason: string): void {
    if (this.state === 'done') return;
    this.detach();
    closeSocket(this.socket, code, shortenCloseReason(reason));
  }

  private readonly onOpen = (): void => {
    this.socket.removeEventListener('open', this.onOpen);
    if (this.state !== 'connecting') return;
    const kind = codecForSubprotocol(this.socket.protocol);
    this.state = 'open';
    if (kind === undefined) return this.fail(CloseCode.PROTOCOL_ERROR, `unsupported subprotocol ${this.socket.protocol}`);
    this.codecImpl = createCodec(kind);
  };

  private readonly onMessage = (event: unknown): void => {
    if (this.state !== 'open' || this.codecImpl === undefined) return;
    this.onHeard();
    const data = messageData((event as MessageEventLike).data);
    if (data === undefined) return this.fail(CloseCode.UNSUPPORTED_DATA, 'unsupported message type');
    let frame: RelayFrame;
    try {
      frame = decodeRelayFrame(data, this.codecImpl);
    } catch (e) {
      if (e instanceof RelayFrameError) return this.fail(CloseCode.PROTOCOL_ERROR, e.message);
      throw e;
    }
    try {
      this.events.frame(frame);
    } catch {
      // A bug of ours, not the relay's: never let it escape into the event loop.
      this.fail(CloseCode.INTERNAL_ERROR, 'internal error');
    }
  };

  private readonly onClose = (event: unknown): void => {
    const e = event as Partial<CloseEventLike>;
    const code = typeof e.code === 'number' ? normalizeCloseCode(e.code) : CloseCode.ABNORMAL;
    this.end({ code, reason: typeof e.reason === 'string' ? e.reason : '', local: false });
  };

  private readonly onHeard = (): void => {
    const quiet = this.quiet;
    if (quiet === undefined) return;
    if (quiet.timer !== undefined) clearTimeout(quiet.timer);
    quiet.timer = setTimeout(() => this.fail(CloseCode.KEEPALIVE_TIMEOUT, 'the relay went silent', true), Math.min(quiet.ms, MAX_TIMER));
  };

  private end(end: LinkEnd): void {
    if (this.state === 'done') return;
    this.detach();
    this.events.ended(end);
  }

  private stopQuiet(): void {
    if (this.quiet?.timer !== undefined) clearTimeout(this.quiet.timer);
    this.quiet = undefined;
  }

  private detach(): void {
    this.state = 'done';
    this.clearDeadline();
    this.stopQuiet();
    this.pings?.off('ping', this.onHeard);
    this.socket.removeEventListener('open', this.onOpen);
    this.socket.removeEventListener('message', this.onMessage);
    this.socket.removeEventListener('close', this.onClose);
  }
}

function ignore(): void {
  // see the constructor
}
