/** Connection statistics (what ONE's promisifier and its plugins counted, in one place). */

export interface Stats {
  /** Bytes of wsp messages sent / received (UTF-8 bytes for JSON text frames). */
  bytesSent: number;
  bytesReceived: number;
  framesSent: number;
  framesReceived: number;
  /** CALL and STREAM frames sent / received. */
  callsSent: number;
  callsReceived: number;
  notificationsSent: number;
  notificationsReceived: number;
  /** REPLY frames sent / received (successful unary results). */
  repliesSent: number;
  repliesReceived: number;
  /** ERROR frames sent / received. */
  errorsSent: number;
  errorsReceived: number;
  /** Frames that were malformed or could not be handled (incl. dropped NOTIFYs, §2.3). */
  invalidFrames: number;
  /**
   * Notifications dropped because too many of the peer's notification handlers were running and
   * the socket cannot pause reading (a browser WebSocket); with `ws` reading pauses instead.
   */
  droppedNotifications: number;
  /** Successful reconnections of a client (0 for a single connection). */
  reconnects: number;
  /** Outgoing calls and streams waiting for their answer. */
  callsInFlight: number;
  /** Incoming calls and streams whose handler is running. */
  incomingInFlight: number;
  /** Epoch ms when the (current) connection opened; undefined before. */
  openedAt: number | undefined;
  /** Epoch ms when the (last) connection closed; undefined while open. */
  closedAt: number | undefined;
  /** How long the connection was (or has been) open, in ms. */
  openTimeMs: number;
}

export type CounterName = Exclude<keyof Stats, 'openedAt' | 'closedAt' | 'openTimeMs' | 'callsInFlight' | 'incomingInFlight'>;

/** Mutable counters behind a Stats snapshot. */
export class StatsCounter {
  readonly counters: Record<CounterName, number> = {
    bytesSent: 0,
    bytesReceived: 0,
    framesSent: 0,
    framesReceived: 0,
    callsSent: 0,
    callsReceived: 0,
    notificationsSent: 0,
    notificationsReceived: 0,
    repliesSent: 0,
    repliesReceived: 0,
    errorsSent: 0,
    errorsReceived: 0,
    invalidFrames: 0,
    droppedNotifications: 0,
    reconnects: 0,
  };
  openedAt: number | undefined;
  closedAt: number | undefined;

  add(name: CounterName, n = 1): void {
    this.counters[name] += n;
  }

  snapshot(callsInFlight: number, incomingInFlight: number): Stats {
    const end = this.closedAt ?? Date.now();
    return {
      ...this.counters,
      callsInFlight,
      incomingInFlight,
      openedAt: this.openedAt,
      closedAt: this.closedAt,
      openTimeMs: this.openedAt === undefined ? 0 : Math.max(0, end - this.openedAt),
    };
  }
}

/** Sums counters of several connections (e.g. a client's successive links). */
export function addStats(a: Stats, b: Stats): Stats {
  const out = { ...a };
  for (const k of Object.keys(b) as Array<keyof Stats>) {
    const av = a[k];
    const bv = b[k];
    if (typeof av === 'number' && typeof bv === 'number' && k !== 'openedAt' && k !== 'closedAt') {
      (out as Record<string, unknown>)[k] = av + bv;
    }
  }
  return out;
}

/** UTF-8 byte length of a string without allocating (for JSON text frame statistics). */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}
