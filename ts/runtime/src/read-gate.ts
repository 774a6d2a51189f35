/**
 * Back-pressure on reading (PROTOCOL.md §8): a connection stops taking messages from its socket
 * while too many of the peer's notifications are being handled, and loses none of them.
 *
 * Only a socket that can pause reading is gated (`ws`: pause() stops reading from TCP, so a
 * flooding peer's further messages wait in the kernel's buffers and then in the peer itself).
 * `ws` still delivers the messages of the chunk it was parsing when it was paused; they are kept
 * here, in order, and handled first when reading resumes. That backlog is bounded by what one
 * read of the socket returned (nothing more is read while paused), not by the size of a flood.
 */
import type { Pausable } from './socket.js';

export class ReadGate {
  /** Work held while paused; `head` is the next to run (no O(n) shift per item). */
  private queue: Array<(() => void) | undefined> = [];
  private head = 0;
  private paused = false;
  private draining = false;

  constructor(private readonly socket: Pausable) {}

  get isPaused(): boolean {
    return this.paused;
  }

  /** Stops reading from the socket. */
  pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.socket.pause();
  }

  /**
   * Keeps `work` (handling a message that arrived while paused) for when reading resumes; with
   * `first`, before everything already kept (the message that made the gate pause goes first).
   */
  hold(work: () => void, first = false): void {
    if (!first) this.queue.push(work);
    else if (this.head > 0) this.queue[--this.head] = work;
    else this.queue.unshift(work);
  }

  /** Runs the held work in order until some of it pauses again; reads on once all of it ran. */
  resume(): void {
    if (!this.paused || this.draining) return;
    this.paused = false;
    this.draining = true;
    try {
      while (!this.paused && this.head < this.queue.length) {
        const work = this.queue[this.head];
        this.queue[this.head++] = undefined;
        work?.();
      }
    } finally {
      this.draining = false;
    }
    if (this.head >= this.queue.length) {
      this.queue = [];
      this.head = 0;
    }
    if (!this.paused) this.socket.resume();
  }

  /**
   * Drops the held work and reads on: the connection is closing, and the peer's close frame must
   * still be read for the close handshake to finish.
   */
  release(): void {
    this.queue = [];
    this.head = 0;
    if (!this.paused) return;
    this.paused = false;
    this.socket.resume();
  }
}
