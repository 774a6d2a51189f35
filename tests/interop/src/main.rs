//! The Rust side of the Rust ↔ Node interop tests (`ts/tests/test/interop.test.ts`), built from
//! the generated Rust code of `schemas/`:
//!
//! - `wsp-interop server [PORT]` serves `math.Math`, `geometry.Geometry` (calling back into the
//!   client) and `kitchen.sink.KitchenSink` on 127.0.0.1 (port 0 by default), prints
//!   `listening <port>`, then one `event …` line per thing the tests check (a log line, a handler
//!   dropped by cancellation or deadline), and stops when its stdin closes.
//! - `wsp-interop server-tls CHAIN_PEM KEY_PEM` serves what `server` serves over TLS (`wss://`)
//!   with the certificate chain and key of those files, printing `listening <port>` and stopping
//!   when its stdin closes, like `server`.
//! - `--allow-origin ORIGIN` (any number of times) after `server` or `server-tls` replaces its
//!   allow-any origin policy by an allow-list of these origins (HTTP 403 for any other page).
//! - `wsp-interop make-pki DIR` writes a test certificate authority (`DIR/ca.pem`), a certificate
//!   for `127.0.0.1` and `localhost` signed by it (`DIR/chain.pem`) and that certificate's key
//!   (`DIR/key.pem`), then prints `ok`.
//! - `wsp-interop bench-server [PORT]` serves `bench.Bench` (`bench/bench.wsp`, the `Adder` of
//!   `wsp-bench`) for the Node → Rust benchmark (`ts/tests/bench/node-rust.ts`), printing
//!   `listening <port>` and stopping when its stdin closes, like `server`.
//! - `wsp-interop client URL msgpack|json` runs every method kind against a Node server written
//!   with the generated TypeScript handlers, panicking (exit status 101) on the first mismatch
//!   and printing `ok` at the end.
//! - `wsp-interop relay-call RELAY_URL TARGET_KEY [msgpack|json] [CALLER_SECRET]` calls the
//!   `math.Math` of the host registered under `TARGET_KEY` through the relay (PROTOCOL.md §11)
//!   with the generated Rust client — anonymously, or proving the key of the 64-hex-digit
//!   Ed25519 secret `CALLER_SECRET` — printing `caller <key>`, `connected e2e` (or `connected
//!   plain`), then one line per result and `ok`. A relay that refuses prints `relay-refused
//!   <code> <reason>` and exits with status 3; a failed end-to-end handshake (§12) prints
//!   `e2e-refused <error>` and exits with status 4; a first call that fails prints
//!   `call-failed <error>` and `closed <code> <reason>` and exits with status 5.
//! - `wsp-interop relay-echo RELAY_URL TARGET_KEY SIZE [msgpack|json]` echoes a
//!   `kitchen.sink.Primitives` whose `some_bytes` are SIZE bytes (and whose `a_string` is about
//!   SIZE / 2 bytes of non-ASCII text) through `KitchenSink/echo` of the host under
//!   `TARGET_KEY`, anonymously, printing `connected e2e|plain`, `echo <SIZE>` and `ok`: frames
//!   larger than one encrypted transport message, both ways.
//! - `wsp-interop relay-host RELAY_URL SECRET [msgpack|json]` serves what `server` serves through
//!   the relay under the key of `SECRET`, prints `registered <key>` once its spares are
//!   registered, `event reset <caller key|anonymous> <e2e|plain>` for each `math.Math/reset`
//!   (who called, as the end-to-end handshake proved it, or as the relay verified it on a plain
//!   connection), and stops when its stdin closes.
//!
//! The relay modes encrypt end to end (the Rust default, PROTOCOL.md §12); `--plain` anywhere
//! on their command line turns it off.

mod values;

use std::collections::BTreeMap;
use std::f64::consts::PI;
use std::sync::Arc;
use std::time::Duration;
use wsp_runtime::RpcError;

