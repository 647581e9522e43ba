//! A server started in the test's own process (`portcullis::start`, on ephemeral ports in a
//! temporary data directory), with `tokio-postgres` as the ordinary client: no binary to spawn,
//! no port to read from its output. Tests about particular clients (psql, pgjdbc, psycopg,
//! node-postgres, Chromium) start the binary instead (`harness::Server`).

use std::net::SocketAddr;

use super::ADMIN_PASSWORD;

pub struct InProcess {
    pub running: portcullis::Running,
    /// The data directory the server was started with.
    pub data_dir: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// Starts a server with the default settings and `admin@system`'s password [`ADMIN_PASSWORD`].
pub async fn start() -> InProcess {
    let dir = tempfile::tempdir().unwrap();
    let running = run_in(dir.path()).await;
    InProcess {
        running,
        data_dir: dir.path().join("data"),
        _dir: dir,
    }
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
    let data_dir = settings.data_dir.clone();
    let running = portcullis::start(settings, None, Some(ADMIN_PASSWORD.into())).await?;
    Ok(InProcess {
        running,
        data_dir,
        _dir: dir,
    })
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

    /// Stops the server gracefully; its temporary directory (the data directory inside it, as
    /// [`settings_in`] sets it) is handed back, for a look at the files or [`start_with`].
    pub async fn stop(self) -> tempfile::TempDir {
        self.running.stop().await;
        self._dir
    }

    /// Stops the server gracefully and starts it again on the same data directory (new ports).
    pub async fn restart(self) -> Self {
        let InProcess {
            running,
            data_dir,
            _dir,
        } = self;
        running.stop().await;
        let running = run_in(_dir.path()).await;
        InProcess {
            running,
            data_dir,
            _dir,
        }
    }

    /// Stops the server gracefully and starts it again with `settings` (same data directory).
    pub async fn restart_with(self, settings: portcullis::config::Settings) -> Self {
        let InProcess { running, _dir, .. } = self;
        running.stop().await;
        let data_dir = settings.data_dir.clone();
        let running = portcullis::start(settings, None, Some(ADMIN_PASSWORD.into()))
            .await
            .unwrap();
        InProcess {
            running,
            data_dir,
            _dir,
        }
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

    /// What `psql -A -t -v ON_ERROR_STOP=1 -c … -c …` would give, for tests written with psql
    /// in mind: signs in, runs `commands` one after the other as simple queries and stops at
    /// the first error. (success, the rows — columns joined by `|`, one row a line — and the
    /// error as [`error_text`] writes it).
    pub async fn sql(
        &self,
        user: &str,
        database: &str,
        password: &str,
        commands: &[&str],
    ) -> (bool, String, String) {
        let client = match self.connect(user, database, password).await {
            Ok(client) => client,
            Err(e) => return (false, String::new(), error_text(&e)),
        };
        let mut out = Vec::new();
        for command in commands {
            match client.simple_query(command).await {
                Ok(messages) => out.extend(row_lines(&messages)),
                Err(e) => return (false, out.join("\n"), error_text(&e)),
            }
        }
        (true, out.join("\n"), String::new())
    }

    /// [`Self::sql`] as `admin@system` in `system`; panics on an error.
    pub async fn admin_sql(&self, commands: &[&str]) -> String {
        let (ok, out, err) = self
            .sql("admin@system", "system", ADMIN_PASSWORD, commands)
            .await;
        assert!(ok, "{commands:?} as admin@system failed: {err}");
        out
    }

    /// [`Self::sql`] as `admin@system` in `system`, `command` expected to fail; the error.
    pub async fn admin_sql_fails(&self, command: &str) -> String {
        let (ok, _, err) = self
            .sql("admin@system", "system", ADMIN_PASSWORD, &[command])
            .await;
        assert!(!ok, "{command:?} was accepted");
        err
    }
}

/// `example_database`, alice in it, and a group with USE that holds her ([`super::EXAMPLE`]).
pub async fn example(server: &InProcess) {
    server.admin_sql(super::EXAMPLE).await;
}

/// A snapshot of the catalog's visible state ([`super::CATALOG_DUMP`]), to show that a failed
/// statement changed nothing.
pub async fn catalog_dump(server: &InProcess) -> String {
    server.admin_sql(super::CATALOG_DUMP).await
}

fn row_lines(messages: &[tokio_postgres::SimpleQueryMessage]) -> Vec<String> {
    messages
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

/// A server's error as `SEVERITY SQLSTATE message`, with its `DETAIL:` and `HINT:` lines as
/// psql prints them; the client's own error text otherwise.
pub fn error_text(e: &tokio_postgres::Error) -> String {
    let Some(d) = e.as_db_error() else {
        return e.to_string();
    };
    let mut text = format!("{} {} {}", d.severity(), d.code().code(), d.message());
    if let Some(detail) = d.detail() {
        text.push_str(&format!("\nDETAIL:  {detail}"));
    }
    if let Some(hint) = d.hint() {
        text.push_str(&format!("\nHINT:  {hint}"));
    }
    text
}

/// The rows of a simple query's answer, columns joined by `|` (NULL as empty); panics on an
/// error.
pub async fn rows(client: &tokio_postgres::Client, sql: &str) -> Vec<String> {
    row_lines(
        &client
            .simple_query(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}")),
    )
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
