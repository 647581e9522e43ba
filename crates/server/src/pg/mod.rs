//! The PostgreSQL-protocol front end (pgwire): the listener, per-connection handlers, SCRAM
//! sign-in and statement execution. Every sign-in failure is FATAL and closes the connection.

mod connection;
mod errors;
mod interactive;
mod query;
mod startup;

use std::sync::Arc;

use parking_lot::Mutex;
use pgwire::api::auth::{AuthDriver, DefaultServerParameterProvider};
use pgwire::api::stmt::NoopQueryParser;
use pgwire::api::ClientInfo;
use pgwire::api::PgWireServerHandlers;
use portcullis_auth::{DeviceFlow, PasswordAuthenticator, SsoAuthenticator};
use portcullis_catalog::{Client, Reason, Session};
use tokio::net::TcpListener;

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
    /// Interactive sign-ins waiting, per client address.
    pub waiting: Arc<interactive::WaitingPerAddress>,
    /// The longest an interactive sign-in may hold its connection waiting (`sso_flow_seconds`).
    pub max_wait: std::time::Duration,
    pub driver: AuthDriver<DefaultServerParameterProvider>,
    /// The same parameters, for sign-ins that finish without the driver (tokens).
    pub params: DefaultServerParameterProvider,
    pub parser: Arc<NoopQueryParser>,
}

impl PgShared {
    pub fn new(
        auth: Arc<PasswordAuthenticator>,
        sso: Arc<SsoAuthenticator>,
        device: Arc<DeviceFlow>,
        max_waiting: usize,
        max_wait: std::time::Duration,
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
            params: params(),
            auth,
            sso,
            device,
            waiting: Arc::new(interactive::WaitingPerAddress::new(max_waiting)),
            max_wait,
            parser: Arc::new(NoopQueryParser::new()),
        }
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

/// One client connection: its sign-in target and, once signed in, its session.
pub struct PgConnection {
    shared: Arc<PgShared>,
    target: Mutex<Option<portcullis_auth::LoginTarget>>,
    token: Mutex<Option<PendingToken>>,
    /// An interactive sign-in (device grant or code flow) started by the startup message.
    interactive: Mutex<Option<interactive::Waiting>>,
    session: Mutex<Option<Arc<Session>>>,
    /// Learns why the session ended when its authority ends (set once signed in).
    ended: Mutex<Option<tokio::sync::watch::Receiver<Option<portcullis_catalog::EndReason>>>>,
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
}

/// Accepts connections until the task is dropped.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<PgShared>,
    tls: Option<TlsAcceptor>,
    max_connections: usize,
) {
    let slots = Arc::new(Semaphore::new(max_connections));
    loop {
        let (socket, peer) = match listener.accept().await {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, max_connections, "connection refused: too many connections");
            drop(socket);
            continue;
        };
        let _ = socket.set_nodelay(true);
        let conn = Arc::new(PgConnection {
            shared: shared.clone(),
            target: Mutex::new(None),
            token: Mutex::new(None),
            interactive: Mutex::new(None),
            session: Mutex::new(None),
            ended: Mutex::new(None),
        });
        let tls = tls.clone();
        tokio::spawn(async move {
            if let Err(e) = connection::run(socket, tls, conn.clone()).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            if let Some(session) = conn.session.lock().take() {
                conn.shared
                    .auth
                    .catalog()
                    .sessions
                    .remove(&session.id, Reason::ClientDisconnected);
            }
            drop(permit);
        });
    }
}