use futures_util::StreamExt;
use tokio::io::AsyncReadExt;
use wsp_runtime::codegen::{CallOptions, Stream};
use wsp_runtime::relay::{Identity, PublicKey, RelayOptions, RelayPeer};
use wsp_runtime::tls::ServerTls;
use wsp_runtime::{
    CallContext, CallError, Client, Codec, ConnectError, Items, OriginPolicy, ReconnectPolicy,
    Server, ServiceError,
};

/// `schemas/common.wsp`.
pub mod common {
    wsp_runtime::include_schema!("common");
}

/// `schemas/geometry.wsp`.
pub mod geometry {
    wsp_runtime::include_schema!("geometry");
}

/// `schemas/kitchen_sink.wsp`.
pub mod kitchen {
    /// The package `kitchen.sink`.
    pub mod sink {
        wsp_runtime::include_schema!("kitchen.sink");
    }
}

/// `schemas/math.wsp`.
pub mod math {
    wsp_runtime::include_schema!("math");
}

use geometry::{GeometryError, Point, Shape};
use kitchen::sink;
use math::MathError;

/// A 64-bit value far above 2^53.
const BIG: i64 = (1 << 62) + 1;

/// One line for the Node test to wait for.
fn event(what: &str) {
    println!("event {what}");
}

/// Prints an event when dropped: shows that a handler future was dropped (cancelled, deadline).
struct DropEvent(&'static str);

impl Drop for DropEvent {
    fn drop(&mut self) {
        event(self.0);
    }
}

struct MathImpl;

impl math::Math for MathImpl {
    async fn add(&self, _ctx: CallContext, values: Vec<i64>) -> Result<i64, RpcError<MathError>> {
        values
            .iter()
            .try_fold(0i64, |sum, v| sum.checked_add(*v))
            .ok_or_else(|| {
                MathError::Overflow {
                    operation: "add".into(),
                }
                .into()
            })
    }

    async fn divide(&self, _ctx: CallContext, a: f64, b: f64) -> Result<f64, RpcError<MathError>> {
        if a == 42.0 {
            // Slow on purpose: ends only by being dropped (cancellation or deadline).
            event("divide started");
            let _guard = DropEvent("divide dropped");
            std::future::pending::<()>().await;
        }
        if b == 0.0 {
            return Err(MathError::DivisionByZero.into());
        }
        Ok(a / b)
    }

    fn count(
        self: Arc<Self>,
        _ctx: CallContext,
        from: u32,
        to: u32,
    ) -> impl Stream<Item = Result<u32, ServiceError>> + Send + 'static {
        futures_util::stream::iter((from..=to).map(Ok))
    }

    async fn sum(
        &self,
        _ctx: CallContext,
        mut values: Items<i64>,
    ) -> Result<i64, RpcError<MathError>> {
        let mut total = 0i64;
        let mut first = true;
        while let Some(value) = values.next().await {
            let value = value?;
            if first && value == 42 {
                // Takes nothing more: the caller must stop at its window. Ends only by being
                // dropped (cancellation or deadline).
                event("sum waiting");
                let _guard = DropEvent("sum dropped");
                std::future::pending::<()>().await;
            }
            first = false;
            total = total.checked_add(value).ok_or(MathError::Overflow {
                operation: "sum".into(),
            })?;
        }
        Ok(total)
    }

    fn running(
        self: Arc<Self>,
        _ctx: CallContext,
        start: i64,
        values: Items<i64>,
    ) -> impl Stream<Item = Result<i64, RpcError<MathError>>> + Send + 'static {
        futures_util::stream::unfold(Some((values, start)), |state| async move {
            let (mut values, total) = state?;
            let value = match values.next().await? {
                Ok(value) => value,
                Err(e) => return Some((Err(e.into()), None)),
            };
            Some(match total.checked_add(value) {
                Some(total) => (Ok(total), Some((values, total))),
                None => {
                    let overflow = MathError::Overflow {
                        operation: "running".into(),
                    };
                    (Err(overflow.into()), None)
                }
            })
        })
    }

    async fn reset(&self, ctx: CallContext) -> Result<(), ServiceError> {
        // Through a relay: who called, as the end-to-end handshake proved it (or, plain, as
        // the relay verified it).
        if let Some(caller) = ctx.data::<RelayPeer>() {
            let how = if caller.encrypted { "e2e" } else { "plain" };
            match caller.key {
                Some(key) => event(&format!("reset {key} {how}")),
                None => event(&format!("reset anonymous {how}")),
            }
        }
        Ok(())
    }

    async fn log(&self, _ctx: CallContext, line: String) {
        event(&format!("log {line}"));
    }
}

