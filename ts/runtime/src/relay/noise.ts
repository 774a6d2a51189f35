/**
 * The Noise Protocol Framework (revision 34), the two handshakes wsp uses to encrypt a relayed
 * connection end to end (PROTOCOL.md §12): `Noise_IK_25519_ChaChaPoly_BLAKE2s` and
 * `Noise_NK_25519_ChaChaPoly_BLAKE2s`. The objects are the specification's own — CipherState,
 * SymmetricState, HandshakeState — written from its §5 with its names, and nothing else (no PSK,
 * no rekey, no other patterns). The primitives are the audited `@noble` packages: X25519 from
 * `@noble/curves`, ChaCha20-Poly1305 from `@noble/ciphers`, BLAKE2s and HMAC from
 * `@noble/hashes`. Browser-safe (no Node built-ins); checked against the cacophony vectors
 * (tests/vectors/noise.json), as the Rust runtime is.
 */
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { x25519 } from '@noble/curves/ed25519.js';
import { blake2s } from '@noble/hashes/blake2.js';
import { hmac } from '@noble/hashes/hmac.js';

/** DHLEN: an X25519 key or shared secret. */
export const DHLEN = 32;
/** HASHLEN of BLAKE2s. */
const HASHLEN = 32;
/** The AEAD tag of every encrypted message part. */
export const TAG_LENGTH = 16;
/** The largest Noise message (§3). */
export const NOISE_MAX_MESSAGE = 65_535;

/** A handshake that failed: a message that does not authenticate or is malformed, a bad key. */
export class NoiseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NoiseError';
  }
}

/**
 * A static key pair as the handshake uses it: its X25519 public key and Diffie-Hellman with it
 * (so that the secret can stay inside an {@link Identity} or anything else that holds it).
 */
export interface DhKeyPair {
  readonly publicKey: Uint8Array;
  /** DH(self, publicKey): the X25519 shared secret; throws for a low-order `publicKey`. */
  dh(publicKey: Uint8Array): Uint8Array;
}

/** The key pair of a 32-byte X25519 secret (clamped by X25519 itself). */
export function x25519KeyPair(secret: Uint8Array): DhKeyPair {
  const s = Uint8Array.from(secret);
  return { publicKey: x25519.getPublicKey(s), dh: (pub) => x25519.getSharedSecret(s, pub) };
}

const EMPTY = new Uint8Array(0);
const TWO_32 = 0x1_0000_0000;

/**
 * CipherState (§5.1): a key and a 64-bit nonce counter. The counter is kept as two 32-bit halves
 * and written as ChaChaPoly wants it: 4 zero bytes, then the counter as 8 bytes little-endian.
 * It never repeats: n = 2^64 − 1 is reserved (§5.1), so encrypting or decrypting there fails.
 */
export class CipherState {
  #k: Uint8Array | undefined;
  #lo = 0;
  #hi = 0;
  /** The ChaChaPoly nonce of the current n (reused; only bytes 4..11 change). */
  readonly #nonce = new Uint8Array(12);

  /** InitializeKey(key): a 32-byte key, or undefined for none; n = 0. */
  constructor(key?: Uint8Array) {
    this.#k = key === undefined ? undefined : Uint8Array.from(key);
  }

  hasKey(): boolean {
    return this.#k !== undefined;
  }

