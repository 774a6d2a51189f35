/**
 * A browser tab serving through the relay: the page script (browser-relay.page.ts — the runtime
 * core, the generated `math` and the relay host, bundled by esbuild for the browser) runs in
 * headless Chromium (playwright-core) and serves `math.Math` through the Rust relay with the
 * browser's own `WebSocket`, encrypted end to end (PROTOCOL.md §12, with the `@noble` primitives
 * in the page); the generated Rust client (tests/interop `relay-call`) and the generated
 * TypeScript client on Node call it, each proving its own key in the handshake, which the page's
 * handlers see. The page also calls a Rust host through the relay, encrypted. Skipped when no
 * Chromium is installed (set CHROMIUM_PATH); under WSP_REQUIRE_BROWSER=1 a missing Chromium is a
 * failure.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, test } from 'node:test';
import { build } from 'esbuild';
import { CHROMIUM_ARGS, chromium, requireBrowser, skipBrowser } from './browser.js';
import { Client, Identity } from '@wsp/runtime';
import { WebSocket } from '@wsp/runtime/node';
import * as math from '../../generated/math.js';
import type { callThrough, report, startHost, stopHost } from './browser-relay.page.js';
import { quiet, within } from './helpers.js';
import { type RelayProcess, RustProcess, interopBinary, relayBinary, startRelay } from './rust-process.js';

interface PageApi {
  startHost: typeof startHost;
  report: typeof report;
  stopHost: typeof stopHost;
  callThrough: typeof callThrough;
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

// Built (or found) before the test, outside its time limit: a first cargo build can take longer.
let interop = '';
let relayBin = '';
before(() => {
  if (chromium !== undefined || requireBrowser) {
    interop = interopBinary();
    relayBin = relayBinary();
  }
});

test(
  'browser host (DOM WebSocket) through the Rust relay ← Rust and Node callers; the page calls a Rust host too',
  { timeout: 90_000, skip: skipBrowser },
  async () => {
    assert.ok(chromium !== undefined, 'WSP_REQUIRE_BROWSER=1 but no Chromium found (install Debian chromium or set CHROMIUM_PATH)');
    // The TypeScript source, not the compiled copy in dist: esbuild compiles it for the browser.
    const entry = fileURLToPath(new URL('../../../test/browser-relay.page.ts', import.meta.url));
    const bundle = await build({
      entryPoints: [entry],
      bundle: true,
      platform: 'browser',
      format: 'iife',
      globalName: 'wspRelayPage',
      target: 'es2022',
      write: false,
      logLevel: 'silent',
    });
    const script = bundle.outputFiles[0]?.text ?? '';
    assert.ok(script.length > 0, 'esbuild produced no bundle');
    assert.doesNotMatch(script, /require\(["']|from ["']node:/, 'the page bundle must not use Node built-ins');

    const userDataDir = mkdtempSync(join(tmpdir(), 'wsp-chromium-'));
    let relay: RelayProcess | undefined;
    let rustHost: RustProcess | undefined;
    let rustCaller: RustProcess | undefined;
    let client: Client | undefined;
    let context: import('playwright-core').BrowserContext | undefined;
    try {
      relay = await startRelay(relayBin);
      const relayUrl = relay.url;
      const { chromium: pw } = await import('playwright-core');
      context = await pw.launchPersistentContext(userDataDir, {
        executablePath: chromium,
        headless: true,
        args: CHROMIUM_ARGS,
        timeout: 30_000,
      });
      const page = context.pages()[0] ?? (await context.newPage());
      await page.addScriptTag({ content: script });
      const key = await within(
        page.evaluate((url) => (globalThis as unknown as { wspRelayPage: PageApi }).wspRelayPage.startHost(url), relayUrl),
        20_000,
        "the page's host registered",
      );
      assert.match(key, /^[0-9a-f]{64}$/);

      // The generated Rust client calls the page.
      const rustIdentity = Identity.generate();
      rustCaller = new RustProcess(interop, ['relay-call', relayUrl, key, 'msgpack', hex(rustIdentity.secret)]);
      assert.equal(await within(rustCaller.exited, 20_000, 'the Rust caller'), 0, rustCaller.output);
      assert.deepEqual(rustCaller.lines, [
        `caller ${rustIdentity.publicKey.toString()}`,
        'connected e2e',
        `add ${2n ** 62n + 4n}`,
        'overflow add',
        'divide DivisionByZero',
        'count [1, 2, 3, 4, 5]',
        'ok',
      ]);

      // The generated TypeScript client on Node calls the page.
      const nodeIdentity = Identity.generate();
      client = Client.viaRelay(relayUrl, key, { identity: nodeIdentity, WebSocket, log: quiet });
      await within(client.connect(), 5000, 'the Node caller connects');
      const m = new math.MathClient(client);
      assert.equal(await m.add([1n, 2n ** 62n]), 2n ** 62n + 1n);
      const byZero = await m.divide(1, 0).catch((e: unknown) => e);
      assert.ok(math.isMathError(byZero) && byZero.details.$type === 'DivisionByZero');
      const counted: number[] = [];
      for await (const n of m.count(3, 5)) counted.push(n);
      assert.deepEqual(counted, [3, 4, 5]);
      m.log('from node');
      await m.reset();
      await client.close();

      const seen = await page.evaluate(() => (globalThis as unknown as { wspRelayPage: PageApi }).wspRelayPage.report());
      assert.deepEqual(seen.callers, [rustIdentity.publicKey.toString(), nodeIdentity.publicKey.toString()], 'the page saw who called');
      assert.deepEqual(seen.encrypted, [true, true], 'both encrypted end to end');
      assert.deepEqual(seen.logs, ['through the relay', 'from node']);
      assert.equal(seen.handovers, 2);
      assert.equal(seen.hasNodeProcess, false);

      // The page as a caller, of a Rust host.
      rustHost = new RustProcess(interop, ['relay-host', relayUrl, hex(Identity.generate().secret)]);
      const rustKey = await rustHost.lineAfter('registered ');
      const called = await within(
        page.evaluate(
          ([url, target]) => (globalThis as unknown as { wspRelayPage: PageApi }).wspRelayPage.callThrough(url, target),
          [relayUrl, rustKey] as const,
        ),
        20_000,
        "the page's call",
      );
      assert.equal(called.sum, String(2n ** 62n + 5n));
      assert.equal(called.encrypted, true);
      await rustHost.waitFor(`event reset ${called.caller} e2e`);

      await within(
        page.evaluate(() => (globalThis as unknown as { wspRelayPage: PageApi }).wspRelayPage.stopHost()),
        10_000,
        "the page's host closes",
      );
    } finally {
      await client?.close();
      await context?.close().catch(() => undefined);
      await rustCaller?.kill();
      await rustHost?.stop();
      await relay?.process.interrupt();
      rmSync(userDataDir, { recursive: true, force: true });
    }
  },
);
