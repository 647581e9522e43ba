//! Connections waiting on their client — a PostgreSQL startup or sign-in exchange not finished,
//! an HTTP request head not complete, a kept-alive HTTP connection idle — are at most a limit
//! at once; beyond it one is cut: the one waiting longest among those of the client address
//! that has the most waiting. A client that keeps the server waiting (a slowloris, a flood of
//! half-sent startup packets) thereby cuts its own connections first, and a client at another
//! address is not cut however slow its own part of the exchange is (a password hashed on a
//! slow machine, a long round trip). Among the connections of one address the longest waiting
//! goes: the timeouts (60 s to sign in, 10 s for a request head) would leave the slots taken
//! meanwhile.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

/// The smallest limit.
pub const MIN_LIMIT: usize = 16;

/// The connections waiting on their client, oldest first, and the same by client address.
pub struct Waiting {
    entries: Mutex<Entries>,
    next: AtomicU64,
    limit: usize,
    what: &'static str,
}

#[derive(Default)]
struct Entries {
    by_age: BTreeMap<u64, (IpAddr, CancellationToken)>,
    by_address: HashMap<IpAddr, BTreeSet<u64>>,
}

impl Entries {
    fn insert(&mut self, id: u64, address: IpAddr, cut: CancellationToken) {
        self.by_age.insert(id, (address, cut));
        self.by_address.entry(address).or_default().insert(id);
    }

    fn remove(&mut self, id: u64) -> Option<CancellationToken> {
        let (address, token) = self.by_age.remove(&id)?;
        if let Some(ids) = self.by_address.get_mut(&address) {
            ids.remove(&id);
            if ids.is_empty() {
                self.by_address.remove(&address);
            }
        }
        Some(token)
    }

    /// The one to cut: the longest waiting of the address with the most waiting (of two such
    /// addresses, the one whose longest waiting came first).
    fn victim(&self) -> Option<u64> {
        self.by_address
            .values()
            .filter_map(|ids| Some((ids.len(), *ids.first()?)))
            .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))
            .map(|(_, id)| id)
    }
}

/// A connection's place among the waiting; leaving it (dropping) takes it off.
pub struct WaitGuard {
    waiting: Arc<Waiting>,
    id: u64,
}

impl Waiting {
    /// At most `limit` waiting `what` connections (at least [`MIN_LIMIT`]: a small server's
    /// few clients signing in at once are not cut).
    pub fn new(limit: usize, what: &'static str) -> Arc<Self> {
        Arc::new(Self {
            entries: Mutex::default(),
            next: AtomicU64::new(0),
            limit: limit.max(MIN_LIMIT),
            what,
        })
    }

    /// The connection from `address` whose `cut` token this is starts waiting on its client.
    /// If that makes too many, one is cut (its token cancelled; see the module's rule) — never
    /// this one.
    pub fn enter(self: &Arc<Self>, address: IpAddr, cut: &CancellationToken) -> WaitGuard {
        // An IPv6 client owns a /64: counted as one address, as the password throttle does.
        let address = portcullis_auth::address_key(address);
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let victim = {
            let mut entries = self.entries.lock();
            // Chosen before this one is counted: never this one.
            let victim = if entries.by_age.len() >= self.limit {
                entries.victim().and_then(|v| entries.remove(v))
            } else {
                None
            };
            entries.insert(id, address, cut.clone());
            victim
        };
        if let Some(token) = victim {
            token.cancel();
            metrics::counter!("portcullis_waiting_cut_total", "listener" => self.what).increment(1);
        }
        WaitGuard {
            waiting: self.clone(),
            id,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.lock().by_age.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for WaitGuard {
    fn drop(&mut self) {
        self.waiting.entries.lock().remove(self.id);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn the_longest_waiting_is_cut_and_leaving_frees_a_place() {
        let waiting = Waiting::new(0, "test");
        let tokens: Vec<_> = (0..MIN_LIMIT + 2)
            .map(|_| CancellationToken::new())
            .collect();
        let a = waiting.enter(ip(1), &tokens[0]);
        let b = waiting.enter(ip(1), &tokens[1]);
        let others: Vec<_> = tokens[4..]
            .iter()
            .map(|t| waiting.enter(ip(1), t))
            .collect();
        assert!(tokens.iter().all(|t| !t.is_cancelled()));
        let c = waiting.enter(ip(1), &tokens[2]);
        assert!(tokens[0].is_cancelled(), "the oldest is cut");
        assert!(!tokens[1].is_cancelled() && !tokens[2].is_cancelled());
        assert_eq!(waiting.len(), MIN_LIMIT);
        drop(a); // the cut one leaves: nothing else changes
        drop(b); // one that was waiting leaves: a place is free
        let _d = waiting.enter(ip(1), &tokens[3]);
        assert!(!tokens[2].is_cancelled() && !tokens[3].is_cancelled());
        drop(c);
        drop(others);
        assert_eq!(waiting.len(), 1);
    }

    #[test]
    fn the_address_with_the_most_waiting_loses_its_own_first() {
        let waiting = Waiting::new(0, "test");
        // A slow client at .1 came first; a flood from .2 fills the rest and keeps coming.
        let slow = CancellationToken::new();
        let _slow = waiting.enter(ip(1), &slow);
        let flood: Vec<_> = (0..3 * MIN_LIMIT)
            .map(|_| CancellationToken::new())
            .collect();
        let _held: Vec<_> = flood.iter().map(|t| waiting.enter(ip(2), t)).collect();
        assert!(
            !slow.is_cancelled(),
            "a client at another address is not cut"
        );
        let cut = flood.iter().filter(|t| t.is_cancelled()).count();
        assert_eq!(cut, 2 * MIN_LIMIT + 1);
        assert!(
            flood[..cut].iter().all(CancellationToken::is_cancelled),
            "oldest first"
        );
        // Many addresses with one each: the oldest of all goes.
        let waiting = Waiting::new(0, "test");
        let each: Vec<_> = (0..=MIN_LIMIT).map(|_| CancellationToken::new()).collect();
        let _held: Vec<_> = (0..=MIN_LIMIT)
            .map(|i| waiting.enter(ip(i as u8), &each[i]))
            .collect();
        assert!(each[0].is_cancelled());
        assert_eq!(each.iter().filter(|t| t.is_cancelled()).count(), 1);
    }

    #[test]
    fn an_ipv6_client_is_its_slash_64() {
        let waiting = Waiting::new(0, "test");
        let slow = CancellationToken::new();
        let _slow = waiting.enter(IpAddr::from([0x2001, 0xdb8, 1, 1, 0, 0, 0, 1]), &slow);
        // A flood from many addresses of one /64 counts as one address.
        let flood: Vec<_> = (0..2 * MIN_LIMIT)
            .map(|_| CancellationToken::new())
            .collect();
        let _held: Vec<_> = flood
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let last = u16::try_from(i).unwrap();
                waiting.enter(IpAddr::from([0x2001, 0xdb8, 2, 2, 0, 0, 0, last]), t)
            })
            .collect();
        assert!(!slow.is_cancelled());
        assert_eq!(
            flood.iter().filter(|t| t.is_cancelled()).count(),
            MIN_LIMIT + 1
        );
    }
}
