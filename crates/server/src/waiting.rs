//! Connections waiting on their client — a PostgreSQL startup or sign-in exchange not finished,
//! an HTTP request head not complete, a kept-alive HTTP connection idle — are at most a limit
//! at once; beyond it the one that has waited longest is cut. A client that keeps the server
//! waiting (a slowloris, a flood of half-sent startup packets) thereby only ever cuts its own
//! kind, and a client that sends what it has to at once is never the one cut: the timeouts
//! (60 s to sign in, 10 s for a request head) would leave the slots taken meanwhile.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

/// The smallest limit.
pub const MIN_LIMIT: usize = 16;

/// The connections waiting on their client, oldest first.
pub struct Waiting {
    entries: Mutex<BTreeMap<u64, CancellationToken>>,
    next: AtomicU64,
    limit: usize,
    what: &'static str,
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

    /// The connection whose `cut` token this is starts waiting on its client. If that makes
    /// too many, the one waiting longest is cut (its token cancelled) — never this one.
    pub fn enter(self: &Arc<Self>, cut: &CancellationToken) -> WaitGuard {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let oldest = {
            let mut entries = self.entries.lock();
            entries.insert(id, cut.clone());
            if entries.len() > self.limit {
                entries.pop_first().map(|(_, token)| token)
            } else {
                None
            }
        };
        if let Some(token) = oldest {
            token.cancel();
            metrics::counter!("portcullis_waiting_cut_total", "listener" => self.what).increment(1);
        }
        WaitGuard {
            waiting: self.clone(),
            id,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for WaitGuard {
    fn drop(&mut self) {
        self.waiting.entries.lock().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_longest_waiting_is_cut_and_leaving_frees_a_place() {
        let waiting = Waiting::new(0, "test");
        let tokens: Vec<_> = (0..MIN_LIMIT + 2)
            .map(|_| CancellationToken::new())
            .collect();
        let a = waiting.enter(&tokens[0]);
        let b = waiting.enter(&tokens[1]);
        let others: Vec<_> = tokens[4..].iter().map(|t| waiting.enter(t)).collect();
        assert!(tokens.iter().all(|t| !t.is_cancelled()));
        let c = waiting.enter(&tokens[2]);
        assert!(tokens[0].is_cancelled(), "the oldest is cut");
        assert!(!tokens[1].is_cancelled() && !tokens[2].is_cancelled());
        assert_eq!(waiting.len(), MIN_LIMIT);
        drop(a); // the cut one leaves: nothing else changes
        drop(b); // one that was waiting leaves: a place is free
        let _d = waiting.enter(&tokens[3]);
        assert!(!tokens[2].is_cancelled() && !tokens[3].is_cancelled());
        drop(c);
        drop(others);
        assert_eq!(waiting.len(), 1);
    }
}
