//! Services: the trait typed (generated) and untyped services implement, and the run-time
//! registry they are looked up in.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use arc_swap::ArcSwap;
use futures_util::future::BoxFuture;
use futures_util::stream::{BoxStream, Stream, StreamExt};
use rmpv::Value;
use serde::Serialize;

use crate::args::{Args, ParamList};
pub use crate::connection::Handler;
use crate::connection::{ConnInner, Dispatch, IncomingCall, Started};
use crate::context::CallContext;
use crate::error::ServiceError;
use crate::items::{Input, Items};
use crate::untyped::Untyped;
use crate::wire::codec::Payload;
pub use crate::wire::{CallKind, Encoded};

/// One incoming call as handed to [`Service::call`].
#[non_exhaustive]
pub struct Request<'a> {
    /// The method name within the service (after the last `/`).
    pub method: &'a str,
    /// The call kind the caller used.
    pub kind: CallKind,
    /// Context: connection, deadline, per-connection data, caller back to the peer.
    pub ctx: CallContext,
    /// The raw argument array, to be decoded straight into the method's parameters.
    pub args: Payload,
    /// The caller's items, for [`CallKind::Upload`] and [`CallKind::Duplex`] (`None` for the
    /// other kinds).
    pub input: Option<Input>,
}

/// The generated dispatch of one typed method: decode the arguments as the parameter list `P`
/// (see [`Args`]) and hand them, with the context and the shared implementation, to the
/// method's body. A failed decode answers INVALID_ARGUMENTS without running anything.
impl Request<'_> {
    /// Serves a unary method: `body`'s result becomes the REPLY.
    pub fn unary<P, S, F, Fut, T, E>(self, service: &Arc<S>, body: F) -> Handler
    where
        P: ParamList,
        S: ?Sized,
        F: FnOnce(Arc<S>, CallContext, Args<P>) -> Fut,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        T: Serialize,
        E: Into<ServiceError>,
    {
        self.decoded(service, |svc, ctx, args| {
            Handler::unary(ctx.clone(), body(svc, ctx, args))
        })
    }

    /// Serves a stream method: each of `body`'s items becomes an ITEM.
    pub fn stream<P, S, F, St, T, E>(self, service: &Arc<S>, body: F) -> Handler
    where
        P: ParamList,
        S: ?Sized,
        F: FnOnce(Arc<S>, CallContext, Args<P>) -> St,
        St: Stream<Item = Result<T, E>> + Send + 'static,
        T: Serialize,
        E: Into<ServiceError>,
    {
        self.decoded(service, |svc, ctx, args| {
            Handler::stream(ctx.clone(), body(svc, ctx, args))
        })
    }

    /// Serves a notification: `body` runs, nothing is answered.
    pub fn notify<P, S, F, Fut>(self, service: &Arc<S>, body: F) -> Handler
    where
        P: ParamList,
        S: ?Sized,
        F: FnOnce(Arc<S>, CallContext, Args<P>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.decoded(service, |svc, ctx, args| {
            Handler::notify(body(svc, ctx, args))
        })
    }

    /// Decodes the arguments as `P` and hands them on, or answers INVALID_ARGUMENTS.
    /// A client-streaming method ([`CallKind::Upload`]): like [`unary`](Self::unary), and the
    /// body also gets the caller's items.
    pub fn upload<P, S, F, Fut, T, E>(mut self, service: &Arc<S>, body: F) -> Handler
    where
        P: ParamList,
        S: ?Sized,
        F: FnOnce(Arc<S>, CallContext, Args<P>, Input) -> Fut,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        T: Serialize,
        E: Into<ServiceError>,
    {
        let Some(input) = self.input.take() else {
            return Handler::UnknownMethod;
        };
        self.decoded(service, |svc, ctx, args| {
            Handler::upload(ctx.clone(), body(svc, ctx, args, input))
        })
    }

    /// A bidirectional method ([`CallKind::Duplex`]): like [`stream`](Self::stream), and the
    /// body also gets the caller's items.
    pub fn duplex<P, S, F, St, T, E>(mut self, service: &Arc<S>, body: F) -> Handler
    where
        P: ParamList,
        S: ?Sized,
        F: FnOnce(Arc<S>, CallContext, Args<P>, Input) -> St,
        St: Stream<Item = Result<T, E>> + Send + 'static,
        T: Serialize,
        E: Into<ServiceError>,
    {
        let Some(input) = self.input.take() else {
            return Handler::UnknownMethod;
        };
        self.decoded(service, |svc, ctx, args| {
            Handler::duplex(ctx.clone(), body(svc, ctx, args, input))
        })
    }

    fn decoded<P: ParamList, S: ?Sized>(
        self,
        service: &Arc<S>,
        then: impl FnOnce(Arc<S>, CallContext, Args<P>) -> Handler,
    ) -> Handler {
        match self.args.decode::<Args<P>>() {
            Ok(args) => then(Arc::clone(service), self.ctx, args),
            Err(e) => Handler::Error(e.into()),
        }
    }
}

