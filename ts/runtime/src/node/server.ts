/**
 * The Node server (entry `@wsp/runtime/node`): an HTTP server whose upgrades become wsp peers.
 *
 * Upgrades are handled by hand (ws in `noServer` mode) so that the accept hook can look at the
 * request path and headers, reject with an HTTP status, or attach per-connection data before any
 * WebSocket exists, and so that a client offering only unknown subprotocols gets HTTP 400 (§1),
 * which ws alone would not do. The same early point enforces the connection caps (HTTP 503 before
 * any WebSocket exists), and owning the raw socket lets the server watch message assembly, which
 * ws does not expose (§8). The same point checks the request's `Origin` (HTTP 403 for a page of
 * an origin the policy does not allow, before the accept hook runs).
 */
import { type IncomingMessage, STATUS_CODES, type Server as HttpServer, type ServerResponse, createServer } from 'node:http';
import { type Server as HttpsServer, createServer as createHttpsServer } from 'node:https';
import type { SecureContextOptions, TlsOptions } from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type Server as WsServer } from 'ws';
import type { CodecKind } from '../codec.js';
import { SUBPROTOCOL } from '../codec.js';
import { CloseCode } from '../close.js';
import { DEFAULT_LIMITS, Peer, type PeerOptions } from '../peer.js';
import { ServiceRegistry, type ServiceHandlers } from '../services.js';
import { type Stats, StatsCounter, addStats } from '../stats.js';
import { watchMessageAssembly } from './message-timeout.js';
import { WebSocket } from './websocket.js';

/**
 * What the accept hook decides: `true`/`undefined` accepts, `{ data }` accepts and attaches data
 * (handlers see it as `ctx.data`), `false` rejects with 403, `{ status, message? }` rejects with
 * that HTTP status.
 */
export type AcceptResult = boolean | undefined | { readonly data: unknown } | { readonly status: number; readonly message?: string };

/**
 * Which web pages may open connections, checked on the upgrade request's `Origin` header (sent by
 * browsers on every WebSocket upgrade; other clients usually send none). A request from an origin
 * that is not allowed is refused with HTTP 403 before the upgrade.
 *
 * - `'same-origin'` (the default): pages of the server's own origin only — the `Origin`'s host and
 *   port are those of the request's `Host` header (a default port written or not).
 * - an array of origins (`['https://app.example.com', 'http://localhost:5173']`): exactly these,
 *   compared without regard to ASCII case (a trailing `/` is ignored).
 * - `'any'`: any origin, for servers whose every connection is authenticated by other means than
 *   the browser's cookies or network position.
 */
export type OriginPolicy = 'same-origin' | 'any' | readonly string[];

/** TLS for a server that creates its own: certificate chain and key (PEM), plus any other `node:tls` option. */
export type ServerTlsOptions = TlsOptions & Required<Pick<SecureContextOptions, 'cert' | 'key'>>;

export interface ServerOptions extends Omit<PeerOptions, 'services' | 'sharedServices' | 'data' | 'onClose'> {
  /** Port to listen on; 0 (the default) picks a free one — read it from listen()'s result. */
  port?: number;
  /** Interface to bind; default '127.0.0.1'. Use '0.0.0.0' or '::' to accept remote clients. */
  host?: string;
  /**
   * Use an existing HTTP or HTTPS server instead of creating one (listen() then only returns its
   * address). An `https.Server` serves `wss://`.
   */
  server?: HttpServer | HttpsServer;
  /**
   * Serve TLS (`wss://`): the server it creates is an `https.Server` with these options
   * (`{ cert, key }` in PEM, and any other `node:tls` option). Not together with `server`.
   */
  tls?: ServerTlsOptions;
  /** Which pages may connect (the `Origin` check, HTTP 403 before the upgrade); default `'same-origin'`. */
  origins?: OriginPolicy;
  /**
   * Refuse (HTTP 403) requests without an `Origin` header too. Default false: clients other than
   * browsers send none, and the check is about browsers.
   */
  requireOrigin?: boolean;
  /** Accept upgrades only on this path (default: any path). */
  path?: string;
  /** Codecs served, in preference order (default ['msgpack', 'json']). */
  codecs?: readonly CodecKind[];
  /** Decides on each upgrade request (path, headers, authentication); runs after the Origin check. */
  accept?: (request: IncomingMessage) => AcceptResult | Promise<AcceptResult>;
  /** Called for each new connection with its peer (to call that client, keep it, …). */
  onConnection?: (peer: Peer, request: IncomingMessage) => void;
  /** broadcast() skips connections with more than this many bytes queued (a slow client). Default 1 MiB. */
  broadcastMaxBuffered?: number;
  /** How long close() waits for clients to answer the close frame before dropping them, ms. Default 2000. */
  closeTimeoutMs?: number;
  /**
   * Most connections at once, counted from the upgrade request until the socket closes (pending
   * handshakes count too); more are refused with HTTP 503 before any WebSocket exists. Default 10000.
   */
  maxConnections?: number;
  /**
   * Most connections at once from one client address, likewise (HTTP 503). 0, the default, is
   * unlimited: clients behind one NAT or proxy share an address.
   */
  maxConnectionsPerAddress?: number;
}

