//! The chat example: the server calls back into connected clients.
//!
//! Two clients join a room (the server asks each a question first), one follows the room as a
//! stream, a post is broadcast to every member, and a client that refuses the rules is turned
//! away with a typed error.

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use wsp_examples::chat::{ChatCallbacksServer, ChatClient, ChatServer};
use wsp_examples::{Room, Terminal};
use wsp_runtime::{Client, Server};

async fn join(
    url: String,
    name: &str,
    answer: &str,
) -> Result<(Client, ChatClient), Box<dyn Error>> {
    let terminal = Terminal {
        name: name.into(),
        answer: answer.into(),
    };
    let client = Client::builder(url)
        .service(ChatCallbacksServer::new(terminal).into_service())
        .build();
    client.connect().await?;
    let chat = ChatClient::from_caller(client.caller()).with_timeout(Duration::from_secs(5));
    Ok((client, chat))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let server = Server::builder()
        .service(ChatServer::from_arc(Arc::new(Room::default())).into_service())
        .bind("127.0.0.1:0")
        .await?;

    let (ada_conn, ada) = join(server.url(), "ada", "yes").await?;
    let (bob_conn, bob) = join(server.url(), "bob", "yes").await?;
    ada.join("ada").await?;
    bob.join("bob").await?;
    println!("ada and bob joined");

    ada.post("hi bob").await?;
    // The room's stream replays what was posted so far, then goes on live.
    let mut feed = bob.follow();
    if let Some(message) = feed.next().await {
        let message = message?;
        println!("bob's stream: <{}> {}", message.author, message.text);
    }

    let (eve_conn, eve) = join(server.url(), "eve", "no").await?;
    match eve.join("eve").await {
        Err(e) => println!("eve refused the rules: {e}"),
        Ok(_) => return Err("eve should have been turned away".into()),
    }
    // Let the broadcast notifications reach the clients before closing.
    tokio::time::sleep(Duration::from_millis(100)).await;

    for conn in [ada_conn, bob_conn, eve_conn] {
        conn.close(1000, "bye").await?;
    }
    server.close().await;
    Ok(())
}
