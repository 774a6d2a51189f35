/**
 * Long-term keys (PROTOCOL.md §11.3): an Ed25519 key pair (RFC 8032) names a peer at the relay,
 * and its signature of the proof text shows the peer holds the secret key. The same key pair, in
 * its X25519 form, keys the end-to-end encryption of relayed connections (§12.1). The curve
 * arithmetic is the audited `@noble/curves`, which runs in browsers and Node alike; randomness
 * comes from `crypto.getRandomValues`, which both provide.
 */
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { bytesToHex, hexToBytes } from './hex.js';

/** An Ed25519 public key: what callers name a host by. Written as 64 lowercase hex digits. */
export class PublicKey {
  readonly #bytes: Uint8Array;

  /** The key of these 32 bytes (copied; not checked to be a curve point — {@link verify} is). */
  constructor(bytes: Uint8Array) {
    if (bytes.length !== 32) throw new TypeError(`a public key is 32 bytes, got ${bytes.length}`);
    this.#bytes = Uint8Array.from(bytes);
  }

  /** The key written as 64 hex digits (either case); throws TypeError otherwise. */
  static parse(hex: string): PublicKey {
    const bytes = hexToBytes(hex, 32);
    if (bytes === undefined) throw new TypeError('a public key is 64 hex digits');
    return new PublicKey(bytes);
  }

  /** `key` as a PublicKey: itself, or parsed from hex. */
  static from(key: PublicKey | string): PublicKey {
    return typeof key === 'string' ? PublicKey.parse(key) : key;
  }

  /** A copy of the key's 32 bytes. */
  get bytes(): Uint8Array {
    return Uint8Array.from(this.#bytes);
  }

  /**
   * The key's X25519 form (RFC 7748 §4.1, u = (1 + y) / (1 − y)), which end-to-end encryption
   * uses (PROTOCOL.md §12.1); undefined for bytes that are not a valid Ed25519 point.
   */
  toX25519(): Uint8Array | undefined {
    try {
      return ed25519.utils.toMontgomery(this.#bytes);
    } catch {
      return undefined;
    }
  }

  equals(other: PublicKey | string): boolean {
    return this.toString() === (typeof other === 'string' ? other.toLowerCase() : other.toString());
  }

  /**
   * Whether `signature` is this key's signature of `message` under RFC 8032 without the ZIP-215
   * leniencies: canonical point encodings, S below the group order, and no small-order key (the
   * relay's rules; it also refuses a small-order R). False, never a throw, for a key that is not a
   * curve point or a signature of the wrong length.
   */
  verify(message: Uint8Array, signature: Uint8Array): boolean {
    try {
      return ed25519.verify(signature, message, this.#bytes, { zip215: false });
    } catch {
      return false;
    }
  }

  /** 64 lowercase hex digits. */
  toString(): string {
    return bytesToHex(this.#bytes);
  }

  toJSON(): string {
    return this.toString();
  }
}

/**
 * What signs proofs: an {@link Identity}, or anything else that holds a key pair (a key kept in a
 * hardware token, say) and can sign with it.
 */
export interface Signer {
  readonly publicKey: PublicKey;
  /** The Ed25519 signature (64 bytes) of `message`. */
  sign(message: Uint8Array): Uint8Array;
  /**
   * X25519 Diffie-Hellman (RFC 7748) of this key pair's X25519 form with `publicKey` (32 bytes):
   * what end-to-end encryption (PROTOCOL.md §12) needs besides signing. The X25519 secret is the
   * first 32 bytes of SHA-512 of the Ed25519 secret (the scalar RFC 8032 derives). Optional: a
   * signer without it serves or calls with `encrypt: false` only.
   */
  dh?(publicKey: Uint8Array): Uint8Array;
}

/** A peer's long-term key pair (Ed25519). Keep {@link secret} to be the same peer next time. */
export class Identity implements Signer {
  readonly #secret: Uint8Array;
  /** The X25519 secret (§12.1), made when first needed. */
  #x25519: Uint8Array | undefined;
  readonly publicKey: PublicKey;

  private constructor(secret: Uint8Array) {
    this.#secret = secret;
    this.publicKey = new PublicKey(ed25519.getPublicKey(secret));
  }

  /** A new key pair from the platform's cryptographic random source. */
  static generate(): Identity {
    return new Identity(crypto.getRandomValues(new Uint8Array(32)));
  }

  /** The key pair of a 32-byte Ed25519 secret key (the seed of RFC 8032), e.g. one stored earlier. */
  static fromSecret(secret: Uint8Array): Identity {
    if (secret.length !== 32) throw new TypeError(`an Ed25519 secret key is 32 bytes, got ${secret.length}`);
    return new Identity(Uint8Array.from(secret));
  }

  /** A copy of the 32-byte secret key, to store the identity. */
  get secret(): Uint8Array {
    return Uint8Array.from(this.#secret);
  }

  /** The Ed25519 signature (64 bytes) of `message`. */
  sign(message: Uint8Array): Uint8Array {
    return ed25519.sign(message, this.#secret);
  }

  /**
   * X25519 with this key pair's X25519 form: the scalar of SHA-512(secret)[0..32] (clamped, as
   * X25519 clamps it anyway) times `publicKey`. Throws for a low-order `publicKey`.
   */
  dh(publicKey: Uint8Array): Uint8Array {
    this.#x25519 ??= ed25519.utils.toMontgomerySecret(this.#secret);
    return x25519.getSharedSecret(this.#x25519, publicKey);
  }

  /** Shows the public key only: an identity logged by accident must not leak its secret. */
  toString(): string {
    return `Identity(${this.publicKey.toString()})`;
  }

  toJSON(): string {
    return this.toString();
  }
}
