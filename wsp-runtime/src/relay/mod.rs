//! Serving and calling through a relay (PROTOCOL.md §11).
//!
//! A *host* that cannot accept connections (a browser tab, a device behind NAT) keeps a few
//! *spare* connections registered at a relay under its public key ([`RelayHost`], made by
//! [`ServerBuilder::bind_relay`](crate::ServerBuilder::bind_relay)). A *caller* asks the relay
//! for that key ([`Client::via_relay`](crate::Client::via_relay)); the relay hands one spare over
//! and copies frames both ways. Over the relayed connection both ends speak ordinary wsp.
//!
//! - `identity.rs`: the key pair, and the text a proof signs;
//! - `frames.rs`: the relay's frames, exchanged before wsp starts;
//! - this file: the steps each side takes through them;
//! - `secure.rs`: the end-to-end handshake that follows the hand-over (on by default);
//! - `host.rs`: the host: its spares, re-opened after each hand-over and after failures.

use std::time::Duration;

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio_tungstenite::tungstenite::http::Uri;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::error::ConnectError;
use crate::wire::codec::Codec;

mod frames;
mod host;
mod identity;
pub(crate) mod secure;

pub use frames::{FrameError, MAX_FRAME, RelayFrame, VERSION};
pub use host::{RelayHost, RelayOptions, RelayPeer};
pub use identity::{Identity, KeyError, PublicKey, Purpose, proof_text};
pub use secure::{NOISE_IK, NOISE_NK, PROLOGUE, x25519_public};

/// Whom a client asks the relay for, and whether it proves its own key.
#[derive(Clone, Debug)]
pub(crate) struct Route {
    pub(crate) target: PublicKey,
    pub(crate) identity: Option<Identity>,
    /// Whether to encrypt end to end (PROTOCOL.md §12).
    pub(crate) encrypt: bool,
}

/// The relay's name as a proof states it (PROTOCOL.md §11.3): the URL's host in lowercase,
/// with `:port` when the URL names a port other than its scheme's default.
pub fn relay_name(uri: &Uri) -> String {
    let host = uri.host().unwrap_or("").to_ascii_lowercase();
    let default_port = match uri.scheme_str() {
        Some("wss") | Some("https") => 443,
        _ => 80,
    };
    match uri.port_u16() {
        Some(p) if p != default_port => format!("{host}:{p}"),
        _ => host,
    }
}

/// Caller side: reads the CHALLENGE, sends CONNECT (with a proof of the caller's key if it has
/// one) and waits for CONNECTED; after it, the connection carries wsp to the target.
pub(crate) async fn ask_for_target<S>(
    ws: &mut S,
    codec: Codec,
    relay_name: &str,
    route: &Route,
) -> Result<(), ConnectError>
where
    S: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin,
{
    let nonce = challenge(ws, codec).await?;
    let caller = route.identity.as_ref().map(|id| {
        let text = proof_text(Purpose::Connect, relay_name, &nonce, Some(&route.target));
        (id.public_key(), id.sign(&text))
    });
    let connect = RelayFrame::Connect {
        target: route.target,
        caller,
    };
    ws.send(connect.encode(codec)).await?;
    match next_frame(ws, codec).await? {
        RelayFrame::Connected => Ok(()),
        other => Err(unexpected(&other, "CONNECTED")),
    }
}

/// Host side: reads the CHALLENGE, registers this connection as a spare under `identity`'s
/// key and waits for REGISTERED; returns the relay's ping interval.
pub(crate) async fn register<S>(
    ws: &mut S,
    codec: Codec,
    relay_name: &str,
    identity: &Identity,
) -> Result<Duration, ConnectError>
where
    S: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin,
{
    let nonce = challenge(ws, codec).await?;
    let text = proof_text(Purpose::Register, relay_name, &nonce, None);
    let register = RelayFrame::Register {
        key: identity.public_key(),
        signature: identity.sign(&text),
    };
    ws.send(register.encode(codec)).await?;
    match next_frame(ws, codec).await? {
        RelayFrame::Registered { ping_interval_ms } => Ok(Duration::from_millis(ping_interval_ms)),
        other => Err(unexpected(&other, "REGISTERED")),
    }
}

