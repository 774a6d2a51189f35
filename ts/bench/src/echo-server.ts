/**
 * Worker thread of `vs-ws-promise.ts`: the reference, a `ws` (the workspace's 8.x, which
 * `@wsp/runtime/node` uses) server echoing each message, on 127.0.0.1 with an ephemeral port,
 * which it posts to the parent. Any message from the parent closes it.
 */
import type { AddressInfo } from 'node:net';
import { parentPort } from 'node:worker_threads';
import { WebSocketServer } from 'ws';

const parent = parentPort;
if (parent === null) throw new Error('echo-server.js runs as a worker thread');

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
parent.once('message', () => {
  for (const ws of wss.clients) ws.terminate();
  wss.close(() => parent.close());
});
parent.postMessage((wss.address() as AddressInfo).port);
