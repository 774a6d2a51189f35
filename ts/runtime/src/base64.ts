/**
 * Standard base64 with padding (RFC 4648 §4), as `bytes` travel in JSON (PROTOCOL.md §5).
 * Uses btoa/atob (browsers and Node ≥ 16) rather than Node's Buffer, so the core stays portable.
 */

const CHUNK = 0x8000;

export function bytesToBase64(bytes: Uint8Array): string {
  let binary = '';
  // String.fromCharCode with a spread of a large array overflows the argument limit: chunk it.
  for (let i = 0; i < bytes.length; i += CHUNK) {
    binary += String.fromCharCode(...bytes.subarray(i, i + CHUNK));
  }
  return btoa(binary);
}

/** Decodes base64; throws a TypeError on characters outside the alphabet. */
export function base64ToBytes(text: string): Uint8Array {
  let binary: string;
  try {
    binary = atob(text);
  } catch {
    throw new TypeError('invalid base64');
  }
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}
