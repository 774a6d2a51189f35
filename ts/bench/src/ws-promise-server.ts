/**
 * Worker thread of `vs-ws-promise.ts`: a `ws-promise` 2.0.5 server answering `add(a, b)` the way
 * its README shows (a `Server` subclass with an `onAdd(message, ...args)` method that awaits
 * `message.reply(result)`), on 127.0.0.1 with an ephemeral port, which it posts to the parent.
 * Any message from the parent closes it.
 */
import { createRequire } from 'node:module';
import { parentPort } from 'node:worker_threads';
import Server, { type Message } from 'ws-promise/Server.mjs';

const parent = parentPort;
if (parent === null) throw new Error('ws-promise-server.js runs as a worker thread');

// ws-promise's default engine is the `Server` of its own `ws` (7.x, nested under it). The same
// class is passed explicitly, subclassed only to learn the port it bound.
const requireFromWsPromise = createRequire(createRequire(import.meta.url).resolve('ws-promise/package.json'));
const ws7 = requireFromWsPromise('ws') as { Server: new (options: object) => { address(): { port: number } } };
let engine: { address(): { port: number } } | undefined;
class Engine extends ws7.Server {
  constructor(options: object) {
    super(options);
    engine = this;
  }
}

class AddServer extends Server {
  async onAdd(message: Message, a: number, b: number): Promise<void> {
    await message.reply((a + b) | 0);
  }
}

const server = new AddServer({ engine: Engine, engineOptions: { host: '127.0.0.1', port: 0 } });
await server.open();
if (engine === undefined) throw new Error('ws-promise did not construct its engine');
parent.once('message', () => {
  void server.close().then(() => parent.close());
});
parent.postMessage(engine.address().port);
