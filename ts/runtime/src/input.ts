/**
 * Calls whose caller sends items too (UPLOAD and DUPLEX, PROTOCOL.md §2.7), both ends:
 *
 * - the caller's {@link pump} sends the application's items as PUSHes while the callee's grant
 *   allows (the implicit first {@link INPUT_WINDOW}, then each PULL), then PUSH_END. It pulls the
 *   next item from the application's iterable only when it may send it, so a producer that runs
 *   ahead is paused;
 * - the callee's {@link IncomingItems} is the AsyncIterable a handler reads the PUSHes from; it
 *   PULLs more as the handler takes them, so a caller cannot fill the callee's memory.
 */
import { RpcError } from './errors.js';
import { FrameType, MAX_U32 } from './frames.js';

/** The PUSHes a caller may send before the first PULL (§2.7). */
export const INPUT_WINDOW = 16;
const PULL_BATCH = INPUT_WINDOW / 2;

/** One PUSH as the handler will take it: its item, or why it cannot be delivered. */
type Entry = { readonly value: unknown } | { readonly error: unknown };

/**
 * The caller's items of a call as its handler reads them: the PUSHes in order, until PUSH_END.
 * An item nested deeper than the limit rejects its own `next()` with INVALID_ARGUMENTS (as in the
 * Rust runtime) and the items after it still come. When the call ends otherwise (cancel,
 * deadline, connection loss, or the handler's answer while a reader is still waiting) a pending
 * `next()` rejects with the reason, and the handler's signal has aborted.
 */
export class IncomingItems implements AsyncIterableIterator<unknown> {
  private readonly queue: Entry[] = [];
  private ended = false;
  private failure: unknown = undefined;
  private waiter: { resolve: (r: IteratorResult<unknown>) => void; reject: (e: unknown) => void } | undefined;
  /** PUSHes the caller may still send: granted and not yet received. */
  private allowed = INPUT_WINDOW;
  private taken = 0;

  constructor(
    private readonly id: number,
    /** Sends a frame to the caller (PULL). */
    private readonly send: (frame: unknown[]) => void,
  ) {}

  /**
   * A PUSH arrived (`tooDeep`: its item is nested beyond the limit); returns a protocol-violation
   * reason (close 1002), or undefined.
   */
  push(item: unknown, tooDeep = false): string | undefined {
    if (this.ended) return this.failure === undefined ? 'PUSH after PUSH_END' : undefined;
    if (this.allowed === 0) return 'more PUSHes than granted';
    this.allowed--;
    const entry: Entry = tooDeep ? { error: new RpcError('INVALID_ARGUMENTS', 'an item is nested too deeply') } : { value: item };
    if (this.waiter !== undefined) {
      const w = this.waiter;
      this.waiter = undefined;
      this.deliver(entry, w);
    } else {
      this.queue.push(entry);
    }
    return undefined;
  }

  /** PUSH_END arrived; returns a protocol-violation reason, or undefined. */
  end(): string | undefined {
    if (this.ended) return this.failure === undefined ? 'a second PUSH_END' : undefined;
    this.ended = true;
    this.wake();
    return undefined;
  }

  /** The call ended otherwise: the reader gets `reason` once the items already here are taken. */
  abort(reason: unknown): void {
    if (this.ended) return;
    this.failure = reason;
    this.ended = true;
    this.wake();
  }

  next(): Promise<IteratorResult<unknown>> {
    if (this.waiter !== undefined) return Promise.reject(new TypeError('next() called while a previous next() is pending'));
    return new Promise((resolve, reject) => {
      const w = { resolve, reject };
      const entry = this.queue.shift();
      if (entry !== undefined) this.deliver(entry, w);
      else if (this.ended) this.finish(w);
      else this.waiter = w;
    });
  }

