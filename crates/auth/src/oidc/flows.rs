//! Pending sign-ins by `state`: each handed out once (taking removes it under its shard's
//! lock), each expiring after the flow lifetime, at most `capacity` at once so unauthenticated
//! requests cannot grow the table without bound. Sharded, and swept in creation order, so
//! inserting stays cheap with hundreds of thousands of pending flows.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// A sign-in waiting for the provider's callback.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PendingFlow {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
    /// The database the session will be in.
    pub database: String,
    /// The database whose integration signs in (`@source_db`), when not `database`.
    pub source_database: Option<String>,
    pub integration_id: i64,
    pub integration: String,
    pub pool_id: Option<i64>,
    pub issuer: String,
    pub redirect_uri: String,
    /// Where the browser goes after sign-in (a local path).
    pub callback_path: String,
    /// Whether the flow was bound to the browser with a cookie that the callback must bring.
    pub browser_bound: bool,
    /// When it started, on this node (a flow read from a shared store counts from its
    /// reading: the store checks its expiry).
    #[serde(skip, default = "Instant::now")]
    pub created: Instant,
}

/// What the table keeps: a pending sign-in of some flow (the code flow's [`PendingFlow`], a
/// SAML authentication request).
pub trait Pending {
    /// The value that names it (the code flow's `state`, a SAML request's id).
    fn key(&self) -> &str;
    fn created(&self) -> Instant;
    /// Whether it must be finished in the browser that started it.
    fn browser_bound(&self) -> bool;
}

impl Pending for PendingFlow {
    fn key(&self) -> &str {
        &self.state
    }
    fn created(&self) -> Instant {
        self.created
    }
    fn browser_bound(&self) -> bool {
        self.browser_bound
    }
}

/// Why a callback's `state` found no flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TakeError {
    /// Never issued, already used, or forgotten.
    Unknown,
    Expired,
}

const SHARDS: usize = 32;

struct Shard<T> {
    flows: HashMap<String, T>,
    /// States in creation order (some already taken), for sweeping from the front.
    order: VecDeque<(Instant, String)>,
}

impl<T> Default for Shard<T> {
    fn default() -> Self {
        Self {
            flows: HashMap::new(),
            order: VecDeque::new(),
        }
    }
}

/// The pending-flow table.
pub struct FlowTable<T: Pending = PendingFlow> {
    shards: Vec<Mutex<Shard<T>>>,
    hasher: RandomState,
    live: AtomicUsize,
    ttl: Duration,
    capacity: usize,
}

impl<T: Pending> FlowTable<T> {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: RandomState::new(),
            live: AtomicUsize::new(0),
            ttl,
            capacity,
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn shard(&self, state: &str) -> &Mutex<Shard<T>> {
        let i = self.hasher.hash_one(state) as usize % SHARDS;
        &self.shards[i]
    }

    /// Forgets the shard's expired flows (oldest first) and compacts its order list.
    fn sweep_shard(&self, shard: &mut Shard<T>, now: Instant) {
        while let Some((created, _)) = shard.order.front() {
            if now.duration_since(*created) < self.ttl {
                break;
            }
            if let Some((_, state)) = shard.order.pop_front() {
                if shard.flows.remove(&state).is_some() {
                    self.live.fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
        if shard.order.len() > 2 * shard.flows.len() + 64 {
            let flows = &shard.flows;
            shard.order.retain(|(_, s)| flows.contains_key(s));
        }
    }

    /// Adds a flow; refuses when the table is full of live flows.
    pub fn insert(&self, flow: T) -> Result<(), String> {
        self.insert_at(flow, Instant::now())
    }

    /// [`Self::insert`] at the moment `now` (tests step a clock instead of sleeping).
    pub fn insert_at(&self, flow: T, now: Instant) -> Result<(), String> {
        let mut shard = self.shard(flow.key()).lock();
        self.sweep_shard(&mut shard, now);
        if self.live.load(Ordering::Relaxed) >= self.capacity {
            drop(shard);
            self.sweep_at(now);
            if self.live.load(Ordering::Relaxed) >= self.capacity {
                return Err(
                    "too many sign-ins are waiting for their provider; try again later".into(),
                );
            }
            shard = self.shard(flow.key()).lock();
        }
        let key = flow.key().to_owned();
        shard.order.push_back((flow.created(), key.clone()));
        if shard.flows.insert(key, flow).is_none() {
            self.live.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Whether a live (unexpired) pending flow of `state` is bound to a browser; false if
    /// there is none (taking it then says why).
    pub fn is_browser_bound(&self, state: &str) -> bool {
        self.shard(state)
            .lock()
            .flows
            .get(state)
            .is_some_and(|f| f.browser_bound() && f.created().elapsed() < self.ttl)
    }

    /// A copy of the live flow of `state`, left in place (taking it later is what uses it).
    pub fn peek(&self, state: &str) -> Option<T>
    where
        T: Clone,
    {
        self.shard(state)
            .lock()
            .flows
            .get(state)
            .filter(|f| f.created().elapsed() < self.ttl)
            .cloned()
    }

    /// Takes the flow of `state`: at most once.
    pub fn take(&self, state: &str) -> Result<T, TakeError> {
        let flow = self
            .shard(state)
            .lock()
            .flows
            .remove(state)
            .ok_or(TakeError::Unknown)?;
        self.live.fetch_sub(1, Ordering::Relaxed);
        if flow.created().elapsed() >= self.ttl {
            return Err(TakeError::Expired);
        }
        Ok(flow)
    }

    /// Forgets expired flows.
    pub fn sweep(&self) {
        self.sweep_at(Instant::now());
    }

    /// [`Self::sweep`] at the moment `now`.
    pub fn sweep_at(&self, now: Instant) {
        for shard in &self.shards {
            self.sweep_shard(&mut shard.lock(), now);
        }
    }

    pub fn len(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(state: &str) -> PendingFlow {
        PendingFlow {
            state: state.into(),
            nonce: "n".into(),
            verifier: "v".into(),
            database: "d".into(),
            source_database: None,
            integration_id: 1,
            integration: "i".into(),
            pool_id: None,
            issuer: "https://idp".into(),
            redirect_uri: "https://db/v1/callback".into(),
            callback_path: "/".into(),
            browser_bound: false,
            created: Instant::now(),
        }
    }

    #[test]
    fn flows_are_taken_once_and_expire() {
        let t = FlowTable::new(Duration::from_secs(60), 2);
        t.insert(flow("a")).unwrap();
        t.insert(flow("b")).unwrap();
        assert!(t.insert(flow("c")).is_err(), "capacity");
        assert_eq!(t.take("a").unwrap().state, "a");
        assert_eq!(t.take("a").unwrap_err(), TakeError::Unknown);
        let short = FlowTable::new(Duration::ZERO, 2);
        short.insert(flow("x")).unwrap();
        assert_eq!(short.take("x").unwrap_err(), TakeError::Expired);
    }

    #[test]
    fn expired_flows_make_room() {
        let t = FlowTable::new(Duration::from_millis(50), 3);
        for s in ["a", "b", "c"] {
            t.insert(flow(s)).unwrap();
        }
        assert!(t.insert(flow("d")).is_err());
        // 60 ms later, on a stepped clock (no sleeping).
        let later = Instant::now() + Duration::from_millis(60);
        let mut d = flow("d");
        d.created = later;
        t.insert_at(d, later).unwrap();
        // insert sweeps d's own shard (and all shards only when full): sweep the rest.
        t.sweep_at(later);
        assert_eq!(t.len(), 1, "the expired ones were swept");
        assert_eq!(t.take("a").unwrap_err(), TakeError::Unknown);
    }
}
