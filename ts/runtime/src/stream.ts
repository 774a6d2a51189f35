/**
 * The caller's side of a server stream (PROTOCOL.md §2.6): an AsyncIterator fed by ITEM frames,
 * granting credit as the consumer takes items so a slow consumer slows the producer down.
 */
import type { CodecKind } from './codec.js';
import type { Converter, WspStream } from './caller.js';
import { RpcError } from './errors.js';

/** What the stream needs from its peer. */
export interface StreamLink {
  /** Sends CREDIT for `n` more items. */
  grant(id: number, n: number): void;
  /** The consumer gave up: forget the call and send CANCEL. */
  cancel(id: number): void;
  readonly codec: CodecKind;
}

export class OutgoingStream<T> implements WspStream<T> {
  private readonly queue: unknown[] = [];
  /** Set once END, ERROR, cancel or a local failure ended the stream. */
  private finished = false;
  private error: unknown = undefined;
  private waiter: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void } | undefined;
  /** Items the callee may send in total so far (initial credit + CREDIT frames). */
  granted: number;
  /** Items received so far. */
  received = 0;
  private consumedSinceGrant = 0;
  private readonly half: number;

  constructor(
    readonly id: number,
    private readonly link: StreamLink,
    window: number,
    private readonly decode: Converter<T> | undefined,
  ) {
    this.granted = window;
    this.half = Math.max(1, Math.floor(window / 2));
  }

  /** An ITEM arrived. Returns false if it exceeds the granted credit (the peer must close 1002). */
  push(item: unknown): boolean {
    if (this.finished) return true;
    this.received++;
    if (this.received > this.granted) return false;
    if (this.waiter !== undefined) {
      const w = this.waiter;
      this.waiter = undefined;
      this.deliver(item, w);
    } else {
      this.queue.push(item);
    }
    return true;
  }

  /** END arrived. */
  end(): void {
    if (this.finished) return;
    this.finished = true;
    this.wake();
  }

  /** ERROR arrived, the deadline passed or the link dropped: delivered after the buffered items. */
  fail(error: unknown): void {
    if (this.finished) return;
    this.finished = true;
    this.error = error;
    this.wake();
  }

  get isFinished(): boolean {
    return this.finished;
  }

  next(): Promise<IteratorResult<T>> {
    if (this.waiter !== undefined) {
      return Promise.reject(new TypeError('next() called while a previous next() is pending'));
    }
    return new Promise<IteratorResult<T>>((resolve, reject) => {
      const w = { resolve, reject };
      if (this.queue.length > 0) this.deliver(this.queue.shift(), w);
      else if (this.finished) this.settleFinished(w);
      else this.waiter = w;
    });
  }

  return(): Promise<IteratorResult<T>> {
    this.cancel();
    return Promise.resolve({ done: true, value: undefined });
  }

  cancel(): void {
    this.queue.length = 0;
    if (!this.finished) {
      this.finished = true;
      this.link.cancel(this.id);
    }
    // An explicit cancel ends the iteration quietly rather than with an error.
    this.error = undefined;
    this.wake();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  private deliver(item: unknown, w: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void }): void {
    this.consumedSinceGrant++;
    if (this.consumedSinceGrant >= this.half && !this.finished) {
      this.consumedSinceGrant -= this.half;
      this.granted += this.half;
      this.link.grant(this.id, this.half);
    }
    let value: T;
    try {
      value = this.decode === undefined ? (item as T) : this.decode(item, this.link.codec);
    } catch (e) {
      w.reject(new RpcError('INTERNAL', `stream item does not decode: ${e instanceof Error ? e.message : String(e)}`, { cause: e }));
      return;
    }
    w.resolve({ done: false, value });
  }

  private settleFinished(w: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void }): void {
    if (this.error !== undefined) {
      const e = this.error;
      // Report the error once; later next() calls see a finished iterator.
      this.error = undefined;
      w.reject(e);
    } else {
      w.resolve({ done: true, value: undefined });
    }
  }

  private wake(): void {
    if (this.waiter === undefined) return;
    const w = this.waiter;
    this.waiter = undefined;
    if (this.queue.length > 0) this.deliver(this.queue.shift(), w);
    else this.settleFinished(w);
  }
}
