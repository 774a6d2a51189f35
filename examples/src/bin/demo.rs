//! The README demo: a server and a client in one process, talking through the code generated
//! from `schemas/math.wsp` and `schemas/chat.wsp`.
//!
//! Shows a typed call, a typed error, a server-to-client call, a stream, a reconnect after the
//! server restarts, and the statistics at the end.

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use wsp_examples::chat::{ChatCallbacksServer, ChatClient, ChatServer};
use wsp_examples::math::{MathClient, MathError, MathServer};
use wsp_examples::{Calculator, Room, Terminal};
use wsp_runtime::RpcError;
use wsp_runtime::{Client, ConnectionState, Server};

async fn start_server(addr: &str, room: Arc<Room>) -> std::io::Result<Server> {
    Server::builder()
        .service(MathServer::new(Calculator).into_service())
        .service(ChatServer::from_arc(room).into_service())
        .bind(addr)
        .await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    println!("wsp demo: typed Rust generated from schemas/math.wsp and schemas/chat.wsp\n");

    let room = Arc::new(Room::default());
    // Step 6 restarts the server on the same port, which must still be free then. Outgoing
    // connections of other programs take ephemeral ports on 127.0.0.1; on an address of its own
    // in 127.0.0.0/8 (Linux routes all of it to loopback) none of them can take ours meanwhile.
    // Where only 127.0.0.1 is a loopback address, that is used.
    let server = match start_server("127.0.47.1:0", Arc::clone(&room)).await {
        Ok(server) => server,
        Err(_) => start_server("127.0.0.1:0", Arc::clone(&room)).await?,
    };
    let addr = server.local_addr();
    println!(
        "1. server listening on {} (math.Math, chat.Chat)",
        server.url()
    );

    // The client serves the `client { }` half of chat.Chat, so the server can call it.
    let terminal = Terminal {
        name: "ada".into(),
        answer: "yes".into(),
    };
    let client = Client::builder(server.url())
        .service(ChatCallbacksServer::new(terminal).into_service())
        .build();
    client.connect().await?;
    let math = MathClient::from_caller(client.caller()).with_timeout(Duration::from_secs(5));
    let chat = ChatClient::from_caller(client.caller()).with_timeout(Duration::from_secs(5));

    let sum = math.add(vec![1, 2, 3]).await?;
    println!("2. typed call        math.add([1, 2, 3]) = {sum}");

    match math.divide(1.0, 0.0).await {
        Err(RpcError::App(MathError::DivisionByZero)) => {
            println!(
                "3. typed error       math.divide(1, 0) failed with MathError::DivisionByZero"
            );
        }
        other => return Err(format!("expected DivisionByZero, got {other:?}").into()),
    }

    println!("4. server -> client  chat.join(\"ada\"): the server asks the client first");
    let history = chat.join("ada").await?;
    println!("   joined; {} earlier messages", history.len());
    chat.post("hello, room").await?;

    let mut items = math.count(1, 5);
    let mut seen = Vec::new();
    while let Some(item) = items.next().await {
        seen.push(item?);
    }
    println!("5. stream            math.count(1, 5) yielded {seen:?}");

    let mut state = client.watch_state();
    server.close().await;
    state.wait_for(|s| *s != ConnectionState::Connected).await?;
    println!(
        "6. reconnect         server stopped; client state: {:?}",
        client.state()
    );
    // The port may be briefly taken: while it was free, the client's reconnect attempts dial
    // it from ephemeral ports, and Linux can hand out that very port (a self-connect).
    let mut tries = 0;
    let server = loop {
        match start_server(&addr.to_string(), room.clone()).await {
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && tries < 50 => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            other => break other?,
        }
    };
    println!("                     server restarted on {addr}");
    // Calls made while the link is down wait for the reconnect, up to their deadline.
    let sum = math.add(vec![40, 2]).await?;
    println!("                     math.add([40, 2]) = {sum} after the client reconnected");

    let stats = client.stats();
    println!("7. client statistics");
    println!(
        "     calls sent {:>6}   replies received {:>6}",
        stats.calls_sent, stats.replies_received
    );
    println!(
        "     bytes sent {:>6}   bytes received   {:>6}",
        stats.bytes_sent, stats.bytes_received
    );
    println!(
        "     frames sent {:>5}   frames received  {:>6}",
        stats.frames_sent, stats.frames_received
    );
    println!(
        "     errors received {:>2}   reconnects       {:>6}",
        stats.errors_received, stats.reconnects
    );

    let info = client.close(1000, "demo finished").await?;
    println!("\nclient closed with {} \"{}\"", info.code, info.reason);
    server.close().await;
    Ok(())
}
