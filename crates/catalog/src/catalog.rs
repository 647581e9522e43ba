//! The catalog service: the live model, its store, the query engine and the session registry,
//! and `execute`, which runs a statement string for a session.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use portcullis_store::{Change, Store};

use crate::authority::Authority;
use crate::error::{sqlstate, CatalogError};
use crate::events::EventLog;
use crate::exec::{bootstrap_changes, plan, Actor};
use crate::model::CatalogState;
use crate::query::{QueryEngine, QueryJob, QueryPool};
use crate::reason::Reason;
use crate::sealing::Sealer;
use crate::sessions::{EndReason, Protocol, Session, SessionLimits, SessionRegistry};
use crate::settings::SecuritySetting;
use crate::sql::{parse_statements, Statement};
use crate::value::{Column, QueryResult, StatementResult, Value};

/// Catalog settings from the server's configuration.
#[derive(Debug, Clone, Copy)]
pub struct CatalogOptions {
    /// PBKDF2 iterations of new SCRAM verifiers.
    pub scram_iterations: u32,
    /// Days `sys.authentication_events` rows are kept.
    pub event_retention_days: i64,
    /// The newest events kept in memory for queries.
    pub event_capacity: usize,
}

impl Default for CatalogOptions {
    fn default() -> Self {
        Self {
            scram_iterations: 4096,
            event_retention_days: 30,
            event_capacity: crate::events::DEFAULT_CAPACITY,
        }
    }
}

/// Answers `EXPLAIN AUTHENTICATION`. Implemented by the authentication layer (which sits above
/// the catalog) and handed in at start-up.
#[async_trait::async_trait]
pub trait AuthenticationExplainer: Send + Sync {
    async fn explain(
        &self,
        session: &Session,
        token: &str,
        database: Option<&str>,
    ) -> Result<QueryResult, CatalogError>;

    /// `EXPLAIN AUTHENTICATION FOR USER`: a directory integration's view of `user`.
    async fn explain_user(
        &self,
        session: &Session,
        user: &str,
        database: Option<&str>,
    ) -> Result<QueryResult, CatalogError>;
}

/// The catalog service; shared by every front end.
pub struct Catalog {
    sealer: Sealer,
    explainer: std::sync::OnceLock<Arc<dyn AuthenticationExplainer>>,
    /// Checks an upstream before a database is bound to it (the gateway, set at start-up).
    upstream_checker: std::sync::OnceLock<Arc<dyn crate::upstream::UpstreamChecker>>,
    /// Mirrors catalog changes to the upstreams they concern (the gateway, set at start-up).
    upstream_mirror: std::sync::OnceLock<Arc<dyn crate::upstream::UpstreamMirror>>,
    /// Opens and closes connectivity-pool listeners (the PostgreSQL front end, set at start-up).
    pool_listeners: std::sync::OnceLock<Arc<dyn crate::listeners::PoolListeners>>,
    store: Arc<dyn Store>,
    state: RwLock<Arc<CatalogState>>,
    generation: AtomicU64,
    /// The store's catalog version this node's model reflects (several nodes: a commit is
    /// based on it, and a newer one in the store is loaded).
    store_version: AtomicU64,
    writer: tokio::sync::Mutex<()>,
    /// Runs catalog queries off the async workers.
    queries: QueryPool,
    /// Describes queries (prepares them only; holds no copy of the catalog).
    describer: parking_lot::Mutex<QueryEngine>,
    pub sessions: SessionRegistry,
    pub options: CatalogOptions,
}

/// The sealing context of a pending sign-in kept in the store (bound to its key).
fn pending_context(key: &str) -> String {
    format!("pending:{key}")
}

/// A node not seen for this long (it publishes every second) holds no sessions any more.
const NODE_ALIVE_SECONDS: i64 = 10;

/// Who ended a session, in an END SESSION request to another node, when the person signed out.
pub(crate) const SIGNED_OUT: &str = "";

/// The context and text of the value that proves a node's sealing key is the store's.
const KEY_CHECK: &str = "portcullis-store-key-check";

