//! The relay demo (`cargo run -p wsp-examples --bin relay-demo`): a host that listens on no
//! port serves math.Math through a relay, and a caller that knows only the relay's URL and the
//! host's public key calls it with the generated typed client.

use std::error::Error;
use std::time::Duration;

use futures_util::StreamExt;
use wsp_examples::Calculator;
use wsp_examples::math::{MathClient, MathServer};
use wsp_relay::Relay;
use wsp_runtime::relay::{Identity, RelayOptions};
use wsp_runtime::{Client, Server};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    println!("wsp relay demo: a host without a listening socket serves through a relay\n");

    let relay = Relay::builder().bind("127.0.0.1:0").await?;
    println!("1. relay listening on {}", relay.url());

    let identity = Identity::generate();
    let host = Server::builder()
        .service(MathServer::new(Calculator).into_service())
        .bind_relay(RelayOptions::new(relay.url(), identity))
        .await?;
    let mut spares = host.watch_spares();
    spares.wait_for(|n| *n == 2).await?;
    println!(
        "2. host registered 2 spare connections under its key\n   {}",
        host.public_key()
    );

    let caller = Client::via_relay(relay.url(), host.public_key()).build();
    caller.connect().await?;
    let math = MathClient::from_caller(caller.caller()).with_timeout(Duration::from_secs(5));
    let sum = math.add(vec![1, 2, 3]).await?;
    println!("3. typed call through the relay   math.add([1, 2, 3]) = {sum}");
    let items: Vec<u32> = math.count(1, 3).map(|r| r.unwrap_or(0)).collect().await;
    println!("4. stream through the relay       math.count(1, 3) yielded {items:?}");

    spares.wait_for(|n| *n == 2).await?;
    let stats = relay.stats();
    println!(
        "5. relay statistics               keys {} · idle spares {} · hand-overs {} · frames relayed {}",
        stats.keys_registered, stats.spares_idle, stats.handovers, stats.frames_relayed
    );

    let info = caller.close(1000, "demo finished").await?;
    println!("\ncaller closed with {} \"{}\"", info.code, info.reason);
    host.close().await;
    relay.close().await;
    Ok(())
}
