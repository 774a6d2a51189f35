//! The end-to-end handshake of a relayed connection (PROTOCOL.md §12): right after the
//! hand-over, before wsp's HELLO, the caller and the host run Noise `IK` (the caller proves a
//! key) or `NK` (an anonymous caller), keyed by the X25519 forms of their Ed25519 identities.
//! The relay passes the two handshake messages on like any other and sees only ciphertext
//! after them. The frames that follow are sealed by `connection/secure_io.rs`.

use bytes::Bytes;
use ed25519_dalek::VerifyingKey;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use snow::{Builder, HandshakeState, TransportState};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::close::code;
use crate::connection::secure_io::NOISE_MAX;
use crate::error::ConnectError;
use crate::relay::identity::{Identity, PublicKey};

/// The Noise protocol of a caller that proves its key.
pub const NOISE_IK: &str = "Noise_IK_25519_ChaChaPoly_BLAKE2s";
/// The Noise protocol of an anonymous caller.
pub const NOISE_NK: &str = "Noise_NK_25519_ChaChaPoly_BLAKE2s";
/// The prologue both ends mix in: a handshake for anything else does not complete.
pub const PROLOGUE: &[u8] = b"wsp-e2e/1";
/// First byte of the caller's handshake message.
const VERSION: u8 = 1;
/// Second byte: which pattern follows.
const PATTERN_IK: u8 = 1;
const PATTERN_NK: u8 = 2;

/// The X25519 public key of an Ed25519 public key (the birational map of RFC 7748 §4.1);
/// `None` for bytes that are not a valid Ed25519 key.
pub fn x25519_public(key: &PublicKey) -> Option<[u8; 32]> {
    VerifyingKey::from_bytes(key.as_bytes())
        .ok()
        .map(|k| k.to_montgomery().to_bytes())
}

