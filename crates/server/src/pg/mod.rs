//! The PostgreSQL-protocol front end (pgwire): the listener, per-connection handlers, SCRAM
//! sign-in and statement execution. Every sign-in failure is FATAL and closes the connection.

mod connection;
mod errors;
mod frames;
mod interactive;
pub mod listen;
mod oauthbearer;
mod phase;
pub mod pools;
mod query;
mod relay;
mod startup;
pub use interactive::TerminalFlows;

use std::sync::Arc;

use parking_lot::Mutex;
use pgwire::api::auth::{AuthDriver, DefaultServerParameterProvider};
use pgwire::api::stmt::NoopQueryParser;
use pgwire::api::ClientInfo;
use pgwire::api::PgWireServerHandlers;
use phase::Phase;
use portcullis_auth::{DeviceFlow, PasswordAuthenticator, SsoAuthenticator};
use portcullis_catalog::{Client, Reason, Session};
use portcullis_gateway::session::UpstreamSession;

/// Who is connecting: the peer address and the `application_name` it sent.
pub(crate) fn client_info(c: &impl ClientInfo) -> Client {
    Client::new(
        c.socket_addr().to_string(),
        c.metadata().get("application_name").map(String::as_str),
    )
}
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

/// What every connection shares.
pub struct PgShared {
    pub auth: Arc<PasswordAuthenticator>,
    pub sso: Arc<SsoAuthenticator>,
    /// Device grants for `@source_db` sign-ins.
    pub device: Arc<DeviceFlow>,
    /// The server's own code-at-a-page sign-in for `@source_db` through a SAML integration.
    pub saml: Arc<portcullis_auth::saml::SamlFlow>,
    /// Interactive sign-ins waiting, per client address.
    pub waiting: Arc<interactive::WaitingPerAddress>,
    /// Connections whose client has not finished its startup and sign-in exchange; the one
    /// waiting longest is cut when there are too many.
    pub slow_clients: Arc<crate::waiting::Waiting>,
    /// The longest an interactive sign-in may hold its connection waiting (`sso_flow_seconds`).
    pub max_wait: std::time::Duration,
    pub driver: AuthDriver<DefaultServerParameterProvider>,
    /// The same parameters, for sign-ins that finish without the driver (tokens).
    pub params: Arc<DefaultServerParameterProvider>,
    pub parser: Arc<NoopQueryParser>,
    /// Relayed sessions by the key their client was given: a cancel request with that key is
    /// passed on to the upstream session (and nothing else is).
    pub cancels: relay::Cancels,
    /// Upstream sessions: opened (or taken from the pool) at sign-in, given back at the end.
    pub gateway: Arc<portcullis_gateway::Gateway>,
    /// Cancelled when the server shuts down: no new connections; open sessions end with
    /// `57P01` once their statement in flight is done (at most [`SHUTDOWN_GRACE`]).
    pub stopping: tokio_util::sync::CancellationToken,
    /// Every connection's task, so a shutdown can wait for them.
    pub tasks: tokio_util::task::TaskTracker,
    /// `max_connections` for all the PostgreSQL listeners together (the server's and every
    /// connectivity pool's): a pool adds a way in, not more room.
    slots: Arc<Semaphore>,
    /// A few beyond it, taken in only to be told `53300`.
    over: Arc<Semaphore>,
}

/// How long a shutdown lets statements in flight finish.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

impl PgShared {
    pub fn new(
        auth: Arc<PasswordAuthenticator>,
        sso: Arc<SsoAuthenticator>,
        flows: interactive::TerminalFlows,
        max_connections: usize,
        max_wait: std::time::Duration,
        gateway: Arc<portcullis_gateway::Gateway>,
        stopping: tokio_util::sync::CancellationToken,
    ) -> Self {
        let params = || {
            let mut params = DefaultServerParameterProvider::default();
            params.server_version = format!("16.6 (Portcullis {})", env!("CARGO_PKG_VERSION"));
            params.is_superuser = false;
            params.scram_iterations = auth.catalog().options.scram_iterations as usize;
            params
        };
        Self {
            driver: AuthDriver::new(params()),
            params: Arc::new(params()),
            auth,
            sso,
            device: flows.device,
            saml: flows.saml,
            // Interactive sign-ins may hold at most a quarter of the connection slots, and
            // clients that keep the server waiting for their startup at most half.
            waiting: Arc::new(interactive::WaitingPerAddress::new(max_connections / 4)),
            slow_clients: crate::waiting::Waiting::new(max_connections / 2, "postgresql"),
            max_wait,
            parser: Arc::new(NoopQueryParser::new()),
            cancels: relay::Cancels::default(),
            gateway,
            stopping,
            tasks: tokio_util::task::TaskTracker::new(),
            slots: Arc::new(Semaphore::new(max_connections)),
            over: Arc::new(Semaphore::new(max_connections.div_ceil(8).max(8))),
        }
    }
}

