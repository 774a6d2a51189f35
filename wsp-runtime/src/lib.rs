//! wsp-runtime: the wsp wire protocol (see `PROTOCOL.md`) and bidirectional RPC peers over
//! WebSocket, on tokio and tokio-tungstenite.
//!
//! - [`Server`] accepts connections and serves services on each; [`Client`] connects,
//!   reconnects with backoff and serves its own services to the server; [`Peer`] is one end of
//!   a connection, the same type on both sides, and can also run over any WebSocket stream
//!   ([`Peer::from_stream`], [`Server::attach`]).
//! - Calls: unary ([`Caller::call`]), server streams with credit-based back-pressure
//!   ([`Caller::stream`]) and notifications ([`Caller::notify`]); untyped variants take and
//!   return [`rmpv::Value`]s. Dropping a call cancels it at the callee; deadlines travel with
//!   the call.
//! - Services: [`FnService`] builds untyped services from closures; generated code implements
//!   [`Service`] (see the [`codegen`] module). Services are added and removed at run time on a
//!   [`Server`] (shared by all its connections), a [`Client`] (kept across reconnects) or one
//!   [`Peer`]. An [`Observer`] hook sees every incoming call and notification.
//! - Limits ([`Config`]; PROTOCOL.md §8 lists them all): message size and HELLO size (close
//!   1009), decoding depth (`INVALID_ARGUMENTS`), method name length, incoming calls in flight
//!   (`OVERLOADED`), notification handlers in flight (back-pressure), handshake timeout (4001),
//!   keep-alive (4002), write progress (4003), message assembly (4004), bounded send queues,
//!   and connections per server and per address ([`ServerBuilder::max_connections`], HTTP
//!   503). Statistics per connection and per server/client ([`StatsSnapshot`]).
//!
//! # Design
//!
//! Three layers, imports pointing down only:
//!
//! - **the handles** (`client.rs`, `server.rs`, `peer.rs`, `service.rs`, `context.rs`,
//!   `call.rs`): what applications and generated code use;
//! - **the connection** (`connection/`): one WebSocket connection; it knows the services above
//!   it only through the `Dispatch` interface (`connection/dispatch.rs`), which the handles'
//!   `Services` implement;
//! - **the wire** (`wire/`): frames, one constructor per frame type, the two envelope readers
//!   and the payload codecs.
//!
//! Each connection has a reader task (parses the envelope by hand, dispatches calls, completes
//! pending calls by id through oneshot channels) and a writer task (drains a bounded queue,
//! feeding all queued frames and flushing once). A call that is alone on its connection writes
//! its frame on the caller's task; a handler that is done at its first poll is answered on the
//! reader task without spawning; other handlers run as tasks, bounded by the call's deadline and
//! aborted on CANCEL or when the connection closes. `connection/mod.rs` says where in the folder
//! each step of a frame's path is.
//!
//! # Typed (generated) code
//!
//! Generated code uses only [`codegen`]: a typed server implements [`Service`], decodes
//! `request.args` ([`Payload::decode`]) straight into its parameter tuple or struct and answers
//! with [`Handler::unary`] / [`Handler::stream`] / [`Handler::notify`] (results are encoded into
//! the outgoing frame by [`CallContext::encode_reply`] / [`CallContext::encode_item`]); errors
//! are [`ServiceError`]s (typed errors via [`ServiceError::application`]). A typed client wraps
//! a [`Caller`] and uses [`Caller::call`], [`Caller::stream`] and [`Caller::notify`]; typed
//! errors come back as [`CallError::Application`], decoded with [`CallError::details`].
//!
//! # Example
//!
//! ```
//! use rmpv::Value;
//! use wsp_runtime::{Client, FnService, Server};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let math = FnService::new("math.Math").unary("add", |_ctx, args| async move {
//!     Ok(Value::from(args.iter().filter_map(Value::as_i64).sum::<i64>()))
//! });
//! let server = Server::builder().service(math.into_service()).bind("127.0.0.1:0").await?;
//!
//! let client = Client::builder(server.url()).build();
//! client.connect().await?;
//! let sum = client.call_value("math.Math/add", vec![1.into(), 2.into(), 3.into()]).await?;
//! assert_eq!(sum, Value::from(6));
//!
//! client.close(1000, "done").await?;
//! server.close().await;
//! # Ok(())
//! # }
//! ```

