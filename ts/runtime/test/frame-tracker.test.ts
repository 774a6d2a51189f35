/** The WebSocket frame-header tracker behind the message assembly timeout (src/node/frame-tracker.ts). */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FrameTracker } from '../src/node/frame-tracker.js';
import { clientFrame } from './helpers.js';

/** A frame as a server sends it (unmasked). */
function serverFrame(opcode: number, length: number, fin = true): Buffer {
  const head = length < 126 ? Buffer.alloc(2) : length < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
  head[0] = (fin ? 0x80 : 0) | opcode;
  if (length < 126) head[1] = length;
  else if (length < 65536) {
    head[1] = 126;
    head.writeUInt16BE(length, 2);
  } else {
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(length), 2);
  }
  return Buffer.concat([head, Buffer.alloc(length)]);
}

const bytes = (n: number): Uint8Array => new Uint8Array(n).fill(7);

/** Feeds `data` in pieces of `step` bytes, the i-th piece at time `t0 + i`. */
function feedInSteps(tracker: FrameTracker, data: Buffer, step: number, t0 = 0): void {
  for (let i = 0, t = t0; i < data.length; i += step, t++) tracker.feed(data.subarray(i, i + step), t);
}

describe('frame tracker', () => {
  test('nothing in progress between whole frames, whatever their length encoding', () => {
    const t = new FrameTracker();
    for (const len of [0, 1, 125, 126, 127, 65535, 65536, 200_000]) {
      t.feed(clientFrame(2, bytes(len)), 1);
      assert.equal(t.since, undefined, `masked binary of ${len} bytes`);
      t.feed(serverFrame(1, len), 2);
      assert.equal(t.since, undefined, `unmasked text of ${len} bytes`);
    }
  });

  test('many frames in one chunk', () => {
    const t = new FrameTracker();
    t.feed(Buffer.concat([clientFrame(2, bytes(3)), clientFrame(9), clientFrame(1, bytes(300)), clientFrame(10, bytes(4))]), 5);
    assert.equal(t.since, undefined);
  });

  test('a frame split anywhere, down to single bytes, is in progress from its first byte', () => {
    for (const len of [0, 5, 126, 70_000]) {
      for (const step of [1, 2, 3, 7, 13]) {
        const frame = clientFrame(2, bytes(len));
        const t = new FrameTracker();
        // all but the last byte, one piece per ms from t = 100
        feedInSteps(t, frame.subarray(0, frame.length - 1), step, 100);
        if (frame.length > 1) assert.equal(t.since, 100, `len ${len}, step ${step}`);
        t.feed(frame.subarray(frame.length - 1), 1_000_000);
        assert.equal(t.since, undefined, `len ${len}, step ${step}: complete`);
      }
    }
  });

  test('a fragmented message is in progress from its first fragment until its final one, across control frames', () => {
    const t = new FrameTracker();
    t.feed(clientFrame(2, bytes(10), false), 10);
    assert.equal(t.since, 10);
    t.feed(clientFrame(9, bytes(4)), 20); // ping
    t.feed(clientFrame(10), 30); // pong
    t.feed(clientFrame(0, bytes(70_000), false), 40); // continuation, not final
    assert.equal(t.since, 10);
    const close = clientFrame(8, Buffer.from([0x03, 0xe8]));
    t.feed(close.subarray(0, 3), 50); // a control frame split in the middle of the message
    assert.equal(t.since, 10);
    t.feed(close.subarray(3), 55);
    t.feed(clientFrame(0, bytes(1), true), 60); // final continuation
    assert.equal(t.since, undefined);
    // the next message starts its own clock
    t.feed(clientFrame(1, bytes(5), false), 70);
    assert.equal(t.since, 70);
  });

  test('a control frame received in part is in progress on its own', () => {
    const t = new FrameTracker();
    const ping = clientFrame(9, bytes(100));
    t.feed(ping.subarray(0, 10), 3);
    assert.equal(t.since, 3);
    t.feed(ping.subarray(10), 4);
    assert.equal(t.since, undefined);
  });

  test('shift moves the clock of what is in progress', () => {
    const t = new FrameTracker();
    t.feed(clientFrame(2, bytes(10), false), 10);
    t.shift(500);
    assert.equal(t.since, 510);
    t.feed(clientFrame(0, bytes(1)), 600);
    t.shift(500);
    assert.equal(t.since, undefined);
  });
});
