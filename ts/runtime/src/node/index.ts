/** `@wsp/runtime/node`: the Node server (uses the `ws` package). The core is re-exported for convenience. */
export { WspServer, type ServerOptions, type AcceptResult } from './server.js';
export { WebSocket } from './websocket.js';
export * from '../index.js';
