/** Relay frames (PROTOCOL.md §11.2) in both codecs: round trips, the exact wire forms, malformed input. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encode } from '@msgpack/msgpack';
import {
  MAX_RELAY_FRAME,
  PublicKey,
  RELAY_VERSION,
  type RelayFrame,
  RelayFrameError,
  createCodec,
  decodeRelayFrame,
  encodeRelayFrame,
} from '../src/index.js';

const key = PublicKey.parse('09'.repeat(32));
const frames: RelayFrame[] = [
  { type: 32, version: RELAY_VERSION, nonce: new Uint8Array(32).fill(1) },
  { type: 33, key, signature: new Uint8Array(64).fill(2) },
  { type: 34, pingIntervalMs: 20_000 },
  { type: 35, target: key, caller: { key, signature: new Uint8Array(64).fill(3) } },
  { type: 35, target: key, caller: null },
  { type: 36, caller: key },
  { type: 36, caller: null },
  { type: 37 },
  { type: 38 },
];

/** A frame with keys as hex, for deepEqual (PublicKey keeps its bytes in a private field). */
function plain(frame: RelayFrame): unknown {
  return JSON.parse(
    JSON.stringify(frame, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v)),
  );
}

test('every relay frame round-trips in both codecs, within the size limit', () => {
  for (const kind of ['msgpack', 'json'] as const) {
    const codec = createCodec(kind);
    for (const f of frames) {
      const data = encodeRelayFrame(f, codec);
      assert.equal(typeof data, kind === 'json' ? 'string' : 'object');
      assert.ok((typeof data === 'string' ? data.length : data.byteLength) <= MAX_RELAY_FRAME);
      assert.deepEqual(plain(decodeRelayFrame(data, codec)), plain(f), `${kind} ${f.type}`);
    }
  }
});

test('the wire forms are the arrays PROTOCOL.md §11.2 shows, hex in lowercase', () => {
  const json = createCodec('json');
  assert.equal(encodeRelayFrame({ type: 37 }, json), '[37]');
  assert.equal(encodeRelayFrame({ type: 36, caller: null }, json), '[36,null]');
  assert.equal(
    encodeRelayFrame({ type: 35, target: PublicKey.parse('AB'.repeat(32)), caller: null }, json),
    `[35,"${'ab'.repeat(32)}",null]`,
  );
  assert.equal(encodeRelayFrame({ type: 34, pingIntervalMs: 20000 }, json), '[34,20000]');
  const msgpack = createCodec('msgpack');
  // fixarray(2), 34, uint16 20000: the same bytes rmpv writes.
  assert.deepEqual([...(encodeRelayFrame({ type: 34, pingIntervalMs: 20000 }, msgpack) as Uint8Array)], [0x92, 0x22, 0xcd, 0x4e, 0x20]);
  // Elements after the last known one are ignored; a MessagePack uint64 interval is read.
  const f = decodeRelayFrame(encode([34, 2n ** 40n, 'later'], { useBigInt64: true }), msgpack);
  assert.deepEqual(f, { type: 34, pingIntervalMs: 2 ** 40 });
});

test('malformed relay frames are RelayFrameErrors', () => {
  const json = createCodec('json');
  for (const text of ['{}', '[]', '[99]', '[33,"00","11"]', '[35,1,null]', '[35,"' + '0'.repeat(64) + '",[1]]', '[32,1]', '[32,-1,"' + '0'.repeat(64) + '"]', 'nonsense', `[38,"${'x'.repeat(MAX_RELAY_FRAME)}"]`]) {
    assert.throws(() => decodeRelayFrame(text, json), RelayFrameError, text.slice(0, 40));
  }
  assert.throws(() => decodeRelayFrame('[37]', createCodec('msgpack')), RelayFrameError, 'text on a MessagePack link');
  assert.throws(() => decodeRelayFrame(new Uint8Array([0x91, 37]), json), RelayFrameError, 'binary on a JSON link');
});
