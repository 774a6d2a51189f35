//! Limits and settings shared by peers, servers and clients.

use std::time::Duration;

/// Default of [`Config::read_buffer_size`]: every connection holds this much for its whole life,
/// so it is small; the socket itself is read up to 64 KiB at a time whatever it is (see
/// `guarded_io.rs`). Zero-filling tungstenite's 128 KiB default before each read also took a
/// tenth of a small call's CPU time (`BENCHMARKS.md`).
const DEFAULT_READ_BUFFER: usize = 1 << 10;

/// Smallest [`Config::read_buffer_size`] accepted.
const MIN_READ_BUFFER: usize = 256;

/// Limits and timing of one connection, with safe defaults.
///
/// Every setter consumes and returns the value, so a configuration reads as one expression.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use wsp_runtime::Config;
///
/// let config = Config::default()
///     .max_message_size(1 << 20)
///     .default_deadline(Some(Duration::from_secs(5)))
///     .keepalive(Some(Duration::from_secs(10)), Duration::from_secs(30));
/// assert_eq!(config.get_max_message_size(), 1 << 20);
/// ```
#[derive(Clone, Debug)]
pub struct Config {
    pub(crate) max_message_size: usize,
    pub(crate) max_depth: usize,
    pub(crate) max_incoming_calls: usize,
    pub(crate) handshake_timeout: Duration,
    pub(crate) keepalive_interval: Option<Duration>,
    pub(crate) dead_peer_timeout: Duration,
    pub(crate) default_deadline: Option<Duration>,
    pub(crate) send_queue: usize,
    pub(crate) stream_window: u32,
    pub(crate) close_timeout: Duration,
    pub(crate) read_buffer_size: usize,
    pub(crate) max_hello_size: usize,
    pub(crate) max_hello_services: usize,
    pub(crate) max_method_len: usize,
    pub(crate) max_incoming_notifications: usize,
    pub(crate) write_timeout: Duration,
    pub(crate) message_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_message_size: 16 << 20,
            max_depth: 128,
            max_incoming_calls: 1024,
            handshake_timeout: Duration::from_secs(10),
            keepalive_interval: Some(Duration::from_secs(20)),
            dead_peer_timeout: Duration::from_secs(60),
            default_deadline: Some(Duration::from_secs(30)),
            send_queue: 1024,
            stream_window: 32,
            close_timeout: Duration::from_secs(2),
            read_buffer_size: DEFAULT_READ_BUFFER,
            max_hello_size: 64 << 10,
            max_hello_services: 1024,
            max_method_len: 256,
            max_incoming_notifications: 256,
            write_timeout: Duration::from_secs(30),
            message_timeout: Duration::from_secs(60),
        }
    }
}

impl Config {
    /// Largest WebSocket message accepted from the peer (default 16 MiB); a larger one closes the
    /// connection with 1009. Passed to tungstenite as its message and frame size limit.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Deepest nesting accepted when decoding a payload value from the peer (default 128). A
    /// deeper argument fails the call with `INVALID_ARGUMENTS`. On JSON connections the limit is
    /// additionally capped by serde_json's own recursion limit of 128.
    pub fn max_depth(mut self, depth: usize) -> Self {
        self.max_depth = depth;
        self
    }

    /// Most calls and streams from the peer running at once on one connection (default 1024);
    /// more are answered with `OVERLOADED`.
    pub fn max_incoming_calls(mut self, n: usize) -> Self {
        self.max_incoming_calls = n;
        self
    }

    /// Time allowed for the WebSocket upgrade and for the peer's HELLO (default 10 s); a missing
    /// HELLO closes with 4001.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Keep-alive: a WebSocket ping every `interval` (`None`: no pings; default 20 s), and a
    /// close with 4002 when nothing at all arrived from the peer for `dead_peer_timeout`
    /// (default 60 s).
    pub fn keepalive(mut self, interval: Option<Duration>, dead_peer_timeout: Duration) -> Self {
        self.keepalive_interval = interval;
        self.dead_peer_timeout = dead_peer_timeout;
        self
    }

    /// Deadline of unary calls made without an explicit one (default 30 s; `None`: no deadline).
    /// Streams have no default deadline.
    pub fn default_deadline(mut self, deadline: Option<Duration>) -> Self {
        self.default_deadline = deadline;
        self
    }

    /// Capacity in frames of each connection's outgoing queue (default 1024). Calls and replies
    /// wait for room; [`Server::notify_all`](crate::Server::notify_all) never waits and drops
    /// (and counts) the frame for a connection whose queue is full.
    pub fn send_queue(mut self, frames: usize) -> Self {
        self.send_queue = frames.max(1);
        self
    }

    /// Initial credit of streams this side consumes (default 32, PROTOCOL §2.6).
    pub fn stream_window(mut self, items: u32) -> Self {
        self.stream_window = items.max(1);
        self
    }

    /// How long a closing side waits for the peer's close frame before dropping the socket
    /// (default 2 s).
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// Size of tungstenite's read buffer, which each connection holds for its whole life
    /// (default 1 KiB; tungstenite's own default is 128 KiB). On connections the runtime opens
    /// or accepts, the socket is read up to 64 KiB at a time into a buffer shared by the
    /// connections of a thread, and this buffer is filled from there, so a small value costs no
    /// extra system calls. On streams handed to [`Peer::from_stream`](crate::Peer::from_stream)
    /// or [`Server::attach`](crate::Server::attach) it is the most read from the socket at once.
    pub fn read_buffer_size(mut self, bytes: usize) -> Self {
        self.read_buffer_size = bytes.max(MIN_READ_BUFFER);
        self
    }

