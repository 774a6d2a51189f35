//! The math example: a client calls `add(1, 2, 3)` on a server and gets `6`.
//!
//! `math` runs both in one process; `math server ADDR` and `math client URL` run them apart.

use std::error::Error;
use std::time::Duration;

use wsp_examples::Calculator;
use wsp_examples::math::{MathClient, MathServer};
use wsp_runtime::{Client, Server};

async fn serve(addr: &str) -> std::io::Result<Server> {
    Server::builder()
        .service(MathServer::new(Calculator).into_service())
        .bind(addr)
        .await
}

async fn call(url: String) -> Result<(), Box<dyn Error>> {
    let client = Client::builder(url).build();
    client.connect().await?;
    let math = MathClient::from_caller(client.caller()).with_timeout(Duration::from_secs(5));
    let sum = math.add(vec![1, 2, 3]).await?;
    println!("add(1, 2, 3) = {sum}");
    client.close(1000, "bye").await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["server", addr] => {
            let server = serve(addr).await?;
            println!("serving math.Math on {}", server.url());
            tokio::signal::ctrl_c().await?;
            server.close().await;
        }
        ["client", url] => call((*url).to_owned()).await?,
        [] => {
            let server = serve("127.0.0.1:0").await?;
            call(server.url()).await?;
            server.close().await;
        }
        _ => return Err("usage: math [server ADDR | client URL]".into()),
    }
    Ok(())
}