/// Unix seconds now.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl Catalog {
    /// Loads the catalog from the store.
    pub async fn open(
        store: Arc<dyn Store>,
        options: CatalogOptions,
        sealer: Sealer,
    ) -> Result<Self, CatalogError> {
        // Nodes sharing a store share its sealing key: one whose key differs would seal what
        // the others cannot open (and open nothing they sealed).
        let check = store.key_check(&sealer.seal(KEY_CHECK, KEY_CHECK)?).await?;
        if sealer.open(KEY_CHECK, &check).is_err() {
            return Err(CatalogError::new(
                crate::error::sqlstate::INTERNAL_ERROR,
                "this node's secret.key is not the key the catalog store's secrets are sealed \
                 with: every node sharing a store needs the same secret.key (copy it from \
                 another node's data directory)",
            ));
        }
        let (snap, store_version) = store.load_versioned().await?;
        let node = store.node();
        let events = Arc::new(EventLog::new(options.event_capacity));
        events
            .load(store.as_ref(), options.event_retention_days)
            .await?;
        Ok(Self {
            sealer,
            explainer: std::sync::OnceLock::new(),
            upstream_checker: std::sync::OnceLock::new(),
            upstream_mirror: std::sync::OnceLock::new(),
            pool_listeners: std::sync::OnceLock::new(),
            store,
            state: RwLock::new(Arc::new(CatalogState::new(snap))),
            generation: AtomicU64::new(1),
            store_version: AtomicU64::new(store_version),
            writer: tokio::sync::Mutex::new(()),
            queries: QueryPool::default(),
            describer: parking_lot::Mutex::new(QueryEngine::new()?),
            sessions: {
                let sessions = SessionRegistry::with_events(events);
                if let Some(node) = node {
                    sessions.set_node(node);
                }
                sessions
            },
            options,
        })
    }

    /// Whether the catalog is empty (first start).
    pub fn is_empty(&self) -> bool {
        self.state.read().snap.databases.is_empty()
    }

    /// Creates the `system` database, its roles and `admin@system` on first start.
    pub async fn bootstrap(&self, admin_password: &str) -> Result<(), CatalogError> {
        if admin_password.is_empty() {
            return Err(CatalogError::invalid(
                "the administrator password must not be empty",
            ));
        }
        let changes = bootstrap_changes(admin_password, self.options.scram_iterations, now());
        self.commit(&changes).await
    }

    /// Recovery from the server's host (`portcullis recover-admin`): `admin@system` gets
    /// `password` (no password rules: the host's operator decides), is enabled, its failed
    /// attempts cleared and the system administrator role given back.
    pub async fn recover_admin(&self, password: &str) -> Result<(), CatalogError> {
        use crate::model::{roles, user_state, BUILTIN_ADMIN, SYSTEM_DATABASE};
        use portcullis_store::{PrincipalRef, RoleMemberRecord};
        if password.is_empty() {
            return Err(CatalogError::invalid(
                "the administrator password must not be empty",
            ));
        }
        let verifier =
            crate::credential::ScramVerifier::derive(password, self.options.scram_iterations)
                .encode();
        let mut missing = None;
        self.update(|state| {
            let Some(system) = state.database(SYSTEM_DATABASE) else {
                missing = Some("the system database");
                return Vec::new();
            };
            let Some(role) = state.role(system.id, roles::SYSTEM_ADMINISTRATOR) else {
                missing = Some("the system administrator role");
                return Vec::new();
            };
            // The user comes back if it was dropped or renamed (with a new id).
            let mut admin = state
                .user(system.id, BUILTIN_ADMIN)
                .cloned()
                .unwrap_or_else(|| portcullis_store::UserRecord {
                    id: state.next_id(),
                    database_id: system.id,
                    name: BUILTIN_ADMIN.into(),
                    first_name: None,
                    last_name: None,
                    email: None,
                    verifier: String::new(),
                    password_set_at: 0,
                    state: user_state::ACTIVE.into(),
                    failed_attempts: 0,
                    created_at: now(),
                });
            admin.verifier = verifier.clone();
            admin.state = user_state::ACTIVE.into();
            admin.failed_attempts = 0;
            admin.password_set_at = now();
            vec![
                Change::PutUser(admin.clone()),
                // The role gets ALL on the system back if it was revoked.
                Change::AddGrant(portcullis_store::GrantRecord {
                    grantee: PrincipalRef::Role(role.id),
                    privilege: "ALL".into(),
                    object: portcullis_store::ObjectRef::System,
                    grantor: "recover-admin".into(),
                    granted_at: now(),
                }),
                Change::AddRoleMember(RoleMemberRecord {
                    role_id: role.id,
                    member: PrincipalRef::User(admin.id),
                }),
            ]
        })
        .await?;
        match missing {
            Some(what) => Err(CatalogError::internal(format!(
                "{what} is missing from this catalog; it cannot be recovered"
            ))),
            None => Ok(()),
        }
    }

    /// Installs the `EXPLAIN AUTHENTICATION` implementation (once, at start-up).
    /// Hands in what mirrors catalog changes to upstreams.
    pub fn set_upstream_mirror(&self, mirror: Arc<dyn crate::upstream::UpstreamMirror>) {
        let _ = self.upstream_mirror.set(mirror);
    }

    /// Hands in what opens and closes connectivity-pool listeners.
    pub fn set_pool_listeners(&self, listeners: Arc<dyn crate::listeners::PoolListeners>) {
        let _ = self.pool_listeners.set(listeners);
    }

    /// Hands in the check run before a database is bound to an upstream.
    pub fn set_upstream_checker(&self, checker: Arc<dyn crate::upstream::UpstreamChecker>) {
        let _ = self.upstream_checker.set(checker);
    }

    /// Checks every upstream URL a statement string would bind, before anything is planned:
    /// a URL that is malformed, unreachable or whose administrator lacks what it needs
    /// changes nothing. Only someone allowed to bind is let make the server connect anywhere.
    async fn check_upstreams(
        &self,
        session: &Session,
        statements: &[Statement],
    ) -> Result<(), CatalogError> {
        for stmt in statements {
            let url = match stmt {
                Statement::CreateDatabase {
                    upstream: Some(url),
                    ..
                }
                | Statement::SetUpstream { url: Some(url), .. } => url,
                _ => continue,
            };
            let state = self.state();
            if !crate::privileges::holds(
                &state,
                &crate::privileges::session_principals(&state, session),
                crate::privileges::Privilege::new(crate::privileges::Action::Alter),
                portcullis_store::ObjectRef::System,
            ) {
                return Err(CatalogError::denied(
                    "ALTER on the system (binding a database to an upstream) is required",
                ));
            }
            let url = crate::upstream::UpstreamUrl::parse(url)?;
            let Some(checker) = self.upstream_checker.get() else {
                return Err(CatalogError::new(
                    sqlstate::FEATURE_NOT_SUPPORTED,
                    "this server cannot reach upstream databases",
                ));
            };
            checker.check(&url).await?;
        }
        Ok(())
    }

    fn explainer(&self) -> Result<&Arc<dyn AuthenticationExplainer>, CatalogError> {
        self.explainer.get().ok_or_else(|| {
            CatalogError::new(
                sqlstate::FEATURE_NOT_SUPPORTED,
                "EXPLAIN AUTHENTICATION is not available in this server",
            )
        })
    }

    pub fn set_explainer(&self, explainer: Arc<dyn AuthenticationExplainer>) {
        let _ = self.explainer.set(explainer);
    }

    /// The client secret of an integration, unsealed (for the provider's token endpoint only).
    pub fn client_secret(
        &self,
        integration: &portcullis_store::SsoIntegrationRecord,
    ) -> Result<Option<String>, CatalogError> {
        self.integration_secret(integration, crate::sso::SsoProtocol::Oidc)
    }

    /// The bind password of an LDAP integration's service account, unsealed (for binding to
    /// the directory only).
    pub fn bind_password(
        &self,
        integration: &portcullis_store::SsoIntegrationRecord,
    ) -> Result<Option<String>, CatalogError> {
        self.integration_secret(integration, crate::sso::SsoProtocol::Ldap)
    }

    /// An integration's one secret, opened as what `protocol` keeps there: a sealed value
    /// opens only under the context it was sealed with, so a client secret never serves as a
    /// bind password or the reverse.
    fn integration_secret(
        &self,
        integration: &portcullis_store::SsoIntegrationRecord,
        protocol: crate::sso::SsoProtocol,
    ) -> Result<Option<String>, CatalogError> {
        integration
            .sealed_secret
            .as_deref()
            .map(|sealed| {
                self.sealer.open(
                    &crate::exec::sso::secret_context(integration.id, protocol),
                    sealed,
                )
            })
            .transpose()
    }

    /// Seals a secret the server keeps outside the catalog (a browser session's refresh
    /// token), bound to `context`.
    pub fn seal(&self, context: &str, secret: &str) -> Result<Vec<u8>, CatalogError> {
        self.sealer.seal(context, secret)
    }

    /// Opens what [`Catalog::seal`] sealed with the same `context`.
    pub fn unseal(&self, context: &str, sealed: &[u8]) -> Result<String, CatalogError> {
        self.sealer.open(context, sealed)
    }

    /// The current catalog (a cheap shared copy).
    pub fn state(&self) -> Arc<CatalogState> {
        self.state.read().clone()
    }

    /// Commits changes to the store, then to the live model.
    pub async fn commit(&self, changes: &[Change]) -> Result<(), CatalogError> {
        let _guard = self.writer.lock().await;
        self.commit_locked(changes, None).await
    }

    /// Commits under the writer lock, then ends every session whose authority the change
    /// took away. `actor` is the session that made the change: changing one's own password
    /// keeps that session (it just proved it knows the old one).
    async fn commit_locked(
        &self,
        changes: &[Change],
        actor: Option<&Session>,
    ) -> Result<(), CatalogError> {
        if changes.is_empty() {
            return Ok(());
        }
        // Upstreams first, uncommitted: a change they refuse changes nothing here either.
        let before = self.state();
        let mirrored = match self.upstream_mirror.get() {
            Some(mirror) if !before.snap.upstreams.is_empty() => {
                let mut bindings = Vec::new();
                for u in &before.snap.upstreams {
                    let password = self.unseal(
                        &crate::upstream::seal_context(u.database_id),
                        &u.sealed_password,
                    )?;
                    bindings.push((
                        u.database_id,
                        crate::upstream::UpstreamUrl::with_password(&u.url, &password)?,
                    ));
                }
                mirror.begin(&before, changes, &bindings).await?
            }
            _ => Vec::new(),
        };
        // Listeners next: a pool's address that cannot be bound refuses the change.
        let listening = self
            .pool_listeners
            .get()
            .map(|l| l.prepare(&before, changes))
            .transpose()?;
        let based_on = self.store_version.load(Ordering::Acquire);
        match self.store.apply_at(changes, based_on).await {
            Ok(version) => self.store_version.store(version, Ordering::Release),
            Err(e) => {
                if matches!(e, portcullis_store::StoreError::Conflict { .. }) {
                    // Another node committed first: this node's model is stale. Load the new
                    // catalog, so that the statement run again is checked against it.
                    if let Err(e) = self.reload_locked().await {
                        tracing::warn!(error = %e, "could not load the catalog after a conflict");
                    }
                }
                return Err(e.into());
            }
        }
        for upstream in mirrored {
            // The catalog has committed: an upstream that fails now is repaired at each
            // person's next sign-in (which sets their memberships again).
            if let Err(e) = upstream.commit().await {
                tracing::error!(error = %e, "an upstream did not commit a mirrored change");
            }
        }
        let mut next = (*self.state()).clone();
        next.apply(changes);
        let next = Arc::new(next);
        *self.state.write() = next.clone();
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Some(actor) = actor.filter(|a| a.sso.is_none()) {
            let stamp = next
                .user_by_id(actor.user_id)
                .map(crate::authority::credential_stamp);
            if stamp.is_some() && stamp != actor.credential_stamp {
                if let Some(live) = self.sessions.get(&actor.id) {
                    let mut renewed = (*live).clone();
                    renewed.credential_stamp = stamp;
                    self.sessions.replace(renewed);
                }
            }
        }
        // Statements compare their session's verified generation with this one: until the
        // sessions are checked against the new catalog here, a statement checks its own.
        if let Some(listening) = listening {
            listening.commit();
        }
        let generation = self.generation.load(Ordering::Acquire);
        let authority = Authority::new(&next);
        self.sessions.end_where(generation, |s| authority.lapsed(s));
        Ok(())
    }

    /// Whether pending sign-ins are kept in the store, for every node (a store several nodes
    /// share), rather than in this node's memory.
    pub fn shares_pending(&self) -> bool {
        self.store.node().is_some()
    }

    /// Keeps a pending sign-in in the store, sealed (it holds a PKCE verifier and a nonce),
    /// for `ttl_seconds`. `Ok(false)`: the store keeps none (one node).
    pub async fn put_pending<T: serde::Serialize>(
        &self,
        key: &str,
        value: &T,
        ttl_seconds: i64,
    ) -> Result<bool, CatalogError> {
        let sealed = self.seal_pending(key, value)?;
        Ok(self
            .store
            .put_pending(key, &sealed, now().saturating_add(ttl_seconds))
            .await?)
    }

    fn seal_pending<T: serde::Serialize>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<Vec<u8>, CatalogError> {
        let text = serde_json::to_string(value)
            .map_err(|e| CatalogError::internal(format!("pending sign-in: {e}")))?;
        self.seal(&pending_context(key), &text)
    }

    /// [`Self::put_pending`], replacing what `key` held.
    pub async fn replace_pending<T: serde::Serialize>(
        &self,
        key: &str,
        value: &T,
        ttl_seconds: i64,
    ) -> Result<bool, CatalogError> {
        let sealed = self.seal_pending(key, value)?;
        Ok(self
            .store
            .replace_pending(key, &sealed, now().saturating_add(ttl_seconds))
            .await?)
    }

    /// The live pending sign-in of `key`, left in place.
    pub async fn peek_pending<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>, CatalogError> {
        let sealed = self.store.peek_pending(key, now()).await?;
        sealed.map(|s| self.open_pending(key, &s)).transpose()
    }

    /// Takes the live pending sign-in of `key`: at most once, on whichever node.
    pub async fn take_pending<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>, CatalogError> {
        let sealed = self.store.take_pending(key, now()).await?;
        sealed.map(|s| self.open_pending(key, &s)).transpose()
    }

    fn open_pending<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
        sealed: &[u8],
    ) -> Result<T, CatalogError> {
        let text = self.unseal(&pending_context(key), sealed)?;
        serde_json::from_str(&text)
            .map_err(|e| CatalogError::internal(format!("pending sign-in unreadable: {e}")))
    }

    /// Records `key` as used until `until` (Unix seconds) in the store every node shares:
    /// `false` if it was used before (and has not expired).
    pub async fn first_use(&self, key: &str, until: i64) -> Result<bool, CatalogError> {
        Ok(self.store.first_use(key, until, now()).await?)
    }

    /// Forgets expired pending sign-ins in the store.
    pub async fn sweep_pending(&self) {
        if let Err(e) = self.store.sweep_pending(now()).await {
            tracing::debug!(error = %e, "could not sweep pending sign-ins");
        }
    }

    /// Loads the catalog again if the store has a newer version than this node's model (another
    /// node committed), and ends every session whose authority the new catalog took away.
    /// Answers whether it loaded.
    pub async fn catch_up(&self) -> Result<bool, CatalogError> {
        let _guard = self.writer.lock().await;
        self.reload_locked().await
    }

    async fn reload_locked(&self) -> Result<bool, CatalogError> {
        let held = self.store_version.load(Ordering::Acquire);
        // The changes since this node's version, applied to its model as the committing node
        // applied them; the whole catalog only when the store cannot tell them.
        let (next, version) = match self.store.changes_since(held).await? {
            Some((version, _)) if version <= held => return Ok(false),
            Some((version, batches)) => {
                let mut next = CatalogState::clone(&self.state());
                for changes in &batches {
                    next.apply(changes);
                }
                metrics::counter!("portcullis_catalog_changes_followed_total")
                    .increment(batches.len() as u64);
                (next, version)
            }
            None => {
                let (snap, version) = self.store.load_versioned().await?;
                if version <= held {
                    return Ok(false);
                }
                metrics::counter!("portcullis_catalog_reloads_total").increment(1);
                (CatalogState::new(snap), version)
            }
        };
        let next = Arc::new(next);
        *self.state.write() = next.clone();
        self.store_version.store(version, Ordering::Release);
        self.generation.fetch_add(1, Ordering::AcqRel);
        let generation = self.generation.load(Ordering::Acquire);
        let authority = Authority::new(&next);
        self.sessions.end_where(generation, |s| authority.lapsed(s));
        Ok(true)
    }

    /// Follows the catalog other nodes commit (a store several nodes share): each version the
    /// store announces is loaded at once, and the version is polled every second in case an
    /// announcement was missed (a broken listening connection is opened again). `None` for a
    /// store only this node writes.
    pub fn spawn_store_watch(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        self.store.node()?;
        let catalog = Arc::downgrade(self);
        let store = self.store.clone();
        Some(tokio::spawn(async move {
            let mut poll = tokio::time::interval(std::time::Duration::from_secs(1));
            poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut announced: Option<tokio::sync::mpsc::Receiver<u64>> = None;
            // This node's sessions as last published: id → row.
            let mut published: std::collections::HashMap<String, String> = Default::default();
            loop {
                if announced.is_none() {
                    announced = store.watch().await;
                }
                let mut tick = false;
                let newer = tokio::select! {
                    v = async {
                        match announced.as_mut() {
                            Some(rx) => rx.recv().await,
                            None => std::future::pending().await,
                        }
                    } => match v {
                        Some(v) => Some(v),
                        None => {
                            announced = None;
                            None
                        }
                    },
                    _ = poll.tick() => {
                        tick = true;
                        store.version().await.ok()
                    }
                };
                let Some(catalog) = catalog.upgrade() else {
                    return;
                };
                if tick {
                    catalog.exchange_sessions(&mut published).await;
                }
                if newer.is_some_and(|v| v > catalog.store_version.load(Ordering::Acquire)) {
                    if let Err(e) = catalog.catch_up().await {
                        tracing::warn!(error = %e, "could not load the catalog another node changed");
                    }
                }
            }
        }))
    }

    /// Publishes this node's sessions (what changed since `published`), reads the other
    /// nodes' (for `sys.sessions`), and ends the sessions another node's END SESSION asked
    /// this one to end. Every second, off every sign-in's path.
    async fn exchange_sessions(&self, published: &mut std::collections::HashMap<String, String>) {
        let Some(node) = self.store.node() else {
            return;
        };
        let state = self.state();
        let now = now();
        let live = self.sessions.view().live(now, |s| limits_in(&state, s));
        let mut current = std::collections::HashMap::with_capacity(live.sessions.len());
        for s in &live.sessions {
            let row = crate::query::session_row(s, &state, Some(node));
            if let Ok(text) = serde_json::to_string(&row) {
                current.insert(s.id.clone(), text);
            }
        }
        let upserts: Vec<(String, String)> = current
            .iter()
            .filter(|(id, row)| published.get(*id) != Some(*row))
            .map(|(id, row)| (id.clone(), row.clone()))
            .collect();
        let removed: Vec<String> = published
            .keys()
            .filter(|id| !current.contains_key(*id))
            .cloned()
            .collect();
        match self.store.publish_sessions(&upserts, &removed, now).await {
            Ok(()) => {
                // An HTTP session that ended here (idle, say) is ended for good: no node may
                // take a copy of it from the store again (its token stays refused here).
                for id in &removed {
                    let http = published.get(id).is_some_and(|row| {
                        serde_json::from_str::<crate::sessions::SessionRow>(row)
                            .is_ok_and(|r| r.protocol == Protocol::Http.name())
                    });
                    if http {
                        if let Err(e) = crate::shared_http::leave_tombstone(self, id).await {
                            tracing::debug!(error = %e.message, "could not mark an ended HTTP session for the other nodes");
                        }
                    }
                }
                *published = current;
            }
            Err(e) => tracing::debug!(error = %e, "could not publish this node's sessions"),
        }
        if let Ok(rows) = self.store.remote_sessions(now - NODE_ALIVE_SECONDS).await {
            let rows = rows
                .into_iter()
                .filter_map(|(node, text)| {
                    let mut row: crate::sessions::SessionRow = serde_json::from_str(&text).ok()?;
                    row.node = Some(node);
                    Some(row)
                })
                .collect();
            self.sessions.set_remote(rows);
        }
        if let Ok(ends) = self.store.take_session_ends().await {
            for (id, by) in ends {
                if by == SIGNED_OUT {
                    self.sessions.remove(&id, Reason::SignedOut);
                } else {
                    self.sessions
                        .end(&id, EndReason::EndedByAdministrator { by });
                }
            }
        }
    }

    /// The idle timeout and maximum session age of a session: the strictest of the system's,
    /// its database's and (password users) its user's groups' settings.
    pub fn session_limits(&self, session: &Session) -> SessionLimits {
        limits_in(&self.state(), session)
    }

    /// Ends the sessions whose time is up (token expired, lifetime, idle, maximum age).
    pub fn expire_sessions(&self) -> usize {
        let state = self.state();
        self.sessions.expire(now(), |s| limits_in(&state, s))
    }

    /// The authentication event log.
    pub fn events(&self) -> &Arc<EventLog> {
        self.sessions.events()
    }

    /// Writes the pending authentication events to the store, and keeps doing so (every
    /// quarter second, pruning by retention hourly) until the process ends.
    pub fn spawn_event_writer(&self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(
            self.events()
                .clone()
                .run_writer(self.store.clone(), self.options.event_retention_days),
        )
    }

    /// Writes the pending authentication events now (shutdown, tests).
    pub async fn flush_events(&self) -> usize {
        self.events().flush(self.store.as_ref()).await
    }

    /// Lets go of the store (shutdown, after the last events are written).
    pub async fn close_store(&self) {
        self.store.close().await;
    }

    /// Records a refused sign-in (the database named resolved to its id, 0 if none).
    pub fn refused(&self, attempt: &crate::events::Attempt, reason: crate::Reason, detail: &str) {
        let database_id = self.state().database(&attempt.database).map_or(0, |d| d.id);
        self.events().refused(attempt, database_id, reason, detail);
    }

    /// The session as it is now, or why it ended: checked before every statement, so a
    /// statement never runs on authority that is gone. Counts as activity (idle timeout).
    /// The catalog's generation: it changes with every commit.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn live_session(&self, id: &str) -> Result<Arc<Session>, EndReason> {
        let generation = self.generation.load(Ordering::Acquire);
        // A session signed in with a token ends when the token does; any session at its
        // maximum age or past its idle timeout ends too.
        let state = self.state();
        let (session, verified) = self
            .sessions
            .activity(id, generation, now(), |s| limits_in(&state, s))?;
        if verified {
            return Ok(session);
        }
        match Authority::new(&state).lapsed(&session) {
            Some(reason) => {
                self.sessions.end(id, reason.clone());
                Err(reason)
            }
            None => {
                self.sessions.mark_checked(id, generation);
                Ok(session)
            }
        }
    }

    /// Like [`Catalog::commit`], but computes the changes from the state under the writer lock
    /// (for read-modify-write updates such as failed sign-in counters).
    /// Several nodes: when another node committed first, the update is computed again from
    /// the catalog just loaded (a failed-password count made on two nodes at once counts
    /// twice), a few times.
    pub async fn update<F>(&self, mut f: F) -> Result<(), CatalogError>
    where
        F: FnMut(&CatalogState) -> Vec<Change>,
    {
        let _guard = self.writer.lock().await;
        let mut tries = 0;
        loop {
            let changes = f(&self.state());
            match self.commit_locked(&changes, None).await {
                Err(e)
                    if e.sqlstate == crate::error::sqlstate::SERIALIZATION_FAILURE && tries < 5 =>
                {
                    tries += 1;
                }
                other => return other,
            }
        }
    }

    /// Runs a statement string (one or more statements) for a session.
    ///
    /// The whole string is parsed first: a syntax error runs nothing. Catalog changes are
    /// collected and committed together, so a failing statement leaves the catalog as it was
    /// before the string (a query in between commits what came before it, so that it sees it).
    pub async fn execute(
        &self,
        session: &Session,
        sql: &str,
        params: &[Value],
    ) -> Result<Vec<StatementResult>, CatalogError> {
        let statements = parse_statements(sql)?;
        self.check_upstreams(session, &statements).await?;
        if !params.is_empty() && statements.iter().any(Statement::is_change) {
            return Err(CatalogError::new(
                sqlstate::FEATURE_NOT_SUPPORTED,
                "parameters are only supported in catalog queries",
            ));
        }
        let mut results = Vec::with_capacity(statements.len());
        let mut pending: Vec<Change> = Vec::new();
        let mut working: Option<CatalogState> = None;
        let mut guard = None;
        for stmt in &statements {
            // Every statement runs on authority that still holds (an earlier one in the same
            // string may have taken it away).
            if !session.id.is_empty() {
                self.live_session(&session.id)
                    .map_err(|r| CatalogError::new(r.sqlstate(), r.message()))?;
            }
            if stmt.is_change() {
                if guard.is_none() {
                    guard = Some(self.writer.lock().await);
                }
                let base = working.get_or_insert_with(|| (*self.state()).clone());
                let actor = Actor {
                    session,
                    now: now(),
                    scram_iterations: self.options.scram_iterations,
                    sealer: &self.sealer,
                };
                let changes = plan(&actor, base, stmt)?;
                base.apply(&changes);
                pending.extend(changes);
                results.push(StatementResult::Command(stmt.tag()));
                continue;
            }
            if !pending.is_empty() {
                self.commit_locked(&std::mem::take(&mut pending), Some(session))
                    .await?;
                working = None;
            }
            if working.is_none() {
                // What came before is committed: a slow query must not hold up writers (such as
                // the failed-sign-in counter) while it runs.
                guard = None;
            }
            results.push(match stmt {
                Statement::Query(text) => {
                    StatementResult::Rows(self.query(session, text, params).await?)
                }
                Statement::Show(name) => StatementResult::Rows(show(name)?),
                Statement::EndSession { id } => {
                    self.end_session(session, id).await?;
                    StatementResult::Command(stmt.tag())
                }
                Statement::ExplainAuthentication { token, database } => StatementResult::Rows(
                    self.explainer()?
                        .explain(session, token, database.as_deref())
                        .await?,
                ),
                Statement::ExplainUser { user, database } => StatementResult::Rows(
                    self.explainer()?
                        .explain_user(session, user, database.as_deref())
                        .await?,
                ),
                other => StatementResult::Command(other.tag()),
            });
        }
        if !pending.is_empty() {
            self.commit_locked(&pending, Some(session)).await?;
        }
        drop(guard);
        Ok(results)
    }

    /// `ALTER SYSTEM END SESSION 'id'`: an administrator of the session's database (or of the
    /// system) ends it; its connection is told at once.
    pub async fn end_session(&self, actor: &Session, id: &str) -> Result<(), CatalogError> {
        let state = self.state();
        let Some(target) = self.sessions.get(id) else {
            // Held by another node: ask it (it ends the session within a second).
            let Some(remote) = self.sessions.remote_session(id) else {
                return Err(CatalogError::undefined("session", id));
            };
            let principals = crate::privileges::session_principals(&state, actor);
            if !crate::privileges::administers(&state, &principals, remote.database_id) {
                return Err(CatalogError::undefined("session", id));
            }
            if !self.end_everywhere(id, &actor.user).await? {
                return Err(CatalogError::undefined("session", id));
            }
            return Ok(());
        };
        let principals = crate::privileges::session_principals(&state, actor);
        if !crate::privileges::administers(&state, &principals, target.database_id) {
            // Not even whether it exists is told to someone who may not see it.
            return Err(CatalogError::undefined("session", id));
        }
        self.sessions.end(
            id,
            EndReason::EndedByAdministrator {
                by: actor.user.clone(),
            },
        );
        if self.shares_pending() {
            // An HTTP session may be held by other nodes too (its token was used there).
            self.end_everywhere(id, &actor.user).await?;
        }
        Ok(())
    }

    /// Several nodes: ends a session on every other node that holds it, within a second, and
    /// keeps any node from taking a copy of it again (see [`crate::shared_http`]). `by` is the
    /// administrator, or [`SIGNED_OUT`]. Answers whether another node held it.
    pub(crate) async fn end_everywhere(&self, id: &str, by: &str) -> Result<bool, CatalogError> {
        crate::shared_http::leave_tombstone(self, id).await?;
        Ok(self
            .store
            .request_session_end(id, by, now() - NODE_ALIVE_SECONDS)
            .await?)
    }

    /// Runs one catalog query, on the query pool (off the async workers).
    pub async fn query(
        &self,
        session: &Session,
        sql: &str,
        params: &[Value],
    ) -> Result<QueryResult, CatalogError> {
        // The generation is read before the state it numbers: a change in between makes the
        // copy look stale (and load again), never fresh. (The sessions' generation is read the
        // same way, off the async workers, by a query that reads `sys.sessions`; one past its
        // end is left out there until the sweeper ends it.)
        let catalog_generation = self.generation.load(Ordering::Acquire);
        let state = self.state();
        self.queries
            .run(QueryJob {
                sql: sql.to_owned(),
                params: params.to_vec(),
                session: session.clone(),
                state,
                catalog_generation,
                sessions: self.sessions.view(),
                events: Some(self.events().clone()),
            })
            .await
            .map_err(|e| not_here(e, sql))
    }

    /// The result columns of a statement, without running it (for the extended protocol).
    /// Also returns how many parameters it takes.
    pub fn describe(&self, sql: &str) -> Result<(Vec<Column>, usize), CatalogError> {
        let statements = parse_statements(sql)?;
        match statements.as_slice() {
            [Statement::Query(text)] => self.describer.lock().describe(text),
            [Statement::Show(name)] => Ok((show(name)?.columns, 0)),
            [Statement::ExplainAuthentication { .. } | Statement::ExplainUser { .. }] => {
                Ok((explain_columns(), 0))
            }
            _ => Ok((Vec::new(), 0)),
        }
    }
}

