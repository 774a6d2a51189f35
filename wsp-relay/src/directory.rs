//! The routing table: which spares each key has idle, and which callers wait for one.
//!
//! Everything the relay decides about routing goes through [`Directory::claim`] and
//! [`Directory::offer`]; nothing else knows where spares live. That is the seam a cluster
//! moves onto a message broker: a node holding a key's spares subscribes to that key's
//! subject, and a claim becomes a request to it ("no responders" = unknown key).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use wsp_runtime::Codec;
use wsp_runtime::relay::PublicKey;

use crate::hand_over::Caller;
use crate::lock;

/// Where a caller is sent: the inbox of one idle spare's task.
pub(crate) type Ticket = oneshot::Sender<Caller>;

/// The outcome of asking for a key's spare.
pub(crate) enum Claim {
    /// An idle spare: send the caller to it.
    Spare(Ticket),
    /// The key is registered but has no idle spare: wait for one.
    Wait(oneshot::Receiver<Ticket>),
    /// No host is registered under the key.
    Unknown,
    /// Too many callers wait for this key already.
    Overloaded,
}

/// The outcome of offering a registered spare.
pub(crate) enum Offer {
    /// Idle, under this id (to withdraw it later).
    Idle(u64),
    /// Given at once to a waiting caller.
    Taken,
    /// Refused: the limit of keys or of spares per key is reached.
    Full(&'static str),
}

pub(crate) struct Limits {
    pub(crate) max_keys: usize,
    pub(crate) max_spares_per_key: usize,
    pub(crate) max_waiting_per_key: usize,
    /// How long a key stays known after its last spare was handed over or registered, while
    /// its host opens replacements.
    pub(crate) linger: Duration,
}

type Route = (PublicKey, Codec);

#[derive(Default)]
struct Entry {
    idle: Vec<(u64, Ticket)>,
    waiting: VecDeque<oneshot::Sender<Ticket>>,
    /// When a spare was last registered or handed over.
    last_seen: Option<Instant>,
}

impl Entry {
    fn known(&self, linger: Duration) -> bool {
        !self.idle.is_empty() || self.last_seen.is_some_and(|t| t.elapsed() < linger)
    }
}

pub(crate) struct Directory {
    routes: Mutex<HashMap<Route, Entry>>,
    limits: Limits,
    next_id: std::sync::atomic::AtomicU64,
}

impl Directory {
    pub(crate) fn new(limits: Limits) -> Directory {
        Directory {
            routes: Mutex::default(),
            limits,
            next_id: 1.into(),
        }
    }

    /// Asks for an idle spare of `key` (newest first: the likeliest to be alive).
    pub(crate) fn claim(&self, key: PublicKey, codec: Codec) -> Claim {
        let mut routes = lock(&self.routes);
        let Some(entry) = routes.get_mut(&(key, codec)) else {
            return Claim::Unknown;
        };
        entry.waiting.retain(|w| !w.is_closed());
        if let Some((_, ticket)) = entry.idle.pop() {
            entry.last_seen = Some(Instant::now());
            return Claim::Spare(ticket);
        }
        if !entry.known(self.limits.linger) {
            if entry.waiting.is_empty() {
                routes.remove(&(key, codec));
            }
            return Claim::Unknown;
        }
        if entry.waiting.len() >= self.limits.max_waiting_per_key {
            return Claim::Overloaded;
        }
        let (tx, rx) = oneshot::channel();
        entry.waiting.push_back(tx);
        Claim::Wait(rx)
    }

    /// Offers a freshly registered spare: to the first caller waiting, else as idle.
    pub(crate) fn offer(&self, key: PublicKey, codec: Codec, mut ticket: Ticket) -> Offer {
        let mut routes = lock(&self.routes);
        if !routes.contains_key(&(key, codec)) {
            if routes.len() >= self.limits.max_keys {
                let linger = self.limits.linger;
                routes.retain(|_, e| e.known(linger) || !e.waiting.is_empty());
            }
            if routes.len() >= self.limits.max_keys {
                return Offer::Full("too many keys registered");
            }
        }
        let entry = routes.entry((key, codec)).or_default();
        entry.last_seen = Some(Instant::now());
        while let Some(waiter) = entry.waiting.pop_front() {
            match waiter.send(ticket) {
                Ok(()) => return Offer::Taken,
                Err(back) => ticket = back,
            }
        }
        if entry.idle.len() >= self.limits.max_spares_per_key {
            return Offer::Full("too many spares for this key");
        }
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        entry.idle.push((id, ticket));
        Offer::Idle(id)
    }

    /// Takes back an idle spare that went away; `false` if it was already claimed.
    pub(crate) fn withdraw(&self, key: PublicKey, codec: Codec, id: u64) -> bool {
        let mut routes = lock(&self.routes);
        let Some(entry) = routes.get_mut(&(key, codec)) else {
            return false;
        };
        let before = entry.idle.len();
        entry.idle.retain(|(i, _)| *i != id);
        let withdrawn = entry.idle.len() < before;
        if !entry.known(self.limits.linger) && entry.waiting.is_empty() {
            routes.remove(&(key, codec));
        }
        withdrawn
    }

    /// Whether `key` has a spare idle or lingering here (what makes a cluster node answer
    /// claims for it).
    pub(crate) fn known(&self, key: PublicKey, codec: Codec) -> bool {
        lock(&self.routes)
            .get(&(key, codec))
            .is_some_and(|e| e.known(self.limits.linger))
    }

    /// Whether `key` is known under a codec other than `codec` (to tell a caller why it is
    /// not found).
    pub(crate) fn known_in_other_codec(&self, key: PublicKey, codec: Codec) -> bool {
        let other = match codec {
            Codec::MsgPack => Codec::Json,
            Codec::Json => Codec::MsgPack,
        };
        lock(&self.routes)
            .get(&(key, other))
            .is_some_and(|e| e.known(self.limits.linger))
    }

    /// Keys with a spare idle or lingering, and idle spares in all.
    pub(crate) fn counts(&self) -> (usize, usize) {
        let routes = lock(&self.routes);
        let linger = self.limits.linger;
        let keys = routes.values().filter(|e| e.known(linger)).count();
        let spares = routes.values().map(|e| e.idle.len()).sum();
        (keys, spares)
    }
}
