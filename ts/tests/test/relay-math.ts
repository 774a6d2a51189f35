/**
 * The `math.Math` a relay host serves in the relay tests (not a test file): the generated
 * handler interface, implemented as the Rust interop server implements it, recording who called
 * (`ctx.data`: the key the end-to-end handshake proved, or the relay verified on a plain
 * connection) and the log lines it got. Imports only the runtime core and generated code, so the
 * browser page of browser-relay.test.ts serves it too.
 */
import { ApplicationError, type RelayPeer } from '@wsp/runtime';
import * as math from '../../generated/math.js';

/**
 * What the host saw: the caller of each `reset` (its key in hex, or null: anonymous) and whether
 * that connection was encrypted end to end, and each log line.
 */
export interface Seen {
  callers: Array<string | null>;
  encrypted: boolean[];
  logs: string[];
}

export function newSeen(): Seen {
  return { callers: [], encrypted: [], logs: [] };
}

const I64_MAX = 2n ** 63n - 1n;
const I64_MIN = -(2n ** 63n);

export function relayMath(seen: Seen): math.MathHandler {
  return {
    add(values) {
      let sum = 0n;
      for (const v of values) {
        sum += v;
        if (sum > I64_MAX || sum < I64_MIN) throw new ApplicationError<math.MathError>({ $type: 'Overflow', operation: 'add' });
      }
      return sum;
    },
    divide(a, b) {
      if (b === 0) throw new ApplicationError<math.MathError>({ $type: 'DivisionByZero' });
      return a / b;
    },
    *count(from, to) {
      for (let i = from; i <= to; i++) yield i;
    },
    async sum(values) {
      let total = 0n;
      for await (const v of values) {
        total += v;
        if (total > I64_MAX || total < I64_MIN) throw new ApplicationError<math.MathError>({ $type: 'Overflow', operation: 'sum' });
      }
      return total;
    },
    async *running(start, values) {
      let total = start;
      for await (const v of values) {
        total += v;
        if (total > I64_MAX || total < I64_MIN) throw new ApplicationError<math.MathError>({ $type: 'Overflow', operation: 'running' });
        yield total;
      }
    },
    reset(ctx) {
      const peer = ctx.data as RelayPeer;
      seen.callers.push(peer.key?.toString() ?? null);
      seen.encrypted.push(peer.encrypted);
    },
    log(line) {
      seen.logs.push(line);
    },
  };
}
