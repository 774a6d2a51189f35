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
import { WireFloat } from './convert.js';

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

/** Deepest value the MessagePack encoder writes (the frame included). */
const ENCODE_MAX_DEPTH = 512;

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
  encodeObject(object: unknown, depth: number): void;
  doEncode(object: unknown, depth: number): void;
  writeU8(v: number): void;
  writeU16(v: number): void;
  writeU32(v: number): void;
  writeF32(v: number): void;
  writeF64(v: number): void;
  maxDepth: number;
}

/**
 * Map keys in the order every wsp writer uses (PROTOCOL.md §5 vectors): integers numerically,
 * strings by Unicode code point (the UTF-8 byte order Rust's BTreeMap<String, _> uses).
 */
export function compareMapKeys(a: unknown, b: unknown): number {
  if (typeof a === 'string' && typeof b === 'string') return compareCodePoints(a, b);
  if ((typeof a === 'number' || typeof a === 'bigint') && (typeof b === 'number' || typeof b === 'bigint')) {
    return a < b ? -1 : a > b ? 1 : 0;
  }
  return typeof a < typeof b ? -1 : typeof a > typeof b ? 1 : 0;
}

function compareCodePoints(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i) ?? 0;
    const y = b.codePointAt(i) ?? 0;
    if (x !== y) return x < y ? -1 : 1;
    if (x > 0xffff) i++;
  }
  return a.length - b.length;
}

function sortedEntries(map: ReadonlyMap<unknown, unknown>): Array<[unknown, unknown]> {
  return [...map.entries()].sort((x, y) => compareMapKeys(x[0], y[0]));
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
  // The library's own depth limit (100) would refuse values a peer accepts (limits.maxDepth, 128 by
  // default) once the frame around them is counted; the recursion is shallow enough at 512.
  const encoder = new Encoder({ useBigInt64: true, ignoreUndefined: true, maxDepth: ENCODE_MAX_DEPTH });
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
  // @msgpack/msgpack writes a Map as an empty map (it only looks at own properties) and has no
  // per-value float width: handle both here. Map keys are written sorted so bytes are deterministic.
  const encodeObject = internals.encodeObject.bind(encoder);
  internals.encodeObject = (object: unknown, depth: number): void => {
    if (object instanceof WireFloat) {
      if (object.bits === 32) {
        internals.writeU8(0xca);
        internals.writeF32(object.value);
      } else {
        internals.writeU8(0xcb);
        internals.writeF64(object.value);
      }
    } else if (object instanceof Map) {
      const size = object.size;
      if (size < 16) internals.writeU8(0x80 + size);
      else if (size < 0x10000) {
        internals.writeU8(0xde);
        internals.writeU16(size);
      } else {
        internals.writeU8(0xdf);
        internals.writeU32(size);
      }
      for (const [k, v] of sortedEntries(object as ReadonlyMap<unknown, unknown>)) {
        internals.doEncode(k, depth + 1);
        internals.doEncode(v, depth + 1);
      }
    } else encodeObject(object, depth);
  };
  return encoder;
}

function mapKey(key: unknown): string | number {
  if (typeof key === 'string' || typeof key === 'number') return key;
  if (typeof key === 'bigint') return key.toString();
  throw new TypeError(`map keys must be strings or integers, got ${typeof key}`);
}

class MsgpackCodec implements Codec {
  readonly kind = 'msgpack' as const;
  readonly subprotocol = SUBPROTOCOL.msgpack;
  private readonly encoder = createMsgpackEncoder();
  // 64-bit ints decode as bigint so values above 2^53 are exact (§9). The decoder is iterative
  // (no recursion), so deep nesting cannot overflow the stack; depth is limited after decoding.
  // Map keys that only fit in 64 bits arrive as bigint; plain objects need string keys, and the
  // generated map converters parse them back (the default converter would reject them).
  private readonly decoder = new Decoder({ useBigInt64: true, mapKeyConverter: mapKey });

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
 * Writes JSON for the generic part of §5: bigint → decimal string (i64/u64), Uint8Array → base64
 * (bytes), Map → object with keys as strings, written in sorted key order (integers numerically),
 * {@link WireFloat} → its number (`2.0` when integral), NaN and ±infinity (typed or not) → the
 * strings `"NaN"`, `"Infinity"`, `"-Infinity"`, `undefined` object members omitted as in
 * JSON.stringify (an `undefined` array element or Map value is `null`). Own writer rather than
 * JSON.stringify with a replacer because a Map converted to an object would have its integer-like
 * keys reordered by JavaScript's property order.
 */
export function stringifyJson(value: unknown): string {
  return writeJson(value);
}

/** Strings that need no escaping: printable ASCII without `"` and `\` (the common case). */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

function jsonString(s: string): string {
  return PLAIN.test(s) ? `"${s}"` : JSON.stringify(s);
}

const hasOwn = Object.prototype.hasOwnProperty;

// String concatenation rather than parts joined at the end: V8 builds ropes, about twice the time
// of the native JSON.stringify for typical payloads.
function writeJson(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return jsonString(value);
    case 'number':
      // JSON has no number for NaN and ±infinity: the strings of PROTOCOL §5, as for typed floats.
      if (!Number.isFinite(value)) return Number.isNaN(value) ? '"NaN"' : value > 0 ? '"Infinity"' : '"-Infinity"';
      return String(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'bigint':
      return `"${value.toString()}"`;
    case 'object':
      break;
    default:
      return 'null';
  }
  if (value === null) return 'null';
  if (Array.isArray(value)) {
    let s = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) s += ',';
      s += writeJson(value[i]);
    }
    return `${s}]`;
  }
  if (value instanceof WireFloat) {
    // An integral float is written `2.0`, as serde_json writes f32/f64, so both writers agree; the
    // values JSON has no number for are strings (PROTOCOL §5), as the Rust runtime writes them.
    const v = value.value;
    if (!Number.isFinite(v)) return Number.isNaN(v) ? '"NaN"' : v > 0 ? '"Infinity"' : '"-Infinity"';
    const text = String(v);
    return /^-?\d+$/.test(text) ? `${text}.0` : text;
  }
  if (value instanceof Uint8Array) return `"${bytesToBase64(value)}"`;
  if (ArrayBuffer.isView(value)) {
    return `"${bytesToBase64(new Uint8Array(value.buffer, value.byteOffset, value.byteLength))}"`;
  }
  if (value instanceof Map) {
    let s = '{';
    let first = true;
    for (const [k, v] of sortedEntries(value as ReadonlyMap<unknown, unknown>)) {
      if (!first) s += ',';
      first = false;
      s += `${jsonString(String(k))}:${writeJson(v)}`;
    }
    return `${s}}`;
  }
  const obj = value as Record<string, unknown>;
  const toJson = (obj as { toJSON?: unknown }).toJSON;
  if (typeof toJson === 'function') return writeJson((toJson as () => unknown).call(obj));
  let s = '{';
  let first = true;
  for (const k in obj) {
    if (!hasOwn.call(obj, k)) continue;
    const v = obj[k];
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
    if (!first) s += ',';
    first = false;
    s += `${jsonString(k)}:${writeJson(v)}`;
  }
  return `${s}}`;
}

class JsonCodec implements Codec {
  readonly kind = 'json' as const;
  readonly subprotocol = SUBPROTOCOL.json;

  encode(frame: readonly unknown[]): string {
    return stringifyJson(frame);
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
