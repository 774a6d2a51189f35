/**
 * Writes tests/vectors/values.json from the canonical JSON texts below: each is decoded with the
 * generated decoder, re-encoded (it must give the same JSON text back) and encoded to MessagePack.
 * The result is then the contract every implementation is tested against (the TS tests in
 * test/vectors.test.ts, the Rust tests against generated Rust types). Run after changing the list:
 * `npm run build && node dist/tests/tools/make-vectors.js` (in ts/tests). Review the diff by hand.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Alternate, type Vector, type VectorFile, fromJson, jsonOf, msgpackOf, toHex, vectorType } from '../test/vector-types.js';

const I64_MIN = '"-9223372036854775808"';
const I64_MAX = '"9223372036854775807"';
const U64_MAX = '"18446744073709551615"';

const PRIMS = (extra: string): string =>
  `{"a_bool":true,"an_i8":-128,"an_i16":-32768,"an_i32":-2147483648,"an_i64":${I64_MIN},"a_u8":255,"a_u16":65535,` +
  `"a_u32":4294967295,"a_u64":${U64_MAX},"an_f32":1.5,"an_f64":-0.1,"a_string":"héllo ✓","some_bytes":"AAEC/w=="${extra}}`;

const CANONICAL: Array<[name: string, type: string, json: string]> = [
  ['bool true', 'bool', 'true'],
  ['bool false', 'bool', 'false'],
  ['i8 min', 'i8', '-128'],
  ['i8 max', 'i8', '127'],
  ['i16 min', 'i16', '-32768'],
  ['i32 min', 'i32', '-2147483648'],
  ['i32 max', 'i32', '2147483647'],
  ['u8 max', 'u8', '255'],
  ['u16 max', 'u16', '65535'],
  ['u32 max', 'u32', '4294967295'],
  ['i64 zero', 'i64', '"0"'],
  ['i64 minus one', 'i64', '"-1"'],
  ['i64 min', 'i64', I64_MIN],
  ['i64 max', 'i64', I64_MAX],
  ['i64 2^53 + 1 (not a double)', 'i64', '"9007199254740993"'],
  ['i64 -2^31 - 1', 'i64', '"-2147483649"'],
  ['u64 zero', 'u64', '"0"'],
  ['u64 2^32', 'u64', '"4294967296"'],
  ['u64 max', 'u64', U64_MAX],
  ['f32 1.5 (float 32)', 'f32', '1.5'],
  ['f32 -0.25', 'f32', '-0.25'],
  ['f32 integral 3.0 stays a float', 'f32', '3.0'],
  ['f64 0.1', 'f64', '0.1'],
  ['f64 -1.5', 'f64', '-1.5'],
  ['f64 integral 2.0 stays a float', 'f64', '2.0'],
  ['f64 2^53 + 2', 'f64', '9007199254740994.0'],
  ['f64 infinity (a string in JSON)', 'f64', '"Infinity"'],
  ['f64 -infinity (a string in JSON)', 'f64', '"-Infinity"'],
  ['f32 infinity (a string in JSON)', 'f32', '"Infinity"'],
  ['string empty', 'string', '""'],
  ['string non-ASCII', 'string', '"héllo ✓ 😀"'],
  ['string with escapes', 'string', '"quote \\" backslash \\\\ newline \\n"'],
  ['bytes empty', 'bytes', '""'],
  ['bytes', 'bytes', '"AAEC/w=="'],
  ['struct with u64 (common.Timestamp)', 'common.Timestamp', `{"millis":${U64_MAX}}`],
  ['struct, optional absent', 'geometry.Point', '{"x":1.5,"y":-2.0}'],
  ['struct, optional present', 'geometry.Point', '{"x":0.0,"y":0.5,"label":"origin"}'],
  ['enum data variant', 'geometry.Shape', '{"$type":"Circle","center":{"x":1.0,"y":2.0},"radius":0.5}'],
  ['enum with a list', 'geometry.Shape', '{"$type":"Polygon","points":[{"x":0.0,"y":0.0},{"x":1.0,"y":0.0,"label":"b"}]}'],
  ['enum unit variant', 'geometry.Shape', '{"$type":"Empty"}'],
  ['error with fields', 'geometry.GeometryError', '{"$type":"Degenerate","reason":"flat"}'],
  ['error unit variant', 'geometry.GeometryError', '{"$type":"TooLarge"}'],
  ['struct across packages', 'geometry.Measurement', `{"area":12.25,"at":{"millis":"1700000000000"}}`],
  ['every primitive, optionals absent', 'kitchen.sink.Primitives', PRIMS('')],
  [
    'every primitive, optionals present',
    'kitchen.sink.Primitives',
    PRIMS(`,"maybe_bool":false,"maybe_i64":"9007199254740993","maybe_u64":"0","maybe_bytes":"","maybe_string":""`),
  ],
  [
    'containers: lists, maps with int and string keys (sorted), optionals in lists',
    'kitchen.sink.Containers',
    '{"numbers":[1,-2,3],"matrix":[[1.0,2.5],[]],"by_name":{},' +
      `"by_id":{"0":"zero","4294967296":"2^32",${U64_MAX}:"max"},` +
      '"by_small_id":{"-128":[],"-1":["a",null],"2":[null]},' +
      '"by_u32":{"7":{"a":["1"],"b":[],"é":["-9223372036854775808"]}},' +
      '"list_of_maybe":[null],"maybe_map":{"-5":true,"10":false},' +
      '"deep":[{"k":[{"1":"CQ==","2":null}]}]}',
  ],
  [
    'containers: absent optionals, string keys in code point order',
    'kitchen.sink.Containers',
    '{"numbers":[],"matrix":[],"by_name":{"B":' +
      PRIMS('') +
      '},"by_id":{},"by_small_id":{},"by_u32":{"0":{"Z":[],"a":[],"é":[],"\uffff":[],"😀":[]}},"list_of_maybe":[],"deep":[]}',
  ],
  ['recursive struct (linked list)', 'kitchen.sink.Node', `{"value":"1","next":{"value":"-1","next":{"value":${I64_MAX}}}}`],
  [
    'recursive struct (tree)',
    'kitchen.sink.Tree',
    '{"label":"root","children":[{"label":"leaf","children":[],"by_key":{}}],"by_key":{"x":{"label":"x","children":[],"by_key":{}}}}',
  ],
  ['mutual recursion', 'kitchen.sink.A', '{"b":{"a":{"b":{}}}}'],
  [
    'recursive enum',
    'kitchen.sink.Expr',
    '{"$type":"Add","left":{"$type":"Literal","value":1.0},"right":{"$type":"Sum","terms":[{"$type":"Negate","inner":{"$type":"Nothing"}}]}}',
  ],
  ['enum unit variant (Mode)', 'kitchen.sink.Mode', '{"$type":"Fast"}'],
  ['enum data variant (Mode)', 'kitchen.sink.Mode', '{"$type":"Careful","retries":3}'],
  ['error with optional field absent', 'kitchen.sink.SinkError', '{"$type":"Broken","part":"gear"}'],
  ['error with optional field present', 'kitchen.sink.SinkError', '{"$type":"Broken","part":"gear","code":7}'],
  ['error variant named Unknown', 'kitchen.sink.SinkError', '{"$type":"Unknown"}'],
  ['chat message', 'chat.Message', `{"author":"ann","text":"hi","sent_at":"1700000000000"}`],
  ['math error', 'math.MathError', '{"$type":"Overflow","operation":"add"}'],
];

/** Accepted non-canonical forms (PROTOCOL.md §5 "receivers also accept"), decode only. */
const ALTERNATES: Alternate[] = [
  { name: 'i64 as a JSON number', type: 'i64', json: '-1', same_as: 'i64 minus one' },
  { name: 'u64 as a JSON number', type: 'u64', json: '4294967296', same_as: 'u64 2^32' },
  { name: 'f64 as a MessagePack int', type: 'f64', msgpack: '02', same_as: 'f64 integral 2.0 stays a float' },
  { name: 'f64 as a JSON integer', type: 'f64', json: '2', same_as: 'f64 integral 2.0 stays a float' },
  { name: 'f32 as a MessagePack float 64', type: 'f32', msgpack: 'cb3ff8000000000000', same_as: 'f32 1.5 (float 32)' },
  { name: 'u64 in a wide int (uint 64)', type: 'u64', msgpack: 'cf0000000000000000', same_as: 'u64 zero' },
  { name: 'optional field as nil (MessagePack)', type: 'geometry.Point', msgpack: '83a178cb3ff8000000000000a179cbc000000000000000a56c6162656cc0', same_as: 'struct, optional absent' },
  { name: 'optional field as null (JSON)', type: 'geometry.Point', json: '{"x":1.5,"y":-2.0,"label":null}', same_as: 'struct, optional absent' },
  { name: 'unknown keys are ignored', type: 'geometry.Point', json: '{"z":1,"x":1.5,"y":-2.0}', same_as: 'struct, optional absent' },
  { name: 'fields in another order', type: 'geometry.Point', json: '{"y":-2.0,"x":1.5}', same_as: 'struct, optional absent' },
];

