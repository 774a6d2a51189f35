/**
 * Small conversions generated code uses per type (PROTOCOL.md §5, §9). Each throws a TypeError on
 * a value of the wrong shape; generated argument decoders turn that into INVALID_ARGUMENTS (see
 * {@link invalidArguments}).
 */
import { base64ToBytes } from './base64.js';
import type { CodecKind } from './codec.js';
import { RpcError } from './errors.js';

const DECIMAL = /^-?\d+$/;

/** An i64/u64 position: bigint as is; an integral number or a decimal string → bigint. */
export function toBigInt(value: unknown): bigint {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number' && Number.isInteger(value)) return BigInt(value);
  if (typeof value === 'string' && DECIMAL.test(value)) return BigInt(value);
  throw new TypeError(`expected a 64-bit integer, got ${typeof value}`);
}

/** A 32-bit-or-smaller integer or float position: number; a bigint (from int64 encoding) → number. */
export function toNumber(value: unknown): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  throw new TypeError(`expected a number, got ${typeof value}`);
}

/**
 * An `f32`/`f64` position: a number (a bigint becomes one), or in JSON one of the strings the
 * writers use for the values JSON has no number for: "NaN", "Infinity", "-Infinity" (PROTOCOL §5).
 */
export function toFloat(value: unknown): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  if (value === 'NaN') return NaN;
  if (value === 'Infinity') return Infinity;
  if (value === '-Infinity') return -Infinity;
  throw new TypeError(`expected a float, got ${describe(value)}`);
}

/** A bool position. */
export function toBoolean(value: unknown): boolean {
  if (typeof value === 'boolean') return value;
  throw new TypeError(`expected a bool, got ${describe(value)}`);
}

/** A string position. */
export function toText(value: unknown): string {
  if (typeof value === 'string') return value;
  throw new TypeError(`expected a string, got ${describe(value)}`);
}

function describe(value: unknown): string {
  return value === null ? 'nil' : Array.isArray(value) ? 'an array' : typeof value;
}

/** A bytes position: Uint8Array (MessagePack bin), or base64 text in JSON. */
export function toBytes(value: unknown, codec: CodecKind): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (codec === 'json' && typeof value === 'string') return base64ToBytes(value);
  throw new TypeError(`expected bytes, got ${typeof value}`);
}

/** The error a generated argument decoder throws so the caller gets INVALID_ARGUMENTS. */
export function invalidArguments(message: string, cause?: unknown): RpcError {
  return new RpcError('INVALID_ARGUMENTS', message, cause === undefined ? {} : { cause });
}

// ---- helpers for generated per-type converters ---------------------------------------------------

/**
 * A float marked with its schema width, so the MessagePack codec writes float 32 for `f32` and
 * float 64 for `f64` even when the value is integral (JavaScript has one number type; without the
 * mark `2.0` would go out as the int `2`). The JSON codec writes the plain number. Generated
 * encoders wrap every f32/f64 position; applications never see these.
 */
export class WireFloat {
  constructor(
    readonly value: number,
    readonly bits: 32 | 64,
  ) {}
}

/** Marks an `f32` position (see {@link WireFloat}). */
export function f32(value: number): WireFloat {
  return new WireFloat(value, 32);
}

/** Marks an `f64` position (see {@link WireFloat}). */
export function f64(value: number): WireFloat {
  return new WireFloat(value, 64);
}

/** A struct or enum position: a plain object (a decoded MessagePack map or JSON object). */
export function object(value: unknown): Record<string, unknown> {
  if (typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array)) {
    return value as Record<string, unknown>;
  }
  throw new TypeError(`expected a map, got ${value === null ? 'nil' : Array.isArray(value) ? 'an array' : typeof value}`);
}

/** A list position. */
export function list(value: unknown): unknown[] {
  if (Array.isArray(value)) return value;
  throw new TypeError(`expected an array, got ${value === null ? 'nil' : typeof value}`);
}

/** An optional position: nil and absent both mean absent (PROTOCOL.md §5). */
export function optional<T>(value: unknown, decode: (v: unknown) => T): T | undefined {
  return value === undefined || value === null ? undefined : decode(value);
}

/** A required value (argument or field): absent or nil is an error. */
export function required(value: unknown, what: string): unknown {
  if (value === undefined || value === null) throw new TypeError(`missing ${what}`);
  return value;
}

/** A map key of an integer type as a number (object keys arrive as decimal strings); RangeError beyond 2^53. */
export function intKey(key: string): number {
  const n = Number(key);
  if (!DECIMAL.test(key)) throw new TypeError(`expected an integer map key, got ${JSON.stringify(key)}`);
  if (!Number.isSafeInteger(n)) throw new RangeError(`map key ${key} does not fit in a number exactly`);
  return n;
}

/** A map key of type i64/u64. */
export function bigintKey(key: string): bigint {
  return toBigInt(key);
}

/** A map key of type string. */
export function stringKey(key: string): string {
  return key;
}

/**
 * A `map<K, V>` position: a decoded MessagePack map or JSON object (keys as strings) → `Map`.
 * `Map` rather than a plain object because integer keys must stay integers on the way back out
 * (MessagePack int keys, PROTOCOL.md §5) and because any string, `__proto__` included, is a valid key.
 */
export function toMap<K, V>(value: unknown, key: (k: string) => K, decode: (v: unknown) => V): Map<K, V> {
  const out = new Map<K, V>();
  if (value instanceof Map) {
    for (const [k, v] of value as Map<unknown, unknown>) out.set(key(String(k)), decode(v));
    return out;
  }
  for (const [k, v] of Object.entries(object(value))) out.set(key(k), decode(v));
  return out;
}

/** Converts the values of a map (keys are written as they are). */
export function mapValues<K, V>(map: ReadonlyMap<K, V>, encode: (v: V) => unknown): Map<K, unknown> {
  const out = new Map<K, unknown>();
  for (const [k, v] of map) out.set(k, encode(v));
  return out;
}

/**
 * An i64/u64 position generated with 64-bit integers as `number` (wsp-codegen's `Int64::Number`):
 * like {@link toBigInt}, then a RangeError unless the value is a safe integer (|v| ≤ 2^53 − 1),
 * instead of silently losing precision.
 */
export function toSafeInteger(value: unknown): number {
  const big = toBigInt(value);
  if (big > BigInt(Number.MAX_SAFE_INTEGER) || big < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new RangeError(`64-bit integer ${big} does not fit in a number exactly`);
  }
  return Number(big);
}

/** Sends a `number` in an i64/u64 position: a RangeError unless it is a safe integer. */
export function int64(value: number): bigint {
  if (!Number.isSafeInteger(value)) throw new RangeError(`${value} is not a safe integer for a 64-bit position`);
  return BigInt(value);
}
