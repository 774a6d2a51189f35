/** Codecs, frames, limits and helpers without sockets. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import {
  ApplicationError,
  DEFAULT_LIMITS,
  FrameType,
  MalformedFrame,
  RpcError,
  base64ToBytes,
  bytesToBase64,
  codeNameOf,
  convert,
  createCodec,
  parseFrame,
} from '../src/index.js';
import { depthWithin } from '../src/codec.js';

describe('MessagePack codec', () => {
  const c = createCodec('msgpack');
  const bytes = (v: unknown): number[] => [...(c.encode([v]) as Uint8Array)].slice(1); // drop the fixarray header

  test('integers use their smallest form whether number or bigint', () => {
    assert.deepEqual(bytes(5), [0x05]);
    assert.deepEqual(bytes(5n), [0x05]);
    assert.deepEqual(bytes(-1n), [0xff]);
    assert.deepEqual(bytes(300n), [0xcd, 0x01, 0x2c]);
    assert.deepEqual(bytes(2 ** 32 - 1), [0xce, 0xff, 0xff, 0xff, 0xff]);
    assert.deepEqual(bytes(2 ** 40), [0xcf, 0, 0, 1, 0, 0, 0, 0, 0]); // int, not float 64
    assert.deepEqual(bytes(-(2 ** 40)), [0xd3, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0]);
    assert.deepEqual(bytes(1.5), [0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0]);
    assert.throws(() => c.encode([2n ** 64n]), RangeError);
    assert.throws(() => c.encode([-(2n ** 63n) - 1n]), RangeError);
  });

  test('64-bit values decode as bigint, exactly', () => {
    for (const v of [2n ** 53n + 1n, 2n ** 64n - 1n, -(2n ** 63n)]) {
      assert.deepEqual(c.decode(c.encode([v]) as Uint8Array), [v]);
    }
  });

  test('undefined properties are omitted, bytes are bin', () => {
    assert.deepEqual(c.decode(c.encode([{ a: 1, b: undefined }]) as Uint8Array), [{ a: 1 }]);
    assert.deepEqual(c.decode(c.encode([new Uint8Array([1, 2])]) as Uint8Array), [new Uint8Array([1, 2])]);
  });

  test('wrong frame kind and bad bytes are told apart', () => {
    assert.throws(() => c.decode('[]'), (e: unknown) => (e as { kind: string }).kind === 'kind');
    assert.throws(() => c.decode(new Uint8Array([0xc1])), (e: unknown) => (e as { kind: string }).kind === 'bytes');
    assert.throws(() => c.decode(new Uint8Array([0x90, 0x90])), (e: unknown) => (e as { kind: string }).kind === 'bytes');
  });
});

describe('JSON codec', () => {
  const c = createCodec('json');
  test('bigint → decimal string, bytes → base64, Map → object', () => {
    assert.equal(
      c.encode([1, 2n ** 63n, new Uint8Array([0xff, 0, 1]), new Map([[1, 'a']]), { x: undefined }]),
      '[1,"9223372036854775808","/wAB",{"1":"a"},{}]',
    );
    assert.throws(() => c.decode(new Uint8Array([0x5b, 0x5d])), (e: unknown) => (e as { kind: string }).kind === 'kind');
    assert.throws(() => c.decode('[1,'), (e: unknown) => (e as { kind: string }).kind === 'bytes');
  });

  test('untyped non-finite numbers are the same strings, so a typed reader gets them back', () => {
    assert.equal(c.encode([NaN, Infinity, -Infinity, 1.5]), '["NaN","Infinity","-Infinity",1.5]');
  });

  test('non-finite floats are the strings "NaN", "Infinity", "-Infinity" and read back', () => {
    const text = c.encode([convert.f64(NaN), convert.f64(Infinity), convert.f32(-Infinity), convert.f64(2)]);
    assert.equal(text, '["NaN","Infinity","-Infinity",2.0]');
    const back = (c.decode(text) as unknown[]).map(convert.toFloat);
    assert.deepStrictEqual(back, [NaN, Infinity, -Infinity, 2]);
    assert.throws(() => convert.toFloat('inf'), TypeError);
    assert.throws(() => convert.toFloat(null), TypeError);
  });
});

describe('frames', () => {
  test('valid frames parse; extra trailing elements are ignored', () => {
    assert.deepEqual(parseFrame([0, 1, { a: '' }]), { type: 0, version: 1, services: { a: '' } });
    assert.deepEqual(parseFrame([1, 7, 'a/b', null, [1], 'extra']), { type: 1, id: 7, method: 'a/b', deadline: null, args: [1] });
    assert.deepEqual(parseFrame([2, 7, 'a/b', 100, 32, []]), { type: 2, id: 7, method: 'a/b', deadline: 100, credit: 32, args: [] });
    assert.deepEqual(parseFrame([9, 1n, 16]), { type: FrameType.CREDIT, id: 1, n: 16 });
  });

  test('malformed envelopes throw MalformedFrame', () => {
    for (const bad of [[], {}, 'x', [10, 1], [1, 1, 'a/b', null], [5, 1, 1, 2, null], [1, -1, 'a', null, []], [0, 1, { a: 1 }], [9, 1, 1.5]]) {
      assert.throws(() => parseFrame(bad), MalformedFrame, JSON.stringify(bad));
    }
  });

  test('depth limit', () => {
    let v: unknown = 0;
    for (let i = 0; i < 10; i++) v = [v];
    assert.equal(depthWithin(v, 10), true);
    assert.equal(depthWithin(v, 9), false);
    assert.equal(depthWithin({ a: { b: new Uint8Array(3) } }, 2), true);
  });

  // docs/behaviour.md, "Default nesting depth limit": 128 in both runtimes.
  test('the default depth limit is 128: arguments nested 128 deep pass both codecs, 129 are refused', () => {
    assert.equal(DEFAULT_LIMITS.maxDepth, 128);
    const nested = (depth: number): unknown[] => {
      let v: unknown[] = [];
      for (let i = 1; i < depth; i++) v = [v];
      return v; // the arguments array itself is the outermost level
    };
    for (const kind of ['msgpack', 'json'] as const) {
      const c = createCodec(kind);
      for (const depth of [128, 129]) {
        const frame = [1, 1, 'm/ping', null, nested(depth)];
        const decoded = c.decode(c.encode(frame)) as unknown[];
        assert.deepEqual(decoded, frame, `${kind} round trip at ${depth}`);
        assert.equal(depthWithin(decoded[4], DEFAULT_LIMITS.maxDepth), depth === 128, `${kind} at ${depth}`);
      }
    }
  });
});

describe('errors and helpers', () => {
  test('unknown wire codes are INTERNAL-like; the hierarchy separates application errors', () => {
    assert.equal(codeNameOf(99), 'INTERNAL');
    assert.equal(codeNameOf(5), 'OVERLOADED');
    const app = new ApplicationError({ $type: 'NotFound', id: 3 });
    assert.equal(app.message, 'NotFound');
    assert.equal(app.wireCode, 8);
    const rpc = new RpcError('DISCONNECTED', 'x');
    assert.equal(rpc.wireCode, undefined);
  });

  test('base64 without Buffer matches the standard', () => {
    for (const n of [0, 1, 2, 3, 4, 100, 70_000]) {
      const b = new Uint8Array(n).map((_, i) => (i * 37 + n) & 0xff);
      const text = bytesToBase64(b);
      assert.equal(text, Buffer.from(b).toString('base64'));
      assert.deepEqual(base64ToBytes(text), b);
    }
    assert.throws(() => base64ToBytes('!!!'), TypeError);
  });

  test('converters for generated code', () => {
    assert.equal(convert.toBigInt('18446744073709551615'), 2n ** 64n - 1n);
    assert.equal(convert.toBigInt(5), 5n);
    assert.throws(() => convert.toBigInt('1e3'), TypeError);
    assert.deepEqual(convert.toBytes('AQI=', 'json'), new Uint8Array([1, 2]));
    assert.throws(() => convert.toBytes('AQI=', 'msgpack'), TypeError);
    assert.equal(convert.invalidArguments('bad').code, 'INVALID_ARGUMENTS');
  });
});

describe('browser safety', () => {
  test('the core bundles for browsers with no Node built-ins', { timeout: 20_000 }, async () => {
    // Tests run from dist/test; the sources are two levels up.
    const entry = fileURLToPath(new URL('../../src/index.ts', import.meta.url));
    const result = await build({ entryPoints: [entry], bundle: true, platform: 'browser', format: 'esm', write: false, logLevel: 'silent' });
    const out = result.outputFiles[0]?.text ?? '';
    assert.ok(out.length > 1000);
    assert.doesNotMatch(out, /from\s+["']node:|require\(["'](node:)?(events|buffer|stream|net|http)["']\)/);
    assert.doesNotMatch(out, /\bBuffer\.(from|alloc|byteLength)/);
  });
});
