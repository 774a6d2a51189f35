//! Close codes, close reasons and the outcome of a closed connection (PROTOCOL §7).

/// Close codes used by wsp (PROTOCOL §7).
pub mod code {
    /// Normal close requested by the application.
    pub const NORMAL: u16 = 1000;
    /// The server is shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// Protocol error: malformed envelope, unknown frame type, frame before HELLO, second HELLO,
    /// too many ITEMs, a call id already in flight, an answer of the wrong kind for its call.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// A frame of the wrong kind (text/binary) for the negotiated codec.
    pub const UNSUPPORTED_DATA: u16 = 1003;
    /// No close frame was received (never sent on the wire): the link was lost.
    pub const ABNORMAL: u16 = 1006;
    /// Bytes that are not valid MessagePack / JSON / UTF-8.
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// A message larger than the receiver's maximum message size, or a HELLO over its limits.
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// An internal error in the runtime.
    pub const INTERNAL_ERROR: u16 = 1011;
    /// Unsupported protocol version in HELLO.
    pub const UNSUPPORTED_VERSION: u16 = 4000;
    /// No HELLO within the handshake timeout.
    pub const HANDSHAKE_TIMEOUT: u16 = 4001;
    /// Nothing received from the peer within the dead-peer timeout.
    pub const KEEPALIVE_TIMEOUT: u16 = 4002;
    /// Writing to the peer made no progress within the write timeout (the peer does not read).
    /// The close frame usually cannot reach such a peer: the code is what this side reports.
    pub const WRITE_TIMEOUT: u16 = 4003;
    /// A message (a fragmented one, or one frame trickled in) was not complete within the
    /// message timeout of its first byte.
    pub const MESSAGE_TIMEOUT: u16 = 4004;
    /// Relay: a registration or caller proof was refused (wrong key, signature, relay name or
    /// nonce; PROTOCOL.md §11.3).
    pub const RELAY_PROOF_REFUSED: u16 = 4200;
    /// Relay: no host is registered under the target key.
    pub const RELAY_UNKNOWN_KEY: u16 = 4201;
    /// Relay: a limit of the relay was reached (keys, spares per key, callers waiting).
    pub const RELAY_OVERLOADED: u16 = 4202;
    /// Relay: the target is registered but no spare connection became free in time.
    pub const RELAY_UNAVAILABLE: u16 = 4203;
    /// Relay: the other end's connection to the relay was lost without a close frame.
    pub const RELAY_PEER_LOST: u16 = 4204;
    /// Relay cluster: messages of the route between two relay nodes were lost (core NATS
    /// delivers at most once; e.g. a slow-consumer cut) or broke the tunnel's rules.
    pub const RELAY_LINK_BROKEN: u16 = 4205;
    /// End-to-end encryption: the handshake failed (the target does not hold the key it was
    /// called by, a malformed handshake message, or one end does not encrypt).
    pub const E2E_HANDSHAKE_FAILED: u16 = 4210;
    /// End-to-end encryption: a message failed authentication (tampered, replayed, reordered
    /// or truncated) or broke the framing; nothing of it was delivered.
    pub const E2E_BAD_FRAME: u16 = 4211;
}

/// Longest close reason in bytes (a close frame's payload is at most 125 bytes, 2 are the code).
pub const MAX_REASON_BYTES: usize = 123;

/// Shortens `reason` to the longest prefix of at most 123 bytes that ends on a character
/// boundary (PROTOCOL §7).
///
/// # Examples
///
/// ```
/// use wsp_runtime::truncate_reason;
///
/// assert_eq!(truncate_reason("bye"), "bye");
/// let long = "é".repeat(100); // 200 bytes
/// assert_eq!(truncate_reason(&long).len(), 122);
/// ```
pub fn truncate_reason(reason: &str) -> &str {
    if reason.len() <= MAX_REASON_BYTES {
        return reason;
    }
    let mut end = MAX_REASON_BYTES;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

/// Code and reason of a closed connection, as seen by this side: the code it sent when it
/// closed, the code it received when the peer closed, or 1006 when the link was lost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseInfo {
    /// The close code.
    pub code: u16,
    /// The close reason (at most 123 bytes).
    pub reason: String,
}

impl CloseInfo {
    pub(crate) fn new(code: u16, reason: &str) -> Self {
        CloseInfo {
            code,
            reason: truncate_reason(reason).to_owned(),
        }
    }

    /// `Ok` for a normal close (1000), `Err` carrying code and reason otherwise.
    pub fn into_result(self) -> Result<CloseInfo, CloseError> {
        if self.code == code::NORMAL {
            Ok(self)
        } else {
            Err(CloseError {
                code: self.code,
                reason: self.reason,
            })
        }
    }
}

/// A connection closed with a code other than 1000.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("connection closed with code {code}: {reason}")]
pub struct CloseError {
    /// The close code.
    pub code: u16,
    /// The close reason.
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_reasons_are_kept() {
        assert_eq!(truncate_reason(""), "");
        let exact = "a".repeat(123);
        assert_eq!(truncate_reason(&exact), exact);
    }

    #[test]
    fn long_reasons_are_cut_on_a_char_boundary() {
        let ascii = "a".repeat(200);
        assert_eq!(truncate_reason(&ascii).len(), 123);
        // 122 ASCII bytes then a 4-byte char straddling the limit.
        let s = format!("{}😀tail", "a".repeat(122));
        assert_eq!(truncate_reason(&s), "a".repeat(122));
        // 3-byte chars: 41 * 3 = 123 fits exactly.
        let s = "€".repeat(50);
        assert_eq!(truncate_reason(&s).len(), 123);
        let s = format!("x{}", "€".repeat(50));
        assert_eq!(truncate_reason(&s).len(), 121);
    }
}
