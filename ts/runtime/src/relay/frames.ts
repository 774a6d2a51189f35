/**
 * The relay's own frames (PROTOCOL.md §11.2), exchanged on a connection before it carries wsp:
 * arrays in the connection's codec whose first element is a type from 32 up, so that a relay
 * frame is never mistaken for a wsp frame. Keys, nonces and signatures travel as lowercase hex
 * strings in both codecs. A connection carries at most three of them, so plain code over speed.
 */
import { type Codec, DecodeFailure } from '../codec.js';
import { utf8Length } from '../stats.js';
import { bytesToHex, hexToBytes } from './hex.js';
import { PublicKey } from './identity.js';

export const RelayFrameType = {
  CHALLENGE: 32,
  REGISTER: 33,
  REGISTERED: 34,
  CONNECT: 35,
  HANDOVER: 36,
  READY: 37,
  CONNECTED: 38,
} as const;

/** The relay protocol's version, sent in CHALLENGE. */
export const RELAY_VERSION = 1;

/** The largest relay frame a peer accepts, in bytes. */
export const MAX_RELAY_FRAME = 1024;

export type RelayFrame =
  /** The relay's first frame on every connection: 32 fresh random bytes to sign. */
  | { readonly type: 32; readonly version: number; readonly nonce: Uint8Array }
  /** A host registers this connection as a spare under `key`. */
  | { readonly type: 33; readonly key: PublicKey; readonly signature: Uint8Array }
  /** The relay took the spare and pings it every `pingIntervalMs`. */
  | { readonly type: 34; readonly pingIntervalMs: number }
  /** A caller asks for `target`, anonymously (`caller` null) or proving its own key. */
  | { readonly type: 35; readonly target: PublicKey; readonly caller: { readonly key: PublicKey; readonly signature: Uint8Array } | null }
  /** The relay hands this spare to a caller whose key it verified (null: anonymous). */
  | { readonly type: 36; readonly caller: PublicKey | null }
  /** The host is ready to speak wsp on the handed-over spare. */
  | { readonly type: 37 }
  /** The caller's route is joined: wsp starts. */
  | { readonly type: 38 };

/** A relay frame that cannot be read (the connection closes with 1002). */
export class RelayFrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RelayFrameError';
  }
}

/** The frame as one WebSocket message of `codec` (binary MessagePack or JSON text). */
export function encodeRelayFrame(frame: RelayFrame, codec: Codec): Uint8Array | string {
  return codec.encode(relayFrameArray(frame));
}

/** The frame as the array that goes on the wire. */
export function relayFrameArray(frame: RelayFrame): unknown[] {
  switch (frame.type) {
    case RelayFrameType.CHALLENGE:
      return [frame.type, frame.version, bytesToHex(frame.nonce)];
    case RelayFrameType.REGISTER:
      return [frame.type, frame.key.toString(), bytesToHex(frame.signature)];
    case RelayFrameType.REGISTERED:
      return [frame.type, frame.pingIntervalMs];
    case RelayFrameType.CONNECT:
      return [
        frame.type,
        frame.target.toString(),
        frame.caller === null ? null : [frame.caller.key.toString(), bytesToHex(frame.caller.signature)],
      ];
    case RelayFrameType.HANDOVER:
      return [frame.type, frame.caller === null ? null : frame.caller.toString()];
    case RelayFrameType.READY:
    case RelayFrameType.CONNECTED:
      return [frame.type];
  }
}

/**
 * Reads one relay frame from a WebSocket message of `codec`; elements after the last known one
 * are ignored (as in wsp frames). Throws {@link RelayFrameError}.
 */
export function decodeRelayFrame(data: Uint8Array | string, codec: Codec): RelayFrame {
  const size = typeof data === 'string' ? utf8Length(data) : data.byteLength;
  if (size > MAX_RELAY_FRAME) throw new RelayFrameError(`relay frame of ${size} bytes (at most ${MAX_RELAY_FRAME})`);
  let value: unknown;
  try {
    value = codec.decode(data);
  } catch (e) {
    throw new RelayFrameError(e instanceof DecodeFailure ? e.message : 'undecodable relay frame');
  }
  if (!Array.isArray(value) || value.length === 0) throw new RelayFrameError('relay frame is not a non-empty array');
  const a: readonly unknown[] = value;
  const field = (i: number): unknown => {
    if (i >= a.length) throw new RelayFrameError(`relay frame type ${String(a[0])} has too few elements`);
    return a[i];
  };
  switch (a[0]) {
    case RelayFrameType.CHALLENGE:
      return { type: a[0], version: unsigned(field(1), 'version'), nonce: hex(field(2), 32, 'nonce') };
    case RelayFrameType.REGISTER:
      return { type: a[0], key: key(field(1)), signature: hex(field(2), 64, 'signature') };
    case RelayFrameType.REGISTERED:
      return { type: a[0], pingIntervalMs: unsigned(field(1), 'ping interval') };
    case RelayFrameType.CONNECT: {
      const caller = field(2);
      if (caller === null || caller === undefined) return { type: a[0], target: key(field(1)), caller: null };
      if (!Array.isArray(caller) || caller.length < 2) throw new RelayFrameError('CONNECT caller is neither nil nor [key, signature]');
      return { type: a[0], target: key(field(1)), caller: { key: key(caller[0]), signature: hex(caller[1], 64, 'signature') } };
    }
    case RelayFrameType.HANDOVER: {
      const caller = field(1);
      return { type: a[0], caller: caller === null || caller === undefined ? null : key(caller) };
    }
    case RelayFrameType.READY:
    case RelayFrameType.CONNECTED:
      return { type: a[0] };
    default:
      throw new RelayFrameError(`unknown relay frame type ${typeof a[0] === 'number' ? a[0] : typeof a[0]}`);
  }
}

/** An unsigned integer as either codec delivers it; a bigint beyond 2^53 is clamped (an interval that long is "never"). */
function unsigned(v: unknown, what: string): number {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v;
  if (typeof v === 'bigint' && v >= 0n) return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
  throw new RelayFrameError(`relay frame ${what} is not an unsigned integer`);
}

function hex(v: unknown, bytes: number, what: string): Uint8Array {
  const out = typeof v === 'string' ? hexToBytes(v, bytes) : undefined;
  if (out === undefined) throw new RelayFrameError(`relay frame ${what} is not ${bytes * 2} hex digits`);
  return out;
}

function key(v: unknown): PublicKey {
  return new PublicKey(hex(v, 32, 'key'));
}
