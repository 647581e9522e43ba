//! Idle upstream sessions, kept per person's role (and `application_name`) so that a repeat
//! sign-in skips PostgreSQL's process start and SCRAM exchange. A session goes back only when
//! its client left it at rest; it is reset (`ROLLBACK` if needed, then `DISCARD ALL`) before it
//! is kept, checked for life when taken, and closed after `upstream_pool_idle_seconds` or when
//! more than `upstream_pool_size` wait for one upstream. Sessions are never shared between
//! people: the key is the role the session logged in as.
//!
//! The pool also remembers which memberships each person's role was last given, so a repeat
//! sign-in with the same memberships and an idle session waiting needs no provisioning
//! transaction; a mirrored catalog change on that upstream forgets it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::session::UpstreamSession;

/// How many idle sessions are kept and for how long.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    /// Idle sessions kept per upstream (0: none — every sign-in logs in anew).
    pub size: usize,
    /// An idle session is closed after this long.
    pub idle: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            size: 20,
            idle: Duration::from_secs(60),
        }
    }
}

/// Which idle sessions a sign-in may take.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    /// The upstream, as shown (host, port, database, administrator; never its password).
    pub upstream: String,
    /// The role the session is logged in as.
    pub role: String,
    pub application: Option<String>,
}

struct Parked {
    session: Box<UpstreamSession>,
    since: Instant,
}

#[derive(Default)]
struct Inner {
    idle: HashMap<Key, Vec<Parked>>,
    /// The memberships each role was last given, by (upstream, role).
    provisioned: HashMap<(String, String), Vec<String>>,
}

/// The idle sessions of every upstream.
#[derive(Default)]
pub struct Pool {
    settings: PoolSettings,
    inner: Mutex<Inner>,
}

impl Pool {
    pub fn new(settings: PoolSettings) -> Self {
        Self {
            settings,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `key`'s role was last given exactly `groups` (and nothing changed since).
    pub fn provisioned_with(&self, key: &Key, groups: &[String]) -> bool {
        self.lock()
            .provisioned
            .get(&(key.upstream.clone(), key.role.clone()))
            .is_some_and(|g| g == groups)
    }

    /// Notes the memberships `key`'s role was just given (called while the person is locked).
    pub fn note_provisioned(&self, key: &Key, groups: Vec<String>) {
        self.lock()
            .provisioned
            .insert((key.upstream.clone(), key.role.clone()), groups);
    }

    /// Forgets what roles of `upstream` were given (a mirrored change may have altered them),
    /// and closes the idle sessions of `dropped` roles.
    pub fn forget(&self, upstream: &str, dropped: &[String]) {
        let closing: Vec<Parked> = {
            let mut inner = self.lock();
            inner.provisioned.retain(|(u, _), _| u != upstream);
            let keys: Vec<Key> = inner
                .idle
                .keys()
                .filter(|k| k.upstream == upstream && dropped.contains(&k.role))
                .cloned()
                .collect();
            keys.iter()
                .filter_map(|k| inner.idle.remove(k))
                .flatten()
                .collect()
        };
        close_all(closing);
    }

    /// An idle session for `key` that is still alive, newest first.
    pub fn take(&self, key: &Key) -> Option<Box<UpstreamSession>> {
        loop {
            let parked = {
                let mut inner = self.lock();
                let list = inner.idle.get_mut(key)?;
                let p = list.pop();
                if list.is_empty() {
                    inner.idle.remove(key);
                }
                p?
            };
            let mut session = parked.session;
            if session.alive() {
                metrics::counter!("portcullis_upstream_pool_total", "result" => "reused")
                    .increment(1);
                return Some(session);
            }
            metrics::counter!("portcullis_upstream_pool_total", "result" => "dead").increment(1);
            close_all(vec![Parked {
                session,
                since: parked.since,
            }]);
        }
    }

    /// Takes back a session whose client is done with it: if it is at rest it is reset and
    /// kept, otherwise (or if the reset fails) closed. Runs on a task of its own.
    pub fn give_back(self: &Arc<Self>, mut session: Box<UpstreamSession>) {
        let Some(status) = session.flow.at_rest() else {
            metrics::counter!("portcullis_upstream_pool_total", "result" => "not_at_rest")
                .increment(1);
            close_all(vec![Parked {
                session,
                since: Instant::now(),
            }]);
            return;
        };
        if self.settings.size == 0 {
            close_all(vec![Parked {
                session,
                since: Instant::now(),
            }]);
            return;
        }
        let pool = self.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(Duration::from_secs(5), session.reset(status)).await {
                Ok(Ok(())) => pool.park(session),
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "an upstream session could not be reset; closed");
                    session.close().await;
                }
                Err(_) => tracing::debug!("an upstream session did not reset in time; closed"),
            }
        });
    }

    fn park(&self, session: Box<UpstreamSession>) {
        let Some(key) = session.key.clone() else {
            return;
        };
        let evicted = {
            let mut inner = self.lock();
            let held: usize = inner
                .idle
                .iter()
                .filter(|(k, _)| k.upstream == key.upstream)
                .map(|(_, v)| v.len())
                .sum();
            let mut evicted = Vec::new();
            if held >= self.settings.size {
                // The oldest idle session of this upstream makes room.
                let oldest = inner
                    .idle
                    .iter()
                    .filter(|(k, _)| k.upstream == key.upstream)
                    .filter_map(|(k, v)| v.first().map(|p| (k.clone(), p.since)))
                    .min_by_key(|(_, since)| *since)
                    .map(|(k, _)| k);
                if let Some(k) = oldest {
                    if let Some(list) = inner.idle.get_mut(&k) {
                        evicted.push(list.remove(0));
                        if list.is_empty() {
                            inner.idle.remove(&k);
                        }
                    }
                }
            }
            inner.idle.entry(key).or_default().push(Parked {
                session,
                since: Instant::now(),
            });
            evicted
        };
        close_all(evicted);
    }

    /// Closes the sessions idle longer than the setting.
    pub fn reap(&self) {
        let now = Instant::now();
        let closing: Vec<Parked> = {
            let mut inner = self.lock();
            let mut closing = Vec::new();
            inner.idle.retain(|_, list| {
                let (old, young): (Vec<Parked>, Vec<Parked>) = std::mem::take(list)
                    .into_iter()
                    .partition(|p| now.duration_since(p.since) >= self.settings.idle);
                closing.extend(old);
                *list = young;
                !list.is_empty()
            });
            closing
        };
        close_all(closing);
    }

    /// Idle sessions held, for all upstreams.
    pub fn idle_count(&self) -> usize {
        self.lock().idle.values().map(Vec::len).sum()
    }
}

/// Closes sessions (a Terminate, then the socket) on a task of their own.
fn close_all(sessions: Vec<Parked>) {
    if sessions.is_empty() {
        return;
    }
    tokio::spawn(async move {
        for p in sessions {
            p.session.close().await;
        }
    });
}
