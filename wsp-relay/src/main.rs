//! `wsp-relay`: runs a relay until Ctrl-C (PROTOCOL.md §11).

use std::time::Duration;

use clap::Parser;

/// A wsp relay: peers that cannot accept connections serve services through it.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8787")]
    listen: String,
    /// A name peers dial the relay by (host, or host:port when the port is not the default);
    /// repeatable. Needed unless the relay listens on a loopback address.
    #[arg(long)]
    name: Vec<String>,
    /// Most connections at once.
    #[arg(long, default_value_t = 10_000)]
    max_connections: usize,
    /// Most keys registered at once.
    #[arg(long, default_value_t = 10_000)]
    max_keys: usize,
    /// Most idle spares per key.
    #[arg(long, default_value_t = 8)]
    max_spares_per_key: usize,
    /// Largest relayed message, in bytes.
    #[arg(long, default_value_t = 16 << 20)]
    max_message_size: usize,
    /// Seconds between pings of idle spares and quiet routes.
    #[arg(long, default_value_t = 20.0)]
    ping_interval: f64,
    /// An origin whose web pages may connect (e.g. https://app.example.com); repeatable.
    /// Without any, pages of every origin may (the peers prove their keys).
    #[arg(long)]
    allow_origin: Vec<String>,
    /// A NATS server (nats://host:port; comma-separated for a NATS cluster): run as one node
    /// of a relay cluster whose nodes share their routing through it.
    #[arg(long)]
    nats: Option<String>,
    /// PEM certificate chain (the relay's certificate first): serve wss:// (with --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let mut builder = wsp_relay::Relay::builder()
        .max_connections(args.max_connections)
        .max_keys(args.max_keys)
        .max_spares_per_key(args.max_spares_per_key)
        .max_message_size(args.max_message_size)
        .ping_interval(Duration::from_secs_f64(args.ping_interval));
    for name in args.name {
        builder = builder.name(name);
    }
    if !args.allow_origin.is_empty() {
        builder = builder.origins(wsp_runtime::OriginPolicy::allow(args.allow_origin));
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let tls = wsp_runtime::tls::ServerTls::from_pem_files(cert, key)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        builder = builder.tls(tls);
    }
    if let Some(url) = args.nats {
        builder = builder.cluster(url);
    }
    let relay = builder.bind(&args.listen).await?;
    println!("wsp-relay listening on {}", relay.url());
    tokio::signal::ctrl_c().await?;
    relay.close().await;
    Ok(())
}
