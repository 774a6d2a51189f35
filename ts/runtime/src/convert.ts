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
