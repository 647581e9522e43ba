//! Sessions: authenticated connections (SQL or HTTP), listed in `sys.sessions` while they last.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::events::{EventLog, SignInMethod};
use crate::reason::Reason;

/// How a session was authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AuthMethod {
    /// SCRAM-SHA-256 over the PostgreSQL protocol.
    Scram,
    /// A password sent to the HTTP API (`/v1/login` or HTTP Basic).
    HttpPassword,
    /// An OpenID Connect ID token given as the password (or to `/v1/sso_token`).
    SsoIdToken,
    /// An OAuth 2.0 JWT access token given as the password (or as a Bearer token).
    SsoAccessToken,
    /// A user name and password checked by an LDAP integration's directory (a bind as the
    /// user); the session lasts the integration's `session_seconds`.
    Ldap,
    /// A signed SAML assertion from an integration's IdP; the session lasts the integration's
    /// `session_seconds`.
    Saml,
}

impl AuthMethod {
    pub fn name(self) -> &'static str {
        match self {
            Self::Scram => "password (SCRAM-SHA-256)",
            Self::HttpPassword => "password (HTTP)",
            Self::SsoIdToken => "sso (id_token)",
            Self::SsoAccessToken => "sso (access_token)",
            Self::Ldap => "sso (ldap)",
            Self::Saml => "sso (saml)",
        }
    }
}

/// Which front end a session came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

/// One authenticated session. (Serialized only to hand an HTTP session to another node,
/// sealed, through the store they share.)
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
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
    /// How the sign-in was made (`sys.authentication_events`).
    pub via: SignInMethod,
    /// The client's `application_name` (or User-Agent product).
    pub application: Option<String>,
    /// The sign-in token's `jti` or hash prefix (never the token).
    pub token_id: Option<String>,
}

/// What an SSO sign-in established: the groups and roles the token mapped to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
    /// The assignment the sign-in came through — the source database's integration, or the
    /// connectivity pool's: the session ends when that assignment goes (the same integration
    /// may stay assigned elsewhere).
    pub assigned_by: portcullis_store::AssignmentTarget,
}

/// The idle timeout and maximum session age that apply to a session (0 = none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionLimits {
    pub idle_seconds: i64,
    pub max_age_seconds: i64,
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
    /// An HTTP session's lifetime (its access token's) ran out (Unix seconds).
    Expired {
        at: i64,
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
            Self::Expired { .. } => Reason::SessionExpired,
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
            Self::Expired { .. } => "its lifetime ran out",
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
    /// Unix seconds of the last statement or request (the idle timeout counts from it).
    last_active: AtomicI64,
}

/// The live sessions, with a generation number bumped on every change so that readers can
/// tell when their copy is stale. Every sign-in and every end is recorded in the event log.
#[derive(Default)]
pub struct SessionRegistry {
    sessions: Arc<RwLock<HashMap<String, Entry>>>,
    generation: Arc<AtomicU64>,
    events: Arc<EventLog>,
    /// The sessions other nodes hold (several nodes over one store), as they published them.
    remote: Arc<RwLock<Arc<Vec<SessionRow>>>>,
    /// This node's number, when several share the store.
    node: Arc<std::sync::OnceLock<i64>>,
}

/// A session as `sys.sessions` shows it; what a node publishes of its sessions for the others.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SessionRow {
    pub id: String,
    pub user_id: i64,
    pub user: String,
    pub database: String,
    pub database_id: i64,
    pub method: String,
    pub protocol: String,
    pub peer: String,
    pub start_time: String,
    pub expires_at: Option<String>,
    pub sso_integration: Option<String>,
    pub groups: String,
    pub roles: String,
    pub token_expires_at: Option<String>,
    /// The node that holds it (several nodes over one store).
    pub node: Option<i64>,
}

/// A read-only handle on the registry's sessions, for catalog queries: they run off the async
/// workers and list the sessions only when they read `sys.sessions`, so an ordinary query costs
/// nothing per live session.
#[derive(Clone, Default)]
pub struct SessionsView {
    sessions: Arc<RwLock<HashMap<String, Entry>>>,
    generation: Arc<AtomicU64>,
    remote: Arc<RwLock<Arc<Vec<SessionRow>>>>,
    node: Arc<std::sync::OnceLock<i64>>,
}

