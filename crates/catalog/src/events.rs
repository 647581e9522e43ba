//! The authentication event log: one event per sign-in attempt and per session end, kept in
//! memory for `sys.authentication_events` (the newest [`EventLog::capacity`] of them), written
//! to the store in batches by a background task (the sign-in path never waits on a store
//! write), written as one JSON line each to the audit log, and counted in the metrics.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use portcullis_store::{AuthEventRecord, Store};

use crate::reason::Reason;
use crate::sessions::Session;

/// How a sign-in was made.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub enum SignInMethod {
    /// SCRAM-SHA-256 over the PostgreSQL protocol.
    #[default]
    Password,
    /// A password sent to the HTTP API (`/v1/login`, HTTP Basic).
    HttpLogin,
    /// A provider token given as the password, to `/v1/sso_token` or as a Bearer token.
    Token,
    /// SASL OAUTHBEARER (PostgreSQL 18 clients).
    OAuthBearer,
    /// The device authorization grant (RFC 8628).
    DeviceGrant,
    /// The browser's authorization code flow.
    CodeFlow,
    /// Seed 004's domain login.
    DomainLogin,
    /// A PostgreSQL password sign-in checked by an LDAP directory.
    Directory,
    /// A SAML assertion posted to the assertion consumer service by a browser.
    Saml,
}

impl SignInMethod {
    pub const ALL: [SignInMethod; 9] = [
        Self::Password,
        Self::HttpLogin,
        Self::Token,
        Self::OAuthBearer,
        Self::DeviceGrant,
        Self::CodeFlow,
        Self::DomainLogin,
        Self::Directory,
        Self::Saml,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::HttpLogin => "http_login",
            Self::Token => "token",
            Self::OAuthBearer => "oauthbearer",
            Self::DeviceGrant => "device_grant",
            Self::CodeFlow => "code_flow",
            Self::DomainLogin => "domain_login",
            Self::Directory => "directory",
            Self::Saml => "saml",
        }
    }
}

/// Where a sign-in came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Client {
    /// `ip:port`.
    pub peer: String,
    /// `application_name` (PostgreSQL) or the `User-Agent`'s product (HTTP), at most 64
    /// characters.
    pub application: Option<String>,
}

impl Client {
    pub fn new(peer: impl Into<String>, application: Option<&str>) -> Self {
        Self {
            peer: peer.into(),
            application: application
                .map(|a| a.chars().filter(|c| !c.is_control()).take(64).collect())
                .filter(|a: &String| !a.is_empty()),
        }
    }
}

/// A sign-in attempt as the log records it.
#[derive(Debug, Clone, Default)]
pub struct Attempt {
    pub method: SignInMethod,
    /// The FQUN, or the identity the token named (what the client sent, if refused before).
    pub identity: String,
    pub database: String,
    pub integration: Option<String>,
    pub client: Client,
    /// A token's `jti`, or the first 12 hex digits of its SHA-256.
    pub token_id: Option<String>,
}

/// `sign_in` or `session_end`.
pub const SIGN_IN: &str = "sign_in";
pub const SESSION_END: &str = "session_end";

/// The events, newest kept in memory; the rest is in the store until its retention ends.
pub struct EventLog {
    next_id: AtomicI64,
    /// This node's number in a store several nodes share (its ids are
    /// `counter << NODE_BITS | node`, so nodes never give out the same id); -1 alone.
    node: AtomicI64,
    recent: RwLock<VecDeque<Arc<AuthEventRecord>>>,
    pending: Mutex<Vec<Arc<AuthEventRecord>>>,
    wake: tokio::sync::Notify,
    capacity: usize,
}

impl Default for EventLog {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

/// Events kept in memory for queries by default.
pub const DEFAULT_CAPACITY: usize = 100_000;
/// A batch is written once this many are pending (or every [`FLUSH_INTERVAL`]).
const BATCH: usize = 512;
pub const FLUSH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

impl std::fmt::Debug for EventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLog")
            .field("recent", &self.recent.read().len())
            .finish()
    }
}

/// Bits of an event id that name the node (several nodes over one store).
const NODE_BITS: u32 = 20;
const NODE_MASK: i64 = (1 << NODE_BITS) - 1;

/// Unix microseconds now.
pub fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

impl EventLog {
    pub fn new(capacity: usize) -> Self {
        Self {
            next_id: AtomicI64::new(1),
            node: AtomicI64::new(-1),
            recent: RwLock::default(),
            pending: Mutex::default(),
            wake: tokio::sync::Notify::new(),
            capacity: capacity.max(1),
        }
    }

    /// How many events queries see at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Loads the newest retained events from the store (at start).
    pub async fn load(
        &self,
        store: &dyn Store,
        retention_days: i64,
    ) -> Result<(), crate::CatalogError> {
        let since = now_micros() - retention_days.max(1) * 86_400 * 1_000_000;
        let stored = store.load_events(since, self.capacity).await?;
        match store.node() {
            Some(node) => {
                self.node.store(node & NODE_MASK, Ordering::Release);
                self.next_id
                    .fetch_max((stored.max_id >> NODE_BITS) + 1, Ordering::AcqRel);
            }
            None => {
                self.next_id.fetch_max(stored.max_id + 1, Ordering::AcqRel);
            }
        }
        let mut recent = self.recent.write();
        recent.clear();
        recent.extend(stored.events.into_iter().map(Arc::new));
        Ok(())
    }

    /// A sign-in that opened `session`.
    pub fn signed_in(&self, session: &Session) {
        crate::metrics::signed_in(session.via);
        self.record(session_event(session, SIGN_IN, "success", None, ""));
    }

