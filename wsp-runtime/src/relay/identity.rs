//! Long-term keys: an Ed25519 key pair names a peer at the relay and proves it holds the secret
//! key (PROTOCOL.md §11.3). The same key pair is the one end-to-end encryption will use (its
//! X25519 form is the standard birational map of the Ed25519 key).

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

/// A peer's long-term key pair (Ed25519). `Debug` shows the public key only.
#[derive(Clone)]
pub struct Identity {
    signing: SigningKey,
}

impl Identity {
    /// A new key pair from the operating system's random source.
    pub fn generate() -> Identity {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).expect("the operating system's random source failed");
        Identity::from_secret(secret)
    }

    /// The key pair of a 32-byte Ed25519 secret key (a seed as RFC 8032 defines it).
    pub fn from_secret(secret: [u8; 32]) -> Identity {
        Identity {
            signing: SigningKey::from_bytes(&secret),
        }
    }

    /// The 32-byte secret key, to store the identity.
    pub fn secret(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// The public key: what others name this peer by.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key().to_bytes())
    }

    /// The X25519 secret key of this key pair (the first half of SHA-512 of the secret, as
    /// RFC 8032 derives the signing scalar; X25519 clamps it), for end-to-end encryption.
    pub(crate) fn x25519_secret(&self) -> [u8; 32] {
        self.signing.to_scalar_bytes()
    }

    /// Signs `message` (Ed25519, RFC 8032).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("public_key", &self.public_key())
            .finish_non_exhaustive()
    }
}

/// An Ed25519 public key. Written as 64 lowercase hex digits (`Display`, `FromStr`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// The key of these 32 bytes (not checked here; [`verify`](Self::verify) rejects a
    /// key that is not a valid curve point).
    pub const fn from_bytes(bytes: [u8; 32]) -> PublicKey {
        PublicKey(bytes)
    }

    /// The key's 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Whether `signature` is this key's signature of `message`, under the strict rules of
    /// RFC 8032 (no small-order keys, no malleable signatures).
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let Ok(key) = VerifyingKey::from_bytes(&self.0) else {
            return false;
        };
        key.verify_strict(message, &Signature::from_bytes(signature))
            .is_ok()
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

/// A public key that is not 64 hex digits.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a public key is 64 hex digits")]
pub struct KeyError;

impl FromStr for PublicKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<PublicKey, KeyError> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(s, &mut bytes).map_err(|_| KeyError)?;
        Ok(PublicKey(bytes))
    }
}

/// What a proof is for: the words are part of the signed text, so a proof made for one purpose
/// is never valid for the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// A host registers a spare connection under its key.
    Register,
    /// A caller proves its own key while asking for a target.
    Connect,
}

/// The exact text a proof signs (PROTOCOL.md §11.3):
/// `wsp-relay/1\n<purpose>\n<relay name>\n<nonce hex>` and, for a caller, `\n<target hex>`.
/// The relay name and the nonce bind it to one relay and one connection.
pub fn proof_text(
    purpose: Purpose,
    relay_name: &str,
    nonce: &[u8; 32],
    target: Option<&PublicKey>,
) -> Vec<u8> {
    let purpose = match purpose {
        Purpose::Register => "register",
        Purpose::Connect => "connect",
    };
    let mut text = format!(
        "wsp-relay/1\n{purpose}\n{relay_name}\n{}",
        hex::encode(nonce)
    );
    if let Some(target) = target {
        text.push('\n');
        text.push_str(&target.to_string());
    }
    text.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_as_hex_and_signatures_verify() {
        let id = Identity::from_secret([7; 32]);
        let key = id.public_key();
        assert_eq!(key.to_string().parse::<PublicKey>(), Ok(key));
        assert_eq!(Identity::from_secret(id.secret()).public_key(), key);
        let text = proof_text(Purpose::Register, "relay:1", &[1; 32], None);
        let sig = id.sign(&text);
        assert!(key.verify(&text, &sig));
        let other = proof_text(Purpose::Connect, "relay:1", &[1; 32], None);
        assert!(!key.verify(&other, &sig));
        assert!("zz".parse::<PublicKey>().is_err());
    }

    #[test]
    fn rfc8032_test_vector_1() {
        // RFC 8032 §7.1, TEST 1 (empty message): the keys and signature interoperate with
        // every other Ed25519 implementation (the browser's included).
        let secret: [u8; 32] =
            hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
                .unwrap()
                .try_into()
                .unwrap();
        let id = Identity::from_secret(secret);
        assert_eq!(
            id.public_key().to_string(),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        assert_eq!(
            hex::encode(id.sign(b"")),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
    }
}
