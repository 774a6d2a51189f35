/**
 * The small surface generated code builds on (besides `convert`): typed handler contexts and the
 * wrappers that turn typed implementations into {@link MethodDef}s. Applications rarely use these
 * directly.
 */
import type { Caller, Converter } from './caller.js';
import type { CodecKind } from './codec.js';
import type { Peer } from './peer.js';
import { ApplicationError, RpcError } from './errors.js';
import { DECODE_ERROR_ECHO_CHARS, peerText } from './peer-text.js';
import type { CallContext, MethodDef, ServiceHandlers, StreamHandler, UnaryHandler } from './services.js';

/**
 * The variant of an enum or error that this version of the schema does not know (PROTOCOL.md §5:
 * a newer peer sent it). Every generated union includes it; encoding it writes `value` back as
 * it was received.
 */
export interface UnknownVariant {
  readonly $type: '$unknown';
  /** The variant name as received (`$type` on the wire). */
  readonly variant: string;
  /** The whole value as received, `$type` included. */
  readonly value: Readonly<Record<string, unknown>>;
}

/** A handler's context with the other side as a typed client (`ctx.peer.confirm(...)`). */
export interface TypedContext<P> extends Omit<CallContext, 'peer'> {
  /** The other side of the connection, wrapped in the generated client for its services. */
  readonly peer: P;
  /** The other side as an untyped {@link Caller}. */
  readonly caller: Caller;
}

/** Anything services can be registered on: `WspServer`, `Peer`, `Client`. */
export interface ServiceHost {
  addService(name: string, handlers: ServiceHandlers, fingerprint?: string): void;
}

/** Builds the typed context for a handler. */
export function typedContext<P>(ctx: CallContext, peer: (caller: Caller) => P): TypedContext<P> {
  // Property by property, not `{ ...ctx }`: spreading would read `signal`, which the runtime makes
  // only when a handler reads it.
  return {
    method: ctx.method,
    get signal(): AbortSignal {
      return ctx.signal;
    },
    deadline: ctx.deadline,
    codec: ctx.codec,
    connectionId: ctx.connectionId,
    data: ctx.data,
    peer: peer(ctx.peer),
    caller: ctx.peer,
  };
}

/**
 * Decodes a handler's arguments; a value of the wrong shape (the converters throw TypeError)
 * becomes INVALID_ARGUMENTS for the caller. The message may quote the peer's value (a map key),
 * so only a short, printable prefix of it goes back (PROTOCOL.md §8).
 */
export function decodeArgs<A>(decode: () => A): A {
  try {
    return decode();
  } catch (e) {
    if (e instanceof TypeError || e instanceof RangeError) {
      throw new RpcError('INVALID_ARGUMENTS', `invalid arguments: ${peerText(e.message, DECODE_ERROR_ECHO_CHARS)}`, { cause: e });
    }
    throw e;
  }
}

/** Re-encodes the details of a declared error thrown by a handler (floats, enums, maps). */
function encodeThrown(e: unknown, encodeError: ((details: never) => unknown) | undefined): unknown {
  if (encodeError === undefined || !(e instanceof ApplicationError)) return e;
  return new ApplicationError((encodeError as (d: unknown) => unknown)(e.details), { message: e.message, cause: e });
}

/** A unary method: decode arguments, run, encode the result or the declared error. */
export function unary<A, R>(
  decode: (args: unknown[], ctx: CallContext) => A,
  run: (args: A, ctx: CallContext) => R | Promise<R>,
  encode?: (result: R) => unknown,
  encodeError?: (details: never) => unknown,
): MethodDef {
  return { kind: 'unary', handler: unaryHandler(decode, run, encode, encodeError) };
}

function unaryHandler<A, R>(
  decode: (args: unknown[], ctx: CallContext) => A,
  run: (args: A, ctx: CallContext) => R | Promise<R>,
  encode: ((result: R) => unknown) | undefined,
  encodeError: ((details: never) => unknown) | undefined,
): UnaryHandler {
  return async (args, ctx) => {
    const decoded = decodeArgs(() => decode(args, ctx));
    try {
      const result = await run(decoded, ctx);
      return encode === undefined ? result : encode(result);
    } catch (e) {
      throw encodeThrown(e, encodeError);
    }
  };
}

/** A stream method: decode arguments, run, encode each item and the declared error. */
export function stream<A, T>(
  decode: (args: unknown[], ctx: CallContext) => A,
  run: (args: A, ctx: CallContext) => AsyncIterable<T> | Iterable<T> | Promise<AsyncIterable<T> | Iterable<T>>,
  encode?: (item: T) => unknown,
  encodeError?: (details: never) => unknown,
): MethodDef {
  return { kind: 'stream', handler: streamHandler(decode, run, encode, encodeError) };
}

