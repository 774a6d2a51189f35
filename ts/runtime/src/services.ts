/**
 * Service registration (PROTOCOL.md §3). Handlers receive the raw decoded `args` array and a
 * {@link CallContext}; generated code wraps typed implementations into these objects.
 */
import type { CodecKind } from './codec.js';
import type { Caller } from './caller.js';

/** What a handler sees about the call it serves. */
export interface CallContext {
  /** `"<service>/<method>"` as sent by the caller. */
  readonly method: string;
  /** Aborts on CANCEL, when the deadline passes, and when the connection closes. */
  readonly signal: AbortSignal;
  /** Absolute deadline in epoch ms (arrival time + the caller's relative deadline), if any. */
  readonly deadline: number | undefined;
  /** The codec of the connection, so argument converters know whether JSON is in use. */
  readonly codec: CodecKind;
  /** The connection's id (unique per process). */
  readonly connectionId: number;
  /** Per-connection data attached by the server's accept hook (undefined otherwise). */
  readonly data: unknown;
  /** The peer that made the call: use it to call back (server → client calls). */
  readonly peer: Caller;
}

export type UnaryHandler = (args: unknown[], ctx: CallContext) => unknown;
export type StreamHandler = (
  args: unknown[],
  ctx: CallContext,
) => AsyncIterable<unknown> | Iterable<unknown> | Promise<AsyncIterable<unknown> | Iterable<unknown>>;
export type NotifyHandler = (args: unknown[], ctx: CallContext) => unknown;
/** A client-streaming method (§2.7): the caller's items, then one result. */
export type UploadHandler = (args: unknown[], items: AsyncIterable<unknown>, ctx: CallContext) => unknown;
/** A bidirectional method (§2.7): the caller's items in, the handler's items out. */
export type DuplexHandler = (
  args: unknown[],
  items: AsyncIterable<unknown>,
  ctx: CallContext,
) => AsyncIterable<unknown> | Iterable<unknown> | Promise<AsyncIterable<unknown> | Iterable<unknown>>;

export type MethodDef =
  | { readonly kind: 'unary'; readonly handler: UnaryHandler }
  | { readonly kind: 'stream'; readonly handler: StreamHandler }
  | { readonly kind: 'notify'; readonly handler: NotifyHandler }
  | { readonly kind: 'upload'; readonly handler: UploadHandler }
  | { readonly kind: 'duplex'; readonly handler: DuplexHandler };

/** Methods of one service by name; a bare function is shorthand for a unary method. */
export type ServiceHandlers = Readonly<Record<string, MethodDef | UnaryHandler>>;

interface ServiceEntry {
  readonly fingerprint: string;
  readonly methods: ReadonlyMap<string, MethodDef>;
}

/** A set of services by qualified name. A Server shares one among all its connections. */
export class ServiceRegistry {
  private readonly services = new Map<string, ServiceEntry>();

  /**
   * Registers (or replaces) a service. `fingerprint` is the schema fingerprint from generated code,
   * '' for an untyped service (§2.1).
   */
  add(name: string, handlers: ServiceHandlers, fingerprint = ''): void {
    if (name === '' || name.includes('/')) throw new TypeError(`invalid service name ${JSON.stringify(name)}`);
    const methods = new Map<string, MethodDef>();
    for (const [m, def] of Object.entries(handlers)) {
      methods.set(m, typeof def === 'function' ? { kind: 'unary', handler: def } : def);
    }
    this.services.set(name, { fingerprint, methods });
  }

  remove(name: string): boolean {
    return this.services.delete(name);
  }

  clear(): void {
    this.services.clear();
  }

  has(name: string): boolean {
    return this.services.has(name);
  }

  /** Looks up `"<service>/<method>"`, splitting at the last `/` (§3). */
  lookup(method: string): MethodDef | undefined {
    const slash = method.lastIndexOf('/');
    if (slash < 0) return undefined;
    return this.services.get(method.slice(0, slash))?.methods.get(method.slice(slash + 1));
  }

  /** The HELLO `services` map: name → fingerprint. */
  fingerprints(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [name, s] of this.services) out[name] = s.fingerprint;
    return out;
  }
}
