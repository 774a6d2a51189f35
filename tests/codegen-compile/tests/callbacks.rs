//! Calls in both directions through generated code: the server calls methods of the
//! `client { }` block (rpc, notify, stream) from inside its handlers, with per-connection data
//! from the accept hook (`schemas/geometry.wsp`, `schemas/chat.wsp`).

mod common;

use std::sync::Arc;

use common::{connect, serve, within};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use wsp_codegen_compile_tests::chat::{
    self, ChatBroadcast, ChatCallbacksClient, ChatCallbacksServer, ChatClient, ChatError,
    ChatServer, Message,
};
use wsp_codegen_compile_tests::common::{CommonError, Timestamp};
use wsp_codegen_compile_tests::geometry::{
    self, GeometryCallbacksClient, GeometryCallbacksServer, GeometryClient, GeometryError,
    GeometryServer, Measurement, Point, Shape,
};
use wsp_runtime::codegen::Stream;
use wsp_runtime::{CallContext, Codec, Items, RpcError, Server, ServiceError};

struct GeometryImpl;

impl geometry::Geometry for GeometryImpl {
    async fn area(&self, ctx: CallContext, shape: Shape) -> Result<f64, RpcError<GeometryError>> {
        let callbacks = GeometryCallbacksClient::from_context(&ctx);
        match shape {
            Shape::Circle { radius, .. } => {
                callbacks
                    .progress(50.0)
                    .await
                    .map_err(|e| GeometryError::Degenerate {
                        reason: e.to_string(),
                    })?;
                let ok = callbacks
                    .confirm(format!("radius {radius}?"))
                    .await
                    .map_err(|e| GeometryError::Degenerate {
                        reason: e.to_string(),
                    })?;
                if ok {
                    Ok(3.0 * radius * radius)
                } else {
                    Err(GeometryError::TooLarge.into())
                }
            }
            Shape::Polygon { points } if points.len() < 3 => Err(GeometryError::Degenerate {
                reason: format!("{} points", points.len()),
            }
            .into()),
            _ => Ok(0.0),
        }
    }

    async fn measure(
        &self,
        _ctx: CallContext,
        shape: Shape,
    ) -> Result<Measurement, RpcError<CommonError>> {
        match shape {
            Shape::Empty => Err(CommonError::NotFound {
                what: "shape".into(),
            }
            .into()),
            _ => Ok(Measurement {
                area: 1.5,
                at: Timestamp { millis: u64::MAX },
            }),
        }
    }

    async fn log(&self, _ctx: CallContext, _line: String) {}

    fn walk(
        self: Arc<Self>,
        _ctx: CallContext,
        _shape: Shape,
        steps: u32,
    ) -> impl Stream<Item = Result<Point, ServiceError>> + Send + 'static {
        futures_util::stream::iter((0..steps).map(|i| {
            Ok(Point {
                x: f64::from(i),
                y: 0.0,
                label: Some(i.to_string()),
            })
        }))
    }
}

struct GeometryUser {
    progress: mpsc::UnboundedSender<f32>,
}

impl geometry::GeometryCallbacks for GeometryUser {
    async fn confirm(&self, _ctx: CallContext, question: String) -> Result<bool, ServiceError> {
        Ok(question == "radius 2?")
    }

    async fn progress(&self, _ctx: CallContext, percent: f32) {
        let _ = self.progress.send(percent);
    }
}

#[tokio::test]
async fn geometry_server_calls_back_the_client() {
    for codec in [Codec::MsgPack, Codec::Json] {
        let server = serve(vec![GeometryServer::new(GeometryImpl).into_service()]).await;
        let (tx, mut progress) = mpsc::unbounded_channel();
        let user = GeometryCallbacksServer::new(GeometryUser { progress: tx });
        let client = connect(&server, codec, vec![user.into_service()]).await;
        let geo = GeometryClient::from_caller(client.caller());

        let circle = |radius| Shape::Circle {
            center: Point {
                x: 0.0,
                y: 0.0,
                label: None,
            },
            radius,
        };
        assert_eq!(within(geo.area(circle(2.0))).await.unwrap(), 12.0);
        assert_eq!(within(progress.recv()).await, Some(50.0));
        let err = within(geo.area(circle(3.0))).await.unwrap_err();
        assert_eq!(err.app(), Some(&GeometryError::TooLarge));
        let err = within(geo.area(Shape::Polygon { points: vec![] }))
            .await
            .unwrap_err();
        assert_eq!(
            err.app(),
            Some(&GeometryError::Degenerate {
                reason: "0 points".into()
            })
        );

        let m = within(geo.measure(Shape::Empty)).await;
        assert_eq!(
            m.unwrap_err().app(),
            Some(&CommonError::NotFound {
                what: "shape".into()
            })
        );
        let m = within(geo.measure(circle(1.0))).await.unwrap();
        assert_eq!(m.at.millis, u64::MAX);

        let points: Vec<Point> =
            within(geo.walk(Shape::Empty, 3).map(Result::unwrap).collect()).await;
        assert_eq!(points.len(), 3);
        assert_eq!(points[2].label.as_deref(), Some("2"));
        within(geo.log("x")).await.unwrap();

        within(client.close(1000, "done")).await.unwrap();
        within(server.close()).await;
    }
}

