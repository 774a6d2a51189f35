//! `schemas/kitchen_sink.wsp` and `schemas/keywords.wsp` end to end: every value encoding
//! (PROTOCOL §5) round-trips in both codecs, recursive types, optional parameters, typed errors
//! in streams, and every kind of call from the server to the client.
#![allow(deprecated)] // the kitchen sink service is deprecated on purpose

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use wsp_runtime::RpcError;

use common::{connect, serve, within};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use wsp_codegen_compile_tests::kitchen::sink::{
    self as ks, A, B, Containers, Expr, KitchenSinkCallbacksClient, KitchenSinkCallbacksServer,
    KitchenSinkClient, KitchenSinkServer, Mode, Node, Old, Primitives, SinkError, Tree,
};
use wsp_codegen_compile_tests::{keywords as kw, v2};
use wsp_runtime::codegen::Stream;
use wsp_runtime::{Bytes, CallContext, CallError, Codec, ServiceError};

fn primitives() -> Primitives {
    Primitives {
        a_bool: true,
        an_i8: i8::MIN,
        an_i16: i16::MIN,
        an_i32: i32::MIN,
        an_i64: i64::MIN,
        a_u8: u8::MAX,
        a_u16: u16::MAX,
        a_u32: u32::MAX,
        a_u64: u64::MAX,
        an_f32: 1.5,
        an_f64: -2.25,
        a_string: "ünïcödé".into(),
        some_bytes: vec![0, 1, 2, 255].into(),
        maybe_bool: None,
        maybe_i64: Some(i64::MAX),
        maybe_u64: None,
        maybe_bytes: Some(Bytes::new()),
        maybe_string: Some(String::new()),
    }
}

fn roundtrip<T>(codec: Codec, value: &T) -> (Vec<u8>, T)
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    let mut buf = Vec::new();
    codec.encode(&mut buf, value).expect("encodes");
    let back = codec.decode(&buf, 64).expect("decodes");
    (buf, back)
}

