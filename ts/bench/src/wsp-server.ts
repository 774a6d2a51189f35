/**
 * Worker thread of `vs-ws-promise.ts`: a `WspServer` (default options) serving the generated
 * `bench.Bench` on 127.0.0.1 with an ephemeral port, which it posts to the parent. Any message
 * from the parent closes it.
 */
import { parentPort } from 'node:worker_threads';
import { WspServer } from '@wsp/runtime/node';
import * as bench from '../../generated/bench/bench.js';

const parent = parentPort;
if (parent === null) throw new Error('wsp-server.js runs as a worker thread');

const server = new WspServer({ host: '127.0.0.1', port: 0 });
bench.serveBench(server, {
  // i32 + i32, wrapping, as the Rust `Adder` of bench/benches/rpc.rs.
  add: (a, b) => (a + b) | 0,
  // Not measured here; the generated handler type requires it.
  echo: (data) => data,
});
const { port } = await server.listen();
parent.once('message', () => {
  void server.close().then(() => parent.close());
});
parent.postMessage(port);