struct GeometryImpl;

impl geometry::Geometry for GeometryImpl {
    async fn area(&self, ctx: CallContext, shape: Shape) -> Result<f64, RpcError<GeometryError>> {
        match shape {
            Shape::Circle { radius, .. } => {
                let peer = geometry::GeometryCallbacksClient::from_context(&ctx);
                let confirmed = peer
                    .confirm(format!("radius {radius}?"))
                    .await
                    .map_err(|e| GeometryError::Degenerate {
                        reason: format!("no answer: {e}"),
                    })?;
                if !confirmed {
                    return Err(GeometryError::Degenerate {
                        reason: "not confirmed".into(),
                    }
                    .into());
                }
                let _ = peer.progress(0.5).await;
                Ok(PI * radius * radius)
            }
            Shape::Polygon { points } if points.len() < 3 => Err(GeometryError::Degenerate {
                reason: "too few points".into(),
            }
            .into()),
            Shape::Polygon { .. } => Ok(1.0),
            Shape::Empty => Ok(0.0),
            // A shape from a newer schema: its name came along.
            Shape::Unknown(newer) => Err(GeometryError::Degenerate {
                reason: format!("unknown shape {}", newer.name()),
            }
            .into()),
        }
    }

    async fn measure(
        &self,
        _ctx: CallContext,
        shape: Shape,
    ) -> Result<geometry::Measurement, RpcError<common::CommonError>> {
        if shape == Shape::Empty {
            return Err(common::CommonError::NotFound {
                what: "shape".into(),
            }
            .into());
        }
        Ok(geometry::Measurement {
            area: 2.0,
            at: common::Timestamp { millis: BIG as u64 },
        })
    }

    async fn log(&self, _ctx: CallContext, line: String) {
        event(&format!("geometry log {line}"));
    }

    fn walk(
        self: Arc<Self>,
        _ctx: CallContext,
        shape: Shape,
        steps: u32,
    ) -> impl Stream<Item = Result<Point, ServiceError>> + Send + 'static {
        let labelled = shape != Shape::Empty;
        futures_util::stream::iter((0..steps).map(move |i| {
            Ok(Point {
                x: f64::from(i),
                y: f64::from(i) + 0.5,
                label: labelled.then(|| format!("p{i}")),
            })
        }))
    }
}

struct SinkImpl;

#[allow(deprecated)]
impl sink::KitchenSink for SinkImpl {
    async fn echo(
        &self,
        _ctx: CallContext,
        value: sink::Primitives,
    ) -> Result<sink::Primitives, ServiceError> {
        Ok(value)
    }

    async fn touch(&self, _ctx: CallContext) -> Result<(), ServiceError> {
        Ok(())
    }

    async fn search(
        &self,
        _ctx: CallContext,
        query: String,
        limit: Option<u32>,
        cursor: Option<String>,
    ) -> Result<Vec<sink::Containers>, RpcError<sink::SinkError>> {
        if query == "fail" {
            return Err(sink::SinkError::Broken {
                part: cursor.unwrap_or_default(),
                code: limit,
            }
            .into());
        }
        Ok(vec![values::containers()])
    }

