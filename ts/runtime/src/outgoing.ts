/**
 * The caller's side of calls (PROTOCOL.md §2.2–2.6): id allocation, the table of calls in flight,
 * local deadlines and AbortSignals, and matching REPLY/ERROR/ITEM/END to their calls.
 */
import type { CallOptions, InputOptions, Items, StreamOptions, WspStream } from './caller.js';
import type { CodecKind } from './codec.js';
import { depthWithin } from './codec.js';
import { ApplicationError, RpcError, type WspError, codeNameOf } from './errors.js';
import { type Frame, FrameType, MAX_U32 } from './frames.js';
import { PushCredit, pump } from './input.js';
import { OutgoingStream } from './stream.js';

/** What outgoing calls need from their peer. */
export interface CallerLink {
  /** Encodes and sends a frame; false if the link is gone; throws if the value cannot be encoded. */
  send(frame: unknown[]): boolean;
  /** Why no call can be made now (not open, closed, …), or undefined when calls can go out. */
  unavailable(method: string): WspError | undefined;
  codec(): CodecKind;
  log(error: unknown, what: string): void;
  /** Counts a CALL/STREAM sent. */
  countCall(): void;
}

type Pending = {
  readonly id: number;
  readonly method: string;
  readonly decodeError: CallOptions['decodeError'];
  readonly errorType: string | undefined;
  timer: ReturnType<typeof setTimeout> | undefined;
  detachSignal: (() => void) | undefined;
  /** The grant for this side's items, for UPLOAD and DUPLEX (§2.7); stopped when the call ends. */
  push?: PushCredit;
} & (
  | { readonly kind: 'unary'; resolve(value: unknown): void; reject(error: unknown): void }
  | { readonly kind: 'stream'; readonly stream: OutgoingStream<unknown> }
);

/** Largest delay setTimeout honours; larger values fire at once, so no local timer is armed. */
const MAX_TIMER = 0x7fff_ffff;

export class OutgoingCalls {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  constructor(
    private readonly link: CallerLink,
    private readonly defaults: { timeoutMs: number; window: number; maxDepth: number },
  ) {}

  get size(): number {
    return this.pending.size;
  }

  call<T>(method: string, args: readonly unknown[], options: CallOptions<T>): Promise<T> {
    return this.unaryCall(method, args, options, undefined);
  }

  /** An UPLOAD: a unary call whose caller sends `items` too (§2.7). */
  upload<T>(method: string, args: readonly unknown[], items: Items, options: InputOptions<T>): Promise<T> {
    return this.unaryCall(method, args, options, { items, encodeItem: options.encodeItem });
  }