/// A query that names no `sys` table and that the query engine cannot make sense of is a query
/// for PostgreSQL: said as such (`0A000`), never as the engine's own syntax error.
fn not_here(e: CatalogError, sql: &str) -> CatalogError {
    let engine_complaint = matches!(
        e.sqlstate,
        sqlstate::SYNTAX_ERROR | sqlstate::UNDEFINED_TABLE | "42883" | "42703"
    ) || e.message.contains("incomplete input");
    if !engine_complaint || sql.to_ascii_lowercase().contains("sys.") {
        return e;
    }
    CatalogError::new(
        sqlstate::FEATURE_NOT_SUPPORTED,
        format!(
            "this query is for PostgreSQL, and this database is not bound to PostgreSQL: here \
             Portcullis answers only its own statements, SELECTs over sys.* and psql's \\l, \\du \
             and \\dg (the query engine said: {})",
            e.message
        ),
    )
}

/// The columns of `EXPLAIN AUTHENTICATION`: one row per check.
pub fn explain_columns() -> Vec<Column> {
    ["step", "check", "result", "detail", "reason"]
        .into_iter()
        .map(|name| Column {
            name: name.to_owned(),
            kind: if name == "step" {
                crate::value::ColumnType::Int
            } else {
                crate::value::ColumnType::Text
            },
        })
        .collect()
}