    async fn list(
        &self,
        _ctx: CallContext,
        prefix: Option<String>,
        limit: u32,
    ) -> Result<Vec<String>, ServiceError> {
        let prefix = prefix.as_deref().unwrap_or("item");
        Ok((0..limit).map(|i| format!("{prefix}{i}")).collect())
    }

    fn watch(
        self: Arc<Self>,
        _ctx: CallContext,
        root: sink::Tree,
    ) -> impl Stream<Item = Result<sink::Node, RpcError<sink::SinkError>>> + Send + 'static {
        let mut items = vec![Ok(sink::Node {
            value: BIG,
            next: Some(Box::new(sink::Node {
                value: BIG + 1,
                next: None,
            })),
        })];
        if root.label == "fail" {
            items.push(Err(sink::SinkError::Unknown.into()));
        }
        futures_util::stream::iter(items)
    }

    async fn ping(&self, _ctx: CallContext, at: u64) {
        event(&format!("ping {at}"));
    }

    async fn old_echo(
        &self,
        _ctx: CallContext,
        value: sink::Old,
    ) -> Result<sink::Old, ServiceError> {
        Ok(value)
    }

    async fn eval(
        &self,
        _ctx: CallContext,
        expr: sink::Expr,
        a: sink::A,
        mode: Option<sink::Mode>,
    ) -> Result<BTreeMap<String, sink::Expr>, ServiceError> {
        let mode = match mode {
            None => -1.0,
            Some(sink::Mode::Careful { retries }) => f64::from(retries),
            Some(_) => 0.0,
        };
        let a = match a.b.a {
            None => sink::Expr::Nothing,
            Some(_) => sink::Expr::Literal { value: 1.0 },
        };
        Ok(BTreeMap::from([
            ("expr".to_owned(), expr),
            ("mode".to_owned(), sink::Expr::Literal { value: mode }),
            ("a".to_owned(), a),
        ]))
    }
}

/// A server builder with the services `server` and `relay-host` offer.
#[allow(deprecated)] // KitchenSink is marked deprecated in the schema
fn services() -> wsp_runtime::ServerBuilder {
    Server::builder()
        .service(math::MathServer::new(MathImpl).into_service())
        .service(geometry::GeometryServer::new(GeometryImpl).into_service())
        .service(sink::KitchenSinkServer::new(SinkImpl).into_service())
}

/// The origin policy of `server` and `server-tls`: any origin unless `--allow-origin` named some.
fn origin_policy(allowed: &[String]) -> OriginPolicy {
    if allowed.is_empty() {
        // The browser tests' page is `about:blank` (origin `null`), not of this server's origin.
        OriginPolicy::Any
    } else {
        OriginPolicy::allow(allowed.iter().cloned())
    }
}

async fn server(port: u16, tls: Option<(&str, &str)>, allowed: &[String]) {
    let mut builder = services().origins(origin_policy(allowed));
    if let Some((chain, key)) = tls {
        builder = builder
            .tls(ServerTls::from_pem_files(chain, key).expect("reads the certificate and key"));
    }
    let server = builder.bind(("127.0.0.1", port)).await.expect("binds");
    println!("listening {}", server.local_addr().port());
    // Run until the test closes our stdin (or kills us).
    let mut sink = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    server.close().await;
}

/// A test CA and a certificate for 127.0.0.1 and localhost signed by it, written to `dir`.
fn make_pki(dir: &str) {
    let ca_key = rcgen::KeyPair::generate().expect("a CA key");
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "wsp interop test CA");
    let ca = ca.self_signed(&ca_key).expect("a self-signed CA");
    let key = rcgen::KeyPair::generate().expect("a key");
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("certificate parameters")
        .signed_by(&key, &ca, &ca_key)
        .expect("a certificate signed by the CA");
    let dir = std::path::Path::new(dir);
    std::fs::create_dir_all(dir).expect("creates the directory");
    std::fs::write(dir.join("ca.pem"), ca.pem()).expect("writes ca.pem");
    std::fs::write(dir.join("chain.pem"), leaf.pem()).expect("writes chain.pem");
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).expect("writes key.pem");
    println!("ok");
}

