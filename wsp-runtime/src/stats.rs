//! Statistics: relaxed atomic counters per connection and per server/client.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// The live counters; one set per connection plus one per server or client.
        #[derive(Debug)]
        pub(crate) struct Counters {
            $(pub(crate) $name: AtomicU64,)*
            opened_at: Instant,
        }

        impl Counters {
            pub(crate) fn new() -> Self {
                Counters { $($name: AtomicU64::new(0),)* opened_at: Instant::now() }
            }

            pub(crate) fn snapshot(&self) -> StatsSnapshot {
                StatsSnapshot {
                    $($name: self.$name.load(Relaxed),)*
                    open_for: self.opened_at.elapsed(),
                }
            }
        }

        /// A copy of the counters at one moment.
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct StatsSnapshot {
            $($(#[$doc])* pub $name: u64,)*
            /// Time since the connection (or the server/client) was opened.
            pub open_for: Duration,
        }

        impl StatsSnapshot {
            /// Every counter with its field name, in declaration order (for exporting them).
            pub fn fields(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($name), self.$name),)*]
            }
        }
    };
}

counters! {
    /// WebSocket payload bytes sent.
    bytes_sent,
    /// WebSocket payload bytes received.
    bytes_received,
    /// Messages sent (wsp frames, pings and closes).
    frames_sent,
    /// Messages received (wsp frames, pings, pongs and closes).
    frames_received,
    /// CALL and STREAM frames sent.
    calls_sent,
    /// CALL and STREAM frames received.
    calls_received,
    /// NOTIFY frames sent.
    notifications_sent,
    /// NOTIFY frames received.
    notifications_received,
    /// REPLY, ITEM and END frames sent.
    replies_sent,
    /// REPLY, ITEM and END frames received.
    replies_received,
    /// ERROR frames sent.
    errors_sent,
    /// ERROR frames received.
    errors_received,
    /// Frames received that were invalid (and either dropped or answered by a close).
    invalid_frames,
    /// Outgoing frames dropped because a connection's send queue was full (broadcast).
    dropped_frames,
    /// Successful reconnects (client only).
    reconnects,
    /// Calls and streams this side made that are still waiting for their outcome.
    calls_in_flight,
    /// Calls and streams from the peer whose handlers are still running.
    incoming_in_flight,
    /// Connections opened (1 for a single connection).
    connections_opened,
    /// Connections currently open.
    connections_open,
    /// Connections refused because a connection limit was reached (server only).
    connections_refused,
    /// Failed accepts of the listening socket, e.g. out of file descriptors (server only).
    accept_errors,
}

/// Counters of one connection, also feeding its server's or client's counters.
#[derive(Clone, Debug)]
pub(crate) struct StatsHandle {
    pub(crate) own: Arc<Counters>,
    parent: Option<Arc<Counters>>,
}

impl StatsHandle {
    pub(crate) fn new(parent: Option<Arc<Counters>>) -> Self {
        StatsHandle {
            own: Arc::new(Counters::new()),
            parent,
        }
    }

    #[inline]
    pub(crate) fn add(&self, field: fn(&Counters) -> &AtomicU64, n: u64) {
        field(&self.own).fetch_add(n, Relaxed);
        if let Some(p) = &self.parent {
            field(p).fetch_add(n, Relaxed);
        }
    }

    #[inline]
    pub(crate) fn sub(&self, field: fn(&Counters) -> &AtomicU64, n: u64) {
        field(&self.own).fetch_sub(n, Relaxed);
        if let Some(p) = &self.parent {
            field(p).fetch_sub(n, Relaxed);
        }
    }
}
