//! Connectivity-pool listeners: each pool in the catalog listens on its address with the
//! PostgreSQL protocol while the server runs, and SSO sign-ins that arrive there use the pool's
//! integration. `CREATE CONNECTIVITY_POOL` binds the address before the catalog commits (a bad
//! or busy address refuses the statement); `DROP` closes the listener and ends its sessions as a
//! shutdown would (57P01, a statement in flight upstream finishing first).

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use portcullis_catalog::error::sqlstate;
use portcullis_catalog::listeners::{pool_changes, ListenerCommit};
use portcullis_catalog::model::CatalogState;
use portcullis_catalog::CatalogError;
use portcullis_store::Change;
use tokio_rustls::TlsAcceptor;

use super::{Listener, PgShared};

/// The open pool listeners, by pool id (a cheap handle).
#[derive(Clone)]
pub struct PoolListeners(Arc<Inner>);

struct Inner {
    shared: Arc<PgShared>,
    tls: Option<TlsAcceptor>,
    max_connections: usize,
    open: Mutex<HashMap<i64, Arc<Listener>>>,
}

impl PoolListeners {
    pub fn new(shared: Arc<PgShared>, tls: Option<TlsAcceptor>, max_connections: usize) -> Self {
        Self(Arc::new(Inner {
            shared,
            tls,
            max_connections,
            open: Mutex::default(),
        }))
    }

    /// Opens the listeners of the pools in `state` (at start-up). An address that cannot be
    /// bound is logged and that pool does not listen; the server's own listeners are not held
    /// back by it.
    pub fn open_all(&self, state: &CatalogState) {
        for pool in &state.snap.connectivity_pools {
            match bind(&pool.listen) {
                Ok(socket) => self.start(pool.id, &pool.name, socket),
                Err(e) => tracing::error!(
                    pool = %pool.name,
                    error = %e.message,
                    "connectivity pool does not listen"
                ),
            }
        }
    }

    fn start(&self, id: i64, name: &str, socket: std::net::TcpListener) {
        let socket = match tokio::net::TcpListener::from_std(socket) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(pool = %name, error = %e, "connectivity pool does not listen");
                return;
            }
        };
        let listener = Listener::pool(&self.0.shared, id, name);
        if let Some(old) = self.0.open.lock().insert(id, listener.clone()) {
            old.closing.cancel();
        }
        if let Ok(addr) = socket.local_addr() {
            tracing::info!(pool = %name, %addr, "connectivity pool listening");
        }
        tokio::spawn(super::serve(
            super::listen::SqlListener::Tcp(socket),
            self.0.shared.clone(),
            listener,
            self.0.tls.clone(),
            self.0.max_connections,
        ));
    }

    fn close(&self, id: i64) {
        if let Some(listener) = self.0.open.lock().remove(&id) {
            listener.closing.cancel();
        }
    }
}

/// Binds a pool's address now (non-blocking, ready for tokio).
fn bind(listen: &str) -> Result<std::net::TcpListener, CatalogError> {
    let refused = |e: std::io::Error| {
        CatalogError::new(
            sqlstate::INVALID_PARAMETER_VALUE,
            format!("cannot listen on {listen}: {e}"),
        )
    };
    let socket = std::net::TcpListener::bind(listen).map_err(refused)?;
    socket.set_nonblocking(true).map_err(refused)?;
    Ok(socket)
}

/// Bound, not yet accepting: the catalog has not committed.
struct Prepared {
    listeners: PoolListeners,
    opened: Vec<(i64, String, std::net::TcpListener)>,
    closed: Vec<i64>,
}

impl portcullis_catalog::listeners::PoolListeners for PoolListeners {
    fn prepare(
        &self,
        before: &CatalogState,
        changes: &[Change],
    ) -> Result<Box<dyn ListenerCommit>, CatalogError> {
        let (opened, closed) = pool_changes(before, changes);
        let opened = opened
            .into_iter()
            .map(|p| Ok((p.id, p.name.clone(), bind(&p.listen)?)))
            .collect::<Result<_, CatalogError>>()?;
        Ok(Box::new(Prepared {
            listeners: self.clone(),
            opened,
            closed,
        }))
    }
}

impl ListenerCommit for Prepared {
    fn commit(self: Box<Self>) {
        for id in self.closed {
            self.listeners.close(id);
        }
        for (id, name, socket) in self.opened {
            self.listeners.start(id, &name, socket);
        }
    }
}
