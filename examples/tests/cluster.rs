//! Two chat servers as one cluster through a real NATS server (`ServerBuilder::cluster`,
//! PROTOCOL.md §13): the generated broadcast reaches the clients of both nodes, a call or
//! notification reaches a client at the other node by its address or by an application key,
//! and an unknown client fails at once.

// The NATS server the relay cluster tests start, shared rather than copied.
#[path = "../../wsp-relay/tests/common/nats.rs"]
#[allow(dead_code, unreachable_pub)]
mod nats;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use nats::Nats;
use tokio::sync::mpsc;
use wsp_examples::Room;
use wsp_examples::chat::{ChatBroadcast, ChatCallbacksClient, ChatServer, Message};
use wsp_runtime::{
    CallError, Client, ClientAddress, FnService, Peer, ReconnectPolicy, Server, Value,
};

const LIMIT: Duration = Duration::from_secs(20);

async fn within<F: std::future::Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(LIMIT, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: no outcome within {LIMIT:?}"))
}

async fn node(nats: &Nats) -> Server {
    Server::builder()
        .service(ChatServer::from_arc(Arc::new(Room::default())).into_service())
        .cluster(nats.url())
        .bind("127.0.0.1:0")
        .await
        .expect("a server node joins")
}

/// A client of `server` whose `chat.Chat.client` service answers `ask` with `answer` and
/// reports each broadcast's text.
async fn client(
    server: &Server,
    answer: &'static str,
) -> (Client, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let callbacks = FnService::new("chat.Chat.client")
        .notify("broadcast", move |_, args| {
            // The message is a struct: its text is the second field.
            let text = match &args[0] {
                Value::Array(fields) => fields[1].as_str().unwrap_or("").to_owned(),
                Value::Map(entries) => entries
                    .iter()
                    .find(|(k, _)| k.as_str() == Some("text"))
                    .and_then(|(_, v)| v.as_str())
                    .unwrap_or("")
                    .to_owned(),
                other => format!("{other}"),
            };
            let _ = tx.send(text);
        })
        .unary("ask", move |_, _| async move { Ok(Value::from(answer)) });
    let client = Client::builder(server.url())
        .service(callbacks.into_service())
        .reconnect(ReconnectPolicy::disabled())
        .build();
    within("connect", client.connect()).await.unwrap();
    (client, rx)
}

