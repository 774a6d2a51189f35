/**
 * The reconnect policy: how long to wait before the next attempt after a failure. Shared by the
 * client (re-opening its link) and the relay host (re-opening its spares), so both back off the
 * same way and are configured with the same options.
 */

export interface ReconnectOptions {
  /** Default true. */
  enabled?: boolean;
  /** Delay before the first retry, ms. Default 200. */
  initialDelayMs?: number;
  /** Growth per failed attempt. Default 1.15. */
  factor?: number;
  /** Upper bound of the delay, ms. Default 30 000. */
  maxDelayMs?: number;
  /** Random spread as a fraction of the delay (0.2 = ±20 %), so clients do not retry in lockstep. Default 0.2. */
  jitter?: number;
  /** Attempts after a loss before giving up ('disconnected'). Default Infinity. */
  maxAttempts?: number;
}

export const RECONNECT_DEFAULTS: Readonly<Required<ReconnectOptions>> = {
  enabled: true,
  initialDelayMs: 200,
  factor: 1.15,
  maxDelayMs: 30_000,
  jitter: 0.2,
  maxAttempts: Infinity,
};

/** The policy an option value (`false`, `true`/absent, or partial options) stands for. */
export function reconnectPolicy(option: boolean | ReconnectOptions | undefined): Required<ReconnectOptions> {
  return {
    ...RECONNECT_DEFAULTS,
    ...(typeof option === 'object' ? option : {}),
    ...(option === false ? { enabled: false } : {}),
  };
}

/** The delay before retry number `attempt` (1 for the first retry), jitter included. */
export function reconnectDelay(policy: Required<ReconnectOptions>, attempt: number): number {
  const base = Math.min(policy.maxDelayMs, policy.initialDelayMs * policy.factor ** (attempt - 1));
  return Math.max(0, base * (1 + policy.jitter * (Math.random() * 2 - 1)));
}
