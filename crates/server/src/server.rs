//! Startup and shutdown: open the store, bootstrap on first start, run both listeners
//! ([`start`]), and stop gracefully ([`Running::stop`]).

use std::sync::Arc;

use anyhow::Context;
use portcullis_auth::oidc::ProviderCache;
use portcullis_auth::{PasswordAuthenticator, SsoAuthenticator};
use portcullis_catalog::sealing::Sealer;
use portcullis_catalog::{Catalog, CatalogOptions};
use portcullis_store::SqliteStore;

use crate::config::Settings;
use crate::{http, pg, tls};

/// Opens the catalog: SQLite in the data directory (made private first; it also holds the
/// sealing key), or the PostgreSQL store `store_url` names.
async fn open_catalog(settings: &Settings) -> anyhow::Result<Arc<Catalog>> {
    crate::secret_file::prepare_data_dir(&settings.data_dir)?;
    let store: Arc<dyn portcullis_store::Store> = match &settings.store_url {
        None => Arc::new(
            SqliteStore::open(&settings.data_dir.join("catalog.db"))
                .context("opening the catalog")?,
        ),
        Some(url) => {
            let store = portcullis_store::PgStore::open(url, settings.store_password.as_deref())
                .await
                .context("opening the catalog store")?;
            tracing::info!(store = %store.display(), "catalog store: PostgreSQL");
            Arc::new(store)
        }
    };
    Ok(Arc::new(
        Catalog::open(
            store,
            CatalogOptions {
                scram_iterations: settings.scram_iterations,
                event_retention_days: settings.event_retention_days,
                event_capacity: settings.event_rows,
            },
            Sealer::new(&sealing_key(&settings.data_dir)?)?,
        )
        .await?,
    ))
}

/// `portcullis recover-admin`: on the server's host, with the server stopped, gives
/// `admin@system` a new password (from PORTCULLIS_ADMIN_PASSWORD, or generated and printed),
/// enables it, clears its failed attempts and gives it back the system administrator role.
pub async fn recover_admin(settings: Settings) -> anyhow::Result<()> {
    let catalog = open_catalog(&settings).await?;
    if catalog.is_empty() {
        anyhow::bail!(
            "{} holds no catalog yet; `portcullis serve` creates admin@system on first start",
            settings.data_dir.display()
        );
    }
    let (password, generated) = admin_password();
    catalog.recover_admin(&password).await?;
    if generated {
        println!("admin@system recovered with password: {password}\nStore it now; it will not be shown again.");
    } else {
        println!("admin@system recovered with the password from PORTCULLIS_ADMIN_PASSWORD.");
    }
    Ok(())
}

fn admin_password() -> (String, bool) {
    match std::env::var("PORTCULLIS_ADMIN_PASSWORD") {
        Ok(p) if !p.is_empty() => (p, false),
        _ => (generate_password(), true),
    }
}

/// `portcullis serve`: starts the server and runs it until Ctrl-C or SIGTERM (or a listener
/// fails), then stops it gracefully.
pub async fn run(
    settings: Settings,
    audit: Option<crate::logging::AuditSink>,
) -> anyhow::Result<()> {
    let mut running = start(settings, audit, None).await?;
    println!(
        "Portcullis listening: SQL on {}{}, HTTP on {}{}",
        running.sql_addr,
        if running.sql_tls { " (TLS)" } else { "" },
        running.http_addr,
        if running.http_tls { " (TLS)" } else { "" }
    );
    tokio::select! {
        _ = shutdown_signal() => tracing::info!("shutting down: new connections refused, open sessions end with 57P01"),
        () = running.failed() => {}
    }
    running.stop().await;
    Ok(())
}

