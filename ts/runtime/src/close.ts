/** Close codes (PROTOCOL.md §7) and close-reason shortening. */

import type { WebSocketLike } from './socket.js';

export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  UNSUPPORTED_DATA: 1003,
  /** Reported by WebSocket implementations when no close frame was received. Never sent. */
  ABNORMAL: 1006,
  INVALID_PAYLOAD: 1007,
  MESSAGE_TOO_BIG: 1009,
  INTERNAL_ERROR: 1011,
  UNSUPPORTED_VERSION: 4000,
  HANDSHAKE_TIMEOUT: 4001,
  KEEPALIVE_TIMEOUT: 4002,
  /**
   * Sending made no progress within the write timeout, or the send queue grew past its limit: the
   * peer does not read. Mostly reported locally: such a peer usually cannot read the close frame.
   */
  WRITE_TIMEOUT: 4003,
  /** A WebSocket message (fragmented, or one frame trickled in) was not complete in time. */
  MESSAGE_TIMEOUT: 4004,
  /** Sent by a relay (§11.6): a registration or caller proof was refused. */
  RELAY_PROOF_REFUSED: 4200,
  /** Sent by a relay: the target key is not known (no host registered under it). */
  RELAY_UNKNOWN_KEY: 4201,
  /** Sent by a relay: a limit was reached (keys, spares per key, callers waiting per key). */
  RELAY_OVERLOADED: 4202,
  /** Sent by a relay: the target is known but no spare of it became free within the wait time. */
  RELAY_UNAVAILABLE: 4203,
  /** Sent by a relay: the other end's connection was lost without a close frame. */
  RELAY_PEER_LOST: 4204,
  /** Sent by a relay cluster: messages of the route between two relay nodes were lost. */
  RELAY_LINK_BROKEN: 4205,
  /** End-to-end encryption through a relay (§12.1): the handshake failed; sent by the end that found it. */
  E2E_HANDSHAKE_FAILED: 4210,
  /** End-to-end encryption (§12.2): a message failed authentication or broke the framing. */
  E2E_BAD_FRAME: 4211,
} as const;

/** The most a close reason may take in UTF-8 (RFC 6455: 125-byte control payload − 2-byte code). */
export const MAX_CLOSE_REASON_BYTES = 123;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Shortens `reason` to the longest prefix of at most 123 UTF-8 bytes that ends on a character
 * boundary. Uses TextEncoder (no Node Buffer) so it works in browsers; lone surrogates become
 * U+FFFD exactly as the WebSocket layer would encode them.
 */
export function shortenCloseReason(reason: string, maxBytes: number = MAX_CLOSE_REASON_BYTES): string {
  // Cheap exit: a UTF-16 code unit is at most 3 UTF-8 bytes.
  if (reason.length * 3 <= maxBytes) return reason;
  const bytes = encoder.encode(reason);
  if (bytes.length <= maxBytes) return reason;
  let end = maxBytes;
  // Back up over continuation bytes (10xxxxxx) so the cut falls before a character's first byte.
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--;
  return decoder.decode(bytes.subarray(0, end));
}

/**
 * Close codes an application may pass to WebSocket.close(): 1000 or 3000–4999 (RFC 6455 §7.4,
 * WHATWG). Runtime-internal codes (1001–1011) are sent by the runtime on Node (ws allows them);
 * browsers reject them, so there the runtime falls back to 1000 with the reason kept.
 */
export function isApplicationCloseCode(code: number): boolean {
  return code === 1000 || (code >= 3000 && code <= 4999);
}

/** The 1xxx codes a browser cannot send, which it replaces by 4100 + (code − 1000) (§7). */
const SUBSTITUTED: readonly number[] = [
  CloseCode.PROTOCOL_ERROR,
  CloseCode.UNSUPPORTED_DATA,
  CloseCode.INVALID_PAYLOAD,
  CloseCode.MESSAGE_TOO_BIG,
  CloseCode.INTERNAL_ERROR,
];

/**
 * The code a peer that may only send 1000 and 3000–4999 (a browser) sends in place of `code`:
 * 4102 for 1002, 4103 for 1003, 4107 for 1007, 4109 for 1009, 4111 for 1011 (PROTOCOL.md §7);
 * undefined for codes without a substitute.
 */
export function browserCloseCode(code: number): number | undefined {
  return SUBSTITUTED.includes(code) ? 4100 + (code - 1000) : undefined;
}

/**
 * Closes `socket` with `code`, or where the WebSocket API refuses it (a browser only sends 1000
 * and 3000–4999) with its 41xx substitute (PROTOCOL.md §7), else 1000 keeping the reason.
 * A socket that is already closed is left alone.
 */
export function closeSocket(socket: WebSocketLike, code: number, reason: string): void {
  try {
    socket.close(code, reason);
  } catch {
    try {
      socket.close(browserCloseCode(code) ?? CloseCode.NORMAL, reason);
    } catch {
      // already closed
    }
  }
}

/** A received close code with 41xx substitutes mapped back to the 10xx code they stand for (§7). */
export function normalizeCloseCode(code: number): number {
  const original = code - 3100;
  return SUBSTITUTED.includes(original) ? original : code;
}
