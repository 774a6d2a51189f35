// Loopback throughput of unary calls, one process (client and server share the event loop).
// Run after a build: npm run build && npm run bench
import { WspServer } from '../dist/src/node/index.js';
import { Client } from '../dist/src/index.js';
import { WebSocket } from 'ws';
const server = new WspServer({ port: 0 });
server.addService('math.Math', { add: (a) => a.reduce((x, y) => x + y, 0) });
const { port } = await server.listen();
const c = new Client(`ws://127.0.0.1:${port}`, { WebSocket });
await c.connect();
let t = performance.now(); const N = 10000;
for (let i = 0; i < N; i++) await c.call('math.Math/add', [1, 2, 3]);
console.log('sequential calls/s', Math.round(N / ((performance.now() - t) / 1000)));
t = performance.now(); const M = 50000; let inflight = [];
for (let i = 0; i < M; i++) { inflight.push(c.call('math.Math/add', [1, 2, i])); if (inflight.length === 256) { await Promise.all(inflight); inflight = []; } }
await Promise.all(inflight);
console.log('256-concurrent calls/s', Math.round(M / ((performance.now() - t) / 1000)));
await c.close(); await server.close();
