/**
 * Text a peer chose, as it may come back to that peer (PROTOCOL.md §8): method names of any
 * length, values that a decoding error quotes. Such text is never looked up or echoed in full:
 * a method name over the length limit is not looked up at all, and an ERROR message repeats only
 * a short, printable prefix of it, whatever the peer sent.
 */
import { utf8Length } from './stats.js';

/** Characters of a peer-supplied method name that an ERROR message repeats at most. */
export const METHOD_ECHO_CHARS = 64;

/** Characters of a decoding error (which may quote the peer's value) repeated to the peer at most. */
export const DECODE_ERROR_ECHO_CHARS = 200;

/**
 * The sanitiser: at most the first `maxChars` characters (code points) of `text`, control
 * characters (U+0000–U+001F, U+007F–U+009F) replaced by '?', and '…' appended when it was cut.
 */
export function peerText(text: string, maxChars: number): string {
  let out = '';
  let n = 0;
  // for…of walks code points and stops early: a 1 MiB name costs maxChars + 1 steps.
  for (const ch of text) {
    if (n === maxChars) return `${out}…`;
    const c = ch.codePointAt(0) ?? 0;
    out += c <= 0x1f || (c >= 0x7f && c <= 0x9f) ? '?' : ch;
    n++;
  }
  return out;
}

/** A peer-supplied method name as an ERROR message may show it: {@link peerText} of 64 characters. */
export function sanitizeMethodName(method: string): string {
  return peerText(method, METHOD_ECHO_CHARS);
}

/** The ERROR message for a method that is unknown (or too long to be looked up). */
export function unknownMethodMessage(method: string): string {
  return `unknown method ${sanitizeMethodName(method)}`;
}

/** Whether `method` takes more than `maxBytes` bytes in UTF-8 (without encoding a long name). */
export function methodTooLong(method: string, maxBytes: number): boolean {
  // A UTF-16 code unit is 1 to 3 UTF-8 bytes (a surrogate pair, two units, is 4 bytes).
  if (method.length > maxBytes) return true;
  if (method.length * 3 <= maxBytes) return false;
  return utf8Length(method) > maxBytes;
}