/// `bench.Bench` for the Node → Rust benchmark.
async fn bench_server(port: u16) {
    let server = Server::builder()
        .service(wsp_bench::bench::BenchServer::new(wsp_bench::Adder).into_service())
        .bind(("127.0.0.1", port))
        .await
        .expect("binds");
    println!("listening {}", server.local_addr().port());
    let mut sink = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    server.close().await;
}

struct Callbacks;

impl geometry::GeometryCallbacks for Callbacks {
    async fn confirm(&self, _ctx: CallContext, question: String) -> Result<bool, ServiceError> {
        Ok(question != "radius 0?")
    }

    async fn progress(&self, _ctx: CallContext, percent: f32) {
        event(&format!("progress {percent}"));
    }
}

/// Every method kind against a Node server; panics on the first mismatch.
#[allow(deprecated)] // KitchenSink is marked deprecated in the schema
async fn client(url: &str, codec: Codec) {
    let client = Client::builder(url)
        .codec(codec)
        .service(geometry::GeometryCallbacksServer::new(Callbacks).into_service())
        .build();
    client.connect().await.expect("connects");
    assert_eq!(client.peer().map(|p| p.codec()), Some(codec));

    let m = math::MathClient::from_caller(client.caller());
    assert_eq!(m.add(vec![1, 2, 3]).await.unwrap(), 6);
    assert_eq!(m.add(vec![BIG, 1]).await.unwrap(), BIG + 1);
    assert_eq!(m.add(vec![i64::MIN]).await.unwrap(), i64::MIN);
    match m.add(vec![i64::MAX, 1]).await {
        Err(wsp_runtime::RpcError::App(MathError::Overflow { operation })) => {
            assert_eq!(operation, "add")
        }
        other => panic!("expected Overflow, got {other:?}"),
    }
    assert_eq!(m.divide(1.0, 4.0).await.unwrap(), 0.25);
    assert_eq!(
        m.divide(1.0, 0.0).await.unwrap_err().app(),
        Some(&MathError::DivisionByZero)
    );
    let counted: Vec<u32> = m.count(1, 5).map(Result::unwrap).collect().await;
    assert_eq!(counted, [1, 2, 3, 4, 5]);
    let mut first: Vec<u32> = Vec::new();
    let mut long = m.count(1, 1_000_000);
    while let Some(n) = long.next().await {
        first.push(n.unwrap());
        if first.len() == 3 {
            break;
        }
    }
    drop(long);
    assert_eq!(first, [1, 2, 3]);
    m.reset().await.unwrap();
    m.log("from rust").await.unwrap();

    // Deadline: the Node handler waits for its signal; the call fails locally and remotely.
    let err = m
        .with_timeout(Duration::from_millis(100))
        .divide(42.0, 1.0)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            wsp_runtime::RpcError::Call(CallError::DeadlineExceeded)
        ),
        "{err:?}"
    );
    // Cancellation: dropping the call sends CANCEL.
    let slow = m.with_options(CallOptions::new().no_deadline());
    assert!(
        tokio::time::timeout(Duration::from_millis(100), slow.divide(42.0, 2.0))
            .await
            .is_err()
    );

    // Client and bidirectional streams, to a Node callee.
    let values = futures_util::stream::iter(vec![BIG, 1, 2]);
    assert_eq!(m.sum(values).await.unwrap(), BIG + 3);
    match m.sum(futures_util::stream::iter(vec![i64::MAX, 1])).await {
        Err(wsp_runtime::RpcError::App(MathError::Overflow { operation })) => {
            assert_eq!(operation, "sum")
        }
        other => panic!("expected Overflow, got {other:?}"),
    }
    let totals: Vec<i64> = m
        .running(BIG, futures_util::stream::iter(vec![1, 2, 3]))
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(totals, [BIG + 1, BIG + 3, BIG + 6]);
    let got: Vec<_> = m
        .running(0, futures_util::stream::iter(vec![1, i64::MAX, 7]))
        .collect()
        .await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(matches!(
        &got[1],
        Err(wsp_runtime::RpcError::App(MathError::Overflow { .. }))
    ));
    // The Node `sum` takes nothing after a first 42: this producer must stop at its window.
    let made = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = {
        let made = made.clone();
        futures_util::stream::iter(42..).inspect(move |_| {
            made.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        })
    };
    let waiting = m.with_options(CallOptions::new().no_deadline());
    let paused = tokio::time::timeout(Duration::from_millis(500), waiting.sum(counted)).await;
    assert!(paused.is_err(), "{paused:?}");
    // The window of 16 was sent; one more item was taken and waits for room.
    assert_eq!(
        made.load(std::sync::atomic::Ordering::SeqCst),
        17,
        "the producer ran past its window"
    );

    let g = geometry::GeometryClient::from_caller(client.caller());
    let circle = |radius| Shape::Circle {
        center: Point {
            x: 1.0,
            y: 2.0,
            label: None,
        },
        radius,
    };
    assert_eq!(g.area(circle(2.0)).await.unwrap(), PI * 4.0);
    assert_eq!(
        g.area(circle(0.0)).await.unwrap_err().app(),
        Some(&GeometryError::Degenerate {
            reason: "not confirmed".into()
        })
    );
    let measured = g.measure(Shape::Polygon { points: vec![] }).await.unwrap();
    assert_eq!(measured.at.millis, BIG as u64);
    let points: Vec<Point> = g.walk(Shape::Empty, 2).map(Result::unwrap).collect().await;
    assert_eq!(
        points,
        [
            Point {
                x: 0.0,
                y: 0.5,
                label: None
            },
            Point {
                x: 1.0,
                y: 1.5,
                label: None
            }
        ]
    );

    let k = sink::KitchenSinkClient::from_caller(client.caller());
    let primitives = values::primitives();
    assert_eq!(k.echo(primitives.clone()).await.unwrap(), primitives);
    assert_eq!(
        k.search("q", None, None).await.unwrap(),
        vec![values::containers()]
    );
    // An optional parameter before a required one, absent and present.
    assert_eq!(k.list(None, 2).await.unwrap(), ["item0", "item1"]);
    assert_eq!(k.list(Some("p".into()), 1).await.unwrap(), ["p0"]);
    let err = k
        .search("fail", Some(3), Some("c".into()))
        .await
        .unwrap_err();
    assert_eq!(
        err.app(),
        Some(&sink::SinkError::Broken {
            part: "c".into(),
            code: Some(3)
        })
    );
    let expr = values::expr();
    let result = k
        .eval(
            expr.clone(),
            sink::A {
                b: Box::new(sink::B { a: None }),
            },
            Some(sink::Mode::Careful { retries: 3 }),
        )
        .await
        .unwrap();
    assert_eq!(result.get("expr"), Some(&expr));
    assert_eq!(
        result.get("mode"),
        Some(&sink::Expr::Literal { value: 3.0 })
    );

    client.close(1000, "done").await.expect("closes");
    println!("ok");
}

