/**
 * Frame layouts (PROTOCOL.md §2) and envelope validation.
 *
 * `parseFrame` checks only the envelope (frame type, ids, method names, header integers). Payloads
 * (`args`, `result`, `item`, `details`) are passed through untouched for the typed layer. Elements
 * after the last known one are ignored (§2), so later versions can append fields.
 */

export const FrameType = {
  HELLO: 0,
  CALL: 1,
  STREAM: 2,
  NOTIFY: 3,
  REPLY: 4,
  ERROR: 5,
  ITEM: 6,
  END: 7,
  CANCEL: 8,
  CREDIT: 9,
  UPLOAD: 10,
  DUPLEX: 11,
  PUSH: 12,
  PUSH_END: 13,
  PULL: 14,
} as const;

export const PROTOCOL_VERSION = 1;
export const MAX_U32 = 0xffff_ffff;

export type Frame =
  | { type: 0; version: number; services: Record<string, string> }
  | { type: 1; id: number; method: string; deadline: number | null; args: unknown }
  | { type: 2; id: number; method: string; deadline: number | null; credit: number; args: unknown }
  | { type: 3; method: string; args: unknown }
  | { type: 4; id: number; result: unknown }
  | { type: 5; id: number; code: number; message: string; details: unknown }
  | { type: 6; id: number; item: unknown }
  | { type: 7; id: number }
  | { type: 8; id: number }
  | { type: 9; id: number; n: number }
  | { type: 10; id: number; method: string; deadline: number | null; args: unknown }
  | { type: 11; id: number; method: string; deadline: number | null; credit: number; args: unknown }
  | { type: 12; id: number; item: unknown }
  | { type: 13; id: number }
  | { type: 14; id: number; n: number };

/** A frame whose envelope is malformed (close 1002). */
export class MalformedFrame extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MalformedFrame';
  }
}

/** An unsigned 32-bit integer as either codec may deliver it (number, or bigint from a uint64). */
function u32(v: unknown, what: string): number {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= MAX_U32) return v;
  if (typeof v === 'bigint' && v >= 0n && v <= BigInt(MAX_U32)) return Number(v);
  throw new MalformedFrame(`${what} is not an unsigned 32-bit integer`);
}

function str(v: unknown, what: string): string {
  if (typeof v === 'string') return v;
  throw new MalformedFrame(`${what} is not a string`);
}

function deadlineOf(v: unknown): number | null {
  return v === null || v === undefined ? null : u32(v, 'deadline');
}

function need(a: readonly unknown[], n: number, name: string): void {
  if (a.length < n) throw new MalformedFrame(`${name} frame has ${a.length} elements, needs ${n}`);
}

function servicesOf(v: unknown): Record<string, string> {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) {
    throw new MalformedFrame('HELLO services is not a map');
  }
  const out: Record<string, string> = {};
  for (const [k, s] of Object.entries(v as Record<string, unknown>)) out[k] = str(s, 'HELLO fingerprint');
  return out;
}

/** Validates a decoded message as a frame envelope; throws {@link MalformedFrame}. */
export function parseFrame(v: unknown): Frame {
  if (!Array.isArray(v) || v.length === 0) throw new MalformedFrame('frame is not a non-empty array');
  const a: readonly unknown[] = v;
  const type = a[0];
  switch (type) {
    case FrameType.HELLO:
      need(a, 3, 'HELLO');
      return { type, version: u32(a[1], 'version'), services: servicesOf(a[2]) };
    case FrameType.CALL:
    case FrameType.UPLOAD:
      need(a, 5, type === FrameType.CALL ? 'CALL' : 'UPLOAD');
      return { type, id: u32(a[1], 'id'), method: str(a[2], 'method'), deadline: deadlineOf(a[3]), args: a[4] };
    case FrameType.STREAM:
    case FrameType.DUPLEX:
      need(a, 6, type === FrameType.STREAM ? 'STREAM' : 'DUPLEX');
      return {
        type,
        id: u32(a[1], 'id'),
        method: str(a[2], 'method'),
        deadline: deadlineOf(a[3]),
        credit: u32(a[4], 'credit'),
        args: a[5],
      };
    case FrameType.NOTIFY:
      need(a, 3, 'NOTIFY');
      return { type, method: str(a[1], 'method'), args: a[2] };
    case FrameType.REPLY:
      need(a, 3, 'REPLY');
      return { type, id: u32(a[1], 'id'), result: a[2] };
    case FrameType.ERROR:
      need(a, 5, 'ERROR');
      return { type, id: u32(a[1], 'id'), code: u32(a[2], 'code'), message: str(a[3], 'message'), details: a[4] };
    case FrameType.ITEM:
    case FrameType.PUSH:
      need(a, 3, type === FrameType.ITEM ? 'ITEM' : 'PUSH');
      return { type, id: u32(a[1], 'id'), item: a[2] };
    case FrameType.END:
    case FrameType.CANCEL:
    case FrameType.PUSH_END:
      need(a, 2, type === FrameType.END ? 'END' : type === FrameType.CANCEL ? 'CANCEL' : 'PUSH_END');
      return { type, id: u32(a[1], 'id') };
    case FrameType.CREDIT:
    case FrameType.PULL:
      need(a, 3, type === FrameType.CREDIT ? 'CREDIT' : 'PULL');
      return { type, id: u32(a[1], 'id'), n: u32(a[2], 'n') };
    default:
      throw new MalformedFrame(`unknown frame type ${String(type)}`);
  }
}