/// The server's end of its only connection, once it has it.
async fn only_peer(server: &Server) -> Peer {
    within("the server's connection", async {
        loop {
            if let Some(p) = server.connections().pop() {
                return p;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

fn message(text: &str) -> Message {
    Message {
        author: "server".into(),
        text: text.into(),
        sent_at: 0,
    }
}

#[tokio::test]
async fn a_broadcast_reaches_the_clients_of_every_node_once() {
    let nats = Nats::start().await;
    let (s1, s2) = (node(&nats).await, node(&nats).await);
    let (_c1, mut at1) = client(&s1, "one").await;
    let (_c2, mut at2) = client(&s2, "two").await;
    only_peer(&s1).await;
    only_peer(&s2).await;

    // The generated broadcaster, unchanged: node 1's clients get it directly, node 2's
    // through NATS.
    let report = ChatBroadcast::new(&s1)
        .broadcast(message("from one"))
        .unwrap();
    assert_eq!(report.queued, 1, "{report:?}");
    ChatBroadcast::new(&s2)
        .broadcast(message("from two"))
        .unwrap();
    let mut got1 = vec![within("1st at 1", at1.recv()).await.unwrap()];
    got1.push(within("2nd at 1", at1.recv()).await.unwrap());
    let mut got2 = vec![within("1st at 2", at2.recv()).await.unwrap()];
    got2.push(within("2nd at 2", at2.recv()).await.unwrap());
    for got in [&mut got1, &mut got2] {
        got.sort();
        assert_eq!(got, &["from one", "from two"]);
    }
    // Nothing twice: a node does not deliver its own broadcast again when NATS echoes it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(at1.try_recv().is_err() && at2.try_recv().is_err());
    s1.close().await;
    s2.close().await;
}

#[tokio::test]
async fn a_client_at_the_other_node_is_called_by_address_and_by_key() {
    let nats = Nats::start().await;
    let (s1, s2) = (node(&nats).await, node(&nats).await);
    let (_c2, mut at2) = client(&s2, "yes from two").await;
    let peer = only_peer(&s2).await;
    let cluster2 = s2.cluster().expect("a cluster member");
    let address = cluster2.address(&peer);
    // An address survives being written down and read back (e.g. kept in a database).
    let address: ClientAddress = address.to_string().parse().unwrap();

    let cluster1 = s1.cluster().expect("a cluster member");
    let by_address = ChatCallbacksClient::from_caller(cluster1.caller(address));
    let answer = within("ask by address", by_address.ask("ok?", vec!["yes".into()]))
        .await
        .unwrap();
    assert_eq!(answer, "yes from two");

    within("bind", cluster2.bind_key(&peer, "user-2"))
        .await
        .unwrap();
    let by_key = ChatCallbacksClient::from_caller(cluster1.caller_for_key("user-2"));
    let answer = within("ask by key", by_key.ask("ok?", vec![]))
        .await
        .unwrap();
    assert_eq!(answer, "yes from two");
    within("notify by key", by_key.broadcast(message("just for you")))
        .await
        .unwrap();
    assert_eq!(
        within("the notification", at2.recv()).await.unwrap(),
        "just for you"
    );

    // Streams stay on their node.
    let mut typing = by_key.typing("lobby");
    match within("a stream by key", typing.next()).await {
        Some(Err(CallError::Unavailable(_))) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }
    s1.close().await;
    s2.close().await;
}

#[tokio::test]
async fn an_unknown_client_fails_at_once() {
    let nats = Nats::start().await;
    let (s1, s2) = (node(&nats).await, node(&nats).await);
    let (c2, _at2) = client(&s2, "two").await;
    let peer = only_peer(&s2).await;
    let address = s2.cluster().unwrap().address(&peer);
    let cluster1 = s1.cluster().unwrap();
    let gone = [
        // A connection id the other node never had.
        ClientAddress {
            connection: address.connection + 1000,
            ..address
        },
        // A node that does not exist.
        ClientAddress {
            node: address.node ^ 1,
            ..address
        },
    ];
    for to in gone {
        let started = Instant::now();
        let r = ChatCallbacksClient::from_caller(cluster1.caller(to))
            .ask("anyone?", vec![])
            .await;
        assert!(matches!(r, Err(CallError::NotConnected)), "{to}: {r:?}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{to}: after {:?}",
            started.elapsed()
        );
    }
    let started = Instant::now();
    let r = ChatCallbacksClient::from_caller(cluster1.caller_for_key("nobody"))
        .ask("anyone?", vec![])
        .await;
    assert!(matches!(r, Err(CallError::NotConnected)), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(2));

    // A key is released when its connection closes.
    let cluster2 = s2.cluster().unwrap();
    cluster2.bind_key(&peer, "user-2").await.unwrap();
    let by_key = ChatCallbacksClient::from_caller(cluster1.caller_for_key("user-2"));
    assert_eq!(within("ask", by_key.ask("?", vec![])).await.unwrap(), "two");
    c2.close(1000, "bye").await.unwrap();
    let r: Result<(), CallError> = within("after the close", async {
        loop {
            match by_key.ask("?", vec![]).await {
                Err(CallError::NotConnected) => return Ok(()),
                // Answered by the closing connection, or lost with it: ask again.
                Ok(_) | Err(CallError::Disconnected) => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(e) => return Err(e),
            }
        }
    })
    .await;
    assert!(r.is_ok(), "{r:?}");
    s1.close().await;
    s2.close().await;
}