  /** The counter as a bigint (for tests and the nonce-limit check). */
  get nonce(): bigint {
    return (BigInt(this.#hi) << 32n) | BigInt(this.#lo);
  }

  /** SetNonce(n) of §5.1 (tests use it to reach the limit). */
  setNonce(n: bigint): void {
    if (n < 0n || n >= 1n << 64n) throw new RangeError('a Noise nonce is a 64-bit unsigned integer');
    this.#hi = Number(n >> 32n);
    this.#lo = Number(n & 0xffff_ffffn);
  }

  /** EncryptWithAd(ad, plaintext): the plaintext itself while there is no key. */
  encryptWithAd(ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    const k = this.#k;
    if (k === undefined) return plaintext;
    const out = chacha20poly1305(k, this.#nextNonce(), ad).encrypt(plaintext);
    this.#increment();
    return out;
  }

  /**
   * DecryptWithAd(ad, ciphertext); throws {@link NoiseError} when it does not authenticate, and
   * then n is not incremented (§5.1).
   */
  decryptWithAd(ad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
    const k = this.#k;
    if (k === undefined) return ciphertext;
    if (ciphertext.length < TAG_LENGTH) throw new NoiseError('a Noise message part shorter than its tag');
    let out: Uint8Array;
    try {
      out = chacha20poly1305(k, this.#nextNonce(), ad).decrypt(ciphertext);
    } catch {
      throw new NoiseError('a Noise message failed authentication');
    }
    this.#increment();
    return out;
  }

  #nextNonce(): Uint8Array {
    if (this.#hi === 0xffff_ffff && this.#lo === 0xffff_ffff) throw new NoiseError('the Noise nonce is exhausted (2^64 − 1 messages)');
    const n = this.#nonce;
    n[4] = this.#lo & 0xff;
    n[5] = (this.#lo >>> 8) & 0xff;
    n[6] = (this.#lo >>> 16) & 0xff;
    n[7] = this.#lo >>> 24;
    n[8] = this.#hi & 0xff;
    n[9] = (this.#hi >>> 8) & 0xff;
    n[10] = (this.#hi >>> 16) & 0xff;
    n[11] = this.#hi >>> 24;
    return n;
  }

  #increment(): void {
    this.#lo++;
    if (this.#lo === TWO_32) {
      this.#lo = 0;
      this.#hi++;
    }
  }
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** HKDF(chaining_key, input_key_material, 2) of §4.3, over HMAC-BLAKE2s. */
function hkdf2(chainingKey: Uint8Array, ikm: Uint8Array): [Uint8Array, Uint8Array] {
  const temp = hmac(blake2s, chainingKey, ikm);
  const out1 = hmac(blake2s, temp, Uint8Array.of(1));
  const out2 = hmac(blake2s, temp, concat(out1, Uint8Array.of(2)));
  return [out1, out2];
}

/** SymmetricState (§5.2): the chaining key ck, the handshake hash h, and a CipherState. */
export class SymmetricState {
  cipher = new CipherState();
  ck: Uint8Array;
  h: Uint8Array;

  /** InitializeSymmetric(protocol_name). */
  constructor(protocolName: string) {
    const name = new TextEncoder().encode(protocolName);
    if (name.length <= HASHLEN) {
      this.h = new Uint8Array(HASHLEN);
      this.h.set(name);
    } else this.h = blake2s(name);
    this.ck = this.h;
  }

  mixKey(ikm: Uint8Array): void {
    const [ck, k] = hkdf2(this.ck, ikm);
    this.ck = ck;
    this.cipher = new CipherState(k);
  }

  mixHash(data: Uint8Array): void {
    this.h = blake2s(concat(this.h, data));
  }

  encryptAndHash(plaintext: Uint8Array): Uint8Array {
    const c = this.cipher.encryptWithAd(this.h, plaintext);
    this.mixHash(c);
    return c;
  }

  decryptAndHash(ciphertext: Uint8Array): Uint8Array {
    const p = this.cipher.decryptWithAd(this.h, ciphertext);
    this.mixHash(ciphertext);
    return p;
  }

  /** Split(): the initiator's sending cipher first. */
  split(): [CipherState, CipherState] {
    const [k1, k2] = hkdf2(this.ck, EMPTY);
    return [new CipherState(k1), new CipherState(k2)];
  }
}

type Token = 'e' | 's' | 'ee' | 'es' | 'se' | 'ss';

/** The two patterns (§7.4); both have the responder's static key as a pre-message (`<- s`). */
const PATTERNS = {
  IK: [
    ['e', 'es', 's', 'ss'],
    ['e', 'ee', 'se'],
  ],
  NK: [
    ['e', 'es'],
    ['e', 'ee'],
  ],
} as const satisfies Record<string, readonly (readonly Token[])[]>;

export type NoisePattern = keyof typeof PATTERNS;

/** The full protocol name of a pattern with wsp's primitives. */
export function protocolName(pattern: NoisePattern): string {
  return `Noise_${pattern}_25519_ChaChaPoly_BLAKE2s`;
}

export interface HandshakeOptions {
  readonly pattern: NoisePattern;
  readonly initiator: boolean;
  readonly prologue: Uint8Array;
  /** This side's static key pair: the responder always has one; an IK initiator too. */
  readonly s?: DhKeyPair;
  /** The responder's static public key, which the initiator knows beforehand. */
  readonly rs?: Uint8Array;
  /** A fixed ephemeral secret: for the test vectors only. Default: a fresh random one. */
  readonly ephemeralSecret?: Uint8Array;
}

/** The outcome of a finished handshake: the cipher of each direction. */
export interface TransportCiphers {
  readonly send: CipherState;
  readonly receive: CipherState;
  /** The handshake hash h (§5.2 GetHandshakeHash). */
  readonly handshakeHash: Uint8Array;
}

/**
 * HandshakeState (§5.3) for IK and NK. Messages alternate, initiator first; after the last one
 * {@link transport} holds the two CipherStates of Split().
 */
export class HandshakeState {
  readonly #ss: SymmetricState;
  readonly #tokens: readonly (readonly Token[])[];
  readonly #initiator: boolean;
  readonly #s: DhKeyPair | undefined;
  #e: DhKeyPair | undefined;
  #rs: Uint8Array | undefined;
  #re: Uint8Array | undefined;
  readonly #ephemeralSecret: Uint8Array | undefined;
  #index = 0;
  #transport: TransportCiphers | undefined;
  #failed = false;

  constructor(options: HandshakeOptions) {
    const { pattern, initiator } = options;
    this.#tokens = PATTERNS[pattern];
    this.#initiator = initiator;
    this.#s = options.s;
    this.#rs = options.rs === undefined ? undefined : Uint8Array.from(options.rs);
    this.#ephemeralSecret = options.ephemeralSecret;
    if (initiator && this.#rs?.length !== DHLEN) throw new TypeError(`Noise ${pattern}: the initiator needs the responder's static key`);
    if (!initiator && this.#s === undefined) throw new TypeError(`Noise ${pattern}: the responder needs its static key`);
    if (initiator && pattern === 'IK' && this.#s === undefined) throw new TypeError('Noise IK: the initiator needs its static key');
    this.#ss = new SymmetricState(protocolName(pattern));
    this.#ss.mixHash(options.prologue);
    // The pre-message `<- s`: the responder's static public key.
    this.#ss.mixHash(initiator ? (this.#rs as Uint8Array) : (this.#s as DhKeyPair).publicKey);
  }

  /** The remote static public key, once known (given, or read from an `s` token). */
  get remoteStatic(): Uint8Array | undefined {
    return this.#rs === undefined ? undefined : Uint8Array.from(this.#rs);
  }

  /** The transport ciphers, once the last handshake message was written or read. */
  get transport(): TransportCiphers | undefined {
    return this.#transport;
  }

  /** Whether it is this side's turn to write. */
  get myTurn(): boolean {
    return this.#index < this.#tokens.length && this.#index % 2 === (this.#initiator ? 0 : 1);
  }

  /** WriteMessage(payload): the next handshake message. */
  writeMessage(payload: Uint8Array): Uint8Array {
    const tokens = this.#next(true);
    const ss = this.#ss;
    const parts: Uint8Array[] = [];
    try {
      for (const token of tokens) {
        if (token === 'e') {
          this.#e = this.#ephemeralSecret === undefined ? x25519KeyPair(x25519.utils.randomSecretKey()) : x25519KeyPair(this.#ephemeralSecret);
          parts.push(this.#e.publicKey);
          ss.mixHash(this.#e.publicKey);
        } else if (token === 's') {
          parts.push(ss.encryptAndHash((this.#s as DhKeyPair).publicKey));
        } else this.#mixDh(token);
      }
      parts.push(ss.encryptAndHash(payload));
    } catch (e) {
      this.#failed = true;
      throw e instanceof NoiseError ? e : new NoiseError(`Noise handshake failed: ${e instanceof Error ? e.message : String(e)}`);
    }
    const message = concat(...parts);
    if (message.length > NOISE_MAX_MESSAGE) {
      this.#failed = true;
      throw new NoiseError('a Noise handshake message over 65,535 bytes');
    }
    this.#advance();
    return message;
  }

  /** ReadMessage(message): the payload; throws {@link NoiseError} (and the handshake is over) when it fails. */
  readMessage(message: Uint8Array): Uint8Array {
    const tokens = this.#next(false);
    const ss = this.#ss;
    let payload: Uint8Array;
    try {
      if (message.length > NOISE_MAX_MESSAGE) throw new NoiseError('a Noise handshake message over 65,535 bytes');
      let at = 0;
      const take = (n: number): Uint8Array => {
        if (message.length - at < n) throw new NoiseError('a Noise handshake message too short');
        const part = message.subarray(at, at + n);
        at += n;
        return part;
      };
      for (const token of tokens) {
        if (token === 'e') {
          this.#re = Uint8Array.from(take(DHLEN));
          ss.mixHash(this.#re);
        } else if (token === 's') {
          this.#rs = Uint8Array.from(ss.decryptAndHash(take(ss.cipher.hasKey() ? DHLEN + TAG_LENGTH : DHLEN)));
        } else this.#mixDh(token);
      }
      payload = ss.decryptAndHash(message.subarray(at));
    } catch (e) {
      this.#failed = true;
      throw e instanceof NoiseError ? e : new NoiseError(`Noise handshake failed: ${e instanceof Error ? e.message : String(e)}`);
    }
    this.#advance();
    return payload;
  }

  #next(writing: boolean): readonly Token[] {
    if (this.#failed) throw new NoiseError('the Noise handshake already failed');
    const tokens = this.#tokens[this.#index];
    if (tokens === undefined) throw new NoiseError('the Noise handshake is finished');
    if (this.myTurn !== writing) throw new NoiseError(writing ? 'not this side’s turn to write' : 'not this side’s turn to read');
    return tokens;
  }

  #advance(): void {
    this.#index++;
    if (this.#index < this.#tokens.length) return;
    const [c1, c2] = this.#ss.split();
    this.#transport = this.#initiator
      ? { send: c1, receive: c2, handshakeHash: this.#ss.h }
      : { send: c2, receive: c1, handshakeHash: this.#ss.h };
  }

  /** The DH tokens (§5.3): which key pairs meet depends on who reads the token. */
  #mixDh(token: Exclude<Token, 'e' | 's'>): void {
    const need = <T>(v: T | undefined, what: string): T => {
      if (v === undefined) throw new NoiseError(`Noise ${token}: no ${what}`);
      return v;
    };
    const e = (): DhKeyPair => need(this.#e, 'local ephemeral');
    const s = (): DhKeyPair => need(this.#s, 'local static');
    const re = (): Uint8Array => need(this.#re, 'remote ephemeral');
    const rs = (): Uint8Array => need(this.#rs, 'remote static');
    let shared: Uint8Array;
    switch (token) {
      case 'ee':
        shared = e().dh(re());
        break;
      case 'es':
        shared = this.#initiator ? e().dh(rs()) : s().dh(re());
        break;
      case 'se':
        shared = this.#initiator ? s().dh(re()) : e().dh(rs());
        break;
      case 'ss':
        shared = s().dh(rs());
        break;
    }
    this.#ss.mixKey(shared);
  }
}
