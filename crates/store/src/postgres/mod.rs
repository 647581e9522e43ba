//! The PostgreSQL catalog store (issue 15): the same records and changes as the SQLite store,
//! in a PostgreSQL database the operator already runs (`store_url`), so that several nodes can
//! share one catalog. One connection (tokio-postgres), opened again after it breaks; each
//! `apply` is one transaction, each `load` one repeatable-read snapshot. Plain TCP only to a
//! loopback host; anywhere else TLS with the system's trusted roots and the host name checked.
//!
//! Several nodes share one store: every commit raises the catalog's version in the same
//! transaction (a commit based on an older version is refused: [`StoreError::Conflict`]) and
//! announces it with `NOTIFY portcullis_catalog`; a node listens on a connection of its own.

mod apply;
mod changes;
mod load;
mod schema;
mod watch;

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::Mutex;
use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, Config, IsolationLevel};

use crate::{AuthEventRecord, Change, Snapshot, Store, StoreError, StoredEvents};

/// The PostgreSQL catalog store.
pub struct PgStore {
    config: Config,
    /// Where it is, for messages (never the password).
    display: String,
    client: Mutex<Option<Client>>,
    /// This node's number (`portcullis_nodes`), given at open.
    node: i64,
}

/// The channel versions are announced on.
const CHANNEL: &str = "portcullis_catalog";

impl PgStore {
    /// Connects to `url` (`postgresql://user[:password]@host:port/database?sslmode=…`;
    /// `password` overrides the URL's) and brings the schema up to date.
    pub async fn open(url: &str, password: Option<&str>) -> Result<Self, StoreError> {
        let mut config: Config = url
            .parse()
            .map_err(|e| StoreError::Config(format!("store_url is not a PostgreSQL URL: {e}")))?;
        if let Some(p) = password {
            config.password(p);
        }
        config
            .application_name("portcullis")
            .connect_timeout(std::time::Duration::from_secs(5));
        let hosts: Vec<String> = config
            .get_hosts()
            .iter()
            .map(|h| match h {
                tokio_postgres::config::Host::Tcp(h) => h.clone(),
                #[cfg(unix)]
                tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
            })
            .collect();
        let loopback = hosts.iter().all(|h| {
            h == "localhost"
                || h.starts_with('/')
                || h.parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        });
        if config.get_ssl_mode() == SslMode::Disable && !loopback {
            return Err(StoreError::Config(
                "store_url: sslmode=disable is allowed only for a loopback host (the catalog \
                 holds password verifiers and sealed secrets); use sslmode=require"
                    .into(),
            ));
        }
        let display = format!(
            "postgresql://{}@{}:{}/{}",
            config.get_user().unwrap_or_default(),
            hosts.join(","),
            config.get_ports().first().copied().unwrap_or(5432),
            config.get_dbname().unwrap_or_default()
        );
        let mut store = Self {
            config,
            display,
            client: Mutex::new(None),
            node: 0,
        };
        store.migrate().await?;
        store.node = {
            let mut guard = store.client().await?;
            let client = guard.as_mut().ok_or_else(gone)?;
            client
                .query_one("SELECT nextval('portcullis_nodes')", &[])
                .await?
                .get(0)
        };
        Ok(store)
    }

    /// Where the store is (no password).
    pub fn display(&self) -> &str {
        &self.display
    }

