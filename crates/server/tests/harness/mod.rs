//! Starts the real `portcullis` binary on ephemeral ports in a temporary data directory and
//! drives it with the real `psql` and `pgbench`.
#![allow(dead_code)]

pub mod idp;
pub mod inprocess;
pub mod ldap;
pub mod postgres;
pub mod process;
pub mod saml;
pub mod web;
pub mod wire;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub const ADMIN_PASSWORD: &str = "Admin-pass-1";

pub struct Server {
    child: Child,
    pub data_dir: PathBuf,
    pub sql_port: u16,
    pub http_port: u16,
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Self::start_in(dir.path().to_path_buf());
        s._dir = Some(dir);
        s
    }

    pub fn start_in(data_dir: PathBuf) -> Self {
        Self::start_with(data_dir, &[])
    }

    /// Starts with extra environment variables.
    pub fn start_env(env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Self::start_with(dir.path().to_path_buf(), env);
        s._dir = Some(dir);
        s
    }

    /// Starts in `data_dir` (kept by the caller: a restart finds it) with extra environment.
    pub fn start_in_env(data_dir: PathBuf, env: &[(&str, &str)]) -> Self {
        Self::start_with(data_dir, env)
    }

    fn start_with(data_dir: PathBuf, env: &[(&str, &str)]) -> Self {
        // The audit log is written in the data directory: it must exist (private) first.
        {
            use std::os::unix::fs::DirBuilderExt;
            let _ = std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&data_dir);
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(["serve", "--data-dir"])
            .arg(&data_dir)
            .args(["--sql-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
            .env("PORTCULLIS_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("PORTCULLIS_LOG", "warn")
            // The audit log (JSON lines) goes to a file in the data directory, not the
            // test's output.
            .env("PORTCULLIS_AUDIT_LOG", data_dir.join("audit.jsonl"))
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut sql_port, mut http_port) = (0, 0);
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(rest) = line.strip_prefix("Portcullis listening: SQL on ") {
                let port = |s: &str| -> u16 {
                    let digits: String = s
                        .rsplit(':')
                        .next()
                        .unwrap()
                        .chars()
                        .take_while(|c| c.is_ascii_digit())
                        .collect();
                    digits.parse().unwrap()
                };
                let (sql, http) = rest.split_once(", HTTP on ").unwrap();
                sql_port = port(sql);
                http_port = port(http);
                break;
            }
        }
        assert!(sql_port > 0, "server did not report its ports");
        std::thread::spawn(move || for _ in lines {});
        Self {
            child,
            data_dir,
            sql_port,
            http_port,
            _dir: None,
        }
    }

    pub fn conninfo(&self, user: &str, db: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={user} dbname={db} connect_timeout=10",
            self.sql_port
        )
    }

    /// Runs psql with one or more `-c` commands; returns (success, stdout, stderr).
    pub fn psql(
        &self,
        user: &str,
        db: &str,
        password: &str,
        commands: &[&str],
    ) -> (bool, String, String) {
        let mut cmd = Command::new("psql");
        cmd.arg(self.conninfo(user, db))
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1"]);
        for c in commands {
            cmd.args(["-c", c]);
        }
        let out = cmd
            .env("PGPASSWORD", password)
            .env("PGSSLMODE", "disable")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_owned(),
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        )
    }

    /// psql as admin@system; panics on failure.
    pub fn admin(&self, commands: &[&str]) -> String {
        let (ok, out, err) = self.psql("admin@system", "system", ADMIN_PASSWORD, commands);
        assert!(ok, "admin psql failed: {err}");
        out
    }

    /// psql as admin@system expecting failure; returns stderr.
    pub fn admin_fails(&self, command: &str) -> String {
        let (ok, _, err) = self.psql("admin@system", "system", ADMIN_PASSWORD, &[command]);
        assert!(!ok, "expected {command:?} to fail");
        err
    }

    pub fn http(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http_port)
    }

    pub fn stop(mut self) -> PathBuf {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.data_dir.clone()
    }
}

impl Server {
    /// Kills the server with SIGKILL (kill -9) at once, through a shared handle; it is reaped
    /// when dropped.
    pub fn kill_now(&self) {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }

