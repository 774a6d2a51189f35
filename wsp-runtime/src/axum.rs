//! Serving wsp on a route of an existing HTTP application (the `axum` feature): axum's own
//! WebSocket type hides its stream, so the route takes the HTTP upgrade itself
//! (`hyper::upgrade::on`) and hands the upgraded connection to a [`Server`] as one of its own.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use axum::{Router, routing::get};
//! let wsp = wsp_runtime::Server::builder().build(); // .service(…) as usual
//! let app = Router::new()
//!     .route("/health", get(|| async { "ok" }))
//!     .route("/wsp", wsp_runtime::axum::route(wsp.clone()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! The origin check, the subprotocol, the asynchronous check and the accept hook of the
//! server apply as on its own socket ([`Server::admit`]). Connection limits and TLS are the
//! HTTP application's.

use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::server::Server;

/// A `GET` route that serves wsp on `server`.
pub fn route(server: Server) -> axum::routing::MethodRouter {
    axum::routing::get(move |req: Request<Body>| {
        let server = server.clone();
        async move { upgrade(&server, req).await }
    })
}

/// Answers a WebSocket upgrade request (`101 Switching Protocols`, or the refusal's status
/// and reason) and, once the HTTP server hands the connection over, serves it on `server`.
/// For plain hyper as well as axum: any request body type.
pub async fn upgrade<B: Send + 'static>(server: &Server, req: Request<B>) -> Response<Body> {
    let key = match websocket_key(&req) {
        Ok(key) => key,
        Err(why) => return text(StatusCode::BAD_REQUEST, why),
    };
    let mut head = Request::builder()
        .method(req.method())
        .uri(req.uri())
        .version(req.version());
    for (name, value) in req.headers() {
        head = head.header(name, value);
    }
    let Ok(head) = head.body(()) else {
        return text(StatusCode::BAD_REQUEST, "bad request");
    };
    let (codec, data) = match server.admit(head).await {
        Ok(admitted) => admitted,
        Err(r) => {
            let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::FORBIDDEN);
            return text(status, &r.reason);
        }
    };
    let config = server.config().websocket_config();
    let server = server.clone();
    let offered_protocol = req.headers().contains_key(header::SEC_WEBSOCKET_PROTOCOL);
    tokio::spawn(async move {
        match hyper::upgrade::on(req).await {
            Ok(upgraded) => {
                let io = TokioIo::new(upgraded);
                let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
                server.attach(ws, codec, data);
            }
            Err(e) => {
                tracing::debug!(error = %e, "the HTTP server did not hand the connection over")
            }
        }
    });
    let mut resp = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(
            header::SEC_WEBSOCKET_ACCEPT,
            derive_accept_key(key.as_bytes()),
        );
    if offered_protocol {
        resp = resp.header(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(codec.subprotocol()),
        );
    }
    resp.body(Body::empty())
        .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))
}

/// The `Sec-WebSocket-Key` of a well-formed WebSocket upgrade request (RFC 6455 §4.2.1).
fn websocket_key<B>(req: &Request<B>) -> Result<String, &'static str> {
    let has = |name: header::HeaderName, token: &str| {
        req.headers().get_all(name).iter().any(|v| {
            v.to_str()
                .unwrap_or("")
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case(token))
        })
    };
    if req.method() != axum::http::Method::GET {
        return Err("a WebSocket upgrade is a GET");
    }
    if !has(header::CONNECTION, "upgrade") || !has(header::UPGRADE, "websocket") {
        return Err("not a WebSocket upgrade");
    }
    if req.headers().get(header::SEC_WEBSOCKET_VERSION) != Some(&HeaderValue::from_static("13")) {
        return Err("WebSocket version 13 is required");
    }
    req.headers()
        .get(header::SEC_WEBSOCKET_KEY)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or("no Sec-WebSocket-Key")
}

fn text(status: StatusCode, body: &str) -> Response<Body> {
    let mut r = Response::new(Body::from(body.to_owned()));
    *r.status_mut() = status;
    r
}
