//! A TCP proxy in front of the relay that sees what the relay sends to one peer: it passes the
//! HTTP upgrade through, then reads the relay's WebSocket frames (unmasked, as a server sends
//! them), records the payload of each binary message, and may change them on the way — the
//! relay as an attacker would be.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does to the n-th binary message (counting from 1) the relay sends on the
/// first connection through it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attack {
    /// Pass everything.
    None,
    /// Flip the last bit of message n.
    Tamper(usize),
    /// Send message n twice.
    Replay(usize),
    /// Send message n after message n + 1.
    Reorder(usize),
    /// Cut the last byte off message n.
    Truncate(usize),
}

pub struct Proxy {
    pub url: String,
    pub authority: String,
    /// The payload of every binary message the relay sent, per connection in accept order.
    pub seen: Arc<Mutex<Vec<Vec<Vec<u8>>>>>,
    listener: Option<TcpListener>,
    attack: Attack,
}

impl Proxy {
    /// Every binary message the relay sent, all connections together.
    pub fn all(&self) -> Vec<Vec<u8>> {
        self.seen.lock().unwrap().concat()
    }

    /// The binary messages the relay sent on the `n`-th connection (from 0).
    pub fn on(&self, n: usize) -> Vec<Vec<u8>> {
        self.seen.lock().unwrap()[n].clone()
    }

    /// Listens (the relay must know the proxy's authority as one of its names before the
    /// proxy forwards to it).
    pub async fn bind(attack: Attack) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        Proxy {
            url: format!("ws://{addr}/"),
            authority: addr.to_string(),
            seen: Arc::default(),
            listener: Some(listener),
            attack,
        }
    }

    /// Forwards every connection to `relay`.
    pub fn forward_to(&mut self, relay: std::net::SocketAddr) {
        let listener = self.listener.take().expect("forwarding once");
        let (record, attack) = (self.seen.clone(), self.attack);
        tokio::spawn(async move {
            let mut first = true;
            while let Ok((peer, _)) = listener.accept().await {
                let record = record.clone();
                let index = {
                    let mut all = record.lock().unwrap();
                    all.push(Vec::new());
                    all.len() - 1
                };
                // Only the first connection is attacked: the others are bystanders.
                let attack = if std::mem::take(&mut first) {
                    attack
                } else {
                    Attack::None
                };
                tokio::spawn(async move {
                    let Ok(upstream) = TcpStream::connect(relay).await else {
                        return;
                    };
                    let (mut peer_rx, mut peer_tx) = peer.into_split();
                    let (mut up_rx, mut up_tx) = upstream.into_split();
                    let up = tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut peer_rx, &mut up_tx).await;
                        let _ = up_tx.shutdown().await;
                    });
                    let _ = down(&mut up_rx, &mut peer_tx, attack, &record, index).await;
                    let _ = peer_tx.shutdown().await;
                    up.abort();
                });
            }
        });
    }
}

/// Relay → peer: the HTTP answer as it is, then frame by frame.
async fn down(
    from: &mut tokio::net::tcp::OwnedReadHalf,
    to: &mut tokio::net::tcp::OwnedWriteHalf,
    attack: Attack,
    record: &Mutex<Vec<Vec<Vec<u8>>>>,
    index: usize,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 << 10];
    // The upgrade answer.
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            to.write_all(&buf[..end + 4]).await?;
            buf.drain(..end + 4);
            break;
        }
        let n = from.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let mut binary = 0usize;
    let mut held: Option<Vec<u8>> = None;
    loop {
        while let Some((frame, len)) = parse(&buf) {
            buf.drain(..len);
            let (opcode, payload) = frame;
            if opcode != 2 {
                to.write_all(&encode(opcode, &payload)).await?;
                continue;
            }
            binary += 1;
            record.lock().unwrap()[index].push(payload.clone());
            let out: Vec<Vec<u8>> = match attack {
                Attack::Tamper(n) if n == binary => {
                    let mut p = payload;
                    if let Some(last) = p.last_mut() {
                        *last ^= 1;
                    }
                    vec![p]
                }
                Attack::Replay(n) if n == binary => vec![payload.clone(), payload],
                Attack::Reorder(n) if n == binary => {
                    held = Some(payload);
                    vec![]
                }
                Attack::Reorder(n) if n + 1 == binary => {
                    vec![payload, held.take().expect("held")]
                }
                Attack::Truncate(n) if n == binary => {
                    let mut p = payload;
                    p.pop();
                    vec![p]
                }
                _ => vec![payload],
            };
            for p in out {
                to.write_all(&encode(2, &p)).await?;
            }
        }
        let n = from.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// One unmasked, unfragmented frame at the start of `buf`: (opcode, payload) and its length.
fn parse(buf: &[u8]) -> Option<((u8, Vec<u8>), usize)> {
    if buf.len() < 2 {
        return None;
    }
    let opcode = buf[0] & 0x0f;
    assert_eq!(
        buf[0] & 0x80,
        0x80,
        "the relay sends no fragmented messages here"
    );
    assert_eq!(buf[1] & 0x80, 0, "a server's frames are not masked");
    let (len, head) = match buf[1] & 0x7f {
        126 => (
            u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?) as usize,
            4,
        ),
        127 => (
            u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    let payload = buf.get(head..head + len)?.to_vec();
    Some(((opcode, payload), head + len))
}

fn encode(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => out.push(n as u8),
        n if n <= u16::MAX as usize => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    out
}