/// Per-connection data attached by the accept hook.
struct Nick(String);

struct ChatImpl {
    seen: mpsc::UnboundedSender<String>,
}

impl chat::Chat for ChatImpl {
    async fn join(
        &self,
        ctx: CallContext,
        name: String,
    ) -> Result<Vec<Message>, RpcError<ChatError>> {
        if name == "taken" {
            return Err(ChatError::NameTaken { name }.into());
        }
        let nick = ctx.data::<Nick>().map(|n| n.0.clone()).unwrap_or_default();
        let user = ChatCallbacksClient::from_context(&ctx);
        let hello = Message {
            author: nick.clone(),
            text: format!("{name} joined"),
            sent_at: u64::MAX,
        };
        user.broadcast(hello.clone())
            .await
            .map_err(|_| ChatError::RoomFull)?;
        let answer = user
            .ask("colour?", vec!["red".into(), "blue".into()])
            .await
            .map_err(|_| ChatError::RoomFull)?;
        let typing: Vec<bool> = user
            .typing("lobby")
            .map(|item| item.expect("typing item"))
            .collect()
            .await;
        // A client stream and a bidirectional stream, server to client.
        let draft = futures_util::stream::iter(["a", " ", "b"].map(String::from));
        let kept = user.review(draft).await.map_err(|_| ChatError::RoomFull)?;
        let lines = futures_util::stream::iter(["hi", "there"].map(String::from));
        let shouted: Vec<String> = user
            .shout(lines)
            .map(|item| item.expect("shout item"))
            .collect()
            .await;
        let _ = self
            .seen
            .send(format!("{answer} {typing:?} {kept} {shouted:?}"));
        Ok(vec![hello])
    }

    async fn post(&self, _ctx: CallContext, text: String) -> Result<(), ServiceError> {
        let _ = self.seen.send(text);
        Ok(())
    }

    fn follow(
        self: Arc<Self>,
        _ctx: CallContext,
    ) -> impl Stream<Item = Result<Message, ServiceError>> + Send + 'static {
        futures_util::stream::iter(vec![
            Ok(Message {
                author: "a".into(),
                text: "1".into(),
                sent_at: 1,
            }),
            Err(ServiceError::unavailable("room closed")),
        ])
    }

    async fn leave(&self, _ctx: CallContext) {
        let _ = self.seen.send("left".into());
    }
}

struct ChatUser {
    broadcasts: mpsc::UnboundedSender<Message>,
}

impl chat::ChatCallbacks for ChatUser {
    async fn broadcast(&self, _ctx: CallContext, message: Message) {
        let _ = self.broadcasts.send(message);
    }

    async fn ask(
        &self,
        _ctx: CallContext,
        _question: String,
        choices: Vec<String>,
    ) -> Result<String, ServiceError> {
        Ok(choices.last().cloned().unwrap_or_default())
    }

    fn typing(
        self: Arc<Self>,
        _ctx: CallContext,
        room: String,
    ) -> impl Stream<Item = Result<bool, ServiceError>> + Send + 'static {
        futures_util::stream::iter(vec![Ok(room == "lobby"), Ok(false), Ok(true)])
    }

    async fn review(
        &self,
        _ctx: CallContext,
        mut draft: Items<String>,
    ) -> Result<u32, ServiceError> {
        let mut kept = 0;
        while let Some(line) = draft.next().await {
            if !line?.trim().is_empty() {
                kept += 1;
            }
        }
        Ok(kept)
    }

    fn shout(
        self: Arc<Self>,
        _ctx: CallContext,
        lines: Items<String>,
    ) -> impl Stream<Item = Result<String, ServiceError>> + Send + 'static {
        lines.map(|line| Ok(line?.to_uppercase()))
    }
}