export class WspServer {
  /** Services offered on every connection (each connection may add its own via its Peer). */
  readonly services = new ServiceRegistry();
  private readonly options: ServerOptions;
  private readonly http: HttpServer | HttpsServer;
  private readonly originCheck: (req: IncomingMessage) => string | undefined;
  private readonly ownsHttp: boolean;
  private readonly wss: WsServer<typeof WebSocket>;
  private readonly peers = new Map<Peer, WebSocket>();
  private closing: Promise<void> | undefined;
  /** Sockets counted against maxConnections (from upgrade request to close), in all and per address. */
  private connectionCount = 0;
  private readonly perAddress = new Map<string, number>();
  private pastStats: Stats = new StatsCounter().snapshot(0, 0);
  private readonly onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    void this.handleUpgrade(req, socket, head);
  };

  constructor(options: ServerOptions = {}) {
    this.options = options;
    if (options.server !== undefined && options.tls !== undefined) {
      throw new TypeError('WspServer: pass either `server` or `tls`, not both (an https.Server brings its own TLS)');
    }
    this.originCheck = originChecker(options.origins ?? 'same-origin', options.requireOrigin ?? false);
    this.ownsHttp = options.server === undefined;
    const upgradeRequired = (_req: IncomingMessage, res: ServerResponse): void => {
      res.writeHead(426, { 'Content-Type': 'text/plain', Upgrade: 'websocket' });
      res.end('wsp: WebSocket upgrade required\n');
    };
    this.http =
      options.server ?? (options.tls !== undefined ? createHttpsServer(options.tls, upgradeRequired) : createServer(upgradeRequired));
    const supported = new Set((options.codecs ?? ['msgpack', 'json']).map((c) => SUBPROTOCOL[c]));
    this.wss = new WebSocketServer<typeof WebSocket>({
      noServer: true,
      // Replies to the calls of one read leave in one write (see websocket.ts).
      WebSocket,
      // ws enforces the size limit while reading, closing with 1009 before buffering a huge message.
      maxPayload: options.limits?.maxMessageSize ?? DEFAULT_LIMITS.maxMessageSize,
      handleProtocols: (offered) => {
        for (const p of offered) if (supported.has(p)) return p;
        return false;
      },
    });
    this.http.on('upgrade', this.onUpgrade);
    // An 'error' without a listener would crash the process; listen() reports its own errors.
    this.http.on('error', (e) => this.log(e, 'HTTP server error'));
  }

  /** Starts listening; resolves with the bound address (its `port` is the real one for port 0). */
  async listen(): Promise<AddressInfo> {
    if (!this.http.listening) {
      await new Promise<void>((resolve, reject) => {
        const onError = (e: Error): void => reject(e);
        this.http.once('error', onError);
        this.http.listen(this.options.port ?? 0, this.options.host ?? '127.0.0.1', () => {
          this.http.off('error', onError);
          resolve();
        });
      });
    }
    return this.http.address() as AddressInfo;
  }

  /** Whether connections are served over TLS (`wss://`): `tls` was given, or `server` is an `https.Server`. */
  get secure(): boolean {
    return 'setSecureContext' in this.http;
  }

  /** The bound port (after listen()). */
  get port(): number {
    const a = this.http.address();
    return typeof a === 'object' && a !== null ? a.port : 0;
  }

  /** Open connections. */
  get connections(): ReadonlySet<Peer> {
    return new Set(this.peers.keys());
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
   * Sends a notification to every open connection (optionally filtered) and returns how many got
   * it. Never waits: sends are queued by the socket, and a client whose queue already exceeds
   * `broadcastMaxBuffered` is skipped rather than allowed to grow memory without bound.
   */
  broadcast(method: string, args: readonly unknown[], filter?: (peer: Peer) => boolean): number {
    const max = this.options.broadcastMaxBuffered ?? 1024 * 1024;
    let sent = 0;
    for (const [peer, ws] of this.peers) {
      if (!peer.isOpen || ws.bufferedAmount > max) continue;
      if (filter !== undefined && !filter(peer)) continue;
      try {
        peer.notify(method, args);
        sent++;
      } catch {
        // closing in the meantime; skip
      }
    }
    return sent;
  }

  /** Statistics summed over all connections, past and present. */
  stats(): Stats {
    let total = this.pastStats;
    for (const peer of this.peers.keys()) total = addStats(total, peer.stats());
    return total;
  }

  /**
   * Graceful close (idempotent): stop accepting, close every connection with 1001 (calls in flight
   * fail, handlers are aborted), wait for the clients' close frames (bounded), then stop listening.
   */
  close(reason = 'server shutting down'): Promise<void> {
    this.closing ??= this.shutdown(reason);
    return this.closing;
  }

  private async shutdown(reason: string): Promise<void> {
    const httpClosed = this.ownsHttp
      ? new Promise<void>((resolve) => this.http.close(() => resolve()))
      : Promise.resolve();
    this.http.off('upgrade', this.onUpgrade);
    const all = [...this.peers.keys()].map((p) => p.close(CloseCode.GOING_AWAY, reason).catch(() => undefined));
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all(all),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, this.options.closeTimeoutMs ?? 2000);
      }),
    ]);
    clearTimeout(timer);
    for (const ws of this.peers.values()) ws.terminate();
    if (this.ownsHttp) this.http.closeAllConnections();
    this.wss.close();
    await httpClosed;
  }

  private async handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    // A peer that resets the TCP connection mid-upgrade must not crash the process.
    socket.on('error', () => undefined);
    if (socket.destroyed) return;
    if (this.closing !== undefined) return reject(socket, 503);
    const release = this.admit(req, socket);
    if (release === undefined) return reject(socket, 503, 'too many connections');
    let upgraded = false;
    try {
      const path = (req.url ?? '/').split('?')[0];
      if (this.options.path !== undefined && path !== this.options.path) return reject(socket, 404);
      const refused = this.originCheck(req);
      if (refused !== undefined) return reject(socket, 403, refused);
      const offered = (req.headers['sec-websocket-protocol'] ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '');
      const supported = (this.options.codecs ?? ['msgpack', 'json']).map((c) => SUBPROTOCOL[c]);
      if (offered.length > 0 && !offered.some((p) => supported.includes(p))) {
        return reject(socket, 400, 'no supported wsp subprotocol offered');
      }
      let data: unknown;
      if (this.options.accept !== undefined) {
        let decision: AcceptResult;
        try {
          decision = await this.options.accept(req);
        } catch (e) {
          this.log(e, 'accept hook failed');
          return reject(socket, 500);
        }
        if (decision === false) return reject(socket, 403);
        if (typeof decision === 'object' && decision !== null) {
          if ('status' in decision) return reject(socket, decision.status, decision.message);
          data = decision.data;
        }
      }
      if (this.closing !== undefined || socket.destroyed) return reject(socket, 503);
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        upgraded = true;
        ws.batchWritesOn(socket);
        const peer = this.attach(ws, req, data);
        const timeout = this.options.limits?.messageTimeoutMs ?? DEFAULT_LIMITS.messageTimeoutMs;
        if (peer !== undefined && timeout > 0) {
          watchMessageAssembly(socket, timeout, () => peer.abort(CloseCode.MESSAGE_TIMEOUT, 'message assembly timeout'));
        }
      });
    } catch (e) {
      this.log(e, 'upgrade failed');
      reject(socket, 500);
    } finally {
      // A refused request stops counting at once: a client that keeps its end of a refused
      // socket open must not hold a place.
      if (!upgraded) release();
    }
  }

  /**
   * Counts an upgrade request against the connection caps until its socket closes (or the returned
   * release is called); undefined, and not counted, when a cap is reached.
   */
  private admit(req: IncomingMessage, socket: Duplex): (() => void) | undefined {
    const max = this.options.maxConnections ?? 10_000;
    const maxPerAddress = this.options.maxConnectionsPerAddress ?? 0;
    const address = clientAddress(req);
    const fromAddress = this.perAddress.get(address) ?? 0;
    if (this.connectionCount >= max || (maxPerAddress > 0 && fromAddress >= maxPerAddress)) return undefined;
    this.connectionCount++;
    this.perAddress.set(address, fromAddress + 1);
    let counted = true;
    const release = (): void => {
      if (!counted) return;
      counted = false;
      socket.off('close', release);
      this.connectionCount--;
      const n = (this.perAddress.get(address) ?? 1) - 1;
      // Only addresses with connections stay in the map: it cannot grow with past clients.
      if (n > 0) this.perAddress.set(address, n);
      else this.perAddress.delete(address);
    };
    socket.once('close', release);
    return release;
  }

  private attach(ws: WebSocket, req: IncomingMessage, data: unknown): Peer | undefined {
    const {
      port: _p,
      host: _h,
      server: _s,
      tls: _tls,
      origins: _o,
      requireOrigin: _ro,
      path: _pa,
      codecs: _c,
      accept: _a,
      onConnection,
      broadcastMaxBuffered: _b,
      closeTimeoutMs: _t,
      maxConnections: _m,
      maxConnectionsPerAddress: _ma,
      ...peerOptions
    } = this.options;
    const peer: Peer = new Peer(ws, {
      ...peerOptions,
      sharedServices: this.services,
      data,
      onClose: () => {
        this.pastStats = addStats(this.pastStats, peer.stats());
        this.peers.delete(peer);
      },
    });
    if (!peer.isOpen) return undefined; // e.g. closed at once for a bad subprotocol
    this.peers.set(peer, ws);
    try {
      onConnection?.(peer, req);
    } catch (e) {
      this.log(e, 'onConnection failed');
    }
    return peer;
  }

  private log(error: unknown, what: string): void {
    if (this.options.log !== undefined) this.options.log(error, what);
    else console.error(`wsp: ${what}:`, error);
  }
}

