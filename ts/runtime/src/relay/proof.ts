/**
 * What a proof signs (PROTOCOL.md §11.3). The text names its purpose, the relay by the name the
 * peer dialed, and the nonce of this connection's CHALLENGE, so a proof is good for one purpose,
 * one relay and one connection only: a relay that passes its challenge on to a peer connected to
 * it gets a proof for its own name, which the real relay refuses.
 */
import { bytesToHex } from './hex.js';
import { PublicKey } from './identity.js';

export type ProofPurpose = 'register' | 'connect';

/**
 * The exact text: `wsp-relay/1`, the purpose, the relay name and the nonce (64 hex digits), one
 * per line, and for `connect` a fifth line with the target key; `\n` between lines, none at the
 * end. Sign its UTF-8 bytes (`new TextEncoder().encode(text)`).
 */
export function proofText(purpose: ProofPurpose, relayName: string, nonce: Uint8Array, target?: PublicKey | string): string {
  if (nonce.length !== 32) throw new TypeError(`a relay nonce is 32 bytes, got ${nonce.length}`);
  if ((purpose === 'connect') !== (target !== undefined)) {
    throw new TypeError('a connect proof names its target; a register proof names none');
  }
  const lines = ['wsp-relay/1', purpose, relayName, bytesToHex(nonce)];
  if (target !== undefined) lines.push(PublicKey.from(target).toString());
  return lines.join('\n');
}

/** Default ports, which a relay name leaves out (`http(s)` too: WebSocket URLs may use them). */
const DEFAULT_PORT: Readonly<Record<string, string>> = { 'ws:': '80', 'wss:': '443', 'http:': '80', 'https:': '443' };

/**
 * The relay's name as a proof states it: the host of the URL the peer dialed, in lowercase, and
 * `:port` when the URL names a port that is not its scheme's default
 * (`ws://127.0.0.1:8787/` → `127.0.0.1:8787`, `wss://Relay.Example.com/` → `relay.example.com`).
 * `URL` already lowercases the host and drops a default port; the check is repeated so the rule
 * does not rest on that. An IPv6 host keeps its brackets (`[::1]:8787`), as the relay writes its
 * own address.
 */
export function relayName(url: string): string {
  const u = new URL(url);
  const host = u.hostname.toLowerCase();
  return u.port === '' || u.port === DEFAULT_PORT[u.protocol] ? host : `${host}:${u.port}`;
}