    /// The open connection, opened (again) if there is none or it broke.
    async fn client(&self) -> Result<tokio::sync::MutexGuard<'_, Option<Client>>, StoreError> {
        let mut guard = self.client.lock().await;
        if guard.as_ref().is_none_or(Client::is_closed) {
            *guard = Some(self.connect().await?);
        }
        Ok(guard)
    }

    async fn connect(&self) -> Result<Client, StoreError> {
        let unreachable = |e: tokio_postgres::Error| {
            StoreError::Unavailable(format!(
                "{}: {}",
                self.display,
                crate::error::describe_pg(&e)
            ))
        };
        self.connect_only(unreachable).await
    }

    /// Writes a pending row with `sql` (an insert, or an upsert).
    async fn write_pending(
        &self,
        sql: &str,
        key: &str,
        sealed: &[u8],
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let mut guard = self.client().await?;
        let client = guard.as_mut().ok_or_else(gone)?;
        client.execute(sql, &[&key, &sealed, &expires_at]).await?;
        Ok(true)
    }

    /// Raises the catalog's version in `tx` (only from `based_on`, when given) and announces
    /// the new one at commit.
    async fn bump(
        tx: &tokio_postgres::Transaction<'_>,
        based_on: Option<u64>,
    ) -> Result<u64, StoreError> {
        let row = match based_on {
            Some(v) => {
                let v = i64::try_from(v).unwrap_or(i64::MAX);
                tx.query_opt(
                    "UPDATE portcullis_catalog_version SET version = version + 1 \
                     WHERE id = 1 AND version = $1 RETURNING version",
                    &[&v],
                )
                .await?
            }
            None => {
                tx.query_opt(
                    "UPDATE portcullis_catalog_version SET version = version + 1 \
                     WHERE id = 1 RETURNING version",
                    &[],
                )
                .await?
            }
        };
        let Some(row) = row else {
            return Err(StoreError::Conflict {
                based_on: based_on.unwrap_or_default(),
            });
        };
        let version: i64 = row.get(0);
        tx.execute(
            "SELECT pg_notify($1, $2)",
            &[&CHANNEL, &version.to_string()],
        )
        .await?;
        Ok(u64::try_from(version).unwrap_or_default())
    }

    async fn apply_versioned(
        &self,
        changes: &[Change],
        based_on: Option<u64>,
    ) -> Result<u64, StoreError> {
        let mut guard = self.client().await?;
        let client = guard.as_mut().ok_or_else(gone)?;
        let tx = client.transaction().await?;
        let version = Self::bump(&tx, based_on).await?;
        for change in changes {
            apply::apply_one(&tx, change).await?;
        }
        changes::record(&tx, version, changes).await?;
        tx.commit().await?;
        Ok(version)
    }

    async fn connect_only(
        &self,
        unreachable: impl Fn(tokio_postgres::Error) -> StoreError,
    ) -> Result<Client, StoreError> {
        let client = if self.config.get_ssl_mode() == SslMode::Disable {
            let (client, connection) = self
                .config
                .connect(tokio_postgres::NoTls)
                .await
                .map_err(unreachable)?;
            tokio::spawn(connection);
            client
        } else {
            let mut config = self.config.clone();
            config.ssl_mode(SslMode::Require);
            let (client, connection) = config.connect(tls()?).await.map_err(unreachable)?;
            tokio::spawn(connection);
            client
        };
        Ok(client)
    }

    /// Runs the migrations this store has not run, under an advisory lock (two nodes starting
    /// at once migrate once); a store newer than this build is refused.
    async fn migrate(&self) -> Result<(), StoreError> {
        let mut guard = self.client().await?;
        let client = guard.as_mut().ok_or_else(gone)?;
        let tx = client.transaction().await?;
        tx.batch_execute(
            "SELECT pg_advisory_xact_lock(7075706); \
             CREATE TABLE IF NOT EXISTS portcullis_schema (version BIGINT NOT NULL); \
             INSERT INTO portcullis_schema SELECT 0 WHERE NOT EXISTS \
                 (SELECT 1 FROM portcullis_schema)",
        )
        .await?;
        let found: i64 = tx
            .query_one("SELECT version FROM portcullis_schema", &[])
            .await?
            .get(0);
        let known = schema::MIGRATIONS.len() as i64;
        if found > known {
            return Err(StoreError::FutureSchema { found, known });
        }
        for sql in schema::MIGRATIONS.iter().skip(found as usize) {
            tx.batch_execute(sql).await?;
        }
        tx.execute("UPDATE portcullis_schema SET version = $1", &[&known])
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

fn gone() -> StoreError {
    StoreError::Unavailable("the store connection is gone".into())
}

/// rustls with the system's trusted certificates; the host name is checked.
fn tls() -> Result<tokio_postgres_rustls::MakeRustlsConnect, StoreError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err(StoreError::Config(
            "no trusted certificates on this system to check the store's".into(),
        ));
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| StoreError::Config(format!("TLS: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

#[async_trait]
impl Store for PgStore {
    async fn load(&self) -> Result<Snapshot, StoreError> {
        Ok(self.load_versioned().await?.0)
    }

    async fn load_versioned(&self) -> Result<(Snapshot, u64), StoreError> {
        let mut guard = self.client().await?;
        let client = guard.as_mut().ok_or_else(gone)?;
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let version: i64 = tx
            .query_one(
                "SELECT version FROM portcullis_catalog_version WHERE id = 1",
                &[],
            )
            .await?
            .get(0);
        let snap = load::load(&tx).await?;
        tx.commit().await?;
        Ok((snap, u64::try_from(version).unwrap_or_default()))
    }

    async fn apply(&self, changes: &[Change]) -> Result<(), StoreError> {
        self.apply_versioned(changes, None).await.map(|_| ())
    }

    async fn apply_at(&self, changes: &[Change], based_on: u64) -> Result<u64, StoreError> {
        self.apply_versioned(changes, Some(based_on)).await
    }

    async fn version(&self) -> Result<u64, StoreError> {
        let mut guard = self.client().await?;
        let client = guard.as_mut().ok_or_else(gone)?;
        let version: i64 = client
            .query_one(
                "SELECT version FROM portcullis_catalog_version WHERE id = 1",
                &[],
            )
            .await?
            .get(0);
        Ok(u64::try_from(version).unwrap_or_default())
    }

    async fn changes_since(
        &self,
        version: u64,
    ) -> Result<Option<(u64, Vec<Vec<Change>>)>, StoreError> {
        let mut guard = self.client().await?;
        let client = guard.as_mut().ok_or_else(gone)?;
        changes::since(client, version).await
    }

    async fn watch(&self) -> Option<tokio::sync::mpsc::Receiver<u64>> {
        watch::listen(&self.config).await
    }

    fn node(&self) -> Option<i64> {
        Some(self.node)
    }

    async fn put_pending(
        &self,
        key: &str,
        sealed: &[u8],
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        self.write_pending(
            "INSERT INTO portcullis_pending VALUES ($1, $2, $3)",
            key,
            sealed,
            expires_at,
        )
        .await
    }

    async fn replace_pending(
        &self,
        key: &str,
        sealed: &[u8],
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        self.write_pending(
            "INSERT INTO portcullis_pending VALUES ($1, $2, $3) ON CONFLICT (key) \
             DO UPDATE SET sealed = excluded.sealed, expires_at = excluded.expires_at",
            key,
            sealed,
            expires_at,
        )
        .await
    }

    async fn peek_pending(&self, key: &str, now: i64) -> Result<Option<Vec<u8>>, StoreError> {
        let mut guard = self.client().await?;
        let client = guard.as_mut().ok_or_else(gone)?;
        Ok(client
            .query_opt(
                "SELECT sealed FROM portcullis_pending WHERE key = $1 AND expires_at > $2",
                &[&key, &now],
            )
            .await?
            .map(|r| r.get(0)))
    }

    async fn take_pending(&self, key: &str, now: i64) -> Result<Option<Vec<u8>>, StoreError> {
        let mut guard = self.client().await?;
        let client = guard.as_mut().ok_or_else(gone)?;
        let row = client
            .query_opt(
                "DELETE FROM portcullis_pending WHERE key = $1 RETURNING sealed, expires_at",
                &[&key],
            )
            .await?;
        Ok(row.and_then(|r| {
            let expires_at: i64 = r.get(1);
            (expires_at > now).then(|| r.get(0))
        }))
    }

    async fn first_use(&self, key: &str, until: i64, now: i64) -> Result<bool, StoreError> {
        let mut guard = self.client().await?;
        let client = guard.as_mut().ok_or_else(gone)?;
        // A new key, or an expired record of it taken over: the first use.
        let rows = client
            .execute(
                "INSERT INTO portcullis_pending VALUES ($1, '', $2) ON CONFLICT (key) DO UPDATE \
                 SET expires_at = EXCLUDED.expires_at WHERE portcullis_pending.expires_at <= $3",
                &[&key, &until, &now],
            )
            .await?;
        Ok(rows == 1)
    }

    async fn publish_sessions(
        &self,
        upserts: &[(String, String)],
        removed: &[String],
        now: i64,
    ) -> Result<(), StoreError> {
        let mut guard = self.client().await?;
        let client = guard.as_mut().ok_or_else(gone)?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO portcullis_node_seen VALUES ($1, $2) \
             ON CONFLICT (node) DO UPDATE SET seen_at = EXCLUDED.seen_at",
            &[&self.node, &now],
        )
        .await?;
        if !upserts.is_empty() {
            let put = tx
                .prepare(
                    "INSERT INTO portcullis_sessions VALUES ($1, $2, $3) \
                     ON CONFLICT (node, id) DO UPDATE SET row_json = EXCLUDED.row_json",
                )
                .await?;
            for (id, row) in upserts {
                tx.execute(&put, &[id, &self.node, row]).await?;
            }
        }
        if !removed.is_empty() {
            tx.execute(
                "DELETE FROM portcullis_sessions WHERE node = $1 AND id = ANY($2)",
                &[&self.node, &removed],
            )
            .await?;
        }
        // Nodes gone for a minute (killed) leave nothing behind.
        tx.execute(
            "DELETE FROM portcullis_sessions s USING portcullis_node_seen n \
             WHERE s.node = n.node AND n.seen_at < $1",
            &[&(now - 60)],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn remote_sessions(&self, seen_after: i64) -> Result<Vec<(i64, String)>, StoreError> {
        let mut guard = self.client().await?;
        let client = guard.as_mut().ok_or_else(gone)?;
        let rows = client
            .query(
                "SELECT s.node, s.row_json FROM portcullis_sessions s \
                 JOIN portcullis_node_seen n ON n.node = s.node \
                 WHERE s.node <> $1 AND n.seen_at >= $2",
                &[&self.node, &seen_after],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn request_session_end(
        &self,
        id: &str,
        by: &str,
        seen_after: i64,
    ) -> Result<bool, StoreError> {
        let mut guard = self.client().await?;
        let client = guard.as_mut().ok_or_else(gone)?;
        let rows = client
            .execute(
                // Every live node is asked, not only those that published the session: one
                // may have taken a copy of an HTTP session since its last publication.
                "INSERT INTO portcullis_session_ends \
                 SELECT $1, n.node, $2 FROM portcullis_node_seen n \
                 WHERE n.seen_at >= $3 ON CONFLICT (id, node) DO NOTHING",
                &[&id, &by, &seen_after],
            )
            .await?;
        if rows > 0 {
            client
                .execute("SELECT pg_notify($1, 'end')", &[&CHANNEL])
                .await?;
        }
        Ok(rows > 0)
    }

    async fn take_session_ends(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut guard = self.client().await?;
        let client = guard.as_mut().ok_or_else(gone)?;
        let rows = client
            .query(
                "DELETE FROM portcullis_session_ends WHERE node = $1 RETURNING id, by_user",
                &[&self.node],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn sweep_pending(&self, now: i64) -> Result<(), StoreError> {
        let mut guard = self.client().await?;
        let client = guard.as_mut().ok_or_else(gone)?;
        client
            .execute(
                "DELETE FROM portcullis_pending WHERE expires_at <= $1",
                &[&now],
            )
            .await?;
        Ok(())
    }

    async fn key_check(&self, proposed: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut guard = self.client().await?;
        let client = guard.as_mut().ok_or_else(gone)?;
        client
            .execute(
                "INSERT INTO portcullis_key_check VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
                &[&proposed],
            )
            .await?;
        Ok(client
            .query_one("SELECT sealed FROM portcullis_key_check WHERE id = 1", &[])
            .await?
            .get(0))
    }

    fn kind(&self) -> &'static str {
        "postgres"
    }

    async fn append_events(&self, events: &[Arc<AuthEventRecord>]) -> Result<(), StoreError> {
        let mut guard = self.client().await?;
        let client = guard.as_mut().ok_or_else(gone)?;
        let tx = client.transaction().await?;
        let insert = tx
            .prepare(
                "INSERT INTO authentication_events (id, at_micros, kind, method, identity, \
                 database_id, database_name, integration, peer, application, result, reason, \
                 detail, session_id, token_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
                 $11, $12, $13, $14, $15) ON CONFLICT (id) DO NOTHING",
            )
            .await?;
        for e in events {
            tx.execute(
                &insert,
                &[
                    &e.id,
                    &e.at_micros,
                    &e.kind,
                    &e.method,
                    &e.identity,
                    &e.database_id,
                    &e.database,
                    &e.integration,
                    &e.peer,
                    &e.application,
                    &e.result,
                    &e.reason,
                    &e.detail,
                    &e.session_id,
                    &e.token_id,
                ],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn load_events(
        &self,
        since_micros: i64,
        limit: usize,
    ) -> Result<StoredEvents, StoreError> {
        let mut guard = self.client().await?;
        let client = guard.as_mut().ok_or_else(gone)?;
        let max_id: i64 = client
            .query_one(
                "SELECT coalesce(max(id), 0)::BIGINT FROM authentication_events",
                &[],
            )
            .await?
            .get(0);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = client
            .query(
                "SELECT id, at_micros, kind, method, identity, database_id, database_name, \
                 integration, peer, application, result, reason, detail, session_id, token_id \
                 FROM authentication_events WHERE at_micros >= $1 ORDER BY id DESC LIMIT $2",
                &[&since_micros, &limit],
            )
            .await?;
        let mut events: Vec<AuthEventRecord> = rows
            .iter()
            .map(|r| AuthEventRecord {
                id: r.get(0),
                at_micros: r.get(1),
                kind: r.get(2),
                method: r.get(3),
                identity: r.get(4),
                database_id: r.get(5),
                database: r.get(6),
                integration: r.get(7),
                peer: r.get(8),
                application: r.get(9),
                result: r.get(10),
                reason: r.get(11),
                detail: r.get(12),
                session_id: r.get(13),
                token_id: r.get(14),
            })
            .collect();
        events.reverse();
        Ok(StoredEvents { events, max_id })
    }

    async fn close(&self) {
        self.client.lock().await.take();
    }

    async fn prune_events(&self, before_micros: i64) -> Result<usize, StoreError> {
        let mut guard = self.client().await?;
        let client = guard.as_mut().ok_or_else(gone)?;
        let n = client
            .execute(
                "DELETE FROM authentication_events WHERE at_micros < $1",
                &[&before_micros],
            )
            .await?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }
}
