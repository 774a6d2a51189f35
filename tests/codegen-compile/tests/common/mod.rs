//! Helpers shared by the end-to-end tests: a server on 127.0.0.1:0 and a connected client,
//! and a timeout around everything.

#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use wsp_runtime::codegen::Service;
use wsp_runtime::{Client, Codec, Server};

/// Fails the test instead of hanging when `f` takes longer than 10 s.
pub async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .expect("the test step timed out")
}

/// A server offering `services` on 127.0.0.1, port 0.
pub async fn serve(services: Vec<Arc<dyn Service>>) -> Server {
    let mut builder = Server::builder();
    for s in services {
        builder = builder.service(s);
    }
    within(builder.bind("127.0.0.1:0")).await.expect("binds")
}

/// A client of `server` using `codec`, serving `services` to the server, connected.
pub async fn connect(server: &Server, codec: Codec, services: Vec<Arc<dyn Service>>) -> Client {
    let mut builder = Client::builder(server.url()).codec(codec);
    for s in services {
        builder = builder.service(s);
    }
    let client = builder.build();
    within(client.connect()).await.expect("connects");
    client
}

/// Sends a message on a channel when dropped: shows that a handler future was dropped
/// (cancelled or aborted at its deadline) before it finished.
pub struct DropSignal(
    pub tokio::sync::mpsc::UnboundedSender<&'static str>,
    pub &'static str,
);

impl Drop for DropSignal {
    fn drop(&mut self) {
        let _ = self.0.send(self.1);
    }
}
