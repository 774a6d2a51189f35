/**
 * Follows the WebSocket frames going by on a raw socket (RFC 6455 §5.2), reading only their
 * headers, to tell since when a message has been arriving (PROTOCOL.md §8, message assembly
 * timeout).
 *
 * `ws` assembles fragmented messages internally and shows nothing of one until it is complete, so
 * a peer could keep a message unfinished for ever (sending pings or pongs in between, which keep
 * the keep-alive happy) or trickle one frame in byte by byte, pinning its buffer. This tracker sees
 * the same bytes as `ws` and knows when the message in progress started.
 *
 * A frame is: FIN + opcode byte, MASK + 7-bit length byte, a 2- or 8-byte extended length (for
 * 126 / 127), a 4-byte mask key when masked, then the payload, which is skipped without being
 * looked at. A data message starts with the first byte of a text/binary frame (opcode 1/2) and is
 * complete when the payload of its final frame (FIN set; continuations are opcode 0) has arrived;
 * control frames (8/9/10) in between do not end it. Malformed streams are `ws`'s to reject: this
 * only has to stay in step with well-formed ones.
 */

const OP_CONTINUATION = 0;
const OP_TEXT = 1;
const OP_BINARY = 2;

export class FrameTracker {
  /** Header bytes of the frame being read (at most 2 + 8 + 4). */
  private readonly header = new Uint8Array(14);
  private headerLength = 0;
  /** Header bytes the current frame needs in all (2 until its length byte has arrived). */
  private headerNeeds = 2;
  /** Payload bytes of the current frame still to come, once its header is complete. */
  private payloadLeft = 0;
  private inPayload = false;
  /** When the first byte of the frame being read arrived; undefined between frames. */
  private frameStart: number | undefined;
  /** When the data message in progress started (first byte of its first frame). */
  private messageStart: number | undefined;

  /**
   * Since when something has been arriving and is not complete: the data message in progress, or
   * else a frame read only in part (a control frame); undefined when between messages.
   */
  get since(): number | undefined {
    return this.messageStart ?? this.frameStart;
  }

  /** Takes the next bytes read from the socket, which arrived at `now` (ms). */
  feed(chunk: Uint8Array, now: number): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.inPayload) {
        const take = Math.min(this.payloadLeft, chunk.length - i);
        i += take;
        this.payloadLeft -= take;
        if (this.payloadLeft === 0) this.endFrame();
        continue;
      }
      const byte = chunk[i++] ?? 0;
      if (this.headerLength === 0) {
        this.frameStart = now;
        const opcode = byte & 0x0f;
        if (this.messageStart === undefined && (opcode === OP_TEXT || opcode === OP_BINARY)) this.messageStart = now;
      }
      this.header[this.headerLength++] = byte;
      if (this.headerLength === 2) {
        const len7 = byte & 0x7f;
        this.headerNeeds = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + ((byte & 0x80) !== 0 ? 4 : 0);
      }
      if (this.headerLength >= 2 && this.headerLength === this.headerNeeds) this.startPayload();
    }
  }

  /**
   * Moves the clock of what is in progress `ms` later: time during which the socket was not read
   * (back-pressure of our own) is not the peer's.
   */
  shift(ms: number): void {
    if (this.frameStart !== undefined) this.frameStart += ms;
    if (this.messageStart !== undefined) this.messageStart += ms;
  }

  private startPayload(): void {
    const h = this.header;
    const len7 = (h[1] ?? 0) & 0x7f;
    let length: number;
    if (len7 === 126) length = ((h[2] ?? 0) << 8) | (h[3] ?? 0);
    else if (len7 === 127) {
      // 2^32 · high + low: beyond 2^53 this loses precision, but `ws` refuses such a frame
      // (larger than its maximum payload) long before its payload would be skipped.
      const view = new DataView(h.buffer, h.byteOffset + 2, 8);
      length = view.getUint32(0) * 0x1_0000_0000 + view.getUint32(4);
    } else length = len7;
    this.headerLength = 0;
    this.headerNeeds = 2;
    if (length === 0) this.endFrame();
    else {
      this.inPayload = true;
      this.payloadLeft = length;
    }
  }

  /** The current frame is complete (header in `header[0]`, still intact). */
  private endFrame(): void {
    this.inPayload = false;
    this.frameStart = undefined;
    const first = this.header[0] ?? 0;
    const opcode = first & 0x0f;
    const fin = (first & 0x80) !== 0;
    if (fin && (opcode === OP_CONTINUATION || opcode === OP_TEXT || opcode === OP_BINARY)) this.messageStart = undefined;
  }
}