/// A server started by [`start`]: its addresses, and what [`Running::stop`] needs.
pub struct Running {
    /// Where the PostgreSQL-protocol listener is (its port, if 0 was asked, chosen by the OS).
    pub sql_addr: std::net::SocketAddr,
    pub http_addr: std::net::SocketAddr,
    pub sql_tls: bool,
    pub http_tls: bool,
    /// The catalog, for in-process tests that look inside.
    pub catalog: Arc<Catalog>,
    stopping: tokio_util::sync::CancellationToken,
    pg_task: Option<tokio::task::JoinHandle<()>>,
    http_task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    pg_shared: Arc<pg::PgShared>,
    background: Vec<tokio::task::JoinHandle<()>>,
    audit: Option<crate::logging::AuditSink>,
}

/// Starts the server in the caller's tokio runtime: opens the store (bootstrapping `system`
/// and `admin@system` on first start, with `admin_password`, else PORTCULLIS_ADMIN_PASSWORD,
/// else a generated password printed once), binds both listeners and serves until
/// [`Running::stop`]. Tests start servers in-process this way.
pub async fn start(
    settings: Settings,
    audit: Option<crate::logging::AuditSink>,
    admin_password: Option<String>,
) -> anyhow::Result<Running> {
    // The audit log's buffer is written out every quarter second (and at the end).
    let audit_flusher = audit.clone().map(|sink| {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(portcullis_catalog::events::FLUSH_INTERVAL);
            loop {
                tick.tick().await;
                let sink = sink.clone();
                let _ = tokio::task::spawn_blocking(move || sink.flush()).await;
            }
        })
    });
    let metrics = match http::metrics::install() {
        Ok(handle) => Some(handle),
        Err(e) => {
            tracing::warn!(error = %e, "metrics are not recorded");
            None
        }
    };
    let catalog = open_catalog(&settings).await?;
    let event_writer = catalog.spawn_event_writer();
    let providers = Arc::new(ProviderCache::new(
        std::time::Duration::from_secs(5),
        std::time::Duration::from_secs(settings.jwks_min_refresh_seconds),
        std::time::Duration::from_secs(settings.jwks_max_age_seconds),
    )?);
    let sso = Arc::new(SsoAuthenticator::new(catalog.clone(), providers));
    catalog.set_explainer(sso.clone());
    let gateway = Arc::new(portcullis_gateway::Gateway::new(
        portcullis_gateway::pool::PoolSettings {
            size: settings.upstream_pool_size,
            idle: std::time::Duration::from_secs(settings.upstream_pool_idle_seconds),
        },
    ));
    catalog.set_upstream_checker(gateway.clone());
    catalog.set_upstream_mirror(gateway.clone());
    if catalog.is_empty() {
        let given = admin_password.is_some();
        let (password, generated) = match admin_password {
            Some(p) => (p, false),
            None => self::admin_password(),
        };
        catalog.bootstrap(&password).await?;
        if generated {
            // Printed once, on first start only; never logged.
            println!("Created admin@system with password: {password}\nStore it now; it will not be shown again.");
        } else if given {
            println!("Created admin@system with the password the server was started with.");
        } else {
            println!("Created admin@system with the password from PORTCULLIS_ADMIN_PASSWORD.");
        }
    }

    let tls = match (&settings.tls_cert, &settings.tls_key, settings.dev_tls) {
        (Some(cert), Some(key), _) => Some(tls::acceptor(cert, key)?),
        (_, _, true) => {
            let (cert, key) = tls::dev_pair(&settings.data_dir)?;
            Some(tls::acceptor(&cert, &key)?)
        }
        _ => None,
    };

    let auth = Arc::new(PasswordAuthenticator::new(catalog.clone()));
    let sql = tokio::net::TcpListener::bind(settings.sql_addr)
        .await
        .with_context(|| format!("binding {}", settings.sql_addr))?;
    let web = tokio::net::TcpListener::bind(settings.http_addr)
        .await
        .with_context(|| format!("binding {}", settings.http_addr))?;
    let sql_addr = sql.local_addr()?;
    let sql_socket = match &settings.sql_socket_dir {
        Some(dir) => Some(
            pg::listen::UnixSocket::bind(dir, sql_addr.port())
                .await
                .with_context(|| format!("binding a socket in {}", dir.display()))?,
        ),
        None => None,
    };
    let sql_tls = tls.is_some();
    let web_addr = web.local_addr()?;
    let https = settings.http_tls;
    let flows = Arc::new(portcullis_auth::CodeFlow::new(
        catalog.clone(),
        sso.clone(),
        portcullis_auth::Advertised {
            authority: settings
                .advertised_address
                .clone()
                .unwrap_or_else(|| web_addr.to_string()),
            https,
        },
        std::time::Duration::from_secs(settings.sso_flow_seconds),
        std::time::Duration::from_secs(settings.sso_renew_margin_seconds),
    ));
    let saml = Arc::new(portcullis_auth::saml::SamlFlow::new(
        catalog.clone(),
        sso.clone(),
        flows.advertised().clone(),
        std::time::Duration::from_secs(settings.sso_flow_seconds),
    ));
    let device = Arc::new(portcullis_auth::DeviceFlow::new(
        catalog.clone(),
        sso.clone(),
    ));
    let http_state = Arc::new(http::HttpState {
        auth: auth.clone(),
        sso: sso.clone(),
        tokens: http::TokenTable::new(catalog.clone()),
        token_seconds: settings.http_token_seconds,
        secure_cookies: https,
        https,
        flows: flows.clone(),
        saml: saml.clone(),
        device: device.clone(),
        device_guesses: http::Throttle::new(20, std::time::Duration::from_secs(60)),
        request_states: http::pages::signin::RequestStates::default(),
        sign_in_starts: http::SignInStarts::new(settings.sso_starts_per_second),
        flow_seconds: i64::try_from(settings.sso_flow_seconds).unwrap_or(600),
        metrics,
    });
    let sweeper = {
        let state = http_state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(30));
            loop {
                tick.tick().await;
                state.flows.renew_due().await;
                state.sso.providers().refresh_stale().await;
                state.flows.sweep();
                state.auth.catalog().sweep_pending().await;
                state.saml.sweep();
                state.device.sweep();
                state.request_states.sweep();
                state.sign_in_starts.sweep();
                let catalog = state.auth.catalog();
                state.tokens.sweep(portcullis_catalog::now(), |id| {
                    catalog.sessions.get(id).is_some()
                });
            }
        })
    };
    // Sessions whose time is up (token expired, idle timeout, maximum age) end within a
    // second, and their idle connections are told then.
    let session_sweeper = {
        let catalog = catalog.clone();
        let gateway = gateway.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            loop {
                tick.tick().await;
                catalog.expire_sessions();
                gateway.reap();
            }
        })
    };
    let http_tls = if settings.http_tls { tls.clone() } else { None };
    let stopping = tokio_util::sync::CancellationToken::new();
    let pg_shared = Arc::new(pg::PgShared::new(
        auth,
        sso,
        pg::TerminalFlows { device, saml },
        settings.max_connections,
        std::time::Duration::from_secs(settings.sso_flow_seconds),
        gateway,
        stopping.clone(),
    ));
    let pools =
        pg::pools::PoolListeners::new(pg_shared.clone(), tls.clone(), settings.max_connections);
    pools.open_all(&catalog.state());
    catalog.set_pool_listeners(Arc::new(pools));
    if let Some(socket) = &sql_socket {
        tracing::info!(path = %socket.path().display(), "SQL listener on a Unix socket");
    }
    let main_listener = pg::Listener::main(&pg_shared);
    let pg_task = tokio::spawn({
        let shared = pg_shared.clone();
        let max_connections = settings.max_connections;
        async move {
            let tcp = pg::serve(
                pg::listen::SqlListener::Tcp(sql),
                shared.clone(),
                main_listener.clone(),
                tls,
                max_connections,
            );
            match sql_socket {
                Some(socket) => {
                    let unix = pg::serve(
                        pg::listen::SqlListener::Unix(socket),
                        shared,
                        main_listener,
                        None,
                        max_connections,
                    );
                    tokio::join!(tcp, unix);
                }
                None => tcp.await,
            }
        }
    });
    let router = http::app(http_state);
    let max_connections = settings.max_connections;
    let http_task = tokio::spawn(http::serve(
        web,
        router,
        http_tls,
        max_connections,
        stopping.clone(),
    ));
    let mut background = vec![sweeper, session_sweeper, event_writer];
    // Several nodes over one store: follow the catalog the others commit.
    background.extend(catalog.spawn_store_watch());
    background.extend(audit_flusher);
    Ok(Running {
        sql_addr,
        http_addr: web_addr,
        sql_tls,
        http_tls: https,
        catalog,
        stopping,
        pg_task: Some(pg_task),
        http_task: Some(http_task),
        pg_shared,
        background,
        audit,
    })
}