/**
 * The Origin check of a policy: returns why a request is refused (HTTP 403), or undefined when it
 * may proceed. Same semantics as the Rust server's `OriginPolicy`.
 */
export function originChecker(policy: OriginPolicy, requireOrigin = false): (req: IncomingMessage) => string | undefined {
  const list = typeof policy === 'string' ? undefined : new Set(policy.map((o) => o.replace(/\/+$/, '').toLowerCase()));
  if (typeof policy === 'string' && policy !== 'any' && policy !== 'same-origin') {
    throw new TypeError(`unknown origin policy ${JSON.stringify(policy)} (expected 'same-origin', 'any' or a list of origins)`);
  }
  return (req) => {
    const header = req.headers.origin;
    if (header === undefined) return requireOrigin ? 'an Origin header is required' : undefined;
    const origin = header.toLowerCase();
    let allowed: boolean;
    if (policy === 'any') allowed = true;
    else if (list !== undefined) allowed = list.has(origin);
    else allowed = sameAuthority(origin, (req.headers.host ?? '').toLowerCase());
    return allowed ? undefined : 'origin not allowed';
  };
}

/** Whether `origin` (`scheme://host[:port]`) names the authority `host` (`host[:port]`), a default port written or not. */
function sameAuthority(origin: string, host: string): boolean {
  const at = origin.indexOf('://');
  if (at < 0) return false;
  const scheme = origin.slice(0, at);
  const authority = origin.slice(at + 3);
  const defaultPort = scheme === 'https' || scheme === 'wss' ? ':443' : scheme === 'http' || scheme === 'ws' ? ':80' : undefined;
  if (defaultPort === undefined) return false;
  const strip = (a: string): string => (a.endsWith(defaultPort) ? a.slice(0, -defaultPort.length) : a);
  return host !== '' && strip(authority) === strip(host);
}

/** The client's IP address, with an IPv4-mapped IPv6 address written as plain IPv4. */
function clientAddress(req: IncomingMessage): string {
  const a = req.socket.remoteAddress ?? '';
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

function reject(socket: Duplex, status: number, message?: string): void {
  if (socket.destroyed) return;
  const body = message ?? STATUS_CODES[status] ?? '';
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nConnection: close\r\nContent-Type: text/plain\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}