const vectors: Vector[] = CANONICAL.map(([name, type, json]) => {
  const t = vectorType(type);
  const value = t.decode(fromJson(json), 'json');
  const again = jsonOf(t.encode(value));
  if (again !== json) throw new Error(`${name}: JSON does not round-trip:\n  ${json}\n  ${again}`);
  return { name, type, json, msgpack: toHex(msgpackOf(t.encode(value))) };
});

const file: VectorFile = {
  description: [
    'Conformance vectors of the wsp value encoding (PROTOCOL.md §5), shared by the TypeScript and Rust tests.',
    'type: a primitive or a qualified type of schemas/*.wsp (loaded together).',
    'vectors: json is the exact text and msgpack the exact bytes (hex) every writer produces for the value;',
    '  every reader decodes both to the same value. Struct fields in declaration order, $type first,',
    '  absent optionals omitted, map keys sorted (integers numerically, strings by code point),',
    '  integers in their smallest MessagePack form, f32 as float 32 and f64 as float 64 even when integral',
    '  (JSON: integral floats with .0), i64/u64 as JSON strings, bytes as standard base64.',
    'alternates: non-canonical forms readers must accept (decode only), each equal to the vector named by same_as.',
    'Generated by ts/tests/tools/make-vectors.ts; reviewed by hand.',
  ],
  vectors,
  alternates: ALTERNATES,
};

const out = fileURLToPath(new URL('../../../../../tests/vectors/values.json', import.meta.url));
writeFileSync(out, `${JSON.stringify(file, null, 2)}\n`);
console.log(`wrote ${vectors.length} vectors and ${ALTERNATES.length} alternates to ${out}`);