    /// Largest HELLO accepted from the peer, in bytes (default 64 KiB); a larger one closes
    /// the connection with 1009 before its services map is decoded.
    pub fn max_hello_size(mut self, bytes: usize) -> Self {
        self.max_hello_size = bytes;
        self
    }

    /// Most services a peer's HELLO may list (default 1024); more close the connection with
    /// 1009.
    pub fn max_hello_services(mut self, n: usize) -> Self {
        self.max_hello_services = n;
        self
    }

    /// Longest method name (`service/method`, in bytes) looked up for the peer (default 256).
    /// A longer one is answered with `UNKNOWN_METHOD` (a NOTIFY is dropped and counted).
    pub fn max_method_len(mut self, bytes: usize) -> Self {
        self.max_method_len = bytes;
        self
    }

    /// Most notification handlers from the peer running at once on one connection (default
    /// 256). At the limit the connection stops reading until one finishes (back-pressure, no
    /// notification is lost); handlers that finish at their first poll do not count.
    pub fn max_incoming_notifications(mut self, n: usize) -> Self {
        self.max_incoming_notifications = n.max(1);
        self
    }

    /// Longest time writing to the peer may make no progress (default 30 s): a peer that does
    /// not read cannot hold the connection and the replies queued for it. The connection then
    /// ends with 4003. Applies to connections the runtime opens or accepts itself, not to
    /// streams handed to [`Peer::from_stream`](crate::Peer::from_stream) or
    /// [`Server::attach`](crate::Server::attach).
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// Longest time from the first byte of a WebSocket message to its last (default 60 s): a
    /// fragmented message left unfinished (kept alive with pings or pongs) or a frame trickled
    /// in byte by byte closes the connection with 4004 instead of pinning its buffer. Applies,
    /// like [`write_timeout`](Self::write_timeout), to connections the runtime opens or accepts.
    pub fn message_timeout(mut self, timeout: Duration) -> Self {
        self.message_timeout = timeout;
        self
    }

    /// The configured maximum message size in bytes.
    pub fn get_max_message_size(&self) -> usize {
        self.max_message_size
    }

    /// The configured maximum decoding depth.
    pub fn get_max_depth(&self) -> usize {
        self.max_depth
    }

    /// The configured default deadline of unary calls.
    pub fn get_default_deadline(&self) -> Option<Duration> {
        self.default_deadline
    }

    pub(crate) fn websocket_config(
        &self,
    ) -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
        tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(Some(self.max_message_size))
            .max_frame_size(Some(self.max_message_size))
            .read_buffer_size(self.read_buffer_size)
    }
}

/// When and how a [`Client`](crate::Client) reconnects after its link dropped.
///
/// The n-th retry (counting from 0) waits `min(max_delay, initial_delay · factorⁿ)`, varied at
/// random by ±`jitter` (a fraction). Reconnecting happens after any close except one the
/// application asked for.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use wsp_runtime::ReconnectPolicy;
///
/// let policy = ReconnectPolicy::default().max_delay(Duration::from_secs(5)).jitter(0.0);
/// assert_eq!(policy.delay(0), Duration::from_millis(200));
/// assert!(ReconnectPolicy::disabled().delay(0) > Duration::ZERO);
/// ```
#[derive(Clone, Debug)]
pub struct ReconnectPolicy {
    pub(crate) enabled: bool,
    pub(crate) initial_delay: Duration,
    pub(crate) factor: f64,
    pub(crate) max_delay: Duration,
    pub(crate) jitter: f64,
    pub(crate) max_attempts: Option<u32>,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            enabled: true,
            initial_delay: Duration::from_millis(200),
            factor: 1.15,
            max_delay: Duration::from_secs(30),
            jitter: 0.2,
            max_attempts: None,
        }
    }
}

impl ReconnectPolicy {
    /// A policy that never reconnects.
    pub fn disabled() -> Self {
        ReconnectPolicy {
            enabled: false,
            ..Self::default()
        }
    }

    /// Turns reconnecting on or off.
    pub fn enabled(mut self, on: bool) -> Self {
        self.enabled = on;
        self
    }

    /// Delay before the first retry (default 200 ms).
    pub fn initial_delay(mut self, delay: Duration) -> Self {
        self.initial_delay = delay;
        self
    }

    /// Growth factor of the delay per failed attempt (default 1.15).
    pub fn factor(mut self, factor: f64) -> Self {
        self.factor = factor.max(1.0);
        self
    }

    /// Upper bound of the delay (default 30 s).
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// Random variation of each delay as a fraction, 0 to 1 (default 0.2).
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = fraction.clamp(0.0, 1.0);
        self
    }

    /// Gives up after this many failed attempts in a row (default: never).
    pub fn max_attempts(mut self, attempts: Option<u32>) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// The delay before retry number `attempt` (0-based), jitter included.
    pub fn delay(&self, attempt: u32) -> Duration {
        let base = self.initial_delay.as_secs_f64() * self.factor.powi(attempt.min(1000) as i32);
        let capped = base.min(self.max_delay.as_secs_f64());
        let spread = if self.jitter > 0.0 {
            (random_unit() * 2.0 - 1.0) * self.jitter
        } else {
            0.0
        };
        Duration::from_secs_f64((capped * (1.0 + spread)).max(0.0))
    }
}

/// A pseudo-random number in [0, 1) good enough for jitter (no cryptographic use).
fn random_unit() -> f64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static STATE: AtomicU64 = AtomicU64::new(0);
    let mut x = STATE.load(Ordering::Relaxed);
    if x == 0 {
        x = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9_7f4a_7c15)
            | 1;
    }
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    STATE.store(x, Ordering::Relaxed);
    (x >> 11) as f64 / (1u64 << 53) as f64
}
