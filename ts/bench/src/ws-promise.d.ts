/**
 * Types for the parts of `ws-promise` 2.0.5 the benchmark uses (the package ships none). Its ES
 * modules are imported directly: the CommonJS entry (`index.js`) `require`s them.
 */
declare module 'ws-promise/Client.mjs' {
  export interface ClientOptions {
    /** The WebSocket class (Node: `ws`). */
    engine?: unknown;
    engineOptions?: object;
    autoReconnect?: boolean;
  }
  /**
   * The constructor returns a Proxy: any property the client does not have is a remote call,
   * `client.add(1, 2)` calls the server's `onAdd(message, 1, 2)` and resolves with its reply.
   */
  export default class Client {
    constructor(url: string, options?: ClientOptions);
    /** Connects; resolves with the client (the proxy). */
    open(): Promise<Client>;
    close(): Promise<Client>;
  }
}

declare module 'ws-promise/Server.mjs' {
  /** A received call; `reply` answers it and resolves when the caller has acknowledged the answer. */
  export interface Message {
    reply(...args: unknown[]): Promise<unknown>;
  }
  export interface ServerOptions {
    /** The WebSocket server class; default: `ws`'s `Server` (ws-promise's own ws 7). */
    engine?: unknown;
    /** Options of the engine (`port`, `host`, …). */
    engineOptions?: object;
  }
  /** Subclasses handle a call of `name` in a method `on<Name>(message, ...args)`. */
  export default class Server {
    constructor(options?: ServerOptions);
    open(): Promise<Server>;
    close(): Promise<Server>;
  }
}
