/**
 * The caller's steps on a fresh connection to the relay (PROTOCOL.md §11.5): read the CHALLENGE,
 * send CONNECT — with a proof of the caller's own key when it has one — and wait for CONNECTED.
 * After that the connection is an ordinary wsp link to the target, the caller its client.
 */
import { CloseCode } from '../close.js';
import { RelayError } from '../errors.js';
import type { WebSocketLike } from '../socket.js';
import { RELAY_VERSION, RelayFrameType } from './frames.js';
import type { PublicKey, Signer } from './identity.js';
import { RelayLink } from './link.js';
import { proofText } from './proof.js';

/** Whom a client asks the relay for, whether it proves its own key, and whether it encrypts. */
export interface RelayRoute {
  /** The public key of the host to reach (a {@link PublicKey} or its 64 hex digits). */
  readonly target: PublicKey | string;
  /**
   * Proves this key pair to the relay and, end to end, to the host, so the host learns who
   * calls; without it the caller is anonymous.
   */
  readonly identity?: Signer;
  /**
   * End-to-end encryption (PROTOCOL.md §12), default true: the host must encrypt too, and proves
   * in the handshake that it holds the target's secret key. `false`: plain wsp, which the relay
   * can read — only for a host that does not encrypt.
   */
  readonly encrypt?: boolean;
}

export interface AskOptions {
  /** The relay's name as the proof states it ({@link relayName} of the URL dialed). */
  readonly relayName: string;
  /** The whole exchange (WebSocket upgrade included) must end within this; then 4001. */
  readonly timeoutMs: number;
  /** CONNECTED arrived: attach the wsp Peer to `socket` now, in this event. */
  connected(socket: WebSocketLike): void;
  /** The relay refused (its close code and reason), or the connection failed before CONNECTED. */
  failed(error: RelayError): void;
}

const encoder = new TextEncoder();

/** Starts the exchange on `socket` (open or still connecting); returns its link, to close it early. */
export function askForTarget(socket: WebSocketLike, target: PublicKey, identity: Signer | undefined, options: AskOptions): RelayLink {
  let step: 'challenge' | 'connected' = 'challenge';
  const link: RelayLink = new RelayLink(socket, {
    frame(frame) {
      if (step === 'challenge' && frame.type === RelayFrameType.CHALLENGE) {
        if (frame.version !== RELAY_VERSION) {
          return link.fail(CloseCode.PROTOCOL_ERROR, `relay protocol version ${frame.version} (this runtime speaks ${RELAY_VERSION})`);
        }
        const caller =
          identity === undefined
            ? null
            : { key: identity.publicKey, signature: identity.sign(encoder.encode(proofText('connect', options.relayName, frame.nonce, target))) };
        step = 'connected';
        link.send({ type: RelayFrameType.CONNECT, target, caller });
        return;
      }
      if (step === 'connected' && frame.type === RelayFrameType.CONNECTED) return options.connected(link.release());
      link.fail(CloseCode.PROTOCOL_ERROR, `unexpected relay frame ${frame.type} (expected ${step === 'challenge' ? 'CHALLENGE' : 'CONNECTED'})`);
    },
    ended(end) {
      options.failed(new RelayError(end.code, end.reason));
    },
  });
  link.deadline(options.timeoutMs, CloseCode.HANDSHAKE_TIMEOUT, 'relay handshake timed out');
  return link;
}