mod adapt;
mod args;
mod authenticate;
#[cfg(feature = "axum")]
pub mod axum;
mod call;
mod client;
mod close;
#[cfg(feature = "cluster")]
mod cluster;
mod config;
mod connection;
mod context;
mod error;
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;
mod items;
mod macros;
#[cfg(feature = "metrics")]
mod metering;
mod origin;
mod peer;
pub mod relay;
mod rpc_error;
mod server;
mod service;
mod stats;
pub mod tls;
mod unknown;
mod untyped;
mod wire;
pub mod with;

pub use call::{CallOptions, CallStream, Caller};
pub use client::{Client, ClientBuilder, ConnectionState};
pub use close::{CloseError, CloseInfo, MAX_REASON_BYTES, code as close_code, truncate_reason};
#[cfg(feature = "cluster")]
pub use cluster::{ClientAddress, ServerCluster};
pub use config::{Config, ReconnectPolicy};
pub use context::{CallContext, ConnData};
pub use error::{CallError, ConnectError, ErrorCode, ErrorDetails, ServiceError, peer_text};
pub use items::{Input, Items};
pub use origin::OriginPolicy;
pub use peer::{Peer, PeerOptions};
pub use rpc_error::{ApplicationError, RpcError};
pub use server::{
    AcceptHook, AcceptRequest, BroadcastReport, CloseHook, OpenHook, Reject, Server, ServerBuilder,
    negotiate_codec, shutdown_signal,
};
pub use service::{CallKind, Encoded, FnService, Handler, Observed, Observer, Request, Service};
pub use stats::StatsSnapshot;
pub use unknown::UnknownVariant;
pub use wire::codec::{
    Codec, DecodeError, EncodeError, JsonCodec, MsgPackCodec, Payload, PayloadCodec,
};

pub use bytes::Bytes;
pub use rmpv::Value;
pub use tokio_tungstenite;

/// Everything generated code uses, under one path (`wsp_runtime::codegen`), so the runtime can
/// move things around without breaking generated files.
#[doc(hidden)]
pub mod codegen {
    pub use crate::adapt::{Bin, Float, FloatValue, Int64, Wire};
    pub use crate::args::{Args, Opt, Param, ParamList, Req};
    pub use crate::call::{CallOptions, CallStream, Caller};
    pub use crate::client::Client;
    pub use crate::context::{CallContext, ConnData};
    pub use crate::error::{CallError, ConnectError, ErrorCode, ServiceError};
    pub use crate::items::{Input, Items};
    pub use crate::peer::Peer;
    pub use crate::rpc_error::{ApplicationError, RpcError};
    pub use crate::server::{BroadcastReport, Server};
    pub use crate::service::{CallKind, Encoded, Handler, Request, Service};
    pub use crate::unknown::UnknownVariant;
    pub use crate::wire::codec::{Codec, DecodeError, EncodeError, Payload};
    pub use crate::with::{bytes, int64};
    pub use ::bytes::Bytes;
    pub use futures_util::future::BoxFuture;
    pub use futures_util::stream::{BoxStream, Stream, StreamExt};
    pub use serde;
    pub use serde_with::{As, Same};

    // What generated code names from std, under one short path no schema type can shadow.
    pub use std::boxed::Box;
    pub use std::clone::Clone;
    pub use std::cmp::{Eq, PartialEq};
    pub use std::collections::BTreeMap;
    pub use std::convert::{From, Into};
    pub use std::default::Default;
    pub use std::fmt::{self, Debug};
    pub use std::future::Future;
    pub use std::hash::Hash;
    pub use std::marker::{Copy, Send, Sync, Unpin};
    pub use std::option::Option::{self, None, Some};
    pub use std::result::Result::{self, Ok};
    pub use std::string::String;
    pub use std::sync::Arc;
    pub use std::time::Duration;
    pub use std::vec::Vec;
}
