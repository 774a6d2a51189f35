/**
 * The Origin check of the Node server (same semantics as the Rust server's `OriginPolicy`): a
 * request from an origin the policy does not allow is refused with HTTP 403 before the upgrade,
 * an allowed one and one without `Origin` (not a browser) are admitted, `requireOrigin` refuses
 * the latter. Real sockets: `ws` clients sending the `Origin` header a browser would.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WebSocket } from 'ws';
import type { WspServer } from '../src/node/index.js';
import { connectClient, startServer, within } from './helpers.js';

/** The HTTP status of an upgrade request (101 when it became a WebSocket), and the refusal's body. */
function upgrade(url: string, origin?: string, host?: string): Promise<{ status: number; body: string }> {
  return within(
    new Promise((resolve, reject) => {
      const headers: Record<string, string> = {};
      if (host !== undefined) headers['Host'] = host;
      const ws = new WebSocket(url, ['wsp.v1.msgpack'], { ...(origin !== undefined ? { origin } : {}), headers });
      ws.on('open', () => {
        ws.close();
        resolve({ status: 101, body: '' });
      });
      ws.on('unexpected-response', (_req, res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      ws.on('error', reject);
    }),
    5000,
    `upgrade with Origin ${origin ?? '(none)'}`,
  );
}

async function withServer(options: Parameters<typeof startServer>[0], body: (url: string, port: number, server: WspServer) => Promise<void>): Promise<void> {
  const { server, url, port } = await startServer(options);
  server.addService('o', { ping: () => 'pong' });
  try {
    await body(url, port, server);
  } finally {
    await server.close();
  }
}

test('default policy (same-origin): the server’s own origin and no Origin are admitted, others get 403', async () => {
  await withServer({}, async (url, port, server) => {
    assert.equal(server.secure, false);
    assert.deepEqual(await upgrade(url, `http://127.0.0.1:${port}`), { status: 101, body: '' });
    assert.deepEqual(await upgrade(url, `HTTP://127.0.0.1:${port}`), { status: 101, body: '' });
    assert.deepEqual(await upgrade(url), { status: 101, body: '' });
    assert.deepEqual(await upgrade(url, 'https://evil.example'), { status: 403, body: 'origin not allowed' });
    assert.deepEqual(await upgrade(url, `http://127.0.0.1:${port + 1}`), { status: 403, body: 'origin not allowed' });
    assert.deepEqual(await upgrade(url, 'null'), { status: 403, body: 'origin not allowed' });
    // A default port, written or not, is the same authority.
    assert.deepEqual(await upgrade(url, 'https://app.example', 'app.example:443'), { status: 101, body: '' });
    assert.deepEqual(await upgrade(url, 'http://app.example:80', 'app.example'), { status: 101, body: '' });
    assert.deepEqual(await upgrade(url, 'https://app.example', 'app.example'), { status: 101, body: '' });
    // Another host, or another port of this host, is not.
    assert.equal((await upgrade(url, 'https://app.example', 'other.example')).status, 403);
    assert.equal((await upgrade(url, 'https://app.example:8443', 'app.example')).status, 403);
    assert.equal((await upgrade(url, 'ftp://app.example', 'app.example')).status, 403);
    // A wsp client without Origin still calls.
    const client = await connectClient(url);
    assert.equal(await client.call('o/ping', []), 'pong');
    await client.close();
  });
});

test('allow-list: listed origins (any case, trailing slash) and no Origin are admitted; others get 403 before the accept hook', async () => {
  let hooked = 0;
  const accept = (): boolean => {
    hooked++;
    return true;
  };
  await withServer({ origins: ['https://App.example/', 'http://localhost:5173'], accept }, async (url, port) => {
    assert.equal((await upgrade(url, 'https://app.example')).status, 101);
    assert.equal((await upgrade(url, 'http://localhost:5173')).status, 101);
    assert.equal((await upgrade(url)).status, 101);
    assert.equal(hooked, 3);
    assert.deepEqual(await upgrade(url, 'https://evil.example'), { status: 403, body: 'origin not allowed' });
    // Not even the server's own origin, when it is not on the list.
    assert.equal((await upgrade(url, `http://127.0.0.1:${port}`)).status, 403);
    assert.equal(hooked, 3, 'a refused origin never reaches the accept hook');
  });
});

test('any: every origin, even `null`, is admitted; requireOrigin refuses requests without one', async () => {
  await withServer({ origins: 'any' }, async (url) => {
    assert.equal((await upgrade(url, 'null')).status, 101);
    assert.equal((await upgrade(url, 'https://evil.example')).status, 101);
    assert.equal((await upgrade(url)).status, 101);
  });
  await withServer({ origins: 'any', requireOrigin: true }, async (url) => {
    assert.equal((await upgrade(url, 'https://anything.example')).status, 101);
    assert.deepEqual(await upgrade(url), { status: 403, body: 'an Origin header is required' });
  });
  await withServer({ requireOrigin: true }, async (url, port) => {
    assert.equal((await upgrade(url, `http://127.0.0.1:${port}`)).status, 101);
    assert.equal((await upgrade(url)).status, 403);
  });
});

test('options are checked: tls and server together, an unknown policy name', async () => {
  const { createServer } = await import('node:http');
  const { WspServer: Server } = await import('../src/node/index.js');
  assert.throws(() => new Server({ server: createServer(), tls: { cert: 'x', key: 'y' } }), /either `server` or `tls`/);
  assert.throws(() => new Server({ origins: 'same-site' as 'any' }), /unknown origin policy/);
});
