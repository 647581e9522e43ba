//! Password sign-in decisions. The SCRAM exchange itself runs in the PostgreSQL front end
//! against the verifier handed out here; this module decides what happens before and after it.

use std::sync::Arc;

use aws_lc_rs::{digest, hmac};
use portcullis_catalog::credential::ScramVerifier;
use portcullis_catalog::model::user_state;
use portcullis_catalog::names::{resolve_login, Fqun};
use portcullis_catalog::privileges::{holds, principals_of, Action, Privilege};
use portcullis_catalog::{
    now, policy_for, Attempt, AuthMethod, Catalog, CatalogError, Client, Protocol, Reason, Session,
    SessionRegistry, SignInMethod,
};
use portcullis_store::{Change, ObjectRef};

/// Why a sign-in was refused. Every variant is FATAL on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignInError {
    /// Unknown user or wrong password: the same answer for both.
    #[error("password authentication failed for user \"{0}\"")]
    BadPassword(String),
    #[error("the password of user \"{0}\" has expired; an administrator must set a new one with ALTER USER … PASSWORD")]
    Expired(String),
    /// A disabled user: answered exactly like a wrong password (the audit log says which), so
    /// that guessing against a locked account learns nothing.
    #[error("password authentication failed for user \"{0}\"")]
    Locked(String),
    /// Too many wrong passwords from this address lately: refused before any password is
    /// looked at, and not counted against the account.
    #[error("too many failed sign-ins from this address; try again in a minute")]
    Throttled,
    #[error("database \"{0}\" does not exist")]
    NoDatabase(String),
    #[error(
        "user \"{user}\" may not use database \"{database}\": the USE privilege on it is required"
    )]
    NoUse { user: String, database: String },
    #[error("no user name was given; connect as user@database or give a database")]
    NoUser,
    #[error("sign-in failed: {0}")]
    Internal(String),
}

impl SignInError {
    /// The reason code; it decides the SQLSTATE and the HTTP status.
    pub fn reason(&self) -> Reason {
        match self {
            Self::BadPassword(_) => Reason::BadPassword,
            Self::Expired(_) => Reason::PasswordExpired,
            Self::Locked(_) => Reason::UserDisabled,
            Self::Throttled => Reason::AddressThrottled,
            Self::NoDatabase(_) => Reason::UnknownDatabase,
            Self::NoUse { .. } => Reason::NoUsePrivilege,
            Self::NoUser => Reason::NoUser,
            Self::Internal(_) => Reason::Internal,
        }
    }

    pub fn sqlstate(&self) -> &'static str {
        self.reason().sqlstate()
    }
}

impl From<CatalogError> for SignInError {
    fn from(e: CatalogError) -> Self {
        Self::Internal(e.message)
    }
}

/// Who a client says it is, resolved against the catalog, and where it connects from.
#[derive(Debug, Clone)]
pub struct LoginTarget {
    pub fqun: Fqun,
    /// How it signs in (`Password` over the PostgreSQL protocol, `HttpLogin`, `DomainLogin`).
    pub via: SignInMethod,
    pub client: Client,
    /// When the attempt began (the sign-in latency metric).
    pub began: std::time::Instant,
    /// The database the session will be in.
    pub database: String,
    /// The user's id, if the user exists.
    pub user_id: Option<i64>,
    /// The user's verifier, or a made-up one for an unknown user so that the exchange runs the
    /// same way and fails the same way.
    pub verifier: ScramVerifier,
}

/// Wrong passwords one address may send in [`FAILURE_WINDOW`] before it is refused.
pub const FAILURES_PER_ADDRESS: u32 = 10;
pub const FAILURE_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

/// Password sign-in over the catalog.
pub struct PasswordAuthenticator {
    catalog: Arc<Catalog>,
    /// Keys the made-up verifiers of unknown users (random per process).
    decoy_key: hmac::Key,
    /// Wrong passwords per client address.
    failures: crate::Throttle,
    /// The decoys' iteration count, with the catalog version it was worked out for (a weak
    /// reference: it keeps no old catalog alive, and its address is not reused while held).
    iterations_cache: parking_lot::Mutex<
        Option<(
            std::sync::Weak<portcullis_catalog::model::CatalogState>,
            u32,
        )>,
    >,
}

/// The client address of a peer string (`ip:port` or `ip`).
fn peer_ip(peer: &str) -> Option<std::net::IpAddr> {
    peer.parse::<std::net::SocketAddr>()
        .map(|a| a.ip())
        .or_else(|_| peer.parse())
        .ok()
}

