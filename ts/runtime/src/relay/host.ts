/**
 * Serving through a relay (PROTOCOL.md §11): a host that cannot accept connections — a browser
 * tab, a device behind NAT — keeps a few *spare* connections registered at a relay under its
 * public key, and serves wsp on each one the relay hands over to a caller.
 *
 * Each spare slot lives over and over: open, register, wait, hand over, open a replacement at
 * once; after a failure (refused, lost, the relay away) wait per the reconnect policy first, so
 * the host re-registers by itself when the relay comes back. A handed-over connection becomes a
 * {@link Peer} exactly as a connection a {@link WspServer} accepts does — the host's services
 * shared with it, the caller's key as its data — so handlers and generated code cannot tell the
 * two apart. Every relayed connection is encrypted end to end by default (PROTOCOL.md §12): the
 * caller's handshake is answered on the handed-over spare before wsp starts, and the caller's key
 * is then the one the handshake proved. Browser-safe: the socket is any WHATWG WebSocket (the
 * global one by default; on Node pass `WebSocket` from `@wsp/runtime/node`).
 */
import { type ReconnectOptions, reconnectDelay, reconnectPolicy } from '../backoff.js';
import { CloseCode } from '../close.js';
import { type CodecKind, SUBPROTOCOL } from '../codec.js';
import { RelayError, RpcError, type WspError } from '../errors.js';
import { DEFAULT_LIMITS, Peer, type PeerOptions } from '../peer.js';
import { ServiceRegistry, type ServiceHandlers } from '../services.js';
import type { WebSocketConstructorLike, WebSocketLike } from '../socket.js';
import { type Stats, StatsCounter, addStats } from '../stats.js';
import type { PublicKey, Signer } from './identity.js';
import { relayName } from './proof.js';
import { type Closable, type SecureSocket, cannotEncrypt, respond } from './secure.js';
import { registerSpare } from './spare.js';

/**
 * Who is at the other end of a relayed connection, as its handlers see it in `ctx.data` (and
 * `peer.data`): on a host, the caller; on a caller (`Client.viaRelay`), the target.
 */
export interface RelayPeer {
  /**
   * The other end's public key: on an encrypted connection as the end-to-end handshake proved it;
   * on a plain one as the relay verified it (a caller's target is the key it asked for). Null for
   * an anonymous caller.
   */
  readonly key: PublicKey | null;
  /** Whether the connection is encrypted end to end (PROTOCOL.md §12). */
  readonly encrypted: boolean;
}

export interface RelayHostOptions extends Omit<PeerOptions, 'services' | 'sharedServices' | 'data' | 'onClose'> {
  /** Spare connections kept registered (default 2, at least 1): callers arriving together each find one. */
  spares?: number;
  /** The spares' codec (default 'msgpack'); the relay joins callers only to spares of their own codec. */
  codec?: CodecKind;
  /** WebSocket constructor; default `globalThis.WebSocket`. On Node pass `WebSocket` from `@wsp/runtime/node`. */
  WebSocket?: WebSocketConstructorLike;
  /** Full control over socket creation (e.g. to pass `ws` options); overrides `WebSocket`. */
  createWebSocket?: (url: string, protocols: string[]) => WebSocketLike;
  /** When a spare is re-opened after a failure; `false`: never (the slot stays empty). After a hand-over the replacement opens at once. */
  reconnect?: boolean | ReconnectOptions;
  /**
   * End-to-end encryption of every relayed connection (PROTOCOL.md §12), default true: callers
   * must encrypt too (one that does not is refused with 4210). `false`: plain wsp, which the relay
   * can read — for callers that do not encrypt.
   */
  encrypt?: boolean;
  /** Called for each relayed connection with its peer and who called. */
  onConnection?: (peer: Peer, caller: RelayPeer) => void;
  /** How long close() waits for callers to answer the close frame, ms. Default 2000. */
  closeTimeoutMs?: number;
}

/** One spare slot: its attempts since the last registration, and what waits on its first outcome. */
interface Slot {
  attempts: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  first: { resolve(): void; reject(error: WspError): void } | undefined;
}

interface SpareWaiter {
  readonly count: number;
  resolve(): void;
  reject(error: RpcError): void;
}

export class RelayHost {
  /** Services offered on every relayed connection (each may add its own via its Peer). */
  readonly services = new ServiceRegistry();
  /** The key callers name this host by. */
  readonly publicKey: PublicKey;
  private readonly options: RelayHostOptions;
  private readonly name: string;
  private readonly policy: Required<ReconnectOptions>;
  private readonly slots: Slot[] = [];
  /** Idle spares, and handed-over ones while their end-to-end handshake runs. */
  private readonly links = new Set<Closable>();
  private readonly peers = new Set<Peer>();
  private readonly waiters = new Set<SpareWaiter>();
  private idle = 0;
  private handoverCount = 0;
  private started: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private pastStats: Stats = new StatsCounter().snapshot(0, 0);

