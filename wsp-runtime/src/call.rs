//! Making calls: the cloneable [`Caller`] handle, per-call options and server streams.

use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use futures_util::future::BoxFuture;
use rmpv::Value;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use tracing::Instrument;

use crate::connection::{ActiveStream, ConnInner};
use crate::untyped::Untyped;
use crate::wire::codec::{Codec, Payload};

/// Options of one call.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use wsp_runtime::CallOptions;
///
/// let opts = CallOptions::new().timeout(Duration::from_millis(250));
/// # let _ = opts;
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct CallOptions {
    deadline: DeadlineOpt,
}

#[derive(Clone, Copy, Debug, Default)]
enum DeadlineOpt {
    /// The configured default (unary calls) or none (streams).
    #[default]
    Default,
    None,
    After(Duration),
    At(Instant),
}

impl CallOptions {
    /// Default options: the configured default deadline.
    pub fn new() -> Self {
        Self::default()
    }

    /// The call may take at most `timeout` from now.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.deadline = DeadlineOpt::After(timeout);
        self
    }

    /// The call must finish by `deadline`.
    pub fn deadline(mut self, deadline: Instant) -> Self {
        self.deadline = DeadlineOpt::At(deadline);
        self
    }

    /// The call has no deadline.
    pub fn no_deadline(mut self) -> Self {
        self.deadline = DeadlineOpt::None;
        self
    }

    /// The call's deadline: its own, or the default, and in any case no later than the
    /// deadline of the incoming call whose handler makes it (see [`Caller`]).
    fn resolve(self, default: Option<Duration>) -> Option<Instant> {
        let own = match self.deadline {
            DeadlineOpt::Default => default.map(|d| Instant::now() + d),
            DeadlineOpt::None => None,
            DeadlineOpt::After(d) => Some(Instant::now() + d),
            DeadlineOpt::At(t) => Some(t),
        };
        match (own, crate::connection::serving_deadline()) {
            (Some(own), Some(serving)) => Some(own.min(serving)),
            (own, serving) => own.or(serving),
        }
    }
}

use crate::error::CallError;

#[derive(Clone)]
enum Target {
    Conn(Arc<ConnInner>),
    Link(Arc<dyn Link>),
    /// A client at another server node of a cluster (`cluster.rs`).
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    Remote(Arc<dyn Remote>),
}

/// A peer reached through something other than a connection of this process (a client at
/// another server node, `cluster.rs`): unary calls and notifications, arguments encoded as
/// MessagePack.
#[cfg_attr(not(feature = "cluster"), allow(dead_code))]
pub(crate) trait Remote: Send + Sync + 'static {
    fn default_deadline(&self) -> Option<Duration>;
    fn call<'a>(
        &'a self,
        method: &'a str,
        args: Vec<u8>,
        deadline: Option<Instant>,
    ) -> BoxFuture<'a, Result<Payload, CallError>>;
    fn notify<'a>(&'a self, method: &'a str, args: Vec<u8>)
    -> BoxFuture<'a, Result<(), CallError>>;
}

/// Where a caller that is bound to no one connection gets the connection of each call (a
/// reconnecting client, `client.rs`): a trait, so that making calls depends on no handle.
pub(crate) trait Link: Send + Sync + 'static {
    fn codec(&self) -> Codec;
    fn default_deadline(&self) -> Option<Duration>;
    /// The connection to use now, if a usable one is there (no waiting, no allocation).
    fn current(&self) -> Option<Arc<ConnInner>>;
    /// Waits for a connection, or fails, by the link's policy; called when `current` had none.
    fn wait(&self, deadline: Option<Instant>) -> BoxFuture<'_, Result<Arc<ConnInner>, CallError>>;
    /// Why there is no connection to use now (`current` had none), for what does not wait.
    fn unavailable(&self) -> CallError;
}

