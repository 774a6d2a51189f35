/**
 * A client: one logical connection to a server URL that survives link loss.
 *
 * Construction does not connect; `connect()` does. With reconnect on (the default) a lost link is
 * re-established with exponential backoff, client-side services stay registered across links, and
 * calls made while the link is down wait for it (up to their deadline) or fail at once with
 * NOT_CONNECTED under the fail-fast policy. Calls in flight when a link drops fail with
 * DISCONNECTED immediately: they may or may not have run, so only the application can decide to
 * retry them.
 */
import { type ReconnectOptions, reconnectDelay, reconnectPolicy as policyOf } from './backoff.js';
import type { CallOptions, Caller, InputOptions, Items, StreamOptions, WspStream } from './caller.js';
import { CloseCode, shortenCloseReason } from './close.js';
import { type CodecKind, SUBPROTOCOL } from './codec.js';
import { CloseError, RelayError, RpcError, type WspError } from './errors.js';
import { type CloseInfo, DEFAULT_LIMITS, Peer, type PeerOptions } from './peer.js';
import { type RelayRoute, askForTarget } from './relay/caller.js';
import type { RelayPeer } from './relay/host.js';
import { PublicKey, type Signer } from './relay/identity.js';
import { relayName } from './relay/proof.js';
import { type Closable, type SecureSocket, cannotEncrypt, initiate } from './relay/secure.js';
import { ServiceRegistry, type ServiceHandlers } from './services.js';
import type { WebSocketConstructorLike, WebSocketLike } from './socket.js';
import { type Stats, StatsCounter, addStats } from './stats.js';

export type { ReconnectOptions } from './backoff.js';

export type ConnectionState =
  /** constructed, connect() not called yet */
  | 'idle'
  /** first connection attempt running */
  | 'connecting'
  /** HELLO exchanged; calls go out */
  | 'connected'
  /** link lost; waiting for or running a new attempt */
  | 'reconnecting'
  /** link lost and no further attempt will be made (reconnect off or attempts exhausted) */
  | 'disconnected'
  /** close() was called; final */
  | 'closed';

export interface StateChange {
  readonly state: ConnectionState;
  /** How the last link closed, for 'reconnecting' and 'disconnected'. */
  readonly close?: CloseInfo;
}

export interface ClientOptions extends Omit<PeerOptions, 'services' | 'sharedServices' | 'data' | 'onClose'> {
  /** WebSocket constructor; default `globalThis.WebSocket`. On Node 20 pass `WebSocket` from `ws`. */
  WebSocket?: WebSocketConstructorLike;
  /** Full control over socket creation (e.g. to pass `ws` options); overrides `WebSocket`. */
  createWebSocket?: (url: string, protocols: string[]) => WebSocketLike;
  /**
   * Codecs to offer, most preferred first. Default ['msgpack']: one subprotocol, as the Rust client
   * offers (docs/behaviour.md); list both to let a server that speaks only JSON choose it.
   */
  codecs?: readonly CodecKind[];
  /** Reconnect policy; `false` turns it off. */
  reconnect?: boolean | ReconnectOptions;
  /** Calls made while the link is down: 'wait' (default) for it, up to their deadline; 'fail' at once with NOT_CONNECTED. */
  whenDisconnected?: 'wait' | 'fail';
  /** Called on every state change. */
  onStateChange?: (change: StateChange) => void;
  /**
   * Reach the host with this public key through the relay at `url` (PROTOCOL.md §11) instead of
   * a server at `url`, encrypted end to end unless `encrypt: false` (§12);
   * {@link Client.viaRelay} is the shorthand.
   */
  relay?: RelayRoute;
}

/** Options of {@link Client.viaRelay}: a client's, plus the key pair the caller proves (if any). */
export interface ViaRelayOptions extends Omit<ClientOptions, 'relay'> {
  /**
   * Proves this key pair to the relay and, end to end, to the host, so the host learns who calls;
   * without it the caller is anonymous.
   */
  identity?: Signer;
  /**
   * End-to-end encryption (PROTOCOL.md §12), default true: the host must encrypt too, and proves
   * in the handshake that it holds the target's secret key. `false`: plain wsp, readable by the
   * relay — only for a host that does not encrypt.
   */
  encrypt?: boolean;
}