    /// A refused sign-in; `database_id` is 0 when the database named does not exist.
    pub fn refused(&self, attempt: &Attempt, database_id: i64, reason: Reason, detail: &str) {
        crate::metrics::refused(attempt.method, reason);
        self.record(AuthEventRecord {
            id: 0,
            at_micros: now_micros(),
            kind: SIGN_IN.into(),
            method: attempt.method.name().into(),
            identity: attempt.identity.clone(),
            database_id,
            database: attempt.database.clone(),
            integration: attempt.integration.clone(),
            peer: attempt.client.peer.clone(),
            application: attempt.client.application.clone(),
            result: "failure".into(),
            reason: Some(reason.code().into()),
            detail: detail.into(),
            session_id: None,
            token_id: attempt.token_id.clone(),
        });
    }

    /// A session that ended.
    pub fn ended(&self, session: &Session, reason: Reason, detail: &str) {
        crate::metrics::ended(session.via, reason);
        self.record(session_event(
            session,
            SESSION_END,
            "ended",
            Some(reason),
            detail,
        ));
    }

    fn record(&self, mut event: AuthEventRecord) {
        let event = {
            // Ids are given out under the lock, so the kept events stay in id order.
            let mut recent = self.recent.write();
            let counter = self.next_id.fetch_add(1, Ordering::AcqRel);
            let node = self.node.load(Ordering::Acquire);
            event.id = if node >= 0 {
                (counter << NODE_BITS) | node
            } else {
                counter
            };
            if recent.len() >= self.capacity {
                recent.pop_front();
            }
            let event = Arc::new(event);
            recent.push_back(event.clone());
            event
        };
        audit_line(&event);
        let mut pending = self.pending.lock();
        pending.push(event);
        if pending.len() >= BATCH {
            self.wake.notify_one();
        }
    }

    /// The events newer than `after_id`, oldest first, and the oldest id still kept.
    pub fn since(&self, after_id: i64) -> (Vec<Arc<AuthEventRecord>>, i64) {
        let recent = self.recent.read();
        let oldest = recent.front().map_or(i64::MAX, |e| e.id);
        let start = recent.partition_point(|e| e.id <= after_id);
        (recent.range(start..).cloned().collect(), oldest)
    }

    /// Forgets events older than `before_micros` (retention).
    pub fn forget_before(&self, before_micros: i64) {
        let mut recent = self.recent.write();
        while recent.front().is_some_and(|e| e.at_micros < before_micros) {
            recent.pop_front();
        }
    }

    /// Writes what is pending to the store; returns how many were written.
    pub async fn flush(&self, store: &dyn Store) -> usize {
        let batch = std::mem::take(&mut *self.pending.lock());
        if batch.is_empty() {
            return 0;
        }
        match store.append_events(&batch).await {
            Ok(()) => batch.len(),
            Err(e) => {
                tracing::error!(error = %e, events = batch.len(), "could not write authentication events; they stay in memory only");
                0
            }
        }
    }

    /// The writer: flushes every [`FLUSH_INTERVAL`] or when a batch is full, and prunes what
    /// is older than `retention_days` once an hour. Runs until the process ends.
    pub async fn run_writer(self: Arc<Self>, store: Arc<dyn Store>, retention_days: i64) {
        let retention = retention_days.max(1) * 86_400 * 1_000_000;
        let mut last_prune = std::time::Instant::now() - std::time::Duration::from_secs(3600);
        loop {
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(FLUSH_INTERVAL) => {}
            }
            self.flush(store.as_ref()).await;
            if last_prune.elapsed() >= std::time::Duration::from_secs(3600) {
                last_prune = std::time::Instant::now();
                let before = now_micros() - retention;
                self.forget_before(before);
                if let Err(e) = store.prune_events(before).await {
                    tracing::error!(error = %e, "could not prune authentication events");
                }
            }
        }
    }
}

/// An event about a live session (its sign-in or its end).
fn session_event(
    session: &Session,
    kind: &str,
    result: &str,
    reason: Option<Reason>,
    detail: &str,
) -> AuthEventRecord {
    AuthEventRecord {
        id: 0,
        at_micros: now_micros(),
        kind: kind.into(),
        method: session.via.name().into(),
        identity: session.user.clone(),
        database_id: session.database_id,
        database: session.database.clone(),
        integration: session.sso.as_ref().map(|s| s.integration.clone()),
        peer: session.peer.clone(),
        application: session.application.clone(),
        result: result.into(),
        reason: reason.map(|r| r.code().into()),
        detail: detail.into(),
        session_id: Some(session.id.clone()),
        token_id: session.token_id.clone(),
    }
}

/// One JSON line per event on the audit target (`portcullis::audit`); the server's log
/// setup writes that target as JSON lines to stderr or a file.
fn audit_line(e: &AuthEventRecord) {
    tracing::info!(
        target: "portcullis::audit",
        event = %e.kind,
        id = e.id,
        method = %e.method,
        identity = %e.identity,
        database = %e.database,
        integration = e.integration.as_deref(),
        peer = %e.peer,
        application = e.application.as_deref(),
        result = %e.result,
        reason = e.reason.as_deref(),
        detail = %e.detail,
        session_id = e.session_id.as_deref(),
        token_id = e.token_id.as_deref(),
        "authentication event"
    );
}

/// A short, safe name for a token in the log: its `jti` (at most 64 characters) or the first
/// 12 hex digits of its SHA-256.
pub fn token_id(token: &str, jti: Option<&str>) -> String {
    match jti {
        Some(j) if !j.is_empty() => j.chars().filter(|c| !c.is_control()).take(64).collect(),
        _ => {
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
            let hex: String = digest.as_ref()[..6]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            format!("sha256:{hex}")
        }
    }
}
