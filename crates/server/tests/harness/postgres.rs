//! A real PostgreSQL 15 (Debian's `postgresql-15`) for the gateway tests: a cluster per test,
//! `initdb` in a temp dir with scram-sha-256, listening on a loopback port the OS gave. Run as
//! the `postgres` user when the tests run as root (initdb refuses root).

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = "/usr/lib/postgresql/15/bin";
/// The superuser's password.
pub const SUPERUSER_PASSWORD: &str = "Super-pass-1";

pub struct Postgres {
    pub port: u16,
    dir: tempfile::TempDir,
}

fn as_cluster_owner(cmd: &str) -> Command {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let mut c = if root {
        let mut c = Command::new("su");
        c.args(["postgres", "-s", "/bin/sh", "-c", cmd]);
        c
    } else {
        let mut c = Command::new("sh");
        c.args(["-c", cmd]);
        c
    };
    c.env("LC_ALL", "C.UTF-8");
    c
}

fn run(mut c: Command, what: &str) {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Postgres {
    pub fn start() -> Self {
        assert!(
            Path::new(BIN).join("initdb").exists(),
            "PostgreSQL 15 is not installed (scripts/test.sh installs postgresql-15)"
        );
        let dir = tempfile::tempdir().unwrap();
        let root = unsafe { libc::geteuid() } == 0;
        if root {
            run(
                {
                    let mut c = Command::new("chown");
                    c.args(["postgres"]).arg(dir.path());
                    c
                },
                "chown",
            );
        }
        let data = dir.path().join("data");
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, SUPERUSER_PASSWORD).unwrap();
        if root {
            run(
                {
                    let mut c = Command::new("chown");
                    c.args(["postgres"]).arg(&pwfile);
                    c
                },
                "chown",
            );
        }
        run(
            as_cluster_owner(&format!(
                "{BIN}/initdb -D {} -U postgres --auth=scram-sha-256 --pwfile={} >/dev/null",
                data.display(),
                pwfile.display()
            )),
            "initdb",
        );
        let pg = Self {
            port: super::idp::free_port(),
            dir,
        };
        pg.start_again();
        pg
    }

    /// Starts the stopped server again, on the same port.
    pub fn start_again(&self) {
        run(
            as_cluster_owner(&format!(
                "{BIN}/pg_ctl -D {} -l {}/log -w -o \"-p {} -k {} -c listen_addresses=127.0.0.1 \
                 -c max_connections=50\" start >/dev/null",
                self.data_dir().display(),
                self.dir.path().display(),
                self.port,
                self.dir.path().display()
            )),
            "pg_ctl start",
        );
    }

    /// Polls `query` (as the superuser, in `database`) until it answers `want`, for up to 10 s;
    /// answers the last answer.
    pub fn wait_for(&self, database: &str, query: &str, want: &str) -> String {
        let mut last = String::new();
        for _ in 0..100 {
            last = self.sql(database, &[query]);
            if last == want {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        last
    }

    /// Runs SQL as the superuser in `database`; returns psql's unaligned output.
    pub fn sql(&self, database: &str, statements: &[&str]) -> String {
        let mut c = Command::new("psql");
        c.args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1"])
            .arg(format!(
                "host=127.0.0.1 port={} user=postgres dbname={database} sslmode=disable",
                self.port
            ))
            .env("PGPASSWORD", SUPERUSER_PASSWORD);
        for s in statements {
            c.args(["-c", s]);
        }
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "psql as postgres: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// `postgresql://user:password@127.0.0.1:port/database?sslmode=disable`.
    pub fn url(&self, user: &str, password: &str, database: &str) -> String {
        format!(
            "postgresql://{user}:{password}@127.0.0.1:{}/{database}?sslmode=disable",
            self.port
        )
    }

    /// Stops the server (an upstream that is down).
    pub fn stop(&self) {
        run(
            as_cluster_owner(&format!(
                "{BIN}/pg_ctl -D {} -m fast stop >/dev/null",
                self.data_dir().display()
            )),
            "pg_ctl stop",
        );
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = as_cluster_owner(&format!(
            "{BIN}/pg_ctl -D {} -m immediate stop >/dev/null 2>&1",
            self.data_dir().display()
        ))
        .status();
    }
}

/// The upstream administrator's password in [`upstream`].
pub const ADMIN_PASS: &str = "Upstream-admin-1";

/// A PostgreSQL with `portcullis_admin` (CREATEROLE) owning database `sales`, a database
/// `other` it does not own, and `weak_admin` (no CREATEROLE).
pub fn upstream() -> Postgres {
    let pg = Postgres::start();
    pg.sql(
        "postgres",
        &[
            &format!("CREATE ROLE portcullis_admin LOGIN CREATEROLE PASSWORD '{ADMIN_PASS}'"),
            "CREATE DATABASE sales OWNER portcullis_admin",
            "CREATE DATABASE other",
            "CREATE ROLE weak_admin LOGIN PASSWORD 'Weak-admin-1'",
            "GRANT CONNECT ON DATABASE sales TO weak_admin",
        ],
    );
    pg
}

/// A server (with `env`) with `sales` bound to `pg`, and alice@sales in analysts@sales, which
/// may USE it.
pub fn bound_with(pg: &Postgres, env: &[(&str, &str)]) -> super::Server {
    let server = super::Server::start_env(env);
    server.admin(&binding(pg).iter().map(String::as_str).collect::<Vec<_>>());
    server
}

/// [`bound`] for a server started in the test's process.
pub async fn bound_in_process(pg: &Postgres) -> super::inprocess::InProcess {
    let server = super::inprocess::start().await;
    server
        .admin_sql(&binding(pg).iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    server
}

/// `sales` bound to `pg`, and alice@sales in analysts@sales, which may USE it.
fn binding(pg: &Postgres) -> [String; 5] {
    let good = pg.url("portcullis_admin", ADMIN_PASS, "sales");
    [
        format!("CREATE DATABASE sales UPSTREAM '{good}'"),
        "CREATE USER \"alice@sales\" PASSWORD = 'Alice-pass-123'".into(),
        "CREATE GROUP analysts@sales".into(),
        "ALTER GROUP analysts@sales ADD USER alice@sales".into(),
        "GRANT USE ON DATABASE sales TO GROUP analysts@sales".into(),
    ]
}

/// [`bound_with`] and no settings.
pub fn bound(pg: &Postgres) -> super::Server {
    bound_with(pg, &[])
}