impl Handler {
    /// A unary handler whose typed result is encoded into the REPLY frame.
    pub fn unary<T, E, F>(ctx: CallContext, fut: F) -> Handler
    where
        T: Serialize,
        E: Into<ServiceError>,
        F: Future<Output = Result<T, E>> + Send + 'static,
    {
        Handler::Unary(encoded_answer(ctx, fut))
    }

    /// A stream handler whose typed items are each encoded into an ITEM frame.
    pub fn stream<T, E, S>(ctx: CallContext, stream: S) -> Handler
    where
        T: Serialize,
        E: Into<ServiceError>,
        S: Stream<Item = Result<T, E>> + Send + 'static,
    {
        Handler::Stream(encoded_items(ctx, stream))
    }

    /// A client-stream handler (it reads the caller's items) whose typed result is encoded into
    /// the REPLY frame.
    pub fn upload<T, E, F>(ctx: CallContext, fut: F) -> Handler
    where
        T: Serialize,
        E: Into<ServiceError>,
        F: Future<Output = Result<T, E>> + Send + 'static,
    {
        Handler::Upload(encoded_answer(ctx, fut))
    }

    /// A bidirectional handler (it reads the caller's items) whose typed items are each encoded
    /// into an ITEM frame.
    pub fn duplex<T, E, S>(ctx: CallContext, stream: S) -> Handler
    where
        T: Serialize,
        E: Into<ServiceError>,
        S: Stream<Item = Result<T, E>> + Send + 'static,
    {
        Handler::Duplex(encoded_items(ctx, stream))
    }

    /// A notification handler running `fut`.
    pub fn notify<F: Future<Output = ()> + Send + 'static>(fut: F) -> Handler {
        Handler::Notify(Some(Box::pin(fut)))
    }
}

/// The encoded REPLY of a typed answer.
fn encoded_answer<T, E, F>(
    ctx: CallContext,
    fut: F,
) -> BoxFuture<'static, Result<Encoded, ServiceError>>
where
    T: Serialize,
    E: Into<ServiceError>,
    F: Future<Output = Result<T, E>> + Send + 'static,
{
    Box::pin(async move {
        let value = fut.await.map_err(Into::into)?;
        ctx.encode_reply(&value)
    })
}

/// The encoded ITEMs of a typed stream.
fn encoded_items<T, E, S>(
    ctx: CallContext,
    stream: S,
) -> BoxStream<'static, Result<Encoded, ServiceError>>
where
    T: Serialize,
    E: Into<ServiceError>,
    S: Stream<Item = Result<T, E>> + Send + 'static,
{
    stream
        .map(move |item| match item {
            Ok(v) => ctx.encode_item(&v),
            Err(e) => Err(e.into()),
        })
        .boxed()
}

/// A service: a named set of methods. Generated code implements this for each schema service;
/// [`FnService`] builds untyped ones from closures.
///
/// `call` runs on the connection's reader task: it should only decode the arguments and return
/// a future or stream (which the runtime spawns, bounds by the deadline and aborts on cancel).
pub trait Service: Send + Sync + 'static {
    /// The qualified service name, e.g. `math.Math` (no `/`).
    fn name(&self) -> &str;

    /// The schema fingerprint the service was generated from ("" for untyped services).
    fn fingerprint(&self) -> &str {
        ""
    }

    /// Starts handling one call.
    fn call(&self, request: Request<'_>) -> Handler;
}

type ServiceMap = HashMap<String, Arc<dyn Service>>;

/// A set of services swapped atomically: lookups are lock-free, changes copy the map.
#[derive(Default)]
pub(crate) struct Registry {
    map: ArcSwap<ServiceMap>,
}

impl Registry {
    pub(crate) fn add(&self, svc: Arc<dyn Service>) {
        let name = svc.name().to_owned();
        self.map.rcu(|m| {
            let mut m = ServiceMap::clone(m);
            m.insert(name.clone(), svc.clone());
            m
        });
    }

    pub(crate) fn remove(&self, name: &str) -> bool {
        let mut found = false;
        self.map.rcu(|m| {
            let mut m = ServiceMap::clone(m);
            found = m.remove(name).is_some();
            m
        });
        found
    }

    pub(crate) fn clear(&self) {
        self.map.store(Arc::default());
    }

