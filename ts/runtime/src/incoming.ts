/**
 * The callee's side of calls (PROTOCOL.md §2.3–2.6): running handlers, enforcing deadlines,
 * aborting on CANCEL/close, honouring stream credit, and turning whatever a handler throws into an
 * ERROR frame that never leaks a stack trace or an undeclared error's message (§4).
 */
import { ApplicationError, RpcError, WireCode, WspError } from './errors.js';
import { FrameType, MAX_U32 } from './frames.js';
import { IncomingItems } from './input.js';
import type { CallContext, StreamHandler, UnaryHandler } from './services.js';

/** What running calls need from their peer. */
export interface CalleeLink {
  /** Encodes and sends a frame; returns false if the link is gone. Throws if the value cannot be encoded. */
  send(frame: unknown[]): boolean;
  /** Logs a failure that is not sent to the peer (handler crash, unencodable result). */
  log(error: unknown, what: string): void;
  countSent(kind: 'reply' | 'error'): void;
}

/** A call whose handler is running. Removed from the table as soon as its outcome is decided. */
export interface IncomingCall {
  readonly id: number;
  /**
   * The handler's abort signal, made when the handler first reads `ctx.signal` (see
   * {@link signalOf}): an AbortController costs more than the rest of a small call's handling.
   */
  controller: AbortController | undefined;
  /** Why the call was aborted, if it was (for a signal made afterwards). */
  abortReason: WspError | undefined;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** Stream credit left (§2.6), saturating at 2^32 − 1. */
  credit: number;
  /** Resolves a producer waiting for credit: true when credit arrived, false when the call ended. */
  creditWaiter: ((go: boolean) => void) | undefined;
  /** The caller's items, for UPLOAD and DUPLEX (§2.7). */
  input: IncomingItems | undefined;
}

/** Error codes a handler may send explicitly by throwing an RpcError with that code. */
const FORWARDED: ReadonlySet<string> = new Set(['INVALID_ARGUMENTS', 'CANCELLED', 'OVERLOADED', 'UNAVAILABLE']);

/**
 * The ERROR frame for something a handler threw. Declared errors (ApplicationError) and explicit
 * RpcErrors with a forwardable code travel as they are; anything else becomes INTERNAL with the
 * generic message and is logged locally.
 */
export function errorFrameFor(id: number, error: unknown, link: CalleeLink, method: string): unknown[] {
  if (error instanceof ApplicationError) {
    return [FrameType.ERROR, id, WireCode.APPLICATION, error.message, error.details ?? null];
  }
  if (error instanceof WspError && FORWARDED.has(error.code) && error.wireCode !== undefined) {
    return [FrameType.ERROR, id, error.wireCode, error.message, error.details ?? null];
  }
  link.log(error, `handler of ${method} failed`);
  return [FrameType.ERROR, id, WireCode.INTERNAL, 'internal error', null];
}

/** The abort signal of a call's handler, made on first use; already aborted if the call was. */
export function signalOf(call: IncomingCall): AbortSignal {
  if (call.controller === undefined) {
    call.controller = new AbortController();
    if (call.abortReason !== undefined) call.controller.abort(call.abortReason);
  }
  return call.controller.signal;
}

export class IncomingCalls {
  readonly calls = new Map<number, IncomingCall>();

  constructor(private readonly link: CalleeLink) {}

  get size(): number {
    return this.calls.size;
  }

  /**
   * Registers a call; arms its deadline (absolute epoch ms) if it has one. With `input`, the call
   * takes the caller's items (UPLOAD, DUPLEX), which the reader feeds through {@link push}.
   */
  open(id: number, deadlineMs: number | undefined, credit: number, input = false): IncomingCall {
    const call: IncomingCall = {
      id,
      controller: undefined,
      abortReason: undefined,
      timer: undefined,
      credit,
      creditWaiter: undefined,
      input: input ? new IncomingItems(id, (frame) => void this.link.send(frame)) : undefined,
    };
    this.calls.set(id, call);
    if (deadlineMs !== undefined) {
      const delay = Math.max(0, deadlineMs - Date.now());
      // Timers above 2^31 − 1 ms fire at once in JS; such deadlines (> 24 days) are left to CANCEL.
      if (delay <= 0x7fff_ffff) {
        call.timer = setTimeout(() => {
          if (!this.settle(call, new RpcError('DEADLINE_EXCEEDED', 'deadline exceeded'))) return;
          this.sendError(call.id, WireCode.DEADLINE_EXCEEDED, 'deadline exceeded');
        }, delay);
      }
    }
    return call;
  }

  /** CANCEL from the caller: abort the handler and send nothing more (§2.5). */
  cancel(id: number): void {
    const call = this.calls.get(id);
    if (call !== undefined) this.settle(call, new RpcError('CANCELLED', 'cancelled by the caller'));
  }

  /** CREDIT from the caller. */
  credit(id: number, n: number): void {
    const call = this.calls.get(id);
    if (call === undefined) return;
    call.credit = Math.min(MAX_U32, call.credit + n);
    if (call.credit > 0 && call.creditWaiter !== undefined) {
      const w = call.creditWaiter;
      call.creditWaiter = undefined;
      w(true);
    }
  }