/// A cheap, cloneable handle that makes calls on one connection (from a [`Peer`](crate::Peer),
/// a server's connection, or a [`CallContext`](crate::CallContext)) or on a
/// [`Client`](crate::Client)'s current connection, whichever it is at the time of the call.
///
/// Generated typed clients wrap a `Caller`.
///
/// # Calls made by a handler
///
/// A call (or stream, or notification) made while a handler runs — through
/// [`CallContext::caller`](crate::CallContext::caller), a [`Client`](crate::Client) or any other
/// `Caller` — inherits the deadline of the call the handler serves: its deadline is the earlier
/// of its own (or the default) and the served call's, and is sent to the callee as usual, so
/// the callee stops in time as well. It ends with the served call: when that call's deadline
/// passes the inner call fails locally with [`CallError::DeadlineExceeded`]; when it is
/// cancelled (CANCEL from its caller, or its connection closing) the handler is dropped, and
/// with it the inner call, which sends CANCEL. This holds for calls made in the handler's own
/// future (including its stream); a task the handler spawns (`tokio::spawn`) inherits nothing
/// and lives on, so work that must outlive the call runs there.
#[derive(Clone)]
pub struct Caller {
    target: Target,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.target {
            Target::Conn(c) => write!(f, "Caller(connection {})", c.id),
            Target::Link(_) => f.write_str("Caller(client)"),
            Target::Remote(_) => f.write_str("Caller(a client at another server node)"),
        }
    }
}

impl Caller {
    pub(crate) fn for_conn(conn: Arc<ConnInner>) -> Self {
        Caller {
            target: Target::Conn(conn),
        }
    }

    pub(crate) fn for_link(link: Arc<dyn Link>) -> Self {
        Caller {
            target: Target::Link(link),
        }
    }

    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    pub(crate) fn for_remote(remote: Arc<dyn Remote>) -> Self {
        Caller {
            target: Target::Remote(remote),
        }
    }

    /// The codec calls are encoded with.
    pub fn codec(&self) -> Codec {
        match &self.target {
            Target::Conn(c) => c.codec,
            Target::Link(l) => l.codec(),
            Target::Remote(_) => Codec::MsgPack,
        }
    }

    fn default_deadline(&self) -> Option<Duration> {
        match &self.target {
            Target::Conn(c) => c.config.default_deadline,
            Target::Link(l) => l.default_deadline(),
            Target::Remote(r) => r.default_deadline(),
        }
    }

    async fn connection(&self, deadline: Option<Instant>) -> Result<Arc<ConnInner>, CallError> {
        match &self.target {
            Target::Conn(c) if c.is_closing() => Err(c.closed_error()),
            Target::Conn(c) => Ok(c.clone()),
            Target::Link(l) => match l.current() {
                Some(c) => Ok(c),
                None => l.wait(deadline).await,
            },
            Target::Remote(_) => Err(CallError::Unavailable(
                "only unary calls and notifications reach a client at another server node".into(),
            )),
        }
    }

