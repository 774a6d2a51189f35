/**
 * wsp on the public internet: TLS (`wss://`) and the Origin check, over real sockets.
 *
 * A test certificate authority and a certificate for 127.0.0.1/localhost signed by it are made at
 * test time (`wsp-interop make-pki`, rcgen). Node clients reach the Rust server (`wsp-interop
 * server-tls`) and the Node server over wss:// trusting that CA (`WebSocket.withOptions({ ca })`),
 * and fail with the TLS error when they do not trust it. Headless Chromium reaches the Rust wss
 * server trusting the leaf by its SPKI hash (`--ignore-certificate-errors-spki-list`), and a page
 * served from http://127.0.0.1:PORT can open a WebSocket to a Rust server whose allow-list names
 * its origin, and cannot (HTTP 403) when the list names another. Chromium is skipped when none is
 * installed (set CHROMIUM_PATH); under WSP_REQUIRE_BROWSER=1 a missing Chromium is a failure.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { type Server as HttpServer, createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { build } from 'esbuild';
import { CHROMIUM_ARGS, chromium, expectedRustOutcome, skipBrowser } from './browser.js';
import { WebSocket, WspServer } from '@wsp/runtime/node';
import * as math from '../../generated/math.js';
import type { CodecOutcome, run } from './browser-rust.page.js';
import { newClient, within } from './helpers.js';
import { RustProcess, interopBinary } from './rust-process.js';

const T = { timeout: 30_000 };

let bin = '';
let pkiDir = '';
let ca = '';
let chain = '';
let key = '';
/** The CA of a second PKI, which did not sign the leaf. */
let otherCa = '';

