/**
 * The shared conformance vectors (tests/vectors/values.json) through the generated converters and
 * the runtime's codecs: MessagePack bytes and JSON text decode to the same value, and encoding
 * that value gives exactly those bytes and that text back. Alternates decode to their vector's value.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { type VectorFile, fromHex, fromJson, fromMsgpack, jsonOf, msgpackOf, toHex, vectorType } from './vector-types.js';

const file = JSON.parse(
  readFileSync(new URL('../../../../../tests/vectors/values.json', import.meta.url), 'utf8'),
) as VectorFile;

describe('conformance vectors', () => {
  test('the file has vectors of every primitive and of recursive types', () => {
    const types = new Set(file.vectors.map((v) => v.type));
    for (const t of ['bool', 'i8', 'i16', 'i32', 'i64', 'u8', 'u16', 'u32', 'u64', 'f32', 'f64', 'string', 'bytes']) {
      assert.ok(types.has(t), t);
    }
    for (const t of ['kitchen.sink.Node', 'kitchen.sink.Tree', 'kitchen.sink.Expr', 'kitchen.sink.Containers']) assert.ok(types.has(t), t);
  });

  for (const v of file.vectors) {
    test(`${v.type}: ${v.name}`, () => {
      const t = vectorType(v.type);
      const fromBytes = t.decode(fromMsgpack(fromHex(v.msgpack)), 'msgpack');
      const fromText = t.decode(fromJson(v.json), 'json');
      assert.deepStrictEqual(fromBytes, fromText);
      assert.equal(toHex(msgpackOf(t.encode(fromBytes))), v.msgpack);
      assert.equal(jsonOf(t.encode(fromText)), v.json);
    });
  }

  for (const a of file.alternates) {
    test(`accepted: ${a.type}: ${a.name}`, () => {
      const t = vectorType(a.type);
      const canonical = file.vectors.find((v) => v.name === a.same_as);
      assert.ok(canonical !== undefined, `no vector named ${a.same_as}`);
      const expected = t.decode(fromJson(canonical.json), 'json');
      const got =
        a.msgpack !== undefined ? t.decode(fromMsgpack(fromHex(a.msgpack)), 'msgpack') : t.decode(fromJson(a.json ?? ''), 'json');
      assert.deepStrictEqual(got, expected);
    });
  }
});
