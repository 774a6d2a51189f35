/**
 * The caller a handler sees as `ctx.peer`: calls and streams made through it inherit the served
 * call's deadline and cancellation, as every call a Rust handler makes does (docs/behaviour.md).
 * JavaScript has no portable async context (browsers lack AsyncLocalStorage), so the inheritance
 * is carried by the context object rather than by the task: a call through another client or peer
 * inherits nothing.
 */
import type { CallOptions, Caller, InputOptions, Items, StreamOptions, WspStream } from './caller.js';
import type { CodecKind } from './codec.js';

/** What is inherited from the call being served. */
export interface Served {
  /** Aborts when the served call is cancelled, passes its deadline, or loses its connection. */
  readonly signal: AbortSignal;
  /** The served call's absolute deadline in epoch ms, if it has one. */
  readonly deadline: number | undefined;
}

export class InheritingCaller implements Caller {
  constructor(
    private readonly peer: Caller,
    private readonly served: Served,
    /** The peer's own default for calls without `timeoutMs`. */
    private readonly defaultTimeoutMs: number,
  ) {}

  get codec(): CodecKind | undefined {
    return this.peer.codec;
  }

  /** A call whose deadline is the earlier of its own (default 30 s) and the served call's. */
  call<T = unknown>(method: string, args: readonly unknown[], options: CallOptions<T> = {}): Promise<T> {
    return this.peer.call(method, args, this.inherit(options, options.timeoutMs ?? this.defaultTimeoutMs));
  }

  /** A stream whose deadline is the earlier of its own (default none) and the served call's. */
  stream<T = unknown>(method: string, args: readonly unknown[], options: StreamOptions<T> = {}): WspStream<T> {
    return this.peer.stream(method, args, this.inherit(options, options.timeoutMs ?? Infinity));
  }

  /** An upload whose deadline is the earlier of its own (default 30 s) and the served call's. */
  upload<T = unknown>(method: string, args: readonly unknown[], items: Items, options: InputOptions<T> = {}): Promise<T> {
    return this.peer.upload(method, args, items, this.inherit(options, options.timeoutMs ?? this.defaultTimeoutMs));
  }

  /** A bidirectional stream whose deadline is the earlier of its own (default none) and the served call's. */
  duplex<T = unknown>(method: string, args: readonly unknown[], items: Items, options: InputOptions<T> = {}): WspStream<T> {
    return this.peer.duplex(method, args, items, this.inherit(options, options.timeoutMs ?? Infinity));
  }

  /** Notifications have no deadline and nothing to cancel. */
  notify(method: string, args: readonly unknown[]): void {
    this.peer.notify(method, args);
  }

  private inherit<T, O extends CallOptions<T>>(options: O, own: number): O {
    const deadline = this.served.deadline;
    const timeoutMs = deadline === undefined ? own : Math.min(own, Math.max(0, deadline - Date.now()));
    const served = this.served.signal;
    const signal = options.signal === undefined ? served : both(options.signal, served);
    return { ...options, timeoutMs, signal };
  }
}

/** A signal that aborts when either does. */
function both(a: AbortSignal, b: AbortSignal): AbortSignal {
  const any = (AbortSignal as { any?: (signals: AbortSignal[]) => AbortSignal }).any;
  if (any !== undefined) return any.call(AbortSignal, [a, b]);
  const controller = new AbortController();
  for (const s of [a, b]) {
    if (s.aborted) {
      controller.abort(s.reason);
      break;
    }
    s.addEventListener('abort', () => controller.abort(s.reason), { once: true });
  }
  return controller.signal;
}