/// A 32-byte value written as 64 hex digits (an Ed25519 secret key on the command line).
fn secret_from_hex(hex: &str) -> [u8; 32] {
    assert!(
        hex.len() == 64 && hex.is_ascii(),
        "a secret key is 64 hex digits"
    );
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte =
            u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("a secret key is 64 hex digits");
    }
    out
}

fn codec_arg(codec: &str) -> Codec {
    match codec {
        "msgpack" => Codec::MsgPack,
        "json" => Codec::Json,
        other => panic!("unknown codec {other}"),
    }
}

/// Connects `builder`'s client through the relay, or prints why not and exits (3: the relay
/// refused, 4: the end-to-end handshake failed); prints `connected e2e|plain`.
async fn connect_through_relay(builder: wsp_runtime::ClientBuilder, codec: Codec) -> Client {
    let client = builder.reconnect(ReconnectPolicy::disabled()).build();
    match client.connect().await {
        Ok(()) => {}
        Err(ConnectError::Relay { code, reason }) => {
            println!("relay-refused {code} {reason}");
            std::process::exit(3);
        }
        Err(ConnectError::EndToEnd(e)) => {
            println!("e2e-refused {e}");
            std::process::exit(4);
        }
        Err(e) => panic!("connect through the relay failed: {e}"),
    }
    let peer = client.peer().expect("connected");
    assert_eq!(peer.codec(), codec);
    // The client's own view of the link: the target's key, and whether it is encrypted.
    let encrypted = peer.data::<RelayPeer>().expect("relayed").encrypted;
    println!("connected {}", if encrypted { "e2e" } else { "plain" });
    client
}