/// Portcullis's parameters with the upstream's over them.
pub struct SignInParameters {
    base: Arc<DefaultServerParameterProvider>,
    upstream: Vec<(String, String)>,
}

impl pgwire::api::auth::ServerParameterProvider for SignInParameters {
    fn server_parameters<C>(&self, client: &C) -> Option<std::collections::HashMap<String, String>>
    where
        C: ClientInfo,
    {
        let mut params = self.base.server_parameters(client).unwrap_or_default();
        params.extend(self.upstream.iter().cloned());
        Some(params)
    }
}

/// A token sign-in waiting for its PasswordMessage.
#[derive(Debug, Clone)]
pub struct PendingToken {
    pub kind: portcullis_auth::oidc::TokenKind,
    pub source_database: Option<String>,
    pub database: String,
    pub integration: Option<String>,
}

/// One client connection: where it is in its life ([`Phase`]).
pub struct PgConnection {
    shared: Arc<PgShared>,
    listener: Arc<Listener>,
    phase: Mutex<Phase>,
}

/// The listener a connection came in on: the server's own, or a connectivity pool's.
pub struct Listener {
    /// The connectivity pool's id and name (its integration is used for SSO sign-ins that
    /// arrive on it), or none for the server's own listener.
    pub pool: Option<(i64, String)>,
    /// Cancelled when this listener closes — the server stops (a child of its `stopping`), or
    /// the pool is dropped: no new connections, open sessions end as at shutdown.
    pub closing: tokio_util::sync::CancellationToken,
    stopping: tokio_util::sync::CancellationToken,
}

impl Listener {
    /// The server's own listener.
    pub fn main(shared: &PgShared) -> Arc<Self> {
        Self::new(shared, None)
    }

    /// A connectivity pool's listener.
    pub fn pool(shared: &PgShared, id: i64, name: &str) -> Arc<Self> {
        Self::new(shared, Some((id, name.to_owned())))
    }

    fn new(shared: &PgShared, pool: Option<(i64, String)>) -> Arc<Self> {
        Arc::new(Self {
            pool,
            closing: shared.stopping.child_token(),
            stopping: shared.stopping.clone(),
        })
    }

    pub fn pool_id(&self) -> Option<i64> {
        self.pool.as_ref().map(|(id, _)| *id)
    }

    /// FATAL 57P01 for a session whose listener closed: PostgreSQL's words when it shuts down,
    /// or the pool that was dropped.
    pub fn closed_error(&self) -> pgwire::error::ErrorInfo {
        let why = match &self.pool {
            Some((_, name)) if !self.stopping.is_cancelled() => {
                format!("connectivity pool \"{name}\" was dropped")
            }
            _ => "the server is shutting down".to_owned(),
        };
        pgwire::error::ErrorInfo::new(
            "FATAL".into(),
            "57P01".into(),
            format!("terminating connection due to administrator command ({why})"),
        )
    }
}

impl PgConnection {
    /// The phase, leaving `Starting` in its place (the caller puts back what comes next).
    fn take_phase(&self) -> Phase {
        std::mem::take(&mut *self.phase.lock())
    }

    fn set_phase(&self, phase: Phase) {
        *self.phase.lock() = phase;
    }

    /// The signed-in session, if any.
    fn session(&self) -> Option<Arc<Session>> {
        self.phase.lock().session().cloned()
    }

    fn signed_in(&self, session: Arc<Session>, upstream: Option<Box<UpstreamSession>>) {
        self.set_phase(Phase::SignedIn {
            session,
            ended: None,
            upstream,
        });
    }

    /// The parameters the client is told at the end of its sign-in: Portcullis's, overridden
    /// by the upstream's (its real server_version, TimeZone, …) in a bound database.
    fn parameters(&self) -> SignInParameters {
        let upstream = match &*self.phase.lock() {
            Phase::SignedIn {
                upstream: Some(up), ..
            } => up.parameters.clone(),
            _ => Vec::new(),
        };
        SignInParameters {
            base: self.shared.params.clone(),
            upstream,
        }
    }

