//! A server started in the test's own process (`portcullis::start`, on ephemeral ports in a
//! temporary data directory), with `tokio-postgres` as the ordinary client: no binary to spawn,
//! no port to read from its output. Tests about particular clients (psql, pgjdbc, psycopg,
//! node-postgres, Chromium) start the binary instead (`harness::Server`).

use std::net::SocketAddr;

use super::ADMIN_PASSWORD;

pub struct InProcess {
    pub running: portcullis::Running,
    _dir: tempfile::TempDir,
}

/// Starts a server with the default settings and `admin@system`'s password [`ADMIN_PASSWORD`].
pub async fn start() -> InProcess {
    let dir = tempfile::tempdir().unwrap();
    let running = run_in(dir.path()).await;
    InProcess { running, _dir: dir }
}

async fn run_in(dir: &std::path::Path) -> portcullis::Running {
    portcullis::start(settings_in(dir), None, Some(ADMIN_PASSWORD.into()))
        .await
        .unwrap()
}

/// The default settings with the data directory in `dir` and ephemeral ports.
pub fn settings_in(dir: &std::path::Path) -> portcullis::config::Settings {
    portcullis::config::resolve(
        None,
        portcullis::config::Overrides {
            data_dir: Some(dir.join("data")),
            sql_addr: Some("127.0.0.1:0".into()),
            http_addr: Some("127.0.0.1:0".into()),
            dev_tls: false,
        },
    )
    .unwrap()
}

/// [`settings_in`] `dir`, with the catalog in `pg`'s database `portcullis` (the password apart
/// from the URL, as PORTCULLIS_STORE_PASSWORD gives it).
pub fn store_settings_in(
    dir: &std::path::Path,
    pg: &super::postgres::Postgres,
) -> portcullis::config::Settings {
    let mut settings = settings_in(dir);
    settings.store_url = Some(format!(
        "postgresql://postgres@127.0.0.1:{}/portcullis?sslmode=disable",
        pg.port
    ));
    settings.store_password = Some(super::postgres::SUPERUSER_PASSWORD.into());
    settings
}

/// Starts a server with `settings` (from [`settings_in`] `dir`, changed); the caller keeps
/// `dir`.
pub async fn start_with(
    dir: tempfile::TempDir,
    settings: portcullis::config::Settings,
) -> anyhow::Result<InProcess> {
    let running = portcullis::start(settings, None, Some(ADMIN_PASSWORD.into())).await?;
    Ok(InProcess { running, _dir: dir })
}

impl InProcess {
    pub fn sql_addr(&self) -> SocketAddr {
        self.running.sql_addr
    }

    pub fn http(&self, path: &str) -> String {
        format!("http://{}{path}", self.running.http_addr)
    }

    /// Signs in over the PostgreSQL protocol (no TLS); the connection runs in a task.
    pub async fn connect(
        &self,
        user: &str,
        database: &str,
        password: &str,
    ) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        Ok(Self::connect_at(self.sql_addr(), user, database, password)
            .await?
            .0)
    }

    /// Stops the server gracefully and starts it again on the same data directory (new ports).
    pub async fn restart(self) -> Self {
        let InProcess { running, _dir } = self;
        running.stop().await;
        let running = run_in(_dir.path()).await;
        InProcess { running, _dir }
    }

    /// Stops the server gracefully and starts it again with `settings` (same data directory).
    pub async fn restart_with(self, settings: portcullis::config::Settings) -> Self {
        let InProcess { running, _dir } = self;
        running.stop().await;
        let running = portcullis::start(settings, None, Some(ADMIN_PASSWORD.into()))
            .await
            .unwrap();
        InProcess { running, _dir }
    }

    /// Signs in at `addr` (any of the server's PostgreSQL listeners); the connection's own
    /// task is handed back too, so a test can see how the server ended it.
    pub async fn connect_at(
        addr: SocketAddr,
        user: &str,
        database: &str,
        password: &str,
    ) -> Result<
        (
            tokio_postgres::Client,
            tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>,
        ),
        tokio_postgres::Error,
    > {
        let mut config = tokio_postgres::Config::new();
        config
            .host(addr.ip().to_string())
            .port(addr.port())
            .user(user)
            .dbname(database)
            .password(password)
            .connect_timeout(std::time::Duration::from_secs(10));
        let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
        Ok((client, tokio::spawn(connection)))
    }

    /// `admin@system`, signed in.
    pub async fn admin(&self) -> tokio_postgres::Client {
        self.connect("admin@system", "system", ADMIN_PASSWORD)
            .await
            .unwrap()
    }
}

/// The rows of a simple query's answer, columns joined by `|` (NULL as empty); panics on an
/// error.
pub async fn rows(client: &tokio_postgres::Client, sql: &str) -> Vec<String> {
    client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or("").to_owned())
                    .collect::<Vec<_>>()
                    .join("|"),
            ),
            _ => None,
        })
        .collect()
}

/// `SQLSTATE message` of a server's error, or the client's own error text.
pub fn db_error(e: &tokio_postgres::Error) -> String {
    e.as_db_error().map_or(e.to_string(), |d| {
        format!("{} {}", d.code().code(), d.message())
    })
}

/// The error of a statement that must fail (`SQLSTATE message`).
pub async fn refused(client: &tokio_postgres::Client, sql: &str) -> String {
    match client.simple_query(sql).await {
        Ok(_) => panic!("{sql} was accepted"),
        Err(e) => db_error(&e),
    }
}
