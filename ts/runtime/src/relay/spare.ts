/**
 * One spare connection of a host (PROTOCOL.md §11.4–11.5): read the CHALLENGE, REGISTER under the
 * host's key with a proof, wait idle for a HANDOVER, answer READY and hand the socket to wsp.
 * While idle the host sends nothing; the relay's pings are answered by the WebSocket layer.
 */
import { CloseCode } from '../close.js';
import { RelayError } from '../errors.js';
import type { WebSocketLike } from '../socket.js';
import { RELAY_VERSION, RelayFrameType } from './frames.js';
import type { PublicKey, Signer } from './identity.js';
import { RelayLink } from './link.js';
import { proofText } from './proof.js';

export interface SpareEvents {
  /** The relay took the spare; it is idle now. */
  registered(): void;
  /**
   * A caller was handed this spare and READY was sent: start wsp (or first the end-to-end
   * handshake, §12) on `socket` now, in this event. `caller` is the key the relay verified, or
   * null for an anonymous caller.
   */
  handedOver(socket: WebSocketLike, caller: PublicKey | null): void;
  /** The spare ended before a hand-over: refused, lost, or the relay went silent. */
  failed(error: RelayError): void;
}

export interface SpareOptions {
  readonly relayName: string;
  /** Limit from the socket's creation to REGISTERED; then 4001. */
  readonly timeoutMs: number;
  readonly events: SpareEvents;
}

const encoder = new TextEncoder();

/** Starts registering `socket` (open or still connecting) as a spare of `signer`'s key. */
export function registerSpare(socket: WebSocketLike, signer: Signer, options: SpareOptions): RelayLink {
  let step: 'challenge' | 'registered' | 'idle' = 'challenge';
  const link: RelayLink = new RelayLink(socket, {
    frame(frame) {
      if (step === 'challenge' && frame.type === RelayFrameType.CHALLENGE) {
        if (frame.version !== RELAY_VERSION) {
          return link.fail(CloseCode.PROTOCOL_ERROR, `relay protocol version ${frame.version} (this runtime speaks ${RELAY_VERSION})`);
        }
        const signature = signer.sign(encoder.encode(proofText('register', options.relayName, frame.nonce)));
        step = 'registered';
        link.send({ type: RelayFrameType.REGISTER, key: signer.publicKey, signature });
        return;
      }
      if (step === 'registered' && frame.type === RelayFrameType.REGISTERED) {
        step = 'idle';
        link.clearDeadline();
        // §11.4: three ping intervals without a word from the relay: it is gone. Only where the
        // socket shows pings (Node's ws); a browser learns of a dead relay from the close event.
        if (link.hearsPings) link.quietLimit(3 * frame.pingIntervalMs);
        options.events.registered();
        return;
      }
      if (step === 'idle' && frame.type === RelayFrameType.HANDOVER) {
        // READY first, and wsp (the Peer's HELLO) right after it, in this same event (§11.5).
        link.send({ type: RelayFrameType.READY });
        options.events.handedOver(link.release(), frame.caller);
        return;
      }
      const expected = step === 'challenge' ? 'CHALLENGE' : step === 'registered' ? 'REGISTERED' : 'HANDOVER';
      link.fail(CloseCode.PROTOCOL_ERROR, `unexpected relay frame ${frame.type} (expected ${expected})`);
    },
    ended(end) {
      options.events.failed(new RelayError(end.code, end.reason));
    },
  });
  link.deadline(options.timeoutMs, CloseCode.HANDSHAKE_TIMEOUT, 'relay registration timed out');
  return link;
}