#[tokio::test]
async fn chat_rpc_notify_and_stream_in_both_directions() {
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let server = within(
        Server::builder()
            .service(ChatServer::new(ChatImpl { seen: seen_tx }).into_service())
            .on_accept(|_req| Ok(Some(Arc::new(Nick("alice".into())) as _)))
            .bind("127.0.0.1:0"),
    )
    .await
    .unwrap();
    let (tx, mut broadcasts) = mpsc::unbounded_channel();
    let user = ChatCallbacksServer::new(ChatUser { broadcasts: tx }).into_service();
    let client = connect(&server, Codec::MsgPack, vec![user]).await;
    let chat = ChatClient::from_caller(client.caller());

    let history = within(chat.join("bob")).await.unwrap();
    assert_eq!(history[0].author, "alice");
    assert_eq!(history[0].sent_at, u64::MAX);
    assert_eq!(within(broadcasts.recv()).await.unwrap().text, "bob joined");
    assert_eq!(
        within(seen.recv()).await.unwrap(),
        "blue [true, false, true] 2 [\"HI\", \"THERE\"]"
    );

    let err = within(chat.join("taken")).await.unwrap_err();
    assert_eq!(
        err.app(),
        Some(&ChatError::NameTaken {
            name: "taken".into()
        })
    );

    within(chat.post("hi")).await.unwrap();
    assert_eq!(within(seen.recv()).await.unwrap(), "hi");
    within(chat.leave()).await.unwrap();
    assert_eq!(within(seen.recv()).await.unwrap(), "left");

    // Outside any handler, the server calls its clients through their connections.
    for peer in server.connections() {
        let user = ChatCallbacksClient::from_caller(peer.caller());
        let news = Message {
            author: "server".into(),
            text: "news".into(),
            sent_at: 0,
        };
        within(user.broadcast(news)).await.unwrap();
        let answer = within(user.ask("ok?", vec!["yes".into()])).await.unwrap();
        assert_eq!(answer, "yes");
    }
    assert_eq!(within(broadcasts.recv()).await.unwrap().text, "news");

    let items: Vec<_> = within(chat.follow().collect::<Vec<_>>()).await;
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].as_ref().unwrap().text, "1");
    assert!(
        matches!(items[1], Err(wsp_runtime::CallError::Unavailable(_))),
        "{items:?}"
    );

    within(client.close(1000, "done")).await.unwrap();
    within(server.close()).await;
}

#[tokio::test]
async fn typed_broadcast_reaches_every_client_and_a_typed_client_connects_in_one_line() {
    let (seen_tx, _seen) = mpsc::unbounded_channel();
    let server = serve(vec![
        ChatServer::new(ChatImpl { seen: seen_tx }).into_service(),
    ])
    .await;
    // Two clients, each serving the client block and collecting what the server broadcasts.
    let mut clients = Vec::new();
    let mut inboxes = Vec::new();
    for _ in 0..2 {
        let (tx, rx) = mpsc::unbounded_channel();
        let user = ChatCallbacksServer::new(ChatUser { broadcasts: tx }).into_service();
        clients.push(connect(&server, Codec::MsgPack, vec![user]).await);
        inboxes.push(rx);
    }
    let message = Message {
        author: "server".into(),
        text: "closing at noon".into(),
        sent_at: 12,
    };
    let report = ChatBroadcast::new(&server)
        .broadcast(message.clone())
        .expect("encodes");
    assert_eq!((report.queued, report.dropped), (2, 0));
    for inbox in &mut inboxes {
        assert_eq!(within(inbox.recv()).await, Some(message.clone()));
    }

    // The one-line typed connect, and its client closed through `client()`.
    let chat = within(ChatClient::connect(server.url()))
        .await
        .expect("connects");
    within(chat.post("hello")).await.unwrap();
    let client = chat.client().expect("made by connect");
    within(client.close(1000, "done")).await.unwrap();
    assert!(
        ChatClient::from_caller(clients[0].caller())
            .client()
            .is_none()
    );
    for c in clients {
        within(c.close(1000, "done")).await.unwrap();
    }
    within(server.close()).await;
}
