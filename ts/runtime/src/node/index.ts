/** `@wsp/runtime/node`: the Node server (uses the `ws` package). The core is re-exported for convenience. */
export { WspServer, originChecker, type ServerOptions, type AcceptResult, type OriginPolicy, type ServerTlsOptions } from './server.js';
export { WebSocket } from './websocket.js';
export * from '../index.js';