impl PasswordAuthenticator {
    pub fn new(catalog: Arc<Catalog>) -> Self {
        let secret: [u8; 32] = rand::random();
        Self {
            catalog,
            decoy_key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
            failures: crate::Throttle::new(FAILURES_PER_ADDRESS, FAILURE_WINDOW),
            iterations_cache: parking_lot::Mutex::new(None),
        }
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// Refuses a password attempt from an address that failed too often lately (checked
    /// before the exchange, so a throttled guess never reaches the account's own counter),
    /// then resolves the startup user and database. A refusal here is recorded. The attempt
    /// counts against the address from here on and is taken back when the password proves
    /// right ([`Self::succeeded`]): guesses sent in parallel cannot all pass the check before
    /// the first of them fails.
    pub fn lookup(
        &self,
        user: &str,
        database: Option<&str>,
        client: &Client,
        via: SignInMethod,
    ) -> Result<LoginTarget, SignInError> {
        let refuse = |e: SignInError| {
            let attempt = Attempt {
                method: via,
                identity: user.to_owned(),
                database: database.unwrap_or_default().to_owned(),
                client: client.clone(),
                ..Attempt::default()
            };
            self.catalog.refused(&attempt, e.reason(), &e.to_string());
            e
        };
        if let Some(ip) = peer_ip(&client.peer) {
            if !self.failures.allows(ip) {
                return Err(refuse(SignInError::Throttled));
            }
            self.failures.miss(ip);
        }
        let (fqun, database) =
            resolve_login(user, database).ok_or_else(|| refuse(SignInError::NoUser))?;
        let state = self.catalog.state();
        let record = state
            .database(&fqun.database)
            .and_then(|d| state.user(d.id, &fqun.user));
        let verifier = record.and_then(|u| ScramVerifier::parse(&u.verifier));
        let (user_id, verifier) = match (record, verifier) {
            (Some(u), Some(v)) => (Some(u.id), v),
            _ => (None, self.decoy(&fqun, &state)),
        };
        Ok(LoginTarget {
            fqun,
            via,
            client: client.clone(),
            began: std::time::Instant::now(),
            database,
            user_id,
            verifier,
        })
    }

    /// A stable made-up verifier for a name that has no user, with the iteration count most
    /// real users have (so that an unknown name costs the same PBKDF2 work as a known one).
    fn decoy(
        &self,
        fqun: &Fqun,
        state: &Arc<portcullis_catalog::model::CatalogState>,
    ) -> ScramVerifier {
        let tag = hmac::sign(&self.decoy_key, fqun.to_string().as_bytes());
        let bytes = tag.as_ref();
        ScramVerifier {
            iterations: self.usual_iterations(state),
            salt: bytes[..16].to_vec(),
            stored_key: digest::digest(&digest::SHA256, bytes).as_ref().to_vec(),
            server_key: bytes.to_vec(),
        }
    }

    /// The iteration count most users' verifiers have (the configured one when there are
    /// none), worked out once per catalog version.
    fn usual_iterations(&self, state: &Arc<portcullis_catalog::model::CatalogState>) -> u32 {
        if let Some((seen, n)) = &*self.iterations_cache.lock() {
            if std::sync::Weak::ptr_eq(seen, &Arc::downgrade(state)) {
                return *n;
            }
        }
        let mut counts: std::collections::HashMap<u32, usize> = std::collections::HashMap::new();
        for u in &state.snap.users {
            if let Some(v) = ScramVerifier::parse(&u.verifier) {
                *counts.entry(v.iterations).or_default() += 1;
            }
        }
        let usual = counts
            .into_iter()
            .max_by_key(|(iterations, n)| (*n, *iterations))
            .map_or(self.catalog.options.scram_iterations, |(i, _)| i);
        *self.iterations_cache.lock() = Some((Arc::downgrade(state), usual));
        usual
    }

    /// Records a wrong password: counts the attempt and disables the user at the limit.
    pub async fn failed(&self, target: &LoginTarget) -> SignInError {
        // Already counted against the address by `lookup`.
        let error = SignInError::BadPassword(target.fqun.to_string());
        if let Some(user_id) = target.user_id {
            // Counted after the answer, off the sign-in's path: a known user's wrong password
            // then costs the client the same time as an unknown user's (no store write, no
            // writer lock to wait for before the refusal).
            let catalog = self.catalog.clone();
            let fqun = target.fqun.clone();
            tokio::spawn(async move {
                let target_fqun = fqun;
                let result = catalog
                .update(|state| {
                    let Some(user) = state.user_by_id(user_id) else { return Vec::new() };
                    if user.state == user_state::DISABLED {
                        return Vec::new();
                    }
                    let mut user = user.clone();
                    user.failed_attempts += 1;
                    let limit = policy_for(state, user.database_id, Some(user.id)).invalid_attempt_limit;
                    // The built-in administrator is never locked out by guesses (that would
                    // let anyone lock out the one account that can fix things); guessing is
                    // throttled per address instead. docs/security.md: recovery from the host.
                    if limit > 0 && user.failed_attempts >= limit && !is_builtin_admin(state, &user) {
                        user.state = user_state::DISABLED.into();
                        tracing::warn!(target: "portcullis::audit", user = %target_fqun, attempts = user.failed_attempts, "user disabled after too many failed sign-ins");
                    }
                    vec![Change::PutUser(user)]
                })
                .await;
                if let Err(e) = result {
                    tracing::error!(error = %e, "could not record a failed sign-in");
                }
            });
        }
        self.refused(target, &error);
        portcullis_catalog::metrics::sign_in_took(target.via, false, target.began.elapsed());
        error
    }

    fn refused(&self, target: &LoginTarget, error: &SignInError) {
        let attempt = Attempt {
            method: target.via,
            identity: target.fqun.to_string(),
            database: target.database.clone(),
            client: target.client.clone(),
            ..Attempt::default()
        };
        self.catalog
            .refused(&attempt, error.reason(), &error.to_string());
    }

    /// Finishes a sign-in whose password was right: state, expiry and USE checks, then the
    /// session.
    /// (The session's sign-in is recorded when it is registered; a refusal here.)
    pub async fn succeeded(
        &self,
        target: &LoginTarget,
        protocol: Protocol,
        expires_at: Option<i64>,
    ) -> Result<Arc<Session>, SignInError> {
        // The password was right: the attempt `lookup` counted is taken back.
        self.refund_failure(&target.client);
        let result = self.open_session(target, protocol, expires_at).await;
        if let Err(e) = &result {
            self.refused(target, e);
        }
        portcullis_catalog::metrics::sign_in_took(
            target.via,
            result.is_ok(),
            target.began.elapsed(),
        );
        result
    }

    async fn open_session(
        &self,
        target: &LoginTarget,
        protocol: Protocol,
        expires_at: Option<i64>,
    ) -> Result<Arc<Session>, SignInError> {
        let name = target.fqun.to_string();
        let Some(user_id) = target.user_id else {
            return Err(SignInError::BadPassword(name));
        };
        let state = self.catalog.state();
        let user = state
            .user_by_id(user_id)
            .ok_or_else(|| SignInError::BadPassword(name.clone()))?
            .clone();
        if user.state == user_state::DISABLED {
            return Err(SignInError::Locked(name));
        }
        let now = now();
        let lifetime = policy_for(&state, user.database_id, Some(user.id)).lifetime_days;
        let aged_out = lifetime > 0 && user.password_set_at + lifetime * 86_400 <= now;
        if user.state == user_state::PASSWORD_EXPIRED || aged_out {
            if user.state != user_state::PASSWORD_EXPIRED {
                let mut expired = user.clone();
                expired.state = user_state::PASSWORD_EXPIRED.into();
                self.catalog.commit(&[Change::PutUser(expired)]).await?;
            }
            return Err(SignInError::Expired(name));
        }
        let database = state
            .database(&target.database)
            .ok_or_else(|| SignInError::NoDatabase(target.database.clone()))?;
        let principals = principals_of(&state, user.id, database.id);
        if !holds(
            &state,
            &principals,
            Privilege::new(Action::Use),
            ObjectRef::Database(database.id),
        ) {
            return Err(SignInError::NoUse {
                user: name,
                database: database.name.clone(),
            });
        }
        if user.failed_attempts > 0 {
            let mut reset = user.clone();
            reset.failed_attempts = 0;
            self.catalog.commit(&[Change::PutUser(reset)]).await?;
        }
        Ok(self.catalog.sessions.insert(Session {
            id: SessionRegistry::new_id(),
            user_id: user.id,
            user: name,
            database: database.name.clone(),
            database_id: database.id,
            method: match target.via {
                SignInMethod::Password => AuthMethod::Scram,
                _ => AuthMethod::HttpPassword,
            },
            protocol,
            peer: target.client.peer.clone(),
            started_at: now,
            expires_at,
            sso: None,
            credential_stamp: Some(portcullis_catalog::authority::credential_stamp(&user)),
            via: target.via,
            application: target.client.application.clone(),
            token_id: None,
        }))
    }

    /// Checks a cleartext password (HTTP) and opens a session.
    pub async fn sign_in_with_password(
        &self,
        user: &str,
        database: Option<&str>,
        password: &str,
        client: &Client,
        via: SignInMethod,
        expires_at: Option<i64>,
    ) -> Result<Arc<Session>, SignInError> {
        let target = self.lookup(user, database, client, via)?;
        self.check_cleartext(&target, password, Protocol::Http, expires_at)
            .await
    }

    /// Checks a cleartext password against the target's verifier (or its decoy, at the same
    /// cost) and opens a session, or counts the failure.
    pub async fn check_cleartext(
        &self,
        target: &LoginTarget,
        password: &str,
        protocol: Protocol,
        expires_at: Option<i64>,
    ) -> Result<Arc<Session>, SignInError> {
        let verifier = target.verifier.clone();
        let password = password.to_owned();
        // PBKDF2 takes milliseconds: keep it off the async workers.
        let ok = tokio::task::spawn_blocking(move || verifier.verify(&password))
            .await
            .map_err(|e| SignInError::Internal(e.to_string()))?;
        if ok && target.user_id.is_some() {
            self.succeeded(target, protocol, expires_at).await
        } else {
            Err(self.failed(target).await)
        }
    }

    /// Whether the client's address may try a password now (it has not failed too often).
    pub fn allows(&self, client: &Client) -> bool {
        peer_ip(&client.peer).is_none_or(|ip| self.failures.allows(ip))
    }

    /// Takes back a failure counted before the check ([`Self::count_failure`]) that passed.
    pub fn refund_failure(&self, client: &Client) {
        if let Some(ip) = peer_ip(&client.peer) {
            self.failures.refund(ip);
        }
    }

    /// Counts a wrong password checked elsewhere (a directory) against the client's address.
    pub fn count_failure(&self, client: &Client) {
        if let Some(ip) = peer_ip(&client.peer) {
            self.failures.miss(ip);
        }
    }
}

/// `admin@system`, the administrator created at first start.
fn is_builtin_admin(
    state: &portcullis_catalog::model::CatalogState,
    user: &portcullis_store::UserRecord,
) -> bool {
    user.name == portcullis_catalog::model::BUILTIN_ADMIN
        && state.database_name(user.database_id) == portcullis_catalog::model::SYSTEM_DATABASE
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Client {
        Client::new("127.0.0.1:5", None)
    }
    use portcullis_catalog::sealing::Sealer;
    use portcullis_catalog::CatalogOptions;
    use portcullis_store::{SqliteStore, UserRecord};

    /// Finding 17 of issue 11: an unknown name's decoy costs the PBKDF2 work most real users'
    /// verifiers cost, even after `scram_iterations` changed; a wrong password for a known
    /// user writes nothing before the answer.
    #[tokio::test]
    async fn unknown_users_cost_what_known_ones_do() {
        let store = Arc::new(SqliteStore::open_in_memory().unwrap());
        let catalog = Catalog::open(
            store,
            CatalogOptions {
                scram_iterations: 4096,
                ..CatalogOptions::default()
            },
            Sealer::new(&Sealer::generate_key()).unwrap(),
        )
        .await
        .unwrap();
        catalog.bootstrap("Admin-pass-1").await.unwrap();
        let catalog = Arc::new(catalog);
        let auth = PasswordAuthenticator::new(catalog.clone());
        assert_eq!(
            auth.lookup("ghost@system", None, &client(), SignInMethod::Password)
                .unwrap()
                .verifier
                .iterations,
            4096
        );
        // Most users now have 8192 iterations (the setting changed since): decoys follow.
        let users: Vec<Change> = (0..3)
            .map(|i| {
                Change::PutUser(UserRecord {
                    id: 1000 + i,
                    database_id: 1,
                    name: format!("u{i}"),
                    first_name: None,
                    last_name: None,
                    email: None,
                    verifier: ScramVerifier::derive("Some-pass-1", 8192).encode(),
                    password_set_at: 0,
                    state: user_state::ACTIVE.into(),
                    failed_attempts: 0,
                    created_at: 0,
                })
            })
            .collect();
        catalog.commit(&users).await.unwrap();
        let ghost = auth
            .lookup("ghost@system", None, &client(), SignInMethod::Password)
            .unwrap();
        assert!(ghost.user_id.is_none());
        assert_eq!(ghost.verifier.iterations, 8192);
        // A known user's wrong password answers before the failure is written.
        let known = auth
            .lookup("u0@system", None, &client(), SignInMethod::Password)
            .unwrap();
        let error = auth.failed(&known).await;
        assert_eq!(error, SignInError::BadPassword("u0@system".into()));
        let unknown = auth.failed(&ghost).await;
        assert_eq!(
            unknown.to_string(),
            error.to_string().replace("u0", "ghost")
        );
        for _ in 0..100 {
            if catalog.state().user(1, "u0").unwrap().failed_attempts == 1 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the failure was never counted");
    }
}