/// The sessions a query shows, and until when that list holds without a change.
pub struct LiveSessions {
    /// Oldest first.
    pub sessions: Vec<Arc<Session>>,
    /// Unix seconds at which the first of them reaches an end (`i64::MAX`: none will).
    pub valid_until: i64,
}

impl SessionsView {
    /// The sessions other nodes hold.
    pub fn remote(&self) -> Arc<Vec<SessionRow>> {
        self.remote.read().clone()
    }

    /// This node's number, when several share the store.
    pub fn node(&self) -> Option<i64> {
        self.node.get().copied()
    }

    /// The registry's generation, bumped on every change (read it before [`Self::live`]).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The sessions not past an end at `now`: one the sweeper has not ended yet is left out,
    /// as if it had.
    pub fn live(&self, now: i64, limits: impl Fn(&Session) -> SessionLimits) -> LiveSessions {
        let mut valid_until = i64::MAX;
        let mut sessions: Vec<_> = self
            .sessions
            .read()
            .values()
            .filter(|e| {
                let (doom, next) = e.doom(now, &limits);
                valid_until = valid_until.min(next);
                doom.is_none()
            })
            .map(|e| e.session.clone())
            .collect();
        sessions.sort_by(|a, b| a.started_at.cmp(&b.started_at).then(a.id.cmp(&b.id)));
        LiveSessions {
            sessions,
            valid_until,
        }
    }
}

impl Entry {
    /// Why the session must end at `now`, if it must; else `None` and the first moment one
    /// of its limits will be reached (`i64::MAX`: never, as things stand).
    fn doom(
        &self,
        now: i64,
        limits: impl Fn(&Session) -> SessionLimits,
    ) -> (Option<EndReason>, i64) {
        let s = &self.session;
        let mut next = i64::MAX;
        if let Some(exp) = s.sso.as_ref().map(|i| i.token_expires_at) {
            if exp <= now {
                // A directory sign-in has no token: its authority is its lifetime.
                let reason = if s.method == AuthMethod::Ldap {
                    EndReason::Expired { at: exp }
                } else {
                    EndReason::TokenExpired { at: exp }
                };
                return (Some(reason), now);
            }
            next = next.min(exp);
        }
        if let Some(at) = s.expires_at {
            if at <= now {
                return (Some(EndReason::Expired { at }), now);
            }
            next = next.min(at);
        }
        let limits = limits(s);
        if limits.max_age_seconds > 0 {
            let at = s.started_at.saturating_add(limits.max_age_seconds);
            if at <= now {
                let seconds = limits.max_age_seconds;
                return (Some(EndReason::MaxAge { seconds }), now);
            }
            next = next.min(at);
        }
        let idle = limits.idle_seconds;
        if idle > 0 {
            let at = self
                .last_active
                .load(Ordering::Acquire)
                .saturating_add(idle);
            if at <= now {
                return (Some(EndReason::IdleTimeout { seconds: idle }), now);
            }
            next = next.min(at);
        }
        (None, next)
    }
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

    /// A registry whose sign-ins and ends go to `events`.
    pub fn with_events(events: Arc<EventLog>) -> Self {
        Self {
            events,
            ..Self::default()
        }
    }

    /// Sets this node's number (several nodes over one store).
    pub fn set_node(&self, node: i64) {
        let _ = self.node.set(node);
    }

    /// This node's number, when several share the store.
    pub fn node(&self) -> Option<i64> {
        self.node.get().copied()
    }