  /**
   * A PUSH from the caller. Returns a protocol-violation reason (close 1002), or undefined; a
   * PUSH for a call no longer running is ignored (§2.7).
   */
  push(id: number, item: unknown, tooDeep: boolean): string | undefined {
    const call = this.calls.get(id);
    if (call === undefined) return undefined;
    if (call.input === undefined) return 'PUSH for a call that takes no items';
    return call.input.push(item, tooDeep);
  }

  /** PUSH_END from the caller; as {@link push}. */
  pushEnd(id: number): string | undefined {
    const call = this.calls.get(id);
    if (call === undefined) return undefined;
    if (call.input === undefined) return 'PUSH_END for a call that takes no items';
    return call.input.end();
  }

  /** The connection is gone: abort every handler. */
  abortAll(reason: WspError): void {
    for (const call of [...this.calls.values()]) this.settle(call, reason);
  }

  async runUnary(call: IncomingCall, def: UnaryHandler, args: unknown[], ctx: CallContext): Promise<void> {
    let result: unknown;
    try {
      result = await def(args, ctx);
    } catch (e) {
      if (this.settle(call)) this.sendFrame(errorFrameFor(call.id, e, this.link, ctx.method), 'error');
      return;
    }
    if (!this.settle(call)) return;
    this.sendResult([FrameType.REPLY, call.id, result ?? null], call.id, ctx.method, 'reply');
  }

  async runStream(call: IncomingCall, def: StreamHandler, args: unknown[], ctx: CallContext): Promise<void> {
    let iterator: AsyncIterator<unknown> | Iterator<unknown> | undefined;
    let exhausted = false;
    try {
      const iterable = await def(args, ctx);
      iterator =
        Symbol.asyncIterator in iterable
          ? (iterable as AsyncIterable<unknown>)[Symbol.asyncIterator]()
          : (iterable as Iterable<unknown>)[Symbol.iterator]();
      for (;;) {
        // Back-pressure: pull the next item only when the caller has granted room for it.
        if (!(await this.waitCredit(call))) return;
        const r = await iterator.next();
        if (!this.live(call)) return;
        if (r.done === true) {
          exhausted = true;
          this.settle(call);
          this.sendFrame([FrameType.END, call.id], undefined);
          return;
        }
        call.credit--;
        if (!this.link.send([FrameType.ITEM, call.id, r.value ?? null])) return;
      }
    } catch (e) {
      if (this.settle(call)) this.sendFrame(errorFrameFor(call.id, e, this.link, ctx.method), 'error');
    } finally {
      // Let a generator run its `finally` when the call ended early (cancel, deadline, close).
      // Not awaited: a generator blocked in its own await must not block us.
      if (iterator !== undefined && !exhausted) {
        try {
          void Promise.resolve(iterator.return?.()).catch(() => undefined);
        } catch {
          // a synchronous iterator's return() may throw; nothing to do
        }
      }
    }
  }

  private live(call: IncomingCall): boolean {
    return this.calls.get(call.id) === call;
  }

  private waitCredit(call: IncomingCall): Promise<boolean> | boolean {
    if (!this.live(call)) return false;
    if (call.credit > 0) return true;
    return new Promise<boolean>((resolve) => {
      call.creditWaiter = resolve;
    });
  }

  /**
   * Removes the call from the table (deciding its outcome). With an abort reason, also aborts the
   * handler's signal. Returns false if the call had already been settled.
   */
  private settle(call: IncomingCall, abortReason?: WspError): boolean {
    if (!this.live(call)) return false;
    this.calls.delete(call.id);
    if (call.timer !== undefined) clearTimeout(call.timer);
    if (call.creditWaiter !== undefined) {
      const w = call.creditWaiter;
      call.creditWaiter = undefined;
      w(false);
    }
    if (abortReason !== undefined) {
      call.abortReason = abortReason;
      call.controller?.abort(abortReason);
    }
    // A reader still waiting for items (one the handler left behind) learns that they will not
    // come, rather than taking a cut-off input for a whole one.
    call.input?.abort(abortReason ?? new RpcError('CANCELLED', 'the call ended before the caller\'s last item'));
    return true;
  }

  private sendError(id: number, code: number, message: string): void {
    this.sendFrame([FrameType.ERROR, id, code, message, null], 'error');
  }

  private sendFrame(frame: unknown[], kind: 'reply' | 'error' | undefined): void {
    try {
      if (this.link.send(frame) && kind !== undefined) this.link.countSent(kind);
    } catch (e) {
      this.link.log(e, 'cannot encode error frame');
    }
  }

  /** Sends a REPLY/ITEM; a value the codec cannot encode becomes INTERNAL (logged). */
  private sendResult(frame: unknown[], id: number, method: string, kind: 'reply'): void {
    try {
      if (this.link.send(frame)) this.link.countSent(kind);
    } catch (e) {
      this.link.log(e, `result of ${method} cannot be encoded`);
      this.sendError(id, WireCode.INTERNAL, 'internal error');
    }
  }
}
