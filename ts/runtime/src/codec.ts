/**
 * The two codecs (PROTOCOL.md §1, §5): MessagePack in binary frames and JSON in text frames.
 *
 * A codec turns one frame (an array) into one WebSocket message and back. Payload conversions that
 * need the schema (i64 strings → bigint in JSON, ints in 64-bit positions → bigint, base64 →
 * Uint8Array) are left to generated converters; the encode direction is generic and done here:
 * JSON writes bigint as a decimal string and Uint8Array as base64, so callers never have to care.
 */
import { Decoder, Encoder } from '@msgpack/msgpack';
import { bytesToBase64 } from './base64.js';

export type CodecKind = 'msgpack' | 'json';

export const SUBPROTOCOL: Readonly<Record<CodecKind, string>> = {
  msgpack: 'wsp.v1.msgpack',
  json: 'wsp.v1.json',
};

/** The codec for a negotiated subprotocol; '' (none negotiated) means MessagePack (§1). */
export function codecForSubprotocol(protocol: string): CodecKind | undefined {
  if (protocol === '' || protocol === SUBPROTOCOL.msgpack) return 'msgpack';
  if (protocol === SUBPROTOCOL.json) return 'json';
  return undefined;
}

/** Why a message could not be decoded; the peer maps it to a close code (§7). */
export class DecodeFailure extends Error {
  constructor(
    /** 'kind': wrong frame kind for the codec (1003); 'bytes': not valid MessagePack/JSON (1007). */
    readonly kind: 'kind' | 'bytes',
    message: string,
  ) {
    super(message);
    this.name = 'DecodeFailure';
  }
}

export interface Codec {
  readonly kind: CodecKind;
  readonly subprotocol: string;
  /** Encodes one frame. Throws (TypeError/RangeError) on values the codec cannot represent. */
  encode(frame: readonly unknown[]): Uint8Array | string;
  /** Decodes one message; throws {@link DecodeFailure}. */
  decode(data: Uint8Array | string): unknown;
}

// ---- MessagePack -------------------------------------------------------------------------------

const TWO_32 = 2 ** 32;
const MIN_I32 = -(2 ** 31);
const BIG_TWO_32 = 1n << 32n;
const BIG_MIN_I32 = -(1n << 31n);
const BIG_MAX_U64 = (1n << 64n) - 1n;
const BIG_MIN_I64 = -(1n << 63n);

/** The parts of @msgpack/msgpack's Encoder we adjust (JavaScript methods, private only in its .d.ts). */
interface EncoderInternals {
  encodeNumber(n: number): void;
  encodeBigInt64(b: bigint): void;
}

/**
 * An Encoder that writes integers in their smallest form whether they arrive as number or bigint.
 *
 * @msgpack/msgpack with `useBigInt64: true` writes every bigint as a 9-byte int64/uint64 and every
 * integral number beyond 32 bits as a float64 (losing the "int" type a Rust peer expects for u64);
 * with `useBigInt64: false` it cannot write bigint at all. We keep `useBigInt64: true` and route the
 * two cases to each other: safe integers beyond 32 bits go to the 64-bit writer, bigints that fit in
 * 32 bits go to the compact number writer. Out-of-range bigints throw instead of wrapping silently.
 * A test pins the byte output so a change inside the library is caught.
 */
function createMsgpackEncoder(): Encoder {
  const encoder = new Encoder({ useBigInt64: true, ignoreUndefined: true });
  const internals = encoder as unknown as EncoderInternals;
  const encodeNumber = internals.encodeNumber.bind(encoder);
  const encodeBigInt64 = internals.encodeBigInt64.bind(encoder);
  internals.encodeNumber = (n: number): void => {
    if (Number.isSafeInteger(n) && (n >= TWO_32 || n < MIN_I32)) encodeBigInt64(BigInt(n));
    else encodeNumber(n);
  };
  internals.encodeBigInt64 = (b: bigint): void => {
    if (b >= BIG_MIN_I32 && b < BIG_TWO_32) encodeNumber(Number(b));
    else if (b > BIG_MAX_U64 || b < BIG_MIN_I64) throw new RangeError(`integer ${b} does not fit in 64 bits`);
    else encodeBigInt64(b);
  };
  return encoder;
}

class MsgpackCodec implements Codec {
  readonly kind = 'msgpack' as const;
  readonly subprotocol = SUBPROTOCOL.msgpack;
  private readonly encoder = createMsgpackEncoder();
  // 64-bit ints decode as bigint so values above 2^53 are exact (§9). The decoder is iterative
  // (no recursion), so deep nesting cannot overflow the stack; depth is limited after decoding.
  private readonly decoder = new Decoder({ useBigInt64: true });

  encode(frame: readonly unknown[]): Uint8Array {
    return this.encoder.encode(frame);
  }

  decode(data: Uint8Array | string): unknown {
    if (typeof data === 'string') throw new DecodeFailure('kind', 'text frame on a MessagePack connection');
    try {
      return this.decoder.decode(data);
    } catch (e) {
      throw new DecodeFailure('bytes', `invalid MessagePack: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
}

// ---- JSON --------------------------------------------------------------------------------------

/**
 * JSON.stringify replacer for the generic part of §5: bigint → decimal string (i64/u64),
 * Uint8Array → base64 (bytes), Map → object (map keys as strings), undefined dropped (as msgpack's
 * ignoreUndefined does; JSON.stringify already drops undefined object members).
 */
function jsonReplacer(this: unknown, _key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Uint8Array) return bytesToBase64(value);
  if (ArrayBuffer.isView(value)) {
    return bytesToBase64(new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
  }
  if (value instanceof Map) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of value) out[String(k)] = v;
    return out;
  }
  return value;
}

class JsonCodec implements Codec {
  readonly kind = 'json' as const;
  readonly subprotocol = SUBPROTOCOL.json;

  encode(frame: readonly unknown[]): string {
    return JSON.stringify(frame, jsonReplacer);
  }

  decode(data: Uint8Array | string): unknown {
    if (typeof data !== 'string') throw new DecodeFailure('kind', 'binary frame on a JSON connection');
    try {
      // V8's JSON.parse is iterative, so deep nesting cannot overflow the stack.
      return JSON.parse(data) as unknown;
    } catch (e) {
      throw new DecodeFailure('bytes', `invalid JSON: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
}

/** A fresh codec instance (encoders keep a reusable buffer, so one per connection). */
export function createCodec(kind: CodecKind): Codec {
  return kind === 'msgpack' ? new MsgpackCodec() : new JsonCodec();
}

/**
 * Nesting depth of a decoded value: scalars 0, an array or map 1 + its deepest element. Iterative,
 * and stops as soon as `limit` is exceeded, so a hostile value costs at most its size.
 * Returns true when the depth is within `limit`.
 */
export function depthWithin(value: unknown, limit: number): boolean {
  if (typeof value !== 'object' || value === null || value instanceof Uint8Array) return true;
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [v, d] = stack.pop() as [unknown, number];
    if (d > limit) return false;
    const children = Array.isArray(v) ? v : Object.values(v as Record<string, unknown>);
    for (const c of children) {
      if (typeof c === 'object' && c !== null && !(c instanceof Uint8Array)) stack.push([c, d + 1]);
    }
  }
  return true;
}