    /// Replaces what is known of the sessions other nodes hold.
    pub fn set_remote(&self, rows: Vec<SessionRow>) {
        let mut remote = self.remote.write();
        if **remote != rows {
            *remote = Arc::new(rows);
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// A session another node holds.
    pub fn remote_session(&self, id: &str) -> Option<SessionRow> {
        self.remote.read().iter().find(|r| r.id == id).cloned()
    }

    /// The authentication event log.
    pub fn events(&self) -> &Arc<EventLog> {
        &self.events
    }

    /// Registers a new session (a sign-in: recorded in the event log).
    pub fn insert(&self, session: Session) -> Arc<Session> {
        let session = Arc::new(session);
        let (end, _) = tokio::sync::watch::channel(None);
        let replaced = self.sessions.write().insert(
            session.id.clone(),
            Entry {
                session: session.clone(),
                end,
                checked: AtomicU64::new(0),
                last_active: AtomicI64::new(session.started_at),
            },
        );
        debug_assert!(
            replaced.is_none(),
            "session ids are random and never reused"
        );
        self.generation.fetch_add(1, Ordering::Release);
        self.events.signed_in(&session);
        session
    }

    /// Holds a copy of a session another node signed in (its HTTP access token came here).
    /// No sign-in is recorded (it was, where it happened); the idle timeout counts from `now`.
    /// A session this node holds already is returned as it is.
    pub fn adopt(&self, session: Session, now: i64) -> Arc<Session> {
        let mut sessions = self.sessions.write();
        if let Some(e) = sessions.get(&session.id) {
            return e.session.clone();
        }
        let session = Arc::new(session);
        let (end, _) = tokio::sync::watch::channel(None);
        sessions.insert(
            session.id.clone(),
            Entry {
                session: session.clone(),
                end,
                checked: AtomicU64::new(0),
                last_active: AtomicI64::new(now),
            },
        );
        drop(sessions);
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

    /// Forgets a session whose client left, signed out, or whose sign-in did not complete
    /// (`why`: [`Reason::ClientDisconnected`] or [`Reason::SignedOut`]).
    pub fn remove(&self, id: &str, why: Reason) -> Option<Arc<Session>> {
        let removed = self.sessions.write().remove(id);
        let entry = removed?;
        self.generation.fetch_add(1, Ordering::Release);
        let detail = match why {
            Reason::SignedOut => "signed out",
            Reason::ClientDisconnected => "the client closed the connection",
            Reason::Upstream => "the database's upstream refused the sign-in",
            _ => "the sign-in could not complete",
        };
        self.events.ended(&entry.session, why, detail);
        Some(entry.session)
    }

    /// Ends a session because its authority ended: it is forgotten and its connection told.
    pub fn end(&self, id: &str, reason: EndReason) -> bool {
        let removed = self.sessions.write().remove(id);
        let Some(entry) = removed else {
            return false;
        };
        self.events
            .ended(&entry.session, reason.reason(), &reason.message());
        entry.end.send_replace(Some(reason));
        self.generation.fetch_add(1, Ordering::Release);
        true
    }

    /// Records activity on a session (a statement, a request): the idle timeout starts again.
    pub fn touch(&self, id: &str, now: i64) {
        if let Some(e) = self.sessions.read().get(id) {
            e.last_active.fetch_max(now, Ordering::AcqRel);
        }
    }

    /// Unix seconds of the session's last activity.
    pub fn last_active(&self, id: &str) -> Option<i64> {
        self.sessions
            .read()
            .get(id)
            .map(|e| e.last_active.load(Ordering::Acquire))
    }

    /// A receiver that learns why the session ended (it holds `Some(reason)` then), or `None`
    /// if the session is not live.
    pub fn watch(&self, id: &str) -> Option<tokio::sync::watch::Receiver<Option<EndReason>>> {
        self.sessions.read().get(id).map(|e| e.end.subscribe())
    }

    /// A statement or request of the session at `now`: the session, and whether its authority
    /// was verified at `generation`; or, if it reached an end (token expired, lifetime, maximum
    /// age, idle timeout — `limits` as in [`Self::expire`]), it is ended here and the reason
    /// given. The session's idle time starts again.
    pub fn activity(
        &self,
        id: &str,
        generation: u64,
        now: i64,
        limits: impl Fn(&Session) -> SessionLimits,
    ) -> Result<(Arc<Session>, bool), EndReason> {
        let ended = {
            let sessions = self.sessions.read();
            let Some(e) = sessions.get(id) else {
                return Err(EndReason::Gone);
            };
            match e.doom(now, limits).0 {
                Some(reason) => reason,
                None => {
                    e.last_active.fetch_max(now, Ordering::AcqRel);
                    let verified = e.checked.load(Ordering::Acquire) == generation;
                    return Ok((e.session.clone(), verified));
                }
            }
        };
        self.end(id, ended.clone());
        Err(ended)
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

    /// Ends the sessions whose time is up — the sign-in token expired, the HTTP session's
    /// lifetime ran out, idle longer than the idle timeout, older than the maximum session
    /// age (`limits` gives both for a session's database; 0 = none) — and tells their
    /// connections why. Returns how many ended.
    pub fn expire(&self, now: i64, limits: impl Fn(&Session) -> SessionLimits) -> usize {
        let doomed: Vec<(String, EndReason)> = self
            .sessions
            .read()
            .values()
            .filter_map(|e| e.doom(now, &limits).0.map(|r| (e.session.id.clone(), r)))
            .collect();
        doomed
            .into_iter()
            .filter(|(id, reason)| self.end(id, reason.clone()))
            .count()
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

    /// A handle for catalog queries (see [`SessionsView`]).
    pub fn view(&self) -> SessionsView {
        SessionsView {
            sessions: self.sessions.clone(),
            generation: self.generation.clone(),
            remote: self.remote.clone(),
            node: self.node.clone(),
        }
    }

    pub fn len(&self) -> usize {
        self.sessions.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn session(started_at: i64, token_expires_at: Option<i64>) -> Session {
        Session {
            id: SessionRegistry::new_id(),
            user_id: 2,
            user: "u@system".into(),
            database: "system".into(),
            database_id: 1,
            method: AuthMethod::Scram,
            protocol: Protocol::Postgres,
            peer: "127.0.0.1:5".into(),
            started_at,
            expires_at: None,
            sso: token_expires_at.map(|exp| SsoIdentity {
                integration: "corp".into(),
                integration_id: 9,
                groups: vec![],
                roles: vec![],
                token_expires_at: exp,
                assigned_by: portcullis_store::AssignmentTarget::Database(1),
            }),
            credential_stamp: None,
            via: Default::default(),
            application: None,
            token_id: None,
        }
    }

    /// Token expiry, idle timeout and maximum age, decided at a clock the test steps: the
    /// sweeper (`expire`), a statement (`activity`) and `sys.sessions` (`live`) agree.
    #[test]
    fn ends_are_decided_at_the_clock_given() {
        let limits = |_: &Session| SessionLimits {
            idle_seconds: 300,
            max_age_seconds: 3600,
        };
        let registry = SessionRegistry::default();
        let token = registry.insert(session(1000, Some(1100)));
        let idle = registry.insert(session(1000, None));
        let old = registry.insert(session(1000, None));
        let view = registry.view();
        let live = view.live(1050, limits);
        assert_eq!(live.sessions.len(), 3);
        assert_eq!(
            live.valid_until, 1100,
            "the token's expiry is the first end"
        );
        // A statement at 1250 keeps `old` active; `idle` says nothing.
        assert!(registry.activity(&old.id, 0, 1250, limits).is_ok());
        assert_eq!(
            registry.activity(&token.id, 0, 1100, limits).unwrap_err(),
            EndReason::TokenExpired { at: 1100 }
        );
        assert_eq!(view.live(1299, limits).sessions.len(), 2);
        // At 1300 `idle` has been idle for 300 s; `old` was active at 1250.
        assert_eq!(
            view.live(1300, limits).sessions.len(),
            1,
            "listed as ended at once"
        );
        assert_eq!(registry.expire(1300, limits), 1);
        assert!(registry.get(&idle.id).is_none());
        // Keeping busy does not outlive the maximum age.
        for t in (1300..4600).step_by(200) {
            assert!(registry.activity(&old.id, 0, t, limits).is_ok(), "at {t}");
        }
        assert_eq!(
            registry.activity(&old.id, 0, 4600, limits).unwrap_err(),
            EndReason::MaxAge { seconds: 3600 }
        );
        assert!(registry.is_empty());
    }
}