    /// Sends SIGTERM and waits (up to 30 s) for the server to exit; its exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the server did not stop within 30 s of SIGTERM"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates `example_database`, user alice in it, and a group with USE that holds her.
pub fn example(server: &Server) {
    server.admin(EXAMPLE);
}

/// The statements of [`example`].
pub const EXAMPLE: &[&str] = &[
    "CREATE DATABASE example_database",
    "CREATE USER \"alice@example_database\" PASSWORD = 'Alice-pass-1', FIRST_NAME = 'Alice', EMAIL = 'alice@example.com'",
    "CREATE GROUP analysts@example_database",
    "ALTER GROUP analysts@example_database ADD USER alice",
    "GRANT USE ON DATABASE example_database TO GROUP analysts@example_database",
];

/// A snapshot of the catalog's visible state, to show that a failed statement changed nothing.
pub fn catalog_dump(server: &Server) -> String {
    server.admin(CATALOG_DUMP)
}

/// The queries of [`catalog_dump`].
pub const CATALOG_DUMP: &[&str] = &[
    "SELECT id, name FROM sys.databases ORDER BY id",
    "SELECT fqun, state, failed_attempts FROM sys.users ORDER BY id",
    "SELECT fqgn FROM sys.groups ORDER BY id",
    "SELECT group_id, user_id FROM sys.group_members ORDER BY 1, 2",
    "SELECT privilege, object_type, object_id, grantee FROM sys.privileges ORDER BY 1, 2, 3, 4",
    "SELECT scope, scope_id, name, value FROM sys.password_settings ORDER BY 1, 2, 3",
];

/// A psql that stays connected: statements go to its stdin one at a time, and each answer
/// (stdout and stderr together) is read up to a marker.
pub struct LivePsql {
    child: Child,
    stdin: std::process::ChildStdin,
    lines: std::sync::mpsc::Receiver<String>,
}

impl LivePsql {
    pub fn connect(server: &Server, user: &str, db: &str, password: &str) -> Self {
        let mut child = Command::new("sh")
            .args(["-c", "exec psql \"$0\" -X -A -t -q 2>&1"])
            .arg(server.conninfo(user, db))
            .env("PGPASSWORD", password)
            .env("PGSSLMODE", "disable")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut live = Self {
            child,
            stdin,
            lines,
        };
        let first = live.run("SELECT 'connected'");
        assert_eq!(first, "connected", "psql did not connect");
        live
    }

    /// Runs one statement; returns everything psql printed for it.
    pub fn run(&mut self, sql: &str) -> String {
        use std::io::Write;
        let _ = writeln!(self.stdin, "{sql};\n\\echo __done__");
        let _ = self.stdin.flush();
        let mut out = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(std::time::Duration::from_secs(20)) {
            if line == "__done__" {
                break;
            }
            out.push(line);
        }
        out.join("\n")
    }
}

impl Drop for LivePsql {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Unix seconds now (for tokens' `iat` and `exp`).
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The Python of the tests' virtual environment (scripts/test.sh makes it from
/// tests/python/requirements.txt): `TEST_VENV_PYTHON`, else the default place.
pub fn python() -> PathBuf {
    std::env::var_os("TEST_VENV_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap())
                .join(".cache/portcullis-venv/bin/python")
        })
}

/// Runs a Python client `script` with `interpreter` (`/usr/bin/python3` for Debian's psycopg2,
/// [`python`] for psycopg 3), its one argument a libpq connection string for `user` on `db`;
/// answers (stdout, stderr).
pub fn python_client(
    interpreter: &std::path::Path,
    server: &Server,
    (user, db, password): (&str, &str, &str),
    script: &str,
) -> (String, String) {
    let out = Command::new(interpreter)
        .args(["-c", script])
        .arg(format!(
            "{} password={password} sslmode=disable",
            server.conninfo(user, db)
        ))
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Parses Prometheus text with prometheus_client's own parser: `{"name{k=v,...}": value}`.
pub fn parse_metrics(text: &str) -> serde_json::Value {
    use std::io::Write;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/parse_metrics.py");
    let mut child = Command::new(python())
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the tests' Python (scripts/test.sh makes it) must exist");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client refused the metrics: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
