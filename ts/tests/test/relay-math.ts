/**
 * The `math.Math` a relay host serves in the relay tests (not a test file): the generated
 * handler interface, implemented as the Rust interop server implements it, recording who called
 * (`ctx.data`, the key the relay verified) and the log lines it got. Imports only the runtime core
 * and generated code, so the browser page of browser-relay.test.ts serves it too.
 */
import { ApplicationError, type RelayCaller } from '@wsp/runtime';
import * as math from '../../generated/math.js';

/** What the host saw: the caller of each `reset` (its key in hex, or null: anonymous) and each log line. */
export interface Seen {
  callers: Array<string | null>;
  logs: string[];
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
    reset(ctx) {
      seen.callers.push((ctx.data as RelayCaller).key?.toString() ?? null);
    },
    log(line) {
      seen.logs.push(line);
    },
  };
}
