/**
 * The calling surface shared by Peer and Client, and the one generated clients wrap.
 */
import type { CodecKind } from './codec.js';

/** Converts a decoded payload (result, item, error details) into the typed value. */
export type Converter<T> = (value: unknown, codec: CodecKind) => T;

export interface CallOptions<T = unknown> {
  /** Cancels the call: the caller sends CANCEL and the promise rejects with CANCELLED. */
  signal?: AbortSignal;
  /**
   * Deadline relative to now, in ms, sent to the callee and enforced locally (§2.4). Defaults to
   * the peer's `defaultTimeoutMs` (30 s) for calls and to none for streams. `Infinity` means no
   * deadline; 0 has already expired. With a client, the time spent waiting for a link counts.
   */
  timeoutMs?: number;
  /** Converts the result (or each stream item) from its wire form; default: identity. */
  decode?: Converter<T>;
  /** Converts APPLICATION error details from their wire form; default: identity. */
  decodeError?: Converter<unknown>;
  /** Qualified name of the declared error type, copied to `ApplicationError.errorType`. */
  errorType?: string;
}

/** The options a generated client method takes for a call. */
export type MethodOptions = Pick<CallOptions, 'signal' | 'timeoutMs'>;

/** The options a generated client method takes for a stream. */
export type StreamMethodOptions = Pick<StreamOptions, 'signal' | 'timeoutMs' | 'window'>;

export interface StreamOptions<T = unknown> extends CallOptions<T> {
  /** Flow-control window: initial credit, refilled by half as items are consumed (default 32). */
  window?: number;
}

/** Options of a call that sends items (`upload`, `duplex`; PROTOCOL.md §2.7). */
export interface InputOptions<T = unknown> extends StreamOptions<T> {
  /** Converts each item the caller sends into its wire form; default: identity. */
  encodeItem?: (item: never) => unknown;
}

/** The items a caller sends: pulled one by one, only as the callee has room for them. */
export type Items = AsyncIterable<unknown> | Iterable<unknown>;

/** An incoming server stream: iterate with for-await; `break` (or cancel()) sends CANCEL. */
export interface WspStream<T> extends AsyncIterableIterator<T> {
  /** Stops the stream: sends CANCEL if it is still running; pending next() calls end. */
  cancel(): void;
}

/** Call by name with an encoded argument array. Implemented by Peer and Client. */
export interface Caller {
  /** The codec in use, or undefined while no connection has been negotiated. */
  readonly codec: CodecKind | undefined;
  call<T = unknown>(method: string, args: readonly unknown[], options?: CallOptions<T>): Promise<T>;
  stream<T = unknown>(method: string, args: readonly unknown[], options?: StreamOptions<T>): WspStream<T>;
  /**
   * Calls a client-streaming method: sends `items` as the callee takes them (the next item is
   * pulled from the iterable only when the callee has room, so a producer that runs ahead is
   * paused), then resolves with the one result. Same deadline default as `call`.
   */
  upload<T = unknown>(method: string, args: readonly unknown[], items: Items, options?: InputOptions<T>): Promise<T>;
  /**
   * Opens a bidirectional stream: sends `items` as the callee takes them and yields the callee's
   * items as they come; `cancel()` (or `break`) stops both. Same deadline default as `stream`.
   */
  duplex<T = unknown>(method: string, args: readonly unknown[], items: Items, options?: InputOptions<T>): WspStream<T>;
  /** Fire-and-forget (§2.3). Throws NOT_CONNECTED/CLOSED when there is no link to send on. */
  notify(method: string, args: readonly unknown[]): void;
}
