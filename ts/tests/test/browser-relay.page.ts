/**
 * The page script of browser-relay.test.ts, bundled with esbuild for the browser (IIFE, global
 * `wspRelayPage`): the runtime core and the generated `math`, serving `math.Math` through the
 * relay from the page with the browser's own `WebSocket` (a browser tab cannot accept
 * connections: that is what the relay is for), and calling a host through the relay as well.
 * Not a test file itself.
 */
import { Client, Identity, RelayHost, type RelayPeer } from '@wsp/runtime';
import * as math from '../../generated/math.js';
import { type Seen, newSeen, relayMath } from './relay-math.js';

let host: RelayHost | undefined;
const seen: Seen = newSeen();

/** Starts serving through the relay under a key made in the page; resolves with the key once all spares are registered. */
export async function startHost(relayUrl: string): Promise<string> {
  // No `WebSocket` option: the browser's own. Identity.generate() uses the page's crypto.getRandomValues.
  host = new RelayHost(relayUrl, Identity.generate(), { spares: 2 });
  math.serveMath(host, relayMath(seen));
  await host.start();
  await host.waitForSpares();
  return host.publicKey.toString();
}

/** What the page's host saw, and facts about the page. */
export function report(): Seen & { handovers: number; idleSpares: number; hasNodeProcess: boolean } {
  return {
    ...seen,
    handovers: host?.handovers ?? 0,
    idleSpares: host?.idleSpares ?? 0,
    hasNodeProcess: typeof (globalThis as { process?: unknown }).process !== 'undefined',
  };
}

export async function stopHost(): Promise<void> {
  await host?.close();
}

/** The page as a caller: proves a key made here, adds through the relay; returns the sum, the key, and whether the link was encrypted. */
export async function callThrough(relayUrl: string, target: string): Promise<{ sum: string; caller: string; encrypted: boolean }> {
  const me = Identity.generate();
  const client = Client.viaRelay(relayUrl, target, { identity: me });
  try {
    await client.connect();
    const m = new math.MathClient(client);
    const sum = await m.add([2n ** 62n, 5n]);
    await m.reset();
    return { sum: String(sum), caller: me.publicKey.toString(), encrypted: (client.currentPeer?.data as RelayPeer).encrypted };
  } finally {
    await client.close();
  }
}
