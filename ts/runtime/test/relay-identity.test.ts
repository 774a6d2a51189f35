/** Relay identities and proofs (PROTOCOL.md §11.3): Ed25519 as RFC 8032 defines it, the exact proof text, relay names. */
import assert from 'node:assert/strict';
import { createHash, createPrivateKey, createPublicKey, diffieHellman } from 'node:crypto';
import { describe, test } from 'node:test';
import { Identity, PublicKey, proofText, relayName } from '../src/index.js';
import { bytesToHex, hexToBytes } from '../src/relay/hex.js';

const hex = (s: string): Uint8Array => {
  const b = hexToBytes(s, s.length / 2);
  assert.ok(b !== undefined, `bad hex in the test: ${s}`);
  return b;
};

describe('relay identity', () => {
  test('RFC 8032 §7.1 test vector 1 (the Rust side checks the same)', () => {
    const id = Identity.fromSecret(hex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60'));
    assert.equal(id.publicKey.toString(), 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a');
    const signature = id.sign(new Uint8Array(0));
    assert.equal(
      bytesToHex(signature),
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
    );
    assert.ok(id.publicKey.verify(new Uint8Array(0), signature));
    assert.ok(!id.publicKey.verify(new Uint8Array([0]), signature), 'another message');
  });

  test('the X25519 form (§12.1), checked with OpenSSL: SHA-512(secret)[0..32] is the X25519 secret whose public key is the map of the Ed25519 key; DH agrees', () => {
    const b64url = (b: Uint8Array): string => Buffer.from(b).toString('base64url');
    const x25519Private = (seed: Uint8Array) =>
      createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: b64url(createHash('sha512').update(seed).digest().subarray(0, 32)), x: '' }, format: 'jwk' });
    for (const id of [Identity.fromSecret(hex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60')), Identity.generate(), Identity.generate()]) {
      const openssl = x25519Private(id.secret);
      const x = (createPublicKey(openssl).export({ format: 'jwk' }) as { x: string }).x;
      assert.equal(b64url(id.publicKey.toX25519()!), x, 'the birational map of the public key = the public key of the hashed secret');
      const other = Identity.generate();
      const theirs = other.publicKey.toX25519()!;
      const shared = diffieHellman({ privateKey: openssl, publicKey: createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: b64url(theirs) }, format: 'jwk' }) });
      assert.deepEqual(Buffer.from(id.dh(theirs)), shared, 'dh() is X25519 with that secret');
      assert.deepEqual(id.dh(theirs), other.dh(id.publicKey.toX25519()!), 'both ways');
    }
    assert.equal(new PublicKey(new Uint8Array(32).fill(0xff)).toX25519(), undefined, 'not a curve point');
  });

  test('generate, store the secret, restore the same identity; keys round-trip as hex', () => {
    const a = Identity.generate();
    const b = Identity.generate();
    assert.notEqual(a.publicKey.toString(), b.publicKey.toString());
    const restored = Identity.fromSecret(a.secret);
    assert.ok(restored.publicKey.equals(a.publicKey));
    assert.match(a.publicKey.toString(), /^[0-9a-f]{64}$/);
    assert.ok(PublicKey.parse(a.publicKey.toString().toUpperCase()).equals(a.publicKey), 'uppercase hex is read');
    assert.equal(JSON.stringify({ k: a.publicKey }), `{"k":"${a.publicKey.toString()}"}`);
    assert.ok(!String(a).includes(bytesToHex(a.secret)), 'an identity printed shows no secret');
    // The secret getter hands out a copy: changing it changes nothing.
    a.secret.fill(0);
    assert.ok(Identity.fromSecret(a.secret).publicKey.equals(a.publicKey));
    assert.throws(() => Identity.fromSecret(new Uint8Array(31)), TypeError);
    assert.throws(() => PublicKey.parse('zz'), TypeError);
    assert.throws(() => PublicKey.parse('00'.repeat(33)), TypeError);
  });

  test('verification is strict and never throws', () => {
    const id = Identity.generate();
    const message = new TextEncoder().encode('m');
    const sig = id.sign(message);
    assert.ok(id.publicKey.verify(message, sig));
    assert.ok(!id.publicKey.verify(message, sig.subarray(0, 63)), 'short signature');
    assert.ok(!Identity.generate().publicKey.verify(message, sig), 'another key');
    // The identity point (a small-order key) with a signature of R = identity, S = 0 is valid
    // under ZIP-215's cofactored rule and must be refused under the strict rules.
    const smallOrder = new PublicKey(hex('01' + '00'.repeat(31)));
    assert.ok(!smallOrder.verify(message, hex('01' + '00'.repeat(63))));
    // S ≥ L (non-canonical): the same signature with L added to S is refused.
    const L = (1n << 252n) + 27742317777372353535851937790883648493n;
    const s = sig.slice(32);
    let n = 0n;
    for (let i = 31; i >= 0; i--) n = (n << 8n) | BigInt(s[i] ?? 0);
    n += L;
    const bumped = new Uint8Array(64);
    bumped.set(sig.subarray(0, 32));
    for (let i = 0; i < 32; i++) bumped[32 + i] = Number((n >> BigInt(8 * i)) & 0xffn);
    assert.ok(n < 1n << 256n);
    assert.ok(!id.publicKey.verify(message, bumped), 'S + L is not canonical');
  });
});

describe('proof text and relay name', () => {
  const nonce = hex('00'.repeat(31) + 'ff');
  const target = PublicKey.parse('ab'.repeat(32));

  test('the exact text of §11.3', () => {
    assert.equal(proofText('register', 'relay.example.com', nonce), `wsp-relay/1\nregister\nrelay.example.com\n${'00'.repeat(31)}ff`);
    assert.equal(
      proofText('connect', '127.0.0.1:8787', nonce, target),
      `wsp-relay/1\nconnect\n127.0.0.1:8787\n${'00'.repeat(31)}ff\n${'ab'.repeat(32)}`,
    );
    assert.equal(proofText('connect', 'r', nonce, 'AB'.repeat(32)), proofText('connect', 'r', nonce, target), 'the target is written in lowercase');
    assert.throws(() => proofText('connect', 'r', nonce), TypeError, 'connect names a target');
    assert.throws(() => proofText('register', 'r', nonce, target), TypeError, 'register names none');
    assert.throws(() => proofText('register', 'r', new Uint8Array(31)), TypeError);
  });

  test('relay names: lowercase host, :port unless the scheme default', () => {
    const cases: Array<[string, string]> = [
      ['ws://127.0.0.1:8787/', '127.0.0.1:8787'],
      ['wss://Relay.Example.com/', 'relay.example.com'],
      ['wss://relay.example.com:443/path?q', 'relay.example.com'],
      ['ws://relay.example.com:80', 'relay.example.com'],
      ['ws://relay.example.com:443/', 'relay.example.com:443'],
      ['wss://relay.example.com:80/', 'relay.example.com:80'],
      ['ws://LOCALHOST:9000', 'localhost:9000'],
      ['ws://[::1]:8787/', '[::1]:8787'],
    ];
    for (const [url, name] of cases) assert.equal(relayName(url), name, url);
    assert.throws(() => relayName('not a url'), TypeError);
  });
});