/// Host side, on a registered spare: waits for HANDOVER, answering the relay's pings, and
/// returns the caller's verified key (or `None` for an anonymous caller). A relay from which
/// nothing at all (not even a ping) came for `idle` is taken for gone.
pub(crate) async fn await_handover<S>(
    ws: &mut S,
    codec: Codec,
    idle: Duration,
) -> Result<Option<PublicKey>, ConnectError>
where
    S: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin,
{
    match next_frame_within(ws, codec, Some(idle)).await? {
        RelayFrame::Handover { caller } => Ok(caller),
        other => Err(unexpected(&other, "HANDOVER")),
    }
}

async fn challenge<S>(ws: &mut S, codec: Codec) -> Result<[u8; 32], ConnectError>
where
    S: Stream<Item = Result<Message, WsError>> + Unpin,
{
    match next_frame(ws, codec).await? {
        RelayFrame::Challenge { version, nonce } if version == VERSION => Ok(nonce),
        RelayFrame::Challenge { version, .. } => Err(ConnectError::RelayProtocol(format!(
            "relay protocol version {version} (this runtime speaks {VERSION})"
        ))),
        other => Err(unexpected(&other, "CHALLENGE")),
    }
}

/// The next relay frame; a close from the relay becomes [`ConnectError::Relay`] with its code
/// and reason. Pings are answered by the WebSocket layer while reading.
async fn next_frame<S>(ws: &mut S, codec: Codec) -> Result<RelayFrame, ConnectError>
where
    S: Stream<Item = Result<Message, WsError>> + Unpin,
{
    next_frame_within(ws, codec, None).await
}

/// [`next_frame`], failing with [`ConnectError::Timeout`] when nothing at all (a ping
/// included) arrives for `idle`.
async fn next_frame_within<S>(
    ws: &mut S,
    codec: Codec,
    idle: Option<Duration>,
) -> Result<RelayFrame, ConnectError>
where
    S: Stream<Item = Result<Message, WsError>> + Unpin,
{
    loop {
        let next = match idle {
            Some(idle) => tokio::time::timeout(idle, ws.next())
                .await
                .map_err(|_| ConnectError::Timeout)?,
            None => ws.next().await,
        };
        let message = match next {
            None => return Err(lost()),
            Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => return Err(lost()),
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(m)) => m,
        };
        match message {
            Message::Close(frame) => {
                return Err(match frame {
                    Some(f) => ConnectError::Relay {
                        code: f.code.into(),
                        reason: f.reason.to_string(),
                    },
                    None => ConnectError::Relay {
                        code: 1005,
                        reason: String::new(),
                    },
                });
            }
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            m => {
                return RelayFrame::decode(&m, codec)
                    .map_err(|e| ConnectError::RelayProtocol(e.to_string()));
            }
        }
    }
}

fn lost() -> ConnectError {
    ConnectError::Relay {
        code: crate::close::code::ABNORMAL,
        reason: "the connection to the relay was lost".into(),
    }
}

fn unexpected(frame: &RelayFrame, wanted: &str) -> ConnectError {
    ConnectError::RelayProtocol(format!("expected {wanted}, got {frame:?}"))
}

#[cfg(test)]
mod tests {
    use super::relay_name;

    #[test]
    fn relay_names_follow_protocol_11_3() {
        for (url, name) in [
            ("ws://127.0.0.1:8787/", "127.0.0.1:8787"),
            ("wss://Relay.Example.com/", "relay.example.com"),
            ("ws://relay.example.com:80/x", "relay.example.com"),
            ("wss://relay.example.com:443/", "relay.example.com"),
            ("wss://relay.example.com:80/", "relay.example.com:80"),
            ("ws://[::1]:8787/", "[::1]:8787"),
        ] {
            assert_eq!(relay_name(&url.parse().unwrap()), name, "{url}");
        }
    }
}
