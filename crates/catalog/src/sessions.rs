//! Sessions: authenticated connections (SQL or HTTP), listed in `sys.sessions` while they last.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::reason::Reason;

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
    /// For password sessions, [`crate::authority::credential_stamp`] when they signed in: a
    /// password changed since (by an administrator) ends the session.
    pub credential_stamp: Option<i64>,
}

/// What an SSO sign-in established: the groups and roles the token mapped to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoIdentity {
    /// The integration that validated the token.
    pub integration: String,
    pub integration_id: i64,
    /// Catalog group ids (possibly of another database: cross-database sign-in).
    pub groups: Vec<i64>,
    /// Catalog role ids.
    pub roles: Vec<i64>,
    /// The token's `exp`, Unix seconds.
    pub token_expires_at: i64,
}

/// Why a session ended before its client left. Owns what the client is told: the wire's
/// SQLSTATE (57P01, like PostgreSQL's "terminating connection due to administrator command")
/// and the sentence; over HTTP the session's token answers 401.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    DatabaseDropped,
    UserDropped,
    UserDisabled,
    PasswordChanged,
    /// A group or role the SSO sign-in conferred was dropped.
    GroupOrRoleDropped,
    /// The session's principals no longer hold USE on its database.
    UseRevoked,
    IntegrationDropped,
    IntegrationDisabled,
    /// The integration may no longer confer what the sign-in got (unassigned, or its writer
    /// lost the privileges it handed on).
    ConferralWithdrawn,
    /// The token the session signed in with expired (Unix seconds).
    TokenExpired {
        at: i64,
    },
    /// An administrator ended it (`ALTER SYSTEM END SESSION`).
    EndedByAdministrator {
        by: String,
    },
    /// Renewing the session with the provider's refresh token failed (revoked, blocked
    /// meanwhile, provider refused).
    RenewalFailed,
    /// No statement or request for `seconds` (the idle timeout).
    IdleTimeout {
        seconds: i64,
    },
    /// The session reached the maximum session age (`seconds`).
    MaxAge {
        seconds: i64,
    },
    /// Not live any more, for a reason this connection was not told (e.g. it expired).
    Gone,
}

impl EndReason {
    /// The reason code (`sys.authentication_events`, metrics, audit log).
    pub fn reason(&self) -> Reason {
        match self {
            Self::DatabaseDropped => Reason::DatabaseDropped,
            Self::UserDropped => Reason::UserDropped,
            Self::UserDisabled => Reason::UserDisabled,
            Self::PasswordChanged => Reason::PasswordChanged,
            Self::GroupOrRoleDropped => Reason::GroupOrRoleDropped,
            Self::UseRevoked => Reason::UseRevoked,
            Self::IntegrationDropped => Reason::IntegrationDropped,
            Self::IntegrationDisabled => Reason::IntegrationDisabled,
            Self::ConferralWithdrawn => Reason::ConferralWithdrawn,
            Self::TokenExpired { .. } => Reason::TokenExpired,
            Self::EndedByAdministrator { .. } => Reason::EndedByAdministrator,
            Self::RenewalFailed => Reason::RenewalFailed,
            Self::IdleTimeout { .. } => Reason::IdleTimeout,
            Self::MaxAge { .. } => Reason::MaxSessionAge,
            Self::Gone => Reason::SessionGone,
        }
    }

    /// Always 57P01, like PostgreSQL's "terminating connection due to administrator command"
    /// — also for the codes a refused sign-in shares (a user disabled, an integration
    /// disabled), which refuse a sign-in with their own [`Reason::sqlstate`]. Over HTTP the
    /// session's token answers 401 ([`Reason::http_status`] of every end).
    pub fn sqlstate(&self) -> &'static str {
        "57P01"
    }

    pub fn message(&self) -> String {
        if let Self::TokenExpired { at } = self {
            let when = chrono::DateTime::from_timestamp(*at, 0).map_or_else(
                || at.to_string(),
                |t| t.format("%Y-%m-%d %H:%M:%SZ").to_string(),
            );
            return format!(
                "terminating connection: session ended: the sign-in token expired at {when}; \
                 sign in again"
            );
        }
        if let Self::EndedByAdministrator { by } = self {
            return format!(
                "terminating connection: session ended by an administrator ({by}); sign in again"
            );
        }
        let why = match self {
            Self::DatabaseDropped => "the session's database was dropped",
            Self::UserDropped => "the user was dropped",
            Self::UserDisabled => "the user was disabled",
            Self::PasswordChanged => "the user's password was changed",
            Self::GroupOrRoleDropped => "a group or role of the sign-in was dropped",
            Self::UseRevoked => "the USE privilege on the database was revoked",
            Self::IntegrationDropped => "the SSO integration of the sign-in was dropped",
            Self::IntegrationDisabled => "the SSO integration of the sign-in was disabled",
            Self::ConferralWithdrawn => {
                "the SSO integration may no longer confer the groups or roles of the sign-in"
            }
            Self::RenewalFailed => "the provider no longer renews the sign-in",
            Self::IdleTimeout { seconds } => {
                return format!(
                    "terminating connection: session ended after {seconds} s without activity \
                     (idle timeout); sign in again"
                )
            }
            Self::MaxAge { seconds } => {
                return format!(
                    "terminating connection: session ended: it reached the maximum session age \
                     of {seconds} s; sign in again"
                )
            }
            Self::Gone | Self::TokenExpired { .. } | Self::EndedByAdministrator { .. } => {
                "it is no longer live"
            }
        };
        format!("terminating connection: session ended because {why}; sign in again")
    }
}

