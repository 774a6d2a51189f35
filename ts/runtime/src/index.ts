/**
 * `@wsp/runtime`: the browser-safe core (no Node built-ins). Generated code imports from here.
 */
export { Peer, DEFAULT_LIMITS, type PeerOptions, type PeerLimits, type CloseInfo, type IncomingEvent, type Observer } from './peer.js';
export {
  Client,
  type ClientOptions,
  type ConnectionState,
  type ReconnectOptions,
  type StateChange,
  type ViaRelayOptions,
} from './client.js';
export type {
  Caller,
  CallOptions,
  StreamOptions,
  InputOptions,
  Items,
  WspStream,
  Converter,
  MethodOptions,
  StreamMethodOptions,
} from './caller.js';
export { INPUT_WINDOW } from './input.js';
export type { TypedContext, ServiceHost, UnknownVariant, Broadcaster } from './generated.js';
/** Helpers for generated code (wrapping typed handlers); not needed by applications. */
export * as codegen from './generated.js';
export {
  ServiceRegistry,
  type CallContext,
  type MethodDef,
  type ServiceHandlers,
  type UnaryHandler,
  type StreamHandler,
  type NotifyHandler,
  type UploadHandler,
  type DuplexHandler,
} from './services.js';
export {
  WspError,
  RpcError,
  ApplicationError,
  CloseError,
  RelayError,
  WireCode,
  codeNameOf,
  isWspError,
  type ErrorCodeName,
  type WireCodeName,
  type LocalCodeName,
} from './errors.js';
export { type CodecKind, type Codec, SUBPROTOCOL, createCodec, codecForSubprotocol, DecodeFailure } from './codec.js';
export { FrameType, PROTOCOL_VERSION, parseFrame, MalformedFrame, type Frame } from './frames.js';
export { CloseCode, MAX_CLOSE_REASON_BYTES, shortenCloseReason, browserCloseCode, normalizeCloseCode } from './close.js';
export { peerText, sanitizeMethodName, METHOD_ECHO_CHARS, DECODE_ERROR_ECHO_CHARS } from './peer-text.js';
export { bytesToBase64, base64ToBytes } from './base64.js';
export { type Stats } from './stats.js';
export { type WebSocketLike, type WebSocketConstructorLike, ReadyState } from './socket.js';
export * as convert from './convert.js';
export { Identity, PublicKey, type Signer } from './relay/identity.js';
export { proofText, relayName, type ProofPurpose } from './relay/proof.js';
export type { RelayRoute } from './relay/caller.js';
export { RelayHost, type RelayHostOptions, type RelayPeer } from './relay/host.js';
export {
  type RelayFrame,
  RelayFrameType,
  RelayFrameError,
  RELAY_VERSION,
  MAX_RELAY_FRAME,
  encodeRelayFrame,
  decodeRelayFrame,
} from './relay/frames.js';