    /// Calls `method` (`"service/method"`) with `args` (a tuple or sequence: the argument
    /// array) and decodes the result into `R`.
    pub async fn call<A, R>(
        &self,
        method: &str,
        args: &A,
        opts: CallOptions,
    ) -> Result<R, CallError>
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        let payload = self.call_payload(method, args, opts).await?;
        Ok(payload.decode()?)
    }

    /// Like [`call`](Self::call) but returns the raw result payload (for decoders that borrow).
    pub async fn call_payload<A>(
        &self,
        method: &str,
        args: &A,
        opts: CallOptions,
    ) -> Result<Payload, CallError>
    where
        A: Serialize + ?Sized,
    {
        let deadline = opts.resolve(self.default_deadline());
        let span = tracing::debug_span!("wsp.call", method);
        async {
            if let Target::Remote(r) = &self.target {
                let mut buf = Vec::new();
                Codec::MsgPack.encode(&mut buf, args)?;
                return r.call(method, buf, deadline).await;
            }
            let conn = self.connection(deadline).await?;
            conn.call_raw(method, args, deadline).await
        }
        .instrument(span)
        .await
    }

    /// An untyped call: arguments and result as MessagePack values, default options.
    pub async fn call_value(&self, method: &str, args: Vec<Value>) -> Result<Value, CallError> {
        self.call_value_with(method, args, CallOptions::default())
            .await
    }

    /// An untyped call with options.
    pub async fn call_value_with(
        &self,
        method: &str,
        args: Vec<Value>,
        opts: CallOptions,
    ) -> Result<Value, CallError> {
        let payload = self
            .call_payload(method, &Untyped(args.as_slice()), opts)
            .await?;
        Ok(payload.to_value()?)
    }

    /// Sends a notification (no answer, not even an error). It never waits for a link: without
    /// one it fails at once with [`CallError::NotConnected`] ([`CallError::Closed`] once the
    /// client is closed), as in the TypeScript runtime (`docs/behaviour.md`).
    pub async fn notify<A: Serialize + ?Sized>(
        &self,
        method: &str,
        args: &A,
    ) -> Result<(), CallError> {
        let conn = match &self.target {
            Target::Conn(c) if c.is_closing() => return Err(c.closed_error()),
            Target::Conn(c) => c.clone(),
            Target::Link(l) => l.current().ok_or_else(|| l.unavailable())?,
            Target::Remote(r) => {
                let mut buf = Vec::new();
                Codec::MsgPack.encode(&mut buf, args)?;
                return r.notify(method, buf).await;
            }
        };
        conn.notify_raw(method, args).await
    }

    /// An untyped notification.
    pub async fn notify_value(&self, method: &str, args: Vec<Value>) -> Result<(), CallError> {
        self.notify(method, &Untyped(args.as_slice())).await
    }

    /// Starts a server stream; items are decoded into `R`. Dropping the stream cancels it.
    /// Streams have no deadline unless `opts` sets one.
    pub fn stream<A, R>(&self, method: &str, args: &A, opts: CallOptions) -> CallStream<R>
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        self.open_stream(
            method,
            args,
            opts,
            |conn, method, args, deadline| async move {
                conn.start_stream(&method, &args, deadline).await
            },
        )
    }

    /// A stream call (STREAM or DUPLEX): encodes the arguments now, and on the first poll waits
    /// for a connection and runs `start` on it.
    fn open_stream<A, R, F, Fut>(
        &self,
        method: &str,
        args: &A,
        opts: CallOptions,
        start: F,
    ) -> CallStream<R>
    where
        A: Serialize + ?Sized,
        F: FnOnce(Arc<ConnInner>, String, Vec<u8>, Option<Instant>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<ActiveStream, CallError>> + Send + 'static,
    {
        let mut buf = Vec::with_capacity(64);
        if let Err(e) = self.codec().encode(&mut buf, args) {
            return CallStream {
                state: State::Failed(Some(e.into())),
                _r: PhantomData,
            };
        }
        let caller = self.clone();
        let method = method.to_owned();
        let fut = async move {
            let deadline = opts.resolve(None);
            let conn = caller.connection(deadline).await?;
            start(conn, method, buf, deadline).await
        };
        CallStream {
            state: State::Starting(Box::pin(fut)),
            _r: PhantomData,
        }
    }

    /// An untyped stream.
    pub fn stream_value(
        &self,
        method: &str,
        args: Vec<Value>,
        opts: CallOptions,
    ) -> CallStream<Value> {
        self.stream(method, &Untyped(args.as_slice()), opts)
    }

    /// Calls a client-streaming method: sends `items` as the callee takes them (the stream is
    /// polled only when the callee has room, so a producer that runs ahead is paused; PROTOCOL
    /// §2.7), then returns the one result. The callee may answer before taking every item;
    /// the rest are not sent. The deadline covers the whole call.
    pub async fn upload<A, I, T, R>(
        &self,
        method: &str,
        args: &A,
        items: I,
        opts: CallOptions,
    ) -> Result<R, CallError>
    where
        A: Serialize + ?Sized,
        I: Stream<Item = T> + Send + 'static,
        T: Serialize + Send + 'static,
        R: DeserializeOwned,
    {
        let mut buf = Vec::with_capacity(64);
        self.codec().encode(&mut buf, args)?;
        let deadline = opts.resolve(self.default_deadline());
        let span = tracing::debug_span!("wsp.upload", method);
        let payload = async {
            let conn = self.connection(deadline).await?;
            conn.upload_raw(method, &buf, items, deadline).await
        }
        .instrument(span)
        .await?;
        Ok(payload.decode()?)
    }

    /// Opens a bidirectional stream: sends `items` as the callee takes them, and returns the
    /// callee's items as they come (both directions with credit, PROTOCOL §2.7). Dropping the
    /// returned stream cancels the call and stops the sending. Like [`stream`](Self::stream),
    /// it has no deadline unless `opts` sets one.
    pub fn duplex<A, I, T, R>(
        &self,
        method: &str,
        args: &A,
        items: I,
        opts: CallOptions,
    ) -> CallStream<R>
    where
        A: Serialize + ?Sized,
        I: Stream<Item = T> + Send + 'static,
        T: Serialize + Send + 'static,
        R: DeserializeOwned,
    {
        self.open_stream(
            method,
            args,
            opts,
            |conn, method, args, deadline| async move {
                conn.start_duplex(&method, &args, items, deadline).await
            },
        )
    }

    /// An untyped client stream: arguments, items and result as MessagePack values (in JSON,
    /// non-finite floats are written as PROTOCOL §5 says).
    pub async fn upload_value<I>(
        &self,
        method: &str,
        args: Vec<Value>,
        items: I,
        opts: CallOptions,
    ) -> Result<Value, CallError>
    where
        I: Stream<Item = Value> + Send + 'static,
    {
        let items = futures_util::StreamExt::map(items, Untyped);
        self.upload(method, &Untyped(args.as_slice()), items, opts)
            .await
    }

    /// An untyped bidirectional stream.
    pub fn duplex_value<I>(
        &self,
        method: &str,
        args: Vec<Value>,
        items: I,
        opts: CallOptions,
    ) -> CallStream<Value>
    where
        I: Stream<Item = Value> + Send + 'static,
    {
        let items = futures_util::StreamExt::map(items, Untyped);
        self.duplex(method, &Untyped(args.as_slice()), items, opts)
    }
}