struct Entry {
    session: Arc<Session>,
    /// Tells the connection holding the session that it ended, and why.
    end: tokio::sync::watch::Sender<Option<EndReason>>,
    /// The catalog generation this session's authority was last verified at (0: never): a
    /// statement under the same generation needs no new check.
    checked: AtomicU64,
}

/// The live sessions, with a generation number bumped on every change so that readers can
/// tell when their copy is stale.
#[derive(Default)]
pub struct SessionRegistry {
    sessions: RwLock<HashMap<String, Entry>>,
    generation: AtomicU64,
}

impl std::fmt::Debug for SessionRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRegistry")
            .field("sessions", &self.len())
            .finish()
    }
}

impl SessionRegistry {
    /// A fresh random session id (128 bits, hex).
    pub fn new_id() -> String {
        let bytes: [u8; 16] = rand::random();
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Registers a session, or replaces one with the same id (a renewal), keeping whoever
    /// watches it.
    pub fn insert(&self, session: Session) -> Arc<Session> {
        let session = Arc::new(session);
        let mut map = self.sessions.write();
        match map.get_mut(&session.id) {
            Some(entry) => {
                entry.session = session.clone();
                entry.checked.store(0, Ordering::Release);
            }
            None => {
                let (end, _) = tokio::sync::watch::channel(None);
                map.insert(
                    session.id.clone(),
                    Entry {
                        session: session.clone(),
                        end,
                        checked: AtomicU64::new(0),
                    },
                );
            }
        }
        drop(map);
        self.generation.fetch_add(1, Ordering::Release);
        session
    }

    /// Replaces a session that is still live (a renewal); `None` if it ended meanwhile — a
    /// renewal never brings back a session that was ended or signed out.
    pub fn replace(&self, session: Session) -> Option<Arc<Session>> {
        let session = Arc::new(session);
        let mut map = self.sessions.write();
        let entry = map.get_mut(&session.id)?;
        entry.session = session.clone();
        entry.checked.store(0, Ordering::Release);
        drop(map);
        self.generation.fetch_add(1, Ordering::Release);
        Some(session)
    }

    /// Forgets a session whose client left (or whose sign-in did not complete).
    pub fn remove(&self, id: &str) -> Option<Arc<Session>> {
        let removed = self.sessions.write().remove(id);
        if removed.is_some() {
            self.generation.fetch_add(1, Ordering::Release);
        }
        removed.map(|e| e.session)
    }

    /// Ends a session because its authority ended: it is forgotten and its connection told.
    pub fn end(&self, id: &str, reason: EndReason) -> bool {
        let removed = self.sessions.write().remove(id);
        let Some(entry) = removed else {
            return false;
        };
        tracing::info!(target: "portcullis::audit", session = id, user = %entry.session.user, reason = %reason.message(), "session ended");
        entry.end.send_replace(Some(reason));
        self.generation.fetch_add(1, Ordering::Release);
        true
    }

    /// A receiver that learns why the session ended (it holds `Some(reason)` then), or `None`
    /// if the session is not live.
    pub fn watch(&self, id: &str) -> Option<tokio::sync::watch::Receiver<Option<EndReason>>> {
        self.sessions.read().get(id).map(|e| e.end.subscribe())
    }

    /// The session and whether its authority was verified at `generation`.
    pub fn get_checked(&self, id: &str, generation: u64) -> Option<(Arc<Session>, bool)> {
        self.sessions.read().get(id).map(|e| {
            (
                e.session.clone(),
                e.checked.load(Ordering::Acquire) == generation,
            )
        })
    }

    /// Records that the session's authority was verified at `generation`.
    pub fn mark_checked(&self, id: &str, generation: u64) {
        if let Some(e) = self.sessions.read().get(id) {
            e.checked.store(generation, Ordering::Release);
        }
    }

    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        self.sessions.read().get(id).map(|e| e.session.clone())
    }

    /// Removes sessions past their expiry, and ends those whose sign-in token expired (their
    /// connections are told); returns how many.
    pub fn expire(&self, now: i64) -> usize {
        let token_expired: Vec<(String, i64)> = self
            .sessions
            .read()
            .values()
            .filter_map(|e| {
                let exp = e.session.sso.as_ref()?.token_expires_at;
                (exp <= now).then(|| (e.session.id.clone(), exp))
            })
            .collect();
        let ended = token_expired
            .into_iter()
            .filter(|(id, at)| self.end(id, EndReason::TokenExpired { at: *at }))
            .count();
        let mut map = self.sessions.write();
        let before = map.len();
        map.retain(|_, e| e.session.expires_at.is_none_or(|t| t > now));
        let removed = before - map.len();
        if removed > 0 {
            self.generation.fetch_add(1, Ordering::Release);
        }
        removed + ended
    }

    /// Ends every session `verdict` refuses (after a catalog change); those it accepts are
    /// marked verified at `generation`. Returns how many ended.
    pub fn end_where(
        &self,
        generation: u64,
        verdict: impl Fn(&Session) -> Option<EndReason>,
    ) -> usize {
        let doomed: Vec<(String, EndReason)> = self
            .sessions
            .read()
            .values()
            .filter_map(|e| match verdict(&e.session) {
                Some(r) => Some((e.session.id.clone(), r)),
                None => {
                    e.checked.store(generation, Ordering::Release);
                    None
                }
            })
            .collect();
        doomed
            .into_iter()
            .filter(|(id, reason)| self.end(id, reason.clone()))
            .count()
    }

    pub fn list(&self) -> Vec<Arc<Session>> {
        let mut list: Vec<_> = self
            .sessions
            .read()
            .values()
            .map(|e| e.session.clone())
            .collect();
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