#[test]
fn values_encode_as_protocol_section_5_says() {
    let p = primitives();
    let (json, back) = roundtrip(Codec::Json, &p);
    assert_eq!(back, p);
    let json = String::from_utf8(json).unwrap();
    // JSON has no number for infinity or NaN: they travel as strings.
    let unbounded = Primitives {
        an_f32: f32::INFINITY,
        an_f64: f64::NEG_INFINITY,
        ..primitives()
    };
    let (text, back) = roundtrip(Codec::Json, &unbounded);
    assert_eq!(back, unbounded);
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains(r#""an_f32":"Infinity""#), "{text}");
    assert!(text.contains(r#""an_f64":"-Infinity""#), "{text}");
    assert!(
        json.contains(r#""an_i64":"-9223372036854775808""#),
        "{json}"
    );
    assert!(json.contains(r#""a_u64":"18446744073709551615""#), "{json}");
    assert!(json.contains(r#""some_bytes":"AAEC/w==""#), "{json}");
    assert!(
        !json.contains("maybe_bool"),
        "absent optional fields are omitted: {json}"
    );
    assert_eq!(roundtrip(Codec::MsgPack, &p).1, p);

    let containers = Containers {
        numbers: vec![1, -1],
        matrix: vec![vec![1.0], vec![]],
        by_name: BTreeMap::from([("p".into(), p.clone())]),
        by_id: BTreeMap::from([(u64::MAX, "max".into())]),
        by_small_id: BTreeMap::from([(-1, vec![None, Some("x".into())])]),
        by_u32: BTreeMap::from([(7, BTreeMap::from([("k".into(), vec![i64::MIN])]))]),
        maybe_list: Some(vec![1, 2]),
        list_of_maybe: vec![None, Some(p)],
        maybe_map: None,
        deep: vec![BTreeMap::from([(
            "d".into(),
            vec![BTreeMap::from([(9, Some(Bytes::from_static(&[7])))])],
        )])],
    };
    for codec in [Codec::Json, Codec::MsgPack] {
        assert_eq!(roundtrip(codec, &containers).1, containers);
    }
    let (json, _) = roundtrip(Codec::Json, &containers);
    let json = String::from_utf8(json).unwrap();
    assert!(
        json.contains(r#""by_id":{"18446744073709551615":"max"}"#),
        "{json}"
    );
    assert!(json.contains(r#""deep":[{"d":[{"9":"Bw=="}]}]"#), "{json}");

    // Enums: `$type` first, variant fields beside it; 64-bit fields inside variants too.
    let status = v2::evolution::Status::Away { since: u64::MAX };
    let (json, back) = roundtrip(Codec::Json, &status);
    assert_eq!(
        String::from_utf8(json).unwrap(),
        r#"{"$type":"Away","since":"18446744073709551615"}"#
    );
    assert_eq!(back, status);
    assert_eq!(roundtrip(Codec::MsgPack, &status).1, status);
    let (json, _) = roundtrip(Codec::Json, &Mode::Fast);
    assert_eq!(String::from_utf8(json).unwrap(), r#"{"$type":"Fast"}"#);
    // A variant from a newer schema keeps its name and fields and goes back unchanged.
    let newer = br#"{"$type":"Reckless","speed":3}"#;
    let unknown: Mode = Codec::Json.decode(newer, 64).unwrap();
    assert!(
        matches!(&unknown, Mode::Unknown(v) if v.name() == "Reckless"),
        "{unknown:?}"
    );
    let mut again = Vec::new();
    Codec::Json.encode(&mut again, &unknown).unwrap();
    assert_eq!(again, newer);
    let (_, back) = roundtrip(Codec::MsgPack, &unknown);
    assert_eq!(back, unknown);
    // A known name with a bad field is an error, not an unknown variant.
    assert!(
        Codec::Json
            .decode::<Mode>(br#"{"$type":"Careful","retries":"x"}"#, 64)
            .is_err()
    );
    // The schema's own `Unknown` variant stays distinct from the catch-all.
    let e: SinkError = Codec::Json.decode(br#"{"$type":"Unknown"}"#, 64).unwrap();
    assert_eq!(e, SinkError::Unknown);
    let e: SinkError = Codec::Json.decode(br#"{"$type":"Melted"}"#, 64).unwrap();
    assert!(
        matches!(&e, SinkError::Unknown_(v) if v.name() == "Melted"),
        "{e:?}"
    );
    assert_eq!(e.variant_name(), "Melted");

    // Keyword names travel as written.
    let m = kw::Match::Fn {
        self_: "s".into(),
        class: 1,
    };
    let (json, back) = roundtrip(Codec::Json, &m);
    assert_eq!(
        String::from_utf8(json).unwrap(),
        r#"{"$type":"fn","self":"s","class":1}"#
    );
    assert_eq!(back, m);
}

struct Sink {
    seen: mpsc::UnboundedSender<String>,
}

impl ks::KitchenSink for Sink {
    async fn echo(&self, _ctx: CallContext, value: Primitives) -> Result<Primitives, ServiceError> {
        Ok(value)
    }

    async fn touch(&self, ctx: CallContext) -> Result<(), ServiceError> {
        // Every kind of call back into the client.
        let user = KitchenSinkCallbacksClient::from_context(&ctx);
        let answer = user.prompt("name?", Some("anon".into())).await;
        let _ = self
            .seen
            .send(format!("prompt {:?}", answer.map_err(|e| e.to_string())));
        let err = user.prompt("fail", None).await.unwrap_err();
        let _ = self.seen.send(format!("prompt error {:?}", err.app()));
        user.tick(u64::MAX).await?;
        let fed: Vec<_> = user.feed().collect().await;
        let _ = self.seen.send(format!("feed {}", fed.len()));
        user.legacy().await?;
        Ok(())
    }

    async fn search(
        &self,
        _ctx: CallContext,
        query: String,
        limit: Option<u32>,
        cursor: Option<String>,
    ) -> Result<Vec<Containers>, RpcError<SinkError>> {
        if query.is_empty() {
            return Err(SinkError::Broken {
                part: "query".into(),
                code: limit,
            }
            .into());
        }
        let _ = self
            .seen
            .send(format!("search {query} {limit:?} {cursor:?}"));
        Ok(vec![])
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
        root: Tree,
    ) -> impl Stream<Item = Result<Node, RpcError<SinkError>>> + Send + 'static {
        let nodes = root.children.len() as i64;
        futures_util::stream::iter(vec![
            Ok(Node {
                value: nodes,
                next: Some(Box::new(Node {
                    value: i64::MIN,
                    next: None,
                })),
            }),
            Err(SinkError::Broken {
                part: root.label,
                code: None,
            }
            .into()),
        ])
    }

    async fn ping(&self, _ctx: CallContext, at: u64) {
        let _ = self.seen.send(format!("ping {at}"));
    }

    async fn old_echo(&self, _ctx: CallContext, value: Old) -> Result<Old, ServiceError> {
        Ok(value)
    }

    async fn eval(
        &self,
        _ctx: CallContext,
        expr: Expr,
        a: A,
        mode: Option<Mode>,
    ) -> Result<BTreeMap<String, Expr>, ServiceError> {
        let depth = if a.b.a.is_some() { 2 } else { 1 };
        let _ = self.seen.send(format!("eval depth {depth} {mode:?}"));
        Ok(BTreeMap::from([("expr".into(), expr)]))
    }
}

struct SinkUser {
    seen: mpsc::UnboundedSender<String>,
}

impl ks::KitchenSinkCallbacks for SinkUser {
    async fn prompt(
        &self,
        _ctx: CallContext,
        text: String,
        default_answer: Option<String>,
    ) -> Result<Option<String>, RpcError<SinkError>> {
        if text == "fail" {
            return Err(SinkError::Legacy.into());
        }
        Ok(default_answer)
    }

    async fn tick(&self, _ctx: CallContext, n: u64) {
        let _ = self.seen.send(format!("tick {n}"));
    }

    fn feed(
        self: Arc<Self>,
        _ctx: CallContext,
    ) -> impl Stream<Item = Result<Primitives, ServiceError>> + Send + 'static {
        futures_util::stream::iter(vec![Ok(primitives()), Ok(primitives())])
    }

    async fn legacy(&self, _ctx: CallContext) -> Result<(), ServiceError> {
        let _ = self.seen.send("legacy".into());
        Ok(())
    }
}

#[tokio::test]
async fn every_method_kind_in_both_directions() {
    for codec in [Codec::MsgPack, Codec::Json] {
        let (tx, mut seen) = mpsc::unbounded_channel();
        let server = serve(vec![
            KitchenSinkServer::new(Sink { seen: tx.clone() }).into_service(),
        ])
        .await;
        let user = KitchenSinkCallbacksServer::new(SinkUser { seen: tx }).into_service();
        let client = connect(&server, codec, vec![user]).await;
        let sink = KitchenSinkClient::from_caller(client.caller());

        assert_eq!(within(sink.echo(primitives())).await.unwrap(), primitives());
        // Non-finite floats survive both codecs (strings in JSON, PROTOCOL §5).
        let unbounded = Primitives {
            an_f32: f32::NEG_INFINITY,
            an_f64: f64::NAN,
            ..primitives()
        };
        let echoed = within(sink.echo(unbounded)).await.unwrap();
        assert_eq!(echoed.an_f32, f32::NEG_INFINITY, "{codec:?}");
        assert!(echoed.an_f64.is_nan(), "{codec:?}");
        let old = Old {
            legacy: Some("l".into()),
            older: None,
            current: "c".into(),
        };
        assert_eq!(within(sink.old_echo(old.clone())).await.unwrap(), old);

        // An optional parameter before a required one: sent as nil when absent, so `limit`
        // keeps its position.
        assert_eq!(
            within(sink.list(None, 2)).await.unwrap(),
            ["item0", "item1"]
        );
        assert_eq!(
            within(sink.list(Some("p".into()), 1)).await.unwrap(),
            ["p0"]
        );
        within(sink.search("q", None, None)).await.unwrap();
        assert_eq!(within(seen.recv()).await.unwrap(), "search q None None");
        within(sink.search("q", Some(3), Some("c".into())))
            .await
            .unwrap();
        assert_eq!(
            within(seen.recv()).await.unwrap(),
            r#"search q Some(3) Some("c")"#
        );
        let err = within(sink.search(String::new(), Some(4), None))
            .await
            .unwrap_err();
        assert_eq!(
            err.app(),
            Some(&SinkError::Broken {
                part: "query".into(),
                code: Some(4)
            })
        );

        let tree = Tree {
            label: "root".into(),
            children: vec![Tree {
                label: "c".into(),
                children: vec![],
                by_key: BTreeMap::new(),
            }],
            by_key: BTreeMap::new(),
        };
        let items: Vec<_> = within(sink.watch(tree).collect::<Vec<_>>()).await;
        assert_eq!(items.len(), 2);
        let first = items[0].as_ref().unwrap();
        assert_eq!(
            (first.value, first.next.as_ref().unwrap().value),
            (1, i64::MIN)
        );
        assert_eq!(
            items[1].as_ref().unwrap_err().app(),
            Some(&SinkError::Broken {
                part: "root".into(),
                code: None
            })
        );

        let expr = Expr::Add {
            left: Box::new(Expr::Literal { value: 1.0 }),
            right: Box::new(Expr::Sum {
                terms: vec![Expr::Negate {
                    inner: Box::new(Expr::Nothing),
                }],
            }),
        };
        let a = A {
            b: Box::new(B {
                a: Some(Box::new(A {
                    b: Box::new(B { a: None }),
                })),
            }),
        };
        let out = within(sink.eval(expr.clone(), a, Some(Mode::Careful { retries: 2 })))
            .await
            .unwrap();
        assert_eq!(out["expr"], expr);
        assert_eq!(
            within(seen.recv()).await.unwrap(),
            "eval depth 2 Some(Careful { retries: 2 })"
        );

        within(sink.ping(u64::MAX)).await.unwrap();
        assert_eq!(
            within(seen.recv()).await.unwrap(),
            format!("ping {}", u64::MAX)
        );

        within(sink.touch()).await.unwrap();
        assert_eq!(
            within(seen.recv()).await.unwrap(),
            r#"prompt Ok(Some("anon"))"#
        );
        assert_eq!(
            within(seen.recv()).await.unwrap(),
            "prompt error Some(Legacy)"
        );
        assert_eq!(
            within(seen.recv()).await.unwrap(),
            format!("tick {}", u64::MAX)
        );
        assert_eq!(within(seen.recv()).await.unwrap(), "feed 2");
        assert_eq!(within(seen.recv()).await.unwrap(), "legacy");

        within(client.close(1000, "done")).await.unwrap();
        within(server.close()).await;
    }
}

struct Keywords;

impl kw::Fn for Keywords {
    async fn r#type(
        &self,
        _ctx: CallContext,
        self_: kw::Type,
        default: Option<kw::Match>,
    ) -> Result<kw::Match, RpcError<kw::Async>> {
        match default {
            Some(m) => Ok(m),
            None => Err(kw::Async::Yield {
                r#type: self_.r#type,
            }
            .into()),
        }
    }

    fn class(
        self: Arc<Self>,
        _ctx: CallContext,
        _new: String,
        _delete: Option<String>,
    ) -> impl Stream<Item = Result<kw::Type, ServiceError>> + Send + 'static {
        futures_util::stream::empty()
    }

    async fn function(&self, _ctx: CallContext, _yield: u8) {}

    async fn r#await(&self, _ctx: CallContext, _async: bool) -> Result<(), ServiceError> {
        Ok(())
    }

    async fn self_(&self, _ctx: CallContext) -> Result<(), ServiceError> {
        Ok(())
    }

    async fn r#match(&self, _ctx: CallContext, r#fn: i32) -> Result<i32, ServiceError> {
        Ok(r#fn + 1)
    }

    async fn client(&self, _ctx: CallContext, _reserved: bool) -> Result<(), ServiceError> {
        Ok(())
    }

    async fn reserved(&self, _ctx: CallContext) {}
}

#[tokio::test]
async fn keyword_names_work_on_the_wire() {
    let server = serve(vec![kw::FnServer::new(Keywords).into_service()]).await;
    let client = connect(&server, Codec::Json, vec![]).await;
    let f = kw::FnClient::from_caller(client.caller());
    assert_eq!(within(f.r#match(41)).await.unwrap(), 42);
    within(f.self_()).await.unwrap();
    within(f.r#await(true)).await.unwrap();
    let value: kw::Type = Codec::Json
        .decode(
            br#"{"type":"t","self":1,"fn":true,"match":2,"function":0.5,"default":"d","delete":false,
                "new":"-1","yield":3,"async":true,"await":false,"stream":"","rpc":"","notify":"",
                "client":"","throws":"","list":"","map":"","super":-1,"crate":-2,"mod":"5","impl":"AQ==",
                "trait":1.0,"loop":true,"where":"","let":"","const":"","static":"","var":"","in":"",
                "of":"","instanceof":"","typeof":"","void":"","null":"","undefined":"","this":"",
                "enum":"","struct":"","interface":"","package":"","import":"","export":"","extends":"",
                "implements":"","return":"","break":"","continue":"","if":"","else":"","for":"",
                "while":"","do":"","switch":"","case":"","try":"","catch":"","finally":"","throw":"",
                "unsafe":"","use":"","pub":"","ref":"","mut":"","move":"","dyn":"","abstract":"",
                "macro":"","Result":"","Option":"","String":"","Vec":"","Box":"","Promise":"","Object":""}"#,
            64,
        )
        .expect("decodes with keyword names");
    assert_eq!(
        (value.new, value.r#impl.clone(), value.crate_),
        (-1, Bytes::from_static(&[1]), -2)
    );
    // The schema's own `RpcError` and the runtime's, one package next to the other.
    let own = kw::RpcError { code: 7 };
    let err: RpcError<kw::Async> = within(f.r#type(value.clone(), None)).await.unwrap_err();
    assert_eq!(err.app(), Some(&kw::Async::Yield { r#type: "t".into() }));
    assert_eq!(own.code, 7);
    // Displayed as a sentence, not as its Debug form.
    assert_eq!(err.to_string(), r#"yield (type: "t")"#);
    let m = within(f.r#type(value, Some(kw::Match::Self_)))
        .await
        .unwrap();
    assert_eq!(m, kw::Match::Self_);
    let none: Vec<_> = within(f.class("n", None).collect::<Vec<_>>()).await;
    assert!(none.is_empty());
    assert!(matches!(
        within(client.call_value("keywords.fn/nope", vec![])).await,
        Err(CallError::UnknownMethod(_))
    ));
    within(server.close()).await;
}