fn builder(pattern: &'static str) -> Builder<'static> {
    Builder::new(pattern.parse().expect("a valid Noise protocol name"))
        .prologue(PROLOGUE)
        .expect("the prologue is set once")
}

fn noise_error(e: snow::Error) -> ConnectError {
    ConnectError::EndToEnd(format!("noise: {e}"))
}

/// Caller side: runs the handshake as initiator towards `target`, proving `identity` if given
/// (else anonymous); returns the cipher states once the target proved it holds `target`.
pub(crate) async fn initiate<S>(
    ws: &mut S,
    identity: Option<&Identity>,
    target: &PublicKey,
) -> Result<TransportState, ConnectError>
where
    S: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin,
{
    let remote = x25519_public(target)
        .ok_or_else(|| ConnectError::EndToEnd("the target key is not a valid key".into()))?;
    let secret = identity.map(Identity::x25519_secret);
    let (mut hs, pattern, payload): (HandshakeState, u8, Vec<u8>) = match (&secret, identity) {
        (Some(secret), Some(id)) => (
            builder(NOISE_IK)
                .local_private_key(secret)
                .and_then(|b| b.remote_public_key(&remote))
                .and_then(|b| b.build_initiator())
                .map_err(noise_error)?,
            PATTERN_IK,
            id.public_key().as_bytes().to_vec(),
        ),
        _ => (
            builder(NOISE_NK)
                .remote_public_key(&remote)
                .and_then(|b| b.build_initiator())
                .map_err(noise_error)?,
            PATTERN_NK,
            Vec::new(),
        ),
    };
    let mut first = vec![0u8; NOISE_MAX];
    let n = hs
        .write_message(&payload, &mut first)
        .map_err(noise_error)?;
    let mut message = Vec::with_capacity(n + 2);
    message.extend_from_slice(&[VERSION, pattern]);
    message.extend_from_slice(&first[..n]);
    ws.send(Message::binary(message)).await?;
    let answer = next_binary(ws).await?;
    let mut payload = vec![0u8; answer.len()];
    if hs.read_message(&answer, &mut payload).is_err() {
        // Only the holder of the target's secret key can answer: this is not the target.
        let reason = "e2e: the target did not prove its key";
        refuse(ws, reason).await;
        return Err(ConnectError::EndToEnd(reason.into()));
    }
    hs.into_transport_mode().map_err(noise_error)
}

/// Host side: answers the caller's handshake with `identity`; returns the cipher states and
/// the caller's key as the handshake proved it (`None` for an anonymous caller). On failure
/// the connection is closed with 4210 and the reason is returned.
pub(crate) async fn respond<S>(
    ws: &mut S,
    identity: &Identity,
) -> Result<(TransportState, Option<PublicKey>), ConnectError>
where
    S: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin,
{
    let first = next_binary(ws).await?;
    match answer(&first, identity) {
        Ok((mut hs, caller)) => {
            let mut second = vec![0u8; NOISE_MAX];
            let n = hs.write_message(&[], &mut second).map_err(noise_error)?;
            second.truncate(n);
            ws.send(Message::binary(second)).await?;
            Ok((hs.into_transport_mode().map_err(noise_error)?, caller))
        }
        Err(reason) => {
            refuse(ws, reason).await;
            Err(ConnectError::EndToEnd(reason.into()))
        }
    }
}

/// Reads the caller's first message; the handshake state ready to answer, and the caller's
/// key if it proved one.
fn answer(
    first: &[u8],
    identity: &Identity,
) -> Result<(HandshakeState, Option<PublicKey>), &'static str> {
    let (header, message) = first
        .split_at_checked(2)
        .ok_or("e2e: expected the caller's handshake")?;
    if header[0] != VERSION {
        return Err("e2e: expected the caller's handshake (version 1)");
    }
    let pattern = match header[1] {
        PATTERN_IK => NOISE_IK,
        PATTERN_NK => NOISE_NK,
        _ => return Err("e2e: unknown handshake pattern"),
    };
    let secret = identity.x25519_secret();
    let mut hs = builder(pattern)
        .local_private_key(&secret)
        .and_then(|b| b.build_responder())
        .map_err(|_| "e2e: handshake setup failed")?;
    let mut payload = vec![0u8; message.len()];
    let n = hs
        .read_message(message, &mut payload)
        .map_err(|_| "e2e: the caller's handshake failed")?;
    if pattern == NOISE_NK {
        return Ok((hs, None));
    }
    // IK: the payload names the caller's Ed25519 key; its X25519 form must be the static
    // key the handshake just authenticated.
    let key: [u8; 32] = payload[..n]
        .try_into()
        .map_err(|_| "e2e: the caller's handshake names no key")?;
    let key = PublicKey::from_bytes(key);
    match (x25519_public(&key), hs.get_remote_static()) {
        (Some(expected), Some(proven)) if expected.as_slice() == proven => Ok((hs, Some(key))),
        _ => Err("e2e: the caller's key does not match its handshake"),
    }
}

/// The next handshake message; anything else fails the handshake (and is answered with 4210).
async fn next_binary<S>(ws: &mut S) -> Result<Bytes, ConnectError>
where
    S: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin,
{
    loop {
        match ws.next().await {
            None => return Err(ConnectError::EndToEnd("the connection was lost".into())),
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(Message::Binary(b))) if b.len() <= NOISE_MAX + 2 => return Ok(b),
            Some(Ok(Message::Close(f))) => {
                let (c, r) = f.map_or((1005, String::new()), |f| {
                    (f.code.into(), f.reason.to_string())
                });
                return Err(ConnectError::EndToEnd(format!(
                    "the other end closed during the handshake: {c} {r}"
                )));
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            Some(Ok(_)) => {
                let reason = "e2e: expected a handshake message";
                refuse(ws, reason).await;
                return Err(ConnectError::EndToEnd(reason.into()));
            }
        }
    }
}

/// Ends a failed handshake with 4210 and `reason`.
async fn refuse<S>(ws: &mut S, reason: &str)
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    let frame = CloseFrame {
        code: code::E2E_HANDSHAKE_FAILED.into(),
        reason: reason.into(),
    };
    let _ = ws.send(Message::Close(Some(frame))).await;
}