enum State {
    Starting(BoxFuture<'static, Result<ActiveStream, CallError>>),
    Active(ActiveStream),
    Failed(Option<CallError>),
    Done,
}

/// The items of a server stream (PROTOCOL §2.6): `Ok` items, then the end (`None`) or one
/// `Err`. Credit is granted as items are taken, so a slow consumer slows the producer.
/// Dropping it sends CANCEL.
pub struct CallStream<R> {
    state: State,
    _r: PhantomData<fn() -> R>,
}

impl<R> std::fmt::Debug for CallStream<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallStream")
    }
}

impl<R: DeserializeOwned> Stream for CallStream<R> {
    type Item = Result<R, CallError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match &mut this.state {
                State::Starting(fut) => match fut.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(a)) => this.state = State::Active(a),
                    Poll::Ready(Err(e)) => {
                        this.state = State::Done;
                        return Poll::Ready(Some(Err(e)));
                    }
                },
                State::Failed(e) => {
                    let e = e.take();
                    this.state = State::Done;
                    return Poll::Ready(e.map(Err));
                }
                State::Done => return Poll::Ready(None),
                State::Active(a) => {
                    let outcome = match a.poll_event(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Some(Ok(payload))) => match payload.decode() {
                            Ok(item) => return Poll::Ready(Some(Ok(item))),
                            Err(e) => {
                                // An item that cannot be delivered (too deep, wrong type)
                                // fails the stream, and the callee stops (PROTOCOL §8).
                                a.fail();
                                Some(Err(CallError::from(e)))
                            }
                        },
                        Poll::Ready(Some(Err(e))) => Some(Err(e)),
                        Poll::Ready(None) => None,
                    };
                    this.state = State::Done;
                    return Poll::Ready(outcome);
                }
            }
        }
    }
}

