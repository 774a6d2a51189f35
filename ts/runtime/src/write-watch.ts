/**
 * A peer that does not read (PROTOCOL.md §8). The socket queues whatever it cannot write yet
 * (`bufferedAmount`), so a peer that never reads makes the sender hold every reply, item and
 * notification meant for it. Two limits end such a connection with 4003:
 *
 * - the queue makes no progress (nothing of it leaves) for the write timeout;
 * - the queue holds more than the buffered-bytes limit, checked after each send.
 *
 * Browser-safe: it reads only `bufferedAmount`, which every WebSocket has. The timer runs only
 * while something is queued; the per-frame cost is one read of `bufferedAmount`.
 */

export interface WriteWatchLimits {
  /** Longest time the send queue may make no progress, ms; 0 disables. */
  readonly writeTimeoutMs: number;
  /** Most bytes the send queue may hold after a send; 0 disables. */
  readonly maxBufferedBytes: number;
}

/** Longest interval between progress checks, ms: a timeout fires at most this late. */
const MAX_CHECK_INTERVAL = 1000;

export class WriteWatch {
  private timer: ReturnType<typeof setInterval> | undefined;
  /** The queue size and the bytes sent so far at the last check. */
  private lastBuffered = 0;
  private lastSent = 0;
  /** When the queue last shrank (or the watch was armed). */
  private progressAt = 0;
  private tripped = false;

  constructor(
    private readonly socket: { readonly bufferedAmount: number },
    private readonly limits: WriteWatchLimits,
    /** Bytes handed to the socket so far (the connection's `bytesSent`). */
    private readonly bytesSent: () => number,
    /** Called once when a limit is breached, with the close reason. */
    private readonly onStall: (reason: string) => void,
  ) {}

  /** Whether a limit was breached: nothing more should be queued on this socket. */
  get stalled(): boolean {
    return this.tripped;
  }

  /** After each send. */
  sent(): void {
    if (this.tripped) return;
    const buffered = this.socket.bufferedAmount;
    // `!(x > 0)` also covers a socket that reports no number at all.
    if (!(buffered > 0)) return;
    if (this.limits.maxBufferedBytes > 0 && buffered > this.limits.maxBufferedBytes) {
      this.trip('send buffer full');
      return;
    }
    if (this.timer === undefined && this.limits.writeTimeoutMs > 0) this.arm(buffered);
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  private arm(buffered: number): void {
    this.lastBuffered = buffered;
    this.lastSent = this.bytesSent();
    this.progressAt = Date.now();
    const every = Math.max(10, Math.min(MAX_CHECK_INTERVAL, this.limits.writeTimeoutMs / 4));
    this.timer = setInterval(() => this.check(), every);
  }

  private check(): void {
    const buffered = this.socket.bufferedAmount;
    if (!(buffered > 0)) return this.stop();
    const sent = this.bytesSent();
    // The queue grows by what was sent since the last check; if it is smaller than that, some of
    // it left. (Frame headers are queued but not counted in bytesSent: they only make this
    // stricter by a few bytes per frame.) A growing queue alone is no sign of progress.
    if (buffered < this.lastBuffered + (sent - this.lastSent)) this.progressAt = Date.now();
    else if (Date.now() - this.progressAt >= this.limits.writeTimeoutMs) return this.trip('write timeout');
    this.lastBuffered = buffered;
    this.lastSent = sent;
  }

  private trip(reason: string): void {
    this.tripped = true;
    this.stop();
    this.onStall(reason);
  }
}
