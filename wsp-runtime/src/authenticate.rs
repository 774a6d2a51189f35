//! The asynchronous accept check ([`ServerBuilder::authenticate`](crate::ServerBuilder::authenticate)):
//! the server reads the upgrade request itself, awaits the application's verdict (a token
//! looked up in a store), and only then lets the WebSocket handshake answer it — or answers
//! with the refusal's HTTP status. The request bytes it read are handed to the handshake as
//! if unread.

use std::future::Future;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::handshake::server::Request;
use tokio_tungstenite::tungstenite::http;

use crate::context::ConnData;
use crate::server::Reject;

/// Largest upgrade request head read (request line and headers).
pub(crate) const MAX_HEAD: usize = 16 << 10;

/// The stored check: the request in, the connection's data or a refusal out.
pub(crate) type AuthHook =
    Arc<dyn Fn(Request) -> BoxFuture<'static, Result<ConnData, Reject>> + Send + Sync>;

/// Wraps a typed check as an [`AuthHook`].
pub(crate) fn hook<F, Fut, T>(f: F) -> AuthHook
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T, Reject>> + Send + 'static,
    T: Send + Sync + 'static,
{
    Arc::new(move |req| {
        let fut = f(req);
        Box::pin(async move { fut.await.map(|t| Arc::new(t) as ConnData) })
    })
}

/// Reads the request head (up to the blank line); returns the parsed request and every byte
/// read. `None` for a request that is malformed or too large (after answering it).
pub(crate) async fn read_head<S>(io: &mut S) -> std::io::Result<Option<(Request, Vec<u8>)>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut bytes = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let n = io.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        bytes.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Request::new(&mut headers);
        match parsed.parse(&bytes) {
            Ok(httparse::Status::Complete(_)) => {
                let mut req = Request::builder()
                    .method(parsed.method.unwrap_or("GET"))
                    .uri(parsed.path.unwrap_or("/"));
                for h in parsed.headers.iter() {
                    req = req.header(h.name, h.value);
                }
                return match req.body(()) {
                    Ok(req) => Ok(Some((req, bytes))),
                    Err(_) => {
                        refuse(io, &Reject::new(400, "bad request")).await;
                        Ok(None)
                    }
                };
            }
            Ok(httparse::Status::Partial) if bytes.len() < MAX_HEAD => continue,
            Ok(httparse::Status::Partial) => {
                refuse(io, &Reject::new(431, "request header too large")).await;
                return Ok(None);
            }
            Err(_) => {
                refuse(io, &Reject::new(400, "bad request")).await;
                return Ok(None);
            }
        }
    }
}

/// Answers with the refusal's status and reason (as the body) and closes.
pub(crate) async fn refuse<S: AsyncWrite + Unpin>(io: &mut S, r: &Reject) {
    let status = http::StatusCode::from_u16(r.status).unwrap_or(http::StatusCode::FORBIDDEN);
    let response = format!(
        "HTTP/1.1 {} {}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\n\r\n{}",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        r.reason.len(),
        r.reason
    );
    let _ = io.write_all(response.as_bytes()).await;
    let _ = io.shutdown().await;
}