    #[inline]
    pub(crate) fn get(&self, name: &str) -> Option<Arc<dyn Service>> {
        let m = self.map.load();
        if m.is_empty() {
            None
        } else {
            m.get(name).cloned()
        }
    }

    pub(crate) fn fingerprints(&self) -> Vec<(String, String)> {
        self.map
            .load()
            .iter()
            .map(|(k, v)| (k.clone(), v.fingerprint().to_owned()))
            .collect()
    }
}

type UnaryFn = Arc<
    dyn Fn(CallContext, Vec<Value>) -> BoxFuture<'static, Result<Value, ServiceError>>
        + Send
        + Sync,
>;
type StreamFn = Arc<
    dyn Fn(CallContext, Vec<Value>) -> BoxStream<'static, Result<Value, ServiceError>>
        + Send
        + Sync,
>;
type NotifyFn = Arc<dyn Fn(CallContext, Vec<Value>) + Send + Sync>;

type UploadFn = Arc<
    dyn Fn(CallContext, Vec<Value>, Items<Value>) -> BoxFuture<'static, Result<Value, ServiceError>>
        + Send
        + Sync,
>;
type DuplexFn = Arc<
    dyn Fn(CallContext, Vec<Value>, Items<Value>) -> BoxStream<'static, Result<Value, ServiceError>>
        + Send
        + Sync,
>;

enum FnMethod {
    Unary(UnaryFn),
    Stream(StreamFn),
    Notify(NotifyFn),
    Upload(UploadFn),
    Duplex(DuplexFn),
}

/// An untyped service built from closures taking and returning [`rmpv::Value`]s.
///
/// # Examples
///
/// ```
/// use rmpv::Value;
/// use wsp_runtime::FnService;
///
/// let math = FnService::new("math.Math").unary("add", |_ctx, args| async move {
///     let sum: i64 = args.iter().filter_map(Value::as_i64).sum();
///     Ok(Value::from(sum))
/// });
/// # let _ = math.into_service();
/// ```
pub struct FnService {
    name: String,
    methods: HashMap<String, FnMethod>,
}

impl FnService {
    /// An empty service named `name` (no `/`).
    pub fn new(name: impl Into<String>) -> Self {
        FnService {
            name: name.into(),
            methods: HashMap::new(),
        }
    }

    /// Adds a unary method.
    pub fn unary<F, Fut>(mut self, method: &str, f: F) -> Self
    where
        F: Fn(CallContext, Vec<Value>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, ServiceError>> + Send + 'static,
    {
        let f: UnaryFn = Arc::new(move |ctx, args| Box::pin(f(ctx, args)));
        self.methods.insert(method.to_owned(), FnMethod::Unary(f));
        self
    }

    /// Adds a stream method.
    pub fn stream<F, S>(mut self, method: &str, f: F) -> Self
    where
        F: Fn(CallContext, Vec<Value>) -> S + Send + Sync + 'static,
        S: Stream<Item = Result<Value, ServiceError>> + Send + 'static,
    {
        let f: StreamFn = Arc::new(move |ctx, args| f(ctx, args).boxed());
        self.methods.insert(method.to_owned(), FnMethod::Stream(f));
        self
    }

    /// Adds a notification method (run on the connection's reader; keep it short or spawn).
    pub fn notify<F>(mut self, method: &str, f: F) -> Self
    where
        F: Fn(CallContext, Vec<Value>) + Send + Sync + 'static,
    {
        self.methods
            .insert(method.to_owned(), FnMethod::Notify(Arc::new(f)));
        self
    }

    /// Adds a client-streaming method: the handler also gets the caller's items.
    pub fn upload<F, Fut>(mut self, method: &str, f: F) -> Self
    where
        F: Fn(CallContext, Vec<Value>, Items<Value>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, ServiceError>> + Send + 'static,
    {
        let f: UploadFn = Arc::new(move |ctx, args, items| Box::pin(f(ctx, args, items)));
        self.methods.insert(method.to_owned(), FnMethod::Upload(f));
        self
    }

    /// Adds a bidirectional method: the handler gets the caller's items and returns its own.
    pub fn duplex<F, S>(mut self, method: &str, f: F) -> Self
    where
        F: Fn(CallContext, Vec<Value>, Items<Value>) -> S + Send + Sync + 'static,
        S: Stream<Item = Result<Value, ServiceError>> + Send + 'static,
    {
        let f: DuplexFn = Arc::new(move |ctx, args, items| f(ctx, args, items).boxed());
        self.methods.insert(method.to_owned(), FnMethod::Duplex(f));
        self
    }

    /// The finished service, ready for `add_service`.
    pub fn into_service(self) -> Arc<dyn Service> {
        Arc::new(self)
    }
}

fn decode_args(args: &Payload) -> Result<Vec<Value>, ServiceError> {
    match args.to_value()? {
        Value::Array(v) => Ok(v),
        Value::Nil => Ok(Vec::new()),
        _ => Err(ServiceError::invalid_arguments(
            "arguments are not an array",
        )),
    }
}

impl Service for FnService {
    fn name(&self) -> &str {
        &self.name
    }

    fn call(&self, mut req: Request<'_>) -> Handler {
        let Some(m) = self.methods.get(req.method) else {
            return Handler::UnknownMethod;
        };
        let args = match decode_args(&req.args) {
            Ok(a) => a,
            Err(e) => return Handler::Error(e),
        };
        // Results and items are encoded with non-finite floats as text in JSON (`untyped.rs`).
        let answer = |fut: BoxFuture<'static, Result<Value, ServiceError>>| async move {
            fut.await.map(Untyped)
        };
        let items = |items: BoxStream<'static, Result<Value, ServiceError>>| {
            items.map(|item| item.map(Untyped))
        };
        match (m, req.kind) {
            (FnMethod::Unary(f), CallKind::Unary) => {
                Handler::unary(req.ctx.clone(), answer(f(req.ctx, args)))
            }
            (FnMethod::Stream(f), CallKind::Stream) => {
                Handler::stream(req.ctx.clone(), items(f(req.ctx, args)))
            }
            (FnMethod::Notify(f), CallKind::Notify) => {
                f(req.ctx, args);
                Handler::Notify(None)
            }
            (FnMethod::Upload(f), CallKind::Upload) => match req.input.take() {
                Some(input) => {
                    let fut = f(req.ctx.clone(), args, Items::new(input));
                    Handler::upload(req.ctx, answer(fut))
                }
                None => Handler::UnknownMethod,
            },
            (FnMethod::Duplex(f), CallKind::Duplex) => match req.input.take() {
                Some(input) => {
                    let out = f(req.ctx.clone(), args, Items::new(input));
                    Handler::duplex(req.ctx, items(out))
                }
                None => Handler::UnknownMethod,
            },
            _ => Handler::UnknownMethod,
        }
    }
}

