/**
 * The conformance vectors' types (tests/vectors/values.json): a type string (a primitive or a
 * qualified schema type from schemas/*.wsp) → the generated decoder and encoder.
 */
import { convert, createCodec, type CodecKind } from '@wsp/runtime';
import * as common from '../../generated/common.js';
import * as geometry from '../../generated/geometry.js';
import * as sink from '../../generated/kitchen.sink.js';
import * as chat from '../../generated/chat.js';
import * as math from '../../generated/math.js';

export interface VectorType {
  decode(value: unknown, codec: CodecKind): unknown;
  encode(value: unknown): unknown;
}

const identity = (v: unknown): unknown => v;

const PRIMITIVES: Record<string, VectorType> = {
  bool: { decode: (v) => v as boolean, encode: identity },
  i8: { decode: convert.toNumber, encode: identity },
  i16: { decode: convert.toNumber, encode: identity },
  i32: { decode: convert.toNumber, encode: identity },
  u8: { decode: convert.toNumber, encode: identity },
  u16: { decode: convert.toNumber, encode: identity },
  u32: { decode: convert.toNumber, encode: identity },
  i64: { decode: convert.toBigInt, encode: identity },
  u64: { decode: convert.toBigInt, encode: identity },
  f32: { decode: convert.toFloat, encode: (v) => convert.f32(v as number) },
  f64: { decode: convert.toFloat, encode: (v) => convert.f64(v as number) },
  string: { decode: (v) => v as string, encode: identity },
  bytes: { decode: (v, codec) => convert.toBytes(v, codec), encode: identity },
};

const MODULES: Record<string, Record<string, unknown>> = {
  common,
  geometry,
  'kitchen.sink': sink,
  chat,
  math,
};

/** The converters for a type string; throws for a type the vectors do not use. */
export function vectorType(type: string): VectorType {
  const primitive = PRIMITIVES[type];
  if (primitive !== undefined) return primitive;
  const dot = type.lastIndexOf('.');
  const module = MODULES[type.slice(0, dot)];
  const name = type.slice(dot + 1);
  if (module === undefined) throw new Error(`no generated module for ${type}`);
  const decode = module[`decode${name}`];
  const encode = module[`encode${name}`];
  return {
    decode: typeof decode === 'function' ? (decode as VectorType['decode']) : identity,
    encode: typeof encode === 'function' ? (encode as VectorType['encode']) : identity,
  };
}

export interface Vector {
  name: string;
  type: string;
  json: string;
  msgpack: string;
}

export interface Alternate {
  name: string;
  type: string;
  /** Exactly one of json/msgpack: an accepted, non-canonical form. */
  json?: string;
  msgpack?: string;
  /** The vector whose value it decodes to. */
  same_as: string;
}

export interface VectorFile {
  description: string[];
  vectors: Vector[];
  alternates: Alternate[];
}

const convertCodecs = { msgpack: createCodec('msgpack'), json: createCodec('json') };

export const toHex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
export const fromHex = (hex: string): Uint8Array => new Uint8Array(Buffer.from(hex, 'hex'));

/** One value on its own in MessagePack: a frame `[value]` without its 1-byte array header. */
export function msgpackOf(value: unknown): Uint8Array {
  const bytes = convertCodecs.msgpack.encode([value]) as Uint8Array;
  if (bytes[0] !== 0x91) throw new Error('expected a fixarray of one');
  return bytes.subarray(1);
}

/** One value on its own in JSON: a frame `[value]` without the brackets. */
export function jsonOf(value: unknown): string {
  const text = convertCodecs.json.encode([value]) as string;
  return text.slice(1, -1);
}

/** Decodes a single MessagePack value (wrapped in a one-element array for the codec). */
export function fromMsgpack(bytes: Uint8Array): unknown {
  const framed = new Uint8Array(bytes.length + 1);
  framed[0] = 0x91;
  framed.set(bytes, 1);
  return (convertCodecs.msgpack.decode(framed) as unknown[])[0];
}

export function fromJson(text: string): unknown {
  return (convertCodecs.json.decode(`[${text}]`) as unknown[])[0];
}

