/**
 * The Noise objects of src/relay/noise.ts (PROTOCOL.md §12) against the published cacophony test
 * vectors in tests/vectors/noise.json — the file the Rust suite checks too
 * (wsp-runtime/tests/noise_vectors.rs), so both implementations produce these bytes — and the
 * CipherState's nonce rules.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { CipherState, HandshakeState, NoiseError, type NoisePattern, type TransportCiphers, protocolName, x25519KeyPair } from '../src/relay/noise.js';

interface Vector {
  protocol_name: string;
  init_prologue: string;
  init_ephemeral: string;
  init_static?: string;
  init_remote_static?: string;
  resp_prologue: string;
  resp_static?: string;
  resp_ephemeral: string;
  resp_remote_static?: string;
  handshake_hash: string;
  messages: Array<{ payload: string; ciphertext: string }>;
}

const file = JSON.parse(readFileSync(new URL('../../../../tests/vectors/noise.json', import.meta.url), 'utf8')) as { vectors: Vector[] };
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const bytes = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'));

function side(v: Vector, pattern: NoisePattern, initiator: boolean): HandshakeState {
  const prefix = initiator ? 'init' : 'resp';
  const get = (field: string): string | undefined => (v as unknown as Record<string, string | undefined>)[`${prefix}_${field}`];
  const s = get('static');
  const rs = get('remote_static');
  return new HandshakeState({
    pattern,
    initiator,
    prologue: bytes(get('prologue') ?? ''),
    ephemeralSecret: bytes(get('ephemeral') ?? ''),
    ...(s === undefined ? {} : { s: x25519KeyPair(bytes(s)) }),
    ...(rs === undefined ? {} : { rs: bytes(rs) }),
  });
}

test('both wsp protocols match the cacophony vectors: every handshake and transport message, and the handshake hash', () => {
  const names = file.vectors.map((v) => v.protocol_name);
  assert.deepEqual(names.slice().sort(), [protocolName('IK'), protocolName('NK')]);
  for (const v of file.vectors) {
    const pattern = v.protocol_name.split('_')[1] as NoisePattern;
    assert.equal(protocolName(pattern), v.protocol_name);
    const init = side(v, pattern, true);
    const resp = side(v, pattern, false);
    let i = 0;
    // Two handshake messages, initiator first; then transport messages, directions alternating.
    for (; init.transport === undefined; i++) {
      const m: Vector['messages'][number] = v.messages[i]!;
      const [from, to]: [HandshakeState, HandshakeState] = i % 2 === 0 ? [init, resp] : [resp, init];
      const sent: Uint8Array = from.writeMessage(bytes(m.payload));
      assert.equal(hex(sent), m.ciphertext, `${v.protocol_name} handshake #${i}`);
      assert.equal(hex(to.readMessage(sent)), m.payload, `${v.protocol_name} handshake #${i}`);
    }
    assert.equal(i, 2);
    const a = init.transport as TransportCiphers;
    const b = resp.transport as TransportCiphers;
    assert.equal(hex(a.handshakeHash), v.handshake_hash, v.protocol_name);
    assert.equal(hex(b.handshakeHash), v.handshake_hash, v.protocol_name);
    if (pattern === 'IK') assert.equal(hex(resp.remoteStatic as Uint8Array), hex(x25519KeyPair(bytes(v.init_static!)).publicKey));
    assert.ok(v.messages.length > i + 2, 'the vectors go on after the handshake');
    for (; i < v.messages.length; i++) {
      const m: Vector['messages'][number] = v.messages[i]!;
      const [from, to]: [TransportCiphers, TransportCiphers] = i % 2 === 0 ? [a, b] : [b, a];
      const sent: Uint8Array = from.send.encryptWithAd(new Uint8Array(0), bytes(m.payload));
      assert.equal(hex(sent), m.ciphertext, `${v.protocol_name} transport #${i}`);
      assert.equal(hex(to.receive.decryptWithAd(new Uint8Array(0), sent)), m.payload, `${v.protocol_name} transport #${i}`);
    }
  }
});

test('a handshake message changed in any byte fails, and the handshake cannot go on', () => {
  const hostKey = x25519KeyPair(crypto.getRandomValues(new Uint8Array(32)));
  const callerKey = x25519KeyPair(crypto.getRandomValues(new Uint8Array(32)));
  const prologue = new TextEncoder().encode('wsp-e2e/1');
  const first = new HandshakeState({ pattern: 'IK', initiator: true, prologue, s: callerKey, rs: hostKey.publicKey }).writeMessage(new Uint8Array(32));
  for (const at of [0, 31, 32, 40, first.length - 1]) {
    const bad = Uint8Array.from(first);
    bad[at]! ^= 1;
    const resp = new HandshakeState({ pattern: 'IK', initiator: false, prologue, s: hostKey });
    assert.throws(() => resp.readMessage(bad), NoiseError, `byte ${at}`);
    assert.throws(() => resp.writeMessage(new Uint8Array(0)), NoiseError);
  }
  // Truncated, and another prologue.
  assert.throws(() => new HandshakeState({ pattern: 'IK', initiator: false, prologue, s: hostKey }).readMessage(first.subarray(0, 60)), NoiseError);
  const other = new HandshakeState({ pattern: 'IK', initiator: false, prologue: new TextEncoder().encode('wsp-e2e/2'), s: hostKey });
  assert.throws(() => other.readMessage(first), NoiseError);
  // Another responder key (the relay routed the caller elsewhere): the responder cannot read it.
  const elsewhere = new HandshakeState({ pattern: 'IK', initiator: false, prologue, s: x25519KeyPair(crypto.getRandomValues(new Uint8Array(32))) });
  assert.throws(() => elsewhere.readMessage(first), NoiseError);
});

test('CipherState: the nonce is 4 zero bytes and 64 bits little-endian, never repeats, and stops before 2^64 − 1', () => {
  const key = crypto.getRandomValues(new Uint8Array(32));
  const a = new CipherState(key);
  const b = new CipherState(key);
  const ad = new Uint8Array(0);
  const plain = new Uint8Array([1, 2, 3]);
  const c0 = a.encryptWithAd(ad, plain);
  const c1 = a.encryptWithAd(ad, plain);
  assert.notEqual(hex(c0), hex(c1), 'the same plaintext twice: two ciphertexts');
  assert.equal(a.nonce, 2n);
  // Out of order: the first one read must be #0.
  assert.throws(() => b.decryptWithAd(ad, c1), NoiseError);
  assert.equal(b.nonce, 0n, 'a failed decryption does not advance n');
  assert.deepEqual(b.decryptWithAd(ad, c0), plain);
  assert.throws(() => b.decryptWithAd(ad, c0), NoiseError, 'a replay fails');
  assert.deepEqual(b.decryptWithAd(ad, c1), plain);
  // A counter past 32 bits is carried into the high half: 2^32 is not 0.
  a.setNonce(0xffff_ffffn);
  const low = a.encryptWithAd(ad, plain);
  const high = a.encryptWithAd(ad, plain);
  assert.equal(a.nonce, 0x1_0000_0001n);
  b.setNonce(0x1_0000_0000n);
  assert.deepEqual(b.decryptWithAd(ad, high), plain);
  assert.throws(() => b.decryptWithAd(ad, low), NoiseError);
  // 2^64 − 2 is the last nonce; 2^64 − 1 is reserved.
  a.setNonce(2n ** 64n - 2n);
  const last = a.encryptWithAd(ad, plain);
  assert.equal(a.nonce, 2n ** 64n - 1n);
  assert.throws(() => a.encryptWithAd(ad, plain), NoiseError);
  assert.equal(a.nonce, 2n ** 64n - 1n);
  b.setNonce(2n ** 64n - 2n);
  assert.deepEqual(b.decryptWithAd(ad, last), plain);
  assert.throws(() => b.decryptWithAd(ad, last), NoiseError);
  assert.throws(() => a.setNonce(2n ** 64n), RangeError);
  // No key: the plaintext itself (Noise's rule before the first MixKey).
  assert.deepEqual(new CipherState().encryptWithAd(ad, plain), plain);
});
