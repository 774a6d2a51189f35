/**
 * Lowercase hex, the form keys, nonces and signatures take in relay frames and proofs
 * (PROTOCOL.md §11.2). Written here rather than with Node's Buffer so that the browser core has
 * no Node built-ins.
 */

const DIGITS = '0123456789abcdef';

/** `bytes` as lowercase hex digits. */
export function bytesToHex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += (DIGITS[b >> 4] ?? '') + (DIGITS[b & 15] ?? '');
  return s;
}

/**
 * The bytes of exactly `length` bytes' worth of hex digits; undefined for anything else.
 * Uppercase digits are accepted (a reader is lenient; every writer sends lowercase), so that a
 * value read here and written back with {@link bytesToHex} comes out in the canonical form.
 */
export function hexToBytes(hex: string, length: number): Uint8Array | undefined {
  if (hex.length !== length * 2 || !/^[0-9a-fA-F]*$/.test(hex)) return undefined;
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}
