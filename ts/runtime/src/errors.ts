/**
 * Error codes and the error class hierarchy (PROTOCOL.md §4).
 *
 * Two families, so that callers can tell "the RPC machinery failed" from "the method said no":
 * - {@link RpcError}: transport and protocol failures (wire codes 1–7 and unknown codes, plus the
 *   local-only DISCONNECTED, NOT_CONNECTED and CLOSED). `code` says what to do next.
 * - {@link ApplicationError}: a typed error declared by the method's `throws` (wire code 8). Its
 *   `details` is the error value (`{"$type": variant, ...fields}`), possibly converted by generated
 *   code into a typed value.
 * Both extend {@link WspError}, so one `instanceof` catches everything the runtime produces.
 */

/** Codes that travel on the wire in ERROR frames, by name. */
export const WireCode = {
  UNKNOWN_METHOD: 1,
  INVALID_ARGUMENTS: 2,
  DEADLINE_EXCEEDED: 3,
  CANCELLED: 4,
  OVERLOADED: 5,
  INTERNAL: 6,
  UNAVAILABLE: 7,
  APPLICATION: 8,
} as const;

export type WireCodeName = keyof typeof WireCode;

/** Codes produced locally that never travel on the wire. */
export type LocalCodeName = 'DISCONNECTED' | 'NOT_CONNECTED' | 'CLOSED';

/** Every code a {@link WspError} can carry. */
export type ErrorCodeName = WireCodeName | LocalCodeName;

const NAME_BY_WIRE = new Map<number, WireCodeName>(
  (Object.keys(WireCode) as WireCodeName[]).map((name) => [WireCode[name], name]),
);

/**
 * The name for a wire code. Unknown codes are treated as INTERNAL-like failures (§4: receivers
 * MUST accept unknown codes); the original number stays available as `wireCode`.
 */
export function codeNameOf(wireCode: number): WireCodeName {
  return NAME_BY_WIRE.get(wireCode) ?? 'INTERNAL';
}

/** Base class of every error the runtime produces or transports. */
export class WspError extends Error {
  /** What kind of failure this is; see PROTOCOL.md §4 for what a caller should do. */
  readonly code: ErrorCodeName;
  /** The numeric code as received/sent on the wire; undefined for local-only codes. */
  readonly wireCode: number | undefined;
  /** Error details as sent by the callee (nil/undefined when absent). */
  readonly details: unknown;
  /** The method of the call that failed, when known. */
  method: string | undefined;

  constructor(
    code: ErrorCodeName,
    message: string,
    options: { details?: unknown; wireCode?: number; method?: string; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'WspError';
    this.code = code;
    this.wireCode =
      options.wireCode ?? (code in WireCode ? WireCode[code as WireCodeName] : undefined);
    this.details = options.details;
    this.method = options.method;
  }
}

/**
 * A transport or protocol failure: the call did not produce an application-level answer.
 * Handlers may throw one with a wire code (e.g. INVALID_ARGUMENTS, UNAVAILABLE) to send that code
 * and message to the caller.
 */
export class RpcError extends WspError {
  constructor(
    code: Exclude<ErrorCodeName, 'APPLICATION'>,
    message: string,
    options: { details?: unknown; wireCode?: number; method?: string; cause?: unknown } = {},
  ) {
    super(code, message, options);
    this.name = 'RpcError';
  }
}

/**
 * A declared application error (wire code APPLICATION). A handler throws it to send a typed error;
 * a caller receives it with `details` holding the error value. The message is the variant name
 * (`details.$type`), as §4 requires.
 */
export class ApplicationError<D = unknown> extends WspError {
  declare readonly details: D;
  /**
   * The qualified schema name of the error type (`geometry.GeometryError`), set by generated
   * clients for methods that declare `throws`, so that generated type guards (`isGeometryError`)
   * can tell one declared error type from another.
   */
  readonly errorType: string | undefined;

  constructor(details: D, options: { message?: string; method?: string; cause?: unknown; errorType?: string } = {}) {
    super('APPLICATION', options.message ?? variantName(details) ?? 'application error', {
      details,
      wireCode: WireCode.APPLICATION,
      ...(options.method === undefined ? {} : { method: options.method }),
      ...(options.cause === undefined ? {} : { cause: options.cause }),
    });
    this.name = 'ApplicationError';
    this.errorType = options.errorType;
  }

  /** The error variant's name (`details.$type`), when details is an enum-like map. */
  get variant(): string | undefined {
    return variantName(this.details);
  }
}

function variantName(details: unknown): string | undefined {
  if (typeof details === 'object' && details !== null && !Array.isArray(details)) {
    const t = (details as Record<string, unknown>)['$type'];
    if (typeof t === 'string') return t;
  }
  return undefined;
}

/**
 * How a connection ended, as the `closed` promise reports it for any code but 1000
 * (PROTOCOL.md §7: such closes are errors carrying code and reason).
 */
export class CloseError extends Error {
  readonly code: number;
  readonly reason: string;

  constructor(code: number, reason: string) {
    super(`connection closed with ${code}${reason === '' ? '' : `: ${reason}`}`);
    this.name = 'CloseError';
    this.code = code;
    this.reason = reason;
  }
}

/**
 * Connecting through a relay failed before wsp started (PROTOCOL.md §11): the relay closed the
 * connection — refused a proof (4200), does not know the target (4201), is overloaded (4202), had
 * no spare free in time (4203) — or the relay handshake failed here (1006 lost, 4001 timed out,
 * 1002 a relay frame that cannot be read), or the end-to-end handshake failed (4210, §12.1: the
 * target did not prove the key it was called by, or the host refused the caller's handshake, e.g.
 * of a caller that does not encrypt). Its `code` is NOT_CONNECTED, like any failed connect;
 * `closeCode` and `reason` say why.
 */
export class RelayError extends RpcError {
  /** The close code the relay sent (or the one this side closed with). */
  readonly closeCode: number;
  /** The close reason. */
  readonly reason: string;

  constructor(closeCode: number, reason: string) {
    const what = closeCode === 4210 ? 'the end-to-end handshake through the relay failed' : 'relay closed the connection';
    super('NOT_CONNECTED', `${what} with ${closeCode}${reason === '' ? '' : `: ${reason}`}`);
    this.name = 'RelayError';
    this.closeCode = closeCode;
    this.reason = reason;
  }

  /**
   * Whether the relay or the far end refused (a 42xx code: the relay's 4200–4204, or 4210 of the
   * end-to-end handshake): an answer, not a transport failure.
   */
  get refused(): boolean {
    return this.closeCode >= 4200 && this.closeCode <= 4299;
  }
}

/** Convenience: whether `e` is a WspError with the given code. */
export function isWspError(e: unknown, code?: ErrorCodeName): e is WspError {
  return e instanceof WspError && (code === undefined || e.code === code);
}
