//! The jsonrpsee 0.26 server the benchmarks compare with: `add(a, b)` on 127.0.0.1, port 0.

use std::net::SocketAddr;

use jsonrpsee_server::{RpcModule, ServerConfig, ServerHandle};

/// Starts the server, accepting up to `max_connections` (jsonrpsee's default is 100).
pub(crate) async fn serve(max_connections: u32) -> (SocketAddr, ServerHandle) {
    let config = ServerConfig::builder()
        .max_connections(max_connections)
        .build();
    let server = jsonrpsee_server::Server::builder()
        .set_config(config)
        .build("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let mut module = RpcModule::new(());
    module
        .register_method("add", |params, _, _| {
            let (a, b): (i32, i32) = params.parse()?;
            Ok::<i32, jsonrpsee_server::types::ErrorObjectOwned>(a.wrapping_add(b))
        })
        .unwrap();
    (addr, server.start(module))
}