/// The limits of `session` under `state`.
pub(crate) fn limits_in(state: &CatalogState, session: &Session) -> SessionLimits {
    // Most catalogs set neither: no policy to work out on every statement then.
    if !state.snap.settings.iter().any(|r| {
        r.name == SecuritySetting::SessionIdleTimeout.name()
            || r.name == SecuritySetting::SessionMaxAge.name()
    }) {
        return SessionLimits::default();
    }
    let user = (session.sso.is_none() && session.user_id != 0).then_some(session.user_id);
    let policy = crate::exec::policy_for(state, session.database_id, user);
    SessionLimits {
        idle_seconds: policy.session_idle_timeout_seconds,
        max_age_seconds: policy.session_max_age_seconds,
    }
}

/// `SHOW name` for the parameters clients ask about.
fn show(name: &str) -> Result<QueryResult, CatalogError> {
    let value = match name {
        "server_version" => "16.6",
        "server_encoding" | "client_encoding" => "UTF8",
        "transaction_isolation" | "default_transaction_isolation" => "read committed",
        "standard_conforming_strings" => "on",
        "datestyle" => "ISO, YMD",
        "timezone" => "Etc/UTC",
        "integer_datetimes" => "on",
        "max_identifier_length" => "63",
        _ => {
            return Err(CatalogError::new(
                sqlstate::UNDEFINED_OBJECT,
                format!("unrecognized configuration parameter \"{name}\""),
            ));
        }
    };
    Ok(QueryResult {
        columns: vec![Column {
            name: name.to_owned(),
            kind: crate::value::ColumnType::Text,
        }],
        rows: vec![vec![Value::Text(value.to_owned())]],
    })
}
