/**
 * The message assembly timeout (PROTOCOL.md §8) on a socket the server accepted: a WebSocket
 * message must be complete within the timeout of its first byte, however its frames are spread
 * out. Fed from the raw socket's 'data' events by a {@link FrameTracker}; checked whenever bytes
 * arrive and, while a message is in progress, on a timer (a peer that sends nothing more must not
 * escape it). Time during which the socket is paused (our own back-pressure: the bytes wait in the
 * kernel, unread) does not count against the peer.
 */
import type { Duplex } from 'node:stream';
import { FrameTracker } from './frame-tracker.js';

/**
 * Watches `socket` from now on and calls `expired` once if a message is late. Stops by itself
 * when the socket closes or the timeout fired.
 *
 * Attach it right after `ws` took the socket over: `ws` puts the bytes that came with the upgrade
 * request (`head`) back into the socket, so they reach this 'data' listener too.
 */
export function watchMessageAssembly(socket: Duplex, timeoutMs: number, expired: () => void): void {
  const tracker = new FrameTracker();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let pausedAt: number | undefined;

  const stop = (): void => {
    clearTimeout(timer);
    timer = undefined;
    socket.off('data', onData);
    socket.off('pause', onPause);
    socket.off('resume', onResume);
    socket.off('close', stop);
  };
  const fire = (): void => {
    stop();
    expired();
  };
  const overdue = (now: number): boolean => {
    const since = tracker.since;
    return since !== undefined && now - since >= timeoutMs;
  };
  // One timer at most, for the deadline of what is in progress; none while paused or idle.
  const arm = (now: number): void => {
    const since = tracker.since;
    if (timer !== undefined || since === undefined || pausedAt !== undefined) return;
    timer = setTimeout(check, Math.max(0, since + timeoutMs - now));
  };
  const check = (): void => {
    timer = undefined;
    const now = Date.now();
    if (pausedAt === undefined && overdue(now)) return fire();
    arm(now);
  };
  const onData = (chunk: Buffer): void => {
    const now = Date.now();
    // Bytes of a message that is already overdue come too late, even if they complete it.
    if (overdue(now)) return fire();
    tracker.feed(chunk, now);
    arm(now);
  };
  const onPause = (): void => {
    pausedAt ??= Date.now();
    clearTimeout(timer);
    timer = undefined;
  };
  const onResume = (): void => {
    if (pausedAt === undefined) return;
    const now = Date.now();
    tracker.shift(now - pausedAt);
    pausedAt = undefined;
    arm(now);
  };

  socket.on('data', onData);
  socket.on('pause', onPause);
  socket.on('resume', onResume);
  socket.on('close', stop);
}
