/**
 * The callee's side of notifications (PROTOCOL.md §2.3, §8): running their handlers and counting
 * those that have not settled, so that a peer cannot start an unbounded number of them. What
 * happens beyond the limit (pause reading, or drop) is the connection's decision.
 */
import type { CallContext, NotifyHandler } from './services.js';

export interface NotifyLink {
  /** Logs a handler failure (nothing is ever sent back for a notification). */
  log(error: unknown, what: string): void;
  /** A handler that was counted as running has settled. */
  settled(): void;
}

export class IncomingNotifications {
  /**
   * The abort controllers of the handlers that have not settled. One each, not one shared by
   * all: a handler that leaves a listener on its signal must not make a long-lived connection's
   * signal collect one per notification ever received.
   */
  private readonly running = new Set<AbortController>();
  private closedReason: unknown;

  constructor(
    private readonly limit: number,
    private readonly link: NotifyLink,
  ) {}

  /** Handlers that have not settled yet. */
  get size(): number {
    return this.running.size;
  }

  /** Whether as many handlers run as the limit allows. */
  get full(): boolean {
    return this.running.size >= this.limit;
  }

  /**
   * Runs a handler with the context `contextFor` makes around its signal (which aborts when the
   * connection closes). One that returns something other than a promise (or throws) is done at
   * once and never counts; a promise counts until it settles.
   */
  run(handler: NotifyHandler, args: unknown[], contextFor: (signal: AbortSignal) => CallContext): void {
    const controller = new AbortController();
    if (this.closedReason !== undefined) controller.abort(this.closedReason);
    const ctx = contextFor(controller.signal);
    let result: PromiseLike<unknown>;
    try {
      const r = handler(args, ctx);
      if (!isThenable(r)) return;
      result = r;
    } catch (e) {
      this.link.log(e, `notification handler of ${ctx.method} failed`);
      return;
    }
    this.running.add(controller);
    Promise.resolve(result)
      .catch((e: unknown) => this.link.log(e, `notification handler of ${ctx.method} failed`))
      .finally(() => {
        this.running.delete(controller);
        this.link.settled();
      })
      .catch(() => undefined);
  }

  /** The connection is gone: abort the signal of every handler still running. */
  abortAll(reason: unknown): void {
    this.closedReason ??= reason;
    for (const controller of this.running) controller.abort(reason);
  }
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (typeof v === 'object' || typeof v === 'function') && v !== null && typeof (v as { then?: unknown }).then === 'function';
}