    /// The upstream session to relay to, once (the connection loop takes it).
    fn take_upstream(&self) -> Option<Box<UpstreamSession>> {
        match &mut *self.phase.lock() {
            Phase::SignedIn { upstream, .. } => upstream.take(),
            _ => None,
        }
    }

    /// Admits a session that signed in: in a database bound to an upstream, the person's
    /// upstream role is made and given the session's memberships first — a failure there is a
    /// FATAL `08001` (or `42501`) and no session.
    async fn admit(&self, session: Arc<Session>) -> pgwire::error::PgWireResult<()> {
        let catalog = self.shared.auth.catalog();
        match self.shared.gateway.open_session(catalog, &session).await {
            Ok(upstream) => {
                self.signed_in(session, upstream);
                Ok(())
            }
            Err(e) => {
                catalog
                    .sessions
                    .remove(&session.id, portcullis_catalog::Reason::Upstream);
                Err(errors::fatal_with(e.sqlstate, e.message))
            }
        }
    }

    /// The interactive sign-in waiting to be run, if that is the phase.
    fn take_interactive(&self) -> Option<interactive::Waiting> {
        let mut phase = self.phase.lock();
        match std::mem::take(&mut *phase) {
            Phase::Interactive(w) => Some(w),
            other => {
                *phase = other;
                None
            }
        }
    }

    /// Closes the phase; answers the session that was signed in, if any.
    fn close(&self) -> Option<Arc<Session>> {
        match std::mem::replace(&mut *self.phase.lock(), Phase::Closed) {
            Phase::SignedIn { session, .. } => Some(session),
            _ => None,
        }
    }
}

/// The handlers pgwire asks for, all backed by the one connection.
struct Handlers(Arc<PgConnection>);

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl pgwire::api::query::SimpleQueryHandler> {
        self.0.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl pgwire::api::query::ExtendedQueryHandler> {
        self.0.clone()
    }

    fn startup_handler(&self) -> Arc<impl pgwire::api::auth::StartupHandler> {
        self.0.clone()
    }

    fn cancel_handler(&self) -> Arc<impl pgwire::api::cancel::CancelHandler> {
        Arc::new(relay::CancelRelay(self.0.shared.clone()))
    }
}

/// Accepts connections until the listener closes (the server stops, or its pool is dropped);
/// the connection tasks are left to end, tracked in `shared.tasks`.
pub async fn serve(
    listener: listen::SqlListener,
    shared: Arc<PgShared>,
    on: Arc<Listener>,
    tls: Option<TlsAcceptor>,
    max_connections: usize,
) {
    loop {
        let accepted = tokio::select! {
            _ = on.closing.cancelled() => break,
            a = listener.accept() => a,
        };
        let (socket, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        // Over the limit: a few more are taken in only to be told so (53300) or to cancel;
        // beyond those the socket is closed.
        let (permit, over_limit) = match shared.slots.clone().try_acquire_owned() {
            Ok(permit) => (permit, false),
            Err(_) => match shared.over.clone().try_acquire_owned() {
                Ok(permit) => (permit, true),
                Err(_) => {
                    tracing::warn!(%peer, max_connections, "connection dropped: too many connections");
                    drop(socket);
                    continue;
                }
            },
        };
        if over_limit {
            tracing::warn!(%peer, max_connections, "connection refused (53300): too many connections");
        }
        // (pgwire's TLS negotiation sets TCP_NODELAY and reads a TCP peer's address.)
        let conn = Arc::new(PgConnection {
            shared: shared.clone(),
            listener: on.clone(),
            phase: Mutex::new(if over_limit {
                Phase::OverLimit
            } else {
                Phase::Starting
            }),
        });
        let tls = tls.clone();
        shared.tasks.spawn(async move {
            // Boxed: the task holds the connection's future (a few KiB) once, not a copy of
            // its layout within this block's.
            if let Err(e) = Box::pin(connection::run(socket, peer, tls, conn.clone())).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            if let Some(session) = conn.close() {
                conn.shared
                    .auth
                    .catalog()
                    .sessions
                    .remove(&session.id, Reason::ClientDisconnected);
            }
            drop(permit);
        });
    }
    // The listener closes here: new connections are refused.
}