/// The calls of [`Caller`], on a handle that has a `caller()` (`Client`, `Peer`): written once,
/// so the handles cannot drift apart.
macro_rules! caller_surface {
    () => {
        /// See [`Caller::call`](crate::Caller::call).
        pub async fn call<A, R>(
            &self,
            method: &str,
            args: &A,
            opts: $crate::CallOptions,
        ) -> Result<R, $crate::CallError>
        where
            A: serde::Serialize + ?Sized,
            R: serde::de::DeserializeOwned,
        {
            self.caller().call(method, args, opts).await
        }

        /// See [`Caller::call_payload`](crate::Caller::call_payload).
        pub async fn call_payload<A: serde::Serialize + ?Sized>(
            &self,
            method: &str,
            args: &A,
            opts: $crate::CallOptions,
        ) -> Result<$crate::Payload, $crate::CallError> {
            self.caller().call_payload(method, args, opts).await
        }

        /// See [`Caller::call_value`](crate::Caller::call_value).
        pub async fn call_value(
            &self,
            method: &str,
            args: Vec<$crate::Value>,
        ) -> Result<$crate::Value, $crate::CallError> {
            self.caller().call_value(method, args).await
        }

        /// See [`Caller::call_value_with`](crate::Caller::call_value_with).
        pub async fn call_value_with(
            &self,
            method: &str,
            args: Vec<$crate::Value>,
            opts: $crate::CallOptions,
        ) -> Result<$crate::Value, $crate::CallError> {
            self.caller().call_value_with(method, args, opts).await
        }

        /// See [`Caller::notify`](crate::Caller::notify).
        pub async fn notify<A: serde::Serialize + ?Sized>(
            &self,
            method: &str,
            args: &A,
        ) -> Result<(), $crate::CallError> {
            self.caller().notify(method, args).await
        }

        /// See [`Caller::notify_value`](crate::Caller::notify_value).
        pub async fn notify_value(
            &self,
            method: &str,
            args: Vec<$crate::Value>,
        ) -> Result<(), $crate::CallError> {
            self.caller().notify_value(method, args).await
        }

        /// See [`Caller::stream`](crate::Caller::stream).
        pub fn stream<A, R>(
            &self,
            method: &str,
            args: &A,
            opts: $crate::CallOptions,
        ) -> $crate::CallStream<R>
        where
            A: serde::Serialize + ?Sized,
            R: serde::de::DeserializeOwned,
        {
            self.caller().stream(method, args, opts)
        }

        /// See [`Caller::stream_value`](crate::Caller::stream_value).
        pub fn stream_value(
            &self,
            method: &str,
            args: Vec<$crate::Value>,
            opts: $crate::CallOptions,
        ) -> $crate::CallStream<$crate::Value> {
            self.caller().stream_value(method, args, opts)
        }

        /// See [`Caller::upload`](crate::Caller::upload).
        pub async fn upload<A, I, T, R>(
            &self,
            method: &str,
            args: &A,
            items: I,
            opts: $crate::CallOptions,
        ) -> Result<R, $crate::CallError>
        where
            A: serde::Serialize + ?Sized,
            I: futures_util::Stream<Item = T> + Send + 'static,
            T: serde::Serialize + Send + 'static,
            R: serde::de::DeserializeOwned,
        {
            self.caller().upload(method, args, items, opts).await
        }

        /// See [`Caller::upload_value`](crate::Caller::upload_value).
        pub async fn upload_value<I>(
            &self,
            method: &str,
            args: Vec<$crate::Value>,
            items: I,
            opts: $crate::CallOptions,
        ) -> Result<$crate::Value, $crate::CallError>
        where
            I: futures_util::Stream<Item = $crate::Value> + Send + 'static,
        {
            self.caller().upload_value(method, args, items, opts).await
        }

        /// See [`Caller::duplex_value`](crate::Caller::duplex_value).
        pub fn duplex_value<I>(
            &self,
            method: &str,
            args: Vec<$crate::Value>,
            items: I,
            opts: $crate::CallOptions,
        ) -> $crate::CallStream<$crate::Value>
        where
            I: futures_util::Stream<Item = $crate::Value> + Send + 'static,
        {
            self.caller().duplex_value(method, args, items, opts)
        }

        /// See [`Caller::duplex`](crate::Caller::duplex).
        pub fn duplex<A, I, T, R>(
            &self,
            method: &str,
            args: &A,
            items: I,
            opts: $crate::CallOptions,
        ) -> $crate::CallStream<R>
        where
            A: serde::Serialize + ?Sized,
            I: futures_util::Stream<Item = T> + Send + 'static,
            T: serde::Serialize + Send + 'static,
            R: serde::de::DeserializeOwned,
        {
            self.caller().duplex(method, args, items, opts)
        }
    };
}
pub(crate) use caller_surface;