type Waiter = { resolve(peer: Peer): void; reject(error: WspError): void };

export class Client implements Caller {
  /** Client-side services (server → client calls); kept across reconnects. */
  readonly services = new ServiceRegistry();
  private readonly options: ClientOptions;
  private readonly reconnectPolicy: Required<ReconnectOptions>;
  private currentState: ConnectionState = 'idle';
  private peer: Peer | undefined;
  private attempts = 0;
  private everConnected = false;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly waiters = new Set<Waiter>();
  private readonly listeners = new Set<(change: StateChange) => void>();
  private connectPromise: Promise<void> | undefined;
  /** The relay and target, for a client that connects through a relay. */
  private readonly route: Route | undefined;
  /**
   * The connection to the relay while it is asked for the target, then while the end-to-end
   * handshake runs (before wsp starts).
   */
  private relayLink: Closable | undefined;
  private closePromise: Promise<void> | undefined;
  /** Statistics of links that have ended, plus the reconnect count. */
  private pastStats: Stats = new StatsCounter().snapshot(0, 0);
  private reconnects = 0;
  private closedPromise!: Promise<CloseInfo>;
  private settleClosed!: (outcome: CloseInfo | CloseError) => void;

  constructor(
    readonly url: string,
    options: ClientOptions = {},
  ) {
    this.options = options;
    this.reconnectPolicy = policyOf(options.reconnect);
    // A malformed key is the application's mistake: say so now, not on every attempt.
    this.route = options.relay === undefined ? undefined : routeOf(options.relay);
    this.armClosed();
    if (options.onStateChange !== undefined) this.listeners.add(options.onStateChange);
    if (options.createWebSocket === undefined && options.WebSocket === undefined && globalThis.WebSocket === undefined) {
      throw new TypeError('no WebSocket implementation: pass { WebSocket } (e.g. from the "ws" package)');
    }
  }

  /**
   * A client of the host with public key `target`, reached through the relay at `relayUrl`
   * (PROTOCOL.md §11). Each link — the first and every reconnect — asks the relay for the target
   * (CHALLENGE, CONNECT, CONNECTED), runs the end-to-end handshake in which the host proves it
   * holds `target`'s secret key (§12; unless `encrypt: false`), and then speaks wsp with the host
   * as usual: generated clients wrap it unchanged, and calls go both ways. A relay that refuses on
   * the first connect (unknown key 4201, proof refused 4200, overloaded 4202, no spare free 4203),
   * or a handshake that fails (4210: not the key's holder, or one end does not encrypt), rejects
   * `connect()` at once with a {@link RelayError} carrying the close code and reason; once
   * connected, refusals while reconnecting are retried like any lost link (the host may be
   * re-registering).
   */
  static viaRelay(relayUrl: string, target: PublicKey | string, options: ViaRelayOptions = {}): Client {
    const { identity, encrypt, ...rest } = options;
    return new Client(relayUrl, {
      ...rest,
      relay: { target, ...(identity === undefined ? {} : { identity }), ...(encrypt === undefined ? {} : { encrypt }) },
    });
  }

  /**
   * Settles when the client stops for good: resolves `{code, reason}` after `close()` (what was
   * sent) and when the last link ended with 1000 and no reconnect follows; rejects with a
   * {@link CloseError} when the link was lost for good (reconnect off or exhausted) with any other
   * code. A `connect()` after that starts a new `closed`. Never an unhandled rejection.
   */
  get closed(): Promise<CloseInfo> {
    return this.closedPromise;
  }

  private armClosed(): void {
    let settled = false;
    this.closedPromise = new Promise<CloseInfo>((resolve, reject) => {
      this.settleClosed = (outcome) => {
        if (settled) return;
        settled = true;
        if (outcome instanceof CloseError) reject(outcome);
        else resolve(outcome);
      };
    });
    this.closedPromise.catch(() => undefined);
  }

