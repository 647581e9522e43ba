//! Sessions: authenticated connections (SQL or HTTP), listed in `sys.sessions` while they last.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

/// How a session was authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// SCRAM-SHA-256 over the PostgreSQL protocol.
    Scram,
    /// A password sent to the HTTP API (`/v1/login` or HTTP Basic).
    HttpPassword,
    /// An OpenID Connect ID token given as the password (or to `/v1/sso_token`).
    SsoIdToken,
    /// An OAuth 2.0 JWT access token given as the password (or as a Bearer token).
    SsoAccessToken,
}

impl AuthMethod {
    pub fn name(self) -> &'static str {
        match self {
            Self::Scram => "password (SCRAM-SHA-256)",
            Self::HttpPassword => "password (HTTP)",
            Self::SsoIdToken => "sso (id_token)",
            Self::SsoAccessToken => "sso (access_token)",
        }
    }
}

/// Which front end a session came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Postgres,
    Http,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Self::Postgres => "postgresql",
            Self::Http => "http",
        }
    }
}

/// One authenticated session.
#[derive(Debug, Clone)]
pub struct Session {
    /// Random, unguessable; also the HTTP access token's public half is never this.
    pub id: String,
    pub user_id: i64,
    /// The user's FQUN.
    pub user: String,
    /// The database the session is in (may differ from the user's own).
    pub database: String,
    pub database_id: i64,
    pub method: AuthMethod,
    pub protocol: Protocol,
    pub peer: String,
    /// Unix seconds.
    pub started_at: i64,
    /// Unix seconds; HTTP sessions end then.
    pub expires_at: Option<i64>,
    /// Set for sessions signed in through an SSO integration (no catalog user behind them;
    /// `user_id` is 0).
    pub sso: Option<SsoIdentity>,
}

/// What an SSO sign-in established: the groups and roles the token mapped to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoIdentity {
    /// The integration that validated the token.
    pub integration: String,
    /// Catalog group ids (possibly of another database: cross-database sign-in).
    pub groups: Vec<i64>,
    /// Catalog role ids.
    pub roles: Vec<i64>,
    /// The token's `exp`, Unix seconds.
    pub token_expires_at: i64,
}

/// The live sessions, with a generation number bumped on every change so that readers can
/// tell when their copy is stale.
#[derive(Debug, Default)]
pub struct SessionRegistry {
    sessions: RwLock<HashMap<String, Arc<Session>>>,
    generation: AtomicU64,
}

impl SessionRegistry {
    /// A fresh random session id (128 bits, hex).
    pub fn new_id() -> String {
        let bytes: [u8; 16] = rand::random();
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn insert(&self, session: Session) -> Arc<Session> {
        let session = Arc::new(session);
        self.sessions
            .write()
            .insert(session.id.clone(), session.clone());
        self.generation.fetch_add(1, Ordering::Release);
        session
    }

    pub fn remove(&self, id: &str) -> Option<Arc<Session>> {
        let removed = self.sessions.write().remove(id);
        if removed.is_some() {
            self.generation.fetch_add(1, Ordering::Release);
        }
        removed
    }

    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        self.sessions.read().get(id).cloned()
    }

    /// Removes sessions past their expiry; returns how many.
    pub fn expire(&self, now: i64) -> usize {
        let mut map = self.sessions.write();
        let before = map.len();
        map.retain(|_, s| s.expires_at.is_none_or(|t| t > now));
        let removed = before - map.len();
        if removed > 0 {
            self.generation.fetch_add(1, Ordering::Release);
        }
        removed
    }

    /// Removes every session in a database (it was dropped); returns their ids.
    pub fn remove_database(&self, database_id: i64) -> Vec<String> {
        let mut map = self.sessions.write();
        let ids: Vec<String> = map
            .values()
            .filter(|s| s.database_id == database_id)
            .map(|s| s.id.clone())
            .collect();
        for id in &ids {
            map.remove(id);
        }
        if !ids.is_empty() {
            self.generation.fetch_add(1, Ordering::Release);
        }
        ids
    }

    pub fn list(&self) -> Vec<Arc<Session>> {
        let mut list: Vec<_> = self.sessions.read().values().cloned().collect();
        list.sort_by(|a, b| a.started_at.cmp(&b.started_at).then(a.id.cmp(&b.id)));
        list
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn len(&self) -> usize {
        self.sessions.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