  return(): Promise<IteratorResult<unknown>> {
    // The handler stopped reading: keep nothing.
    this.queue.length = 0;
    return Promise.resolve({ done: true, value: undefined });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** Hands an item to a reader, and PULLs a batch once enough were taken. */
  private deliver(entry: Entry, w: { resolve: (r: IteratorResult<unknown>) => void; reject: (e: unknown) => void }): void {
    this.taken++;
    if (this.taken >= PULL_BATCH && !this.ended) {
      this.allowed = Math.min(MAX_U32, this.allowed + this.taken);
      this.send([FrameType.PULL, this.id, this.taken]);
      this.taken = 0;
    }
    if ('error' in entry) w.reject(entry.error);
    else w.resolve({ done: false, value: entry.value });
  }

  private finish(w: { resolve: (r: IteratorResult<unknown>) => void; reject: (e: unknown) => void }): void {
    if (this.failure !== undefined) w.reject(this.failure);
    else w.resolve({ done: true, value: undefined });
  }

  private wake(): void {
    const w = this.waiter;
    if (w === undefined) return;
    this.waiter = undefined;
    this.finish(w);
  }
}

/** The caller's grant for a call's items, and the pump waiting on it. */
export class PushCredit {
  private credit = INPUT_WINDOW;
  private waiter: ((go: boolean) => void) | undefined;
  private stopped = false;

  /** A PULL arrived. */
  add(n: number): void {
    this.credit = Math.min(MAX_U32, this.credit + n);
    this.wake(true);
  }

  /** The call ended: the pump stops. */
  stop(): void {
    this.stopped = true;
    this.wake(false);
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  /** Takes one unit of credit, waiting for a PULL if there is none; false once stopped. */
  acquire(): Promise<boolean> | boolean {
    if (this.stopped) return false;
    if (this.credit > 0) {
      this.credit--;
      return true;
    }
    return new Promise<boolean>((resolve) => {
      this.waiter = (go) => {
        if (go && this.credit > 0) this.credit--;
        resolve(go);
      };
    });
  }

  private wake(go: boolean): void {
    const w = this.waiter;
    if (w === undefined) return;
    this.waiter = undefined;
    w(go);
  }
}

/**
 * Sends `items` as the input of call `id` while `credit` allows, then PUSH_END. `fail` ends the
 * call when the iterable throws (`'source'`) or an item cannot be encoded (`'encode'`). Resolves
 * when the pump stops.
 */
export async function pump(
  id: number,
  items: AsyncIterable<unknown> | Iterable<unknown>,
  credit: PushCredit,
  send: (frame: unknown[]) => boolean,
  encodeItem: ((item: never) => unknown) | undefined,
  fail: (error: unknown, why: 'source' | 'encode') => void,
): Promise<void> {
  const iterator =
    Symbol.asyncIterator in items
      ? (items as AsyncIterable<unknown>)[Symbol.asyncIterator]()
      : (items as Iterable<unknown>)[Symbol.iterator]();
  let exhausted = false;
  try {
    for (;;) {
      // The next item is taken before waiting for room: PUSH_END needs no credit (§2.7), so the
      // end must be seen without it. At most this one item waits beyond the grant.
      let r: IteratorResult<unknown>;
      try {
        r = await iterator.next();
      } catch (e) {
        exhausted = true; // a generator that threw is finished
        return fail(e, 'source');
      }
      if (credit.isStopped) return;
      if (r.done === true) {
        exhausted = true;
        send([FrameType.PUSH_END, id]);
        return;
      }
      let frame: unknown[];
      try {
        const value = encodeItem === undefined ? r.value : (encodeItem as (i: unknown) => unknown)(r.value);
        frame = [FrameType.PUSH, id, value ?? null];
      } catch (e) {
        return fail(e, 'encode');
      }
      if (!(await credit.acquire())) return;
      try {
        if (!send(frame)) return;
      } catch (e) {
        return fail(e, 'encode');
      }
    }
  } finally {
    // Let a generator run its `finally` when the call ended before it did.
    if (!exhausted) {
      try {
        void Promise.resolve(iterator.return?.()).catch(() => undefined);
      } catch {
        // a synchronous iterator's return() may throw; nothing to do
      }
    }
  }
}