  /**
   * A host serving under `identity`'s key through the relay at `url` (e.g.
   * `wss://relay.example.com/`). Does not connect: add services, then {@link start}.
   */
  constructor(
    readonly url: string,
    private readonly identity: Signer,
    options: RelayHostOptions = {},
  ) {
    this.options = options;
    this.publicKey = identity.publicKey;
    this.name = relayName(url); // throws TypeError for a URL that cannot be parsed
    this.policy = reconnectPolicy(options.reconnect);
    const why = options.encrypt === false ? undefined : cannotEncrypt(identity);
    if (why !== undefined) throw new TypeError(`the host identity cannot encrypt end to end: ${why} (or pass encrypt: false)`);
    if (options.createWebSocket === undefined && options.WebSocket === undefined && globalThis.WebSocket === undefined) {
      throw new TypeError('no WebSocket implementation: pass { WebSocket } (e.g. from "@wsp/runtime/node")');
    }
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

  /**
   * Registers the first spare, then opens the others. Resolves once the first is registered;
   * rejects with a {@link RelayError} when it cannot be (the relay unreachable, the proof refused:
   * `closeCode` 4200) — the host is then closed. Later failures are retried per the reconnect
   * policy. Idempotent.
   */
  start(): Promise<void> {
    if (this.closing !== undefined) return Promise.reject(new RpcError('CLOSED', 'relay host closed'));
    this.started ??= new Promise<void>((resolve, reject) => {
      const first = this.newSlot();
      first.first = {
        resolve: () => {
          resolve();
          for (let i = 1; i < this.spareCount; i++) this.openSpare(this.newSlot());
        },
        reject: (error) => {
          reject(error);
          void this.close();
        },
      };
      this.openSpare(first);
    });
    return this.started;
  }

  /** Spares registered at the relay and idle right now. */
  get idleSpares(): number {
    return this.idle;
  }

  /**
   * Resolves once `count` spares (default: all of them) are registered and idle at the same time
   * — after start(), or to see the host re-registered after the relay was away. Rejects with
   * CLOSED when the host closes first.
   */
  waitForSpares(count: number = this.spareCount): Promise<void> {
    if (this.closing !== undefined) return Promise.reject(new RpcError('CLOSED', 'relay host closed'));
    if (this.idle >= count) return Promise.resolve();
    return new Promise<void>((resolve, reject) => this.waiters.add({ count, resolve, reject }));
  }

  /** Spares handed over to callers so far. */
  get handovers(): number {
    return this.handoverCount;
  }

  /** The relayed connections open now, one per caller. */
  get connections(): ReadonlySet<Peer> {
    return new Set(this.peers);
  }

  /** Statistics summed over all relayed connections, past and present. */
  stats(): Stats {
    let total = this.pastStats;
    for (const peer of this.peers) total = addStats(total, peer.stats());
    return total;
  }

  /**
   * Stops (idempotent): closes the idle spares and every relayed connection with 1001 (calls in
   * flight fail, handlers are aborted) and waits, bounded, for the callers' close frames.
   */
  close(reason = 'host closed'): Promise<void> {
    this.closing ??= this.shutdown(reason);
    return this.closing;
  }

  // ---- internals -----------------------------------------------------------------------------

  private get spareCount(): number {
    return Math.max(1, Math.floor(this.options.spares ?? 2));
  }

  private newSlot(): Slot {
    const slot: Slot = { attempts: 0, timer: undefined, first: undefined };
    this.slots.push(slot);
    return slot;
  }

  private createSocket(): WebSocketLike {
    const protocols = [SUBPROTOCOL[this.options.codec ?? 'msgpack']];
    if (this.options.createWebSocket !== undefined) return this.options.createWebSocket(this.url, protocols);
    const Ctor = this.options.WebSocket ?? (globalThis.WebSocket as unknown as WebSocketConstructorLike);
    return new Ctor(this.url, protocols);
  }

  private openSpare(slot: Slot): void {
    slot.timer = undefined;
    if (this.closing !== undefined) return;
    let socket: WebSocketLike;
    try {
      socket = this.createSocket();
    } catch (e) {
      this.log(e, 'opening a relay spare failed');
      const message = e instanceof Error ? e.message : String(e);
      return this.spareFailed(slot, new RelayError(CloseCode.ABNORMAL, `cannot open a connection to the relay: ${message}`));
    }
    let registered = false;
    const link: Closable = registerSpare(socket, this.identity, {
      relayName: this.name,
      timeoutMs: this.options.limits?.handshakeTimeoutMs ?? DEFAULT_LIMITS.handshakeTimeoutMs,
      events: {
        registered: () => {
          registered = true;
          slot.attempts = 0;
          this.setIdle(this.idle + 1);
          const first = slot.first;
          slot.first = undefined;
          first?.resolve();
        },
        handedOver: (relayed, caller) => {
          this.links.delete(link);
          this.setIdle(this.idle - 1);
          this.handoverCount++;
          if (this.options.encrypt === false) this.attach(relayed, { key: caller, encrypted: false });
          else this.secure(relayed);
          // The replacement opens at once (§11.4): a key stays known only for a linger time
          // after its last spare was handed over.
          this.openSpare(slot);
        },
        failed: (error) => {
          this.links.delete(link);
          if (registered) this.setIdle(this.idle - 1);
          this.spareFailed(slot, error);
        },
      },
    });
    this.links.add(link);
  }

  private spareFailed(slot: Slot, error: RelayError): void {
    if (this.closing !== undefined) return;
    const first = slot.first;
    if (first !== undefined) {
      slot.first = undefined;
      return first.reject(error);
    }
    if (!this.policy.enabled || slot.attempts >= this.policy.maxAttempts) {
      this.log(error, 'a relay spare gave up after its reconnect attempts');
      return;
    }
    slot.attempts++;
    slot.timer = setTimeout(() => this.openSpare(slot), reconnectDelay(this.policy, slot.attempts));
  }

  /**
   * Answers the caller's end-to-end handshake on a handed-over connection (§12.1), then serves wsp
   * on it; the caller's key is the one the handshake proved (the relay's word is not needed). A
   * handshake that fails is closed with 4210 by the handshake itself; nothing reaches a handler.
   */
  private secure(socket: WebSocketLike): void {
    const limits = this.options.limits;
    const handshake: Closable = respond(socket, this.identity, {
      timeoutMs: limits?.handshakeTimeoutMs ?? DEFAULT_LIMITS.handshakeTimeoutMs,
      maxMessageSize: limits?.maxMessageSize ?? DEFAULT_LIMITS.maxMessageSize,
      done: (secure, caller) => {
        this.links.delete(handshake);
        this.attach(secure, { key: caller, encrypted: true }, secure);
      },
      failed: () => {
        this.links.delete(handshake);
      },
    });
    this.links.add(handshake);
  }

  /** Serves wsp on a handed-over connection, as WspServer does on an accepted one. */
  private attach(socket: WebSocketLike, caller: RelayPeer, secure?: SecureSocket): void {
    const {
      spares: _s,
      codec: _c,
      WebSocket: _w,
      createWebSocket: _cw,
      reconnect: _r,
      encrypt: _e,
      onConnection,
      closeTimeoutMs: _t,
      ...peerOptions
    } = this.options;
    const peer: Peer = new Peer(socket, {
      ...peerOptions,
      sharedServices: this.services,
      data: caller,
      onClose: () => {
        this.pastStats = addStats(this.pastStats, peer.stats());
        this.peers.delete(peer);
      },
    });
    // A message that fails authentication ends the connection (4211) like any broken frame.
    if (secure !== undefined) secure.onFault = (code, reason) => peer.abort(code, reason);
    if (!peer.isOpen) return; // closed at once (a socket that closed in the meantime)
    this.peers.add(peer);
    try {
      onConnection?.(peer, caller);
    } catch (e) {
      this.log(e, 'onConnection failed');
    }
  }

  private setIdle(n: number): void {
    this.idle = n;
    for (const w of [...this.waiters]) {
      if (n >= w.count) {
        this.waiters.delete(w);
        w.resolve();
      }
    }
  }

  private async shutdown(reason: string): Promise<void> {
    for (const slot of this.slots) {
      if (slot.timer !== undefined) clearTimeout(slot.timer);
      slot.timer = undefined;
      slot.first?.reject(new RpcError('CLOSED', 'relay host closed'));
      slot.first = undefined;
    }
    for (const link of this.links) link.close(CloseCode.GOING_AWAY, reason);
    this.links.clear();
    this.idle = 0;
    const closed = new RpcError('CLOSED', 'relay host closed');
    for (const w of this.waiters) w.reject(closed);
    this.waiters.clear();
    const all = [...this.peers].map((p) => p.close(CloseCode.GOING_AWAY, reason).catch(() => undefined));
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all(all),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, this.options.closeTimeoutMs ?? 2000);
      }),
    ]);
    clearTimeout(timer);
  }

  private log(error: unknown, what: string): void {
    if (this.options.log !== undefined) this.options.log(error, what);
    else console.error(`wsp: ${what}:`, error);
  }
}
