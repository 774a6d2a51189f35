/**
 * Headless Chromium for the browser tests: where it is, whether its absence is a failure, and
 * the flags it runs with.
 *
 * Chromium is Debian's (`CHROMIUM_PATH` or a usual path); the tests are skipped when none is
 * installed, unless `WSP_REQUIRE_BROWSER=1` (the test command sets it) makes that a failure.
 */
import { existsSync } from 'node:fs';
import type { CodecOutcome } from './browser-rust.page.js';

const candidates = [process.env['CHROMIUM_PATH'], '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];

/** The Chromium executable, if one is installed. */
export const chromium = candidates.find((p): p is string => p !== undefined && p !== '' && existsSync(p));

/** Whether a missing Chromium fails the browser tests instead of skipping them. */
export const requireBrowser = process.env['WSP_REQUIRE_BROWSER'] === '1';

/** The `skip` option of a browser test. */
export const skipBrowser = chromium === undefined && !requireBrowser ? 'no Chromium found (CHROMIUM_PATH)' : false;

/** Headless, and nothing that would reach the network on its own. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** What the page script of browser-rust.page.ts reports after a run against the Rust interop server. */
export function expectedRustOutcome(codec: 'msgpack' | 'json'): CodecOutcome {
  return {
    codec,
    sum: String(2n ** 62n + 4n),
    overflow: 'Overflow',
    streamedSum: String(2n ** 62n + 4n),
    totals: [String(2n ** 62n + 2n), String(2n ** 62n + 4n)],
    // The window of 16 sent, and one more taken that waits for room.
    pausedAt: 17,
    cancelled: 'CANCELLED',
    area: Math.PI * 4,
    refused: 'not confirmed',
    questions: ['radius 2?', 'radius 0?'],
    progress: [0.5],
    hasNodeProcess: false,
  };
}