  get state(): ConnectionState {
    return this.currentState;
  }

  /** The codec of the current link. */
  get codec(): CodecKind | undefined {
    return this.peer?.codec;
  }

  /** The server's HELLO `services` map on the current link. */
  get remoteServices(): Readonly<Record<string, string>> | undefined {
    return this.peer?.remoteServices;
  }

  /** The current link's peer, if any (for its `closed` promise or per-link stats). */
  get currentPeer(): Peer | undefined {
    return this.peer;
  }

  /** Subscribes to state changes; returns the unsubscribe function. */
  onStateChange(listener: (change: StateChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
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
   * Connects. Resolves once the HELLO exchange completed. With reconnect on, failed attempts are
   * retried with backoff and the promise waits; it rejects when close() is called first, or when
   * reconnect is off (or exhausted) and the attempt fails.
   */
  connect(): Promise<void> {
    if (this.currentState === 'closed') return Promise.reject(new RpcError('CLOSED', 'client closed'));
    if (this.currentState === 'connected') return Promise.resolve();
    if (this.connectPromise !== undefined) return this.connectPromise;
    const p = this.waitForLink(Infinity, undefined).then(() => undefined);
    this.connectPromise = p;
    p.then(
      () => {
        this.connectPromise = undefined;
      },
      () => {
        this.connectPromise = undefined;
      },
    );
    if (this.currentState === 'idle' || this.currentState === 'disconnected') {
      if (this.currentState === 'disconnected') this.armClosed();
      this.attempts = 0;
      this.attempt();
    }
    return p;
  }

  /** Closes the client for good (idempotent): no more reconnects; calls fail with CLOSED. */
  close(code: number = CloseCode.NORMAL, reason = ''): Promise<void> {
    if (this.closePromise !== undefined) return this.closePromise;
    if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const peer = this.peer;
    this.relayLink?.close(code, reason);
    this.relayLink = undefined;
    this.setState('closed');
    this.rejectWaiters(new RpcError('CLOSED', 'client closed'));
    const info: CloseInfo = { code, reason: shortenCloseReason(reason) };
    this.closePromise = (
      peer === undefined
        ? Promise.resolve()
        : peer.close(code, reason).then(
            () => undefined,
            () => undefined,
          )
    ).then(() => this.settleClosed(info));
    return this.closePromise;
  }

  stats(): Stats {
    const current = this.peer?.stats();
    const total = current === undefined ? { ...this.pastStats } : addStats(this.pastStats, current);
    total.reconnects = this.reconnects;
    total.callsInFlight += this.waiters.size;
    total.openedAt = current?.openedAt ?? this.pastStats.openedAt;
    total.closedAt = current === undefined ? this.pastStats.closedAt : undefined;
    return total;
  }

  // ---- calling ---------------------------------------------------------------------------------

  call<T = unknown>(method: string, args: readonly unknown[], options: CallOptions<T> = {}): Promise<T> {
    const peer = this.livePeer();
    if (peer !== undefined) return peer.call(method, args, options);
    const timeoutMs = options.timeoutMs ?? this.options.defaultTimeoutMs ?? 30_000;
    const started = Date.now();
    return this.linkFor(method, timeoutMs, options.signal).then((p) =>
      p.call(method, args, { ...options, timeoutMs: remaining(timeoutMs, started) }),
    );
  }

  stream<T = unknown>(method: string, args: readonly unknown[], options: StreamOptions<T> = {}): WspStream<T> {
    const peer = this.livePeer();
    if (peer !== undefined) return peer.stream(method, args, options);
    const timeoutMs = options.timeoutMs ?? Infinity;
    const started = Date.now();
    return new DeferredStream<T>(
      this.linkFor(method, timeoutMs, options.signal).then((p) =>
        p.stream(method, args, { ...options, timeoutMs: remaining(timeoutMs, started) }),
      ),
    );
  }

  upload<T = unknown>(method: string, args: readonly unknown[], items: Items, options: InputOptions<T> = {}): Promise<T> {
    const peer = this.livePeer();
    if (peer !== undefined) return peer.upload(method, args, items, options);
    const timeoutMs = options.timeoutMs ?? this.options.defaultTimeoutMs ?? 30_000;
    const started = Date.now();
    return this.linkFor(method, timeoutMs, options.signal).then((p) =>
      p.upload(method, args, items, { ...options, timeoutMs: remaining(timeoutMs, started) }),
    );
  }

  duplex<T = unknown>(method: string, args: readonly unknown[], items: Items, options: InputOptions<T> = {}): WspStream<T> {
    const peer = this.livePeer();
    if (peer !== undefined) return peer.duplex(method, args, items, options);
    const timeoutMs = options.timeoutMs ?? Infinity;
    const started = Date.now();
    return new DeferredStream<T>(
      this.linkFor(method, timeoutMs, options.signal).then((p) =>
        p.duplex(method, args, items, { ...options, timeoutMs: remaining(timeoutMs, started) }),
      ),
    );
  }

  /** Fire-and-forget; throws NOT_CONNECTED (CLOSED after close()) while there is no link. */
  notify(method: string, args: readonly unknown[]): void {
    const peer = this.livePeer();
    if (peer === undefined) {
      throw this.currentState === 'closed'
        ? new RpcError('CLOSED', 'client closed', { method })
        : new RpcError('NOT_CONNECTED', 'not connected', { method });
    }
    peer.notify(method, args);
  }

  // ---- internals ---------------------------------------------------------------------------------

  private livePeer(): Peer | undefined {
    return this.currentState === 'connected' && this.peer?.isOpen === true ? this.peer : undefined;
  }

  /** A link for a call made while there is none: wait, or fail by policy and state. */
  private linkFor(method: string, timeoutMs: number, signal: AbortSignal | undefined): Promise<Peer> {
    const s = this.currentState;
    if (s === 'closed') return Promise.reject(new RpcError('CLOSED', 'client closed', { method }));
    if (this.options.whenDisconnected === 'fail' || s === 'idle' || s === 'disconnected') {
      return Promise.reject(new RpcError('NOT_CONNECTED', 'not connected', { method }));
    }
    return this.waitForLink(timeoutMs, signal, method);
  }

  private waitForLink(timeoutMs: number, signal: AbortSignal | undefined, method?: string): Promise<Peer> {
    return new Promise<Peer>((resolve, reject) => {
      if (signal?.aborted === true) return reject(new RpcError('CANCELLED', 'call cancelled', { method, cause: signal.reason }));
      let timer: ReturnType<typeof setTimeout> | undefined;
      const onAbort = (): void => {
        done();
        reject(new RpcError('CANCELLED', 'call cancelled', { method, cause: signal?.reason }));
      };
      const done = (): void => {
        this.waiters.delete(waiter);
        if (timer !== undefined) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const waiter: Waiter = {
        resolve: (peer) => {
          done();
          resolve(peer);
        },
        reject: (error) => {
          done();
          reject(error);
        },
      };
      this.waiters.add(waiter);
      if (Number.isFinite(timeoutMs) && timeoutMs <= 0x7fff_ffff) {
        timer = setTimeout(() => {
          done();
          reject(new RpcError('DEADLINE_EXCEEDED', 'deadline exceeded while waiting for the connection', { method }));
        }, timeoutMs);
      }
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private rejectWaiters(error: WspError): void {
    for (const w of [...this.waiters]) w.reject(error);
  }

  private setState(state: ConnectionState, close?: CloseInfo): void {
    if (this.currentState === state) return;
    this.currentState = state;
    const change: StateChange = close === undefined ? { state } : { state, close };
    for (const l of [...this.listeners]) {
      try {
        l(change);
      } catch (e) {
        console.error('wsp: state listener failed:', e);
      }
    }
  }

  private createSocket(): WebSocketLike {
    const protocols = (this.options.codecs ?? ['msgpack']).map((c) => SUBPROTOCOL[c]);
    if (this.options.createWebSocket !== undefined) return this.options.createWebSocket(this.url, protocols);
    const Ctor = this.options.WebSocket ?? (globalThis.WebSocket as unknown as WebSocketConstructorLike);
    return new Ctor(this.url, protocols);
  }

  private attempt(): void {
    this.reconnectTimer = undefined;
    if (this.currentState === 'closed') return;
    this.setState(this.everConnected ? 'reconnecting' : 'connecting');
    let socket: WebSocketLike;
    let name = '';
    try {
      if (this.route !== undefined) name = relayName(this.url);
      socket = this.createSocket();
    } catch (e) {
      // e.g. a malformed URL: no amount of retrying helps.
      this.setState('disconnected');
      const message = `cannot connect: ${e instanceof Error ? e.message : String(e)}`;
      this.rejectWaiters(new RpcError('NOT_CONNECTED', message, { cause: e }));
      this.settleClosed(new CloseError(CloseCode.ABNORMAL, message));
      return;
    }
    const route = this.route;
    if (route === undefined) return this.attach(socket);
    // Through a relay: wsp starts on this socket once the relay has joined it to the target and,
    // encrypting, once the target proved its key in the end-to-end handshake (§12).
    const startedAt = Date.now();
    const timeoutMs = this.options.limits?.handshakeTimeoutMs ?? DEFAULT_LIMITS.handshakeTimeoutMs;
    const link: Closable = askForTarget(socket, route.target, route.identity, {
      relayName: name,
      timeoutMs,
      connected: (joined) => {
        if (this.relayLink !== link) return;
        this.relayLink = undefined;
        if (!route.encrypt) return this.attach(joined, { key: route.target, encrypted: false });
        // The end-to-end handshake shares the time limit with the steps before it (§12.1).
        const left = timeoutMs > 0 && Number.isFinite(timeoutMs) ? Math.max(1, timeoutMs - (Date.now() - startedAt)) : 0;
        const handshake: Closable = initiate(joined, route.target, route.identity, {
          timeoutMs: left,
          maxMessageSize: this.options.limits?.maxMessageSize ?? DEFAULT_LIMITS.maxMessageSize,
          done: (secure) => {
            if (this.relayLink !== handshake) return;
            this.relayLink = undefined;
            this.attach(secure, { key: route.target, encrypted: true }, secure);
          },
          // Reported after initiate() returned, never from inside it.
          failed: (error) => {
            if (this.relayLink !== handshake) return;
            this.relayLink = undefined;
            this.onRelayFailed(error);
          },
        });
        this.relayLink = handshake;
      },
      failed: (error) => {
        if (this.relayLink !== link) return;
        this.relayLink = undefined;
        this.onRelayFailed(error);
      },
    });
    this.relayLink = link;
  }

  /** Starts wsp on an open (or connecting) socket: the link's Peer. */
  private attach(socket: WebSocketLike, data?: RelayPeer, secure?: SecureSocket): void {
    const {
      WebSocket: _w,
      createWebSocket: _c,
      codecs: _k,
      reconnect: _r,
      whenDisconnected: _p,
      onStateChange: _s,
      relay: _re,
      ...peerOptions
    } = this.options;
    const peer: Peer = new Peer(socket, {
      ...peerOptions,
      services: this.services,
      // Through a relay, the callbacks this client serves learn who the target is.
      ...(data === undefined ? {} : { data }),
      onClose: (info) => this.onLinkClosed(peer, info),
    });
    // A message that fails authentication ends the link (4211) like any broken frame.
    if (secure !== undefined) secure.onFault = (code, reason) => peer.abort(code, reason);
    this.peer = peer;
    peer.ready.then(
      () => {
        if (this.peer !== peer || this.currentState === 'closed') return;
        this.attempts = 0;
        if (this.everConnected) this.reconnects++;
        this.everConnected = true;
        this.setState('connected');
        for (const w of [...this.waiters]) w.resolve(peer);
      },
      () => undefined, // the close handler below deals with it
    );
  }

  private onLinkClosed(peer: Peer, info: CloseInfo): void {
    if (this.peer !== peer) return;
    this.peer = undefined;
    this.pastStats = addStats(this.pastStats, peer.stats());
    this.pastStats.openedAt = peer.stats().openedAt ?? this.pastStats.openedAt;
    this.pastStats.closedAt = peer.stats().closedAt;
    if (this.currentState === 'closed') return;
    // A host that encrypts refuses a caller that does not with 4210 before any HELLO (§12): an
    // answer like the relay's refusals, final on the first connect.
    if (this.route !== undefined && info.code === CloseCode.E2E_HANDSHAKE_FAILED && peer.remoteServices === undefined) {
      return this.onRelayFailed(new RelayError(info.code, info.reason));
    }
    this.afterLoss(info, new RpcError('NOT_CONNECTED', `connection closed with ${info.code}`));
  }

  /**
   * The relay closed (or the connection to it failed) before wsp started. Its refusal on the
   * first connect is an answer, not a transport failure: retrying would only repeat it, so the
   * connect fails at once. Anything else is a lost link.
   */
  private onRelayFailed(error: RelayError): void {
    if (this.currentState === 'closed') return;
    const info: CloseInfo = { code: error.closeCode, reason: error.reason };
    if (error.refused && !this.everConnected) return this.giveUp(info, error);
    this.afterLoss(info, error);
  }

  /** A link (or an attempt at one) ended: retry per the policy, or give up. */
  private afterLoss(info: CloseInfo, error: WspError): void {
    const policy = this.reconnectPolicy;
    if (policy.enabled && this.attempts < policy.maxAttempts) {
      this.attempts++;
      this.setState(this.everConnected ? 'reconnecting' : 'connecting', info);
      this.reconnectTimer = setTimeout(() => this.attempt(), reconnectDelay(policy, this.attempts));
    } else this.giveUp(info, error);
  }

  private giveUp(info: CloseInfo, error: WspError): void {
    this.setState('disconnected', info);
    this.rejectWaiters(error);
    this.settleClosed(info.code === CloseCode.NORMAL ? info : new CloseError(info.code, info.reason));
  }
}

interface Route {
  readonly target: PublicKey;
  readonly identity: Signer | undefined;
  readonly encrypt: boolean;
}

/** The route of a relayed client, checked now: a mistake here would fail every attempt alike. */
function routeOf(relay: RelayRoute): Route {
  const target = PublicKey.from(relay.target);
  const encrypt = relay.encrypt ?? true;
  if (encrypt) {
    if (target.toX25519() === undefined) throw new TypeError('the target key is not a valid Ed25519 public key');
    const why = relay.identity === undefined ? undefined : cannotEncrypt(relay.identity);
    if (why !== undefined) throw new TypeError(`the caller identity cannot encrypt end to end: ${why} (or pass encrypt: false)`);
  }
  return { target, identity: relay.identity, encrypt };
}

function remaining(timeoutMs: number, started: number): number {
  return Number.isFinite(timeoutMs) ? Math.max(0, timeoutMs - (Date.now() - started)) : Infinity;
}

/** A stream requested while the link was down: starts once a link is there. */
class DeferredStream<T> implements WspStream<T> {
  private inner: WspStream<T> | undefined;
  private cancelled = false;

  constructor(private readonly pending: Promise<WspStream<T>>) {
    pending.then(
      (s) => {
        this.inner = s;
        if (this.cancelled) s.cancel();
      },
      () => undefined,
    );
  }

  async next(): Promise<IteratorResult<T>> {
    if (this.cancelled) return { done: true, value: undefined };
    const s = await this.pending;
    return s.next();
  }

  return(): Promise<IteratorResult<T>> {
    this.cancel();
    return Promise.resolve({ done: true, value: undefined });
  }

  cancel(): void {
    this.cancelled = true;
    this.inner?.cancel();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