impl Running {
    /// Resolves if a listener stops by itself (it should not: an error is logged).
    pub async fn failed(&mut self) {
        let (Some(pg), Some(web)) = (self.pg_task.as_mut(), self.http_task.as_mut()) else {
            return;
        };
        tokio::select! {
            r = web => {
                self.http_task = None;
                tracing::error!(result = ?r.map(|r| r.map_err(|e| e.to_string())), "HTTP listener stopped");
            }
            r = pg => {
                self.pg_task = None;
                tracing::error!(result = ?r.map_err(|e| e.to_string()), "SQL listener stopped");
            }
        }
    }

    /// Stops gracefully: both listeners stop accepting; each pg session finishes its statement
    /// in flight (for at most [`pg::SHUTDOWN_GRACE`]) and is told `57P01`, a device sign-in
    /// waiting for approval too; HTTP requests in flight are answered (as long), kept-alive
    /// connections closed; the pending authentication events are written and the audit log
    /// flushed.
    pub async fn stop(mut self) {
        self.stopping.cancel();
        if let Some(pg) = self.pg_task.take() {
            let _ = pg.await;
        }
        let shared = &self.pg_shared;
        shared.tasks.close();
        let grace = pg::SHUTDOWN_GRACE + std::time::Duration::from_secs(1);
        if tokio::time::timeout(grace, shared.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                open = shared.tasks.len(),
                "sessions still open after the shutdown grace; closing them"
            );
        }
        // The HTTP listener answers its requests in flight (bounded) before it returns.
        if let Some(web) = self.http_task.take() {
            let _ = web.await;
        }
        for task in self.background.drain(..) {
            task.abort();
        }
        let written = self.catalog.flush_events().await;
        self.catalog.close_store().await;
        tracing::info!(events = written, "authentication events written; stopped");
        if let Some(a) = self.audit.take() {
            a.flush();
        }
    }
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let term = async {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

/// The key that seals secrets in the catalog: `secret.key` in the data directory (0600),
/// created on first start. Losing it makes stored client secrets unreadable.
fn sealing_key(data_dir: &std::path::Path) -> anyhow::Result<[u8; Sealer::KEY_LEN]> {
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::STANDARD;
    let path = data_dir.join("secret.key");
    match crate::secret_file::read(&path)? {
        Some(text) => {
            let bytes = engine
                .decode(text.trim())
                .with_context(|| format!("{} is not base64", path.display()))?;
            bytes
                .try_into()
                .map_err(|_| anyhow::anyhow!("{} must hold a 32-byte key", path.display()))
        }
        None => {
            let key = Sealer::generate_key();
            crate::secret_file::write(&path, engine.encode(key).as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            Ok(key)
        }
    }
}

/// 24 characters: upper, lower, digits and symbols, so it meets complexity level 2.
fn generate_password() -> String {
    use rand::seq::IndexedRandom;
    const SETS: [&[u8]; 4] = [
        b"ABCDEFGHJKLMNPQRSTUVWXYZ",
        b"abcdefghijkmnopqrstuvwxyz",
        b"23456789",
        b"-_.+=%",
    ];
    let mut rng = rand::rng();
    (0..24)
        .map(|i| *SETS[i % 4].choose(&mut rng).unwrap_or(&b'x') as char)
        .collect()
}