/// One incoming call or notification as seen by an observer hook.
#[derive(Debug)]
#[non_exhaustive]
pub struct Observed<'a> {
    /// The connection it arrived on.
    pub connection_id: u64,
    /// Its kind.
    pub kind: CallKind,
    /// The full method name (`service/method`).
    pub method: &'a str,
    /// The raw arguments ([`Payload::to_value`] decodes them).
    pub args: &'a Payload,
}

/// A hook that sees every incoming call and notification before it is dispatched.
pub type Observer = Arc<dyn Fn(&Observed<'_>) + Send + Sync>;

/// The services of one connection, which its calls from the peer go to: its own (added on its
/// [`Peer`](crate::Peer)), then those of its server or client, and the observer hook.
pub(crate) struct Services {
    pub(crate) local: Registry,
    shared: Option<Arc<Registry>>,
    observer: Option<Observer>,
}

impl Services {
    pub(crate) fn new(shared: Option<Arc<Registry>>, observer: Option<Observer>) -> Self {
        Services {
            local: Registry::default(),
            shared,
            observer,
        }
    }

    /// The services of `conn` (every connection's dispatch is a `Services`).
    pub(crate) fn of(conn: &ConnInner) -> &Services {
        conn.dispatch
            .as_any()
            .downcast_ref()
            .expect("connections dispatch to Services")
    }
}

impl Dispatch for Services {
    fn fingerprints(&self) -> Vec<(String, String)> {
        let mut services = self.local.fingerprints();
        if let Some(shared) = &self.shared {
            for (k, v) in shared.fingerprints() {
                if !services.iter().any(|(n, _)| *n == k) {
                    services.push((k, v));
                }
            }
        }
        services.sort();
        services
    }

    fn observe(&self, conn: &ConnInner, kind: CallKind, method: &str, args: &Payload) {
        if let Some(obs) = &self.observer {
            obs(&Observed {
                connection_id: conn.id,
                kind,
                method,
                args,
            });
        }
    }

    fn start(&self, conn: &Arc<ConnInner>, call: IncomingCall<'_>) -> Option<Started> {
        let svc = self
            .local
            .get(call.service)
            .or_else(|| self.shared.as_ref()?.get(call.service))?;
        let ctx = CallContext::new(conn.clone(), call.id, call.deadline);
        let cancel = ctx.canceller();
        let handler = svc.call(Request {
            method: call.method,
            kind: call.kind,
            ctx,
            args: call.args,
            input: call.input,
        });
        Some(Started { handler, cancel })
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