/// `math.Math` of the host under `target`, through the relay at `url`; panics on a mismatch.
async fn relay_call(url: &str, target: &str, codec: Codec, secret: Option<&str>, encrypt: bool) {
    let target: PublicKey = target.parse().expect("a target key of 64 hex digits");
    let mut builder = Client::via_relay(url, target).codec(codec).encrypt(encrypt);
    if let Some(secret) = secret {
        let identity = Identity::from_secret(secret_from_hex(secret));
        println!("caller {}", identity.public_key());
        builder = builder.identity(identity);
    } else {
        println!("caller anonymous");
    }
    let client = connect_through_relay(builder, codec).await;
    let peer = client.peer().expect("connected");
    let m = math::MathClient::from_caller(client.caller());
    let sum = match m.add(vec![1, 2, BIG]).await {
        Ok(sum) => sum,
        Err(e) => {
            // E.g. the host found a changed message (4211): how the connection ended.
            println!("call-failed {e}");
            match tokio::time::timeout(Duration::from_secs(5), peer.closed()).await {
                Ok(Ok(info)) => println!("closed {} {}", info.code, info.reason),
                Ok(Err(e)) => println!("closed {} {}", e.code, e.reason),
                Err(_) => println!("closed none"),
            }
            std::process::exit(5);
        }
    };
    assert_eq!(sum, BIG + 3);
    println!("add {sum}");
    match m.add(vec![i64::MAX, 1]).await {
        Err(wsp_runtime::RpcError::App(MathError::Overflow { operation })) => {
            println!("overflow {operation}")
        }
        other => panic!("expected Overflow, got {other:?}"),
    }
    assert_eq!(
        m.divide(1.0, 0.0).await.unwrap_err().app(),
        Some(&MathError::DivisionByZero)
    );
    println!("divide DivisionByZero");
    let counted: Vec<u32> = m.count(1, 5).map(Result::unwrap).collect().await;
    assert_eq!(counted, [1, 2, 3, 4, 5]);
    println!("count {counted:?}");
    m.log("through the relay").await.unwrap();
    // `reset` makes the host print who called.
    m.reset().await.unwrap();
    client.close(1000, "done").await.expect("closes");
    println!("ok");
}

/// `KitchenSink/echo` of a value with `size` bytes (and about `size / 2` bytes of text) through
/// the relay: frames of several encrypted transport messages each way.
#[allow(deprecated)] // KitchenSink is marked deprecated in the schema
async fn relay_echo(url: &str, target: &str, size: usize, codec: Codec, encrypt: bool) {
    let target: PublicKey = target.parse().expect("a target key of 64 hex digits");
    let builder = Client::via_relay(url, target).codec(codec).encrypt(encrypt);
    let client = connect_through_relay(builder, codec).await;
    let k = sink::KitchenSinkClient::from_caller(client.caller());
    let mut value = values::primitives();
    value.some_bytes = (0..size).map(|i| (i * 31 + 7) as u8).collect();
    // 2-, 3- and 4-byte characters: chunk boundaries fall inside them.
    value.a_string = "é€😀".repeat(size / 18);
    let echoed = k.echo(value.clone()).await.expect("echo");
    assert_eq!(echoed, value);
    println!("echo {size}");
    client.close(1000, "done").await.expect("closes");
    println!("ok");
}

