/**
 * A real browser against the Rust server: the page script (browser-rust.page.ts — the generated
 * TypeScript of `math` and `geometry` plus the runtime core, bundled by esbuild for the browser)
 * runs in headless Chromium (playwright-core), connects with the browser's own `WebSocket` to the
 * `tests/interop` server, makes typed calls and answers the server's calls back into the page
 * (`geometry.Geometry`'s `client { }` block, through `registerGeometryCallbacks`), in both codecs.
 * Skipped when no Chromium is installed (set CHROMIUM_PATH); under WSP_REQUIRE_BROWSER=1 a missing
 * Chromium is a failure.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, test } from 'node:test';
import { build } from 'esbuild';
import { CHROMIUM_ARGS, chromium, expectedRustOutcome, requireBrowser, skipBrowser } from './browser.js';
import type { CodecOutcome, run } from './browser-rust.page.js';
import { within } from './helpers.js';
import { RustProcess, interopBinary } from './rust-process.js';

// Built (or found) before the test, outside its 60 s: a first cargo build can take longer.
let bin = '';
before(() => {
  if (chromium !== undefined || requireBrowser) bin = interopBinary();
});

test(
  'browser client (generated TS, DOM WebSocket) ↔ Rust server, calls both ways',
  { timeout: 60_000, skip: skipBrowser },
  async () => {
    assert.ok(chromium !== undefined, 'WSP_REQUIRE_BROWSER=1 but no Chromium found (install Debian chromium or set CHROMIUM_PATH)');
    // The TypeScript source, not the compiled copy in dist: esbuild compiles it for the browser.
    const entry = fileURLToPath(new URL('../../../test/browser-rust.page.ts', import.meta.url));
    const bundle = await build({
      entryPoints: [entry],
      bundle: true,
      platform: 'browser',
      format: 'iife',
      globalName: 'wspPage',
      target: 'es2022',
      write: false,
      logLevel: 'silent',
    });
    const script = bundle.outputFiles[0]?.text ?? '';
    assert.ok(script.length > 0, 'esbuild produced no bundle');
    assert.doesNotMatch(script, /require\(["']|from ["']node:/, 'the page bundle must not use Node built-ins');

    const userDataDir = mkdtempSync(join(tmpdir(), 'wsp-chromium-'));
    let rust: RustProcess | undefined;
    let context: import('playwright-core').BrowserContext | undefined;
    try {
      rust = new RustProcess(bin, ['server']);
      const port = await rust.port();
      const { chromium: pw } = await import('playwright-core');
      // A fresh profile (playwright takes the user data dir here, not as `--user-data-dir`).
      context = await pw.launchPersistentContext(userDataDir, {
        executablePath: chromium,
        headless: true,
        args: CHROMIUM_ARGS,
        timeout: 30_000,
      });
      const page = context.pages()[0] ?? (await context.newPage());
      await page.addScriptTag({ content: script });
      const outcomes: CodecOutcome[] = [];
      for (const codec of ['msgpack', 'json'] as const) {
        const outcome = await within(
          page.evaluate(
            ([url, c]) => (globalThis as unknown as { wspPage: { run: typeof run } }).wspPage.run(url, c),
            [`ws://127.0.0.1:${port}/`, codec] as const,
          ),
          20_000,
          `the page's ${codec} run`,
        );
        outcomes.push(outcome);
      }
      for (const [i, codec] of (['msgpack', 'json'] as const).entries()) {
        assert.deepEqual(outcomes[i], expectedRustOutcome(codec));
      }
    } finally {
      await context?.close().catch(() => undefined);
      await rust?.stop();
      rmSync(userDataDir, { recursive: true, force: true });
    }
  },
);
