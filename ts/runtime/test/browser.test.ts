/**
 * The core in a real browser (headless Chromium via playwright-core) against the Node server:
 * proves the browser-safe entry works with the DOM WebSocket, both codecs, calls both ways, bigint
 * and streams. Skipped when no Chromium is installed (set CHROMIUM_PATH to point at one; on Debian
 * `apt-get install chromium`).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { build } from 'esbuild';
import { convert } from '../src/index.js';
import { startServer } from './helpers.js';

const candidates = [process.env['CHROMIUM_PATH'], '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];
const chromium = candidates.find((p): p is string => p !== undefined && p !== '' && existsSync(p));

// Under scripts/test-all (WSP_REQUIRE_BROWSER=1) a missing Chromium is a failure, not a skip.
const requireBrowser = process.env['WSP_REQUIRE_BROWSER'] === '1';
test('browser client (DOM WebSocket) ↔ Node server', { timeout: 60_000, skip: chromium === undefined && !requireBrowser ? 'no Chromium found (CHROMIUM_PATH)' : false }, async () => {
  assert.ok(chromium !== undefined, 'WSP_REQUIRE_BROWSER=1 but no Chromium found (install Debian chromium or set CHROMIUM_PATH)');
  const entry = fileURLToPath(new URL('../../src/index.ts', import.meta.url));
  const bundle = await build({ entryPoints: [entry], bundle: true, platform: 'browser', format: 'iife', globalName: 'wsp', write: false, logLevel: 'silent' });
  const script = bundle.outputFiles[0]?.text ?? '';

  // The page is about:blank, whose origin is opaque (`Origin: null`): not this server's origin.
  const { server, url } = await startServer({ origins: 'any' });
  server.addService('b', {
    add: (args) => (args as number[]).reduce((a, b) => a + b, 0),
    big: (args) => convert.toBigInt(args[0]) + 1n,
    askBack: (_args, ctx) => ctx.peer.call('b.client/where', []),
    count: { kind: 'stream', handler: function* (args) { for (let i = 0; i < Number(args[0]); i++) yield i; } },
  });
  const { chromium: pw } = await import('playwright-core');
  const browser = await pw.launch({ executablePath: chromium, args: ['--no-sandbox', '--headless=new'] });
  try {
    const page = await browser.newPage();
    await page.addScriptTag({ content: script });
    const result = await page.evaluate(async (serverUrl: string) => {
      type Api = typeof import('../src/index.js');
      const w = (globalThis as unknown as { wsp: Api }).wsp;
      const out: Record<string, unknown> = {};
      for (const codec of ['msgpack', 'json'] as const) {
        const c = new w.Client(serverUrl, { codecs: [codec] });
        c.addService('b.client', { where: () => `browser/${codec}` });
        await c.connect();
        const items: unknown[] = [];
        for await (const x of c.stream('b/count', [5])) items.push(x);
        out[codec] = {
          codec: c.codec,
          add: await c.call('b/add', [1, 2, 3]),
          big: String(await c.call('b/big', [2n ** 60n], { decode: (v) => w.convert.toBigInt(v) })),
          back: await c.call('b/askBack', []),
          items,
          unknown: await c.call('b/nope', []).catch((e: { code: string }) => e.code),
        };
        await c.close();
      }
      return out;
    }, url);
    const big = String(2n ** 60n + 1n);
    assert.deepEqual(result, {
      msgpack: { codec: 'msgpack', add: 6, big, back: 'browser/msgpack', items: [0, 1, 2, 3, 4], unknown: 'UNKNOWN_METHOD' },
      json: { codec: 'json', add: 6, big, back: 'browser/json', items: [0, 1, 2, 3, 4], unknown: 'UNKNOWN_METHOD' },
    });
  } finally {
    await browser.close();
    await server.close();
  }
});