/// Serves through the relay until stdin closes.
async fn relay_host(url: &str, secret: &str, codec: Codec, encrypt: bool) {
    let identity = Identity::from_secret(secret_from_hex(secret));
    let host = services()
        .bind_relay(
            RelayOptions::new(url, identity)
                .codec(codec)
                .encrypt(encrypt),
        )
        .await
        .expect("registers at the relay");
    let mut spares = host.watch_spares();
    let _ = spares.wait_for(|n| *n >= 2).await;
    println!("registered {}", host.public_key());
    let mut sink = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    host.close().await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let all: Vec<String> = std::env::args().skip(1).collect();
    // `--plain`: the relay modes without end-to-end encryption.
    let encrypt = !all.iter().any(|a| a == "--plain");
    // `--allow-origin ORIGIN`: `server` and `server-tls` admit pages of these origins only.
    let mut allowed = Vec::new();
    let mut args: Vec<&str> = Vec::new();
    let mut rest = all.iter().map(String::as_str);
    while let Some(a) = rest.next() {
        match a {
            "--plain" => {}
            "--allow-origin" => allowed.push(
                rest.next()
                    .expect("an origin after --allow-origin")
                    .to_owned(),
            ),
            _ => args.push(a),
        }
    }
    match args.as_slice() {
        ["server"] => server(0, None, &allowed).await,
        ["server", port] => server(port.parse().expect("a port number"), None, &allowed).await,
        ["server-tls", chain, key] => server(0, Some((chain, key)), &allowed).await,
        ["make-pki", dir] => make_pki(dir),
        ["bench-server"] => bench_server(0).await,
        ["bench-server", port] => bench_server(port.parse().expect("a port number")).await,
        ["client", url, codec] => client(url, codec_arg(codec)).await,
        ["relay-call", url, target] => relay_call(url, target, Codec::MsgPack, None, encrypt).await,
        ["relay-call", url, target, codec] => {
            relay_call(url, target, codec_arg(codec), None, encrypt).await
        }
        ["relay-call", url, target, codec, secret] => {
            relay_call(url, target, codec_arg(codec), Some(secret), encrypt).await
        }
        ["relay-echo", url, target, size] => {
            let size = size.parse().expect("a size in bytes");
            relay_echo(url, target, size, Codec::MsgPack, encrypt).await
        }
        ["relay-echo", url, target, size, codec] => {
            let size = size.parse().expect("a size in bytes");
            relay_echo(url, target, size, codec_arg(codec), encrypt).await
        }
        ["relay-host", url, secret] => relay_host(url, secret, Codec::MsgPack, encrypt).await,
        ["relay-host", url, secret, codec] => {
            relay_host(url, secret, codec_arg(codec), encrypt).await
        }
        _ => {
            eprintln!(
                "usage: wsp-interop server [PORT] [--allow-origin ORIGIN]... \
                 | wsp-interop server-tls CHAIN_PEM KEY_PEM [--allow-origin ORIGIN]... \
                 | wsp-interop make-pki DIR | wsp-interop bench-server [PORT] | wsp-interop client URL msgpack|json \
                 | wsp-interop relay-call RELAY_URL TARGET_KEY [msgpack|json] [CALLER_SECRET] [--plain] \
                 | wsp-interop relay-echo RELAY_URL TARGET_KEY SIZE [msgpack|json] [--plain] \
                 | wsp-interop relay-host RELAY_URL SECRET [msgpack|json] [--plain]"
            );
            std::process::exit(2);
        }
    }
}