// Built (or found) and the PKI made before the tests, outside their time limits.
before(() => {
  bin = interopBinary();
  pkiDir = mkdtempSync(join(tmpdir(), 'wsp-pki-'));
  const made = spawnSync(bin, ['make-pki', pkiDir], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(made.status, 0, `make-pki failed:\n${made.stdout}\n${made.stderr}`);
  ca = readFileSync(join(pkiDir, 'ca.pem'), 'utf8');
  chain = readFileSync(join(pkiDir, 'chain.pem'), 'utf8');
  key = readFileSync(join(pkiDir, 'key.pem'), 'utf8');
  const other = spawnSync(bin, ['make-pki', join(pkiDir, 'other')], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(other.status, 0, `make-pki failed:\n${other.stdout}\n${other.stderr}`);
  otherCa = readFileSync(join(pkiDir, 'other', 'ca.pem'), 'utf8');
});

after(() => {
  if (pkiDir !== '') rmSync(pkiDir, { recursive: true, force: true });
});

test('the test PKI: a CA, and a leaf for 127.0.0.1 and localhost signed by it', () => {
  const root = new X509Certificate(ca);
  const leaf = new X509Certificate(chain);
  assert.equal(root.ca, true);
  assert.equal(leaf.ca, false);
  assert.ok(leaf.verify(root.publicKey), 'the leaf is signed by the CA');
  assert.ok(leaf.checkIP('127.0.0.1') !== undefined, `leaf SANs: ${leaf.subjectAltName}`);
  assert.ok(leaf.checkHost('localhost') !== undefined, `leaf SANs: ${leaf.subjectAltName}`);
  assert.ok(leaf.checkPrivateKey(createPrivateKey(key)), 'key.pem is the leaf’s key');
  assert.ok(!leaf.verify(new X509Certificate(otherCa).publicKey), 'the other CA did not sign the leaf');
});

/** The Rust interop server over TLS (`server-tls`), with `extra` arguments. */
async function rustTlsServer(extra: string[] = []): Promise<{ rust: RustProcess; port: number }> {
  const rust = new RustProcess(bin, ['server-tls', join(pkiDir, 'chain.pem'), join(pkiDir, 'key.pem'), ...extra]);
  try {
    return { rust, port: await rust.port() };
  } catch (e) {
    await rust.stop();
    throw e;
  }
}

test('Node client → Rust server over wss://, trusting the test CA (127.0.0.1 and localhost)', T, async () => {
  const { rust, port } = await rustTlsServer();
  try {
    for (const host of ['127.0.0.1', 'localhost']) {
      for (const codec of ['msgpack', 'json'] as const) {
        const client = newClient(`wss://${host}:${port}/`, { WebSocket: WebSocket.withOptions({ ca }), codecs: [codec] });
        try {
          await within(client.connect(), 10_000, `connect to wss://${host}`);
          assert.equal(client.codec, codec);
          assert.equal(await new math.MathClient(client).add([1n, 2n, 2n ** 62n]), 2n ** 62n + 3n);
        } finally {
          await client.close();
        }
      }
    }
  } finally {
    await rust.stop();
  }
});

/** The error a WebSocket (Node, `ws`) reports when it cannot open `url`. */
function openError(url: string, ws: WebSocket): Promise<Error> {
  return within(
    new Promise<Error>((resolve, reject) => {
      ws.on('open', () => {
        ws.terminate();
        reject(new Error(`${url} opened, but the certificate should not be trusted`));
      });
      ws.on('error', resolve);
    }),
    10_000,
    `the failed connection to ${url}`,
  );
}

/** The certificate errors Node's TLS reports for a certificate whose CA it does not trust. */
const UNTRUSTED = /unable to verify the first certificate|self[- ]signed certificate|unable to get local issuer certificate/;

test('a Node client that does not trust the certificate fails with the TLS error', T, async () => {
  const { rust, port } = await rustTlsServer();
  const url = `wss://127.0.0.1:${port}/`;
  try {
    // The socket's error names the cause.
    const error = await openError(url, new WebSocket(url, ['wsp.v1.msgpack']));
    assert.match(error.message, UNTRUSTED);
    assert.match((error as { code?: string }).code ?? '', /^(UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)$/);
    // Another CA is no better than none (it has the same name as the test CA, so OpenSSL tries
    // it as the issuer and finds the signature wrong).
    const other = await openError(url, new WebSocket(url, ['wsp.v1.msgpack'], { ca: otherCa }));
    assert.match(other.message, /certificate signature failure|unable to verify the first certificate|unable to get local issuer certificate/);
    // A wsp client's connect() fails, with no call ever sent.
    const client = newClient(url, { WebSocket, reconnect: false });
    try {
      const failed = await within(client.connect().then(() => undefined, (e: unknown) => e), 10_000, 'the untrusted connect');
      assert.ok(failed instanceof Error, `connect() should fail, got ${String(failed)}`);
      // With reconnect off, a failed first attempt is final: no further attempt will be made.
      assert.equal(client.state, 'disconnected');
    } finally {
      await client.close();
    }
  } finally {
    await rust.stop();
  }
});

test('Node server over wss:// ({ tls: { cert, key } } and an https.Server), Node clients trusting the test CA', T, async () => {
  // A server passed in stays the application's: WspServer.close() leaves it open, so the test closes it.
  const https = createHttpsServer({ cert: chain, key });
  const servers = [new WspServer({ tls: { cert: chain, key } }), new WspServer({ server: https })];
  try {
    for (const server of servers) {
      assert.equal(server.secure, true);
      server.addService('math.Math', { add: (args) => (args[0] as number[]).reduce((a, b) => a + b, 0) });
      const { port } = await server.listen();
      const url = `wss://127.0.0.1:${port}/`;
      const client = newClient(url, { WebSocket: WebSocket.withOptions({ ca }) });
      try {
        await within(client.connect(), 10_000, 'connect to the Node wss server');
        assert.equal(await client.call('math.Math/add', [[1, 2, 3]]), 6);
      } finally {
        await client.close();
      }
      const error = await openError(url, new WebSocket(url, ['wsp.v1.msgpack']));
      assert.match(error.message, UNTRUSTED);
      // The Origin check applies over TLS too: the server's own https origin passes, another does not.
      const own = new (WebSocket.withOptions({ ca, origin: `https://127.0.0.1:${port}` }))(url, ['wsp.v1.msgpack']);
      await within(new Promise<void>((resolve, reject) => {
        own.on('open', () => resolve());
        own.on('error', reject);
      }), 10_000, 'the same-origin wss upgrade');
      own.close();
      const foreign = new (WebSocket.withOptions({ ca, origin: 'https://evil.example' }))(url, ['wsp.v1.msgpack']);
      assert.equal(await upgradeStatus(foreign), 403);
    }
  } finally {
    await Promise.all(servers.map((s) => s.close()));
    https.closeAllConnections();
    await new Promise<void>((resolve) => https.close(() => resolve()));
  }
});

/** The HTTP status a refused upgrade got (101 if it opened). */
function upgradeStatus(ws: WebSocket): Promise<number> {
  return within(
    new Promise<number>((resolve, reject) => {
      ws.on('open', () => {
        ws.close();
        resolve(101);
      });
      ws.on('unexpected-response', (_req, res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      ws.on('error', reject);
    }),
    10_000,
    'the upgrade',
  );
}

// ---- Chromium ----------------------------------------------------------------------------

/** base64 SHA-256 of the leaf's SubjectPublicKeyInfo: what `--ignore-certificate-errors-spki-list` takes. */
function spkiHash(leafPem: string): string {
  const spki = createPublicKey(leafPem).export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('base64');
}

/** Runs `body` with a fresh headless Chromium (persistent context: the SPKI flag needs a user data dir). */
async function withChromium(body: (context: import('playwright-core').BrowserContext) => Promise<void>): Promise<void> {
  assert.ok(chromium !== undefined, 'WSP_REQUIRE_BROWSER=1 but no Chromium found (install Debian chromium or set CHROMIUM_PATH)');
  const userDataDir = mkdtempSync(join(tmpdir(), 'wsp-chromium-'));
  let context: import('playwright-core').BrowserContext | undefined;
  try {
    const { chromium: pw } = await import('playwright-core');
    context = await pw.launchPersistentContext(userDataDir, {
      executablePath: chromium,
      headless: true,
      args: [...CHROMIUM_ARGS, `--ignore-certificate-errors-spki-list=${spkiHash(chain)}`],
      timeout: 30_000,
    });
    await body(context);
  } finally {
    await context?.close().catch(() => undefined);
    rmSync(userDataDir, { recursive: true, force: true });
  }
}

test('headless Chromium → Rust server over wss://, trusting the test leaf by its SPKI hash', { timeout: 90_000, skip: skipBrowser }, async () => {
  const entry = fileURLToPath(new URL('../../../test/browser-rust.page.ts', import.meta.url));
  const bundle = await build({ entryPoints: [entry], bundle: true, platform: 'browser', format: 'iife', globalName: 'wspPage', target: 'es2022', write: false, logLevel: 'silent' });
  const script = bundle.outputFiles[0]?.text ?? '';
  assert.ok(script.length > 0, 'esbuild produced no bundle');
  const { rust, port } = await rustTlsServer();
  try {
    await withChromium(async (context) => {
      const page = context.pages()[0] ?? (await context.newPage());
      await page.addScriptTag({ content: script });
      const outcome: CodecOutcome = await within(
        page.evaluate(([url]) => (globalThis as unknown as { wspPage: { run: typeof run } }).wspPage.run(url, 'msgpack'), [`wss://127.0.0.1:${port}/`] as const),
        20_000,
        'the page’s wss run',
      );
      assert.deepEqual(outcome, expectedRustOutcome('msgpack'));
    });
  } finally {
    await rust.stop();
  }
});

/** What the page saw opening a WebSocket to `url`: `open`, or `failed` (error and close before open). */
function pageOpens(page: import('playwright-core').Page, url: string): Promise<string> {
  return within(
    page.evaluate(
      (u) =>
        new Promise<string>((resolve) => {
          const ws = new WebSocket(u, ['wsp.v1.msgpack']);
          ws.onopen = () => {
            ws.close();
            resolve('open');
          };
          ws.onclose = (e) => resolve(`failed ${e.code}`);
        }),
      url,
    ),
    15_000,
    `the page's WebSocket to ${url}`,
  );
}

test('a Chromium page from an allowed origin connects; from another origin it is refused (403)', { timeout: 90_000, skip: skipBrowser }, async () => {
  // The page's origin is http://127.0.0.1:PAGE_PORT.
  const pages: HttpServer = createHttpServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end('<!doctype html><title>wsp origin test</title><p>wsp</p>');
  });
  await new Promise<void>((resolve) => pages.listen(0, '127.0.0.1', resolve));
  const pageOrigin = `http://127.0.0.1:${(pages.address() as AddressInfo).port}`;
  const servers: RustProcess[] = [];
  try {
    const start = async (allowed: string): Promise<string> => {
      const rust = new RustProcess(bin, ['server', '--allow-origin', allowed]);
      servers.push(rust);
      return `ws://127.0.0.1:${await rust.port()}/`;
    };
    const allowing = await start(pageOrigin);
    const refusing = await start('http://127.0.0.1:1');
    // What a Node client sending the page's Origin gets from each: the status the browser does not show.
    assert.equal(await upgradeStatus(new WebSocket(allowing, ['wsp.v1.msgpack'], { origin: pageOrigin })), 101);
    assert.equal(await upgradeStatus(new WebSocket(refusing, ['wsp.v1.msgpack'], { origin: pageOrigin })), 403);
    await withChromium(async (context) => {
      const page = context.pages()[0] ?? (await context.newPage());
      await page.goto(`${pageOrigin}/`);
      assert.equal(await page.evaluate(() => location.origin), pageOrigin);
      assert.equal(await pageOpens(page, allowing), 'open');
      // A refused handshake is a failed connection to the page: close code 1006, never open.
      assert.equal(await pageOpens(page, refusing), 'failed 1006');
    });
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    pages.closeAllConnections();
    await new Promise<void>((resolve) => pages.close(() => resolve()));
  }
});