  private unaryCall<T>(
    method: string,
    args: readonly unknown[],
    options: CallOptions<T>,
    input: { items: Items; encodeItem: InputOptions['encodeItem'] } | undefined,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const unavailable = this.link.unavailable(method);
      if (unavailable !== undefined) return reject(unavailable);
      const signal = options.signal;
      if (signal?.aborted === true) return reject(cancelledError(method, signal));
      const timeoutMs = options.timeoutMs ?? this.defaults.timeoutMs;
      const id = this.allocateId();
      const type = input === undefined ? FrameType.CALL : FrameType.UPLOAD;
      try {
        if (!this.link.send([type, id, method, wireDeadline(timeoutMs), args])) {
          return reject(this.link.unavailable(method) ?? disconnected(method));
        }
      } catch (e) {
        return reject(unencodable(method, e));
      }
      const decode = options.decode;
      const entry: Pending = {
          kind: 'unary',
          id,
          method,
          timer: undefined,
          detachSignal: undefined,
          decodeError: options.decodeError,
          errorType: options.errorType,
          resolve: (value) => {
            if (decode === undefined) return resolve(value as T);
            try {
              resolve(decode(value, this.link.codec()));
            } catch (e) {
              reject(new RpcError('INTERNAL', `result does not decode: ${errorText(e)}`, { method, cause: e }));
            }
          },
          reject,
        };
      this.track(entry, timeoutMs, signal);
      if (input !== undefined) this.startPump(entry, input.items, input.encodeItem);
    });
  }

  /** A DUPLEX: a stream whose caller sends `items` too (§2.7). */
  duplex<T>(method: string, args: readonly unknown[], items: Items, options: InputOptions<T>): WspStream<T> {
    return this.openStream(method, args, options, { items, encodeItem: options.encodeItem });
  }

  /** A PULL from the callee: this side may send `n` more items of call `id`. */
  pull(id: number, n: number): void {
    this.pending.get(id)?.push?.add(n);
  }

  /** Sends the items of a call as the callee grants room (input.ts). */
  private startPump(entry: Pending, items: Items, encodeItem: InputOptions['encodeItem']): void {
    const credit = new PushCredit();
    entry.push = credit;
    // The call fails locally, and the callee is told to stop (CANCEL).
    const fail = (e: unknown, why: 'source' | 'encode'): void => {
      if (this.pending.get(entry.id) !== entry) return;
      this.cancel(entry.id);
      const error =
        why === 'encode'
          ? new RpcError('INVALID_ARGUMENTS', `an item cannot be encoded: ${errorText(e)}`, { method: entry.method, cause: e })
          : new RpcError('CANCELLED', `the items to send failed: ${errorText(e)}`, { method: entry.method, cause: e });
      this.fail(entry, error);
    };
    const send = (frame: unknown[]): boolean => this.pending.get(entry.id) === entry && this.link.send(frame);
    pump(entry.id, items, credit, send, encodeItem, fail).catch((e: unknown) => this.link.log(e, `sending the items of ${entry.method}`));
  }

  stream<T>(method: string, args: readonly unknown[], options: StreamOptions<T>): WspStream<T> {
    return this.openStream(method, args, options, undefined);
  }

  private openStream<T>(
    method: string,
    args: readonly unknown[],
    options: StreamOptions<T>,
    input: { items: Items; encodeItem: InputOptions['encodeItem'] } | undefined,
  ): WspStream<T> {
    const window = Math.max(1, Math.min(MAX_U32, Math.floor(options.window ?? this.defaults.window)));
    const id = this.allocateId();
    const link = this.link;
    const stream = new OutgoingStream<T>(
      id,
      {
        grant: (sid, n) => {
          link.send([FrameType.CREDIT, sid, n]);
        },
        cancel: (sid) => this.cancel(sid),
        get codec(): CodecKind {
          return link.codec();
        },
      },
      window,
      options.decode,
    );
    const unavailable = this.link.unavailable(method);
    if (unavailable !== undefined) {
      stream.fail(unavailable);
      return stream;
    }
    if (options.signal?.aborted === true) {
      stream.fail(cancelledError(method, options.signal));
      return stream;
    }
    const timeoutMs = options.timeoutMs ?? Infinity;
    try {
      const type = input === undefined ? FrameType.STREAM : FrameType.DUPLEX;
      if (!this.link.send([type, id, method, wireDeadline(timeoutMs), window, args])) {
        stream.fail(disconnected(method));
        return stream;
      }
    } catch (e) {
      stream.fail(unencodable(method, e));
      return stream;
    }
    const entry: Pending = {
      kind: 'stream',
      id,
      method,
      timer: undefined,
      detachSignal: undefined,
      stream: stream as OutgoingStream<unknown>,
      decodeError: options.decodeError,
      errorType: options.errorType,
    };
    this.track(entry, timeoutMs, options.signal);
    if (input !== undefined) this.startPump(entry, input.items, input.encodeItem);
    return stream;
  }

  /**
   * A REPLY, ERROR, ITEM or END from the callee. Returns a protocol-violation reason (close 1002),
   * or undefined. Frames for unknown ids (late answers after cancel/timeout) are ignored (§2.2).
   */
  receive(frame: Extract<Frame, { type: 4 | 5 | 6 | 7 }>): string | undefined {
    const entry = this.pending.get(frame.id);
    if (entry === undefined) return undefined;
    switch (frame.type) {
      case FrameType.REPLY:
        if (entry.kind !== 'unary') return 'REPLY for a stream';
        this.release(entry);
        if (!depthWithin(frame.result, this.defaults.maxDepth)) {
          entry.reject(new RpcError('INTERNAL', 'result nested too deeply', { method: entry.method }));
        } else {
          entry.resolve(frame.result);
        }
        return undefined;
      case FrameType.ERROR:
        this.fail(entry, this.remoteError(entry, frame.code, frame.message, frame.details));
        return undefined;
      case FrameType.ITEM:
        if (entry.kind !== 'stream') return 'ITEM for a unary call';
        if (!depthWithin(frame.item, this.defaults.maxDepth)) {
          this.cancel(entry.id);
          entry.stream.fail(new RpcError('INTERNAL', 'stream item nested too deeply', { method: entry.method }));
          return undefined;
        }
        return entry.stream.push(frame.item) ? undefined : 'more ITEMs than credit granted';
      case FrameType.END:
        if (entry.kind !== 'stream') return 'END for a unary call';
        this.release(entry);
        entry.stream.end();
        return undefined;
    }
  }

  /** Fails every call in flight (the link is gone). */
  failAll(error: (method: string) => WspError): void {
    for (const entry of [...this.pending.values()]) this.fail(entry, error(entry.method));
  }

  /** Forgets a call and sends CANCEL for it (if the link is still up). */
  cancel(id: number): void {
    const entry = this.pending.get(id);
    if (entry === undefined) return;
    this.release(entry);
    if (this.link.unavailable('') === undefined) this.link.send([FrameType.CANCEL, id]);
  }

  private allocateId(): number {
    // Count up from 1 and wrap after 2^32 − 1 (§2.2), skipping ids still in flight.
    for (;;) {
      const id = this.nextId;
      this.nextId = id === MAX_U32 ? 1 : id + 1;
      if (!this.pending.has(id)) return id;
    }
  }

  /** Registers a sent call: local deadline, AbortSignal, statistics. */
  private track(entry: Pending, timeoutMs: number, signal: AbortSignal | undefined): void {
    this.pending.set(entry.id, entry);
    this.link.countCall();
    if (Number.isFinite(timeoutMs) && timeoutMs <= MAX_TIMER) {
      entry.timer = setTimeout(
        () => {
          // §2.4: fail locally whether or not anything arrives, and tell the callee to stop.
          if (this.pending.get(entry.id) !== entry) return;
          this.cancel(entry.id);
          this.fail(entry, new RpcError('DEADLINE_EXCEEDED', 'deadline exceeded', { method: entry.method }));
        },
        Math.max(0, timeoutMs),
      );
    }
    if (signal !== undefined) {
      const onAbort = (): void => {
        if (this.pending.get(entry.id) !== entry) return;
        this.cancel(entry.id);
        this.fail(entry, cancelledError(entry.method, signal));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      entry.detachSignal = () => signal.removeEventListener('abort', onAbort);
    }
  }

  private release(entry: Pending): void {
    if (this.pending.get(entry.id) === entry) this.pending.delete(entry.id);
    entry.push?.stop();
    if (entry.timer !== undefined) clearTimeout(entry.timer);
    entry.detachSignal?.();
  }

  private fail(entry: Pending, error: unknown): void {
    this.release(entry);
    if (entry.kind === 'unary') entry.reject(error);
    else entry.stream.fail(error);
  }

  private remoteError(entry: Pending, code: number, message: string, details: unknown): WspError {
    const method = entry.method;
    const name = codeNameOf(code);
    if (name !== 'APPLICATION') {
      return new RpcError(name, message, { details: details ?? undefined, wireCode: code, method });
    }
    let converted: unknown = details;
    if (entry.decodeError !== undefined) {
      try {
        converted = entry.decodeError(details, this.link.codec());
      } catch (e) {
        this.link.log(e, `error details of ${method} do not decode`);
      }
    }
    return new ApplicationError(converted, { message, method, ...(entry.errorType === undefined ? {} : { errorType: entry.errorType }) });
  }
}

function wireDeadline(timeoutMs: number): number | null {
  if (!Number.isFinite(timeoutMs)) return null;
  return Math.min(MAX_U32, Math.max(0, Math.ceil(timeoutMs)));
}

function disconnected(method: string): RpcError {
  return new RpcError('DISCONNECTED', 'connection lost', { method });
}

/**
 * The error of a call whose signal aborted: DEADLINE_EXCEEDED when the signal gave up on a
 * deadline (a served call's, which `ctx.peer` passes on, or `AbortSignal.timeout()`), else
 * CANCELLED.
 */
function cancelledError(method: string, signal: AbortSignal): RpcError {
  const reason: unknown = signal.reason;
  const deadline =
    (reason instanceof RpcError && reason.code === 'DEADLINE_EXCEEDED') ||
    (reason instanceof Error && reason.name === 'TimeoutError');
  if (deadline) return new RpcError('DEADLINE_EXCEEDED', 'deadline exceeded', { method, cause: reason });
  return new RpcError('CANCELLED', 'call cancelled', { method, cause: reason });
}

export function unencodable(method: string, e: unknown): RpcError {
  return new RpcError('INVALID_ARGUMENTS', `arguments cannot be encoded: ${errorText(e)}`, { method, cause: e });
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