function streamHandler<A, T>(
  decode: (args: unknown[], ctx: CallContext) => A,
  run: (args: A, ctx: CallContext) => AsyncIterable<T> | Iterable<T> | Promise<AsyncIterable<T> | Iterable<T>>,
  encode: ((item: T) => unknown) | undefined,
  encodeError: ((details: never) => unknown) | undefined,
): StreamHandler {
  return async (args, ctx) => {
    const decoded = decodeArgs(() => decode(args, ctx));
    let source: AsyncIterable<T> | Iterable<T>;
    try {
      source = await run(decoded, ctx);
    } catch (e) {
      throw encodeThrown(e, encodeError);
    }
    if (encode === undefined && encodeError === undefined) return source;
    return (async function* () {
      try {
        for await (const item of source) yield encode === undefined ? item : encode(item);
      } catch (e) {
        throw encodeThrown(e, encodeError);
      }
    })();
  };
}

/**
 * The caller's items as a typed handler reads them: each decoded as it is taken. One that does not
 * decode rejects its own `next()` with INVALID_ARGUMENTS (as arguments do), which fails the call if
 * the handler lets it (a `for await` does); a handler that calls `next()` itself may go on to the
 * items after it, as in the Rust runtime.
 */
export function decodedItems<I>(
  items: AsyncIterable<unknown>,
  decode: Converter<I> | undefined,
  codec: CodecKind,
): AsyncIterableIterator<I> {
  const source = items[Symbol.asyncIterator]();
  const decoded: AsyncIterableIterator<I> = {
    async next(): Promise<IteratorResult<I>> {
      const r = await source.next();
      if (r.done === true) return { done: true, value: undefined };
      return { done: false, value: decode === undefined ? (r.value as I) : decodeArgs(() => decode(r.value, codec)) };
    },
    async return(): Promise<IteratorResult<I>> {
      await source.return?.();
      return { done: true, value: undefined };
    },
    [Symbol.asyncIterator]() {
      return decoded;
    },
  };
  return decoded;
}

/** A client-streaming method: decode arguments, run with the decoded items, encode the result or the declared error. */
export function upload<A, I, R>(
  decode: (args: unknown[], ctx: CallContext) => A,
  decodeItem: Converter<I> | undefined,
  run: (args: A, items: AsyncIterable<I>, ctx: CallContext) => R | Promise<R>,
  encode?: (result: R) => unknown,
  encodeError?: (details: never) => unknown,
): MethodDef {
  return {
    kind: 'upload',
    handler: (args, items, ctx) =>
      unaryHandler(decode, (a: A, c) => run(a, decodedItems(items, decodeItem, c.codec), c), encode, encodeError)(args, ctx),
  };
}

/** A bidirectional method: decode arguments, run with the decoded items, encode each item and the declared error. */
export function duplex<A, I, T>(
  decode: (args: unknown[], ctx: CallContext) => A,
  decodeItem: Converter<I> | undefined,
  run: (args: A, items: AsyncIterable<I>, ctx: CallContext) => AsyncIterable<T> | Iterable<T> | Promise<AsyncIterable<T> | Iterable<T>>,
  encode?: (item: T) => unknown,
  encodeError?: (details: never) => unknown,
): MethodDef {
  return {
    kind: 'duplex',
    handler: (args, items, ctx) =>
      streamHandler(decode, (a: A, c) => run(a, decodedItems(items, decodeItem, c.codec), c), encode, encodeError)(args, ctx),
  };
}

/** A notification: decode arguments (dropped when they do not decode), run. */
export function notify<A>(decode: (args: unknown[], ctx: CallContext) => A, run: (args: A, ctx: CallContext) => unknown): MethodDef {
  return {
    kind: 'notify',
    handler: (args, ctx) => run(decodeArgs(() => decode(args, ctx)), ctx),
  };
}

/** Whether `e` is a declared error of the schema error type `errorType` (a generated type guard's test). */
export function isApplicationErrorOf(e: unknown, errorType: string): e is ApplicationError {
  return e instanceof ApplicationError && e.errorType === errorType;
}

/** Anything that sends a notification to every connection: `WspServer`. */
export interface Broadcaster {
  broadcast(method: string, args: readonly unknown[], filter?: (peer: Peer) => boolean): number;
}
