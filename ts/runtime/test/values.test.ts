/** Value encoding details generated code relies on: Map, float widths, sorted keys, 64-bit keys. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { convert, createCodec } from '../src/index.js';

const mp = createCodec('msgpack');
const json = createCodec('json');
const bytes = (v: unknown): string => Buffer.from((mp.encode([v]) as Uint8Array).subarray(1)).toString('hex');
const text = (v: unknown): string => (json.encode([v]) as string).slice(1, -1);

describe('values', () => {
  test('f32/f64 marks: float 32 / float 64 even when integral; JSON writes 2.0', () => {
    assert.equal(bytes(convert.f32(1.5)), 'ca3fc00000');
    assert.equal(bytes(convert.f64(2)), 'cb4000000000000000');
    assert.equal(bytes(2), '02');
    assert.equal(text(convert.f64(2)), '2.0');
    assert.equal(text(convert.f64(-0.5)), '-0.5');
    assert.equal(text(convert.f32(3)), '3.0');
    // JSON has no number for these: strings, as the Rust runtime writes them (PROTOCOL.md §5).
    assert.equal(text(convert.f64(Number.NaN)), '"NaN"');
    assert.equal(text(convert.f32(-Infinity)), '"-Infinity"');
  });

  test('Map: MessagePack map with int or string keys, sorted', () => {
    assert.equal(bytes(new Map([[2, 'b'], [-1, 'a']])), '82ffa161' + '02a162');
    assert.equal(bytes(new Map([[2n ** 64n - 1n, true], [0n, false]])), '8200c2cfffffffffffffffffc3');
    // Code point order (UTF-8 byte order), not UTF-16 order: U+FFFF before U+1F600.
    assert.equal(text(new Map([['😀', 1], ['\uffff', 2], ['a', 3]])), '{"a":3,"\uffff":2,"😀":1}');
    assert.equal(text(new Map([[10, 1], [-5, 2], [2, 3]])), '{"-5":2,"2":3,"10":1}');
    assert.equal(text(new Map()), '{}');
  });

  test('JSON writer: bigint, bytes, undefined members, nested arrays', () => {
    assert.equal(text({ a: 1n, b: undefined, c: new Uint8Array([0, 255]), d: [undefined, null, 'x"'] }), '{"a":"1","c":"AP8=","d":[null,null,"x\\""]}');
    assert.equal(text(-(2n ** 63n)), '"-9223372036854775808"');
  });

  test('map keys that need 64 bits decode (as decimal strings for the generated converters)', () => {
    const framed = mp.encode([new Map([[2n ** 64n - 1n, 'max']])]) as Uint8Array;
    const decoded = (mp.decode(framed) as unknown[])[0];
    assert.deepEqual(decoded, { '18446744073709551615': 'max' });
    assert.deepEqual(convert.toMap(decoded, convert.bigintKey, (v) => v as string), new Map([[2n ** 64n - 1n, 'max']]));
  });

  test('converters reject wrong shapes with TypeError', () => {
    assert.throws(() => convert.object([]), TypeError);
    assert.throws(() => convert.list({}), TypeError);
    assert.throws(() => convert.required(null, 'x'), TypeError);
    assert.throws(() => convert.intKey('1.5'), TypeError);
    assert.equal(convert.optional(null, () => 1), undefined);
    assert.equal(convert.intKey('-7'), -7);
  });
});
